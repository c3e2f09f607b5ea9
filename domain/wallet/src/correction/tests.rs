//! Corrections, given / when / then.

use kernel::CustomerId;
use uuid::Uuid;

use super::*;

fn item(n: u128, points: i64, remaining: i64) -> WalletItem {
    let mut i =
        WalletItem::issue(Uuid::from_u128(n), Uuid::from_u128(100 + n), CustomerId::new("c-1").unwrap(), points).0;
    i.remaining = remaining;
    if remaining == 0 {
        i.status = ItemStatus::Exchanged;
        i.gift_id = Some(Uuid::from_u128(9));
        i.gift_code = Some("movie-ticket".into());
    }
    i.version = 1;
    i
}

fn spend_of(draws: &[(u128, i64)]) -> Spend {
    Spend {
        spend_id: Uuid::from_u128(50),
        customer_id: CustomerId::new("c-1").unwrap(),
        request_id: String::new(),
        gift_code: "movie-ticket".into(),
        reward_id: None,
        cost: draws.iter().map(|d| d.1).sum(),
        gift_id: Uuid::from_u128(9),
        entry_id: Uuid::from_u128(51),
        balance_after: 0,
        draws: draws.iter().map(|&(n, points)| Draw { reward_id: Uuid::from_u128(n), points }).collect(),
        at: Utc::now(),
    }
}

#[test]
fn given_a_spend_from_an_emptied_lot_and_a_partly_spent_one_when_refunded_then_both_hold_again_what_they_gave() {
    let items = [item(1, 10, 0), item(2, 100, 60)];
    let restored = plan_refund(&spend_of(&[(1, 10), (2, 40)]), &items).unwrap();
    let view: Vec<_> = restored.iter().map(|i| (i.reward_id.as_u128(), i.remaining, i.status, i.gift_id)).collect();
    assert_eq!(view, vec![(1, 10, ItemStatus::Issued, None), (2, 100, ItemStatus::Issued, None)]);
    assert_eq!(restored[0].version, 1, "the version read: the store checks it");
}

#[test]
fn given_lots_that_do_not_match_the_spend_when_refunded_then_nothing_is_planned() {
    assert_eq!(plan_refund(&spend_of(&[(1, 10)]), &[]), Err(CorrectionRefusal::LotMismatch(Uuid::from_u128(1))));
    let too_much = plan_refund(&spend_of(&[(1, 20)]), &[item(1, 10, 0)]);
    assert_eq!(too_much, Err(CorrectionRefusal::LotMismatch(Uuid::from_u128(1))), "never more than the lot held");
}

#[test]
fn given_lots_when_a_debit_is_planned_then_it_draws_as_a_spend_and_empties_lots_in_order() {
    let items = [item(3, 10, 10), item(1, 10, 10), item(2, 100, 100)];
    let (draws, changed) = plan_debit(&items, 15).unwrap();
    assert_eq!(draws.iter().map(|d| (d.reward_id.as_u128(), d.points)).collect::<Vec<_>>(), vec![(1, 10), (2, 5)]);
    let view: Vec<_> = changed.iter().map(|i| (i.reward_id.as_u128(), i.remaining, i.status)).collect();
    assert_eq!(view, vec![(1, 0, ItemStatus::Exchanged), (2, 95, ItemStatus::Issued)]);
    assert!(changed.iter().all(|i| i.gift_id.is_none()), "no gift took them");
}

#[test]
fn given_a_balance_when_a_debit_beyond_it_is_planned_then_it_is_refused_with_both_figures() {
    let short = plan_debit(&[item(1, 10, 10)], 11);
    assert_eq!(short, Err(CorrectionRefusal::NotEnoughPoints(NotEnoughPoints { cost: 11, balance: 10 })));
}

#[test]
fn corrections_name_the_bad_field() {
    let gift = Uuid::now_v7().to_string();
    assert_eq!(RefundGift::new("nope", "why", "", "a").unwrap_err().field, "gift_id");
    assert_eq!(RefundGift::new(&gift, "  ", "", "a").unwrap_err().field, "reason");
    assert_eq!(RefundGift::new(&gift, &"x".repeat(501), "", "a").unwrap_err().field, "reason");
    assert_eq!(RefundGift::new(&gift, "why", &"r".repeat(200), "a").unwrap_err().field, "request_id");
    assert_eq!(AdjustPoints::new("c-1", 0, "why", "", "a").unwrap_err().field, "amount");
    assert_eq!(AdjustPoints::new("c-1", 5, "", "", "a").unwrap_err().field, "reason");
    assert_eq!(AdjustPoints::new("", 5, "why", "", "a").unwrap_err().field, "customer_id");
    assert_eq!(AdjustPoints::new("c-1", -5, " why ", "", "a").unwrap().reason, "why");
}

#[test]
fn given_a_correction_when_its_request_comes_again_then_only_the_same_parameters_are_answered() {
    let cmd = AdjustPoints::new("c-1", 25, "goodwill", "r-1", "admin").unwrap();
    let done = Correction {
        correction_id: Uuid::now_v7(),
        customer_id: cmd.customer_id.clone(),
        kind: CorrectionKind::Adjustment,
        request_id: "r-1".into(),
        amount: 25,
        reason: "goodwill".into(),
        actor: "admin".into(),
        entry_id: Uuid::now_v7(),
        balance_after: 25,
        lots: vec![],
        at: Utc::now(),
    };
    assert_eq!(done.answers_adjust(&cmd), Ok(()));
    assert_eq!(done.answers_adjust(&AdjustPoints { amount: 26, ..cmd.clone() }), Err(RequestReused));
    let refund = RefundGift::new(&Uuid::now_v7().to_string(), "goodwill", "r-1", "admin").unwrap();
    assert_eq!(done.answers_refund(&refund), Err(RequestReused), "an adjustment's id is not a refund's");
}
