//! Change notices (2.5) in the API: raise one against a source system, list and read them, answer
//! for an affected system, record the change done or withdraw the notice.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{NaiveDate, Utc};
use flowgate_authz::{NoticeAction as NoticePermission, RegisterAction};
use flowgate_core::notice::{self, ChangeDraft, NoticeAction, NoticeState, NoticeTransition};
use flowgate_core::{DataItemId, Email, SystemId};
use flowgate_store::NoticeFilter;
use serde::Deserialize;
use serde_json::Value;
use utoipa::IntoParams;

use super::dto::*;
use super::error::{ApiError, Problem};
use super::{Caller, JsonBody, Paging, Params, authorise, etag, forbid, if_match, may_read};
use crate::AppState;

fn text(body: &Value, field: &str) -> Result<Option<String>, ApiError> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(v) => Err(ApiError::invalid(field, format!("{v} is not a string"))),
    }
}

fn required(body: &Value, field: &str) -> Result<String, ApiError> {
    text(body, field)?.ok_or_else(|| ApiError::invalid(field, "is required"))
}

/// The draft of a notice from a JSON body, naming the field a problem is in.
fn parse_draft(body: &Value) -> Result<ChangeDraft, ApiError> {
    let system = SystemId::parse(&required(body, "system")?)
        .map_err(|e| ApiError::invalid("system", e.to_string()))?;
    let planned = required(body, "planned_for")?;
    let planned_for = NaiveDate::parse_from_str(planned.trim(), "%Y-%m-%d").map_err(|_| {
        ApiError::invalid(
            "planned_for",
            format!("`{planned}` is not a date (YYYY-MM-DD)"),
        )
    })?;
    let urgent = match body.get("urgent") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(v) => {
            return Err(ApiError::invalid(
                "urgent",
                format!("{v} is not true or false"),
            ));
        }
    };
    let data_items = match body.get("data_items") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .ok_or_else(|| format!("{v} is not a string"))
                    .and_then(|s| DataItemId::parse(s).map_err(|e| e.to_string()))
                    .map_err(|m| ApiError::invalid("data_items", m))
            })
            .collect::<Result<_, _>>()?,
        Some(v) => {
            return Err(ApiError::invalid(
                "data_items",
                format!("{v} is not a list"),
            ));
        }
    };
    Ok(ChangeDraft {
        system,
        summary: required(body, "summary")?,
        details: text(body, "details")?,
        planned_for,
        urgent,
        data_items,
    })
}

fn with_etag(status: StatusCode, view: NoticeView) -> Response {
    let version = view.version;
    let id = view.id.clone();
    let mut response = (status, Json(view)).into_response();
    response.headers_mut().insert(header::ETAG, etag(version));
    if status == StatusCode::CREATED
        && let Ok(loc) = HeaderValue::from_str(&format!("/api/v1/notices/{id}"))
    {
        response.headers_mut().insert(header::LOCATION, loc);
    }
    response
}

/// Raises a change notice against a source system (2.5): every system downstream of it, directly
/// or through others, is found and frozen into the notice, and the IAO and IAAs of each are sent
/// an e-mail (and their webhooks a call) with a link to answer.
#[utoipa::path(post, path = "/api/v1/notices", tag = "notices", request_body = NoticeBody,
    responses((status = 201, body = NoticeView, headers(("ETag" = String, description = "the version"))),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)))]
pub(super) async fn raise_notice(
    State(state): State<AppState>,
    Caller(who): Caller,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let raised = raise_as(&state, &who, &body).await?;
    Ok(with_etag(StatusCode::CREATED, NoticeView::from(&raised)))
}

