//! The credential repository on diesel.

use auth_domain::{Credential, CredentialRepository};
use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use kernel::{CustomerId, StoreError};
use store_adapter::{Migrations, Store, db};

static SQLITE: diesel_migrations::EmbeddedMigrations = diesel_migrations::embed_migrations!("migrations/sqlite");
static POSTGRES: diesel_migrations::EmbeddedMigrations = diesel_migrations::embed_migrations!("migrations/postgres");
pub const MIGRATIONS: Migrations = Migrations { sqlite: &SQLITE, postgres: &POSTGRES };

diesel::table! {
    credentials (customer_id) {
        customer_id -> Text,
        password_hash -> Text,
        failed_attempts -> Integer,
        locked_until -> Nullable<Timestamp>,
        version -> BigInt,
    }
}

#[derive(Queryable, Insertable, AsChangeset)]
#[diesel(table_name = credentials, treat_none_as_null = true)]
struct Row {
    customer_id: String,
    password_hash: String,
    failed_attempts: i32,
    locked_until: Option<NaiveDateTime>,
    version: i64,
}

impl From<&Credential> for Row {
    fn from(c: &Credential) -> Self {
        Self {
            customer_id: c.customer_id.to_string(),
            password_hash: c.password_hash.clone(),
            failed_attempts: i32::try_from(c.failed_attempts).unwrap_or(i32::MAX),
            locked_until: c.locked_until.map(|t| t.naive_utc()),
            version: c.version,
        }
    }
}

impl TryFrom<Row> for Credential {
    type Error = StoreError;
    fn try_from(r: Row) -> Result<Self, StoreError> {
        Ok(Self {
            customer_id: CustomerId::new(r.customer_id)
                .map_err(|_| StoreError::Unavailable("corrupt credential".into()))?,
            password_hash: r.password_hash,
            failed_attempts: u32::try_from(r.failed_attempts).unwrap_or(0),
            locked_until: r.locked_until.map(|t| DateTime::<Utc>::from_naive_utc_and_offset(t, Utc)),
            version: r.version,
        })
    }
}

#[derive(Clone)]
pub struct SqlCredentials {
    store: Store,
}

impl SqlCredentials {
    pub fn new(store: Store) -> Self {
        Self { store }
    }
}

impl CredentialRepository for SqlCredentials {
    async fn get(&self, customer: &CustomerId) -> Result<Option<Credential>, StoreError> {
        let id = customer.to_string();
        let row: Option<Row> =
            self.store.read(move |c| credentials::table.find(id).first(c).optional().map_err(db)).await?;
        row.map(Credential::try_from).transpose()
    }

    async fn insert(&self, credential: &Credential) -> Result<(), StoreError> {
        let row = Row::from(credential);
        self.store
            .write(move |c| diesel::insert_into(credentials::table).values(&row).execute(c).map(drop).map_err(db))
            .await
    }

    async fn update(&self, credential: &Credential) -> Result<(), StoreError> {
        let expected = credential.version;
        let row = Row { version: expected + 1, ..Row::from(credential) };
        self.store
            .write(move |c| {
                let n =
                    diesel::update(credentials::table.find(&row.customer_id).filter(credentials::version.eq(expected)))
                        .set(&row)
                        .execute(c)
                        .map_err(db)?;
                if n == 0 { Err(StoreError::Conflict) } else { Ok(()) }
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use store_adapter::testing::TestDatabase;

    use super::*;

    async fn credentials_are_stored_once_and_updated_by_version(db: TestDatabase) {
        let repo = SqlCredentials::new(Store::open(&db.url, MIGRATIONS).await.unwrap());
        let c = Credential::new(CustomerId::new("c-11").unwrap(), "$argon2id$...".into());
        repo.insert(&c).await.unwrap();
        assert_eq!(repo.insert(&c).await, Err(StoreError::Duplicate));
        let mut stored = repo.get(&c.customer_id).await.unwrap().unwrap();
        assert_eq!(stored, c);
        stored.failed_attempts = 3;
        stored.locked_until = Some(DateTime::from_timestamp(2_000_000_000, 0).unwrap());
        repo.update(&stored).await.unwrap();
        assert_eq!(repo.update(&stored).await, Err(StoreError::Conflict));
        let back = repo.get(&c.customer_id).await.unwrap().unwrap();
        assert_eq!((back.failed_attempts, back.locked_until, back.version), (3, stored.locked_until, 1));
        assert!(repo.get(&CustomerId::new("nobody").unwrap()).await.unwrap().is_none());
    }

    store_adapter::on_both_backends!(credentials_are_stored_once_and_updated_by_version);
}
