//! Each `gamectl up` is a system of its own, and its start tells the truth: systems on one
//! PostgreSQL server (one after the other, or at once) keep apart, each in the databases
//! named with its id; `--reset` drops exactly its own; the first admin's login it prints
//! works, and when the admin existed already it says so instead of printing a password
//! file that does not work; a first start prints no WARN line.

use std::path::Path;
use std::time::Duration;

use e2e::up::{self, RELATIONAL, Running};

const PASSWORD: &str = "correct horse battery";
/// How long one `up` may take to be ready (two run at once on a small machine).
const READY: Duration = Duration::from_secs(90);

/// Drops every database of the test's prefix when the test ends, however it ends.
struct Databases(String);

impl Drop for Databases {
    fn drop(&mut self) {
        up::drop_databases(&self.0);
    }
}

fn system_id(data_dir: &Path) -> String {
    std::fs::read_to_string(data_dir.join("system-id")).expect("system-id").trim().to_owned()
}

/// Whether `customer` logs in to the system of `up` with the test's password.
fn logs_in(up: &Running, customer: &str) -> bool {
    up.ctl(&["login", customer, "--password", PASSWORD]).status.success()
}

fn register(up: &Running, customer: &str) {
    let out = up.ctl(&["register", customer, "--password", PASSWORD]);
    assert!(out.status.success(), "register {customer}: {}\n{}", String::from_utf8_lossy(&out.stderr), up.transcript());
}

fn no_warnings(up: &Running, what: &str) {
    let warned = up.warnings();
    assert!(warned.is_empty(), "{what}: {} WARN lines:\n{}\n{}", warned.len(), warned.join("\n"), up.transcript());
}

#[test]
fn systems_on_one_postgresql_server_one_after_the_other_and_at_once_keep_apart_and_reset_drops_only_its_own() {
    let prefix = format!("gs{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let _cleanup = Databases(prefix.clone());
    let server = store_adapter::testing::postgres_server();
    let args = ["--database", "postgres", "--database-url", &server, "--database-prefix", &prefix, "--replicas", "1"];
    let (dir_a, dir_b) = (tempfile::tempdir().expect("tmp"), tempfile::tempdir().expect("tmp"));

    // System A: its own databases, named with its id; a first start without a WARN line.
    let mut a = Running::start(dir_a.path(), &args, READY);
    let id_a = system_id(dir_a.path());
    let of = |id: &str| RELATIONAL.iter().map(|r| format!("{prefix}_{id}_{r}")).collect::<Vec<_>>();
    for db in of(&id_a) {
        assert!(a.said(&format!("{} database: ", db.rsplit('_').next().unwrap())).is_some_and(|l| l.ends_with(&db)));
    }
    assert!(a.printed_admin_login_works(), "A's admin logs in as printed\n{}", a.transcript());
    register(&a, "alice");
    assert!(logs_in(&a, "alice"));
    no_warnings(&a, "A's first start on PostgreSQL");
    a.stop();

    // System B, one after the other on the same server: nothing of A's.
    let b = Running::start(dir_b.path(), &args, READY);
    let id_b = system_id(dir_b.path());
    assert_ne!(id_a, id_b);
    assert!(b.printed_admin_login_works(), "B's admin logs in as printed (A's admin was another)\n{}", b.transcript());
    assert!(!logs_in(&b, "alice"), "alice of A is unknown to B");
    register(&b, "bob");
    no_warnings(&b, "B's first start on PostgreSQL");
    let mut both = [of(&id_a), of(&id_b)].concat();
    both.sort();
    assert_eq!(up::databases_of(&prefix), both, "six databases each");

    // A again with --reset while B runs (two at once): A's own databases dropped and made
    // anew, B's kept; the two stay apart.
    let a = Running::start(dir_a.path(), &[&args[..], &["--reset"]].concat(), READY);
    let reset = a.said("reset: ").unwrap_or_else(|| panic!("{}", a.transcript()));
    for db in of(&id_a) {
        assert!(reset.contains(&format!("database {db}")), "{db} dropped: {reset}");
    }
    for db in of(&id_b) {
        assert!(!reset.contains(&db), "{db} is B's: {reset}");
    }
    assert_eq!(system_id(dir_a.path()), id_a, "A stays A");
    assert_eq!(up::databases_of(&prefix), both, "A's made anew, B's kept");
    assert!(!logs_in(&a, "alice"), "A starts over: alice is gone");
    assert!(a.printed_admin_login_works(), "A's new admin logs in as printed\n{}", a.transcript());
    assert!(logs_in(&b, "bob"), "B kept its data");
    register(&a, "carol");
    assert!(!logs_in(&b, "carol"), "carol of A is unknown to B while both run");
    assert!(!logs_in(&a, "bob"), "bob of B is unknown to A while both run");
    drop((a, b));
}

#[test]
fn a_first_start_on_sqlite_prints_no_warn_and_an_admin_that_existed_is_said_to_without_a_password_file() {
    for mode in [&[][..], &["--all-in-one"][..]] {
        let dir = tempfile::tempdir().expect("tmp");
        let mut first = Running::start(dir.path(), mode, READY);
        assert!(first.printed_admin_login_works(), "{}", first.transcript());
        // Long enough for a role's quiet wait to have become a WARN if it were not over.
        std::thread::sleep(Duration::from_secs(2));
        no_warnings(&first, &format!("first start {mode:?}"));
        first.stop();
        if !mode.is_empty() {
            continue;
        }

        // The password file lost, the auth database kept: the admin exists with the old
        // password, so a new file would not work and none is left.
        let password_file = dir.path().join("admin.password");
        std::fs::remove_file(&password_file).expect("admin.password");
        let again = Running::start(dir.path(), mode, READY);
        let said = again.said("first admin: ").unwrap_or_default();
        assert!(said.starts_with("first admin: admin already existed"), "{}", again.transcript());
        assert!(said.contains("--reset"), "{said}");
        assert!(!password_file.exists(), "no password file auth did not apply");
        drop(again);

        // --reset starts over: a new admin, with a password file that works.
        let fresh = Running::start(dir.path(), &["--reset"], READY);
        assert!(fresh.printed_admin_login_works(), "{}", fresh.transcript());
    }
}
