//! Requests (2.1–2.4) in the store: raised and moved by the pure workflow in `flowgate-core`,
//! each step written with its audit event in one transaction, and the flow a completed request
//! records (2.4) in that same transaction.

use chrono::{DateTime, Utc};
use flowgate_core::Email;
use flowgate_core::SystemId;
use flowgate_core::notice::NoticeRefusal;
use flowgate_core::notify;
use flowgate_core::register::{Record, Register};
use flowgate_core::workflow::{Refusal, RequestId, SharingRequest, State, Transition};
use serde_json::{Value, json};
use sqlx::{Any, Row, Transaction};

use crate::outbox::{self, TxLinks};
use crate::{Store, StoreError, audit, sql};

/// Why a step on a request did not happen.
#[derive(Debug, thiserror::Error)]
pub enum WorkflowError {
    #[error("no {kind} with id '{id}'")]
    NotFound { kind: &'static str, id: String },
    /// The request or notice moved on since the caller read it (`If-Match` names an older
    /// version).
    #[error(
        "{id} has changed since version {expected} (it is at version {current}): read it again"
    )]
    Conflict {
        id: String,
        expected: i64,
        current: i64,
    },
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error(transparent)]
    NoticeRefused(#[from] NoticeRefusal),
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

/// A request's stored form: the whole of it, as JSON.
fn body(r: &SharingRequest) -> Result<String, StoreError> {
    serde_json::to_string(r).map_err(|e| StoreError::Refused {
        kind: "request",
        id: r.id.to_string(),
        message: e.to_string(),
    })
}

/// Writes a request's new state over the version it was read at; the rows changed (0 when the
/// version has moved on).
async fn update(
    tx: &mut Transaction<'static, Any>,
    r: &SharingRequest,
    previous_version: i64,
) -> Result<u64, StoreError> {
    let done = sqlx::query(
        "UPDATE requests SET state = $1, version = $2, updated_at = $3, body = $4 WHERE id = $5 AND version = $6",
    )
    .bind(r.state.as_str())
    .bind(r.version)
    .bind(audit::format_time(&r.updated_at))
    .bind(body(r)?)
    .bind(r.id.to_string())
    .bind(previous_version)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected())
}

/// Inserts raised requests and their history index, `rows[i]` being the number and the audit
/// event of `requests[i]`.
async fn insert_raised(
    tx: &mut Transaction<'static, Any>,
    rows: &[(i64, i64)],
    requests: &[SharingRequest],
) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "INSERT INTO requests (id, number, requester, source, target, state, version, raised_at, updated_at, body) VALUES {}",
        sql::placeholders(rows.len(), 10)
    );
    let mut q = sqlx::query(&sql);
    for ((number, _), r) in rows.iter().zip(requests) {
        let body = body(r)?;
        q = q
            .bind(r.id.to_string())
            .bind(*number)
            .bind(r.ask.requester.to_string())
            .bind(r.ask.source.to_string())
            .bind(r.ask.target.to_string())
            .bind(r.state.as_str())
            .bind(r.version)
            .bind(audit::format_time(&r.raised_at))
            .bind(audit::format_time(&r.updated_at))
            .bind(body);
    }
    q.execute(&mut **tx).await?;
    let sql = format!(
        "INSERT INTO request_events (request_id, seq) VALUES {}",
        sql::placeholders(rows.len(), 2)
    );
    let mut q = sqlx::query(&sql);
    for ((_, seq), r) in rows.iter().zip(requests) {
        q = q.bind(r.id.to_string()).bind(*seq);
    }
    q.execute(&mut **tx).await?;
    Ok(())
}

