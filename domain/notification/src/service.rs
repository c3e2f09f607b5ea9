//! The notification application service: a gift event becomes one e-mail, recorded.

use chrono::Utc;
use kernel::paging::{Page, PageRequest};
use kernel::{CustomerId, Envelope, EventMeta, Inbound, StoreError, new_id};

use crate::model::{EmailAddress, ExpiryFact, GiftFact, MailDomain, Notification, compose, compose_expiry};
use crate::ports::{MailError, Mailer, NotificationRepository};

#[derive(Debug, thiserror::Error)]
pub enum NotificationError {
    /// The store or the mail system cannot be used now: try again later.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The e-mail was refused for good: handling the event again cannot succeed.
    #[error("rejected: {0}")]
    Rejected(String),
}

impl From<StoreError> for NotificationError {
    fn from(e: StoreError) -> Self {
        Self::Unavailable(e.to_string())
    }
}

impl From<MailError> for NotificationError {
    fn from(e: MailError) -> Self {
        match e {
            MailError::Unavailable(d) => Self::Unavailable(d),
            MailError::Rejected(d) => Self::Rejected(d),
        }
    }
}

/// What handling a gift event did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The e-mail went out and this notification records it.
    Sent(Notification),
    /// The event had been handled before: nothing was sent.
    AlreadyHandled,
}

pub struct NotificationService<R, M> {
    repo: R,
    mailer: M,
    recipients: MailDomain,
}

impl<R: NotificationRepository, M: Mailer> NotificationService<R, M> {
    /// `recipients`: the domain customers' mailboxes are under.
    pub fn new(repo: R, mailer: M, recipients: MailDomain) -> Self {
        Self { repo, mailer, recipients }
    }

    /// A page of the customer's notifications, newest first.
    ///
    /// # Errors
    /// `Unavailable` when the store is down.
    pub async fn notifications(
        &self,
        customer: &CustomerId,
        page: PageRequest,
    ) -> Result<Page<Notification>, NotificationError> {
        Ok(self.repo.list_by_customer(customer, page).await?)
    }

    /// Policy: a gift was issued or used -> e-mail the customer (once per event).
    ///
    /// The e-mail is sent before it is recorded, so a failure to send records nothing
    /// and the event is retried; a crash between the two sends it again, under the
    /// same message identity (see [`Mailer`]).
    ///
    /// # Errors
    /// `Unavailable` when the store or the mail system is down (retry later);
    /// `Rejected` when the mail system refused the e-mail for good.
    pub async fn on_gift_event(
        &self,
        inbound: Inbound,
        cause: &EventMeta,
        fact: GiftFact,
    ) -> Result<Outcome, NotificationError> {
        let customer = fact.customer_id.clone();
        self.send_once(inbound, cause, customer, |to| compose(&fact, to, cause.event_id)).await
    }

    /// Policy: points are about to expire -> e-mail the customer (once per event; the
    /// wallet publishes one per customer and expiry date).
    ///
    /// # Errors
    /// As [`Self::on_gift_event`].
    pub async fn on_points_expiring(
        &self,
        inbound: Inbound,
        cause: &EventMeta,
        fact: ExpiryFact,
    ) -> Result<Outcome, NotificationError> {
        let customer = fact.customer_id.clone();
        self.send_once(inbound, cause, customer, |to| compose_expiry(&fact, to, cause.event_id)).await
    }

