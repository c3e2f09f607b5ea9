//! The gift application service.

use chrono::Utc;
use kernel::{CustomerId, Envelope, EventMeta, StoreError, new_id};
use uuid::Uuid;

use crate::model::{Catalog, Gift, GiftRefusal, IssueGift};
use crate::ports::GiftRepository;

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

const CONFLICT_RETRIES: usize = 8;

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

    /// Issues the gift for a reward; asking again for the same reward returns the same gift.
    ///
    /// # Errors
    /// `Refused` for an unknown gift, too few points, or a reward already taken by
    /// another request.
    pub async fn issue(
        &self,
        cmd: IssueGift,
        cause: Option<String>,
        traceparent: Option<String>,
    ) -> Result<Gift, GiftError> {
        if let Some(existing) = self.repo.find_by_reward(cmd.reward_id).await? {
            return if existing.answers(&cmd) { Ok(existing) } else { Err(GiftRefusal::RewardTaken.into()) };
        }
        let now = Utc::now();
        let (gift, event) = Gift::issue(&cmd, &self.catalog, new_id(), now)?;
        let mut meta = EventMeta::first(cmd.mission_id, cause.as_deref().unwrap_or(""), cmd.customer_id.clone(), now);
        meta.traceparent = traceparent;
        match self.repo.insert(&gift, vec![Envelope { meta, event }]).await {
            Ok(()) => Ok(gift),
            // Someone issued it concurrently: answer as a retry would be answered.
            Err(StoreError::Duplicate) => match self.repo.find_by_reward(cmd.reward_id).await? {
                Some(existing) if existing.answers(&cmd) => Ok(existing),
                Some(_) => Err(GiftRefusal::RewardTaken.into()),
                None => Err(GiftError::Unavailable("duplicate gift not found".into())),
            },
            Err(e) => Err(e.into()),
        }
    }

    /// # Errors
    /// `NotFound` for an unknown gift.
    pub async fn get(&self, id: Uuid) -> Result<Gift, GiftError> {
        self.repo.get(id).await?.ok_or(GiftError::NotFound("gift"))
    }

    pub async fn list(&self, customer: &CustomerId) -> Result<Vec<Gift>, GiftError> {
        Ok(self.repo.list_by_customer(customer).await?)
    }

    /// Uses a gift once; `by`, when given, must be its owner.
    ///
    /// # Errors
    /// `NotFound` for an unknown gift; `Refused(NotOwner)` for another customer's;
    /// `Refused(AlreadyUsed)`.
    pub async fn use_gift(
        &self,
        id: Uuid,
        by: Option<&CustomerId>,
        traceparent: Option<String>,
    ) -> Result<Gift, GiftError> {
        for _ in 0..CONFLICT_RETRIES {
            let mut gift = self.get(id).await?;
            let event = gift.use_by(by, Utc::now())?;
            let mut meta = EventMeta::first(gift.mission_id, &id.to_string(), gift.customer_id.clone(), Utc::now());
            meta.traceparent = traceparent.clone();
            match self.repo.update(&gift, vec![Envelope { meta, event }]).await {
                Ok(()) => return Ok(Gift { version: gift.version + 1, ..gift }),
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(GiftError::Unavailable("too many concurrent changes".into()))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use futures::executor::block_on;

    use super::*;
    use crate::model::{GiftCode, GiftEvent, GiftStatus};

    #[derive(Default)]
    struct Memory {
        gifts: Mutex<HashMap<Uuid, Gift>>,
        outbox: Mutex<Vec<Envelope<GiftEvent>>>,
    }

    impl GiftRepository for Memory {
        async fn get(&self, id: Uuid) -> Result<Option<Gift>, StoreError> {
            Ok(self.gifts.lock().unwrap().get(&id).cloned())
        }
        async fn find_by_reward(&self, r: Uuid) -> Result<Option<Gift>, StoreError> {
            Ok(self.gifts.lock().unwrap().values().find(|g| g.reward_id == r).cloned())
        }
        async fn list_by_customer(&self, c: &CustomerId) -> Result<Vec<Gift>, StoreError> {
            Ok(self.gifts.lock().unwrap().values().filter(|g| &g.customer_id == c).cloned().collect())
        }
        async fn insert(&self, g: &Gift, events: Vec<Envelope<GiftEvent>>) -> Result<(), StoreError> {
            if self.find_by_reward(g.reward_id).await?.is_some() {
                return Err(StoreError::Duplicate);
            }
            self.gifts.lock().unwrap().insert(g.id, g.clone());
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
    }

    fn cmd(code: &str) -> IssueGift {
        IssueGift {
            customer_id: CustomerId::new("c-11").unwrap(),
            reward_id: Uuid::from_u128(7),
            mission_id: Uuid::from_u128(1),
            code: GiftCode::new(code).unwrap(),
            points: 100,
        }
    }

    #[test]
    fn given_a_reward_when_the_same_gift_is_asked_twice_then_one_gift_is_issued() {
        let s = GiftService::new(Memory::default(), Catalog::default());
        let a = block_on(s.issue(cmd("coffee"), None, None)).unwrap();
        let b = block_on(s.issue(cmd("coffee"), None, None)).unwrap();
        assert_eq!(a.id, b.id);
        assert_eq!(s.repo.outbox.lock().unwrap().len(), 1);
    }

    #[test]
    fn given_a_gift_for_a_reward_when_another_gift_is_asked_for_it_then_it_is_refused() {
        let s = GiftService::new(Memory::default(), Catalog::default());
        block_on(s.issue(cmd("coffee"), None, None)).unwrap();
        let err = block_on(s.issue(cmd("game-skin"), None, None)).unwrap_err();
        assert!(matches!(err, GiftError::Refused(GiftRefusal::RewardTaken)));
    }

    #[test]
    fn given_an_issued_gift_when_used_then_it_is_used_once_and_only_by_its_owner() {
        let s = GiftService::new(Memory::default(), Catalog::default());
        let g = block_on(s.issue(cmd("coffee"), None, None)).unwrap();
        let stranger = CustomerId::new("x").unwrap();
        assert!(matches!(
            block_on(s.use_gift(g.id, Some(&stranger), None)),
            Err(GiftError::Refused(GiftRefusal::NotOwner))
        ));
        let used = block_on(s.use_gift(g.id, Some(&g.customer_id), None)).unwrap();
        assert_eq!(used.status, GiftStatus::Used);
        assert!(matches!(block_on(s.use_gift(g.id, None, None)), Err(GiftError::Refused(GiftRefusal::AlreadyUsed))));
        assert_eq!(s.repo.outbox.lock().unwrap().len(), 2, "issued + used");
    }
}
