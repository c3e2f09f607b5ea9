//! `breaker_state` follows the breaker on a quiet system: once the open period is over
//! it shows half-open without waiting for a call (else "breaker open for 5 minutes"
//! would page someone for a breaker that no longer refuses anything).

use std::time::Duration;

use metrics_adapter::scrape::Scrape;
use resilience_adapter::{Breaker, BreakerConfig, State};

fn shown(state: &str) -> Option<f64> {
    Scrape::parse(&metrics_adapter::encode()).value("breaker_state", &[("state", state)])
}

#[tokio::test(start_paused = true)]
async fn an_open_breaker_with_no_calls_shows_half_open_once_its_open_period_ends() {
    metrics_adapter::enable();
    let config = BreakerConfig { minimum_calls: 4, open_duration: Duration::from_secs(10), ..BreakerConfig::default() };
    let b = Breaker::new("gift", config);
    for _ in 0..4 {
        let permit = b.acquire().expect("closed");
        b.record(permit, true);
    }
    assert_eq!(b.snapshot().state, State::Open);
    assert_eq!(shown("open"), Some(1.0));

    // No call at all during and after the open period.
    tokio::time::sleep(Duration::from_millis(10_100)).await;
    assert_eq!(shown("open"), Some(0.0), "the open period is over");
    assert_eq!(shown("half_open"), Some(1.0), "the next call will probe");
    let transitions =
        Scrape::parse(&metrics_adapter::encode()).value("breaker_transitions_total", &[("to", "half_open")]);
    assert_eq!(transitions, Some(1.0));

    // And the probe still decides: a success in each slot closes it.
    for _ in 0..3 {
        let permit = b.acquire().expect("half-open admits its probes");
        b.record(permit, false);
    }
    assert_eq!(shown("closed"), Some(1.0));
}
