//! Group commit, on both backends: a writer thread owns a connection and commits every
//! unit of work that is waiting for it in one transaction, each inside its own savepoint.
//!
//! SQLite takes one writer at a time, so concurrent writers queue anyway. Queueing them
//! here instead of in a pool turns N transactions into one: one `BEGIN` / `COMMIT`, one
//! hand-off between the async tasks and the thread, and a unit that fails rolls back only
//! its own savepoint. On PostgreSQL the cost of a transaction is its commit's WAL flush
//! (`synchronous_commit` stays on): one flush for a batch instead of one per unit.
//!
//! SQLite has one writer thread. PostgreSQL may have several ([`Writer::start`]'s
//! `sessions`): a batch runs its units one after another, each statement a round trip to
//! the server, so one session is bound by round-trip latency long before the server is
//! busy (measured: one session spent 1.4 ms per unit at 26 units a batch). Units are
//! routed by a key: every unit of one key (a customer) goes to the same session, in
//! order, so two batches never hold rows of the same customer and cannot deadlock on
//! them; a row shared between customers (a gift's stock) is keyed by that row instead;
//! units without a key (the relay, pruning) go to the first session.
//!
//! The inbox row of the event a unit handled and the events it caused are the writer's
//! to write ([`Bookkeeping`]): with savepoints, inside the unit's own; without them, all
//! the batch's inbox rows and events at its end, in one statement on PostgreSQL.
//!
//! A unit's caller hears its result only after the transaction holding it committed, so
//! nothing is reported before it is durable (on SQLite in the durability
//! `synchronous = NORMAL` gives: see [`crate::connection`]). Nobody waits for a batch to
//! fill: the thread takes what queued while the previous commit ran.

use std::panic::AssertUnwindSafe;
use std::sync::mpsc;
use std::thread;

use diesel::Connection;
use diesel::connection::TransactionManager;
use kernel::{Inbound, StoreError};
use tokio::sync::oneshot;

use crate::connection::DatabaseUrl;
use crate::outbox::OutboxMessage;
use crate::{AnyConnection, bookkeeping, db, inbox, outbox};

/// Most units in one transaction: bounds how long the first of them waits for its answer.
const MAX_BATCH: usize = 256;

/// The rows every unit of a consumer or a command writes besides its own: the event it
/// handled (the inbox) and the events it caused (the outbox). The writer writes them,
/// so that a batch without savepoints can write all its units' rows in one statement
/// each ([`run_all`]).
#[derive(Default)]
pub(crate) struct Bookkeeping {
    pub(crate) inbound: Option<Inbound>,
    pub(crate) events: Vec<OutboxMessage>,
}

/// A unit of work with its caller's answer channel, type-erased for the queue.
trait Unit: Send {
    /// Runs the unit; keeps its result for [`Unit::answer`] and says whether it
    /// succeeded. When `isolated`, inside its own savepoint with its inbox row first and
    /// its events after its work; otherwise its work alone, the caller writing its
    /// [`Unit::bookkeeping`] rows with every other unit's.
    fn run(&mut self, conn: &mut AnyConnection, isolated: bool) -> bool;
    fn bookkeeping(&self) -> &Bookkeeping;
    /// Answers the caller: its own result, unless the commit failed.
    fn answer(self: Box<Self>, commit: &Result<(), StoreError>);
}

struct Typed<T, F> {
    work: F,
    rows: Bookkeeping,
    result: Option<Result<T, StoreError>>,
    reply: oneshot::Sender<Result<T, StoreError>>,
}

