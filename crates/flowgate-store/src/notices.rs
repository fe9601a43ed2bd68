//! Change notices (2.5) in the store: raised and moved by the pure `flowgate_core::notice`, each
//! step written with its audit event and its notifications (to the outbox) in one transaction.

use chrono::{DateTime, NaiveDate, Utc};
use flowgate_core::notice::{ChangeNotice, NoticeRefusal, NoticeState, NoticeTransition};
use flowgate_core::notify;
use flowgate_core::register::Register;
use flowgate_core::{Email, NoticeId, SystemId};
use serde_json::{Value, json};
use sqlx::{Any, Row, Transaction};

use crate::outbox::{self, TxLinks};
use crate::secret::sha256_hex;
use crate::{Store, StoreError, WorkflowError, audit};

/// Which notices a list shows. Every filter given must hold.
#[derive(Debug, Clone, Default)]
pub struct NoticeFilter {
    pub state: Option<NoticeState>,
    /// Notices about a change to this system.
    pub system: Option<SystemId>,
    /// Notices that ask this person for an answer (as an IAO or IAA of an affected system).
    pub concerning: Option<Email>,
    pub limit: i64,
    pub offset: i64,
}

fn payload(t: &NoticeTransition) -> Value {
    let mut p = json!({
        "notice": t.notice,
        "action": t.action.as_str(),
        "from": t.from.map(|s| s.as_str()),
        "to": t.notice.state.as_str(),
    });
    if let Some(s) = &t.system {
        p["system"] = json!(s);
    }
    if let Some(n) = &t.note {
        p["note"] = json!(n);
    }
    if !t.reminded.is_empty() {
        p["reminded"] = json!(t.reminded);
    }
    p
}

fn decode(row: &sqlx::any::AnyRow) -> Result<ChangeNotice, StoreError> {
    let id: String = row.try_get("id")?;
    let body: String = row.try_get("body")?;
    let mut n: ChangeNotice = serde_json::from_str(&body).map_err(|e| StoreError::Corrupt {
        table: "change_notices",
        id: id.clone(),
        field: "body",
        message: e.to_string(),
    })?;
    n.version = row.try_get("version")?;
    Ok(n)
}

fn body(n: &ChangeNotice) -> Result<String, StoreError> {
    serde_json::to_string(n).map_err(|e| StoreError::Refused {
        kind: "change notice",
        id: n.id.to_string(),
        message: e.to_string(),
    })
}

