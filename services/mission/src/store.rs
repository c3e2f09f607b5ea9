//! The mission repository on diesel: missions and their outbox in one transaction.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use kernel::paging::{Page, PageRequest};
use kernel::{CustomerId, Envelope, Inbound, StoreError};
use mission_domain::rules::History;
use mission_domain::{Mission, MissionCode, MissionEvent, MissionRepository, MissionStatus};
use store_adapter::{Migrations, Prepared, Store, applied, db, versioned};
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
        slot -> Nullable<Text>,
        reported_by -> Text,
    }
}

#[derive(Clone, Queryable, Insertable, AsChangeset)]
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
    slot: Option<String>,
    reported_by: String,
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
            slot: m.slot.clone(),
            reported_by: m.reported_by.clone(),
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
            slot: r.slot,
            reported_by: r.reported_by,
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

    async fn list_by_customer(&self, customer: &CustomerId, page: PageRequest) -> Result<Page<Mission>, StoreError> {
        let customer = customer.to_string();
        let before = page.before.map(|b| b.to_string());
        // Keyset: newest first (UUIDv7 in text sorts by creation) from the index on
        // (customer_id, id); the cost does not grow with the pages before this one.
        let rows: Vec<Row> = self
            .store
            .read(move |c| {
                let mut q = missions::table
                    .filter(missions::customer_id.eq(customer))
                    .order(missions::id.desc())
                    .limit(page.probe())
                    .into_boxed();
                if let Some(before) = before {
                    q = q.filter(missions::id.lt(before));
                }
                q.load(c).map_err(db)
            })
            .await?;
        let items = rows.into_iter().map(Mission::try_from).collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_probe(items, page, |m| m.id))
    }

    async fn history(
        &self,
        customer: &CustomerId,
        code: &MissionCode,
        period: Option<&str>,
        requires: &[MissionCode],
    ) -> Result<History, StoreError> {
        let (customer, code) = (customer.to_string(), code.as_str().to_owned());
        // Slots of a period are `<key>#<n>`. A LIKE prefix rather than a range: a range of
        // text depends on the database's collation (PostgreSQL's may ignore punctuation),
        // a pattern does not; period keys hold no `%` or `_`. The unique index (customer,
        // mission, slot) narrows it to one customer's one mission.
        let pattern = period.map(|p| format!("{p}#%"));
        let requires: Vec<String> = requires.iter().map(|r| r.as_str().to_owned()).collect();
        let (in_period, achieved) = self
            .store
            .read(move |c| {
                let in_period: i64 = match pattern {
                    None => 0,
                    Some(pattern) => missions::table
                        .filter(missions::customer_id.eq(&customer))
                        .filter(missions::mission_code.eq(&code))
                        .filter(missions::slot.like(pattern))
                        .count()
                        .get_result(c)
                        .map_err(db)?,
                };
                let achieved: Vec<String> = if requires.is_empty() {
                    Vec::new()
                } else {
                    missions::table
                        .filter(missions::customer_id.eq(&customer))
                        .filter(missions::mission_code.eq_any(requires))
                        .select(missions::mission_code)
                        .distinct()
                        .load(c)
                        .map_err(db)?
                };
                Ok((in_period, achieved))
            })
            .await?;
        let achieved = achieved
            .into_iter()
            .map(|c| MissionCode::new(c).map_err(|_| corrupt("mission_code")))
            .collect::<Result<_, _>>()?;
        Ok(History { in_period: u32::try_from(in_period).unwrap_or(u32::MAX), achieved })
    }

    async fn insert(&self, mission: &Mission, events: Vec<Envelope<MissionEvent>>) -> Result<(), StoreError> {
        let row = Row::from(mission);
        let messages: Vec<_> = events.iter().map(events::to_outbox).collect();
        self.store
            .write_with_events(messages, move |c| {
                Prepared(diesel::insert_into(missions::table).values(&row)).execute(c).map_err(db)?;
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
            .write_handled_for(&mission.customer_id.to_string(), inbound, messages, move |c| {
                versioned(
                    Prepared(
                        diesel::update(missions::table.find(&row.id).filter(missions::version.eq(expected))).set(&row),
                    )
                    .execute(c),
                )
            })
            .await
    }

    async fn record_reward(
        &self,
        id: Uuid,
        customer: &CustomerId,
        reward_id: Uuid,
        events: Vec<Envelope<MissionEvent>>,
        inbound: Inbound,
    ) -> Result<bool, StoreError> {
        let (id, customer_id, reward_id) = (id.to_string(), customer.to_string(), reward_id.to_string());
        let messages: Vec<_> = events.iter().map(events::to_outbox).collect();
        let recorded = self
            .store
            .write_handled_for(&customer_id.clone(), Some(inbound), messages, move |c| {
                // No row updated fails the unit, so its inbox row and events are not kept.
                versioned(
                    Prepared(
                        diesel::update(
                            missions::table
                                .find(&id)
                                .filter(missions::customer_id.eq(&customer_id))
                                .filter(missions::reward_id.is_null()),
                        )
                        .set((
                            missions::reward_id.eq(Some(&reward_id)),
                            missions::status.eq(MissionStatus::Rewarded.as_str()),
                            missions::version.eq(missions::version + 1),
                        )),
                    )
                    .execute(c),
                )
            })
            .await;
        applied(recorded)
    }
}

#[cfg(test)]
mod tests;
