//! Refunds and adjustments, given / when / then, over the in-memory fakes.

use futures::executor::block_on;
use kernel::{CustomerId, RequestContext};

use super::{Gifts, Service, balance, customer, earn, redeem, service};
use crate::correction::{AdjustPoints, Correction, CorrectionRefusal, RefundGift};
use crate::ledger::EntryKind;
use crate::model::{ItemStatus, WalletItem};
use crate::ports::{GiftCallError, GiftRefusal, WalletRepository};
use crate::service::WalletError;

fn refund(s: &Service, gift: uuid::Uuid, request: &str) -> Result<Correction, WalletError> {
    let cmd = RefundGift::new(&gift.to_string(), "customer complaint", request, "admin-1").unwrap();
    block_on(s.refund(cmd, &RequestContext::default()))
}

fn adjust(s: &Service, amount: i64, request: &str) -> Result<Correction, WalletError> {
    block_on(s.adjust(AdjustPoints::new("c-11", amount, "goodwill", request, "admin-1").unwrap()))
}

fn now(s: &Service, item: &WalletItem) -> WalletItem {
    block_on(s.repo.get(item.reward_id)).unwrap().unwrap()
}

fn refused(r: Result<Correction, WalletError>) -> CorrectionRefusal {
    match r {
        Err(WalletError::Correction(why)) => why,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn given_a_gift_paid_from_three_lots_when_refunded_then_each_lot_gets_back_what_it_gave() {
    let s = service(Gifts::issuing());
    let lots: Vec<_> = [10, 10, 100].into_iter().map(|p| earn(&s, p)).collect();
    let spend = redeem(&s, "movie-ticket", "m-1").unwrap();
    assert_eq!((now(&s, &lots[2]).remaining, balance(&s)), (70, 70));
    let done = refund(&s, spend.gift_id, "r-1").unwrap();
    assert_eq!((done.amount, done.balance_after, done.lots.clone()), (50, 120, spend.draws.clone()));
    for lot in &lots {
        let back = now(&s, lot);
        assert_eq!((back.remaining, back.status, back.gift_id), (lot.points, ItemStatus::Issued, None));
        assert_eq!(back.mission_id, lot.mission_id, "the same lot, not a new one");
    }
    assert_eq!(balance(&s), 120);
    assert_eq!(*s.gifts.cancelled.lock().unwrap(), vec![spend.gift_id]);
    let entry = &block_on(s.ledger(&customer(), Some(EntryKind::Refunded), Default::default())).unwrap().items[0];
    assert_eq!((entry.amount, entry.actor.as_str(), entry.reason.as_str()), (50, "admin-1", "customer complaint"));
    assert_eq!(entry.reference, format!("gift:{}", spend.gift_id));
}

#[test]
fn given_a_refunded_gift_when_refunded_again_then_the_same_request_is_answered_and_another_refused() {
    let s = service(Gifts::issuing());
    earn(&s, 10);
    let spend = redeem(&s, "coffee", "c-1").unwrap();
    let first = refund(&s, spend.gift_id, "r-1").unwrap();
    assert_eq!(refund(&s, spend.gift_id, "r-1").unwrap(), first, "the same request: the same answer");
    assert_eq!(
        refused(refund(&s, spend.gift_id, "r-2")),
        CorrectionRefusal::AlreadyRefunded { gift_id: spend.gift_id }
    );
    assert_eq!(refused(refund(&s, spend.gift_id, "")), CorrectionRefusal::AlreadyRefunded { gift_id: spend.gift_id });
    let other = RefundGift::new(&spend.gift_id.to_string(), "another reason", "r-1", "admin-1").unwrap();
    let reused = block_on(s.refund(other, &RequestContext::default()));
    assert_eq!(refused(reused), CorrectionRefusal::RequestReused(kernel::RequestReused));
    assert_eq!(balance(&s), 10, "refunded once");
}

#[test]
fn given_a_refunded_lot_when_it_pays_again_then_a_new_gift_is_asked_for_not_the_cancelled_one() {
    let s = service(Gifts::issuing());
    earn(&s, 10);
    let first = redeem(&s, "coffee", "c-1").unwrap();
    refund(&s, first.gift_id, "r-1").unwrap();
    let second = redeem(&s, "coffee", "c-2").unwrap();
    assert_ne!(second.gift_id, first.gift_id);
    assert_eq!(balance(&s), 0);
}

#[test]
fn given_a_used_gift_when_refunded_then_it_is_refused_by_the_gift_service_and_nothing_changes() {
    let s = service(Gifts::issuing());
    earn(&s, 10);
    let spend = redeem(&s, "coffee", "c-1").unwrap();
    let used = GiftRefusal {
        message: "the gift was already used".into(),
        reason: Some(("GIFT_ALREADY_USED".into(), Default::default())),
    };
    *s.gifts.cancel_answer.lock().unwrap() = Err(GiftCallError::Refused(used.clone()));
    assert!(matches!(refund(&s, spend.gift_id, "r-1"), Err(WalletError::GiftRefused(r)) if r == used));
    assert_eq!(balance(&s), 0);
    assert!(s.repo.corrections.lock().unwrap().is_empty());
    assert!(matches!(refund(&s, uuid::Uuid::from_u128(7), "r-2"), Err(WalletError::NotFound("gift"))));
}

#[test]
fn given_a_gift_cancelled_when_the_wallet_fails_before_crediting_then_the_same_request_completes_it() {
    let s = service(Gifts::issuing());
    earn(&s, 10);
    let spend = redeem(&s, "coffee", "c-1").unwrap();
    *s.repo.failing_corrections.lock().unwrap() = 1;
    assert!(matches!(refund(&s, spend.gift_id, "r-1"), Err(WalletError::Unavailable(_))));
    assert_eq!((balance(&s), s.gifts.cancelled.lock().unwrap().len()), (0, 1), "cancelled, not credited");
    let done = refund(&s, spend.gift_id, "r-1").unwrap();
    assert_eq!((done.balance_after, balance(&s)), (10, 10));
    assert_eq!(s.gifts.cancelled.lock().unwrap().len(), 2, "the cancel was asked again (idempotent there)");
}

#[test]
fn given_lots_when_a_debit_is_adjusted_then_it_draws_like_a_spend_soonest_expiry_then_oldest() {
    let s = service(Gifts::issuing());
    let lots: Vec<_> = [10, 10, 10].into_iter().map(|p| earn(&s, p)).collect();
    let debit = adjust(&s, -15, "a-1").unwrap();
    assert_eq!(
        debit.lots.iter().map(|d| (d.reward_id, d.points)).collect::<Vec<_>>(),
        vec![(lots[0].reward_id, 10), (lots[1].reward_id, 5)]
    );
    assert_eq!((now(&s, &lots[0]).status, now(&s, &lots[0]).remaining), (ItemStatus::Exchanged, 0));
    assert_eq!((now(&s, &lots[1]).remaining, now(&s, &lots[2]).remaining), (5, 10));
    assert_eq!((debit.balance_after, balance(&s)), (15, 15));
    assert!(s.repo.leases.lock().unwrap().is_empty(), "the lease is given back");
    let entry = &block_on(s.ledger(&customer(), Some(EntryKind::Adjusted), Default::default())).unwrap().items[0];
    assert_eq!((entry.amount, entry.actor.as_str(), entry.reason.as_str()), (-15, "admin-1", "goodwill"));
}

#[test]
fn given_a_balance_when_a_debit_beyond_it_is_adjusted_then_it_is_refused_and_never_below_zero() {
    let s = service(Gifts::issuing());
    earn(&s, 10);
    let short = refused(adjust(&s, -11, "a-1"));
    assert_eq!(short, CorrectionRefusal::NotEnoughPoints(crate::NotEnoughPoints { cost: 11, balance: 10 }));
    assert_eq!(balance(&s), 10);
    assert!(s.repo.leases.lock().unwrap().is_empty(), "the lease is given back");
    assert_eq!(adjust(&s, -10, "a-2").unwrap().balance_after, 0, "down to zero");
    assert!(matches!(refused(adjust(&s, -1, "a-3")), CorrectionRefusal::NotEnoughPoints(_)));
}

#[test]
fn given_a_credit_then_it_is_a_new_lot_that_never_expires_and_pays_for_gifts() {
    let s = service(Gifts::issuing());
    let credit = adjust(&s, 25, "a-1").unwrap();
    let lot = block_on(s.repo.get(credit.lots[0].reward_id)).unwrap().unwrap();
    assert_eq!((lot.points, lot.remaining, lot.status, lot.lot().expires_at), (25, 25, ItemStatus::Issued, None));
    assert_eq!(balance(&s), 25);
    redeem(&s, "coffee", "c-1").unwrap();
    assert_eq!(balance(&s), 15);
}

#[test]
fn given_an_adjustment_when_its_request_comes_again_then_the_same_answer_and_other_parameters_are_refused() {
    let s = service(Gifts::issuing());
    let first = adjust(&s, 25, "a-1").unwrap();
    assert_eq!(adjust(&s, 25, "a-1").unwrap(), first);
    assert_eq!(balance(&s), 25, "credited once");
    assert_eq!(refused(adjust(&s, 30, "a-1")), CorrectionRefusal::RequestReused(kernel::RequestReused));
    let other_customer = AdjustPoints::new("c-12", 25, "goodwill", "a-1", "admin-1").unwrap();
    assert!(matches!(
        block_on(s.adjust(other_customer)),
        Err(WalletError::Correction(CorrectionRefusal::RequestReused(_)))
    ));
    let c12 = CustomerId::new("c-12").unwrap();
    assert_eq!(block_on(s.repo.account(&c12)).unwrap().balance, 0);
}