    async fn send_once(
        &self,
        inbound: Inbound,
        cause: &EventMeta,
        customer: CustomerId,
        compose: impl FnOnce(EmailAddress) -> crate::model::Email,
    ) -> Result<Outcome, NotificationError> {
        if self.repo.was_handled(inbound).await? {
            return Ok(Outcome::AlreadyHandled);
        }
        let email = compose(EmailAddress::for_customer(&customer, &self.recipients));
        self.mailer.send(&email).await?;
        let now = Utc::now();
        let (notification, event) = Notification::sent(new_id(), customer, email, now);
        let envelope = Envelope { meta: cause.caused(now), event };
        match self.repo.insert(&notification, vec![envelope], inbound).await {
            // Duplicate: another replica handled the same delivery meanwhile; its
            // record stands, and the e-mail carries the same identity.
            Ok(()) | Err(StoreError::Duplicate) => Ok(Outcome::Sent(notification)),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};
    use std::sync::Mutex;

    use futures::executor::block_on;
    use uuid::Uuid;

    use super::*;
    use crate::model::{Email, GiftEventKind, NotificationEvent};

    #[derive(Default)]
    struct Memory {
        notifications: Mutex<HashMap<Uuid, Notification>>,
        inbox: Mutex<HashSet<(&'static str, Uuid)>>,
        outbox: Mutex<Vec<Envelope<NotificationEvent>>>,
    }

    impl NotificationRepository for Memory {
        async fn was_handled(&self, inbound: Inbound) -> Result<bool, StoreError> {
            Ok(self.inbox.lock().unwrap().contains(&(inbound.consumer, inbound.event_id)))
        }

        async fn insert(
            &self,
            n: &Notification,
            events: Vec<Envelope<NotificationEvent>>,
            inbound: Inbound,
        ) -> Result<(), StoreError> {
            if !self.inbox.lock().unwrap().insert((inbound.consumer, inbound.event_id)) {
                return Err(StoreError::Duplicate);
            }
            self.notifications.lock().unwrap().insert(n.id, n.clone());
            self.outbox.lock().unwrap().extend(events);
            Ok(())
        }

        async fn list_by_customer(&self, c: &CustomerId, page: PageRequest) -> Result<Page<Notification>, StoreError> {
            let mut all: Vec<_> =
                self.notifications.lock().unwrap().values().filter(|n| &n.customer_id == c).cloned().collect();
            all.sort_by_key(|n| std::cmp::Reverse(n.id));
            all.retain(|n| page.before.is_none_or(|b| n.id < b));
            all.truncate(page.size + 1);
            Ok(Page::from_probe(all, page, |n| n.id))
        }
    }

    /// Records what it sends; fails with the queued errors first.
    #[derive(Default)]
    struct Outbox {
        sent: Mutex<Vec<Email>>,
        failures: Mutex<Vec<MailError>>,
    }

    impl Mailer for Outbox {
        async fn send(&self, email: &Email) -> Result<(), MailError> {
            if let Some(e) = self.failures.lock().unwrap().pop() {
                return Err(e);
            }
            self.sent.lock().unwrap().push(email.clone());
            Ok(())
        }
    }

    fn service() -> NotificationService<Memory, Outbox> {
        NotificationService::new(
            Memory::default(),
            Outbox::default(),
            MailDomain::new("players.game-rewards.local").unwrap(),
        )
    }

    fn customer() -> CustomerId {
        CustomerId::new("c-11").unwrap()
    }

    fn gift(kind: GiftEventKind) -> (Inbound, EventMeta, GiftFact) {
        let meta = EventMeta::first(new_id(), "req", customer(), Utc::now());
        let consumer = match kind {
            GiftEventKind::Issued => "notification-gift-issued",
            GiftEventKind::Used => "notification-gift-used",
        };
        let inbound = Inbound { consumer, event_id: meta.event_id };
        let fact = GiftFact { kind, customer_id: customer(), gift_code: "CAFE-42".into(), gift_name: "Coffee".into() };
        (inbound, meta, fact)
    }

    #[test]
    fn given_a_gift_event_delivered_twice_when_handled_then_one_email_is_sent_and_recorded() {
        let s = service();
        let (inbound, meta, fact) = gift(GiftEventKind::Issued);
        let first = block_on(s.on_gift_event(inbound, &meta, fact.clone())).unwrap();
        let again = block_on(s.on_gift_event(inbound, &meta, fact)).unwrap();
        assert!(matches!(first, Outcome::Sent(_)));
        assert_eq!(again, Outcome::AlreadyHandled);

        let sent = s.mailer.sent.lock().unwrap().clone();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].subject, "Your gift: Coffee");
        assert_eq!(sent[0].to.as_str(), "c-11@players.game-rewards.local");
        assert_eq!(sent[0].about_event_id, meta.event_id);

        let listed = block_on(s.notifications(&customer(), PageRequest::default())).unwrap().items;
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].about_event_id, meta.event_id);
        let outbox = s.repo.outbox.lock().unwrap();
        assert_eq!(outbox.len(), 1);
        assert_eq!(outbox[0].meta.causation_id, meta.event_id.to_string());
        assert_eq!(outbox[0].meta.correlation_id, meta.correlation_id);
    }

    #[test]
    fn given_points_expiring_delivered_twice_when_handled_then_one_email_says_how_many_and_when() {
        let s = service();
        let meta = EventMeta::first(new_id(), "", customer(), Utc::now());
        let inbound = Inbound { consumer: "notification-points-expiring", event_id: meta.event_id };
        let date = chrono::NaiveDate::from_ymd_opt(2027, 1, 5).unwrap();
        let fact = ExpiryFact { customer_id: customer(), points: 40, date };
        assert!(matches!(block_on(s.on_points_expiring(inbound, &meta, fact.clone())).unwrap(), Outcome::Sent(_)));
        assert_eq!(block_on(s.on_points_expiring(inbound, &meta, fact)).unwrap(), Outcome::AlreadyHandled);
        let sent = s.mailer.sent.lock().unwrap().clone();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].subject, "40 points expire on 2027-01-05");
        assert!(sent[0].body.contains("40 of your points expire on 2027-01-05"), "{}", sent[0].body);
        assert_eq!(sent[0].to.as_str(), "c-11@players.game-rewards.local");
    }

    #[test]
    fn given_the_mailer_is_down_when_a_gift_event_is_handled_then_nothing_is_recorded_and_a_retry_is_asked() {
        let s = service();
        s.mailer.failures.lock().unwrap().push(MailError::Unavailable("connection refused".into()));
        let (inbound, meta, fact) = gift(GiftEventKind::Used);
        let err = block_on(s.on_gift_event(inbound, &meta, fact.clone())).unwrap_err();
        assert!(matches!(err, NotificationError::Unavailable(_)), "{err}");
        assert!(block_on(s.notifications(&customer(), PageRequest::default())).unwrap().items.is_empty());
        assert!(s.repo.outbox.lock().unwrap().is_empty());
        assert!(!block_on(s.repo.was_handled(inbound)).unwrap(), "the retry is not swallowed");

        // the retry, once the mail system is back
        assert!(matches!(block_on(s.on_gift_event(inbound, &meta, fact)).unwrap(), Outcome::Sent(_)));
        assert_eq!(s.mailer.sent.lock().unwrap().len(), 1);
        let listed = block_on(s.notifications(&customer(), PageRequest::default())).unwrap().items;
        assert_eq!(listed[0].subject, "You used your gift: Coffee");
    }

    #[test]
    fn given_the_mailer_refuses_for_good_when_a_gift_event_is_handled_then_it_is_rejected_and_nothing_recorded() {
        let s = service();
        s.mailer.failures.lock().unwrap().push(MailError::Rejected("550 no such user".into()));
        let (inbound, meta, fact) = gift(GiftEventKind::Issued);
        let err = block_on(s.on_gift_event(inbound, &meta, fact)).unwrap_err();
        assert!(matches!(err, NotificationError::Rejected(_)), "{err}");
        assert!(block_on(s.notifications(&customer(), PageRequest::default())).unwrap().items.is_empty());
    }
}
