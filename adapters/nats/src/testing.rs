use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::access::{self, Credentials};

pub struct NatsServer {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
    credentials: Option<Credentials>,
    /// Set when this server is one node of a [`NatsCluster`].
    member: Option<Member>,
}

/// What a node of a cluster is started with beyond a lone server's flags.
#[derive(Debug, Clone)]
struct Member {
    /// Its server name (`n1`, `n2`, ...): what JetStream names leaders by.
    name: String,
    /// Where it accepts routes from the other nodes.
    cluster_port: u16,
    /// The other nodes' route ports.
    routes: Vec<u16>,
    /// Every node's client port (its own among them), in node order.
    clients: Vec<u16>,
    /// Its monitoring (HTTP) port: `/jsz` says who leads the meta group.
    http_port: u16,
}

/// Servers clustered on loopback, JetStream on each with its own store directory,
/// the same credentials and permissions on all of them (when secured). Clients get
/// every node's URL (`url()`), as the services' `NATS_URL`, and fail over between them.
pub struct NatsCluster {
    pub nodes: Vec<NatsServer>,
}

impl NatsCluster {
    /// `n` secured nodes, JetStream ready (a meta leader elected) when it returns.
    ///
    /// # Panics
    /// When nats-server is not installed or the cluster does not form within 30 s.
    pub fn start_secured(n: usize) -> Self {
        let clients: Vec<u16> = (0..n).map(|_| free_port()).collect();
        let cluster_ports: Vec<u16> = (0..n).map(|_| free_port()).collect();
        let http_ports: Vec<u16> = (0..n).map(|_| free_port()).collect();
        let first = tempfile::tempdir().expect("temp dir");
        let credentials = Credentials::ensure(&first.path().join("auth")).expect("NATS credentials");
        let mut first = Some(first);
        let mut nodes = Vec::new();
        for i in 0..n {
            let dir = first.take().unwrap_or_else(|| tempfile::tempdir().expect("temp dir"));
            let member = Member {
                name: format!("n{}", i + 1),
                cluster_port: cluster_ports[i],
                routes: cluster_ports.iter().enumerate().filter(|(j, _)| *j != i).map(|(_, p)| *p).collect(),
                clients: clients.clone(),
                http_port: http_ports[i],
            };
            let mut node = NatsServer {
                port: clients[i],
                dir,
                child: None,
                credentials: Some(credentials.clone()),
                member: Some(member),
            };
            node.resume();
            nodes.push(node);
        }
        let cluster = Self { nodes };
        let deadline = Instant::now() + Duration::from_secs(30);
        while cluster.meta_leader().is_none() {
            assert!(Instant::now() < deadline, "the JetStream cluster elected no meta leader in 30 s");
            std::thread::sleep(Duration::from_millis(100));
        }
        cluster
    }

    /// Every node's URL, separated by commas (a `NATS_URL`).
    pub fn url(&self) -> String {
        self.nodes[0].url()
    }

    /// The node named `name` (`n1`...), by its index.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.name() == Some(name))
    }

    /// The server name of the JetStream meta leader, as a running node reports it.
    pub fn meta_leader(&self) -> Option<String> {
        meta_leader(&self.nodes)
    }
}

/// The server name of the JetStream meta leader, as the first running node that
/// knows one reports it (its `/jsz`).
pub fn meta_leader<'a>(nodes: impl IntoIterator<Item = &'a NatsServer>) -> Option<String> {
    nodes.into_iter().filter(|n| n.is_running()).find_map(|n| {
        let jsz = n.monitor("/jsz")?;
        let v: serde_json::Value = serde_json::from_str(&jsz).ok()?;
        v["meta_cluster"]["leader"].as_str().filter(|s| !s.is_empty()).map(str::to_owned)
    })
}

/// A port free right now on loopback.
///
/// Taken below the kernel's ephemeral range: a port from there could be handed, once
/// freed, to any listener on port 0 or any outgoing connection (a test's metrics
/// endpoint, a client's socket) before the test binds it again (a replica restarted
/// on its slot). Below it, only another `free_port` could take it, and this walks a
/// sequence of its own per process.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const SPAN: u32 = 12_000;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u32>().ok())
        .filter(|low| *low > SPAN + 1024)
        .unwrap_or(32_768);
    let low = ephemeral_low - SPAN;
    let start = std::process::id().wrapping_mul(7_919) % SPAN;
    for _ in 0..SPAN {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = u16::try_from(low + (start + n.wrapping_mul(13)) % SPAN).expect("a port");
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}