impl<T, F> Unit for Typed<T, F>
where
    T: Send + 'static,
    F: Fn(&mut AnyConnection) -> Result<T, StoreError> + Send + 'static,
{
    fn run(&mut self, conn: &mut AnyConnection, isolated: bool) -> bool {
        let result = if isolated {
            let rows = &self.rows;
            let work = &self.work;
            // A nested diesel transaction is a savepoint: an error rolls back this unit only.
            conn.transaction(|c| {
                if let Some(inbound) = rows.inbound {
                    inbox::record(c, inbound).map_err(Nested::Store)?;
                }
                let value = work(c).map_err(Nested::Store)?;
                outbox::append(c, &rows.events).map_err(Nested::Store)?;
                Ok(value)
            })
            .map_err(|e| match e {
                Nested::Store(e) => e,
                Nested::Diesel(e) => db(e),
            })
        } else {
            (self.work)(conn)
        };
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn bookkeeping(&self) -> &Bookkeeping {
        &self.rows
    }

    fn answer(self: Box<Self>, commit: &Result<(), StoreError>) {
        let result = match (self.result, commit) {
            (Some(Ok(_)), Err(e)) => Err(e.clone()),
            (Some(r), _) => r,
            (None, Err(e)) => Err(e.clone()),
            (None, Ok(())) => Err(StoreError::Unavailable("unit of work was not run".into())),
        };
        // The caller may have gone (a cancelled request): nothing to tell.
        let _ = self.reply.send(result);
    }
}

enum Nested {
    Store(StoreError),
    Diesel(diesel::result::Error),
}

impl From<diesel::result::Error> for Nested {
    fn from(e: diesel::result::Error) -> Self {
        Self::Diesel(e)
    }
}

/// The handle the store keeps: sends units to the writer threads. A thread ends when the
/// last handle is dropped.
#[derive(Clone)]
pub(crate) struct Writer {
    queues: Vec<mpsc::Sender<Box<dyn Unit>>>,
}

impl Writer {
    /// Starts `sessions` writer threads (at least one; SQLite always gets one) for the
    /// database at `url`. Each opens its connection (and re-opens it after a failure)
    /// itself, when its first unit arrives.
    pub(crate) fn start(url: &DatabaseUrl, sessions: usize) -> std::io::Result<Self> {
        let sessions = match url {
            DatabaseUrl::Sqlite(_) => 1,
            DatabaseUrl::Postgres(_) => sessions.max(1),
        };
        let mut queues = Vec::with_capacity(sessions);
        for i in 0..sessions {
            let (queue, units) = mpsc::channel::<Box<dyn Unit>>();
            let url = url.clone();
            thread::Builder::new().name(format!("store-writer-{i}")).spawn(move || serve(&url, &units))?;
            queues.push(queue);
        }
        Ok(Self { queues })
    }

    /// How many writer sessions there are.
    pub(crate) fn sessions(&self) -> usize {
        self.queues.len()
    }

    /// Runs `work` in the next group transaction of the session for `key` (the first
    /// session without one) and answers once it committed.
    /// `rows` are written in the same transaction, in the unit's savepoint when it has
    /// one: the inbox row before `work`, the events after it.
    pub(crate) async fn write<T, F>(&self, key: Option<&str>, rows: Bookkeeping, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Fn(&mut AnyConnection) -> Result<T, StoreError> + Send + 'static,
    {
        self.write_to(self.session_of(key), rows, work).await
    }

    /// [`Self::write`] on session `i` (< [`Self::sessions`]).
    pub(crate) async fn write_to<T, F>(&self, i: usize, rows: Bookkeeping, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Fn(&mut AnyConnection) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let unit = Box::new(Typed { work, rows, result: None, reply });
        self.queues[i % self.queues.len()]
            .send(unit)
            .map_err(|_| StoreError::Unavailable("the writer thread stopped".into()))?;
        answer.await.map_err(|_| StoreError::Unavailable("the writer thread dropped the unit of work".into()))?
    }

    /// The session a key's units go to: stable for the life of the process (FNV-1a, not
    /// the std hasher's random seed, so a key's session can be reasoned about in logs).
    pub(crate) fn session_of(&self, key: Option<&str>) -> usize {
        let n = self.queues.len();
        match key {
            Some(k) if n > 1 => {
                let hash =
                    k.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
                usize::try_from(hash % n as u64).unwrap_or(0)
            }
            _ => 0,
        }
    }
}

fn serve(url: &DatabaseUrl, units: &mpsc::Receiver<Box<dyn Unit>>) {
    let mut conn: Option<AnyConnection> = None;
    let mut savepoints = Savepoints::default();
    // Blocks until a unit arrives; ends when every handle is gone.
    while let Ok(first) = units.recv() {
        let mut batch = vec![first];
        batch.extend(units.try_iter().take(MAX_BATCH - 1));
        let commit = match &mut conn {
            Some(c) => commit_batch(c, &mut batch, &mut savepoints),
            None => match url.establish() {
                Ok(c) => commit_batch(conn.insert(c), &mut batch, &mut savepoints),
                Err(e) => Err(StoreError::Unavailable(format!("cannot open the database: {e}"))),
            },
        };
        if let Err(e) = &commit {
            tracing::warn!(error = %e, units = batch.len(), "group commit failed");
            // Start the next batch on a fresh connection if this one is left unusable. A
            // failed batch on PostgreSQL is most often a lost session (a server restart),
            // which the transaction manager does not always see: reconnecting is cheap.
            if conn.as_mut().is_some_and(|c| {
                matches!(c, AnyConnection::Postgresql(_))
                    || <AnyConnection as Connection>::TransactionManager::is_broken_transaction_manager(c)
            }) {
                conn = None;
            }
        }
        for unit in batch {
            unit.answer(&commit);
        }
    }
}

/// Batches run after a unit failed in a batch without savepoints, before trying without
/// them again.
const CAREFUL_BATCHES: u32 = 16;

/// Whether a batch gives each unit its own savepoint.
///
/// A savepoint is what lets one unit fail (a duplicate, a stale version) without failing
/// the others, but on PostgreSQL it costs two round trips per unit (`SAVEPOINT`,
/// `RELEASE`), as many as the unit's own statements in most units. So on PostgreSQL a
/// batch first runs without them: when every unit succeeds (the common case), that is
/// the whole batch. When one fails, the transaction is rolled back (PostgreSQL aborts a
/// transaction at its first error anyway) and the batch runs again with savepoints, as
/// it would have; units are `Fn` so they can run twice, and nothing they did in the first
/// run was committed. After such a failure the next [`CAREFUL_BATCHES`] batches use
/// savepoints from the start, so a run of failing units does not run every batch twice.
/// SQLite's savepoints cost no round trip: it always uses them.
#[derive(Default)]
struct Savepoints {
    careful_for: u32,
}

impl Savepoints {
    fn skip(&mut self, conn: &AnyConnection) -> bool {
        if !matches!(conn, AnyConnection::Postgresql(_)) {
            return false;
        }
        if self.careful_for > 0 {
            self.careful_for -= 1;
            return false;
        }
        true
    }
}

/// `BEGIN`, every unit (in its savepoint unless [`Savepoints`] says otherwise), `COMMIT`.
/// A panicking unit fails the whole batch (its state is unknown) and the transaction is
/// rolled back. On SQLite a deferred `BEGIN` is enough: this thread is the only writer of
/// the file.
fn commit_batch(
    conn: &mut AnyConnection,
    batch: &mut [Box<dyn Unit>],
    savepoints: &mut Savepoints,
) -> Result<(), StoreError> {
    let started = std::time::Instant::now();
    let units = batch.len();
    let mut commit = None;
    if savepoints.skip(conn) {
        let mut a_unit_failed = false;
        let attempt = run_all(conn, batch, false, &mut a_unit_failed);
        if a_unit_failed {
            tracing::debug!(units, "a unit failed in a batch without savepoints; running it again with them");
            savepoints.careful_for = CAREFUL_BATCHES;
        } else {
            commit = Some(attempt);
        }
    }
    let commit = commit.unwrap_or_else(|| run_all(conn, batch, true, &mut false));
    metrics_adapter::store().committed(units, started.elapsed().as_secs_f64());
    commit
}

/// One transaction over `batch`. Without savepoints (`isolated` false), the first unit
/// that fails sets `a_unit_failed` and rolls the transaction back; so does a duplicate
/// among the inbox or outbox rows, which such a batch writes after every unit's work,
/// the inbox rows and the events in one statement on PostgreSQL ([`bookkeeping`]: each
/// statement is a round trip; per unit they were as many as the units' own). A
/// duplicate inbox row (an event redelivered) rolls back the effects written before it,
/// and the batch runs again with savepoints, where that unit hears `Duplicate` before
/// its work. Events keep the order of their units, so one customer's keep theirs.
fn run_all(
    conn: &mut AnyConnection,
    batch: &mut [Box<dyn Unit>],
    isolated: bool,
    a_unit_failed: &mut bool,
) -> Result<(), StoreError> {
    conn.transaction(|c| {
        std::panic::catch_unwind(AssertUnwindSafe(|| {
            for unit in batch.iter_mut() {
                if !unit.run(c, isolated) && !isolated {
                    *a_unit_failed = true;
                    return Err(diesel::result::Error::RollbackTransaction);
                }
            }
            if !isolated {
                let inbound: Vec<Inbound> = batch.iter().filter_map(|u| u.bookkeeping().inbound).collect();
                let events: Vec<&OutboxMessage> = batch.iter().flat_map(|u| &u.bookkeeping().events).collect();
                if bookkeeping::write_all(c, &inbound, &events).is_err() {
                    *a_unit_failed = true;
                    return Err(diesel::result::Error::RollbackTransaction);
                }
            }
            Ok(())
        }))
        .map_err(|_| diesel::result::Error::RollbackTransaction)?
    })
    .map_err(db)
}
