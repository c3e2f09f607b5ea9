//! The points account on diesel: one balance row per customer, the append-only ledger
//! (the balance moves only with an entry, in the same transaction, from the entry count
//! it was read at), the spends with the lots they drew from, and the spending lease.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use kernel::paging::{Page, PageRequest};
use kernel::{CustomerId, StoreError};
use store_adapter::{AnyConnection, db, versioned};
use uuid::Uuid;
use wallet_domain::{Account, Draw, EntryKind, LedgerEntry, Spend};

use super::{SqlWallet, corrupt};

diesel::table! {
    wallet_accounts (customer_id) {
        customer_id -> Text,
        balance -> BigInt,
        entries -> BigInt,
    }
}

diesel::table! {
    wallet_ledger (entry_id) {
        entry_id -> Text,
        customer_id -> Text,
        seq -> BigInt,
        kind -> Text,
        amount -> BigInt,
        balance_after -> BigInt,
        reference -> Text,
        actor -> Text,
        reason -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    wallet_spends (spend_id) {
        spend_id -> Text,
        customer_id -> Text,
        request_id -> Nullable<Text>,
        gift_code -> Text,
        reward_id -> Nullable<Text>,
        cost -> BigInt,
        gift_id -> Text,
        entry_id -> Text,
        balance_after -> BigInt,
        created_at -> Timestamp,
    }
}

diesel::table! {
    wallet_draws (spend_id, reward_id) {
        spend_id -> Text,
        reward_id -> Text,
        points -> BigInt,
    }
}

diesel::table! {
    wallet_spend_leases (customer_id) {
        customer_id -> Text,
        holder -> Text,
        taken_at -> Timestamp,
    }
}

#[derive(Queryable, Insertable)]
#[diesel(table_name = wallet_ledger)]
pub(super) struct EntryRow {
    entry_id: String,
    customer_id: String,
    seq: i64,
    kind: String,
    amount: i64,
    balance_after: i64,
    reference: String,
    actor: String,
    reason: String,
    created_at: NaiveDateTime,
}

impl From<&LedgerEntry> for EntryRow {
    fn from(e: &LedgerEntry) -> Self {
        Self {
            entry_id: e.entry_id.to_string(),
            customer_id: e.customer_id.to_string(),
            seq: e.seq,
            kind: e.kind.as_str().to_owned(),
            amount: e.amount,
            balance_after: e.balance_after,
            reference: e.reference.clone(),
            actor: e.actor.clone(),
            reason: e.reason.clone(),
            created_at: e.at.naive_utc(),
        }
    }
}

fn uuid(raw: &str, what: &str) -> Result<Uuid, StoreError> {
    Uuid::try_parse(raw).map_err(|_| corrupt(what))
}

impl TryFrom<EntryRow> for LedgerEntry {
    type Error = StoreError;
    fn try_from(r: EntryRow) -> Result<Self, StoreError> {
        Ok(Self {
            entry_id: uuid(&r.entry_id, "entry_id")?,
            customer_id: CustomerId::new(r.customer_id).map_err(|_| corrupt("customer_id"))?,
            seq: r.seq,
            kind: EntryKind::parse(&r.kind).ok_or_else(|| corrupt("kind"))?,
            amount: r.amount,
            balance_after: r.balance_after,
            reference: r.reference,
            actor: r.actor,
            reason: r.reason,
            at: DateTime::from_naive_utc_and_offset(r.created_at, Utc),
        })
    }
}

#[derive(Queryable, Insertable)]
#[diesel(table_name = wallet_spends)]
pub(super) struct SpendRow {
    spend_id: String,
    customer_id: String,
    request_id: Option<String>,
    gift_code: String,
    reward_id: Option<String>,
    cost: i64,
    gift_id: String,
    entry_id: String,
    balance_after: i64,
    created_at: NaiveDateTime,
}

impl From<&Spend> for SpendRow {
    fn from(s: &Spend) -> Self {
        Self {
            spend_id: s.spend_id.to_string(),
            customer_id: s.customer_id.to_string(),
            request_id: (!s.request_id.is_empty()).then(|| s.request_id.clone()),
            gift_code: s.gift_code.clone(),
            reward_id: s.reward_id.map(|r| r.to_string()),
            cost: s.cost,
            gift_id: s.gift_id.to_string(),
            entry_id: s.entry_id.to_string(),
            balance_after: s.balance_after,
            created_at: s.at.naive_utc(),
        }
    }
}

type DrawRow = (String, String, i64);

/// Which spend to read: a customer's request, or the one that paid for a gift.
pub(super) enum SpendKey {
    Request(String, String),
    Gift(String),
}

pub(super) fn draw_rows(s: &Spend) -> Vec<DrawRow> {
    s.draws.iter().map(|d| (s.spend_id.to_string(), d.reward_id.to_string(), d.points)).collect()
}

/// Appends `entry` and moves the account to it, from the entry count it was read at.
///
/// # Errors
/// [`StoreError::Conflict`] when the account moved meanwhile (or the entry is there).
pub(super) fn append(c: &mut AnyConnection, entry: &EntryRow) -> Result<(), StoreError> {
    use wallet_accounts::dsl as a;
    let moved = |e: StoreError| if e == StoreError::Duplicate { StoreError::Conflict } else { e };
    if entry.seq == 1 {
        diesel::insert_into(a::wallet_accounts)
            .values((a::customer_id.eq(&entry.customer_id), a::balance.eq(entry.balance_after), a::entries.eq(1)))
            .execute(c)
            .map_err(|e| moved(db(e)))?;
    } else {
        versioned(
            diesel::update(a::wallet_accounts.find(&entry.customer_id).filter(a::entries.eq(entry.seq - 1)))
                .set((a::balance.eq(entry.balance_after), a::entries.eq(entry.seq)))
                .execute(c),
        )?;
    }
    diesel::insert_into(wallet_ledger::table).values(entry).execute(c).map_err(|e| moved(db(e)))?;
    Ok(())
}

/// Stores a committed spend and the lots it drew from.
///
/// # Errors
/// [`StoreError::Duplicate`] when the customer's request id already made a spend.
pub(super) fn record_spend(c: &mut AnyConnection, spend: &SpendRow, draws: &[DrawRow]) -> Result<(), StoreError> {
    diesel::insert_into(wallet_spends::table).values(spend).execute(c).map_err(db)?;
    for (spend_id, reward_id, points) in draws {
        diesel::insert_into(wallet_draws::table)
            .values((
                wallet_draws::spend_id.eq(spend_id),
                wallet_draws::reward_id.eq(reward_id),
                wallet_draws::points.eq(points),
            ))
            .execute(c)
            .map_err(db)?;
    }
    Ok(())
}

/// Gives the customer's lease back as part of a commit.
///
/// # Errors
/// [`StoreError::Conflict`] when `holder` no longer has it (it expired and was taken).
pub(super) fn give_back(c: &mut AnyConnection, customer: &str, holder: &str) -> Result<(), StoreError> {
    use wallet_spend_leases::dsl as l;
    versioned(diesel::delete(l::wallet_spend_leases.find(customer).filter(l::holder.eq(holder))).execute(c))
}

impl SqlWallet {
    pub(super) async fn read_account(&self, customer: &CustomerId) -> Result<Account, StoreError> {
        let id = customer.to_string();
        let row: Option<(i64, i64)> = self
            .store
            .read(move |c| {
                wallet_accounts::table
                    .find(id)
                    .select((wallet_accounts::balance, wallet_accounts::entries))
                    .first(c)
                    .optional()
                    .map_err(db)
            })
            .await?;
        let (balance, entries) = row.unwrap_or((0, 0));
        Ok(Account { customer_id: customer.clone(), balance, entries })
    }

    pub(super) async fn read_ledger(
        &self,
        customer: &CustomerId,
        kind: Option<EntryKind>,
        page: PageRequest,
    ) -> Result<Page<LedgerEntry>, StoreError> {
        let customer = customer.to_string();
        let before = page.before.map(|b| b.to_string());
        // Keyset on (customer_id[, kind], entry_id): UUIDv7 ids sort by time.
        let rows: Vec<EntryRow> = self
            .store
            .read(move |c| {
                let mut q = wallet_ledger::table
                    .filter(wallet_ledger::customer_id.eq(customer))
                    .order(wallet_ledger::entry_id.desc())
                    .limit(page.probe())
                    .into_boxed();
                if let Some(kind) = kind {
                    q = q.filter(wallet_ledger::kind.eq(kind.as_str()));
                }
                if let Some(before) = before {
                    q = q.filter(wallet_ledger::entry_id.lt(before));
                }
                q.load(c).map_err(db)
            })
            .await?;
        let entries = rows.into_iter().map(LedgerEntry::try_from).collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_probe(entries, page, |e| e.entry_id))
    }

    pub(super) async fn read_spend(
        &self,
        customer: &CustomerId,
        request_id: &str,
    ) -> Result<Option<Spend>, StoreError> {
        self.read_spend_where(SpendKey::Request(customer.to_string(), request_id.to_owned())).await
    }

    pub(super) async fn read_spend_where(&self, key: SpendKey) -> Result<Option<Spend>, StoreError> {
        use wallet_spends::dsl as s;
        let found: Option<(SpendRow, Vec<DrawRow>)> = self
            .store
            .read(move |c| {
                let spend: Option<SpendRow> = match key {
                    SpendKey::Request(id, request_id) => {
                        s::wallet_spends.filter(s::customer_id.eq(id).and(s::request_id.eq(request_id))).first(c)
                    }
                    SpendKey::Gift(gift_id) => s::wallet_spends.filter(s::gift_id.eq(gift_id)).first(c),
                }
                .optional()
                .map_err(db)?;
                let Some(spend) = spend else { return Ok(None) };
                let draws = wallet_draws::table
                    .filter(wallet_draws::spend_id.eq(&spend.spend_id))
                    .order(wallet_draws::reward_id)
                    .load(c)
                    .map_err(db)?;
                Ok(Some((spend, draws)))
            })
            .await?;
        let Some((r, draws)) = found else { return Ok(None) };
        Ok(Some(Spend {
            spend_id: uuid(&r.spend_id, "spend_id")?,
            customer_id: CustomerId::new(r.customer_id).map_err(|_| corrupt("customer_id"))?,
            request_id: r.request_id.unwrap_or_default(),
            gift_code: r.gift_code,
            reward_id: r.reward_id.as_deref().map(|id| uuid(id, "reward_id")).transpose()?,
            cost: r.cost,
            gift_id: uuid(&r.gift_id, "gift_id")?,
            entry_id: uuid(&r.entry_id, "entry_id")?,
            balance_after: r.balance_after,
            draws: draws
                .into_iter()
                .map(|(_, reward_id, points)| Ok(Draw { reward_id: uuid(&reward_id, "reward_id")?, points }))
                .collect::<Result<_, StoreError>>()?,
            at: DateTime::from_naive_utc_and_offset(r.created_at, Utc),
        }))
    }

    pub(super) async fn lease(
        &self,
        customer: &CustomerId,
        holder: Uuid,
        ttl: std::time::Duration,
    ) -> Result<bool, StoreError> {
        use wallet_spend_leases::dsl as l;
        let (customer, holder) = (customer.to_string(), holder.to_string());
        let now = Utc::now().naive_utc();
        let stale = now - chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX);
        self.store
            .write_for(&customer.clone(), move |c| {
                let held: Option<(String, NaiveDateTime)> = l::wallet_spend_leases
                    .find(&customer)
                    .select((l::holder, l::taken_at))
                    .first(c)
                    .optional()
                    .map_err(db)?;
                match held {
                    None => {
                        // A duplicate: another replica took it between our read and our
                        // insert (an error, so that the unit's savepoint is rolled back).
                        diesel::insert_into(l::wallet_spend_leases)
                            .values((l::customer_id.eq(&customer), l::holder.eq(&holder), l::taken_at.eq(now)))
                            .execute(c)
                            .map_err(db)?;
                        Ok(true)
                    }
                    Some((h, _)) if h == holder => Ok(true),
                    // Its holder died: taken over (its commit will find it gone).
                    Some((h, at)) if at < stale => {
                        let taken = diesel::update(l::wallet_spend_leases.find(&customer).filter(l::holder.eq(&h)))
                            .set((l::holder.eq(&holder), l::taken_at.eq(now)))
                            .execute(c)
                            .map_err(db)?;
                        Ok(taken == 1)
                    }
                    Some(_) => Ok(false),
                }
            })
            .await
            .or_else(|e| if e == StoreError::Duplicate { Ok(false) } else { Err(e) })
    }

    pub(super) async fn unlease(&self, customer: &CustomerId, holder: Uuid) -> Result<(), StoreError> {
        use wallet_spend_leases::dsl as l;
        let (customer, holder) = (customer.to_string(), holder.to_string());
        self.store
            .write_for(&customer.clone(), move |c| {
                diesel::delete(l::wallet_spend_leases.find(&customer).filter(l::holder.eq(&holder)))
                    .execute(c)
                    .map_err(db)?;
                Ok(())
            })
            .await
    }
}
