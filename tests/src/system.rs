//! The whole system started for a test ([`System`], with [`Options`]), the secrets and
//! settings its services get, and counting the events of a stream.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::*;

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
    /// The mission service refuses a game server's report for an id nobody registered at
    /// the auth service (`CUSTOMERS_URL`, as `gamectl up` and k8s set it); otherwise the
    /// tests' game server reports for ids of its own making.
    pub registered_customers: bool,
    /// Extra settings for the gift service (e.g. `GIFT_CATALOG`).
    pub gift_env: Vec<(&'static str, String)>,
    /// Extra settings for the auth service (e.g. `TOKEN_TTL_SECONDS`).
    pub auth_env: Vec<(&'static str, String)>,
    /// Run on a JetStream cluster of this many nodes (streams with min(n, 3) replicas)
    /// instead of one server; 0 or 1: one server.
    pub nats_cluster: usize,
}

/// The whole system's services on one private NATS, each on its own database.
pub struct System {
    /// Kept so the PostgreSQL databases live as long as the system.
    pub databases: Vec<TestDatabase>,
    /// The database URL each service was started with.
    pub database_urls: HashMap<&'static str, String>,
    pub tokens: Tokens,
    pub dir: tempfile::TempDir,
    /// The server; on a cluster, its first node (whose `url()` names every node).
    pub nats: NatsServer,
    /// The other nodes of the cluster ([`Options::nats_cluster`]).
    pub nats_peers: Vec<NatsServer>,
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
    /// `SERVICE_ACCOUNTS_FILE`: the wallet's and the gateway's client ids, roles and
    /// secret hashes.
    pub service_accounts_file: PathBuf,
    /// The gateway's service account secret: its token vouches to the auth service for
    /// the client addresses it passes on.
    pub gateway_secret_file: PathBuf,
    pub gateway_secret: String,
    /// `REVOCATION_KEY_FILE`: the key revoked subjects are published sealed with, for the
    /// auth service and every verifier.
    pub revocation_key_file: PathBuf,
}

/// The wallet's service account in tests.
pub const WALLET_CLIENT_ID: &str = "svc-wallet";
/// The gateway's service account (auth's default `TRUSTED_FORWARDERS`).
pub const GATEWAY_CLIENT_ID: &str = "svc-gateway";

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
        let gateway_secret = secret::generate().expect("random");
        let gateway_secret_file = dir.join("gateway.secret");
        secret::write_private(&gateway_secret_file, gateway_secret.as_bytes()).expect("gateway.secret");
        // Cheap hashing: the hash carries its own cost, the auth service verifies it as is.
        let account = |client_id: &str, secret: &str| secret::ProvisionedAccount {
            client_id: client_id.into(),
            role: "service".into(),
            secret_hash: secret::hash(secret, secret::Cost { memory_kib: 4096, iterations: 1 }).expect("hash"),
        };
        let file = secret::ServiceAccountsFile {
            service_accounts: vec![
                account(WALLET_CLIENT_ID, &wallet_secret),
                account(GATEWAY_CLIENT_ID, &gateway_secret),
            ],
        };
        let service_accounts_file = dir.join("service-accounts.json");
        secret::write_private(&service_accounts_file, &serde_json::to_vec(&file).expect("json")).expect("accounts");
        let revocation_key_file = dir.join("revocation.key");
        let key = secret::generate().expect("random");
        secret::write_private(&revocation_key_file, format!("{key}\n").as_bytes()).expect("revocation.key");
        Self {
            admin_password_file,
            admin_password,
            wallet_secret_file,
            service_accounts_file,
            gateway_secret_file,
            gateway_secret,
            revocation_key_file,
        }
    }
}

impl System {
    pub async fn start() -> Self {
        Self::start_with(Options::default()).await
    }

