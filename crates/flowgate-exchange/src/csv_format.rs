//! A folder of CSV files: `people.csv`, `systems.csv`, `data_items.csv`, `flows.csv`, any subset.
//! The header is line 1; every later line is a record.

use flowgate_core::register::{RecordKind, Register};

use crate::rows::{columns, to_cells};
use crate::table::{Cell, Location, Problems, Table, kind_of_table};
use crate::{Parsed, finish, sorted_records};

/// Reads CSV files given as `(file name, contents)`, checking them against `register`.
pub fn read_csv(files: &[(String, Vec<u8>)], register: &Register) -> Result<Parsed, Problems> {
    let mut problems = Problems::default();
    let mut tables = Vec::new();
    for (name, bytes) in files {
        let Some(kind) = kind_of_table(name) else {
            problems.push(
                Location::Csv { file: name.clone(), line: 1 },
                None,
                "not a register file (expected people.csv, systems.csv, data_items.csv or flows.csv)",
            );
            continue;
        };
        if let Some(t) = read_table(name, kind, bytes, &mut problems) {
            tables.push(t);
        }
    }
    finish(tables, register, problems)
}

fn read_table(
    name: &str,
    kind: RecordKind,
    bytes: &[u8],
    problems: &mut Problems,
) -> Option<Table> {
    // Spreadsheet programs write a byte-order mark at the start of "CSV UTF-8" files.
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    let at = |line: u64| Location::Csv {
        file: name.to_owned(),
        line,
    };
    let mut header: Option<Vec<String>> = None;
    let mut rows = Vec::new();
    let mut record = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                let line = record.position().map_or(0, |p| p.line());
                let cells: Vec<Cell> = record.iter().map(|s| Cell::Text(s.to_owned())).collect();
                if header.is_none() {
                    header = Some(record.iter().map(|s| s.trim().to_owned()).collect());
                } else {
                    rows.push((at(line), cells));
                }
            }
            Err(e) => match e.kind() {
                csv::ErrorKind::Utf8 { pos, err } => {
                    let line = pos.as_ref().map_or(0, |p| p.line());
                    let column = header
                        .as_ref()
                        .and_then(|h| h.get(err.field()))
                        .cloned()
                        .unwrap_or_else(|| format!("column {}", err.field() + 1));
                    problems.push(
                        at(line),
                        Some(&column),
                        "not valid UTF-8 text (save the file as CSV UTF-8)",
                    );
                    // A header that cannot be read leaves nothing to read the rows by.
                    header.as_ref()?;
                }
                _ => {
                    let line = e.position().map_or(0, |p| p.line());
                    problems.push(at(line), None, format!("cannot read CSV: {e}"));
                    return None;
                }
            },
        }
    }
    let Some(header) = header else {
        problems.push(at(1), None, "the file is empty (expected a header line)");
        return None;
    };
    Some(Table {
        kind,
        header_location: at(1),
        header,
        rows,
    })
}

/// The register as four CSV files: `(file name, contents)`, rows sorted by id.
pub fn write_csv(register: &Register) -> Vec<(String, Vec<u8>)> {
    RecordKind::ALL
        .into_iter()
        .map(|kind| {
            let mut w = csv::Writer::from_writer(Vec::new());
            let mut write = |fields: Vec<String>| {
                // Writing to a Vec cannot fail.
                let _ = w.write_record(fields);
            };
            write(columns(kind).iter().map(|c| c.name.to_owned()).collect());
            for record in sorted_records(register, kind) {
                write(to_cells(&record).iter().map(csv_text).collect());
            }
            let bytes = w.into_inner().unwrap_or_default();
            (format!("{}.csv", kind.table()), bytes)
        })
        .collect()
}

fn csv_text(cell: &Cell) -> String {
    match cell {
        Cell::Empty => String::new(),
        Cell::List(l) => l.join(";"),
        other => other.display(),
    }
}
