//! `gamectl up`: the whole system on one machine. Starts nats-server (unless given one)
//! and every role as a child process running this executable (`gamectl serve <role>`),
//! stage by stage (the role table's stages: auth first, since every service fetches its
//! keys; the wallet after gift, which it calls; the gateway last, on the base port; see
//! [`services::SERVICES`]), each stage once the previous one reports SERVING; or, with
//! `--all-in-one`, every role in one child (`gamectl serve --roles all`, each role's
//! settings prefixed `<ROLE>__`). Then it writes `<data-dir>/endpoints.json`, restarts
//! children that die, and on Ctrl-C or SIGTERM stops the services first, then nats-server.
//!
//! Before anything starts, it makes the secrets the auth service and the wallet need
//! (the first admin's password, the wallet's service account; see [`crate::secrets`]),
//! and reads the system's id from the data dir (made on its first start), which names its
//! databases under `--database postgres`; `--reset` first drops what the system kept
//! (see [`databases`]).
//!
//! Lines on stdout are meant to be read by people and tests alike: the address table,
//! where the first admin's password is, `ready: all services SERVING`, `<name> exited (...); restarting`, `stopping`,
//! `stopped`. Children's own output goes to stderr, each line prefixed `[<name>] `.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{ExitCode, ExitStatus, Stdio};
use std::time::Duration;

use nats_adapter::access::Credentials;
use tokio::io::{AsyncBufReadExt as _, AsyncRead, BufReader};
use tokio::process::Child;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tonic::transport::Endpoint;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::cli::{Database, Global, UpArgs};
use crate::endpoints::Endpoints;
use crate::output;
use crate::services::{self, ServiceSpec};

/// One line on stdout; a reader that went away is not our problem.
fn say(line: impl AsRef<str>) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", line.as_ref());
    let _ = out.flush();
}

pub async fn run(global: &Global, args: UpArgs) -> ExitCode {
    match up(global, args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "error: {e}");
            ExitCode::from(1)
        }
    }
}

fn seconds(v: f64, flag: &str) -> Result<Duration, String> {
    Duration::try_from_secs_f64(v).map_err(|_| format!("--{flag} must be a number of seconds >= 0"))
}

/// The child running one role (a replica of it): this executable, `serve <role>`.
fn role_child(exe: &Path, p: &Planned, env: Vec<(&'static str, String)>) -> ChildSpec {
    ChildSpec {
        name: p.name.clone(),
        program: exe.to_path_buf(),
        args: vec!["serve".into(), p.spec.name.into()],
        env: env.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
    }
}

/// The one child running every role (`serve --roles all`): each role's environment with
/// its `<ROLE>__` prefix, so that each keeps its own address, database and credentials.
fn all_in_one_child(exe: &Path, roles: &[(&'static str, Vec<(&'static str, String)>)]) -> ChildSpec {
    let names: Vec<&str> = roles.iter().map(|(n, _)| *n).collect();
    let env = roles
        .iter()
        .flat_map(|(name, env)| env.iter().map(move |(k, v)| (format!("{}__{k}", name.to_uppercase()), v.clone())))
        .collect();
    ChildSpec {
        name: ALL_IN_ONE.to_owned(),
        program: exe.to_path_buf(),
        args: vec!["serve".into(), "--roles".into(), names.join(",")],
        env,
    }
}

/// The name of the all-in-one child in messages and log prefixes.
const ALL_IN_ONE: &str = "all-in-one";

fn ensure_free(port: u16, what: &str) -> Result<(), String> {
    std::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port)))
        .map(drop)
        .map_err(|e| format!("port {port} for {what} is not free: {e} (choose another --base-port)"))
}

mod admin;
mod databases;
mod nats_nodes;
mod ready;
mod replicas;
mod supervise;
use nats_nodes::Node;
use ready::{ready_rows, stages};
use replicas::Planned;
use supervise::*;

/// Why start-up did not finish.
enum Interrupted {
    /// Ctrl-C or SIGTERM: stop quietly.
    Signal,
    Failed(String),
}

impl From<String> for Interrupted {
    fn from(e: String) -> Self {
        Self::Failed(e)
    }
}

/// Everything running, to stop in order.
struct System {
    /// The nats-server, or a cluster's nodes.
    nats: Vec<Supervised>,
    services: Vec<Supervised>,
    monitors: CancellationToken,
    stop_services: Stopping,
    stop_nats: Stopping,
}

