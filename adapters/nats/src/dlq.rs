//! The dead-letter stream for operators: what is in it, one message in full, sending an
//! event back, or discarding it with a reason that is kept.
//!
//! A redrive publishes the event again on its original subject with its original
//! envelope (the same `Game-Event-Id`), under the de-duplication id `redrive-<seq>`, then
//! removes it from the stream. The consumer that failed handles it; every other consumer
//! of that subject already recorded the event id in its inbox and does nothing. So a
//! redrive has its effect at most once, and running it twice (or after a crash between
//! the publish and the removal) changes nothing more.

use async_nats::HeaderMap;
use async_nats::jetstream::{self, message::PublishMessage};
use bytes::Bytes;

use crate::consumer::{DEAD_LETTER_CONSUMER, DEAD_LETTER_REASON, DEAD_LETTER_SUBJECT};
use crate::envelope;
use crate::streams::DEAD_LETTER;

/// Where discarded events are kept, with the operator's reason.
pub const DISCARDED: &str = "game.deadletter._discarded";
/// Header of a discarded event: why it was discarded.
pub const DISCARD_REASON: &str = "Game-Discard-Reason";
/// Most messages `list` reads.
pub const LIST_LIMIT: usize = 1000;

/// What the ops role needs for this module's functions, and nothing more (granted by
/// [`crate::access`]): read, remove and keep-as-discarded messages of `DEADLETTER`, and
/// publish an event back on a subject some durable consumer reads (its filter), where
/// the consumer that failed finds it again.
pub(crate) fn rights() -> Vec<String> {
    let dl = DEAD_LETTER.name;
    let mut rights = vec![
        format!("$JS.API.STREAM.INFO.{dl}"),
        format!("$JS.API.STREAM.MSG.GET.{dl}"),
        format!("$JS.API.DIRECT.GET.{dl}"),
        format!("$JS.API.DIRECT.GET.{dl}.>"),
        format!("$JS.API.STREAM.MSG.DELETE.{dl}"),
        format!("{DISCARDED}.>"),
    ];
    rights.extend(crate::roles::ALL.iter().flat_map(|r| r.consumers).map(|c| c.filter.to_owned()));
    rights
}

/// One dead-lettered event.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    /// Its sequence number in the `DEADLETTER` stream: its id for `show`, `redrive`, `discard`.
    pub seq: u64,
    /// The durable consumer that could not handle it.
    pub consumer: String,
    /// The subject it was published on.
    pub subject: String,
    pub reason: String,
    /// Deliveries before it was dead-lettered.
    pub attempts: u64,
    /// When the event happened (its envelope), as RFC 3339.
    pub occurred_at: String,
    /// When it was dead-lettered (after the last failure).
    pub dead_lettered_at: String,
    pub event_id: String,
    pub event_type: String,
    pub customer_id: String,
    pub payload: Bytes,
    /// Set on a discarded event: why.
    pub discarded: Option<String>,
}

fn header(h: &HeaderMap, name: &str) -> String {
    h.get(name).map(|v| v.as_str().to_owned()).unwrap_or_default()
}

fn from_raw(seq: u64, m: &jetstream::message::StreamMessage) -> DeadLetter {
    let h = &m.headers;
    // The dead-letter id is `<durable>-<original id>-<deliveries>`.
    let attempts = header(h, envelope::MSG_ID).rsplit('-').next().and_then(|n| n.parse().ok()).unwrap_or(0);
    let discarded = h.get(DISCARD_REASON).map(|v| v.as_str().to_owned());
    DeadLetter {
        seq,
        consumer: header(h, DEAD_LETTER_CONSUMER),
        subject: header(h, DEAD_LETTER_SUBJECT),
        reason: header(h, DEAD_LETTER_REASON),
        attempts,
        occurred_at: header(h, envelope::OCCURRED_AT),
        dead_lettered_at: m.time.to_string(),
        event_id: header(h, envelope::EVENT_ID),
        event_type: header(h, envelope::EVENT_TYPE),
        customer_id: header(h, envelope::CUSTOMER_ID),
        payload: m.payload.clone(),
        discarded,
    }
}

/// The dead-lettered events still waiting (not redriven, not discarded), oldest first,
/// of `consumer` when given; at most [`LIST_LIMIT`].
///
/// # Errors
/// When JetStream cannot be reached.
pub async fn list(js: &jetstream::Context, consumer: Option<&str>) -> Result<Vec<DeadLetter>, String> {
    Ok(page(js, consumer, 0, LIST_LIMIT).await?.0)
}

