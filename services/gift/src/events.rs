//! Gift events on the wire.

use gift_domain::{Gift, GiftEvent};
use grpc_adapter::pb::events::v1 as pb;
use kernel::Envelope;
use nats_adapter::envelope::outbox;
use store_adapter::outbox::OutboxMessage;

pub fn to_outbox(e: &Envelope<GiftEvent>) -> OutboxMessage {
    fn fields(g: &Gift) -> (String, String, String, String, String, String) {
        (
            g.id.to_string(),
            g.customer_id.to_string(),
            g.reward_id.to_string(),
            g.code.as_str().to_owned(),
            g.name.clone(),
            g.mission_id.to_string(),
        )
    }
    match &e.event {
        GiftEvent::Issued(g) => {
            let (gift_id, customer_id, reward_id, gift_code, gift_name, mission_id) = fields(g);
            let body = pb::GiftIssued { gift_id, customer_id, reward_id, gift_code, gift_name, mission_id };
            outbox(&e.meta, &body)
        }
        GiftEvent::Used(g) => {
            let (gift_id, customer_id, reward_id, gift_code, gift_name, mission_id) = fields(g);
            let body = pb::GiftUsed { gift_id, customer_id, reward_id, gift_code, gift_name, mission_id };
            outbox(&e.meta, &body)
        }
    }
}
