//! Events the inbox recognised as handled before: the store notes them (inside the
//! handler's transaction) and the consumer, acking them, counts them as `duplicate`
//! rather than `ok`. Noted only while metrics are on; bounded.

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};

const MOST: usize = 10_000;

fn noted() -> &'static Mutex<HashSet<(String, String)>> {
    static N: OnceLock<Mutex<HashSet<(String, String)>>> = OnceLock::new();
    N.get_or_init(Mutex::default)
}

pub fn note(consumer: &str, event_id: &str) {
    if !crate::enabled() {
        return;
    }
    let mut n = noted().lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if n.len() >= MOST {
        n.clear();
    }
    n.insert((consumer.to_owned(), event_id.to_owned()));
}

/// Whether `event_id` was noted for `consumer` (and forgets it).
pub fn take(consumer: &str, event_id: &str) -> bool {
    if !crate::enabled() {
        return false;
    }
    let mut n = noted().lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    !n.is_empty() && n.remove(&(consumer.to_owned(), event_id.to_owned()))
}
