//! The printed table: one function per section, the rows' formatting helpers.

use std::fmt::Write as _;

use super::Results;
use crate::hist::Summary;

// The raw baselines and the processes: sections of their own file.
mod machine;
use machine::{baselines, services};

struct Row {
    figure: String,
    value: String,
    baseline: String,
    ratio: String,
}

#[derive(Default)]
struct Table {
    rows: Vec<Option<Row>>,
    sections: Vec<(usize, String)>,
}

impl Table {
    fn section(&mut self, name: &str) {
        self.sections.push((self.rows.len(), name.to_owned()));
        self.rows.push(None);
    }

    fn row(
        &mut self,
        figure: impl Into<String>,
        value: impl Into<String>,
        baseline: impl Into<String>,
        ratio: impl Into<String>,
    ) {
        self.rows.push(Some(Row {
            figure: figure.into(),
            value: value.into(),
            baseline: baseline.into(),
            ratio: ratio.into(),
        }));
    }

    fn render(&self) -> String {
        let w = |f: fn(&Row) -> &str| self.rows.iter().flatten().map(|r| f(r).chars().count()).max().unwrap_or(0);
        let (wf, wv, wb) = (w(|r| &r.figure).max(6), w(|r| &r.value).max(5), w(|r| &r.baseline).max(8));
        let mut out = String::new();
        let _ = writeln!(out, "{:<wf$}  {:<wv$}  {:<wb$}  Ratio", "Figure", "Value", "Baseline");
        let _ = writeln!(out, "{}", "-".repeat(wf + wv + wb + 14));
        let mut sections = self.sections.iter();
        for (i, row) in self.rows.iter().enumerate() {
            match row {
                None => {
                    let name = sections.find(|(at, _)| *at == i).map_or("", |(_, n)| n.as_str());
                    let _ = writeln!(out, "\n[{name}]");
                }
                Some(r) => {
                    let _ = writeln!(
                        out,
                        "{:<wf$}  {:<wv$}  {:<wb$}  {}",
                        r.figure,
                        r.value,
                        r.baseline,
                        r.ratio,
                        wf = wf,
                        wv = wv,
                        wb = wb
                    );
                }
            }
        }
        out
    }
}

fn rate(v: f64) -> String {
    if v >= 100.0 { format!("{v:.0}/s") } else { format!("{v:.1}/s") }
}

fn ms(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn lat(s: &Summary) -> String {
    format!("p50 {} / p99 {} ms", ms(s.p50_ms), ms(s.p99_ms))
}

fn lat3(s: &Summary) -> String {
    format!("p50 {} / p99 {} / p99.9 {} ms", ms(s.p50_ms), ms(s.p99_ms), ms(s.p999_ms))
}

fn ratio(a: f64, b: f64) -> String {
    if !(b > 0.0 && a.is_finite()) {
        return "-".into();
    }
    let r = a / b;
    if r >= 10.0 {
        format!("{r:.1}x")
    } else if r >= 0.1 {
        format!("{r:.2}x")
    } else {
        format!("{r:.4}x")
    }
}

/// `+12 %` overhead of `a` over `b`.
fn overhead(a: f64, b: f64) -> String {
    if b > 0.0 { format!("{:+.0} %", (a / b - 1.0) * 100.0) } else { "-".into() }
}

fn mib(kib: Option<u64>) -> String {
    kib.map_or_else(|| "-".into(), |k| format!("{:.1}", k as f64 / 1024.0))
}

fn opt_ms(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), ms)
}

/// The printed table.
pub fn table(r: &Results) -> String {
    let mut t = Table::default();
    achieve(&mut t, r);
    whale(&mut t, r);
    gateway_overhead(&mut t, r);
    flow(&mut t, r);
    reads(&mut t, r);
    exchange(&mut t, r);
    baselines(&mut t, r);
    services(&mut t, r);
    let m = &r.meta;
    let mut out = format!(
        "bench: {} build, {}, {}, {} players, {:.0} s load, {} cores ({}), load average at start {}\n\n",
        m.profile, m.backend, m.bus, m.players, m.load_s, m.cores, m.cpu, m.load_average_at_start
    );
    out.push_str(&t.render());
    for note in &r.notes {
        let _ = writeln!(out, "note: {note}");
    }
    out
}

