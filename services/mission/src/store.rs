//! The mission repository on diesel: missions and their outbox in one transaction.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use kernel::{CustomerId, Envelope, Inbound, StoreError};
use mission_domain::{Mission, MissionCode, MissionEvent, MissionRepository, MissionStatus};
use store_adapter::{Migrations, Store, db, inbox};
use uuid::Uuid;

use crate::events;

static SQLITE: diesel_migrations::EmbeddedMigrations = diesel_migrations::embed_migrations!("migrations/sqlite");
static POSTGRES: diesel_migrations::EmbeddedMigrations = diesel_migrations::embed_migrations!("migrations/postgres");
pub const MIGRATIONS: Migrations = Migrations { sqlite: &SQLITE, postgres: &POSTGRES };

diesel::table! {
    missions (id) {
        id -> Text,
        customer_id -> Text,
        mission_code -> Text,
        status -> Text,
        reward_id -> Nullable<Text>,
        reward_points -> BigInt,
        request_id -> Text,
        achieved_at -> Timestamp,
        version -> BigInt,
    }
}

#[derive(Queryable, Insertable, AsChangeset)]
#[diesel(table_name = missions)]
struct Row {
    id: String,
    customer_id: String,
    mission_code: String,
    status: String,
    reward_id: Option<String>,
    reward_points: i64,
    request_id: String,
    achieved_at: NaiveDateTime,
    version: i64,
}

impl From<&Mission> for Row {
    fn from(m: &Mission) -> Self {
        Self {
            id: m.id.to_string(),
            customer_id: m.customer_id.to_string(),
            mission_code: m.code.as_str().to_owned(),
            status: m.status.as_str().to_owned(),
            reward_id: m.reward_id.map(|r| r.to_string()),
            reward_points: m.reward_points,
            request_id: m.request_id.clone(),
            achieved_at: m.achieved_at.naive_utc(),
            version: m.version,
        }
    }
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Unavailable(format!("corrupt mission row: {what}"))
}

impl TryFrom<Row> for Mission {
    type Error = StoreError;
    fn try_from(r: Row) -> Result<Self, StoreError> {
        Ok(Self {
            id: Uuid::try_parse(&r.id).map_err(|_| corrupt("id"))?,
            customer_id: CustomerId::new(r.customer_id).map_err(|_| corrupt("customer_id"))?,
            code: MissionCode::new(r.mission_code).map_err(|_| corrupt("mission_code"))?,
            status: MissionStatus::parse(&r.status).ok_or_else(|| corrupt("status"))?,
            reward_id: r.reward_id.map(|s| Uuid::try_parse(&s)).transpose().map_err(|_| corrupt("reward_id"))?,
            reward_points: r.reward_points,
            request_id: r.request_id,
            achieved_at: DateTime::<Utc>::from_naive_utc_and_offset(r.achieved_at, Utc),
            version: r.version,
        })
    }
}

#[derive(Clone)]
pub struct SqlMissions {
    store: Store,
}

impl SqlMissions {
    pub fn new(store: Store) -> Self {
        Self { store }
    }
}

impl MissionRepository for SqlMissions {
    async fn get(&self, id: Uuid) -> Result<Option<Mission>, StoreError> {
        let id = id.to_string();
        let row: Option<Row> =
            self.store.read(move |c| missions::table.find(id).first(c).optional().map_err(db)).await?;
        row.map(Mission::try_from).transpose()
    }

    async fn find_by_request(&self, customer: &CustomerId, request_id: &str) -> Result<Option<Mission>, StoreError> {
        let (customer, request_id) = (customer.to_string(), request_id.to_owned());
        let row: Option<Row> = self
            .store
            .read(move |c| {
                missions::table
                    .filter(missions::customer_id.eq(customer).and(missions::request_id.eq(request_id)))
                    .first(c)
                    .optional()
                    .map_err(db)
            })
            .await?;
        row.map(Mission::try_from).transpose()
    }

    async fn list_by_customer(&self, customer: &CustomerId) -> Result<Vec<Mission>, StoreError> {
        let customer = customer.to_string();
        let rows: Vec<Row> = self
            .store
            .read(move |c| {
                missions::table.filter(missions::customer_id.eq(customer)).order(missions::id).load(c).map_err(db)
            })
            .await?;
        rows.into_iter().map(Mission::try_from).collect()
    }

