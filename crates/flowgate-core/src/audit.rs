//! The audit chain: every change to the register (and later to requests and notices) is an
//! [`Event`], and each event's hash covers its canonical encoding and the previous event's hash.
//! Altering, removing or reordering any event breaks every hash after it.
//!
//! The canonical encoding of an event is the JSON object
//! `{"actor":…,"at":…,"kind":…,"payload":…,"seq":…}` with object keys sorted (at every depth),
//! no insignificant white space, and `at` in RFC 3339 UTC with microseconds. The hash is
//! `SHA-256(previous hash (32 bytes) ‖ canonical encoding)`; the first event's previous hash is
//! 32 zero bytes. The encoding is written here by hand, not by `serde_json`'s map order, so that
//! a feature flag elsewhere in the dependency tree can never change a hash.

use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::register::{DanglingReference, PutOutcome, Record, RecordKind, Register};

/// A SHA-256 hash in the chain.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Hash(pub [u8; 32]);

impl Hash {
    /// The "previous hash" of the first event.
    pub const GENESIS: Hash = Hash([0; 32]);

    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    pub fn from_hex(s: &str) -> Option<Hash> {
        if s.len() != 64 || !s.is_ascii() {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
        }
        Some(Hash(out))
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({})", self.to_hex())
    }
}

/// One entry of the audit log.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// 1, 2, 3, ... with no gaps.
    pub seq: i64,
    pub at: DateTime<Utc>,
    /// Who did it: a person's e-mail, or `cli:<user>` for a command run without one.
    pub actor: String,
    /// What happened, e.g. `system.put`, `register.import`.
    pub kind: String,
    pub payload: Value,
}

/// The text form of an event's time, used in the canonical encoding and in the database.
pub fn format_time(at: &DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// The canonical encoding of an event (see the module documentation).
pub fn canonical(event: &Event) -> String {
    let mut out = String::with_capacity(128);
    out.push_str("{\"actor\":");
    write_string(&event.actor, &mut out);
    out.push_str(",\"at\":");
    write_string(&format_time(&event.at), &mut out);
    out.push_str(",\"kind\":");
    write_string(&event.kind, &mut out);
    out.push_str(",\"payload\":");
    write_canonical(&event.payload, &mut out);
    out.push_str(",\"seq\":");
    out.push_str(&event.seq.to_string());
    out.push('}');
    out
}

/// A JSON value with object keys sorted at every depth and no white space.
pub fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_unstable();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(k, out);
                out.push(':');
                write_canonical(&map[k], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(v, out);
            }
            out.push(']');
        }
        Value::String(s) => write_string(s, out),
        // Null, booleans and numbers have one spelling in serde_json.
        other => out.push_str(&other.to_string()),
    }
}

fn write_string(s: &str, out: &mut String) {
    // serde_json's string escaping is deterministic; a string never fails to serialise.
    out.push_str(&Value::String(s.to_owned()).to_string());
}

/// The hash of `event` following `previous`.
pub fn chain_hash(previous: &Hash, event: &Event) -> Hash {
    let mut h = Sha256::new();
    h.update(previous.0);
    h.update(canonical(event).as_bytes());
    Hash(h.finalize().into())
}

/// An event as stored: the event and the hashes the store recorded with it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    pub event: Event,
    pub prev_hash: Hash,
    pub hash: Hash,
}

/// Where and why the chain does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("event {seq}: {reason}")]
pub struct ChainBreak {
    pub seq: i64,
    pub reason: String,
}

/// Walks a chain, checking each event in turn. Feed it events in sequence order.
#[derive(Debug, Clone)]
pub struct ChainVerifier {
    expected_seq: i64,
    head: Hash,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        Self {
            expected_seq: 1,
            head: Hash::GENESIS,
        }
    }
}

impl ChainVerifier {
    pub fn new() -> Self {
        Self::default()
    }

    /// Checks the next event: its sequence number, its link to the previous hash, and that its
    /// hash matches its contents.
    pub fn check(&mut self, stored: &StoredEvent) -> Result<(), ChainBreak> {
        let seq = stored.event.seq;
        let fail = |reason: String| Err(ChainBreak { seq, reason });
        if seq != self.expected_seq {
            return fail(format!(
                "expected sequence number {}, found {seq} (an event was removed or inserted)",
                self.expected_seq
            ));
        }
        if stored.prev_hash != self.head {
            return fail(
                "its previous-hash does not match the hash of the event before it".to_owned(),
            );
        }
        if chain_hash(&stored.prev_hash, &stored.event) != stored.hash {
            return fail(
                "its hash does not match its contents (the event was altered after it was written)"
                    .to_owned(),
            );
        }
        self.head = stored.hash;
        self.expected_seq += 1;
        Ok(())
    }

