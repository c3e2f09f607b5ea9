//! The mission application service: loads, lets the aggregate decide, stores.

use chrono::{DateTime, Utc};
use kernel::paging::{Page, PageRequest};
use kernel::{
    CONFLICT_RETRIES, CustomerId, Envelope, EventMeta, Inbound, RequestContext, StoreError, ValidationError, new_id,
    retry_on_conflict,
};
use uuid::Uuid;

use crate::model::{AchieveMission, Mission, MissionRefusal};
use crate::ports::{Anyone, Customers, MissionRepository};
use crate::rules::{self, Availability, Catalog, History, MissionRule, Refusal, Reporter};

#[derive(Debug, thiserror::Error)]
pub enum MissionError {
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error(transparent)]
    Refused(#[from] MissionRefusal),
    /// The economy's rules refuse the achievement; nothing was written.
    #[error(transparent)]
    Rule(#[from] Refusal),
    /// A game server or an admin reported for an id nobody registered; nothing was written.
    #[error(
        "customer_id: no customer '{0}' is registered; they must register (RegisterCustomer) before their missions \
         are reported"
    )]
    UnknownCustomer(CustomerId),
    #[error("unavailable: {0}")]
    Unavailable(String),
}

impl From<StoreError> for MissionError {
    fn from(e: StoreError) -> Self {
        Self::Unavailable(e.to_string())
    }
}

/// How often an achievement decides again after a concurrent one took its slot. Each
/// retry re-reads the history, so one retry sees the slot taken; more only under a storm
/// of concurrent reports for the same customer and mission.
const SLOT_RETRIES: usize = 8;

pub struct MissionService<R, C = Anyone> {
    repo: R,
    catalog: Catalog,
    customers: C,
}

/// The answer to a request id that already achieved `first`: the first mission again when
/// it is the same request, a refusal when the id came back with another mission code.
fn same_request(first: Mission, cmd: &AchieveMission) -> Result<Mission, MissionError> {
    if first.code == cmd.code { Ok(first) } else { Err(MissionRefusal::from(kernel::RequestReused).into()) }
}

impl<R: MissionRepository> MissionService<R> {
    /// A service that records reports for any id (see [`Self::with_customers`]).
    pub fn new(repo: R, catalog: Catalog) -> Self {
        Self { repo, catalog, customers: Anyone }
    }
}