/// The nats-server every test starts (`NATS_SERVER_BIN`, else the PATH's), checked once
/// per test process: one older than the supported minimum fails the test, naming its
/// version and how to get the pinned release (see [`crate::server_version`]).
fn binary() -> PathBuf {
    static CHECKED: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    CHECKED
        .get_or_init(|| {
            let binary = crate::server_version::binary();
            match crate::server_version::check(&binary) {
                Ok(found) => found.path,
                Err(refused) => panic!("{refused}"),
            }
        })
        .clone()
}

impl NatsServer {
    /// A server anyone may use, as a developer's plain nats-server.
    ///
    /// # Panics
    /// When nats-server is not installed or does not come up.
    pub fn start() -> Self {
        Self::launch(false)
    }

    /// A server that refuses anonymous clients and holds every role to its
    /// permissions; the operator user may do anything.
    ///
    /// # Panics
    /// When nats-server is not installed or does not come up.
    pub fn start_secured() -> Self {
        Self::launch(true)
    }

    fn launch(secured: bool) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let credentials = secured.then(|| Credentials::ensure(&dir.path().join("auth")).expect("NATS credentials"));
        let mut s = Self { port: free_port(), dir, child: None, credentials, member: None };
        // A port free when chosen can be taken by another process before the server
        // binds it: the server then exits, and a fresh start may take another port.
        for _ in 0..4 {
            match s.spawn() {
                Ok(()) => return s,
                Err(why) => {
                    eprintln!("nats-server on port {}: {why}; trying another port", s.port);
                    s.port = free_port();
                }
            }
        }
        s.resume();
        s
    }

    /// The server name it is started with: what its INFO line must carry, so that a
    /// listener of another process on the same port is not taken for it.
    fn server_name(&self) -> String {
        match &self.member {
            Some(m) => m.name.clone(),
            None => format!("test-{}-{}", std::process::id(), self.port),
        }
    }

    /// Its URL; a cluster node's is every node's URL, separated by commas.
    pub fn url(&self) -> String {
        match &self.member {
            None => format!("nats://127.0.0.1:{}", self.port),
            Some(m) => m.clients.iter().map(|p| format!("nats://127.0.0.1:{p}")).collect::<Vec<_>>().join(","),
        }
    }

    /// Its own URL alone (the node, not its cluster).
    pub fn node_url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Its server name, when it is a cluster node.
    pub fn name(&self) -> Option<&str> {
        self.member.as_ref().map(|m| m.name.as_str())
    }

    /// Whether its process runs (stopped or not).
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// The process id, for signals (SIGSTOP / SIGCONT).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// A page of its monitoring endpoint (cluster nodes only), e.g. `/jsz`.
    pub fn monitor(&self, path: &str) -> Option<String> {
        use std::io::{Read, Write};
        let port = self.member.as_ref()?.http_port;
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
        let mut out = String::new();
        s.read_to_string(&mut out).ok()?;
        out.split_once("\r\n\r\n").map(|(_, body)| body.to_owned())
    }

    /// Keeps its store directory (and its log) after it is dropped, to read after a failure.
    pub fn keep_files(&mut self) {
        self.dir.disable_cleanup(true);
    }

    pub fn store_dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    /// The credentials, when secured.
    pub fn credentials(&self) -> Option<&Credentials> {
        self.credentials.as_ref()
    }

    /// The environment a service of `role` needs to reach this server: `NATS_URL`,
    /// and its `NATS_NKEY_SEED_FILE` when the server is secured.
    pub fn service_env(&self, role: &str) -> Vec<(&'static str, String)> {
        let mut env = vec![("NATS_URL", self.url())];
        if let Some(c) = &self.credentials
            && crate::roles::find(role).is_some()
        {
            env.push(("NATS_NKEY_SEED_FILE", c.seed_file(role).display().to_string()));
        }
        if let Some(m) = &self.member {
            env.push(("STREAM_REPLICAS", m.clients.len().min(3).to_string()));
        }
        env
    }

    /// What the server wrote to its log (permission violations among it).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("nats-server.log")).unwrap_or_default()
    }

    /// A client acting as `user` (a role, or [`access::OPERATOR`]; anonymous when
    /// the server is not secured), and the errors the server sends it.
    ///
    /// # Errors
    /// When the server refuses the connection.
    pub async fn connect_as(&self, user: &str) -> Result<(async_nats::Client, ServerErrors), String> {
        let seed = self.credentials.as_ref().map(|c| c.seed_file(user));
        connect_as(&self.url(), user, seed.as_deref()).await
    }

    /// A client that may do anything: the operator (anonymous on an open server).
    ///
    /// # Panics
    /// When the server refuses it.
    pub async fn operator(&self) -> async_nats::Client {
        self.connect_as(access::OPERATOR).await.expect("operator connects").0
    }

    /// Starts the server again (same port, same JetStream data, same credentials).
    ///
    /// # Panics
    /// When it does not come up within 10 s.
    pub fn resume(&mut self) {
        if let Err(why) = self.spawn() {
            panic!("nats-server on port {}: {why}\n{}", self.port, self.log());
        }
    }

    /// Starts the process and waits until it, not another process on its port,
    /// answers there.
    fn spawn(&mut self) -> Result<(), NotStarted> {
        assert!(self.child.is_none(), "already running");
        let name = self.server_name();
        let mut command = Command::new(binary());
        command.args(["-a", "127.0.0.1", "-p", &self.port.to_string(), "-js", "-n", &name, "-sd"]).arg(self.dir.path());
        command.arg("-l").arg(self.dir.path().join("nats-server.log"));
        if let Some(c) = &self.credentials {
            command.args(c.server_flags());
        }
        if let Some(m) = &self.member {
            let routes: Vec<String> = m.routes.iter().map(|p| format!("nats://127.0.0.1:{p}")).collect();
            command
                .args(["--cluster_name", "game", "-m", &m.http_port.to_string()])
                .args(["--cluster", &format!("nats://127.0.0.1:{}", m.cluster_port)])
                .args(["--routes", &routes.join(",")]);
        }
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server must be installed (apt-get install nats-server)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                self.child = None;
                return Err(NotStarted::Exited(status));
            }
            if server_name_at(self.port).as_deref() == Some(name.as_str()) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                self.stop();
                return Err(NotStarted::Silent);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends `signal` (`-STOP`, `-CONT`...) to the process.
    ///
    /// # Panics
    /// When it is not running or `kill` fails.
    pub fn signal(&self, signal: &str) {
        let pid = self.pid().expect("nats-server is running").to_string();
        let sent = Command::new("kill").args([signal, &pid]).status().map(|s| s.success());
        assert!(matches!(sent, Ok(true)), "kill {signal} nats-server {pid}");
    }

    /// Stops the server (SIGKILL: the harshest outage).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The `server_name` in the INFO line of whatever listens on `port`, if anything does.
