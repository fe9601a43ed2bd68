//! `audit verify`: recompute the hash chain, replay the log into a register of its own, and
//! compare that with the tables. Either the log and the tables agree, or the first place where
//! they do not is named.

use std::fmt;

use flowgate_core::audit::{self, ChainBreak, ChainVerifier, Hash};
use flowgate_core::register::{Record, RecordKind, Register};
use futures_util::TryStreamExt;
use serde_json::Value;

use crate::{Store, StoreError, decode};

/// The result of a verification.
#[derive(Debug)]
pub struct Verification {
    /// How many events were checked.
    pub events: i64,
    /// The hash of the last event.
    pub head: Hash,
    /// The first thing found wrong, if anything was.
    pub failure: Option<VerificationFailure>,
}

#[derive(Debug)]
pub enum VerificationFailure {
    /// The chain does not hold at an event.
    Chain(ChainBreak),
    /// The log holds, but a table row disagrees with it.
    Mismatch(Box<Mismatch>),
    /// A request or change notice row disagrees with the last step the log records for it.
    Step {
        /// "request" or "change notice".
        kind: &'static str,
        id: String,
        message: String,
    },
}

impl fmt::Display for VerificationFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VerificationFailure::Chain(b) => write!(f, "the audit chain is broken at {b}"),
            VerificationFailure::Mismatch(m) => write!(f, "{m}"),
            VerificationFailure::Step { kind, id, message } => write!(f, "{kind} {id}: {message}"),
        }
    }
}

/// A record whose table row disagrees with the log.
#[derive(Debug)]
pub struct Mismatch {
    pub kind: RecordKind,
    pub id: String,
    /// The record as the tables have it (`None`: not in the tables).
    pub table: Option<Record>,
    /// The record as the log has it (`None`: never recorded in the log).
    pub log: Option<Record>,
    /// When the tables could not even be read as a register, why.
    pub unreadable: Option<String>,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = format!("{} '{}'", self.kind.noun(), self.id);
        if let Some(why) = &self.unreadable {
            return write!(f, "{what}: the table row cannot be read ({why})");
        }
        match (&self.table, &self.log) {
            (Some(_), None) => write!(
                f,
                "{what} is in the {} table but not in the audit log",
                self.kind.table()
            ),
            (None, Some(_)) => write!(
                f,
                "{what} is in the audit log but missing from the {} table",
                self.kind.table()
            ),
            (Some(t), Some(l)) => {
                let (t, l) = (t.to_json(), l.to_json());
                let field = match (&t, &l) {
                    (Value::Object(t), Value::Object(l)) => {
                        t.iter().find(|(k, v)| l.get(*k) != Some(*v)).map(|(k, v)| {
                            let log = l.get(k).cloned().unwrap_or(Value::Null);
                            format!("{k} is {v} in the table but {log} in the audit log")
                        })
                    }
                    _ => None,
                };
                write!(
                    f,
                    "{what}: the table row differs from the audit log ({})",
                    field.unwrap_or_default()
                )
            }
            (None, None) => write!(f, "{what}: not found"),
        }
    }
}

