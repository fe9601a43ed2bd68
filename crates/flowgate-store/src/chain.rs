//! Appending to the audit chain inside a writing transaction: every write path takes the head
//! first (which serialises writers), adds its events, and moves the head before it commits.

use chrono::{DateTime, Utc};
use flowgate_core::audit::{Event, Hash};
use serde_json::Value;
use sqlx::{Any, Row, Transaction};

use crate::{StoreError, sql};

/// The chain's head as this transaction sees it, and the events not yet written.
#[derive(Debug)]
pub(crate) struct Chain {
    seq: i64,
    first: i64,
    prev: Hash,
    pending: Vec<Event>,
}

impl Chain {
    /// Takes the head. In SQLite this takes the write lock at once (a busy wait, not a deadlock,
    /// when two writers meet); in PostgreSQL it locks the head row until commit.
    pub(crate) async fn lock(tx: &mut Transaction<'static, Any>) -> Result<Chain, StoreError> {
        let head = sqlx::query("UPDATE audit_head SET seq = seq WHERE id = 1 RETURNING seq, hash")
            .fetch_one(&mut **tx)
            .await?;
        let seq: i64 = head.try_get("seq")?;
        let hash: String = head.try_get("hash")?;
        let prev = Hash::from_hex(&hash).ok_or_else(|| StoreError::Corrupt {
            table: "audit_head",
            id: "1".into(),
            field: "hash",
            message: format!("'{hash}' is not a hash"),
        })?;
        Ok(Chain {
            seq,
            first: seq + 1,
            prev,
            pending: Vec::new(),
        })
    }

    /// Adds an event, returning its sequence number; it is written at the next `flush` or at
    /// `close`.
    pub(crate) fn push(
        &mut self,
        at: DateTime<Utc>,
        actor: &str,
        kind: &str,
        payload: Value,
    ) -> i64 {
        self.seq += 1;
        self.pending.push(Event {
            seq: self.seq,
            at,
            actor: actor.to_owned(),
            kind: kind.to_owned(),
            payload,
        });
        self.seq
    }

    /// Writes the pending events.
    pub(crate) async fn flush(
        &mut self,
        tx: &mut Transaction<'static, Any>,
    ) -> Result<(), StoreError> {
        self.prev = sql::append_events(tx, &mut self.pending, self.prev).await?;
        Ok(())
    }

    /// Writes what is pending and moves the head; returns the first and last sequence numbers
    /// written, if any.
    pub(crate) async fn close(
        mut self,
        tx: &mut Transaction<'static, Any>,
    ) -> Result<Option<(i64, i64)>, StoreError> {
        self.flush(tx).await?;
        sqlx::query("UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1")
            .bind(self.seq)
            .bind(self.prev.to_hex())
            .execute(&mut **tx)
            .await?;
        Ok((self.seq >= self.first).then_some((self.first, self.seq)))
    }
}
