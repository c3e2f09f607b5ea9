//! The reward application service: the policies reacting to other contexts' events.

use chrono::Utc;
use kernel::paging::{Page, PageRequest};
use kernel::{CONFLICT_RETRIES, CustomerId, Envelope, EventMeta, Inbound, StoreError, new_id, retry_on_conflict};
use uuid::Uuid;

use crate::model::{Reward, RewardStatus};
use crate::ports::RewardRepository;

#[derive(Debug, thiserror::Error)]
pub enum RewardError {
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("unavailable: {0}")]
    Unavailable(String),
}

impl From<StoreError> for RewardError {
    fn from(e: StoreError) -> Self {
        Self::Unavailable(e.to_string())
    }
}

/// What the mission context told us about an achievement.
#[derive(Debug, Clone)]
pub struct MissionAchieved {
    pub mission_id: Uuid,
    pub customer_id: CustomerId,
    pub mission_code: String,
    pub reward_points: i64,
    /// The mission's `points_expire_after` (None: never).
    pub points_expire_after: Option<std::time::Duration>,
}

pub struct RewardService<R> {
    repo: R,
}

impl<R: RewardRepository> RewardService<R> {
    pub fn new(repo: R) -> Self {
        Self { repo }
    }

    /// # Errors
    /// `NotFound` for an unknown reward.
    pub async fn get(&self, id: Uuid) -> Result<Reward, RewardError> {
        self.repo.get(id).await?.ok_or(RewardError::NotFound("reward"))
    }

    pub async fn list(&self, customer: &CustomerId, page: PageRequest) -> Result<Page<Reward>, RewardError> {
        Ok(self.repo.list_by_customer(customer, page).await?)
    }

