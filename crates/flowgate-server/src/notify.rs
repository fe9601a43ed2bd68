//! Delivering the outbox: e-mail over SMTP (`lettre`) and signed webhooks (`reqwest`), retried
//! with exponential backoff; and the change notice reminders, which are themselves steps that
//! queue messages.
//!
//! Messages were written to the outbox in the same transaction as the event that caused them, so
//! a message exists exactly when its event does. The worker claims due messages for a lease,
//! delivers each and records the outcome. If the process stops between sending and recording,
//! the message goes again after the lease: delivery is at least once, and the message's
//! idempotency key (its `Message-ID`, the `Flowgate-Idempotency-Key` header) lets the receiver
//! drop the repeat.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use flowgate_core::Email;
use flowgate_core::notice::{self, NoticeAction};
use flowgate_core::register::Register;
use flowgate_store::{Channel, OutboxMessage, Store};
use hmac::{Hmac, Mac};
use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use sha2::Sha256;
use tokio::sync::RwLock;

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain SMTP: a relay on the same host or network only.
    None,
    /// STARTTLS, usually port 587.
    StartTls,
    /// TLS from the first byte, usually port 465.
    Tls,
}

impl std::str::FromStr for SmtpTls {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "none" | "plain" => Ok(SmtpTls::None),
            "starttls" => Ok(SmtpTls::StartTls),
            "tls" | "smtps" => Ok(SmtpTls::Tls),
            other => Err(format!(
                "'{other}' is not an SMTP TLS mode (none, starttls, tls)"
            )),
        }
    }
}

/// Where e-mail goes.
#[derive(Debug, Clone)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    /// User name and password, when the server wants them.
    pub credentials: Option<(String, String)>,
    /// The sender, e.g. `Flowgate <flowgate@uni.example>`.
    pub from: Mailbox,
}

/// What the worker needs.
#[derive(Debug, Clone)]
pub struct NotifySettings {
    /// `None`: e-mail waits in the outbox until a server is configured.
    pub smtp: Option<SmtpSettings>,
    /// Remind those who have not answered this many days before a change's planned date.
    pub remind_days: i64,
    /// How often the outbox is looked at when nothing wakes the worker (other instances may have
    /// queued messages).
    pub poll: Duration,
    /// How long a claimed message is left to this worker.
    pub lease: Duration,
}

impl Default for NotifySettings {
    fn default() -> Self {
        NotifySettings {
            smtp: None,
            remind_days: 7,
            poll: Duration::from_secs(5),
            lease: Duration::from_secs(60),
        }
    }
}

/// Who the audit log names for Flowgate's own steps (reminders).
pub const SYSTEM_ACTOR: &str = "flowgate";

/// The outbox's delivery worker.
#[derive(Debug)]
pub struct Worker {
    store: Store,
    register: Arc<RwLock<Register>>,
    settings: NotifySettings,
    mailer: Option<AsyncSmtpTransport<Tokio1Executor>>,
    http: reqwest::Client,
}

impl Worker {
    pub fn new(
        store: Store,
        register: Arc<RwLock<Register>>,
        settings: NotifySettings,
    ) -> Result<Worker, String> {
        let mailer = settings.smtp.as_ref().map(mailer).transpose()?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .user_agent(concat!("flowgate/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the webhook client: {e}"))?;
        Ok(Worker {
            store,
            register,
            settings,
            mailer,
            http,
        })
    }

    /// Runs until `stop` says so: reminders when due, then every due message, then waits for new
    /// ones (or the poll interval).
    pub async fn run(self, mut stop: tokio::sync::watch::Receiver<bool>) {
        let signal = self.store.outbox_signal();
        let mut last_reminders: Option<std::time::Instant> = None;
        loop {
            if *stop.borrow() {
                return;
            }
            if last_reminders.is_none_or(|t| t.elapsed() >= Duration::from_secs(60)) {
                last_reminders = Some(std::time::Instant::now());
                if let Err(e) = self.send_reminders(Utc::now()).await {
                    tracing::error!(error = %e, "change notice reminders failed");
                }
            }
            let busy = match self.deliver_due(Utc::now()).await {
                Ok(n) => n > 0,
                Err(e) => {
                    tracing::error!(error = %e, "reading the outbox failed");
                    false
                }
            };
            if busy {
                continue;
            }
            tokio::select! {
                _ = signal.notified() => {}
                _ = tokio::time::sleep(self.settings.poll) => {}
                _ = stop.changed() => {}
            }
        }
    }

    /// Delivers the messages due at `now`; how many were attempted.
    pub async fn deliver_due(
        &self,
        now: DateTime<Utc>,
    ) -> Result<usize, flowgate_store::StoreError> {
        let channels: &[Channel] = if self.mailer.is_some() {
            &[Channel::Email, Channel::Webhook]
        } else {
            &[Channel::Webhook]
        };
        let lease = chrono::Duration::from_std(self.settings.lease)
            .unwrap_or_else(|_| chrono::Duration::seconds(60));
        let batch = self.store.claim_outbox(now, 32, lease, channels).await?;
        for m in &batch {
            let outcome = match m.channel {
                Channel::Email => self.send_mail(m).await,
                Channel::Webhook => self.send_webhook(m, Utc::now()).await,
            };
            match outcome {
                Ok(()) => {
                    tracing::info!(id = %m.id, event = %m.event, "delivered");
                    self.store.outbox_delivered(&m.id, Utc::now()).await?;
                }
                Err(e) => {
                    tracing::warn!(id = %m.id, event = %m.event, attempt = m.attempts + 1, error = %e, "delivery failed; will retry");
                    self.store.outbox_failed(m, Utc::now(), &e).await?;
                }
            }
        }
        Ok(batch.len())
    }