/// At most `limit` of the dead-lettered events still waiting whose id is above `after`
/// (of `consumer` when given), oldest first, and the id to continue after when there may
/// be more.
///
/// # Errors
/// When JetStream cannot be reached.
pub async fn page(
    js: &jetstream::Context,
    consumer: Option<&str>,
    after: u64,
    limit: usize,
) -> Result<(Vec<DeadLetter>, Option<u64>), String> {
    let Ok(mut stream) = js.get_stream(DEAD_LETTER.name).await else {
        return Ok((Vec::new(), None)); // nothing was ever dead-lettered
    };
    let info = stream.info().await.map_err(|e| e.to_string())?;
    let (first, last) = (info.state.first_sequence.max(after.saturating_add(1)), info.state.last_sequence);
    let mut out = Vec::new();
    for seq in first..=last {
        if out.len() >= limit {
            return Ok((out, Some(seq - 1)));
        }
        // a removed message is a gap in the sequence
        let Ok(m) = stream.get_raw_message(seq).await else { continue };
        let d = from_raw(seq, &m);
        if d.discarded.is_none() && consumer.is_none_or(|c| c == d.consumer) {
            out.push(d);
        }
    }
    Ok((out, None))
}

/// The dead-lettered event `seq` (waiting or discarded); `None` when there is none.
///
/// # Errors
/// When JetStream cannot be reached.
pub async fn get(js: &jetstream::Context, seq: u64) -> Result<Option<DeadLetter>, String> {
    let Ok(stream) = js.get_stream(DEAD_LETTER.name).await else { return Ok(None) };
    Ok(stream.get_raw_message(seq).await.ok().map(|m| from_raw(seq, &m)))
}

/// The envelope the event was published with (the dead-letter headers taken off).
fn original_headers(m: &jetstream::message::StreamMessage, msg_id: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (name, values) in m.headers.iter() {
        let name: &str = name.as_ref();
        if [DEAD_LETTER_CONSUMER, DEAD_LETTER_REASON, DEAD_LETTER_SUBJECT, DISCARD_REASON, envelope::MSG_ID]
            .iter()
            .any(|n| n.eq_ignore_ascii_case(name))
        {
            continue;
        }
        for v in values {
            h.append(name, v.as_str());
        }
    }
    h.insert(envelope::MSG_ID, msg_id);
    h
}

/// Sends the dead-lettered event `seq` back on its original subject (see the module
/// docs), then removes it from the dead-letter stream. `Ok(false)` when there is no such
/// event waiting (already redriven or discarded).
///
/// # Errors
/// When JetStream cannot be reached or refuses the publish.
pub async fn redrive(js: &jetstream::Context, seq: u64) -> Result<bool, String> {
    let Ok(stream) = js.get_stream(DEAD_LETTER.name).await else { return Ok(false) };
    let Ok(m) = stream.get_raw_message(seq).await else { return Ok(false) };
    let d = from_raw(seq, &m);
    if d.discarded.is_some() || d.subject.is_empty() {
        return Ok(false);
    }
    let publish = PublishMessage::build()
        .payload(m.payload.clone())
        .headers(original_headers(&m, &format!("redrive-{}-{seq}", d.consumer)));
    js.send_publish(d.subject.clone(), publish)
        .await
        .map_err(|e| e.to_string())?
        .await
        .map_err(|e| format!("redrive of {seq} to {}: {e}", d.subject))?;
    // Published: now it may go (if this fails, a second redrive is absorbed as above).
    stream.delete_message(seq).await.map_err(|e| e.to_string())?;
    Ok(true)
}

/// Discards the dead-lettered event `seq`: kept in the stream, out of the waiting list,
/// with `reason`. `Ok(false)` when there is no such event waiting.
///
/// # Errors
/// When JetStream cannot be reached.
pub async fn discard(js: &jetstream::Context, seq: u64, reason: &str) -> Result<bool, String> {
    let Ok(stream) = js.get_stream(DEAD_LETTER.name).await else { return Ok(false) };
    let Ok(m) = stream.get_raw_message(seq).await else { return Ok(false) };
    let d = from_raw(seq, &m);
    if d.discarded.is_some() {
        return Ok(false);
    }
    let mut h = m.headers.clone();
    h.insert(DISCARD_REASON, reason.replace(['\r', '\n'], " ").as_str());
    h.insert(envelope::MSG_ID, format!("discard-{seq}").as_str());
    let subject = format!("{DISCARDED}.{}", if d.consumer.is_empty() { "unknown" } else { &d.consumer });
    js.send_publish(subject, PublishMessage::build().payload(m.payload.clone()).headers(h))
        .await
        .map_err(|e| e.to_string())?
        .await
        .map_err(|e| e.to_string())?;
    stream.delete_message(seq).await.map_err(|e| e.to_string())?;
    Ok(true)
}
