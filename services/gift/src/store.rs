//! The gift repository on diesel: gifts and their outbox in one transaction.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use gift_domain::{Gift, GiftCode, GiftEvent, GiftRepository, GiftStatus};
use kernel::{CustomerId, Envelope, StoreError};
use store_adapter::{Migrations, Store, db};
use uuid::Uuid;

use crate::events;

static SQLITE: diesel_migrations::EmbeddedMigrations = diesel_migrations::embed_migrations!("migrations/sqlite");
static POSTGRES: diesel_migrations::EmbeddedMigrations = diesel_migrations::embed_migrations!("migrations/postgres");
pub const MIGRATIONS: Migrations = Migrations { sqlite: &SQLITE, postgres: &POSTGRES };

diesel::table! {
    gifts (id) {
        id -> Text,
        customer_id -> Text,
        reward_id -> Text,
        mission_id -> Text,
        gift_code -> Text,
        name -> Text,
        status -> Text,
        issued_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
        version -> BigInt,
    }
}

#[derive(Queryable, Insertable, AsChangeset)]
#[diesel(table_name = gifts, treat_none_as_null = true)]
struct Row {
    id: String,
    customer_id: String,
    reward_id: String,
    mission_id: String,
    gift_code: String,
    name: String,
    status: String,
    issued_at: NaiveDateTime,
    used_at: Option<NaiveDateTime>,
    version: i64,
}

impl From<&Gift> for Row {
    fn from(g: &Gift) -> Self {
        Self {
            id: g.id.to_string(),
            customer_id: g.customer_id.to_string(),
            reward_id: g.reward_id.to_string(),
            mission_id: g.mission_id.to_string(),
            gift_code: g.code.as_str().to_owned(),
            name: g.name.clone(),
            status: g.status.as_str().to_owned(),
            issued_at: g.issued_at.naive_utc(),
            used_at: g.used_at.map(|t| t.naive_utc()),
            version: g.version,
        }
    }
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Unavailable(format!("corrupt gift row: {what}"))
}

fn uuid(raw: &str, what: &str) -> Result<Uuid, StoreError> {
    Uuid::try_parse(raw).map_err(|_| corrupt(what))
}

impl TryFrom<Row> for Gift {
    type Error = StoreError;
    fn try_from(r: Row) -> Result<Self, StoreError> {
        Ok(Self {
            id: uuid(&r.id, "id")?,
            customer_id: CustomerId::new(r.customer_id).map_err(|_| corrupt("customer_id"))?,
            reward_id: uuid(&r.reward_id, "reward_id")?,
            mission_id: uuid(&r.mission_id, "mission_id")?,
            code: GiftCode::new(r.gift_code).map_err(|_| corrupt("gift_code"))?,
            name: r.name,
            status: GiftStatus::parse(&r.status).ok_or_else(|| corrupt("status"))?,
            issued_at: DateTime::<Utc>::from_naive_utc_and_offset(r.issued_at, Utc),
            used_at: r.used_at.map(|t| DateTime::<Utc>::from_naive_utc_and_offset(t, Utc)),
            version: r.version,
        })
    }
}

#[derive(Clone)]
pub struct SqlGifts {
    store: Store,
}

impl SqlGifts {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    async fn one(
        &self,
        filter: impl FnOnce(&mut store_adapter::AnyConnection) -> QueryResult<Option<Row>> + Send + 'static,
    ) -> Result<Option<Gift>, StoreError> {
        let row = self.store.read(move |c| filter(c).map_err(db)).await?;
        row.map(Gift::try_from).transpose()
    }
}

impl GiftRepository for SqlGifts {
    async fn get(&self, id: Uuid) -> Result<Option<Gift>, StoreError> {
        let id = id.to_string();
        self.one(move |c| gifts::table.find(id).first(c).optional()).await
    }

    async fn find_by_reward(&self, reward_id: Uuid) -> Result<Option<Gift>, StoreError> {
        let id = reward_id.to_string();
        self.one(move |c| gifts::table.filter(gifts::reward_id.eq(id)).first(c).optional()).await
    }

    async fn list_by_customer(&self, customer: &CustomerId) -> Result<Vec<Gift>, StoreError> {
        let customer = customer.to_string();
        let rows: Vec<Row> = self
            .store
            .read(move |c| gifts::table.filter(gifts::customer_id.eq(customer)).order(gifts::id).load(c).map_err(db))
            .await?;
        rows.into_iter().map(Gift::try_from).collect()
    }

    async fn insert(&self, gift: &Gift, events: Vec<Envelope<GiftEvent>>) -> Result<(), StoreError> {
        let row = Row::from(gift);
        let messages: Vec<_> = events.iter().map(events::to_outbox).collect();
        self.store
            .write_with_events(messages, move |c| {
                diesel::insert_into(gifts::table).values(&row).execute(c).map_err(db)?;
                Ok(())
            })
            .await
    }

    async fn update(&self, gift: &Gift, events: Vec<Envelope<GiftEvent>>) -> Result<(), StoreError> {
        let expected = gift.version;
        let row = Row { version: expected + 1, ..Row::from(gift) };
        let messages: Vec<_> = events.iter().map(events::to_outbox).collect();
        self.store
            .write_with_events(messages, move |c| {
                let n = diesel::update(gifts::table.find(&row.id).filter(gifts::version.eq(expected)))
                    .set(&row)
                    .execute(c)
                    .map_err(db)?;
                if n == 0 {
                    return Err(StoreError::Conflict);
                }
                Ok(())
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use gift_domain::{Catalog, IssueGift};
    use kernel::{EventMeta, new_id};
    use store_adapter::testing::TestDatabase;

    use super::*;

    fn issued() -> (Gift, Vec<Envelope<GiftEvent>>) {
        let cmd = IssueGift {
            customer_id: CustomerId::new("c-11").unwrap(),
            reward_id: new_id(),
            mission_id: new_id(),
            code: GiftCode::new("coffee").unwrap(),
            points: 10,
        };
        let (g, e) = Gift::issue(&cmd, &Catalog::default(), new_id(), Utc::now()).unwrap();
        let meta = EventMeta::first(g.mission_id, "req", g.customer_id.clone(), Utc::now());
        (g, vec![Envelope { meta, event: e }])
    }

    async fn one_gift_per_reward_and_use_checks_the_version(db: TestDatabase) {
        let store = Store::open(&db.url, MIGRATIONS).await.unwrap();
        let repo = SqlGifts::new(store.clone());
        let (mut g, events) = issued();
        repo.insert(&g, events.clone()).await.unwrap();
        let other = Gift { id: new_id(), ..g.clone() };
        assert_eq!(repo.insert(&other, events).await, Err(StoreError::Duplicate), "a second gift for the reward");
        assert_eq!(repo.find_by_reward(g.reward_id).await.unwrap().unwrap().id, g.id);
        let used = g.use_by(None, Utc::now()).unwrap();
        let meta = EventMeta::first(g.mission_id, "use", g.customer_id.clone(), Utc::now());
        repo.update(&g, vec![Envelope { meta, event: used }]).await.unwrap();
        let stored = repo.get(g.id).await.unwrap().unwrap();
        assert_eq!((stored.status, stored.version), (GiftStatus::Used, 1));
        assert!(stored.used_at.is_some());
        assert_eq!(repo.update(&g, vec![]).await, Err(StoreError::Conflict));
        assert_eq!(repo.list_by_customer(&g.customer_id).await.unwrap().len(), 1);
        assert_eq!(store.outbox_len().await.unwrap(), 2);
    }

    store_adapter::on_both_backends!(one_gift_per_reward_and_use_checks_the_version);
}
