//! The web pages: server-rendered HTML (askama templates, escaped by default), usable without
//! JavaScript, under a strict Content-Security-Policy (scripts only from this server — htmx,
//! vendored — and no inline script or style). Each page
//! translates like the API does — read the session, authorise through the same Cedar policy,
//! call core and store through the same functions as the API, render.
//!
//! Sign-in: OpenID Connect against the university's identity provider (`oidc`); or, for a local
//! demo only, `--dev-sign-in`: choose a person from the register (refused unless the server
//! listens on loopback, and marked on every page). Sessions live in the store; the
//! cookie is `HttpOnly; Secure; SameSite=Lax`; every state-changing form carries the session's
//! CSRF token.

mod answer;
pub mod oidc;
mod pages;
mod picture;

use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use chrono::Utc;
use flowgate_core::Email;

use crate::AppState;

/// Every active flow assessed as if requested today, kept in order of what to do first: the
/// register-health page pages through it without assessing a million flows again.
#[derive(Debug)]
pub struct LintSummary {
    pub generation: u64,
    pub day: chrono::NaiveDate,
    pub total: usize,
    pub rejected: usize,
    pub review: usize,
    /// The flows that do not proceed, worst first, then by id.
    pub flagged: Vec<(flowgate_core::policy::Outcome, String)>,
}

/// How long a web session lasts.
const SESSION_HOURS: i64 = 12;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "flowgate_session";

/// The pages' routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(pages::home))
        .route("/sign-in", get(pages::sign_in_page).post(pages::sign_in))
        .route("/sign-out", post(pages::sign_out))
        .route("/sign-in/oidc", get(oidc::begin))
        .route("/sign-in/callback", get(oidc::callback))
        .route("/requests", get(pages::requests_page))
        .route(
            "/requests/new",
            get(pages::raise_page).post(pages::raise_post),
        )
        .route("/requests/{id}", get(pages::request_page))
        .route("/requests/{id}/{action}", post(pages::request_action))
        .route("/systems", get(pages::systems_page))
        .route("/systems/{id}", get(pages::system_page))
        .route("/systems/{id}/review", post(pages::system_review))
        .route("/data-items", get(pages::data_items_page))
        .route("/flows", get(pages::flows_page))
        .route("/people", get(pages::people_page))
        .route("/lint", get(pages::lint_page))
        .route("/audit", get(pages::audit_page))
        .route("/audit/verify", post(pages::audit_verify))
        .route(
            "/notices",
            get(pages::notices_page).post(pages::notice_raise),
        )
        .route("/notices/{id}", get(pages::notice_page))
        .route("/notices/{id}/answer", post(pages::notice_answer))
        .route("/notices/{id}/{action}", post(pages::notice_close))
        .route("/static/flowgate.css", get(stylesheet))
        .route("/static/htmx-2.0.11.min.js", get(htmx))
        .route("/static/favicon.svg", get(favicon))
        .route("/favicon.ico", get(favicon))
        .route("/requests/assess", post(pages::assess_fragment))
        .route(
            "/answer/{token}",
            get(answer::answer_page).post(answer::answer_post),
        )
}

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../static/flowgate.css"),
    )
        .into_response()
}

async fn favicon() -> Response {
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        include_str!("../../static/favicon.svg"),
    )
        .into_response()
}

async fn htmx() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=86400, immutable"),
        ],
        include_str!("../../static/htmx-2.0.11.min.js"),
    )
        .into_response()
}

/// A path as the log may keep it: the token of an answer link is a credential.
pub fn redact_path(path: &str) -> &str {
    if path.starts_with("/answer/") {
        "/answer/…"
    } else {
        path
    }
}

/// Escapes text for HTML (the SVG pictures, which are built as text).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The security headers every page carries.
fn secure(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-store"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// A rendered page with its status.
fn html(status: StatusCode, body: String) -> Response {
    secure((status, Html(body)).into_response())
}

/// Who is looking at a page: the signed-in person, if any.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub session: Option<(String, flowgate_store::Session)>,
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Some(token) = cookie(&parts.headers, SESSION_COOKIE) else {
            return Ok(Viewer { session: None });
        };
        let session = state
            .store
            .session(token, Utc::now())
            .await
            .ok()
            .flatten()
            .map(|s| (token.to_owned(), s));
        Ok(Viewer { session })
    }
}

impl Viewer {
    /// The signed-in person and their session's CSRF token.
    fn person(&self) -> Option<(&Email, &str)> {
        self.session
            .as_ref()
            .map(|(_, s)| (&s.person, s.csrf.as_str()))
    }
}

/// Where a page that needs a person sends a browser that is not signed in.
fn to_sign_in() -> Response {
    Redirect::to("/sign-in").into_response()
}

/// What every page's frame shows.
#[derive(Debug, Clone, Default)]
pub struct Chrome {
    pub who: Option<String>,
    pub csrf: String,
    pub dev_sign_in: bool,
    /// Single sign-on is configured.
    pub sso: bool,
    pub section: &'static str,
}

impl Chrome {
    fn new(state: &AppState, viewer: &Viewer, section: &'static str) -> Chrome {
        Chrome {
            who: viewer.session.as_ref().map(|(_, s)| s.person.to_string()),
            csrf: viewer
                .session
                .as_ref()
                .map(|(_, s)| s.csrf.clone())
                .unwrap_or_default(),
            dev_sign_in: state.dev_sign_in,
            sso: state.oidc.is_some(),
            section,
        }
    }
}

/// The session cookie for `token` (or, empty, one that clears it).
fn session_cookie(token: &str, max_age: i64) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; Secure; SameSite=Lax; Max-Age={max_age}"
    ))
    .unwrap_or(HeaderValue::from_static("flowgate_session=; Max-Age=0"))
}
