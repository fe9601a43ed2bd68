//! The JSON document written by `flowgate export --format json`:
//! `{"people": [...], "systems": [...], "data_items": [...], "flows": [...]}`, each list sorted by
//! id, field names as the CSV columns, lists as arrays, booleans as booleans, empty values as null.

use flowgate_core::register::{DataItem, Flow, Person, Record, RecordKind, Register, System};
use serde_json::Value;

use crate::rows::columns;
use crate::table::{Cell, Location, Problems, Table, kind_of_table};
use crate::{Parsed, finish, sorted_records};

/// Reads a JSON document named `name`, checking it against `register`.
pub fn read_json(name: &str, bytes: &[u8], register: &Register) -> Result<Parsed, Problems> {
    let mut problems = Problems::default();
    let whole = Location::Json {
        file: name.to_owned(),
        list: None,
        index: None,
    };
    let doc: Value = match serde_json::from_slice(bytes) {
        Ok(v) => v,
        Err(e) => {
            problems.push(whole, None, format!("not valid JSON: {e}"));
            return Err(problems);
        }
    };
    let Value::Object(lists) = doc else {
        problems.push(
            whole,
            None,
            "expected an object with the lists people, systems, data_items and flows",
        );
        return Err(problems);
    };
    let mut tables = Vec::new();
    for (key, list) in lists {
        let list_at = |index: Option<usize>| Location::Json {
            file: name.to_owned(),
            list: Some(key.clone()),
            index,
        };
        let Some(kind) = kind_of_table(&key) else {
            problems.push(
                list_at(None),
                None,
                "unknown list (expected people, systems, data_items or flows)",
            );
            continue;
        };
        let Value::Array(items) = list else {
            problems.push(list_at(None), None, "expected a list of objects");
            continue;
        };
        let cols = columns(kind);
        let mut rows = Vec::with_capacity(items.len());
        for (i, item) in items.into_iter().enumerate() {
            let Value::Object(fields) = item else {
                problems.push(list_at(Some(i)), None, "expected an object");
                continue;
            };
            let mut cells = vec![Cell::Empty; cols.len()];
            for (field, value) in fields {
                let Some(c) = cols.iter().position(|c| c.name == field) else {
                    problems.push(list_at(Some(i)), Some(&field), "unknown field");
                    continue;
                };
                match cell(value) {
                    Ok(v) => cells[c] = v,
                    Err(msg) => problems.push(list_at(Some(i)), Some(&field), msg),
                }
            }
            rows.push((list_at(Some(i)), cells));
        }
        let header = cols.iter().map(|c| c.name.to_owned()).collect();
        tables.push(Table {
            kind,
            header_location: list_at(None),
            header,
            rows,
        });
    }
    finish(tables, register, problems)
}

fn cell(value: Value) -> Result<Cell, String> {
    Ok(match value {
        Value::Null => Cell::Empty,
        Value::Bool(b) => Cell::Bool(b),
        Value::Number(n) => Cell::Number(n.as_f64().unwrap_or(f64::NAN)),
        Value::String(s) => Cell::Text(s),
        Value::Array(items) => Cell::List(
            items
                .into_iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s),
                    other => Err(format!("expected a list of strings, found {other}")),
                })
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(_) => return Err("expected a value, found an object".to_owned()),
    })
}

/// The register as one JSON document. The same register always gives the same bytes.
pub fn write_json(register: &Register) -> Vec<u8> {
    #[derive(serde::Serialize)]
    struct Document {
        people: Vec<Person>,
        systems: Vec<System>,
        data_items: Vec<DataItem>,
        flows: Vec<Flow>,
    }
    let mut doc = Document {
        people: vec![],
        systems: vec![],
        data_items: vec![],
        flows: vec![],
    };
    for kind in RecordKind::ALL {
        for r in sorted_records(register, kind) {
            match r {
                Record::Person(p) => doc.people.push(p),
                Record::System(s) => doc.systems.push(s),
                Record::DataItem(d) => doc.data_items.push(d),
                Record::Flow(f) => doc.flows.push(f),
            }
        }
    }
    // Plain structs of strings, booleans and dates always serialise.
    let mut out = serde_json::to_vec_pretty(&doc).unwrap_or_default();
    out.push(b'\n');
    out
}
