//! Flowgate's HTTP server. It only translates: parse, authorise, call core and store, render.
//! No rule lives in a handler.
//!
//! Today it serves what an operator needs to run it behind a load balancer — `GET /healthz`
//! (the process is up) and `GET /readyz` (the database answers) — and the register's size. The
//! request workflow's JSON API is built on this router.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use flowgate_core::register::{RecordKind, Register};
use flowgate_store::Store;
use serde_json::json;
use tokio::sync::RwLock;

/// What every handler shares: the store, and the in-memory register that answers questions.
#[derive(Debug, Clone)]
pub struct AppState {
    pub store: Store,
    pub register: Arc<RwLock<Register>>,
}

impl AppState {
    /// Loads the register from the store.
    pub async fn load(store: Store) -> Result<AppState, flowgate_store::StoreError> {
        let register = store.load_register().await?;
        Ok(AppState {
            store,
            register: Arc::new(RwLock::new(register)),
        })
    }
}

/// The whole application.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/api/v1/register", get(register_summary))
        .with_state(state)
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(state): State<AppState>) -> Response {
    match state.store.ping().await {
        Ok(()) => (StatusCode::OK, "ready").into_response(),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "the database does not answer",
        )
            .into_response(),
    }
}

/// How many records of each kind the register holds.
async fn register_summary(State(state): State<AppState>) -> Json<serde_json::Value> {
    let reg = state.register.read().await;
    let counts: serde_json::Map<String, serde_json::Value> = RecordKind::ALL
        .iter()
        .map(|k| (k.table().to_owned(), reg.len(*k).into()))
        .collect();
    Json(json!(counts))
}

/// Serves until `shutdown` completes, then finishes the requests in flight.
pub async fn serve(
    state: AppState,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