/// AchieveMission through the gateway: throughput against the raw baselines, latency, codes.
fn achieve(t: &mut Table, r: &Results) {
    let m = &r.meta;
    let b = &r.baselines;
    let am = &r.achieve_mission.gateway;
    // The one-row commit rate of the database the services run on.
    let (db_name, db) = if m.backend == "postgres" { ("PostgreSQL", &b.postgres) } else { ("SQLite", &b.sqlite) };
    let commits1 = db.as_ref().map_or(0.0, |s| s.one_row.ok_per_s);
    let n = m.players;
    let style = m.rate.map_or_else(|| "closed loop".to_owned(), |r| format!("paced at {r:.0}/s"));
    t.section(&format!("AchieveMission through the gateway ({n} players, {style}, {:.0} s)", am.wall_s));
    t.row(
        "throughput",
        rate(am.ok_per_s),
        format!("{db_name} one-row commits {}", rate(commits1)),
        ratio(am.ok_per_s, commits1),
    );
    t.row(
        "  vs the trivial echo through a gateway",
        rate(am.ok_per_s),
        format!("echo via gateway {}", rate(b.echo_gateway.ok_per_s)),
        ratio(am.ok_per_s, b.echo_gateway.ok_per_s),
    );
    t.row(
        "  vs the trivial echo direct",
        rate(am.ok_per_s),
        format!("echo direct {}", rate(b.echo_direct.ok_per_s)),
        ratio(am.ok_per_s, b.echo_direct.ok_per_s),
    );
    t.row(
        "latency",
        lat3(am),
        format!("echo via gateway {}", lat(&b.echo_gateway)),
        ratio(am.p50_ms, b.echo_gateway.p50_ms) + " (p50)",
    );
    t.row("status codes", format!("{} calls, errors: {}", am.count, am.errors()), "", "");
}

/// The whale: a long history against a new customer.
fn whale(t: &mut Table, r: &Results) {
    let w = &r.whale;
    t.section(&format!(
        "Whale: a customer with {} missions on my page vs a new one ({} missions reported for each, twice, alternating who goes first)",
        w.history, w.missions
    ));
    t.row(
        "per-customer flow, whale / new",
        format!("{} / {}", rate(w.whale_flow_per_s), rate(w.new_flow_per_s)),
        "new customer",
        ratio(w.whale_flow_per_s, w.new_flow_per_s),
    );
    t.row(
        "whale's first page (GetMyPage, direct)",
        format!("{} ms, {} bytes", ms(w.first_page_ms), w.first_page_bytes),
        "",
        "",
    );
    t.row(
        "whale's older pages of 50, slowest / largest of 20",
        format!("{} ms, {} bytes", ms(w.older_page_max_ms), w.older_page_max_bytes),
        "",
        "",
    );
    t.row("seeding the history into the page bucket", format!("{:.1} s", w.seeded_s), "", "");
}

