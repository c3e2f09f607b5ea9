//! Ports of the wallet context.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use kernel::paging::{Page, PageRequest};
use kernel::{CustomerId, Envelope, Inbound, RequestContext, StoreError};
use uuid::Uuid;

use crate::model::{WalletEvent, WalletItem};

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

    /// The points of the customer's items still issued (see [`crate::model::available_points`]).
    fn available_points(&self, customer: &CustomerId) -> impl Future<Output = Result<i64, StoreError>> + Send;

    /// Stores a new item, its events and the handled event in one transaction.
    ///
    /// # Errors
    /// [`StoreError::Duplicate`] when the reward is already in a wallet or `inbound`
    /// was already handled (nothing is written).
    fn insert(
        &self,
        item: &WalletItem,
        events: Vec<Envelope<WalletEvent>>,
        inbound: Inbound,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The customer's item exchanged by `request_id`, if any.
    fn find_by_exchange_request(
        &self,
        customer: &CustomerId,
        request_id: &str,
    ) -> impl Future<Output = Result<Option<WalletItem>, StoreError>> + Send;

    /// Stores a changed item and its events in one transaction.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when the stored version is not `item.version`;
    /// [`StoreError::Duplicate`] when another of the customer's items was exchanged by
    /// the same request id (a request id names one exchange). Nothing is written.
    fn update(
        &self,
        item: &WalletItem,
        events: Vec<Envelope<WalletEvent>>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// The gift service, as the wallet needs it: issue a gift for a reward, idempotent on
/// the reward (asking again returns the same gift). The adapter calls it as the wallet
/// itself (its own service identity, its own token), never with the customer's
/// credentials; `ctx` is the exchange's request (its trace goes on to the gift service).
pub trait GiftIssuer: Send + Sync + 'static {
    /// # Errors
    /// [`GiftCallError`]: a refusal of the request, or the gift service unavailable.
    fn issue_gift(
        &self,
        request: GiftRequest,
        ctx: &RequestContext,
    ) -> impl Future<Output = Result<Uuid, GiftCallError>> + Send;
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
