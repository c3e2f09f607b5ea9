//! The wallet repository on diesel: items, outbox and inbox in one transaction.

use diesel::prelude::*;
use kernel::paging::{Page, PageRequest};
use kernel::{CustomerId, Envelope, Inbound, StoreError};
use store_adapter::{Migrations, Prepared, Store, db, versioned};
use uuid::Uuid;
use wallet_domain::{ItemStatus, WalletEvent, WalletItem, WalletRepository};

use crate::events;

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
    }
}

#[derive(Queryable, Insertable, AsChangeset)]
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
        }
    }
}

fn corrupt(what: &str) -> StoreError {
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
            status: ItemStatus::parse(&r.status).ok_or_else(|| corrupt("status"))?,
            gift_id: r.gift_id.map(|g| Uuid::try_parse(&g)).transpose().map_err(|_| corrupt("gift_id"))?,
            version: r.version,
            gift_code: r.gift_code,
            exchange_request_id: r.exchange_request_id,
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

    async fn available_points(&self, customer: &CustomerId) -> Result<i64, StoreError> {
        use diesel::sql_types::{BigInt, Nullable};
        let customer = customer.to_string();
        let issued = ItemStatus::Issued.as_str();
        // One aggregate over the customer's index range, not every item sent back.
        let total: Option<i64> = self
            .store
            .read(move |c| {
                wallet_items::table
                    .filter(wallet_items::customer_id.eq(customer).and(wallet_items::status.eq(issued)))
                    // PostgreSQL sums BIGINT as NUMERIC: cast back (a balance fits in 64 bits).
                    .select(diesel::dsl::sql::<Nullable<BigInt>>("CAST(SUM(points) AS BIGINT)"))
                    .first::<Option<i64>>(c)
                    .map_err(db)
            })
            .await?;
        Ok(total.unwrap_or(0))
    }

    async fn insert(
        &self,
        item: &WalletItem,
        events: Vec<Envelope<WalletEvent>>,
        inbound: Inbound,
    ) -> Result<(), StoreError> {
        let row = Row::from(item);
        let messages: Vec<_> = events.iter().map(events::to_outbox).collect();
        self.store
            .write_handled_for(&item.customer_id.to_string(), Some(inbound), messages, move |c| {
                Prepared(diesel::insert_into(wallet_items::table).values(&row)).execute(c).map_err(db)?;
                Ok(())
            })
            .await
    }

    async fn find_by_exchange_request(
        &self,
        customer: &CustomerId,
        request_id: &str,
    ) -> Result<Option<WalletItem>, StoreError> {
        let (customer, request_id) = (customer.to_string(), request_id.to_owned());
        let row: Option<Row> = self
            .store
            .read(move |c| {
                wallet_items::table
                    .filter(wallet_items::customer_id.eq(customer))
                    .filter(wallet_items::exchange_request_id.eq(request_id))
                    .first(c)
                    .optional()
                    .map_err(db)
            })
            .await?;
        row.map(WalletItem::try_from).transpose()
    }

    async fn update(&self, item: &WalletItem, events: Vec<Envelope<WalletEvent>>) -> Result<(), StoreError> {
        self.update_item(item, events).await
    }
}