impl Store {
    /// Raises a change notice: `make` is given the next id and returns the notice with its
    /// affected systems. The notice, its contacts, its audit event and an e-mail (and webhook
    /// calls) to every affected system's IAO and IAAs are written in one transaction.
    pub async fn raise_notice(
        &self,
        actor: &str,
        now: DateTime<Utc>,
        make: impl FnOnce(NoticeId) -> Result<NoticeTransition, NoticeRefusal>,
    ) -> Result<ChangeNotice, WorkflowError> {
        let (_turn, mut tx, mut chain) = self.begin_write().await?;
        let number: i64 = sqlx::query("SELECT COALESCE(MAX(number), 0) AS n FROM change_notices")
            .fetch_one(&mut *tx)
            .await?
            .try_get("n")?;
        let t = make(NoticeId::from_number(number + 1))?;
        let n = &t.notice;
        sqlx::query(
            "INSERT INTO change_notices (id, number, system, state, planned_for, raised_by, version, raised_at, updated_at, body) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(n.id.as_str())
        .bind(number + 1)
        .bind(n.change.system.as_str())
        .bind(n.state.as_str())
        .bind(n.change.planned_for.to_string())
        .bind(n.raised_by.as_str())
        .bind(n.version)
        .bind(audit::format_time(&n.raised_at))
        .bind(audit::format_time(&n.updated_at))
        .bind(body(n)?)
        .execute(&mut *tx)
        .await?;
        for a in &n.affected {
            for p in a.contacts() {
                sqlx::query(
                    "INSERT INTO notice_contacts (notice_id, system, person) VALUES ($1, $2, $3)",
                )
                .bind(n.id.as_str())
                .bind(a.system.as_str())
                .bind(p.as_str())
                .execute(&mut *tx)
                .await?;
            }
        }
        self.write_step(&mut tx, &mut chain, &t, actor, now).await?;
        chain.close(&mut tx).await?;
        tx.commit().await?;
        self.outbox_signal.notify_one();
        Ok(t.notice)
    }

    /// The audit event of a step, its place in the notice's history, and its notifications.
    async fn write_step(
        &self,
        tx: &mut Transaction<'static, Any>,
        chain: &mut crate::chain::Chain,
        t: &NoticeTransition,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        let seq = chain.push(
            now,
            actor,
            &format!("notice.{}", t.action.as_str()),
            payload(t),
        );
        sqlx::query("INSERT INTO notice_events (notice_id, seq) VALUES ($1, $2)")
            .bind(t.notice.id.as_str())
            .bind(seq)
            .execute(&mut **tx)
            .await?;
        let (messages, made) = {
            let links = TxLinks::new(&self.public_url());
            let messages = notify::for_notice(t, &links);
            (messages, links.into_made()?)
        };
        outbox::store_links(tx, &made, now).await?;
        outbox::enqueue(tx, seq, now, &messages).await
    }

    /// Takes a step on a notice. `step` decides it from the notice as stored now and the
    /// register; `if_match` is the version the caller read, if it says.
    pub async fn notice_transition(
        &self,
        register: &Register,
        id: &str,
        if_match: Option<i64>,
        actor: &str,
        now: DateTime<Utc>,
        step: impl FnOnce(&ChangeNotice, &Register) -> Result<NoticeTransition, NoticeRefusal>,
    ) -> Result<NoticeTransition, WorkflowError> {
        let (_turn, mut tx, mut chain) = self.begin_write().await?;
        let row = sqlx::query("SELECT id, version, body FROM change_notices WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| WorkflowError::NotFound {
                kind: "change notice",
                id: id.to_owned(),
            })?;
        let current = decode(&row)?;
        crate::requests::check_version(id, if_match, current.version)?;
        let t = step(&current, register)?;
        let n = &t.notice;
        let done = sqlx::query(
            "UPDATE change_notices SET state = $1, version = $2, updated_at = $3, reminded_at = $4, body = $5 WHERE id = $6 AND version = $7",
        )
        .bind(n.state.as_str())
        .bind(n.version)
        .bind(audit::format_time(&n.updated_at))
        .bind(n.reminded_at.as_ref().map(audit::format_time))
        .bind(body(n)?)
        .bind(id)
        .bind(current.version)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Err(WorkflowError::Conflict {
                id: id.to_owned(),
                expected: current.version,
                current: current.version + 1,
            });
        }
        let queued = self.write_step(&mut tx, &mut chain, &t, actor, now).await?;
        chain.close(&mut tx).await?;
        tx.commit().await?;
        if queued > 0 {
            self.outbox_signal.notify_one();
        }
        Ok(t)
    }

    /// One notice.
    pub async fn notice(&self, id: &str) -> Result<Option<ChangeNotice>, StoreError> {
        sqlx::query("SELECT id, version, body FROM change_notices WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(decode)
            .transpose()
    }

    /// Notices matching `filter`, newest first, and how many match in all.
    pub async fn notices(
        &self,
        filter: &NoticeFilter,
    ) -> Result<(Vec<ChangeNotice>, i64), StoreError> {
        let mut clauses: Vec<String> = Vec::new();
        let mut args: Vec<String> = Vec::new();
        let mut arg = |v: String| {
            args.push(v);
            format!("${}", args.len())
        };
        if let Some(s) = filter.state {
            clauses.push(format!("state = {}", arg(s.as_str().into())));
        }
        if let Some(s) = &filter.system {
            clauses.push(format!("system = {}", arg(s.to_string())));
        }
        if let Some(p) = &filter.concerning {
            clauses.push(format!(
                "id IN (SELECT notice_id FROM notice_contacts WHERE person = {})",
                arg(p.to_string())
            ));
        }
        let filter_sql = if clauses.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", clauses.join(" AND "))
        };
        let count_sql = format!("SELECT COUNT(*) AS n FROM change_notices{filter_sql}");
        let mut q = sqlx::query(&count_sql);
        for a in &args {
            q = q.bind(a.clone());
        }
        let total: i64 = q.fetch_one(&self.pool).await?.try_get("n")?;
        let list_sql = format!(
            "SELECT id, version, body FROM change_notices{filter_sql} ORDER BY number DESC LIMIT {} OFFSET {}",
            filter.limit.clamp(1, 500),
            filter.offset.max(0)
        );
        let mut q = sqlx::query(&list_sql);
        for a in &args {
            q = q.bind(a.clone());
        }
        let list = q
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(decode)
            .collect::<Result<Vec<_>, _>>()?;
        Ok((list, total))
    }

    /// The history of a notice: its audit events, oldest first.
    pub async fn notice_history(&self, id: &str) -> Result<Vec<audit::StoredEvent>, StoreError> {
        let rows = sqlx::query(
            "SELECT e.seq, e.at, e.actor, e.kind, e.payload, e.prev_hash, e.hash FROM notice_events r JOIN audit_events e ON e.seq = r.seq WHERE r.notice_id = $1 ORDER BY e.seq",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(crate::decode::event).collect()
    }

    /// What an answer link from a notice e-mail stands for: the notice, the system and the
    /// person it was sent to.
    pub async fn answer_link(
        &self,
        token: &str,
    ) -> Result<Option<(NoticeId, SystemId, Email)>, StoreError> {
        let row = sqlx::query(
            "SELECT notice_id, system, person FROM answer_links WHERE token_sha256 = $1",
        )
        .bind(sha256_hex(token.trim()))
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let corrupt = |field: &'static str, message: String| StoreError::Corrupt {
            table: "answer_links",
            id: String::new(),
            field,
            message,
        };
        let notice: String = row.try_get("notice_id")?;
        let system: String = row.try_get("system")?;
        let person: String = row.try_get("person")?;
        Ok(Some((
            NoticeId::parse(&notice).map_err(|e| corrupt("notice_id", e.to_string()))?,
            SystemId::parse(&system).map_err(|e| corrupt("system", e.to_string()))?,
            Email::parse(&person).map_err(|e| corrupt("person", e.to_string()))?,
        )))
    }

    /// Open notices whose reminder is due on `today`: planned within `days` days and not yet
    /// reminded. Oldest first.
    pub async fn notices_due_reminder(
        &self,
        today: NaiveDate,
        days: i64,
    ) -> Result<Vec<String>, StoreError> {
        let until = today + chrono::Duration::days(days);
        let rows = sqlx::query(
            "SELECT id FROM change_notices WHERE state = 'open' AND reminded_at IS NULL AND planned_for <= $1 ORDER BY number",
        )
        .bind(until.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| r.try_get::<String, _>("id").map_err(Into::into))
            .collect()
    }
}
