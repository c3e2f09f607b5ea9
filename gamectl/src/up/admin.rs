//! What `up` says about the first admin: how to log in when the auth service applied the
//! password file, and the truth when it did not (the account existed already), never a
//! password file that does not work.

use std::path::Path;

use crate::secrets::{ADMIN_ID, Paths};

/// Whether the password file in the data dir logs the first admin in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Auth made the admin with it now, or with this very file on an earlier start (`up`
    /// keeps no file auth did not apply).
    Works,
    /// The admin existed before with another password: the file made now is removed.
    NotApplied,
    /// Auth did not say (an older auth, or its status file could not be read).
    Unknown,
}

/// From what auth wrote in `ADMIN_STATUS_FILE` and whether `up` made the password file on
/// this start.
pub(super) fn verdict(status: Option<&str>, made_now: bool) -> Verdict {
    match status.map(str::trim) {
        Some("created") => Verdict::Works,
        Some("exists") if !made_now => Verdict::Works,
        Some("exists") => Verdict::NotApplied,
        _ => Verdict::Unknown,
    }
}

/// The line `up` prints about the first admin; removes a password file it made on this
/// start that auth did not apply.
pub(super) fn report(secrets: &Paths, made_now: bool, data_dir: &Path) -> String {
    let status = std::fs::read_to_string(&secrets.admin_status_file).ok();
    let file = secrets.admin_password_file.display();
    let verdict = verdict(status.as_deref(), made_now);
    if verdict != Verdict::Works && made_now {
        let _ = std::fs::remove_file(&secrets.admin_password_file);
    }
    let start_over = format!("gamectl --data-dir {} up --reset", data_dir.display());
    match verdict {
        Verdict::Works => format!(
            "first admin: {ADMIN_ID}, password in {file} (readable by you only): gamectl login {ADMIN_ID} --password \
             \"$(cat {file})\""
        ),
        Verdict::NotApplied => format!(
            "first admin: {ADMIN_ID} already existed in this system's auth database, with the password it was made \
             with, so no password file is kept: log in with that password, or start this system over with \
             {start_over} (its data is dropped)"
        ),
        Verdict::Unknown => format!(
            "first admin: the auth service did not say whether it made {ADMIN_ID} (no {}); no password file kept",
            secrets.admin_status_file.display()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_file_is_shown_only_when_auth_applied_it() {
        assert_eq!(verdict(Some("created\n"), true), Verdict::Works);
        assert_eq!(verdict(Some("created\n"), false), Verdict::Works);
        assert_eq!(verdict(Some("exists\n"), false), Verdict::Works, "applied on an earlier start");
        assert_eq!(verdict(Some("exists\n"), true), Verdict::NotApplied);
        assert_eq!(verdict(None, true), Verdict::Unknown);
    }

    #[test]
    fn a_file_made_now_that_auth_did_not_apply_is_removed_and_the_admin_said_to_exist() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::of(dir.path());
        std::fs::write(&paths.admin_password_file, "pw\n").unwrap();
        std::fs::write(&paths.admin_status_file, "exists\n").unwrap();
        let said = report(&paths, true, dir.path());
        assert!(said.starts_with("first admin: admin already existed"), "{said}");
        assert!(said.contains("up --reset"), "{said}");
        assert!(!paths.admin_password_file.exists());

        std::fs::write(&paths.admin_password_file, "pw\n").unwrap();
        std::fs::write(&paths.admin_status_file, "created\n").unwrap();
        let said = report(&paths, true, dir.path());
        assert!(said.starts_with("first admin: admin, password in "), "{said}");
        assert!(paths.admin_password_file.exists());
    }
}
