//! Who may do what on the bus: each role's NATS permissions, derived from the role table
//! ([`crate::roles`]), the nats-server configuration that grants them, and the NKEY
//! credentials of every role. `gamectl up`, the test harness and the Kubernetes overlay
//! (`k8s/overlays/prod/nats-values.yaml`, checked against [`accounts`] by a test) all
//! take them from here.
//!
//! Why NKEYs rather than passwords: the server holds only public keys (its
//! configuration grants nothing if read), the secret seed never crosses the wire (the
//! server sends a nonce, the client signs it), and there is no password hash to tune.
//!
//! A role may publish its own events, the JetStream API calls for its own stream and
//! buckets, for its own durable consumers (their exact filter included) and their
//! replays (`crate::replay`, same filter), `INFO` of the
//! streams it reads, acknowledgements of its own consumers and its dead-letter subjects;
//! it may subscribe only to its own inbox prefix. Everything else is refused by the
//! server: a publish returns Ok and is dropped, a JetStream call times out, and the
//! client is told with a `Permissions Violation` error (logged by [`crate::connect`]).

use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::roles::{self, Role};
use crate::streams;

/// The user for operators, gamectl and the tests: no restrictions.
pub const OPERATOR: &str = "operator";

/// The account every user of the system belongs to (JetStream enabled).
pub const ACCOUNT: &str = "GAME";

/// Subjects a role may publish to and subscribe to; nothing else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permissions {
    pub publish: Vec<String>,
    pub subscribe: Vec<String>,
}

fn api(call: &str) -> String {
    format!("$JS.API.{call}")
}

/// What `role` may publish and subscribe to.
pub fn permissions(role: &Role) -> Permissions {
    let mut publish = Vec::new();
    if let Some(stream) = role.stream {
        // Its events, and its stream: created by its owner (INFO first, then CREATE).
        publish.push(stream.subjects.to_owned());
        publish.push(api(&format!("STREAM.INFO.{}", stream.name)));
        publish.push(api(&format!("STREAM.CREATE.{}", stream.name)));
        // The owner reports how far behind every durable on its stream is
        // (`consumer_lag`), so the lag of a stopped consumer still shows.
        for c in roles::ALL.iter().flat_map(|r| r.consumers).filter(|c| c.stream == stream) {
            publish.push(api(&format!("CONSUMER.INFO.{}.{}", stream.name, c.durable)));
        }
    }
    for c in role.consumers {
        let (s, d) = (c.stream.name, c.durable);
        // The producer's stream is waited for, never created.
        publish.push(api(&format!("STREAM.INFO.{s}")));
        publish.push(api(&format!("CONSUMER.INFO.{s}.{d}")));
        // async-nats names the filter in the subject, and the server checks that it is
        // the one in the config: the durable cannot be widened to other subjects.
        publish.push(api(&format!("CONSUMER.CREATE.{s}.{d}.{}", c.filter)));
        publish.push(api(&format!("CONSUMER.MSG.NEXT.{s}.{d}")));
        publish.push(format!("$JS.ACK.{s}.{d}.>"));
        publish.push(streams::dead_letter_subject(d));
        // Its replay (a projection rebuilt from the first event): a consumer named after
        // the durable, on the same filter, created, read, acknowledged and removed.
        let r = crate::replay::replay_name(d);
        publish.push(api(&format!("CONSUMER.CREATE.{s}.{r}.{}", c.filter)));
        publish.push(api(&format!("CONSUMER.DELETE.{s}.{r}")));
        publish.push(api(&format!("CONSUMER.MSG.NEXT.{s}.{r}")));
        publish.push(format!("$JS.ACK.{s}.{r}.>"));
    }
    if !role.consumers.is_empty() {
        // The dead-letter stream belongs to no one role: whoever dead-letters first
        // creates it, with the one config of `streams::DEAD_LETTER` (a second CREATE
        // with another config is refused by the server).
        publish.push(api(&format!("STREAM.INFO.{}", streams::DEAD_LETTER.name)));
        publish.push(api(&format!("STREAM.CREATE.{}", streams::DEAD_LETTER.name)));
    }
    if role.dead_letters {
        publish.extend(crate::dlq::rights());
    }
    for bucket in role.buckets {
        let stream = format!("KV_{bucket}");
        publish.extend([
            format!("$KV.{bucket}.>"),
            api(&format!("STREAM.INFO.{stream}")),
            api(&format!("STREAM.CREATE.{stream}")),
            // Old generations of a view removed at once (by subject).
            api(&format!("STREAM.PURGE.{stream}")),
            // Reads: direct get (allow_direct), or through the stream leader.
            api(&format!("DIRECT.GET.{stream}")),
            api(&format!("DIRECT.GET.{stream}.>")),
            api(&format!("STREAM.MSG.GET.{stream}")),
            // Watches: ordered push consumers, recreated on a gap, and their flow control.
            api(&format!("CONSUMER.CREATE.{stream}")),
            api(&format!("CONSUMER.CREATE.{stream}.>")),
            api(&format!("CONSUMER.INFO.{stream}.>")),
            api(&format!("CONSUMER.DELETE.{stream}.>")),
            format!("$JS.FC.{stream}.>"),
        ]);
    }
    let mut seen = std::collections::HashSet::new();
    publish.retain(|s| seen.insert(s.clone()));
    Permissions { publish, subscribe: vec![format!("{}.>", roles::inbox_prefix(role.name))] }
}

/// One user of the server's configuration.
#[derive(Debug, Clone)]
pub struct User {
    /// The role, or [`OPERATOR`].
    pub name: &'static str,
    /// Its public NKEY (`U...`), or a reference the configuration resolves (Helm:
    /// `<< $VAR >>`).
    pub nkey: String,
}