fn server_name_at(port: u16) -> Option<String> {
    use std::io::{BufRead, BufReader};
    let stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).ok()?;
    let info: serde_json::Value = serde_json::from_str(line.strip_prefix("INFO ")?.trim()).ok()?;
    info["server_name"].as_str().map(str::to_owned)
}

/// Why a server started by the harness is not the one answering on its port.
#[derive(Debug, thiserror::Error)]
enum NotStarted {
    /// It exited: its port was taken meanwhile, most often (another port may do).
    #[error("it exited ({0})")]
    Exited(std::process::ExitStatus),
    #[error("it did not answer within 10 s")]
    Silent,
}

/// What a server reports to a client: permission violations, mostly.
pub type ServerErrors = tokio::sync::mpsc::UnboundedReceiver<async_nats::ServerError>;

/// A client acting as `user` with the seed in `seed_file` (anonymous without one),
/// under the role's own inbox prefix as a service would be, and the errors the
/// server sends it: to try, as an attacker holding some credentials would, what the
/// server lets them do.
///
/// # Errors
/// When the seed cannot be read or the server refuses the connection.
pub async fn connect_as(
    url: &str,
    user: &str,
    seed_file: Option<&Path>,
) -> Result<(async_nats::Client, ServerErrors), String> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let mut options = async_nats::ConnectOptions::new().event_callback(move |event| {
        let tx = tx.clone();
        async move {
            if let async_nats::Event::ServerError(e) = event {
                let _ = tx.send(e);
            }
        }
    });
    if let Some(path) = seed_file {
        let seed = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        options = options.nkey(seed.trim().to_owned());
    }
    if user != access::OPERATOR {
        options = options.custom_inbox_prefix(crate::roles::inbox_prefix(user));
    }
    let client = options.connect(crate::server_list(url).as_slice()).await.map_err(|e| e.to_string())?;
    Ok((client, rx))
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
    }
}
