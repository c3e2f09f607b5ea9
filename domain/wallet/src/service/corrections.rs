//! The admin's corrections: refunding a gift, adjusting a balance.

use chrono::Utc;
use kernel::{CONFLICT_RETRIES, RequestContext, StoreError, retry_on_conflict};
use uuid::Uuid;

use super::{Committed, WalletError, WalletService};
use crate::correction::{
    AdjustPoints, Correction, CorrectionKind, CorrectionRefusal, RefundGift, plan_debit, plan_refund,
};
use crate::expiry::spendable;
use crate::ledger::{Draw, EntryKind, Movement};
use crate::model::WalletItem;
use crate::ports::{CorrectionCommit, GiftIssuer, WalletRepository};

impl<R: WalletRepository, G: GiftIssuer> WalletService<R, G> {
    /// Refunds a gift: the gift service cancels it (an unused gift only; its stock comes
    /// back), then its points go back to the lots the spend took them from, as a
    /// `REFUNDED` entry. The cancel is idempotent, so a refund whose gift was cancelled
    /// but whose points were not credited (the wallet failed between the two) is
    /// completed by asking again.
    ///
    /// # Errors
    /// `NotFound("gift")` for a gift no spend paid for; `Correction(AlreadyRefunded)`;
    /// `Correction(RequestReused)`; `GiftRefused` (e.g. `GIFT_ALREADY_USED`);
    /// `GiftUnavailable`; `Unavailable`.
    pub async fn refund(&self, cmd: RefundGift, ctx: &RequestContext) -> Result<Correction, WalletError> {
        if let Some(done) = self.answered(&cmd.request_id).await? {
            done.answers_refund(&cmd).map_err(CorrectionRefusal::from)?;
            return Ok(done);
        }
        if self.repo.refund_of(cmd.gift_id).await?.is_some() {
            return Err(CorrectionRefusal::AlreadyRefunded { gift_id: cmd.gift_id }.into());
        }
        let spend = self.repo.find_spend_by_gift(cmd.gift_id).await?.ok_or(WalletError::NotFound("gift"))?;
        self.gifts.cancel_gift(cmd.gift_id, ctx).await?;
        let correction_id = kernel::new_id();
        let cmd = &cmd;
        let spend = &spend;
        let committed = retry_on_conflict(CONFLICT_RETRIES, move || async move {
            let mut account = self.repo.account(&spend.customer_id).await?;
            let mut items = Vec::with_capacity(spend.draws.len());
            for d in &spend.draws {
                items.extend(self.repo.get(d.reward_id).await?);
            }
            let restored = plan_refund(spend, &items)?;
            let points: i64 = spend.draws.iter().map(|d| d.points).sum();
            let refunded = Movement {
                kind: EntryKind::Refunded,
                amount: points,
                reference: format!("gift:{}", cmd.gift_id),
                actor: cmd.actor.clone(),
                reason: cmd.reason.clone(),
            };
            let entry = account.record(refunded, kernel::new_id(), Utc::now()).map_err(CorrectionRefusal::from)?;
            let correction = Correction {
                correction_id,
                customer_id: spend.customer_id.clone(),
                kind: CorrectionKind::Refund { gift_id: cmd.gift_id },
                request_id: cmd.request_id.clone(),
                amount: points,
                reason: cmd.reason.clone(),
                actor: cmd.actor.clone(),
                entry_id: entry.entry_id,
                balance_after: entry.balance_after,
                lots: spend.draws.clone(),
                at: entry.at,
            };
            let commit = CorrectionCommit { correction, entry, items: restored, new_lot: None, holder: None };
            self.commit_correction(commit).await
        })
        .await;
        if let Ok(done) = &committed {
            // Points given back to a lot whose expiry has passed keep that expiry: they
            // leave again at once (never spendable meanwhile; the next scan does it
            // otherwise, should this fail or the customer be busy).
            let _ = self.expire_customer(&done.customer_id, Utc::now()).await;
        }
        match committed {
            // Refunded meanwhile: by this very request, or by another.
            Err(WalletError::Correction(CorrectionRefusal::AlreadyRefunded { .. })) => {
                match self.answered(&cmd.request_id).await? {
                    Some(done) => {
                        done.answers_refund(cmd).map_err(CorrectionRefusal::from)?;
                        Ok(done)
                    }
                    None => Err(CorrectionRefusal::AlreadyRefunded { gift_id: cmd.gift_id }.into()),
                }
            }
            other => other,
        }
    }

