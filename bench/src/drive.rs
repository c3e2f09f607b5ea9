//! Load: each worker makes its next call when the last one answered (closed loop) or, when
//! paced, when the next slot of a fixed total rate is due and it is free (open loop as long
//! as enough workers are free), until a deadline or until it has no more work. Every call
//! is timed into the worker's own histogram; they are merged at the end. A paced call is
//! timed from the moment it was due, so a system that falls behind shows it in latency.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tonic::Code;

use crate::hist::{Outcome, Recorder};

/// Longest a single call may take before it counts as `DEADLINE_EXCEEDED`.
const CALL_LIMIT: Duration = Duration::from_secs(30);

/// One simulated client.
pub trait Worker: Send + 'static {
    /// The next call, or `None` when this worker has nothing more to do.
    fn call(&mut self) -> impl Future<Output = Option<Outcome>> + Send;

    /// Work between calls that is not timed (e.g. signing the next player's token).
    fn between(&mut self) {}
}

/// A worker made of a closure returning each call's future.
pub struct FnWorker<F>(pub F);

impl<F, Fut> Worker for FnWorker<F>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = Option<Outcome>> + Send,
{
    fn call(&mut self) -> impl Future<Output = Option<Outcome>> + Send {
        (self.0)()
    }
}

/// What a run recorded, over how long.
pub struct Run {
    pub rec: Recorder,
    pub wall: Duration,
}

impl Run {
    pub fn summary(&self) -> crate::hist::Summary {
        self.rec.summary(self.wall)
    }
}

/// Runs `workers` concurrently for `duration`; `done` counts calls as they finish.
pub async fn closed_loop<W: Worker>(workers: Vec<W>, duration: Duration, done: Option<Arc<AtomicU64>>) -> Run {
    paced_loop(workers, duration, done, None).await
}

/// [`closed_loop`], or at most `rate` calls per second in all when it is given.
pub async fn paced_loop<W: Worker>(
    workers: Vec<W>,
    duration: Duration,
    done: Option<Arc<AtomicU64>>,
    rate: Option<f64>,
) -> Run {
    let start = Instant::now();
    let slots = Arc::new(AtomicU64::new(0));
    let deadline = start + duration;
    let tasks: Vec<_> = workers
        .into_iter()
        .map(|mut w| {
            let (done, slots) = (done.clone(), slots.clone());
            tokio::spawn(async move {
                let mut rec = Recorder::default();
                while Instant::now() < deadline {
                    let mut t = Instant::now();
                    if let Some(rate) = rate.filter(|r| *r > 0.0) {
                        let slot = slots.fetch_add(1, Ordering::Relaxed);
                        let due = start + Duration::from_secs_f64(slot as f64 / rate);
                        if due >= deadline {
                            break;
                        }
                        tokio::time::sleep_until(due.into()).await;
                        t = due;
                    }
                    let outcome = match tokio::time::timeout(CALL_LIMIT, w.call()).await {
                        Ok(Some(o)) => o,
                        Ok(None) => break,
                        Err(_) => Err(Code::DeadlineExceeded),
                    };
                    rec.record(t.elapsed(), outcome);
                    w.between();
                    if let Some(d) = &done {
                        d.fetch_add(1, Ordering::Relaxed);
                    }
                }
                rec
            })
        })
        .collect();
    let mut rec = Recorder::default();
    for t in tasks {
        if let Ok(r) = t.await {
            rec.merge(&r);
        }
    }
    Run { rec, wall: start.elapsed() }
}
