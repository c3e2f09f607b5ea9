//! Ports of the mission context.

use std::future::Future;

use kernel::paging::{Page, PageRequest};
use kernel::{CustomerId, Envelope, Inbound, StoreError};
use uuid::Uuid;

use crate::model::{Mission, MissionCode, MissionEvent};
use crate::rules::History;

/// Where missions live, with the outbox of the events they cause.
///
/// # Errors
/// Every method returns [`StoreError::Unavailable`] when the store cannot be used.
pub trait MissionRepository: Send + Sync + 'static {
    fn get(&self, id: Uuid) -> impl Future<Output = Result<Option<Mission>, StoreError>> + Send;

    /// The mission a customer's request created, if any.
    fn find_by_request(
        &self,
        customer: &CustomerId,
        request_id: &str,
    ) -> impl Future<Output = Result<Option<Mission>, StoreError>> + Send;

    /// A page of the customer's missions, newest first.
    fn list_by_customer(
        &self,
        customer: &CustomerId,
        page: PageRequest,
    ) -> impl Future<Output = Result<Page<Mission>, StoreError>> + Send;

    /// What one decision needs to know of a customer's past: how many times they achieved
    /// `code` in the period named `period` (slots `<period>#n`; 0 when `None`), and which of
    /// `requires` they ever achieved.
    fn history(
        &self,
        customer: &CustomerId,
        code: &MissionCode,
        period: Option<&str>,
        requires: &[MissionCode],
    ) -> impl Future<Output = Result<History, StoreError>> + Send;

    /// Stores a new mission and its events in one transaction.
    ///
    /// # Errors
    /// [`StoreError::Duplicate`] when the customer already used the request id, or already
    /// holds the mission's slot (another achievement took it first); nothing is written.
    fn insert(
        &self,
        mission: &Mission,
        events: Vec<Envelope<MissionEvent>>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Stores a changed mission, its events and the handled event, in one transaction.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when the stored version is not `mission.version`;
    /// [`StoreError::Duplicate`] when `inbound` was already handled (nothing is written).
    fn update(
        &self,
        mission: &Mission,
        events: Vec<Envelope<MissionEvent>>,
        inbound: Option<Inbound>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Records `reward_id` on mission `id` of `customer`, with `events` and the handled
    /// event, in one write and without reading the mission first, when no reward is
    /// recorded on it yet (the rule of `Mission::record_reward`). `Ok(false)`: nothing
    /// was recorded (no such mission, or a reward is already recorded) and nothing was
    /// written, not even the inbox row.
    ///
    /// # Errors
    /// [`StoreError::Duplicate`] when `inbound` was already handled.
    fn record_reward(
        &self,
        id: Uuid,
        customer: &CustomerId,
        reward_id: Uuid,
        events: Vec<Envelope<MissionEvent>>,
        inbound: Inbound,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// Who is a registered customer (the auth service knows): a mission reported for an id
/// nobody registered would be inherited, points and all, by whoever registers it later.
///
/// # Errors
/// [`StoreError::Unavailable`] when the answer cannot be had now.
pub trait Customers: Send + Sync + 'static {
    fn is_registered(&self, customer: &CustomerId) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// Every id is a customer: for a system whose players come from another identity
/// provider, which we cannot ask (the service's default without `CUSTOMERS_URL`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Anyone;

impl Customers for Anyone {
    async fn is_registered(&self, _: &CustomerId) -> Result<bool, StoreError> {
        Ok(true)
    }
}