    async fn insert(&self, mission: &Mission, events: Vec<Envelope<MissionEvent>>) -> Result<(), StoreError> {
        let row = Row::from(mission);
        let messages: Vec<_> = events.iter().map(events::to_outbox).collect();
        self.store
            .write_with_events(messages, move |c| {
                diesel::insert_into(missions::table).values(&row).execute(c).map_err(db)?;
                Ok(())
            })
            .await
    }

    async fn update(
        &self,
        mission: &Mission,
        events: Vec<Envelope<MissionEvent>>,
        inbound: Option<Inbound>,
    ) -> Result<(), StoreError> {
        let expected = mission.version;
        let row = Row { version: expected + 1, ..Row::from(mission) };
        let messages: Vec<_> = events.iter().map(events::to_outbox).collect();
        self.store
            .write_with_events(messages, move |c| {
                if let Some(i) = inbound {
                    inbox::record(c, i)?;
                }
                let n = diesel::update(missions::table.find(&row.id).filter(missions::version.eq(expected)))
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
    use kernel::new_id;
    use mission_domain::{AchieveMission, Catalog};
    use store_adapter::testing::TestDatabase;

    use super::*;

    async fn repo(db: &TestDatabase) -> (SqlMissions, Store) {
        let store = Store::open(&db.url, MIGRATIONS).await.unwrap();
        (SqlMissions::new(store.clone()), store)
    }

    fn mission(request: &str) -> (Mission, Vec<Envelope<MissionEvent>>) {
        let cmd = AchieveMission::new("c-11", "daily-login", request).unwrap();
        let (m, e) = Mission::achieve(&cmd, &Catalog::default(), new_id(), Utc::now()).unwrap();
        let meta = kernel::EventMeta::first(m.id, request, m.customer_id.clone(), Utc::now());
        (m, vec![Envelope { meta, event: e }])
    }

    async fn stores_and_finds_missions_with_their_events(db: TestDatabase) {
        let (repo, store) = repo(&db).await;
        let (m, events) = mission("r1");
        repo.insert(&m, events).await.unwrap();
        let mut back = repo.get(m.id).await.unwrap().unwrap();
        back.achieved_at = m.achieved_at; // storage keeps microseconds
        assert_eq!(back, m);
        assert_eq!(repo.find_by_request(&m.customer_id, "r1").await.unwrap().unwrap().id, m.id);
        assert_eq!(repo.list_by_customer(&m.customer_id).await.unwrap().len(), 1);
        assert!(repo.get(new_id()).await.unwrap().is_none());
        assert_eq!(store.outbox_len().await.unwrap(), 1);
    }

    async fn the_same_request_twice_is_a_duplicate_and_writes_nothing(db: TestDatabase) {
        let (repo, store) = repo(&db).await;
        repo.insert(&mission("r1").0, mission("r1").1).await.unwrap();
        let (again, events) = mission("r1");
        assert_eq!(repo.insert(&again, events).await, Err(StoreError::Duplicate));
        assert_eq!(store.outbox_len().await.unwrap(), 1);
    }

    async fn updates_check_the_version_and_the_inbox(db: TestDatabase) {
        let (repo, store) = repo(&db).await;
        let (mut m, events) = mission("r1");
        repo.insert(&m, events).await.unwrap();
        let event = m.record_reward(new_id()).unwrap().unwrap();
        let meta = kernel::EventMeta::first(m.id, "x", m.customer_id.clone(), Utc::now());
        let inbound = Inbound { consumer: "mission-record-reward", event_id: new_id() };
        repo.update(&m, vec![Envelope { meta: meta.clone(), event: event.clone() }], Some(inbound)).await.unwrap();
        assert_eq!(repo.get(m.id).await.unwrap().unwrap().version, 1);
        // same inbound again: duplicate, nothing written
        let stale = Mission { version: 1, ..m.clone() };
        assert_eq!(repo.update(&stale, vec![], Some(inbound)).await, Err(StoreError::Duplicate));
        // stale version: conflict
        let other = Inbound { consumer: "mission-record-reward", event_id: new_id() };
        assert_eq!(repo.update(&m, vec![], Some(other)).await, Err(StoreError::Conflict));
        assert_eq!(store.outbox_len().await.unwrap(), 2);
    }

    store_adapter::on_both_backends!(
        stores_and_finds_missions_with_their_events,
        the_same_request_twice_is_a_duplicate_and_writes_nothing,
        updates_check_the_version_and_the_inbox
    );
}
