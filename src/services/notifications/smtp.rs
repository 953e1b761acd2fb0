//! Sending mail over SMTP (`KEYWARD_SMTP_URL`, `KEYWARD_MAIL_FROM`): the settings, the
//! [`Mailer`] that composes a multipart plain-text + HTML message and hands it to the relay,
//! and [`send_due`], which sends the messages of the mail outbox (`mail_messages`).
//!
//! Sending is at least once: due messages are claimed with `FOR UPDATE SKIP LOCKED` (any
//! number of instances take different ones), sent, and marked sent in the same transaction.
//! A process that dies after the relay accepted a message but before the commit sends it
//! again; its `Message-ID` is derived from the message's row, so the copy is recognisable.
//! A failed send is tried again later with a growing pause, for about a day.
//!
//! Message bodies are never logged (they hold no secrets anyway: a password reset link is
//! sent by [`Mailer::send_now`] and never stored).

use std::time::Duration as StdDuration;

use askama::Template;
use chrono::{DateTime, Duration, Utc};
use diesel::{PgConnection, prelude::*};
use lettre::{
    Message, SmtpTransport, Transport,
    message::{
        Mailbox, MultiPart,
        header::{Header, HeaderName, HeaderValue},
    },
};

use crate::{
    db::{models::outbox::MailMessage, schema::mail_messages},
    error::AppError,
    services::notifications::digest,
};

/// The sender when `KEYWARD_MAIL_FROM` is not set.
pub const DEFAULT_FROM: &str = "Keyward <keyward@localhost>";

/// The most messages one run sends (the next run sends the rest).
const BATCH: i64 = 100;

/// How long one conversation with the relay may take before it counts as failed.
const SMTP_TIMEOUT: StdDuration = StdDuration::from_secs(15);

/// How long a message is tried before it is given up.
pub fn give_up_after() -> Duration {
    Duration::hours(24)
}

/// The pause before the next attempt after `attempts` failed ones: 1, 2, 4 … minutes, at most
/// an hour (about 30 attempts in a day).
pub fn backoff(attempts: i32) -> Duration {
    let exponent = u32::try_from(attempts.clamp(1, 7) - 1).unwrap_or(0);
    Duration::minutes(2_i64.pow(exponent)).min(Duration::hours(1))
}

/// The configured relay and sender. The URL may hold a password: it is never printed.
#[derive(Clone)]
pub struct SmtpSettings {
    url: String,
    from: Mailbox,
}

impl std::fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSettings").field("url", &"<hidden>").field("from", &self.from.to_string()).finish()
    }
}

impl SmtpSettings {
    /// Checks `url` (lettre's URL syntax) and `from` (`Name <address>` or an address). The
    /// message is for the operator and never quotes the URL.
    pub fn parse(url: &str, from: &str) -> Result<Self, String> {
        SmtpTransport::from_url(url.trim()).map_err(|_| {
            "KEYWARD_SMTP_URL must be an SMTP URL such as smtp://relay:25, \
             smtp://user:password@relay:587?tls=required or smtps://relay:465"
                .to_string()
        })?;
        let from = from.trim().parse::<Mailbox>().map_err(|_| {
            "KEYWARD_MAIL_FROM must be an address, optionally with a name: Keyward <keyward@example.com>".to_string()
        })?;
        Ok(Self { url: url.trim().to_string(), from })
    }
}

/// A relay to send through, with the public URL links are built on.
#[derive(Clone)]
pub struct Mailer {
    transport: SmtpTransport,
    from: Mailbox,
    /// `https://keys.example.com`, without a trailing slash.
    base_url: String,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer").field("from", &self.from.to_string()).field("base_url", &self.base_url).finish()
    }
}

/// `List-Unsubscribe`: where a mail client's "unsubscribe" button leads (the account page
/// with the preference).
#[derive(Debug, Clone)]
struct ListUnsubscribe(String);

impl Header for ListUnsubscribe {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("List-Unsubscribe")
    }

    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self(s.trim_matches(['<', '>']).to_string()))
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), format!("<{}>", self.0))
    }
}

/// The HTML part of every message (escaped by Askama).
#[derive(Template)]
#[template(path = "mail/message.html")]
struct HtmlMail<'a> {
    subject: &'a str,
    paragraphs: Vec<&'a str>,
    link: Option<&'a str>,
    link_label: &'a str,
    sections: &'a [digest::Section],
    base_url: &'a str,
    footer: &'a str,
    footer_link: Option<&'a str>,
}

