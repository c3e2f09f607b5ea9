//! Ports of the notification context.

use std::future::Future;

use kernel::paging::{Page, PageRequest};
use kernel::{CustomerId, Envelope, Inbound, StoreError};

use crate::model::{Email, Notification, NotificationEvent};

/// Where notifications live, with the outbox of their events and the inbox.
///
/// # Errors
/// Every method returns [`StoreError::Unavailable`] when the store cannot be used.
pub trait NotificationRepository: Send + Sync + 'static {
    /// Whether `inbound` was already handled (its effect is recorded).
    fn was_handled(&self, inbound: Inbound) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Stores a notification, its events and the handled event in one transaction.
    ///
    /// # Errors
    /// [`StoreError::Duplicate`] when `inbound` was already handled or a notification
    /// about the same event on the same channel exists (nothing is written).
    fn insert(
        &self,
        notification: &Notification,
        events: Vec<Envelope<NotificationEvent>>,
        inbound: Inbound,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// A page of the customer's notifications, newest first.
    fn list_by_customer(
        &self,
        customer: &CustomerId,
        page: PageRequest,
    ) -> impl Future<Output = Result<Page<Notification>, StoreError>> + Send;
}

/// Why an e-mail was not sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MailError {
    /// The mail system cannot take it now (down, busy, a temporary refusal): retry later.
    #[error("mail unavailable: {0}")]
    Unavailable(String),
    /// The mail system refused it for good (bad recipient, policy): retrying is useless.
    #[error("mail rejected: {0}")]
    Rejected(String),
}

/// Sends e-mails.
///
/// An e-mail may be sent again for the same event (a crash between sending and
/// recording it): implementations name the message after [`Email::about_event_id`]
/// (Message-ID, file name) so that a repeat is recognisable as the same e-mail.
///
/// # Errors
/// [`MailError::Unavailable`] when the e-mail may go through later,
/// [`MailError::Rejected`] when it never will.
pub trait Mailer: Send + Sync + 'static {
    fn send(&self, email: &Email) -> impl Future<Output = Result<(), MailError>> + Send;
}
