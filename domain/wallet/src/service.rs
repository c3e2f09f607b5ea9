//! The wallet application service: the issue policy, the exchange, queries.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use kernel::paging::{Page, PageRequest};
use kernel::{
    CONFLICT_RETRIES, CustomerId, Envelope, EventMeta, Inbound, RequestContext, RequestReused, StoreError,
    ValidationError, retry_on_conflict,
};
use uuid::Uuid;

use crate::model::{ExchangeDecision, ExchangeRefusal, ExchangeReward, Wallet, WalletItem};
use crate::ports::{GiftCallError, GiftIssuer, GiftRefusal, GiftRequest, WalletRepository};

#[derive(Debug, thiserror::Error)]
pub enum WalletError {
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error(transparent)]
    Refused(#[from] ExchangeRefusal),
    /// The gift service found the request invalid (e.g. `gift_code: unknown gift`).
    #[error("{0}")]
    GiftInvalid(String),
    /// The gift service refused the request: its message and reason, passed on.
    #[error(transparent)]
    GiftRefused(GiftRefusal),
    /// The gift service cannot answer now; nothing changed.
    #[error("gift service unavailable: {reason}")]
    GiftUnavailable { retry_after: Duration, reason: String },
    #[error("unavailable: {0}")]
    Unavailable(String),
}

impl From<StoreError> for WalletError {
    fn from(e: StoreError) -> Self {
        Self::Unavailable(e.to_string())
    }
}

impl From<GiftCallError> for WalletError {
    fn from(e: GiftCallError) -> Self {
        match e {
            GiftCallError::Invalid { field, reason } => Self::GiftInvalid(format!("{field}: {reason}")),
            GiftCallError::Refused(why) => Self::GiftRefused(why),
            GiftCallError::Unavailable { retry_after, reason } => Self::GiftUnavailable { retry_after, reason },
        }
    }
}

/// What the reward context told us about an allocation.
#[derive(Debug, Clone)]
pub struct RewardAllocated {
    pub reward_id: Uuid,
    pub mission_id: Uuid,
    pub customer_id: CustomerId,
    pub points: i64,
}

/// One exchange at a time per reward in this process: concurrent requests for the same
/// reward wait for the first and then see its outcome, instead of all calling the gift
/// service. (Across replicas, the version check and the gift service's idempotency on
/// the reward keep it to one gift.)
#[derive(Default)]
struct Singleflight {
    locks: Mutex<HashMap<Uuid, Arc<futures::lock::Mutex<()>>>>,
}

impl Singleflight {
    fn slot(&self, key: Uuid) -> Arc<futures::lock::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        locks.retain(|_, l| Arc::strong_count(l) > 1);
        locks.entry(key).or_default().clone()
    }
}

pub struct WalletService<R, G> {
    repo: R,
    gifts: G,
    exchanges: Singleflight,
}

impl<R: WalletRepository, G: GiftIssuer> WalletService<R, G> {
    pub fn new(repo: R, gifts: G) -> Self {
        Self { repo, gifts, exchanges: Singleflight::default() }
    }

    pub async fn wallet(&self, customer: &CustomerId, first: PageRequest) -> Result<Wallet, WalletError> {
        let items = self.repo.list_by_customer(customer, PageRequest { before: None, ..first }).await?;
        let available_points = self.repo.available_points(customer).await?;
        Ok(Wallet { customer_id: customer.clone(), available_points, items })
    }

    /// A page of the customer's items, newest first.
    pub async fn items(&self, customer: &CustomerId, page: PageRequest) -> Result<Page<WalletItem>, WalletError> {
        Ok(self.repo.list_by_customer(customer, page).await?)
    }

