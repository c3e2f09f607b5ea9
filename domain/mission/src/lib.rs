//! The mission context (core): a customer achieves a mission from the catalog; the
//! mission later records the reward it earned.
//!
//! # Layout
//! - [`model`] — the `Mission` aggregate, value objects, events.
//! - [`rules`] — the economy: the catalog, repeat rules, periods, windows, prerequisites,
//!   who reports.
//! - [`ports`] — what the application needs from the outside (`MissionRepository`).
//! - [`service`] — the application service driving the aggregate through the ports.

pub mod model;
pub mod ports;
pub mod rules;
pub mod service;

pub use model::*;
pub use ports::MissionRepository;
pub use rules::{Catalog, MissionRule, Refusal, Reporter};
pub use service::{MissionError, MissionService};
