//! Ports of the wallet context.

use std::future::Future;

use kernel::{CustomerId, Envelope, Inbound, StoreError};
use uuid::Uuid;

use crate::model::{WalletEvent, WalletItem};

/// Where wallet items live, with the outbox of their events and the inbox.
///
/// # Errors
/// Every method returns [`StoreError::Unavailable`] when the store cannot be used.
pub trait WalletRepository: Send + Sync + 'static {
    fn get(
        &self,
        reward_id: Uuid,
    ) -> impl Future<Output = Result<Option<WalletItem>, StoreError>> + Send;

    /// The customer's items, oldest first.
    fn list_by_customer(
        &self,
        customer: &CustomerId,
    ) -> impl Future<Output = Result<Vec<WalletItem>, StoreError>> + Send;

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
}
