//! Flowgate's HTTP server. It only translates: parse, authorise, call core and store, render.
//! No rule lives in a handler.
//!
//! `GET /healthz` (the process is up) and `GET /readyz` (the database answers) for a load
//! balancer; the JSON API under `/api/v1` ([`api`]), its OpenAPI 3.1 document at
//! `/api/v1/openapi.json` and Swagger UI at `/api/docs`. Every response carries an
//! `x-request-id` (the caller's, or a new one), which is also on every log line of the request.

pub mod api;
pub mod notify;
pub mod web;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, Request, header};
use flowgate_authz::Authz;
use flowgate_core::register::Register;
use flowgate_store::Store;
use tokio::sync::RwLock;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::trace::TraceLayer;
use utoipa_swagger_ui::SwaggerUi;

/// What every handler shares: the store, the in-memory register that answers questions, and the
/// authorization policy in force.
#[derive(Debug, Clone)]
pub struct AppState {
    pub store: Store,
    pub register: Arc<RwLock<Register>>,
    pub authz: Arc<Authz>,
    /// Tokens recently checked against the store (see [`api::TokenCache`]).
    pub tokens: Arc<api::TokenCache>,
    /// Development sign-in: a local demo chooses who to be (never on a non-loopback address).
    pub dev_sign_in: bool,
    /// The university's identity provider, when single sign-on is configured.
    pub oidc: Option<Arc<web::oidc::Oidc>>,
    /// The register-health page's last answer, for the register generation and day it was for.
    pub lint: Arc<std::sync::Mutex<Option<Arc<web::LintSummary>>>>,
}

impl AppState {
    /// Loads the register from the store; `authz` is the policy in force.
    pub async fn load(store: Store, authz: Authz) -> Result<AppState, flowgate_store::StoreError> {
        let register = store.load_register().await?;
        Ok(AppState {
            store,
            register: Arc::new(RwLock::new(register)),
            authz: Arc::new(authz),
            tokens: Default::default(),
            dev_sign_in: false,
            oidc: None,
            lint: Default::default(),
        })
    }
}

/// The OpenAPI document of the API.
pub fn openapi() -> utoipa::openapi::OpenApi {
    api::router().1
}

/// The whole application.
pub fn router(state: AppState) -> Router {
    let (api, doc) = api::router();
    let request_id = HeaderName::from_static("x-request-id");
    Router::new()
        .merge(api)
        .merge(web::router())
        .with_state(state)
        .merge(SwaggerUi::new("/api/docs").url("/api/v1/openapi.json", doc))
        .layer(DefaultBodyLimit::max(api::MAX_BODY))
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
                let id = req
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-");
                // The path only: a query string could carry something a log should not keep; and
                // not even all of the path of an answer link, whose token is a credential.
                let path = web::redact_path(req.uri().path());
                tracing::info_span!("request", id = %id, method = %req.method(), path = %path)
            }),
        )
        .layer(SetSensitiveRequestHeadersLayer::new([
            header::AUTHORIZATION,
            header::COOKIE,
        ]))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
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
