//! An admin's corrections of a points account: refunding a gift (its points go back to
//! the very lots they were taken from, which keep their expiry) and adjusting a balance
//! up (a new lot that never expires) or down (drawn from the lots as a spend is, never
//! below zero). Each is one entry with who made it and why, and is remembered under its
//! request id: asked again, the same answer.

use chrono::{DateTime, Utc};
use kernel::{CustomerId, RequestReused, ValidationError};
use uuid::Uuid;

use crate::ledger::{Draw, NotEnoughPoints, plan_spend};
use crate::model::{ItemStatus, WalletItem};
use crate::spend::Spend;

/// The longest reason kept on an entry, in bytes.
pub const MAX_REASON: usize = 500;

/// Why a correction is made: required, trimmed, at most [`MAX_REASON`] bytes.
///
/// # Errors
/// `reason` when it is empty or too long.
pub fn reason(raw: &str) -> Result<String, ValidationError> {
    let r = raw.trim();
    if r.is_empty() {
        return Err(ValidationError::new("reason", "required: say why the points are corrected"));
    }
    if r.len() > MAX_REASON || r.chars().any(char::is_control) {
        return Err(ValidationError::new("reason", "must be at most 500 printable bytes"));
    }
    Ok(r.to_owned())
}

/// A request to refund a gift, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundGift {
    pub gift_id: Uuid,
    pub reason: String,
    /// Empty: every call is a new request.
    pub request_id: String,
    /// Who asks (the admin's token subject).
    pub actor: String,
}

impl RefundGift {
    /// # Errors
    /// The field at fault: `gift_id`, `reason` or `request_id`.
    pub fn new(gift_id: &str, why: &str, request_id: &str, actor: &str) -> Result<Self, ValidationError> {
        let gift_id = kernel::parse_id("gift_id", gift_id)?;
        let reason = reason(why)?;
        kernel::request_id(request_id)?;
        Ok(Self { gift_id, reason, request_id: request_id.to_owned(), actor: actor.to_owned() })
    }
}

/// A request to adjust a balance, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdjustPoints {
    pub customer_id: CustomerId,
    /// Positive: a credit; negative: a debit; never 0.
    pub amount: i64,
    pub reason: String,
    /// Empty: every call is a new request.
    pub request_id: String,
    pub actor: String,
}

impl AdjustPoints {
    /// # Errors
    /// The field at fault: `customer_id`, `amount` (0, or beyond ±1e12), `reason` or
    /// `request_id`.
    pub fn new(
        customer_id: &str,
        amount: i64,
        why: &str,
        request_id: &str,
        actor: &str,
    ) -> Result<Self, ValidationError> {
        let customer_id = CustomerId::new(customer_id)?;
        if amount == 0 {
            return Err(ValidationError::new("amount", "must not be 0: points to add (> 0) or take (< 0)"));
        }
        if amount.unsigned_abs() > 1_000_000_000_000 {
            return Err(ValidationError::new("amount", "must be at most 1e12 points either way"));
        }
        let reason = reason(why)?;
        kernel::request_id(request_id)?;
        Ok(Self { customer_id, amount, reason, request_id: request_id.to_owned(), actor: actor.to_owned() })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CorrectionKind {
    /// A gift's points given back.
    Refund { gift_id: Uuid },
    /// A credit or a debit.
    Adjustment,
}

/// A correction as committed with its entry: what the same request is answered again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Correction {
    pub correction_id: Uuid,
    pub customer_id: CustomerId,
    pub kind: CorrectionKind,
    /// Empty: none.
    pub request_id: String,
    /// Signed, as its entry.
    pub amount: i64,
    pub reason: String,
    pub actor: String,
    pub entry_id: Uuid,
    pub balance_after: i64,
    /// The lots the points went to (a refund; a credit's new lot) or came from (a debit).
    pub lots: Vec<Draw>,
    pub at: DateTime<Utc>,
}

impl Correction {
    /// Whether `cmd` is this very refund asked again.
    ///
    /// # Errors
    /// [`RequestReused`] when its request id comes with another gift or reason.
    pub fn answers_refund(&self, cmd: &RefundGift) -> Result<(), RequestReused> {
        let same = self.kind == CorrectionKind::Refund { gift_id: cmd.gift_id } && self.reason == cmd.reason;
        if same { Ok(()) } else { Err(RequestReused) }
    }

