//! The register's flows read straight from the SQLite file into the index, for loading a large
//! register fast.
//!
//! sqlx's SQLite driver hands each row from a worker thread to the async task through a channel,
//! about 10 µs a row; a million flows and their 1.5 million item rows then take tens of seconds.
//! Here rusqlite steps the same statements (the same SQLite library that sqlx links), a fraction
//! of a microsecond a row, on threads of their own that also resolve each flow's ids to index
//! positions; the caller's thread builds the index from the resolved batches meanwhile, so the
//! load uses every core it is given. Reads only; every write still goes through `Store::apply`.

use std::path::Path;
use std::sync::mpsc;

use chrono::NaiveDate;
use flowgate_core::register::{
    FlowBatch, FlowFields, FlowMethod, FlowStatus, ItemRuns, LoadError, Register, Resolver,
};
use rusqlite::{Connection, OpenFlags};

use crate::StoreError;

/// Flows per batch: large enough that the channel costs nothing per flow, small enough that
/// both threads start at once.
const BATCH: usize = 8192;

fn db(e: rusqlite::Error) -> StoreError {
    StoreError::Refused {
        kind: "database",
        id: String::new(),
        message: e.to_string(),
    }
}

fn corrupt(e: LoadError) -> StoreError {
    StoreError::Corrupt {
        table: "flows",
        id: e.id,
        field: e.field,
        message: e.message,
    }
}

/// Adds every flow of the file to `register` (which holds the people, systems and data items),
/// returning it with the audit head's sequence number of the state the flows come from.
///
/// Three threads share the work: one steps the flows' data items, one steps the flows (merging
/// in the items), and this one builds the index. The two readers have a connection and a read
/// transaction each; every write moves the audit head, so equal sequence numbers mean both saw
/// the same state. When they differ (a write landed between the two `BEGIN`s) the result says
/// `-1`, which no state has, and the caller reads again.
pub(crate) fn add_flows(
    path: &Path,
    mut register: Register,
) -> Result<(i64, Register), StoreError> {
    let flows_conn = open(path)?;
    let items_conn = open(path)?;
    let seq = head_seq(&flows_conn)?;
    let items_seq = head_seq(&items_conn)?;
    let count: i64 = flows_conn
        .query_row("SELECT count(*) FROM flows", [], |r| r.get(0))
        .map_err(db)?;
    register.reserve_flows(usize::try_from(count).unwrap_or(0));

    let resolver = std::sync::Arc::new(register.resolver());
    // A few batches in flight on each channel: the readers run ahead while the index catches up.
    let (items_tx, items_rx) = mpsc::sync_channel::<ItemRuns>(4);
    let (flows_tx, flows_rx) = mpsc::sync_channel::<FlowBatch>(4);
    let items_reader = spawn("flowgate-item-reader", {
        let resolver = resolver.clone();
        move || finish(&items_conn, read_items(&items_conn, &resolver, &items_tx))
    })?;
    let flows_reader = spawn("flowgate-flow-reader", move || {
        finish(
            &flows_conn,
            read_flows(&flows_conn, &resolver, items_rx, &flows_tx),
        )
    })?;
    for batch in flows_rx {
        register.load_batch(&batch);
    }
    for reader in [flows_reader, items_reader] {
        reader.join().map_err(|_| StoreError::Refused {
            kind: "register",
            id: String::new(),
            message: "a flow reader stopped unexpectedly".into(),
        })??;
    }
    register.finish_load();
    Ok((if seq == items_seq { seq } else { -1 }, register))
}

fn open(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(db)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(db)?;
    // Pages read through a memory map rather than copied into SQLite's cache one `read` at a
    // time: a large register is read once, start to end.
    conn.execute_batch("PRAGMA mmap_size = 17179869184")
        .map_err(db)?;
    Ok(conn)
}

/// Begins a read transaction; its first read, of the audit head, fixes what it sees.
fn head_seq(conn: &Connection) -> Result<i64, StoreError> {
    conn.execute_batch("BEGIN").map_err(db)?;
    conn.query_row("SELECT seq FROM audit_head WHERE id = 1", [], |r| r.get(0))
        .map_err(db)
}

fn finish(conn: &Connection, result: Result<(), StoreError>) -> Result<(), StoreError> {
    conn.execute_batch("COMMIT").map_err(db)?;
    result
}

fn spawn(
    name: &str,
    f: impl FnOnce() -> Result<(), StoreError> + Send + 'static,
) -> Result<std::thread::JoinHandle<Result<(), StoreError>>, StoreError> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(f)
        .map_err(|e| StoreError::Refused {
            kind: "register",
            id: String::new(),
            message: format!("could not start {name}: {e}"),
        })
}

