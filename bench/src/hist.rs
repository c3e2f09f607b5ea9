//! Latency histograms (HDR, microseconds, 3 significant digits), status codes, and the
//! summaries that go into the table, the JSON and the chart.

use std::collections::BTreeMap;
use std::time::Duration;

use grpc_adapter::status::code_name;
use hdrhistogram::Histogram;
use serde::Serialize;
use tonic::Code;

/// What one call ended with: `Ok(())`, or the gRPC status code.
pub type Outcome = Result<(), Code>;

/// `Ok(())` or the status code of a tonic call.
pub fn grpc<T>(r: Result<tonic::Response<T>, tonic::Status>) -> Outcome {
    r.map(drop).map_err(|s| s.code())
}

const MAX_US: u64 = 300_000_000;

/// Latencies and outcomes of one kind of call.
pub struct Recorder {
    pub hist: Histogram<u64>,
    pub codes: BTreeMap<&'static str, u64>,
}

impl Default for Recorder {
    fn default() -> Self {
        Self { hist: Histogram::new_with_bounds(1, MAX_US, 3).expect("histogram bounds"), codes: BTreeMap::new() }
    }
}

impl Recorder {
    pub fn record(&mut self, elapsed: Duration, outcome: Outcome) {
        let us = u64::try_from(elapsed.as_micros()).unwrap_or(MAX_US).clamp(1, MAX_US);
        self.hist.saturating_record(us);
        *self.codes.entry(code_name(outcome.err().unwrap_or(Code::Ok))).or_default() += 1;
    }

    pub fn merge(&mut self, other: &Self) {
        let _ = self.hist.add(&other.hist);
        for (k, v) in &other.codes {
            *self.codes.entry(k).or_default() += v;
        }
    }

    pub fn ok(&self) -> u64 {
        self.codes.get("OK").copied().unwrap_or(0)
    }

    /// The summary of what was recorded over `wall`.
    pub fn summary(&self, wall: Duration) -> Summary {
        let h = &self.hist;
        let ms = |us: u64| us as f64 / 1000.0;
        let n = h.len();
        let secs = wall.as_secs_f64().max(1e-9);
        let q = |p: f64| if n == 0 { 0.0 } else { ms(h.value_at_quantile(p)) };
        Summary {
            count: n,
            ok: self.ok(),
            wall_s: wall.as_secs_f64(),
            calls_per_s: n as f64 / secs,
            ok_per_s: self.ok() as f64 / secs,
            p50_ms: q(0.5),
            p90_ms: q(0.9),
            p99_ms: q(0.99),
            p999_ms: q(0.999),
            max_ms: if n == 0 { 0.0 } else { ms(h.max()) },
            mean_ms: if n == 0 { 0.0 } else { h.mean() / 1000.0 },
            codes: self.codes.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect(),
            curve: curve(h),
        }
    }
}

/// Percentile -> latency points, evenly spaced in "nines" (50 %, 90 %, 99 %, ...), never
/// past what the number of samples can tell.
fn curve(h: &Histogram<u64>) -> Vec<(f64, f64)> {
    if h.is_empty() {
        return Vec::new();
    }
    let nines_max = (h.len() as f64).log10().min(5.0);
    let mut out = Vec::new();
    let mut x = 0.0;
    while x <= nines_max + 1e-9 {
        let q = 1.0 - 10f64.powf(-x);
        out.push((q * 100.0, h.value_at_quantile(q) as f64 / 1000.0));
        x += 0.05;
    }
    out.push((100.0, h.max() as f64 / 1000.0));
    out
}

/// One measured kind of call.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Summary {
    /// Calls made (whatever their outcome).
    pub count: u64,
    /// Calls that answered OK.
    pub ok: u64,
    pub wall_s: f64,
    pub calls_per_s: f64,
    /// Throughput: OK answers per second of wall time.
    pub ok_per_s: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
    /// Calls by gRPC status code (`OK`, `UNAVAILABLE`, ...).
    pub codes: BTreeMap<String, u64>,
    /// (percentile, ms) points of the latency distribution.
    pub curve: Vec<(f64, f64)>,
}

impl Summary {
    /// Status codes other than OK, as `CODE n, CODE n`; `none` when there were none.
    pub fn errors(&self) -> String {
        let e: Vec<String> = self.codes.iter().filter(|(k, _)| *k != "OK").map(|(k, v)| format!("{k} {v}")).collect();
        if e.is_empty() { "none".into() } else { e.join(", ") }
    }
}
