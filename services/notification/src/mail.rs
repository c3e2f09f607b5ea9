//! The outbound mail adapters behind the domain's `Mailer` port: an SMTP relay, or (with
//! no relay configured) a mailbox directory holding one RFC 5322 `.eml` file per e-mail.
//! Both format the same message, whose Message-ID comes from the event it is about, so
//! an e-mail sent twice is recognisably the same one.

use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use lettre::message::{Mailbox, Message, SinglePart};
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use notification_domain::{Email, MailDomain, MailError, Mailer};
use tokio::io::AsyncWriteExt;

/// How e-mails leave this service.
#[derive(Debug, Clone, clap::Args)]
pub struct MailSettings {
    /// `smtp://host[:port]` (port 25 by default) of a relay to send through: plain SMTP,
    /// no TLS, no authentication. Unset or empty: e-mails are written into `MAILBOX_DIR`.
    #[arg(long, env = "SMTP_URL")]
    pub smtp_url: Option<String>,
    /// Directory of `<event id>.eml` files, when no `SMTP_URL` is set.
    #[arg(long, env = "MAILBOX_DIR", default_value = "data/mailbox")]
    pub mailbox_dir: PathBuf,
    /// Sender of every e-mail; its domain also names the messages (Message-ID).
    #[arg(long, env = "MAIL_FROM", default_value = "Game Rewards <rewards@game-rewards.local>", value_parser = mail_from)]
    pub mail_from: Mailbox,
    /// Customers' mailboxes are `<customer id, made e-mail-safe>@RECIPIENT_DOMAIN`.
    #[arg(long, env = "RECIPIENT_DOMAIN", default_value = "players.game-rewards.local")]
    pub recipient_domain: MailDomain,
}

fn mail_from(raw: &str) -> Result<Mailbox, String> {
    raw.parse().map_err(|e| format!("must be an address such as 'Game Rewards <rewards@example.com>' ({e})"))
}

/// A plain-SMTP relay address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpUrl {
    pub host: String,
    pub port: u16,
}

impl FromStr for SmtpUrl {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, String> {
        let usage = "must be smtp://host[:port]";
        let rest = raw
            .trim()
            .strip_prefix("smtp://")
            .ok_or_else(|| format!("{usage} (no TLS support: smtps and others are refused)"))?;
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['@', '/', '?', '#']) {
            return Err(format!("{usage}: credentials, paths and parameters are not supported"));
        }
        let (host, port) = match rest.strip_prefix('[') {
            // [v6]:port
            Some(v6) => {
                let (host, after) = v6.split_once(']').ok_or(usage)?;
                (host, after.strip_prefix(':'))
            }
            None => match rest.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (rest, None),
            },
        };
        if host.is_empty() {
            return Err(format!("{usage}: the host is missing"));
        }
        let port = match port {
            None => 25,
            Some(p) => p.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(|| format!("{usage}: bad port '{p}'"))?,
        };
        Ok(Self { host: host.to_owned(), port })
    }
}

impl std::fmt::Display for SmtpUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "smtp://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "smtp://{}:{}", self.host, self.port)
        }
    }
}

/// Turns a domain e-mail into an RFC 5322 message.
#[derive(Debug, Clone)]
struct Letters {
    from: Mailbox,
}

impl Letters {
    /// # Errors
    /// [`MailError::Rejected`] when the message cannot be built (it never will be).
    fn message(&self, email: &Email) -> Result<Message, MailError> {
        let to: Address =
            email.to.as_str().parse().map_err(|e| MailError::Rejected(format!("recipient {}: {e}", email.to)))?;
        Message::builder()
            .from(self.from.clone())
            .to(Mailbox::new(None, to))
            .subject(email.subject.clone())
            .message_id(Some(format!("<{}@{}>", email.about_event_id, self.from.email.domain())))
            .singlepart(SinglePart::plain(email.body.clone()))
            .map_err(|e| MailError::Rejected(e.to_string()))
    }
}

/// Sends through an SMTP relay, one connection per e-mail.
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    letters: Letters,
}

