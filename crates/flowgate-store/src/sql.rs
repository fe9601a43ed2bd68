//! The statements that write the register and the audit log, in the SQL that SQLite and
//! PostgreSQL both accept.

use flowgate_core::audit::{self, Event, Hash};
use flowgate_core::register::{Record, RecordKind};
use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::{Any, Transaction};

use crate::StoreError;

/// A value to bind.
enum Val {
    Text(String),
    Opt(Option<String>),
    Bool(bool),
}

fn bind_all<'q>(
    mut q: Query<'q, Any, AnyArguments<'q>>,
    vals: Vec<Val>,
) -> Query<'q, Any, AnyArguments<'q>> {
    for v in vals {
        q = match v {
            Val::Text(s) => q.bind(s),
            Val::Opt(s) => q.bind(s),
            Val::Bool(b) => q.bind(b),
        };
    }
    q
}

/// `($1, $2, $3), ($4, $5, $6), ...` for `rows` rows of `cols` values.
pub(crate) fn placeholders(rows: usize, cols: usize) -> String {
    let mut s = String::with_capacity(rows * cols * 5);
    for r in 0..rows {
        if r > 0 {
            s.push_str(", ");
        }
        s.push('(');
        for c in 0..cols {
            if c > 0 {
                s.push_str(", ");
            }
            s.push('$');
            s.push_str(&(r * cols + c + 1).to_string());
        }
        s.push(')');
    }
    s
}

fn join<T: ToString>(items: impl IntoIterator<Item = T>) -> String {
    items
        .into_iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(";")
}

fn opt<T: ToString>(v: &Option<T>) -> Val {
    Val::Opt(v.as_ref().map(ToString::to_string))
}

fn text(s: impl ToString) -> Val {
    Val::Text(s.to_string())
}

/// The table, its columns (the key first) and a record's values in that order.
fn row(record: &Record) -> (&'static str, &'static [&'static str], Vec<Val>) {
    match record {
        Record::Person(p) => (
            "people",
            &["email", "name", "kind", "authorised_until", "roles"],
            vec![
                text(&p.email),
                text(&p.name),
                text(p.kind),
                opt(&p.authorised_until),
                text(join(&p.roles)),
            ],
        ),
        Record::System(s) => (
            "systems",
            &[
                "id",
                "name",
                "description",
                "kind",
                "external",
                "organisation",
                "status",
                "owner",
                "administrators",
                "dpia_status",
                "dpia_reference",
                "dpia_review_due",
                "architecture_checklist",
            ],
            vec![
                text(&s.id),
                text(&s.name),
                opt(&s.description),
                text(s.kind),
                Val::Bool(s.external),
                opt(&s.organisation),
                text(s.status),
                opt(&s.owner),
                text(join(&s.administrators)),
                text(s.dpia_status),
                opt(&s.dpia_reference),
                opt(&s.dpia_review_due),
                text(s.architecture_checklist),
            ],
        ),
        Record::DataItem(d) => (
            "data_items",
            &[
                "id",
                "name",
                "description",
                "classification",
                "personal_data",
                "special_category",
                "authoritative_system",
            ],
            vec![
                text(&d.id),
                text(&d.name),
                opt(&d.description),
                text(d.classification),
                Val::Bool(d.personal_data),
                Val::Bool(d.special_category),
                opt(&d.authoritative_system),
            ],
        ),
        Record::Flow(f) => (
            "flows",
            &[
                "id",
                "source",
                "target",
                "method",
                "frequency",
                "status",
                "request",
                "established_on",
            ],
            vec![
                text(&f.id),
                text(&f.source),
                text(&f.target),
                text(f.method),
                opt(&f.frequency),
                text(f.status),
                opt(&f.request),
                opt(&f.established_on),
            ],
        ),
    }
}

/// Inserts or replaces records, all of one kind; `bool` says whether the record already exists.
pub(crate) async fn upsert(
    tx: &mut Transaction<'static, Any>,
    part: &[(Record, bool)],
    rows_per_statement: usize,
) -> Result<(), StoreError> {
    let Some((first, _)) = part.first() else {
        return Ok(());
    };
    let (table, cols, _) = row(first);
    let updates: Vec<String> = cols[1..]
        .iter()
        .map(|c| format!("{c} = excluded.{c}"))
        .collect();
    let sql = format!(
        "INSERT INTO {table} ({}) VALUES {} ON CONFLICT ({}) DO UPDATE SET {}",
        cols.join(", "),
        placeholders(part.len(), cols.len()),
        cols[0],
        updates.join(", ")
    );
    let vals: Vec<Val> = part.iter().flat_map(|(r, _)| row(r).2).collect();
    bind_all(sqlx::query(&sql), vals).execute(&mut **tx).await?;

    if first.kind() == RecordKind::Flow {
        let replaced: Vec<Val> = part
            .iter()
            .filter(|(_, existed)| *existed)
            .map(|(r, _)| text(r.id()))
            .collect();
        if !replaced.is_empty() {
            let sql = format!(
                "DELETE FROM flow_data_items WHERE flow_id IN ({})",
                (1..=replaced.len())
                    .map(|i| format!("${i}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            bind_all(sqlx::query(&sql), replaced)
                .execute(&mut **tx)
                .await?;
        }
        let pairs: Vec<(&str, &str)> = part
            .iter()
            .filter_map(|(r, _)| match r {
                Record::Flow(f) => Some(f),
                _ => None,
            })
            .flat_map(|f| {
                f.data_items
                    .iter()
                    .map(move |d| (f.id.as_str(), d.as_str()))
            })
            .collect();
        // Stay under the bound-parameter limit however many items the flows carry.
        for chunk in pairs.chunks(rows_per_statement * 4) {
            let sql = format!(
                "INSERT INTO flow_data_items (flow_id, data_item_id) VALUES {}",
                placeholders(chunk.len(), 2)
            );
            let vals = chunk.iter().flat_map(|(f, d)| [text(f), text(d)]).collect();
            bind_all(sqlx::query(&sql), vals).execute(&mut **tx).await?;
        }
    }
    Ok(())
}

/// Appends events (drained from `events`) after `prev`, returning the new head hash.
pub(crate) async fn append_events(
    tx: &mut Transaction<'static, Any>,
    events: &mut Vec<Event>,
    mut prev: Hash,
) -> Result<Hash, StoreError> {
    if events.is_empty() {
        return Ok(prev);
    }
    let sql = format!(
        "INSERT INTO audit_events (seq, at, actor, kind, payload, prev_hash, hash) VALUES {}",
        placeholders(events.len(), 7)
    );
    let mut q = sqlx::query(&sql);
    for e in events.drain(..) {
        let hash = audit::chain_hash(&prev, &e);
        let mut payload = String::new();
        audit::write_canonical(&e.payload, &mut payload);
        q = q
            .bind(e.seq)
            .bind(audit::format_time(&e.at))
            .bind(e.actor)
            .bind(e.kind)
            .bind(payload)
            .bind(prev.to_hex())
            .bind(hash.to_hex());
        prev = hash;
    }
    q.execute(&mut **tx).await?;
    Ok(prev)
}
