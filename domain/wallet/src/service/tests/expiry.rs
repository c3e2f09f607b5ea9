//! Expiry, given / when / then, over the in-memory fakes.

use std::time::Duration;

use chrono::Utc;
use futures::executor::block_on;
use kernel::paging::PageRequest;
use kernel::{EventMeta, Inbound, RequestContext, new_id};

use super::{Gifts, Service, balance, customer, earn, redeem, service};
use crate::correction::RefundGift;
use crate::ledger::EntryKind;
use crate::model::WalletItem;
use crate::ports::WalletRepository;
use crate::service::RewardAllocated;

const DAY: Duration = Duration::from_secs(86_400);

/// Issues a reward of `points` to c-11 whose points expire `after` it is issued.
fn earn_expiring(s: &Service, points: i64, after: Duration) -> WalletItem {
    let fact = RewardAllocated {
        reward_id: new_id(),
        mission_id: new_id(),
        customer_id: customer(),
        points,
        points_expire_after: Some(after),
    };
    let meta = EventMeta::first(fact.mission_id, "req", customer(), Utc::now());
    let inbound = Inbound { consumer: "wallet-issue", event_id: meta.event_id };
    assert!(block_on(s.on_reward_allocated(inbound, &meta, fact.clone())).unwrap(), "issued by this call");
    block_on(s.repo.get(fact.reward_id)).unwrap().unwrap()
}

fn lot(s: &Service, item: &WalletItem) -> WalletItem {
    block_on(s.repo.get(item.reward_id)).unwrap().unwrap()
}

/// Moves a lot's expiry into the past, as time passing would.
fn expire_now(s: &Service, item: &WalletItem) {
    s.repo.items.lock().unwrap().get_mut(&item.reward_id).unwrap().expires_at = Some(Utc::now() - DAY);
}

fn expired_entries(s: &Service) -> Vec<(i64, String)> {
    let page = block_on(s.ledger(&customer(), Some(EntryKind::Expired), PageRequest::default())).unwrap();
    page.items.into_iter().map(|e| (e.amount, e.reference)).collect()
}

#[test]
fn given_a_lot_of_a_mission_whose_points_expire_when_issued_then_it_expires_that_long_after() {
    let s = service(Gifts::issuing());
    let before = Utc::now();
    let item = earn_expiring(&s, 10, DAY);
    let at = item.expires_at.expect("expires");
    assert!(at >= before + DAY && at <= Utc::now() + DAY, "{at}");
    assert_eq!(earn(&s, 10).expires_at, None, "default: never");
}

#[test]
fn given_a_partly_spent_lot_when_its_expiry_comes_then_what_is_left_expires_once() {
    let s = service(Gifts::issuing());
    let item = earn_expiring(&s, 100, DAY);
    redeem(&s, "coffee", "c-1").unwrap();
    assert!(block_on(s.expire_due(Utc::now(), 100)).unwrap().is_empty(), "not yet");
    let later = Utc::now() + DAY + Duration::from_secs(1);
    let expired = block_on(s.expire_due(later, 100)).unwrap();
    assert_eq!(
        expired.iter().map(|e| (e.kind, e.amount, e.balance_after)).collect::<Vec<_>>(),
        vec![(EntryKind::Expired, -90, 0)]
    );
    assert_eq!(expired[0].actor, "wallet");
    assert_eq!((lot(&s, &item).remaining, balance(&s)), (0, 0));
    assert!(block_on(s.expire_due(later, 100)).unwrap().is_empty(), "once");
    assert_eq!(expired_entries(&s), vec![(-90, format!("reward:{}", item.reward_id))]);
}

#[test]
fn given_lots_with_expiries_when_spending_then_the_soonest_pays_first_and_never_expiring_ones_last() {
    let s = service(Gifts::issuing());
    let never = earn(&s, 10);
    let late = earn_expiring(&s, 10, DAY * 30);
    let soon = earn_expiring(&s, 10, DAY);
    let spend = redeem(&s, "coffee", "c-1").unwrap();
    assert_eq!(spend.draws.iter().map(|d| d.reward_id).collect::<Vec<_>>(), vec![soon.reward_id]);
    let spend = redeem(&s, "coffee", "c-2").unwrap();
    assert_eq!(spend.draws.iter().map(|d| d.reward_id).collect::<Vec<_>>(), vec![late.reward_id]);
    assert_eq!(lot(&s, &never).remaining, 10);
}

