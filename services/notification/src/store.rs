//! The notification repository on diesel: notifications, outbox and inbox in one
//! transaction.

use chrono::{NaiveDateTime, SubsecRound};
use diesel::prelude::*;
use kernel::paging::{Page, PageRequest};
use kernel::{CustomerId, Envelope, Inbound, StoreError};
use notification_domain::{Channel, EmailAddress, Notification, NotificationEvent, NotificationRepository};
use store_adapter::schema::inbox::dsl as i;
use store_adapter::{Migrations, Prepared, Store, db};
use uuid::Uuid;

use crate::events;

static SQLITE: diesel_migrations::EmbeddedMigrations = diesel_migrations::embed_migrations!("migrations/sqlite");
static POSTGRES: diesel_migrations::EmbeddedMigrations = diesel_migrations::embed_migrations!("migrations/postgres");
pub const MIGRATIONS: Migrations = Migrations { sqlite: &SQLITE, postgres: &POSTGRES };

diesel::table! {
    notifications (id) {
        id -> Text,
        customer_id -> Text,
        channel -> Text,
        recipient -> Text,
        subject -> Text,
        body -> Text,
        about_event_id -> Text,
        sent_at -> Timestamp,
    }
}

#[derive(Queryable, Insertable)]
#[diesel(table_name = notifications)]
struct Row {
    id: String,
    customer_id: String,
    channel: String,
    recipient: String,
    subject: String,
    body: String,
    about_event_id: String,
    sent_at: NaiveDateTime,
}

impl From<&Notification> for Row {
    fn from(n: &Notification) -> Self {
        Self {
            id: n.id.to_string(),
            customer_id: n.customer_id.to_string(),
            channel: n.channel.as_str().to_owned(),
            recipient: n.recipient.to_string(),
            subject: n.subject.clone(),
            body: n.body.clone(),
            about_event_id: n.about_event_id.to_string(),
            // microseconds: what both backends keep
            sent_at: n.sent_at.naive_utc().trunc_subsecs(6),
        }
    }
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Unavailable(format!("corrupt notification row: {what}"))
}

impl TryFrom<Row> for Notification {
    type Error = StoreError;
    fn try_from(r: Row) -> Result<Self, StoreError> {
        Ok(Self {
            id: Uuid::try_parse(&r.id).map_err(|_| corrupt("id"))?,
            customer_id: CustomerId::new(r.customer_id).map_err(|_| corrupt("customer_id"))?,
            channel: Channel::parse(&r.channel).ok_or_else(|| corrupt("channel"))?,
            recipient: EmailAddress::parse(&r.recipient).map_err(|_| corrupt("recipient"))?,
            subject: r.subject,
            body: r.body,
            about_event_id: Uuid::try_parse(&r.about_event_id).map_err(|_| corrupt("about_event_id"))?,
            sent_at: r.sent_at.and_utc(),
        })
    }
}

#[derive(Clone)]
pub struct SqlNotifications {
    store: Store,
}

impl SqlNotifications {
    pub fn new(store: Store) -> Self {
        Self { store }
    }
}

impl NotificationRepository for SqlNotifications {
    async fn was_handled(&self, inbound: Inbound) -> Result<bool, StoreError> {
        let (consumer, event_id) = (inbound.consumer, inbound.event_id.to_string());
        let n: i64 = self
            .store
            .read(move |c| {
                i::inbox
                    .filter(i::consumer.eq(consumer))
                    .filter(i::event_id.eq(event_id))
                    .count()
                    .get_result(c)
                    .map_err(db)
            })
            .await?;
        Ok(n > 0)
    }

    async fn insert(
        &self,
        notification: &Notification,
        events: Vec<Envelope<NotificationEvent>>,
        inbound: Inbound,
    ) -> Result<(), StoreError> {
        let row = Row::from(notification);
        let messages: Vec<_> = events.iter().map(events::to_outbox).collect();
        self.store
            .write_handled_for(&notification.customer_id.to_string(), Some(inbound), messages, move |c| {
                Prepared(diesel::insert_into(notifications::table).values(&row)).execute(c).map_err(db)?;
                Ok(())
            })
            .await
    }

