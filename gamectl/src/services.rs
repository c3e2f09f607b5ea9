//! How `gamectl up` runs the roles of the system, and the environment each of them is
//! started with. Which roles there are, their APIs, address variables and start order
//! are the role table's (`contracts::roles`); this module adds ports and environment.

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use contracts::roles;
use nats_adapter::access::Credentials;

use crate::secrets;

/// One role of the system and how `up` runs it.
#[derive(Debug, PartialEq, Eq)]
pub struct ServiceSpec {
    /// Role name (`gamectl serve <name>`), key in endpoints.json, prefix of its log lines.
    pub name: &'static str,
    /// The name it reports readiness under in `grpc.health.v1.Health` ("" = the whole
    /// server, for processes without an API of their own).
    pub health: &'static str,
    /// Its port is `base-port + port_offset`: its place in the role table.
    pub port_offset: u16,
    /// Services are started stage by stage, each stage once the previous one is SERVING
    /// (stage 0 first): the role table's stages, so a role starts after the roles it
    /// calls.
    pub stage: u8,
    /// The variable that gives its address (`http://127.0.0.1:<port>`) to every child.
    pub url_env: Option<&'static str>,
    /// Whether it connects to NATS (with its own credentials).
    pub bus: bool,
}

/// Every role of the table, in table order.
pub static SERVICES: LazyLock<Vec<ServiceSpec>> = LazyLock::new(|| {
    let stages = roles::stages();
    let stage = |name| stages.iter().position(|s: &Vec<&str>| s.contains(&name)).unwrap_or_default();
    roles::ALL
        .iter()
        .zip(0u16..)
        .map(|(r, i)| ServiceSpec {
            name: r.name,
            health: r.health(),
            port_offset: i,
            stage: u8::try_from(stage(r.name)).unwrap_or(u8::MAX),
            url_env: r.api.map(|a| a.url_env),
            bus: r.bus,
        })
        .collect()
});

/// Replica `r` (1-based) of a role listens `REPLICA_PORT_STEP * (r - 1)` above the first
/// (`base-port + 10·(r−1) + offset`): the ten offsets of a replica stay below the next
/// replica's, and ten replicas below the nats-server's `base-port + 100`.
pub const REPLICA_PORT_STEP: u16 = 10;

/// At most this many replicas of a role (`up --replicas`), so that they fit below the
/// nats-server's ports.
pub const MAX_REPLICAS: u8 = 10;

/// Whether `up --replicas N` runs `N` of this role: every role but the gateway, the one
/// front door on the base port that balances over the replicas.
pub fn is_replicated(spec: &ServiceSpec) -> bool {
    spec.name != "gateway"
}

/// The port of replica `r` (1-based) of the role whose first replica is on `port`.
pub fn replica_port(port: u16, r: u8) -> Option<u16> {
    port.checked_add(REPLICA_PORT_STEP.checked_mul(u16::from(r.checked_sub(1)?))?)
}

/// The name of replica `r` of `role`: the role's own for the first (so `--direct` and
/// scripts find it as before), `<role>-<r>` for the others.
pub fn replica_name(role: &str, r: u8) -> String {
    if r <= 1 { role.to_owned() } else { format!("{role}-{r}") }
}

/// The nats-server started by `up` listens on `base-port + NATS_PORT_OFFSET` by default.
pub const NATS_PORT_OFFSET: u16 = 100;

/// The port of every service for a base port, in table order.
///
/// # Errors
/// When a port would exceed 65535.
pub fn port_table(base: u16) -> Result<Vec<(&'static ServiceSpec, u16)>, String> {
    SERVICES
        .iter()
        .map(|s| {
            base.checked_add(s.port_offset)
                .map(|p| (s, p))
                .ok_or_else(|| format!("--base-port {base} leaves no port for {}", s.name))
        })
        .collect()
}

/// The default port of the nats-server started by `up`.
///
/// # Errors
/// When it would exceed 65535.
pub fn nats_port(base: u16) -> Result<u16, String> {
    base.checked_add(NATS_PORT_OFFSET).ok_or_else(|| format!("--base-port {base} leaves no port for nats-server"))
}

/// The auth service's internal port (`INTERNAL_ADDR`: the JWKS, the revocations, the
/// customer lookup, service tokens) is its own port plus this (`base-port + 300 + 7`).
pub const INTERNAL_PORT_OFFSET: u16 = 300;