    /// Policy: a reward was allocated -> issue it into the customer's wallet (once).
    ///
    /// # Errors
    /// `Unavailable` when the store is down (retry later).
    pub async fn on_reward_allocated(
        &self,
        inbound: Inbound,
        cause: &EventMeta,
        fact: RewardAllocated,
    ) -> Result<(), WalletError> {
        let (item, event) = WalletItem::issue(fact.reward_id, fact.mission_id, fact.customer_id, fact.points);
        let envelope = Envelope { meta: cause.caused(Utc::now()), event };
        match self.repo.insert(&item, vec![envelope], inbound).await {
            Ok(()) | Err(StoreError::Duplicate) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Exchanges a reward for a gift: checks the item, calls the gift service, and only
    /// when it answered with a gift commits EXCHANGED together with `RewardExchanged`.
    /// On any failure the item stays ISSUED and nothing is published. A retry after a
    /// failed commit asks the gift service again and gets the same gift.
    ///
    /// A request id names one exchange: the same id again with another reward or gift
    /// is refused before the gift service is asked, and nothing is written.
    ///
    /// # Errors
    /// `Refused` (not found, already exchanged, request id reused), `GiftRefused`,
    /// `GiftUnavailable` (with when to retry), `Unavailable` (our store).
    pub async fn exchange(&self, cmd: ExchangeReward, ctx: &RequestContext) -> Result<(WalletItem, Uuid), WalletError> {
        let slot = self.exchanges.slot(cmd.reward_id);
        let _one_at_a_time = slot.lock().await;
        let cmd = &cmd;
        retry_on_conflict(CONFLICT_RETRIES, move || async move {
            let mut item = self.repo.get(cmd.reward_id).await?.ok_or(ExchangeRefusal::NotFound)?;
            if item.decide_exchange(&cmd)? == ExchangeDecision::AlreadyDone {
                let gift = item.gift_id.ok_or(WalletError::Unavailable("exchanged item without gift".into()))?;
                return Ok(Some((item, gift)));
            }
            self.check_request_unused(&cmd).await?;
            let request = GiftRequest {
                customer_id: item.customer_id.clone(),
                reward_id: item.reward_id,
                mission_id: item.mission_id,
                gift_code: cmd.gift_code.clone(),
                points: item.points,
            };
            let gift_id = self.gifts.issue_gift(request, ctx).await?;
            let event = item.exchange(gift_id, &cmd)?;
            let mut meta = EventMeta::first(item.mission_id, &cmd.request_id, item.customer_id.clone(), Utc::now());
            meta.traceparent.clone_from(&ctx.traceparent);
            match self.repo.update(&item, vec![Envelope { meta, event }]).await {
                Ok(()) => {
                    item.version += 1;
                    Ok(Some((item, gift_id)))
                }
                // Another replica committed first: look again (it will say what happened).
                Err(StoreError::Conflict) => Ok(None),
                // A concurrent exchange of another reward took the request id first.
                Err(StoreError::Duplicate) => Err(ExchangeRefusal::from(RequestReused).into()),
                Err(e) => Err(e.into()),
            }
        })
        .await
    }

    /// Refuses a request id that already exchanged another of the customer's rewards.
    async fn check_request_unused(&self, cmd: &ExchangeReward) -> Result<(), WalletError> {
        if cmd.request_id.is_empty() {
            return Ok(());
        }
        match self.repo.find_by_exchange_request(&cmd.customer_id, &cmd.request_id).await? {
            Some(other) if other.reward_id != cmd.reward_id => Err(ExchangeRefusal::from(RequestReused).into()),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};
    use std::sync::Mutex;

    use futures::executor::block_on;
    use kernel::new_id;

    use super::*;
    use crate::model::{ItemStatus, WalletEvent};

    #[derive(Default)]
    struct Memory {
        items: Mutex<HashMap<Uuid, WalletItem>>,
        inbox: Mutex<HashSet<Uuid>>,
        outbox: Mutex<Vec<Envelope<WalletEvent>>>,
    }

    impl WalletRepository for Memory {
        async fn get(&self, id: Uuid) -> Result<Option<WalletItem>, StoreError> {
            Ok(self.items.lock().unwrap().get(&id).cloned())
        }
        async fn list_by_customer(&self, c: &CustomerId, page: PageRequest) -> Result<Page<WalletItem>, StoreError> {
            let mut all: Vec<_> =
                self.items.lock().unwrap().values().filter(|i| &i.customer_id == c).cloned().collect();
            all.sort_by_key(|i| std::cmp::Reverse(i.reward_id));
            all.retain(|i| page.before.is_none_or(|b| i.reward_id < b));
            all.truncate(page.size + 1);
            Ok(Page::from_probe(all, page, |i| i.reward_id))
        }
        async fn available_points(&self, c: &CustomerId) -> Result<i64, StoreError> {
            let items = self.items.lock().unwrap();
            Ok(crate::model::available_points(items.values().filter(|i| &i.customer_id == c)))
        }
        async fn find_by_exchange_request(&self, c: &CustomerId, r: &str) -> Result<Option<WalletItem>, StoreError> {
            let items = self.items.lock().unwrap();
            Ok(items.values().find(|i| &i.customer_id == c && i.exchange_request_id.as_deref() == Some(r)).cloned())
        }
        async fn update(&self, item: &WalletItem, events: Vec<Envelope<WalletEvent>>) -> Result<(), StoreError> {
            if let Some(r) = &item.exchange_request_id
                && let Some(other) = self.find_by_exchange_request(&item.customer_id, r).await?
                && other.reward_id != item.reward_id
            {
                return Err(StoreError::Duplicate);
            }
            let mut items = self.items.lock().unwrap();
            let stored = items.get_mut(&item.reward_id).ok_or(StoreError::Conflict)?;
            if stored.version != item.version {
                return Err(StoreError::Conflict);
            }
            *stored = WalletItem { version: item.version + 1, ..item.clone() };
            self.outbox.lock().unwrap().extend(events);
            Ok(())
        }
        async fn insert(
            &self,
            item: &WalletItem,
            events: Vec<Envelope<WalletEvent>>,
            inbound: Inbound,
        ) -> Result<(), StoreError> {
            if self.items.lock().unwrap().contains_key(&item.reward_id)
                || !self.inbox.lock().unwrap().insert(inbound.event_id)
            {
                return Err(StoreError::Duplicate);
            }
            self.items.lock().unwrap().insert(item.reward_id, item.clone());
            self.outbox.lock().unwrap().extend(events);
            Ok(())
        }
    }

    /// A gift service that answers what the test says, and counts calls.
    struct Gifts {
        answer: Mutex<Result<Uuid, GiftCallError>>,
        calls: Mutex<usize>,
    }

    impl Gifts {
        fn answering(answer: Result<Uuid, GiftCallError>) -> Self {
            Self { answer: Mutex::new(answer), calls: Mutex::new(0) }
        }
    }

    impl GiftIssuer for Gifts {
        async fn issue_gift(&self, _: GiftRequest, _: &RequestContext) -> Result<Uuid, GiftCallError> {
            *self.calls.lock().unwrap() += 1;
            self.answer.lock().unwrap().clone()
        }
    }

    fn with_item(gifts: Gifts) -> (WalletService<Memory, Gifts>, WalletItem) {
        let s = WalletService::new(Memory::default(), gifts);
        let customer_id = CustomerId::new("c-11").unwrap();
        let fact =
            RewardAllocated { reward_id: new_id(), mission_id: new_id(), customer_id: customer_id.clone(), points: 10 };
        let meta = EventMeta::first(fact.mission_id, "req", customer_id, Utc::now());
        block_on(s.on_reward_allocated(
            Inbound { consumer: "wallet-issue", event_id: meta.event_id },
            &meta,
            fact.clone(),
        ))
        .unwrap();
        let item = block_on(s.repo.get(fact.reward_id)).unwrap().unwrap();
        (s, item)
    }

    fn cmd(item: &WalletItem, request: &str) -> ExchangeReward {
        ExchangeReward::new("c-11", &item.reward_id.to_string(), "coffee", request).unwrap()
    }

    #[test]
    fn given_an_issued_reward_when_the_gift_service_issues_a_gift_then_the_item_is_exchanged_with_one_event() {
        let gift = new_id();
        let (s, item) = with_item(Gifts::answering(Ok(gift)));
        let (exchanged, gift_id) = block_on(s.exchange(cmd(&item, "x1"), &RequestContext::default())).unwrap();
        assert_eq!((exchanged.status, gift_id), (ItemStatus::Exchanged, gift));
        let outbox = s.repo.outbox.lock().unwrap();
        assert!(matches!(outbox.last().unwrap().event, WalletEvent::Exchanged { gift_id, .. } if gift_id == gift));
        assert_eq!(outbox.len(), 2, "issued + exchanged");
    }

    #[test]
    fn given_an_exchanged_reward_the_same_request_gets_the_same_answer_and_another_is_refused() {
        let gift = new_id();
        let (s, item) = with_item(Gifts::answering(Ok(gift)));
        block_on(s.exchange(cmd(&item, "x1"), &RequestContext::default())).unwrap();
        let (_, again) = block_on(s.exchange(cmd(&item, "x1"), &RequestContext::default())).unwrap();
        assert_eq!(again, gift);
        let err = block_on(s.exchange(cmd(&item, "x2"), &RequestContext::default())).unwrap_err();
        assert!(matches!(err, WalletError::Refused(ExchangeRefusal::AlreadyExchanged)));
        assert_eq!(*s.gifts.calls.lock().unwrap(), 1, "neither asked the gift service again");
    }

    #[test]
    fn given_a_request_id_that_exchanged_a_reward_when_it_comes_with_another_reward_or_gift_then_it_is_refused() {
        let gift = new_id();
        let (s, first) = with_item(Gifts::answering(Ok(gift)));
        let second = WalletItem { reward_id: new_id(), ..first.clone() };
        s.repo.items.lock().unwrap().insert(second.reward_id, second.clone());
        block_on(s.exchange(cmd(&first, "x1"), &RequestContext::default())).unwrap();
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
        // the same request still gets its first answer; a new id exchanges the other reward
        assert_eq!(block_on(s.exchange(cmd(&first, "x1"), &RequestContext::default())).unwrap().1, gift);
        block_on(s.exchange(cmd(&second, "x2"), &RequestContext::default())).unwrap();
    }

    #[test]
    fn given_the_gift_service_is_down_when_exchanging_then_the_item_stays_issued_and_nothing_is_published() {
        let down = GiftCallError::Unavailable { retry_after: Duration::from_secs(7), reason: "open".into() };
        let (s, item) = with_item(Gifts::answering(Err(down)));
        let err = block_on(s.exchange(cmd(&item, ""), &RequestContext::default())).unwrap_err();
        assert!(
            matches!(err, WalletError::GiftUnavailable { retry_after, .. } if retry_after == Duration::from_secs(7))
        );
        assert_eq!(block_on(s.repo.get(item.reward_id)).unwrap().unwrap().status, ItemStatus::Issued);
        assert_eq!(s.repo.outbox.lock().unwrap().len(), 1, "only the issue event");
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
    }

    #[test]
    fn someone_elses_or_an_unknown_reward_is_not_found() {
        let (s, item) = with_item(Gifts::answering(Ok(new_id())));
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
    fn given_an_allocated_reward_delivered_twice_when_handled_then_the_wallet_holds_it_once() {
        let s = WalletService::new(Memory::default(), Gifts::answering(Ok(new_id())));
        let customer_id = CustomerId::new("c-11").unwrap();
        let fact =
            RewardAllocated { reward_id: new_id(), mission_id: new_id(), customer_id: customer_id.clone(), points: 10 };
        let meta = EventMeta::first(fact.mission_id, "req", customer_id.clone(), Utc::now());
        let inbound = Inbound { consumer: "wallet-issue", event_id: meta.event_id };
        block_on(s.on_reward_allocated(inbound, &meta, fact.clone())).unwrap();
        block_on(s.on_reward_allocated(inbound, &meta, fact.clone())).unwrap();
        let wallet = block_on(s.wallet(&customer_id, PageRequest::default())).unwrap();
        assert_eq!(wallet.items.items.len(), 1);
        assert_eq!(wallet.items.items[0].status, ItemStatus::Issued);
        assert_eq!(wallet.available_points, 10);
        assert_eq!(s.repo.outbox.lock().unwrap().len(), 1);
    }

    #[test]
    fn an_unknown_customer_has_an_empty_wallet() {
        let s = WalletService::new(Memory::default(), Gifts::answering(Ok(new_id())));
        let wallet = block_on(s.wallet(&CustomerId::new("nobody").unwrap(), PageRequest::default())).unwrap();
        assert!(wallet.items.items.is_empty());
        assert_eq!(wallet.available_points, 0);
    }
}
