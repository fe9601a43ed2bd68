//! Flowgate's persistence: one [`Store`] over SQLite and PostgreSQL, chosen by the database URL's
//! scheme, with migrations per backend applied when the database is opened.
//!
//! The database is for durability; questions are answered from the in-memory
//! [`Register`](flowgate_core::register::Register) that [`Store::load_register`] builds. Every
//! change goes through [`Store::apply`], which appends one audit event per changed record in the
//! same transaction as the change to the tables: there is no write path that skips the log.
//!
//! One SQL text serves both backends through sqlx's `Any` driver (`$n` placeholders, `ON
//! CONFLICT`, `RETURNING`); dates and times are ISO text in both, so no value needs a per-backend
//! type.

mod baseline;
mod chain;
mod decode;
mod notices;
mod outbox;
mod requests;
mod secret;
mod sessions;
mod sql;
mod sqlite_fast;
mod tokens;
mod verify;

#[cfg(feature = "testing")]
pub mod testing;

use std::str::FromStr;

use chrono::{DateTime, Utc};
use flowgate_core::audit::{self, StoredEvent};

use crate::chain::Chain;
pub use crate::notices::NoticeFilter;
pub use crate::outbox::{
    Channel, MAX_ATTEMPTS, OutboxCounts, OutboxMessage, Webhook, WebhookFor, backoff,
};
pub use crate::requests::{RequestFilter, WorkflowError};
pub use crate::sessions::Session;
pub use crate::tokens::TokenInfo;
use flowgate_core::register::{Record, RecordKind, Register};
use serde_json::Value;
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Executor, Row};

pub use verify::{Mismatch, Verification, VerificationFailure};

/// Which database a store is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The backend a URL names by its scheme.
    pub fn of_url(url: &str) -> Result<Backend, StoreError> {
        let scheme = url.split(':').next().unwrap_or_default();
        match scheme {
            "sqlite" => Ok(Backend::Sqlite),
            "postgres" | "postgresql" => Ok(Backend::Postgres),
            _ => Err(StoreError::Url(format!(
                "'{}' is not a database URL Flowgate knows (use sqlite://PATH or postgres://...)",
                redact(url)
            ))),
        }
    }
}

/// Where notification links point until the server says otherwise.
pub const DEFAULT_PUBLIC_URL: &str = "http://127.0.0.1:8080";

/// The default database: `flowgate.db` in the working directory.
pub const DEFAULT_URL: &str = "sqlite://flowgate.db";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0}")]
    Url(String),
    #[error("cannot open the database at {url}: {source}")]
    Open { url: String, source: sqlx::Error },
    #[error("cannot migrate the database: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A row that does not decode into a record: the database was changed behind Flowgate's back.
    #[error("table {table}, row '{id}': {field}: {message}")]
    Corrupt {
        table: &'static str,
        id: String,
        field: &'static str,
        message: String,
    },
    /// The register refused a change (a reference to a record that is not there).
    #[error("{kind} '{id}': {message}")]
    Refused {
        kind: &'static str,
        id: String,
        message: String,
    },
}

/// Hides a password in a URL before it is shown.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_owned(),
    }
}

/// What one call of [`Store::apply`] did, per kind of record (indexed as [`RecordKind::ALL`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    pub added: [usize; 4],
    pub updated: [usize; 4],
    pub unchanged: [usize; 4],
    /// The sequence numbers of the events appended, if any were.
    pub events: Option<(i64, i64)>,
}

impl Applied {
    pub fn changed(&self) -> usize {
        self.added.iter().sum::<usize>() + self.updated.iter().sum::<usize>()
    }

    /// "added 3 systems, 12 flows; updated 1 person; 40 unchanged".
    pub fn summary(&self) -> String {
        fn list(counts: &[usize; 4]) -> String {
            RecordKind::ALL
                .iter()
                .zip(counts)
                .filter(|(_, n)| **n > 0)
                .map(|(k, n)| format!("{n} {}", plural(*k, *n)))
                .collect::<Vec<_>>()
                .join(", ")
        }
        let mut parts = Vec::new();
        if self.added.iter().any(|&n| n > 0) {
            parts.push(format!("added {}", list(&self.added)));
        }
        if self.updated.iter().any(|&n| n > 0) {
            parts.push(format!("updated {}", list(&self.updated)));
        }
        let unchanged: usize = self.unchanged.iter().sum();
        if unchanged > 0 {
            parts.push(format!("{unchanged} unchanged"));
        }
        if parts.is_empty() {
            "nothing to change".to_owned()
        } else {
            parts.join("; ")
        }
    }

    /// The counts as JSON, for the import's summary event.
    pub fn to_json(&self) -> Value {
        let obj = |counts: &[usize; 4]| {
            Value::Object(
                RecordKind::ALL
                    .iter()
                    .zip(counts)
                    .map(|(k, n)| (k.table().to_owned(), Value::from(*n)))
                    .collect(),
            )
        };
        serde_json::json!({"added": obj(&self.added), "updated": obj(&self.updated), "unchanged": obj(&self.unchanged)})
    }
}