    /// Policy: a mission was achieved -> allocate its reward (once per mission).
    ///
    /// # Errors
    /// `Unavailable` when the store is down (retry later).
    pub async fn on_mission_achieved(
        &self,
        inbound: Inbound,
        cause: &EventMeta,
        fact: MissionAchieved,
    ) -> Result<(), RewardError> {
        let (reward, event) = Reward::allocate(
            new_id(),
            fact.mission_id,
            fact.customer_id,
            fact.reward_points,
            &fact.mission_code,
            fact.points_expire_after,
        );
        let envelope = Envelope { meta: cause.caused(Utc::now()), event };
        match self.repo.insert(&reward, vec![envelope], inbound).await {
            Ok(()) | Err(StoreError::Duplicate) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Policy: the wallet issued or exchanged the reward -> follow its status forward.
    ///
    /// # Errors
    /// `NotFound` when the reward is unknown (retry later).
    pub async fn on_wallet_changed(
        &self,
        inbound: Inbound,
        customer: &CustomerId,
        reward_id: Uuid,
        to: RewardStatus,
    ) -> Result<(), RewardError> {
        // The common case, a reward moving forward, is one write; a reward not there yet
        // or already past `to` is read and decided on below.
        match self.repo.advance(reward_id, customer, to, inbound).await {
            Ok(true) | Err(StoreError::Duplicate) => return Ok(()),
            Ok(false) => {}
            Err(e) => return Err(e.into()),
        }
        retry_on_conflict(CONFLICT_RETRIES, move || async move {
            let mut reward = self.repo.get(reward_id).await?.ok_or(RewardError::NotFound("reward"))?;
            reward.advance(to);
            match self.repo.update(&reward, inbound).await {
                Ok(()) | Err(StoreError::Duplicate) => Ok(Some(())),
                Err(StoreError::Conflict) => Ok(None),
                Err(e) => Err(e.into()),
            }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};
    use std::sync::Mutex;

    use futures::executor::block_on;

    use super::*;
    use crate::model::RewardEvent;

    #[derive(Default)]
    struct Memory {
        rewards: Mutex<HashMap<Uuid, Reward>>,
        inbox: Mutex<HashSet<Uuid>>,
        outbox: Mutex<Vec<Envelope<RewardEvent>>>,
    }

    impl Memory {
        fn record(&self, inbound: Inbound) -> Result<(), StoreError> {
            if self.inbox.lock().unwrap().insert(inbound.event_id) { Ok(()) } else { Err(StoreError::Duplicate) }
        }
    }

    impl RewardRepository for Memory {
        async fn get(&self, id: Uuid) -> Result<Option<Reward>, StoreError> {
            Ok(self.rewards.lock().unwrap().get(&id).cloned())
        }
        async fn list_by_customer(&self, c: &CustomerId, page: PageRequest) -> Result<Page<Reward>, StoreError> {
            let mut all: Vec<_> =
                self.rewards.lock().unwrap().values().filter(|r| &r.customer_id == c).cloned().collect();
            all.sort_by_key(|r| std::cmp::Reverse(r.id));
            all.retain(|r| page.before.is_none_or(|b| r.id < b));
            all.truncate(page.size + 1);
            Ok(Page::from_probe(all, page, |r| r.id))
        }
        async fn insert(
            &self,
            r: &Reward,
            events: Vec<Envelope<RewardEvent>>,
            inbound: Inbound,
        ) -> Result<(), StoreError> {
            if self.rewards.lock().unwrap().values().any(|x| x.mission_id == r.mission_id) {
                return Err(StoreError::Duplicate);
            }
            self.record(inbound)?;
            self.rewards.lock().unwrap().insert(r.id, r.clone());
            self.outbox.lock().unwrap().extend(events);
            Ok(())
        }
        async fn update(&self, r: &Reward, inbound: Inbound) -> Result<(), StoreError> {
            self.record(inbound)?;
            let mut rewards = self.rewards.lock().unwrap();
            let stored = rewards.get_mut(&r.id).ok_or(StoreError::Conflict)?;
            if stored.version != r.version {
                return Err(StoreError::Conflict);
            }
            *stored = Reward { version: r.version + 1, ..r.clone() };
            Ok(())
        }
        async fn advance(
            &self,
            id: Uuid,
            c: &CustomerId,
            to: RewardStatus,
            inbound: Inbound,
        ) -> Result<bool, StoreError> {
            if self.inbox.lock().unwrap().contains(&inbound.event_id) {
                return Err(StoreError::Duplicate);
            }
            let mut rewards = self.rewards.lock().unwrap();
            let Some(stored) = rewards.get_mut(&id).filter(|r| &r.customer_id == c && to.before().contains(&r.status))
            else {
                return Ok(false);
            };
            self.record(inbound)?;
            stored.status = to;
            stored.version += 1;
            Ok(true)
        }
    }

    fn achieved() -> (EventMeta, MissionAchieved) {
        let mission_id = new_id();
        let customer_id = CustomerId::new("c-11").unwrap();
        let meta = EventMeta::first(mission_id, "req", customer_id.clone(), Utc::now());
        (
            meta,
            MissionAchieved {
                mission_id,
                customer_id,
                mission_code: "daily-login".into(),
                reward_points: 10,
                points_expire_after: None,
            },
        )
    }

    #[test]
    fn given_an_achieved_mission_delivered_twice_when_handled_then_one_reward_is_allocated() {
        let s = RewardService::new(Memory::default());
        let (meta, fact) = achieved();
        let inbound = Inbound { consumer: "reward-allocate", event_id: meta.event_id };
        block_on(s.on_mission_achieved(inbound, &meta, fact.clone())).unwrap();
        block_on(s.on_mission_achieved(inbound, &meta, fact.clone())).unwrap();
        let rewards = block_on(s.list(&fact.customer_id, PageRequest::default())).unwrap().items;
        assert_eq!(rewards.len(), 1);
        assert_eq!(rewards[0].points, 10);
        let outbox = s.repo.outbox.lock().unwrap();
        assert_eq!(outbox.len(), 1);
        assert_eq!(outbox[0].meta.correlation_id, fact.mission_id.to_string());
    }

    fn allocated(s: &RewardService<Memory>) -> (CustomerId, Uuid) {
        let (meta, fact) = achieved();
        block_on(s.on_mission_achieved(Inbound { consumer: "a", event_id: meta.event_id }, &meta, fact.clone()))
            .unwrap();
        let id = block_on(s.list(&fact.customer_id, PageRequest::default())).unwrap().items[0].id;
        (fact.customer_id, id)
    }

    fn wallet(s: &RewardService<Memory>, c: &CustomerId, id: Uuid, to: RewardStatus) -> Result<Inbound, RewardError> {
        let inbound = Inbound { consumer: "b", event_id: new_id() };
        block_on(s.on_wallet_changed(inbound, c, id, to)).map(|()| inbound)
    }

    #[test]
    fn given_an_allocated_reward_when_the_wallet_issues_it_twice_then_it_is_issued_once() {
        let s = RewardService::new(Memory::default());
        let (c, id) = allocated(&s);
        let issued = wallet(&s, &c, id, RewardStatus::Issued).unwrap();
        block_on(s.on_wallet_changed(issued, &c, id, RewardStatus::Issued)).unwrap();
        let r = block_on(s.get(id)).unwrap();
        assert_eq!((r.status, r.version), (RewardStatus::Issued, 1));
    }

    #[test]
    fn given_an_exchanged_reward_when_a_late_issue_arrives_then_it_stays_exchanged_and_the_event_is_handled() {
        let s = RewardService::new(Memory::default());
        let (c, id) = allocated(&s);
        wallet(&s, &c, id, RewardStatus::Exchanged).unwrap();
        let late = wallet(&s, &c, id, RewardStatus::Issued).unwrap();
        assert_eq!(block_on(s.get(id)).unwrap().status, RewardStatus::Exchanged);
        assert!(s.repo.inbox.lock().unwrap().contains(&late.event_id));
    }

    #[test]
    fn given_another_customers_reward_when_the_wallet_reports_it_then_it_is_not_moved_without_reading_it() {
        let s = RewardService::new(Memory::default());
        let (_, id) = allocated(&s);
        let other = CustomerId::new("c-12").unwrap();
        assert!(
            !block_on(s.repo.advance(id, &other, RewardStatus::Issued, Inbound { consumer: "b", event_id: new_id() }))
                .unwrap()
        );
        assert_eq!(block_on(s.get(id)).unwrap().status, RewardStatus::Allocated);
    }

    #[test]
    fn given_no_reward_when_the_wallet_reports_it_then_it_is_not_found() {
        let s = RewardService::new(Memory::default());
        let err = wallet(&s, &CustomerId::new("c-11").unwrap(), new_id(), RewardStatus::Issued);
        assert!(matches!(err, Err(RewardError::NotFound("reward"))));
    }
}
