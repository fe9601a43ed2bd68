//! The columns of each kind of record, and the rules that turn a row of cells into a record (and
//! a record back into a row). Every format goes through here, so a bad date reads the same
//! whether it came from a CSV file, a workbook or a JSON document.

use std::collections::BTreeSet;

use chrono::NaiveDate;
use flowgate_core::register::{
    ChecklistStatus, Classification, DataItem, DpiaStatus, Flow, FlowMethod, FlowStatus, Person,
    PersonKind, Record, RecordKind, Role, System, SystemKind, SystemStatus,
};
use flowgate_core::{DataItemId, Email, FlowId, IdError, SystemId};

use crate::table::{Cell, Location, Problems, Table};

/// A column: its name, and whether a row must have a value in it.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub name: &'static str,
    pub required: bool,
}

const fn req(name: &'static str) -> Column {
    Column {
        name,
        required: true,
    }
}
const fn opt(name: &'static str) -> Column {
    Column {
        name,
        required: false,
    }
}

const PEOPLE: &[Column] = &[
    req("email"),
    req("name"),
    req("kind"),
    opt("authorised_until"),
    opt("roles"),
];
const SYSTEMS: &[Column] = &[
    req("id"),
    req("name"),
    opt("description"),
    req("kind"),
    opt("external"),
    opt("organisation"),
    req("status"),
    opt("owner"),
    opt("administrators"),
    opt("dpia_status"),
    opt("dpia_reference"),
    opt("dpia_review_due"),
    opt("architecture_checklist"),
];
const DATA_ITEMS: &[Column] = &[
    req("id"),
    req("name"),
    opt("description"),
    req("classification"),
    opt("personal_data"),
    opt("special_category"),
    opt("authoritative_system"),
];
const FLOWS: &[Column] = &[
    req("id"),
    req("source"),
    req("target"),
    req("data_items"),
    req("method"),
    opt("frequency"),
    req("status"),
    opt("request"),
    opt("established_on"),
];

/// The columns of a kind of record, in export order.
pub fn columns(kind: RecordKind) -> &'static [Column] {
    match kind {
        RecordKind::Person => PEOPLE,
        RecordKind::System => SYSTEMS,
        RecordKind::DataItem => DATA_ITEMS,
        RecordKind::Flow => FLOWS,
    }
}

/// Checks a table's header: no unknown or repeated column, every required column present.
/// Returns, per column of the kind, its position in the table's rows.
pub fn map_header(table: &Table, problems: &mut Problems) -> Option<Vec<Option<usize>>> {
    let cols = columns(table.kind);
    let mut positions: Vec<Option<usize>> = vec![None; cols.len()];
    let before = problems.len();
    for (i, name) in table.header.iter().enumerate() {
        let name = name.trim();
        match cols.iter().position(|c| c.name.eq_ignore_ascii_case(name)) {
            Some(c) if positions[c].is_some() => {
                problems.push(
                    table.header_location.clone(),
                    Some(name),
                    "column appears twice",
                );
            }
            Some(c) => positions[c] = Some(i),
            None if name.is_empty() => {
                problems.push(
                    table.header_location.clone(),
                    None,
                    format!("column {} has no name", i + 1),
                );
            }
            None => problems.push(
                table.header_location.clone(),
                Some(name),
                format!(
                    "unknown column (expected {})",
                    cols.iter().map(|c| c.name).collect::<Vec<_>>().join(", ")
                ),
            ),
        }
    }
    for (c, pos) in cols.iter().zip(&positions) {
        if c.required && pos.is_none() {
            problems.push(
                table.header_location.clone(),
                Some(c.name),
                "missing required column",
            );
        }
    }
    (problems.len() == before).then_some(positions)
}

/// Reads one row's cells by column name, collecting every problem rather than stopping at the
/// first, so a person can fix a whole row at once.
struct RowReader<'a> {
    kind: RecordKind,
    location: &'a Location,
    cells: &'a [Cell],
    positions: &'a [Option<usize>],
    problems: &'a mut Problems,
    failed: bool,
}

