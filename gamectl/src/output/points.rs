//! The points account's answers: the balance, ledger entries, a redeemed gift, an
//! admin's refund or adjustment.

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
                e.reason.clone(),
            ]
        })
        .collect();
    table(&["#", "KIND", "AMOUNT", "BALANCE", "REFERENCE", "ACTOR", "REASON"], &rows)
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

fn lots_json(lots: &[wallet::v1::SpendDraw]) -> Vec<Value> {
    lots.iter().map(|d| json!({ "rewardId": d.reward_id, "points": d.points })).collect()
}

pub fn refund_json(r: &wallet::v1::RefundGiftResponse) -> Value {
    json!({
        "customerId": r.customer_id,
        "giftId": r.gift_id,
        "points": r.points,
        "balance": r.balance,
        "entryId": r.entry_id,
        "lots": lots_json(&r.lots),
    })
}

pub fn refund_text(r: &wallet::v1::RefundGiftResponse) -> String {
    format!(
        "gift {} refunded: {} points back to {} reward(s) of {}; balance {}",
        r.gift_id,
        r.points,
        r.lots.len(),
        r.customer_id,
        r.balance
    )
}

pub fn adjust_json(r: &wallet::v1::AdjustPointsResponse) -> Value {
    json!({
        "customerId": r.customer_id,
        "amount": r.amount,
        "balance": r.balance,
        "entryId": r.entry_id,
        "lots": lots_json(&r.lots),
    })
}

pub fn adjust_text(r: &wallet::v1::AdjustPointsResponse) -> String {
    format!("{} adjusted by {:+} points; balance {}", r.customer_id, r.amount, r.balance)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refund_and_an_adjustment_read_as_text_and_json_and_the_ledger_shows_why() {
        let refund = wallet::v1::RefundGiftResponse {
            customer_id: "c-1".into(),
            gift_id: "g-1".into(),
            points: 50,
            balance: 50,
            entry_id: "e-3".into(),
            lots: vec![wallet::v1::SpendDraw { reward_id: "r-1".into(), points: 50 }],
        };
        assert_eq!(refund_text(&refund), "gift g-1 refunded: 50 points back to 1 reward(s) of c-1; balance 50");
        assert_eq!(refund_json(&refund)["lots"][0]["rewardId"], "r-1");
        let adjust = wallet::v1::AdjustPointsResponse {
            customer_id: "c-1".into(),
            amount: -10,
            balance: 40,
            entry_id: "e-4".into(),
            lots: vec![],
        };
        assert_eq!(adjust_text(&adjust), "c-1 adjusted by -10 points; balance 40");
        assert_eq!(
            (adjust_json(&adjust)["amount"].as_i64(), adjust_json(&adjust)["balance"].as_i64()),
            (Some(-10), Some(40))
        );
        let entry = wallet::v1::LedgerEntry {
            sequence: 4,
            kind: wallet::v1::LedgerEntryKind::Adjusted as i32,
            amount: -10,
            balance_after: 40,
            reference: "adjustment:a-1".into(),
            actor: "admin".into(),
            reason: "duplicate reward".into(),
            ..Default::default()
        };
        assert_eq!(
            ledger_text(&[entry]),
            "#  KIND      AMOUNT  BALANCE  REFERENCE       ACTOR  REASON\n\
             4  ADJUSTED  -10     40       adjustment:a-1  admin  duplicate reward"
        );
    }
}
