//! Rows back into records. A value that does not parse means the database was changed behind
//! Flowgate's back; it is reported with its table, row and column, never guessed at.

use std::collections::BTreeSet;

use chrono::NaiveDate;
use flowgate_core::audit::{Event, Hash, StoredEvent};
use flowgate_core::register::{
    ChecklistStatus, Classification, DataItem, DpiaStatus, Flow, FlowMethod, FlowStatus, Person,
    PersonKind, Record, Register, Role, System, SystemKind, SystemStatus,
};
use flowgate_core::{DataItemId, Email, FlowId, SystemId};
use futures_util::TryStreamExt;
use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};

use crate::{StoreError, parse_time};

/// Reads one row's columns, naming the row in any error.
struct Cols<'a> {
    row: &'a AnyRow,
    table: &'static str,
    id: String,
}

impl<'a> Cols<'a> {
    fn new(row: &'a AnyRow, table: &'static str, key: &str) -> Result<Self, StoreError> {
        let id: String = row.try_get(key)?;
        Ok(Cols { row, table, id })
    }

    fn corrupt(&self, field: &'static str, message: String) -> StoreError {
        StoreError::Corrupt {
            table: self.table,
            id: self.id.clone(),
            field,
            message,
        }
    }

    fn text(&self, field: &'static str) -> Result<String, StoreError> {
        Ok(self.row.try_get(field)?)
    }

    fn opt(&self, field: &'static str) -> Result<Option<String>, StoreError> {
        Ok(self.row.try_get(field)?)
    }

    /// PostgreSQL gives a BOOLEAN, SQLite an INTEGER 0/1 (see the migrations).
    fn bool(&self, field: &'static str) -> Result<bool, StoreError> {
        match self.row.try_get::<bool, _>(field) {
            Ok(b) => Ok(b),
            Err(_) => Ok(self.row.try_get::<i64, _>(field)? != 0),
        }
    }

    fn parse<T, E: std::fmt::Display>(
        &self,
        field: &'static str,
        f: impl Fn(&str) -> Result<T, E>,
    ) -> Result<T, StoreError> {
        let v = self.text(field)?;
        f(&v).map_err(|e| self.corrupt(field, e.to_string()))
    }

    fn parse_opt<T, E: std::fmt::Display>(
        &self,
        field: &'static str,
        f: impl Fn(&str) -> Result<T, E>,
    ) -> Result<Option<T>, StoreError> {
        self.opt(field)?
            .map(|v| f(&v).map_err(|e| self.corrupt(field, e.to_string())))
            .transpose()
    }

    fn set<T: Ord, E: std::fmt::Display>(
        &self,
        field: &'static str,
        f: impl Fn(&str) -> Result<T, E>,
    ) -> Result<BTreeSet<T>, StoreError> {
        let v = self.text(field)?;
        v.split(';')
            .filter(|p| !p.is_empty())
            .map(|p| f(p).map_err(|e| self.corrupt(field, e.to_string())))
            .collect()
    }
}

fn date(s: &str) -> Result<NaiveDate, String> {
    // `FromStr` reads ISO 8601 dates, as written, without interpreting a format string each time.
    s.parse::<NaiveDate>()
        .map_err(|_| format!("'{s}' is not a date"))
}

pub(crate) fn person(row: &AnyRow) -> Result<Person, StoreError> {
    let c = Cols::new(row, "people", "email")?;
    Ok(Person {
        email: c.parse("email", Email::parse)?,
        name: c.text("name")?,
        kind: c.parse("kind", PersonKind::parse)?,
        authorised_until: c.parse_opt("authorised_until", date)?,
        roles: c.set("roles", Role::parse)?,
    })
}

pub(crate) fn system(row: &AnyRow) -> Result<System, StoreError> {
    let c = Cols::new(row, "systems", "id")?;
    Ok(System {
        id: c.parse("id", SystemId::parse)?,
        name: c.text("name")?,
        description: c.opt("description")?,
        kind: c.parse("kind", SystemKind::parse)?,
        external: c.bool("external")?,
        organisation: c.opt("organisation")?,
        status: c.parse("status", SystemStatus::parse)?,
        owner: c.parse_opt("owner", Email::parse)?,
        administrators: c.set("administrators", Email::parse)?,
        dpia_status: c.parse("dpia_status", DpiaStatus::parse)?,
        dpia_reference: c.opt("dpia_reference")?,
        dpia_review_due: c.parse_opt("dpia_review_due", date)?,
        architecture_checklist: c.parse("architecture_checklist", ChecklistStatus::parse)?,
    })
}

