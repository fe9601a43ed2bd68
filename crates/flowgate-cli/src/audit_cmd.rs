//! `flowgate audit verify` and `flowgate audit log`.

use flowgate_store::Store;
use serde_json::{Value, json};

use crate::Outcome;
use crate::output::{Format, table};

pub async fn verify(store: &Store) -> anyhow::Result<Outcome> {
    let v = store.verify().await?;
    match v.failure {
        None => {
            println!(
                "audit log verified: {} events, the chain holds (head {}), and the tables match the log",
                v.events, v.head
            );
            Ok(Outcome::Ok)
        }
        Some(failure) => {
            println!("audit verification FAILED: {failure}");
            Ok(Outcome::Failed)
        }
    }
}

pub async fn log(store: &Store, since: i64, limit: i64, format: Format) -> anyhow::Result<Outcome> {
    let events = store.events(since, limit.max(1)).await?;
    match format {
        Format::Json => {
            let list: Vec<Value> = events
                .iter()
                .map(|s| {
                    json!({
                        "seq": s.event.seq,
                        "at": flowgate_core::audit::format_time(&s.event.at),
                        "actor": s.event.actor,
                        "kind": s.event.kind,
                        "payload": s.event.payload,
                        "prev_hash": s.prev_hash.to_hex(),
                        "hash": s.hash.to_hex(),
                    })
                })
                .collect();
            println!("{}", serde_json::to_string_pretty(&list)?);
        }
        Format::Text => {
            if events.is_empty() {
                println!("no events after {since}");
                return Ok(Outcome::Ok);
            }
            let mut t = table(["seq", "at (UTC)", "actor", "event", "what"]);
            for s in &events {
                let e = &s.event;
                t.add_row(vec![
                    e.seq.to_string(),
                    e.at.format("%Y-%m-%d %H:%M:%S").to_string(),
                    e.actor.clone(),
                    e.kind.clone(),
                    describe(&e.payload),
                ]);
            }
            println!("{t}");
            if let Some(last) = events.last()
                && events.len() as i64 == limit.max(1)
            {
                println!("more may follow: --since {}", last.event.seq);
            }
        }
    }
    Ok(Outcome::Ok)
}

/// A one-line description of an event's payload: the record's id, or an import's source.
fn describe(payload: &Value) -> String {
    for key in ["id", "email"] {
        if let Some(Value::String(id)) = payload.get(key) {
            return id.clone();
        }
    }
    if let Some(Value::String(source)) = payload.get("source") {
        return format!("import of {source}");
    }
    let mut s = payload.to_string();
    if s.len() > 60 {
        s.truncate(s.char_indices().nth(57).map_or(s.len(), |(i, _)| i));
        s.push_str("...");
    }
    s
}
