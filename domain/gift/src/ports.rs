//! Ports of the gift context.

use std::collections::HashMap;
use std::future::Future;

use kernel::paging::{Page, PageRequest};
use kernel::{CustomerId, Envelope, StoreError};
use uuid::Uuid;

use crate::model::{Gift, GiftCode, GiftEvent};

/// Why a new gift was not stored. Nothing is written in either case.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InsertError {
    /// Every one of the gift's stock has been issued.
    #[error("out of stock")]
    OutOfStock,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Where gifts live, with the outbox of their events and the stock counters.
///
/// # Errors
/// Every method returns [`StoreError::Unavailable`] when the store cannot be used.
pub trait GiftRepository: Send + Sync + 'static {
    fn get(&self, id: Uuid) -> impl Future<Output = Result<Option<Gift>, StoreError>> + Send;

    fn find_by_reward(&self, reward_id: Uuid) -> impl Future<Output = Result<Option<Gift>, StoreError>> + Send;

    /// A page of the customer's gifts, newest first.
    fn list_by_customer(
        &self,
        customer: &CustomerId,
        page: PageRequest,
    ) -> impl Future<Output = Result<Page<Gift>, StoreError>> + Send;

    /// How many gifts of `code` the customer got in the period named `period` (slots
    /// `<period>#n`).
    fn count_in_period(
        &self,
        customer: &CustomerId,
        code: &GiftCode,
        period: &str,
    ) -> impl Future<Output = Result<u32, StoreError>> + Send;

    /// How many of each stocked gift have been issued (gifts without stock are absent).
    fn issued_from_stock(&self) -> impl Future<Output = Result<HashMap<GiftCode, u32>, StoreError>> + Send;

    /// Stores a new gift and its events in one transaction; when `from_stock`, the gift's
    /// stock counter is taken in the same transaction, and only while some is left.
    ///
    /// # Errors
    /// [`InsertError::OutOfStock`] when none is left; [`StoreError::Duplicate`] when the
    /// reward already has a gift, or the customer already holds the gift's slot.
    fn insert(
        &self,
        gift: &Gift,
        from_stock: bool,
        events: Vec<Envelope<GiftEvent>>,
    ) -> impl Future<Output = Result<(), InsertError>> + Send;

    /// Stores a changed gift and its events in one transaction.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when the stored version is not `gift.version`.
    fn update(
        &self,
        gift: &Gift,
        events: Vec<Envelope<GiftEvent>>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Stores a gift just cancelled (at `gift.version`) and gives one unit back to its
    /// stock counter (when the gift has one), in one transaction.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when the stored version is not `gift.version`.
    fn cancel(&self, gift: &Gift) -> impl Future<Output = Result<(), StoreError>> + Send;
}
