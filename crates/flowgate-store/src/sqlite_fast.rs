//! The register's flows read straight from the SQLite file, for loading a large register fast.
//!
//! sqlx's SQLite driver hands each row from a worker thread to the async task through a channel,
//! about 10 µs a row; a million flows and their 1.5 million item rows then take tens of seconds.
//! Here rusqlite steps the same statements in this thread (the same SQLite library that sqlx
//! links), a fraction of a microsecond a row. Reads only; every write still goes through
//! `Store::apply`.

use std::path::Path;

use flowgate_core::register::Flow;
use rusqlite::{Connection, OpenFlags};

use crate::StoreError;
use crate::decode::{FlowRow, flow_of_row};

fn db(e: rusqlite::Error) -> StoreError {
    StoreError::Refused {
        kind: "database",
        id: String::new(),
        message: e.to_string(),
    }
}

/// Every flow with its data items, and the audit head's sequence number of the state they come
/// from, in one read transaction.
pub(crate) fn flows(path: &Path) -> Result<(i64, Vec<Flow>), StoreError> {
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
    let count: i64 = conn
        .query_row("SELECT count(*) FROM flows", [], |r| r.get(0))
        .map_err(db)?;
    let mut out = Vec::with_capacity(count.max(0) as usize);
    {
        // Both in byte order (SQLite's BINARY collation), merged as they are read.
        let mut items = conn
            .prepare(
                "SELECT flow_id, data_item_id FROM flow_data_items ORDER BY flow_id, data_item_id",
            )
            .map_err(db)?;
        let mut items = items.query([]).map_err(db)?;
        let next_item =
            |rows: &mut rusqlite::Rows<'_>| -> Result<Option<(String, String)>, StoreError> {
                Ok(match rows.next().map_err(db)? {
                    Some(r) => Some((r.get(0).map_err(db)?, r.get(1).map_err(db)?)),
                    None => None,
                })
            };
        let mut pending = next_item(&mut items)?;
        let mut stmt = conn
            .prepare("SELECT id, source, target, method, frequency, status, request, established_on FROM flows ORDER BY id")
            .map_err(db)?;
        let mut rows = stmt.query([]).map_err(db)?;
        while let Some(r) = rows.next().map_err(db)? {
            let id: String = r.get(0).map_err(db)?;
            let mut flow_items = Vec::new();
            while let Some((f, _)) = &pending {
                match f.as_str().cmp(id.as_str()) {
                    std::cmp::Ordering::Less => pending = next_item(&mut items)?,
                    std::cmp::Ordering::Equal => {
                        if let Some((_, item)) = pending.take() {
                            flow_items.push(item);
                        }
                        pending = next_item(&mut items)?;
                    }
                    std::cmp::Ordering::Greater => break,
                }
            }
            let row: FlowRow = (
                id,
                r.get(1).map_err(db)?,
                r.get(2).map_err(db)?,
                r.get(3).map_err(db)?,
                r.get(4).map_err(db)?,
                r.get(5).map_err(db)?,
                r.get(6).map_err(db)?,
                r.get(7).map_err(db)?,
                Some(flow_items),
            );
            out.push(flow_of_row(row)?);
        }
    }
    conn.execute_batch("COMMIT").map_err(db)?;
    Ok((seq, out))
}
