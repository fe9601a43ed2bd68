//! The JSON API under `/api/v1`. Each handler parses, authorises through the Cedar policy, calls
//! the workflow and the store, and renders: no rule lives here.
//!
//! Every routed handler is registered through `utoipa_axum::routes!`, so it is in the OpenAPI
//! document by construction; a test also reads this file's routes and checks the document.

pub mod dto;
pub mod error;
pub(crate) mod notices;
mod outbox;

use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Json, extract::FromRequest};
use chrono::Utc;
use flowgate_authz::{RegisterAction, RequestAction};
use flowgate_core::Email;
use flowgate_core::policy::{self, Request};
use flowgate_core::register::{Record, RecordKind, Register};
use flowgate_core::workflow::{self, ActionName, SharingRequest};
use flowgate_store::{ChangeContext, RequestFilter};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use utoipa::{IntoParams, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use dto::*;
use error::{ApiError, Problem};

/// The most a request body may hold: a request or a system record is a few kilobytes.
pub const MAX_BODY: usize = 64 * 1024;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Flowgate",
        description = "The register and the gate for data flows between a university's information systems (DPA CoP 06). Authenticate with `Authorization: Bearer <token>` (`flowgate tokens create`). Errors are RFC 9457 problem details.",
        version = "1"
    ),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    components(schemas(Problem))
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Problems are sent as `application/problem+json` (RFC 9457): say so wherever a response's body
/// is a [`Problem`], rather than on each of the handlers' many error responses.
struct ProblemContentType;

impl utoipa::Modify for ProblemContentType {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::RefOr;
        let is_problem = |c: &utoipa::openapi::Content| matches!(&c.schema, Some(RefOr::Ref(r)) if r.ref_location.ends_with("/Problem"));
        for item in openapi.paths.paths.values_mut() {
            for op in [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.delete,
            ]
            .into_iter()
            .flatten()
            {
                for resp in op.responses.responses.values_mut() {
                    if let RefOr::T(r) = resp
                        && let Some(c) = r.content.get("application/json")
                        && is_problem(c)
                        && let Some(c) = r.content.shift_remove("application/json")
                    {
                        r.content.insert("application/problem+json".into(), c);
                    }
                }
            }
        }
    }
}

/// The API's routes and their OpenAPI document.
pub fn router() -> (axum::Router<AppState>, utoipa::openapi::OpenApi) {
    let (router, mut doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(me))
        .routes(routes!(register_counts))
        .routes(routes!(list_systems))
        .routes(routes!(get_system, put_system))
        .routes(routes!(system_impact))
        .routes(routes!(list_data_items))
        .routes(routes!(put_data_item))
        .routes(routes!(list_people))
        .routes(routes!(put_person))
        .routes(routes!(assess))
        .routes(routes!(raise, list_requests))
        .routes(routes!(get_request))
        .routes(routes!(triage))
        .routes(routes!(approve))
        .routes(routes!(refuse))
        .routes(routes!(return_for_information))
        .routes(routes!(answer))
        .routes(routes!(withdraw))
        .routes(routes!(prioritise))
        .routes(routes!(start))
        .routes(routes!(complete))
        .routes(routes!(notices::raise_notice, notices::list_notices))
        .routes(routes!(notices::get_notice))
        .routes(routes!(notices::answer_notice))
        .routes(routes!(notices::record_done))
        .routes(routes!(notices::withdraw_notice))
        .routes(routes!(outbox::list_outbox))
        .routes(routes!(outbox::retry_message))
        .routes(routes!(outbox::list_webhooks, outbox::create_webhook))
        .routes(routes!(outbox::disable_webhook))
        .routes(routes!(list_tokens, create_token))
        .routes(routes!(revoke_token))
        .split_for_parts();
    // After the routes: `modifiers(...)` run before they are added.
    utoipa::Modify::modify(&ProblemContentType, &mut doc);
    (router, doc)
}

// ---------------------------------------------------------------------------------------------
// Extractors

/// Tokens checked against the store in the last few seconds, so that a client making many calls
/// costs one lookup, not one per call. A revocation through this server takes effect at once (the
/// cache is cleared); through another instance, within [`TokenCache::TTL`].
#[derive(Debug, Default)]
pub struct TokenCache {
    seen: std::sync::Mutex<std::collections::HashMap<String, (Email, std::time::Instant)>>,
}

impl TokenCache {
    pub const TTL: std::time::Duration = std::time::Duration::from_secs(10);
    /// More entries than this and the cache starts afresh: it is a convenience, not a store.
    const MAX: usize = 10_000;

    fn get(&self, token: &str) -> Option<Email> {
        let seen = self.seen.lock().ok()?;
        seen.get(token)
            .filter(|(_, at)| at.elapsed() < Self::TTL)
            .map(|(who, _)| who.clone())
    }

