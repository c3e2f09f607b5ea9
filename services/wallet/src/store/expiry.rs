//! Expiry on diesel: the customers with lots due, a customer's expiries in one
//! transaction (each lot emptied at the version it was read, so it expires once whatever
//! the replicas), and the sum of the balances.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use kernel::{CustomerId, Envelope, StoreError};
use store_adapter::db;
use wallet_domain::{ExpiryCommit, WalletEvent, WalletItem};

use super::ledger::{self, EntryRow};
use super::{Row, SqlWallet, corrupt, update_items, wallet_items};
use crate::events;

diesel::table! {
    wallet_expiry_notices (customer_id, expiry_date) {
        customer_id -> Text,
        expiry_date -> Text,
        points -> BigInt,
        created_at -> Timestamp,
    }
}

#[derive(QueryableByName)]
struct Total {
    #[diesel(sql_type = BigInt)]
    total: i64,
}

impl SqlWallet {
    pub(super) async fn read_due(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<CustomerId>, StoreError> {
        use wallet_items::dsl as w;
        let now = now.naive_utc();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows: Vec<(String, Option<chrono::NaiveDateTime>)> = self
            .store
            .read(move |c| {
                w::wallet_items
                    .filter(w::remaining.gt(0).and(w::expires_at.le(now)))
                    .select((w::customer_id, w::expires_at))
                    .order(w::expires_at)
                    .limit(limit.saturating_mul(4))
                    .load(c)
                    .map_err(db)
            })
            .await?;
        let mut customers: Vec<CustomerId> = Vec::new();
        for (id, _) in rows {
            let id = CustomerId::new(id).map_err(|_| corrupt("customer_id"))?;
            if !customers.contains(&id) && customers.len() < usize::try_from(limit).unwrap_or(usize::MAX) {
                customers.push(id);
            }
        }
        Ok(customers)
    }

    pub(super) async fn write_expiry(&self, commit: ExpiryCommit) -> Result<(), StoreError> {
        let Some(customer) = commit.entries.first().map(|e| e.customer_id.to_string()) else { return Ok(()) };
        let holder = commit.holder.to_string();
        let items: Vec<Row> = commit.items.iter().map(Row::from).collect();
        let entries: Vec<EntryRow> = commit.entries.iter().map(EntryRow::from).collect();
        let expired: i64 = commit.entries.iter().map(|e| e.amount).sum();
        self.store
            .write_for(&customer.clone(), move |c| {
                ledger::give_back(c, &customer, &holder)?;
                // The guard: a lot another replica expired (or anything else moved) is at
                // another version, and nothing here is written.
                update_items(c, &items)?;
                for entry in &entries {
                    ledger::append(c, entry)?;
                }
                Ok(())
            })
            .await?;
        metrics_adapter::points().expired(expired);
        Ok(())
    }

    pub(super) async fn read_expiring(
        &self,
        after: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<WalletItem>, StoreError> {
        use wallet_items::dsl as w;
        let (after, until) = (after.naive_utc(), until.naive_utc());
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows: Vec<Row> = self
            .store
            .read(move |c| {
                w::wallet_items
                    .filter(w::remaining.gt(0).and(w::expires_at.gt(after)).and(w::expires_at.le(until)))
                    .order(w::expires_at)
                    .limit(limit)
                    .load(c)
                    .map_err(db)
            })
            .await?;
        rows.into_iter().map(WalletItem::try_from).collect()
    }

    pub(super) async fn write_notice(&self, event: Envelope<WalletEvent>) -> Result<(), StoreError> {
        let WalletEvent::PointsExpiring(n) = &event.event else {
            return Err(StoreError::Unavailable("a notice is a PointsExpiring".into()));
        };
        let (customer, date, points) = (n.customer_id.to_string(), n.date.to_string(), n.points);
        let at = event.meta.occurred_at.naive_utc();
        let messages = vec![events::to_outbox(&event)];
        self.store
            .write_with_events_for(&customer.clone(), messages, move |c| {
                use wallet_expiry_notices::dsl as x;
                // A duplicate: this customer and date were told already.
                diesel::insert_into(x::wallet_expiry_notices)
                    .values((
                        x::customer_id.eq(&customer),
                        x::expiry_date.eq(&date),
                        x::points.eq(points),
                        x::created_at.eq(at),
                    ))
                    .execute(c)
                    .map_err(db)?;
                Ok(())
            })
            .await
    }

    pub(super) async fn read_outstanding(&self) -> Result<i64, StoreError> {
        let sql = "SELECT CAST(COALESCE(SUM(balance), 0) AS BIGINT) AS total FROM wallet_accounts";
        let row: Total = self.store.read(move |c| diesel::sql_query(sql).get_result(c).map_err(db)).await?;
        Ok(row.total)
    }
}
