//! `latency.svg`: latency by percentile (x in "nines": 50 %, 90 %, 99 %, 99.9 % ...,
//! y in ms on a log scale) of AchieveMission, the end-to-end flow and the other calls;
//! below, the flow over the load and the drain: missions accepted, published, issued and
//! rewarded. Each chart has its legend beside it.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::hist::Summary;
use crate::report::{Results, Sample};

/// x = -log10(1 - p): 0 at 0 %, 1 at 90 %, 2 at 99 %, ...
fn nines(percentile: f64) -> f64 {
    let rest = (1.0 - percentile / 100.0).max(1e-6);
    -rest.log10()
}

fn label(x: f64) -> String {
    if (x - x.round()).abs() > 1e-6 {
        return String::new();
    }
    match x.round() as i64 {
        0 => "0%".into(),
        1 => "90%".into(),
        n => format!("99.{}%", "9".repeat(usize::try_from(n - 2).unwrap_or(0))).replace("99.%", "99%"),
    }
}

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;

/// A counter of the timeline: its name, how to read it, its color.
type Line = (&'static str, fn(&Sample) -> u64, RGBColor);

/// A legend: a colored line and a label per entry, top to bottom.
fn legend(area: &Area<'_>, entries: &[(String, RGBColor)]) -> Result<(), String> {
    let font = ("sans-serif", 14).into_font();
    for (i, (name, color)) in entries.iter().enumerate() {
        let y = 60 + i32::try_from(i).unwrap_or(0) * 24;
        area.draw(&PathElement::new(vec![(5, y), (35, y)], color.stroke_width(3))).map_err(|e| e.to_string())?;
        area.draw(&Text::new(name.clone(), (42, y - 8), font.clone())).map_err(|e| e.to_string())?;
    }
    Ok(())
}

pub fn draw(path: &Path, r: &Results) -> Result<(), String> {
    let e = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
    let root = SVGBackend::new(path, (1450, 1100)).into_drawing_area();
    root.fill(&WHITE).map_err(|x| e(&x))?;
    let (top, bottom) = root.split_vertically(650);
    let (top_chart, top_legend) = top.split_horizontally(900);
    let (bottom_chart, bottom_legend) = bottom.split_horizontally(900);

    let b = &r.baselines;
    let series: Vec<(&str, &Summary, RGBColor)> = vec![
        ("AchieveMission via gateway (load)", &r.achieve_mission.gateway, RGBColor(214, 39, 40)),
        ("AchieveMission direct (short)", &r.achieve_mission.direct_short, RGBColor(255, 152, 150)),
        ("flow: achieve -> page ISSUED, under load", &r.flow.under_load, RGBColor(31, 119, 180)),
        ("flow: achieve -> page ISSUED, idle", &r.flow.idle, RGBColor(120, 170, 220)),
        ("GetWallet via gateway", &r.reads.get_wallet_gateway, RGBColor(44, 160, 44)),
        ("GetMyPage via gateway", &r.reads.get_my_page_gateway, RGBColor(140, 210, 120)),
        ("ExchangeReward, breaker closed", &r.exchange.healthy_gateway, RGBColor(148, 103, 189)),
        ("ExchangeReward, breaker open", &r.exchange.open_gateway, RGBColor(200, 170, 220)),
        ("baseline: echo via a gateway", &b.echo_gateway, RGBColor(90, 90, 90)),
        ("baseline: echo direct", &b.echo_direct, RGBColor(180, 180, 180)),
    ];
    let points = |s: &Summary| -> Vec<(f64, f64)> {
        s.curve.iter().filter(|(p, _)| *p < 100.0).map(|(p, v)| (nines(*p), v.max(0.001))).collect()
    };
    let all: Vec<(f64, f64)> = series.iter().flat_map(|(_, s, _)| points(s)).collect();
    let x_max = all.iter().map(|p| p.0).fold(1.0, f64::max).ceil();
    let y_min = all.iter().map(|p| p.1).fold(f64::INFINITY, f64::min).min(1.0) * 0.8;
    let y_max = all.iter().map(|p| p.1).fold(0.0, f64::max).max(1.0) * 1.25;

    let mut chart = ChartBuilder::on(&top_chart)
        .caption(
            format!(
                "Latency by percentile — {} build, {}, {} players, {} cores",
                r.meta.profile, r.meta.backend, r.meta.players, r.meta.cores
            ),
            ("sans-serif", 20),
        )
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..x_max, (y_min..y_max).log_scale())
        .map_err(|x| e(&x))?;
    chart
        .configure_mesh()
        .x_desc("percentile")
        .y_desc("latency (ms, log scale)")
        .x_labels(x_max as usize + 1)
        .x_label_formatter(&|x| label(*x))
        .y_label_formatter(&|y| if *y >= 1.0 { format!("{y:.0}") } else { format!("{y:.2}") })
        .draw()
        .map_err(|x| e(&x))?;
    let mut entries = Vec::new();
    for (name, s, color) in &series {
        let pts = points(s);
        if pts.is_empty() {
            continue;
        }
        chart.draw_series(LineSeries::new(pts, color.stroke_width(2))).map_err(|x| e(&x))?;
        entries.push((format!("{name} (n={}, p99 {:.1} ms)", s.count, s.p99_ms), *color));
    }
    legend(&top_legend, &entries)?;

    // the flow over the load and the drain
    let tl = &r.flow.timeline;
    let load_s = r.flow.sustained.load_s;
    let t_max = tl.iter().map(|s| s.t_s).fold(1.0, f64::max);
    let first = tl.first().cloned().unwrap_or_default();
    let c_max = tl.iter().map(|s| s.accepted.saturating_sub(first.accepted)).max().unwrap_or(1).max(1) as f64 * 1.1;
    let mut chart = ChartBuilder::on(&bottom_chart)
        .caption("The flow during the load and the drain (missions since the load started)", ("sans-serif", 18))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..t_max, 0f64..c_max)
        .map_err(|x| e(&x))?;
    chart
        .configure_mesh()
        .x_desc("seconds")
        .y_desc("missions")
        .y_label_formatter(&|y| format!("{y:.0}"))
        .draw()
        .map_err(|x| e(&x))?;
    let lines: [Line; 4] = [
        ("accepted (AchieveMission OK)", |s| s.accepted, RGBColor(214, 39, 40)),
        ("published (MissionAchieved)", |s| s.achieved, RGBColor(255, 127, 14)),
        ("issued (RewardIssued)", |s| s.issued, RGBColor(44, 160, 44)),
        ("rewarded (MissionRewarded)", |s| s.rewarded, RGBColor(31, 119, 180)),
    ];
    let mut entries = Vec::new();
    for (name, f, color) in lines {
        let pts: Vec<(f64, f64)> = tl.iter().map(|s| (s.t_s, f(s).saturating_sub(f(&first)) as f64)).collect();
        chart.draw_series(LineSeries::new(pts, color.stroke_width(2))).map_err(|x| e(&x))?;
        entries.push((name.to_owned(), color));
    }
    chart
        .draw_series(LineSeries::new(vec![(load_s, 0.0), (load_s, c_max)], RGBColor(77, 77, 77).stroke_width(2)))
        .map_err(|x| e(&x))?;
    entries.push((format!("load stops ({load_s:.1} s), then the drain"), RGBColor(77, 77, 77)));
    legend(&bottom_legend, &entries)?;
    root.present().map_err(|x| e(&x))?;
    Ok(())
}
