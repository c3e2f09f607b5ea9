//! The reward repository on diesel: rewards, outbox and inbox in one transaction.

use diesel::prelude::*;
use kernel::paging::{Page, PageRequest};
use kernel::{CustomerId, Envelope, Inbound, StoreError};
use reward_domain::{Reward, RewardEvent, RewardRepository, RewardStatus};
use store_adapter::{Migrations, Prepared, Store, applied, db, versioned};
use uuid::Uuid;

use crate::events;

static SQLITE: diesel_migrations::EmbeddedMigrations = diesel_migrations::embed_migrations!("migrations/sqlite");
static POSTGRES: diesel_migrations::EmbeddedMigrations = diesel_migrations::embed_migrations!("migrations/postgres");
pub const MIGRATIONS: Migrations = Migrations { sqlite: &SQLITE, postgres: &POSTGRES };

diesel::table! {
    rewards (id) {
        id -> Text,
        mission_id -> Text,
        customer_id -> Text,
        points -> BigInt,
        status -> Text,
        version -> BigInt,
    }
}

#[derive(Queryable, Insertable, AsChangeset)]
#[diesel(table_name = rewards)]
struct Row {
    id: String,
    mission_id: String,
    customer_id: String,
    points: i64,
    status: String,
    version: i64,
}

impl From<&Reward> for Row {
    fn from(r: &Reward) -> Self {
        Self {
            id: r.id.to_string(),
            mission_id: r.mission_id.to_string(),
            customer_id: r.customer_id.to_string(),
            points: r.points,
            status: r.status.as_str().to_owned(),
            version: r.version,
        }
    }
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Unavailable(format!("corrupt reward row: {what}"))
}

impl TryFrom<Row> for Reward {
    type Error = StoreError;
    fn try_from(r: Row) -> Result<Self, StoreError> {
        Ok(Self {
            id: Uuid::try_parse(&r.id).map_err(|_| corrupt("id"))?,
            mission_id: Uuid::try_parse(&r.mission_id).map_err(|_| corrupt("mission_id"))?,
            customer_id: CustomerId::new(r.customer_id).map_err(|_| corrupt("customer_id"))?,
            points: r.points,
            status: RewardStatus::parse(&r.status).ok_or_else(|| corrupt("status"))?,
            version: r.version,
        })
    }
}

#[derive(Clone)]
pub struct SqlRewards {
    store: Store,
}

impl SqlRewards {
    pub fn new(store: Store) -> Self {
        Self { store }
    }
}

impl RewardRepository for SqlRewards {
    async fn get(&self, id: Uuid) -> Result<Option<Reward>, StoreError> {
        let id = id.to_string();
        let row: Option<Row> =
            self.store.read(move |c| rewards::table.find(id).first(c).optional().map_err(db)).await?;
        row.map(Reward::try_from).transpose()
    }