    /// Adjusts a customer's balance by `cmd.amount` as an `ADJUSTED` entry: a credit is a
    /// new lot that never expires; a debit draws from the lots as a spend does (one at a
    /// time with the customer's spends), never below zero.
    ///
    /// # Errors
    /// `Correction(NotEnoughPoints)` for a debit beyond the balance;
    /// `Correction(RequestReused)`; `Unavailable`.
    pub async fn adjust(&self, cmd: AdjustPoints) -> Result<Correction, WalletError> {
        if let Some(done) = self.answered(&cmd.request_id).await? {
            done.answers_adjust(&cmd).map_err(CorrectionRefusal::from)?;
            return Ok(done);
        }
        let slot = self.spenders.slot(&cmd.customer_id);
        let _one_at_a_time = slot.lock().await;
        let holder = kernel::new_id();
        self.take_lease(&cmd.customer_id, holder).await?;
        let result = self.adjust_leased(&cmd, holder).await;
        if !matches!(result, Ok((_, Committed(true))))
            && let Err(e) = self.repo.release_lease(&cmd.customer_id, holder).await
        {
            return Err(e.into());
        }
        result.map(|(c, _)| c)
    }

    async fn adjust_leased(&self, cmd: &AdjustPoints, holder: Uuid) -> Result<(Correction, Committed), WalletError> {
        // Someone may have committed this request while we waited for the lease.
        if let Some(done) = self.answered(&cmd.request_id).await? {
            done.answers_adjust(cmd).map_err(CorrectionRefusal::from)?;
            return Ok((done, Committed(false)));
        }
        let correction_id = kernel::new_id();
        retry_on_conflict(CONFLICT_RETRIES, || async {
            let mut account = self.repo.account(&cmd.customer_id).await?;
            let (lots, items, new_lot) = if cmd.amount > 0 {
                let lot = WalletItem::credit(correction_id, cmd.customer_id.clone(), cmd.amount);
                (vec![Draw { reward_id: lot.reward_id, points: cmd.amount }], vec![], Some(lot))
            } else {
                if account.balance < -cmd.amount {
                    let short = crate::NotEnoughPoints { cost: -cmd.amount, balance: account.balance };
                    return Err(CorrectionRefusal::from(short).into());
                }
                let lots = spendable(self.repo.lots(&cmd.customer_id).await?, Utc::now());
                let (draws, items) = plan_debit(&lots, -cmd.amount)?;
                (draws, items, None)
            };
            let adjusted = Movement {
                kind: EntryKind::Adjusted,
                amount: cmd.amount,
                reference: format!("adjustment:{correction_id}"),
                actor: cmd.actor.clone(),
                reason: cmd.reason.clone(),
            };
            let entry = account.record(adjusted, kernel::new_id(), Utc::now()).map_err(CorrectionRefusal::from)?;
            let correction = Correction {
                correction_id,
                customer_id: cmd.customer_id.clone(),
                kind: CorrectionKind::Adjustment,
                request_id: cmd.request_id.clone(),
                amount: cmd.amount,
                reason: cmd.reason.clone(),
                actor: cmd.actor.clone(),
                entry_id: entry.entry_id,
                balance_after: entry.balance_after,
                lots,
                at: entry.at,
            };
            let commit = CorrectionCommit { correction, entry, items, new_lot, holder: Some(holder) };
            Ok(self.commit_correction(commit).await?.map(|c| (c, Committed(true))))
        })
        .await
    }

    /// Commits a correction: `None` when the account or a lot moved (read and plan
    /// again).
    async fn commit_correction(&self, commit: CorrectionCommit) -> Result<Option<Correction>, WalletError> {
        let correction = commit.correction.clone();
        match self.repo.commit_correction(commit).await {
            Ok(()) => Ok(Some(correction)),
            Err(StoreError::Conflict) => Ok(None),
            // The request id, or the gift's refund, is taken by a correction committed
            // meanwhile.
            Err(StoreError::Duplicate) => match correction.kind {
                CorrectionKind::Refund { gift_id } => Err(CorrectionRefusal::AlreadyRefunded { gift_id }.into()),
                CorrectionKind::Adjustment => Err(CorrectionRefusal::from(kernel::RequestReused).into()),
            },
            Err(e) => Err(e.into()),
        }
    }

    /// The correction `request_id` made already, if any.
    async fn answered(&self, request_id: &str) -> Result<Option<Correction>, WalletError> {
        if request_id.is_empty() {
            return Ok(None);
        }
        Ok(self.repo.correction(request_id).await?)
    }
}
