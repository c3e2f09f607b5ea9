use std::collections::HashSet;

use futures::executor::block_on;
use kernel::new_id;

use super::*;
use crate::model::{ItemStatus, WalletEvent};

mod corrections;
mod expiry;
mod fakes;

use fakes::{Gifts, Memory};

type Service = WalletService<Memory, Gifts>;

fn service(gifts: Gifts) -> Service {
    WalletService::new(Memory::default(), gifts, |_| Box::pin(async {}))
}

fn customer() -> CustomerId {
    CustomerId::new("c-11").unwrap()
}

/// Issues a reward of `points` to c-11 as the policy does.
fn earn(s: &Service, points: i64) -> WalletItem {
    let fact = RewardAllocated {
        reward_id: new_id(),
        mission_id: new_id(),
        customer_id: customer(),
        points,
        points_expire_after: None,
    };
    let meta = EventMeta::first(fact.mission_id, "req", customer(), Utc::now());
    block_on(s.on_reward_allocated(Inbound { consumer: "wallet-issue", event_id: meta.event_id }, &meta, fact.clone()))
        .unwrap();
    block_on(s.repo.get(fact.reward_id)).unwrap().unwrap()
}

fn with_item(gifts: Gifts) -> (Service, WalletItem) {
    let s = service(gifts);
    let item = earn(&s, 10);
    (s, item)
}

fn cmd(item: &WalletItem, request: &str) -> ExchangeReward {
    ExchangeReward::new("c-11", &item.reward_id.to_string(), "coffee", request).unwrap()
}

fn redeem(s: &Service, gift: &str, request: &str) -> Result<Spend, WalletError> {
    block_on(s.redeem(SpendPoints::redeem("c-11", gift, request).unwrap(), &RequestContext::default()))
}

fn balance(s: &Service) -> i64 {
    let balance = block_on(s.repo.account(&customer())).unwrap().balance;
    assert_eq!(balance, s.repo.sum_of_entries(&customer()), "the balance is the sum of the entries");
    balance
}

fn exchanged_events(s: &Service) -> usize {
    s.repo.outbox.lock().unwrap().iter().filter(|e| matches!(e.event, WalletEvent::Exchanged { .. })).count()
}

#[test]
fn given_five_rewards_of_ten_when_a_movie_ticket_is_redeemed_then_all_five_pay_and_are_exchanged() {
    let s = service(Gifts::issuing());
    let items: Vec<_> = (0..5).map(|_| earn(&s, 10)).collect();
    let spend = redeem(&s, "movie-ticket", "m-1").unwrap();
    assert_eq!((spend.cost, spend.balance_after, spend.draws.len()), (50, 0, 5));
    for item in &items {
        let now = block_on(s.repo.get(item.reward_id)).unwrap().unwrap();
        assert_eq!((now.status, now.remaining, now.gift_id), (ItemStatus::Exchanged, 0, Some(spend.gift_id)));
    }
    assert_eq!(balance(&s), 0);
    assert_eq!(exchanged_events(&s), 5);
    let spent = block_on(s.ledger(&customer(), Some(EntryKind::Spent), PageRequest::default())).unwrap().items;
    assert_eq!(spent.iter().map(|e| (e.amount, e.balance_after)).collect::<Vec<_>>(), vec![(-50, 0)]);
    assert_eq!(spent[0].reference, format!("gift:{}", spend.gift_id));
    assert_eq!(*s.gifts.calls.lock().unwrap(), 1);
}

#[test]
fn given_a_reward_of_a_hundred_when_exchanged_for_a_coffee_then_ninety_stay_in_the_balance_and_in_the_reward() {
    let s = service(Gifts::issuing());
    let item = earn(&s, 100);
    let (after, gift) = block_on(s.exchange(cmd(&item, "x-1"), &RequestContext::default())).unwrap();
    assert_eq!((after.status, after.remaining, after.gift_id), (ItemStatus::Issued, 90, None));
    assert_eq!(balance(&s), 90);
    assert_eq!(exchanged_events(&s), 0, "not exchanged: partly spent");
    // the reward can pay again, and its gift is not the first one again
    let (after, second) = block_on(s.exchange(cmd(&item, "x-2"), &RequestContext::default())).unwrap();
    assert_ne!(second, gift);
    assert_eq!((after.remaining, balance(&s)), (80, 80));
}