impl RowReader<'_> {
    fn cell(&self, name: &str) -> &Cell {
        let cols = columns(self.kind);
        cols.iter()
            .position(|c| c.name == name)
            .and_then(|c| self.positions[c])
            .and_then(|p| self.cells.get(p))
            .unwrap_or(&Cell::Empty)
    }

    fn fail(&mut self, column: &str, message: impl Into<String>) {
        self.failed = true;
        self.problems
            .push(self.location.clone(), Some(column), message);
    }

    /// The cell's text, or `None` when empty (a problem when the column is required).
    fn text(&mut self, name: &str) -> Option<String> {
        let text = match self.cell(name) {
            Cell::Empty => None,
            Cell::Text(t) => Some(t.trim().to_owned()).filter(|t| !t.is_empty()),
            Cell::Bool(b) => Some(b.to_string()),
            // Whole numbers typed into a spreadsheet come back as floats; show them as typed.
            Cell::Number(n) if n.fract() == 0.0 && n.abs() < 1e15 => Some(format!("{}", *n as i64)),
            Cell::Number(n) => Some(n.to_string()),
            Cell::Date(d) => Some(d.to_string()),
            Cell::List(_) => {
                self.fail(name, "expected a single value, found a list");
                return None;
            }
        };
        let required = columns(self.kind)
            .iter()
            .any(|c| c.name == name && c.required);
        if text.is_none() && required {
            self.fail(name, "a value is required");
        }
        text
    }

    fn parse<T, E: std::fmt::Display>(
        &mut self,
        name: &str,
        f: impl FnOnce(&str) -> Result<T, E>,
    ) -> Option<T> {
        let text = self.text(name)?;
        match f(&text) {
            Ok(v) => Some(v),
            Err(e) => {
                self.fail(name, e.to_string());
                None
            }
        }
    }

    fn id<T>(&mut self, name: &str, f: fn(&str) -> Result<T, IdError>) -> Option<T> {
        self.parse(name, f)
    }

    fn bool(&mut self, name: &str) -> Option<bool> {
        if let Cell::Bool(b) = self.cell(name) {
            return Some(*b);
        }
        self.parse(name, |t| match t.to_ascii_lowercase().as_str() {
            "true" | "yes" => Ok(true),
            "false" | "no" => Ok(false),
            _ => Err(format!(
                "'{t}' is not a boolean (use true, false, yes or no)"
            )),
        })
    }

    fn date(&mut self, name: &str) -> Option<NaiveDate> {
        if let Cell::Date(d) = self.cell(name) {
            return Some(*d);
        }
        self.parse(name, |t| {
            NaiveDate::parse_from_str(t, "%Y-%m-%d")
                .map_err(|_| format!("'{t}' is not a date (use YYYY-MM-DD)"))
        })
    }

    /// A `;`-separated list (or a JSON array), each element parsed; duplicates are refused.
    fn list<T: Ord>(&mut self, name: &str, f: fn(&str) -> Result<T, String>) -> BTreeSet<T> {
        let parts: Vec<String> = match self.cell(name) {
            Cell::List(l) => l.clone(),
            Cell::Empty => Vec::new(),
            other => other
                .display()
                .split(';')
                .map(|p| p.trim().to_owned())
                .filter(|p| !p.is_empty())
                .collect(),
        };
        let mut out = BTreeSet::new();
        for p in parts {
            match f(&p) {
                Ok(v) => {
                    if !out.insert(v) {
                        self.fail(name, format!("'{p}' is listed twice"));
                    }
                }
                Err(e) => self.fail(name, e),
            }
        }
        out
    }
}

fn email(t: &str) -> Result<Email, String> {
    Email::parse(t).map_err(|e| e.to_string())
}