    pub async fn start_with(options: Options) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let (nats, nats_peers) = if options.nats_cluster > 1 {
            let mut nodes = NatsCluster::start_secured(options.nats_cluster).nodes;
            let first = nodes.remove(0);
            (first, nodes)
        } else {
            (NatsServer::start_secured(), Vec::new())
        };
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
        let mut auth_settings = auth_env(&auth_db, dir.path(), &secrets);
        auth_settings.extend(options.auth_env);
        let auth = Service::start("auth", "auth", &auth_settings, dir.path());
        let jwks = tokens.jwks_file.display().to_string();
        let base = |role: &str, extra: Vec<(&'static str, String)>| {
            let mut env = nats.service_env(role);
            env.push(("JWKS_FILES", jwks.clone()));
            env.extend(verifier_env(&auth, &secrets));
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
        if options.registered_customers {
            mission_env.push(("CUSTOMERS_URL", customers_url(&auth)));
        }
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
                    ("SERVICE_CLIENT_ID", GATEWAY_CLIENT_ID.to_owned()),
                    ("SERVICE_CLIENT_SECRET_FILE", secrets.gateway_secret_file.display().to_string()),
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
            nats_peers,
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

    /// Every NATS node: the server, or the cluster's nodes in order.
    pub fn nats_nodes(&self) -> Vec<&NatsServer> {
        std::iter::once(&self.nats).chain(&self.nats_peers).collect()
    }

    /// The NATS node named `name` (`n1`, `n2`... on a cluster).
    ///
    /// # Panics
    /// When there is none.
    pub fn nats_node(&mut self, name: &str) -> &mut NatsServer {
        std::iter::once(&mut self.nats)
            .chain(&mut self.nats_peers)
            .find(|n| n.name() == Some(name))
            .unwrap_or_else(|| panic!("no NATS node {name}"))
    }

    /// The JetStream meta leader's name, as a running node reports it (cluster only).
    pub fn meta_leader(&self) -> Option<String> {
        nats_adapter::testing::meta_leader(self.nats_nodes())
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
        env.extend(verifier_env(&self.auth, &self.secrets));
        env.extend(wallet_account_env(&self.auth, &self.secrets));
        env
    }

    /// A token of the first admin, from the auth service (logged in with the password
    /// it was started with).
    ///
    /// # Panics
    /// When the auth service refuses.
    pub async fn admin_token(&self) -> String {
        use contracts::pb::auth::v1 as auth;
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

    /// A token of the gateway's service account, from the auth service: with it in
    /// `x-forwarder-token`, a test acts as the gateway passing on a client's address.
    ///
    /// # Panics
    /// When the auth service refuses.
    pub async fn forwarder_token(&self) -> String {
        use contracts::pb::auth::v1 as auth;
        auth::auth_service_client::AuthServiceClient::new(self.auth.channel())
            .issue_service_token(auth::IssueServiceTokenRequest {
                client_id: GATEWAY_CLIENT_ID.into(),
                client_secret: self.secrets.gateway_secret.clone(),
            })
            .await
            .expect("the gateway's account logs in")
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

/// The auth service's settings in tests: cheap hashing, the first admin, the wallet's and
/// the gateway's service accounts (the gateway's token vouches for the client addresses
/// it passes on: [`System::forwarder_token`]).
pub fn auth_env(db: &str, dir: &Path, secrets: &Secrets) -> Vec<(&'static str, String)> {
    vec![
        ("DATABASE_URL", db.to_owned()),
        ("AUTH_KEYS_DIR", dir.join("keys").display().to_string()),
        ("ADMIN_ID", ADMIN.to_owned()),
        ("ADMIN_PASSWORD_FILE", secrets.admin_password_file.display().to_string()),
        ("SERVICE_ACCOUNTS_FILE", secrets.service_accounts_file.display().to_string()),
        ("REVOCATION_KEY_FILE", secrets.revocation_key_file.display().to_string()),
        ("ARGON2_MEMORY_KIB", "4096".to_owned()),
        ("ARGON2_ITERATIONS", "1".to_owned()),
    ]
}

/// Where every service gets the auth service's keys and revocations, and the key the
/// revocations are sealed with.
pub fn verifier_env(auth: &Service, secrets: &Secrets) -> Vec<(&'static str, String)> {
    vec![
        ("JWKS_URLS", format!("http://{}/.well-known/jwks.json", auth.addr)),
        ("REVOCATION_URLS", format!("http://{}/revocations", auth.addr)),
        ("REVOCATION_KEY_FILE", secrets.revocation_key_file.display().to_string()),
    ]
}

/// Where the auth service says whether a customer is registered.
pub fn customers_url(auth: &Service) -> String {
    format!("http://{}/customers", auth.addr)
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