impl System {
    async fn stop(self) {
        self.monitors.cancel();
        self.stop_services.now.cancel();
        for s in self.services {
            if s.task.await.is_err() {
                say(format!("{}: supervisor failed", s.name));
            }
        }
        self.stop_nats.now.cancel();
        for n in self.nats {
            let _ = n.task.await;
        }
    }
}

/// How waiting for a condition ended.
enum Polled {
    Done,
    TimedOut,
    Signal,
}

/// Polls `done` until it holds, the deadline passes, or we are told to stop.
async fn poll_until<F: Future<Output = bool>>(
    deadline: Instant,
    shutdown: &CancellationToken,
    mut done: impl FnMut() -> F,
) -> Polled {
    const POLL: Duration = Duration::from_millis(100);
    loop {
        if done().await {
            return Polled::Done;
        }
        if Instant::now() >= deadline {
            return Polled::TimedOut;
        }
        tokio::select! {
            () = tokio::time::sleep(POLL) => {}
            () = shutdown.cancelled() => return Polled::Signal,
        }
    }
}

async fn accepts_tcp(port: u16) -> bool {
    tokio::time::timeout(
        Duration::from_secs(1),
        tokio::net::TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], port))),
    )
    .await
    .is_ok_and(|r| r.is_ok())
}

/// First SIGTERM or Ctrl-C: stop; a second: stop waiting for children.
fn catch_signals(shutdown: CancellationToken, force: CancellationToken) -> Result<(), String> {
    let mut term = signal(SignalKind::terminate()).map_err(|e| format!("cannot catch SIGTERM: {e}"))?;
    let mut int = signal(SignalKind::interrupt()).map_err(|e| format!("cannot catch SIGINT: {e}"))?;
    async fn next(term: &mut Signal, int: &mut Signal) {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    }
    tokio::spawn(async move {
        next(&mut term, &mut int).await;
        say("stopping");
        shutdown.cancel();
        next(&mut term, &mut int).await;
        force.cancel();
    });
    Ok(())
}

async fn up(global: &Global, args: UpArgs) -> Result<(), String> {
    let ready_timeout = seconds(args.ready_timeout, "ready-timeout")?;
    let grace = seconds(args.stop_timeout, "stop-timeout")?;
    let restart_after = Some(seconds(args.health_restart_after, "health-restart-after")?).filter(|d| !d.is_zero());

    // Every role runs from this very executable.
    let exe = std::env::current_exe().map_err(|e| format!("cannot find the path of gamectl itself: {e}"))?;
    let replicas = replicas::count(&args)?;
    let planned = replicas::plan(args.base_port, replicas)?;
    let ports = services::port_table(args.base_port)?;
    let nats = match (args.nats_url.clone(), args.nats_port) {
        (Some(url), _) => Nats::External(url),
        (None, Some(p)) => Nats::Child(Node::table(p, args.nats_cluster)?, nats_nodes::server()?),
        (None, None) => {
            Nats::Child(Node::table(services::nats_port(args.base_port)?, args.nats_cluster)?, nats_nodes::server()?)
        }
    };
    if let Nats::Child(nodes, _) = &nats {
        for n in nodes {
            ensure_free(n.port, n.name)?;
            if let Some(route) = n.route_port {
                ensure_free(route, n.name)?;
            }
        }
    }
    for p in &planned {
        ensure_free(p.port, &p.name)?;
    }

    std::fs::create_dir_all(global.data_dir.join("nats"))
        .map_err(|e| format!("cannot create {}: {e}", global.data_dir.display()))?;
    let data_dir =
        std::fs::canonicalize(&global.data_dir).map_err(|e| format!("{}: {e}", global.data_dir.display()))?;
    // A file left by an earlier run would send clients to a system that is not up yet.
    let _ = std::fs::remove_file(Endpoints::path(&data_dir));
    let id = databases::system_id(&data_dir)?;
    say(format!("system: {id} (in {})", databases::system_id_file(&data_dir).display()));
    if args.reset {
        let removed = databases::reset(&data_dir, &args, &id).await?;
        say(format!("reset: {}", if removed.is_empty() { "nothing to remove".to_owned() } else { removed.join(", ") }));
        std::fs::create_dir_all(data_dir.join("nats"))
            .map_err(|e| format!("cannot create {}: {e}", data_dir.display()))?;
    }
    // Auth says whether it applied the password file: one made now that it did not is removed.
    let admin_password_made = !crate::secrets::Paths::of(&data_dir).admin_password_file.exists();
    let secrets = crate::secrets::prepare(&data_dir)?;
    let _ = std::fs::remove_file(&secrets.admin_status_file);
    let databases = match args.database {
        Database::Sqlite => Vec::new(),
        Database::Postgres => databases::postgres_databases(&args, &id).await?,
    };
    for (role, url) in &databases {
        say(format!("{role} database: {}", store_adapter::connection::redact(url)));
    }

    let shutdown = CancellationToken::new();
    let force = CancellationToken::new();
    catch_signals(shutdown.clone(), force.clone())?;
    let stopping = |now| Stopping { now, force: force.clone(), grace };
    let mut system = System {
        nats: Vec::new(),
        services: Vec::new(),
        monitors: CancellationToken::new(),
        stop_services: stopping(CancellationToken::new()),
        stop_nats: stopping(CancellationToken::new()),
    };
    let ctx = Start {
        data_dir: &data_dir,
        exe: &exe,
        all_in_one: args.all_in_one,
        replicas,
        planned: &planned,
        ports: &ports,
        secrets: &secrets,
        admin_password_made,
        nats: &nats,
        databases: &databases,
        ready_timeout,
        restart_after,
        shutdown: &shutdown,
    };
    let started = start(&mut system, &ctx).await;
    if let Err(Interrupted::Failed(e)) = started {
        system.stop().await;
        return Err(e);
    }
    if started.is_ok() {
        shutdown.cancelled().await;
    }
    system.stop().await;
    say("stopped");
    Ok(())
}

