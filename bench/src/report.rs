//! What a run found (serialized as `bench.json`), and the table printed from it ([`table`]): each
//! figure, the baseline it is compared with, and the ratio.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::baseline::{CommitFigures, JetStreamFigures};
use crate::hist::Summary;

#[derive(Debug, Clone, Serialize, Default)]
pub struct Results {
    pub meta: Meta,
    pub achieve_mission: AchieveFigures,
    pub flow: FlowFigures,
    pub reads: ReadFigures,
    pub exchange: ExchangeFigures,
    pub whale: crate::whale::WhaleFigures,
    pub baselines: Baselines,
    pub services: Vec<ServiceFigures>,
    /// nats-server and this load generator, which share the machine with the services.
    pub other_processes: Vec<ProcessFigures>,
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct Meta {
    pub started_at: String,
    pub command: String,
    pub profile: String,
    pub backend: String,
    /// The bus: one nats-server, or a cluster and its replication.
    pub bus: String,
    pub players: usize,
    /// Offered AchieveMission rate of the main load when paced (`--rate`).
    pub rate: Option<f64>,
    pub load_s: f64,
    pub missions_per_player: u32,
    pub quick: bool,
    pub cpu: String,
    pub cores: usize,
    pub load_average_at_start: String,
    pub git_commit: String,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct AchieveFigures {
    /// The main load: `players` closed loops through the gateway.
    pub gateway: Summary,
    /// Short runs, interleaved, same concurrency: through the gateway and straight to mission.
    pub gateway_short: Summary,
    pub direct_short: Summary,
    /// The same runs as Connect JSON over HTTP/1.1 at the gateway (a game server without gRPC).
    pub json_short: Summary,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct FlowFigures {
    /// Achieve -> `WatchMyPage` shows the reward ISSUED, one flow at a time, idle system.
    pub idle: Summary,
    /// The same, by a few watching players while the load runs.
    pub under_load: Summary,
    pub sustained: Sustained,
    pub timeline: Vec<Sample>,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct Sustained {
    pub load_s: f64,
    /// Missions accepted (AchieveMission answered OK), counted by the clients.
    pub accepted_at_start: u64,
    pub accepted_at_end: u64,
    /// Events on the streams when the load stopped.
    pub published_at_end: u64,
    pub allocated_at_end: u64,
    pub issued_at_end: u64,
    pub rewarded_at_start: u64,
    pub rewarded_at_end: u64,
    pub accept_rate_per_s: f64,
    /// Missions fully through reward, wallet and mission (MissionRewarded) per second of load.
    pub flow_rate_per_s: f64,
    pub flow_rate_second_half_per_s: f64,
    /// Accepted but not yet rewarded.
    pub backlog_at_half: u64,
    pub backlog_at_end: u64,
    pub backlog_growth_per_s: f64,
    pub backlog_grew: bool,
    pub drain_s: f64,
    pub drained: bool,
    pub published_final: u64,
    pub rewarded_final: u64,
    /// Rewarded missions over load + drain time.
    pub flow_rate_incl_drain_per_s: f64,
    /// Rewarded missions per second during the drain: the flow alone, with no new missions.
    pub drain_rate_per_s: f64,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct Sample {
    pub t_s: f64,
    pub accepted: u64,
    pub achieved: u64,
    pub allocated: u64,
    pub issued: u64,
    pub rewarded: u64,
    pub rss_kib: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct ReadFigures {
    pub get_wallet_gateway: Summary,
    pub get_wallet_direct: Summary,
    pub get_my_page_gateway: Summary,
    pub get_my_page_direct: Summary,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct ExchangeFigures {
    pub concurrency: usize,
    /// Through the gateway, each exchange a different ISSUED reward, gift healthy.
    pub healthy_gateway: Summary,
    /// Right after, the same concurrency: `RedeemGift` of a coffee from the balance (any
    /// number of rewards), each call its own request id.
    pub redeem_gateway: Summary,
    /// Gift stopped, breaker still closed: the calls that trip it.
    pub tripping_gateway: Summary,
    pub breaker_after_trip: String,
    /// Breaker open: fast-fail, through the gateway and straight to wallet.
    pub open_gateway: Summary,
    pub open_direct: Summary,
    /// Open-state answers that carried `retry-after`.
    pub open_with_retry_after: u64,
    pub breaker_at_end: String,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct Baselines {
    /// `NotificationService/ListNotifications` answering an empty list, server in this process.
    pub echo_direct: Summary,
    /// The same with `TCP_NODELAY` on the server's sockets.
    pub echo_direct_nodelay: Summary,
    /// The same server behind a second gateway process (token check, routing, proxying).
    pub echo_gateway: Summary,
    /// Answers of about 3 KB (`LARGE_ANSWER` notifications), without and with `TCP_NODELAY`.
    pub echo_large_direct: Summary,
    pub echo_large_direct_nodelay: Summary,
    /// One client, one call at a time.
    pub echo_direct_1: Summary,
    pub echo_gateway_1: Summary,
    /// `grpc.health.v1.Health/Check` answered by: this process, the gateway itself, mission.
    pub health_in_process: Summary,
    pub health_gateway: Summary,
    pub health_mission: Summary,
    pub jetstream: Option<JetStreamFigures>,
    pub sqlite: Option<CommitFigures>,
    pub postgres: Option<CommitFigures>,
    pub skipped: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct ServiceFigures {
    pub name: String,
    pub rss_idle_kib: Option<u64>,
    pub rss_peak_kib: Option<u64>,
    pub rss_end_kib: Option<u64>,
    /// CPU time over the load, as a percentage of one core.
    pub cpu_load_pct: Option<f64>,
    /// Median, from spawning an extra instance to its "listening on" line / to SERVING.
    pub start_listening_ms: Option<f64>,
    pub start_serving_ms: Option<f64>,
    pub start_serving_all_ms: Vec<f64>,
    pub rss_after_start_kib: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct ProcessFigures {
    pub name: String,
    pub cpu_load_pct: Option<f64>,
    pub rss_peak_kib: Option<u64>,
}

mod table;

pub use table::table;
