//! The mission application service: loads, lets the aggregate decide, stores.

use chrono::Utc;
use kernel::{CustomerId, Envelope, EventMeta, Inbound, StoreError, ValidationError, new_id};
use uuid::Uuid;

use crate::model::{AchieveMission, Catalog, Mission, MissionRefusal};
use crate::ports::MissionRepository;

#[derive(Debug, thiserror::Error)]
pub enum MissionError {
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error(transparent)]
    Refused(#[from] MissionRefusal),
    #[error("unavailable: {0}")]
    Unavailable(String),
}

impl From<StoreError> for MissionError {
    fn from(e: StoreError) -> Self {
        Self::Unavailable(e.to_string())
    }
}

/// How often a change is retried when another writer got there first.
const CONFLICT_RETRIES: usize = 8;

pub struct MissionService<R> {
    repo: R,
    catalog: Catalog,
}

impl<R: MissionRepository> MissionService<R> {
    pub fn new(repo: R, catalog: Catalog) -> Self {
        Self { repo, catalog }
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// Achieves a mission; the same `(customer, request_id)` again returns the first
    /// mission and achieves nothing.
    ///
    /// # Errors
    /// `Invalid` for an unknown mission code; `Refused(RequestReused)` when the request id
    /// achieved another mission code; `Unavailable` when the store is down.
    pub async fn achieve(&self, cmd: AchieveMission, traceparent: Option<String>) -> Result<Mission, MissionError> {
        let mut cmd = cmd;
        if cmd.request_id.is_empty() {
            cmd.request_id = new_id().to_string();
        }
        let now = Utc::now();
        let (mission, event) = Mission::achieve(&cmd, &self.catalog, new_id(), now)?;
        let mut meta = EventMeta::first(mission.id, &cmd.request_id, cmd.customer_id.clone(), now);
        meta.traceparent = traceparent;
        // Insert first, look up only on a repeat: a new request costs one write, not a read
        // and a write. The store's unique (customer, request id) makes the repeat a duplicate.
        match self.repo.insert(&mission, vec![Envelope { meta, event }]).await {
            Ok(()) => Ok(mission),
            Err(StoreError::Duplicate) => {
                let first = self
                    .repo
                    .find_by_request(&cmd.customer_id, &cmd.request_id)
                    .await?
                    .ok_or(MissionError::Unavailable("duplicate request without a mission".into()))?;
                if first.code != cmd.code {
                    return Err(MissionRefusal::from(kernel::RequestReused).into());
                }
                Ok(first)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// # Errors
    /// `NotFound` for an unknown mission.
    pub async fn get(&self, id: Uuid) -> Result<Mission, MissionError> {
        self.repo.get(id).await?.ok_or(MissionError::NotFound("mission"))
    }

    pub async fn list(&self, customer: &CustomerId) -> Result<Vec<Mission>, MissionError> {
        Ok(self.repo.list_by_customer(customer).await?)
    }

    /// Policy: when a reward is allocated for a mission, the mission records it.
    ///
    /// # Errors
    /// `NotFound` when the mission is unknown (retry later); `Refused` when the mission
    /// already holds another reward.
    pub async fn on_reward_allocated(
        &self,
        inbound: Inbound,
        cause: &EventMeta,
        mission_id: Uuid,
        reward_id: Uuid,
    ) -> Result<(), MissionError> {
        for _ in 0..CONFLICT_RETRIES {
            let mut mission = self.repo.get(mission_id).await?.ok_or(MissionError::NotFound("mission"))?;
            let events = mission
                .record_reward(reward_id)?
                .map(|event| Envelope { meta: cause.caused(Utc::now()), event })
                .into_iter()
                .collect();
            match self.repo.update(&mission, events, Some(inbound)).await {
                Ok(()) | Err(StoreError::Duplicate) => return Ok(()),
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(MissionError::Unavailable("too many concurrent changes".into()))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};
    use std::sync::Mutex;

    use futures::executor::block_on;

    use super::*;
    use crate::model::{MissionEvent, MissionStatus};

    /// An in-memory repository, faithful to the port's contract.
    #[derive(Default)]
    struct Memory {
        missions: Mutex<HashMap<Uuid, Mission>>,
        inbox: Mutex<HashSet<Uuid>>,
        outbox: Mutex<Vec<Envelope<MissionEvent>>>,
    }

    impl MissionRepository for Memory {
        async fn get(&self, id: Uuid) -> Result<Option<Mission>, StoreError> {
            Ok(self.missions.lock().unwrap().get(&id).cloned())
        }
        async fn find_by_request(&self, c: &CustomerId, r: &str) -> Result<Option<Mission>, StoreError> {
            Ok(self.missions.lock().unwrap().values().find(|m| &m.customer_id == c && m.request_id == r).cloned())
        }
        async fn list_by_customer(&self, c: &CustomerId) -> Result<Vec<Mission>, StoreError> {
            Ok(self.missions.lock().unwrap().values().filter(|m| &m.customer_id == c).cloned().collect())
        }
        async fn insert(&self, m: &Mission, events: Vec<Envelope<MissionEvent>>) -> Result<(), StoreError> {
            if self.find_by_request(&m.customer_id, &m.request_id).await?.is_some() {
                return Err(StoreError::Duplicate);
            }
            self.missions.lock().unwrap().insert(m.id, m.clone());
            self.outbox.lock().unwrap().extend(events);
            Ok(())
        }
        async fn update(
            &self,
            m: &Mission,
            events: Vec<Envelope<MissionEvent>>,
            inbound: Option<Inbound>,
        ) -> Result<(), StoreError> {
            if let Some(i) = inbound
                && !self.inbox.lock().unwrap().insert(i.event_id)
            {
                return Err(StoreError::Duplicate);
            }
            let mut missions = self.missions.lock().unwrap();
            let stored = missions.get_mut(&m.id).ok_or(StoreError::Conflict)?;
            if stored.version != m.version {
                return Err(StoreError::Conflict);
            }
            *stored = Mission { version: m.version + 1, ..m.clone() };
            self.outbox.lock().unwrap().extend(events);
            Ok(())
        }
    }

    fn service() -> MissionService<Memory> {
        MissionService::new(Memory::default(), Catalog::default())
    }

    fn achieve(s: &MissionService<Memory>, request_id: &str) -> Mission {
        block_on(s.achieve(AchieveMission::new("c-11", "daily-login", request_id).unwrap(), None)).unwrap()
    }

    #[test]
    fn given_a_request_when_achieving_then_one_mission_and_one_event_are_stored() {
        let s = service();
        let m = achieve(&s, "r1");
        assert_eq!(m.status, MissionStatus::Achieved);
        let outbox = s.repo.outbox.lock().unwrap();
        assert_eq!(outbox.len(), 1);
        assert_eq!(outbox[0].meta.correlation_id, m.id.to_string());
        assert_eq!(outbox[0].meta.causation_id, "r1");
    }

    #[test]
    fn given_an_achieved_request_when_the_same_request_comes_again_then_the_same_mission_is_returned() {
        let s = service();
        let first = achieve(&s, "r1");
        let again = achieve(&s, "r1");
        assert_eq!(first.id, again.id);
        assert_eq!(s.repo.outbox.lock().unwrap().len(), 1);
        // without a request id every call is a new achievement
        assert_ne!(achieve(&s, "").id, achieve(&s, "").id);
    }

    #[test]
    fn given_an_achieved_request_when_its_id_comes_with_another_mission_then_it_is_refused_and_nothing_is_written() {
        let s = service();
        let first = achieve(&s, "r1");
        let other = AchieveMission::new("c-11", "first-win", "r1").unwrap();
        let err = block_on(s.achieve(other, None)).unwrap_err();
        assert!(matches!(err, MissionError::Refused(MissionRefusal::RequestReused(_))), "{err:?}");
        assert_eq!(err.to_string(), "request id already used for another request");
        assert_eq!(block_on(s.list(&first.customer_id)).unwrap(), vec![first.clone()]);
        assert_eq!(s.repo.outbox.lock().unwrap().len(), 1);
        // the same request again still gets the first answer; another customer's key is theirs
        assert_eq!(achieve(&s, "r1").id, first.id);
        let theirs = AchieveMission::new("c-12", "first-win", "r1").unwrap();
        assert_ne!(block_on(s.achieve(theirs, None)).unwrap().id, first.id);
    }

    #[test]
    fn given_a_mission_when_its_reward_allocation_is_delivered_twice_then_it_is_recorded_once() {
        let s = service();
        let m = achieve(&s, "r1");
        let cause = s.repo.outbox.lock().unwrap()[0].meta.clone();
        let inbound = Inbound { consumer: "mission-record-reward", event_id: new_id() };
        let reward = new_id();
        block_on(s.on_reward_allocated(inbound, &cause, m.id, reward)).unwrap();
        block_on(s.on_reward_allocated(inbound, &cause, m.id, reward)).unwrap();
        let stored = block_on(s.get(m.id)).unwrap();
        assert_eq!(stored.status, MissionStatus::Rewarded);
        assert_eq!(stored.reward_id, Some(reward));
        let outbox = s.repo.outbox.lock().unwrap();
        assert_eq!(outbox.len(), 2, "achieved + one rewarded");
        assert_eq!(outbox[1].meta.causation_id, cause.event_id.to_string());
    }

    #[test]
    fn given_no_mission_when_a_reward_is_allocated_for_it_then_it_is_not_found() {
        let s = service();
        let cause = EventMeta::first(new_id(), "r", CustomerId::new("c").unwrap(), Utc::now());
        let inbound = Inbound { consumer: "x", event_id: new_id() };
        let err = block_on(s.on_reward_allocated(inbound, &cause, new_id(), new_id())).unwrap_err();
        assert!(matches!(err, MissionError::NotFound("mission")));
    }
}