/// The internal port of the auth service on `port`, or `port` itself when there is none
/// (it would exceed 65535: the auth service then serves everything on one port).
pub fn internal_port(port: u16) -> u16 {
    port.checked_add(INTERNAL_PORT_OFFSET).unwrap_or(port)
}

/// A service's metrics port is its own port plus this (`base-port + 200 + offset`).
pub const METRICS_PORT_OFFSET: u16 = 200;

/// The admin address a service on `port` serves `GET /metrics` on (`METRICS_ADDR`), when
/// there is a port for it.
pub fn metrics_addr(port: u16) -> Option<String> {
    port.checked_add(METRICS_PORT_OFFSET).map(|p| format!("127.0.0.1:{p}"))
}

/// The URL of a service's metrics, for endpoints.json.
pub fn metrics_url(port: u16) -> Option<String> {
    metrics_addr(port).map(|a| format!("http://{a}/metrics"))
}

/// The address of a service on this machine.
pub fn url(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}

/// Where the notification service writes its e-mails (`MAILBOX_DIR`).
pub fn mailbox_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("mailbox")
}

/// The signing keys of the auth service (`AUTH_KEYS_DIR`): generated on its first start,
/// kept across runs so that tokens stay valid.
pub fn keys_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("keys")
}

/// The bus credentials of every service and of the operator (`<user>.nk`, 0600) and the
/// nats-server configuration holding their public keys and permissions: made on the
/// first `up`, the seeds kept across runs.
pub fn nats_auth_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("nats-auth")
}

/// Where the auth service at `port` publishes its public keys: every service fetches
/// them from there (and again on an unknown key id, so a rotation reaches everyone).
pub fn jwks_url(port: u16) -> String {
    format!("{}/.well-known/jwks.json", url(port))
}

/// Where the auth service at `port` lists revoked tokens: every service fetches them
/// every couple of seconds.
pub fn revocations_url(port: u16) -> String {
    format!("{}/revocations", url(port))
}

/// Where the auth service at `port` says whether a customer is registered (the mission
/// service asks before it records a game server's report).
pub fn customers_url(port: u16) -> String {
    format!("{}/customers", url(port))
}

/// What every child's environment is computed from.
#[derive(Debug, Clone, Copy)]
pub struct EnvContext<'a> {
    /// Absolute: children do not run in gamectl's working directory's terms.
    pub data_dir: &'a Path,
    pub nats_url: &'a str,
    /// The bus credentials, when `up` runs the nats-server (with --nats-url the services
    /// connect as that server lets them: anonymously).
    pub nats_credentials: Option<&'a Credentials>,
    /// Replicas of every stream, consumer and bucket (`STREAM_REPLICAS`, set when > 1):
    /// 3 on a cluster.
    pub stream_replicas: usize,
    /// The first admin's password and the service accounts' secrets (see [`secrets`]).
    pub secrets: &'a secrets::Paths,
    /// Every service of the table and its port (see [`port_table`]), started or not, so
    /// that a child always learns where the others are (or will be).
    pub ports: &'a [(&'static ServiceSpec, u16)],
    /// The `DATABASE_URL` of a role when it is not its SQLite file in the data dir (with
    /// `up --database postgres`: its own database on the PostgreSQL server).
    pub databases: &'a [(&'static str, String)],
    /// Replicas of every replicated role ([`is_replicated`]): each address variable
    /// lists all of them.
    pub replicas: u8,
}

impl EnvContext<'_> {
    /// The ports of every replica of the role whose first replica is on `port`.
    fn replica_ports(&self, spec: &ServiceSpec, port: u16) -> Vec<u16> {
        let n = if is_replicated(spec) { self.replicas.max(1) } else { 1 };
        (1..=n).filter_map(|r| replica_port(port, r)).collect()
    }

    /// `f(port)` of every replica of `spec`, comma-separated.
    fn list(&self, spec: &ServiceSpec, port: u16, f: fn(u16) -> String) -> String {
        self.replica_ports(spec, port).into_iter().map(f).collect::<Vec<_>>().join(",")
    }
}

/// The roles that keep their state in a relational database (my page keeps its in a
/// JetStream bucket; the gateway keeps none).
pub const RELATIONAL: [&str; roles::RELATIONAL.len()] = roles::RELATIONAL;

