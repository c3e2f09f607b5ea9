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

use crate::expiry::spendable;
use crate::ledger::{Account, EntryKind, LedgerEntry, Movement, NotEnoughPoints, plan_spend};
use crate::model::{ExchangeRefusal, ExchangeReward, ItemStatus, Wallet, WalletItem};
use crate::ports::{GiftCallError, GiftIssuer, GiftRefusal, GiftRequest, SpendCommit, WalletRepository};
use crate::spend::{Spend, SpendPoints, gift_key};

#[derive(Debug, thiserror::Error)]
pub enum WalletError {
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error(transparent)]
    Refused(#[from] ExchangeRefusal),
    /// A refund or an adjustment refused.
    #[error(transparent)]
    Correction(#[from] crate::correction::CorrectionRefusal),
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
    /// The mission's `points_expire_after` (None: never).
    pub points_expire_after: Option<Duration>,
}

/// One spend at a time per customer in this process: concurrent requests of one customer
/// queue here instead of contending for the customer's lease in the store (which keeps
/// it to one at a time across replicas).
#[derive(Default)]
struct Singleflight {
    locks: Mutex<HashMap<CustomerId, Arc<futures::lock::Mutex<()>>>>,
}

impl Singleflight {
    fn slot(&self, key: &CustomerId) -> Arc<futures::lock::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        locks.retain(|_, l| Arc::strong_count(l) > 1);
        locks.entry(key.clone()).or_default().clone()
    }
}

/// A spending lease older than this is taken over (its holder died): far beyond a gift
/// call's deadline.
pub const LEASE_TTL: Duration = Duration::from_secs(30);
/// How long a spend waits for another replica's spend of the same customer.
const LEASE_WAIT: Duration = Duration::from_secs(5);
const LEASE_POLL: Duration = Duration::from_millis(20);
/// Who records the entries of a policy (an earned reward).
pub const SYSTEM_ACTOR: &str = "wallet";

pub struct WalletService<R, G> {
    repo: R,
    gifts: G,
    spenders: Singleflight,
    /// Sleeps between polls of a busy lease (the domain has no timer of its own).
    pause: Box<dyn Fn(Duration) -> futures::future::BoxFuture<'static, ()> + Send + Sync>,
}

impl<R: WalletRepository, G: GiftIssuer> WalletService<R, G> {
    /// `pause(d)` resolves after `d` (the runtime's sleep).
    pub fn new(
        repo: R,
        gifts: G,
        pause: impl Fn(Duration) -> futures::future::BoxFuture<'static, ()> + Send + Sync + 'static,
    ) -> Self {
        Self { repo, gifts, spenders: Singleflight::default(), pause: Box::new(pause) }
    }

    pub async fn wallet(&self, customer: &CustomerId, first: PageRequest) -> Result<Wallet, WalletError> {
        // The balance first, then the items: every item the balance counts is then on the
        // page or after it (an item issued between two reads in the other order was counted
        // in the balance, newer than the page's first item, and never shown by its paging).
        let balance = self.repo.account(customer).await?.balance;
        let next_expiry = crate::expiry::next_expiry(&self.repo.lots(customer).await?);
        let items = self.repo.list_by_customer(customer, PageRequest { before: None, ..first }).await?;
        Ok(Wallet { customer_id: customer.clone(), available_points: balance, balance, items, next_expiry })
    }

    /// A page of the customer's items, newest first.
    pub async fn items(&self, customer: &CustomerId, page: PageRequest) -> Result<Page<WalletItem>, WalletError> {
        Ok(self.repo.list_by_customer(customer, page).await?)
    }

    /// A page of the customer's ledger, newest first, of one kind when given.
    pub async fn ledger(
        &self,
        customer: &CustomerId,
        kind: Option<EntryKind>,
        page: PageRequest,
    ) -> Result<Page<LedgerEntry>, WalletError> {
        Ok(self.repo.ledger(customer, kind, page).await?)
    }

    /// Policy: a reward was allocated -> issue it into the customer's wallet (once), its
    /// points into the balance as an `EARNED` entry.
    ///
    /// A reward whose mission's points expire is a lot that expires that long after now.
    /// Answers whether this call issued it (false: it was issued already).
    ///
    /// # Errors
    /// `Unavailable` when the store is down (retry later).
    pub async fn on_reward_allocated(
        &self,
        inbound: Inbound,
        cause: &EventMeta,
        fact: RewardAllocated,
    ) -> Result<bool, WalletError> {
        let now = Utc::now();
        let (mut item, event) = WalletItem::issue(fact.reward_id, fact.mission_id, fact.customer_id, fact.points);
        item.expires_at = crate::expiry::expires_at(now, fact.points_expire_after);
        let envelope = Envelope { meta: cause.caused(now), event };
        let (item, envelope) = (&item, &envelope);
        retry_on_conflict(CONFLICT_RETRIES, move || async move {
            let mut account = self.repo.account(&item.customer_id).await?;
            let earned = Movement {
                kind: EntryKind::Earned,
                amount: item.points,
                reference: format!("reward:{}", item.reward_id),
                actor: SYSTEM_ACTOR.into(),
                reason: String::new(),
            };
            let entry = account
                .record(earned, kernel::new_id(), Utc::now())
                .map_err(|e| WalletError::Invalid(ValidationError::new("points", e.to_string())))?;
            match self.repo.insert(item, &entry, vec![envelope.clone()], inbound).await {
                Ok(()) => Ok(Some(true)),
                Err(StoreError::Duplicate) => Ok(Some(false)),
                Err(StoreError::Conflict) => Ok(None),
                Err(e) => Err(e.into()),
            }
        })
        .await
    }