pub(crate) fn data_item(row: &AnyRow) -> Result<DataItem, StoreError> {
    let c = Cols::new(row, "data_items", "id")?;
    Ok(DataItem {
        id: c.parse("id", DataItemId::parse)?,
        name: c.text("name")?,
        description: c.opt("description")?,
        classification: c.parse("classification", Classification::parse)?,
        personal_data: c.bool("personal_data")?,
        special_category: c.bool("special_category")?,
        authoritative_system: c.parse_opt("authoritative_system", SystemId::parse)?,
    })
}

/// A flow without its data items, which come from their own table.
pub(crate) fn flow(row: &AnyRow) -> Result<Flow, StoreError> {
    let c = Cols::new(row, "flows", "id")?;
    Ok(Flow {
        id: c.parse("id", FlowId::parse)?,
        source: c.parse("source", SystemId::parse)?,
        target: c.parse("target", SystemId::parse)?,
        data_items: BTreeSet::new(),
        method: c.parse("method", FlowMethod::parse)?,
        frequency: c.opt("frequency")?,
        status: c.parse("status", FlowStatus::parse)?,
        request: c.opt("request")?,
        established_on: c.parse_opt("established_on", date)?,
    })
}

/// The whole register. A SQLite file's flows are read on a connection of their own
/// (`sqlite_fast`); the audit head's sequence number tells whether both reads saw the same state,
/// and a write in between (rare) means reading again.
pub(crate) async fn load_register(
    pool: &AnyPool,
    sqlite_file: Option<&std::path::Path>,
) -> Result<Register, StoreError> {
    if let Some(path) = sqlite_file {
        for _ in 0..5 {
            let snapshot = load_once(pool, NonFlows::Only).await?;
            let base = register_of(snapshot.records)?;
            let path = path.to_owned();
            let (seen, register) =
                tokio::task::spawn_blocking(move || crate::sqlite_fast::add_flows(&path, base))
                    .await
                    .map_err(|e| StoreError::Refused {
                        kind: "register",
                        id: String::new(),
                        message: format!("the flow loader stopped: {e}"),
                    })??;
            if seen == snapshot.seq {
                return Ok(register);
            }
        }
    }
    register_of(load_once(pool, NonFlows::AndFlows).await?.records)
}

fn register_of(records: Vec<Record>) -> Result<Register, StoreError> {
    Register::from_records(records).map_err(|e| StoreError::Refused {
        kind: "register",
        id: e.id.clone(),
        message: e.to_string(),
    })
}

/// Whether a load reads the flows too, or leaves them to the SQLite fast path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NonFlows {
    Only,
    AndFlows,
}

/// Records read in one snapshot, and the audit head's sequence number of that snapshot.
#[derive(Debug, Default)]
struct Snapshot {
    seq: i64,
    records: Vec<Record>,
}

