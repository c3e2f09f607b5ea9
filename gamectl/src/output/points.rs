//! The points account's answers: the balance, ledger entries, a redeemed gift.

use contracts::pb::wallet;
use serde_json::{Value, json};

use super::{enum_json, table, timestamp_json, word};

pub fn balance_json(customer_id: &str, balance: i64) -> Value {
    json!({ "customerId": customer_id, "balance": balance })
}

pub fn balance_text(customer_id: &str, balance: i64) -> String {
    format!("balance of {customer_id}: {balance} points")
}

pub fn ledger_entry_json(e: &wallet::v1::LedgerEntry) -> Value {
    let kind = wallet::v1::LedgerEntryKind::try_from(e.kind).ok();
    json!({
        "entryId": e.entry_id,
        "sequence": e.sequence,
        "kind": enum_json(kind.map(|k| k.as_str_name()), e.kind),
        "amount": e.amount,
        "balanceAfter": e.balance_after,
        "reference": e.reference,
        "actor": e.actor,
        "reason": e.reason,
        "createTime": timestamp_json(e.create_time.as_ref()),
    })
}

fn kind_word(e: &wallet::v1::LedgerEntry) -> String {
    let kind = wallet::v1::LedgerEntryKind::try_from(e.kind).ok();
    word(kind.map(|k| k.as_str_name()), e.kind)
}

pub fn ledger_text(entries: &[wallet::v1::LedgerEntry]) -> String {
    if entries.is_empty() {
        return "no entries".into();
    }
    let rows: Vec<Vec<String>> = entries
        .iter()
        .map(|e| {
            vec![
                e.sequence.to_string(),
                kind_word(e),
                format!("{:+}", e.amount),
                e.balance_after.to_string(),
                e.reference.clone(),
                e.actor.clone(),
            ]
        })
        .collect();
    table(&["#", "KIND", "AMOUNT", "BALANCE", "REFERENCE", "ACTOR"], &rows)
}

pub fn redeem_json(r: &wallet::v1::RedeemGiftResponse) -> Value {
    json!({
        "giftId": r.gift_id,
        "costPoints": r.cost_points,
        "balance": r.balance,
        "entryId": r.entry_id,
        "draws": r.draws.iter().map(|d| json!({ "rewardId": d.reward_id, "points": d.points })).collect::<Vec<_>>(),
    })
}

pub fn redeem_text(gift_code: &str, r: &wallet::v1::RedeemGiftResponse) -> String {
    format!(
        "{gift_code} redeemed for {} points from {} reward(s): gift {}; balance {}",
        r.cost_points,
        r.draws.len(),
        r.gift_id,
        r.balance
    )
}
