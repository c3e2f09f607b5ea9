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

/// Records many handled events in one statement per thousand, inside the caller's
/// transaction (a batch of the writer without savepoints). Nothing is counted as a
/// duplicate here: on [`StoreError::Duplicate`] the batch runs again with [`record`].
///
/// # Errors
/// [`StoreError::Duplicate`] when a consumer already handled one of them.
pub(crate) fn record_all(conn: &mut AnyConnection, handled: &[Inbound]) -> Result<(), StoreError> {
    let at = Utc::now().naive_utc();
    for chunk in handled.chunks(1000) {
        let ids: Vec<String> = chunk.iter().map(|h| h.event_id.to_string()).collect();
        let rows: Vec<_> = chunk
            .iter()
            .zip(&ids)
            .map(|(h, id)| (i::consumer.eq(h.consumer), i::event_id.eq(id), i::handled_at.eq(at)))
            .collect();
        match conn {
            AnyConnection::Postgresql(pg) => diesel::insert_into(i::inbox).values(rows).execute(pg),
            AnyConnection::Sqlite(lite) => diesel::insert_into(i::inbox).values(rows).execute(lite),
        }
        .map_err(db)?;
    }
    Ok(())
}

/// How many events the inbox remembers (every consumer's).
///
/// # Errors
/// [`StoreError::Unavailable`] when the database cannot be used.
pub async fn rows(store: &crate::Store) -> Result<i64, StoreError> {
    store.read(|conn| i::inbox.count().get_result(conn).map_err(db)).await
}

/// Forgets the events handled before `before`; returns how many. Call it with a horizon
/// longer than any redelivery can come (see `NatsSettings::inbox_horizon`): inside it an
/// event is still a duplicate.
///
/// # Errors
/// [`StoreError::Unavailable`] when the database cannot be used.
pub fn prune(conn: &mut AnyConnection, before: chrono::NaiveDateTime) -> Result<usize, StoreError> {
    diesel::delete(i::inbox.filter(i::handled_at.lt(before))).execute(conn).map_err(db)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use kernel::new_id;

    use super::*;
    use crate::testing::TestDatabase;
    use crate::{Migrations, Store};

    static NONE_SQLITE: diesel_migrations::EmbeddedMigrations =
        diesel_migrations::embed_migrations!("migrations/sqlite");
    static NONE_POSTGRES: diesel_migrations::EmbeddedMigrations =
        diesel_migrations::embed_migrations!("migrations/postgres");
    const SHARED_ONLY: Migrations = Migrations { sqlite: &NONE_SQLITE, postgres: &NONE_POSTGRES };

    /// Records `inbound` as handled `ago`.
    async fn handled(store: &Store, inbound: Inbound, ago: Duration) {
        let at = (Utc::now() - chrono::Duration::from_std(ago).unwrap()).naive_utc();
        store
            .write(move |c| {
                diesel::insert_into(i::inbox)
                    .values((
                        i::consumer.eq(inbound.consumer),
                        i::event_id.eq(inbound.event_id.to_string()),
                        i::handled_at.eq(at),
                    ))
                    .execute(c)
                    .map(drop)
                    .map_err(db)
            })
            .await
            .unwrap();
    }

    async fn an_event_redelivered_inside_the_horizon_is_still_a_duplicate_and_older_ones_are_forgotten(
        db: TestDatabase,
    ) {
        let store = Store::open(&db.url, SHARED_ONLY).await.unwrap();
        let horizon = Duration::from_secs(21 * 24 * 3600);
        let hour = Duration::from_secs(3600);
        let inside = Inbound { consumer: "wallet-issue", event_id: new_id() };
        let outside = Inbound { consumer: "wallet-issue", event_id: new_id() };
        handled(&store, inside, horizon - hour).await;
        handled(&store, outside, horizon + hour).await;

        assert_eq!(store.prune_inbox(horizon).await.unwrap(), 1);
        // the one inside the horizon: delivered again, still a duplicate
        assert_eq!(store.write(move |c| record(c, inside)).await, Err(StoreError::Duplicate));
        // the one beyond it is forgotten (no delivery can come that late)
        assert_eq!(store.write(move |c| record(c, outside)).await, Ok(()));
        assert_eq!(store.prune_inbox(horizon).await.unwrap(), 0, "nothing else to forget");
    }

    crate::on_both_backends!(an_event_redelivered_inside_the_horizon_is_still_a_duplicate_and_older_ones_are_forgotten);
}