/// Every record (or all but the flows) in dependency order, from one consistent snapshot.
async fn load_once(pool: &AnyPool, what: NonFlows) -> Result<Snapshot, StoreError> {
    let mut tx = pool.begin().await?;
    if tx.backend_name() == "PostgreSQL" {
        // One snapshot for all four tables, as SQLite's read transaction gives by itself.
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .execute(&mut *tx)
            .await?;
    }
    let seq: i64 = sqlx::query("SELECT seq FROM audit_head WHERE id = 1")
        .fetch_one(&mut *tx)
        .await?
        .try_get("seq")?;
    let mut out = Vec::new();
    for row in sqlx::query("SELECT * FROM people")
        .fetch_all(&mut *tx)
        .await?
    {
        out.push(Record::Person(person(&row)?));
    }
    for row in sqlx::query("SELECT * FROM systems")
        .fetch_all(&mut *tx)
        .await?
    {
        out.push(Record::System(system(&row)?));
    }
    for row in sqlx::query("SELECT * FROM data_items")
        .fetch_all(&mut *tx)
        .await?
    {
        out.push(Record::DataItem(data_item(&row)?));
    }
    if what == NonFlows::Only {
        tx.commit().await?;
        return Ok(Snapshot { seq, records: out });
    }
    // One row per flow, its data items aggregated by the database. (SQLite files take the
    // fast path above; this serves PostgreSQL, and SQLite without a file.) The only SQL here that
    // differs by backend: the name of the string aggregate.
    let sql = if tx.backend_name() == "PostgreSQL" {
        FLOWS_POSTGRES
    } else {
        FLOWS_SQLITE
    };
    let mut rows = sqlx::query(sql).fetch(&mut *tx);
    while let Some(row) = rows.try_next().await? {
        let items: Option<String> = row.try_get("data_items")?;
        let r: FlowRow = (
            row.try_get("id")?,
            row.try_get("source")?,
            row.try_get("target")?,
            row.try_get("method")?,
            row.try_get("frequency")?,
            row.try_get("status")?,
            row.try_get("request")?,
            row.try_get("established_on")?,
            items.map(|i| {
                i.split(';')
                    .filter(|d| !d.is_empty())
                    .map(str::to_owned)
                    .collect()
            }),
        );
        out.push(Record::Flow(flow_of_row(r)?));
    }
    drop(rows);
    tx.commit().await?;
    Ok(Snapshot { seq, records: out })
}

/// The flows with their data items `;`-joined (grouping by the primary key lets the other
/// columns be selected as they are).
macro_rules! flows_query {
    ($aggregate:literal) => {
        concat!(
            "SELECT f.id, f.source, f.target, f.method, f.frequency, f.status, f.request, f.established_on, ",
            $aggregate,
            "(i.data_item_id, ';') AS data_items \
             FROM flows f LEFT JOIN flow_data_items i ON i.flow_id = f.id GROUP BY f.id"
        )
    };
}

const FLOWS_POSTGRES: &str = flows_query!("string_agg");
const FLOWS_SQLITE: &str = flows_query!("group_concat");

/// A flow as the bulk load reads it: the `flows` columns in order, then its data items.
pub(crate) type FlowRow = (
    String,
    String,
    String,
    String,
    Option<String>,
    String,
    Option<String>,
    Option<String>,
    Option<Vec<String>>,
);

pub(crate) fn flow_of_row(r: FlowRow) -> Result<Flow, StoreError> {
    let (id, source, target, method, frequency, status, request, established_on, items) = r;
    let corrupt = |field: &'static str, message: String| StoreError::Corrupt {
        table: "flows",
        id: id.clone(),
        field,
        message,
    };
    let data_items = items
        .unwrap_or_default()
        .into_iter()
        .map(DataItemId::try_from)
        .collect::<Result<_, _>>()
        .map_err(|e| corrupt("data_items", e.to_string()))?;
    Ok(Flow {
        source: SystemId::try_from(source).map_err(|e| corrupt("source", e.to_string()))?,
        target: SystemId::try_from(target).map_err(|e| corrupt("target", e.to_string()))?,
        data_items,
        method: FlowMethod::parse(&method).map_err(|e| corrupt("method", e.to_string()))?,
        frequency,
        status: FlowStatus::parse(&status).map_err(|e| corrupt("status", e.to_string()))?,
        request,
        established_on: established_on
            .map(|d| date(&d))
            .transpose()
            .map_err(|e| corrupt("established_on", e))?,
        id: FlowId::try_from(id.clone()).map_err(|e| corrupt("id", e.to_string()))?,
    })
}

