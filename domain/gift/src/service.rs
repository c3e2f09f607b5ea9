//! The gift application service.

use chrono::{DateTime, Utc};
use kernel::paging::{Page, PageRequest};
use kernel::{
    CONFLICT_RETRIES, CustomerId, Envelope, EventMeta, RequestContext, StoreError, new_id, retry_on_conflict,
};
use uuid::Uuid;

use crate::model::{Gift, GiftRefusal, GiftStatus, IssueGift};
use crate::ports::{GiftRepository, InsertError};
use crate::rules::{self, Catalog, GiftRule, History, Refusal};

#[derive(Debug, thiserror::Error)]
pub enum GiftError {
    #[error(transparent)]
    Refused(#[from] GiftRefusal),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("unavailable: {0}")]
    Unavailable(String),
}

impl From<StoreError> for GiftError {
    fn from(e: StoreError) -> Self {
        Self::Unavailable(e.to_string())
    }
}

/// How often an issue decides again after a concurrent one took its per-customer slot.
const SLOT_RETRIES: usize = 8;

/// A gift of the catalog with what is left of its stock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer<'a> {
    pub rule: &'a GiftRule,
    /// `None`: no stock limit.
    pub left: Option<u32>,
}

pub struct GiftService<R> {
    repo: R,
    catalog: Catalog,
}

impl<R: GiftRepository> GiftService<R> {
    pub fn new(repo: R, catalog: Catalog) -> Self {
        Self { repo, catalog }
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The catalog with what is left of each stock.
    ///
    /// # Errors
    /// `Unavailable` when the store is down.
    pub async fn offers(&self) -> Result<Vec<Offer<'_>>, GiftError> {
        let issued = self.repo.issued_from_stock().await?;
        Ok(self
            .catalog
            .gifts()
            .iter()
            .map(|rule| Offer {
                rule,
                left: rule.stock.map(|stock| stock.saturating_sub(issued.get(&rule.code).copied().unwrap_or(0))),
            })
            .collect())
    }

    async fn history(&self, cmd: &IssueGift, rule: &GiftRule, now: DateTime<Utc>) -> Result<History, StoreError> {
        let Some(limit) = rule.per_customer else { return Ok(History::default()) };
        let period = limit.period.period(self.catalog.schedule(), now);
        let in_period = self.repo.count_in_period(&cmd.customer_id, &cmd.code, &period.key).await?;
        Ok(History { in_period })
    }

    /// Issues the gift for a reward if the catalog's rules allow it; asking again for the
    /// same reward returns the same gift.
    ///
    /// Stock is a counter taken in the gift's own transaction, only while some is left, so
    /// concurrent exchanges never oversell it. A per-customer limit is a unique slot, as a
    /// mission's cap: the loser of a race decides again on a fresh count and is refused.
    ///
    /// # Errors
    /// `Refused` for an unknown gift, too few points, a reward already taken by another
    /// request, or a rule of the catalog (window, per-customer limit, out of stock).
    /// The request id of `ctx` is the cause of the `GiftIssued` event.
    pub async fn issue(&self, cmd: IssueGift, ctx: &RequestContext) -> Result<Gift, GiftError> {
        if let Some(existing) = self.repo.find_by_reward(cmd.reward_id).await? {
            // A cancelled gift is never handed out again.
            return if existing.answers(&cmd) && existing.status != GiftStatus::Cancelled {
                Ok(existing)
            } else {
                Err(GiftRefusal::RewardTaken.into())
            };
        }
        let rule = self.catalog.find(&cmd.code).map_err(GiftRefusal::from)?;
        Gift::check_points(&cmd, rule)?;
        let now = Utc::now();
        // One per customer (the common limit) tries its slot without reading first: the
        // unique slot says whether the customer already has one.
        let mut history = if rule.per_customer.is_none_or(|l| l.count == 1) {
            History::default()
        } else {
            self.history(&cmd, rule, now).await?
        };
        for _ in 0..SLOT_RETRIES {
            let decision = rules::decide(rule, self.catalog.schedule(), &history, now).map_err(GiftRefusal::from)?;
            let (gift, event) = Gift::issue(&cmd, rule, decision, new_id(), now)?;
            let mut meta =
                EventMeta::first(cmd.mission_id, ctx.request_id.as_deref().unwrap_or(""), cmd.customer_id.clone(), now);
            meta.traceparent.clone_from(&ctx.traceparent);
            match self.repo.insert(&gift, rule.stock.is_some(), vec![Envelope { meta, event }]).await {
                Ok(()) => return Ok(gift),
                Err(InsertError::OutOfStock) => {
                    return Err(GiftRefusal::Rule(Refusal::OutOfStock { code: cmd.code.clone() }).into());
                }
                // Someone issued it for this reward concurrently: answer as a retry would
                // be answered. Otherwise the slot was taken: count again and decide again.
                Err(InsertError::Store(StoreError::Duplicate)) => {
                    match self.repo.find_by_reward(cmd.reward_id).await? {
                        Some(existing) if existing.answers(&cmd) => return Ok(existing),
                        Some(_) => return Err(GiftRefusal::RewardTaken.into()),
                        None => history = self.history(&cmd, rule, now).await?,
                    }
                }
                Err(InsertError::Store(e)) => return Err(e.into()),
            }
        }
        Err(GiftError::Unavailable("too many concurrent exchanges of one gift by one customer".into()))
    }

