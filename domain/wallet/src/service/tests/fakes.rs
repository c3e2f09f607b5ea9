//! In-memory fakes of the wallet's ports, faithful to their contracts.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use kernel::paging::{Page, PageRequest};
use kernel::{CustomerId, Envelope, Inbound, RequestContext, StoreError, new_id};
use uuid::Uuid;

use crate::correction::{Correction, CorrectionKind};
use crate::ledger::{Account, EntryKind, LedgerEntry};
use crate::model::{WalletEvent, WalletItem};
use crate::ports::{
    CorrectionCommit, ExpiryCommit, GiftCallError, GiftIssuer, GiftRequest, SpendCommit, WalletRepository,
};
use crate::spend::Spend;

#[derive(Default)]
pub(super) struct Memory {
    pub(super) items: Mutex<HashMap<Uuid, WalletItem>>,
    pub(super) accounts: Mutex<HashMap<CustomerId, Account>>,
    pub(super) entries: Mutex<Vec<LedgerEntry>>,
    pub(super) spends: Mutex<Vec<Spend>>,
    pub(super) leases: Mutex<HashMap<CustomerId, Uuid>>,
    pub(super) inbox: Mutex<HashSet<Uuid>>,
    pub(super) outbox: Mutex<Vec<Envelope<WalletEvent>>>,
    pub(super) corrections: Mutex<Vec<Correction>>,
    /// Commits of corrections that fail (the store down) before one passes.
    pub(super) failing_corrections: Mutex<usize>,
}

impl Memory {
    fn apply_entry(&self, entry: &LedgerEntry) -> Result<(), StoreError> {
        let mut accounts = self.accounts.lock().unwrap();
        let account =
            accounts.entry(entry.customer_id.clone()).or_insert_with(|| Account::open(entry.customer_id.clone()));
        if account.entries != entry.seq - 1 {
            return Err(StoreError::Conflict);
        }
        *account = Account { customer_id: entry.customer_id.clone(), balance: entry.balance_after, entries: entry.seq };
        self.entries.lock().unwrap().push(entry.clone());
        Ok(())
    }

    pub(super) fn sum_of_entries(&self, c: &CustomerId) -> i64 {
        self.entries.lock().unwrap().iter().filter(|e| &e.customer_id == c).map(|e| e.amount).sum()
    }
}