pub(crate) async fn verify(store: &Store) -> Result<Verification, StoreError> {
    let mut chain = ChainVerifier::new();
    let mut replayed: Vec<Record> = Vec::new();
    // Each request's and notice's state after the last step the log records for it.
    let mut requests: std::collections::HashMap<String, Value> = Default::default();
    let mut notices: std::collections::HashMap<String, Value> = Default::default();
    let fail = |chain: &ChainVerifier, failure| Verification {
        events: chain.count(),
        head: chain.head(),
        failure: Some(failure),
    };
    {
        let mut rows = sqlx::query(
            "SELECT seq, at, actor, kind, payload, prev_hash, hash FROM audit_events ORDER BY seq",
        )
        .fetch(store.pool());
        while let Some(row) = rows.try_next().await? {
            let stored = match decode::event(&row) {
                Ok(s) => s,
                Err(StoreError::Corrupt {
                    id, field, message, ..
                }) => {
                    let seq = id.parse().unwrap_or(chain.count() + 1);
                    let reason = format!("{field}: {message}");
                    return Ok(fail(
                        &chain,
                        VerificationFailure::Chain(ChainBreak { seq, reason }),
                    ));
                }
                Err(e) => return Err(e),
            };
            if let Err(b) = chain.check(&stored) {
                return Ok(fail(&chain, VerificationFailure::Chain(b)));
            }
            let e = &stored.event;
            for (prefix, key, into) in [
                ("request.", "request", &mut requests),
                ("notice.", "notice", &mut notices),
            ] {
                if e.kind.starts_with(prefix)
                    && let Some(after) = e.payload.get(key)
                    && let Some(id) = after.get("id").and_then(Value::as_str)
                {
                    into.insert(id.to_owned(), after.clone());
                }
            }
            match audit::record_of(&stored.event) {
                Ok(Some(r)) => replayed.push(r),
                Ok(None) => {}
                Err(reason) => {
                    let b = ChainBreak {
                        seq: stored.event.seq,
                        reason,
                    };
                    return Ok(fail(&chain, VerificationFailure::Chain(b)));
                }
            }
        }
    }
    let (head_seq, head_hash) = store.head().await?;
    if head_seq != chain.count() || head_hash != chain.head().to_hex() {
        let b = ChainBreak {
            seq: chain.count() + 1,
            reason: format!(
                "the chain's head says {head_seq} events ending in {head_hash}, but the log has {} ending in {} (events were removed from the end)",
                chain.count(),
                chain.head()
            ),
        };
        return Ok(fail(&chain, VerificationFailure::Chain(b)));
    }
    let from_log = match Register::from_records(replayed) {
        Ok(r) => r,
        Err(e) => {
            let b = ChainBreak {
                seq: chain.count(),
                reason: format!("the log does not replay: {e}"),
            };
            return Ok(fail(&chain, VerificationFailure::Chain(b)));
        }
    };
    let from_tables = match store.load_register().await {
        Ok(r) => r,
        Err(StoreError::Corrupt {
            table,
            id,
            field,
            message,
        }) => {
            let kind = RecordKind::ALL
                .into_iter()
                .find(|k| k.table() == table)
                .unwrap_or(RecordKind::Flow);
            let m = Mismatch {
                kind,
                id,
                table: None,
                log: None,
                unreadable: Some(format!("{field}: {message}")),
            };
            return Ok(fail(&chain, VerificationFailure::Mismatch(Box::new(m))));
        }
        Err(e) => return Err(e),
    };
    let mut failure = from_tables
        .first_difference(&from_log)
        .map(|(kind, id, table, log)| {
            VerificationFailure::Mismatch(Box::new(Mismatch {
                kind,
                id,
                table,
                log,
                unreadable: None,
            }))
        });
    if failure.is_none() {
        failure = compare_steps(store, "requests", "request", &requests).await?;
    }
    if failure.is_none() {
        failure = compare_steps(store, "change_notices", "change notice", &notices).await?;
    }
    Ok(Verification {
        events: chain.count(),
        head: chain.head(),
        failure,
    })
}

/// Compares each row of `table` (kept whole as JSON in `body`) with the last step the log records
/// for it: the first that differs, or that one side lacks.
async fn compare_steps(
    store: &Store,
    table: &str,
    kind: &'static str,
    logged: &std::collections::HashMap<String, Value>,
) -> Result<Option<VerificationFailure>, StoreError> {
    use sqlx::Row;
    let rows = sqlx::query(&format!("SELECT id, body FROM {table} ORDER BY id"))
        .fetch_all(store.pool())
        .await?;
    let mut seen = std::collections::HashSet::new();
    for row in &rows {
        let id: String = row.try_get("id")?;
        let body: String = row.try_get("body")?;
        let step = |message: String| {
            Some(VerificationFailure::Step {
                kind,
                id: id.clone(),
                message,
            })
        };
        let Ok(body) = serde_json::from_str::<Value>(&body) else {
            return Ok(step("the table row cannot be read".into()));
        };
        let Some(log) = logged.get(&id) else {
            return Ok(step(format!(
                "is in the {table} table but not in the audit log"
            )));
        };
        if &body != log {
            let field = match (&body, log) {
                (Value::Object(t), Value::Object(l)) => t
                    .iter()
                    .find(|(k, v)| l.get(*k) != Some(*v))
                    .map(|(k, v)| {
                        let in_log = l.get(k).cloned().unwrap_or(Value::Null);
                        format!(" ({k} is {v} in the table but {in_log} in the audit log)")
                    })
                    .unwrap_or_default(),
                _ => String::new(),
            };
            return Ok(step(format!(
                "the table row differs from its last step in the audit log{field}"
            )));
        }
        seen.insert(id);
    }
    let mut missing: Vec<&String> = logged.keys().filter(|id| !seen.contains(*id)).collect();
    missing.sort();
    Ok(missing.first().map(|id| VerificationFailure::Step {
        kind,
        id: (*id).clone(),
        message: format!("is in the audit log but missing from the {table} table"),
    }))
}
