//! Expiry: lots whose time has come leave the balance, one `EXPIRED` entry each, once.

use chrono::{DateTime, Utc};
use kernel::{CONFLICT_RETRIES, CustomerId, Envelope, EventMeta, StoreError, retry_on_conflict};

use super::{LEASE_TTL, SYSTEM_ACTOR, WalletError, WalletService};
use crate::expiry::{ExpiryNotice, notices};
use crate::ledger::{EntryKind, LedgerEntry, Movement};
use crate::model::WalletEvent;
use crate::ports::{ExpiryCommit, GiftIssuer, WalletRepository};

impl<R: WalletRepository, G: GiftIssuer> WalletService<R, G> {
    /// Expires every lot whose time has come at `now` (at most `limit` customers a call):
    /// what is left of each leaves the balance as an `EXPIRED` entry. Safe on any number
    /// of replicas at once: a customer's expiry holds their spending lease and empties
    /// each lot at the version it read, so a lot expires once. A customer busy spending
    /// is left for the next call.
    ///
    /// # Errors
    /// `Unavailable` when the store is down (the next call tries again).
    pub async fn expire_due(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<LedgerEntry>, WalletError> {
        let mut expired = Vec::new();
        for customer in self.repo.due_for_expiry(now, limit).await? {
            expired.extend(self.expire_customer(&customer, now).await?);
        }
        Ok(expired)
    }

    /// Tells each customer, once per date, of points expiring within `within` of `now`
    /// (a `PointsExpiring` event the notification service e-mails). Answers the notices
    /// this call published.
    ///
    /// # Errors
    /// `Unavailable` when the store is down (the next call tries again).
    pub async fn notify_expiring(
        &self,
        now: DateTime<Utc>,
        within: std::time::Duration,
        limit: usize,
    ) -> Result<Vec<ExpiryNotice>, WalletError> {
        let until = chrono::Duration::from_std(within).ok().and_then(|w| now.checked_add_signed(w)).unwrap_or(now);
        let lots = self.repo.lots_expiring(now, until, limit).await?;
        let mut told = Vec::new();
        for notice in notices(&lots, now, within) {
            let meta = EventMeta::first(kernel::new_id(), "", notice.customer_id.clone(), now);
            let event = Envelope { meta, event: WalletEvent::PointsExpiring(notice.clone()) };
            match self.repo.record_notice(event).await {
                Ok(()) => told.push(notice),
                Err(StoreError::Duplicate) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(told)
    }

    /// The sum of every customer's balance: the points outstanding.
    ///
    /// # Errors
    /// `Unavailable` when the store is down.
    pub async fn outstanding(&self) -> Result<i64, WalletError> {
        Ok(self.repo.outstanding().await?)
    }

    /// Expires the customer's lots whose time has come at `now`; nothing when another
    /// spend or expiry of theirs holds the lease.
    pub(super) async fn expire_customer(
        &self,
        customer: &CustomerId,
        now: DateTime<Utc>,
    ) -> Result<Vec<LedgerEntry>, WalletError> {
        let holder = kernel::new_id();
        if !self.repo.take_lease(customer, holder, LEASE_TTL).await? {
            return Ok(Vec::new());
        }
        let result = retry_on_conflict(CONFLICT_RETRIES, || async {
            let mut account = self.repo.account(customer).await?;
            let mut items = self.repo.lots(customer).await?;
            items.sort_by_key(|i| (i.expires_at, i.reward_id));
            let mut entries = Vec::new();
            let mut emptied = Vec::new();
            for mut item in items {
                let points = item.expire(now);
                if points == 0 {
                    continue;
                }
                let at = item.expires_at.unwrap_or(now);
                let expired = Movement {
                    kind: EntryKind::Expired,
                    amount: -points,
                    reference: format!("reward:{}", item.reward_id),
                    actor: SYSTEM_ACTOR.into(),
                    reason: format!("points expired at {}", at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
                };
                let entry = account.record(expired, kernel::new_id(), now).map_err(|e| {
                    WalletError::Unavailable(format!("the lots of {customer} hold more than the balance: {e}"))
                })?;
                entries.push(entry);
                emptied.push(item);
            }
            if entries.is_empty() {
                return Ok(Some(entries));
            }
            let commit = ExpiryCommit { entries: entries.clone(), items: emptied, holder };
            match self.repo.commit_expiry(commit).await {
                Ok(()) => Ok(Some(entries)),
                Err(StoreError::Conflict) => Ok(None),
                Err(e) => Err(e.into()),
            }
        })
        .await;
        // A commit gave the lease back; nothing to commit or a failure gives it back here.
        if !matches!(&result, Ok(e) if !e.is_empty()) {
            self.repo.release_lease(customer, holder).await?;
        }
        result
    }
}
