//! Ports of the mypage context.

use std::future::Future;

use futures::Stream;
use kernel::{CustomerId, StoreError};

use crate::model::MyPage;

/// A document store with a revision per document (optimistic concurrency).
///
/// # Errors
/// Every method returns [`StoreError::Unavailable`] when the store cannot be used.
pub trait PageStore: Send + Sync + 'static {
    type Updates: Stream<Item = Result<MyPage, StoreError>> + Send + Unpin + 'static;

    /// The stored page, with `version` set to its revision; `None` when there is none.
    fn get(&self, customer: &CustomerId) -> impl Future<Output = Result<Option<MyPage>, StoreError>> + Send;

    /// Stores `page` if the stored revision is still `page.version` (0: not stored yet).
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when another writer changed the page first.
    fn put(&self, page: &MyPage) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Every later version of the customer's page, as it is stored.
    fn watch(&self, customer: &CustomerId) -> impl Future<Output = Result<Self::Updates, StoreError>> + Send;
}
