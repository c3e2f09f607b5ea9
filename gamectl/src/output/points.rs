//! The points account's answers: the balance, ledger entries, a redeemed gift, an
//! admin's refund or adjustment.

use contracts::pb::wallet;
use serde_json::{Value, json};

use super::{enum_json, table, timestamp, timestamp_json, word};

/// The balance and what expires next (`nextExpiryAt` null, `nextExpiryPoints` 0 when
/// nothing does).
pub fn balance_json(customer_id: &str, w: &wallet::v1::Wallet) -> Value {
    json!({
        "customerId": customer_id,
        "balance": w.balance,
        "nextExpiryPoints": w.next_expiry_points,
        "nextExpiryAt": timestamp_json(w.next_expiry_at.as_ref()),
    })
}

/// `balance of c-1: 90 points` and, when some expire, `; 40 expire on 2027-01-05 (at
/// 2027-01-05T00:00:00Z)`.
pub fn balance_text(customer_id: &str, w: &wallet::v1::Wallet) -> String {
    let head = format!("balance of {customer_id}: {} points", w.balance);
    match timestamp(w.next_expiry_at.as_ref()) {
        Some(at) if w.next_expiry_points > 0 => {
            let day = at.get(..10).unwrap_or(&at);
            format!("{head}; {} expire on {day} (at {at})", w.next_expiry_points)
        }
        _ => head,
    }
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

    #[test]
    fn a_ledger_in_text_is_a_table_and_in_json_names_each_kind() {
        let entry = wallet::v1::LedgerEntry {
            entry_id: "e-2".into(),
            kind: wallet::v1::LedgerEntryKind::Spent as i32,
            amount: -50,
            balance_after: 0,
            reference: "gift:g-1".into(),
            actor: "c-1".into(),
            reason: String::new(),
            create_time: Some(prost_types::Timestamp { seconds: 1_767_225_600, nanos: 500_000_000 }),
            sequence: 2,
        };
        assert_eq!(
            ledger_text(std::slice::from_ref(&entry)),
            "#  KIND   AMOUNT  BALANCE  REFERENCE  ACTOR  REASON\n\
             2  SPENT  -50     0        gift:g-1   c-1"
        );
        let j = ledger_entry_json(&entry);
        assert_eq!((j["kind"].as_str(), j["amount"].as_i64()), (Some("LEDGER_ENTRY_KIND_SPENT"), Some(-50)));
        let mut w = wallet::v1::Wallet { balance: 90, ..Default::default() };
        assert_eq!(balance_text("c-1", &w), "balance of c-1: 90 points");
        assert_eq!(balance_json("c-1", &w)["nextExpiryAt"], serde_json::Value::Null);
        w.next_expiry_points = 40;
        w.next_expiry_at = Some(prost_types::Timestamp { seconds: 1_799_107_200, nanos: 0 });
        assert_eq!(
            balance_text("c-1", &w),
            "balance of c-1: 90 points; 40 expire on 2027-01-05 (at 2027-01-05T00:00:00Z)"
        );
        let j = balance_json("c-1", &w);
        assert_eq!(
            (j["nextExpiryPoints"].as_i64(), j["nextExpiryAt"].as_str()),
            (Some(40), Some("2027-01-05T00:00:00Z"))
        );
        let redeemed = wallet::v1::RedeemGiftResponse {
            gift_id: "g-1".into(),
            cost_points: 50,
            balance: 0,
            entry_id: "e-2".into(),
            draws: vec![wallet::v1::SpendDraw { reward_id: "r-1".into(), points: 50 }],
        };
        assert_eq!(
            redeem_text("movie-ticket", &redeemed),
            "movie-ticket redeemed for 50 points from 1 reward(s): gift g-1; balance 0"
        );
    }
}
