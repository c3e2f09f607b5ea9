//! The server executable as child processes: where the binaries are, and one role
//! running as a [`Service`] (start, stop, restart, freeze, thaw, its log).

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tonic::transport::Channel;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

/// Where cargo put the workspace's binaries: `GAME_BIN_DIR` when set, else next to this
/// test's `deps/` folder, or next to the running binary when it is one of them (`bench`).
pub fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("GAME_BIN_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().expect("test executable");
    let dir = exe.parent().expect("executable's dir");
    if dir.ends_with("deps") { dir.parent().expect("profile dir").to_path_buf() } else { dir.to_path_buf() }
}

/// The path of a workspace executable (`gamectl`, `bench`), checked to exist.
///
/// # Panics
/// When it was not built.
pub fn bin(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    assert!(path.exists(), "{} is missing: run `cargo build --workspace --bins` first", path.display());
    path
}

/// `gamectl serve`: the one server executable, before its role(s) are named.
pub fn serve_command() -> Command {
    let mut cmd = Command::new(bin("gamectl"));
    cmd.arg("serve");
    cmd
}

/// `gamectl serve <role>`: the command running one role of the system.
pub fn serve(role: &str) -> Command {
    let mut cmd = serve_command();
    cmd.arg(role);
    cmd
}

/// One role of the system running as a child process: `gamectl serve <role>`.
pub struct Service {
    pub name: String,
    role: String,
    env: Vec<(String, String)>,
    pub addr: SocketAddr,
    /// Where it serves `GET /metrics` (`METRICS_ADDR`, a free port unless given).
    pub metrics: Option<SocketAddr>,
    child: Option<Child>,
    log: PathBuf,
}

impl Service {
    /// Starts `gamectl serve <role>` with `env`; `LISTEN_ADDR` defaults to a free port.
    ///
    /// # Panics
    /// When the process does not print its address within 30 s.
    pub fn start(name: &str, role: &str, env: &[(&str, String)], log_dir: &Path) -> Self {
        let mut env: Vec<(String, String)> = env.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
        if !env.iter().any(|(k, _)| k == "LISTEN_ADDR") {
            env.push(("LISTEN_ADDR".into(), "127.0.0.1:0".into()));
        }
        // Metrics on (a free port) unless given, or switched off with E2E_METRICS=off (the
        // benchmark's comparison without them).
        let metrics_off = std::env::var("E2E_METRICS").is_ok_and(|v| v == "off");
        if !metrics_off && !env.iter().any(|(k, _)| k == "METRICS_ADDR") {
            env.push(("METRICS_ADDR".into(), "127.0.0.1:0".into()));
        }
        let mut s = Self {
            name: name.to_owned(),
            role: role.to_owned(),
            env,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            metrics: None,
            child: None,
            log: log_dir.join(format!("{name}.log")),
        };
        s.spawn();
        // A restart must come back on the same address.
        let listen = s.addr.to_string();
        s.env.retain(|(k, _)| k != "LISTEN_ADDR");
        s.env.push(("LISTEN_ADDR".into(), listen));
        if let Some(metrics) = s.metrics {
            s.env.retain(|(k, _)| k != "METRICS_ADDR");
            s.env.push(("METRICS_ADDR".into(), metrics.to_string()));
        }
        s
    }

    fn spawn(&mut self) {
        let stderr = if std::env::var_os("E2E_LOGS").is_some() {
            Stdio::inherit()
        } else {
            Stdio::from(File::options().create(true).append(true).open(&self.log).expect("log file"))
        };
        let mut child = serve(&self.role)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("SHUTDOWN_GRACE_SECONDS", "5")
            .env("READINESS_INTERVAL_SECONDS", "0.2")
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", self.name));
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            // "metrics on ..." comes before "listening on ...", when metrics are on.
            let mut metrics = None;
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("metrics on ") {
                    metrics = Some(addr.trim().to_owned());
                }
                if let Some(addr) = line.strip_prefix("listening on ") {
                    let _ = tx.send((addr.trim().to_owned(), metrics.take()));
                }
            }
        });
        let (addr, metrics) = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("{} did not start; see {}", self.name, self.log.display()));
        self.addr = addr.parse().expect("listening address");
        self.metrics = metrics.map(|m| m.parse().expect("metrics address"));
        self.child = Some(child);
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The URL of its metrics (panics when started without them).
    pub fn metrics_url(&self) -> String {
        format!("http://{}/metrics", self.metrics.expect("started with METRICS_ADDR"))
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// A lazily connecting channel to the service.
    pub fn channel(&self) -> Channel {
        Channel::from_shared(self.url()).expect("url").connect_lazy()
    }

    /// Waits until `service` reports SERVING on this process's health endpoint.
    ///
    /// # Panics
    /// After 30 s.
    pub async fn wait_serving(&self, service: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let mut health = HealthClient::new(self.channel());
            let status = health.check(HealthCheckRequest { service: service.to_owned() }).await;
            if matches!(status, Ok(r) if r.get_ref().status == ServingStatus::Serving as i32) {
                return;
            }
            assert!(Instant::now() < deadline, "{} never became SERVING; see {}", self.name, self.log.display());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGTERM, then waits for the process to exit; returns its exit status code.
    pub fn stop(&mut self) -> Option<i32> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return status.code();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts the process again, on the same address with the same settings.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "{} is running", self.name);
        self.spawn();
    }

    /// Freezes the process (SIGSTOP): it keeps its sockets and accepts connections, but
    /// never answers — a hung service, as its callers see it.
    ///
    /// # Panics
    /// When the process is not running.
    pub fn freeze(&self) {
        self.signal("-STOP");
        // `kill` returns once the signal is queued; a thread already running on another
        // core goes on until the kernel stops it (seen under CI's load: a call sent right
        // after was answered). Wait until every thread is stopped.
        let Some(pid) = self.pid() else { return };
        let until = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !all_threads_stopped(pid) && std::time::Instant::now() < until {
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    }

    /// Lets a frozen process go on (SIGCONT).
    ///
    /// # Panics
    /// When the process is not running.
    pub fn thaw(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, sig: &str) {
        let pid = self.pid().unwrap_or_else(|| panic!("{} is not running", self.name)).to_string();
        let sent = Command::new("kill").args([sig, &pid]).status().map(|s| s.success());
        assert!(matches!(sent, Ok(true)), "kill {sig} {}", self.name);
    }

    /// The process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The CPU time the process has used so far (user and system, all threads), from
    /// `/proc/<pid>/stat`.
    ///
    /// # Panics
    /// When the process is not running.
    pub fn cpu_time(&self) -> Duration {
        let pid = self.pid().unwrap_or_else(|| panic!("{} is not running", self.name));
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc/<pid>/stat");
        // after the command name (in parentheses, maybe with spaces): state is field 3,
        // utime and stime fields 14 and 15, in clock ticks (USER_HZ, 100 on Linux)
        let fields: Vec<&str> = stat.rsplit_once(')').expect("stat").1.split_whitespace().collect();
        let ticks: u64 = fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
        Duration::from_millis(ticks * 10)
    }

    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Whether every thread of process `pid` is stopped (state `T` in `/proc/<pid>/task/*/stat`).
fn all_threads_stopped(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return false };
    tasks.flatten().all(|t| {
        std::fs::read_to_string(t.path().join("stat"))
            .ok()
            .and_then(|stat| stat.rsplit_once(')').map(|(_, rest)| rest.trim_start().starts_with('T')))
            .unwrap_or(true)
    })
}
