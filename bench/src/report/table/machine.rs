//! The table's last sections: the raw baselines of the same run, and each process.

use super::{Results, Table, lat, mib, opt_ms, rate, ratio};

/// The raw baselines of the same run: echo, health, JetStream, the databases.
pub(super) fn baselines(t: &mut Table, r: &Results) {
    let b = &r.baselines;
    let n = r.meta.players;
    let (eg, ed) = (&b.echo_gateway, &b.echo_direct);
    let (eg1, ed1) = (&b.echo_gateway_1, &b.echo_direct_1);
    let js = b.jetstream.as_ref();
    t.section("Raw baselines (same machine, same run)");
    t.row(
        format!("tonic unary echo, in-process server, {n} clients"),
        format!("{}, {}", rate(ed.ok_per_s), lat(ed)),
        "",
        "",
    );
    let en = &b.echo_direct_nodelay;
    t.row(
        "  the same, server with TCP_NODELAY",
        format!("{}, {}", rate(en.ok_per_s), lat(en)),
        "without",
        ratio(en.ok_per_s, ed.ok_per_s),
    );
    t.row("  the same, 1 client", format!("{}, {}", rate(ed1.ok_per_s), lat(ed1)), "", "");
    let (el, eln) = (&b.echo_large_direct, &b.echo_large_direct_nodelay);
    t.row(
        format!("  answer of ~3 KB, {n} clients"),
        format!("{}, {}", rate(el.ok_per_s), lat(el)),
        "empty answer",
        ratio(el.ok_per_s, ed.ok_per_s),
    );
    t.row(
        "  answer of ~3 KB, server with TCP_NODELAY",
        format!("{}, {}", rate(eln.ok_per_s), lat(eln)),
        "without",
        ratio(eln.ok_per_s, el.ok_per_s),
    );
    t.row(format!("  through a gateway process, {n} clients"), format!("{}, {}", rate(eg.ok_per_s), lat(eg)), "", "");
    t.row("  through a gateway process, 1 client", format!("{}, {}", rate(eg1.ok_per_s), lat(eg1)), "", "");
    for (what, h) in [
        ("Health/Check, in-process server", &b.health_in_process),
        ("Health/Check, served by the gateway itself", &b.health_gateway),
        ("Health/Check, served by mission", &b.health_mission),
    ] {
        t.row(
            what,
            format!("{}, {}", rate(h.ok_per_s), lat(h)),
            "in-process",
            ratio(h.ok_per_s, b.health_in_process.ok_per_s),
        );
    }
    if let Some(j) = js {
        t.row(
            format!("JetStream publish, {} acks in flight ({} B)", j.window, j.payload_bytes),
            format!("{}, publish->ack {}", rate(j.pipelined.ok_per_s), lat(&j.pipelined)),
            "",
            "",
        );
        t.row(
            "JetStream publish, one at a time",
            format!("{}, {}", rate(j.one_at_a_time.ok_per_s), lat(&j.one_at_a_time)),
            "",
            "",
        );
    }
    for (name, c) in [("SQLite", &b.sqlite), ("PostgreSQL", &b.postgres)] {
        if let Some(c) = c {
            t.row(
                format!("{name} one-row commits"),
                format!("{}, {}", rate(c.one_row.ok_per_s), lat(&c.one_row)),
                "",
                "",
            );
            for (how, sum, rows) in [
                ("INSERTs", &c.batched, c.batched_rows_per_s),
                ("rows in one INSERT", &c.multi_row, c.multi_row_rows_per_s),
            ] {
                t.row(
                    format!("{name} commits of {} {how}", c.rows_per_tx),
                    format!(
                        "{} rows ({} commits/s), {}",
                        rate(rows),
                        rate(sum.ok_per_s).trim_end_matches("/s"),
                        lat(sum)
                    ),
                    "one-row commits",
                    ratio(rows, c.one_row.ok_per_s),
                );
            }
            t.row(format!("  {name} durability"), c.durability.clone(), "", "");
        }
    }
    for s in &b.skipped {
        t.row("skipped", s.clone(), "", "");
    }
}

/// Each process: memory, start-up, CPU.
pub(super) fn services(t: &mut Table, r: &Results) {
    t.section("Services: RSS (MiB) idle / peak under load; start -> SERVING (median, fresh database); CPU during load");
    for sv in &r.services {
        t.row(
            sv.name.clone(),
            format!("{} / {} MiB", mib(sv.rss_idle_kib), mib(sv.rss_peak_kib)),
            format!("start {} ms (listening {} ms)", opt_ms(sv.start_serving_ms), opt_ms(sv.start_listening_ms)),
            sv.cpu_load_pct.map_or_else(|| "-".into(), |c| format!("{c:.0} % cpu")),
        );
    }
    for p in &r.other_processes {
        t.row(
            p.name.clone(),
            format!("- / {} MiB", mib(p.rss_peak_kib)),
            "",
            p.cpu_load_pct.map_or_else(|| "-".into(), |c| format!("{c:.0} % cpu")),
        );
    }
}
