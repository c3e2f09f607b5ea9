//! Streams: one per publishing context, subjects `game.<context>.v1.<event>`.

use std::time::Duration;

use async_nats::jetstream::{self, stream};

// The streams and subjects are contracts (the `contracts` crate); creating and reading
// the streams is this adapter's.
pub use contracts::streams::{
    DEAD_LETTER, GIFT, MISSION, NOTIFICATION, REWARD, StreamSpec, WALLET, dead_letter_subject, subject,
};

/// How much a stream keeps: events older than `max_age`, or beyond `max_bytes` (oldest
/// first), are removed, delivered or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_age: Duration,
    pub max_bytes: i64,
}

impl Default for Limits {
    /// A week and 1 GiB (`NatsSettings` has the configured ones).
    fn default() -> Self {
        Self { max_age: Duration::from_secs(7 * 24 * 3600), max_bytes: 1 << 30 }
    }
}

/// Creates the stream if it does not exist (its owner, or for [`DEAD_LETTER`] whoever
/// comes first, with the same config), with the default [`Limits`].
///
/// # Errors
/// When JetStream cannot be reached or refuses the config.
pub async fn ensure(js: &jetstream::Context, spec: StreamSpec, replicas: usize) -> Result<stream::Stream, String> {
    ensure_limited(js, spec, replicas, Limits::default()).await
}

/// Creates the stream if it does not exist, with `limits`. A stream that exists keeps its
/// limits: a role may not change its stream's config (the operator does, e.g. with `nats
/// stream edit`); the difference is logged.
///
/// # Errors
/// When JetStream cannot be reached or refuses the config.
pub async fn ensure_limited(
    js: &jetstream::Context,
    spec: StreamSpec,
    replicas: usize,
    limits: Limits,
) -> Result<stream::Stream, String> {
    let config = stream::Config {
        name: spec.name.to_owned(),
        subjects: vec![spec.subjects.to_owned()],
        storage: stream::StorageType::File,
        num_replicas: replicas.max(1),
        // The de-duplication window on Nats-Msg-Id: longer than any relay retry (and,
        // as JetStream requires, no longer than the stream keeps events).
        duplicate_window: Duration::from_secs(120).min(limits.max_age),
        max_age: limits.max_age,
        max_bytes: limits.max_bytes,
        ..Default::default()
    };
    let stream = js.get_or_create_stream(config).await.map_err(|e| format!("stream {}: {e}", spec.name))?;
    let now = &stream.cached_info().config;
    if now.max_age != limits.max_age || now.max_bytes != limits.max_bytes {
        tracing::warn!(
            stream = spec.name,
            max_age = ?now.max_age,
            max_bytes = now.max_bytes,
            configured_max_age = ?limits.max_age,
            configured_max_bytes = limits.max_bytes,
            "the stream exists with other limits; the operator applies the configured ones"
        );
    }
    Ok(stream)
}

/// The stream, once its owner created it: a reader looks it up (INFO) and never creates
/// it, so it needs no right over another role's stream.
///
/// # Errors
/// When it does not exist (yet), or JetStream cannot be reached.
pub async fn existing(js: &jetstream::Context, spec: StreamSpec) -> Result<stream::Stream, String> {
    js.get_stream(spec.name).await.map_err(|e| format!("stream {} (created by its publisher): {e}", spec.name))
}

/// Whether `pattern` (a stream's subjects, a consumer's filter, a permission) covers
/// `subject`, as nats-server decides: `*` is one token, a final `>` one or more.
pub fn covers(pattern: &str, subject: &str) -> bool {
    let mut tokens = subject.split('.');
    for p in pattern.split('.') {
        match (p, tokens.next()) {
            (_, Some("")) | (_, None) => return false,
            (">", Some(_)) => return true,
            ("*", Some(_)) => {}
            (p, Some(t)) if p == t => {}
            _ => return false,
        }
    }
    tokens.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::covers;

    #[test]
    fn a_pattern_covers_subjects_as_the_server_matches_them() {
        assert!(covers("game.gift.v1.issued", "game.gift.v1.issued"));
        assert!(!covers("game.gift.v1.issued", "game.gift.v1.used"));
        assert!(!covers("game.gift.v1.issued", "game.gift.v1.issued.x"));
        assert!(covers("game.gift.v1.>", "game.gift.v1.used"));
        assert!(covers("game.gift.v1.>", "game.gift.v1.used.again"));
        assert!(!covers("game.gift.v1.>", "game.gift.v1"));
        assert!(!covers("game.gift.v1.>", "game.mission.v1.achieved"));
        assert!(covers("game.*.v1.used", "game.gift.v1.used"));
        assert!(!covers("game.gift.v1.issued", "game.gift..issued"));
        assert!(!covers("game.gift.v1.>", ""));
        assert!(!covers("a.*", "a.b.c"));
        assert!(!covers("a.b.c", "a.b"));
    }
}
