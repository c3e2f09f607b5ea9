//! The transactional outbox: events are appended in the same transaction as the state
//! change that caused them, and a relay publishes them afterwards.

use std::time::Duration;

use chrono::{NaiveDateTime, Utc};
use diesel::dsl::Eq;
use diesel::prelude::*;
use kernel::{Inbound, StoreError};

use crate::prepared::Unprepared;
use crate::schema::outbox::dsl as o;
use crate::writer::Bookkeeping;
use crate::{AnyConnection, Store, db};

pub use kernel::outbox::{OutboxMessage, Pending};

type Row = (i64, String, String, String, String, String, String, Option<String>, NaiveDateTime, Vec<u8>);

fn columns() -> (
    o::seq,
    o::event_id,
    o::subject,
    o::event_type,
    o::correlation_id,
    o::causation_id,
    o::customer_id,
    o::traceparent,
    o::occurred_at,
    o::payload,
) {
    (
        o::seq,
        o::event_id,
        o::subject,
        o::event_type,
        o::correlation_id,
        o::causation_id,
        o::customer_id,
        o::traceparent,
        o::occurred_at,
        o::payload,
    )
}

fn pending(
    (
        seq,
        event_id,
        subject,
        event_type,
        correlation_id,
        causation_id,
        customer_id,
        traceparent,
        occurred_at,
        payload,
    ): Row,
) -> Pending {
    Pending {
        seq,
        message: OutboxMessage {
            event_id,
            subject,
            event_type,
            correlation_id,
            causation_id,
            customer_id,
            traceparent,
            occurred_at,
            payload,
        },
    }
}

/// The columns of one event's row.
type Values<'a> = (
    Eq<o::event_id, &'a String>,
    Eq<o::subject, &'a String>,
    Eq<o::event_type, &'a String>,
    Eq<o::correlation_id, &'a String>,
    Eq<o::causation_id, &'a String>,
    Eq<o::customer_id, &'a String>,
    Eq<o::traceparent, &'a Option<String>>,
    Eq<o::occurred_at, NaiveDateTime>,
    Eq<o::payload, &'a Vec<u8>>,
);

fn values(m: &OutboxMessage) -> Values<'_> {
    (
        o::event_id.eq(&m.event_id),
        o::subject.eq(&m.subject),
        o::event_type.eq(&m.event_type),
        o::correlation_id.eq(&m.correlation_id),
        o::causation_id.eq(&m.causation_id),
        o::customer_id.eq(&m.customer_id),
        o::traceparent.eq(&m.traceparent),
        o::occurred_at.eq(m.occurred_at),
        o::payload.eq(&m.payload),
    )
}

/// Appends events inside the caller's transaction.
///
/// # Errors
/// [`StoreError::Duplicate`] when an event id is already in the outbox.
pub fn append(conn: &mut AnyConnection, messages: &[OutboxMessage]) -> Result<(), StoreError> {
    for m in messages {
        diesel::insert_into(o::outbox).values(values(m)).execute(conn).map_err(db)?;
    }
    Ok(())
}

/// Rows per multi-row `INSERT` of the outbox: 9 parameters each, under PostgreSQL's
/// 65,535 per statement.
const ROWS_PER_INSERT: usize = 1000;

/// Appends the events of many units in one statement per [`ROWS_PER_INSERT`], in order,
/// inside the caller's transaction (a batch of the writer without savepoints).
///
/// # Errors
/// [`StoreError::Duplicate`] when an event id is already in the outbox.
pub(crate) fn append_all(conn: &mut AnyConnection, messages: &[&OutboxMessage]) -> Result<(), StoreError> {
    for chunk in messages.chunks(ROWS_PER_INSERT) {
        let rows: Vec<_> = chunk.iter().map(|m| values(m)).collect();
        match conn {
            AnyConnection::Postgresql(pg) => diesel::insert_into(o::outbox).values(rows).execute(pg),
            AnyConnection::Sqlite(lite) => diesel::insert_into(o::outbox).values(rows).execute(lite),
        }
        .map_err(db)?;
    }
    Ok(())
}

