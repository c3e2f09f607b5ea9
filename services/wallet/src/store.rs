//! The wallet repository on diesel: items (the lots), the points account and its
//! append-only ledger, spends, outbox and inbox; each change in one transaction.
//!
//! - [`ledger`] — accounts, entries, spends and the spending lease.
//! - [`corrections`] — refunds and adjustments.
//! - [`expiry`] — lots due to expire, their expiry, the points outstanding.

use diesel::prelude::*;
use kernel::paging::{Page, PageRequest};
use kernel::{CustomerId, Envelope, Inbound, StoreError};
use store_adapter::{Migrations, Prepared, Store, db, versioned};
use uuid::Uuid;
use wallet_domain::{
    Account, Correction, CorrectionCommit, EntryKind, ExpiryCommit, ItemStatus, LedgerEntry, Spend, SpendCommit,
    WalletEvent, WalletItem, WalletRepository,
};

use crate::events;

mod corrections;
mod expiry;
mod ledger;
#[cfg(test)]
mod tests;

static SQLITE: diesel_migrations::EmbeddedMigrations = diesel_migrations::embed_migrations!("migrations/sqlite");
static POSTGRES: diesel_migrations::EmbeddedMigrations = diesel_migrations::embed_migrations!("migrations/postgres");
pub const MIGRATIONS: Migrations = Migrations { sqlite: &SQLITE, postgres: &POSTGRES };

diesel::table! {
    wallet_items (reward_id) {
        reward_id -> Text,
        mission_id -> Text,
        customer_id -> Text,
        points -> BigInt,
        status -> Text,
        gift_id -> Nullable<Text>,
        version -> BigInt,
        gift_code -> Nullable<Text>,
        exchange_request_id -> Nullable<Text>,
        remaining -> BigInt,
        expires_at -> Nullable<Timestamp>,
    }
}

#[derive(Clone, Queryable, Insertable, AsChangeset)]
#[diesel(table_name = wallet_items, treat_none_as_null = true)]
struct Row {
    reward_id: String,
    mission_id: String,
    customer_id: String,
    points: i64,
    status: String,
    gift_id: Option<String>,
    version: i64,
    gift_code: Option<String>,
    exchange_request_id: Option<String>,
    remaining: i64,
    expires_at: Option<chrono::NaiveDateTime>,
}

impl From<&WalletItem> for Row {
    fn from(i: &WalletItem) -> Self {
        Self {
            reward_id: i.reward_id.to_string(),
            mission_id: i.mission_id.to_string(),
            customer_id: i.customer_id.to_string(),
            points: i.points,
            status: i.status.as_str().to_owned(),
            gift_id: i.gift_id.map(|g| g.to_string()),
            version: i.version,
            gift_code: i.gift_code.clone(),
            exchange_request_id: i.exchange_request_id.clone(),
            remaining: i.remaining,
            expires_at: i.expires_at.map(|t| t.naive_utc()),
        }
    }
}

pub(crate) fn corrupt(what: &str) -> StoreError {
    StoreError::Unavailable(format!("corrupt wallet row: {what}"))
}

impl TryFrom<Row> for WalletItem {
    type Error = StoreError;
    fn try_from(r: Row) -> Result<Self, StoreError> {
        Ok(Self {
            reward_id: Uuid::try_parse(&r.reward_id).map_err(|_| corrupt("reward_id"))?,
            mission_id: Uuid::try_parse(&r.mission_id).map_err(|_| corrupt("mission_id"))?,
            customer_id: CustomerId::new(r.customer_id).map_err(|_| corrupt("customer_id"))?,
            points: r.points,
            remaining: r.remaining,
            status: ItemStatus::parse(&r.status).ok_or_else(|| corrupt("status"))?,
            gift_id: r.gift_id.map(|g| Uuid::try_parse(&g)).transpose().map_err(|_| corrupt("gift_id"))?,
            version: r.version,
            gift_code: r.gift_code,
            exchange_request_id: r.exchange_request_id,
            expires_at: r.expires_at.map(|t| chrono::DateTime::from_naive_utc_and_offset(t, chrono::Utc)),
        })
    }
}

#[derive(Clone)]
pub struct SqlWallet {
    store: Store,
}

impl SqlWallet {
    pub fn new(store: Store) -> Self {
        Self { store }
    }
}

impl WalletRepository for SqlWallet {
    async fn get(&self, reward_id: Uuid) -> Result<Option<WalletItem>, StoreError> {
        let id = reward_id.to_string();
        let row: Option<Row> =
            self.store.read(move |c| wallet_items::table.find(id).first(c).optional().map_err(db)).await?;
        row.map(WalletItem::try_from).transpose()
    }

