//! The pages themselves: each reads the session, asks the same functions as the API (and so the
//! same Cedar policy and workflow), and renders a template.

use std::sync::Arc;

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Utc;
use flowgate_authz::{RegisterAction, RequestAction};
use flowgate_core::notice::{ChangeNotice, NoticeState};
use flowgate_core::policy::{self, Assessment, Outcome, Request};
use flowgate_core::register::{FlowRef, Record, RecordKind, Register};
use flowgate_core::workflow::{ActionName, SharingRequest, State as RequestState};
use flowgate_core::{Email, SystemId};
use flowgate_store::{NoticeFilter, RequestFilter};
use serde::Deserialize;
use serde_json::{Value, json};

use super::picture::{self, Neighbour};
use super::{Chrome, SESSION_HOURS, Viewer, html, session_cookie, to_sign_in};
use crate::AppState;
use crate::api::error::ApiError;

pub(super) fn render(t: &impl Template) -> Response {
    match t.render() {
        Ok(body) => html(StatusCode::OK, body),
        Err(e) => failure(ApiError::Internal(format!("template: {e}"))),
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    chrome: Chrome,
    heading: String,
    message: String,
}

/// An error as a page: what may be shown, with its status (500s logged, never shown).
pub(super) fn failure(e: ApiError) -> Response {
    let (status, message) = e.public();
    let heading = match status {
        StatusCode::NOT_FOUND => "Not found",
        StatusCode::FORBIDDEN => "Not allowed",
        StatusCode::CONFLICT => "That cannot be done now",
        s if s.is_server_error() => "Something went wrong",
        _ => "That did not work",
    };
    let page = ErrorPage {
        chrome: Chrome::default(),
        heading: heading.into(),
        message,
    };
    match page.render() {
        Ok(body) => html(status, body),
        Err(_) => (status, "error").into_response(),
    }
}

/// A form's fields, in order.
type Fields = Vec<(String, String)>;

/// The form fields of a body, in order (a field may repeat, as a multiple select's does).
fn form(body: &Bytes) -> Fields {
    url::form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// The CSRF check of a state-changing form: it carries this session's token.
fn csrf_ok(fields: &[(String, String)], csrf: &str) -> bool {
    field(fields, "csrf").is_some_and(|c| !c.is_empty() && c == csrf)
}

/// The person posting a form and its fields, once the form's CSRF token is checked; or the
/// response that turns it away (sign in first, or the token is wrong).
fn posted(viewer: &Viewer, body: &Bytes) -> Result<(Email, Fields), Box<Response>> {
    let Some((who, csrf)) = viewer.person() else {
        return Err(Box::new(to_sign_in()));
    };
    let fields = form(body);
    if !csrf_ok(&fields, csrf) {
        return Err(Box::new(csrf_refused()));
    }
    Ok((who.clone(), fields))
}

fn csrf_refused() -> Response {
    failure(ApiError::Forbidden(
        "the form was not sent from this session's page (its security token is missing or old): go back, reload the page and send it again".into(),
    ))
}

// ---------------------------------------------------------------------------------------------
// Sign-in

struct PersonChoice {
    email: String,
    name: String,
    what: String,
}

#[derive(Template)]
#[template(path = "sign_in.html")]
struct SignInPage {
    chrome: Chrome,
    people: Vec<PersonChoice>,
}

pub(super) async fn sign_in_page(State(state): State<AppState>, viewer: Viewer) -> Response {
    let reg = state.register.read().await;
    let mut people: Vec<PersonChoice> = reg
        .people()
        .iter()
        .map(|p| {
            let mut what: Vec<String> = p
                .roles
                .iter()
                .map(|r| r.as_str().replace('_', " "))
                .collect();
            let owns: Vec<&str> = reg
                .systems()
                .iter()
                .filter(|s| s.owner.as_ref() == Some(&p.email))
                .map(|s| s.id.as_str())
                .collect();
            if !owns.is_empty() {
                what.push(format!("IAO of {}", owns.join(", ")));
            }
            PersonChoice {
                email: p.email.to_string(),
                name: p.name.clone(),
                what: what.join("; "),
            }
        })
        .collect();
    people.sort_by(|a, b| a.name.cmp(&b.name));
    render(&SignInPage {
        chrome: Chrome::new(&state, &viewer, "sign-in"),
        people,
    })
}

pub(super) async fn sign_in(State(state): State<AppState>, body: Bytes) -> Response {
    if !state.dev_sign_in {
        return failure(ApiError::Forbidden(
            "development sign-in is off on this server".into(),
        ));
    }
    let fields = form(&body);
    let Some(person) = field(&fields, "person").and_then(|p| Email::parse(p).ok()) else {
        return failure(ApiError::invalid("person", "choose a person"));
    };
    if state
        .register
        .read()
        .await
        .person(person.as_str())
        .is_none()
    {
        return failure(ApiError::invalid(
            "person",
            format!("no person '{person}' in the register"),
        ));
    }
    match state
        .store
        .create_session(&person, Utc::now(), chrono::Duration::hours(SESSION_HOURS))
        .await
    {
        Ok((token, _)) => {
            let mut r = Redirect::to("/").into_response();
            r.headers_mut().insert(
                header::SET_COOKIE,
                session_cookie(&token, SESSION_HOURS * 3600),
            );
            r
        }
        Err(e) => failure(e.into()),
    }
}

pub(super) async fn sign_out(
    State(state): State<AppState>,
    viewer: Viewer,
    body: Bytes,
) -> Response {
    if let Some((token, s)) = &viewer.session {
        if !csrf_ok(&form(&body), &s.csrf) {
            return csrf_refused();
        }
        let _ = state.store.delete_session(token).await;
    }
    let mut r = Redirect::to("/sign-in").into_response();
    r.headers_mut()
        .insert(header::SET_COOKIE, session_cookie("", 0));
    r
}

// ---------------------------------------------------------------------------------------------
// Home

struct RequestRow {
    id: String,
    source: String,
    target: String,
    items: String,
    state: String,
    requester: String,
}

impl From<&SharingRequest> for RequestRow {
    fn from(r: &SharingRequest) -> Self {
        RequestRow {
            id: r.id.to_string(),
            source: r.ask.source.to_string(),
            target: r.ask.target.to_string(),
            items: join(r.ask.data_items.iter()),
            state: r.state.as_str().replace('_', " "),
            requester: r.ask.requester.to_string(),
        }
    }
}

fn join<T: std::fmt::Display>(items: impl Iterator<Item = T>) -> String {
    items.map(|i| i.to_string()).collect::<Vec<_>>().join(", ")
}

struct NoticeRow {
    id: String,
    system: String,
    summary: String,
    planned: String,
    state: String,
    unanswered: String,
}

impl From<&ChangeNotice> for NoticeRow {
    fn from(n: &ChangeNotice) -> Self {
        NoticeRow {
            id: n.id.to_string(),
            system: n.change.system.to_string(),
            summary: n.change.summary.clone(),
            planned: n.change.planned_for.to_string(),
            state: n.state.to_string(),
            unanswered: join(n.unanswered().map(|a| &a.system)),
        }
    }
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    chrome: Chrome,
    flash: Option<String>,
    approvals: Vec<RequestRow>,
    questions: Vec<RequestRow>,
    notices: Vec<NoticeRow>,
    team: bool,
    queue: Vec<RequestRow>,
    builds: bool,
    to_build: Vec<RequestRow>,
    mine: Vec<RequestRow>,
}

#[derive(Debug, Deserialize)]
pub(super) struct Flash {
    done: Option<String>,
}

async fn requests(
    state: &AppState,
    filter: RequestFilter,
) -> Result<Vec<SharingRequest>, ApiError> {
    Ok(state
        .store
        .requests(&RequestFilter {
            limit: 50,
            ..filter
        })
        .await?
        .0)
}

pub(super) async fn home(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(flash): Query<Flash>,
) -> Response {
    let Some((who, _)) = viewer.person() else {
        return to_sign_in();
    };
    let who = who.clone();
    let result: Result<HomePage, ApiError> = async {
        let roles = state
            .register
            .read()
            .await
            .person(who.as_str())
            .map(|p| p.roles.clone())
            .unwrap_or_default();
        let team = roles.contains(&flowgate_core::register::Role::DataProductTeam);
        let builds = roles.contains(&flowgate_core::register::Role::ProductLine);
        let rows = |v: Vec<SharingRequest>| v.iter().map(RequestRow::from).collect::<Vec<_>>();
        let by_state = |s: RequestState| RequestFilter {
            state: Some(s),
            ..Default::default()
        };
        let mut queue = Vec::new();
        let mut to_build = Vec::new();
        if team {
            for s in [
                RequestState::WithDataProductTeam,
                RequestState::AwaitingReview,
            ] {
                queue.extend(rows(requests(&state, by_state(s)).await?));
            }
        }
        if builds {
            for s in [
                RequestState::Approved,
                RequestState::Prioritised,
                RequestState::InProgress,
            ] {
                to_build.extend(rows(requests(&state, by_state(s)).await?));
            }
        }
        let mine = requests(
            &state,
            RequestFilter {
                requester: Some(who.clone()),
                ..Default::default()
            },
        )
        .await?;
        let questions = mine
            .iter()
            .filter(|r| r.state == RequestState::Returned)
            .map(RequestRow::from)
            .collect();
        let notices = state
            .store
            .notices(&NoticeFilter {
                state: Some(NoticeState::Open),
                concerning: Some(who.clone()),
                limit: 50,
                ..Default::default()
            })
            .await?
            .0;
        Ok(HomePage {
            chrome: Chrome::new(&state, &viewer, "home"),
            flash: flash.done,
            approvals: rows(
                requests(
                    &state,
                    RequestFilter {
                        awaiting_approval_by: Some(who.clone()),
                        ..Default::default()
                    },
                )
                .await?,
            ),
            questions,
            notices: notices.iter().map(NoticeRow::from).collect(),
            team,
            queue,
            builds,
            to_build,
            mine: mine.iter().map(RequestRow::from).collect(),
        })
    }
    .await;
    match result {
        Ok(page) => render(&page),
        Err(e) => failure(e),
    }
}

// ---------------------------------------------------------------------------------------------
// Assessments and requests

struct FindingRow {
    severity: &'static str,
    rule: &'static str,
    clause: &'static str,
    message: String,
    suggestion: Option<String>,
}

struct AssessmentBox {
    outcome: &'static str,
    outcome_class: &'static str,
    findings: Vec<FindingRow>,
}

impl From<&Assessment> for AssessmentBox {
    fn from(a: &Assessment) -> Self {
        AssessmentBox {
            outcome: match a.outcome {
                Outcome::Proceed => {
                    "Proceed: it may go to the Information Asset Owners for approval (2.3)"
                }
                Outcome::NeedsReview => {
                    "Needs review: something must be recorded or reviewed first (2.2)"
                }
                Outcome::Rejected => "Rejected: as asked, it goes against the Code",
            },
            outcome_class: a.outcome.as_str(),
            findings: a
                .findings
                .iter()
                .map(|f| FindingRow {
                    severity: match f.severity {
                        policy::Severity::Info => "info",
                        policy::Severity::Warning => "warning",
                        policy::Severity::Review => "review",
                        policy::Severity::Violation => "violation",
                    },
                    rule: f.rule,
                    clause: f.clause,
                    message: f.message.clone(),
                    suggestion: f.suggestion.clone(),
                })
                .collect(),
        }
    }
}

struct RequestFacts {
    id: String,
    source: String,
    target: String,
    items: String,
    state: String,
    requester: String,
    justification: String,
    intended_use: String,
    question: Option<String>,
    reason: Option<String>,
    flow: Option<String>,
    approvals: String,
    version: i64,
}

struct ActionButton {
    name: &'static str,
    label: &'static str,
}

struct HistoryRow {
    at: String,
    when: String,
    actor: String,
    action: String,
    to: Option<String>,
    note: Option<String>,
}

#[derive(Template)]
#[template(path = "request.html")]
struct RequestPage {
    chrome: Chrome,
    flash: Option<String>,
    problem: Option<String>,
    r: RequestFacts,
    actions: Vec<ActionButton>,
    a: AssessmentBox,
    history: Vec<HistoryRow>,
}

fn label(name: ActionName) -> &'static str {
    match name {
        ActionName::Triage => "Triage: assess and pass on",
        ActionName::Reassess => "Assess again",
        ActionName::Approve => "Approve",
        ActionName::Refuse => "Refuse",
        ActionName::ReturnForInformation => "Return with a question",
        ActionName::Answer => "Send the answer",
        ActionName::Withdraw => "Withdraw the request",
        ActionName::Prioritise => "Set the priority",
        ActionName::Start => "Start building",
        ActionName::Complete => "Record it complete",
        ActionName::Raise => "Raise",
    }
}

async fn request_view(
    state: &AppState,
    viewer: &Viewer,
    id: &str,
    flash: Option<String>,
    problem: Option<String>,
) -> Result<Response, ApiError> {
    let Some((who, _)) = viewer.person() else {
        return Ok(to_sign_in());
    };
    let who = who.clone();
    let Some(r) = state.store.request(id).await? else {
        return Err(ApiError::NotFound(format!("no request with id '{id}'")));
    };
    let history = state.store.request_history(id).await?;
    let reg = state.register.read().await;
    let d = state
        .authz
        .decide_request(&reg, &who, RequestAction::View, &r)?;
    if !d.allowed {
        return Err(ApiError::Forbidden(format!(
            "you may not see request {id}: {d}"
        )));
    }
    let assessment = policy::assess(&reg, &r.ask, Utc::now().date_naive());
    let allowed = crate::api::allowed_actions(state, &reg, &who, &r)?;
    let actions = allowed
        .iter()
        .filter_map(|a| ActionName::parse(a).ok())
        .map(|n| ActionButton {
            name: n.as_str(),
            // Triage again, once past the team, is assessing again after the register changed.
            label: if n == ActionName::Triage && r.state != RequestState::WithDataProductTeam {
                "Assess again against the register"
            } else {
                label(n)
            },
        })
        .collect();
    let history = crate::api::history_entries(&history)
        .into_iter()
        .map(|h| HistoryRow {
            at: h.at.to_rfc3339(),
            when: h.at.format("%Y-%m-%d %H:%M").to_string(),
            actor: h.actor,
            action: h.action,
            to: h.to.map(|t| t.replace('_', " ")),
            note: h.note,
        })
        .collect();
    Ok(render(&RequestPage {
        chrome: Chrome::new(state, viewer, "requests"),
        flash,
        problem,
        r: RequestFacts {
            id: r.id.to_string(),
            source: r.ask.source.to_string(),
            target: r.ask.target.to_string(),
            items: join(r.ask.data_items.iter()),
            state: r.state.as_str().replace('_', " "),
            requester: r.ask.requester.to_string(),
            justification: r.ask.justification.clone(),
            intended_use: r.ask.intended_use.clone(),
            question: r.question.clone(),
            reason: r.reason.clone(),
            flow: r.flow.as_ref().map(|f| f.to_string()),
            approvals: join(
                r.approvals
                    .iter()
                    .map(|a| format!("{} for the {}", a.by, a.side)),
            ),
            version: r.version,
        },
        actions,
        a: AssessmentBox::from(&assessment),
        history,
    }))
}

pub(super) async fn request_page(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Query(flash): Query<Flash>,
) -> Response {
    request_view(&state, &viewer, &id, flash.done, None)
        .await
        .unwrap_or_else(failure)
}

pub(super) async fn request_action(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((id, action)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let (who, fields) = match posted(&viewer, &body) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let Ok(name) = ActionName::parse(&action) else {
        return failure(ApiError::NotFound(format!("no action '{action}'")));
    };
    let expected = field(&fields, "version").and_then(|v| v.parse().ok());
    let mut body = serde_json::Map::new();
    for key in ["reason", "question", "answer", "priority", "method"] {
        if let Some(v) = field(&fields, key).filter(|v| !v.trim().is_empty()) {
            body.insert(key.into(), json!(v));
        }
    }
    match crate::api::step_as(&state, &who, &id, expected, name, &Value::Object(body)).await {
        Ok(t) => Redirect::to(&format!(
            "/requests/{id}?done={}",
            url::form_urlencoded::byte_serialize(
                format!(
                    "Done: {} → {}",
                    label(name),
                    t.request.state.as_str().replace('_', " ")
                )
                .as_bytes()
            )
            .collect::<String>()
        ))
        .into_response(),
        Err(e) => {
            let (status, message) = e.public();
            match request_view(&state, &viewer, &id, None, Some(message)).await {
                Ok(mut page) => {
                    *page.status_mut() = status;
                    page
                }
                Err(e) => failure(e),
            }
        }
    }
}

#[derive(Default)]
struct RaiseForm {
    source: String,
    target: String,
    items: Vec<String>,
    justification: String,
    intended_use: String,
}

#[derive(Template)]
#[template(path = "raise.html")]
struct RaisePage {
    chrome: Chrome,
    problem: Option<String>,
    systems: Vec<(String, String)>,
    items: Vec<(String, String)>,
    form: RaiseForm,
    assessment: Option<AssessmentBox>,
}

fn raise_page_for(
    state: &AppState,
    viewer: &Viewer,
    reg: &Register,
    form: RaiseForm,
    assessment: Option<AssessmentBox>,
    problem: Option<String>,
) -> RaisePage {
    let mut systems: Vec<(String, String)> = reg
        .systems()
        .iter()
        .map(|s| (s.id.to_string(), s.name.clone()))
        .collect();
    systems.sort_by(|a, b| a.1.cmp(&b.1));
    let mut items: Vec<(String, String)> = reg
        .data_items()
        .iter()
        .map(|d| (d.id.to_string(), d.name.clone()))
        .collect();
    items.sort_by(|a, b| a.1.cmp(&b.1));
    RaisePage {
        chrome: Chrome::new(state, viewer, "raise"),
        problem,
        systems,
        items,
        form,
        assessment,
    }
}

pub(super) async fn raise_page(State(state): State<AppState>, viewer: Viewer) -> Response {
    if viewer.person().is_none() {
        return to_sign_in();
    }
    let reg = state.register.read().await;
    render(&raise_page_for(
        &state,
        &viewer,
        &reg,
        RaiseForm::default(),
        None,
        None,
    ))
}

pub(super) async fn raise_post(
    State(state): State<AppState>,
    viewer: Viewer,
    body: Bytes,
) -> Response {
    let (who, fields) = match posted(&viewer, &body) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let text = |k: &str| field(&fields, k).unwrap_or_default().to_owned();
    let f = RaiseForm {
        source: text("source"),
        target: text("target"),
        items: fields
            .iter()
            .filter(|(k, _)| k == "data_items")
            .map(|(_, v)| v.clone())
            .collect(),
        justification: text("justification"),
        intended_use: text("intended_use"),
    };
    let ask = json!({
        "requester": who, "justification": f.justification, "source": f.source,
        "target": f.target, "data_items": f.items, "intended_use": f.intended_use,
    });
    if field(&fields, "step") == Some("raise") {
        match crate::api::raise_as(&state, &who, &ask).await {
            Ok(r) => {
                return Redirect::to(&format!(
                    "/requests/{}?done=Raised%3A%20it%20is%20with%20the%20Data%20Product%20Team",
                    r.id
                ))
                .into_response();
            }
            Err(e) => {
                let (status, message) = e.public();
                let reg = state.register.read().await;
                let mut page = render(&raise_page_for(
                    &state,
                    &viewer,
                    &reg,
                    f,
                    None,
                    Some(message),
                ));
                *page.status_mut() = status;
                return page;
            }
        }
    }
    let reg = state.register.read().await;
    match Request::from_json(&ask) {
        Ok(request) => {
            let a = policy::assess(&reg, &request, Utc::now().date_naive());
            render(&raise_page_for(
                &state,
                &viewer,
                &reg,
                f,
                Some(AssessmentBox::from(&a)),
                None,
            ))
        }
        Err(errors) => {
            let message = join(errors.iter());
            let mut page = render(&raise_page_for(
                &state,
                &viewer,
                &reg,
                f,
                None,
                Some(message),
            ));
            *page.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
            page
        }
    }
}

#[derive(Template)]
#[template(path = "assessment.html")]
struct AssessmentFragment {
    a: AssessmentBox,
}

#[derive(Template)]
#[template(path = "assessment_problem.html")]
struct AssessmentProblem {
    message: String,
}

/// The raise form's assessment as it is filled in (htmx posts the form here on each change):
/// the findings alone, to go under the form.
pub(super) async fn assess_fragment(
    State(state): State<AppState>,
    viewer: Viewer,
    body: Bytes,
) -> Response {
    let (who, fields) = match posted(&viewer, &body) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let text = |k: &str| field(&fields, k).unwrap_or_default().to_owned();
    let items: Vec<String> = fields
        .iter()
        .filter(|(k, _)| k == "data_items")
        .map(|(_, v)| v.clone())
        .collect();
    let ask = json!({
        "requester": who, "justification": text("justification"), "source": text("source"),
        "target": text("target"), "data_items": items, "intended_use": text("intended_use"),
    });
    let reg = state.register.read().await;
    match Request::from_json(&ask) {
        Ok(request) => {
            let a = policy::assess(&reg, &request, Utc::now().date_naive());
            render(&AssessmentFragment {
                a: AssessmentBox::from(&a),
            })
        }
        Err(errors) => render(&AssessmentProblem {
            message: join(errors.iter()),
        }),
    }
}

// ---------------------------------------------------------------------------------------------
// The register

struct SystemRow {
    id: String,
    name: String,
    owner: String,
    dpia: String,
    flows_in: usize,
    flows_out: usize,
}

#[derive(Template)]
#[template(path = "systems.html")]
struct SystemsPage {
    chrome: Chrome,
    q: String,
    show: String,
    total: usize,
    from: usize,
    to: usize,
    rows: Vec<SystemRow>,
    prev: Option<String>,
    next: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(super) struct ListQuery {
    q: Option<String>,
    /// `dpia-due` or `external`.
    show: Option<String>,
    page: Option<usize>,
}

const PAGE: usize = 50;

pub(super) async fn systems_page(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(q): Query<ListQuery>,
) -> Response {
    if viewer.person().is_none() {
        return to_sign_in();
    }
    let reg = state.register.read().await;
    let needle = q.q.clone().unwrap_or_default().trim().to_lowercase();
    let show = q.show.clone().unwrap_or_default();
    let soon = Utc::now().date_naive() + chrono::Duration::days(90);
    let mut matching: Vec<&flowgate_core::register::System> = reg
        .systems()
        .iter()
        .filter(|s| {
            needle.is_empty()
                || s.id.as_str().contains(&needle)
                || s.name.to_lowercase().contains(&needle)
                || s.owner
                    .as_ref()
                    .is_some_and(|o| o.as_str().contains(&needle))
        })
        .filter(|s| match show.as_str() {
            "dpia-due" => {
                s.dpia_status != flowgate_core::register::DpiaStatus::Approved
                    || s.dpia_review_due.is_some_and(|d| d <= soon)
            }
            "external" => s.external,
            _ => true,
        })
        .collect();
    matching.sort_by(|a, b| a.id.cmp(&b.id));
    let page = q.page.unwrap_or(1).max(1);
    let start = ((page - 1) * PAGE).min(matching.len());
    let end = (start + PAGE).min(matching.len());
    let link = |p: usize| {
        format!(
            "/systems?q={}&show={}&page={p}",
            url::form_urlencoded::byte_serialize(needle.as_bytes()).collect::<String>(),
            url::form_urlencoded::byte_serialize(show.as_bytes()).collect::<String>()
        )
    };
    render(&SystemsPage {
        chrome: Chrome::new(&state, &viewer, "systems"),
        q: needle.clone(),
        show: show.clone(),
        total: matching.len(),
        from: if end == 0 { 0 } else { start + 1 },
        to: end,
        rows: matching[start..end]
            .iter()
            .map(|s| SystemRow {
                id: s.id.to_string(),
                name: s.name.clone(),
                owner: s
                    .owner
                    .as_ref()
                    .map(|o| o.to_string())
                    .unwrap_or_else(|| "none recorded".into()),
                dpia: s.dpia_status.as_str().replace('_', " "),
                flows_in: reg.flows_into(s.id.as_str()).count(),
                flows_out: reg.flows_out_of(s.id.as_str()).count(),
            })
            .collect(),
        prev: (page > 1).then(|| link(page - 1)),
        next: (end < matching.len()).then(|| link(page + 1)),
    })
}

struct SystemFacts {
    dpia_reference: String,
    dpia_review_due: String,
    id: String,
    name: String,
    owner: String,
    admins: String,
    status: String,
    dpia: String,
    checklist: String,
    description: String,
    authoritative: String,
}

struct FlowRow {
    id: String,
    other: String,
    items: String,
    method: String,
    status: String,
}

#[derive(Template)]
#[template(path = "system.html")]
struct SystemPage {
    chrome: Chrome,
    flash: Option<String>,
    can_write: bool,
    /// Each choice, and whether it is the system's now.
    dpia_options: Vec<(&'static str, bool)>,
    checklist_options: Vec<(&'static str, bool)>,
    s: SystemFacts,
    picture: String,
    flows_in: Vec<FlowRow>,
    flows_out: Vec<FlowRow>,
}

/// The neighbours on one side, with how many active flows each has with the system.
fn neighbours<'a>(flows: impl Iterator<Item = (FlowRef<'a>, &'a str)>) -> Vec<Neighbour> {
    // A hub has a hundred thousand flows to ten thousand systems: count in a hash map.
    let mut counts: std::collections::HashMap<&str, usize> = Default::default();
    for (f, other) in flows {
        if f.is_active() {
            *counts.entry(other).or_default() += 1;
        }
    }
    counts
        .into_iter()
        .map(|(id, flows)| Neighbour {
            id: id.to_owned(),
            flows,
        })
        .collect()
}

pub(super) async fn system_page(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Query(flash): Query<Flash>,
) -> Response {
    let Some((who, _)) = viewer.person() else {
        return to_sign_in();
    };
    let reg = state.register.read().await;
    let can_write = state
        .authz
        .decide_register(&reg, who, RegisterAction::WriteRegister)
        .is_ok_and(|d| d.allowed);
    let Some(s) = SystemId::parse(&id)
        .ok()
        .and_then(|i| reg.system(i.as_str()))
    else {
        return failure(ApiError::NotFound(format!("no system with id '{id}'")));
    };
    let row = |f: FlowRef<'_>, other: &str| FlowRow {
        id: f.id().to_owned(),
        other: other.to_owned(),
        items: join(f.data_items().map(|d| &d.id)),
        method: f.method().as_str().replace('_', " "),
        status: f.status().as_str().into(),
    };
    let into: Vec<FlowRef<'_>> = reg.flows_into(s.id.as_str()).collect();
    let out: Vec<FlowRef<'_>> = reg.flows_out_of(s.id.as_str()).collect();
    let picture = picture::render(
        s.id.as_str(),
        neighbours(into.iter().map(|f| (*f, f.source().id.as_str()))),
        neighbours(out.iter().map(|f| (*f, f.target().id.as_str()))),
    );
    // A hub has thousands of flows: the tables show the first of them; the picture summarises.
    const ROWS: usize = 200;
    render(&SystemPage {
        chrome: Chrome::new(&state, &viewer, "systems"),
        flash: flash.done,
        can_write,
        dpia_options: flowgate_core::register::DpiaStatus::ALL
            .iter()
            .map(|d| (d.as_str(), *d == s.dpia_status))
            .collect(),
        checklist_options: flowgate_core::register::ChecklistStatus::ALL
            .iter()
            .map(|d| (d.as_str(), *d == s.architecture_checklist))
            .collect(),
        s: SystemFacts {
            dpia_reference: s.dpia_reference.clone().unwrap_or_default(),
            dpia_review_due: s.dpia_review_due.map(|d| d.to_string()).unwrap_or_default(),
            id: s.id.to_string(),
            name: s.name.clone(),
            owner: s
                .owner
                .as_ref()
                .map(|o| o.to_string())
                .unwrap_or_else(|| "none recorded".into()),
            admins: if s.administrators.is_empty() {
                "none recorded".into()
            } else {
                join(s.administrators.iter())
            },
            status: s.status.as_str().into(),
            dpia: format!(
                "{}{}{}",
                s.dpia_status.as_str().replace('_', " "),
                s.dpia_reference
                    .as_ref()
                    .map(|r| format!(", {r}"))
                    .unwrap_or_default(),
                s.dpia_review_due
                    .map(|d| format!(", review due {d}"))
                    .unwrap_or_default()
            ),
            checklist: s.architecture_checklist.as_str().replace('_', " "),
            description: s.description.clone().unwrap_or_default(),
            authoritative: join(
                reg.data_items()
                    .iter()
                    .filter(|d| d.authoritative_system.as_ref() == Some(&s.id))
                    .map(|d| &d.id),
            ),
        },
        picture,
        flows_in: into
            .iter()
            .take(ROWS)
            .map(|f| row(*f, f.source().id.as_str()))
            .collect(),
        flows_out: out
            .iter()
            .take(ROWS)
            .map(|f| row(*f, f.target().id.as_str()))
            .collect(),
    })
}

// ---------------------------------------------------------------------------------------------
// Change notices

#[derive(Template)]
#[template(path = "notices.html")]
struct NoticesPage {
    chrome: Chrome,
    problem: Option<String>,
    can_raise: bool,
    systems: Vec<(String, String)>,
    rows: Vec<NoticeRow>,
    prev: Option<String>,
    next: Option<String>,
}

async fn notices_view(
    state: &AppState,
    viewer: &Viewer,
    page: Option<usize>,
    problem: Option<String>,
) -> Response {
    let Some((who, _)) = viewer.person() else {
        return to_sign_in();
    };
    let page = page.unwrap_or(1).max(1);
    let (list, total) = match state
        .store
        .notices(&NoticeFilter {
            limit: PAGE as i64,
            offset: ((page - 1) * PAGE) as i64,
            ..Default::default()
        })
        .await
    {
        Ok(found) => found,
        Err(e) => return failure(e.into()),
    };
    let (_, prev, next) = paging("/notices", Some(page), total.max(0) as usize);
    let reg = state.register.read().await;
    let can_raise = state
        .authz
        .decide_register(&reg, who, RegisterAction::RaiseNotice)
        .is_ok_and(|d| d.allowed);
    let mut systems: Vec<(String, String)> = reg
        .systems()
        .iter()
        .map(|s| (s.id.to_string(), s.name.clone()))
        .collect();
    systems.sort_by(|a, b| a.1.cmp(&b.1));
    render(&NoticesPage {
        chrome: Chrome::new(state, viewer, "notices"),
        problem,
        can_raise,
        systems,
        rows: list.iter().map(NoticeRow::from).collect(),
        prev,
        next,
    })
}

pub(super) async fn notices_page(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(q): Query<PageQuery>,
) -> Response {
    notices_view(&state, &viewer, q.page, None).await
}

struct NoticeFacts {
    id: String,
    system: String,
    summary: String,
    planned: String,
    urgent: bool,
    period: i64,
    raised_by: String,
    state: String,
    went_ahead: String,
}

struct AffectedRow {
    system: String,
    depth: u32,
    via: String,
    readiness: String,
    note: String,
    owner: String,
}

#[derive(Template)]
#[template(path = "notice.html")]
struct NoticePage {
    chrome: Chrome,
    flash: Option<String>,
    problem: Option<String>,
    /// The affected systems the viewer answers for, while the notice is open.
    mine: Vec<String>,
    can_close: bool,
    picture: String,
    n: NoticeFacts,
    affected: Vec<AffectedRow>,
}

pub(super) async fn notice_page(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Query(flash): Query<Flash>,
) -> Response {
    notice_view(&state, &viewer, &id, flash.done, None).await
}

async fn notice_view(
    state: &AppState,
    viewer: &Viewer,
    id: &str,
    flash: Option<String>,
    problem: Option<String>,
) -> Response {
    let Some((who, _)) = viewer.person() else {
        return to_sign_in();
    };
    let n = match state.store.notice(id).await {
        Ok(Some(n)) => n,
        Ok(None) => {
            return failure(ApiError::NotFound(format!(
                "no change notice with id '{id}'"
            )));
        }
        Err(e) => return failure(e.into()),
    };
    let reg = state.register.read().await;
    let open = n.state == NoticeState::Open;
    let mine = n
        .affected
        .iter()
        .filter(|a| open && flowgate_core::notice::answers_for(&reg, a, who))
        .map(|a| a.system.to_string())
        .collect();
    let can_close = open
        && state
            .authz
            .decide_notice(&reg, who, flowgate_authz::NoticeAction::RecordDone, &n)
            .is_ok_and(|d| d.allowed);
    let reached: Vec<picture::Reached> = n
        .affected
        .iter()
        .map(|a| picture::Reached {
            id: a.system.to_string(),
            depth: a.depth,
            via: a.via.iter().map(|v| v.to_string()).collect(),
            readiness: a.readiness.as_str().into(),
        })
        .collect();
    render(&NoticePage {
        chrome: Chrome::new(state, viewer, "notices"),
        flash,
        problem,
        mine,
        can_close,
        picture: picture::render_notice(n.change.system.as_str(), &reached),
        n: NoticeFacts {
            id: n.id.to_string(),
            system: n.change.system.to_string(),
            summary: n.change.summary.clone(),
            planned: n.change.planned_for.to_string(),
            urgent: n.change.urgent,
            period: n.notice_period_days(),
            raised_by: n.raised_by.to_string(),
            state: n.state.to_string(),
            went_ahead: join(n.went_ahead_while_not_ready.iter()),
        },
        affected: n
            .affected
            .iter()
            .map(|a| AffectedRow {
                system: a.system.to_string(),
                depth: a.depth,
                via: if a.depth == 1 {
                    join(a.flows.iter())
                } else {
                    join(a.via.iter())
                },
                readiness: a.readiness.as_str().replace('_', " "),
                note: a.note.clone().unwrap_or_default(),
                owner: a.owner.as_ref().map(|o| o.to_string()).unwrap_or_default(),
            })
            .collect(),
    })
}

// ---------------------------------------------------------------------------------------------
// Recording a DPIA or checklist outcome (the Data Product Team, 2.2)

pub(super) async fn system_review(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let (who, fields) = match posted(&viewer, &body) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let result: Result<Response, ApiError> = async {
        let mut record = {
            let reg = state.register.read().await;
            let s = reg
                .system(&id)
                .ok_or_else(|| ApiError::NotFound(format!("no system with id '{id}'")))?;
            serde_json::to_value(Record::System(s.clone()).to_json())
                .map_err(|e| ApiError::Internal(e.to_string()))?
        };
        let text = |k: &str| {
            field(&fields, k)
                .map(str::trim)
                .unwrap_or_default()
                .to_owned()
        };
        let or_null = |v: String| if v.is_empty() { Value::Null } else { json!(v) };
        record["dpia_status"] = json!(text("dpia_status"));
        record["dpia_reference"] = or_null(text("dpia_reference"));
        record["dpia_review_due"] = or_null(text("dpia_review_due"));
        record["architecture_checklist"] = json!(text("architecture_checklist"));
        let record = Record::from_json(RecordKind::System, record)
            .map_err(|e| ApiError::invalid("system", e.to_string()))?;
        let (change, moved) = crate::api::write_system(&state, &who, &id, record).await?;
        let mut said = format!("The system's record was {change}.");
        for r in &moved {
            said.push_str(&format!(
                " Request {} was assessed again: {}.",
                r.id,
                r.state.as_str().replace('_', " ")
            ));
        }
        Ok(Redirect::to(&format!(
            "/systems/{id}?done={}",
            url::form_urlencoded::byte_serialize(said.as_bytes()).collect::<String>()
        ))
        .into_response())
    }
    .await;
    result.unwrap_or_else(failure)
}

// ---------------------------------------------------------------------------------------------
// Register health (`flowgate lint` as a page), the audit log, data items, people

#[derive(Debug, Deserialize)]
pub(super) struct PageQuery {
    page: Option<usize>,
}

/// Rows `page` of `total` (50 to a page), and the links to the pages either side.
fn paging(
    path: &str,
    page: Option<usize>,
    total: usize,
) -> (std::ops::Range<usize>, Option<String>, Option<String>) {
    let page = page.unwrap_or(1).max(1);
    let start = ((page - 1) * PAGE).min(total);
    let end = (start + PAGE).min(total);
    let sep = if path.contains('?') { '&' } else { '?' };
    (
        start..end,
        (page > 1).then(|| format!("{path}{sep}page={}", page - 1)),
        (end < total).then(|| format!("{path}{sep}page={}", page + 1)),
    )
}

struct LintRow {
    flow: String,
    source: String,
    target: String,
    outcome: &'static str,
    findings: Vec<String>,
}

#[derive(Template)]
#[template(path = "lint.html")]
struct LintPage {
    chrome: Chrome,
    total: usize,
    rejected: usize,
    review: usize,
    proceed: usize,
    rows: Vec<LintRow>,
    prev: Option<String>,
    next: Option<String>,
}

pub(super) async fn lint_page(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(q): Query<PageQuery>,
) -> Response {
    if viewer.person().is_none() {
        return to_sign_in();
    }
    let reg = state.register.read().await;
    let today = Utc::now().date_naive();
    let summary = lint_summary(&state, &reg, today);
    let (range, prev, next) = paging("/lint", q.page, summary.flagged.len());
    // Only the page shown is assessed again for its findings' words.
    let rows = summary.flagged[range]
        .iter()
        .filter_map(|(o, id)| reg.flow(id).map(|f| (o, f)))
        .map(|(o, f)| {
            let a = policy::assess_flow(&reg, &f, today);
            LintRow {
                flow: f.id().to_owned(),
                source: f.source().id.to_string(),
                target: f.target().id.to_string(),
                outcome: match o {
                    Outcome::Rejected => "rejected",
                    Outcome::NeedsReview => "needs review",
                    Outcome::Proceed => "proceed",
                },
                findings: a
                    .findings
                    .iter()
                    .filter(|f| f.severity >= policy::Severity::Review)
                    .map(|f| format!("{} ({}): {}", f.rule, f.clause, f.message))
                    .collect(),
            }
        })
        .collect();
    render(&LintPage {
        chrome: Chrome::new(&state, &viewer, "lint"),
        total: summary.total,
        rejected: summary.rejected,
        review: summary.review,
        proceed: summary.total - summary.rejected - summary.review,
        rows,
        prev,
        next,
    })
}

/// Every active flow assessed today, from the cache when the register has not changed since.
/// Keeps outcomes and ids only: a million assessments with their findings would not fit.
fn lint_summary(
    state: &AppState,
    reg: &Register,
    today: chrono::NaiveDate,
) -> Arc<super::LintSummary> {
    if let Ok(cache) = state.lint.lock()
        && let Some(s) = cache.as_ref()
        && s.generation == reg.generation()
        && s.day == today
    {
        return s.clone();
    }
    let mut total = 0;
    let (mut rejected, mut review) = (0, 0);
    let mut flagged = Vec::new();
    for f in reg.flows().filter(|f| f.is_active()) {
        total += 1;
        let outcome = policy::assess_flow(reg, &f, today).outcome;
        match outcome {
            Outcome::Rejected => rejected += 1,
            Outcome::NeedsReview => review += 1,
            Outcome::Proceed => continue,
        }
        flagged.push((outcome, f.id().to_owned()));
    }
    flagged.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    let summary = Arc::new(super::LintSummary {
        generation: reg.generation(),
        day: today,
        total,
        rejected,
        review,
        flagged,
    });
    if let Ok(mut cache) = state.lint.lock() {
        *cache = Some(summary.clone());
    }
    summary
}

struct EventRow {
    seq: i64,
    at: String,
    actor: String,
    kind: String,
    hash: String,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    chrome: Chrome,
    verdict: Option<String>,
    verified: bool,
    rows: Vec<EventRow>,
    prev: Option<String>,
    next: Option<String>,
}

async fn audit_view(
    state: &AppState,
    viewer: &Viewer,
    page: Option<usize>,
    verdict: Option<(bool, String)>,
) -> Result<Response, ApiError> {
    let Some((who, _)) = viewer.person() else {
        return Ok(to_sign_in());
    };
    crate::api::authorise(state, who, RegisterAction::ReadAudit, "read the audit log").await?;
    let (head, _) = state.store.head().await?;
    let page = page.unwrap_or(1).max(1);
    // Newest first: page 1 is the last 50 events.
    let upto = head - ((page - 1) * PAGE) as i64;
    let since = (upto - PAGE as i64).max(0);
    let mut events = state.store.events(since, upto - since).await?;
    events.reverse();
    let (verified, verdict) = match verdict {
        Some((ok, v)) => (ok, Some(v)),
        None => (false, None),
    };
    Ok(render(&AuditPage {
        chrome: Chrome::new(state, viewer, "audit"),
        verdict,
        verified,
        rows: events
            .iter()
            .map(|e| EventRow {
                seq: e.event.seq,
                at: e.event.at.format("%Y-%m-%d %H:%M:%S").to_string(),
                actor: e.event.actor.clone(),
                kind: e.event.kind.clone(),
                hash: e.hash.to_hex()[..16].to_owned(),
            })
            .collect(),
        prev: (page > 1).then(|| format!("/audit?page={}", page - 1)),
        next: (since > 0).then(|| format!("/audit?page={}", page + 1)),
    }))
}

pub(super) async fn audit_page(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(q): Query<PageQuery>,
) -> Response {
    audit_view(&state, &viewer, q.page, None)
        .await
        .unwrap_or_else(failure)
}

pub(super) async fn audit_verify(
    State(state): State<AppState>,
    viewer: Viewer,
    body: Bytes,
) -> Response {
    let Some((_, csrf)) = viewer.person() else {
        return to_sign_in();
    };
    if !csrf_ok(&form(&body), csrf) {
        return csrf_refused();
    }
    let result: Result<Response, ApiError> = async {
        if let Some((who, _)) = viewer.person() {
            crate::api::authorise(&state, who, RegisterAction::ReadAudit, "verify the audit log").await?;
        }
        let v = state.store.verify().await?;
        let verdict = match &v.failure {
            None => (
                true,
                format!(
                    "Verified: {} events, the chain holds, and the register's tables are exactly what the log says (head {}).",
                    v.events,
                    &v.head.to_hex()[..16]
                ),
            ),
            Some(f) => (false, format!("Verification FAILED: {f}")),
        };
        audit_view(&state, &viewer, None, Some(verdict)).await
    }
    .await;
    result.unwrap_or_else(failure)
}

struct ItemRow {
    id: String,
    name: String,
    classification: String,
    personal: String,
    authority: String,
}

#[derive(Template)]
#[template(path = "data_items.html")]
struct ItemsPage {
    chrome: Chrome,
    rows: Vec<ItemRow>,
    prev: Option<String>,
    next: Option<String>,
}

pub(super) async fn data_items_page(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(q): Query<PageQuery>,
) -> Response {
    if viewer.person().is_none() {
        return to_sign_in();
    }
    let reg = state.register.read().await;
    let mut items: Vec<&flowgate_core::register::DataItem> = reg.data_items().iter().collect();
    items.sort_by(|a, b| a.id.cmp(&b.id));
    let (range, prev, next) = paging("/data-items", q.page, items.len());
    render(&ItemsPage {
        chrome: Chrome::new(&state, &viewer, "data-items"),
        rows: items[range]
            .iter()
            .map(|d| ItemRow {
                id: d.id.to_string(),
                name: d.name.clone(),
                classification: d.classification.as_str().replace('_', " "),
                personal: match (d.personal_data, d.special_category) {
                    (_, true) => "special category".into(),
                    (true, false) => "personal".into(),
                    _ => "no".into(),
                },
                authority: d
                    .authoritative_system
                    .as_ref()
                    .map(|s| s.to_string())
                    .unwrap_or_default(),
            })
            .collect(),
        prev,
        next,
    })
}

struct PersonRow {
    name: String,
    email: String,
    kind: String,
    roles: String,
    owns: String,
}

#[derive(Template)]
#[template(path = "people.html")]
struct PeoplePage {
    chrome: Chrome,
    rows: Vec<PersonRow>,
    prev: Option<String>,
    next: Option<String>,
}

pub(super) async fn people_page(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(q): Query<PageQuery>,
) -> Response {
    if viewer.person().is_none() {
        return to_sign_in();
    }
    let reg = state.register.read().await;
    let mut people: Vec<&flowgate_core::register::Person> = reg.people().iter().collect();
    people.sort_by(|a, b| a.name.cmp(&b.name));
    let (range, prev, next) = paging("/people", q.page, people.len());
    let mut owns: std::collections::HashMap<&str, Vec<&str>> = Default::default();
    for s in reg.systems() {
        if let Some(o) = &s.owner {
            owns.entry(o.as_str()).or_default().push(s.id.as_str());
        }
    }
    render(&PeoplePage {
        chrome: Chrome::new(&state, &viewer, "people"),
        rows: people[range]
            .iter()
            .map(|p| PersonRow {
                name: p.name.clone(),
                email: p.email.to_string(),
                kind: p.kind.as_str().replace('_', " "),
                roles: join(p.roles.iter().map(|r| r.as_str().replace('_', " "))),
                owns: owns
                    .get(p.email.as_str())
                    .map(|v| v.join(", "))
                    .unwrap_or_default(),
            })
            .collect(),
        prev,
        next,
    })
}

// ---------------------------------------------------------------------------------------------
// Raising and answering change notices (2.5)

pub(super) async fn notice_raise(
    State(state): State<AppState>,
    viewer: Viewer,
    body: Bytes,
) -> Response {
    let (who, fields) = match posted(&viewer, &body) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let text = |k: &str| {
        field(&fields, k)
            .map(str::trim)
            .unwrap_or_default()
            .to_owned()
    };
    let body = json!({
        "system": text("system"),
        "summary": text("summary"),
        "details": Some(text("details")).filter(|d| !d.is_empty()),
        "planned_for": text("planned_for"),
        "urgent": field(&fields, "urgent") == Some("true"),
    });
    match crate::api::notices::raise_as(&state, &who, &body).await {
        Ok(n) => Redirect::to(&format!(
            "/notices/{}?done={}",
            n.id,
            url::form_urlencoded::byte_serialize(
                format!(
                    "Raised: {} affected systems; their owners and administrators are being told.",
                    n.affected.len()
                )
                .as_bytes()
            )
            .collect::<String>()
        ))
        .into_response(),
        Err(e) => {
            let (status, message) = e.public();
            let mut page = notices_view(&state, &viewer, None, Some(message)).await;
            *page.status_mut() = status;
            page
        }
    }
}

pub(super) async fn notice_answer(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let (who, fields) = match posted(&viewer, &body) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let Some(system) = field(&fields, "system").and_then(|s| SystemId::parse(s).ok()) else {
        return failure(ApiError::invalid(
            "system",
            "which system is this answer for?",
        ));
    };
    let note = field(&fields, "note")
        .map(str::to_owned)
        .filter(|n| !n.trim().is_empty());
    let answer = field(&fields, "answer").unwrap_or_default().to_owned();
    let result =
        crate::api::notices::answer(&state, &who, &id, None, system.clone(), &answer, note).await;
    notice_after(
        &state,
        &viewer,
        &id,
        result.map(|_| format!("Recorded: {system} {}.", answer.replace('_', " "))),
    )
    .await
}

pub(super) async fn notice_close(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((id, action)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let (who, fields) = match posted(&viewer, &body) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let permission = match action.as_str() {
        "done" => flowgate_authz::NoticeAction::RecordDone,
        "withdraw" => flowgate_authz::NoticeAction::Withdraw,
        other => return failure(ApiError::NotFound(format!("no action '{other}'"))),
    };
    let note = field(&fields, "note")
        .map(str::to_owned)
        .filter(|n| !n.trim().is_empty());
    let result = crate::api::notices::close_as(&state, &who, &id, None, note, permission).await;
    notice_after(
        &state,
        &viewer,
        &id,
        result.map(|t| format!("The notice is {}.", t.notice.state)),
    )
    .await
}

/// After a step on a notice: back to its page, with what happened or why it did not.
async fn notice_after(
    state: &AppState,
    viewer: &Viewer,
    id: &str,
    result: Result<String, ApiError>,
) -> Response {
    match result {
        Ok(said) => Redirect::to(&format!(
            "/notices/{id}?done={}",
            url::form_urlencoded::byte_serialize(said.as_bytes()).collect::<String>()
        ))
        .into_response(),
        Err(e) => {
            let (status, message) = e.public();
            let mut page = notice_view(state, viewer, id, None, Some(message)).await;
            *page.status_mut() = status;
            page
        }
    }
}

struct FlowListRow {
    id: String,
    source: String,
    target: String,
    items: String,
    method: String,
    status: String,
    request: String,
}

#[derive(Template)]
#[template(path = "flows.html")]
struct FlowsPage {
    chrome: Chrome,
    total: usize,
    rows: Vec<FlowListRow>,
    prev: Option<String>,
    next: Option<String>,
}

/// Every flow (interface) in the register, in id order, 50 to a page (2.4).
pub(super) async fn flows_page(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(q): Query<PageQuery>,
) -> Response {
    if viewer.person().is_none() {
        return to_sign_in();
    }
    let reg = state.register.read().await;
    let ids = reg.sorted_ids(RecordKind::Flow);
    let (range, prev, next) = paging("/flows", q.page, ids.len());
    render(&FlowsPage {
        chrome: Chrome::new(&state, &viewer, "flows"),
        total: ids.len(),
        rows: ids[range]
            .iter()
            .filter_map(|id| reg.flow(id))
            .map(|f| FlowListRow {
                id: f.id().to_owned(),
                source: f.source().id.to_string(),
                target: f.target().id.to_string(),
                items: join(f.data_items().map(|d| &d.id)),
                method: f.method().as_str().replace('_', " "),
                status: f.status().as_str().into(),
                request: f.to_flow().request.unwrap_or_default(),
            })
            .collect(),
        prev,
        next,
    })
}

#[derive(Template)]
#[template(path = "requests.html")]
struct RequestsPage {
    chrome: Chrome,
    states: Vec<(&'static str, bool)>,
    mine: bool,
    rows: Vec<RequestRow>,
    prev: Option<String>,
    next: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(super) struct RequestsQuery {
    state: Option<String>,
    mine: Option<bool>,
    page: Option<usize>,
}

/// Every request the viewer may see, newest first, by state and whose, 50 to a page.
pub(super) async fn requests_page(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(q): Query<RequestsQuery>,
) -> Response {
    let Some((who, _)) = viewer.person() else {
        return to_sign_in();
    };
    let chosen = q
        .state
        .as_deref()
        .filter(|s| !s.is_empty())
        .and_then(|s| RequestState::parse(s).ok());
    let mine = q.mine.unwrap_or(false);
    let page = q.page.unwrap_or(1).max(1);
    let filter = RequestFilter {
        requester: mine.then(|| who.clone()),
        state: chosen,
        limit: PAGE as i64,
        offset: ((page - 1) * PAGE) as i64,
        ..Default::default()
    };
    let (list, total) = match state.store.requests(&filter).await {
        Ok(found) => found,
        Err(e) => return failure(e.into()),
    };
    let reg = state.register.read().await;
    let rows = list
        .iter()
        .filter(|r| {
            state
                .authz
                .decide_request(&reg, who, RequestAction::View, r)
                .is_ok_and(|d| d.allowed)
        })
        .map(RequestRow::from)
        .collect();
    let path = format!(
        "/requests?state={}&mine={mine}",
        chosen.map(|s| s.as_str()).unwrap_or_default()
    );
    let (_, prev, next) = paging(&path, Some(page), total.max(0) as usize);
    render(&RequestsPage {
        chrome: Chrome::new(&state, &viewer, "requests"),
        states: RequestState::ALL
            .iter()
            .map(|s| (s.as_str(), Some(*s) == chosen))
            .collect(),
        mine,
        rows,
        prev,
        next,
    })
}