impl SqlWallet {
    async fn update_item(&self, item: &WalletItem, events: Vec<Envelope<WalletEvent>>) -> Result<(), StoreError> {
        let expected = item.version;
        let row = Row { version: expected + 1, ..Row::from(item) };
        let messages: Vec<_> = events.iter().map(events::to_outbox).collect();
        self.store
            .write_with_events(messages, move |c| {
                versioned(
                    Prepared(
                        diesel::update(
                            wallet_items::table.find(&row.reward_id).filter(wallet_items::version.eq(expected)),
                        )
                        .set(&row),
                    )
                    .execute(c),
                )
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use kernel::{EventMeta, new_id};
    use store_adapter::testing::TestDatabase;

    use super::*;

    async fn a_reward_is_issued_into_one_wallet_once(db: TestDatabase) {
        let store = Store::open(&db.url, MIGRATIONS).await.unwrap();
        let repo = SqlWallet::new(store.clone());
        let customer = CustomerId::new("c-11").unwrap();
        let (item, event) = WalletItem::issue(new_id(), new_id(), customer.clone(), 10);
        let meta = EventMeta::first(item.mission_id, "req", customer.clone(), Utc::now());
        let events = vec![Envelope { meta, event }];
        let inbound = Inbound { consumer: "wallet-issue", event_id: new_id() };
        repo.insert(&item, events.clone(), inbound).await.unwrap();
        assert_eq!(repo.get(item.reward_id).await.unwrap().unwrap(), item);
        assert_eq!(repo.insert(&item, events.clone(), inbound).await, Err(StoreError::Duplicate));
        let again = Inbound { consumer: "wallet-issue", event_id: new_id() };
        assert_eq!(repo.insert(&item, events, again).await, Err(StoreError::Duplicate));
        assert_eq!(repo.list_by_customer(&customer, PageRequest::default()).await.unwrap().items, vec![item]);
        assert_eq!(store.outbox_len().await.unwrap(), 1);
        assert!(
            repo.list_by_customer(&CustomerId::new("other").unwrap(), PageRequest::default())
                .await
                .unwrap()
                .items
                .is_empty()
        );
        assert_eq!(repo.available_points(&customer).await.unwrap(), 10);
        assert_eq!(repo.available_points(&CustomerId::new("other").unwrap()).await.unwrap(), 0);
    }

    async fn an_exchange_is_stored_once_with_its_event(db: TestDatabase) {
        let store = Store::open(&db.url, MIGRATIONS).await.unwrap();
        let repo = SqlWallet::new(store.clone());
        let customer = CustomerId::new("c-11").unwrap();
        let (mut item, event) = WalletItem::issue(new_id(), new_id(), customer.clone(), 10);
        let meta = EventMeta::first(item.mission_id, "req", customer.clone(), Utc::now());
        repo.insert(&item, vec![Envelope { meta: meta.clone(), event }], Inbound { consumer: "w", event_id: new_id() })
            .await
            .unwrap();
        let cmd = wallet_domain::ExchangeReward::new("c-11", &item.reward_id.to_string(), "coffee", "x1").unwrap();
        let stale = item.clone();
        let exchanged = item.exchange(new_id(), &cmd).unwrap();
        repo.update(&item, vec![Envelope { meta: meta.caused(Utc::now()), event: exchanged }]).await.unwrap();
        let stored = repo.get(item.reward_id).await.unwrap().unwrap();
        assert_eq!(stored, WalletItem { version: 1, ..item.clone() });
        assert_eq!(stored.exchange_request_id.as_deref(), Some("x1"));
        assert_eq!(repo.update(&stale, vec![]).await, Err(StoreError::Conflict), "a racing exchange loses");
        assert_eq!(store.outbox_len().await.unwrap(), 2);
    }

    async fn a_request_id_exchanges_one_of_a_customers_rewards(db: TestDatabase) {
        let store = Store::open(&db.url, MIGRATIONS).await.unwrap();
        let repo = SqlWallet::new(store.clone());
        let customer = CustomerId::new("c-11").unwrap();
        let mut items = Vec::new();
        for owner in ["c-11", "c-11", "c-12"] {
            let (item, event) = WalletItem::issue(new_id(), new_id(), CustomerId::new(owner).unwrap(), 10);
            let meta = EventMeta::first(item.mission_id, "req", customer.clone(), Utc::now());
            repo.insert(&item, vec![Envelope { meta, event }], Inbound { consumer: "w", event_id: new_id() })
                .await
                .unwrap();
            items.push(item);
        }
        let exchange = |item: &mut WalletItem, owner: &str| {
            let cmd = wallet_domain::ExchangeReward::new(owner, &item.reward_id.to_string(), "coffee", "x1").unwrap();
            item.exchange(new_id(), &cmd).unwrap();
        };
        let [mut first, mut second, mut theirs] = <[WalletItem; 3]>::try_from(items).unwrap();
        exchange(&mut first, "c-11");
        repo.update(&first, vec![]).await.unwrap();
        let found = repo.find_by_exchange_request(&customer, "x1").await.unwrap().unwrap();
        assert_eq!(found.reward_id, first.reward_id);
        assert!(repo.find_by_exchange_request(&customer, "x2").await.unwrap().is_none());
        exchange(&mut second, "c-11");
        assert_eq!(repo.update(&second, vec![]).await, Err(StoreError::Duplicate), "one exchange per request id");
        assert_eq!(repo.get(second.reward_id).await.unwrap().unwrap().status, ItemStatus::Issued, "nothing written");
        exchange(&mut theirs, "c-12");
        repo.update(&theirs, vec![]).await.expect("another customer's request ids are theirs");
    }

    store_adapter::on_both_backends!(
        a_reward_is_issued_into_one_wallet_once,
        an_exchange_is_stored_once_with_its_event,
        a_request_id_exchanges_one_of_a_customers_rewards
    );
}