    async fn send_mail(&self, m: &OutboxMessage) -> Result<(), String> {
        let (Some(mailer), Some(smtp)) = (&self.mailer, &self.settings.smtp) else {
            return Err("no SMTP server is configured".into());
        };
        let to: Mailbox = m
            .recipient
            .parse()
            .map_err(|e| format!("'{}' is not an address: {e}", m.recipient))?;
        let email = Message::builder()
            .from(smtp.from.clone())
            .to(to)
            .subject(&m.subject)
            .message_id(Some(message_id(&m.id)))
            .header(ContentType::TEXT_PLAIN)
            .body(m.body.clone())
            .map_err(|e| format!("cannot build the e-mail: {e}"))?;
        mailer
            .send(email)
            .await
            .map(|_| ())
            .map_err(|e| format!("SMTP {}:{}: {e}", smtp.host, smtp.port))
    }

    async fn send_webhook(&self, m: &OutboxMessage, now: DateTime<Utc>) -> Result<(), String> {
        let Some((url, secret)) = self
            .store
            .webhook_target(&m.recipient)
            .await
            .map_err(|e| e.to_string())?
        else {
            return Err(format!("webhook {} is disabled or gone", m.recipient));
        };
        let timestamp = now.timestamp();
        let response = self
            .http
            .post(&url)
            .header("content-type", "application/json")
            .header(
                SIGNATURE_HEADER,
                signature_header(&secret, timestamp, m.body.as_bytes()),
            )
            .header("flowgate-idempotency-key", &m.id)
            .header("flowgate-event", &m.event)
            .body(m.body.clone())
            .send()
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(format!("{url} answered {}", response.status()))
        }
    }

    /// Sends the reminders due at `now` (2.5): each open notice planned within `remind_days` that
    /// has not had one. Each is a step with its audit event and its messages.
    pub async fn send_reminders(&self, now: DateTime<Utc>) -> Result<usize, String> {
        let due = self
            .store
            .notices_due_reminder(now.date_naive(), self.settings.remind_days)
            .await
            .map_err(|e| e.to_string())?;
        let actor = system_actor();
        let reg = self.register.read().await;
        let mut sent = 0;
        for id in due {
            let result = self
                .store
                .notice_transition(&reg, &id, None, SYSTEM_ACTOR, now, |n, reg| {
                    notice::decide(n, &NoticeAction::Remind, &actor, reg, now)
                })
                .await;
            match result {
                Ok(t) => {
                    tracing::info!(notice = %id, systems = t.reminded.len(), "reminder sent");
                    sent += 1;
                }
                Err(e) => tracing::warn!(notice = %id, error = %e, "no reminder"),
            }
        }
        Ok(sent)
    }
}

/// Flowgate itself, as the actor of the steps it takes.
fn system_actor() -> Email {
    Email::parse("flowgate@flowgate.invalid").expect("a valid address")
}

fn mailer(s: &SmtpSettings) -> Result<AsyncSmtpTransport<Tokio1Executor>, String> {
    let builder = match s.tls {
        SmtpTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&s.host),
        SmtpTls::StartTls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&s.host)
            .map_err(|e| format!("SMTP host '{}': {e}", s.host))?,
        SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&s.host)
            .map_err(|e| format!("SMTP host '{}': {e}", s.host))?,
    };
    let mut builder = builder.port(s.port).timeout(Some(Duration::from_secs(10)));
    if let Some((user, password)) = &s.credentials {
        builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
    }
    Ok(builder.build())
}

/// The header a webhook delivery is signed in.
pub const SIGNATURE_HEADER: &str = "flowgate-signature";

/// `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" under the webhook's secret>`: the
/// receiver recomputes it, compares in constant time, and refuses an old timestamp (a replay).
pub fn signature_header(secret: &str, timestamp: i64, body: &[u8]) -> String {
    format!("t={timestamp},v1={}", sign(secret, timestamp, body))
}

fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Checks a signature header as a receiver would: the signature matches and the timestamp is
/// within `tolerance` seconds of `now`.
pub fn verify_signature(
    secret: &str,
    header: &str,
    body: &[u8],
    now: i64,
    tolerance: i64,
) -> Result<(), &'static str> {
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = v.parse::<i64>().ok(),
            Some(("v1", v)) => v1 = Some(v),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else {
        return Err("the signature header is malformed");
    };
    if (now - t).abs() > tolerance {
        return Err("the timestamp is too old or in the future");
    }
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()).map_err(|_| "bad secret")?;
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let expected: Vec<u8> = (0..v1.len() / 2)
        .filter_map(|i| u8::from_str_radix(v1.get(2 * i..2 * i + 2)?, 16).ok())
        .collect();
    mac.verify_slice(&expected)
        .map_err(|_| "the signature does not match")
}

/// A `Message-ID` from the idempotency key: the same message always has the same id.
fn message_id(key: &str) -> String {
    let local: String = key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '.'
            }
        })
        .collect();
    format!("<{local}@flowgate>")
}
