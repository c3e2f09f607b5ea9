//! Ports of the mypage context.

use std::future::Future;

use futures::Stream;
use kernel::{CustomerId, StoreError};
use uuid::Uuid;

use crate::archive::Chunk;
use crate::model::{Entry, MyPage};

/// A document store with a revision per document (optimistic concurrency): the page of
/// each customer, and its archive (an entry per archived mission, chunks of mission ids).
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

    /// The stored archived entries of these missions (those there are, in any order).
    fn archived(
        &self,
        customer: &CustomerId,
        ids: &[Uuid],
    ) -> impl Future<Output = Result<Vec<Entry>, StoreError>> + Send;

    /// Writes archived entries, each merged with its stored copy ([`Entry::merge`]).
    fn write_archived(
        &self,
        customer: &CustomerId,
        entries: &[Entry],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The mission ids of archive chunk `number`; empty when it is not written.
    fn chunk(&self, customer: &CustomerId, number: u64) -> impl Future<Output = Result<Vec<Uuid>, StoreError>> + Send;

    /// Writes an archive chunk (its content never changes once decided).
    fn write_chunk(&self, customer: &CustomerId, chunk: &Chunk) -> impl Future<Output = Result<(), StoreError>> + Send;
}
