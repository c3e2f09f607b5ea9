//! The auth store on diesel: accounts, service accounts, revocations, the audit trail and
//! the login throttle's counters.
//!
//! The throttle's counters live here, in the database every replica shares, rather than
//! in each replica's memory: behind a load balancer an attacker would otherwise get the
//! allowance of every replica (and a fresh one at each restart). It costs a read and a
//! write per login attempt, next to an argon2 hash that costs far more.

use auth_domain::{
    Account, AccountRepository, AuditAction, AuditEntry, ClientId, Counter, LoginThrottleRepository, Revocation, Role,
    ServiceAccount,
};
use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use kernel::{CustomerId, StoreError};
use store_adapter::{AnyConnection, Migrations, Store, db, versioned};

static SQLITE: diesel_migrations::EmbeddedMigrations = diesel_migrations::embed_migrations!("migrations/sqlite");
static POSTGRES: diesel_migrations::EmbeddedMigrations = diesel_migrations::embed_migrations!("migrations/postgres");
pub const MIGRATIONS: Migrations = Migrations { sqlite: &SQLITE, postgres: &POSTGRES };

diesel::table! {
    credentials (customer_id) {
        customer_id -> Text,
        password_hash -> Text,
        version -> BigInt,
        role -> Text,
    }
}

diesel::table! {
    service_accounts (client_id) {
        client_id -> Text,
        secret_hash -> Text,
        role -> Text,
        created_by -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    revocations (subject) {
        subject -> Text,
        revoked_before -> BigInt,
    }
}

diesel::table! {
    audit_log (id) {
        id -> Text,
        at -> Timestamp,
        actor -> Text,
        action -> Text,
        subject -> Text,
        detail -> Text,
    }
}

diesel::table! {
    login_throttle (key) {
        key -> Text,
        failures -> Integer,
        since -> Timestamp,
        blocked_until -> Nullable<Timestamp>,
        version -> BigInt,
        known_until -> Nullable<Timestamp>,
    }
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Unavailable(format!("corrupt {what} row"))
}

fn utc(t: NaiveDateTime) -> DateTime<Utc> {
    DateTime::<Utc>::from_naive_utc_and_offset(t, Utc)
}

#[derive(Queryable, Insertable, AsChangeset)]
#[diesel(table_name = credentials)]
struct AccountRow {
    customer_id: String,
    password_hash: String,
    version: i64,
    role: String,
}

impl From<&Account> for AccountRow {
    fn from(a: &Account) -> Self {
        Self {
            customer_id: a.customer_id.to_string(),
            password_hash: a.password_hash.clone(),
            version: a.version,
            role: a.role.as_str().to_owned(),
        }
    }
}

impl TryFrom<AccountRow> for Account {
    type Error = StoreError;
    fn try_from(r: AccountRow) -> Result<Self, StoreError> {
        Ok(Self {
            customer_id: CustomerId::new(r.customer_id).map_err(|_| corrupt("credential"))?,
            password_hash: r.password_hash,
            role: Role::parse(&r.role).map_err(|_| corrupt("credential"))?,
            version: r.version,
        })
    }
}

#[derive(Queryable, Insertable, AsChangeset)]
#[diesel(table_name = service_accounts)]
struct ServiceAccountRow {
    client_id: String,
    secret_hash: String,
    role: String,
    created_by: String,
    created_at: NaiveDateTime,
}

impl From<&ServiceAccount> for ServiceAccountRow {
    fn from(a: &ServiceAccount) -> Self {
        Self {
            client_id: a.client_id.to_string(),
            secret_hash: a.secret_hash.clone(),
            role: a.role.as_str().to_owned(),
            created_by: a.created_by.clone(),
            created_at: a.created_at.naive_utc(),
        }
    }
}

impl TryFrom<ServiceAccountRow> for ServiceAccount {
    type Error = StoreError;
    fn try_from(r: ServiceAccountRow) -> Result<Self, StoreError> {
        let bad = |_| corrupt("service account");
        Self::new(
            ClientId::parse(&r.client_id).map_err(bad)?,
            r.secret_hash,
            Role::parse(&r.role).map_err(bad)?,
            &r.created_by,
            utc(r.created_at),
        )
        .map_err(bad)
    }
}

#[derive(Queryable, Insertable)]
#[diesel(table_name = audit_log)]
struct AuditRow {
    id: String,
    at: NaiveDateTime,
    actor: String,
    action: String,
    subject: String,
    detail: String,
}

impl From<&AuditEntry> for AuditRow {
    fn from(e: &AuditEntry) -> Self {
        Self {
            id: e.id.to_string(),
            at: e.at.naive_utc(),
            actor: e.actor.clone(),
            action: e.action.as_str().to_owned(),
            subject: e.subject.clone(),
            detail: e.detail.clone(),
        }
    }
}

impl TryFrom<AuditRow> for AuditEntry {
    type Error = StoreError;
    fn try_from(r: AuditRow) -> Result<Self, StoreError> {
        Ok(Self {
            id: uuid::Uuid::try_parse(&r.id).map_err(|_| corrupt("audit"))?,
            at: utc(r.at),
            actor: r.actor,
            action: AuditAction::parse(&r.action).ok_or_else(|| corrupt("audit"))?,
            subject: r.subject,
            detail: r.detail,
        })
    }
}

#[derive(Queryable, Insertable, AsChangeset)]
#[diesel(table_name = login_throttle, treat_none_as_null = true)]
struct CounterRow {
    key: String,
    failures: i32,
    since: NaiveDateTime,
    blocked_until: Option<NaiveDateTime>,
    version: i64,
    known_until: Option<NaiveDateTime>,
}

impl From<CounterRow> for Counter {
    fn from(r: CounterRow) -> Self {
        Self {
            failures: u32::try_from(r.failures).unwrap_or(0),
            since: utc(r.since),
            blocked_until: r.blocked_until.map(utc),
            known_until: r.known_until.map(utc),
            version: Some(r.version),
        }
    }
}

fn audit(c: &mut AnyConnection, entry: &AuditEntry) -> Result<(), StoreError> {
    diesel::insert_into(audit_log::table).values(AuditRow::from(entry)).execute(c).map(drop).map_err(db)
}

/// The subject's revocation becomes `before`, unless one in force already reaches later.
fn put_revocation(c: &mut AnyConnection, r: &Revocation) -> Result<(), StoreError> {
    let n = diesel::update(revocations::table.find(&r.subject).filter(revocations::revoked_before.lt(r.before)))
        .set(revocations::revoked_before.eq(r.before))
        .execute(c)
        .map_err(db)?;
    if n == 0 {
        let exists: i64 = revocations::table.find(&r.subject).count().get_result(c).map_err(db)?;
        if exists == 0 {
            diesel::insert_into(revocations::table)
                .values((revocations::subject.eq(&r.subject), revocations::revoked_before.eq(r.before)))
                .execute(c)
                .map_err(db)?;
        }
    }
    Ok(())
}

/// Accounts and the throttle, on one database.
#[derive(Clone)]
pub struct SqlAuth {
    store: Store,
}

impl SqlAuth {
    pub fn new(store: Store) -> Self {
        Self { store }
    }
}

impl AccountRepository for SqlAuth {
    async fn get(&self, customer: &CustomerId) -> Result<Option<Account>, StoreError> {
        let id = customer.to_string();
        let row: Option<AccountRow> =
            self.store.read(move |c| credentials::table.find(id).first(c).optional().map_err(db)).await?;
        row.map(Account::try_from).transpose()
    }

    async fn insert(&self, account: &Account, entry: Option<AuditEntry>) -> Result<(), StoreError> {
        let row = AccountRow::from(account);
        self.store
            .write(move |c| {
                diesel::insert_into(credentials::table).values(&row).execute(c).map_err(db)?;
                entry.as_ref().map_or(Ok(()), |e| audit(c, e))
            })
            .await
    }

    async fn update(
        &self,
        account: &Account,
        entry: AuditEntry,
        revocation: Option<Revocation>,
    ) -> Result<(), StoreError> {
        let expected = account.version;
        let row = AccountRow { version: expected + 1, ..AccountRow::from(account) };
        self.store
            .write(move |c| {
                versioned(
                    diesel::update(credentials::table.find(&row.customer_id).filter(credentials::version.eq(expected)))
                        .set(&row)
                        .execute(c),
                )?;
                audit(c, &entry)?;
                revocation.as_ref().map_or(Ok(()), |r| put_revocation(c, r))
            })
            .await
    }

    async fn get_service_account(&self, client: &ClientId) -> Result<Option<ServiceAccount>, StoreError> {
        let id = client.to_string();
        let row: Option<ServiceAccountRow> =
            self.store.read(move |c| service_accounts::table.find(id).first(c).optional().map_err(db)).await?;
        row.map(ServiceAccount::try_from).transpose()
    }

    async fn insert_service_account(&self, account: &ServiceAccount, entry: AuditEntry) -> Result<(), StoreError> {
        let row = ServiceAccountRow::from(account);
        self.store
            .write(move |c| {
                diesel::insert_into(service_accounts::table).values(&row).execute(c).map_err(db)?;
                audit(c, &entry)
            })
            .await
    }

    async fn put_service_account(&self, account: &ServiceAccount, entry: AuditEntry) -> Result<(), StoreError> {
        let row = ServiceAccountRow::from(account);
        self.store
            .write(move |c| {
                let n = diesel::update(service_accounts::table.find(&row.client_id))
                    .set((service_accounts::secret_hash.eq(&row.secret_hash), service_accounts::role.eq(&row.role)))
                    .execute(c)
                    .map_err(db)?;
                if n == 0 {
                    diesel::insert_into(service_accounts::table).values(&row).execute(c).map_err(db)?;
                }
                audit(c, &entry)
            })
            .await
    }

    async fn revoke(&self, revocation: &Revocation, entry: AuditEntry) -> Result<(), StoreError> {
        let r = revocation.clone();
        self.store
            .write(move |c| {
                put_revocation(c, &r)?;
                audit(c, &entry)
            })
            .await
    }

    async fn revocation(&self, subject: &str) -> Result<Option<Revocation>, StoreError> {
        let s = subject.to_owned();
        let before: Option<i64> = self
            .store
            .read(move |c| {
                revocations::table.find(&s).select(revocations::revoked_before).first(c).optional().map_err(db)
            })
            .await?;
        Ok(before.map(|before| Revocation { subject: subject.to_owned(), before }))
    }

    async fn revocations_since(&self, since: i64) -> Result<Vec<Revocation>, StoreError> {
        let rows: Vec<(String, i64)> = self
            .store
            .read(move |c| {
                revocations::table
                    .filter(revocations::revoked_before.gt(since))
                    .order(revocations::subject)
                    .load(c)
                    .map_err(db)
            })
            .await?;
        Ok(rows.into_iter().map(|(subject, before)| Revocation { subject, before }).collect())
    }

    async fn audit_entries(&self, subject: Option<&str>, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        let subject = subject.map(str::to_owned);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows: Vec<AuditRow> = self
            .store
            .read(move |c| {
                let mut q =
                    audit_log::table.order((audit_log::at.desc(), audit_log::id.desc())).limit(limit).into_boxed();
                if let Some(s) = subject {
                    q = q.filter(audit_log::subject.eq(s));
                }
                q.load(c).map_err(db)
            })
            .await?;
        rows.into_iter().map(AuditEntry::try_from).collect()
    }
}

impl LoginThrottleRepository for SqlAuth {
    async fn counters(&self, keys: [&str; 2]) -> Result<[Option<Counter>; 2], StoreError> {
        let owned = keys.map(str::to_owned);
        let rows: Vec<CounterRow> = self
            .store
            .read(move |c| login_throttle::table.filter(login_throttle::key.eq_any(owned)).load(c).map_err(db))
            .await?;
        let mut found = [None, None];
        for row in rows {
            if let Some(i) = keys.iter().position(|k| *k == row.key) {
                found[i] = Some(Counter::from(row));
            }
        }
        Ok(found)
    }

    async fn save(&self, counters: [(&str, &Counter); 2]) -> Result<(), StoreError> {
        let rows = counters.map(|(key, c)| {
            let row = CounterRow {
                key: key.to_owned(),
                failures: i32::try_from(c.failures).unwrap_or(i32::MAX),
                since: c.since.naive_utc(),
                blocked_until: c.blocked_until.map(|t| t.naive_utc()),
                version: c.version.map_or(0, |v| v + 1),
                known_until: c.known_until.map(|t| t.naive_utc()),
            };
            (row, c.version)
        });
        self.store
            .write(move |c| {
                for (row, expected) in &rows {
                    match expected {
                        // A counter that appeared meanwhile is a unique violation: Duplicate.
                        None => {
                            diesel::insert_into(login_throttle::table).values(row).execute(c).map(drop).map_err(db)?
                        }
                        Some(v) => {
                            let n = diesel::update(
                                login_throttle::table.find(&row.key).filter(login_throttle::version.eq(v)),
                            )
                            .set(row)
                            .execute(c)
                            .map_err(db)?;
                            if n == 0 {
                                return Err(StoreError::Conflict);
                            }
                        }
                    }
                }
                Ok(())
            })
            .await
    }

    async fn prune(&self, before: DateTime<Utc>, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let (before, now) = (before.naive_utc(), now.naive_utc());
        self.store
            .write(move |c| {
                let expired = login_throttle::blocked_until.is_null().or(login_throttle::blocked_until.lt(now));
                let forgotten = login_throttle::known_until.is_null().or(login_throttle::known_until.lt(now));
                diesel::delete(
                    login_throttle::table.filter(login_throttle::since.lt(before)).filter(expired).filter(forgotten),
                )
                .execute(c)
                .map(|n| n as u64)
                .map_err(db)
            })
            .await
    }
}

#[cfg(test)]
mod tests;