/// Steps every flow's data items in flow id order (SQLite's BINARY collation), resolved, in
/// batches of runs.
fn read_items(
    conn: &Connection,
    resolver: &Resolver,
    tx: &mpsc::SyncSender<ItemRuns>,
) -> Result<(), StoreError> {
    let mut stmt = conn
        .prepare("SELECT flow_id, data_item_id FROM flow_data_items ORDER BY flow_id, data_item_id")
        .map_err(db)?;
    let mut rows = stmt.query([]).map_err(db)?;
    let mut runs = ItemRuns::default();
    while let Some(r) = rows.next().map_err(db)? {
        let flow = str_at(r, 0)?.unwrap_or_default();
        // A batch ends between flows, never inside one.
        if runs.len() >= BATCH && runs.flow(runs.len() - 1) != flow {
            // The receiver stops early only when the flow reader has failed; it reports.
            if tx.send(std::mem::take(&mut runs)).is_err() {
                return Ok(());
            }
        }
        runs.push(resolver, flow, str_at(r, 1)?.unwrap_or_default())
            .map_err(corrupt)?;
    }
    if !runs.is_empty() {
        let _ = tx.send(runs);
    }
    Ok(())
}

/// Steps the flows in id order, merging in their items' runs as they arrive, and sends them on
/// in resolved batches.
fn read_flows(
    conn: &Connection,
    resolver: &Resolver,
    items: mpsc::Receiver<ItemRuns>,
    tx: &mpsc::SyncSender<FlowBatch>,
) -> Result<(), StoreError> {
    let mut items = items.into_iter();
    let mut runs = items.next().unwrap_or_default();
    let mut next_run = 0;
    let mut stmt = conn
        .prepare("SELECT id, source, target, method, frequency, status, request, established_on FROM flows ORDER BY id")
        .map_err(db)?;
    let mut rows = stmt.query([]).map_err(db)?;
    let mut batch = FlowBatch::default();
    while let Some(r) = rows.next().map_err(db)? {
        let id = str_at(r, 0)?.unwrap_or_default();
        let bad = |field: &'static str, message: String| StoreError::Corrupt {
            table: "flows",
            id: id.to_owned(),
            field,
            message,
        };
        loop {
            if next_run == runs.len() {
                match items.next() {
                    Some(more) => (runs, next_run) = (more, 0),
                    None => break,
                }
            }
            match runs.flow(next_run).cmp(id) {
                // Items of a flow that is not there: the foreign key forbids it; skip.
                std::cmp::Ordering::Less => next_run += 1,
                std::cmp::Ordering::Equal => {
                    batch.take_items(&runs, next_run);
                    next_run += 1;
                    break;
                }
                std::cmp::Ordering::Greater => break,
            }
        }
        let established_on = str_at(r, 7)?
            .map(|d| {
                parse_date(d).ok_or_else(|| bad("established_on", format!("'{d}' is not a date")))
            })
            .transpose()?;
        let fields = FlowFields {
            id,
            source: str_at(r, 1)?.unwrap_or_default(),
            target: str_at(r, 2)?.unwrap_or_default(),
            method: FlowMethod::parse(str_at(r, 3)?.unwrap_or_default())
                .map_err(|e| bad("method", e.to_string()))?,
            frequency: str_at(r, 4)?,
            status: FlowStatus::parse(str_at(r, 5)?.unwrap_or_default())
                .map_err(|e| bad("status", e.to_string()))?,
            request: str_at(r, 6)?,
            established_on,
        };
        batch.push_flow(resolver, fields).map_err(corrupt)?;
        if batch.len() == BATCH {
            // The receiver stops early only when the loading thread has failed; it reports.
            if tx.send(std::mem::take(&mut batch)).is_err() {
                return Ok(());
            }
        }
    }
    if !batch.is_empty() {
        let _ = tx.send(batch);
    }
    Ok(())
}

/// Column `i` of a row as text, `None` for NULL.
fn str_at<'r>(r: &'r rusqlite::Row<'_>, i: usize) -> Result<Option<&'r str>, StoreError> {
    r.get_ref(i)
        .map_err(db)?
        .as_str_or_null()
        .map_err(|e| db(e.into()))
}

/// A stored date, `YYYY-MM-DD`: read digit by digit (a million of them), falling back to
/// chrono for anything else.
fn parse_date(s: &str) -> Option<NaiveDate> {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| -> Option<u32> {
        b[r].iter().try_fold(0u32, |n, &c| {
            c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
        })
    };
    if b.len() == 10 && b[4] == b'-' && b[7] == b'-' {
        let y = i32::try_from(digits(0..4)?).ok()?;
        return NaiveDate::from_ymd_opt(y, digits(5..7)?, digits(8..10)?);
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::parse_date;

    #[test]
    fn dates_read_as_chrono_reads_them() {
        for s in [
            "2026-12-04",
            "1999-01-31",
            "2024-02-29",
            "2023-02-29",
            "2026-13-01",
            "26-1-1",
            "2026-1x-01",
            "",
        ] {
            assert_eq!(parse_date(s), s.parse().ok(), "{s}");
        }
    }
}