    fn put(&self, token: &str, who: &Email) {
        if let Ok(mut seen) = self.seen.lock() {
            if seen.len() >= Self::MAX {
                seen.clear();
            }
            seen.insert(token.to_owned(), (who.clone(), std::time::Instant::now()));
        }
    }

    pub fn clear(&self) {
        if let Ok(mut seen) = self.seen.lock() {
            seen.clear();
        }
    }
}

/// The person a valid bearer token stands for.
#[derive(Debug, Clone)]
pub struct Caller(pub Email);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        let Some(token) = token else {
            return Err(ApiError::Unauthorized(
                "send an API token as `Authorization: Bearer <token>` (flowgate tokens create)"
                    .into(),
            ));
        };
        if let Some(who) = state.tokens.get(token) {
            return Ok(Caller(who));
        }
        match state
            .store
            .authenticate(token, Utc::now().date_naive())
            .await?
        {
            Some(who) => {
                state.tokens.put(token, &who);
                Ok(Caller(who))
            }
            None => Err(ApiError::Unauthorized(
                "the token is not valid: unknown, revoked or expired".into(),
            )),
        }
    }
}

/// A JSON body, read whole (within [`MAX_BODY`]) and parsed, with problems named.
#[derive(Debug)]
pub struct JsonBody(pub serde_json::Value);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::TooLarge(format!("the body is larger than {MAX_BODY} bytes"))
            } else {
                ApiError::BadRequest(format!("the body could not be read: {e}"))
            }
        })?;
        if bytes.is_empty() {
            return Ok(JsonBody(serde_json::Value::Object(Default::default())));
        }
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|e| ApiError::BadRequest(format!("the body is not valid JSON: {e}")))
    }
}

/// Query parameters, with a problem naming the parameter when one does not parse.
#[derive(Debug)]
pub struct Params<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(v)) => Ok(Params(v)),
            Err(e) => {
                let message = e.body_text();
                // serde_urlencoded says `limit: invalid digit found in string`.
                let field = message
                    .rsplit("deserialize query string: ")
                    .next()
                    .and_then(|m| m.split(':').next())
                    .filter(|f| !f.contains(' '))
                    .unwrap_or("query")
                    .to_owned();
                Err(ApiError::invalid(&field, message))
            }
        }
    }
}

/// `If-Match: "3"` (or `3`, or `W/"3"`) as a version.
fn if_match(headers: &HeaderMap) -> Result<Option<i64>, ApiError> {
    let Some(v) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let text = v.to_str().unwrap_or_default().trim();
    if text == "*" {
        return Ok(None);
    }
    let bare = text.trim_start_matches("W/").trim_matches('"');
    bare.parse::<i64>().map(Some).map_err(|_| {
        ApiError::invalid(
            "If-Match",
            format!("`{text}` is not a request version (send the ETag you received)"),
        )
    })
}

fn etag(version: i64) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{version}\"")).unwrap_or(HeaderValue::from_static("\"0\""))
}

fn forbid(d: &flowgate_authz::Decision, what: &str) -> ApiError {
    ApiError::Forbidden(format!("you may not {what}: {d}"))
}

pub(crate) async fn authorise(
    state: &AppState,
    who: &Email,
    action: RegisterAction,
    what: &str,
) -> Result<(), ApiError> {
    let reg = state.register.read().await;
    let d = state.authz.decide_register(&reg, who, action)?;
    if d.allowed {
        Ok(())
    } else {
        Err(forbid(&d, what))
    }
}

/// Reading the register: what every signed-in person may do in the shipped policy.
async fn may_read(state: &AppState, who: &Email) -> Result<(), ApiError> {
    authorise(
        state,
        who,
        RegisterAction::ReadRegister,
        "read the register",
    )
    .await
}

/// One page of `items` (already in order), as views.
fn page<'a, T: 'a, V: From<&'a T>>(items: impl Iterator<Item = &'a T>, paging: &Paging) -> Vec<V> {
    items
        .skip(paging.offset() as usize)
        .take(paging.limit() as usize)
        .map(V::from)
        .collect()
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Paging {
    /// At most this many (1–500, default 50).
    limit: Option<i64>,
    /// Skip this many.
    offset: Option<i64>,
}

impl Paging {
    fn limit(&self) -> i64 {
        self.limit.unwrap_or(50).clamp(1, 500)
    }
    fn offset(&self) -> i64 {
        self.offset.unwrap_or(0).max(0)
    }
}

// ---------------------------------------------------------------------------------------------
// Health

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "operations", security(()),
    responses((status = 200, description = "up", body = String, content_type = "text/plain")))]
async fn healthz() -> &'static str {
    "ok"
}

