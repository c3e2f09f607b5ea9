//! The benchmark's smoke test: the built `bench` binary runs every phase briefly against a
//! whole system it starts itself, and produces figures, JSON and a chart. It asserts no
//! performance threshold: only that there are figures.

use std::process::Command;

#[test]
fn the_benchmark_runs_briefly_and_writes_figures_json_and_a_chart() {
    let out = tempfile::tempdir().expect("temp dir");
    let run = Command::new(e2e::bin("bench"))
        .args(["--quick", "--players", "4", "--out"])
        .arg(out.path())
        .output()
        .expect("run bench");
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "bench failed: {}\n{stdout}\n{stderr}", run.status);

    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("bench.json")).expect("bench.json")).expect("JSON");
    let achieve = &json["achieve_mission"]["gateway"];
    assert!(achieve["ok_per_s"].as_f64().unwrap_or(0.0) > 0.0, "AchieveMission throughput: {achieve}\n{stdout}");
    assert!(achieve["p99_ms"].as_f64().unwrap_or(0.0) > 0.0);
    assert!(
        json["flow"]["under_load"]["ok"].as_u64().unwrap_or(0) + json["flow"]["idle"]["ok"].as_u64().unwrap_or(0) > 0
    );
    assert!(json["baselines"]["echo_direct"]["ok_per_s"].as_f64().unwrap_or(0.0) > 0.0);
    assert!(json["baselines"]["sqlite"]["one_row"]["ok_per_s"].as_f64().unwrap_or(0.0) > 0.0);
    assert!(json["exchange"]["open_gateway"]["codes"]["UNAVAILABLE"].as_u64().unwrap_or(0) > 0, "breaker open");
    assert!(json["services"].as_array().is_some_and(|s| s.len() == 8), "every service's figures");

    let svg = std::fs::read_to_string(out.path().join("latency.svg")).expect("latency.svg");
    assert!(svg.starts_with("<svg") && svg.contains("AchieveMission"), "an SVG chart");
    assert!(stdout.contains("AchieveMission through the gateway"), "the table is printed:\n{stdout}");
}