/// What the gateway costs: the same calls through it and straight to the service.
fn gateway_overhead(t: &mut Table, r: &Results) {
    let b = &r.baselines;
    let n = r.meta.players;
    t.section("Gateway overhead (same calls, same concurrency, gateway vs straight to the service)");
    let am = &r.achieve_mission;
    gateway_vs_direct(t, "AchieveMission", &am.gateway_short, &am.direct_short, true);
    t.row(
        "AchieveMission throughput, JSON (Connect, HTTP/1.1) / gRPC, both via the gateway",
        format!("{} / {}", rate(am.json_short.ok_per_s), rate(am.gateway_short.ok_per_s)),
        "gRPC",
        ratio(am.json_short.ok_per_s, am.gateway_short.ok_per_s),
    );
    t.row(
        "AchieveMission p50, JSON / gRPC, both via the gateway",
        format!("{} / {} ms", ms(am.json_short.p50_ms), ms(am.gateway_short.p50_ms)),
        "gRPC",
        overhead(am.json_short.p50_ms, am.gateway_short.p50_ms),
    );
    gateway_vs_direct(t, "GetWallet", &r.reads.get_wallet_gateway, &r.reads.get_wallet_direct, true);
    gateway_vs_direct(t, &format!("echo ({n} clients)"), &b.echo_gateway, &b.echo_direct, true);
    gateway_vs_direct(t, "echo (1 client)", &b.echo_gateway_1, &b.echo_direct_1, false);
}

/// `<what> p50, gateway / direct` (and its throughput first, when `throughput`).
fn gateway_vs_direct(t: &mut Table, what: &str, g: &Summary, d: &Summary, throughput: bool) {
    let (name, clients) = what.split_once(' ').map_or((what, String::new()), |(n, c)| (n, format!(" {c}")));
    if throughput {
        t.row(
            format!("{name} throughput{clients}, gateway / direct"),
            format!("{} / {}", rate(g.ok_per_s), rate(d.ok_per_s)),
            "direct",
            ratio(g.ok_per_s, d.ok_per_s),
        );
    }
    t.row(
        format!("{name} p50{clients}, gateway / direct"),
        format!("{} / {} ms", ms(g.p50_ms), ms(d.p50_ms)),
        "direct",
        overhead(g.p50_ms, d.p50_ms),
    );
}

/// The whole flow, idle and under the load, and how the backlog drains.
fn flow(t: &mut Table, r: &Results) {
    let b = &r.baselines;
    let f = &r.flow;
    let s = &f.sustained;
    let js = b.jetstream.as_ref();
    let js_rate = js.map_or(0.0, |j| j.pipelined.ok_per_s);
    let js_p50 = js.map_or(0.0, |j| j.one_at_a_time.p50_ms);
    t.section("Whole flow: achieve -> reward -> wallet -> mission, and my page");
    t.row(
        "flow latency, idle (WatchMyPage shows ISSUED)",
        format!("{} ({} flows)", lat(&f.idle), f.idle.ok),
        format!("JetStream publish+ack p50 {} ms", ms(js_p50)),
        ratio(f.idle.p50_ms, js_p50) + " (p50)",
    );
    t.row(
        "flow latency, under the load",
        format!("{} ({} flows)", lat3(&f.under_load), f.under_load.ok),
        format!("idle p50 {} ms", ms(f.idle.p50_ms)),
        ratio(f.under_load.p50_ms, f.idle.p50_ms) + " (p50)",
    );
    t.row("  status codes", format!("errors: {} / {}", f.idle.errors(), f.under_load.errors()), "", "");
    t.row(
        "sustained whole-flow rate (MissionRewarded/s)",
        rate(s.flow_rate_per_s),
        format!("JetStream pipelined publish {}", rate(js_rate)),
        ratio(s.flow_rate_per_s, js_rate),
    );
    t.row(
        "  second half of the load",
        rate(s.flow_rate_second_half_per_s),
        format!("missions accepted {}", rate(s.accept_rate_per_s)),
        ratio(s.flow_rate_second_half_per_s, s.accept_rate_per_s),
    );
    t.row(
        "  at the end of the load: accepted / published / rewarded",
        format!("{} / {} / {}", s.accepted_at_end, s.published_at_end, s.rewarded_at_end),
        "",
        "",
    );
    t.row(
        "  backlog (accepted, not rewarded)",
        format!(
            "{} at half, {} at end ({:+.0}/s): {}",
            s.backlog_at_half,
            s.backlog_at_end,
            s.backlog_growth_per_s,
            if s.backlog_grew { "GREW" } else { "steady" }
        ),
        "",
        "",
    );
    t.row(
        "  drain after the load",
        if s.drained { format!("{:.1} s", s.drain_s) } else { format!("not drained after {:.0} s", s.drain_s) },
        format!("{} rewarded of {} published", s.rewarded_final, s.published_final),
        "",
    );
    t.row(
        "  whole-flow rate during the drain (no new missions)",
        rate(s.drain_rate_per_s),
        format!("missions accepted during the load {}", rate(s.accept_rate_per_s)),
        ratio(s.drain_rate_per_s, s.accept_rate_per_s),
    );
    t.row("  whole-flow rate over load + drain", rate(s.flow_rate_incl_drain_per_s), "", "");
}