impl WalletRepository for Memory {
    async fn get(&self, id: Uuid) -> Result<Option<WalletItem>, StoreError> {
        Ok(self.items.lock().unwrap().get(&id).cloned())
    }
    async fn list_by_customer(&self, c: &CustomerId, page: PageRequest) -> Result<Page<WalletItem>, StoreError> {
        let mut all: Vec<_> = self.items.lock().unwrap().values().filter(|i| &i.customer_id == c).cloned().collect();
        all.sort_by_key(|i| std::cmp::Reverse(i.reward_id));
        all.retain(|i| page.before.is_none_or(|b| i.reward_id < b));
        all.truncate(page.size + 1);
        Ok(Page::from_probe(all, page, |i| i.reward_id))
    }
    async fn account(&self, c: &CustomerId) -> Result<Account, StoreError> {
        Ok(self.accounts.lock().unwrap().get(c).cloned().unwrap_or_else(|| Account::open(c.clone())))
    }
    async fn lots(&self, c: &CustomerId) -> Result<Vec<WalletItem>, StoreError> {
        let items = self.items.lock().unwrap();
        Ok(items.values().filter(|i| &i.customer_id == c && i.remaining > 0).cloned().collect())
    }
    async fn ledger(
        &self,
        c: &CustomerId,
        kind: Option<EntryKind>,
        page: PageRequest,
    ) -> Result<Page<LedgerEntry>, StoreError> {
        let mut all: Vec<_> = self
            .entries
            .lock()
            .unwrap()
            .iter()
            .filter(|e| &e.customer_id == c && kind.is_none_or(|k| e.kind == k))
            .filter(|e| page.before.is_none_or(|b| e.entry_id < b))
            .cloned()
            .collect();
        all.sort_by_key(|e| std::cmp::Reverse(e.entry_id));
        all.truncate(page.size + 1);
        Ok(Page::from_probe(all, page, |e| e.entry_id))
    }
    async fn insert(
        &self,
        item: &WalletItem,
        entry: &LedgerEntry,
        events: Vec<Envelope<WalletEvent>>,
        inbound: Inbound,
    ) -> Result<(), StoreError> {
        if self.items.lock().unwrap().contains_key(&item.reward_id)
            || self.inbox.lock().unwrap().contains(&inbound.event_id)
        {
            return Err(StoreError::Duplicate);
        }
        self.apply_entry(entry)?;
        self.inbox.lock().unwrap().insert(inbound.event_id);
        self.items.lock().unwrap().insert(item.reward_id, item.clone());
        self.outbox.lock().unwrap().extend(events);
        Ok(())
    }
    async fn find_spend(&self, c: &CustomerId, r: &str) -> Result<Option<Spend>, StoreError> {
        Ok(self.spends.lock().unwrap().iter().find(|s| &s.customer_id == c && s.request_id == r).cloned())
    }
    async fn take_lease(&self, c: &CustomerId, holder: Uuid, _: Duration) -> Result<bool, StoreError> {
        let mut leases = self.leases.lock().unwrap();
        Ok(*leases.entry(c.clone()).or_insert(holder) == holder)
    }
    async fn release_lease(&self, c: &CustomerId, holder: Uuid) -> Result<(), StoreError> {
        let mut leases = self.leases.lock().unwrap();
        if leases.get(c) == Some(&holder) {
            leases.remove(c);
        }
        Ok(())
    }
    async fn commit_spend(&self, commit: SpendCommit) -> Result<(), StoreError> {
        let c = &commit.spend.customer_id.clone();
        if self.leases.lock().unwrap().get(c) != Some(&commit.holder) {
            return Err(StoreError::Conflict);
        }
        let r = &commit.spend.request_id;
        if !r.is_empty() && self.find_spend(c, r).await?.is_some() {
            return Err(StoreError::Duplicate);
        }
        for item in &commit.items {
            if self.items.lock().unwrap()[&item.reward_id].version != item.version {
                return Err(StoreError::Conflict);
            }
        }
        self.apply_entry(&commit.entry)?;
        for item in commit.items {
            self.items.lock().unwrap().insert(item.reward_id, WalletItem { version: item.version + 1, ..item });
        }
        self.spends.lock().unwrap().push(commit.spend);
        self.outbox.lock().unwrap().extend(commit.events);
        self.leases.lock().unwrap().remove(c);
        Ok(())
    }
    async fn find_spend_by_gift(&self, gift_id: Uuid) -> Result<Option<Spend>, StoreError> {
        Ok(self.spends.lock().unwrap().iter().find(|s| s.gift_id == gift_id).cloned())
    }
    async fn refund_of(&self, gift_id: Uuid) -> Result<Option<Correction>, StoreError> {
        let refund = CorrectionKind::Refund { gift_id };
        Ok(self.corrections.lock().unwrap().iter().find(|c| c.kind == refund).cloned())
    }
    async fn correction(&self, r: &str) -> Result<Option<Correction>, StoreError> {
        Ok(self.corrections.lock().unwrap().iter().find(|c| c.request_id == r).cloned())
    }
    async fn commit_correction(&self, commit: CorrectionCommit) -> Result<(), StoreError> {
        {
            let mut failing = self.failing_corrections.lock().unwrap();
            if *failing > 0 {
                *failing -= 1;
                return Err(StoreError::Unavailable("down".into()));
            }
        }
        let c = commit.correction.clone();
        if let Some(holder) = commit.holder
            && self.leases.lock().unwrap().get(&c.customer_id) != Some(&holder)
        {
            return Err(StoreError::Conflict);
        }
        let refunded = match c.kind {
            CorrectionKind::Refund { gift_id } => self.refund_of(gift_id).await?.is_some(),
            CorrectionKind::Adjustment => false,
        };
        if refunded || (!c.request_id.is_empty() && self.correction(&c.request_id).await?.is_some()) {
            return Err(StoreError::Duplicate);
        }
        for item in &commit.items {
            if self.items.lock().unwrap()[&item.reward_id].version != item.version {
                return Err(StoreError::Conflict);
            }
        }
        self.apply_entry(&commit.entry)?;
        let mut items = self.items.lock().unwrap();
        for item in commit.items {
            items.insert(item.reward_id, WalletItem { version: item.version + 1, ..item });
        }
        if let Some(lot) = commit.new_lot {
            items.insert(lot.reward_id, lot);
        }
        self.corrections.lock().unwrap().push(commit.correction);
        if commit.holder.is_some() {
            self.leases.lock().unwrap().remove(&c.customer_id);
        }
        Ok(())
    }
    async fn due_for_expiry(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<CustomerId>, StoreError> {
        let items = self.items.lock().unwrap();
        let mut due: Vec<_> = items.values().filter(|i| i.remaining > 0 && i.is_expired(now)).collect();
        due.sort_by_key(|i| i.expires_at);
        let mut customers: Vec<CustomerId> = Vec::new();
        for i in due {
            if !customers.contains(&i.customer_id) && customers.len() < limit {
                customers.push(i.customer_id.clone());
            }
        }
        Ok(customers)
    }
    async fn commit_expiry(&self, commit: ExpiryCommit) -> Result<(), StoreError> {
        let Some(c) = commit.entries.first().map(|e| e.customer_id.clone()) else { return Ok(()) };
        if self.leases.lock().unwrap().get(&c) != Some(&commit.holder) {
            return Err(StoreError::Conflict);
        }
        for item in &commit.items {
            if self.items.lock().unwrap()[&item.reward_id].version != item.version {
                return Err(StoreError::Conflict);
            }
        }
        for entry in &commit.entries {
            self.apply_entry(entry)?;
        }
        let mut items = self.items.lock().unwrap();
        for item in commit.items {
            items.insert(item.reward_id, WalletItem { version: item.version + 1, ..item });
        }
        self.leases.lock().unwrap().remove(&c);
        Ok(())
    }
    async fn lots_expiring(
        &self,
        after: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<WalletItem>, StoreError> {
        let items = self.items.lock().unwrap();
        let mut due: Vec<_> = items
            .values()
            .filter(|i| i.remaining > 0 && i.expires_at.is_some_and(|at| at > after && at <= until))
            .cloned()
            .collect();
        due.sort_by_key(|i| i.expires_at);
        due.truncate(limit);
        Ok(due)
    }
    async fn record_notice(&self, event: Envelope<WalletEvent>) -> Result<(), StoreError> {
        let WalletEvent::PointsExpiring(n) = &event.event else {
            return Err(StoreError::Unavailable("not a notice".into()));
        };
        let mut outbox = self.outbox.lock().unwrap();
        let told = |e: &Envelope<WalletEvent>| matches!(&e.event, WalletEvent::PointsExpiring(o) if o.customer_id == n.customer_id && o.date == n.date);
        if outbox.iter().any(told) {
            return Err(StoreError::Duplicate);
        }
        outbox.push(event);
        Ok(())
    }
    async fn outstanding(&self) -> Result<i64, StoreError> {
        Ok(self.accounts.lock().unwrap().values().map(|a| a.balance).sum())
    }
}

/// A gift service with coffee (10) and movie-ticket (50): it answers what the test says,
/// issues one gift per key (idempotent, as the real one) and counts calls.
pub(super) struct Gifts {
    pub(super) answer: Mutex<Result<(), GiftCallError>>,
    pub(super) issued: Mutex<HashMap<Uuid, Uuid>>,
    pub(super) calls: Mutex<usize>,
    /// The answer to a cancel; the gifts cancelled.
    pub(super) cancel_answer: Mutex<Result<(), GiftCallError>>,
    pub(super) cancelled: Mutex<Vec<Uuid>>,
}

impl Gifts {
    pub(super) fn issuing() -> Self {
        Self::answering(Ok(()))
    }
    pub(super) fn answering(answer: Result<(), GiftCallError>) -> Self {
        Self {
            answer: Mutex::new(answer),
            issued: Mutex::default(),
            calls: Mutex::new(0),
            cancel_answer: Mutex::new(Ok(())),
            cancelled: Mutex::default(),
        }
    }
}

impl GiftIssuer for Gifts {
    async fn cost(&self, gift_code: &str, _: &RequestContext) -> Result<i64, GiftCallError> {
        match gift_code {
            "coffee" => Ok(10),
            "movie-ticket" => Ok(50),
            _ => Err(GiftCallError::Invalid { field: "gift_code".into(), reason: "unknown gift".into() }),
        }
    }
    async fn issue_gift(&self, r: GiftRequest, _: &RequestContext) -> Result<Uuid, GiftCallError> {
        *self.calls.lock().unwrap() += 1;
        self.answer.lock().unwrap().clone()?;
        assert!(r.points >= self.cost(&r.gift_code, &RequestContext::default()).await?, "paid in full");
        Ok(*self.issued.lock().unwrap().entry(r.reward_id).or_insert_with(new_id))
    }
    async fn cancel_gift(&self, gift_id: Uuid, _: &RequestContext) -> Result<(), GiftCallError> {
        self.cancel_answer.lock().unwrap().clone()?;
        self.cancelled.lock().unwrap().push(gift_id);
        Ok(())
    }
}
