//! Ports of the reward context.

use std::future::Future;

use kernel::paging::{Page, PageRequest};
use kernel::{CustomerId, Envelope, Inbound, StoreError};
use uuid::Uuid;

use crate::model::{Reward, RewardEvent, RewardStatus};

/// Where rewards live, with the outbox of their events and the inbox of handled events.
///
/// # Errors
/// Every method returns [`StoreError::Unavailable`] when the store cannot be used.
pub trait RewardRepository: Send + Sync + 'static {
    fn get(&self, id: Uuid) -> impl Future<Output = Result<Option<Reward>, StoreError>> + Send;

    /// A page of the customer's rewards, newest first.
    fn list_by_customer(
        &self,
        customer: &CustomerId,
        page: PageRequest,
    ) -> impl Future<Output = Result<Page<Reward>, StoreError>> + Send;

    /// Stores a new reward, its events and the handled event in one transaction.
    ///
    /// # Errors
    /// [`StoreError::Duplicate`] when the mission already has a reward or `inbound` was
    /// already handled (nothing is written).
    fn insert(
        &self,
        reward: &Reward,
        events: Vec<Envelope<RewardEvent>>,
        inbound: Inbound,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Stores a changed reward and the handled event in one transaction.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when the stored version is not `reward.version`;
    /// [`StoreError::Duplicate`] when `inbound` was already handled.
    fn update(&self, reward: &Reward, inbound: Inbound) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Moves reward `id` of `customer` to `to` when its status is one of `to.before()`,
    /// with the handled event, in one write and without reading it first (the common
    /// case of a wallet event). `Ok(false)`: no reward was moved (none such yet, or
    /// already at or past `to`) and nothing was written, not even the inbox row.
    ///
    /// # Errors
    /// [`StoreError::Duplicate`] when `inbound` was already handled.
    fn advance(
        &self,
        id: Uuid,
        customer: &CustomerId,
        to: RewardStatus,
        inbound: Inbound,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}
