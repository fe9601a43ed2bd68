//! Requests (2.1–2.4) in the store: raised and moved by the pure workflow in `flowgate-core`,
//! each step written with its audit event in one transaction, and the flow a completed request
//! records (2.4) in that same transaction.

use chrono::{DateTime, Utc};
use flowgate_core::Email;
use flowgate_core::SystemId;
use flowgate_core::register::{Record, Register};
use flowgate_core::workflow::{Refusal, RequestId, SharingRequest, State, Transition};
use serde_json::{Value, json};
use sqlx::{Any, Row, Transaction};

use crate::chain::Chain;
use crate::{Store, StoreError, audit, sql};

/// Why a step on a request did not happen.
#[derive(Debug, thiserror::Error)]
pub enum WorkflowError {
    #[error("no request with id '{0}'")]
    NotFound(String),
    /// The request moved on since the caller read it (`If-Match` names an older version).
    #[error(
        "request {id} has changed since version {expected} (it is at version {current}): read it again"
    )]
    Conflict {
        id: String,
        expected: i64,
        current: i64,
    },
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for WorkflowError {
    fn from(e: sqlx::Error) -> Self {
        WorkflowError::Store(e.into())
    }
}

/// Which requests a list shows. Every filter given must hold.
#[derive(Debug, Clone, Default)]
pub struct RequestFilter {
    pub requester: Option<Email>,
    pub state: Option<State>,
    /// Requests waiting for this person's approval as the IAO of their source or target (2.3).
    pub awaiting_approval_by: Option<Email>,
    /// Requests from or into this system.
    pub system: Option<SystemId>,
    pub limit: i64,
    pub offset: i64,
}

/// The audit event kind of a step: `request.raise`, `request.approve`, ...
fn event_kind(t: &Transition) -> String {
    format!("request.{}", t.action.as_str())
}

/// What the audit log keeps of a step: the request after it, and what led there.
fn event_payload(t: &Transition) -> Value {
    let mut p = json!({
        "request": t.request,
        "action": t.action.as_str(),
        "from": t.from.map(|s| s.as_str()),
        "to": t.request.state.as_str(),
    });
    if let Some(a) = &t.assessment {
        p["assessment"] = serde_json::to_value(a).unwrap_or(Value::Null);
    }
    if let Some(n) = &t.note {
        p["note"] = json!(n);
    }
    if let Some(f) = &t.flow {
        p["flow"] = json!(f.id);
    }
    p
}

fn decode(row: &sqlx::any::AnyRow) -> Result<SharingRequest, StoreError> {
    let id: String = row.try_get("id")?;
    let body: String = row.try_get("body")?;
    let version: i64 = row.try_get("version")?;
    let mut r: SharingRequest = serde_json::from_str(&body).map_err(|e| StoreError::Corrupt {
        table: "requests",
        id: id.clone(),
        field: "body",
        message: e.to_string(),
    })?;
    // The column is what concurrency control compares; the body follows it.
    r.version = version;
    Ok(r)
}