/// Upper bound on each SMTP command, so a stuck relay becomes a retry.
const SMTP_TIMEOUT: Duration = Duration::from_secs(15);

impl SmtpMailer {
    fn new(url: &SmtpUrl, letters: Letters) -> Self {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(url.host.as_str())
            .port(url.port)
            .timeout(Some(SMTP_TIMEOUT))
            .build();
        Self { transport, letters }
    }
}

impl Mailer for SmtpMailer {
    async fn send(&self, email: &Email) -> Result<(), MailError> {
        let message = self.letters.message(email)?;
        match self.transport.send(message).await {
            Ok(_) => Ok(()),
            // 5xx: the relay will never take it.
            Err(e) if e.is_permanent() => Err(MailError::Rejected(e.to_string())),
            // 4xx, connection and timeout failures: it may later.
            Err(e) => Err(MailError::Unavailable(e.to_string())),
        }
    }
}

/// Writes each e-mail as `<dir>/<about_event_id>.eml`: written under a temporary name,
/// flushed, then renamed, so a reader never sees half a file and sending again
/// replaces the file instead of adding a second one. The e-mails hold customers'
/// addresses and gift codes: the directory is its owner's alone (0700) and every file
/// is created readable by its owner only (0600), whatever the umask.
pub struct MailboxMailer {
    dir: PathBuf,
    letters: Letters,
}

impl MailboxMailer {
    async fn write(&self, email: &Email, bytes: &[u8]) -> std::io::Result<()> {
        // Made again if someone removed it, private like at start.
        tokio::fs::DirBuilder::new().recursive(true).mode(PRIVATE_DIR).create(&self.dir).await?;
        let id = email.about_event_id;
        let path = self.dir.join(format!("{id}.eml"));
        // Unique per attempt: replicas sharing the directory never write one temp file.
        let tmp = self.dir.join(format!(".{id}.{}.tmp", uuid::Uuid::new_v4().simple()));
        let written = async {
            // Created 0600: never readable by others, not even before the rename.
            let mut f =
                tokio::fs::OpenOptions::new().write(true).create_new(true).mode(PRIVATE_FILE).open(&tmp).await?;
            f.write_all(bytes).await?;
            f.sync_all().await?;
            drop(f);
            tokio::fs::rename(&tmp, &path).await
        }
        .await;
        if written.is_err() {
            let _ = tokio::fs::remove_file(&tmp).await;
        }
        written
    }
}

impl Mailer for MailboxMailer {
    async fn send(&self, email: &Email) -> Result<(), MailError> {
        let bytes = self.letters.message(email)?.formatted();
        // A full disk or a missing permission may be fixed: retry.
        self.write(email, &bytes).await.map_err(|e| MailError::Unavailable(format!("{}: {e}", self.dir.display())))
    }
}

/// The mailer the settings chose.
pub enum AnyMailer {
    Smtp(SmtpMailer),
    Mailbox(MailboxMailer),
}

impl Mailer for AnyMailer {
    async fn send(&self, email: &Email) -> Result<(), MailError> {
        match self {
            Self::Smtp(m) => m.send(email).await,
            Self::Mailbox(m) => m.send(email).await,
        }
    }
}

impl MailSettings {
    /// The SMTP mailer when `SMTP_URL` is set, else the mailbox (its directory created).
    ///
    /// # Errors
    /// When `SMTP_URL` is malformed or the mailbox directory cannot be created, naming
    /// the setting.
    pub fn mailer(&self) -> Result<AnyMailer, String> {
        let letters = Letters { from: self.mail_from.clone() };
        // An empty value is how deployments usually say "unset".
        let relay = self.smtp_url.as_deref().map(str::trim).filter(|u| !u.is_empty());
        match relay.map(SmtpUrl::from_str).transpose().map_err(|e| format!("SMTP_URL: {e}"))? {
            Some(url) => {
                tracing::info!(relay = %url, "e-mails go to the SMTP relay");
                Ok(AnyMailer::Smtp(SmtpMailer::new(&url, letters)))
            }
            None => {
                create_dir(&self.mailbox_dir)?;
                tracing::info!(dir = %self.mailbox_dir.display(), "e-mails go to the mailbox directory");
                Ok(AnyMailer::Mailbox(MailboxMailer { dir: self.mailbox_dir.clone(), letters }))
            }
        }
    }
}