/// The NATS server the services use.
enum Nats {
    /// Given with --nats-url: someone else runs it.
    External(String),
    /// Started and supervised by us: one server, or the nodes of a cluster; the
    /// nats-server executable they run (checked: see [`nats_nodes::server`]).
    Child(Vec<Node>, PathBuf),
}

struct Start<'a> {
    data_dir: &'a Path,
    /// This executable: every child runs it.
    exe: &'a Path,
    /// Every role in one child process.
    all_in_one: bool,
    /// Processes of each replicated role (`--replicas`).
    replicas: u8,
    planned: &'a [Planned],
    /// The first admin's password and the service accounts' secrets.
    secrets: &'a crate::secrets::Paths,
    /// Whether the first admin's password file was made on this start.
    admin_password_made: bool,
    /// Every service of the table and its port, started or not.
    ports: &'a [(&'static ServiceSpec, u16)],
    nats: &'a Nats,
    /// Each relational role's `DATABASE_URL` when not SQLite (`--database postgres`).
    databases: &'a [(&'static str, String)],
    ready_timeout: Duration,
    restart_after: Option<Duration>,
    shutdown: &'a CancellationToken,
}

async fn start(system: &mut System, ctx: &Start<'_>) -> Result<(), Interrupted> {
    let mut nats_credentials = None;
    let nats_url = match *ctx.nats {
        Nats::External(ref url) => url.clone(),
        Nats::Child(ref nodes, ref server) => {
            // Our own server always runs with authentication and per-service permissions.
            let dir = services::nats_auth_dir(ctx.data_dir);
            let creds = Credentials::ensure(&dir).map_err(|e| format!("cannot prepare the NATS credentials: {e}"))?;
            for node in nodes {
                // One server keeps the store it always had; each node of a cluster its own.
                let store = match node.route_port {
                    None => ctx.data_dir.join("nats"),
                    Some(_) => ctx.data_dir.join("nats").join(node.server_name()),
                };
                let mut args = node.args(&store, nodes);
                args.extend(creds.server_flags());
                let spec = ChildSpec { name: node.name.into(), program: server.clone(), args, env: Vec::new() };
                let child = supervise(spec, system.stop_nats.clone())
                    .map_err(|e| format!("cannot start {}: {e}", server.display()))?;
                system.nats.push(child);
            }
            nats_credentials = Some(creds);
            let deadline = Instant::now() + Duration::from_secs(15);
            for node in nodes {
                let port = node.port;
                match poll_until(deadline, ctx.shutdown, || accepts_tcp(port)).await {
                    Polled::Done => {}
                    Polled::Signal => return Err(Interrupted::Signal),
                    Polled::TimedOut => {
                        return Err(Interrupted::Failed(format!(
                            "{} does not accept connections on 127.0.0.1:{port} after 15 s",
                            node.name
                        )));
                    }
                }
            }
            nodes.iter().map(|n| format!("nats://127.0.0.1:{}", n.port)).collect::<Vec<_>>().join(",")
        }
    };

    let (announce_tx, announce) = watch::channel(false);
    let mut health = Vec::new();
    let mut table =
        Endpoints { nats: nats_url.clone(), gateway: None, services: Default::default(), metrics: Default::default() };
    let env = services::EnvContext {
        data_dir: ctx.data_dir,
        nats_url: &nats_url,
        nats_credentials: nats_credentials.as_ref(),
        stream_replicas: match ctx.nats {
            Nats::Child(nodes, _) => nodes.len().min(3),
            Nats::External(_) => 1,
        },
        secrets: ctx.secrets,
        ports: ctx.ports,
        databases: ctx.databases,
        replicas: ctx.replicas,
    };
    let mailbox =
        ctx.planned.iter().any(|p| p.spec.name == "notification").then(|| services::mailbox_dir(ctx.data_dir));
    if let Some(dir) = &mailbox {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let deadline = Instant::now() + ctx.ready_timeout;
    // All in one: one child for every role, each role's health watched at its address.
    let one = if ctx.all_in_one {
        let roles: Vec<_> =
            ctx.planned.iter().map(|p| (p.spec.name, services::child_env(p.spec, p.port, &env))).collect();
        let spec = all_in_one_child(ctx.exe, &roles);
        let child =
            supervise(spec, system.stop_services.clone()).map_err(|e| format!("cannot start {ALL_IN_ONE}: {e}"))?;
        let restart = child.restart.clone();
        system.services.push(child);
        Some(restart)
    } else {
        None
    };
    let stages = if ctx.all_in_one { vec![None] } else { stages(ctx.planned).into_iter().map(Some).collect() };
    for stage in stages {
        for p in ctx.planned.iter().filter(|p| stage.is_none_or(|st| p.spec.stage == st)) {
            let name = &p.name;
            let url = services::url(p.port);
            let restart = match &one {
                Some(restart) => restart.clone(),
                None => {
                    let spec = role_child(ctx.exe, p, services::child_env(p.spec, p.port, &env));
                    let child = supervise(spec, system.stop_services.clone())
                        .map_err(|e| format!("cannot start {name}: {e}"))?;
                    let restart = child.restart.clone();
                    system.services.push(child);
                    restart
                }
            };
            let (report, rx) = watch::channel(Health::Unreachable);
            tokio::spawn(watch_health(
                name.clone(),
                p.spec.health,
                url.clone(),
                report,
                Watch {
                    announce: announce.clone(),
                    restart_after: ctx.restart_after,
                    restart,
                    stop: system.monitors.clone(),
                },
            ));
            health.push((name.clone(), rx));
            table.services.insert(name.clone(), url);
            table.metrics.extend(services::metrics_url(p.port).map(|m| (name.clone(), m)));
        }
        // The next stage calls this one: it starts once this one is SERVING.
        wait_serving(&health, deadline, ctx).await?;
    }

    table.gateway = table.services.get("gateway").cloned();
    say(output::table(&["SERVICE", "ADDRESS"], &ready_rows(&table, ctx.planned, mailbox.as_deref())));
    let path = table
        .write(ctx.data_dir)
        .map_err(|e| format!("cannot write {}: {e}", Endpoints::path(ctx.data_dir).display()))?;
    say(format!("endpoints: {}", path.display()));
    if let Some(g) = &table.gateway {
        say(format!("use the gateway: {g} (gamectl finds it in endpoints.json)"));
        say(format!("my page in a browser: {g}/"));
    }
    if let Some(creds) = &nats_credentials {
        say(format!(
            "nats: authentication on, each service limited to its own subjects; the operator's key: {}",
            creds.seed_file(nats_adapter::access::OPERATOR).display()
        ));
    }
    say(admin::report(ctx.secrets, ctx.admin_password_made, ctx.data_dir));
    say("ready: all services SERVING");
    // Receivers keep reading the last value after the sender is gone.
    announce_tx.send_replace(true);
    Ok(())
}

/// Waits until every service started so far is SERVING.
async fn wait_serving(
    health: &[(String, watch::Receiver<Health>)],
    deadline: Instant,
    ctx: &Start<'_>,
) -> Result<(), Interrupted> {
    let all_serving = || std::future::ready(health.iter().all(|(_, rx)| *rx.borrow() == Health::Serving));
    match poll_until(deadline, ctx.shutdown, all_serving).await {
        Polled::Done => Ok(()),
        Polled::Signal => Err(Interrupted::Signal),
        Polled::TimedOut => {
            let late: Vec<String> = health
                .iter()
                .filter(|(_, rx)| *rx.borrow() != Health::Serving)
                .map(|(n, rx)| format!("{n} ({})", *rx.borrow()))
                .collect();
            Err(Interrupted::Failed(format!(
                "not SERVING after {} s: {}",
                ctx.ready_timeout.as_secs_f64(),
                late.join(", ")
            )))
        }
    }
}

#[cfg(test)]
mod tests;
