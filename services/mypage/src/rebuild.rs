//! Rebuilding my page from the streams while the view keeps serving:
//! 1. a new generation is begun: from then on every fact the live consumers handle is
//!    written to it as well (first to it, then to the serving one);
//! 2. every stream my page reads is replayed from its first event into the new
//!    generation until it is caught up: the events a live consumer handled before it saw
//!    the new generation were in the streams before step 1, so the replay has them;
//! 3. the pointer switches reads to the new generation.
//!
//! Applying a fact is idempotent and order-tolerant (statuses only move forward, totals
//! follow the entries), so an event both replayed and handled live counts once. The
//! generation switched from stays (its page tokens still read it) until the next rebuild
//! purges it; generation 0, the first, has no key prefix and stays. The same replay starts
//! any new projection from the beginning of the streams (`nats_adapter::replay`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use nats_adapter::replay;

use crate::App;
use crate::events::{CONSUMERS, ProjectInto, Projection};
use crate::generation;

/// What a rebuild did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rebuilt {
    /// The generation that served before.
    pub previous: u64,
    /// The generation that serves now.
    pub generation: u64,
    /// Events replayed into it.
    pub events: u64,
    /// Events skipped because they cannot be handled (as live, they are dead letters).
    pub rejected: u64,
    /// Stored values of older generations removed.
    pub purged: u64,
    pub took: Duration,
}

/// Why a rebuild did not switch; the serving generation is then unchanged (one begun is
/// written beside it until the next rebuild supersedes it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RebuildError {
    /// A stream no longer holds its oldest events.
    Incomplete(String),
    /// Another rebuild began after this one.
    Superseded(u64),
    /// NATS or the bucket could not be used.
    Unavailable(String),
}

impl std::fmt::Display for RebuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Incomplete(why) => write!(f, "{why}; rebuild with allow_partial (--allow-partial) to accept that"),
            Self::Superseded(g) => write!(f, "generation {g} was superseded by another rebuild"),
            Self::Unavailable(why) => write!(f, "{why}"),
        }
    }
}

/// How a rebuild runs.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Rebuild even though a stream no longer holds its first events (what they said is
    /// lost); otherwise that is refused.
    pub allow_partial: bool,
    /// Wait this long between the replay catching up and the switch (tests: facts that
    /// arrive meanwhile must reach both generations).
    pub hold_before_switch: Duration,
}

/// Rebuilds the view (see the module docs).
///
/// # Errors
/// What stopped it.
pub async fn rebuild(js: &jetstream::Context, app: &Arc<App>, options: Options) -> Result<Rebuilt, RebuildError> {
    let Options { allow_partial, hold_before_switch } = options;
    let started = Instant::now();
    if !allow_partial {
        for spec in CONSUMERS {
            if let Some(why) = replay::missing_events(js, spec).await.map_err(RebuildError::Unavailable)? {
                return Err(RebuildError::Incomplete(why));
            }
        }
    }
    let (before, g) = generation::begin(app.bucket()).await.map_err(RebuildError::Unavailable)?;
    tracing::info!(serving = before.serving, building = g, "rebuilding my page");
    let into = Projection(ProjectInto { app: app.clone(), generation: g });
    let done = replay::replay(js, &CONSUMERS, &into).await.map_err(RebuildError::Unavailable)?;
    tokio::time::sleep(hold_before_switch).await;
    if !generation::switch(app.bucket(), g).await.map_err(RebuildError::Unavailable)? {
        return Err(RebuildError::Superseded(g));
    }
    // Done; an older generation that stays for now is purged by the next rebuild.
    let purged = generation::purge_old(app.bucket(), g, before.serving).await.unwrap_or_else(|e| {
        tracing::warn!(error = %e, "older generations of my page not purged");
        0
    });
    let rebuilt = Rebuilt {
        previous: before.serving,
        generation: g,
        events: done.events,
        rejected: done.rejected,
        purged,
        took: started.elapsed(),
    };
    tracing::info!(?rebuilt, "my page rebuilt; reads switched to the new generation");
    Ok(rebuilt)
}