/// The database answers.
#[utoipa::path(get, path = "/readyz", tag = "operations", security(()),
    responses(
        (status = 200, description = "ready", body = String, content_type = "text/plain"),
        (status = 503, description = "the database does not answer", body = String, content_type = "text/plain")))]
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

// ---------------------------------------------------------------------------------------------
// The register

/// Who the caller is: their roles and the systems they own.
#[utoipa::path(get, path = "/api/v1/me", tag = "people",
    responses((status = 200, body = Me), (status = 401, body = Problem)))]
async fn me(State(state): State<AppState>, Caller(who): Caller) -> Json<Me> {
    let reg = state.register.read().await;
    let person = reg.person(who.as_str());
    let owns = reg
        .systems()
        .iter()
        .filter(|s| s.owner.as_ref() == Some(&who))
        .map(|s| s.id.to_string())
        .collect();
    Json(Me {
        email: who.to_string(),
        name: person.map(|p| p.name.clone()),
        roles: person
            .map(|p| p.roles.iter().map(|r| r.to_string()).collect())
            .unwrap_or_default(),
        owns,
    })
}

/// How many records of each kind the register holds.
#[utoipa::path(get, path = "/api/v1/register", tag = "register",
    responses((status = 200, body = RegisterCounts), (status = 401, body = Problem), (status = 403, body = Problem)))]