    /// Exchanges a reward for a gift: the gift's cost is spent from that reward first,
    /// then from the rest of the balance; what the reward had beyond it stays in the
    /// balance. Answers the reward as it is after, and the gift.
    ///
    /// # Errors
    /// As [`Self::redeem`]; `Refused(NotFound)` for someone else's or an unknown reward,
    /// `Refused(AlreadyExchanged)` when nothing is left of it.
    pub async fn exchange(&self, cmd: ExchangeReward, ctx: &RequestContext) -> Result<(WalletItem, Uuid), WalletError> {
        let reward_id = cmd.reward_id;
        let spend = self.spend(cmd.into(), ctx).await?;
        let item = self.repo.get(reward_id).await?.ok_or(ExchangeRefusal::NotFound)?;
        Ok((item, spend.gift_id))
    }

    /// Spends a gift's cost (the gift catalog's price) from the customer's balance, over
    /// as many rewards as it takes. The gift service is called first; only when it
    /// issued the gift is the spend committed with its `SPENT` entry: on any failure
    /// nothing is spent. One spend at a time per customer (a lease in the store, across
    /// replicas), so concurrent spends never take the same points twice.
    ///
    /// A request id names one spend: the same id again gets the same answer; with
    /// another gift or reward it is refused before the gift service is asked.
    ///
    /// # Errors
    /// `Refused` (not enough points, request id reused), `GiftInvalid` (unknown gift),
    /// `GiftRefused`, `GiftUnavailable` (with when to retry), `Unavailable` (our store).
    pub async fn redeem(&self, cmd: SpendPoints, ctx: &RequestContext) -> Result<Spend, WalletError> {
        self.spend(cmd, ctx).await
    }

    async fn spend(&self, cmd: SpendPoints, ctx: &RequestContext) -> Result<Spend, WalletError> {
        if let Some(done) = self.done(&cmd).await? {
            return Ok(done);
        }
        if let Some(reward_id) = cmd.reward_id {
            self.check_reward(&cmd.customer_id, reward_id).await?;
        }
        let cost = self.gifts.cost(&cmd.gift_code, ctx).await?;
        let slot = self.spenders.slot(&cmd.customer_id);
        let _one_at_a_time = slot.lock().await;
        let holder = kernel::new_id();
        self.take_lease(&cmd.customer_id, holder).await?;
        let result = self.spend_leased(&cmd, cost, holder, ctx).await;
        // A committed spend gave the lease back in its transaction; anything else
        // (a refusal, a failure, the same request answered) gives it back here.
        if !matches!(result, Ok((_, Committed(true))))
            && let Err(e) = self.repo.release_lease(&cmd.customer_id, holder).await
        {
            // It expires after LEASE_TTL.
            return Err(e.into());
        }
        result.map(|(spend, _)| spend)
    }

    /// The spend `cmd`'s request id already made, if any.
    async fn done(&self, cmd: &SpendPoints) -> Result<Option<Spend>, WalletError> {
        if cmd.request_id.is_empty() {
            return Ok(None);
        }
        match self.repo.find_spend(&cmd.customer_id, &cmd.request_id).await? {
            Some(spend) => {
                spend.answers(cmd).map_err(ExchangeRefusal::from)?;
                Ok(Some(spend))
            }
            None => Ok(None),
        }
    }

    async fn check_reward(&self, customer: &CustomerId, reward_id: Uuid) -> Result<(), WalletError> {
        let item = self.repo.get(reward_id).await?.filter(|i| &i.customer_id == customer);
        match item {
            None => Err(ExchangeRefusal::NotFound.into()),
            Some(i) if i.status != ItemStatus::Issued || i.remaining == 0 => {
                Err(ExchangeRefusal::AlreadyExchanged.into())
            }
            Some(_) => Ok(()),
        }
    }

    async fn take_lease(&self, customer: &CustomerId, holder: Uuid) -> Result<(), WalletError> {
        let polls = LEASE_WAIT.as_millis() / LEASE_POLL.as_millis();
        for _ in 0..polls {
            if self.repo.take_lease(customer, holder, LEASE_TTL).await? {
                return Ok(());
            }
            (self.pause)(LEASE_POLL).await;
        }
        Err(WalletError::Unavailable("another spend of this customer is in progress".into()))
    }

