//! The main load: players achieving missions through the gateway while the whole flow,
//! the backlog, memory and CPU are sampled.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use e2e::System;
use tokio::task::JoinHandle;

use super::events::{Counts, Events, drain};
use super::{Player, channels, player_workers, sample_flows, services};
use crate::cli::Plan;
use crate::drive::paced_loop;
use crate::hist::Recorder;
use crate::procs;
use crate::progress::Progress;
use crate::report::{ProcessFigures, Results, Sample, Sustained};

/// A process measured over the load: its name and pid.
type Process = (String, Option<u32>);

/// The figures of one moment of the flow.
fn sample(t_s: f64, accepted: u64, c: Counts, rss_kib: BTreeMap<String, u64>) -> Sample {
    Sample {
        t_s,
        accepted,
        achieved: c.achieved,
        allocated: c.allocated,
        issued: c.issued,
        rewarded: c.rewarded,
        rss_kib,
    }
}

pub(super) async fn load(
    plan: &Plan,
    progress: &Progress,
    sys: &Arc<System>,
    events: &Events,
    players: &Arc<Mutex<Vec<Player>>>,
    accepted: &Arc<AtomicU64>,
    r: &mut Results,
) {
    let gw_url = sys.gateway().url();
    let pace = plan.rate.map_or_else(String::new, |r| format!(", paced at {r:.0}/s"));
    progress.phase(&format!("load: {} players achieving missions through the gateway{pace}", plan.players), plan.load);
    let procs = processes(sys);
    let cpu_before: Vec<_> = procs.iter().map(|(_, p)| p.and_then(procs::cpu_time)).collect();
    let first = events.snapshot().await;
    let accepted_at_start = accepted.load(Ordering::Relaxed);
    let start = Instant::now();
    let until = start + plan.load;
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));

    // samplers of the whole flow
    let samplers: Vec<_> = (0..plan.samplers)
        .map(|i| {
            tokio::spawn(sample_flows(
                sys.clone(),
                channels(&gw_url, 1).remove(0),
                format!("w{i}"),
                until,
                None,
                Duration::from_millis(100),
                accepted.clone(),
            ))
        })
        .collect();
    let live = Live { stop: stop.clone(), done: done.clone(), accepted: accepted.clone() };
    let monitor = monitor(plan, progress, sys, &procs, start, live).await;

    let workers = player_workers(plan, sys, &gw_url, "p", Some(players), accepted);
    let run = paced_loop(workers, plan.load, Some(done), plan.rate).await;
    let drain_start = Instant::now();
    let load_s = run.wall.as_secs_f64();
    let end = events.snapshot().await;
    let accepted_at_end = accepted.load(Ordering::Relaxed);
    let cpu_after: Vec<_> = procs.iter().map(|(_, p)| p.and_then(procs::cpu_time)).collect();
    let mut flow = Recorder::default();
    for s in samplers {
        if let Ok(rec) = s.await {
            flow.merge(&rec);
        }
    }

    // the drain, still monitored
    progress.phase("draining the backlog", plan.drain_limit.min(Duration::from_secs(10)));
    let drained = drain(events, accepted, plan.drain_limit).await;
    let drain_s = drain_start.elapsed().as_secs_f64();
    let last = match drained {
        Some(c) => c,
        None => events.snapshot().await,
    };
    stop.store(true, Ordering::Relaxed);
    let (mut timeline, peaks) = monitor.await.unwrap_or_default();
    timeline.insert(0, sample(0.0, accepted_at_start, first, BTreeMap::new()));
    timeline.push(sample(load_s, accepted_at_end, end, BTreeMap::new()));
    timeline.push(sample(load_s + drain_s, accepted.load(Ordering::Relaxed), last, BTreeMap::new()));
    timeline.sort_by(|a, b| a.t_s.total_cmp(&b.t_s));

    r.achieve_mission.gateway = run.summary();
    r.flow.under_load = flow.summary(run.wall);
    record_processes(r, &procs, &cpu_before, &cpu_after, &peaks, load_s);
    let s = &mut r.flow.sustained;
    s.load_s = load_s;
    s.accepted_at_start = accepted_at_start;
    s.accepted_at_end = accepted_at_end;
    sustained(s, &timeline, first, end);
    s.drain_s = drain_s;
    s.drained = drained.is_some();
    s.rewarded_final = last.rewarded;
    s.published_final = last.achieved;
    s.drain_rate_per_s = last.rewarded.saturating_sub(end.rewarded) as f64 / drain_s.max(1e-9);
    s.flow_rate_incl_drain_per_s = last.rewarded.saturating_sub(first.rewarded) as f64 / (load_s + drain_s).max(1e-9);
    r.flow.timeline = timeline;
}

/// Every service, nats-server and this load generator.
fn processes(sys: &System) -> Vec<Process> {
    services(sys)
        .into_iter()
        .map(|(n, s)| (n.to_owned(), s.pid()))
        .chain([
            ("nats-server".to_owned(), procs::nats_server(sys.nats.port)),
            ("bench (load generator)".to_owned(), Some(std::process::id())),
        ])
        .collect()
}