#[test]
fn given_a_lot_whose_expiry_came_but_was_not_written_yet_when_spending_then_it_does_not_pay() {
    let s = service(Gifts::issuing());
    let item = earn_expiring(&s, 10, DAY);
    expire_now(&s, &item);
    let refused = redeem(&s, "coffee", "c-1").unwrap_err();
    assert!(refused.to_string().contains("not enough points"), "{refused}");
    assert_eq!(*s.gifts.calls.lock().unwrap(), 0, "no gift asked for");
}

#[test]
fn given_a_spent_lot_when_refunded_then_its_points_come_back_with_their_original_expiry() {
    let s = service(Gifts::issuing());
    let item = earn_expiring(&s, 10, DAY);
    let spend = redeem(&s, "coffee", "c-1").unwrap();
    let cmd = RefundGift::new(&spend.gift_id.to_string(), "complaint", "r-1", "admin-1").unwrap();
    block_on(s.refund(cmd, &RequestContext::default())).unwrap();
    let back = lot(&s, &item);
    assert_eq!((back.remaining, back.expires_at), (10, item.expires_at));
    let next = block_on(s.wallet(&customer(), PageRequest::default())).unwrap().next_expiry.unwrap();
    assert_eq!((next.points, Some(next.at)), (10, item.expires_at));
}

#[test]
fn given_a_lot_expired_after_its_spend_when_refunded_then_its_points_expire_at_once_and_are_never_spent() {
    let s = service(Gifts::issuing());
    let item = earn_expiring(&s, 10, DAY);
    let spend = redeem(&s, "coffee", "c-1").unwrap();
    expire_now(&s, &item);
    let cmd = RefundGift::new(&spend.gift_id.to_string(), "complaint", "r-1", "admin-1").unwrap();
    let refund = block_on(s.refund(cmd, &RequestContext::default())).unwrap();
    assert_eq!(refund.balance_after, 10, "the REFUNDED entry...");
    assert_eq!(expired_entries(&s), vec![(-10, format!("reward:{}", item.reward_id))], "...then EXPIRED");
    assert_eq!((balance(&s), lot(&s, &item).remaining), (0, 0));
}

#[test]
fn given_a_customer_busy_spending_when_the_expiry_runs_then_it_waits_for_the_next_run() {
    let s = service(Gifts::issuing());
    let item = earn_expiring(&s, 10, DAY);
    expire_now(&s, &item);
    let busy = new_id();
    assert!(block_on(s.repo.take_lease(&customer(), busy, Duration::from_secs(30))).unwrap());
    assert!(block_on(s.expire_due(Utc::now(), 100)).unwrap().is_empty());
    block_on(s.repo.release_lease(&customer(), busy)).unwrap();
    assert_eq!(block_on(s.expire_due(Utc::now(), 100)).unwrap().len(), 1);
    assert_eq!(balance(&s), 0);
}

#[test]
fn given_a_wallet_when_read_then_it_shows_what_expires_next_and_when() {
    let s = service(Gifts::issuing());
    earn(&s, 100);
    assert_eq!(block_on(s.wallet(&customer(), PageRequest::default())).unwrap().next_expiry, None);
    let soon = earn_expiring(&s, 40, DAY);
    earn_expiring(&s, 5, DAY * 9);
    let next = block_on(s.wallet(&customer(), PageRequest::default())).unwrap().next_expiry.unwrap();
    assert_eq!((next.points, Some(next.at)), (40, soon.expires_at));
    assert_eq!(block_on(s.repo.outstanding()).unwrap(), 145);
}

#[test]
fn given_points_expiring_within_the_notice_when_noticed_then_each_customer_is_told_once_per_date() {
    let s = service(Gifts::issuing());
    let a = earn_expiring(&s, 10, DAY * 3);
    earn_expiring(&s, 30, DAY * 3);
    earn_expiring(&s, 5, DAY * 30);
    earn(&s, 100);
    let week = DAY * 7;
    let told = block_on(s.notify_expiring(Utc::now(), week, 100)).unwrap();
    assert_eq!(told.len(), 1, "{told:?}");
    assert_eq!((told[0].points, told[0].date), (40, a.expires_at.unwrap().date_naive()));
    assert!(block_on(s.notify_expiring(Utc::now(), week, 100)).unwrap().is_empty(), "once per customer and date");
    let published = s
        .repo
        .outbox
        .lock()
        .unwrap()
        .iter()
        .filter(|e| matches!(e.event, crate::model::WalletEvent::PointsExpiring(_)))
        .count();
    assert_eq!(published, 1);
}