/// "person"/"people", "system"/"systems", ...
pub fn plural(kind: RecordKind, n: usize) -> &'static str {
    match (kind, n == 1) {
        (RecordKind::Person, true) => "person",
        (RecordKind::Person, false) => "people",
        (RecordKind::System, true) => "system",
        (RecordKind::System, false) => "systems",
        (RecordKind::DataItem, true) => "data item",
        (RecordKind::DataItem, false) => "data items",
        (RecordKind::Flow, true) => "flow",
        (RecordKind::Flow, false) => "flows",
    }
}

/// Who made a change, when, and a note for the log (e.g. the file an import came from).
#[derive(Debug, Clone)]
pub struct ChangeContext<'a> {
    pub actor: &'a str,
    pub now: DateTime<Utc>,
    /// When set, a summary event of this kind and payload follows the records' events (an import
    /// says what it imported from where).
    pub summary: Option<(&'a str, Value)>,
}

/// The register's durable home.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// The SQLite database file, for the fast read of a large register (`sqlite_fast`).
    sqlite_file: Option<std::path::PathBuf>,
    /// SQLite has one writer at a time, and a second one waits in its busy handler, which sleeps
    /// (up to 100 ms a time) rather than queueing: under load most of a write's time went there.
    /// Writers of this process take their turn here instead, in order. (PostgreSQL queues on the
    /// audit head's row lock, which wakes the next writer at once.)
    writers: std::sync::Arc<tokio::sync::Mutex<()>>,
    /// Raised requests, on their way to the group commit (`requests::raise_writer`). The
    /// writer's own copy of the store has none, so it stops when the last other copy is gone.
    raises: Option<tokio::sync::mpsc::UnboundedSender<requests::RaiseJob>>,
    /// Woken when messages are queued in the outbox.
    outbox_signal: std::sync::Arc<tokio::sync::Notify>,
    /// Where the links in notifications point: the server's address as its users reach it.
    public_url: std::sync::Arc<std::sync::RwLock<String>>,
}

impl Backend {
    /// How many records one INSERT carries. PostgreSQL: large, to amortise the round trip, and
    /// under its 65,535 bound parameters. SQLite: small, because binding `$n` parameters costs
    /// time proportional to the number in the statement (`sqlite3_bind_parameter_name` walks a
    /// list), so a 4,500-parameter statement spends most of an import binding; there is no
    /// round trip to amortise.
    pub(crate) fn rows_per_statement(self) -> usize {
        match self {
            Backend::Sqlite => 32,
            Backend::Postgres => 500,
        }
    }
}

