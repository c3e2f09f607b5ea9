//! The `Notification` aggregate (one e-mail sent), the gift facts that cause one, and
//! the pure composition of the e-mail for a fact.

use chrono::{DateTime, Utc};
use kernel::{CustomerId, ValidationError};
use uuid::Uuid;

/// How a notification reached the customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    Email,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Email => "email",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "email" => Some(Self::Email),
            _ => None,
        }
    }
}

/// The domain customers' mailboxes live under, e.g. `players.game-rewards.local`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailDomain(String);

impl MailDomain {
    /// # Errors
    /// `recipient_domain` unless the text is a host name: dot-separated labels of ASCII
    /// letters, digits and inner hyphens, at most 63 bytes each and 253 in all.
    pub fn new(raw: &str) -> Result<Self, ValidationError> {
        let bad = |reason: &str| ValidationError::new("recipient_domain", reason);
        let raw = raw.trim().trim_end_matches('.');
        if raw.is_empty() {
            return Err(bad("must not be empty"));
        }
        if raw.len() > 253 {
            return Err(bad("must be at most 253 bytes"));
        }
        for label in raw.split('.') {
            let ok = !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
            if !ok {
                return Err(bad("must be a host name such as players.example.com"));
            }
        }
        Ok(Self(raw.to_ascii_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for MailDomain {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

/// An e-mail address `local@domain`, as far as this context needs to know one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailAddress(String);

/// RFC 5321 bounds a local part to 64 octets.
const MAX_LOCAL: usize = 64;

impl EmailAddress {
    /// The mailbox of a customer under `domain`. Customer ids are opaque strings, so the
    /// local part keeps ASCII letters, digits, `-` and `_` and writes every other byte
    /// as `=XX` (hex): two customers never share a mailbox, and the result is a plain
    /// dot-atom any mail system accepts. A local part that would pass 64 bytes keeps
    /// its first 47 and ends in `-` and a 64-bit FNV-1a hash of the whole id.
    pub fn for_customer(customer: &CustomerId, domain: &MailDomain) -> Self {
        let mut local = String::with_capacity(customer.as_str().len());
        for b in customer.as_str().bytes() {
            if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
                local.push(char::from(b));
            } else {
                local.push_str(&format!("={b:02X}"));
            }
        }
        if local.len() > MAX_LOCAL {
            // `local` is ASCII, so any byte index is a char boundary.
            local.truncate(MAX_LOCAL - 17);
            local.push_str(&format!("-{:016x}", fnv1a(customer.as_str().as_bytes())));
        }
        Self(format!("{local}@{}", domain.as_str()))
    }

    /// Reads back an address this context wrote.
    ///
    /// # Errors
    /// `recipient` when it is not `local@domain` with both parts non-empty and no
    /// whitespace or control characters.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let ok = raw.rsplit_once('@').is_some_and(|(l, d)| !l.is_empty() && !d.is_empty())
            && !raw.chars().any(|c| c.is_whitespace() || c.is_control());
        if ok { Ok(Self(raw.to_owned())) } else { Err(ValidationError::new("recipient", "must be an e-mail address")) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// 64-bit FNV-1a: tiny, and stable across releases (unlike std's `DefaultHasher`), so
/// a customer's address never changes.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3))
}

/// What happened to a gift, as the gift context told us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GiftEventKind {
    Issued,
    Used,
}

/// A `GiftIssued` or `GiftUsed` fact: only what an e-mail about it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GiftFact {
    pub kind: GiftEventKind,
    pub customer_id: CustomerId,
    pub gift_code: String,
    pub gift_name: String,
}

/// Longest gift name put in a subject line, in characters.
const MAX_NAME: usize = 100;

impl GiftFact {
    /// The name to show: control characters become spaces (they must never reach a
    /// header), runs of spaces one; the code when the name is blank.
    fn display_name(&self) -> String {
        let clean = |s: &str| -> String {
            let spaced: String = s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
            spaced.split_whitespace().collect::<Vec<_>>().join(" ")
        };
        let name = clean(&self.gift_name);
        let name = if name.is_empty() { clean(&self.gift_code) } else { name };
        if name.is_empty() {
            return "gift".to_owned();
        }
        if name.chars().count() > MAX_NAME {
            let mut cut: String = name.chars().take(MAX_NAME - 1).collect();
            cut.push('…');
            return cut;
        }
        name
    }

    fn display_code(&self) -> String {
        self.gift_code.chars().filter(|c| !c.is_control() && !c.is_whitespace()).collect()
    }
}

/// An e-mail to send: composed from a fact, not yet sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    pub to: EmailAddress,
    pub subject: String,
    /// Plain text, `\n` line ends.
    pub body: String,
    /// The event it is about: names the message (Message-ID, mailbox file), so sending
    /// it again is recognisable as the same e-mail.
    pub about_event_id: Uuid,
}

/// Composes the e-mail telling the customer about `fact` (pure).
pub fn compose(fact: &GiftFact, to: EmailAddress, about_event_id: Uuid) -> Email {
    let name = fact.display_name();
    let code = fact.display_code();
    let code_line = if code.is_empty() { String::new() } else { format!("Gift code: {code}\n") };
    let (subject, body) = match fact.kind {
        GiftEventKind::Issued => (
            format!("Your gift: {name}"),
            format!(
                "Hello,\n\nYour reward was exchanged for a gift: {name}.\n{code_line}\n\
                 Show the gift code when you use it.\n\nEnjoy!\nGame Rewards\n"
            ),
        ),
        GiftEventKind::Used => (
            format!("You used your gift: {name}"),
            format!(
                "Hello,\n\nYour gift {name} was just used.\n{code_line}\n\
                 If this was not you, please contact our support.\n\nGame Rewards\n"
            ),
        ),
    };
    Email { to, subject, body, about_event_id }
}

/// Points of a customer about to expire (the wallet's `PointsExpiring`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpiryFact {
    pub customer_id: CustomerId,
    pub points: i64,
    /// The day they expire, UTC.
    pub date: chrono::NaiveDate,
}

/// Composes the e-mail telling the customer their points expire soon (pure):
/// "40 points expire on 2027-01-05".
pub fn compose_expiry(fact: &ExpiryFact, to: EmailAddress, about_event_id: Uuid) -> Email {
    let (points, date) = (fact.points, fact.date);
    let subject = format!("{points} points expire on {date}");
    let body = format!(
        "Hello,\n\n{points} of your points expire on {date} (UTC).\n         Spend them on a gift before then.\n\nGame Rewards\n"
    );
    Email { to, subject, body, about_event_id }
}

/// One e-mail sent to a customer: the record of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// UUIDv7.
    pub id: Uuid,
    pub customer_id: CustomerId,
    pub channel: Channel,
    pub recipient: EmailAddress,
    pub subject: String,
    pub body: String,
    pub about_event_id: Uuid,
    pub sent_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotificationEvent {
    Sent { notification_id: Uuid, customer_id: CustomerId, channel: Channel, subject: String, about_event_id: Uuid },
}

impl Notification {
    /// Records that `email` was sent to `customer_id` at `sent_at`.
    pub fn sent(id: Uuid, customer_id: CustomerId, email: Email, sent_at: DateTime<Utc>) -> (Self, NotificationEvent) {
        let n = Self {
            id,
            customer_id,
            channel: Channel::Email,
            recipient: email.to,
            subject: email.subject,
            body: email.body,
            about_event_id: email.about_event_id,
            sent_at,
        };
        let event = NotificationEvent::Sent {
            notification_id: n.id,
            customer_id: n.customer_id.clone(),
            channel: n.channel,
            subject: n.subject.clone(),
            about_event_id: n.about_event_id,
        };
        (n, event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn domain() -> MailDomain {
        MailDomain::new("players.game-rewards.local").unwrap()
    }

    fn fact(kind: GiftEventKind, name: &str) -> GiftFact {
        GiftFact {
            kind,
            customer_id: CustomerId::new("c-11").unwrap(),
            gift_code: "CAFE-42".into(),
            gift_name: name.into(),
        }
    }

    #[test]
    fn given_an_issued_gift_when_composed_then_the_subject_names_it_and_the_body_gives_the_code() {
        let to = EmailAddress::for_customer(&CustomerId::new("c-11").unwrap(), &domain());
        let id = Uuid::now_v7();
        let e = compose(&fact(GiftEventKind::Issued, "Coffee"), to, id);
        assert_eq!(e.subject, "Your gift: Coffee");
        assert!(e.body.contains("Gift code: CAFE-42"), "{}", e.body);
        assert_eq!(e.to.as_str(), "c-11@players.game-rewards.local");
        assert_eq!(e.about_event_id, id);
    }

    #[test]
    fn given_a_used_gift_when_composed_then_the_subject_says_it_was_used() {
        let to = EmailAddress::parse("x@y").unwrap();
        let e = compose(&fact(GiftEventKind::Used, "Coffee"), to, Uuid::now_v7());
        assert_eq!(e.subject, "You used your gift: Coffee");
        assert!(e.body.contains("was just used"));
    }

    #[test]
    fn a_gift_name_with_line_breaks_cannot_break_the_subject() {
        let to = EmailAddress::parse("x@y").unwrap();
        let e = compose(&fact(GiftEventKind::Issued, "Coffee\r\nBcc: all@example.com"), to.clone(), Uuid::now_v7());
        assert_eq!(e.subject, "Your gift: Coffee Bcc: all@example.com");
        let blank = compose(&fact(GiftEventKind::Issued, " \t"), to.clone(), Uuid::now_v7());
        assert_eq!(blank.subject, "Your gift: CAFE-42");
        let long = compose(&fact(GiftEventKind::Issued, &"é".repeat(500)), to, Uuid::now_v7());
        assert_eq!(long.subject.chars().count(), "Your gift: ".len() + MAX_NAME);
    }

    #[test]
    fn customer_ids_become_distinct_mail_safe_addresses() {
        let addr = |c: &str| EmailAddress::for_customer(&CustomerId::new(c).unwrap(), &domain());
        // ids are lower-cased when they enter (kernel::CustomerId::new)
        assert_eq!(addr("C_7-x").as_str(), "c_7-x@players.game-rewards.local");
        assert_eq!(addr("a@b.c").as_str(), "a=40b=2Ec@players.game-rewards.local");
        assert_ne!(addr("a@b"), addr("a_b"));
        assert_ne!(addr("a=40b"), addr("a@b"));
        assert_eq!(addr("ü").as_str(), "=C3=BC@players.game-rewards.local");
        let long = addr(&"@".repeat(128));
        let local = long.as_str().split('@').next().unwrap();
        assert_eq!(local.len(), 64);
        assert_ne!(long, addr(&"@".repeat(127)));
        assert_eq!(long, addr(&"@".repeat(128)), "stable");
    }

    #[test]
    fn a_recipient_domain_must_be_a_host_name() {
        assert_eq!(MailDomain::new("Players.Example.COM.").unwrap().as_str(), "players.example.com");
        for bad in ["", "a..b", "-a.b", "a b", "a@b", &"x".repeat(64)] {
            assert_eq!(MailDomain::new(bad).unwrap_err().field, "recipient_domain", "{bad:?}");
        }
    }

    #[test]
    fn given_a_sent_email_when_recorded_then_the_event_tells_what_was_sent() {
        let to = EmailAddress::parse("c-11@players.game-rewards.local").unwrap();
        let email = compose(&fact(GiftEventKind::Issued, "Coffee"), to, Uuid::now_v7());
        let (n, NotificationEvent::Sent { notification_id, channel, subject, about_event_id, .. }) =
            Notification::sent(Uuid::now_v7(), CustomerId::new("c-11").unwrap(), email.clone(), Utc::now());
        assert_eq!((notification_id, channel, subject.as_str()), (n.id, Channel::Email, "Your gift: Coffee"));
        assert_eq!(about_event_id, email.about_event_id);
        assert_eq!(Channel::parse(n.channel.as_str()), Some(Channel::Email));
    }
}
