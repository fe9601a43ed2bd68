//! The page an answer link in a change notice e-mail opens, where an IAO or IAA says whether
//! their system is ready (2.5) without signing in — the link itself, an unguessable token good for
//! one person, one notice and one system, is the credential.
//!
//! Opening the link changes nothing (mail scanners open links); the answer is a form posted back
//! to the same address. The token is kept out of the log (`redact_path`) and out of referrers.

use axum::Form;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use flowgate_core::notice::{ChangeNotice, NoticeState, Readiness};
use serde::Deserialize;

use super::{escape, page};
use crate::AppState;
use crate::api::error::ApiError;

fn invalid_link() -> Response {
    page(
        StatusCode::NOT_FOUND,
        "This link is not valid",
        "<p>The link may have been mistyped or cut short by your e-mail program. Open the whole link from the e-mail, or answer on the notice's page in Flowgate.</p>",
    )
}

fn describe(n: &ChangeNotice) -> String {
    let mut s = format!(
        "<p><strong>{}</strong> will change <strong>{}</strong> on <strong>{}</strong>{}: {}</p>\n",
        escape(n.raised_by.as_str()),
        escape(n.change.system.as_str()),
        n.change.planned_for,
        if n.change.urgent {
            " (urgent: it may go ahead even if systems downstream are not ready, 2.5)"
        } else {
            ""
        },
        escape(&n.change.summary)
    );
    if let Some(d) = &n.change.details {
        s.push_str(&format!("<p>{}</p>\n", escape(d)));
    }
    s.push_str(&format!(
        "<p>Notice given: {} days. Change notice {}.</p>\n",
        n.notice_period_days(),
        escape(n.id.as_str())
    ));
    s
}

pub(super) async fn answer_page(
    State(state): State<AppState>,
    Path(token): Path<String>,
) -> Response {
    match render_answer(&state, &token, None).await {
        Ok(r) => r,
        Err(e) => error_page(e),
    }
}

/// The answer form, or (`done`) what was recorded.
async fn render_answer(
    state: &AppState,
    token: &str,
    done: Option<&str>,
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
    let mut body = String::new();
    if let Some(done) = done {
        body.push_str(&format!(
            "<p role=\"status\"><strong>Recorded:</strong> {}</p>\n",
            escape(done)
        ));
    }
    body.push_str(&describe(&n));
    body.push_str(&format!(
        "<p>You are answering for <strong>{} ({})</strong>, affected at depth {}, as {}. Its answer so far: <strong>{}</strong>{}.</p>\n",
        escape(&a.name),
        escape(a.system.as_str()),
        a.depth,
        escape(person.as_str()),
        a.readiness.as_str().replace('_', " "),
        a.note
            .as_deref()
            .map(|n| format!(" ({})", escape(n)))
            .unwrap_or_default()
    ));
    if n.state != NoticeState::Open {
        body.push_str(&format!(
            "<p>This notice is {}: nothing more can be recorded on it.</p>\n",
            n.state
        ));
        return Ok(page(StatusCode::OK, "Change notice", &body));
    }
    let checked = |r: Readiness| {
        if a.readiness == r || (a.readiness == Readiness::Pending && r == Readiness::Acknowledged) {
            " checked"
        } else {
            ""
        }
    };
    body.push_str(&format!(
        "<form method=\"post\">\n<fieldset>\n<legend>Is {} ready for this change?</legend>\n\
<p><input type=\"radio\" id=\"answer-acknowledged\" name=\"answer\" value=\"acknowledged\"{}><label for=\"answer-acknowledged\">I have read this notice; I will say later whether it is ready</label></p>\n\
<p><input type=\"radio\" id=\"answer-ready\" name=\"answer\" value=\"ready\"{}><label for=\"answer-ready\">Ready</label></p>\n\
<p><input type=\"radio\" id=\"answer-not-ready\" name=\"answer\" value=\"not_ready\"{}><label for=\"answer-not-ready\">Not ready</label></p>\n\
</fieldset>\n<p><label for=\"note\">What is still needed (required when not ready)</label><br>\n<textarea id=\"note\" name=\"note\" rows=\"4\" cols=\"60\"></textarea></p>\n\
<p><button type=\"submit\">Record the answer</button></p>\n</form>\n",
        escape(a.system.as_str()),
        checked(Readiness::Acknowledged),
        checked(Readiness::Ready),
        checked(Readiness::NotReady),
    ));
    Ok(page(StatusCode::OK, "Change notice", &body))
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
    let link = match state.store.answer_link(&token).await {
        Ok(Some(link)) => link,
        Ok(None) => return invalid_link(),
        Err(e) => return error_page(e.into()),
    };
    let (id, system, person) = link;
    let note = form.note.filter(|n| !n.trim().is_empty());
    match crate::api::notices::answer(
        &state,
        &person,
        id.as_str(),
        None,
        system.clone(),
        &form.answer,
        note,
    )
    .await
    {
        Ok(t) => {
            let said = t
                .notice
                .affected_system(system.as_str())
                .map_or("answered", |a| a.readiness.as_str())
                .replace('_', " ");
            match render_answer(&state, &token, Some(&format!("{system} is {said}."))).await {
                Ok(r) => r,
                Err(e) => error_page(e),
            }
        }
        Err(e) => error_page(e),
    }
}

fn error_page(e: ApiError) -> Response {
    let (status, message) = e.public();
    page(
        status,
        "The answer was not recorded",
        &format!(
            "<p role=\"alert\">{}</p>\n<p>Go back, correct it and send it again.</p>",
            escape(&message)
        ),
    )
}