/// The mailbox directory's mode: its owner's alone.
const PRIVATE_DIR: u32 = 0o700;
/// An e-mail's mode: readable and writable by its owner only.
const PRIVATE_FILE: u32 = 0o600;

/// Creates the mailbox directory, or closes an existing one that others could read
/// (made by an older version, with the umask's 0755 and 0644): the directory becomes
/// 0700 and every file in it 0600.
fn create_dir(dir: &Path) -> Result<(), String> {
    let failed = |e: std::io::Error| format!("MAILBOX_DIR {}: {e}", dir.display());
    std::fs::DirBuilder::new().recursive(true).mode(PRIVATE_DIR).create(dir).map_err(failed)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(PRIVATE_DIR)).map_err(failed)?;
    let mut closed = 0;
    for entry in std::fs::read_dir(dir).map_err(failed)? {
        let entry = entry.map_err(failed)?;
        let meta = entry.metadata().map_err(failed)?;
        if meta.is_file() && meta.permissions().mode() & 0o777 != PRIVATE_FILE {
            std::fs::set_permissions(entry.path(), std::fs::Permissions::from_mode(PRIVATE_FILE)).map_err(failed)?;
            closed += 1;
        }
    }
    if closed > 0 {
        tracing::info!(dir = %dir.display(), files = closed, "e-mails others could read made private (0600)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use kernel::CustomerId;
    use notification_domain::{EmailAddress, GiftEventKind, GiftFact, compose};
    use uuid::Uuid;

    use super::*;

    fn email(name: &str) -> Email {
        let customer = CustomerId::new("c-11").unwrap();
        let domain = MailDomain::new("players.game-rewards.local").unwrap();
        let fact = GiftFact {
            kind: GiftEventKind::Issued,
            customer_id: customer.clone(),
            gift_code: "CAFE-42".into(),
            gift_name: name.into(),
        };
        compose(&fact, EmailAddress::for_customer(&customer, &domain), Uuid::now_v7())
    }

    fn mailbox(dir: &Path) -> MailboxMailer {
        MailboxMailer {
            dir: dir.to_path_buf(),
            letters: Letters { from: "Game Rewards <rewards@game-rewards.local>".parse().unwrap() },
        }
    }

    fn eml_files(dir: &Path) -> Vec<PathBuf> {
        let mut all: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
        all.sort();
        all
    }

    #[test]
    fn smtp_urls_name_host_and_port_and_refuse_what_we_cannot_do() {
        let url = |s: &str| s.parse::<SmtpUrl>();
        assert_eq!(url("smtp://127.0.0.1:2525").unwrap(), SmtpUrl { host: "127.0.0.1".into(), port: 2525 });
        assert_eq!(url("smtp://mail.local/").unwrap().port, 25);
        assert_eq!(url("smtp://[::1]:26").unwrap().host, "::1");
        assert_eq!(url("smtp://[::1]:26").unwrap().to_string(), "smtp://[::1]:26");
        for bad in [
            "smtps://h:465",
            "h:25",
            "smtp://",
            "smtp://h:0",
            "smtp://h:x",
            "smtp://u:p@h:25",
            "smtp://h:25?tls=required",
        ] {
            assert!(url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_empty_smtp_url_means_the_mailbox_and_a_bad_one_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let settings = |url: &str| MailSettings {
            smtp_url: Some(url.to_owned()),
            mailbox_dir: dir.path().join("mailbox"),
            mail_from: "rewards@game-rewards.local".parse().unwrap(),
            recipient_domain: MailDomain::new("players.game-rewards.local").unwrap(),
        };
        assert!(matches!(settings(" ").mailer(), Ok(AnyMailer::Mailbox(_))));
        assert!(dir.path().join("mailbox").is_dir(), "created at start");
        assert!(matches!(settings("smtp://relay.local:2525").mailer(), Ok(AnyMailer::Smtp(_))));
        let err = settings("smtps://relay.local").mailer().err().unwrap();
        assert!(err.starts_with("SMTP_URL: "), "{err}");
    }

    #[tokio::test]
    async fn an_email_becomes_one_eml_file_named_by_its_event_and_a_resend_replaces_it() {
        let dir = tempfile::tempdir().unwrap();
        let m = mailbox(dir.path());
        let e = email("Coffee");
        m.send(&e).await.unwrap();
        m.send(&e).await.unwrap();
        let files = eml_files(dir.path());
        assert_eq!(files, vec![dir.path().join(format!("{}.eml", e.about_event_id))]);
        let text = std::fs::read_to_string(&files[0]).unwrap();
        assert!(text.contains("Subject: Your gift: Coffee\r\n"), "{text}");
        assert!(text.contains("To: c-11@players.game-rewards.local\r\n"), "{text}");
        assert!(text.contains("From: \"Game Rewards\" <rewards@game-rewards.local>\r\n"), "{text}");
        assert!(text.contains(&format!("Message-ID: <{}@game-rewards.local>\r\n", e.about_event_id)), "{text}");
        assert!(text.contains("Date: "), "{text}");
        assert!(text.contains("MIME-Version: 1.0\r\n"), "{text}");
        assert!(text.contains("Content-Type: text/plain; charset=utf-8\r\n"), "{text}");
        assert!(text.contains("Gift code: CAFE-42\r\n"), "{text}");
    }

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[tokio::test]
    async fn e_mails_are_files_only_their_owner_reads_in_a_directory_only_its_owner_opens() {
        let dir = tempfile::tempdir().unwrap();
        let mailbox_dir = dir.path().join("data").join("mailbox");
        let e = email("Coffee");
        mailbox(&mailbox_dir).send(&e).await.unwrap();
        let file = mailbox_dir.join(format!("{}.eml", e.about_event_id));
        assert_eq!((mode(&mailbox_dir), mode(&file)), (0o700, 0o600), "the directory, the e-mail");
    }

    #[test]
    fn an_existing_mailbox_others_could_read_is_made_private_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let mailbox_dir = dir.path().join("mailbox");
        std::fs::create_dir(&mailbox_dir).unwrap();
        std::fs::set_permissions(&mailbox_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let old = mailbox_dir.join("old.eml");
        std::fs::write(&old, "To: c-11@players.game-rewards.local\r\n").unwrap();
        std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o644)).unwrap();
        let settings = MailSettings {
            smtp_url: None,
            mailbox_dir: mailbox_dir.clone(),
            mail_from: "rewards@game-rewards.local".parse().unwrap(),
            recipient_domain: MailDomain::new("players.game-rewards.local").unwrap(),
        };
        assert!(matches!(settings.mailer(), Ok(AnyMailer::Mailbox(_))));
        assert_eq!((mode(&mailbox_dir), mode(&old)), (0o700, 0o600), "the directory, the old e-mail");
    }

    #[tokio::test]
    async fn a_mailbox_that_cannot_be_written_asks_for_a_retry() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("not-a-dir");
        std::fs::write(&file, b"x").unwrap();
        let err = mailbox(&file).send(&email("Coffee")).await.unwrap_err();
        assert!(matches!(err, MailError::Unavailable(_)), "{err}");
    }

    #[tokio::test]
    async fn a_relay_that_is_not_there_asks_for_a_retry() {
        // Bind and drop: a port nobody listens on.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let url = SmtpUrl { host: "127.0.0.1".into(), port };
        let m = SmtpMailer::new(&url, Letters { from: "rewards@game-rewards.local".parse().unwrap() });
        let err = m.send(&email("Coffee")).await.unwrap_err();
        assert!(matches!(err, MailError::Unavailable(_)), "{err}");
    }
}
