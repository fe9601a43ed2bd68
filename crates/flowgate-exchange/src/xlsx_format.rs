//! An XLSX workbook with the sheets `people`, `systems`, `data_items` and `flows` (any subset;
//! other sheets, such as a page of instructions, are left alone). Row 1 is the header.

use std::io::Cursor;

use calamine::{Data, Reader, Xlsx, open_workbook_from_rs};
use flowgate_core::register::{RecordKind, Register};
use rust_xlsxwriter::{Format, Workbook};

use crate::rows::{columns, to_cells};
use crate::table::{Cell, Location, Problems, Table, kind_of_table};
use crate::{Parsed, finish, sorted_records};

/// Reads a workbook named `name`, checking it against `register`.
pub fn read_xlsx(name: &str, bytes: &[u8], register: &Register) -> Result<Parsed, Problems> {
    let mut problems = Problems::default();
    let whole = Location::Sheet {
        workbook: name.to_owned(),
        sheet: String::new(),
        row: 0,
    };
    let mut workbook: Xlsx<_> = match open_workbook_from_rs(Cursor::new(bytes)) {
        Ok(w) => w,
        Err(e) => {
            problems.push(whole, None, format!("not a readable XLSX workbook: {e}"));
            return Err(problems);
        }
    };
    let sheets: Vec<(String, RecordKind)> = workbook
        .sheet_names()
        .into_iter()
        .filter_map(|s| kind_of_table(&s).map(|k| (s, k)))
        .collect();
    if sheets.is_empty() {
        problems.push(
            whole,
            None,
            "no sheet named people, systems, data_items or flows",
        );
        return Err(problems);
    }
    let mut tables = Vec::new();
    for (sheet, kind) in sheets {
        let at = |row: u64| Location::Sheet {
            workbook: name.to_owned(),
            sheet: sheet.clone(),
            row,
        };
        let range = match workbook.worksheet_range(&sheet) {
            Ok(r) => r,
            Err(e) => {
                problems.push(at(1), None, format!("cannot read the sheet: {e}"));
                continue;
            }
        };
        // A sheet's used range may not start at A1. Columns are found by name, so only the row
        // numbers need the offset: they are numbered as the spreadsheet shows them.
        let first_row = range.start().map_or(0, |(r, _)| r);
        let mut rows_iter = range.rows().enumerate();
        let Some((_, header_row)) = rows_iter.next() else {
            problems.push(at(1), None, "the sheet is empty (expected a header row)");
            continue;
        };
        let header_line = u64::from(first_row) + 1;
        let mut header: Vec<String> = header_row
            .iter()
            .map(|c| c.to_string().trim().to_owned())
            .collect();
        // Trailing unnamed columns are formatting, not data.
        header.truncate(
            header
                .iter()
                .rposition(|h| !h.is_empty())
                .map_or(0, |i| i + 1),
        );
        let mut rows = Vec::new();
        for (i, row) in rows_iter {
            let line = header_line + i as u64;
            let mut cells = Vec::with_capacity(row.len());
            for (c, data) in row.iter().enumerate() {
                match cell(data) {
                    Ok(v) => cells.push(v),
                    Err(msg) => {
                        let col = header
                            .get(c)
                            .cloned()
                            .unwrap_or_else(|| format!("column {}", c + 1));
                        problems.push(at(line), Some(&col), msg);
                        cells.push(Cell::Empty);
                    }
                }
            }
            while cells.len() > header.len() && cells.last().is_some_and(Cell::is_empty) {
                cells.pop();
            }
            rows.push((at(line), cells));
        }
        tables.push(Table {
            kind,
            header_location: at(header_line),
            header,
            rows,
        });
    }
    finish(tables, register, problems)
}

fn cell(data: &Data) -> Result<Cell, String> {
    Ok(match data {
        Data::Empty => Cell::Empty,
        Data::String(s) => Cell::Text(s.clone()),
        Data::Bool(b) => Cell::Bool(*b),
        Data::Int(i) => Cell::Number(*i as f64),
        Data::Float(f) => Cell::Number(*f),
        Data::DateTime(d) => match d.as_datetime() {
            Some(dt) => Cell::Date(dt.date()),
            None => return Err(format!("'{d}' is not a date")),
        },
        Data::DateTimeIso(s) => Cell::Text(s.get(..10).unwrap_or(s).to_owned()),
        Data::DurationIso(s) => Cell::Text(s.clone()),
        Data::Error(e) => return Err(format!("the cell holds a spreadsheet error ({e})")),
    })
}

/// The register as one workbook with four sheets, rows sorted by id.
pub fn write_xlsx(register: &Register) -> Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
    let mut workbook = Workbook::new();
    let bold = Format::new().set_bold();
    for kind in RecordKind::ALL {
        let sheet = workbook.add_worksheet();
        sheet.set_name(kind.table())?;
        for (c, col) in columns(kind).iter().enumerate() {
            sheet.write_string_with_format(0, c as u16, col.name, &bold)?;
        }
        sheet.set_freeze_panes(1, 0)?;
        let mut rows = 0u32;
        for record in sorted_records(register, kind) {
            rows += 1;
            for (c, cell) in to_cells(&record).iter().enumerate() {
                let c = c as u16;
                match cell {
                    Cell::Empty => {}
                    Cell::Bool(b) => {
                        sheet.write_boolean(rows, c, *b)?;
                    }
                    // Dates and lists are written as the text a person would type.
                    Cell::List(l) => {
                        if !l.is_empty() {
                            sheet.write_string(rows, c, l.join(";"))?;
                        }
                    }
                    other => {
                        sheet.write_string(rows, c, other.display())?;
                    }
                }
            }
        }
        if rows < 5_000 {
            sheet.autofit();
        }
    }
    workbook.save_to_buffer()
}