async fn register_counts(
    State(state): State<AppState>,
    Caller(who): Caller,
) -> Result<Json<RegisterCounts>, ApiError> {
    may_read(&state, &who).await?;
    let reg = state.register.read().await;
    Ok(Json(RegisterCounts {
        people: reg.len(RecordKind::Person),
        systems: reg.len(RecordKind::System),
        data_items: reg.len(RecordKind::DataItem),
        flows: reg.len(RecordKind::Flow),
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SystemQuery {
    /// Words in the id or the name.
    q: Option<String>,
    /// Only systems with this IAO.
    owner: Option<String>,
    limit: Option<i64>,
    offset: Option<i64>,
}

/// The systems in the register, by id.
#[utoipa::path(get, path = "/api/v1/systems", tag = "register", params(SystemQuery),
    responses((status = 200, body = SystemPage), (status = 401, body = Problem), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn list_systems(
    State(state): State<AppState>,
    Caller(who): Caller,
    Params(q): Params<SystemQuery>,
) -> Result<Json<SystemPage>, ApiError> {
    may_read(&state, &who).await?;
    let paging = Paging {
        limit: q.limit,
        offset: q.offset,
    };
    let reg = state.register.read().await;
    let words = q.q.as_deref().unwrap_or_default().to_lowercase();
    let owner = q.owner.as_deref().map(str::to_lowercase);
    let mut matching: Vec<_> = reg
        .systems()
        .iter()
        .filter(|s| {
            words.is_empty()
                || s.id.as_str().contains(&words)
                || s.name.to_lowercase().contains(&words)
        })
        .filter(|s| {
            owner
                .as_deref()
                .is_none_or(|o| s.owner.as_ref().is_some_and(|x| x.as_str() == o))
        })
        .collect();
    matching.sort_by(|a, b| a.id.cmp(&b.id));
    let total = matching.len() as i64;
    let items = page(matching.into_iter(), &paging);
    Ok(Json(SystemPage {
        items,
        total,
        limit: paging.limit(),
        offset: paging.offset(),
    }))
}

/// One system.
#[utoipa::path(get, path = "/api/v1/systems/{id}", tag = "register",
    params(("id" = String, Path, description = "the system's id, e.g. `sits`")),
    responses((status = 200, body = SystemView), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn get_system(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(id): Path<String>,
) -> Result<Json<SystemView>, ApiError> {
    may_read(&state, &who).await?;
    let reg = state.register.read().await;
    reg.system(&id)
        .map(|s| Json(SystemView::from(s)))
        .ok_or_else(|| ApiError::NotFound(format!("no system with id '{id}'")))
}

/// Adds or changes a system — e.g. records its DPIA or ICT Architecture Checklist outcome (2.2).
/// Requests awaiting review on it are assessed again, and move on when they are clean.
#[utoipa::path(put, path = "/api/v1/systems/{id}", tag = "register",
    params(("id" = String, Path, description = "the system's id")),
    request_body = SystemView,
    responses((status = 200, body = SystemWritten), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn put_system(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<SystemWritten>, ApiError> {
    let record = parse_record(RecordKind::System, &id, "id", body)?;
    let (change, reassessed) = write_system(&state, &who, &id, record).await?;
    let reassessed = reassessed.iter().map(RequestView::from).collect();
    let reg = state.register.read().await;
    let system = reg
        .system(&id)
        .map(SystemView::from)
        .ok_or_else(|| ApiError::Internal(format!("system '{id}' vanished after writing")))?;
    Ok(Json(SystemWritten {
        system,
        change,
        reassessed,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ImpactQuery {
    /// Only follow first-hop flows carrying this data item (comma-separated for several).
    data_items: Option<String>,
    /// Stop at this depth (1: direct dependants only).
    #[param(minimum = 1)]
    depth: Option<u32>,
    /// At most this many systems (1–1,000, default 100); page through the rest with `offset`.
    limit: Option<i64>,
    offset: Option<i64>,
}

/// Which systems depend on this one, directly or through others, and who owns them: who must be
/// told before it changes (2.4, 2.5).
#[utoipa::path(get, path = "/api/v1/systems/{id}/impact", tag = "register",
    params(("id" = String, Path, description = "the system that changes"), ImpactQuery),
    responses((status = 200, body = ImpactView), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn system_impact(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(id): Path<String>,
    Params(q): Params<ImpactQuery>,
) -> Result<Json<ImpactView>, ApiError> {
    may_read(&state, &who).await?;
    let reg = state.register.read().await;
    let mut data_items = Vec::new();
    for d in q
        .data_items
        .as_deref()
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
    {
        let id = flowgate_core::DataItemId::parse(d)
            .map_err(|e| ApiError::invalid("data_items", e.to_string()))?;
        if reg.data_item(id.as_str()).is_none() {
            return Err(ApiError::invalid(
                "data_items",
                format!("no data item with id '{id}'"),
            ));
        }
        data_items.push(id);
    }
    if q.depth == Some(0) {
        return Err(ApiError::invalid("depth", "must be at least 1"));
    }
    let options = flowgate_core::impact::ImpactOptions {
        data_items,
        max_depth: q.depth,
    };
    let affected = flowgate_core::impact::downstream(&reg, &id, &options)
        .ok_or_else(|| ApiError::NotFound(format!("no system with id '{id}'")))?;
    let limit = q.limit.unwrap_or(100).clamp(1, 1_000);
    let offset = q.offset.unwrap_or(0).max(0);
    let total = affected.len() as i64;
    // Only the page asked for is turned into ids and sorted: a hub's whole impact can run to
    // hundreds of thousands of flows.
    let end = usize::try_from(offset.saturating_add(limit)).unwrap_or(usize::MAX);
    let page = usize::try_from(offset)
        .unwrap_or(usize::MAX)
        .min(affected.len())..end.min(affected.len());
    Ok(Json(ImpactView {
        system: id,
        affected: page
            .map(|i| affected.get(i))
            .map(|a| AffectedView {
                system: a.system.id.to_string(),
                depth: a.depth,
                flows: a.flows.iter().map(|f| f.to_string()).collect(),
                owner: a.system.owner.as_ref().map(ToString::to_string),
                administrators: a
                    .system
                    .administrators
                    .iter()
                    .map(ToString::to_string)
                    .collect(),
            })
            .collect(),
        total,
        limit,
        offset,
    }))
}

/// A record from a JSON body, whose key must match the path.
fn parse_record(
    kind: RecordKind,
    path_id: &str,
    key: &str,
    mut body: serde_json::Value,
) -> Result<Record, ApiError> {
    match body.get(key).and_then(|v| v.as_str()) {
        Some(k) if k.eq_ignore_ascii_case(path_id) => {}
        Some(k) => {
            return Err(ApiError::invalid(
                key,
                format!("`{k}` does not match the path's `{path_id}`"),
            ));
        }
        None => {
            if let serde_json::Value::Object(m) = &mut body {
                m.insert(key.into(), path_id.into());
            }
        }
    }
    Record::from_json(kind, body).map_err(|e| {
        let message = e.to_string();
        // serde names the field in backticks: `unknown field `colour``, `missing field `name``.
        let field = message.split('`').nth(1).unwrap_or(kind.noun()).to_owned();
        ApiError::invalid(&field, message)
    })
}

/// Writes records through the audit path, returning what happened to the first.
/// Writes a system record and assesses again each request waiting for review on it (2.2): what
/// the API's PUT and the system page's DPIA form both do. Returns what happened to the record
/// and the requests moved on. Authorised here, so that no caller can forget to.
pub(crate) async fn write_system(
    state: &AppState,
    who: &Email,
    id: &str,
    record: Record,
) -> Result<(String, Vec<SharingRequest>), ApiError> {
    authorise(
        state,
        who,
        RegisterAction::WriteRegister,
        "change the register",
    )
    .await?;
    let change = write_records(state, who, vec![record]).await?;
    // A consequence of the change, made in the writer's name, not an action they are asked
    // about.
    let mut reassessed = Vec::new();
    for rid in state.store.requests_awaiting_review_on(id).await? {
        let mut reg = state.register.write().await;
        let t = state
            .store
            .transition(&mut reg, &rid, None, who.as_str(), Utc::now(), |r, reg| {
                workflow::decide(r, &workflow::Action::Reassess, who, reg, Utc::now())
            })
            .await?;
        reassessed.push(t.request);
    }
    Ok((change, reassessed))
}

async fn write_records(
    state: &AppState,
    who: &Email,
    records: Vec<Record>,
) -> Result<String, ApiError> {
    let mut reg = state.register.write().await;
    let ctx = ChangeContext {
        actor: who.as_str(),
        now: Utc::now(),
        summary: None,
    };
    let applied = state
        .store
        .apply(&mut reg, records, &ctx, &mut |_| {})
        .await?;
    Ok(if applied.added.iter().sum::<usize>() > 0 {
        "added"
    } else if applied.updated.iter().sum::<usize>() > 0 {
        "updated"
    } else {
        "unchanged"
    }
    .into())
}

/// Adds or changes a data item — its classification, or its authoritative system (1.3.4).
#[utoipa::path(put, path = "/api/v1/data-items/{id}", tag = "register",
    params(("id" = String, Path, description = "the data item's id")),
    request_body = DataItemView,
    responses((status = 200, body = DataItemView), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn put_data_item(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<DataItemView>, ApiError> {
    authorise(
        &state,
        &who,
        RegisterAction::WriteRegister,
        "change the register",
    )
    .await?;
    let record = parse_record(RecordKind::DataItem, &id, "id", body)?;
    write_records(&state, &who, vec![record]).await?;
    let reg = state.register.read().await;
    reg.data_item(&id)
        .map(|d| Json(DataItemView::from(d)))
        .ok_or_else(|| ApiError::Internal(format!("data item '{id}' vanished after writing")))
}

/// The data items, each with its authoritative system (1.3.4).
#[utoipa::path(get, path = "/api/v1/data-items", tag = "register", params(Paging),
    responses((status = 200, body = Vec<DataItemView>), (status = 401, body = Problem), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn list_data_items(
    State(state): State<AppState>,
    Caller(who): Caller,
    Params(paging): Params<Paging>,
) -> Result<Json<Vec<DataItemView>>, ApiError> {
    may_read(&state, &who).await?;
    let reg = state.register.read().await;
    let mut items: Vec<_> = reg.data_items().iter().collect();
    items.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(Json(page(items.into_iter(), &paging)))
}

/// The people in the register.
#[utoipa::path(get, path = "/api/v1/people", tag = "people", params(Paging),
    responses((status = 200, body = Vec<PersonView>), (status = 401, body = Problem), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn list_people(
    State(state): State<AppState>,
    Caller(who): Caller,
    Params(paging): Params<Paging>,
) -> Result<Json<Vec<PersonView>>, ApiError> {
    may_read(&state, &who).await?;
    let reg = state.register.read().await;
    let mut people: Vec<_> = reg.people().iter().collect();
    people.sort_by(|a, b| a.email.cmp(&b.email));
    Ok(Json(page(people.into_iter(), &paging)))
}

/// Adds or changes a person and their roles (administrators).
#[utoipa::path(put, path = "/api/v1/people/{email}", tag = "people",
    params(("email" = String, Path, description = "the person's e-mail")),
    request_body = PersonView,
    responses((status = 200, body = PersonView), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn put_person(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(email): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<PersonView>, ApiError> {
    authorise(&state, &who, RegisterAction::ManagePeople, "manage people").await?;
    let record = parse_record(RecordKind::Person, &email, "email", body)?;
    write_records(&state, &who, vec![record]).await?;
    let reg = state.register.read().await;
    reg.person(&email.to_lowercase())
        .map(|p| Json(PersonView::from(p)))
        .ok_or_else(|| ApiError::Internal(format!("person '{email}' vanished after writing")))
}

// ---------------------------------------------------------------------------------------------
// Assessments and requests

fn parse_ask(body: &serde_json::Value) -> Result<(Request, Option<String>), ApiError> {
    let mut body = body.clone();
    let ticket = match &mut body {
        serde_json::Value::Object(m) => match m.remove("ticket") {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::String(s)) => Some(s),
            Some(other) => {
                return Err(ApiError::invalid(
                    "ticket",
                    format!("expected a string, found {other}"),
                ));
            }
        },
        _ => None,
    };
    let request = Request::from_json(&body).map_err(|errors| {
        let detail = errors
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("; ");
        ApiError::Invalid(detail, errors)
    })?;
    Ok((request, ticket))
}

/// Assesses a request against the principles without raising it: what `flowgate check` does.
#[utoipa::path(post, path = "/api/v1/assessments", tag = "requests", request_body = AskBody,
    responses((status = 200, body = AssessmentView), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn assess(
    State(state): State<AppState>,
    Caller(who): Caller,
    JsonBody(body): JsonBody,
) -> Result<Json<AssessmentView>, ApiError> {
    authorise(&state, &who, RegisterAction::Assess, "assess a request").await?;
    let (request, _) = parse_ask(&body)?;
    let reg = state.register.read().await;
    let a = policy::assess(&reg, &request, Utc::now().date_naive());
    Ok(Json(AssessmentView::from(&a)))
}

/// Raises the request in `body` as `who`: what the API and the web form both do.
pub(crate) async fn raise_as(
    state: &AppState,
    who: &Email,
    body: &serde_json::Value,
) -> Result<SharingRequest, ApiError> {
    authorise(state, who, RegisterAction::Raise, "raise a request").await?;
    let (ask, ticket) = parse_ask(body)?;
    let now = Utc::now();
    Ok(state
        .store
        .raise_request(who.as_str(), now, {
            let who = who.clone();
            move |id| workflow::raise(id, ask, ticket, &who, now)
        })
        .await?)
}

/// Raises a request (2.1). The requester is the caller.
#[utoipa::path(post, path = "/api/v1/requests", tag = "requests", request_body = AskBody,
    responses((status = 201, body = RequestView, headers(("ETag" = String, description = "the version"))),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn raise(
    State(state): State<AppState>,
    Caller(who): Caller,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let raised = raise_as(&state, &who, &body).await?;
    let mut response = (StatusCode::CREATED, Json(RequestView::from(&raised))).into_response();
    response
        .headers_mut()
        .insert(header::ETAG, etag(raised.version));
    if let Ok(loc) = HeaderValue::from_str(&format!("/api/v1/requests/{}", raised.id)) {
        response.headers_mut().insert(header::LOCATION, loc);
    }
    Ok(response)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RequestQuery {
    /// Only the caller's own requests.
    mine: Option<bool>,
    /// Only requests waiting for the caller's approval as an IAO (2.3).
    awaiting_my_approval: Option<bool>,
    /// Only requests in this state.
    #[param(
        pattern = "^(with_data_product_team|awaiting_review|awaiting_approval|approved|prioritised|in_progress|returned|completed|refused|withdrawn)$"
    )]
    state: Option<String>,
    /// Only requests from or into this system.
    system: Option<String>,
    limit: Option<i64>,
    offset: Option<i64>,
}

/// Requests, newest first: the caller's own, those awaiting their approval, or by state or system.
/// Only requests the caller may see are listed.
#[utoipa::path(get, path = "/api/v1/requests", tag = "requests", params(RequestQuery),
    responses((status = 200, body = RequestPage), (status = 401, body = Problem), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn list_requests(
    State(state): State<AppState>,
    Caller(who): Caller,
    Params(q): Params<RequestQuery>,
) -> Result<Json<RequestPage>, ApiError> {
    authorise(&state, &who, RegisterAction::ListRequests, "list requests").await?;
    let paging = Paging {
        limit: q.limit,
        offset: q.offset,
    };
    let filter = RequestFilter {
        requester: q.mine.unwrap_or(false).then(|| who.clone()),
        state: q
            .state
            .as_deref()
            .map(workflow::State::parse)
            .transpose()
            .map_err(|e| ApiError::invalid("state", e.to_string()))?,
        awaiting_approval_by: q.awaiting_my_approval.unwrap_or(false).then(|| who.clone()),
        system: q
            .system
            .as_deref()
            .map(flowgate_core::SystemId::parse)
            .transpose()
            .map_err(|e| ApiError::invalid("system", e.to_string()))?,
        limit: paging.limit(),
        offset: paging.offset(),
    };
    let (list, total) = state.store.requests(&filter).await?;
    let reg = state.register.read().await;
    let mut items = Vec::with_capacity(list.len());
    for r in &list {
        if state
            .authz
            .decide_request(&reg, &who, RequestAction::View, r)?
            .allowed
        {
            items.push(RequestView::from(r));
        }
    }
    Ok(Json(RequestPage {
        items,
        total,
        limit: paging.limit(),
        offset: paging.offset(),
    }))
}

static PROBE: std::sync::LazyLock<serde_json::Value> = std::sync::LazyLock::new(|| {
    serde_json::json!({"reason": "probe", "question": "probe", "answer": "probe",
                       "priority": "normal", "method": "api"})
});

/// The actions `who` may take on `r` now: allowed by the policy and by the workflow.
pub(crate) fn allowed_actions(
    state: &AppState,
    reg: &Register,
    who: &Email,
    r: &SharingRequest,
) -> Result<Vec<String>, ApiError> {
    let now = Utc::now();
    let names: Vec<ActionName> = ActionName::ALL
        .iter()
        .copied()
        .filter(|n| !matches!(n, ActionName::Raise | ActionName::Reassess))
        .collect();
    let steps: Vec<RequestAction> = names.iter().map(|n| RequestAction::Step(*n)).collect();
    let decisions = state.authz.decide_request_each(reg, who, &steps, r)?;
    let mut out = Vec::new();
    for (name, d) in names.into_iter().zip(decisions) {
        if !d.allowed {
            continue;
        }
        // Whatever fields the action takes, filled with a placeholder: the question is only
        // whether the workflow allows the step now.
        let Ok(probe) = workflow::action_from_json(name, &PROBE) else {
            continue;
        };
        if workflow::decide(r, &probe, who, reg, now).is_ok() {
            out.push(name.as_str().to_owned());
        }
    }
    Ok(out)
}

/// One request, with its assessment against the register as it is now, its history from the
/// audit log, and the actions the caller may take.
#[utoipa::path(get, path = "/api/v1/requests/{id}", tag = "requests",
    params(("id" = String, Path, description = "the request's id, e.g. `req-7`")),
    responses((status = 200, body = RequestView, headers(("ETag" = String, description = "the version"))),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn get_request(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let Some(r) = state.store.request(&id).await? else {
        return Err(ApiError::NotFound(format!("no request with id '{id}'")));
    };
    let history = state.store.request_history(&id).await?;
    let reg = state.register.read().await;
    let d = state
        .authz
        .decide_request(&reg, &who, RequestAction::View, &r)?;
    if !d.allowed {
        return Err(forbid(&d, &format!("see request {id}")));
    }
    let mut view = RequestView::from(&r);
    view.assessment = Some(AssessmentView::from(&policy::assess(
        &reg,
        &r.ask,
        Utc::now().date_naive(),
    )));
    view.allowed_actions = Some(allowed_actions(&state, &reg, &who, &r)?);
    view.history = Some(history_entries(&history));
    let mut response = Json(view).into_response();
    response.headers_mut().insert(header::ETAG, etag(r.version));
    Ok(response)
}

/// A request's or a notice's steps, from their audit events.
pub(crate) fn history_entries(events: &[flowgate_core::audit::StoredEvent]) -> Vec<HistoryEntry> {
    events
        .iter()
        .map(|e| {
            let p = &e.event.payload;
            let text = |k: &str| p.get(k).and_then(|v| v.as_str()).map(str::to_owned);
            let action = text("action").unwrap_or_default();
            HistoryEntry {
                seq: e.event.seq,
                at: e.event.at,
                actor: e.event.actor.clone(),
                // A notice's answer names the system it is for.
                action: match text("system") {
                    Some(s) => format!("{action} ({s})"),
                    None => action,
                },
                from: text("from"),
                to: text("to"),
                note: text("note"),
            }
        })
        .collect()
}

/// Takes a workflow step: authorised by the policy, decided by the workflow, written with its
/// audit event; `If-Match` guards against acting on a stale version.
async fn act(
    state: AppState,
    who: Email,
    id: String,
    headers: HeaderMap,
    name: ActionName,
    body: serde_json::Value,
) -> Result<Response, ApiError> {
    let expected = if_match(&headers)?;
    let t = step_as(&state, &who, &id, expected, name, &body).await?;
    let mut view = RequestView::from(&t.request);
    view.assessment = t.assessment.as_ref().map(AssessmentView::from);
    let mut response = Json(view).into_response();
    response
        .headers_mut()
        .insert(header::ETAG, etag(t.request.version));
    Ok(response)
}

/// Takes step `name` on request `id` as `who`, the fields in `body`: what the API's action
/// endpoints and the web page's buttons both do.
pub(crate) async fn step_as(
    state: &AppState,
    who: &Email,
    id: &str,
    expected: Option<i64>,
    name: ActionName,
    body: &serde_json::Value,
) -> Result<workflow::Transition, ApiError> {
    let action = workflow::action_from_json(name, body)
        .map_err(|e| ApiError::Invalid(e.to_string(), vec![e]))?;
    let authz = state.authz.clone();
    let mut reg = state.register.write().await;
    let now = Utc::now();
    let mut denied = None;
    let result = state
        .store
        .transition(
            &mut reg,
            id,
            expected,
            who.as_str(),
            now,
            |r, reg| match authz.decide_request(reg, who, RequestAction::Step(name), r) {
                Ok(d) if d.allowed => workflow::decide(r, &action, who, reg, now),
                Ok(d) => {
                    denied = Some(forbid(&d, &format!("{name} request {id}")));
                    Err(workflow::Refusal {
                        action: name,
                        request: id.to_owned(),
                        reason: d.to_string(),
                    })
                }
                Err(e) => {
                    denied = Some(e.into());
                    Err(workflow::Refusal {
                        action: name,
                        request: id.to_owned(),
                        reason: "authorization failed".into(),
                    })
                }
            },
        )
        .await;
    result.map_err(|e| denied.unwrap_or_else(|| e.into()))
}

macro_rules! action_endpoint {
    ($fn:ident, $name:expr, $path:literal, $doc:literal) => {
        #[doc = $doc]
        #[utoipa::path(post, path = $path, tag = "requests",
            params(("id" = String, Path, description = "the request's id"),
                ("If-Match" = Option<String>, Header, description = "the ETag last read; a stale one gets 412")),
            request_body(content = ActionBody, description = "the fields this action takes; `{}` when none"),
            responses((status = 200, body = RequestView, headers(("ETag" = String, description = "the new version"))),
                (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
                (status = 404, body = Problem), (status = 409, body = Problem, description = "the workflow refuses it in the request's state"),
                (status = 412, body = Problem), (status = 422, body = Problem)))]
        async fn $fn(
            State(state): State<AppState>,
            Caller(who): Caller,
            Path(id): Path<String>,
            headers: HeaderMap,
            JsonBody(body): JsonBody,
        ) -> Result<Response, ApiError> {
            act(state, who, id, headers, $name, body).await
        }
    };
}

action_endpoint!(
    triage,
    ActionName::Triage,
    "/api/v1/requests/{id}/triage",
    "The Data Product Team triages a request (2.2): assessed, it goes to review or to the IAOs."
);
action_endpoint!(
    approve,
    ActionName::Approve,
    "/api/v1/requests/{id}/approve",
    "The IAO of the source or the target approves (2.3); the principles are assessed again first."
);
action_endpoint!(
    refuse,
    ActionName::Refuse,
    "/api/v1/requests/{id}/refuse",
    "Refuses a request with a reason (`reason`; the violations when omitted)."
);
action_endpoint!(
    return_for_information,
    ActionName::ReturnForInformation,
    "/api/v1/requests/{id}/return",
    "Returns a request to its requester with a question (`question`)."
);
action_endpoint!(
    answer,
    ActionName::Answer,
    "/api/v1/requests/{id}/answer",
    "The requester answers the question (`answer`); the request goes back to where it was."
);
action_endpoint!(
    withdraw,
    ActionName::Withdraw,
    "/api/v1/requests/{id}/withdraw",
    "The requester withdraws the request."
);
action_endpoint!(
    prioritise,
    ActionName::Prioritise,
    "/api/v1/requests/{id}/prioritise",
    "The product line gives an approved request a priority (`priority`, `target_date`)."
);
action_endpoint!(
    start,
    ActionName::Start,
    "/api/v1/requests/{id}/start",
    "The product line starts building it."
);
action_endpoint!(
    complete,
    ActionName::Complete,
    "/api/v1/requests/{id}/complete",
    "The product line completes it (`method`, `frequency`): assessed once more, the flow is recorded in the register (2.4)."
);

// ---------------------------------------------------------------------------------------------
// Tokens

/// Every API token (administrators).
#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens",
    responses((status = 200, body = Vec<TokenView>), (status = 401, body = Problem), (status = 403, body = Problem)))]
async fn list_tokens(
    State(state): State<AppState>,
    Caller(who): Caller,
) -> Result<Json<Vec<TokenView>>, ApiError> {
    authorise(&state, &who, RegisterAction::ManageTokens, "manage tokens").await?;
    Ok(Json(
        state
            .store
            .tokens()
            .await?
            .iter()
            .map(TokenView::from)
            .collect(),
    ))
}

/// Creates a token for a person (administrators). The token is in this response only.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens", request_body = TokenBody,
    responses((status = 201, body = TokenCreated), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn create_token(
    State(state): State<AppState>,
    Caller(who): Caller,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    authorise(&state, &who, RegisterAction::ManageTokens, "manage tokens").await?;
    let person = body
        .get("person")
        .and_then(|v| v.as_str())
        .ok_or_else(|| ApiError::invalid("person", "is required"))?;
    let person = Email::parse(person).map_err(|e| ApiError::invalid("person", e.to_string()))?;
    let expires_on = match body.get("expires_on") {
        None | Some(serde_json::Value::Null) => None,
        Some(v) => Some(v.as_str().and_then(|s| s.parse().ok()).ok_or_else(|| {
            ApiError::invalid("expires_on", format!("{v} is not a date (YYYY-MM-DD)"))
        })?),
    };
    let (token, info) = state
        .store
        .create_token(&person, expires_on, who.as_str(), Utc::now())
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(TokenCreated {
            token,
            info: TokenView::from(&info),
        }),
    )
        .into_response())
}

/// Revokes a token (administrators).
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "tokens",
    params(("id" = String, Path, description = "the token's id")),
    responses((status = 204, description = "revoked"), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn revoke_token(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    authorise(&state, &who, RegisterAction::ManageTokens, "manage tokens").await?;
    let revoked = state
        .store
        .revoke_token(&id, who.as_str(), Utc::now())
        .await?;
    state.tokens.clear();
    if revoked {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!("no live token with id '{id}'")))
    }
}