    /// Whether `cmd` is this very adjustment asked again.
    ///
    /// # Errors
    /// [`RequestReused`] when its request id comes with other parameters.
    pub fn answers_adjust(&self, cmd: &AdjustPoints) -> Result<(), RequestReused> {
        let same = self.kind == CorrectionKind::Adjustment
            && self.customer_id == cmd.customer_id
            && self.amount == cmd.amount
            && self.reason == cmd.reason;
        if same { Ok(()) } else { Err(RequestReused) }
    }
}

/// Why a correction is refused; nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CorrectionRefusal {
    #[error("the gift was already refunded")]
    AlreadyRefunded { gift_id: Uuid },
    #[error(transparent)]
    RequestReused(#[from] RequestReused),
    /// A debit beyond the balance.
    #[error("not enough points: the debit is {}, the balance is {}", .0.cost, .0.balance)]
    NotEnoughPoints(#[from] NotEnoughPoints),
    /// The stored lots do not match the spend's draws (a damaged store).
    #[error("lot {0} cannot take its points back")]
    LotMismatch(Uuid),
}

/// The lots a refunded spend's points go back to: each item it drew from (as stored now)
/// with the points it gave restored; an EXCHANGED one is ISSUED again. The lots keep
/// everything else, their expiry included.
///
/// # Errors
/// [`CorrectionRefusal::LotMismatch`] when a drawn lot is missing or cannot take its
/// points back (more than it ever held).
pub fn plan_refund(spend: &Spend, items: &[WalletItem]) -> Result<Vec<WalletItem>, CorrectionRefusal> {
    spend
        .draws
        .iter()
        .map(|d| {
            let mut item = items
                .iter()
                .find(|i| i.reward_id == d.reward_id && i.customer_id == spend.customer_id)
                .cloned()
                .ok_or(CorrectionRefusal::LotMismatch(d.reward_id))?;
            item.restore(d.points).then_some(item).ok_or(CorrectionRefusal::LotMismatch(d.reward_id))
        })
        .collect()
}

/// The lots a debit of `points` takes from, as a spend would (soonest expiry, then
/// oldest): the draws and the items after them (a lot emptied is EXCHANGED, for no gift).
///
/// # Errors
/// [`CorrectionRefusal::NotEnoughPoints`] when the lots hold less than `points`.
pub fn plan_debit(items: &[WalletItem], points: i64) -> Result<(Vec<Draw>, Vec<WalletItem>), CorrectionRefusal> {
    let lots: Vec<_> = items.iter().map(WalletItem::lot).collect();
    let draws = plan_spend(&lots, None, points)?;
    let mut changed = Vec::with_capacity(draws.len());
    for d in &draws {
        let Some(mut item) = items.iter().find(|i| i.reward_id == d.reward_id).cloned() else { continue };
        if !item.take(d.points) {
            return Err(CorrectionRefusal::LotMismatch(d.reward_id));
        }
        changed.push(item);
    }
    Ok((draws, changed))
}

impl WalletItem {
    /// Gives `points` back to the lot (a refund): it holds them again and is ISSUED.
    /// Answers false, changing nothing, when it would hold more than it ever did.
    #[must_use]
    pub fn restore(&mut self, points: i64) -> bool {
        let Some(remaining) = self.remaining.checked_add(points).filter(|r| points > 0 && *r <= self.points) else {
            return false;
        };
        self.remaining = remaining;
        self.status = ItemStatus::Issued;
        self.gift_id = None;
        self.gift_code = None;
        true
    }

    /// Takes `points` without a gift (a debit): a lot emptied is EXCHANGED. Answers
    /// false, changing nothing, when fewer are left.
    #[must_use]
    pub fn take(&mut self, points: i64) -> bool {
        if points <= 0 || points > self.remaining {
            return false;
        }
        self.remaining -= points;
        if self.remaining == 0 {
            self.status = ItemStatus::Exchanged;
        }
        true
    }

    /// A credit's lot: `points` that never expire, from no mission (its mission id is
    /// nil), under the adjustment's id.
    pub fn credit(lot_id: Uuid, customer_id: CustomerId, points: i64) -> Self {
        Self::issue(lot_id, Uuid::nil(), customer_id, points).0
    }
}

#[cfg(test)]
mod tests;