pub(crate) fn event(row: &AnyRow) -> Result<StoredEvent, StoreError> {
    let seq: i64 = row.try_get("seq")?;
    let corrupt = |field: &'static str, message: String| StoreError::Corrupt {
        table: "audit_events",
        id: seq.to_string(),
        field,
        message,
    };
    let at: String = row.try_get("at")?;
    let payload: String = row.try_get("payload")?;
    let hash = |field: &'static str| -> Result<Hash, StoreError> {
        let v: String = row.try_get(field)?;
        Hash::from_hex(&v).ok_or_else(|| corrupt(field, format!("'{v}' is not a SHA-256 hash")))
    };
    Ok(StoredEvent {
        event: Event {
            seq,
            at: parse_time(&at).ok_or_else(|| corrupt("at", format!("'{at}' is not a time")))?,
            actor: row.try_get("actor")?,
            kind: row.try_get("kind")?,
            payload: serde_json::from_str(&payload)
                .map_err(|e| corrupt("payload", format!("not valid JSON: {e}")))?,
        },
        prev_hash: hash("prev_hash")?,
        hash: hash("hash")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The SQLite fast path and the portable query read the same register: enough flows that
    /// the fast path's batches break several times, some flows carrying nothing.
    #[tokio::test]
    async fn both_ways_of_reading_flows_agree() {
        let dir = std::env::temp_dir().join(format!("flowgate-decode-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join("t.db");
        let store = crate::Store::open(&format!("sqlite://{}", file.display()))
            .await
            .expect("open");
        let mut reg = flowgate_core::register::Register::new();
        let email = flowgate_core::Email::parse("iao@uni.example").expect("email");
        let sys = |id: &str| {
            Record::System(flowgate_core::register::System {
                id: SystemId::parse(id).expect("id"),
                name: id.into(),
                description: None,
                kind: SystemKind::Application,
                external: false,
                organisation: None,
                status: SystemStatus::Active,
                owner: Some(email.clone()),
                administrators: Default::default(),
                dpia_status: DpiaStatus::Approved,
                dpia_reference: None,
                dpia_review_due: None,
                architecture_checklist: ChecklistStatus::Approved,
            })
        };
        let mut records = vec![
            Record::Person(Person {
                email: email.clone(),
                name: "I".into(),
                kind: PersonKind::Staff,
                authorised_until: None,
                roles: Default::default(),
            }),
            sys("a"),
            sys("b"),
        ];
        for i in 0..3 {
            records.push(Record::DataItem(DataItem {
                id: DataItemId::parse(&format!("d{i}")).expect("id"),
                name: "D".into(),
                description: None,
                classification: Classification::Internal,
                personal_data: false,
                special_category: false,
                authoritative_system: None,
            }));
        }
        const FLOWS: u32 = 20_000;
        for i in 0..FLOWS {
            records.push(Record::Flow(Flow {
                id: FlowId::parse(&format!("f{i}")).expect("id"),
                source: SystemId::parse("a").expect("id"),
                target: SystemId::parse("b").expect("id"),
                data_items: (0..(i % 4))
                    .map(|d| DataItemId::parse(&format!("d{d}")).expect("id"))
                    .collect(),
                method: FlowMethod::Api,
                frequency: (i % 2 == 0).then(|| "daily".into()),
                status: if i % 5 == 0 {
                    FlowStatus::Retired
                } else {
                    FlowStatus::Active
                },
                request: None,
                established_on: NaiveDate::from_ymd_opt(2024, 1, 1 + (i % 28)),
            }));
        }
        let ctx = crate::ChangeContext {
            actor: "t",
            now: chrono::Utc::now(),
            summary: None,
        };
        store
            .apply(&mut reg, records, &ctx, &mut |_| {})
            .await
            .expect("apply");
        let fast = load_register(store.pool(), Some(&file))
            .await
            .expect("fast");
        let portable = load_register(store.pool(), None).await.expect("portable");
        assert_eq!(fast.first_difference(&portable), None);
        assert_eq!(
            fast.len(flowgate_core::register::RecordKind::Flow),
            FLOWS as usize
        );
        let carrying_d0 = (0..FLOWS).filter(|i| i % 4 != 0 && i % 5 != 0).count();
        assert_eq!(
            fast.active_flows_carrying_into("b", "d0").count(),
            carrying_d0
        );
        assert_eq!(fast.flow("f4").map(|f| f.data_items().count()), Some(0));
        store.close().await;
        let _ = std::fs::remove_dir_all(&dir);
    }
}
