//! The reward context (supporting): allocates a reward for every achieved mission and
//! follows what the wallet does with it (ISSUED, EXCHANGED).
//!
//! # Layout
//! - [`model`] — the `Reward` aggregate and its events.
//! - [`ports`] — `RewardRepository`.
//! - [`service`] — policies (`on_mission_achieved`, ...) and queries.

pub mod model;
pub mod ports;
pub mod service;

pub use model::*;
pub use ports::RewardRepository;
pub use service::{RewardError, RewardService};