    /// # Errors
    /// `NotFound` for an unknown gift.
    pub async fn get(&self, id: Uuid) -> Result<Gift, GiftError> {
        self.repo.get(id).await?.ok_or(GiftError::NotFound("gift"))
    }

    pub async fn list(&self, customer: &CustomerId, page: PageRequest) -> Result<Page<Gift>, GiftError> {
        Ok(self.repo.list_by_customer(customer, page).await?)
    }

    /// Uses a gift once; `by`, when given, must be its owner.
    ///
    /// # Errors
    /// `NotFound` for an unknown gift; `Refused(NotOwner)` for another customer's;
    /// `Refused(AlreadyUsed)`.
    pub async fn use_gift(&self, id: Uuid, by: Option<&CustomerId>, ctx: &RequestContext) -> Result<Gift, GiftError> {
        retry_on_conflict(CONFLICT_RETRIES, move || async move {
            let mut gift = self.get(id).await?;
            let event = gift.use_by(by, Utc::now())?;
            let mut meta = EventMeta::first(gift.mission_id, &id.to_string(), gift.customer_id.clone(), Utc::now());
            meta.traceparent.clone_from(&ctx.traceparent);
            match self.repo.update(&gift, vec![Envelope { meta, event }]).await {
                Ok(()) => Ok(Some(Gift { version: gift.version + 1, ..gift })),
                Err(StoreError::Conflict) => Ok(None),
                Err(e) => Err(e.into()),
            }
        })
        .await
    }