async fn write(
    tx: &mut Transaction<'static, Any>,
    r: &SharingRequest,
    number: Option<i64>,
    previous_version: Option<i64>,
) -> Result<u64, StoreError> {
    let body = serde_json::to_string(r).map_err(|e| StoreError::Refused {
        kind: "request",
        id: r.id.to_string(),
        message: e.to_string(),
    })?;
    let done = match (number, previous_version) {
        (Some(n), _) => sqlx::query(
            "INSERT INTO requests (id, number, requester, source, target, state, version, raised_at, updated_at, body) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(r.id.to_string())
        .bind(n)
        .bind(r.ask.requester.to_string())
        .bind(r.ask.source.to_string())
        .bind(r.ask.target.to_string())
        .bind(r.state.as_str())
        .bind(r.version)
        .bind(audit::format_time(&r.raised_at))
        .bind(audit::format_time(&r.updated_at))
        .bind(body)
        .execute(&mut **tx)
        .await?,
        (None, prev) => sqlx::query(
            "UPDATE requests SET state = $1, version = $2, updated_at = $3, body = $4 WHERE id = $5 AND version = $6",
        )
        .bind(r.state.as_str())
        .bind(r.version)
        .bind(audit::format_time(&r.updated_at))
        .bind(body)
        .bind(r.id.to_string())
        .bind(prev.unwrap_or(r.version - 1))
        .execute(&mut **tx)
        .await?,
    };
    Ok(done.rows_affected())
}

impl Store {
    /// Raises a request: `make` is given the next id and returns the workflow's transition.
    pub async fn raise_request(
        &self,
        actor: &str,
        now: DateTime<Utc>,
        make: impl FnOnce(RequestId) -> Result<Transition, Refusal>,
    ) -> Result<SharingRequest, WorkflowError> {
        let mut tx = self.pool.begin().await?;
        // The head first: writers are serialised, so the next number is free.
        let mut chain = Chain::lock(&mut tx).await?;
        let number: i64 = sqlx::query("SELECT COALESCE(MAX(number), 0) + 1 AS n FROM requests")
            .fetch_one(&mut *tx)
            .await?
            .try_get("n")?;
        let t = make(RequestId::from_number(number))?;
        write(&mut tx, &t.request, Some(number), None).await?;
        chain.push(now, actor, &event_kind(&t), event_payload(&t));
        chain.close(&mut tx).await?;
        tx.commit().await?;
        Ok(t.request)
    }

    /// Takes a step on a request. `step` decides it from the request as stored now and the
    /// register; `if_match` is the version the caller read, if it says. A completed request's
    /// flow is recorded in the register (2.4) in the same transaction, and `register` brought up
    /// to date after the commit.
    pub async fn transition(
        &self,
        register: &mut Register,
        id: &str,
        if_match: Option<i64>,
        actor: &str,
        now: DateTime<Utc>,
        step: impl FnOnce(&SharingRequest, &Register) -> Result<Transition, Refusal>,
    ) -> Result<Transition, WorkflowError> {
        let mut tx = self.pool.begin().await?;
        let mut chain = Chain::lock(&mut tx).await?;
        let row = sqlx::query("SELECT id, version, body FROM requests WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| WorkflowError::NotFound(id.to_owned()))?;
        let current = decode(&row)?;
        if let Some(expected) = if_match
            && expected != current.version
        {
            return Err(WorkflowError::Conflict {
                id: id.to_owned(),
                expected,
                current: current.version,
            });
        }
        let t = step(&current, register)?;
        if write(&mut tx, &t.request, None, Some(current.version)).await? != 1 {
            // Writers are serialised on the head, so this means the row moved under us anyway.
            return Err(WorkflowError::Conflict {
                id: id.to_owned(),
                expected: current.version,
                current: current.version + 1,
            });
        }
        if let Some(flow) = &t.flow {
            let record = Record::Flow(flow.clone());
            if let Some(d) = register.dangling_references(&record, &|_, _| false).first() {
                return Err(WorkflowError::Store(StoreError::Refused {
                    kind: "flow",
                    id: flow.id.to_string(),
                    message: d.to_string(),
                }));
            }
            sql::upsert(&mut tx, &[(record.clone(), false)], 1).await?;
            chain.push(now, actor, audit::put_kind(record.kind()), record.to_json());
        }
        chain.push(now, actor, &event_kind(&t), event_payload(&t));
        chain.close(&mut tx).await?;
        tx.commit().await?;
        if let Some(flow) = &t.flow {
            register
                .put(Record::Flow(flow.clone()))
                .map_err(|e| StoreError::Refused {
                    kind: "flow",
                    id: flow.id.to_string(),
                    message: e.to_string(),
                })?;
        }
        Ok(t)
    }

    /// One request.
    pub async fn request(&self, id: &str) -> Result<Option<SharingRequest>, StoreError> {
        let row = sqlx::query("SELECT id, version, body FROM requests WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(decode).transpose()
    }

    /// Requests matching `filter`, newest first, and how many match in all.
    pub async fn requests(
        &self,
        filter: &RequestFilter,
    ) -> Result<(Vec<SharingRequest>, i64), StoreError> {
        let mut clauses: Vec<String> = Vec::new();
        let mut args: Vec<String> = Vec::new();
        let mut arg = |v: String| {
            args.push(v);
            format!("${}", args.len())
        };
        if let Some(p) = &filter.requester {
            clauses.push(format!("requester = {}", arg(p.to_string())));
        }
        if let Some(s) = filter.state {
            clauses.push(format!("state = {}", arg(s.as_str().into())));
        }
        if let Some(s) = &filter.system {
            let a = arg(s.to_string());
            clauses.push(format!("(source = {a} OR target = {a})"));
        }
        if let Some(p) = &filter.awaiting_approval_by {
            let a = arg(p.to_string());
            clauses.push(format!(
                "state = 'awaiting_approval' AND (source IN (SELECT id FROM systems WHERE owner = {a}) OR target IN (SELECT id FROM systems WHERE owner = {a}))"
            ));
        }
        let filter_sql = if clauses.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", clauses.join(" AND "))
        };
        let count_sql = format!("SELECT COUNT(*) AS n FROM requests{filter_sql}");
        let mut q = sqlx::query(&count_sql);
        for a in &args {
            q = q.bind(a.clone());
        }
        let total: i64 = q.fetch_one(&self.pool).await?.try_get("n")?;
        let list_sql = format!(
            "SELECT id, version, body FROM requests{filter_sql} ORDER BY number DESC LIMIT {} OFFSET {}",
            filter.limit.clamp(1, 500),
            filter.offset.max(0)
        );
        let mut q = sqlx::query(&list_sql);
        for a in &args {
            q = q.bind(a.clone());
        }
        let rows = q.fetch_all(&self.pool).await?;
        let mut list = rows.iter().map(decode).collect::<Result<Vec<_>, _>>()?;
        if let Some(p) = &filter.awaiting_approval_by {
            // Only those where a side this person owns is still waiting for them.
            list.retain(|r| !r.approvals.iter().any(|a| &a.by == p));
        }
        Ok((list, total))
    }

    /// The history of a request: its audit events, oldest first.
    pub async fn request_history(&self, id: &str) -> Result<Vec<audit::StoredEvent>, StoreError> {
        // The request's id sits in the payload, which is canonical JSON, so a LIKE on the exact
        // `"id":"req-7"` text finds its events without a second index.
        let rows = sqlx::query(
            "SELECT seq, at, actor, kind, payload, prev_hash, hash FROM audit_events WHERE kind LIKE 'request.%' AND payload LIKE $1 ORDER BY seq",
        )
        .bind(format!("%\"id\":\"{id}\"%"))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(crate::decode::event)
            .filter(|e| {
                e.as_ref()
                    .map(|e| e.event.payload["request"]["id"] == id)
                    .unwrap_or(true)
            })
            .collect()
    }

    /// Requests waiting for review on `system` (2.2), oldest first: those a change to the system
    /// may move on.
    pub async fn requests_awaiting_review_on(
        &self,
        system: &str,
    ) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT id FROM requests WHERE state = 'awaiting_review' AND (source = $1 OR target = $1) ORDER BY number",
        )
        .bind(system)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| r.try_get::<String, _>("id").map_err(Into::into))
            .collect()
    }
}