    /// The hash of the last event checked (the genesis hash before any).
    pub fn head(&self) -> Hash {
        self.head
    }

    /// How many events have been checked.
    pub fn count(&self) -> i64 {
        self.expected_seq - 1
    }
}

/// The event kinds that change the register, one per kind of record.
pub fn put_kind(kind: RecordKind) -> &'static str {
    match kind {
        RecordKind::Person => "person.put",
        RecordKind::System => "system.put",
        RecordKind::DataItem => "data_item.put",
        RecordKind::Flow => "flow.put",
    }
}

/// The summary event an import appends after its records: who imported what, from where.
pub const IMPORT_KIND: &str = "register.import";

/// The register change an event carries, if it carries one.
pub fn record_of(event: &Event) -> Result<Option<Record>, String> {
    let kind = match event.kind.as_str() {
        "person.put" => RecordKind::Person,
        "system.put" => RecordKind::System,
        "data_item.put" => RecordKind::DataItem,
        "flow.put" => RecordKind::Flow,
        _ => return Ok(None),
    };
    Record::from_json(kind, event.payload.clone())
        .map(Some)
        .map_err(|e| format!("its payload is not a valid {}: {e}", kind.noun()))
}

/// Why an event could not be replayed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    #[error("event {seq}: {reason}")]
    BadPayload { seq: i64, reason: String },
    #[error("event {seq}: {source}")]
    Dangling { seq: i64, source: DanglingReference },
}

/// Applies an event to a register: what `audit verify` does to every event to rebuild the
/// register from the log alone.
pub fn replay(register: &mut Register, event: &Event) -> Result<Option<PutOutcome>, ReplayError> {
    let record = record_of(event).map_err(|reason| ReplayError::BadPayload {
        seq: event.seq,
        reason,
    })?;
    match record {
        Some(r) => register
            .put(r)
            .map(Some)
            .map_err(|source| ReplayError::Dangling {
                seq: event.seq,
                source,
            }),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    fn event(seq: i64, payload: Value) -> Event {
        Event {
            seq,
            at: Utc
                .with_ymd_and_hms(2026, 12, 4, 10, 0, 0)
                .single()
                .expect("valid time"),
            actor: "dpt@uni.example".into(),
            kind: "system.put".into(),
            payload,
        }
    }

    #[test]
    fn canonical_encoding_sorts_keys_at_every_depth() {
        let e = event(7, json!({"b": 1, "a": {"d": [true, null], "c": "x\"y"}}));
        assert_eq!(
            canonical(&e),
            r#"{"actor":"dpt@uni.example","at":"2026-12-04T10:00:00.000000Z","kind":"system.put","payload":{"a":{"c":"x\"y","d":[true,null]},"b":1},"seq":7}"#
        );
    }

    #[test]
    fn a_chain_verifies_and_any_alteration_is_found_at_its_event() {
        let mut prev = Hash::GENESIS;
        let mut chain = Vec::new();
        for seq in 1..=5 {
            let e = event(seq, json!({"n": seq}));
            let hash = chain_hash(&prev, &e);
            chain.push(StoredEvent {
                event: e,
                prev_hash: prev,
                hash,
            });
            prev = hash;
        }
        let mut v = ChainVerifier::new();
        for s in &chain {
            v.check(s).expect("intact chain verifies");
        }
        assert_eq!(v.head(), prev);

        let mut altered = chain.clone();
        altered[2].event.payload = json!({"n": 99});
        let mut v = ChainVerifier::new();
        let err = altered
            .iter()
            .map(|s| v.check(s))
            .find_map(Result::err)
            .expect("altered chain fails");
        assert_eq!(err.seq, 3);

        let mut removed = chain.clone();
        removed.remove(1);
        let mut v = ChainVerifier::new();
        let err = removed
            .iter()
            .map(|s| v.check(s))
            .find_map(Result::err)
            .expect("gap fails");
        assert_eq!(err.seq, 3);
    }

    #[test]
    fn hex_round_trips() {
        let h = chain_hash(&Hash::GENESIS, &event(1, Value::Null));
        assert_eq!(Hash::from_hex(&h.to_hex()), Some(h));
        assert_eq!(Hash::from_hex("zz"), None);
    }
}