    async fn list_by_customer(&self, customer: &CustomerId, page: PageRequest) -> Result<Page<WalletItem>, StoreError> {
        let customer = customer.to_string();
        let before = page.before.map(|b| b.to_string());
        // Keyset: newest first (UUIDv7 in text sorts by creation) from the index on
        // (customer_id, reward_id); the cost does not grow with the pages before this one.
        let rows: Vec<Row> = self
            .store
            .read(move |c| {
                let mut q = wallet_items::table
                    .filter(wallet_items::customer_id.eq(customer))
                    .order(wallet_items::reward_id.desc())
                    .limit(page.probe())
                    .into_boxed();
                if let Some(before) = before {
                    q = q.filter(wallet_items::reward_id.lt(before));
                }
                q.load(c).map_err(db)
            })
            .await?;
        let items = rows.into_iter().map(WalletItem::try_from).collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_probe(items, page, |i| i.reward_id))
    }

    async fn account(&self, customer: &CustomerId) -> Result<Account, StoreError> {
        self.read_account(customer).await
    }

    async fn lots(&self, customer: &CustomerId) -> Result<Vec<WalletItem>, StoreError> {
        let customer = customer.to_string();
        let rows: Vec<Row> = self
            .store
            .read(move |c| {
                wallet_items::table
                    .filter(wallet_items::customer_id.eq(customer).and(wallet_items::remaining.gt(0)))
                    .order(wallet_items::reward_id)
                    .load(c)
                    .map_err(db)
            })
            .await?;
        rows.into_iter().map(WalletItem::try_from).collect()
    }

    async fn ledger(
        &self,
        customer: &CustomerId,
        kind: Option<EntryKind>,
        page: PageRequest,
    ) -> Result<Page<LedgerEntry>, StoreError> {
        self.read_ledger(customer, kind, page).await
    }

    async fn insert(
        &self,
        item: &WalletItem,
        entry: &LedgerEntry,
        events: Vec<Envelope<WalletEvent>>,
        inbound: Inbound,
    ) -> Result<(), StoreError> {
        let row = Row::from(item);
        let entry = ledger::EntryRow::from(entry);
        let messages: Vec<_> = events.iter().map(events::to_outbox).collect();
        self.store
            .write_handled_for(&item.customer_id.to_string(), Some(inbound), messages, move |c| {
                Prepared(diesel::insert_into(wallet_items::table).values(&row)).execute(c).map_err(db)?;
                ledger::append(c, &entry)
            })
            .await
    }

    async fn find_spend(&self, customer: &CustomerId, request_id: &str) -> Result<Option<Spend>, StoreError> {
        self.read_spend(customer, request_id).await
    }

    async fn take_lease(
        &self,
        customer: &CustomerId,
        holder: Uuid,
        ttl: std::time::Duration,
    ) -> Result<bool, StoreError> {
        self.lease(customer, holder, ttl).await
    }

    async fn release_lease(&self, customer: &CustomerId, holder: Uuid) -> Result<(), StoreError> {
        self.unlease(customer, holder).await
    }

    async fn commit_spend(&self, commit: SpendCommit) -> Result<(), StoreError> {
        let customer = commit.spend.customer_id.to_string();
        let holder = commit.holder.to_string();
        let items: Vec<Row> = commit.items.iter().map(Row::from).collect();
        let entry = ledger::EntryRow::from(&commit.entry);
        let spend = ledger::SpendRow::from(&commit.spend);
        let draws = ledger::draw_rows(&commit.spend);
        let messages: Vec<_> = commit.events.iter().map(events::to_outbox).collect();
        self.store
            .write_with_events_for(&customer.clone(), messages, move |c| {
                ledger::give_back(c, &customer, &holder)?;
                update_items(c, &items)?;
                ledger::append(c, &entry)?;
                ledger::record_spend(c, &spend, &draws)
            })
            .await?;
        metrics_adapter::points().spent(&commit.spend.gift_code, commit.spend.cost);
        Ok(())
    }

    async fn find_spend_by_gift(&self, gift_id: Uuid) -> Result<Option<Spend>, StoreError> {
        self.read_spend_by_gift(gift_id).await
    }

    async fn refund_of(&self, gift_id: Uuid) -> Result<Option<Correction>, StoreError> {
        self.read_refund(gift_id).await
    }

    async fn correction(&self, request_id: &str) -> Result<Option<Correction>, StoreError> {
        self.read_correction_by_request(request_id).await
    }

    async fn commit_correction(&self, commit: CorrectionCommit) -> Result<(), StoreError> {
        self.write_correction(commit).await
    }

    async fn due_for_expiry(
        &self,
        now: chrono::DateTime<chrono::Utc>,
        limit: usize,
    ) -> Result<Vec<CustomerId>, StoreError> {
        self.read_due(now, limit).await
    }

    async fn commit_expiry(&self, commit: ExpiryCommit) -> Result<(), StoreError> {
        self.write_expiry(commit).await
    }

    async fn lots_expiring(
        &self,
        after: chrono::DateTime<chrono::Utc>,
        until: chrono::DateTime<chrono::Utc>,
        limit: usize,
    ) -> Result<Vec<WalletItem>, StoreError> {
        self.read_expiring(after, until, limit).await
    }

    async fn record_notice(&self, event: Envelope<WalletEvent>) -> Result<(), StoreError> {
        self.write_notice(event).await
    }

    async fn outstanding(&self) -> Result<i64, StoreError> {
        self.read_outstanding().await
    }
}

/// Stores changed items, each at the version it was read.
///
/// # Errors
/// [`StoreError::Conflict`] when one moved meanwhile.
fn update_items(c: &mut store_adapter::AnyConnection, items: &[Row]) -> Result<(), StoreError> {
    for item in items {
        let expected = item.version;
        let row = Row { version: expected + 1, ..item.clone() };
        versioned(
            Prepared(
                diesel::update(wallet_items::table.find(&row.reward_id).filter(wallet_items::version.eq(expected)))
                    .set(&row),
            )
            .execute(c),
        )?;
    }
    Ok(())
}
