//! The dead-letter stream for operators: what is in it, one message in full, sending an
//! event back, or discarding it with a reason that is kept. `gamectl dlq --bus` and the
//! ops role's RPCs both come here, so they apply the same rule.
//!
//! A dead letter is a claim, made by whoever could publish on its subject, that a
//! consumer gave up on an event. What it may cause is decided by our own declarations,
//! never by its headers:
//! - it belongs to the consumer its dead-letter subject names
//!   (`game.deadletter.<durable>`, which only that consumer's role may publish on,
//!   [`crate::access`]); the `Game-Dead-Letter-Consumer` header is not read;
//! - it goes back only onto a subject that consumer's filter ([`crate::roles`]) takes;
//! - what goes back is the event as its own stream holds it, at the sequence the dead
//!   letter names ([`DEAD_LETTER_SEQUENCE`]), and only when the dead letter carries that
//!   very event (subject, event id, payload). So a dead letter can make a real event be
//!   delivered again, which every consumer's inbox absorbs except the one that failed,
//!   and nothing else: it cannot mint an event, nor move one to another consumer or
//!   subject, even when the consumer's filter is a wildcard or shared with other roles.
//!
//! Anything else is refused with the reason and stays waiting, unchanged: it is the
//! evidence of a fault or a forgery, it keeps showing in `list` and `gamectl status`, and
//! an admin takes it out with `discard` and a reason that is kept. (Moving it aside on
//! its own would let a forgery disappear without anyone deciding so.)
//!
//! A redrive publishes the event again on its subject with its original envelope (the
//! same `Game-Event-Id`), under the de-duplication id `redrive-<consumer>-<seq>`, then
//! removes the dead letter. The consumer that failed handles it; every other consumer
//! of that subject already recorded the event id in its inbox and does nothing. So a
//! redrive has its effect at most once, and running it twice (or after a crash between
//! the publish and the removal) changes nothing more.

use async_nats::HeaderMap;
use async_nats::jetstream::stream::RawMessageErrorKind;
use async_nats::jetstream::{self, message::PublishMessage, message::StreamMessage};
use bytes::Bytes;

use crate::consumer::{ConsumerSpec, DEAD_LETTER_REASON, DEAD_LETTER_SEQUENCE, DEAD_LETTER_SUBJECT};
use crate::envelope;
use crate::streams::DEAD_LETTER;

/// Where discarded events are kept, with the operator's reason.
pub const DISCARDED: &str = "game.deadletter._discarded";
/// Header of a discarded event: why it was discarded.
pub const DISCARD_REASON: &str = "Game-Discard-Reason";
/// Most messages `list` reads.
pub const LIST_LIMIT: usize = 1000;

/// What the ops role needs for this module's functions, and nothing more (granted by
/// [`crate::access`]): read, remove and keep-as-discarded messages of `DEADLETTER`, read
/// the event a dead letter names in the stream a consumer reads, and publish it back on
/// a subject some durable consumer reads (its filter), where the consumer that failed
/// finds it again.
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
    rights.extend(consumers().map(|c| c.filter.to_owned()));
    rights.extend(consumers().map(|c| format!("$JS.API.STREAM.MSG.GET.{}", c.stream.name)));
    rights
}

/// Whether `c`'s filter takes events published on `subject`.
fn reads(c: &ConsumerSpec, subject: &str) -> bool {
    crate::streams::covers(c.filter, subject)
}

/// Every durable consumer we declare.
fn consumers() -> impl Iterator<Item = &'static ConsumerSpec> {
    crate::roles::ALL.iter().flat_map(|r| r.consumers)
}

/// One dead-lettered event, as its headers describe it (for people: [`redrive`] checks
/// against our own records instead).
#[derive(Debug, Clone)]
pub struct DeadLetter {
    /// Its sequence number in the `DEADLETTER` stream: its id for `show`, `redrive`, `discard`.
    pub seq: u64,
    /// The durable consumer it belongs to: the one its subject names.
    pub consumer: String,
    /// The subject it says the event was published on.
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

/// A header's value, printable: whoever wrote the dead letter chose it, and it ends up
/// on an operator's terminal, where a control character could rewrite the screen.
fn header(h: &HeaderMap, name: &str) -> String {
    h.get(name).map(|v| printable(v.as_str())).unwrap_or_default()
}

fn printable(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { '\u{fffd}' } else { c }).collect()
}

/// The consumer a message of `DEADLETTER` belongs to, by the subject it arrived on, and
/// whether it was discarded (kept under [`DISCARDED`], where only ops and the operator
/// publish). A header cannot change either.
fn owner(subject: &str) -> (String, bool) {
    if let Some(consumer) = subject.strip_prefix(DISCARDED).and_then(|s| s.strip_prefix('.')) {
        return (printable(consumer), true);
    }
    let prefix = DEAD_LETTER.subjects.trim_end_matches('>');
    (printable(subject.strip_prefix(prefix).unwrap_or(subject)), false)
}