/// Turns each row of a table into a record, or into problems. Empty rows are skipped: spreadsheets
/// keep them. The ids of rows that have problems are added to `declared`, so that references to
/// them are not reported a second time as references to nothing.
pub fn read_records(
    mut table: Table,
    problems: &mut Problems,
    declared: &mut Vec<(RecordKind, String)>,
) -> Vec<(Location, Record)> {
    let Some(positions) = map_header(&table, problems) else {
        return Vec::new();
    };
    // Rows are consumed as they become records, so a large import holds one form at a time.
    let rows = std::mem::take(&mut table.rows);
    let mut out = Vec::with_capacity(rows.len());
    for (location, cells) in rows {
        if cells.iter().all(Cell::is_empty) {
            continue;
        }
        if cells.len() > table.header.len() {
            problems.push(
                location,
                None,
                format!(
                    "{} cells but the header has {} columns",
                    cells.len(),
                    table.header.len()
                ),
            );
            continue;
        }
        let mut r = RowReader {
            kind: table.kind,
            location: &location,
            cells: &cells,
            positions: &positions,
            problems,
            failed: false,
        };
        let record = match table.kind {
            RecordKind::Person => person(&mut r).map(Record::Person),
            RecordKind::System => system(&mut r).map(Record::System),
            RecordKind::DataItem => data_item(&mut r).map(Record::DataItem),
            RecordKind::Flow => flow(&mut r).map(Record::Flow),
        };
        let failed = r.failed;
        match record.filter(|_| !failed) {
            Some(record) => out.push((location, record)),
            None => {
                // The row still says which id it means to define. Lower-cased: `Moodle` is
                // refused as an id, but it is plainly the `moodle` that other rows name.
                let id = positions[0].and_then(|p| cells.get(p)).map(Cell::display);
                if let Some(id) = id
                    .map(|i| i.trim().to_ascii_lowercase())
                    .filter(|i| !i.is_empty())
                {
                    declared.push((table.kind, id));
                }
            }
        }
    }
    out
}

fn person(r: &mut RowReader<'_>) -> Option<Person> {
    let email = r.id("email", Email::parse);
    let name = r.text("name");
    let kind = r.parse("kind", PersonKind::parse);
    let authorised_until = r.date("authorised_until");
    let roles = r.list("roles", |t| Role::parse(t).map_err(|e| e.to_string()));
    if kind == Some(PersonKind::ThirdParty) && authorised_until.is_none() && !r.failed {
        r.fail(
            "authorised_until",
            "a third party needs the date their authorisation ends (1.2.2)",
        );
    }
    Some(Person {
        email: email?,
        name: name?,
        kind: kind?,
        authorised_until,
        roles,
    })
}

fn system(r: &mut RowReader<'_>) -> Option<System> {
    let id = r.id("id", SystemId::parse);
    let name = r.text("name");
    let description = r.text("description");
    let kind = r.parse("kind", SystemKind::parse);
    let external = r.bool("external").unwrap_or(false);
    let organisation = r.text("organisation");
    let status = r.parse("status", SystemStatus::parse);
    let owner = r.id("owner", Email::parse);
    let administrators = r.list("administrators", email);
    let dpia_status = r
        .parse("dpia_status", DpiaStatus::parse)
        .unwrap_or(DpiaStatus::None);
    let dpia_reference = r.text("dpia_reference");
    let dpia_review_due = r.date("dpia_review_due");
    let architecture_checklist = r
        .parse("architecture_checklist", ChecklistStatus::parse)
        .unwrap_or(ChecklistStatus::NotRequired);
    if external && organisation.is_none() {
        r.fail(
            "organisation",
            "an external system needs the name of the organisation that runs it (1.3.1, 1.3.2)",
        );
    }
    Some(System {
        id: id?,
        name: name?,
        description,
        kind: kind?,
        external,
        organisation,
        status: status?,
        owner,
        administrators,
        dpia_status,
        dpia_reference,
        dpia_review_due,
        architecture_checklist,
    })
}

