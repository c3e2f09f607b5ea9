//! Event metadata travels in NATS headers; the payload is the protobuf event alone.

use async_nats::HeaderMap;
use chrono::{DateTime, Utc};
use kernel::outbox::OutboxMessage;
use kernel::{CustomerId, EventMeta};
use uuid::Uuid;

/// JetStream's de-duplication id; the relay sets it to the event id.
pub const MSG_ID: &str = "Nats-Msg-Id";
/// The event's identity for consumers' inboxes. Usually equal to [`MSG_ID`], but a
/// republish after the de-duplication window carries a new message and the same event.
pub const EVENT_ID: &str = "Game-Event-Id";
pub const EVENT_TYPE: &str = "Game-Event-Type";
pub const CORRELATION_ID: &str = "Game-Correlation-Id";
pub const CAUSATION_ID: &str = "Game-Causation-Id";
pub const CUSTOMER_ID: &str = "Game-Customer-Id";
pub const OCCURRED_AT: &str = "Game-Occurred-At";
pub const TRACEPARENT: &str = "traceparent";

/// The headers of an outbox message.
pub fn headers(m: &OutboxMessage) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(MSG_ID, m.event_id.as_str());
    h.insert(EVENT_ID, m.event_id.as_str());
    h.insert(EVENT_TYPE, m.event_type.as_str());
    h.insert(CORRELATION_ID, m.correlation_id.as_str());
    h.insert(CAUSATION_ID, m.causation_id.as_str());
    h.insert(CUSTOMER_ID, m.customer_id.as_str());
    h.insert(OCCURRED_AT, m.occurred_at.and_utc().to_rfc3339().as_str());
    if let Some(tp) = &m.traceparent {
        h.insert(TRACEPARENT, tp.as_str());
    }
    h
}

/// The outbox message of an event: its subject and type name come from the contracts
/// (`contracts::events::Event`), not from strings at the call site.
pub fn outbox<E: contracts::events::Event>(meta: &EventMeta, event: &E) -> OutboxMessage {
    let e = contracts::events::encode(event);
    OutboxMessage::new(meta, e.subject, &e.event_type, e.payload)
}

/// Why a message's headers are not an event we can handle.
#[derive(Debug, thiserror::Error)]
#[error("bad event envelope: {0}")]
pub struct BadEnvelope(pub String);

/// Reads the metadata back from a message's headers.
///
/// # Errors
/// [`BadEnvelope`] naming the missing or malformed header.
pub fn meta(headers: Option<&HeaderMap>) -> Result<(EventMeta, String), BadEnvelope> {
    let h = headers.ok_or_else(|| BadEnvelope("no headers".into()))?;
    let get =
        |name: &str| h.get(name).map(|v| v.as_str().to_owned()).ok_or_else(|| BadEnvelope(format!("missing {name}")));
    let event_id = Uuid::try_parse(&get(EVENT_ID)?).map_err(|_| BadEnvelope(format!("{EVENT_ID} is not a UUID")))?;
    let customer_id = CustomerId::new(get(CUSTOMER_ID)?).map_err(|e| BadEnvelope(e.to_string()))?;
    let occurred_at = DateTime::parse_from_rfc3339(&get(OCCURRED_AT)?)
        .map_err(|_| BadEnvelope(format!("{OCCURRED_AT} is not RFC 3339")))?
        .with_timezone(&Utc);
    let meta = EventMeta {
        event_id,
        correlation_id: get(CORRELATION_ID)?,
        causation_id: get(CAUSATION_ID)?,
        customer_id,
        traceparent: h.get(TRACEPARENT).map(|v| v.as_str().to_owned()),
        occurred_at,
    };
    Ok((meta, get(EVENT_TYPE)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_survives_the_trip_through_headers() {
        let mut original = EventMeta::first(Uuid::now_v7(), "req-1", CustomerId::new("c-11").unwrap(), Utc::now());
        original.traceparent = Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into());
        let m = OutboxMessage::new(&original, "game.x.v1.y", "game.events.v1.Y", vec![]);
        let (back, event_type) = meta(Some(&headers(&m))).unwrap();
        assert_eq!(event_type, "game.events.v1.Y");
        assert_eq!(back.event_id, original.event_id);
        assert_eq!(back.correlation_id, original.correlation_id);
        assert_eq!(back.causation_id, "req-1");
        assert_eq!(back.customer_id, original.customer_id);
        assert_eq!(back.traceparent, original.traceparent);
        assert_eq!(back.occurred_at.timestamp_micros(), original.occurred_at.timestamp_micros());
    }

    #[test]
    fn a_message_without_an_event_id_is_a_bad_envelope() {
        let mut h = HeaderMap::new();
        h.insert(CUSTOMER_ID, "c");
        assert!(meta(Some(&h)).unwrap_err().0.contains(EVENT_ID));
        assert!(meta(None).is_err());
    }
}