#[test]
fn given_a_named_reward_when_exchanging_then_it_pays_first_and_the_oldest_others_pay_the_rest() {
    let s = service(Gifts::issuing());
    let oldest = earn(&s, 30);
    let middle = earn(&s, 30);
    let named = earn(&s, 30);
    let ticket = ExchangeReward::new("c-11", &named.reward_id.to_string(), "movie-ticket", "").unwrap();
    let (after, gift) = block_on(s.exchange(ticket, &RequestContext::default())).unwrap();
    assert_eq!((after.status, after.gift_id), (ItemStatus::Exchanged, Some(gift)));
    let left = |i: &WalletItem| block_on(s.repo.get(i.reward_id)).unwrap().unwrap().remaining;
    assert_eq!((left(&named), left(&oldest), left(&middle)), (0, 10, 30));
    assert_eq!(balance(&s), 40);
    assert_eq!(
        s.gifts.issued.lock().unwrap().keys().copied().collect::<Vec<_>>(),
        vec![named.reward_id],
        "keyed by it"
    );
}

#[test]
fn given_a_short_balance_when_redeeming_then_it_is_refused_with_both_figures_and_the_gift_service_is_not_asked() {
    let s = service(Gifts::issuing());
    earn(&s, 10);
    earn(&s, 10);
    match redeem(&s, "movie-ticket", "m-1") {
        Err(WalletError::Refused(ExchangeRefusal::NotEnoughPoints(n))) => {
            assert_eq!((n.cost, n.balance), (50, 20));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!((balance(&s), *s.gifts.calls.lock().unwrap()), (20, 0));
    assert!(s.repo.leases.lock().unwrap().is_empty(), "the lease is given back");
}

#[test]
fn given_thirty_points_when_five_coffees_are_redeemed_at_once_then_three_are_had_and_the_balance_is_zero() {
    let s = service(Gifts::issuing());
    for _ in 0..3 {
        earn(&s, 10);
    }
    let ctx = RequestContext::default();
    let cmds: Vec<_> = (0..5).map(|i| SpendPoints::redeem("c-11", "coffee", &format!("r-{i}")).unwrap()).collect();
    let all = block_on(futures::future::join_all(cmds.into_iter().map(|c| s.redeem(c, &ctx))));
    let refused =
        all.iter().filter(|r| matches!(r, Err(WalletError::Refused(ExchangeRefusal::NotEnoughPoints(_))))).count();
    assert_eq!((all.iter().filter(|r| r.is_ok()).count(), refused), (3, 2));
    assert_eq!(balance(&s), 0);
    assert_eq!(s.gifts.issued.lock().unwrap().len(), 3);
}

#[test]
fn given_a_redeemed_gift_the_same_request_gets_the_same_answer_and_other_parameters_are_refused() {
    let s = service(Gifts::issuing());
    earn(&s, 100);
    let first = redeem(&s, "coffee", "r-1").unwrap();
    assert_eq!(redeem(&s, "coffee", "r-1").unwrap(), first);
    assert!(matches!(redeem(&s, "movie-ticket", "r-1"), Err(WalletError::Refused(ExchangeRefusal::RequestReused(_)))));
    assert_eq!((balance(&s), *s.gifts.calls.lock().unwrap()), (90, 1));
}

#[test]
fn given_one_request_sent_five_times_at_once_then_one_spend_answers_all_and_the_lease_is_given_back() {
    let s = service(Gifts::issuing());
    earn(&s, 100);
    let ctx = RequestContext::default();
    let cmds: Vec<_> = (0..5).map(|_| SpendPoints::redeem("c-11", "coffee", "once").unwrap()).collect();
    let all = block_on(futures::future::join_all(cmds.into_iter().map(|c| s.redeem(c, &ctx))));
    let gifts: HashSet<_> = all.into_iter().map(|r| r.expect("the same answer").gift_id).collect();
    assert_eq!((gifts.len(), balance(&s), *s.gifts.calls.lock().unwrap()), (1, 90, 1));
    assert!(s.repo.leases.lock().unwrap().is_empty(), "the lease is not left behind");
    redeem(&s, "coffee", "next").expect("the next spend is not kept waiting");
}

#[test]
fn given_an_issued_reward_when_the_gift_service_issues_a_gift_then_the_item_is_exchanged_with_one_event() {
    let (s, item) = with_item(Gifts::issuing());
    let (exchanged, gift_id) = block_on(s.exchange(cmd(&item, "x1"), &RequestContext::default())).unwrap();
    assert_eq!((exchanged.status, exchanged.gift_id), (ItemStatus::Exchanged, Some(gift_id)));
    let outbox = s.repo.outbox.lock().unwrap();
    assert!(matches!(outbox.last().unwrap().event, WalletEvent::Exchanged { gift_id: g, .. } if g == gift_id));
    assert_eq!(outbox.len(), 2, "issued + exchanged");
}

#[test]
fn given_an_exchanged_reward_the_same_request_gets_the_same_answer_and_another_is_refused() {
    let (s, item) = with_item(Gifts::issuing());
    let (_, gift) = block_on(s.exchange(cmd(&item, "x1"), &RequestContext::default())).unwrap();
    let (_, again) = block_on(s.exchange(cmd(&item, "x1"), &RequestContext::default())).unwrap();
    assert_eq!(again, gift);
    let err = block_on(s.exchange(cmd(&item, "x2"), &RequestContext::default())).unwrap_err();
    assert!(matches!(err, WalletError::Refused(ExchangeRefusal::AlreadyExchanged)), "{err:?}");
    assert_eq!(*s.gifts.calls.lock().unwrap(), 1, "neither asked the gift service again");
}

#[test]
fn given_a_request_id_that_exchanged_a_reward_when_it_comes_with_another_reward_or_gift_then_it_is_refused() {
    let (s, first) = with_item(Gifts::issuing());
    let second = earn(&s, 10);
    let (_, gift) = block_on(s.exchange(cmd(&first, "x1"), &RequestContext::default())).unwrap();
    let outbox = s.repo.outbox.lock().unwrap().len();
    let another_reward = block_on(s.exchange(cmd(&second, "x1"), &RequestContext::default())).unwrap_err();
    let another_gift = ExchangeReward { gift_code: "movie-ticket".into(), ..cmd(&first, "x1") };
    let another_gift = block_on(s.exchange(another_gift, &RequestContext::default())).unwrap_err();
    for err in [another_reward, another_gift] {
        assert!(matches!(err, WalletError::Refused(ExchangeRefusal::RequestReused(_))), "{err:?}");
        assert_eq!(err.to_string(), "request id already used for another request");
    }
    assert_eq!(block_on(s.repo.get(second.reward_id)).unwrap().unwrap().status, ItemStatus::Issued);
    assert_eq!(s.repo.outbox.lock().unwrap().len(), outbox, "nothing written");
    assert_eq!(*s.gifts.calls.lock().unwrap(), 1, "the gift service was not asked again");
    assert_eq!(block_on(s.exchange(cmd(&first, "x1"), &RequestContext::default())).unwrap().1, gift);
    block_on(s.exchange(cmd(&second, "x2"), &RequestContext::default())).unwrap();
}

#[test]
fn given_the_gift_service_is_down_when_spending_then_nothing_is_spent_nor_published() {
    let down = GiftCallError::Unavailable { retry_after: Duration::from_secs(7), reason: "open".into() };
    let (s, item) = with_item(Gifts::answering(Err(down)));
    let err = block_on(s.exchange(cmd(&item, ""), &RequestContext::default())).unwrap_err();
    assert!(matches!(err, WalletError::GiftUnavailable { retry_after, .. } if retry_after == Duration::from_secs(7)));
    assert!(matches!(redeem(&s, "coffee", "r-1"), Err(WalletError::GiftUnavailable { .. })));
    assert_eq!(block_on(s.repo.get(item.reward_id)).unwrap().unwrap().status, ItemStatus::Issued);
    assert_eq!(s.repo.outbox.lock().unwrap().len(), 1, "only the issue event");
    assert_eq!(balance(&s), 10);
    assert!(s.repo.spends.lock().unwrap().is_empty() && s.repo.leases.lock().unwrap().is_empty());
}

#[test]
fn given_the_gift_service_refuses_then_nothing_changes() {
    let out_of_stock = GiftRefusal {
        message: "coffee is out of stock".into(),
        reason: Some(("GIFT_OUT_OF_STOCK".into(), [("gift_code".to_owned(), "coffee".to_owned())].into())),
    };
    let (s, item) = with_item(Gifts::answering(Err(GiftCallError::Refused(out_of_stock.clone()))));
    match block_on(s.exchange(cmd(&item, ""), &RequestContext::default())) {
        Err(WalletError::GiftRefused(r)) => assert_eq!(r, out_of_stock, "passed on as the gift service said it"),
        other => panic!("{other:?}"),
    }
    assert_eq!(block_on(s.repo.get(item.reward_id)).unwrap().unwrap().status, ItemStatus::Issued);
    assert_eq!(balance(&s), 10);
}

#[test]
fn an_unknown_gift_is_invalid_before_anything_is_spent() {
    let (s, _) = with_item(Gifts::issuing());
    assert!(matches!(redeem(&s, "yacht", ""), Err(WalletError::GiftInvalid(m)) if m.starts_with("gift_code")));
    assert_eq!((balance(&s), *s.gifts.calls.lock().unwrap()), (10, 0));
}

#[test]
fn someone_elses_or_an_unknown_reward_is_not_found() {
    let (s, item) = with_item(Gifts::issuing());
    let other = ExchangeReward::new("c-12", &item.reward_id.to_string(), "coffee", "").unwrap();
    assert!(matches!(
        block_on(s.exchange(other, &RequestContext::default())),
        Err(WalletError::Refused(ExchangeRefusal::NotFound))
    ));
    let unknown = ExchangeReward::new("c-11", &new_id().to_string(), "coffee", "").unwrap();
    assert!(matches!(
        block_on(s.exchange(unknown, &RequestContext::default())),
        Err(WalletError::Refused(ExchangeRefusal::NotFound))
    ));
    assert_eq!(*s.gifts.calls.lock().unwrap(), 0);
}

#[test]
fn given_an_allocated_reward_delivered_twice_when_handled_then_the_wallet_holds_it_once_with_one_earned_entry() {
    let s = service(Gifts::issuing());
    let fact = RewardAllocated {
        reward_id: new_id(),
        mission_id: new_id(),
        customer_id: customer(),
        points: 10,
        points_expire_after: None,
    };
    let meta = EventMeta::first(fact.mission_id, "req", customer(), Utc::now());
    let inbound = Inbound { consumer: "wallet-issue", event_id: meta.event_id };
    block_on(s.on_reward_allocated(inbound, &meta, fact.clone())).unwrap();
    block_on(s.on_reward_allocated(inbound, &meta, fact.clone())).unwrap();
    let wallet = block_on(s.wallet(&customer(), PageRequest::default())).unwrap();
    assert_eq!(wallet.items.items.len(), 1);
    assert_eq!(wallet.items.items[0].status, ItemStatus::Issued);
    assert_eq!((wallet.available_points, wallet.balance), (10, 10));
    let entries = block_on(s.ledger(&customer(), None, PageRequest::default())).unwrap().items;
    assert_eq!(entries.len(), 1);
    assert_eq!((entries[0].kind, entries[0].amount, entries[0].seq), (EntryKind::Earned, 10, 1));
    assert_eq!(entries[0].reference, format!("reward:{}", fact.reward_id));
    assert_eq!(s.repo.outbox.lock().unwrap().len(), 1);
}

#[test]
fn an_unknown_customer_has_an_empty_wallet() {
    let s = service(Gifts::issuing());
    let wallet = block_on(s.wallet(&CustomerId::new("nobody").unwrap(), PageRequest::default())).unwrap();
    assert!(wallet.items.items.is_empty());
    assert_eq!(wallet.balance, 0);
}
