//! Notification events on the wire, and the consumers reacting to `GiftIssued` and
//! `GiftUsed`.

use std::sync::Arc;

use contracts::pb::events::v1 as pb;
use kernel::{CustomerId, Envelope};
use nats_adapter::consumer::{Delivery, HandleError, Handler};
use nats_adapter::envelope::outbox;
use notification_domain::{ExpiryFact, GiftEventKind, GiftFact, NotificationError, NotificationEvent, Outcome};
use prost::Message;
use store_adapter::outbox::OutboxMessage;

use crate::App;

pub fn to_outbox(e: &Envelope<NotificationEvent>) -> OutboxMessage {
    match &e.event {
        NotificationEvent::Sent { notification_id, customer_id, channel, subject, about_event_id } => {
            let body = pb::NotificationSent {
                notification_id: notification_id.to_string(),
                customer_id: customer_id.to_string(),
                channel: channel.as_str().to_owned(),
                subject: subject.clone(),
                about_event_id: about_event_id.to_string(),
            };
            outbox(&e.meta, &body)
        }
    }
}

pub use nats_adapter::roles::notification::{GIFT_ISSUED, GIFT_USED, POINTS_EXPIRING};

/// Handles the wallet's `PointsExpiring`: one e-mail per event (the wallet publishes one
/// per customer and expiry date).
pub struct OnPointsExpiring(pub Arc<App>);

impl Handler for OnPointsExpiring {
    const IN_HAND: usize = 4;

    async fn handle(&self, d: &Delivery) -> Result<(), HandleError> {
        let e = pb::PointsExpiring::decode(d.payload.as_ref()).map_err(reject)?;
        let fact = ExpiryFact {
            customer_id: CustomerId::new(e.customer_id).map_err(reject)?,
            points: e.points,
            date: e.expiry_date.parse().map_err(|_| reject(format!("expiry_date: '{}'", e.expiry_date)))?,
        };
        if let Outcome::Sent(n) =
            self.0.on_points_expiring(d.inbound(), &d.meta, fact).await.map_err(to_handle_error)?
        {
            tracing::info!(consumer = d.consumer, notification_id = %n.id, "expiry notice e-mailed");
        }
        Ok(())
    }
}

/// Handles the gift events of one kind (one consumer each).
pub struct OnGift {
    app: Arc<App>,
    kind: GiftEventKind,
}

impl OnGift {
    pub fn issued(app: Arc<App>) -> Self {
        Self { app, kind: GiftEventKind::Issued }
    }

    pub fn used(app: Arc<App>) -> Self {
        Self { app, kind: GiftEventKind::Used }
    }

    /// The payload as a domain fact; `GiftIssued` and `GiftUsed` carry the same fields.
    fn decode(&self, payload: &[u8]) -> Result<GiftFact, HandleError> {
        let (customer_id, gift_code, gift_name) = match self.kind {
            GiftEventKind::Issued => {
                let e = pb::GiftIssued::decode(payload).map_err(reject)?;
                (e.customer_id, e.gift_code, e.gift_name)
            }
            GiftEventKind::Used => {
                let e = pb::GiftUsed::decode(payload).map_err(reject)?;
                (e.customer_id, e.gift_code, e.gift_name)
            }
        };
        Ok(GiftFact {
            kind: self.kind,
            customer_id: CustomerId::new(customer_id).map_err(reject)?,
            gift_code,
            gift_name,
        })
    }
}

fn reject(e: impl std::fmt::Display) -> HandleError {
    HandleError::Reject(e.to_string())
}

/// The one place notification errors become consumer decisions.
fn to_handle_error(e: NotificationError) -> HandleError {
    match e {
        NotificationError::Unavailable(_) => HandleError::Retry(e.to_string()),
        NotificationError::Rejected(_) => HandleError::Reject(e.to_string()),
    }
}

impl Handler for OnGift {
    /// Each e-mail opens its own SMTP connection: a few at once, not a backlog's worth.
    const IN_HAND: usize = 4;

    async fn handle(&self, d: &Delivery) -> Result<(), HandleError> {
        let fact = self.decode(d.payload.as_ref())?;
        match self.app.on_gift_event(d.inbound(), &d.meta, fact).await.map_err(to_handle_error)? {
            Outcome::Sent(n) => tracing::info!(
                consumer = d.consumer,
                about_event_id = %n.about_event_id,
                notification_id = %n.id,
                "e-mail sent"
            ),
            Outcome::AlreadyHandled => tracing::debug!(
                consumer = d.consumer,
                about_event_id = %d.meta.event_id,
                "already notified; nothing sent"
            ),
        }
        Ok(())
    }
}
