//! `flowgate set KIND ID FIELD=VALUE...`: an edit of one record, checked by the same row rules as
//! an import and recorded in the audit log.

use flowgate_core::register::RecordKind;
use flowgate_exchange::rows::{columns, to_cells};
use flowgate_exchange::{Cell, Location, Table};
use flowgate_store::{ChangeContext, Store};

use crate::{BadInput, Outcome};

pub async fn run(
    store: &Store,
    actor: &str,
    kind: RecordKind,
    id: &str,
    assignments: &[String],
) -> anyhow::Result<Outcome> {
    let mut register = store.load_register().await?;
    let id = id.trim();
    let id = if kind == RecordKind::Person {
        id.to_ascii_lowercase()
    } else {
        id.to_owned()
    };
    let existing = register.get(kind, &id).ok_or_else(|| {
        BadInput(format!(
            "no {} with id '{id}' (import a new record instead)",
            kind.noun()
        ))
    })?;
    let cols = columns(kind);
    let mut cells = to_cells(&existing);
    for a in assignments {
        let Some((field, value)) = a.split_once('=') else {
            return Err(BadInput(format!("'{a}': expected FIELD=VALUE")).into());
        };
        let field = field.trim();
        let Some(c) = cols.iter().position(|c| c.name == field) else {
            let names: Vec<&str> = cols[1..].iter().map(|c| c.name).collect();
            return Err(BadInput(format!(
                "{field}: unknown field (expected one of {})",
                names.join(", ")
            ))
            .into());
        };
        if c == 0 {
            return Err(BadInput(format!("{field}: the id cannot be changed")).into());
        }
        cells[c] = if value.trim().is_empty() {
            Cell::Empty
        } else {
            Cell::Text(value.to_owned())
        };
    }
    let location = Location::Named(format!("{} '{id}'", kind.noun()));
    let table = Table {
        kind,
        header_location: location.clone(),
        header: cols.iter().map(|c| c.name.to_owned()).collect(),
        rows: vec![(location, cells)],
    };
    let parsed = flowgate_exchange::read_table(table, &register)
        .map_err(|p| BadInput(format!("nothing was changed:\n{p}")))?;
    let records = parsed.records.into_iter().map(|(_, r)| r).collect();
    let ctx = ChangeContext {
        actor,
        now: chrono::Utc::now(),
        summary: None,
    };
    let applied = store
        .apply(&mut register, records, &ctx, &mut |_| {})
        .await?;
    match applied.events {
        Some((seq, _)) => println!("updated {} '{id}' (audit event {seq})", kind.noun()),
        None => println!(
            "{} '{id}' already had those values; nothing changed",
            kind.noun()
        ),
    }
    Ok(Outcome::Ok)
}
