//! `--compare-backends`: the main load and its drain on SQLite and on PostgreSQL in turn,
//! each on a fresh system, in ABBA order so that a machine getting busier or quieter
//! during the run weighs on both alike. Prints one line per round and the ratios of the
//! medians; writes `<out>/compare.json`.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use e2e::System;
use serde::Serialize;

use super::events::Events;
use super::{load, system_options};
use crate::cli::Plan;
use crate::procs;
use crate::progress::Progress;
use crate::report::{Results, Sustained};

#[derive(Debug, Clone, Serialize)]
struct Round {
    backend: &'static str,
    achieve_mission: crate::hist::Summary,
    flow: Sustained,
    /// CPU of each process over the load, % of one core (PostgreSQL's server is not one
    /// of them: what the services leave of 100 % x cores is mostly its).
    cpu_pct: BTreeMap<String, f64>,
}

/// The order of the backends over `rounds`: SQLite, PostgreSQL, PostgreSQL, SQLite, ...
fn order(rounds: u32) -> Vec<bool> {
    (0..rounds.max(1)).flat_map(|r| if r % 2 == 0 { [false, true] } else { [true, false] }).collect()
}

pub(super) async fn run(plan: &Plan, rounds: u32) -> Result<(), String> {
    std::fs::create_dir_all(&plan.out).map_err(|e| format!("{}: {e}", plan.out.display()))?;
    let order = order(rounds);
    let progress = Progress::new((plan.load + Duration::from_secs(12)) * u32::try_from(order.len()).unwrap_or(1));
    let mut done = Vec::new();
    for postgres in order {
        let backend = if postgres { "postgres" } else { "sqlite" };
        progress.phase(&format!("starting the system on {backend}"), Duration::from_secs(5));
        let sys = Arc::new(System::start_with(system_options(postgres, plan.nats_cluster)).await);
        tokio::time::sleep(Duration::from_secs(2)).await;
        let events = Events::connect(&sys.nats).await?;
        let (players, accepted) = (Arc::new(Mutex::new(Vec::new())), Arc::new(AtomicU64::new(0)));
        let mut r = Results::default();
        load::load(plan, &progress, &sys, &events, &players, &accepted, &mut r).await;
        let cpu_pct = r.other_processes.iter().filter_map(|p| Some((p.name.clone(), p.cpu_load_pct?))).collect();
        done.push(Round { backend, achieve_mission: r.achieve_mission.gateway, flow: r.flow.sustained, cpu_pct });
        drop(events);
        drop(sys);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    progress.finish();
    let table = table(plan, &done);
    println!("{table}");
    std::fs::write(plan.out.join("compare.txt"), &table).map_err(|e| e.to_string())?;
    let json = serde_json::to_string_pretty(&done).map_err(|e| e.to_string())?;
    std::fs::write(plan.out.join("compare.json"), json).map_err(|e| e.to_string())?;
    println!("wrote {0}/compare.json, {0}/compare.txt", plan.out.display());
    Ok(())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// Rewarded per accepted over the load: 1.0 when the flow keeps up with the front door.
fn keeps_up(f: &Sustained) -> f64 {
    f.flow_rate_per_s / f.accept_rate_per_s.max(1e-9)
}

fn table(plan: &Plan, rounds: &[Round]) -> String {
    use std::fmt::Write as _;
    let (_, cores, load) = procs::machine();
    let mut t = String::new();
    let _ = writeln!(
        t,
        "SQLite vs PostgreSQL, {} players, {:.0} s of load each, {} cores, load average at the end {load}",
        plan.players,
        plan.load.as_secs_f64(),
        cores,
    );
    let _ = writeln!(
        t,
        "{:<10} {:>16} {:>8} {:>8} {:>14} {:>16} {:>12} {:>14}",
        "backend",
        "AchieveMission/s",
        "p50 ms",
        "p99 ms",
        "flow/accepted",
        "backlog growth/s",
        "drain /s",
        "services' CPU"
    );
    for r in rounds {
        let services: f64 =
            r.cpu_pct.iter().filter(|(n, _)| !n.starts_with("nats") && !n.starts_with("bench")).map(|(_, c)| c).sum();
        let _ = writeln!(
            t,
            "{:<10} {:>16.0} {:>8.1} {:>8.1} {:>13.2}x {:>16.0} {:>12.0} {:>13.0}%",
            r.backend,
            r.achieve_mission.ok_per_s,
            r.achieve_mission.p50_ms,
            r.achieve_mission.p99_ms,
            keeps_up(&r.flow),
            r.flow.backlog_growth_per_s,
            r.flow.drain_rate_per_s,
            services,
        );
    }
    let of = |backend: &str, f: &dyn Fn(&Round) -> f64| {
        median(rounds.iter().filter(|r| r.backend == backend).map(f).collect())
    };
    let rate = |r: &Round| r.achieve_mission.ok_per_s;
    let p99 = |r: &Round| r.achieve_mission.p99_ms;
    let flow = |r: &Round| keeps_up(&r.flow);
    let (sqlite, postgres) = (of("sqlite", &rate), of("postgres", &rate));
    let _ = writeln!(t, "medians:");
    let _ = writeln!(
        t,
        "  AchieveMission/s   SQLite {sqlite:.0}, PostgreSQL {postgres:.0}: PostgreSQL {:.2}x SQLite",
        postgres / sqlite.max(1e-9)
    );
    let _ =
        writeln!(t, "  p99 ms             SQLite {:.1}, PostgreSQL {:.1}", of("sqlite", &p99), of("postgres", &p99));
    let _ = writeln!(
        t,
        "  flow / accepted    SQLite {:.2}x, PostgreSQL {:.2}x (1.00x: the flow keeps up with the front door)",
        of("sqlite", &flow),
        of("postgres", &flow)
    );
    t
}

#[cfg(test)]
mod tests {
    #[test]
    fn rounds_alternate_abba_so_drift_weighs_on_both_backends_alike() {
        assert_eq!(super::order(1), vec![false, true]);
        assert_eq!(super::order(2), vec![false, true, true, false]);
        assert_eq!(super::order(3), vec![false, true, true, false, false, true]);
    }

    #[test]
    fn the_median_of_an_even_count_is_the_mean_of_the_middle_two() {
        assert!((super::median(vec![3.0, 1.0, 4.0, 2.0]) - 2.5).abs() < 1e-9);
        assert!((super::median(vec![5.0, 1.0, 3.0]) - 3.0).abs() < 1e-9);
    }
}
