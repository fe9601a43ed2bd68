//! The page an answer link in a change notice e-mail opens, where an IAO or IAA says whether
//! their system is ready (2.5) without signing in — the link itself, an unguessable token good for
//! one person, one notice and one system, is the credential.
//!
//! Opening the link changes nothing (mail scanners open links); the answer is a form posted back
//! to the same address. The token is kept out of the log (`redact_path`) and out of referrers.

use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::response::Response;
use flowgate_core::notice::{NoticeState, Readiness};
use serde::Deserialize;

use super::Chrome;
use super::pages::{failure, render};
use crate::AppState;
use crate::api::error::ApiError;

/// A link that leads to no answer: mistyped, cut short, or for a system the notice does not
/// reach.
fn invalid_link() -> Response {
    failure(ApiError::NotFound(
        "this link is not valid: it may have been mistyped or cut short by your e-mail program; open the whole link from the e-mail, or answer on the notice's page in Flowgate".into(),
    ))
}

#[derive(Template)]
#[template(path = "answer.html")]
struct AnswerPage {
    chrome: Chrome,
    done: Option<String>,
    id: String,
    raised_by: String,
    system: String,
    planned: String,
    urgent: bool,
    summary: String,
    details: Option<String>,
    period: i64,
    affected: String,
    affected_name: String,
    depth: u32,
    person: String,
    readiness: String,
    note: Option<String>,
    open: bool,
    state: String,
    /// The answer chosen in the form: the one given so far, or `acknowledged`.
    checked: &'static str,
}

pub(super) async fn answer_page(
    State(state): State<AppState>,
    Path(token): Path<String>,
) -> Response {
    render_answer(&state, &token, None)
        .await
        .unwrap_or_else(failure)
}

/// The answer form, or (`done`) what was recorded.
async fn render_answer(
    state: &AppState,
    token: &str,
    done: Option<String>,
) -> Result<Response, ApiError> {
    let Some((id, system, person)) = state.store.answer_link(token).await? else {
        return Ok(invalid_link());
    };
    let Some(n) = state.store.notice(id.as_str()).await? else {
        return Ok(invalid_link());
    };
    let Some(a) = n.affected_system(system.as_str()) else {
        return Ok(invalid_link());
    };
    Ok(render(&AnswerPage {
        // Nobody is signed in here: the link is the credential.
        chrome: Chrome {
            dev_sign_in: state.dev_sign_in,
            ..Chrome::default()
        },
        done,
        id: n.id.to_string(),
        raised_by: n.raised_by.to_string(),
        system: n.change.system.to_string(),
        planned: n.change.planned_for.to_string(),
        urgent: n.change.urgent,
        summary: n.change.summary.clone(),
        details: n.change.details.clone(),
        period: n.notice_period_days(),
        affected: a.system.to_string(),
        affected_name: a.name.clone(),
        depth: a.depth,
        person: person.to_string(),
        readiness: a.readiness.as_str().replace('_', " "),
        note: a.note.clone(),
        open: n.state == NoticeState::Open,
        state: n.state.to_string(),
        checked: match a.readiness {
            Readiness::Pending => Readiness::Acknowledged.as_str(),
            r => r.as_str(),
        },
    }))
}

#[derive(Debug, Deserialize)]
pub(super) struct AnswerForm {
    answer: String,
    #[serde(default)]
    note: Option<String>,
}

pub(super) async fn answer_post(
    State(state): State<AppState>,
    Path(token): Path<String>,
    Form(form): Form<AnswerForm>,
) -> Response {
    let (id, system, person) = match state.store.answer_link(&token).await {
        Ok(Some(link)) => link,
        Ok(None) => return invalid_link(),
        Err(e) => return failure(e.into()),
    };
    let note = form.note.filter(|n| !n.trim().is_empty());
    let result = crate::api::notices::answer(
        &state,
        &person,
        id.as_str(),
        None,
        system.clone(),
        &form.answer,
        note,
    )
    .await;
    let said = match result {
        Ok(t) => t
            .notice
            .affected_system(system.as_str())
            .map_or("answered", |a| a.readiness.as_str())
            .replace('_', " "),
        Err(e) => return failure(e),
    };
    render_answer(&state, &token, Some(format!("{system} is {said}.")))
        .await
        .unwrap_or_else(failure)
}