/// What the monitor reads while the load runs.
struct Live {
    /// Set when the load and the drain are over.
    stop: Arc<AtomicBool>,
    /// Calls made.
    done: Arc<AtomicU64>,
    /// Missions accepted.
    accepted: Arc<AtomicU64>,
}

/// The monitor: event counts, RSS of `procs` and the live figures every
/// `plan.sample_every` until `live.stop`; answers the timeline and each process's peak RSS.
async fn monitor(
    plan: &Plan,
    progress: &Progress,
    sys: &System,
    procs: &[Process],
    start: Instant,
    live: Live,
) -> JoinHandle<(Vec<Sample>, BTreeMap<String, u64>)> {
    let Live { stop, done, accepted } = live;
    let progress = progress.clone();
    let procs = procs.to_vec();
    let events = Events::connect(&sys.nats).await;
    let every = plan.sample_every;
    tokio::spawn(async move {
        let mut timeline = Vec::new();
        let mut peaks: BTreeMap<String, u64> = BTreeMap::new();
        let Ok(events) = events else { return (timeline, peaks) };
        let mut last = (Instant::now(), 0u64);
        while !stop.load(Ordering::Relaxed) {
            tokio::time::sleep(every).await;
            let c = events.snapshot().await;
            let mut rss = BTreeMap::new();
            for (name, pid) in &procs {
                if let Some(kib) = pid.and_then(procs::rss_kib) {
                    let peak = peaks.entry(name.clone()).or_default();
                    *peak = (*peak).max(kib);
                    rss.insert(name.clone(), kib);
                }
            }
            let calls = done.load(Ordering::Relaxed);
            let rate = (calls - last.1) as f64 / last.0.elapsed().as_secs_f64().max(1e-9);
            last = (Instant::now(), calls);
            let a = accepted.load(Ordering::Relaxed);
            progress.detail(format!(
                "{rate:.0} AchieveMission/s, rewarded {} of {a}, backlog {}",
                c.rewarded,
                a.saturating_sub(c.rewarded)
            ));
            timeline.push(sample(start.elapsed().as_secs_f64(), a, c, rss));
        }
        (timeline, peaks)
    })
}

/// CPU (share of one core over the load) and peak RSS of every process.
fn record_processes(
    r: &mut Results,
    procs: &[Process],
    cpu_before: &[Option<Duration>],
    cpu_after: &[Option<Duration>],
    peaks: &BTreeMap<String, u64>,
    load_s: f64,
) {
    for (i, (name, _)) in procs.iter().enumerate() {
        let pct = match (cpu_before[i], cpu_after[i]) {
            (Some(a), Some(b)) => Some((b - a).as_secs_f64() / load_s.max(1e-9) * 100.0),
            _ => None,
        };
        match r.services.iter_mut().find(|f| &f.name == name) {
            Some(f) => {
                f.cpu_load_pct = pct;
                f.rss_peak_kib = peaks.get(name).copied();
            }
            None => r.other_processes.push(ProcessFigures {
                name: name.clone(),
                cpu_load_pct: pct,
                rss_peak_kib: peaks.get(name).copied(),
            }),
        }
    }
}

/// The sustained rate and the backlog over the load (`s.load_s` and the accepted counts
/// set), from the counts at its start and end and the timeline between.
fn sustained(s: &mut Sustained, timeline: &[Sample], first: Counts, end: Counts) {
    let load_s = s.load_s;
    let backlog = |s: &Sample| s.accepted.saturating_sub(s.rewarded) as f64;
    let half = load_s / 2.0;
    let at_half = timeline
        .iter()
        .filter(|s| s.t_s <= load_s)
        .min_by(|a, b| (a.t_s - half).abs().total_cmp(&(b.t_s - half).abs()))
        .cloned();
    let at_end = timeline.iter().rfind(|s| s.t_s <= load_s).cloned().unwrap_or_default();
    s.rewarded_at_start = first.rewarded;
    s.published_at_end = end.achieved;
    s.allocated_at_end = end.allocated;
    s.issued_at_end = end.issued;
    s.rewarded_at_end = end.rewarded;
    s.accept_rate_per_s = (s.accepted_at_end - s.accepted_at_start) as f64 / load_s.max(1e-9);
    s.flow_rate_per_s = end.rewarded.saturating_sub(first.rewarded) as f64 / load_s.max(1e-9);
    s.backlog_at_end = s.accepted_at_end.saturating_sub(end.rewarded);
    if let Some(h) = at_half.filter(|h| load_s - h.t_s > 0.2) {
        let dt = load_s - h.t_s;
        s.flow_rate_second_half_per_s = end.rewarded.saturating_sub(h.rewarded) as f64 / dt;
        s.backlog_at_half = h.accepted.saturating_sub(h.rewarded);
        s.backlog_growth_per_s = (backlog(&at_end) - backlog(&h)) / dt;
    }
    // Growing: more than a second's worth of flow (or 50 missions) added over the second half.
    s.backlog_grew = s.backlog_growth_per_s * (load_s / 2.0) > (s.flow_rate_per_s).max(50.0);
}
