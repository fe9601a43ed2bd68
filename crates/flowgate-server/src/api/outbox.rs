//! The outbox and webhooks in the API: what is waiting, delivered or failing, a retry, and the
//! webhooks an administrator registers.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use flowgate_authz::RegisterAction;
use flowgate_core::{Email, SystemId};
use flowgate_store::WebhookFor;
use serde::Deserialize;
use utoipa::IntoParams;

use super::dto::*;
use super::error::{ApiError, Problem};
use super::{Caller, JsonBody, Paging, Params, authorise};
use crate::AppState;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OutboxQuery {
    #[param(pattern = "^(pending|delivered|failed)$")]
    status: Option<String>,
    limit: Option<i64>,
    offset: Option<i64>,
}

/// The outbox, newest first: every e-mail and webhook call, pending, delivered or failed, with
/// its attempts and last error (administrators and the DPO).
#[utoipa::path(get, path = "/api/v1/outbox", tag = "notifications", params(OutboxQuery),
    responses((status = 200, body = OutboxPage), (status = 401, body = Problem), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub(super) async fn list_outbox(
    State(state): State<AppState>,
    Caller(who): Caller,
    Params(q): Params<OutboxQuery>,
) -> Result<Json<OutboxPage>, ApiError> {
    authorise(&state, &who, RegisterAction::ReadOutbox, "read the outbox").await?;
    if let Some(s) = q.status.as_deref()
        && !matches!(s, "pending" | "delivered" | "failed")
    {
        return Err(ApiError::invalid(
            "status",
            format!("`{s}` is not one of pending, delivered, failed"),
        ));
    }
    let paging = Paging {
        limit: q.limit,
        offset: q.offset,
    };
    let (list, counts) = state
        .store
        .outbox(q.status.as_deref(), paging.limit(), paging.offset())
        .await?;
    Ok(Json(OutboxPage {
        items: list.iter().map(OutboxView::from).collect(),
        pending: counts.pending,
        delivered: counts.delivered,
        failed: counts.failed,
        limit: paging.limit(),
        offset: paging.offset(),
    }))
}

/// Sends a message again now: one that failed, or one waiting out its backoff.
#[utoipa::path(post, path = "/api/v1/outbox/{id}/retry", tag = "notifications",
    params(("id" = String, Path, description = "the message's id (its idempotency key)")),
    responses((status = 204, description = "queued"), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub(super) async fn retry_message(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    authorise(&state, &who, RegisterAction::ReadOutbox, "retry a message").await?;
    if state.store.retry_outbox(&id, Utc::now()).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!(
            "no undelivered message with id '{id}'"
        )))
    }
}

/// Every webhook (administrators).
#[utoipa::path(get, path = "/api/v1/webhooks", tag = "notifications",
    responses((status = 200, body = Vec<WebhookView>), (status = 401, body = Problem), (status = 403, body = Problem)))]
pub(super) async fn list_webhooks(
    State(state): State<AppState>,
    Caller(who): Caller,
) -> Result<Json<Vec<WebhookView>>, ApiError> {
    authorise(
        &state,
        &who,
        RegisterAction::ManageWebhooks,
        "manage webhooks",
    )
    .await?;
    Ok(Json(
        state
            .store
            .webhooks()
            .await?
            .iter()
            .map(WebhookView::from)
            .collect(),
    ))
}

/// Registers a webhook for a person (what they are sent) or a system (what is about it). Each
/// delivery is signed: `Flowgate-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">`
/// under the secret returned here, once.
#[utoipa::path(post, path = "/api/v1/webhooks", tag = "notifications", request_body = WebhookBody,
    responses((status = 201, body = WebhookCreated), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 422, body = Problem)))]
pub(super) async fn create_webhook(
    State(state): State<AppState>,
    Caller(who): Caller,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    authorise(
        &state,
        &who,
        RegisterAction::ManageWebhooks,
        "manage webhooks",
    )
    .await?;
    let field = |f: &str| body.get(f).and_then(|v| v.as_str()).map(str::trim);
    let url = field("url").ok_or_else(|| ApiError::invalid("url", "is required"))?;
    let target = match (field("person"), field("system")) {
        (Some(p), None) => {
            let p = Email::parse(p).map_err(|e| ApiError::invalid("person", e.to_string()))?;
            if state.register.read().await.person(p.as_str()).is_none() {
                return Err(ApiError::invalid(
                    "person",
                    format!("no person '{p}' in the register"),
                ));
            }
            WebhookFor::Person(p)
        }
        (None, Some(s)) => {
            let s = SystemId::parse(s).map_err(|e| ApiError::invalid("system", e.to_string()))?;
            if state.register.read().await.system(s.as_str()).is_none() {
                return Err(ApiError::invalid(
                    "system",
                    format!("no system '{s}' in the register"),
                ));
            }
            WebhookFor::System(s)
        }
        _ => {
            return Err(ApiError::invalid(
                "person",
                "give a person or a system (one of them)",
            ));
        }
    };
    let (hook, secret) = state
        .store
        .create_webhook(url, &target, who.as_str(), Utc::now())
        .await
        .map_err(|e| match e {
            flowgate_store::StoreError::Refused { message, .. } => {
                ApiError::invalid("url", message)
            }
            e => e.into(),
        })?;
    Ok((
        StatusCode::CREATED,
        Json(WebhookCreated {
            secret,
            webhook: WebhookView::from(&hook),
        }),
    )
        .into_response())
}

/// Disables a webhook (administrators); messages queued for it fail.
#[utoipa::path(delete, path = "/api/v1/webhooks/{id}", tag = "notifications",
    params(("id" = String, Path, description = "the webhook's id")),
    responses((status = 204, description = "disabled"), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub(super) async fn disable_webhook(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    authorise(
        &state,
        &who,
        RegisterAction::ManageWebhooks,
        "manage webhooks",
    )
    .await?;
    if state
        .store
        .disable_webhook(&id, who.as_str(), Utc::now())
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!(
            "no active webhook with id '{id}'"
        )))
    }
}
