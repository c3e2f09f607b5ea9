//! Ports of the wallet context.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use kernel::paging::{Page, PageRequest};
use kernel::{CustomerId, Envelope, Inbound, RequestContext, StoreError};
use uuid::Uuid;

use crate::correction::Correction;
use crate::ledger::{Account, EntryKind, LedgerEntry};
use crate::model::{WalletEvent, WalletItem};
use crate::spend::Spend;

/// Where wallet items live, with the outbox of their events and the inbox.
///
/// # Errors
/// Every method returns [`StoreError::Unavailable`] when the store cannot be used.
pub trait WalletRepository: Send + Sync + 'static {
    fn get(&self, reward_id: Uuid) -> impl Future<Output = Result<Option<WalletItem>, StoreError>> + Send;

    /// A page of the customer's items, newest first.
    fn list_by_customer(
        &self,
        customer: &CustomerId,
        page: PageRequest,
    ) -> impl Future<Output = Result<Page<WalletItem>, StoreError>> + Send;

    /// The customer's points account (an empty one when they never had points).
    fn account(&self, customer: &CustomerId) -> impl Future<Output = Result<Account, StoreError>> + Send;

    /// The customer's items with points left (the lots a spend draws from).
    fn lots(&self, customer: &CustomerId) -> impl Future<Output = Result<Vec<WalletItem>, StoreError>> + Send;

    /// A page of the customer's ledger, newest first; only entries of `kind` when given.
    fn ledger(
        &self,
        customer: &CustomerId,
        kind: Option<EntryKind>,
        page: PageRequest,
    ) -> impl Future<Output = Result<Page<LedgerEntry>, StoreError>> + Send;

    /// Stores a new item, its `EARNED` entry (the account moves from `entry.seq - 1`
    /// entries to `entry.seq`), its events and the handled event in one transaction.
    ///
    /// # Errors
    /// [`StoreError::Duplicate`] when the reward is already in a wallet or `inbound`
    /// was already handled; [`StoreError::Conflict`] when the account moved since it was
    /// read. Nothing is written.
    fn insert(
        &self,
        item: &WalletItem,
        entry: &LedgerEntry,
        events: Vec<Envelope<WalletEvent>>,
        inbound: Inbound,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The customer's spend made by `request_id`, if any.
    fn find_spend(
        &self,
        customer: &CustomerId,
        request_id: &str,
    ) -> impl Future<Output = Result<Option<Spend>, StoreError>> + Send;

    /// Takes the customer's spending lease for `holder` (one spend at a time per
    /// customer, across replicas): `false` while another holder has it and it is younger
    /// than `ttl`.
    fn take_lease(
        &self,
        customer: &CustomerId,
        holder: Uuid,
        ttl: Duration,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Gives the lease back (nothing when `holder` no longer has it).
    fn release_lease(&self, customer: &CustomerId, holder: Uuid)
    -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Commits a spend in one transaction: its `SPENT` entry (the account moves from
    /// `entry.seq - 1` entries to `entry.seq`), the drawn items (each at the version it
    /// was read), the spend, its events, and the lease given back.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when the account or an item moved, or `holder` lost the
    /// lease; [`StoreError::Duplicate`] when the request id already made another spend.
    /// Nothing is written.
    fn commit_spend(&self, commit: SpendCommit) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The spend that paid for `gift_id`, with the lots it drew from.
    fn find_spend_by_gift(&self, gift_id: Uuid) -> impl Future<Output = Result<Option<Spend>, StoreError>> + Send;

    /// The refund of `gift_id`, if it was refunded.
    fn refund_of(&self, gift_id: Uuid) -> impl Future<Output = Result<Option<Correction>, StoreError>> + Send;

    /// The correction (refund or adjustment) made by `request_id`, if any.
    fn correction(&self, request_id: &str) -> impl Future<Output = Result<Option<Correction>, StoreError>> + Send;

    /// Commits a correction in one transaction: its entry (the account moves from
    /// `entry.seq - 1` entries to `entry.seq`), the changed lots (each at the version it
    /// was read), the new lot of a credit, the correction with its lots, and, with a
    /// `holder`, the customer's spending lease given back.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when the account or a lot moved, or `holder` lost the
    /// lease; [`StoreError::Duplicate`] when the request id already made a correction or
    /// the gift was refunded already. Nothing is written.
    fn commit_correction(&self, commit: CorrectionCommit) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Customers with a lot whose expiry has come at `now` and points left in it (at
    /// most `limit`, soonest expiry first).
    fn due_for_expiry(
        &self,
        now: chrono::DateTime<chrono::Utc>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<CustomerId>, StoreError>> + Send;

    /// Commits a customer's expiries in one transaction: each `EXPIRED` entry in turn
    /// (the account moves from `seq - 1` entries to `seq`), the emptied lots (each at the
    /// version it was read: a lot expires once), and the spending lease given back.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when the account or a lot moved, or `holder` lost the
    /// lease. Nothing is written.
    fn commit_expiry(&self, commit: ExpiryCommit) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Lots with points left whose expiry is after `after` and at most `until` (at most
    /// `limit`, soonest first).
    fn lots_expiring(
        &self,
        after: chrono::DateTime<chrono::Utc>,
        until: chrono::DateTime<chrono::Utc>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<WalletItem>, StoreError>> + Send;

    /// Records that `event` (a `PointsExpiring`) told the customer about its date, with
    /// the event, in one transaction.
    ///
    /// # Errors
    /// [`StoreError::Duplicate`] when that customer and date were told already.
    fn record_notice(&self, event: Envelope<WalletEvent>) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The sum of every customer's balance (the points outstanding).
    fn outstanding(&self) -> impl Future<Output = Result<i64, StoreError>> + Send;
}

/// Everything one customer's expiry writes.
#[derive(Debug, Clone)]
pub struct ExpiryCommit {
    /// One `EXPIRED` entry per lot, in `seq` order.
    pub entries: Vec<LedgerEntry>,
    /// The expired lots, emptied, `version` as read.
    pub items: Vec<WalletItem>,
    pub holder: Uuid,
}

/// Everything one correction writes.
#[derive(Debug, Clone)]
pub struct CorrectionCommit {
    pub correction: Correction,
    pub entry: LedgerEntry,
    /// The lots as they are after it, `version` as read.
    pub items: Vec<WalletItem>,
    /// A credit's new lot.
    pub new_lot: Option<WalletItem>,
    /// The spending lease held (a debit or credit), given back by the commit.
    pub holder: Option<Uuid>,
}

/// Everything one spend writes.
#[derive(Debug, Clone)]
pub struct SpendCommit {
    pub spend: Spend,
    pub entry: LedgerEntry,
    /// The drawn items as they are after it, `version` as read.
    pub items: Vec<WalletItem>,
    pub events: Vec<Envelope<WalletEvent>>,
    pub holder: Uuid,
}

/// The gift service, as the wallet needs it: issue a gift for a reward, idempotent on
/// the reward (asking again returns the same gift). The adapter calls it as the wallet
/// itself (its own service identity, its own token), never with the customer's
/// credentials; `ctx` is the exchange's request (its trace goes on to the gift service).
pub trait GiftIssuer: Send + Sync + 'static {
    /// What `gift_code` costs in points, from the gift catalog.
    ///
    /// # Errors
    /// `Invalid` (field `gift_code`) for a gift not in the catalog; `Unavailable`.
    fn cost(&self, gift_code: &str, ctx: &RequestContext) -> impl Future<Output = Result<i64, GiftCallError>> + Send;

    /// # Errors
    /// [`GiftCallError`]: a refusal of the request, or the gift service unavailable.
    fn issue_gift(
        &self,
        request: GiftRequest,
        ctx: &RequestContext,
    ) -> impl Future<Output = Result<Uuid, GiftCallError>> + Send;

    /// Cancels an unused gift (a refund), giving its stock back. Idempotent: a gift
    /// cancelled already is fine.
    ///
    /// # Errors
    /// `Refused` for a used gift (reason `GIFT_ALREADY_USED`) or an unknown one;
    /// `Unavailable`.
    fn cancel_gift(
        &self,
        gift_id: Uuid,
        ctx: &RequestContext,
    ) -> impl Future<Output = Result<(), GiftCallError>> + Send;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GiftRequest {
    pub customer_id: CustomerId,
    pub reward_id: Uuid,
    pub mission_id: Uuid,
    pub gift_code: String,
    pub points: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GiftCallError {
    /// The request was wrong (unknown gift): the field at fault.
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    /// The gift service refused (out of stock, a limit reached, not enough points...).
    #[error(transparent)]
    Refused(GiftRefusal),
    /// The gift service cannot answer now: try again after `retry_after`.
    #[error("gift service unavailable: {reason}")]
    Unavailable { retry_after: Duration, reason: String },
}

/// The gift service's refusal, as its customer should hear it: the gift's own message
/// ("founders-badge is out of stock") and, when the gift's rules gave them, the reason
/// and details a program reads (`GIFT_OUT_OF_STOCK`; `gift_code`, `next_available_at`),
/// passed on unchanged so that the player learns what the gift service said.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct GiftRefusal {
    pub message: String,
    /// The machine-readable reason and its metadata, when the gift service gave one.
    pub reason: Option<(String, BTreeMap<String, String>)>,
}