impl Store {
    /// [`Store::write_for`] the events' customer, with `events` appended to the outbox in
    /// the same transaction, after `f` succeeded; wakes the relay once they are committed.
    ///
    /// # Errors
    /// What `f` returns; [`StoreError::Duplicate`] when an event id is already there.
    pub async fn write_with_events<T, F>(&self, events: Vec<OutboxMessage>, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Fn(&mut AnyConnection) -> Result<T, StoreError> + Send + 'static,
    {
        let key = events.first().map(|e| e.customer_id.clone()).unwrap_or_default();
        self.write_with_events_for(&key, events, f).await
    }

    /// [`Self::write_with_events`] in the writer session of `key` ([`Store::write_for`]).
    ///
    /// # Errors
    /// As [`Self::write_with_events`].
    pub async fn write_with_events_for<T, F>(
        &self,
        key: &str,
        events: Vec<OutboxMessage>,
        f: F,
    ) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Fn(&mut AnyConnection) -> Result<T, StoreError> + Send + 'static,
    {
        self.write_handled_for(key, None, events, f).await
    }

    /// What a consumer's handler writes: `inbound` recorded in the inbox ([`inbox`]),
    /// `f`'s effect and `events` appended to the outbox, in one transaction of the writer
    /// session of `key` (the customer); wakes the relay once they are committed.
    ///
    /// # Errors
    /// [`StoreError::Duplicate`] when `inbound` was already handled (nothing of `f` is
    /// kept) or an event id is already in the outbox; what `f` returns.
    ///
    /// [`inbox`]: crate::inbox
    pub async fn write_handled_for<T, F>(
        &self,
        key: &str,
        inbound: Option<Inbound>,
        events: Vec<OutboxMessage>,
        f: F,
    ) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Fn(&mut AnyConnection) -> Result<T, StoreError> + Send + 'static,
    {
        let appended = !events.is_empty();
        let value = self.group.write(Some(key), Bookkeeping { inbound, events }, f).await?;
        if appended {
            self.notify_appended();
        }
        Ok(value)
    }

    /// Claims up to `limit` unclaimed (or lease-expired) events, oldest first, for
    /// `lease`. On PostgreSQL, rows another replica's relay holds are skipped, so several
    /// replicas can relay at once without publishing the same row concurrently.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the database cannot be used.
    pub async fn claim_outbox(&self, limit: i64, lease: Duration) -> Result<Vec<Pending>, StoreError> {
        self.write(move |conn| {
            let now = Utc::now().naive_utc();
            let until = now + lease;
            let claimable = o::claimed_until.is_null().or(o::claimed_until.lt(now));
            let rows: Vec<Row> = match conn {
                AnyConnection::Postgresql(pg) => Unprepared(
                    o::outbox.filter(claimable).order(o::seq).limit(limit).select(columns()).for_update().skip_locked(),
                )
                .load(pg),
                AnyConnection::Sqlite(lite) => {
                    o::outbox.filter(claimable).order(o::seq).limit(limit).select(columns()).load(lite)
                }
            }
            .map_err(db)?;
            let seqs: Vec<i64> = rows.iter().map(|r| r.0).collect();
            diesel::update(o::outbox.filter(o::seq.eq_any(&seqs)))
                .set(o::claimed_until.eq(Some(until)))
                .execute(conn)
                .map_err(db)?;
            Ok(rows.into_iter().map(pending).collect())
        })
        .await
    }

    /// Removes published events.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the database cannot be used.
    pub async fn delete_outbox(&self, seqs: Vec<i64>) -> Result<(), StoreError> {
        if seqs.is_empty() {
            return Ok(());
        }
        self.write(move |conn| {
            Unprepared(diesel::delete(o::outbox.filter(o::seq.eq_any(&seqs)))).execute(conn).map(drop).map_err(db)
        })
        .await
    }

    /// Gives claimed events back (publishing failed), so the next pass retries them at once.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the database cannot be used.
    pub async fn release_outbox(&self, seqs: Vec<i64>) -> Result<(), StoreError> {
        if seqs.is_empty() {
            return Ok(());
        }
        self.write(move |conn| {
            diesel::update(o::outbox.filter(o::seq.eq_any(&seqs)))
                .set(o::claimed_until.eq(None::<NaiveDateTime>))
                .execute(conn)
                .map(drop)
                .map_err(db)
        })
        .await
    }

    /// How many events wait to be published.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the database cannot be used.
    pub async fn outbox_len(&self) -> Result<i64, StoreError> {
        self.read(|conn| o::outbox.count().get_result(conn).map_err(db)).await
    }

    /// How many events wait to be published, and when the oldest of them occurred.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the database cannot be used.
    pub async fn outbox_backlog(&self) -> Result<(i64, Option<NaiveDateTime>), StoreError> {
        self.read(|conn| {
            let n = o::outbox.count().get_result(conn).map_err(db)?;
            let oldest = Unprepared(o::outbox.order(o::seq).select(o::occurred_at).limit(1))
                .get_result(conn)
                .optional()
                .map_err(db)?;
            Ok((n, oldest))
        })
        .await
    }
}

/// The relay reads the outbox through this port.
impl kernel::outbox::Outbox for Store {
    async fn claim(&self, limit: i64, lease: Duration) -> Result<Vec<Pending>, StoreError> {
        self.claim_outbox(limit, lease).await
    }

    async fn delete(&self, seqs: Vec<i64>) -> Result<(), StoreError> {
        self.delete_outbox(seqs).await
    }

    async fn release(&self, seqs: Vec<i64>) -> Result<(), StoreError> {
        self.release_outbox(seqs).await
    }

    async fn backlog(&self) -> Result<(i64, Option<NaiveDateTime>), StoreError> {
        self.outbox_backlog().await
    }

    async fn appended(&self) {
        Store::appended(self).await;
    }
}
