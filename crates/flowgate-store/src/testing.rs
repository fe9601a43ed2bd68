//! A fresh, empty database for each test, on either backend (feature `testing`).
//!
//! SQLite: a file in a temporary folder. PostgreSQL: a new database on the server named by
//! `FLOWGATE_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`), dropped
//! again by [`TestDatabase::drop_database`]. A PostgreSQL test whose server does not answer fails
//! with a message that says how to start it: it never skips.

use crate::{Backend, Store};

/// The server the PostgreSQL half of the suites runs against.
pub fn postgres_admin_url() -> String {
    std::env::var("FLOWGATE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A database made for one test.
#[derive(Debug)]
pub struct TestDatabase {
    pub url: String,
    backend: Backend,
    name: String,
    _dir: Option<TempDir>,
}

/// A temporary folder removed on drop (kept tiny to avoid a dependency for it).
#[derive(Debug)]
struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl TestDatabase {
    /// Creates an empty database on `backend`. Panics, saying why, when that is not possible.
    pub async fn new(backend: Backend) -> TestDatabase {
        let name = format!("flowgate_test_{}", uuid::Uuid::new_v4().simple());
        match backend {
            Backend::Sqlite => {
                let dir = std::env::temp_dir().join(&name);
                std::fs::create_dir_all(&dir)
                    .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
                let url = format!("sqlite://{}", dir.join("flowgate.db").display());
                TestDatabase {
                    url,
                    backend,
                    name,
                    _dir: Some(TempDir(dir)),
                }
            }
            Backend::Postgres => {
                let admin = postgres_admin_url();
                let pool = sqlx::PgPool::connect(&admin).await.unwrap_or_else(|e| {
                    panic!(
                        "the PostgreSQL half of the tests needs a server at {admin} ({e}); start one \
                         (pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start) or set \
                         FLOWGATE_TEST_POSTGRES_URL"
                    )
                });
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&pool)
                    .await
                    .unwrap_or_else(|e| panic!("cannot create database {name}: {e}"));
                pool.close().await;
                let mut url = url::Url::parse(&admin)
                    .unwrap_or_else(|e| panic!("bad FLOWGATE_TEST_POSTGRES_URL {admin}: {e}"));
                url.set_path(&name);
                TestDatabase {
                    url: url.to_string(),
                    backend,
                    name,
                    _dir: None,
                }
            }
        }
    }

    /// Opens the store on this database.
    pub async fn open(&self) -> Store {
        Store::open(&self.url)
            .await
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", self.url))
    }

    /// Drops a PostgreSQL test database (SQLite files go with the folder).
    pub async fn drop_database(self) {
        if self.backend == Backend::Postgres
            && let Ok(pool) = sqlx::PgPool::connect(&postgres_admin_url()).await
        {
            {
                let _ = sqlx::query(&format!(
                    "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                    self.name
                ))
                .execute(&pool)
                .await;
                pool.close().await;
            }
        }
    }
}
