//! The gift repository on diesel: gifts and their outbox in one transaction.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use std::collections::HashMap;

use gift_domain::{Catalog, Gift, GiftCode, GiftEvent, GiftRepository, GiftStatus, InsertError};
use kernel::paging::{Page, PageRequest};
use kernel::{CustomerId, Envelope, StoreError};
use store_adapter::{AnyConnection, Migrations, Store, db, versioned};
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
        limit_slot -> Nullable<Text>,
    }
}

diesel::table! {
    gift_stock (gift_code) {
        gift_code -> Text,
        stock -> BigInt,
        issued -> BigInt,
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
    limit_slot: Option<String>,
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
            limit_slot: g.slot.clone(),
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
            slot: r.limit_slot,
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

    /// Makes the stock counters follow the catalog: a counter per stocked gift with the
    /// catalog's stock (a new one starts at the gifts of that code already issued), none
    /// for the others. Run at start, before serving.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the store cannot be used.
    pub async fn sync_stock(&self, catalog: &Catalog) -> Result<(), StoreError> {
        use diesel::sql_types::{BigInt, Text};
        let stocked: Vec<(String, i64)> =
            catalog.gifts().iter().filter_map(|g| Some((g.code.as_str().to_owned(), i64::from(g.stock?)))).collect();
        self.store
            .write(move |c| {
                for (code, stock) in &stocked {
                    // ON CONFLICT is not in MultiConnection's DSL: the same statement in
                    // each backend's placeholders.
                    let sql = |p: [&str; 3]| {
                        format!(
                            "INSERT INTO gift_stock (gift_code, stock, issued) \
                             SELECT {}, {}, COUNT(*) FROM gifts WHERE gift_code = {} AND status <> 'CANCELLED' \
                             ON CONFLICT (gift_code) DO UPDATE SET stock = excluded.stock",
                            p[0], p[1], p[2]
                        )
                    };
                    let q = |sql: String| {
                        diesel::sql_query(sql).bind::<Text, _>(code).bind::<BigInt, _>(*stock).bind::<Text, _>(code)
                    };
                    match c {
                        AnyConnection::Sqlite(c) => q(sql(["?", "?", "?"])).execute(c),
                        AnyConnection::Postgresql(c) => q(sql(["$1", "$2", "$3"])).execute(c),
                    }
                    .map_err(db)?;
                }
                let codes: Vec<&String> = stocked.iter().map(|(code, _)| code).collect();
                diesel::delete(gift_stock::table.filter(gift_stock::gift_code.ne_all(codes))).execute(c).map_err(db)?;
                Ok(())
            })
            .await
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

    async fn list_by_customer(&self, customer: &CustomerId, page: PageRequest) -> Result<Page<Gift>, StoreError> {
        let customer = customer.to_string();
        let before = page.before.map(|b| b.to_string());
        // Keyset: newest first (UUIDv7 in text sorts by creation) from the index on
        // (customer_id, id); the cost does not grow with the pages before this one.
        let rows: Vec<Row> = self
            .store
            .read(move |c| {
                let mut q = gifts::table
                    .filter(gifts::customer_id.eq(customer))
                    .order(gifts::id.desc())
                    .limit(page.probe())
                    .into_boxed();
                if let Some(before) = before {
                    q = q.filter(gifts::id.lt(before));
                }
                q.load(c).map_err(db)
            })
            .await?;
        let items = rows.into_iter().map(Gift::try_from).collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_probe(items, page, |g| g.id))
    }

    async fn count_in_period(&self, customer: &CustomerId, code: &GiftCode, period: &str) -> Result<u32, StoreError> {
        let (customer, code) = (customer.to_string(), code.as_str().to_owned());
        // Slots of a period are `<key>#<n>`; a LIKE prefix does not depend on the
        // database's collation as a range of text would (period keys hold no `%` or `_`).
        let pattern = format!("{period}#%");
        let n: i64 = self
            .store
            .read(move |c| {
                gifts::table
                    .filter(gifts::customer_id.eq(customer))
                    .filter(gifts::gift_code.eq(code))
                    .filter(gifts::limit_slot.like(pattern))
                    .count()
                    .get_result(c)
                    .map_err(db)
            })
            .await?;
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    async fn issued_from_stock(&self) -> Result<HashMap<GiftCode, u32>, StoreError> {
        let rows: Vec<(String, i64)> = self
            .store
            .read(|c| gift_stock::table.select((gift_stock::gift_code, gift_stock::issued)).load(c).map_err(db))
            .await?;
        rows.into_iter()
            .map(|(code, issued)| {
                let code = GiftCode::new(code).map_err(|_| corrupt("gift_stock.gift_code"))?;
                Ok((code, u32::try_from(issued).unwrap_or(u32::MAX)))
            })
            .collect()
    }

    async fn insert(&self, gift: &Gift, from_stock: bool, events: Vec<Envelope<GiftEvent>>) -> Result<(), InsertError> {
        let row = Row::from(gift);
        let messages: Vec<_> = events.iter().map(events::to_outbox).collect();
        // A stocked gift's units share its stock row: they are keyed by the gift, so they
        // queue in one writer session rather than lock the row from several.
        let key = if from_stock { format!("stock:{}", gift.code.as_str()) } else { gift.customer_id.to_string() };
        let written = self
            .store
            .write_with_events_for(&key, messages, move |c| {
                if from_stock {
                    // Taken only while some is left: concurrent takers queue on the row
                    // (PostgreSQL re-checks the condition on the row they then see), so
                    // the last one is taken once.
                    let taken = diesel::update(
                        gift_stock::table
                            .filter(gift_stock::gift_code.eq(&row.gift_code))
                            .filter(gift_stock::issued.lt(gift_stock::stock)),
                    )
                    .set(gift_stock::issued.eq(gift_stock::issued + 1))
                    .execute(c)
                    .map_err(db)?;
                    if taken == 0 {
                        // Conflict stands for "none left" inside this unit only; the
                        // transaction rolls back and nothing is written.
                        return Err(StoreError::Conflict);
                    }
                }
                diesel::insert_into(gifts::table).values(&row).execute(c).map_err(db)?;
                Ok(())
            })
            .await;
        match written {
            Ok(()) => Ok(()),
            Err(StoreError::Conflict) => Err(InsertError::OutOfStock),
            Err(e) => Err(InsertError::Store(e)),
        }
    }

    async fn update(&self, gift: &Gift, events: Vec<Envelope<GiftEvent>>) -> Result<(), StoreError> {
        let expected = gift.version;
        let row = Row { version: expected + 1, ..Row::from(gift) };
        let messages: Vec<_> = events.iter().map(events::to_outbox).collect();
        self.store
            .write_with_events(messages, move |c| {
                versioned(
                    diesel::update(gifts::table.find(&row.id).filter(gifts::version.eq(expected))).set(&row).execute(c),
                )
            })
            .await
    }

    async fn cancel(&self, gift: &Gift) -> Result<(), StoreError> {
        let expected = gift.version;
        let row = Row { version: expected + 1, ..Row::from(gift) };
        // With the stock's other writers (see `insert`).
        self.store
            .write_for(&format!("stock:{}", row.gift_code), move |c| {
                versioned(
                    diesel::update(gifts::table.find(&row.id).filter(gifts::version.eq(expected))).set(&row).execute(c),
                )?;
                // No counter: the gift has no stock.
                diesel::update(gift_stock::table.filter(gift_stock::gift_code.eq(&row.gift_code)))
                    .filter(gift_stock::issued.gt(0))
                    .set(gift_stock::issued.eq(gift_stock::issued - 1))
                    .execute(c)
                    .map_err(db)?;
                Ok(())
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use gift_domain::IssueGift;
    use gift_domain::rules::{Decision, Schedule};
    use kernel::{EventMeta, new_id};
    use store_adapter::testing::TestDatabase;

    use super::*;

    fn issued_to(customer: &str, code: &str, slot: Option<&str>) -> (Gift, Vec<Envelope<GiftEvent>>) {
        let cmd = IssueGift {
            customer_id: CustomerId::new(customer).unwrap(),
            reward_id: new_id(),
            mission_id: new_id(),
            code: GiftCode::new(code).unwrap(),
            points: 100,
        };
        let catalog = Catalog::default();
        let rule = catalog.find(&cmd.code).unwrap();
        let decision = Decision { slot: slot.map(str::to_owned) };
        let (g, e) = Gift::issue(&cmd, rule, decision, new_id(), Utc::now()).unwrap();
        let meta = EventMeta::first(g.mission_id, "req", g.customer_id.clone(), Utc::now());
        (g, vec![Envelope { meta, event: e }])
    }

    fn issued() -> (Gift, Vec<Envelope<GiftEvent>>) {
        issued_to("c-11", "coffee", None)
    }

    async fn repo(db: &TestDatabase, catalog: &Catalog) -> (SqlGifts, Store) {
        let store = Store::open(&db.url, MIGRATIONS).await.unwrap();
        let repo = SqlGifts::new(store.clone());
        repo.sync_stock(catalog).await.unwrap();
        (repo, store)
    }

    /// The default catalog with founders-badge's stock set to `n`.
    fn badges(n: u32) -> Catalog {
        let mut gifts = Catalog::default().gifts().to_vec();
        gifts.iter_mut().find(|g| g.code.as_str() == "founders-badge").unwrap().stock = Some(n);
        Catalog::new(Schedule::default(), gifts).unwrap()
    }

    async fn one_gift_per_reward_and_use_checks_the_version(db: TestDatabase) {
        let (repo, store) = repo(&db, &Catalog::default()).await;
        let (mut g, events) = issued();
        repo.insert(&g, false, events.clone()).await.unwrap();
        let other = Gift { id: new_id(), ..g.clone() };
        assert_eq!(
            repo.insert(&other, false, events).await,
            Err(InsertError::Store(StoreError::Duplicate)),
            "a second gift for the reward"
        );
        assert_eq!(repo.find_by_reward(g.reward_id).await.unwrap().unwrap().id, g.id);
        let used = g.use_by(None, Utc::now()).unwrap();
        let meta = EventMeta::first(g.mission_id, "use", g.customer_id.clone(), Utc::now());
        repo.update(&g, vec![Envelope { meta, event: used }]).await.unwrap();
        let stored = repo.get(g.id).await.unwrap().unwrap();
        assert_eq!((stored.status, stored.version), (GiftStatus::Used, 1));
        assert!(stored.used_at.is_some());
        assert_eq!(repo.update(&g, vec![]).await, Err(StoreError::Conflict));
        assert_eq!(repo.list_by_customer(&g.customer_id, PageRequest::default()).await.unwrap().items.len(), 1);
        assert_eq!(store.outbox_len().await.unwrap(), 2);
    }

    async fn twenty_concurrent_takers_of_the_last_three_get_exactly_three(db: TestDatabase) {
        let (repo, store) = repo(&db, &Catalog::default()).await;
        let inserts = (0..20).map(|i| {
            let repo = repo.clone();
            async move {
                let (g, events) = issued_to(&format!("c-{i}"), "founders-badge", Some("ever#1"));
                repo.insert(&g, true, events).await
            }
        });
        let results = futures::future::join_all(inserts).await;
        assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 3, "{results:?}");
        assert_eq!(results.iter().filter(|r| **r == Err(InsertError::OutOfStock)).count(), 17, "{results:?}");
        assert_eq!(store.outbox_len().await.unwrap(), 3, "no event for a gift not issued");
        let issued = repo.issued_from_stock().await.unwrap();
        assert_eq!(issued[&GiftCode::new("founders-badge").unwrap()], 3);
        assert_eq!(issued[&GiftCode::new("movie-ticket").unwrap()], 0);
        assert!(!issued.contains_key(&GiftCode::new("coffee").unwrap()), "coffee has no stock");
    }

    async fn a_slot_refused_takes_no_stock_and_a_new_stock_counts_what_was_issued(db: TestDatabase) {
        let (repo, _) = repo(&db, &Catalog::default()).await;
        let (g, events) = issued_to("c-1", "founders-badge", Some("ever#1"));
        repo.insert(&g, true, events).await.unwrap();
        let (again, events) = issued_to("c-1", "founders-badge", Some("ever#1"));
        assert_eq!(repo.insert(&again, true, events).await, Err(InsertError::Store(StoreError::Duplicate)));
        let badge = GiftCode::new("founders-badge").unwrap();
        assert_eq!(repo.issued_from_stock().await.unwrap()[&badge], 1, "the refused one took none");
        assert_eq!(repo.count_in_period(&g.customer_id, &badge, "ever").await.unwrap(), 1);
        assert_eq!(repo.count_in_period(&g.customer_id, &badge, "2026-11-26").await.unwrap(), 0);
        // A restart with a bigger stock keeps what was issued.
        repo.sync_stock(&badges(10)).await.unwrap();
        assert_eq!(repo.issued_from_stock().await.unwrap()[&badge], 1);
        // Without stock the counter goes; with stock again it starts from the gifts issued.
        let mut gifts = Catalog::default().gifts().to_vec();
        gifts.iter_mut().for_each(|g| g.stock = None);
        repo.sync_stock(&Catalog::new(Schedule::default(), gifts).unwrap()).await.unwrap();
        assert!(repo.issued_from_stock().await.unwrap().is_empty());
        repo.sync_stock(&badges(2)).await.unwrap();
        assert_eq!(repo.issued_from_stock().await.unwrap()[&badge], 1);
        let (other, events) = issued_to("c-2", "founders-badge", Some("ever#1"));
        repo.insert(&other, true, events).await.unwrap();
        let (third, events) = issued_to("c-3", "founders-badge", Some("ever#1"));
        assert_eq!(repo.insert(&third, true, events).await, Err(InsertError::OutOfStock));
    }

    async fn a_cancelled_gift_gives_its_unit_back_once_and_is_not_counted_by_a_new_stock(db: TestDatabase) {
        let (repo, _) = repo(&db, &badges(1)).await;
        let badge = GiftCode::new("founders-badge").unwrap();
        let (mut g, events) = issued_to("c-1", "founders-badge", Some("ever#1"));
        repo.insert(&g, true, events).await.unwrap();
        assert_eq!(repo.issued_from_stock().await.unwrap()[&badge], 1);
        assert!(g.cancel().unwrap());
        repo.cancel(&g).await.unwrap();
        let stored = repo.get(g.id).await.unwrap().unwrap();
        assert_eq!((stored.status, stored.version), (GiftStatus::Cancelled, 1));
        assert_eq!(repo.issued_from_stock().await.unwrap()[&badge], 0, "its unit is back");
        assert_eq!(repo.cancel(&g).await, Err(StoreError::Conflict), "once, at its version");
        assert_eq!(repo.issued_from_stock().await.unwrap()[&badge], 0);
        let (other, events) = issued_to("c-2", "founders-badge", Some("ever#1"));
        repo.insert(&other, true, events).await.expect("the unit given back is issued again");
        // A counter made anew counts the gifts issued, not the cancelled ones.
        repo.sync_stock(&Catalog::default()).await.unwrap();
        let mut gifts = Catalog::default().gifts().to_vec();
        gifts.iter_mut().for_each(|g| g.stock = None);
        repo.sync_stock(&Catalog::new(Schedule::default(), gifts).unwrap()).await.unwrap();
        repo.sync_stock(&badges(2)).await.unwrap();
        assert_eq!(repo.issued_from_stock().await.unwrap()[&badge], 1);
        // A gift without stock is cancelled without a counter.
        let (mut coffee, events) = issued();
        repo.insert(&coffee, false, events).await.unwrap();
        coffee.cancel().unwrap();
        repo.cancel(&coffee).await.unwrap();
        assert_eq!(repo.get(coffee.id).await.unwrap().unwrap().status, GiftStatus::Cancelled);
    }

    store_adapter::on_both_backends!(
        a_cancelled_gift_gives_its_unit_back_once_and_is_not_counted_by_a_new_stock,
        one_gift_per_reward_and_use_checks_the_version,
        twenty_concurrent_takers_of_the_last_three_get_exactly_three,
        a_slot_refused_takes_no_stock_and_a_new_stock_counts_what_was_issued
    );
}
