//! The end-to-end harness: the real server executable (`gamectl serve <role>`) as child
//! processes, a private
//! nats-server with the authorisation `gamectl up` gives it (every service with its own
//! credentials and permissions; tests that publish or inspect events act as the
//! operator), fresh databases, real gRPC over loopback sockets.
//!
//! The executables must be built first (`cargo build --workspace --bins`, which the
//! README's test command does). Each process's log goes to `<tmp>/<name>.log`; set
//! `E2E_LOGS=1` to see them on the terminal instead.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tonic::transport::Channel;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

pub use nats_adapter::access::OPERATOR as NATS_OPERATOR;
pub use nats_adapter::testing::{NatsServer, ServerErrors, connect_as as nats_connect_as, free_port};
pub use store_adapter::testing::TestDatabase;

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

pub const GIFT: &str = "game.gift.v1.GiftService";

/// How to start a [`System`].
#[derive(Default)]
pub struct Options {
    /// Database URLs of mission, reward, wallet, gift; SQLite files in the temp dir when `None`.
    pub databases: Option<[String; 4]>,
    /// Extra settings for the wallet (breaker thresholds...).
    pub wallet_env: Vec<(&'static str, String)>,
    /// Put a proxy between wallet and gift whose added delay the test controls.
    pub gift_proxy: bool,
    /// Also start the gateway in front of everything (the auth service always runs: the
    /// wallet gets its service token there).
    pub gateway: bool,
    /// Extra settings for the gateway (rate limits...).
    pub gateway_env: Vec<(&'static str, String)>,
    /// Every relational service on its own fresh PostgreSQL database instead of SQLite.
    pub postgres: bool,
    /// Settings for every service (e.g. `DRAIN_SECONDS`).
    pub service_env: Vec<(&'static str, String)>,
    /// Extra settings for the mission service (e.g. `MISSION_CATALOG`).
    pub mission_env: Vec<(&'static str, String)>,
    /// Extra settings for the gift service (e.g. `GIFT_CATALOG`).
    pub gift_env: Vec<(&'static str, String)>,
}

/// Signs tokens the way an identity provider would, for tests; every service trusts its
/// keys through `JWKS_FILES`.
pub struct Tokens {
    issuer: auth_adapter::TokenIssuer,
    pub jwks_file: PathBuf,
}

impl Tokens {
    /// # Panics
    /// When the key directory cannot be written.
    pub fn new(dir: &Path) -> Self {
        let ring = auth_adapter::KeyRing::open(dir.join("test-keys"), Duration::from_secs(3600)).expect("test keys");
        let jwks_file = dir.join("test-jwks.json");
        std::fs::write(&jwks_file, serde_json::to_vec(&ring.jwks().expect("jwks")).expect("json")).expect("write jwks");
        let issuer = auth_adapter::TokenIssuer {
            ring,
            issuer: "game-rewards".into(),
            audience: "game-rewards".into(),
            ttl: Duration::from_secs(3600),
        };
        Self { issuer, jwks_file }
    }

    pub fn customer(&self, customer: &str) -> String {
        self.issuer.issue(customer, auth_adapter::Role::Player).expect("token").0
    }

    pub fn admin(&self) -> String {
        self.issuer.issue("operator", auth_adapter::Role::Admin).expect("token").0
    }

    /// A token of one of our services (role `service`, `sub` = `svc-<name>`), as the
    /// auth service gives a service account.
    pub fn service(&self, name: &str) -> String {
        self.issuer.issue(&format!("svc-{name}"), auth_adapter::Role::Service).expect("token").0
    }

    /// A game server's token (role `game_server`).
    pub fn game_server(&self, name: &str) -> String {
        self.issuer.issue(&format!("svc-{name}"), auth_adapter::Role::GameServer).expect("token").0
    }

    pub fn issuer(&self) -> &auth_adapter::TokenIssuer {
        &self.issuer
    }
}

/// A channel whose every call carries a bearer token.
pub type Authed = tonic::service::interceptor::InterceptedService<Channel, Bearer>;

#[derive(Clone)]
pub struct Bearer(tonic::metadata::MetadataValue<tonic::metadata::Ascii>);

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        req.metadata_mut().insert("authorization", self.0.clone());
        Ok(req)
    }
}

/// `channel`, calling with `token`.
///
/// # Panics
/// When the token is not a valid header value.
pub fn with_token(channel: Channel, token: &str) -> Authed {
    let value = format!("Bearer {token}").parse().expect("header value");
    tonic::service::interceptor::InterceptedService::new(channel, Bearer(value))
}

/// The whole system's services on one private NATS, each on its own database.
pub struct System {
    /// Kept so the PostgreSQL databases live as long as the system.
    pub databases: Vec<TestDatabase>,
    /// The database URL each service was started with.
    pub database_urls: HashMap<&'static str, String>,
    pub tokens: Tokens,
    pub dir: tempfile::TempDir,
    pub nats: NatsServer,
    pub mission: Service,
    pub reward: Service,
    pub wallet: Service,
    pub mypage: Service,
    pub gift: Service,
    pub notification: Service,
    /// Present when [`Options::gift_proxy`] was asked for.
    pub gift_proxy: Option<SlowProxy>,
    /// Always there: the wallet's service token comes from it.
    pub auth: Service,
    /// Present when [`Options::gateway`] was asked for.
    pub gateway: Option<Service>,
    /// What the auth service and the wallet were given: the first admin's password, the
    /// wallet's service account.
    pub secrets: Secrets,
}

/// The files a system's auth service and wallet are started with (each 0600), as
/// `gamectl up` writes them.
pub struct Secrets {
    pub admin_password_file: PathBuf,
    pub admin_password: String,
    /// The wallet's service account secret (`SERVICE_CLIENT_SECRET_FILE`).
    pub wallet_secret_file: PathBuf,
    /// `SERVICE_ACCOUNTS_FILE`: the wallet's client id, role and secret hash.
    pub service_accounts_file: PathBuf,
}

/// The wallet's service account in tests.
pub const WALLET_CLIENT_ID: &str = "svc-wallet";

impl Secrets {
    /// # Panics
    /// When the files cannot be written.
    pub fn write(dir: &Path) -> Self {
        use auth_adapter::secret;
        let admin_password = secret::generate().expect("random");
        let admin_password_file = dir.join("admin.password");
        secret::write_private(&admin_password_file, format!("{admin_password}\n").as_bytes()).expect("admin.password");
        let wallet_secret = secret::generate().expect("random");
        let wallet_secret_file = dir.join("wallet.secret");
        secret::write_private(&wallet_secret_file, wallet_secret.as_bytes()).expect("wallet.secret");
        // Cheap hashing: the hash carries its own cost, the auth service verifies it as is.
        let hash = secret::hash(&wallet_secret, secret::Cost { memory_kib: 4096, iterations: 1 }).expect("hash");
        let file = secret::ServiceAccountsFile {
            service_accounts: vec![secret::ProvisionedAccount {
                client_id: WALLET_CLIENT_ID.into(),
                role: "service".into(),
                secret_hash: hash,
            }],
        };
        let service_accounts_file = dir.join("service-accounts.json");
        secret::write_private(&service_accounts_file, &serde_json::to_vec(&file).expect("json")).expect("accounts");
        Self { admin_password_file, admin_password, wallet_secret_file, service_accounts_file }
    }
}

pub const NOTIFICATION: &str = "game.notification.v1.NotificationService";
pub const AUTH: &str = "game.auth.v1.AuthService";
pub const GATEWAY: &str = "game.gateway.v1.Gateway";
/// The first admin the auth service creates at start (`ADMIN_ID`).
pub const ADMIN: &str = "admin";
/// The game server of the economy's tests, by its service account's name.
pub const GAME_SERVER: &str = "studio-1";
/// The subject of its tokens (`Tokens::game_server(GAME_SERVER)`): what missions it
/// reports record as `reported_by`.
pub const GAME_SERVER_SUBJECT: &str = "svc-studio-1";

impl System {
    pub async fn start() -> Self {
        Self::start_with(Options::default()).await
    }

    pub async fn start_with(options: Options) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let nats = NatsServer::start_secured();
        let mut databases = Vec::new();
        let mut database_urls = HashMap::new();
        let mut db_for = |svc: &'static str| {
            let url = if options.postgres {
                let db = TestDatabase::postgres();
                let url = db.url.clone();
                databases.push(db);
                url
            } else {
                format!("sqlite://{}", dir.path().join(format!("{svc}.db")).display())
            };
            database_urls.insert(svc, url.clone());
            url
        };
        let [m, r, w, g] = match options.databases {
            Some(given) => given,
            None => [db_for("mission"), db_for("reward"), db_for("wallet"), db_for("gift")],
        };
        let (auth_db, notification_db) = (db_for("auth"), db_for("notification"));
        let tokens = Tokens::new(dir.path());
        let secrets = Secrets::write(dir.path());
        let auth = Service::start("auth", "auth", &auth_env(&auth_db, dir.path(), &secrets), dir.path());
        let jwks = tokens.jwks_file.display().to_string();
        let base = |role: &str, extra: Vec<(&'static str, String)>| {
            let mut env = nats.service_env(role);
            env.push(("JWKS_FILES", jwks.clone()));
            env.extend(verifier_env(&auth));
            env.extend(options.service_env.iter().cloned());
            env.extend(extra);
            env
        };
        let mut gift_env = base("gift", vec![("DATABASE_URL", g)]);
        gift_env.extend(options.gift_env);
        let gift = Service::start("gift", "gift", &gift_env, dir.path());
        let gift_proxy = options.gift_proxy.then(|| SlowProxy::start(gift.addr));
        let gift_url = gift_proxy.as_ref().map_or_else(|| gift.url(), |p| format!("http://{}", p.addr));
        let mut mission_env = base("mission", vec![("DATABASE_URL", m)]);
        mission_env.extend(options.mission_env);
        let mission = Service::start("mission", "mission", &mission_env, dir.path());
        let reward = Service::start("reward", "reward", &base("reward", vec![("DATABASE_URL", r)]), dir.path());
        let mut wallet_env = base("wallet", vec![("DATABASE_URL", w), ("GIFT_URL", gift_url)]);
        wallet_env.extend(wallet_account_env(&auth, &secrets));
        wallet_env.extend(options.wallet_env);
        let wallet = Service::start("wallet", "wallet", &wallet_env, dir.path());
        let mypage = Service::start("mypage", "mypage", &base("mypage", vec![]), dir.path());
        let notification = Service::start(
            "notification",
            "notification",
            &base(
                "notification",
                vec![
                    ("DATABASE_URL", notification_db),
                    ("MAILBOX_DIR", dir.path().join("mailbox").display().to_string()),
                ],
            ),
            dir.path(),
        );
        let gateway = options.gateway.then(|| {
            let mut env = base(
                "gateway",
                vec![
                    ("MISSION_URL", mission.url()),
                    ("REWARD_URL", reward.url()),
                    ("WALLET_URL", wallet.url()),
                    ("MYPAGE_URL", mypage.url()),
                    ("GIFT_URL", gift.url()),
                    ("NOTIFICATION_URL", notification.url()),
                    ("AUTH_URL", auth.url()),
                ],
            );
            env.extend(options.gateway_env);
            Service::start("gateway", "gateway", &env, dir.path())
        });
        gift.wait_serving(GIFT).await;
        mission.wait_serving(MISSION).await;
        reward.wait_serving(REWARD).await;
        wallet.wait_serving(WALLET).await;
        mypage.wait_serving(MYPAGE).await;
        notification.wait_serving(NOTIFICATION).await;
        auth.wait_serving(AUTH).await;
        if let Some(g) = &gateway {
            g.wait_serving(GATEWAY).await;
        }
        Self {
            databases,
            database_urls,
            tokens,
            dir,
            nats,
            mission,
            reward,
            wallet,
            mypage,
            gift,
            notification,
            gift_proxy,
            auth,
            gateway,
            secrets,
        }
    }

    /// The gateway (panics when the system was started without it).
    pub fn gateway(&self) -> &Service {
        self.gateway.as_ref().expect("started with Options { gateway: true }")
    }

    pub fn mailbox(&self) -> PathBuf {
        self.dir.path().join("mailbox")
    }

    /// What one more process of `role` (e.g. a second replica) is started with: NATS and
    /// its credentials, `db`, the keys and revocations to verify tokens with, and (read by
    /// the wallet only) its service account.
    pub fn env(&self, role: &str, db: &str) -> Vec<(&'static str, String)> {
        let mut env = self.nats.service_env(role);
        env.extend([("DATABASE_URL", db.to_owned()), ("JWKS_FILES", self.tokens.jwks_file.display().to_string())]);
        env.extend(verifier_env(&self.auth));
        env.extend(wallet_account_env(&self.auth, &self.secrets));
        env
    }

    /// A token of the first admin, from the auth service (logged in with the password
    /// it was started with).
    ///
    /// # Panics
    /// When the auth service refuses.
    pub async fn admin_token(&self) -> String {
        use grpc_adapter::pb::auth::v1 as auth;
        auth::auth_service_client::AuthServiceClient::new(self.auth.channel())
            .issue_token(auth::IssueTokenRequest {
                customer_id: ADMIN.into(),
                password: self.secrets.admin_password.clone(),
            })
            .await
            .expect("the first admin logs in")
            .into_inner()
            .access_token
    }

    /// A channel to `service` acting as `customer`.
    pub fn as_customer(&self, service: &Service, customer: &str) -> Authed {
        with_token(service.channel(), &self.tokens.customer(customer))
    }

    /// A channel to `service` acting as an admin.
    pub fn as_admin(&self, service: &Service) -> Authed {
        with_token(service.channel(), &self.tokens.admin())
    }

    /// A channel to `service` acting as the trusted game server, which reports missions
    /// for any customer.
    pub fn as_game_server(&self, service: &Service) -> Authed {
        with_token(service.channel(), &self.tokens.game_server(GAME_SERVER))
    }

    pub fn sqlite(&self, name: &str) -> String {
        format!("sqlite://{}", self.dir.path().join(format!("{name}.db")).display())
    }

    /// How many events on `subject` the stream holds.
    pub async fn count_events(&self, stream: &str, subject: &str) -> u64 {
        count_events(&self.nats.operator().await, stream, subject).await
    }

    /// What nats-server refused the services (its `Publish Violation` / `Subscription
    /// Violation` log lines): none while the system does its work, or some permission it
    /// needs is missing (the services see only timeouts).
    pub fn bus_violations(&self) -> Vec<String> {
        self.nats.log().lines().filter(|l| l.contains("Violation")).map(str::to_owned).collect()
    }

    /// JetStream as the operator, who may publish and read anything (test events).
    pub async fn operator_js(&self) -> async_nats::jetstream::Context {
        async_nats::jetstream::new(self.nats.operator().await)
    }
}

/// The auth service's settings in tests: cheap hashing, the first admin, the wallet's
/// service account, and the loopback as the trusted proxy (the gateway, and tests acting
/// as one to pick the client address a login comes from).
pub fn auth_env(db: &str, dir: &Path, secrets: &Secrets) -> Vec<(&'static str, String)> {
    vec![
        ("DATABASE_URL", db.to_owned()),
        ("AUTH_KEYS_DIR", dir.join("keys").display().to_string()),
        ("ADMIN_ID", ADMIN.to_owned()),
        ("ADMIN_PASSWORD_FILE", secrets.admin_password_file.display().to_string()),
        ("SERVICE_ACCOUNTS_FILE", secrets.service_accounts_file.display().to_string()),
        ("TRUSTED_PROXIES", "127.0.0.1".to_owned()),
        ("ARGON2_MEMORY_KIB", "4096".to_owned()),
        ("ARGON2_ITERATIONS", "1".to_owned()),
    ]
}

/// Where every service gets the auth service's keys and revocations.
pub fn verifier_env(auth: &Service) -> Vec<(&'static str, String)> {
    vec![
        ("JWKS_URLS", format!("http://{}/.well-known/jwks.json", auth.addr)),
        ("REVOCATION_URLS", format!("http://{}/revocations", auth.addr)),
    ]
}

/// The wallet's service account (other services ignore these settings).
pub fn wallet_account_env(auth: &Service, secrets: &Secrets) -> Vec<(&'static str, String)> {
    vec![
        ("SERVICE_CLIENT_ID", WALLET_CLIENT_ID.to_owned()),
        ("SERVICE_CLIENT_SECRET_FILE", secrets.wallet_secret_file.display().to_string()),
        ("AUTH_URL", auth.url()),
    ]
}

/// How many events on `subject` a stream holds (an ephemeral consumer's pending count),
/// asked by `client` (one that may read it: the operator).
///
/// # Panics
/// When NATS or the stream cannot be reached.
pub async fn count_events(client: &async_nats::Client, stream: &str, subject: &str) -> u64 {
    use async_nats::jetstream::consumer::{AckPolicy, pull};
    let js = async_nats::jetstream::new(client.clone());
    let stream = js.get_stream(stream).await.expect("stream");
    let mut consumer = stream
        .create_consumer(pull::Config {
            filter_subject: subject.to_owned(),
            ack_policy: AckPolicy::None,
            ..Default::default()
        })
        .await
        .expect("consumer");
    consumer.info().await.expect("consumer info").num_pending
}

/// A TCP proxy that holds every chunk from the client for `delay` before passing it on:
/// a slow network or a slow server, as the client sees it.
pub struct SlowProxy {
    pub addr: SocketAddr,
    delay_ms: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// `true`: every connection is cut and new ones are refused (an outage).
    down: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl SlowProxy {
    pub fn start(upstream: SocketAddr) -> Self {
        use std::sync::atomic::Ordering;
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        std_listener.set_nonblocking(true).expect("nonblocking");
        let addr = std_listener.local_addr().expect("addr");
        let delay_ms = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let delay = delay_ms.clone();
        let (down, down_rx) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(async move {
            let listener = tokio::net::TcpListener::from_std(std_listener).expect("listener");
            while let Ok((mut client, _)) = listener.accept().await {
                let delay = delay.clone();
                let mut down = down_rx.clone();
                if *down.borrow() {
                    continue; // refused: the socket is dropped at once
                }
                tokio::spawn(async move {
                    use tokio::io::{AsyncReadExt, AsyncWriteExt};
                    let Ok(server) = tokio::net::TcpStream::connect(upstream).await else { return };
                    let (mut cr, mut cw) = client.split();
                    let (mut sr, mut sw) = server.into_split();
                    let up = async {
                        let mut buf = vec![0u8; 64 * 1024];
                        loop {
                            let n = match cr.read(&mut buf).await {
                                Ok(0) | Err(_) => break,
                                Ok(n) => n,
                            };
                            let ms = delay.load(Ordering::Relaxed);
                            if ms > 0 {
                                tokio::time::sleep(Duration::from_millis(ms)).await;
                            }
                            if sw.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                        let _ = sw.shutdown().await;
                    };
                    let back = tokio::io::copy(&mut sr, &mut cw);
                    let cut = async {
                        while !*down.borrow_and_update() {
                            if down.changed().await.is_err() {
                                std::future::pending::<()>().await;
                            }
                        }
                    };
                    tokio::select! {
                        _ = async { tokio::join!(up, back) } => {}
                        () = cut => {}
                    }
                });
            }
        });
        Self { addr, delay_ms, down, task }
    }

    /// Cuts every connection and refuses new ones (`true`), or lets them through again.
    pub fn set_down(&self, down: bool) {
        let _ = self.down.send(down);
    }

    pub fn set_delay(&self, delay: Duration) {
        self.delay_ms.store(u64::try_from(delay.as_millis()).unwrap_or(u64::MAX), std::sync::atomic::Ordering::Relaxed);
    }
}

impl Drop for SlowProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Generated clients, re-exported for the tests.
/// A long history seeded straight into my page.
pub mod seed;

pub mod clients {
    pub use grpc_adapter::pb::auth::v1::auth_service_client::AuthServiceClient;
    pub use grpc_adapter::pb::gift::v1::gift_issuing_service_client::GiftIssuingServiceClient;
    pub use grpc_adapter::pb::gift::v1::gift_service_client::GiftServiceClient;
    pub use grpc_adapter::pb::mission::v1::mission_service_client::MissionServiceClient;
    pub use grpc_adapter::pb::mypage::v1::my_page_service_client::MyPageServiceClient;
    pub use grpc_adapter::pb::reward::v1::reward_service_client::RewardServiceClient;
    pub use grpc_adapter::pb::wallet::v1::wallet_service_client::WalletServiceClient;
}

/// Events made by hand, as a test (or an attacker) would put them on the bus.
pub mod events {
    use grpc_adapter::pb::events::v1 as ev;
    use prost::Message;

    /// The envelope headers of an event: `msg_id` is JetStream's de-duplication id.
    pub fn headers(
        event_type: &str,
        event_id: &str,
        msg_id: &str,
        customer: &str,
        correlation: &str,
    ) -> async_nats::HeaderMap {
        let mut h = async_nats::HeaderMap::new();
        h.insert("Nats-Msg-Id", msg_id);
        h.insert("Game-Event-Id", event_id);
        h.insert("Game-Event-Type", event_type);
        h.insert("Game-Correlation-Id", correlation);
        h.insert("Game-Causation-Id", "test");
        h.insert("Game-Customer-Id", customer);
        h.insert("Game-Occurred-At", "2026-11-25T12:00:00Z");
        h
    }

    /// A `RewardAllocated` no mission earned: `points` for `customer`, new ids.
    pub fn reward_allocated(customer: &str, points: i64) -> (async_nats::HeaderMap, bytes::Bytes) {
        let (reward_id, mission_id) = (uuid::Uuid::now_v7().to_string(), uuid::Uuid::now_v7().to_string());
        let body = ev::RewardAllocated {
            reward_id: reward_id.clone(),
            mission_id: mission_id.clone(),
            customer_id: customer.into(),
            points,
            mission_code: "daily-login".into(),
        };
        let event_id = uuid::Uuid::now_v7().to_string();
        let h = headers("game.events.v1.RewardAllocated", &event_id, &event_id, customer, &mission_id);
        (h, body.encode_to_vec().into())
    }
}

/// The calls tests make over and over, with the happy answer unwrapped.
pub mod api {
    use grpc_adapter::pb::mission::v1 as mission;
    use grpc_adapter::pb::mypage::v1 as mypage;
    use grpc_adapter::pb::reward::v1 as reward;
    use grpc_adapter::pb::wallet::v1 as wallet;

    use super::System;
    use super::clients::*;

    /// A player reports a mission for themselves (a `player` mission, within its rule).
    pub async fn achieve(sys: &System, customer: &str, code: &str, request_id: &str) -> mission::Mission {
        MissionServiceClient::new(sys.as_customer(&sys.mission, customer))
            .achieve_mission(mission::AchieveMissionRequest {
                customer_id: customer.into(),
                mission_code: code.into(),
                request_id: request_id.into(),
            })
            .await
            .expect("achieve")
            .into_inner()
            .mission
            .expect("mission")
    }

    /// The game server reports that a customer achieved a mission (any mission, within
    /// its rule; `match-played` as often as wanted).
    pub async fn report(sys: &System, customer: &str, code: &str, request_id: &str) -> mission::Mission {
        MissionServiceClient::new(sys.as_game_server(&sys.mission))
            .achieve_mission(mission::AchieveMissionRequest {
                customer_id: customer.into(),
                mission_code: code.into(),
                request_id: request_id.into(),
            })
            .await
            .unwrap_or_else(|s| panic!("report {code} for {customer}: {s:?}"))
            .into_inner()
            .mission
            .expect("mission")
    }

    pub async fn rewards(sys: &System, customer: &str) -> Vec<reward::Reward> {
        RewardServiceClient::new(sys.as_customer(&sys.reward, customer))
            .list_rewards(reward::ListRewardsRequest { customer_id: customer.into(), ..Default::default() })
            .await
            .expect("rewards")
            .into_inner()
            .rewards
    }

    pub async fn wallet_of(sys: &System, customer: &str) -> wallet::Wallet {
        WalletServiceClient::new(sys.as_customer(&sys.wallet, customer))
            .get_wallet(wallet::GetWalletRequest { customer_id: customer.into(), ..Default::default() })
            .await
            .expect("wallet")
            .into_inner()
            .wallet
            .expect("wallet")
    }

    pub async fn missions(sys: &System, customer: &str) -> Vec<mission::Mission> {
        MissionServiceClient::new(sys.as_customer(&sys.mission, customer))
            .list_missions(mission::ListMissionsRequest { customer_id: customer.into(), ..Default::default() })
            .await
            .expect("missions")
            .into_inner()
            .missions
    }

    pub async fn page(sys: &System, customer: &str) -> mypage::MyPage {
        MyPageServiceClient::new(sys.as_customer(&sys.mypage, customer))
            .get_my_page(mypage::GetMyPageRequest { customer_id: customer.into(), ..Default::default() })
            .await
            .expect("page")
            .into_inner()
            .page
            .expect("page")
    }

    /// The game server reports a mission and the test waits until its reward is ISSUED in
    /// the wallet; returns the wallet item.
    pub async fn issued_reward(sys: &System, customer: &str, code: &str) -> wallet::WalletItem {
        let m = report(sys, customer, code, "").await;
        super::eventually(std::time::Duration::from_secs(30), "the reward reaches the wallet", || async {
            wallet_of(sys, customer).await.items.into_iter().find(|i| i.mission_id == m.mission_id)
        })
        .await
    }
}

/// Calls made byte by byte, as a client that does not follow the rules would: any body
/// over gRPC (HTTP/2) or grpc-web (HTTP/1.1), and what status came back.
pub mod raw {
    use std::io::{Read, Write};
    use std::net::SocketAddr;
    use std::time::Duration;

    use bytes::Bytes;
    use http_body_util::BodyExt;
    use tonic::Code;

    /// A message in gRPC's frame: no compression, its length, the bytes.
    pub fn frame(message: &[u8]) -> Vec<u8> {
        let mut frame = vec![0u8];
        frame.extend_from_slice(&u32::try_from(message.len()).expect("small").to_be_bytes());
        frame.extend_from_slice(message);
        frame
    }

    /// The status a call ended with, and the data frames of the answer.
    #[derive(Debug, Clone)]
    pub struct Answer {
        pub code: Code,
        pub message: String,
        pub data: Vec<Vec<u8>>,
    }

    /// POSTs `body` (framed or not, as given) to `path` over HTTP/2, as gRPC; a plain
    /// HTTP/2 client, which enforces no deadline of its own.
    ///
    /// # Panics
    /// When the connection fails.
    pub async fn grpc(addr: SocketAddr, path: &str, token: Option<&str>, body: Vec<u8>) -> Answer {
        grpc_with(addr, path, token, body, &[]).await
    }

    /// [`grpc`] with extra headers.
    ///
    /// # Panics
    /// When the connection fails.
    pub async fn grpc_with(
        addr: SocketAddr,
        path: &str,
        token: Option<&str>,
        body: Vec<u8>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let client = client();
        let mut req = http::Request::builder()
            .method("POST")
            .uri(format!("http://{addr}{path}"))
            .header("content-type", "application/grpc")
            .header("te", "trailers");
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req.body(http_body_util::Full::new(Bytes::from(body))).expect("request");
        let response = client.request(req).await.expect("an HTTP answer");
        let (parts, body) = response.into_parts();
        if let Some(status) = tonic::Status::from_header_map(&parts.headers) {
            return Answer { code: status.code(), message: status.message().to_owned(), data: vec![] };
        }
        let collected = body.collect().await.expect("the answer's body");
        let trailers = collected.trailers().cloned().unwrap_or_default();
        let data = parse_frames(&collected.to_bytes()).0;
        let status = tonic::Status::from_header_map(&trailers).unwrap_or_else(|| tonic::Status::unknown("no status"));
        Answer { code: status.code(), message: status.message().to_owned(), data }
    }

    type Client = hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        http_body_util::Full<Bytes>,
    >;

    /// One HTTP/2 client per test process (it pools connections), Nagle's algorithm off:
    /// with it, each small call waits ~40 ms for the server's delayed ACK.
    fn client() -> &'static Client {
        static CLIENT: std::sync::OnceLock<Client> = std::sync::OnceLock::new();
        CLIENT.get_or_init(|| {
            let mut connector = hyper_util::client::legacy::connect::HttpConnector::new();
            connector.set_nodelay(true);
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .http2_only(true)
                .build(connector)
        })
    }

    /// Sends `method path` with `body` (already framed, or anything) over HTTP/1.1 as a
    /// browser's grpc-web call, or as a plain request when `content_type` is `None`.
    ///
    /// # Panics
    /// When the connection fails or the answer is not HTTP.
    pub fn grpc_web(
        addr: SocketAddr,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        token: Option<&str>,
        body: &[u8],
    ) -> (String, Answer) {
        let mut conn = std::net::TcpStream::connect(addr).expect("connect");
        conn.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nOrigin: http://localhost:3000\r\n");
        if let Some(ct) = content_type {
            head.push_str(&format!("Content-Type: {ct}\r\nX-Grpc-Web: 1\r\n"));
        }
        if let Some(t) = token {
            head.push_str(&format!("Authorization: Bearer {t}\r\n"));
        }
        head.push_str(&format!("Content-Length: {}\r\nConnection: close\r\n\r\n", body.len()));
        conn.write_all(head.as_bytes()).expect("write");
        conn.write_all(body).expect("write");
        let mut raw = Vec::new();
        let _ = conn.read_to_end(&mut raw);
        let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("an HTTP answer") + 4;
        let head = String::from_utf8_lossy(&raw[..split]).into_owned();
        let (data, trailers) = parse_frames(&raw[split..]);
        // A status is in the headers (an answer without messages) or in the trailer frame.
        let field = |name: &str| {
            head.lines().chain(trailers.lines()).find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
            })
        };
        let code = field("grpc-status").and_then(|c| c.parse::<i32>().ok()).map_or(Code::Unknown, Code::from_i32);
        let message = field("grpc-message").map(|m| percent_decode(&m)).unwrap_or_default();
        (head, Answer { code, message, data })
    }

    fn percent_decode(s: &str) -> String {
        let bytes = s.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%'
                && i + 2 < bytes.len()
                && let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16)
            {
                out.push(b);
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    /// The data frames and trailer text of a grpc-web body (chunked encoding undone crudely).
    pub fn parse_frames(body: &[u8]) -> (Vec<Vec<u8>>, String) {
        let (mut data, mut trailers, mut i) = (Vec::new(), String::new(), 0);
        while i + 5 <= body.len() {
            if body[i] != 0 && body[i] != 0x80 {
                i += 1; // chunk-size lines of a chunked body
                continue;
            }
            let len = u32::from_be_bytes([body[i + 1], body[i + 2], body[i + 3], body[i + 4]]) as usize;
            if i + 5 + len > body.len() {
                i += 1;
                continue;
            }
            let payload = body[i + 5..i + 5 + len].to_vec();
            if body[i] == 0x80 {
                trailers.push_str(&String::from_utf8_lossy(&payload));
            } else {
                data.push(payload);
            }
            i += 5 + len;
        }
        (data, trailers)
    }
}
