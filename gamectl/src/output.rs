//! How answers are shown: JSON shaped like grpcurl's (camelCase names, enum names,
//! RFC 3339 timestamps) or compact text for people.
//!
//! JSON differs from protojson in two deliberate ways that make it easier to script:
//! every field is present (defaults included), and 64-bit integers are numbers.

mod json;
mod points;
mod text;

pub use json::*;
pub use points::*;
pub use text::*;

#[cfg(test)]
mod tests;