fn from_raw(seq: u64, m: &StreamMessage) -> DeadLetter {
    let h = &m.headers;
    // The dead-letter id is `<durable>-<original id>-<deliveries>`.
    let attempts = header(h, envelope::MSG_ID).rsplit('-').next().and_then(|n| n.parse().ok()).unwrap_or(0);
    let (consumer, discarded) = owner(&m.subject);
    DeadLetter {
        seq,
        consumer,
        subject: header(h, DEAD_LETTER_SUBJECT),
        reason: header(h, DEAD_LETTER_REASON),
        attempts,
        occurred_at: header(h, envelope::OCCURRED_AT),
        dead_lettered_at: m.time.to_string(),
        event_id: header(h, envelope::EVENT_ID),
        event_type: header(h, envelope::EVENT_TYPE),
        customer_id: header(h, envelope::CUSTOMER_ID),
        payload: m.payload.clone(),
        discarded: discarded.then(|| header(h, DISCARD_REASON)),
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

/// What became of one dead letter asked to go back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redrive {
    /// Its event was published again and the dead letter removed.
    Sent,
    /// There is no such dead letter waiting (already redriven or discarded).
    NotWaiting,
    /// Not sent back, and left waiting as it is: why, and what to do instead.
    Refused(String),
}

/// What a redrive of several dead letters did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Redriven {
    /// The ids whose event went back.
    pub sent: Vec<u64>,
    /// The ids refused, each with why ([`Redrive::Refused`]); they stay waiting.
    pub refused: Vec<(u64, String)>,
}

/// Redrives each of `ids` in turn ([`redrive`]).
///
/// # Errors
/// When JetStream cannot be reached or refuses a publish: the ones before were done.
pub async fn redrive_each(js: &jetstream::Context, ids: impl IntoIterator<Item = u64>) -> Result<Redriven, String> {
    let mut done = Redriven::default();
    for seq in ids {
        match redrive(js, seq).await? {
            Redrive::Sent => done.sent.push(seq),
            Redrive::NotWaiting => {}
            Redrive::Refused(why) => {
                tracing::warn!(id = seq, reason = %why, "dead letter refused: not sent back");
                done.refused.push((seq, why));
            }
        }
    }
    Ok(done)
}

/// What to do with a dead letter that is refused.
const INSTEAD: &str = "it stays waiting: look at it (dlq show), then discard it with a reason";

/// The consumer a dead letter arrived for, from our declarations; refused when its
/// subject names none, or when the subject it claims is not one that consumer reads.
fn consumer_of(dead_letter_subject: &str, claimed_subject: &str) -> Result<&'static ConsumerSpec, String> {
    let Some(c) = consumers().find(|c| crate::streams::dead_letter_subject(c.durable) == dead_letter_subject) else {
        return Err(format!(
            "it arrived on {dead_letter_subject}, which is no consumer's dead-letter subject; {INSTEAD}"
        ));
    };
    if !reads(c, claimed_subject) {
        return Err(format!(
            "it claims subject '{}', but {} reads only {}: a dead letter goes back only where its consumer reads; \
             {INSTEAD}",
            printable(claimed_subject),
            c.durable,
            c.filter
        ));
    }
    Ok(c)
}

/// An event as a check needs it: where it was published, its id, its bytes.
#[derive(Debug, Clone, Copy)]
struct Carried<'a> {
    subject: &'a str,
    event_id: Option<&'a str>,
    payload: &'a [u8],
}

impl<'a> From<&'a StreamMessage> for Carried<'a> {
    fn from(m: &'a StreamMessage) -> Self {
        Self {
            subject: m.subject.as_str(),
            event_id: m.headers.get(envelope::EVENT_ID).map(|v| v.as_str()),
            payload: m.payload.as_ref(),
        }
    }
}

/// Whether the dead letter carries the event `source`, number `at` of `c`'s stream: the
/// subject it claims is the one the event was published on (and `c` reads), the same
/// event id and the same payload.
fn same_event(c: &ConsumerSpec, at: u64, source: Carried<'_>, dead: Carried<'_>, claimed: &str) -> Result<(), String> {
    if source.subject != claimed || !reads(c, source.subject) {
        return Err(format!(
            "it names {} #{at}, which was published on {}, not '{}'; {INSTEAD}",
            c.stream.name,
            source.subject,
            printable(claimed)
        ));
    }
    if source.event_id.is_none() || source.event_id != dead.event_id || source.payload != dead.payload {
        return Err(format!(
            "it does not carry the event it names ({} #{at}): another event id or payload; {INSTEAD}",
            c.stream.name
        ));
    }
    Ok(())
}

