//! `gamectl status`: the health of a running system, read from each role's metrics (the
//! `metrics` addresses in endpoints.json): readiness, consumer lag, outbox backlog and
//! age, dead letters, the breaker. Exits 0 when healthy, 1 when something is not, 2 when
//! there is nothing to ask.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Duration;

use metrics_adapter::scrape::{self, Scrape};
use serde::Serialize;

use crate::cli::Global;
use crate::endpoints::Endpoints;

#[derive(Debug, Clone, clap::Args)]
pub struct StatusArgs {
    /// A consumer with more events than this waiting is unhealthy.
    #[arg(long, default_value_t = 1000)]
    pub max_lag: u64,
    /// An outbox whose oldest unpublished event is older than this (seconds) is unhealthy.
    #[arg(long, default_value_t = 60.0)]
    pub max_outbox_age: f64,
    /// Seconds to wait for each role's metrics.
    #[arg(long, default_value_t = 2.0)]
    pub timeout: f64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RoleStatus {
    pub role: String,
    pub metrics: Option<String>,
    pub reachable: bool,
    pub ready: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outbox_pending: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outbox_oldest_age_seconds: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub breaker: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ConsumerStatus {
    pub consumer: String,
    pub lag: f64,
    pub ack_pending: f64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    pub healthy: bool,
    pub problems: Vec<String>,
    pub roles: Vec<RoleStatus>,
    pub consumers: Vec<ConsumerStatus>,
    pub dead_letters: Option<f64>,
}

/// What one role's scrape (or its failure) says.
fn role_status(role: &str, metrics: Option<&str>, scraped: Option<&Result<Scrape, String>>) -> RoleStatus {
    let mut s = RoleStatus {
        role: role.to_owned(),
        metrics: metrics.map(str::to_owned),
        reachable: false,
        ready: false,
        outbox_pending: None,
        outbox_oldest_age_seconds: None,
        breaker: None,
        error: None,
    };
    match scraped {
        None => s.error = Some("no metrics address in endpoints.json".into()),
        Some(Err(e)) => s.error = Some(e.clone()),
        Some(Ok(scrape)) => {
            s.reachable = true;
            s.ready = scrape.value("readiness", &[]) == Some(1.0);
            s.outbox_pending = scrape.value("outbox_pending", &[]);
            s.outbox_oldest_age_seconds = scrape.value("outbox_oldest_age_seconds", &[]);
            s.breaker =
                scrape.find("breaker_state", &[]).find(|x| x.value == 1.0).and_then(|x| x.labels.get("state").cloned());
        }
    }
    s
}

/// Judges the scrapes of every role.
pub fn judge(endpoints: &Endpoints, scrapes: &BTreeMap<String, Result<Scrape, String>>, args: &StatusArgs) -> Status {
    let mut names: Vec<&String> = endpoints.services.keys().chain(endpoints.metrics.keys()).collect();
    names.sort();
    names.dedup();
    let roles: Vec<RoleStatus> =
        names.iter().map(|r| role_status(r, endpoints.metrics.get(*r).map(String::as_str), scrapes.get(*r))).collect();
    // A durable's lag is reported by its stream's owner (and may be by others): the most.
    let mut consumers: BTreeMap<String, ConsumerStatus> = BTreeMap::new();
    let mut dead_letters: Option<f64> = None;
    for scrape in scrapes.values().flatten() {
        for (metric, is_lag) in [("consumer_lag", true), ("consumer_ack_pending", false)] {
            for x in scrape.find(metric, &[]) {
                let Some(name) = x.labels.get("consumer") else { continue };
                let c = consumers.entry(name.clone()).or_insert_with(|| ConsumerStatus {
                    consumer: name.clone(),
                    lag: 0.0,
                    ack_pending: 0.0,
                });
                let field = if is_lag { &mut c.lag } else { &mut c.ack_pending };
                *field = field.max(x.value);
            }
        }
        if let Some(d) = scrape.value("deadletter_messages", &[]) {
            dead_letters = Some(dead_letters.map_or(d, |x: f64| x.max(d)));
        }
    }
    let mut problems = Vec::new();
    for r in &roles {
        if !r.reachable {
            problems.push(format!("{}: unreachable ({})", r.role, r.error.as_deref().unwrap_or("?")));
        } else if !r.ready {
            problems.push(format!("{}: not ready", r.role));
        }
        if let Some(age) = r.outbox_oldest_age_seconds.filter(|a| *a > args.max_outbox_age) {
            problems.push(format!("{}: oldest unpublished outbox event is {age:.0} s old", r.role));
        }
        // Half-open is recovering: the next calls try the gift service again, and with no
        // traffic it stays so. Only an open breaker refuses exchanges.
        if let Some(b) = r.breaker.as_deref().filter(|b| *b == "open") {
            problems.push(format!("{}: circuit breaker {b}", r.role));
        }
    }
    for c in consumers.values() {
        if c.lag > args.max_lag as f64 {
            problems.push(format!("consumer {}: {} events waiting", c.consumer, c.lag));
        }
    }
    if let Some(d) = dead_letters.filter(|d| *d > 0.0) {
        problems.push(format!("dead-letter stream: {d} events"));
    }
    Status { healthy: problems.is_empty(), problems, roles, consumers: consumers.into_values().collect(), dead_letters }
}

fn text(status: &Status) -> String {
    let num = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v}"));
    let rows: Vec<Vec<String>> = status
        .roles
        .iter()
        .map(|r| {
            vec![
                r.role.clone(),
                if !r.reachable {
                    "unreachable"
                } else if r.ready {
                    "ready"
                } else {
                    "NOT READY"
                }
                .to_owned(),
                num(r.outbox_pending),
                r.outbox_oldest_age_seconds.map_or_else(|| "-".to_owned(), |a| format!("{a:.1} s")),
                match r.breaker.as_deref() {
                    Some("half_open") => "recovering (half-open)".to_owned(),
                    other => other.unwrap_or("-").to_owned(),
                },
            ]
        })
        .collect();
    let mut out = crate::output::table(&["ROLE", "STATE", "OUTBOX", "OLDEST", "BREAKER"], &rows);
    if !status.consumers.is_empty() {
        let rows: Vec<Vec<String>> = status
            .consumers
            .iter()
            .map(|c| vec![c.consumer.clone(), format!("{}", c.lag), format!("{}", c.ack_pending)])
            .collect();
        out.push('\n');
        out.push_str(&crate::output::table(&["CONSUMER", "LAG", "ACK PENDING"], &rows));
    }
    out.push_str(&format!("\ndead letters: {}\n", num(status.dead_letters)));
    if status.healthy {
        out.push_str("healthy\n");
    } else {
        out.push_str("UNHEALTHY:\n");
        for p in &status.problems {
            out.push_str(&format!("  {p}\n"));
        }
    }
    out
}

pub async fn run(global: &Global, args: StatusArgs) -> ExitCode {
    let endpoints = match Endpoints::load(&global.data_dir) {
        Ok(Some(e)) => e,
        Ok(None) => {
            eprintln!(
                "error: no {} (is `gamectl up` running with this --data-dir?)",
                Endpoints::path(&global.data_dir).display()
            );
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let timeout = Duration::try_from_secs_f64(args.timeout).unwrap_or(Duration::from_secs(2));
    let fetches = endpoints.metrics.clone().into_iter().map(|(role, url)| async move {
        let scraped = scrape::fetch(&url, timeout).await.map(|t| Scrape::parse(&t));
        (role, scraped)
    });
    let scrapes: BTreeMap<_, _> = futures_join(fetches).await.into_iter().collect();
    let status = judge(&endpoints, &scrapes, &args);
    if global.json {
        println!("{}", serde_json::to_string_pretty(&status).unwrap_or_default());
    } else {
        print!("{}", text(&status));
    }
    if status.healthy { ExitCode::SUCCESS } else { ExitCode::from(1) }
}

/// Runs the futures together (each has its own timeout).
async fn futures_join<F: std::future::Future + Send + 'static>(futures: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        if let Ok(v) = h.await {
            out.push(v);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> StatusArgs {
        StatusArgs { max_lag: 10, max_outbox_age: 60.0, timeout: 1.0 }
    }

    fn endpoints() -> Endpoints {
        let mut e = Endpoints { nats: "n".into(), gateway: None, services: BTreeMap::new(), metrics: BTreeMap::new() };
        for r in ["mission", "reward", "wallet"] {
            e.services.insert(r.into(), format!("http://{r}"));
            e.metrics.insert(r.into(), format!("http://{r}/metrics"));
        }
        e
    }

    fn ok(text: &str) -> Result<Scrape, String> {
        Ok(Scrape::parse(text))
    }

    #[test]
    fn a_system_whose_roles_are_ready_and_caught_up_is_healthy() {
        let scrapes = BTreeMap::from([
            (
                "mission".into(),
                ok(
                    "readiness 1\noutbox_pending 0\noutbox_oldest_age_seconds 0\nconsumer_lag{consumer=\"reward-allocate\"} 3\n",
                ),
            ),
            ("reward".into(), ok("readiness 1\ndeadletter_messages 0\n")),
            ("wallet".into(), ok("readiness 1\nbreaker_state{state=\"closed\"} 1\nbreaker_state{state=\"open\"} 0\n")),
        ]);
        let s = judge(&endpoints(), &scrapes, &args());
        assert!(s.healthy, "{:?}", s.problems);
        assert_eq!(s.consumers, [ConsumerStatus { consumer: "reward-allocate".into(), lag: 3.0, ack_pending: 0.0 }]);
        assert_eq!(s.roles[2].breaker.as_deref(), Some("closed"));
    }

    #[test]
    fn each_kind_of_trouble_is_named() {
        let scrapes = BTreeMap::from([
            (
                "mission".into(),
                ok("readiness 1\noutbox_oldest_age_seconds 61\nconsumer_lag{consumer=\"reward-allocate\"} 11\n"),
            ),
            ("reward".into(), Err("http://reward/metrics: connection refused".into())),
            ("wallet".into(), ok("readiness 0\nbreaker_state{state=\"open\"} 1\ndeadletter_messages 2\n")),
        ]);
        let s = judge(&endpoints(), &scrapes, &args());
        assert!(!s.healthy);
        let all = s.problems.join("\n");
        for expected in [
            "reward: unreachable",
            "wallet: not ready",
            "mission: oldest unpublished outbox event is 61 s old",
            "wallet: circuit breaker open",
            "consumer reward-allocate: 11 events waiting",
            "dead-letter stream: 2 events",
        ] {
            assert!(all.contains(expected), "{expected} in\n{all}");
        }
    }

    #[test]
    fn a_half_open_breaker_is_recovering_not_a_problem() {
        let scrapes = BTreeMap::from([(
            "wallet".into(),
            ok("readiness 1\nbreaker_state{state=\"closed\"} 0\nbreaker_state{state=\"half_open\"} 1\n"),
        )]);
        let s = judge(&endpoints(), &scrapes, &args());
        assert!(!s.problems.iter().any(|p| p.contains("breaker")), "{:?}", s.problems);
        assert!(text(&s).contains("recovering (half-open)"), "{}", text(&s));
    }
}
