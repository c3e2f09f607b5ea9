//! The inbox: which events each consumer has handled, written in the same transaction
//! as the handler's effect, so a redelivered event has no second effect.

use chrono::Utc;
use diesel::prelude::*;
use kernel::{Inbound, StoreError};

use crate::schema::inbox::dsl as i;
use crate::{AnyConnection, db};

/// Records `inbound` as handled inside the caller's transaction. Call it first: on
/// [`StoreError::Duplicate`] the caller returns it and the transaction rolls back.
///
/// # Errors
/// [`StoreError::Duplicate`] when the consumer already handled the event.
pub fn record(conn: &mut AnyConnection, inbound: Inbound) -> Result<(), StoreError> {
    diesel::insert_into(i::inbox)
        .values((
            i::consumer.eq(inbound.consumer),
            i::event_id.eq(inbound.event_id.to_string()),
            i::handled_at.eq(Utc::now().naive_utc()),
        ))
        .execute(conn)
        .map(drop)
        .map_err(db)
        .inspect_err(|e| {
            if matches!(e, StoreError::Duplicate) {
                // The consumer acks it as handled: its metrics count it as a duplicate.
                metrics_adapter::duplicates::note(inbound.consumer, &inbound.event_id.to_string());
            }
        })
}

/// How many events the inbox remembers (every consumer's).
///
/// # Errors
/// [`StoreError::Unavailable`] when the database cannot be used.
pub async fn rows(store: &crate::Store) -> Result<i64, StoreError> {
    store.read(|conn| i::inbox.count().get_result(conn).map_err(db)).await
}
