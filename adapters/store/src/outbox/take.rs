//! The PostgreSQL relay's batch: events taken out of the outbox in a transaction that
//! stays open while they are published, committed once JetStream acked them all.
//!
//! The general relay claims rows (a lease: one write of each row), publishes, then
//! deletes them (a second write, a second transaction): seven statements and two writes
//! per row for each pass, both through the writer thread that the requests wait on. On
//! PostgreSQL a pass here is `BEGIN`, a `SELECT ... FOR UPDATE SKIP LOCKED`, a `DELETE`
//! and `COMMIT` on a connection of its own: one write per row and none through the
//! writer. The row locks do what the lease did: another replica's relay skips the rows
//! while this one publishes them, and if this process dies the transaction is rolled
//! back by the server and the rows are there again. Published events whose batch is
//! rolled back are published again, with the same `Nats-Msg-Id`: JetStream drops the
//! copy inside its duplicate window (2 min).

use chrono::Utc;
use deadpool::managed::Object;
use diesel::Connection;
use diesel::connection::TransactionManager;
use diesel::prelude::*;
use kernel::StoreError;

use super::{Pending, Row, columns, pending};
use crate::connection::{Manager, pool_error};
use crate::schema::outbox::dsl as o;
use crate::{AnyConnection, Store, db};

type Tx = <AnyConnection as Connection>::TransactionManager;

/// Events taken out of the outbox, their rows deleted and locked by a transaction that
/// is still open. [`Taken::commit`] makes the deletion durable; dropping it (or
/// [`Taken::rollback`]) gives the rows back.
pub struct Taken {
    conn: Option<Object<Manager>>,
    pub events: Vec<Pending>,
}

impl Store {
    /// On PostgreSQL, takes up to `limit` publishable events, oldest first, skipping rows
    /// another relay holds ([`Taken`]); `None` on SQLite (its relay claims with a lease
    /// through the writer: a transaction held open there would stop every other write).
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the database cannot be used.
    pub async fn take_outbox(&self, limit: i64) -> Result<Option<Taken>, StoreError> {
        if self.backend() != crate::Backend::Postgres {
            return Ok(None);
        }
        let conn = self.pool.get().await.map_err(|e| StoreError::Unavailable(pool_error(e)))?;
        let taken = conn
            .interact(move |c| {
                Tx::begin_transaction(c).map_err(db)?;
                let rows = take(c, limit);
                if rows.is_err() {
                    let _ = Tx::rollback_transaction(c);
                }
                rows
            })
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        match taken {
            Ok(rows) => Ok(Some(Taken { conn: Some(conn), events: rows.into_iter().map(pending).collect() })),
            Err(e) => {
                // A lost session leaves the pool rather than going back to it.
                drop(Object::take(conn));
                Err(e)
            }
        }
    }
}

fn take(c: &mut AnyConnection, limit: i64) -> Result<Vec<Row>, StoreError> {
    let AnyConnection::Postgresql(pg) = c else {
        return Err(StoreError::Unavailable("take_outbox is for PostgreSQL".into()));
    };
    let now = Utc::now().naive_utc();
    // Rows leased by a relay of an earlier version (claimed_until ahead) are left to it.
    let claimable = o::claimed_until.is_null().or(o::claimed_until.lt(now));
    let rows: Vec<Row> = o::outbox
        .filter(claimable)
        .order(o::seq)
        .limit(limit)
        .select(columns())
        .for_update()
        .skip_locked()
        .load(pg)
        .map_err(db)?;
    if !rows.is_empty() {
        let seqs: Vec<i64> = rows.iter().map(|r| r.0).collect();
        diesel::delete(o::outbox.filter(o::seq.eq_any(&seqs))).execute(pg).map_err(db)?;
    }
    Ok(rows)
}

impl Taken {
    /// Makes the deletion durable: call it once every event was acked.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the commit failed: the rows are back, and their
    /// events will be published again (and dropped as duplicates by JetStream).
    pub async fn commit(mut self) -> Result<(), StoreError> {
        self.end(true).await
    }

    /// Gives the rows back at once (a publish failed): the next pass takes them again.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the rollback failed (the session is dropped, which
    /// rolls it back on the server).
    pub async fn rollback(mut self) -> Result<(), StoreError> {
        self.end(false).await
    }

    async fn end(&mut self, commit: bool) -> Result<(), StoreError> {
        let Some(conn) = self.conn.take() else { return Ok(()) };
        let ended = conn
            .interact(move |c| if commit { Tx::commit_transaction(c) } else { Tx::rollback_transaction(c) }.map_err(db))
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))
            .and_then(|r| r);
        if ended.is_err() {
            drop(Object::take(conn));
        }
        ended
    }
}

impl Drop for Taken {
    /// Neither committed nor rolled back (a cancelled pass): the connection is closed
    /// rather than returned to the pool with the transaction open; the server rolls it
    /// back.
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            drop(Object::take(conn));
        }
    }
}
