//! The roles of the system, declared once: one row per role (what `gamectl serve <role>`
//! runs) saying its name, the API it serves (service names, public and internal
//! methods, the variable giving its address), the stream it owns, the durable consumers
//! it runs, the buckets it keeps, whether it talks to the bus or keeps a database, and
//! the roles it must start after. Everything else is computed from [`ALL`]:
//! [`crate::services::APIS`], the bus roles and their permissions
//! (`nats_adapter::roles`, `nats_adapter::access`), the start order of
//! `gamectl serve --roles all` and the stages of `gamectl up` ([`stages`]), the gateway's
//! upstreams, gamectl's ports and children's environment.
//!
//! Adding a role is one row here (and in [`ALL`]), one crate with `Settings` and
//! `run(settings, shutdown)`, and one registry line in `gamectl/src/serve.rs`.

use crate::services::{Api, api};
use crate::streams::{self, StreamSpec, subject};

/// One role of the system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Role {
    /// `gamectl serve <name>`; its NATS user, connection name and inbox prefix; the key
    /// of endpoints.json.
    pub name: &'static str,
    /// The gRPC API it serves, if any.
    pub api: Option<Api>,
    /// The stream it publishes its events to and creates.
    pub stream: Option<StreamSpec>,
    /// The durable consumers it reads other roles' events through.
    pub consumers: &'static [ConsumerSpec],
    /// The key-value buckets it owns.
    pub buckets: &'static [&'static str],
    /// Whether it connects to NATS, as its own user with its own permissions.
    pub bus: bool,
    /// Whether it reads, removes and sends back the dead letters (the operators' tools).
    pub dead_letters: bool,
    /// Whether it keeps its state in a relational database of its own (`DATABASE_URL`).
    pub database: bool,
    /// The roles it calls as it starts or serves: it starts once they are SERVING.
    pub after: &'static [&'static str],
    /// The front door: it routes every API, so it starts after every role serving one.
    pub front: bool,
}

/// A durable consumer: its name is `<role>-<policy>`, and it reads one subject of a
/// stream, or all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsumerSpec {
    pub stream: StreamSpec,
    pub durable: &'static str,
    pub filter: &'static str,
}

impl ConsumerSpec {
    /// The consumer `durable` of the events published on `subject`, in the stream that
    /// holds it (a subject no stream holds does not compile).
    pub const fn on(subject: &'static str, durable: &'static str) -> Self {
        let mut i = 0;
        while i < streams::ALL.len() {
            if streams::ALL[i].holds(subject) {
                return Self { stream: streams::ALL[i], durable, filter: subject };
            }
            i += 1;
        }
        panic!("no stream holds this subject")
    }

    /// The consumer `durable` of every event of `stream`.
    pub const fn every(stream: StreamSpec, durable: &'static str) -> Self {
        Self { stream, durable, filter: stream.subjects }
    }
}

/// A row with nothing: each row says what it has.
const NONE: Role = Role {
    name: "",
    api: None,
    stream: None,
    consumers: &[],
    buckets: &[],
    bus: false,
    dead_letters: false,
    database: false,
    after: &[],
    front: false,
};

/// The bucket my page keeps its pages in (`MYPAGE_BUCKET`); the permissions cover this
/// name only.
pub const MYPAGE_BUCKET: &str = "mypage";

pub mod gateway {
    use super::*;

    /// The single entry point: gRPC and grpc-web to every API, and my page's files.
    pub const ROLE: Role = Role { name: "gateway", front: true, ..NONE };
}

pub mod mission {
    use super::*;

    /// Policy "a reward allocated for a mission is recorded on it".
    pub const RECORD_REWARD: ConsumerSpec = ConsumerSpec::on(subject::REWARD_ALLOCATED, "mission-record-reward");

    pub const ROLE: Role = Role {
        name: "mission",
        api: Some(api!("game.mission.v1", "MissionService", "MISSION_URL", public: ["ListCatalog"], internal: [])),
        stream: Some(streams::MISSION),
        consumers: &[RECORD_REWARD],
        bus: true,
        database: true,
        after: &[auth::ROLE.name],
        ..NONE
    };
}

pub mod reward {
    use super::*;

    /// Policy "a reward for every achieved mission".
    pub const ALLOCATE: ConsumerSpec = ConsumerSpec::on(subject::MISSION_ACHIEVED, "reward-allocate");
    /// Policy "the reward follows the wallet": issued.
    pub const ISSUED: ConsumerSpec = ConsumerSpec::on(subject::REWARD_ISSUED, "reward-issued");
    /// Policy "the reward follows the wallet": exchanged.
    pub const EXCHANGED: ConsumerSpec = ConsumerSpec::on(subject::REWARD_EXCHANGED, "reward-exchanged");