/// The envelope the event was published with, under the de-duplication id `msg_id`.
fn republished_headers(source: &StreamMessage, msg_id: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (name, values) in source.headers.iter() {
        let name: &str = name.as_ref();
        if name.eq_ignore_ascii_case(envelope::MSG_ID) {
            continue;
        }
        for v in values {
            h.append(name, v.as_str());
        }
    }
    h.insert(envelope::MSG_ID, msg_id);
    h
}

/// Sends the event of the dead letter `seq` back (see the module docs), then removes the
/// dead letter; or refuses, and leaves it waiting.
///
/// # Errors
/// When JetStream cannot be reached or refuses the publish.
pub async fn redrive(js: &jetstream::Context, seq: u64) -> Result<Redrive, String> {
    let Ok(stream) = js.get_stream(DEAD_LETTER.name).await else { return Ok(Redrive::NotWaiting) };
    let Ok(dead) = stream.get_raw_message(seq).await else { return Ok(Redrive::NotWaiting) };
    let (consumer, discarded) = owner(&dead.subject);
    if discarded {
        return Ok(Redrive::NotWaiting);
    }
    let claimed = dead.headers.get(DEAD_LETTER_SUBJECT).map(|v| v.as_str().to_owned()).unwrap_or_default();
    let c = match consumer_of(&dead.subject, &claimed) {
        Ok(c) => c,
        Err(why) => return Ok(Redrive::Refused(why)),
    };
    let Some(at) = dead.headers.get(DEAD_LETTER_SEQUENCE).and_then(|v| v.as_str().parse::<u64>().ok()) else {
        return Ok(Redrive::Refused(format!(
            "it names no event of {} ({DEAD_LETTER_SEQUENCE} missing: forged, or dead-lettered by a version \
             before it was kept); {INSTEAD}, or republish the event by hand after checking it",
            c.stream.name
        )));
    };
    let source = match js.get_stream_no_info(c.stream.name).await {
        Ok(s) => s.get_raw_message(at).await,
        Err(e) => return Err(format!("stream {}: {e}", c.stream.name)),
    };
    let source = match source {
        Ok(m) => m,
        Err(e) if e.kind() == RawMessageErrorKind::NoMessageFound => {
            return Ok(Redrive::Refused(format!(
                "its event, {} #{at}, is no longer in the stream (older than the stream keeps, or never there); \
                 {INSTEAD}",
                c.stream.name
            )));
        }
        Err(e) => return Err(format!("reading {} #{at}: {e}", c.stream.name)),
    };
    if let Err(why) = same_event(c, at, (&source).into(), (&dead).into(), &claimed) {
        return Ok(Redrive::Refused(why));
    }
    let publish = PublishMessage::build()
        .payload(source.payload.clone())
        .headers(republished_headers(&source, &format!("redrive-{consumer}-{seq}")));
    js.send_publish(source.subject.clone(), publish)
        .await
        .map_err(|e| e.to_string())?
        .await
        .map_err(|e| format!("redrive of {seq} to {}: {e}", source.subject))?;
    // Published: now it may go (if this fails, a second redrive is absorbed as above).
    stream.delete_message(seq).await.map_err(|e| e.to_string())?;
    Ok(Redrive::Sent)
}

