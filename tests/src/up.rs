//! What the tests of `gamectl up` share: the command deaf to the test's own environment,
//! and stopping an `up` that ran on PostgreSQL with its databases dropped.

use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// The relational roles: each has its own database under `--database postgres`.
pub const RELATIONAL: [&str; 6] = ["mission", "reward", "wallet", "gift", "notification", "auth"];

/// `gamectl --data-dir <dir>`, deaf to settings the test's own environment might carry.
pub fn gamectl(data_dir: &Path) -> Command {
    let mut cmd = Command::new(crate::bin("gamectl"));
    cmd.arg("--data-dir").arg(data_dir);
    for var in ["GAMECTL_ENDPOINT", "GAMECTL_DATA_DIR", "GAMECTL_TOKEN", "GAMECTL_TOKEN_FILE", "GAMECTL_PASSWORD"] {
        cmd.env_remove(var);
    }
    cmd
}

/// SIGTERM to `up`, 30 s for it to stop its children, then SIGKILL.
pub fn stop(child: &mut Child) {
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Drops the `<prefix>_<role>` databases `up --database postgres` made.
pub fn drop_databases(prefix: &str) {
    for role in RELATIONAL {
        let _ = Command::new("psql")
            .args([
                store_adapter::testing::postgres_server().as_str(),
                "-tAc",
                &format!("DROP DATABASE IF EXISTS {prefix}_{role} WITH (FORCE)"),
            ])
            .output();
    }
}
