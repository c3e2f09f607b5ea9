//! An admin's corrections on diesel: one row per refund or adjustment (a gift refunded
//! once, a request id naming one correction, both by unique keys) with the lots its
//! points went to or came from, committed with its entry and the lots it changed.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use kernel::{CustomerId, StoreError};
use store_adapter::{Prepared, db};
use uuid::Uuid;
use wallet_domain::{Correction, CorrectionCommit, CorrectionKind, Draw, Spend};

use super::ledger::{self, EntryRow};
use super::{Row, SqlWallet, corrupt, update_items, wallet_items};

diesel::table! {
    wallet_corrections (correction_id) {
        correction_id -> Text,
        customer_id -> Text,
        kind -> Text,
        gift_id -> Nullable<Text>,
        request_id -> Nullable<Text>,
        amount -> BigInt,
        reason -> Text,
        actor -> Text,
        entry_id -> Text,
        balance_after -> BigInt,
        created_at -> Timestamp,
    }
}

diesel::table! {
    wallet_correction_lots (correction_id, reward_id) {
        correction_id -> Text,
        reward_id -> Text,
        points -> BigInt,
    }
}

const REFUND: &str = "REFUND";
const ADJUSTMENT: &str = "ADJUSTMENT";

#[derive(Queryable, Insertable)]
#[diesel(table_name = wallet_corrections)]
struct CorrectionRow {
    correction_id: String,
    customer_id: String,
    kind: String,
    gift_id: Option<String>,
    request_id: Option<String>,
    amount: i64,
    reason: String,
    actor: String,
    entry_id: String,
    balance_after: i64,
    created_at: NaiveDateTime,
}

impl From<&Correction> for CorrectionRow {
    fn from(c: &Correction) -> Self {
        let (kind, gift_id) = match c.kind {
            CorrectionKind::Refund { gift_id } => (REFUND, Some(gift_id.to_string())),
            CorrectionKind::Adjustment => (ADJUSTMENT, None),
        };
        Self {
            correction_id: c.correction_id.to_string(),
            customer_id: c.customer_id.to_string(),
            kind: kind.to_owned(),
            gift_id,
            request_id: (!c.request_id.is_empty()).then(|| c.request_id.clone()),
            amount: c.amount,
            reason: c.reason.clone(),
            actor: c.actor.clone(),
            entry_id: c.entry_id.to_string(),
            balance_after: c.balance_after,
            created_at: c.at.naive_utc(),
        }
    }
}

fn uuid(raw: &str, what: &str) -> Result<Uuid, StoreError> {
    Uuid::try_parse(raw).map_err(|_| corrupt(what))
}

fn to_domain(r: CorrectionRow, lots: Vec<(String, String, i64)>) -> Result<Correction, StoreError> {
    let kind = match (r.kind.as_str(), r.gift_id.as_deref()) {
        (REFUND, Some(gift)) => CorrectionKind::Refund { gift_id: uuid(gift, "gift_id")? },
        (ADJUSTMENT, None) => CorrectionKind::Adjustment,
        _ => return Err(corrupt("correction kind")),
    };
    Ok(Correction {
        correction_id: uuid(&r.correction_id, "correction_id")?,
        customer_id: CustomerId::new(r.customer_id).map_err(|_| corrupt("customer_id"))?,
        kind,
        request_id: r.request_id.unwrap_or_default(),
        amount: r.amount,
        reason: r.reason,
        actor: r.actor,
        entry_id: uuid(&r.entry_id, "entry_id")?,
        balance_after: r.balance_after,
        lots: lots
            .into_iter()
            .map(|(_, reward_id, points)| Ok(Draw { reward_id: uuid(&reward_id, "reward_id")?, points }))
            .collect::<Result<_, StoreError>>()?,
        at: DateTime::from_naive_utc_and_offset(r.created_at, Utc),
    })
}

/// Which correction to read.
enum Key {
    Gift(String),
    Request(String),
}

impl SqlWallet {
    async fn read_correction(&self, key: Key) -> Result<Option<Correction>, StoreError> {
        use wallet_corrections::dsl as k;
        let found = self
            .store
            .read(move |c| {
                let row: Option<CorrectionRow> = match key {
                    Key::Gift(g) => k::wallet_corrections.filter(k::gift_id.eq(g)).first(c),
                    Key::Request(r) => k::wallet_corrections.filter(k::request_id.eq(r)).first(c),
                }
                .optional()
                .map_err(db)?;
                let Some(row) = row else { return Ok(None) };
                let lots = wallet_correction_lots::table
                    .filter(wallet_correction_lots::correction_id.eq(&row.correction_id))
                    .order(wallet_correction_lots::reward_id)
                    .load(c)
                    .map_err(db)?;
                Ok(Some((row, lots)))
            })
            .await?;
        found.map(|(row, lots)| to_domain(row, lots)).transpose()
    }

    pub(super) async fn read_refund(&self, gift_id: Uuid) -> Result<Option<Correction>, StoreError> {
        self.read_correction(Key::Gift(gift_id.to_string())).await
    }

    pub(super) async fn read_correction_by_request(&self, request_id: &str) -> Result<Option<Correction>, StoreError> {
        self.read_correction(Key::Request(request_id.to_owned())).await
    }

    pub(super) async fn read_spend_by_gift(&self, gift_id: Uuid) -> Result<Option<Spend>, StoreError> {
        self.read_spend_where(ledger::SpendKey::Gift(gift_id.to_string())).await
    }

    pub(super) async fn write_correction(&self, commit: CorrectionCommit) -> Result<(), StoreError> {
        let (kind, amount) = (commit.correction.kind, commit.correction.amount);
        self.write_correction_rows(commit).await?;
        match kind {
            CorrectionKind::Refund { .. } => metrics_adapter::points().refunded(amount),
            CorrectionKind::Adjustment => metrics_adapter::points().adjusted(amount),
        }
        Ok(())
    }

    async fn write_correction_rows(&self, commit: CorrectionCommit) -> Result<(), StoreError> {
        let customer = commit.correction.customer_id.to_string();
        let holder = commit.holder.map(|h| h.to_string());
        let items: Vec<Row> = commit.items.iter().map(Row::from).collect();
        let new_lot = commit.new_lot.as_ref().map(Row::from);
        let entry = EntryRow::from(&commit.entry);
        let row = CorrectionRow::from(&commit.correction);
        let lots: Vec<_> = commit
            .correction
            .lots
            .iter()
            .map(|d| (row.correction_id.clone(), d.reward_id.to_string(), d.points))
            .collect();
        self.store
            .write_for(&customer.clone(), move |c| {
                if let Some(holder) = &holder {
                    ledger::give_back(c, &customer, holder)?;
                }
                update_items(c, &items)?;
                if let Some(lot) = &new_lot {
                    Prepared(diesel::insert_into(wallet_items::table).values(lot)).execute(c).map_err(db)?;
                }
                ledger::append(c, &entry)?;
                // A duplicate here: the request id or the gift's refund is taken.
                diesel::insert_into(wallet_corrections::table).values(&row).execute(c).map_err(db)?;
                for (correction_id, reward_id, points) in &lots {
                    diesel::insert_into(wallet_correction_lots::table)
                        .values((
                            wallet_correction_lots::correction_id.eq(correction_id),
                            wallet_correction_lots::reward_id.eq(reward_id),
                            wallet_correction_lots::points.eq(points),
                        ))
                        .execute(c)
                        .map_err(db)?;
                }
                Ok(())
            })
            .await
    }
}