/// Discards the dead-lettered event `seq`: kept in the stream, out of the waiting list,
/// with `reason`. `Ok(false)` when there is no such event waiting.
///
/// # Errors
/// When JetStream cannot be reached.
pub async fn discard(js: &jetstream::Context, seq: u64, reason: &str) -> Result<bool, String> {
    let Ok(stream) = js.get_stream(DEAD_LETTER.name).await else { return Ok(false) };
    let Ok(m) = stream.get_raw_message(seq).await else { return Ok(false) };
    let (consumer, discarded) = owner(&m.subject);
    if discarded {
        return Ok(false);
    }
    let mut h = m.headers.clone();
    h.insert(DISCARD_REASON, reason.replace(['\r', '\n'], " ").as_str());
    h.insert(envelope::MSG_ID, format!("discard-{seq}").as_str());
    // A subject token: no separators or wildcards from whatever the dead letter arrived on.
    let token: String =
        consumer.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect();
    let subject = format!("{DISCARDED}.{}", if token.is_empty() { "unknown" } else { &token });
    js.send_publish(subject, PublishMessage::build().payload(m.payload.clone()).headers(h))
        .await
        .map_err(|e| e.to_string())?
        .await
        .map_err(|e| e.to_string())?;
    stream.delete_message(seq).await.map_err(|e| e.to_string())?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::roles::{mission, mypage, notification};
    use crate::streams::subject;

    #[test]
    fn a_dead_letter_belongs_to_the_consumer_its_subject_names_whatever_its_headers_say() {
        assert_eq!(owner("game.deadletter.notification-gift-issued"), ("notification-gift-issued".into(), false));
        assert_eq!(owner("game.deadletter._discarded.wallet-issue"), ("wallet-issue".into(), true));
        assert_eq!(owner("game.deadletter.x\u{1b}[2J"), ("x\u{fffd}[2J".into(), false), "printable");
    }

    #[test]
    fn a_dead_letter_goes_back_only_where_its_consumer_reads() {
        let dl = |c: &ConsumerSpec| crate::streams::dead_letter_subject(c.durable);
        let gift_issued = &notification::GIFT_ISSUED;
        // The attack of issue 24: notification's dead letter claiming a mission subject.
        let why = consumer_of(&dl(gift_issued), subject::MISSION_ACHIEVED).unwrap_err();
        assert!(why.contains("notification-gift-issued reads only game.gift.v1.issued"), "{why}");
        assert_eq!(consumer_of(&dl(gift_issued), subject::GIFT_ISSUED), Ok(gift_issued));
        assert!(consumer_of(&dl(gift_issued), subject::GIFT_USED).is_err(), "same stream, another filter");
        assert!(consumer_of(&dl(gift_issued), "").is_err());
        // A wildcard filter takes its own stream's subjects only.
        let pages = &mypage::CONSUMERS[0];
        assert_eq!(consumer_of(&dl(pages), subject::MISSION_ACHIEVED), Ok(pages));
        assert!(consumer_of(&dl(pages), subject::REWARD_ALLOCATED).is_err());
        // No declared consumer: neither an unknown name nor the discarded ones.
        assert!(consumer_of("game.deadletter.nobody", subject::GIFT_ISSUED).is_err());
        assert!(consumer_of("game.deadletter._discarded.notification-gift-issued", subject::GIFT_ISSUED).is_err());
        assert_eq!(consumer_of(&dl(&mission::RECORD_REWARD), subject::REWARD_ALLOCATED), Ok(&mission::RECORD_REWARD));
    }

    fn event<'a>(subject: &'a str, event_id: &'a str, payload: &'a [u8]) -> Carried<'a> {
        Carried { subject, event_id: Some(event_id), payload }
    }

    #[test]
    fn what_goes_back_is_the_event_its_stream_holds_and_only_when_the_dead_letter_carries_it() {
        // A shared subject (mypage reads it too) and a wildcard filter alike: the dead
        // letter must carry the very event its stream holds at the sequence it names.
        let c = &notification::GIFT_ISSUED;
        let issued = subject::GIFT_ISSUED;
        let source = event(issued, "e-1", b"gift");
        let dead = |id, payload| event("game.deadletter.notification-gift-issued", id, payload);
        assert_eq!(same_event(c, 7, source, dead("e-1", b"gift"), issued), Ok(()));
        assert!(same_event(c, 7, source, dead("e-1", b"forged"), issued).is_err(), "payload");
        assert!(same_event(c, 7, source, dead("e-2", b"gift"), issued).is_err(), "event id");
        let no_id = Carried { event_id: None, ..source };
        assert!(same_event(c, 7, no_id, Carried { event_id: None, ..dead("", b"gift") }, issued).is_err());
        let used = event(subject::GIFT_USED, "e-1", b"gift");
        assert!(same_event(c, 8, used, dead("e-1", b"gift"), subject::GIFT_USED).is_err(), "not its filter");
        assert!(same_event(c, 8, used, dead("e-1", b"gift"), issued).is_err(), "not the subject claimed");
        let pages = &mypage::CONSUMERS[0];
        let achieved = event(subject::MISSION_ACHIEVED, "e-3", b"mission");
        let claim = event("game.deadletter.mypage-mission", "e-3", b"1,000,000 points");
        let why = same_event(pages, 9, achieved, claim, subject::MISSION_ACHIEVED).unwrap_err();
        assert!(why.contains("MISSION #9"), "a wildcard is no licence: {why}");
    }

    #[test]
    fn ops_reads_the_events_consumers_read_and_no_other_stream() {
        let rights = rights();
        for s in ["MISSION", "REWARD", "WALLET", "GIFT"] {
            assert!(rights.contains(&format!("$JS.API.STREAM.MSG.GET.{s}")), "{s}");
        }
        assert!(!rights.iter().any(|r| r.contains("NOTIFICATION") || r.contains("KV_")), "{rights:?}");
    }
}