    async fn list_by_customer(&self, customer: &CustomerId, page: PageRequest) -> Result<Page<Reward>, StoreError> {
        let customer = customer.to_string();
        let before = page.before.map(|b| b.to_string());
        // Keyset: newest first (UUIDv7 in text sorts by creation) from the index on
        // (customer_id, id); the cost does not grow with the pages before this one.
        let rows: Vec<Row> = self
            .store
            .read(move |c| {
                let mut q = rewards::table
                    .filter(rewards::customer_id.eq(customer))
                    .order(rewards::id.desc())
                    .limit(page.probe())
                    .into_boxed();
                if let Some(before) = before {
                    q = q.filter(rewards::id.lt(before));
                }
                q.load(c).map_err(db)
            })
            .await?;
        let items = rows.into_iter().map(Reward::try_from).collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_probe(items, page, |r| r.id))
    }

    async fn insert(
        &self,
        reward: &Reward,
        events: Vec<Envelope<RewardEvent>>,
        inbound: Inbound,
    ) -> Result<(), StoreError> {
        let row = Row::from(reward);
        let messages: Vec<_> = events.iter().map(events::to_outbox).collect();
        self.store
            .write_handled_for(&reward.customer_id.to_string(), Some(inbound), messages, move |c| {
                Prepared(diesel::insert_into(rewards::table).values(&row)).execute(c).map_err(db)?;
                Ok(())
            })
            .await
    }

    async fn update(&self, reward: &Reward, inbound: Inbound) -> Result<(), StoreError> {
        let expected = reward.version;
        let row = Row { version: expected + 1, ..Row::from(reward) };
        self.store
            .write_handled_for(&reward.customer_id.to_string(), Some(inbound), Vec::new(), move |c| {
                versioned(
                    Prepared(
                        diesel::update(rewards::table.find(&row.id).filter(rewards::version.eq(expected))).set(&row),
                    )
                    .execute(c),
                )
            })
            .await
    }

    async fn advance(
        &self,
        id: Uuid,
        customer: &CustomerId,
        to: RewardStatus,
        inbound: Inbound,
    ) -> Result<bool, StoreError> {
        let (id, customer_id) = (id.to_string(), customer.to_string());
        let from: Vec<&'static str> = to.before().iter().map(|s| s.as_str()).collect();
        let moved = self
            .store
            .write_handled_for(&customer_id.clone(), Some(inbound), Vec::new(), move |c| {
                // No row moved fails the unit, so its inbox row is not kept either.
                versioned(
                    Prepared(
                        diesel::update(
                            rewards::table
                                .find(&id)
                                .filter(rewards::customer_id.eq(&customer_id))
                                .filter(rewards::status.eq_any(&from)),
                        )
                        .set((rewards::status.eq(to.as_str()), rewards::version.eq(rewards::version + 1))),
                    )
                    .execute(c),
                )
            })
            .await;
        applied(moved)
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use kernel::{EventMeta, new_id};
    use store_adapter::testing::TestDatabase;

    use super::*;

    fn allocated() -> (Reward, Vec<Envelope<RewardEvent>>) {
        let (r, e) = Reward::allocate(new_id(), new_id(), CustomerId::new("c-11").unwrap(), 10, "daily-login", None);
        let meta = EventMeta::first(r.mission_id, "req", r.customer_id.clone(), Utc::now());
        (r, vec![Envelope { meta, event: e }])
    }

    fn inbound() -> Inbound {
        Inbound { consumer: "reward-allocate", event_id: new_id() }
    }

    async fn a_mission_gets_one_reward_whatever_the_deliveries(db: TestDatabase) {
        let store = Store::open(&db.url, MIGRATIONS).await.unwrap();
        let repo = SqlRewards::new(store.clone());
        let (r, events) = allocated();
        let first = inbound();
        repo.insert(&r, events.clone(), first).await.unwrap();
        assert_eq!(repo.get(r.id).await.unwrap().unwrap(), r);
        // the same event again, and another event for the same mission: both duplicates
        assert_eq!(repo.insert(&r, events.clone(), first).await, Err(StoreError::Duplicate));
        let other = Reward { id: new_id(), ..r.clone() };
        assert_eq!(repo.insert(&other, events, inbound()).await, Err(StoreError::Duplicate));
        assert_eq!(repo.list_by_customer(&r.customer_id, PageRequest::default()).await.unwrap().items.len(), 1);
        assert_eq!(store.outbox_len().await.unwrap(), 1);
    }

    async fn status_updates_check_version_and_inbox(db: TestDatabase) {
        let store = Store::open(&db.url, MIGRATIONS).await.unwrap();
        let repo = SqlRewards::new(store);
        let (mut r, events) = allocated();
        repo.insert(&r, events, inbound()).await.unwrap();
        r.advance(RewardStatus::Issued);
        let i = inbound();
        repo.update(&r, i).await.unwrap();
        let stored = repo.get(r.id).await.unwrap().unwrap();
        assert_eq!((stored.status, stored.version), (RewardStatus::Issued, 1));
        assert_eq!(repo.update(&stored, i).await, Err(StoreError::Duplicate));
        assert_eq!(repo.update(&r, inbound()).await, Err(StoreError::Conflict));
    }

    async fn a_reward_moves_forward_without_being_read_and_nothing_is_written_when_it_cannot(db: TestDatabase) {
        let store = Store::open(&db.url, MIGRATIONS).await.unwrap();
        let repo = SqlRewards::new(store.clone());
        let (r, events) = allocated();
        repo.insert(&r, events, inbound()).await.unwrap();
        let issued = inbound();
        assert_eq!(repo.advance(r.id, &r.customer_id, RewardStatus::Issued, issued).await, Ok(true));
        let stored = repo.get(r.id).await.unwrap().unwrap();
        assert_eq!((stored.status, stored.version), (RewardStatus::Issued, 1));
        // the same event again: a duplicate, nothing moves
        assert_eq!(
            repo.advance(r.id, &r.customer_id, RewardStatus::Exchanged, issued).await,
            Err(StoreError::Duplicate)
        );
        // not from a later status, not another customer's, not a missing reward: nothing
        // written, so the event can still be handled (its inbox row is not taken)
        let late = inbound();
        assert_eq!(repo.advance(r.id, &r.customer_id, RewardStatus::Issued, late).await, Ok(false));
        let other = CustomerId::new("c-12").unwrap();
        assert_eq!(repo.advance(r.id, &other, RewardStatus::Exchanged, late).await, Ok(false));
        assert_eq!(repo.advance(new_id(), &r.customer_id, RewardStatus::Exchanged, late).await, Ok(false));
        assert_eq!(repo.get(r.id).await.unwrap().unwrap().version, 1);
        repo.update(&stored, late).await.unwrap();
        assert_eq!(repo.advance(r.id, &r.customer_id, RewardStatus::Exchanged, inbound()).await, Ok(true));
        assert_eq!(repo.get(r.id).await.unwrap().unwrap().status, RewardStatus::Exchanged);
        if store.backend() == store_adapter::Backend::Postgres {
            // Each advance's UPDATE is parsed and planned once per session, not per call.
            let held = store_adapter::testing::prepared_in_writer_session(&store, r#"UPDATE "rewards" SET "status""#);
            assert_eq!(held.await, 1);
        }
    }

    store_adapter::on_both_backends!(
        a_reward_moves_forward_without_being_read_and_nothing_is_written_when_it_cannot,
        a_mission_gets_one_reward_whatever_the_deliveries,
        status_updates_check_version_and_inbox
    );
}