fn data_item(r: &mut RowReader<'_>) -> Option<DataItem> {
    let id = r.id("id", DataItemId::parse);
    let name = r.text("name");
    let description = r.text("description");
    let classification = r.parse("classification", Classification::parse);
    let personal_data = r.bool("personal_data").unwrap_or(false);
    let special_category = r.bool("special_category").unwrap_or(false);
    let authoritative_system = r.id("authoritative_system", SystemId::parse);
    if special_category && !personal_data {
        r.fail(
            "special_category",
            "special category data is personal data: set personal_data to true as well",
        );
    }
    Some(DataItem {
        id: id?,
        name: name?,
        description,
        classification: classification?,
        personal_data,
        special_category,
        authoritative_system,
    })
}

fn flow(r: &mut RowReader<'_>) -> Option<Flow> {
    let id = r.id("id", FlowId::parse);
    let source = r.id("source", SystemId::parse);
    let target = r.id("target", SystemId::parse);
    let data_items = r.list("data_items", |t| {
        DataItemId::parse(t).map_err(|e| e.to_string())
    });
    let method = r.parse("method", FlowMethod::parse);
    let frequency = r.text("frequency");
    let status = r.parse("status", FlowStatus::parse);
    let request = r.text("request");
    let established_on = r.date("established_on");
    if data_items.is_empty() && !r.failed {
        r.fail("data_items", "a flow carries at least one data item");
    }
    if let (Some(s), Some(t)) = (&source, &target)
        && s == t
    {
        r.fail(
            "target",
            format!("'{t}' is also the source: a flow joins two different systems"),
        );
    }
    Some(Flow {
        id: id?,
        source: source?,
        target: target?,
        data_items,
        method: method?,
        frequency,
        status: status?,
        request,
        established_on,
    })
}

/// A record as a row of cells, in [`columns`] order: what the CSV and XLSX writers write.
pub fn to_cells(record: &Record) -> Vec<Cell> {
    fn text(s: &str) -> Cell {
        Cell::Text(s.to_owned())
    }
    fn opt<T: ToString>(v: &Option<T>) -> Cell {
        v.as_ref()
            .map_or(Cell::Empty, |v| Cell::Text(v.to_string()))
    }
    fn date(v: &Option<NaiveDate>) -> Cell {
        v.map_or(Cell::Empty, Cell::Date)
    }
    fn list<T: ToString>(items: impl IntoIterator<Item = T>) -> Cell {
        Cell::List(items.into_iter().map(|i| i.to_string()).collect())
    }
    match record {
        Record::Person(p) => vec![
            text(p.email.as_str()),
            text(&p.name),
            text(p.kind.as_str()),
            date(&p.authorised_until),
            list(p.roles.iter().map(|r| r.as_str())),
        ],
        Record::System(s) => vec![
            text(s.id.as_str()),
            text(&s.name),
            opt(&s.description),
            text(s.kind.as_str()),
            Cell::Bool(s.external),
            opt(&s.organisation),
            text(s.status.as_str()),
            opt(&s.owner),
            list(&s.administrators),
            text(s.dpia_status.as_str()),
            opt(&s.dpia_reference),
            date(&s.dpia_review_due),
            text(s.architecture_checklist.as_str()),
        ],
        Record::DataItem(d) => vec![
            text(d.id.as_str()),
            text(&d.name),
            opt(&d.description),
            text(d.classification.as_str()),
            Cell::Bool(d.personal_data),
            Cell::Bool(d.special_category),
            opt(&d.authoritative_system),
        ],
        Record::Flow(f) => vec![
            text(f.id.as_str()),
            text(f.source.as_str()),
            text(f.target.as_str()),
            list(&f.data_items),
            text(f.method.as_str()),
            opt(&f.frequency),
            text(f.status.as_str()),
            opt(&f.request),
            date(&f.established_on),
        ],
    }
}