/// What a message says, ready to be drawn as text and HTML.
pub struct Content<'a> {
    pub subject: &'a str,
    /// Plain text; paragraphs separated by blank lines.
    pub body: &'a str,
    /// An absolute link to the page the message is about.
    pub link: Option<String>,
    pub link_label: &'a str,
    /// A digest's sections (their links are paths).
    pub sections: &'a [digest::Section],
    /// Why the recipient gets this and how to stop it.
    pub footer: String,
    /// The page where they can stop it (also the `List-Unsubscribe` header).
    pub footer_link: Option<String>,
}

impl Mailer {
    pub fn new(settings: &SmtpSettings, base_url: &str) -> Result<Self, String> {
        let transport = SmtpTransport::from_url(&settings.url)
            .map_err(|_| "KEYWARD_SMTP_URL is not an SMTP URL".to_string())?
            .timeout(Some(SMTP_TIMEOUT))
            .build();
        Ok(Self { transport, from: settings.from.clone(), base_url: base_url.trim_end_matches('/').to_string() })
    }

    /// An absolute URL of a path of this Keyward.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    fn message_id(&self, local: &str) -> String {
        let domain = self.from.email.domain();
        format!("<{local}@{domain}>")
    }

    /// Composes a message to `to` with the Message-ID `<{id_local}@{sender's domain}>`.
    pub fn compose(&self, to: &str, id_local: &str, content: &Content<'_>) -> Result<Message, String> {
        let to: Mailbox = to.parse().map_err(|_| "the recipient's address is not valid".to_string())?;
        let mut text = content.body.to_string();
        if !content.sections.is_empty() {
            text.push_str("\n\n");
            text.push_str(&digest::text(content.sections, &self.base_url));
        }
        if let Some(link) = &content.link {
            text.push_str(&format!("\n\n{}: {link}", content.link_label));
        }
        text.push_str("\n\n-- \n");
        text.push_str(&content.footer);
        if let Some(link) = &content.footer_link {
            text.push_str(&format!(" {link}"));
        }
        text.push('\n');
        let html = HtmlMail {
            subject: content.subject,
            paragraphs: content.body.split("\n\n").map(str::trim).filter(|p| !p.is_empty()).collect(),
            link: content.link.as_deref(),
            link_label: content.link_label,
            sections: content.sections,
            base_url: &self.base_url,
            footer: &content.footer,
            footer_link: content.footer_link.as_deref(),
        }
        .render()
        .map_err(|e| format!("cannot draw the HTML part: {e}"))?;
        let mut builder = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(content.subject)
            .message_id(Some(self.message_id(id_local)))
            .user_agent("Keyward".to_string());
        if let Some(link) = &content.footer_link {
            builder = builder.header(ListUnsubscribe(link.clone()));
        }
        builder.multipart(MultiPart::alternative_plain_html(text, html)).map_err(|e| format!("cannot compose: {e}"))
    }

    /// Hands `message` to the relay (blocking). The error says what the relay or the
    /// connection said, never the message.
    pub fn send(&self, message: &Message) -> Result<(), SendError> {
        self.transport
            .send(message)
            .map(|_| ())
            .map_err(|e| SendError { permanent: e.is_permanent(), message: e.to_string().chars().take(400).collect() })
    }

    /// Composes and sends a message that is not kept in the outbox (a password reset link,
    /// which no administrator may read), at once (blocking).
    pub fn send_now(&self, to: &str, id_local: &str, content: &Content<'_>) -> Result<(), SendError> {
        let message = self.compose(to, id_local, content).map_err(|message| SendError { permanent: true, message })?;
        self.send(&message)
    }
}

/// Why a message was not sent.
#[derive(Debug, Clone)]
pub struct SendError {
    /// The relay refused it for good (a 5xx answer): trying again would not help.
    pub permanent: bool,
    pub message: String,
}

/// The words at the bottom of a message of the outbox, and the page to stop it.
fn footer_of(mailer: &Mailer, message: &MailMessage) -> (String, Option<String>) {
    if message.digest_week.is_some() {
        (
            "You get this weekly digest because you turned it on. To stop it, turn it off on your account page:".into(),
            Some(mailer.url("/account")),
        )
    } else if message.recipient_staff_id.is_some() {
        ("You get this as a member of the Keyward staff.".into(), None)
    } else {
        (
            "You get this about API keys you created or administer. To stop expiry reminders, turn them off on \
             your account page:"
                .into(),
            Some(mailer.url("/account")),
        )
    }
}

