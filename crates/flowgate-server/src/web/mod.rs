//! HTML pages. So far one: the page an answer link in a change notice e-mail opens, where an IAO
//! or IAA says whether their system is ready (2.5) without signing in — the link itself, an
//! unguessable token good for one person, one notice and one system, is the credential.
//!
//! Opening the link changes nothing (mail scanners open links); the answer is a form posted back
//! to the same address. The token is kept out of the log (`redact_path`) and out of referrers.

use axum::Form;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use flowgate_core::notice::{ChangeNotice, NoticeState, Readiness};
use serde::Deserialize;

use crate::AppState;
use crate::api::error::ApiError;

/// The pages' routes.
pub fn router() -> Router<AppState> {
    Router::new().route("/answer/{token}", get(answer_page).post(answer_post))
}

/// A path as the log may keep it: the token of an answer link is a credential.
pub fn redact_path(path: &str) -> &str {
    if path.starts_with("/answer/") {
        "/answer/…"
    } else {
        path
    }
}

/// Escapes text for HTML.
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

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{} — Flowgate</title>\n</head>\n<body>\n<header><p>Flowgate</p></header>\n<main>\n<h1>{}</h1>\n{body}\n</main>\n</body>\n</html>\n",
        escape(title),
        escape(title)
    );
    let mut response = (status, Html(html)).into_response();
    let headers = response.headers_mut();
    for (name, value) in [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
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

async fn answer_page(State(state): State<AppState>, Path(token): Path<String>) -> Response {
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
struct AnswerForm {
    answer: String,
    #[serde(default)]
    note: Option<String>,
}

async fn answer_post(
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