/// Raises the notice in `body` as `who`: what the API and the notices page both do.
pub(crate) async fn raise_as(
    state: &AppState,
    who: &Email,
    body: &Value,
) -> Result<flowgate_core::notice::ChangeNotice, ApiError> {
    authorise(
        state,
        who,
        RegisterAction::RaiseNotice,
        "raise a change notice",
    )
    .await?;
    let draft = parse_draft(body)?;
    let now = Utc::now();
    let reg = state.register.read().await;
    Ok(state
        .store
        .raise_notice(who.as_str(), now, |id| {
            notice::raise(id, draft, who, &reg, now)
        })
        .await?)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NoticeQuery {
    /// Only notices asking the caller for an answer (as an IAO or IAA of an affected system).
    mine: Option<bool>,
    #[param(pattern = "^(open|done|withdrawn)$")]
    state: Option<String>,
    /// Only notices of changes to this system.
    system: Option<String>,
    limit: Option<i64>,
    offset: Option<i64>,
}

/// Change notices, newest first.
#[utoipa::path(get, path = "/api/v1/notices", tag = "notices", params(NoticeQuery),
    responses((status = 200, body = NoticePage), (status = 401, body = Problem), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub(super) async fn list_notices(
    State(state): State<AppState>,
    Caller(who): Caller,
    Params(q): Params<NoticeQuery>,
) -> Result<Json<NoticePage>, ApiError> {
    may_read(&state, &who).await?;
    let paging = Paging {
        limit: q.limit,
        offset: q.offset,
    };
    let filter = NoticeFilter {
        state: q
            .state
            .as_deref()
            .map(NoticeState::parse)
            .transpose()
            .map_err(|e| ApiError::invalid("state", e.to_string()))?,
        system: q
            .system
            .as_deref()
            .map(SystemId::parse)
            .transpose()
            .map_err(|e| ApiError::invalid("system", e.to_string()))?,
        concerning: q.mine.unwrap_or(false).then(|| who.clone()),
        limit: paging.limit(),
        offset: paging.offset(),
    };
    let (list, total) = state.store.notices(&filter).await?;
    Ok(Json(NoticePage {
        items: list.iter().map(NoticeView::from).collect(),
        total,
        limit: paging.limit(),
        offset: paging.offset(),
    }))
}

/// One change notice, with each affected system's answer and its history from the audit log.
#[utoipa::path(get, path = "/api/v1/notices/{id}", tag = "notices",
    params(("id" = String, Path, description = "the notice's id, e.g. `chg-3`")),
    responses((status = 200, body = NoticeView, headers(("ETag" = String, description = "the version"))),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub(super) async fn get_notice(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    may_read(&state, &who).await?;
    let Some(n) = state.store.notice(&id).await? else {
        return Err(ApiError::NotFound(format!(
            "no change notice with id '{id}'"
        )));
    };
    let mut view = NoticeView::from(&n);
    view.history = Some(super::history_entries(
        &state.store.notice_history(&id).await?,
    ));
    Ok(with_etag(StatusCode::OK, view))
}

/// Records an affected system's answer, as `who`: authorised by the policy (its IAO or an IAA),
/// decided by `flowgate_core::notice`. The e-mail's answer page calls this too.
pub(crate) async fn answer(
    state: &AppState,
    who: &Email,
    id: &str,
    expected: Option<i64>,
    system: SystemId,
    answer: &str,
    note: Option<String>,
) -> Result<NoticeTransition, ApiError> {
    let readiness = notice::readiness_from_answer(answer)
        .map_err(|e| ApiError::invalid("answer", e.to_string()))?;
    let reg = state.register.read().await;
    let d = state.authz.decide_answer(&reg, who, system.as_str())?;
    if !d.allowed {
        return Err(forbid(
            &d,
            &format!("answer change notice {id} for '{system}'"),
        ));
    }
    let action = NoticeAction::Answer {
        system,
        readiness,
        note,
    };
    let now = Utc::now();
    Ok(state
        .store
        .notice_transition(&reg, id, expected, who.as_str(), now, |n, reg| {
            notice::decide(n, &action, who, reg, now)
        })
        .await?)
}

/// An affected system's answer (2.5), by its IAO or an IAA: `acknowledged`, then `ready` or
/// `not_ready` (with a note saying what is missing).
#[utoipa::path(post, path = "/api/v1/notices/{id}/answer", tag = "notices",
    params(("id" = String, Path, description = "the notice's id"),
        ("If-Match" = Option<String>, Header, description = "the ETag last read; a stale one gets 412")),
    request_body = NoticeAnswerBody,
    responses((status = 200, body = NoticeView, headers(("ETag" = String, description = "the new version"))),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 412, body = Problem),
        (status = 422, body = Problem)))]
