//! The register's exchange formats — a folder of CSV files, an XLSX workbook, a JSON document —
//! read into validated records and written back.
//!
//! Pure: this crate turns bytes into records and records into bytes; the caller reads and writes
//! the files. Reading never stops at the first problem: [`Problems`] lists them all (up to a
//! limit), each naming the file or sheet, the line, the column and the value.

pub mod rows;
pub mod table;

mod csv_format;
mod json_format;
mod xlsx_format;

use std::collections::HashMap;

use flowgate_core::register::{Record, RecordKind, Register};

pub use csv_format::{read_csv, write_csv};
pub use json_format::{read_json, write_json};
pub use table::{Cell, Location, Problem, Problems, Table};
pub use xlsx_format::{read_xlsx, write_xlsx};

/// Records read from an input, in dependency order (people, systems, data items, flows), each with
/// where it came from.
#[derive(Debug, Clone, Default)]
pub struct Parsed {
    pub records: Vec<(Location, Record)>,
}

impl Parsed {
    pub fn count(&self, kind: RecordKind) -> usize {
        self.records
            .iter()
            .filter(|(_, r)| r.kind() == kind)
            .count()
    }
}

/// Turns tables into records, then checks the records as a whole: no id twice, and every
/// reference satisfied by the register as it stands or by the input itself.
pub(crate) fn finish(
    tables: Vec<table::Table>,
    register: &Register,
    mut problems: Problems,
) -> Result<Parsed, Problems> {
    let mut records = Vec::new();
    let mut declared = Vec::new();
    for t in tables {
        records.extend(rows::read_records(t, &mut problems, &mut declared));
    }
    records.sort_by_key(|(_, r)| r.kind());
    check(&records, &declared, register, &mut problems);
    problems.into_result().map(|()| Parsed { records })
}

fn check(
    records: &[(Location, Record)],
    declared: &[(RecordKind, String)],
    register: &Register,
    problems: &mut Problems,
) {
    let mut seen: HashMap<(RecordKind, &str), &Location> = HashMap::with_capacity(records.len());
    for (location, record) in records {
        let column = rows::columns(record.kind())[0].name;
        if let Some(first) = seen.insert((record.kind(), record.id()), location) {
            problems.push(
                location.clone(),
                Some(column),
                format!("duplicate id '{}' (first at {first})", record.id()),
            );
        }
    }
    // Rows refused for other reasons still say which ids the input means to define.
    let declared: std::collections::HashSet<(RecordKind, &str)> =
        declared.iter().map(|(k, id)| (*k, id.as_str())).collect();
    let incoming = |kind: RecordKind, id: &str| {
        seen.contains_key(&(kind, id)) || declared.contains(&(kind, id))
    };
    for (location, record) in records {
        for d in register.dangling_references(record, &incoming) {
            problems.push(
                location.clone(),
                Some(d.field),
                format!("no {} with id '{}'", d.noun, d.id),
            );
        }
    }
}

/// Reads one table built by the caller (e.g. a record edited on the command line), checking it
/// against `register` like any import.
pub fn read_table(table: table::Table, register: &Register) -> Result<Parsed, Problems> {
    finish(vec![table], register, Problems::default())
}

/// The four lists of an export, each sorted by id.
pub(crate) fn sorted_records(
    register: &Register,
    kind: RecordKind,
) -> impl Iterator<Item = Record> + '_ {
    register
        .sorted_ids(kind)
        .into_iter()
        .filter_map(move |id| register.get(kind, id))
}
