//! One gauge, several reporters in one process. With `gamectl up --all-in-one` (or
//! `serve --roles a,b`) every role runs its own outbox relay, database pool and gRPC server
//! in the same process and so reports into the same registry: a plain `set` would show
//! whichever role sampled last. Each reporter holds a [`Part`]; the gauge shows what the
//! process as a whole has (the outboxes' rows summed, the oldest of their ages, ready only
//! while every server is). A part that is dropped stops counting.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// Sets the gauges from every live part's latest value.
type Show<T> = Box<dyn Fn(&[T]) + Send + Sync>;

/// The latest value of every live part, and how they make the gauge's value.
pub struct Parts<T> {
    next: AtomicU64,
    values: Mutex<BTreeMap<u64, T>>,
    show: Show<T>,
}

impl<T: Copy + Send + 'static> Parts<T> {
    /// `show` is handed every live part's latest value (none when no part is left) and
    /// sets the gauges from them.
    pub fn new(show: impl Fn(&[T]) + Send + Sync + 'static) -> Arc<Self> {
        Arc::new(Self { next: AtomicU64::new(0), values: Mutex::default(), show: Box::new(show) })
    }

    /// A new reporter; it counts from its first [`Part::set`].
    pub fn join(self: &Arc<Self>) -> Part<T> {
        Part { id: self.next.fetch_add(1, Ordering::Relaxed), parts: Arc::clone(self) }
    }

    fn update(&self, change: impl FnOnce(&mut BTreeMap<u64, T>)) {
        let mut values = self.values.lock().unwrap_or_else(PoisonError::into_inner);
        change(&mut values);
        let now: Vec<T> = values.values().copied().collect();
        (self.show)(&now);
    }
}

/// One reporter's share of a gauge.
pub struct Part<T: Copy + Send + 'static> {
    id: u64,
    parts: Arc<Parts<T>>,
}

impl<T: Copy + Send + 'static> Part<T> {
    pub fn set(&self, value: T) {
        self.parts.update(|v| {
            v.insert(self.id, value);
        });
    }
}

impl<T: Copy + Send + 'static> Drop for Part<T> {
    fn drop(&mut self) {
        self.parts.update(|v| {
            v.remove(&self.id);
        });
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicI64;

    use super::*;

    fn summed() -> (Arc<Parts<i64>>, Arc<AtomicI64>) {
        let shown = Arc::new(AtomicI64::new(-1));
        let s = Arc::clone(&shown);
        (Parts::new(move |v: &[i64]| s.store(v.iter().sum(), Ordering::Relaxed)), shown)
    }

    #[test]
    fn two_reporters_in_one_process_add_up_instead_of_overwriting_each_other() {
        let (parts, shown) = summed();
        let (mission, wallet) = (parts.join(), parts.join());
        mission.set(3);
        wallet.set(4);
        mission.set(5);
        assert_eq!(shown.load(Ordering::Relaxed), 9);
    }

    #[test]
    fn a_reporter_that_stops_no_longer_counts() {
        let (parts, shown) = summed();
        let (mission, wallet) = (parts.join(), parts.join());
        mission.set(3);
        wallet.set(4);
        drop(wallet);
        assert_eq!(shown.load(Ordering::Relaxed), 3);
        drop(mission);
        assert_eq!(shown.load(Ordering::Relaxed), 0);
    }
}