pub(super) async fn answer_notice(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let expected = if_match(&headers)?;
    let system = SystemId::parse(&required(&body, "system")?)
        .map_err(|e| ApiError::invalid("system", e.to_string()))?;
    let reply = required(&body, "answer")?;
    let note = text(&body, "note")?;
    let t = answer(&state, &who, &id, expected, system, &reply, note).await?;
    Ok(with_etag(StatusCode::OK, NoticeView::from(&t.notice)))
}

async fn close(
    state: AppState,
    who: Email,
    id: String,
    headers: HeaderMap,
    body: Value,
    permission: NoticePermission,
) -> Result<Response, ApiError> {
    let expected = if_match(&headers)?;
    let note = text(&body, "note")?;
    let t = close_as(&state, &who, &id, expected, note, permission).await?;
    Ok(with_etag(StatusCode::OK, NoticeView::from(&t.notice)))
}

/// Records a notice done or withdraws it, as `who`: the API and the notice's page both.
pub(crate) async fn close_as(
    state: &AppState,
    who: &Email,
    id: &str,
    expected: Option<i64>,
    note: Option<String>,
    permission: NoticePermission,
) -> Result<NoticeTransition, ApiError> {
    let action = match permission {
        NoticePermission::Withdraw => NoticeAction::Withdraw { reason: note },
        _ => NoticeAction::Done { note },
    };
    let now = Utc::now();
    let reg = state.register.read().await;
    let authz = state.authz.clone();
    let mut denied = None;
    let result = state
        .store
        .notice_transition(&reg, id, expected, who.as_str(), now, |n, reg| match authz
            .decide_notice(reg, who, permission, n)
        {
            Ok(d) if d.allowed => notice::decide(n, &action, who, reg, now),
            Ok(d) => {
                denied = Some(forbid(&d, &format!("{} change notice {id}", action.name())));
                Err(refusal(&action, id, d.to_string()))
            }
            Err(e) => {
                denied = Some(e.into());
                Err(refusal(&action, id, "authorization failed".into()))
            }
        })
        .await;
    result.map_err(|e| denied.unwrap_or_else(|| e.into()))
}

fn refusal(action: &NoticeAction, id: &str, reason: String) -> notice::NoticeRefusal {
    notice::NoticeRefusal {
        action: action.name(),
        notice: id.to_owned(),
        reason,
    }
}

/// The change was made. Refused while an affected system is not ready, unless the change is
/// urgent: then it is recorded which systems were not ready (2.5).
#[utoipa::path(post, path = "/api/v1/notices/{id}/done", tag = "notices",
    params(("id" = String, Path, description = "the notice's id"),
        ("If-Match" = Option<String>, Header, description = "the ETag last read; a stale one gets 412")),
    request_body = NoticeCloseBody,
    responses((status = 200, body = NoticeView, headers(("ETag" = String, description = "the new version"))),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 412, body = Problem),
        (status = 422, body = Problem)))]
pub(super) async fn record_done(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    close(state, who, id, headers, body, NoticePermission::RecordDone).await
}

/// The change will not happen: the notice is withdrawn and those told are told so.
#[utoipa::path(post, path = "/api/v1/notices/{id}/withdraw", tag = "notices",
    params(("id" = String, Path, description = "the notice's id"),
        ("If-Match" = Option<String>, Header, description = "the ETag last read; a stale one gets 412")),
    request_body = NoticeCloseBody,
    responses((status = 200, body = NoticeView, headers(("ETag" = String, description = "the new version"))),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 412, body = Problem),
        (status = 422, body = Problem)))]
pub(super) async fn withdraw_notice(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    close(state, who, id, headers, body, NoticePermission::Withdraw).await
}
