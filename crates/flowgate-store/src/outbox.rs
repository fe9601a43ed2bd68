//! The outbox: every notification written in the same transaction as the event that causes it,
//! then delivered by a worker (`flowgate-server::notify`), retried with exponential backoff, and
//! visible while it waits or fails. Also the webhooks messages go to, and the answer links
//! change notice e-mails carry.

use std::cell::RefCell;
use std::collections::HashSet;

use chrono::{DateTime, Duration, Utc};
use flowgate_core::audit::format_time;
use flowgate_core::notify::{Links, Notification};
use flowgate_core::{Email, NoticeId, RequestId, SystemId};
use serde::Serialize;
use serde_json::json;
use sqlx::{Any, Row, Transaction};

use crate::secret::{random_hex, sha256_hex};
use crate::{Store, StoreError, parse_time};

/// After this many failed attempts a message is marked failed and waits for `retry`.
pub const MAX_ATTEMPTS: i64 = 12;

/// A message's channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Email,
    Webhook,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Webhook => "webhook",
        }
    }
}

/// One message in the outbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutboxMessage {
    /// The idempotency key: `<event seq>:<channel>:<recipient>`.
    pub id: String,
    pub event_seq: i64,
    pub channel: Channel,
    /// An e-mail address, or a webhook's id.
    pub recipient: String,
    /// What happened, e.g. `notice.raised`.
    pub event: String,
    pub subject: String,
    /// The e-mail's text, or the webhook's JSON.
    pub body: String,
    pub created_at: DateTime<Utc>,
    /// pending, delivered or failed.
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub delivered_at: Option<DateTime<Utc>>,
}

/// How many messages are in each state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct OutboxCounts {
    pub pending: i64,
    pub delivered: i64,
    pub failed: i64,
}

/// A webhook as listed: everything but its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Webhook {
    pub id: String,
    pub url: String,
    pub person: Option<String>,
    pub system: Option<String>,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub disabled_at: Option<DateTime<Utc>>,
}

/// Whom a webhook is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookFor {
    Person(Email),
    System(SystemId),
}

/// The wait before attempt `attempts + 1`: 30 s doubling up to 6 h.
pub fn backoff(attempts: i64) -> Duration {
    let exp = attempts.clamp(0, 10) as u32;
    Duration::seconds((30i64 << exp).min(6 * 3600))
}

/// Links for notifications written inside a transaction. Answer links get a fresh random token
/// each, collected here and stored (as their hashes) in the same transaction.
pub(crate) struct TxLinks {
    base: String,
    made: RefCell<Vec<(String, NoticeId, SystemId, Email)>>,
    failed: RefCell<Option<StoreError>>,
}

impl TxLinks {
    pub(crate) fn new(base: &str) -> TxLinks {
        TxLinks {
            base: base.trim_end_matches('/').to_owned(),
            made: RefCell::default(),
            failed: RefCell::default(),
        }
    }

    /// The answer links made, to store; an error if a token could not be made.
    pub(crate) fn into_made(self) -> Result<Vec<(String, NoticeId, SystemId, Email)>, StoreError> {
        match self.failed.into_inner() {
            Some(e) => Err(e),
            None => Ok(self.made.into_inner()),
        }
    }
}

impl Links for TxLinks {
    fn request(&self, id: &RequestId) -> String {
        format!("{}/requests/{id}", self.base)
    }

    fn notice(&self, id: &NoticeId) -> String {
        format!("{}/notices/{id}", self.base)
    }

    fn answer(&self, notice: &NoticeId, system: &SystemId, person: &Email) -> String {
        match random_hex(24) {
            Ok(token) => {
                let link = format!("{}/answer/{token}", self.base);
                self.made.borrow_mut().push((
                    token,
                    notice.clone(),
                    system.clone(),
                    person.clone(),
                ));
                link
            }
            Err(e) => {
                self.failed.borrow_mut().get_or_insert(e);
                String::new()
            }
        }
    }
}

