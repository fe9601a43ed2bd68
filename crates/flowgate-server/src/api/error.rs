//! Errors as RFC 9457 problem details (`application/problem+json`): one enum, one status table.
//! A 500 is logged in full with its request id and never shown; the client gets the id to quote.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use flowgate_core::policy::FieldError;
use flowgate_store::{StoreError, WorkflowError};
use serde::Serialize;
use utoipa::ToSchema;

/// A problem, as the client sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// Always `about:blank`: the status and title say what kind of problem it is.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Each field that is wrong, and why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ProblemField>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProblemField {
    pub field: String,
    pub message: String,
}

#[derive(Debug)]
pub enum ApiError {
    /// No valid bearer token.
    Unauthorized(String),
    /// The policy does not allow it.
    Forbidden(String),
    NotFound(String),
    /// The body is not JSON at all.
    BadRequest(String),
    /// The body is over the limit.
    TooLarge(String),
    /// The body is JSON, but fields are missing or wrong.
    Invalid(String, Vec<FieldError>),
    /// The workflow refuses the step in the request's current state.
    Conflict(String),
    /// `If-Match` names an older version.
    PreconditionFailed(String),
    /// Logged, never shown.
    Internal(String),
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Invalid(..) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn invalid(field: &str, message: impl Into<String>) -> ApiError {
        let message = message.into();
        ApiError::Invalid(
            format!("{field}: {message}"),
            vec![FieldError {
                field: field.to_owned(),
                message,
            }],
        )
    }
}

impl ApiError {
    /// The status and what may be shown: an internal error is logged and only said to have
    /// happened.
    pub fn public(self) -> (StatusCode, String) {
        let status = self.status();
        (status, self.into_parts().0)
    }

    fn into_parts(self) -> (String, Vec<FieldError>) {
        match self {
            ApiError::Internal(message) => {
                // The request id is on the span; the client sees only that id (in the header).
                tracing::error!(%message, "internal error");
                (
                    "something went wrong on the server; quote the x-request-id header when you report it".to_owned(),
                    Vec::new(),
                )
            }
            ApiError::Invalid(detail, errors) => (detail, errors),
            ApiError::Unauthorized(d)
            | ApiError::Forbidden(d)
            | ApiError::NotFound(d)
            | ApiError::BadRequest(d)
            | ApiError::TooLarge(d)
            | ApiError::Conflict(d)
            | ApiError::PreconditionFailed(d) => (d, Vec::new()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let (detail, errors) = self.into_parts();
        let body = Problem {
            kind: "about:blank".into(),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail,
            errors: errors
                .into_iter()
                .map(|e| ProblemField {
                    field: e.field,
                    message: e.message,
                })
                .collect(),
        };
        let mut response = (status, axum::Json(body)).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"flowgate\""),
            );
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Refused { kind, id, message } => {
                ApiError::invalid(kind, format!("'{id}': {message}"))
            }
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<WorkflowError> for ApiError {
    fn from(e: WorkflowError) -> Self {
        match e {
            WorkflowError::NotFound { .. } => ApiError::NotFound(e.to_string()),
            WorkflowError::Conflict { .. } => ApiError::PreconditionFailed(e.to_string()),
            WorkflowError::Refused(r) => ApiError::Conflict(r.to_string()),
            WorkflowError::NoticeRefused(r) => ApiError::Conflict(r.to_string()),
            WorkflowError::Store(s) => s.into(),
        }
    }
}

impl From<flowgate_authz::DecisionError> for ApiError {
    fn from(e: flowgate_authz::DecisionError) -> Self {
        ApiError::Internal(e.to_string())
    }
}