async fn index_event(
    tx: &mut Transaction<'static, Any>,
    r: &SharingRequest,
    seq: i64,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO request_events (request_id, seq) VALUES ($1, $2)")
        .bind(r.id.to_string())
        .bind(seq)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

impl Store {
    /// Raises a request: `make` is given the next id and returns the workflow's transition.
    ///
    /// Raises that arrive together are written together (group commit): one transaction, one
    /// turn at the audit head and one durable commit for all of them, each still its own row and
    /// its own audit event. The chain is a sequence, so writes take turns; sharing the turn is
    /// what lets many people raise requests at once.
    pub async fn raise_request(
        &self,
        actor: &str,
        now: DateTime<Utc>,
        make: impl FnOnce(RequestId) -> Result<Transition, Refusal> + Send + 'static,
    ) -> Result<SharingRequest, WorkflowError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job = RaiseJob {
            actor: actor.to_owned(),
            now,
            make: Box::new(make),
            reply,
        };
        let Some(queue) = &self.raises else {
            return Err(WorkflowError::Store(StoreError::Refused {
                kind: "request",
                id: String::new(),
                message: "this store does not take requests".into(),
            }));
        };
        if queue.send(job).is_err() {
            return Err(stopped());
        }
        answer.await.unwrap_or_else(|_| Err(stopped()))
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
        let (_turn, mut tx, mut chain) = self.begin_write().await?;
        let row = sqlx::query("SELECT id, version, body FROM requests WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| WorkflowError::NotFound {
                kind: "request",
                id: id.to_owned(),
            })?;
        let current = decode(&row)?;
        check_version(id, if_match, current.version)?;
        let t = step(&current, register)?;
        if update(&mut tx, &t.request, current.version).await? != 1 {
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
        let seq = chain.push(now, actor, &event_kind(&t), event_payload(&t));
        index_event(&mut tx, &t.request, seq).await?;
        let messages = {
            let links = TxLinks::new(&self.public_url());
            let messages = notify::for_request(&t, register, &links);
            links.into_made()?;
            messages
        };
        let queued = outbox::enqueue(&mut tx, seq, now, &messages).await?;
        chain.close(&mut tx).await?;
        tx.commit().await?;
        if queued > 0 {
            self.outbox_signal.notify_one();
        }
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
        let rows = sqlx::query(
            "SELECT e.seq, e.at, e.actor, e.kind, e.payload, e.prev_hash, e.hash FROM request_events r JOIN audit_events e ON e.seq = r.seq WHERE r.request_id = $1 ORDER BY e.seq",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(crate::decode::event).collect()
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

/// Refuses a step whose `If-Match` names another version than the one stored.
pub(crate) fn check_version(
    id: &str,
    if_match: Option<i64>,
    current: i64,
) -> Result<(), WorkflowError> {
    match if_match {
        Some(expected) if expected != current => Err(WorkflowError::Conflict {
            id: id.to_owned(),
            expected,
            current,
        }),
        _ => Ok(()),
    }
}

fn stopped() -> WorkflowError {
    WorkflowError::Store(StoreError::Refused {
        kind: "request",
        id: String::new(),
        message: "the request writer has stopped".into(),
    })
}

/// A raise waiting for the group commit.
pub(crate) struct RaiseJob {
    actor: String,
    now: DateTime<Utc>,
    #[allow(clippy::type_complexity)]
    make: Box<dyn FnOnce(RequestId) -> Result<Transition, Refusal> + Send>,
    reply: tokio::sync::oneshot::Sender<Result<SharingRequest, WorkflowError>>,
}

/// The most raises one transaction carries.
const GROUP: usize = 64;

/// Writes raises as they come, each time taking every raise waiting (up to [`GROUP`]).
pub(crate) async fn raise_writer(
    store: Store,
    mut queue: tokio::sync::mpsc::UnboundedReceiver<RaiseJob>,
) {
    while let Some(first) = queue.recv().await {
        let mut jobs = vec![first];
        while jobs.len() < GROUP {
            match queue.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        match write_raises(&store, jobs).await {
            Ok(()) => {}
            Err((replies, e)) => {
                let message = e.to_string();
                for r in replies {
                    let _ = r.send(Err(WorkflowError::Store(StoreError::Refused {
                        kind: "request",
                        id: String::new(),
                        message: message.clone(),
                    })));
                }
            }
        }
    }
}

type Replies = Vec<tokio::sync::oneshot::Sender<Result<SharingRequest, WorkflowError>>>;

/// One transaction for a group of raises. A raise the workflow refuses is answered at once and
/// writes nothing; if the transaction fails, every other raise of the group gets the error.
async fn write_raises(store: &Store, jobs: Vec<RaiseJob>) -> Result<(), (Replies, StoreError)> {
    let mut replies: Replies = Vec::new();
    let mut written = Vec::new();
    let result: Result<(), StoreError> = async {
        let (_turn, mut tx, mut chain) = store.begin_write().await?;
        let mut number: i64 = sqlx::query("SELECT COALESCE(MAX(number), 0) AS n FROM requests")
            .fetch_one(&mut *tx)
            .await?
            .try_get("n")?;
        let mut rows = Vec::new();
        for job in jobs {
            let t = match (job.make)(RequestId::from_number(number + 1)) {
                Ok(t) => t,
                Err(refusal) => {
                    let _ = job.reply.send(Err(refusal.into()));
                    continue;
                }
            };
            number += 1;
            replies.push(job.reply);
            let seq = chain.push(job.now, &job.actor, &event_kind(&t), event_payload(&t));
            rows.push((number, seq));
            written.push(t.request);
        }
        // One statement per table for the whole group: a round trip each, not one per raise.
        for part in rows.chunks(GROUP).zip(written.chunks(GROUP)) {
            insert_raised(&mut tx, part.0, part.1).await?;
        }
        chain.close(&mut tx).await?;
        tx.commit().await?;
        Ok(())
    }
    .await;
    match result {
        Ok(()) => {
            for (reply, r) in replies.into_iter().zip(written) {
                let _ = reply.send(Ok(r));
            }
            Ok(())
        }
        Err(e) => Err((replies, e)),
    }
}