/// Stores the answer links made for a step.
pub(crate) async fn store_links(
    tx: &mut Transaction<'static, Any>,
    made: &[(String, NoticeId, SystemId, Email)],
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    for (token, notice, system, person) in made {
        sqlx::query(
            "INSERT INTO answer_links (token_sha256, notice_id, system, person, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(sha256_hex(token))
        .bind(notice.as_str())
        .bind(system.as_str())
        .bind(person.as_str())
        .bind(format_time(&now))
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// Writes the messages for the notifications of event `seq`: an e-mail to each person, and a
/// webhook call for each active webhook of that person or of a system the notification is about.
/// A webhook hears of an event once, however many of its notifications concern it.
pub(crate) async fn enqueue(
    tx: &mut Transaction<'static, Any>,
    seq: i64,
    now: DateTime<Utc>,
    notifications: &[Notification],
) -> Result<usize, StoreError> {
    if notifications.is_empty() {
        return Ok(0);
    }
    let hooks = sqlx::query("SELECT id, person, system FROM webhooks WHERE disabled_at IS NULL")
        .fetch_all(&mut **tx)
        .await?;
    let hooks: Vec<(String, Option<String>, Option<String>)> = hooks
        .iter()
        .map(|r| Ok((r.try_get("id")?, r.try_get("person")?, r.try_get("system")?)))
        .collect::<Result<_, sqlx::Error>>()?;
    let mut queued = 0;
    let mut hooked = HashSet::new();
    for n in notifications {
        queued += insert(tx, seq, Channel::Email, n.to.as_str(), n, &n.text, now).await?;
        for (id, person, system) in &hooks {
            let wants = person.as_deref() == Some(n.to.as_str())
                || system
                    .as_deref()
                    .is_some_and(|s| n.systems.iter().any(|x| x.as_str() == s));
            if wants && hooked.insert(id.clone()) {
                let payload = json!({
                    "id": key(seq, Channel::Webhook, id),
                    "event": n.event,
                    "seq": seq,
                    "occurred_at": format_time(&now),
                    "subject": n.subject,
                    "link": n.link,
                    "to": n.to,
                    "systems": n.systems,
                    "data": n.data,
                });
                queued +=
                    insert(tx, seq, Channel::Webhook, id, n, &payload.to_string(), now).await?;
            }
        }
    }
    Ok(queued)
}

fn key(seq: i64, channel: Channel, recipient: &str) -> String {
    format!("{seq}:{}:{recipient}", channel.as_str())
}

async fn insert(
    tx: &mut Transaction<'static, Any>,
    seq: i64,
    channel: Channel,
    recipient: &str,
    n: &Notification,
    body: &str,
    now: DateTime<Utc>,
) -> Result<usize, StoreError> {
    let done = sqlx::query(
        "INSERT INTO outbox (id, event_seq, channel, recipient, event, subject, body, created_at, status, attempts, next_attempt_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', 0, $8) ON CONFLICT (id) DO NOTHING",
    )
    .bind(key(seq, channel, recipient))
    .bind(seq)
    .bind(channel.as_str())
    .bind(recipient)
    .bind(n.event)
    .bind(&n.subject)
    .bind(body)
    .bind(format_time(&now))
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() as usize)
}

const COLUMNS: &str = "id, event_seq, channel, recipient, event, subject, body, created_at, status, attempts, next_attempt_at, last_error, delivered_at";

fn decode(row: &sqlx::any::AnyRow) -> Result<OutboxMessage, StoreError> {
    let id: String = row.try_get("id")?;
    let time =
        |field: &'static str, v: Option<String>| -> Result<Option<DateTime<Utc>>, StoreError> {
            v.map(|s| {
                parse_time(&s).ok_or_else(|| StoreError::Corrupt {
                    table: "outbox",
                    id: id.clone(),
                    field,
                    message: format!("'{s}' is not a time"),
                })
            })
            .transpose()
        };
    let channel: String = row.try_get("channel")?;
    let created_at = time("created_at", Some(row.try_get("created_at")?))?;
    let next = time("next_attempt_at", Some(row.try_get("next_attempt_at")?))?;
    Ok(OutboxMessage {
        event_seq: row.try_get("event_seq")?,
        channel: if channel == "webhook" {
            Channel::Webhook
        } else {
            Channel::Email
        },
        recipient: row.try_get("recipient")?,
        event: row.try_get("event")?,
        subject: row.try_get("subject")?,
        body: row.try_get("body")?,
        created_at: created_at.unwrap_or_default(),
        status: row.try_get("status")?,
        attempts: row.try_get("attempts")?,
        next_attempt_at: next.unwrap_or_default(),
        last_error: row.try_get("last_error")?,
        delivered_at: time("delivered_at", row.try_get("delivered_at")?)?,
        id,
    })
}

fn decode_webhook(row: &sqlx::any::AnyRow) -> Result<Webhook, StoreError> {
    let id: String = row.try_get("id")?;
    let time = |s: String| {
        parse_time(&s).ok_or_else(|| StoreError::Corrupt {
            table: "webhooks",
            id: id.clone(),
            field: "created_at",
            message: format!("'{s}' is not a time"),
        })
    };
    Ok(Webhook {
        url: row.try_get("url")?,
        person: row.try_get("person")?,
        system: row.try_get("system")?,
        created_at: time(row.try_get("created_at")?)?,
        created_by: row.try_get("created_by")?,
        disabled_at: row
            .try_get::<Option<String>, _>("disabled_at")?
            .map(time)
            .transpose()?,
        id,
    })
}

impl Store {
    /// Messages on `channels` due for delivery at `now`, claimed for `lease` so that another worker (another
    /// server on the same PostgreSQL) leaves them alone meanwhile.
    pub async fn claim_outbox(
        &self,
        now: DateTime<Utc>,
        limit: i64,
        lease: Duration,
        channels: &[Channel],
    ) -> Result<Vec<OutboxMessage>, StoreError> {
        let at = format_time(&now);
        let channels = channels
            .iter()
            .map(|c| format!("'{}'", c.as_str()))
            .collect::<Vec<_>>()
            .join(", ");
        // One statement: the due messages are chosen and leased together. The outer condition is
        // checked again on each row as it is updated, so of two workers (two servers on one
        // PostgreSQL) choosing the same message only one gets it.
        let due = format!(
            "status = 'pending' AND channel IN ({channels}) AND next_attempt_at <= $2 AND (claimed_until IS NULL OR claimed_until < $2)"
        );
        let rows = sqlx::query(&format!(
            "UPDATE outbox SET claimed_until = $1 WHERE id IN (SELECT id FROM outbox WHERE {due} ORDER BY next_attempt_at, id LIMIT $3) AND {due} RETURNING {COLUMNS}"
        ))
        .bind(format_time(&(now + lease)))
        .bind(&at)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let mut claimed = rows.iter().map(decode).collect::<Result<Vec<_>, _>>()?;
        // RETURNING gives no order: deliver the longest waiting first.
        claimed.sort_by(|a, b| (a.next_attempt_at, &a.id).cmp(&(b.next_attempt_at, &b.id)));
        Ok(claimed)
    }

    /// Records a delivery.
    pub async fn outbox_delivered(&self, id: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE outbox SET status = 'delivered', delivered_at = $1, attempts = attempts + 1, claimed_until = NULL, last_error = NULL WHERE id = $2",
        )
        .bind(format_time(&now))
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Records a failed attempt: tried again after [`backoff`], or marked failed after
    /// [`MAX_ATTEMPTS`].
    pub async fn outbox_failed(
        &self,
        message: &OutboxMessage,
        now: DateTime<Utc>,
        error: &str,
    ) -> Result<(), StoreError> {
        let attempts = message.attempts + 1;
        let status = if attempts >= MAX_ATTEMPTS {
            "failed"
        } else {
            "pending"
        };
        sqlx::query(
            "UPDATE outbox SET status = $1, attempts = $2, next_attempt_at = $3, last_error = $4, claimed_until = NULL WHERE id = $5",
        )
        .bind(status)
        .bind(attempts)
        .bind(format_time(&(now + backoff(message.attempts))))
        .bind(error)
        .bind(&message.id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Sends a message again at once: a failed one, or a pending one waiting out its backoff.
    /// `Ok(false)` when there is no such message or it was delivered.
    pub async fn retry_outbox(&self, id: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE outbox SET status = 'pending', next_attempt_at = $1, claimed_until = NULL WHERE id = $2 AND status <> 'delivered'",
        )
        .bind(format_time(&now))
        .bind(id)
        .execute(&self.pool)
        .await?;
        self.outbox_signal.notify_one();
        Ok(done.rows_affected() == 1)
    }

    /// Messages, newest first, optionally only those in one state; and the counts of each state.
    pub async fn outbox(
        &self,
        status: Option<&str>,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<OutboxMessage>, OutboxCounts), StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM outbox{} ORDER BY created_at DESC, id DESC LIMIT {} OFFSET {}",
            if status.is_some() {
                " WHERE status = $1"
            } else {
                ""
            },
            limit.clamp(1, 500),
            offset.max(0)
        );
        let mut q = sqlx::query(&sql);
        if let Some(s) = status {
            q = q.bind(s);
        }
        let list = q
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(decode)
            .collect::<Result<Vec<_>, _>>()?;
        let mut counts = OutboxCounts::default();
        for row in sqlx::query("SELECT status, COUNT(*) AS n FROM outbox GROUP BY status")
            .fetch_all(&self.pool)
            .await?
        {
            let status: String = row.try_get("status")?;
            let n: i64 = row.try_get("n")?;
            match status.as_str() {
                "pending" => counts.pending = n,
                "delivered" => counts.delivered = n,
                _ => counts.failed += n,
            }
        }
        Ok((list, counts))
    }

    /// Deletes delivered messages delivered before `before`; how many. Pending and failed ones
    /// stay whatever their age: they are what someone must still look at.
    pub async fn prune_outbox(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let done =
            sqlx::query("DELETE FROM outbox WHERE status = 'delivered' AND delivered_at < $1")
                .bind(format_time(&before))
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected())
    }

    /// One message.
    pub async fn outbox_message(&self, id: &str) -> Result<Option<OutboxMessage>, StoreError> {
        sqlx::query(&format!("SELECT {COLUMNS} FROM outbox WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(decode)
            .transpose()
    }

    /// Woken whenever messages are queued: the delivery worker waits on it.
    pub fn outbox_signal(&self) -> std::sync::Arc<tokio::sync::Notify> {
        self.outbox_signal.clone()
    }

    /// Registers a webhook; returns it and its signing secret, shown this once. An audit event
    /// (without the secret).
    pub async fn create_webhook(
        &self,
        url: &str,
        target: &WebhookFor,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<(Webhook, String), StoreError> {
        let refuse = |message: String| StoreError::Refused {
            kind: "webhook",
            id: String::new(),
            message,
        };
        let parsed = url::Url::parse(url).map_err(|e| refuse(format!("url: '{url}' {e}")))?;
        if !matches!(parsed.scheme(), "https" | "http") {
            return Err(refuse(format!(
                "url: '{url}' is not an http or https address"
            )));
        }
        let id = format!("wh-{}", random_hex(8)?);
        let secret = format!("whsec_{}", random_hex(32)?);
        let (person, system) = match target {
            WebhookFor::Person(p) => (Some(p.to_string()), None),
            WebhookFor::System(s) => (None, Some(s.to_string())),
        };
        let (_turn, mut tx, mut chain) = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO webhooks (id, url, person, system, secret, created_at, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&id)
        .bind(url)
        .bind(&person)
        .bind(&system)
        .bind(&secret)
        .bind(format_time(&now))
        .bind(actor)
        .execute(&mut *tx)
        .await?;
        chain.push(
            now,
            actor,
            "webhook.create",
            json!({"id": id, "url": url, "person": person, "system": system}),
        );
        chain.close(&mut tx).await?;
        tx.commit().await?;
        let hook = Webhook {
            id,
            url: url.to_owned(),
            person,
            system,
            created_at: now,
            created_by: actor.to_owned(),
            disabled_at: None,
        };
        Ok((hook, secret))
    }

    /// Every webhook, oldest first.
    pub async fn webhooks(&self) -> Result<Vec<Webhook>, StoreError> {
        sqlx::query("SELECT id, url, person, system, created_at, created_by, disabled_at FROM webhooks ORDER BY created_at, id")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(decode_webhook)
            .collect()
    }

    /// A webhook's address and secret, for delivery; `None` when it is unknown or disabled.
    pub async fn webhook_target(&self, id: &str) -> Result<Option<(String, String)>, StoreError> {
        let row =
            sqlx::query("SELECT url, secret FROM webhooks WHERE id = $1 AND disabled_at IS NULL")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        row.map(|r| Ok((r.try_get("url")?, r.try_get("secret")?)))
            .transpose()
    }

    /// Disables a webhook (an audit event); `Ok(false)` when there is no such active webhook.
    pub async fn disable_webhook(
        &self,
        id: &str,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let (_turn, mut tx, mut chain) = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE webhooks SET disabled_at = $1 WHERE id = $2 AND disabled_at IS NULL",
        )
        .bind(format_time(&now))
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        chain.push(now, actor, "webhook.disable", json!({"id": id}));
        chain.close(&mut tx).await?;
        tx.commit().await?;
        Ok(true)
    }
}