    /// Cancels an unused gift (the wallet refunds its points) and gives its unit back to
    /// the stock. Idempotent: a cancelled gift is answered as it is, so a refund that
    /// failed after the cancel can be completed by asking again.
    ///
    /// # Errors
    /// `NotFound` for an unknown gift; `Refused(AlreadyUsed)` for a used one.
    pub async fn cancel(&self, id: Uuid) -> Result<Gift, GiftError> {
        retry_on_conflict(CONFLICT_RETRIES, move || async move {
            let mut gift = self.get(id).await?;
            if !gift.cancel()? {
                return Ok(Some(gift));
            }
            match self.repo.cancel(&gift).await {
                Ok(()) => Ok(Some(Gift { version: gift.version + 1, ..gift })),
                Err(StoreError::Conflict) => Ok(None),
                Err(e) => Err(e.into()),
            }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use futures::executor::block_on;

    use super::*;
    use crate::model::{GiftCode, GiftEvent};
    use crate::rules::{Limit, LimitPeriod, Schedule};

    /// An in-memory repository, faithful to the port's contract: one gift per reward, one
    /// per (customer, gift, slot), stock counters taken only while some is left.
    #[derive(Default)]
    struct Memory {
        gifts: Mutex<HashMap<Uuid, Gift>>,
        outbox: Mutex<Vec<Envelope<GiftEvent>>>,
        /// (stock, issued) per stocked gift.
        stock: Mutex<HashMap<GiftCode, (u32, u32)>>,
    }

    impl Memory {
        fn stocked(catalog: &Catalog) -> Self {
            let m = Self::default();
            for g in catalog.gifts() {
                if let Some(stock) = g.stock {
                    m.stock.lock().unwrap().insert(g.code.clone(), (stock, 0));
                }
            }
            m
        }
    }

    impl GiftRepository for Memory {
        async fn get(&self, id: Uuid) -> Result<Option<Gift>, StoreError> {
            Ok(self.gifts.lock().unwrap().get(&id).cloned())
        }
        async fn find_by_reward(&self, r: Uuid) -> Result<Option<Gift>, StoreError> {
            Ok(self.gifts.lock().unwrap().values().find(|g| g.reward_id == r).cloned())
        }
        async fn list_by_customer(&self, c: &CustomerId, page: PageRequest) -> Result<Page<Gift>, StoreError> {
            let mut all: Vec<_> =
                self.gifts.lock().unwrap().values().filter(|g| &g.customer_id == c).cloned().collect();
            all.sort_by_key(|g| std::cmp::Reverse(g.id));
            all.retain(|g| page.before.is_none_or(|b| g.id < b));
            all.truncate(page.size + 1);
            Ok(Page::from_probe(all, page, |g| g.id))
        }
        async fn count_in_period(&self, c: &CustomerId, code: &GiftCode, period: &str) -> Result<u32, StoreError> {
            let prefix = format!("{period}#");
            Ok(self
                .gifts
                .lock()
                .unwrap()
                .values()
                .filter(|g| &g.customer_id == c && &g.code == code)
                .filter(|g| g.slot.as_deref().is_some_and(|s| s.starts_with(&prefix)))
                .count() as u32)
        }
        async fn issued_from_stock(&self) -> Result<HashMap<GiftCode, u32>, StoreError> {
            Ok(self.stock.lock().unwrap().iter().map(|(c, (_, issued))| (c.clone(), *issued)).collect())
        }
        async fn insert(
            &self,
            g: &Gift,
            from_stock: bool,
            events: Vec<Envelope<GiftEvent>>,
        ) -> Result<(), InsertError> {
            let mut gifts = self.gifts.lock().unwrap();
            let taken = gifts.values().any(|o| {
                o.reward_id == g.reward_id
                    || (o.customer_id == g.customer_id && o.code == g.code && o.slot.is_some() && o.slot == g.slot)
            });
            if taken {
                return Err(StoreError::Duplicate.into());
            }
            if from_stock {
                let mut stock = self.stock.lock().unwrap();
                match stock.get_mut(&g.code) {
                    Some((total, issued)) if *issued < *total => *issued += 1,
                    _ => return Err(InsertError::OutOfStock),
                }
            }
            gifts.insert(g.id, g.clone());
            self.outbox.lock().unwrap().extend(events);
            Ok(())
        }
        async fn update(&self, g: &Gift, events: Vec<Envelope<GiftEvent>>) -> Result<(), StoreError> {
            let mut gifts = self.gifts.lock().unwrap();
            let stored = gifts.get_mut(&g.id).ok_or(StoreError::Conflict)?;
            if stored.version != g.version {
                return Err(StoreError::Conflict);
            }
            *stored = Gift { version: g.version + 1, ..g.clone() };
            self.outbox.lock().unwrap().extend(events);
            Ok(())
        }
        async fn cancel(&self, g: &Gift) -> Result<(), StoreError> {
            self.update(g, vec![]).await?;
            if let Some((_, issued)) = self.stock.lock().unwrap().get_mut(&g.code) {
                *issued = issued.saturating_sub(1);
            }
            Ok(())
        }
    }

    fn service() -> GiftService<Memory> {
        let catalog = Catalog::default();
        GiftService::new(Memory::stocked(&catalog), catalog)
    }

    fn cmd_for(customer: &str, reward: u128, code: &str) -> IssueGift {
        IssueGift {
            customer_id: CustomerId::new(customer).unwrap(),
            reward_id: Uuid::from_u128(reward),
            mission_id: Uuid::from_u128(1),
            code: GiftCode::new(code).unwrap(),
            points: 100,
        }
    }

    fn cmd(code: &str) -> IssueGift {
        cmd_for("c-11", 7, code)
    }

    fn rule_refusal(r: Result<Gift, GiftError>) -> Refusal {
        match r {
            Err(GiftError::Refused(GiftRefusal::Rule(refusal))) => refusal,
            other => panic!("expected a rule's refusal, got {other:?}"),
        }
    }

    #[test]
    fn given_a_reward_when_the_same_gift_is_asked_twice_then_one_gift_is_issued() {
        let s = service();
        let a = block_on(s.issue(cmd("coffee"), &RequestContext::default())).unwrap();
        let b = block_on(s.issue(cmd("coffee"), &RequestContext::default())).unwrap();
        assert_eq!(a.id, b.id);
        assert_eq!(s.repo.outbox.lock().unwrap().len(), 1);
    }

    #[test]
    fn given_a_gift_for_a_reward_when_another_gift_is_asked_for_it_then_it_is_refused() {
        let s = service();
        block_on(s.issue(cmd("coffee"), &RequestContext::default())).unwrap();
        let err = block_on(s.issue(cmd("game-skin"), &RequestContext::default())).unwrap_err();
        assert!(matches!(err, GiftError::Refused(GiftRefusal::RewardTaken)));
    }

    #[test]
    fn given_three_founders_badges_when_five_customers_ask_then_three_get_one_and_two_hear_out_of_stock() {
        let s = service();
        let results: Vec<_> = (0..5)
            .map(|i| {
                block_on(s.issue(cmd_for(&format!("c-{i}"), 100 + i, "founders-badge"), &RequestContext::default()))
            })
            .collect();
        assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 3);
        for r in results.into_iter().filter(Result::is_err) {
            assert_eq!(rule_refusal(r).reason(), "GIFT_OUT_OF_STOCK");
        }
        assert_eq!(s.repo.outbox.lock().unwrap().len(), 3, "nothing published for the refused");
        let offers = block_on(s.offers()).unwrap();
        let left = |c: &str| offers.iter().find(|o| o.rule.code.as_str() == c).unwrap().left;
        assert_eq!((left("founders-badge"), left("movie-ticket"), left("coffee")), (Some(0), Some(1000), None));
    }

    #[test]
    fn given_one_game_skin_per_customer_when_the_customer_asks_with_a_second_reward_then_it_is_refused() {
        let s = service();
        block_on(s.issue(cmd_for("c-11", 1, "game-skin"), &RequestContext::default())).unwrap();
        let r = rule_refusal(block_on(s.issue(cmd_for("c-11", 2, "game-skin"), &RequestContext::default())));
        assert_eq!(r.message(&Schedule::default()), "one per customer: you already have a game-skin");
        // the stock was not taken by the refused one
        let offers = block_on(s.offers()).unwrap();
        assert_eq!(offers.iter().find(|o| o.rule.code.as_str() == "game-skin").unwrap().left, Some(99));
        // another customer may
        block_on(s.issue(cmd_for("c-12", 3, "game-skin"), &RequestContext::default())).unwrap();
    }

    #[test]
    fn given_two_coffees_a_day_when_a_third_is_asked_then_it_is_refused_with_the_next_reset() {
        let mut gifts = Catalog::default().gifts().to_vec();
        gifts[0].per_customer = Some(Limit { period: LimitPeriod::Daily, count: 2 });
        let catalog = Catalog::new(Schedule::default(), gifts).unwrap();
        let s = GiftService::new(Memory::stocked(&catalog), catalog);
        for reward in 1..=2 {
            let g = block_on(s.issue(cmd_for("c-11", reward, "coffee"), &RequestContext::default())).unwrap();
            assert!(g.slot.unwrap().ends_with(&format!("#{reward}")));
        }
        let r = rule_refusal(block_on(s.issue(cmd_for("c-11", 3, "coffee"), &RequestContext::default())));
        assert_eq!(r.reason(), "GIFT_LIMIT_REACHED");
        assert!(r.next_available().is_some());
    }

    #[test]
    fn too_few_points_are_refused_before_anything_is_counted() {
        let s = service();
        let mut c = cmd("founders-badge");
        c.points = 10;
        let err = block_on(s.issue(c, &RequestContext::default())).unwrap_err();
        assert!(matches!(err, GiftError::Refused(GiftRefusal::NotEnoughPoints { cost: 20, points: 10, .. })));
        assert_eq!(block_on(s.offers()).unwrap().iter().find(|o| o.rule.stock == Some(3)).unwrap().left, Some(3));
    }

    #[test]
    fn given_an_issued_gift_when_used_then_it_is_used_once_and_only_by_its_owner() {
        let s = service();
        let g = block_on(s.issue(cmd("coffee"), &RequestContext::default())).unwrap();
        let stranger = CustomerId::new("x").unwrap();
        assert!(matches!(
            block_on(s.use_gift(g.id, Some(&stranger), &RequestContext::default())),
            Err(GiftError::Refused(GiftRefusal::NotOwner))
        ));
        let used = block_on(s.use_gift(g.id, Some(&g.customer_id), &RequestContext::default())).unwrap();
        assert_eq!(used.status, GiftStatus::Used);
        assert!(matches!(
            block_on(s.use_gift(g.id, None, &RequestContext::default())),
            Err(GiftError::Refused(GiftRefusal::AlreadyUsed))
        ));
        assert_eq!(s.repo.outbox.lock().unwrap().len(), 2, "issued + used");
    }

    #[test]
    fn given_the_last_badge_when_its_gift_is_cancelled_then_the_stock_is_back_and_a_used_gift_cannot_be() {
        let s = service();
        let gifts: Vec<_> = (0..3)
            .map(|i| {
                block_on(s.issue(cmd_for(&format!("c-{i}"), 10 + i, "founders-badge"), &RequestContext::default()))
            })
            .collect::<Result<_, _>>()
            .unwrap();
        let left = |s: &GiftService<Memory>| {
            block_on(s.offers()).unwrap().iter().find(|o| o.rule.code.as_str() == "founders-badge").unwrap().left
        };
        assert_eq!(left(&s), Some(0));
        let cancelled = block_on(s.cancel(gifts[0].id)).unwrap();
        assert_eq!(cancelled.status, GiftStatus::Cancelled);
        assert_eq!(left(&s), Some(1), "its unit is back");
        assert_eq!(block_on(s.cancel(gifts[0].id)).unwrap().status, GiftStatus::Cancelled, "again: as it is");
        assert_eq!(left(&s), Some(1), "given back once");
        block_on(s.use_gift(gifts[1].id, None, &RequestContext::default())).unwrap();
        assert!(matches!(block_on(s.cancel(gifts[1].id)), Err(GiftError::Refused(GiftRefusal::AlreadyUsed))));
        assert!(matches!(block_on(s.cancel(Uuid::from_u128(404))), Err(GiftError::NotFound(_))));
        // The cancelled gift's reward is not answered that gift again.
        let again = block_on(s.issue(cmd_for("c-0", 10, "founders-badge"), &RequestContext::default()));
        assert!(matches!(again, Err(GiftError::Refused(GiftRefusal::RewardTaken))));
    }
}