    pub const ROLE: Role = Role {
        name: "reward",
        api: Some(api!("game.reward.v1", "RewardService", "REWARD_URL", public: [], internal: [])),
        stream: Some(streams::REWARD),
        consumers: &[ALLOCATE, ISSUED, EXCHANGED],
        bus: true,
        database: true,
        after: &[auth::ROLE.name],
        ..NONE
    };
}

pub mod wallet {
    use super::*;

    /// Policy "an allocated reward is issued into the wallet".
    pub const ISSUE: ConsumerSpec = ConsumerSpec::on(subject::REWARD_ALLOCATED, "wallet-issue");

    pub const ROLE: Role = Role {
        name: "wallet",
        api: Some(api!("game.wallet.v1", "WalletService", "WALLET_URL", public: [], internal: [])),
        stream: Some(streams::WALLET),
        consumers: &[ISSUE],
        bus: true,
        database: true,
        // It issues and uses gifts synchronously, with a service token of auth's.
        after: &[auth::ROLE.name, gift::ROLE.name],
        ..NONE
    };
}

pub mod mypage {
    use super::*;

    /// One durable consumer per source stream; the projection is idempotent and
    /// order-tolerant, so no inbox is needed: a redelivered fact changes nothing.
    pub const CONSUMERS: [ConsumerSpec; 4] = [
        ConsumerSpec::every(streams::MISSION, "mypage-mission"),
        ConsumerSpec::every(streams::REWARD, "mypage-reward"),
        ConsumerSpec::every(streams::WALLET, "mypage-wallet"),
        ConsumerSpec::every(streams::GIFT, "mypage-gift"),
    ];

    pub const ROLE: Role = Role {
        name: "mypage",
        api: Some(api!("game.mypage.v1", "MyPageService", "MYPAGE_URL", public: [], internal: [],
            served_with: ["MyPageAdminService"])),
        consumers: &CONSUMERS,
        buckets: &[MYPAGE_BUCKET],
        bus: true,
        after: &[auth::ROLE.name],
        ..NONE
    };
}

pub mod gift {
    use super::*;

    /// Called synchronously by the wallet; it only publishes.
    pub const ROLE: Role = Role {
        name: "gift",
        api: Some(api!("game.gift.v1", "GiftService", "GIFT_URL",
            public: ["ListCatalog"], internal: ["GiftIssuingService"])),
        stream: Some(streams::GIFT),
        bus: true,
        database: true,
        after: &[auth::ROLE.name],
        ..NONE
    };
}

pub mod notification {
    use super::*;

    /// Policy "an issued gift is e-mailed to its customer".
    pub const GIFT_ISSUED: ConsumerSpec = ConsumerSpec::on(subject::GIFT_ISSUED, "notification-gift-issued");
    /// Policy "a used gift is e-mailed to its customer".
    pub const GIFT_USED: ConsumerSpec = ConsumerSpec::on(subject::GIFT_USED, "notification-gift-used");
    /// Policy "points about to expire are e-mailed to their customer" (once per date).
    pub const POINTS_EXPIRING: ConsumerSpec =
        ConsumerSpec::on(subject::POINTS_EXPIRING, "notification-points-expiring");

    pub const ROLE: Role = Role {
        name: "notification",
        api: Some(api!("game.notification.v1", "NotificationService", "NOTIFICATION_URL",
            public: [], internal: [])),
        stream: Some(streams::NOTIFICATION),
        consumers: &[GIFT_ISSUED, GIFT_USED, POINTS_EXPIRING],
        bus: true,
        database: true,
        after: &[auth::ROLE.name],
        ..NONE
    };
}

pub mod auth {
    use super::*;

    /// Accounts, roles, service accounts, tokens and the keys every other role verifies
    /// them with (so it starts first); not on the bus.
    pub const ROLE: Role = Role {
        name: "auth",
        api: Some(api!("game.auth.v1", "AuthService", "AUTH_URL",
            public: ["RegisterCustomer", "IssueToken", "IssueServiceToken", "GetJwks"], internal: [])),
        database: true,
        ..NONE
    };
}

pub mod ops {
    use super::*;

    /// The operators' tools (admins only): the dead letters as admin RPCs. It reads and
    /// removes messages of the `DEADLETTER` stream and publishes the events back on the
    /// subjects the consumers read; no stream, consumer or bucket of its own.
    pub const ROLE: Role = Role {
        name: "ops",
        api: Some(api!("game.admin.v1", "DeadLetterService", "OPS_URL", public: [], internal: [])),
        bus: true,
        dead_letters: true,
        after: &[auth::ROLE.name],
        ..NONE
    };
}

/// Every role. Their order is the order of the gateway's routes, of `gamectl`'s tables
/// and of the ports of `gamectl up` (`base-port + index`); the start order is
/// [`start_order`]'s.
pub const ALL: [Role; 9] = [
    gateway::ROLE,
    mission::ROLE,
    reward::ROLE,
    wallet::ROLE,
    mypage::ROLE,
    gift::ROLE,
    notification::ROLE,
    auth::ROLE,
    ops::ROLE,
];