/// Composes a message of the outbox.
pub fn compose_outbox_message(mailer: &Mailer, message: &MailMessage) -> Result<Message, String> {
    let sections: Vec<digest::Section> = match &message.digest {
        Some(value) => serde_json::from_value(value.clone()).map_err(|e| format!("unreadable digest: {e}"))?,
        None => vec![],
    };
    // A digest's text in the outbox already lists its sections (with paths); the mail draws
    // them with absolute links instead.
    let body = if message.digest.is_some() {
        message.body.split("\n\n").next().unwrap_or_default()
    } else {
        message.body.as_str()
    };
    let (footer, footer_link) = footer_of(mailer, message);
    let content = Content {
        subject: &message.subject,
        body,
        link: message.link_path.as_deref().map(|path| mailer.url(path)),
        link_label: "Open it in Keyward",
        sections: &sections,
        footer,
        footer_link,
    };
    mailer.compose(&message.recipient_email, &format!("keyward-mail-{}", message.id), &content)
}

/// Sends the messages of the outbox due at `now` (at most [`BATCH`]); one line for the log.
/// Messages older than [`give_up_after`] are given up first.
pub fn send_due(conn: &mut PgConnection, mailer: &Mailer, now: DateTime<Utc>) -> Result<String, AppError> {
    let gave_up = diesel::update(
        mail_messages::table
            .filter(mail_messages::next_send_at.is_not_null())
            .filter(mail_messages::created_at.lt(now - give_up_after())),
    )
    .set((
        mail_messages::next_send_at.eq(None::<DateTime<Utc>>),
        mail_messages::send_error.eq(diesel::dsl::sql::<diesel::sql_types::Nullable<diesel::sql_types::Text>>(
            "left('Given up after a day. ' || coalesce(send_error, 'It was never tried.'), 500)",
        )),
    ))
    .execute(conn)?;
    let (sent, failed) = conn.transaction::<_, AppError, _>(|conn| {
        let due: Vec<MailMessage> = mail_messages::table
            .filter(mail_messages::next_send_at.le(now))
            .order((mail_messages::next_send_at.asc(), mail_messages::id.asc()))
            .limit(BATCH)
            .select(MailMessage::as_select())
            .for_update()
            .skip_locked()
            .load(conn)?;
        let (mut sent, mut failed) = (0, 0);
        for message in &due {
            let outcome = compose_outbox_message(mailer, message)
                .map_err(|message| SendError { permanent: true, message })
                .and_then(|composed| mailer.send(&composed));
            let attempts = message.send_attempts + 1;
            match outcome {
                Ok(()) => {
                    sent += 1;
                    diesel::update(mail_messages::table.find(message.id))
                        .set((
                            mail_messages::sent_at.eq(Some(now)),
                            mail_messages::send_attempts.eq(attempts),
                            mail_messages::send_error.eq(None::<String>),
                            mail_messages::next_send_at.eq(None::<DateTime<Utc>>),
                        ))
                        .execute(conn)?;
                }
                Err(error) => {
                    failed += 1;
                    let next = now + backoff(attempts);
                    let next = (!error.permanent && next < message.created_at + give_up_after()).then_some(next);
                    log::warn!(
                        "sending mail message {} failed (attempt {attempts}{}): {}",
                        message.id,
                        if next.is_some() { ", tried again later" } else { ", given up" },
                        error.message
                    );
                    diesel::update(mail_messages::table.find(message.id))
                        .set((
                            mail_messages::send_attempts.eq(attempts),
                            mail_messages::send_error.eq(Some(error.message.chars().take(500).collect::<String>())),
                            mail_messages::next_send_at.eq(next),
                        ))
                        .execute(conn)?;
                    // The relay is down or refusing: the others wait for the next run rather
                    // than each waiting for their own timeout now.
                    if !error.permanent {
                        break;
                    }
                }
            }
        }
        Ok((sent, failed))
    })?;
    Ok(format!("{sent} message(s) sent, {failed} failed, {gave_up} given up"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pause_between_attempts_doubles_up_to_an_hour() {
        assert_eq!(backoff(1), Duration::minutes(1));
        assert_eq!(backoff(2), Duration::minutes(2));
        assert_eq!(backoff(3), Duration::minutes(4));
        assert_eq!(backoff(7), Duration::hours(1));
        assert_eq!(backoff(40), Duration::hours(1));
    }

    #[test]
    fn settings_name_no_url_in_their_errors_and_debug() {
        let bad = SmtpSettings::parse("http://user:hunter2@relay", DEFAULT_FROM).unwrap_err();
        assert!(!bad.contains("hunter2"), "{bad}");
        let good = SmtpSettings::parse("smtp://user:hunter2@relay:587?tls=required", DEFAULT_FROM).unwrap();
        assert!(!format!("{good:?}").contains("hunter2"));
        assert!(SmtpSettings::parse("smtp://relay:25", "not an address").is_err());
        assert!(SmtpSettings::parse("smtps://relay:465", "keyward@example.com").is_ok());
    }
}