/// The environment of the child running `spec` on `port`: what every service reads
/// (`LISTEN_ADDR`, `DATABASE_URL`, `NATS_URL` and its own `NATS_NKEY_SEED_FILE`,
/// `JWKS_URLS` = the auth service's keys, `REVOCATION_URLS` = its revocations and
/// `REVOCATION_KEY_FILE` the key they are sealed with), the
/// address of every service (`MISSION_URL`, ..., `AUTH_URL`: a service ignores those it
/// does not call; the gateway routes to them), then the service's own settings. Later
/// entries win, so a service's own settings may override. With replicas, each of those
/// variables lists every replica, comma-separated (the gateway balances over them, the
/// wallet fails over between gift and auth replicas).
pub fn child_env(spec: &ServiceSpec, port: u16, ctx: &EnvContext<'_>) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("LISTEN_ADDR", format!("127.0.0.1:{port}")),
        (
            "DATABASE_URL",
            ctx.databases.iter().find(|(role, _)| *role == spec.name).map_or_else(
                || format!("sqlite://{}/{}.db", ctx.data_dir.display(), spec.name),
                |(_, url)| url.clone(),
            ),
        ),
        ("NATS_URL", ctx.nats_url.to_owned()),
    ];
    // On a cluster; otherwise the services' default (or the operator's environment).
    if ctx.stream_replicas > 1 {
        env.push(("STREAM_REPLICAS", ctx.stream_replicas.to_string()));
    }
    env.extend(metrics_addr(port).map(|a| ("METRICS_ADDR", a)));
    // Traces (when OTEL_EXPORTER_OTLP_ENDPOINT is set for gamectl) name the role.
    env.push(("OTEL_SERVICE_NAME", spec.name.to_owned()));
    if let Some(creds) = ctx.nats_credentials
        && spec.bus
    {
        env.push(("NATS_NKEY_SEED_FILE", creds.seed_file(spec.name).display().to_string()));
    }
    if let Some((auth, port)) = ctx.ports.iter().find(|(s, _)| s.name == "auth") {
        // From the auth service's internal port, as in k8s, where only the gateway reaches
        // its public one.
        env.push(("JWKS_URLS", ctx.list(auth, *port, |p| jwks_url(internal_port(p)))));
        env.push(("REVOCATION_URLS", ctx.list(auth, *port, |p| revocations_url(internal_port(p)))));
        env.push(("REVOCATION_KEY_FILE", ctx.secrets.revocation_key_file.display().to_string()));
    }
    env.extend(ctx.ports.iter().filter_map(|(s, p)| s.url_env.map(|var| (var, ctx.list(s, *p, url)))));
    // The wallet gets its service token on the auth service's internal port; the gateway
    // keeps the public one, where it passes the customers' calls on.
    if spec.name == "wallet"
        && let Some((auth, port)) = ctx.ports.iter().find(|(s, _)| s.name == "auth")
        && let Some(var) = env.iter_mut().find(|(k, _)| *k == "AUTH_URL")
    {
        var.1 = ctx.list(auth, *port, |p| url(internal_port(p)));
    }
    env.extend(own_env(spec.name, ctx));
    if spec.name == "auth" && internal_port(port) != port {
        env.push(("INTERNAL_ADDR", format!("127.0.0.1:{}", internal_port(port))));
    }
    env
}

/// Settings only one service reads.
fn own_env(name: &str, ctx: &EnvContext<'_>) -> Vec<(&'static str, String)> {
    match name {
        "notification" => vec![("MAILBOX_DIR", mailbox_dir(ctx.data_dir).display().to_string())],
        // A game server's report for an id nobody registered is refused.
        "mission" => ctx
            .ports
            .iter()
            .find(|(s, _)| s.name == "auth")
            .map(|(auth, port)| vec![("CUSTOMERS_URL", ctx.list(auth, *port, |p| customers_url(internal_port(p))))])
            .unwrap_or_default(),
        // In the data dir rather than `data/keys` under whatever directory gamectl runs in.
        "auth" => vec![
            ("AUTH_KEYS_DIR", keys_dir(ctx.data_dir).display().to_string()),
            ("ADMIN_ID", secrets::ADMIN_ID.to_owned()),
            ("ADMIN_PASSWORD_FILE", ctx.secrets.admin_password_file.display().to_string()),
            ("ADMIN_STATUS_FILE", ctx.secrets.admin_status_file.display().to_string()),
            ("SERVICE_ACCOUNTS_FILE", ctx.secrets.service_accounts_file.display().to_string()),
        ],
        service => match ctx.secrets.secret_file(service) {
            Some((account, file)) => vec![
                ("SERVICE_CLIENT_ID", account.client_id.to_owned()),
                ("SERVICE_CLIENT_SECRET_FILE", file.display().to_string()),
            ],
            None => Vec::new(),
        },
    }
}

#[cfg(test)]
mod tests;
