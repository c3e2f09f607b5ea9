//! The breaker's behaviour, given/when/then, on paused time.

use tower::{BoxError, Layer, ServiceExt, service_fn};

use super::*;

fn config() -> BreakerConfig {
    BreakerConfig {
        failure_rate_threshold: 0.5,
        slow_call_rate_threshold: 0.5,
        slow_call_duration: Duration::from_millis(500),
        window_size: 10,
        minimum_calls: 4,
        open_duration: Duration::from_secs(10),
        half_open_calls: 2,
    }
}

/// A dependency whose answer (and delay) the test decides per call.
type Guarded = tower::util::BoxCloneService<(bool, u64), (), BoxError>;

fn guarded(b: &Breaker) -> Guarded {
    let dep = service_fn(|(fail, delay_ms): (bool, u64)| async move {
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        if fail { Err::<(), BoxError>("down".into()) } else { Ok(()) }
    });
    Guarded::new(CircuitBreakerLayer::new(b.clone(), |r: &Result<(), BoxError>| r.is_err()).layer(dep))
}

async fn call(svc: &mut Guarded, fail: bool, delay_ms: u64) -> Result<(), BoxError> {
    svc.clone().oneshot((fail, delay_ms)).await
}

fn is_open(r: &Result<(), BoxError>) -> bool {
    r.as_ref().err().is_some_and(|e| e.is::<BreakerOpen>())
}

#[tokio::test(start_paused = true)]
async fn given_a_closed_breaker_when_half_the_calls_fail_then_it_opens() {
    let b = Breaker::new("t", config());
    let mut svc = guarded(&b);
    for fail in [false, true, false] {
        let _ = call(&mut svc, fail, 0).await;
    }
    assert_eq!(b.snapshot().state, State::Closed, "fewer than minimum_calls: not judged yet");
    let _ = call(&mut svc, true, 0).await;
    let s = b.snapshot();
    assert_eq!((s.state, s.transitions), (State::Open, 1));
    assert_eq!(s.retry_after, Duration::from_secs(10));
    assert_eq!((s.calls_in_window, s.failure_rate), (4, 0.5), "while open: the figures that opened it");
}

#[tokio::test(start_paused = true)]
async fn given_an_open_breaker_calls_fail_fast_without_reaching_the_dependency() {
    let b = Breaker::new("t", config());
    let mut svc = guarded(&b);
    for _ in 0..4 {
        let _ = call(&mut svc, true, 0).await;
    }
    tokio::time::advance(Duration::from_secs(3)).await;
    let started = Instant::now();
    let r = call(&mut svc, false, 5_000).await;
    assert!(is_open(&r));
    assert_eq!(started.elapsed(), Duration::ZERO, "no call was made");
    let open = r.unwrap_err().downcast::<BreakerOpen>().unwrap();
    assert_eq!(open.retry_after, Duration::from_secs(7));
    assert_eq!(b.snapshot().rejected, 1);
}

#[tokio::test(start_paused = true)]
async fn given_an_open_breaker_when_the_open_period_ends_successful_probes_close_it() {
    let b = Breaker::new("t", config());
    let mut svc = guarded(&b);
    for _ in 0..4 {
        let _ = call(&mut svc, true, 0).await;
    }
    tokio::time::advance(Duration::from_secs(10)).await;
    call(&mut svc, false, 0).await.unwrap();
    assert_eq!(b.snapshot().state, State::HalfOpen);
    call(&mut svc, false, 0).await.unwrap();
    assert_eq!(b.snapshot().state, State::Closed);
    call(&mut svc, false, 0).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn given_a_half_open_breaker_a_failed_probe_opens_it_again() {
    let b = Breaker::new("t", config());
    let mut svc = guarded(&b);
    for _ in 0..4 {
        let _ = call(&mut svc, true, 0).await;
    }
    tokio::time::advance(Duration::from_secs(10)).await;
    assert!(call(&mut svc, true, 0).await.is_err());
    let s = b.snapshot();
    assert_eq!((s.state, s.retry_after), (State::Open, Duration::from_secs(10)));
    assert!(is_open(&call(&mut svc, false, 0).await));
}

#[tokio::test(start_paused = true)]
async fn half_open_admits_only_its_probes_at_once() {
    let b = Breaker::new("t", config());
    let mut svc = guarded(&b);
    for _ in 0..4 {
        let _ = call(&mut svc, true, 0).await;
    }
    tokio::time::advance(Duration::from_secs(10)).await;
    let p1 = tokio::spawn(svc.clone().oneshot((false, 100)));
    let p2 = tokio::spawn(svc.clone().oneshot((false, 100)));
    tokio::task::yield_now().await;
    assert!(is_open(&call(&mut svc, false, 0).await), "a third call waits for the probes");
    p1.await.unwrap().unwrap();
    p2.await.unwrap().unwrap();
    assert_eq!(b.snapshot().state, State::Closed);
}

#[tokio::test(start_paused = true)]
async fn slow_calls_open_the_breaker_even_when_they_succeed() {
    let b = Breaker::new("t", config());
    let mut svc = guarded(&b);
    for delay in [600, 10, 700, 800] {
        call(&mut svc, false, delay).await.unwrap();
    }
    let s = b.snapshot();
    assert_eq!(s.state, State::Open, "3 of 4 calls were slow");
}

#[tokio::test(start_paused = true)]
async fn calls_the_classifier_calls_fine_never_open_it() {
    let b = Breaker::new("t", config());
    let dep = service_fn(|_: ()| async { Err::<(), BoxError>("not enough points".into()) });
    let svc = CircuitBreakerLayer::new(b.clone(), |_: &Result<(), BoxError>| false).layer(dep);
    for _ in 0..20 {
        let _ = svc.clone().oneshot(()).await;
    }
    assert_eq!(b.snapshot().state, State::Closed);
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_probe_frees_its_slot() {
    let b = Breaker::new("t", config());
    let mut svc = guarded(&b);
    for _ in 0..4 {
        let _ = call(&mut svc, true, 0).await;
    }
    tokio::time::advance(Duration::from_secs(10)).await;
    let slow = tokio::spawn(svc.clone().oneshot((false, 10_000)));
    let slower = tokio::spawn(svc.clone().oneshot((false, 10_000)));
    tokio::task::yield_now().await;
    slow.abort();
    slower.abort();
    let _ = (slow.await, slower.await);
    call(&mut svc, false, 0).await.expect("the slots were freed");
}