/// Reads through the gateway against straight to the service.
fn reads(t: &mut Table, r: &Results) {
    let n = r.meta.players;
    t.section(&format!("Reads through the gateway ({n} clients)"));
    for (name, g, d) in [
        ("GetWallet", &r.reads.get_wallet_gateway, &r.reads.get_wallet_direct),
        ("GetMyPage", &r.reads.get_my_page_gateway, &r.reads.get_my_page_direct),
    ] {
        t.row(
            name,
            format!("{}, {}", rate(g.ok_per_s), lat(g)),
            format!("direct {}, p50 {} ms", rate(d.ok_per_s), ms(d.p50_ms)),
            ratio(g.ok_per_s, d.ok_per_s),
        );
        t.row("  status codes", format!("errors: {} (direct: {})", g.errors(), d.errors()), "", "");
    }
}

/// The exchange through the circuit breaker: healthy, tripping, open.
fn exchange(t: &mut Table, r: &Results) {
    let b = &r.baselines;
    let e = &r.exchange;
    t.section(&format!("ExchangeReward through the circuit breaker (via gateway, {} clients)", e.concurrency));
    t.row(
        "healthy",
        format!(
            "{}, {} ({} exchanges)",
            rate(e.healthy_gateway.ok_per_s),
            lat(&e.healthy_gateway),
            e.healthy_gateway.ok
        ),
        format!("echo via gateway p50 {} ms", ms(b.echo_gateway.p50_ms)),
        ratio(e.healthy_gateway.p50_ms, b.echo_gateway.p50_ms) + " (p50)",
    );
    t.row("  status codes", e.healthy_gateway.codes_line(), "", "");
    t.row(
        "RedeemGift (a coffee from the balance), healthy",
        format!("{}, {} ({} redeems)", rate(e.redeem_gateway.ok_per_s), lat(&e.redeem_gateway), e.redeem_gateway.ok),
        format!("ExchangeReward {}", rate(e.healthy_gateway.ok_per_s)),
        ratio(e.redeem_gateway.ok_per_s, e.healthy_gateway.ok_per_s),
    );
    t.row("  status codes", e.redeem_gateway.codes_line(), "", "");
    t.row(
        "gift stopped, breaker closed (tripping it)",
        format!("{} calls, {}", e.tripping_gateway.count, lat(&e.tripping_gateway)),
        format!("then {}", e.breaker_after_trip),
        "",
    );
    t.row("  status codes", e.tripping_gateway.codes_line(), "", "");
    t.row(
        "breaker open: fast-fail",
        lat(&e.open_gateway),
        format!("healthy p50 {} ms", ms(e.healthy_gateway.p50_ms)),
        ratio(e.open_gateway.p50_ms, e.healthy_gateway.p50_ms) + " (p50)",
    );
    t.row(
        "  status codes",
        format!("{}; retry-after on {}", e.open_gateway.codes_line(), e.open_with_retry_after),
        "",
        "",
    );
    t.row("breaker open, straight to wallet", lat(&e.open_direct), format!("end state {}", e.breaker_at_end), "");
}

impl Summary {
    fn codes_line(&self) -> String {
        self.codes.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", ")
    }
}