    async fn spend_leased(
        &self,
        cmd: &SpendPoints,
        cost: i64,
        holder: Uuid,
        ctx: &RequestContext,
    ) -> Result<(Spend, Committed), WalletError> {
        // Someone may have committed this request while we waited for the lease.
        if let Some(done) = self.done(cmd).await? {
            return Ok((done, Committed(false)));
        }
        if let Some(reward_id) = cmd.reward_id {
            self.check_reward(&cmd.customer_id, reward_id).await?;
        }
        let account = self.repo.account(&cmd.customer_id).await?;
        // Points whose expiry came are never spent, even before their EXPIRED entry.
        let items = spendable(self.repo.lots(&cmd.customer_id).await?, Utc::now());
        let lots: Vec<_> = items.iter().map(WalletItem::lot).collect();
        if account.balance < cost {
            return Err(ExchangeRefusal::from(NotEnoughPoints { cost, balance: account.balance }).into());
        }
        let draws = plan_spend(&lots, cmd.reward_id, cost).map_err(ExchangeRefusal::from)?;
        let spend_id = kernel::new_id();
        // Only a lot no spend ever touched keys the gift by its reward: one whose points
        // came back (a refund) had a gift under that key, cancelled since.
        let untouched: Vec<_> = items.iter().filter(|i| i.version == 0).map(WalletItem::lot).collect();
        let key = gift_key(&draws, &untouched, spend_id);
        let first = draws.first().map(|d| d.reward_id).or(cmd.reward_id);
        let mission_id = first.and_then(|r| lots.iter().find(|l| l.reward_id == r)).map_or(spend_id, |l| l.mission_id);
        let request = GiftRequest {
            customer_id: cmd.customer_id.clone(),
            reward_id: key,
            mission_id,
            gift_code: cmd.gift_code.clone(),
            points: cost,
        };
        let gift_id = self.gifts.issue_gift(request, ctx).await?;
        let actor = ctx.caller.clone().unwrap_or_else(|| cmd.customer_id.to_string());
        // Commit; an earning committed meanwhile moved the account: read and plan again.
        retry_on_conflict(CONFLICT_RETRIES, || async {
            let account = self.repo.account(&cmd.customer_id).await?;
            let items = spendable(self.repo.lots(&cmd.customer_id).await?, Utc::now());
            let commit = build_spend(cmd, cost, spend_id, gift_id, &actor, account, items, holder, ctx)?;
            let spend = commit.spend.clone();
            match self.repo.commit_spend(commit).await {
                Ok(()) => Ok(Some((spend, Committed(true)))),
                Err(StoreError::Conflict) => Ok(None),
                // A concurrent spend under the same request id committed first.
                Err(StoreError::Duplicate) => Err(ExchangeRefusal::from(RequestReused).into()),
                Err(e) => Err(e.into()),
            }
        })
        .await
    }
}

/// Whether this call committed the spend (and with it gave the lease back).
struct Committed(bool);

/// The rows of a spend: the `SPENT` entry, the drawn items, the spend, and a
/// `RewardExchanged` for each reward whose last points went.
#[allow(clippy::too_many_arguments)]
fn build_spend(
    cmd: &SpendPoints,
    cost: i64,
    spend_id: Uuid,
    gift_id: Uuid,
    actor: &str,
    mut account: Account,
    items: Vec<WalletItem>,
    holder: Uuid,
    ctx: &RequestContext,
) -> Result<SpendCommit, WalletError> {
    let lots: Vec<_> = items.iter().map(WalletItem::lot).collect();
    let draws = plan_spend(&lots, cmd.reward_id, cost).map_err(ExchangeRefusal::from)?;
    let now = Utc::now();
    let spent = Movement {
        kind: EntryKind::Spent,
        amount: -cost,
        reference: format!("gift:{gift_id}"),
        actor: actor.to_owned(),
        reason: String::new(),
    };
    let entry = account.record(spent, kernel::new_id(), now).map_err(ExchangeRefusal::from)?;
    let mut changed = Vec::new();
    let mut events = Vec::new();
    for draw in &draws {
        let Some(mut item) = items.iter().find(|i| i.reward_id == draw.reward_id).cloned() else { continue };
        if let Some(event) = item.draw(draw.points, gift_id, &cmd.gift_code)? {
            let mut meta = EventMeta::first(item.mission_id, &cmd.request_id, item.customer_id.clone(), now);
            meta.traceparent.clone_from(&ctx.traceparent);
            events.push(Envelope { meta, event });
        }
        changed.push(item);
    }
    let spend = Spend {
        spend_id,
        customer_id: cmd.customer_id.clone(),
        request_id: cmd.request_id.clone(),
        gift_code: cmd.gift_code.clone(),
        reward_id: cmd.reward_id,
        cost,
        gift_id,
        entry_id: entry.entry_id,
        balance_after: entry.balance_after,
        draws,
        at: now,
    };
    Ok(SpendCommit { spend, entry, items: changed, events, holder })
}

mod corrections;
mod expiry;
#[cfg(test)]
mod tests;
