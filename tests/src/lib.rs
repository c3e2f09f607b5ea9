//! The end-to-end harness: real service binaries as child processes, a private
//! nats-server, fresh databases, real gRPC over loopback sockets.
//!
//! The binaries must be built first (`cargo build --workspace --bins`, which the
//! README's test command does). Each process's log goes to `<tmp>/<name>.log`; set
//! `E2E_LOGS=1` to see them on the terminal instead.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tonic::transport::Channel;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

pub use nats_adapter::testing::{NatsServer, free_port};
pub use store_adapter::testing::TestDatabase;

/// Where cargo put the workspace's binaries (next to this test's `deps/` folder).
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    let deps = exe.parent().expect("deps dir");
    deps.parent().expect("profile dir").to_path_buf()
}

/// The path of a workspace binary, checked to exist.
///
/// # Panics
/// When it was not built.
pub fn bin(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    assert!(path.exists(), "{} is missing: run `cargo build --workspace --bins` first", path.display());
    path
}

/// A service binary running as a child process.
pub struct Service {
    pub name: String,
    bin: String,
    env: Vec<(String, String)>,
    pub addr: SocketAddr,
    child: Option<Child>,
    log: PathBuf,
}

impl Service {
    /// Starts `bin` with `env`; `LISTEN_ADDR` defaults to a free port.
    ///
    /// # Panics
    /// When the process does not print its address within 30 s.
    pub fn start(name: &str, bin_name: &str, env: &[(&str, String)], log_dir: &Path) -> Self {
        let mut env: Vec<(String, String)> = env.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
        if !env.iter().any(|(k, _)| k == "LISTEN_ADDR") {
            env.push(("LISTEN_ADDR".into(), "127.0.0.1:0".into()));
        }
        let mut s = Self {
            name: name.to_owned(),
            bin: bin_name.to_owned(),
            env,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            child: None,
            log: log_dir.join(format!("{name}.log")),
        };
        s.spawn();
        // A restart must come back on the same address.
        let listen = s.addr.to_string();
        s.env.retain(|(k, _)| k != "LISTEN_ADDR");
        s.env.push(("LISTEN_ADDR".into(), listen));
        s
    }

    fn spawn(&mut self) {
        let stderr = if std::env::var_os("E2E_LOGS").is_some() {
            Stdio::inherit()
        } else {
            Stdio::from(File::options().create(true).append(true).open(&self.log).expect("log file"))
        };
        let mut child = Command::new(bin(&self.bin))
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
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("listening on ") {
                    let _ = tx.send(addr.trim().to_owned());
                }
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("{} did not start; see {}", self.name, self.log.display()));
        self.addr = addr.parse().expect("listening address");
        self.child = Some(child);
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
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

/// Polls `check` every 50 ms until it returns `Some`, or panics after `timeout`.
///
/// # Panics
/// With `what` when the time runs out.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub const MISSION: &str = "game.mission.v1.MissionService";
pub const REWARD: &str = "game.reward.v1.RewardService";
pub const WALLET: &str = "game.wallet.v1.WalletService";
pub const MYPAGE: &str = "game.mypage.v1.MyPageService";

/// The reward flow's services on one private NATS, each on its own SQLite file
/// (or on the databases given).
pub struct System {
    pub dir: tempfile::TempDir,
    pub nats: NatsServer,
    pub mission: Service,
    pub reward: Service,
    pub wallet: Service,
    pub mypage: Service,
}

impl System {
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let nats = NatsServer::start();
        let sqlite = |svc: &str| format!("sqlite://{}", dir.path().join(format!("{svc}.db")).display());
        let urls = [sqlite("mission"), sqlite("reward"), sqlite("wallet")];
        Self::start_with(dir, nats, urls).await
    }

    /// `databases`: mission, reward, wallet URLs.
    pub async fn start_with(dir: tempfile::TempDir, nats: NatsServer, databases: [String; 3]) -> Self {
        let [m, r, w] = databases;
        let env = |db: String| vec![("NATS_URL", nats.url()), ("DATABASE_URL", db)];
        let mission = Service::start("mission", "mission", &env(m), dir.path());
        let reward = Service::start("reward", "reward", &env(r), dir.path());
        let wallet = Service::start("wallet", "wallet", &env(w), dir.path());
        let mypage = Service::start("mypage", "mypage", &[("NATS_URL", nats.url())], dir.path());
        mission.wait_serving(MISSION).await;
        reward.wait_serving(REWARD).await;
        wallet.wait_serving(WALLET).await;
        mypage.wait_serving(MYPAGE).await;
        Self { dir, nats, mission, reward, wallet, mypage }
    }

    pub fn env(&self, db: &str) -> Vec<(&'static str, String)> {
        vec![("NATS_URL", self.nats.url()), ("DATABASE_URL", db.to_owned())]
    }

    pub fn sqlite(&self, name: &str) -> String {
        format!("sqlite://{}", self.dir.path().join(format!("{name}.db")).display())
    }
}

/// Generated clients, re-exported for the tests.
pub mod clients {
    pub use grpc_adapter::pb::mission::v1::mission_service_client::MissionServiceClient;
    pub use grpc_adapter::pb::mypage::v1::my_page_service_client::MyPageServiceClient;
    pub use grpc_adapter::pb::reward::v1::reward_service_client::RewardServiceClient;
    pub use grpc_adapter::pb::wallet::v1::wallet_service_client::WalletServiceClient;
}
