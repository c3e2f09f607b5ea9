//! The rows a writer batch without savepoints writes after its units' work: the inbox
//! rows of the events they handled and the events they caused ([`crate::writer`]).
//!
//! On PostgreSQL both go in one statement of one fixed shape: every column is bound as
//! an array and unnested, and the inbox rows are inserted by a data-modifying `WITH`.
//! One round trip per batch instead of two, and, its SQL being the same for every batch,
//! the statement is parsed and planned once per connection ([`Prepared`]); a multi-row
//! `VALUES` list has one shape per batch size, planned on every call. On SQLite a
//! statement costs no round trip: the multi-row inserts of [`inbox`] and [`outbox`].

use chrono::Utc;
use diesel::RunQueryDsl;
use diesel::sql_types::{Array, Binary, Nullable, Text, Timestamp};
use kernel::{Inbound, StoreError};

use crate::outbox::OutboxMessage;
use crate::prepared::Prepared;
use crate::{AnyConnection, db, inbox, outbox};

/// The inbox rows in `handled`, then the events, in order (`WITH ORDINALITY`: the
/// outbox's `seq` follows the units' order, so one customer's events keep theirs).
const BOTH: &str = "WITH handled AS (\
     INSERT INTO inbox (consumer, event_id, handled_at) \
     SELECT consumer, event_id, $3 FROM unnest($1::text[], $2::text[]) AS h(consumer, event_id)) \
     INSERT INTO outbox (event_id, subject, event_type, correlation_id, causation_id, customer_id, \
     traceparent, occurred_at, payload) \
     SELECT event_id, subject, event_type, correlation_id, causation_id, customer_id, traceparent, \
     occurred_at, payload \
     FROM unnest($4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], \
     $11::timestamp[], $12::bytea[]) WITH ORDINALITY \
     AS e(event_id, subject, event_type, correlation_id, causation_id, customer_id, traceparent, \
     occurred_at, payload, n) ORDER BY n";

/// Writes `handled` to the inbox and `events` to the outbox inside the caller's
/// transaction.
///
/// # Errors
/// [`StoreError::Duplicate`] when a consumer already handled one of `handled` or an
/// event id is already in the outbox: the batch runs again with savepoints.
pub(crate) fn write_all(
    conn: &mut AnyConnection,
    handled: &[Inbound],
    events: &[&OutboxMessage],
) -> Result<(), StoreError> {
    if handled.is_empty() && events.is_empty() {
        return Ok(());
    }
    let AnyConnection::Postgresql(pg) = conn else {
        inbox::record_all(conn, handled)?;
        return outbox::append_all(conn, events);
    };
    let consumers: Vec<&str> = handled.iter().map(|h| h.consumer).collect();
    let event_ids: Vec<String> = handled.iter().map(|h| h.event_id.to_string()).collect();
    let column = |f: fn(&OutboxMessage) -> &str| events.iter().map(|m| f(m)).collect::<Vec<_>>();
    let query = diesel::sql_query(BOTH)
        .bind::<Array<Text>, _>(consumers)
        .bind::<Array<Text>, _>(event_ids)
        .bind::<Timestamp, _>(Utc::now().naive_utc())
        .bind::<Array<Text>, _>(column(|m| m.event_id.as_str()))
        .bind::<Array<Text>, _>(column(|m| m.subject.as_str()))
        .bind::<Array<Text>, _>(column(|m| m.event_type.as_str()))
        .bind::<Array<Text>, _>(column(|m| m.correlation_id.as_str()))
        .bind::<Array<Text>, _>(column(|m| m.causation_id.as_str()))
        .bind::<Array<Text>, _>(column(|m| m.customer_id.as_str()))
        .bind::<Array<Nullable<Text>>, _>(events.iter().map(|m| m.traceparent.as_deref()).collect::<Vec<_>>())
        .bind::<Array<Timestamp>, _>(events.iter().map(|m| m.occurred_at).collect::<Vec<_>>())
        .bind::<Array<Binary>, _>(events.iter().map(|m| m.payload.as_slice()).collect::<Vec<_>>());
    Prepared(query).execute(pg).map(drop).map_err(db)
}