    async fn list_by_customer(
        &self,
        customer: &CustomerId,
        page: PageRequest,
    ) -> Result<Page<Notification>, StoreError> {
        let customer = customer.to_string();
        let before = page.before.map(|b| b.to_string());
        // Keyset: newest first (UUIDv7 in text sorts by creation) from the index on
        // (customer_id, id); the cost does not grow with the pages before this one.
        let rows: Vec<Row> = self
            .store
            .read(move |c| {
                let mut q = notifications::table
                    .filter(notifications::customer_id.eq(customer))
                    .order(notifications::id.desc())
                    .limit(page.probe())
                    .into_boxed();
                if let Some(before) = before {
                    q = q.filter(notifications::id.lt(before));
                }
                q.load(c).map_err(db)
            })
            .await?;
        let items = rows.into_iter().map(Notification::try_from).collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_probe(items, page, |n| n.id))
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use kernel::{EventMeta, new_id};
    use notification_domain::{GiftEventKind, GiftFact, MailDomain, compose};
    use store_adapter::testing::TestDatabase;

    use super::*;

    fn sent(customer: &CustomerId, about: Uuid) -> (Notification, Vec<Envelope<NotificationEvent>>) {
        let fact = GiftFact {
            kind: GiftEventKind::Issued,
            customer_id: customer.clone(),
            gift_code: "CAFE-42".into(),
            gift_name: "Coffee".into(),
        };
        let domain = MailDomain::new("players.game-rewards.local").unwrap();
        let email = compose(&fact, EmailAddress::for_customer(customer, &domain), about);
        let now = Utc::now().trunc_subsecs(6);
        let (n, event) = Notification::sent(new_id(), customer.clone(), email, now);
        let meta = EventMeta::first(new_id(), "req", customer.clone(), now);
        (n, vec![Envelope { meta, event }])
    }

    async fn a_gift_event_is_recorded_once_with_its_event(db: TestDatabase) {
        let store = Store::open(&db.url, MIGRATIONS).await.unwrap();
        let repo = SqlNotifications::new(store.clone());
        let customer = CustomerId::new("c-11").unwrap();
        let inbound = Inbound { consumer: "notification-gift-issued", event_id: new_id() };
        assert!(!repo.was_handled(inbound).await.unwrap());
        let (n, events) = sent(&customer, inbound.event_id);
        repo.insert(&n, events.clone(), inbound).await.unwrap();
        assert!(repo.was_handled(inbound).await.unwrap());
        let other_consumer = Inbound { consumer: "notification-gift-used", ..inbound };
        assert!(!repo.was_handled(other_consumer).await.unwrap());

        assert_eq!(repo.insert(&n, events.clone(), inbound).await, Err(StoreError::Duplicate));
        // Another delivery about the same event cannot record a second e-mail either.
        let (twin, twin_events) = sent(&customer, inbound.event_id);
        let again = Inbound { consumer: "notification-gift-issued", event_id: new_id() };
        assert_eq!(repo.insert(&twin, twin_events, again).await, Err(StoreError::Duplicate));
        assert!(!repo.was_handled(again).await.unwrap(), "rolled back");

        assert_eq!(repo.list_by_customer(&customer, PageRequest::default()).await.unwrap().items, vec![n]);
        assert_eq!(store.outbox_len().await.unwrap(), 1);
        assert!(
            repo.list_by_customer(&CustomerId::new("other").unwrap(), PageRequest::default())
                .await
                .unwrap()
                .items
                .is_empty()
        );
    }

    async fn notifications_are_listed_newest_first_page_by_page(db: TestDatabase) {
        let store = Store::open(&db.url, MIGRATIONS).await.unwrap();
        let repo = SqlNotifications::new(store);
        let customer = CustomerId::new("c-order").unwrap();
        let mut expected = Vec::new();
        for i in 0..5 {
            let consumer = if i % 2 == 0 { "notification-gift-issued" } else { "notification-gift-used" };
            let inbound = Inbound { consumer, event_id: new_id() };
            let (n, events) = sent(&customer, inbound.event_id);
            repo.insert(&n, events, inbound).await.unwrap();
            expected.push(n.id);
        }
        expected.reverse();
        let (mut listed, mut before) = (Vec::new(), None);
        loop {
            let page = repo.list_by_customer(&customer, PageRequest { size: 2, before }).await.unwrap();
            assert!(page.items.len() <= 2);
            listed.extend(page.items.iter().map(|n| n.id));
            match page.next {
                Some(next) => before = Some(next),
                None => break,
            }
        }
        assert_eq!(listed, expected);
    }

    store_adapter::on_both_backends!(
        a_gift_event_is_recorded_once_with_its_event,
        notifications_are_listed_newest_first_page_by_page
    );
}
