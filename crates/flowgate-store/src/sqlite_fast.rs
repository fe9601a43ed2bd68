//! The register's flows read straight from the SQLite file into the index, for loading a large
//! register fast.
//!
//! sqlx's SQLite driver hands each row from a worker thread to the async task through a channel,
//! about 10 µs a row; a million flows and their 1.5 million item rows then take tens of seconds.
//! Here rusqlite steps the same statements in this thread (the same SQLite library that sqlx
//! links), a fraction of a microsecond a row, and each flow goes into the index by reference,
//! without an intermediate record. Reads only; every write still goes through `Store::apply`.

use std::path::Path;

use chrono::NaiveDate;
use flowgate_core::register::{FlowFields, FlowMethod, FlowStatus, Register};
use rusqlite::{Connection, OpenFlags};

use crate::StoreError;

fn db(e: rusqlite::Error) -> StoreError {
    StoreError::Refused {
        kind: "database",
        id: String::new(),
        message: e.to_string(),
    }
}

/// Adds every flow of the file to `register` (which holds the people, systems and data items),
/// returning it with the audit head's sequence number of the state the flows come from, all
/// read in one transaction.
pub(crate) fn add_flows(
    path: &Path,
    mut register: Register,
) -> Result<(i64, Register), StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(db)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(db)?;
    conn.execute_batch("BEGIN").map_err(db)?;
    let seq: i64 = conn
        .query_row("SELECT seq FROM audit_head WHERE id = 1", [], |r| r.get(0))
        .map_err(db)?;
    {
        // Both in byte order (SQLite's BINARY collation), merged as they are read.
        let mut items_stmt = conn
            .prepare(
                "SELECT flow_id, data_item_id FROM flow_data_items ORDER BY flow_id, data_item_id",
            )
            .map_err(db)?;
        let mut items = items_stmt.query([]).map_err(db)?;
        // The item row read ahead: its flow id and item id, in buffers reused row after row.
        let (mut item_flow, mut item_id) = (String::new(), String::new());
        let advance = |rows: &mut rusqlite::Rows<'_>,
                       flow: &mut String,
                       item: &mut String|
         -> Result<bool, StoreError> {
            Ok(match rows.next().map_err(db)? {
                Some(r) => {
                    flow.clear();
                    flow.push_str(
                        r.get_ref(0)
                            .map_err(db)?
                            .as_str()
                            .map_err(|e| db(e.into()))?,
                    );
                    item.clear();
                    item.push_str(
                        r.get_ref(1)
                            .map_err(db)?
                            .as_str()
                            .map_err(|e| db(e.into()))?,
                    );
                    true
                }
                None => false,
            })
        };
        let mut have_item = advance(&mut items, &mut item_flow, &mut item_id)?;
        let mut stmt = conn
            .prepare("SELECT id, source, target, method, frequency, status, request, established_on FROM flows ORDER BY id")
            .map_err(db)?;
        let mut rows = stmt.query([]).map_err(db)?;
        let mut flow_items: Vec<String> = Vec::new();
        let mut positions = Vec::new();
        while let Some(r) = rows.next().map_err(db)? {
            let text = |i: usize| -> Result<Option<&str>, StoreError> {
                r.get_ref(i)
                    .map_err(db)?
                    .as_str_or_null()
                    .map_err(|e| db(e.into()))
            };
            let id = text(0)?.unwrap_or_default();
            let corrupt = |field: &'static str, message: String| StoreError::Corrupt {
                table: "flows",
                id: id.to_owned(),
                field,
                message,
            };
            flow_items.clear();
            while have_item {
                match item_flow.as_str().cmp(id) {
                    std::cmp::Ordering::Less => {}
                    std::cmp::Ordering::Equal => flow_items.push(item_id.clone()),
                    std::cmp::Ordering::Greater => break,
                }
                have_item = advance(&mut items, &mut item_flow, &mut item_id)?;
            }
            let established_on = text(7)?
                .map(|d| {
                    d.parse::<NaiveDate>()
                        .map_err(|_| corrupt("established_on", format!("'{d}' is not a date")))
                })
                .transpose()?;
            let fields = FlowFields {
                id,
                source: text(1)?.unwrap_or_default(),
                target: text(2)?.unwrap_or_default(),
                data_items: &flow_items,
                method: FlowMethod::parse(text(3)?.unwrap_or_default())
                    .map_err(|e| corrupt("method", e.to_string()))?,
                frequency: text(4)?,
                status: FlowStatus::parse(text(5)?.unwrap_or_default())
                    .map_err(|e| corrupt("status", e.to_string()))?,
                request: text(6)?,
                established_on,
            };
            register
                .load_flow(fields, &mut positions)
                .map_err(|e| StoreError::Corrupt {
                    table: "flows",
                    id: e.id,
                    field: e.field,
                    message: e.message,
                })?;
        }
    }
    conn.execute_batch("COMMIT").map_err(db)?;
    register.finish_load();
    Ok((seq, register))
}