impl Store {
    /// Opens (creating, for SQLite, when missing) the database at `url` and brings its schema up to
    /// date.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        install_default_drivers();
        let backend = Backend::of_url(url)?;
        let mut url = url.to_owned();
        if backend == Backend::Sqlite && !url.contains("mode=") {
            url.push_str(if url.contains('?') {
                "&mode=rwc"
            } else {
                "?mode=rwc"
            });
        }
        let options = AnyPoolOptions::new().max_connections(match backend {
            // Readers share the file; writers queue on the audit head (see the migration).
            Backend::Sqlite => 4,
            Backend::Postgres => 8,
        });
        let options = if backend == Backend::Sqlite {
            options.after_connect(|conn, _meta| {
                Box::pin(async move {
                    // WAL lets readers go on while an import writes; the busy timeout makes a
                    // second writer wait its turn instead of failing at once.
                    conn.execute("PRAGMA journal_mode = WAL").await?;
                    conn.execute("PRAGMA busy_timeout = 10000").await?;
                    conn.execute("PRAGMA foreign_keys = ON").await?;
                    Ok(())
                })
            })
        } else {
            options
        };
        let pool = options
            .connect(&url)
            .await
            .map_err(|source| StoreError::Open {
                url: redact(&url),
                source,
            })?;
        match backend {
            Backend::Sqlite => sqlx::migrate!("./migrations/sqlite").run(&pool).await?,
            Backend::Postgres => sqlx::migrate!("./migrations/postgres").run(&pool).await?,
        }
        let sqlite_file = match backend {
            Backend::Sqlite => sqlx::sqlite::SqliteConnectOptions::from_str(&url)
                .ok()
                .map(|o| o.get_filename().to_owned())
                .filter(|p| p.exists()),
            Backend::Postgres => None,
        };
        let mut store = Store {
            pool,
            backend,
            sqlite_file,
            writers: Default::default(),
            raises: None,
            outbox_signal: Default::default(),
            public_url: std::sync::Arc::new(std::sync::RwLock::new(DEFAULT_PUBLIC_URL.to_owned())),
        };
        let (queue, jobs) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(requests::raise_writer(store.clone(), jobs));
        store.raises = Some(queue);
        Ok(store)
    }

    /// Begins a writing transaction with the audit chain's head taken: this process's turn to
    /// write (SQLite), the transaction, and the chain to append to.
    pub(crate) async fn begin_write(
        &self,
    ) -> Result<
        (
            Option<tokio::sync::OwnedMutexGuard<()>>,
            sqlx::Transaction<'static, sqlx::Any>,
            Chain,
        ),
        StoreError,
    > {
        let turn = match self.backend {
            Backend::Sqlite => Some(self.writers.clone().lock_owned().await),
            Backend::Postgres => None,
        };
        let mut tx = self.pool.begin().await?;
        let chain = Chain::lock(&mut tx).await?;
        Ok((turn, tx, chain))
    }

    /// Sets the address the links in notifications start with (`https://flowgate.uni.example`).
    pub fn set_public_url(&self, url: &str) {
        if let Ok(mut u) = self.public_url.write() {
            *u = url.trim_end_matches('/').to_owned();
        }
    }

    pub fn public_url(&self) -> String {
        self.public_url
            .read()
            .map(|u| u.clone())
            .unwrap_or_else(|_| DEFAULT_PUBLIC_URL.to_owned())
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The pool, for the server's readiness check and for benchmarks that compare with SQL.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Reads the whole register into the in-memory index.
    pub async fn load_register(&self) -> Result<Register, StoreError> {
        decode::load_register(&self.pool, self.sqlite_file.as_deref()).await
    }

    /// Adds or replaces records, in one transaction with one audit event for each record that
    /// changes (unchanged ones are counted and skipped). `register` is the current index: it says
    /// which records are new, checks references, and is brought up to date after the commit.
    /// `progress` is told how many records have been written so far.
    pub async fn apply(
        &self,
        register: &mut Register,
        records: Vec<Record>,
        ctx: &ChangeContext<'_>,
        progress: &mut (dyn FnMut(u64) + Send),
    ) -> Result<Applied, StoreError> {
        let mut applied = Applied::default();
        // Which records are new, changed or the same; and every reference satisfied by the
        // register or by a record in this same change.
        let mut decisions = Vec::with_capacity(records.len());
        {
            let incoming: std::collections::HashSet<(RecordKind, &str)> =
                records.iter().map(|r| (r.kind(), r.id())).collect();
            let also = |k: RecordKind, id: &str| incoming.contains(&(k, id));
            for r in &records {
                let k = r.kind() as usize;
                if let Some(d) = register.dangling_references(r, &also).into_iter().next() {
                    return Err(StoreError::Refused {
                        kind: r.kind().noun(),
                        id: r.id().to_owned(),
                        message: d.to_string(),
                    });
                }
                decisions.push(match register.get(r.kind(), r.id()) {
                    Some(existing) if &existing == r => {
                        applied.unchanged[k] += 1;
                        None
                    }
                    Some(_) => {
                        applied.updated[k] += 1;
                        Some(true)
                    }
                    None => {
                        applied.added[k] += 1;
                        Some(false)
                    }
                });
            }
        }
        let mut staged: Vec<(Record, bool)> = records
            .into_iter()
            .zip(decisions)
            .filter_map(|(r, d)| d.map(|updated| (r, updated)))
            .collect();
        staged.sort_by_key(|(r, _)| r.kind());

        let (_turn, mut tx, mut chain) = self.begin_write().await?;
        let mut written = 0u64;
        for chunk in staged.chunk_by(|a, b| a.0.kind() == b.0.kind()) {
            for part in chunk.chunks(self.backend.rows_per_statement()) {
                sql::upsert(&mut tx, part, self.backend.rows_per_statement()).await?;
                for (r, _) in part {
                    chain.push(ctx.now, ctx.actor, audit::put_kind(r.kind()), r.to_json());
                }
                chain.flush(&mut tx).await?;
                written += part.len() as u64;
                progress(written);
            }
        }
        if let Some((kind, payload)) = &ctx.summary
            && !staged.is_empty()
        {
            let mut payload = payload.clone();
            if let Value::Object(m) = &mut payload {
                m.insert("counts".into(), applied.to_json());
            }
            chain.push(ctx.now, ctx.actor, kind, payload);
        }
        applied.events = chain.close(&mut tx).await?;
        tx.commit().await?;

        register
            .put_many(staged.into_iter().map(|(r, _)| r))
            .map_err(|e| StoreError::Refused {
                kind: "register",
                id: e.id.clone(),
                message: e.to_string(),
            })?;
        Ok(applied)
    }

    /// Events with `seq > since`, in order, at most `limit` of them.
    pub async fn events(&self, since: i64, limit: i64) -> Result<Vec<StoredEvent>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, at, actor, kind, payload, prev_hash, hash FROM audit_events WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(since)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(decode::event).collect()
    }

    /// The chain's head: the last sequence number and its hash.
    pub async fn head(&self) -> Result<(i64, String), StoreError> {
        let row = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1")
            .fetch_one(&self.pool)
            .await?;
        Ok((row.try_get("seq")?, row.try_get("hash")?))
    }

    /// Recomputes the chain and replays the log, comparing the result with the tables.
    pub async fn verify(&self) -> Result<Verification, StoreError> {
        verify::verify(self).await
    }
}

/// Parses a time as stored.
pub(crate) fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::<chrono::FixedOffset>::from_str(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}
