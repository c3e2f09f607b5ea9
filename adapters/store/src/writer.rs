//! Group commit, on both backends: one thread per process owns the writer connection and
//! commits every unit of work that is waiting in one transaction, each inside its own
//! savepoint.
//!
//! SQLite takes one writer at a time, so concurrent writers queue anyway. Queueing them
//! here instead of in a pool turns N transactions into one: one `BEGIN` / `COMMIT`, one
//! hand-off between the async tasks and the thread, and a unit that fails rolls back only
//! its own savepoint. On PostgreSQL the cost of a transaction is its commit's WAL flush
//! (`synchronous_commit` stays on): one flush for a batch instead of one per unit. One
//! writer per process, not several: two batches of one process can never wait on each
//! other's locks (a deadlock between batches would fail every unit of both); replicas
//! each batch their own, as separate sessions did before.
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
use kernel::StoreError;
use tokio::sync::oneshot;

use crate::connection::DatabaseUrl;
use crate::{AnyConnection, db};

/// Most units in one transaction: bounds how long the first of them waits for its answer.
const MAX_BATCH: usize = 256;

/// A unit of work with its caller's answer channel, type-erased for the queue.
trait Unit: Send {
    /// Runs the unit inside a savepoint; keeps its result for [`Unit::answer`].
    fn run(&mut self, conn: &mut AnyConnection);
    /// Answers the caller: its own result, unless the commit failed.
    fn answer(self: Box<Self>, commit: &Result<(), StoreError>);
}

struct Typed<T, F> {
    work: Option<F>,
    result: Option<Result<T, StoreError>>,
    reply: oneshot::Sender<Result<T, StoreError>>,
}

impl<T, F> Unit for Typed<T, F>
where
    T: Send + 'static,
    F: FnOnce(&mut AnyConnection) -> Result<T, StoreError> + Send + 'static,
{
    fn run(&mut self, conn: &mut AnyConnection) {
        let Some(work) = self.work.take() else { return };
        // A nested diesel transaction is a savepoint: an error rolls back this unit only.
        let result = conn.transaction(|c| work(c).map_err(Nested::Store)).map_err(|e| match e {
            Nested::Store(e) => e,
            Nested::Diesel(e) => db(e),
        });
        self.result = Some(result);
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

/// The handle the store keeps: sends units to the writer thread. The thread ends when
/// the last handle is dropped.
#[derive(Clone)]
pub(crate) struct Writer {
    queue: mpsc::Sender<Box<dyn Unit>>,
}

impl Writer {
    /// Starts the writer thread for the database at `url`. The connection is opened (and
    /// re-opened after a failure) by the thread itself.
    pub(crate) fn start(url: DatabaseUrl) -> std::io::Result<Self> {
        let (queue, units) = mpsc::channel::<Box<dyn Unit>>();
        thread::Builder::new().name("store-writer".into()).spawn(move || serve(&url, &units))?;
        Ok(Self { queue })
    }

    /// Runs `work` in the next group transaction and answers once it committed.
    pub(crate) async fn write<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut AnyConnection) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let unit = Box::new(Typed { work: Some(work), result: None, reply });
        self.queue.send(unit).map_err(|_| StoreError::Unavailable("the writer thread stopped".into()))?;
        answer.await.map_err(|_| StoreError::Unavailable("the writer thread dropped the unit of work".into()))?
    }
}

fn serve(url: &DatabaseUrl, units: &mpsc::Receiver<Box<dyn Unit>>) {
    let mut conn: Option<AnyConnection> = None;
    // Blocks until a unit arrives; ends when every handle is gone.
    while let Ok(first) = units.recv() {
        let mut batch = vec![first];
        batch.extend(units.try_iter().take(MAX_BATCH - 1));
        let commit = match &mut conn {
            Some(c) => commit_batch(c, &mut batch),
            None => match url.establish() {
                Ok(c) => commit_batch(conn.insert(c), &mut batch),
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

/// `BEGIN`, every unit in its savepoint, `COMMIT`. A panicking unit fails the whole
/// batch (its savepoint state is unknown) and the transaction is rolled back. On SQLite a
/// deferred `BEGIN` is enough: this thread is the only writer of the file.
fn commit_batch(conn: &mut AnyConnection, batch: &mut [Box<dyn Unit>]) -> Result<(), StoreError> {
    let started = std::time::Instant::now();
    let units = batch.len();
    let commit = conn
        .transaction(|c| {
            std::panic::catch_unwind(AssertUnwindSafe(|| {
                for unit in batch.iter_mut() {
                    unit.run(c);
                }
            }))
            .map_err(|_| diesel::result::Error::RollbackTransaction)
        })
        .map_err(db);
    metrics_adapter::store().committed(units, started.elapsed().as_secs_f64());
    commit
}
