//! What the tests of `gamectl up` share: the command deaf to the test's own environment,
//! stopping an `up` that ran on PostgreSQL with its databases dropped, and [`Running`]: an
//! `up` in a data dir of the test's, what it printed kept in memory.

use std::io::{BufRead as _, BufReader, Read};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
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

/// Runs `sql` with psql on the tests' PostgreSQL server; its output, trimmed.
///
/// # Panics
/// When psql fails.
pub fn psql(sql: &str) -> String {
    let out = Command::new("psql")
        .args([store_adapter::testing::postgres_server().as_str(), "-tAc", sql])
        .output()
        .expect("psql runs");
    assert!(out.status.success(), "psql {sql}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The databases on the tests' server whose names start with `<prefix>_`, sorted.
pub fn databases_of(prefix: &str) -> Vec<String> {
    let list = psql(&format!("SELECT datname FROM pg_database WHERE datname LIKE '{prefix}\\_%' ORDER BY datname"));
    list.lines().map(str::to_owned).collect()
}

/// Drops the databases `up --database postgres --database-prefix <prefix>` made, those of
/// every system (`<prefix>_<system>_<role>`).
pub fn drop_databases(prefix: &str) {
    for db in databases_of(prefix) {
        let _ = psql(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"));
    }
}

/// A base port whose service ports (two replicas: +0..=18), metrics ports (+200..=218),
/// internal ports (+300..=318) and NATS port (+100) are free now, random so that tests at
/// the same time differ.
pub fn pick_base_port() -> u16 {
    // Slots of 400 ports between 20,000 and 30,000, handed out in turn within this test
    // process: two systems started at once never share a range (a random base could
    // overlap another's range before either had bound its ports).
    const SLOT: u16 = 400;
    const SLOTS: u16 = 25;
    static NEXT: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);
    let first = u16::try_from(uuid::Uuid::new_v4().as_u128() % u128::from(SLOTS)).expect("below 25");
    let free = |p: u16| TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], p))).is_ok();
    for _ in 0..200 {
        let turn = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let base = 20_000 + (first.wrapping_add(turn) % SLOTS) * SLOT;
        if (0..=18).chain([100]).chain(200..=218).chain(300..=318).all(|o| free(base + o)) {
            return base;
        }
    }
    panic!("no free base port");
}

/// Lines read from one of `up`'s outputs.
type Lines = Arc<Mutex<Vec<String>>>;

fn read_lines(from: impl Read + Send + 'static, into: Lines) {
    std::thread::spawn(move || {
        for line in BufReader::new(from).lines().map_while(Result::ok) {
            into.lock().expect("lines").push(line);
        }
    });
}

/// `gamectl up` in a data dir, what it printed on stdout and stderr kept; stopped when
/// dropped.
pub struct Running {
    child: Option<Child>,
    pub data_dir: PathBuf,
    pub base: u16,
    stdout: Lines,
    stderr: Lines,
}

impl Running {
    /// Starts `gamectl --data-dir <data_dir> up --base-port <free> <args>` and waits for
    /// `ready: all services SERVING` (another base port when one was taken meanwhile).
    ///
    /// # Panics
    /// When it is not ready within `timeout`, showing what it printed.
    pub fn start(data_dir: &Path, args: &[&str], timeout: Duration) -> Self {
        for attempt in 1..=3 {
            let base = pick_base_port();
            let mut child = gamectl(data_dir)
                .args(["up", "--base-port", &base.to_string()])
                .args(args)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("gamectl up starts");
            let (stdout, stderr) = (Lines::default(), Lines::default());
            read_lines(child.stdout.take().expect("stdout"), stdout.clone());
            read_lines(child.stderr.take().expect("stderr"), stderr.clone());
            let mut up = Self { child: Some(child), data_dir: data_dir.to_path_buf(), base, stdout, stderr };
            match up.ready(timeout) {
                Ok(()) => return up,
                Err(why) if attempt < 3 && why.contains("is not free") => drop(up),
                Err(why) => panic!("gamectl up not ready: {why}\n{}", up.transcript()),
            }
        }
        unreachable!()
    }

    fn ready(&mut self, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.said("ready: all services SERVING").is_some() {
                return Ok(());
            }
            let exited = self.child.as_mut().is_none_or(|c| !matches!(c.try_wait(), Ok(None)));
            if exited || Instant::now() > deadline {
                std::thread::sleep(Duration::from_millis(200));
                return Err(self.stderr.lock().expect("lines").join("\n"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The first stdout line starting with `prefix`.
    pub fn said(&self, prefix: &str) -> Option<String> {
        self.stdout.lock().expect("lines").iter().find(|l| l.starts_with(prefix)).cloned()
    }

    /// Every line of stdout and stderr at WARN or above (the services' `WARN`/`ERROR`,
    /// nats-server's `[WRN]`/`[ERR]`).
    pub fn warnings(&self) -> Vec<String> {
        let bad = [" WARN ", " ERROR ", "[WRN]", "[ERR]", "[FTL]"];
        let out = self.stdout.lock().expect("lines");
        let err = self.stderr.lock().expect("lines");
        out.iter().chain(err.iter()).filter(|l| bad.iter().any(|b| l.contains(b))).cloned().collect()
    }

    /// All of stdout, the end of stderr.
    pub fn transcript(&self) -> String {
        let out = self.stdout.lock().expect("lines").join("\n");
        let err = self.stderr.lock().expect("lines");
        let tail = err[err.len().saturating_sub(60)..].join("\n");
        format!("--- up stdout ---\n{out}\n--- up stderr (last 60 lines) ---\n{tail}\n---")
    }

    /// `gamectl --data-dir <data dir> <args>`.
    pub fn ctl(&self, args: &[&str]) -> Output {
        gamectl(&self.data_dir).args(args).stdin(Stdio::null()).output().expect("gamectl runs")
    }

    /// The first admin's login as `up` printed it (`gamectl login admin --password
    /// "$(cat <file>)"`), run: whether it logged in as the admin.
    ///
    /// # Panics
    /// When `up` printed no such command.
    pub fn printed_admin_login_works(&self) -> bool {
        let line = self.said("first admin: admin, password in ").unwrap_or_else(|| panic!("{}", self.transcript()));
        let file = line.rsplit_once("$(cat ").and_then(|(_, f)| f.strip_suffix(")\"")).expect("the file in the line");
        let password = std::fs::read_to_string(file).unwrap_or_default();
        let out = self.ctl(&["--json", "login", "admin", "--password", password.trim()]);
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("\"role\": \"admin\"")
    }

    /// Stops it (SIGTERM, then SIGKILL after 30 s).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            stop(&mut child);
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.transcript());
        }
        self.stop();
    }
}