impl User {
    fn permissions(&self) -> Option<Permissions> {
        roles::find(self.name).map(permissions)
    }
}

/// The `accounts` block of a nats-server configuration: one account with JetStream, the
/// operator unrestricted, every role with its [`permissions`]. Without a
/// `no_auth_user`, a client without credentials is refused.
pub fn accounts(users: &[User]) -> Value {
    let users: Vec<Value> = users
        .iter()
        .map(|u| match u.permissions() {
            None => json!({ "nkey": u.nkey }),
            Some(p) => json!({
                "nkey": u.nkey,
                "permissions": {
                    "publish": { "allow": p.publish },
                    "subscribe": { "allow": p.subscribe },
                },
            }),
        })
        .collect();
    json!({ ACCOUNT: { "jetstream": "enabled", "users": users } })
}

/// Every user: the operator first, then each role.
pub fn user_names() -> impl Iterator<Item = &'static str> {
    std::iter::once(OPERATOR).chain(roles::ALL.iter().map(|r| r.name))
}

/// The variable the Kubernetes NATS servers read a user's public key from
/// (`NATS_NKEY_MISSION`, ...), filled from the Secret `nats-<user>`.
pub fn helm_env_var(user: &str) -> String {
    format!("NATS_NKEY_{}", user.to_uppercase())
}

/// The `accounts` block for the Helm chart's `config.merge`: public keys read from the
/// environment of the NATS servers ([`helm_env_var`]).
pub fn helm_accounts() -> Value {
    let users: Vec<User> =
        user_names().map(|name| User { name, nkey: format!("<< ${} >>", helm_env_var(name)) }).collect();
    accounts(&users)
}

/// A nats-server configuration file granting [`accounts`]; listen address and JetStream
/// come from the command line.
pub fn server_config(users: &[User]) -> String {
    let order: Vec<&str> = users.iter().map(|u| u.name).collect();
    let body = json!({ "accounts": accounts(users) });
    format!(
        "# Who may do what on the bus (nats_adapter::access); regenerated at every start.\n\
         # Public keys only: the seeds are the <user>.nk files beside it. Users: {}.\n{}\n",
        order.join(", "),
        serde_json::to_string_pretty(&body).unwrap_or_default()
    )
}

/// Why credentials could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path} does not hold a user NKEY seed ({reason}); delete it to have a new one made")]
    BadSeed { path: PathBuf, reason: String },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> AccessError + '_ {
    move |source| AccessError::Io { path: path.to_path_buf(), source }
}

/// The credentials of every user in a directory: `<user>.nk` (the seed, mode 0600) and
/// `nats-server.conf`.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub dir: PathBuf,
}

impl Credentials {
    /// Makes a seed for every user that has none yet (an existing one is kept, so
    /// running services keep working), then writes the server configuration for the
    /// current role table. Every file is made readable by its owner only.
    ///
    /// # Errors
    /// When the directory cannot be written, or a seed file holds no user seed.
    pub fn ensure(dir: &Path) -> Result<Self, AccessError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io(dir))?;
        let creds = Self { dir: dir.to_path_buf() };
        let mut users = Vec::new();
        for name in user_names() {
            let path = creds.seed_file(name);
            let key = match std::fs::read_to_string(&path) {
                Ok(seed) => {
                    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).map_err(io(&path))?;
                    user_key(seed.trim()).map_err(|reason| AccessError::BadSeed { path: path.clone(), reason })?
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    let key = nkeys::KeyPair::new_user();
                    let seed =
                        key.seed().map_err(|e| AccessError::BadSeed { path: path.clone(), reason: e.to_string() })?;
                    write_private(&path, &format!("{seed}\n"), true)?;
                    key
                }
                Err(e) => return Err(io(&path)(e)),
            };
            users.push(User { name, nkey: key.public_key() });
        }
        write_private(&creds.server_config_file(), &server_config(&users), false)?;
        Ok(creds)
    }

    /// The seed file of `user` (a role or [`OPERATOR`]).
    pub fn seed_file(&self, user: &str) -> PathBuf {
        self.dir.join(format!("{user}.nk"))
    }

    /// The configuration file nats-server is started with.
    pub fn server_config_file(&self) -> PathBuf {
        self.dir.join("nats-server.conf")
    }

    /// The nats-server flags that load it (listen address and JetStream store stay
    /// command-line flags).
    pub fn server_flags(&self) -> [String; 2] {
        ["-c".to_owned(), self.server_config_file().display().to_string()]
    }
}

/// The key pair of a user seed (`SU...`).
///
/// # Errors
/// The reason, when it is not one.
pub fn user_key(seed: &str) -> Result<nkeys::KeyPair, String> {
    let key = nkeys::KeyPair::from_seed(seed).map_err(|e| e.to_string())?;
    if key.key_pair_type() == nkeys::KeyPairType::User { Ok(key) } else { Err("not a user key".into()) }
}

/// Writes `content` to a file only its owner can read, created with that mode (never
/// readable by others, not even for a moment); `new`: it must not exist yet.
fn write_private(path: &Path, content: &str, new: bool) -> Result<(), AccessError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).mode(0o600);
    if new {
        options.create_new(true);
    } else {
        options.create(true).truncate(true);
    }
    let mut file = options.open(path).map_err(io(path))?;
    // An existing file keeps its mode on open: make it the owner's alone.
    file.set_permissions(std::fs::Permissions::from_mode(0o600)).map_err(io(path))?;
    file.write_all(content.as_bytes()).map_err(io(path))?;
    file.sync_all().map_err(io(path))
}

#[cfg(test)]
mod tests;
