//! Ports of the gift context.

use std::future::Future;

use kernel::{CustomerId, Envelope, StoreError};
use uuid::Uuid;

use crate::model::{Gift, GiftEvent};

/// Where gifts live, with the outbox of their events.
///
/// # Errors
/// Every method returns [`StoreError::Unavailable`] when the store cannot be used.
pub trait GiftRepository: Send + Sync + 'static {
    fn get(&self, id: Uuid) -> impl Future<Output = Result<Option<Gift>, StoreError>> + Send;

    fn find_by_reward(&self, reward_id: Uuid) -> impl Future<Output = Result<Option<Gift>, StoreError>> + Send;

    fn list_by_customer(&self, customer: &CustomerId) -> impl Future<Output = Result<Vec<Gift>, StoreError>> + Send;

    /// Stores a new gift and its events in one transaction.
    ///
    /// # Errors
    /// [`StoreError::Duplicate`] when the reward already has a gift (nothing is written).
    fn insert(
        &self,
        gift: &Gift,
        events: Vec<Envelope<GiftEvent>>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Stores a changed gift and its events in one transaction.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when the stored version is not `gift.version`.
    fn update(
        &self,
        gift: &Gift,
        events: Vec<Envelope<GiftEvent>>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}
