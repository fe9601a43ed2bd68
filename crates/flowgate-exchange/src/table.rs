//! What every format is read into before it becomes records: a table of cells with a header, and
//! for every row the place a person would look for it (`flows.csv:3`, `register.xlsx:flows:3`,
//! `register.json:flows[2]`). One set of row rules then serves CSV, XLSX and JSON alike, and
//! their error messages read the same.

use std::fmt;

use chrono::NaiveDate;
use flowgate_core::register::RecordKind;

/// One cell, as typed by the format it came from. CSV has only text; a workbook also has
/// booleans, numbers and dates; JSON has lists.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Empty,
    Text(String),
    Bool(bool),
    Number(f64),
    Date(NaiveDate),
    List(Vec<String>),
}

impl Cell {
    pub fn is_empty(&self) -> bool {
        match self {
            Cell::Empty => true,
            Cell::Text(t) => t.trim().is_empty(),
            _ => false,
        }
    }

    /// The cell as a person typed it, for error messages.
    pub fn display(&self) -> String {
        match self {
            Cell::Empty => String::new(),
            Cell::Text(t) => t.clone(),
            Cell::Bool(b) => b.to_string(),
            Cell::Number(n) => n.to_string(),
            Cell::Date(d) => d.to_string(),
            Cell::List(l) => l.join(";"),
        }
    }
}

/// Where a row (or a header) came from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Location {
    /// A CSV file and a line number; the header is line 1.
    Csv { file: String, line: u64 },
    /// A workbook, a sheet and a row number; the header is row 1.
    Sheet {
        workbook: String,
        sheet: String,
        row: u64,
    },
    /// A JSON document, a list and a position in it (from 0), or the document as a whole.
    Json {
        file: String,
        list: Option<String>,
        index: Option<usize>,
    },
    /// Anything else, named as a person would: "system 'sits'" for a command-line edit.
    Named(String),
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Csv { file, line } => write!(f, "{file}:{line}"),
            Location::Sheet {
                workbook,
                sheet,
                row,
            } => write!(f, "{workbook}:{sheet}:{row}"),
            Location::Json {
                file,
                list: Some(list),
                index: Some(i),
            } => write!(f, "{file}:{list}[{i}]"),
            Location::Json {
                file,
                list: Some(list),
                index: None,
            } => write!(f, "{file}:{list}"),
            Location::Json { file, .. } => write!(f, "{file}"),
            Location::Named(name) => write!(f, "{name}"),
        }
    }
}

/// One problem with the input: where, which column, what.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Problem {
    pub location: Location,
    pub column: Option<String>,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.column {
            Some(c) => write!(f, "{}: {c}: {}", self.location, self.message),
            None => write!(f, "{}: {}", self.location, self.message),
        }
    }
}

/// How many problems an import reports before it stops listing them: enough to fix a file in one
/// go, few enough to read.
pub const MAX_PROBLEMS: usize = 50;

/// Everything wrong with an input, in file and line order, at most [`MAX_PROBLEMS`] of them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Problems {
    pub problems: Vec<Problem>,
    /// How many more there were beyond those listed.
    pub more: usize,
}

impl Problems {
    pub fn push(&mut self, location: Location, column: Option<&str>, message: impl Into<String>) {
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(Problem {
                location,
                column: column.map(str::to_owned),
                message: message.into(),
            });
        } else {
            self.more += 1;
        }
    }

    pub fn is_empty(&self) -> bool {
        self.problems.is_empty()
    }

    pub fn len(&self) -> usize {
        self.problems.len() + self.more
    }

    pub fn extend(&mut self, other: Problems) {
        let more = other.more;
        for p in other.problems {
            self.push(p.location, p.column.as_deref(), p.message);
        }
        self.more += more;
    }

    /// Ok when there is nothing wrong.
    pub fn into_result(mut self) -> Result<(), Problems> {
        if self.is_empty() {
            Ok(())
        } else {
            self.problems.sort();
            Err(self)
        }
    }
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for p in &self.problems {
            writeln!(f, "{p}")?;
        }
        if self.more > 0 {
            writeln!(f, "... and {} more", self.more)?;
        }
        Ok(())
    }
}

impl std::error::Error for Problems {}

/// One sheet of one kind of record, as read.
#[derive(Debug, Clone)]
pub struct Table {
    pub kind: RecordKind,
    /// Where the header is, for header problems.
    pub header_location: Location,
    pub header: Vec<String>,
    pub rows: Vec<(Location, Vec<Cell>)>,
}

/// The kind of record a file, sheet or JSON list holds, by its name (`flows`, `flows.csv`).
pub fn kind_of_table(name: &str) -> Option<RecordKind> {
    let stem = name.strip_suffix(".csv").unwrap_or(name);
    RecordKind::ALL
        .into_iter()
        .find(|k| k.table().eq_ignore_ascii_case(stem.trim()))
}