impl<R: MissionRepository, C: Customers> MissionService<R, C> {
    /// Reports of game servers and admins are recorded only for the ids `customers` knows.
    pub fn with_customers<K: Customers>(self, customers: K) -> MissionService<R, K> {
        MissionService { repo: self.repo, catalog: self.catalog, customers }
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    async fn history(
        &self,
        cmd: &AchieveMission,
        rule: &MissionRule,
        now: DateTime<Utc>,
    ) -> Result<History, StoreError> {
        let period = rules::period(self.catalog.schedule(), rule.repeat, now);
        self.repo.history(&cmd.customer_id, &cmd.code, period.as_ref().map(|p| p.key.as_str()), &rule.requires).await
    }

    /// Achieves a mission if the economy's rules allow it; the same `(customer,
    /// request_id)` again returns the first mission and achieves nothing (never a refusal).
    ///
    /// The store holds one row per (customer, mission, slot): a decision names its slot and
    /// the insert either takes it or finds it taken, so concurrent reports cannot both take
    /// the last one. The loser decides again on a fresh history and is refused once the cap
    /// is reached.
    ///
    /// # Errors
    /// `Invalid` for an unknown mission code; `UnknownCustomer` when a game server or an
    /// admin reports for an id nobody registered (a player's own token shows they are);
    /// `Rule` when the rules refuse it (who reports, window, prerequisites, cap);
    /// `Refused(RequestReused)` when the request id achieved another mission code;
    /// `Unavailable` when the store or the registry of customers is down.
    pub async fn achieve(&self, cmd: AchieveMission, ctx: &RequestContext) -> Result<Mission, MissionError> {
        let mut cmd = cmd;
        if cmd.request_id.is_empty() {
            cmd.request_id = new_id().to_string();
        }
        let rule = self.catalog.find(&cmd.code)?;
        if cmd.caller.kind != Reporter::Player && !self.customers.is_registered(&cmd.customer_id).await? {
            return Err(MissionError::UnknownCustomer(cmd.customer_id));
        }
        let schedule = self.catalog.schedule();
        let now = Utc::now();
        // The common case costs one write: an unlimited mission, or one taken at most once
        // per period, without prerequisites, is inserted without reading; for a cap of one
        // the unique slot says whether it was free.
        let mut history =
            if rule.decides_without_history() { History::default() } else { self.history(&cmd, rule, now).await? };
        for _ in 0..SLOT_RETRIES {
            let decision = match rules::decide(rule, schedule, cmd.caller.kind, &history, now) {
                Ok(d) => d,
                // A retry of a request that was accepted is answered as the first time.
                Err(refusal) if !refusal.is_permission() => {
                    return match self.repo.find_by_request(&cmd.customer_id, &cmd.request_id).await? {
                        Some(first) => same_request(first, &cmd),
                        None => Err(refusal.into()),
                    };
                }
                Err(refusal) => return Err(refusal.into()),
            };
            let (mission, event) = Mission::achieve(&cmd, rule, decision, new_id(), now);
            let mut meta = EventMeta::first(mission.id, &cmd.request_id, cmd.customer_id.clone(), now);
            meta.traceparent.clone_from(&ctx.traceparent);
            match self.repo.insert(&mission, vec![Envelope { meta, event }]).await {
                Ok(()) => return Ok(mission),
                // The request id or the slot was taken: a retry gets the first mission;
                // otherwise someone else took the slot, so decide again on what is there now.
                Err(StoreError::Duplicate) => {
                    if let Some(first) = self.repo.find_by_request(&cmd.customer_id, &cmd.request_id).await? {
                        return same_request(first, &cmd);
                    }
                    history = self.history(&cmd, rule, now).await?;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(MissionError::Unavailable("too many concurrent achievements of one mission".into()))
    }

    /// Where each mission of the catalog stands for `customer` at `now`, in catalog order.
    ///
    /// # Errors
    /// `Unavailable` when the store is down.
    pub async fn availability(
        &self,
        customer: &CustomerId,
        now: DateTime<Utc>,
    ) -> Result<Vec<Availability>, MissionError> {
        let schedule = self.catalog.schedule();
        let mut out = Vec::with_capacity(self.catalog.missions().len());
        for rule in self.catalog.missions() {
            let period = rules::period(schedule, rule.repeat, now);
            let history = self
                .repo
                .history(customer, &rule.code, period.as_ref().map(|p| p.key.as_str()), &rule.requires)
                .await?;
            out.push(rules::availability(rule, schedule, &history, now));
        }
        Ok(out)
    }

    /// # Errors
    /// `NotFound` for an unknown mission.
    pub async fn get(&self, id: Uuid) -> Result<Mission, MissionError> {
        self.repo.get(id).await?.ok_or(MissionError::NotFound("mission"))
    }

    pub async fn list(&self, customer: &CustomerId, page: PageRequest) -> Result<Page<Mission>, MissionError> {
        Ok(self.repo.list_by_customer(customer, page).await?)
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
        // The common case, a mission's first reward, is one write; a mission not found
        // or already rewarded is read and decided on below.
        let event = Mission::rewarded(mission_id, &cause.customer_id, reward_id);
        let events = vec![Envelope { meta: cause.caused(Utc::now()), event }];
        match self.repo.record_reward(mission_id, &cause.customer_id, reward_id, events, inbound).await {
            Ok(true) | Err(StoreError::Duplicate) => return Ok(()),
            Ok(false) => {}
            Err(e) => return Err(e.into()),
        }
        retry_on_conflict(CONFLICT_RETRIES, move || async move {
            let mut mission = (self.repo.get(mission_id).await?)
                .filter(|m| m.customer_id == cause.customer_id)
                .ok_or(MissionError::NotFound("mission"))?;
            let events = mission
                .record_reward(reward_id)?
                .map(|event| Envelope { meta: cause.caused(Utc::now()), event })
                .into_iter()
                .collect();
            match self.repo.update(&mission, events, Some(inbound)).await {
                Ok(()) | Err(StoreError::Duplicate) => Ok(Some(())),
                Err(StoreError::Conflict) => Ok(None),
                Err(e) => Err(e.into()),
            }
        })
        .await
    }
}

#[cfg(test)]
mod tests;
