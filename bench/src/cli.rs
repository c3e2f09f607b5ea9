//! Flags, and how long each phase runs.

use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "bench",
    version,
    about = "Benchmarks the whole system against raw baselines measured in the same run",
    long_about = "Starts the whole system itself (a private nats-server, every service binary as a child \
process, SQLite files in a temp dir, the gateway in front), drives simulated players through the gateway, \
and measures with HDR histograms: AchieveMission throughput and latency, end-to-end flow latency seen \
through WatchMyPage, the sustained whole-flow rate and backlog, GetWallet/GetMyPage reads, exchange \
through the circuit breaker (healthy and open), each service's RSS and time to SERVING; next to raw \
baselines taken on the same machine in the same run (tonic unary echo direct and through a gateway, \
JetStream publish, one-row and batched commits on SQLite and PostgreSQL). Prints a table and writes \
<out>/bench.json, <out>/table.txt and <out>/latency.svg. It asserts no thresholds.",
    after_help = "The service binaries are taken from the folder of this executable (GAME_BIN_DIR overrides it), \
so build them in the same profile first:\n  \
cargo build --release --bins && cargo run --release -p bench -- --duration 20\n\
(in debug: cargo build --bins && cargo run -p bench -- --quick). Needs nats-server on PATH. The \
PostgreSQL baseline (and --postgres) uses TEST_DATABASE_URL or postgres://postgres@127.0.0.1:5432/postgres, \
creating a fresh database; without a server the PostgreSQL baseline is skipped."
)]
pub struct Args {
    /// Simulated players at once, each a closed loop (its next call when the last one answered) [default: 32, 4 with --quick]
    #[arg(long)]
    pub players: Option<usize>,
    /// AchieveMission calls per second offered in all during the main load, paced (each
    /// call timed from when it was due); without it every player calls as fast as answers
    /// come. With a rate the system can follow, the backlog shows whether the flow keeps up.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Seconds of the main AchieveMission load [default: 20, 2 with --quick]
    #[arg(long)]
    pub duration: Option<f64>,
    /// Folder for bench.json, table.txt and latency.svg (created if missing)
    #[arg(long, default_value = "target/bench")]
    pub out: PathBuf,
    /// Every relational service on its own fresh PostgreSQL database instead of SQLite
    #[arg(long)]
    pub postgres: bool,
    /// Only the main load and its drain, on SQLite and on PostgreSQL in turn, N rounds in
    /// ABBA order (SQLite, PostgreSQL, PostgreSQL, SQLite, ...), each on a fresh system:
    /// the two backends compared in one run, on one machine in one state [default: 2]
    #[arg(long, num_args = 0..=1, default_missing_value = "2", value_name = "ROUNDS")]
    pub compare_backends: Option<u32>,
    /// The bus as production runs it: a JetStream cluster of N secured nodes on this
    /// machine, every stream replicated min(N, 3) times [default: 1, one nats-server]
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=5))]
    pub nats_cluster: u8,
    /// Every phase, briefly: a smoke run of a few seconds plus start-up (what CI runs)
    #[arg(long)]
    pub quick: bool,
    /// Missions one simulated player achieves before a new player takes its place (keeps pages realistic)
    #[arg(long, default_value_t = 20)]
    pub missions_per_player: u32,
}

/// The resolved plan of a run.
#[derive(Debug, Clone)]
pub struct Plan {
    pub players: usize,
    /// Offered AchieveMission rate of the main load (paced), or as fast as answered.
    pub rate: Option<f64>,
    pub load: Duration,
    pub out: PathBuf,
    pub postgres: bool,
    /// Nodes of the JetStream cluster (1: one nats-server).
    pub nats_cluster: usize,
    pub quick: bool,
    pub missions_per_player: u32,
    /// Each baseline measurement.
    pub baseline: Duration,
    /// Each read / short comparison run.
    pub short: Duration,
    /// Healthy exchanges at most, and the time they may take.
    pub exchanges: usize,
    pub exchange_time: Duration,
    /// Flows measured one at a time on the idle system.
    pub idle_flows: usize,
    /// Players watching their page during the load, one flow at a time each.
    pub samplers: usize,
    /// Start-ups measured per service.
    pub startup_reps: usize,
    /// Longest wait for the backlog to drain after the load.
    pub drain_limit: Duration,
    /// Between samples of event counts, RSS and CPU during the load.
    pub sample_every: Duration,
}

impl Plan {
    pub fn from_args(a: &Args) -> Self {
        let q = a.quick;
        let secs = |normal: f64, quick: f64| Duration::from_secs_f64(if q { quick } else { normal });
        Self {
            players: a.players.unwrap_or(if q { 4 } else { 32 }).max(1),
            rate: a.rate.filter(|r| r.is_finite() && *r > 0.0),
            load: Duration::from_secs_f64(a.duration.unwrap_or(if q { 2.0 } else { 20.0 }).max(0.5)),
            out: a.out.clone(),
            postgres: a.postgres,
            nats_cluster: usize::from(a.nats_cluster),
            quick: q,
            missions_per_player: a.missions_per_player.max(1),
            baseline: secs(2.0, 0.3),
            short: secs(3.0, 0.5),
            exchanges: if q { 20 } else { 400 },
            exchange_time: secs(3.0, 0.5),
            idle_flows: if q { 3 } else { 20 },
            samplers: if q { 1 } else { 4 },
            startup_reps: if q { 1 } else { 3 },
            drain_limit: secs(120.0, 30.0),
            sample_every: secs(1.0, 0.5),
        }
    }

    /// Roughly how long the timed phases take, for the progress bar.
    pub fn planned(&self) -> Duration {
        let baselines = self.baseline * 18;
        let reads = self.short * 6;
        let fixed = if self.quick { Duration::from_secs(6) } else { Duration::from_secs(25) };
        baselines + reads + self.load + self.exchange_time * 3 + fixed
    }
}