/// The role named `name`.
pub fn find(name: &str) -> Option<&'static Role> {
    ALL.iter().find(|r| r.name == name)
}

impl Role {
    /// The name it reports readiness under in `grpc.health.v1.Health`: its API's service
    /// name, the gateway's own name for the front door, else "" (the whole server).
    pub const fn health(&self) -> &'static str {
        match self.api {
            Some(api) => api.name,
            None if self.front => crate::services::GATEWAY,
            None => "",
        }
    }

    /// The roles it starts after, by name: those of its row, and every role serving an
    /// API for the front door.
    pub fn starts_after<'a>(&'a self, table: &'a [Role]) -> impl Iterator<Item = &'static str> + 'a {
        let apis = table.iter().filter(move |r| self.front && r.api.is_some() && r.name != self.name);
        self.after.iter().copied().chain(apis.map(|r| r.name))
    }
}

/// Why a table has no start order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderError {
    /// A role starts after one that is not in the table.
    Unknown { role: &'static str, after: &'static str },
    /// These roles start after one another, in a circle.
    Cycle(Vec<&'static str>),
}

impl std::fmt::Display for OrderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unknown { role, after } => write!(f, "{role} starts after {after}, which is no role"),
            Self::Cycle(roles) => write!(f, "these roles start after one another: {}", roles.join(", ")),
        }
    }
}

impl std::error::Error for OrderError {}

/// The start stages of `table`: stage 0 the roles that start after none, stage n+1 those
/// that start after roles of stages up to n (at least one of n); within a stage, table
/// order. A topological order of the table, by levels.
///
/// # Errors
/// A role starting after an unknown one, or a cycle.
pub fn stages_of(table: &[Role]) -> Result<Vec<Vec<&'static str>>, OrderError> {
    for role in table {
        for after in role.starts_after(table) {
            if !table.iter().any(|r| r.name == after) {
                return Err(OrderError::Unknown { role: role.name, after });
            }
        }
    }
    let mut placed: Vec<&'static str> = Vec::new();
    let mut stages = Vec::new();
    while placed.len() < table.len() {
        let stage: Vec<&'static str> = table
            .iter()
            .filter(|r| !placed.contains(&r.name))
            .filter(|r| r.starts_after(table).all(|a| placed.contains(&a)))
            .map(|r| r.name)
            .collect();
        if stage.is_empty() {
            let left = table.iter().map(|r| r.name).filter(|n| !placed.contains(n)).collect();
            return Err(OrderError::Cycle(left));
        }
        placed.extend(&stage);
        stages.push(stage);
    }
    Ok(stages)
}

/// The start stages of [`ALL`] (see [`stages_of`]); the table is checked by a test, so
/// this has no error.
pub fn stages() -> Vec<Vec<&'static str>> {
    stages_of(&ALL).unwrap_or_else(|e| panic!("the role table: {e}"))
}

/// Every role, in start order: the stages one after the other.
pub fn start_order() -> Vec<&'static str> {
    stages().into_iter().flatten().collect()
}

/// The stage `name` starts in.
pub fn stage(name: &str) -> Option<usize> {
    stages().iter().position(|s| s.contains(&name))
}

/// The roles that talk to NATS, in table order (auth and the gateway do not).
pub const ON_BUS: [Role; count(Has::Bus)] = {
    let mut out = [NONE; count(Has::Bus)];
    let (mut i, mut n) = (0, 0);
    while i < ALL.len() {
        if Has::Bus.of(&ALL[i]) {
            out[n] = ALL[i];
            n += 1;
        }
        i += 1;
    }
    out
};

/// The names of the roles that keep a relational database, in table order.
pub const RELATIONAL: [&str; count(Has::Database)] = {
    let mut out = [""; count(Has::Database)];
    let (mut i, mut n) = (0, 0);
    while i < ALL.len() {
        if Has::Database.of(&ALL[i]) {
            out[n] = ALL[i].name;
            n += 1;
        }
        i += 1;
    }
    out
};

/// What a role may have, for the lists computed at compile time.
#[derive(Clone, Copy)]
pub(crate) enum Has {
    Bus,
    Database,
    Api,
}

impl Has {
    pub(crate) const fn of(self, role: &Role) -> bool {
        match self {
            Self::Bus => role.bus,
            Self::Database => role.database,
            Self::Api => role.api.is_some(),
        }
    }
}

/// How many roles of [`ALL`] have `what`.
pub(crate) const fn count(what: Has) -> usize {
    let (mut i, mut n) = (0, 0);
    while i < ALL.len() {
        if what.of(&ALL[i]) {
            n += 1;
        }
        i += 1;
    }
    n
}

#[cfg(test)]
mod tests;
