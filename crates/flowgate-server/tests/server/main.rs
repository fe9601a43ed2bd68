//! The server over a real socket, on SQLite and PostgreSQL: health, the request workflow from
//! raising to a recorded flow, the review path, concurrency, tokens and errors, and the OpenAPI
//! document against the routes.

mod openapi;

use std::collections::BTreeMap;
use std::net::SocketAddr;

use chrono::Utc;
use flowgate_authz::Authz;
use flowgate_core::register::Record;
use flowgate_server::{AppState, serve};
use flowgate_store::testing::TestDatabase;
use flowgate_store::{Backend, ChangeContext, Store};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// A running server on its own fresh database, with a token for each person of the fixture.
struct App {
    addr: SocketAddr,
    client: reqwest::Client,
    tokens: BTreeMap<&'static str, String>,
    store: Store,
    register: std::sync::Arc<tokio::sync::RwLock<flowgate_core::register::Register>>,
    db: TestDatabase,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

const REQUESTER: &str = "a.researcher@uni.example";
const DPT: &str = "dpt@uni.example";
const REGISTRAR: &str = "registrar@uni.example";
const LIBRARIAN: &str = "librarian@uni.example";
const BUILDER: &str = "builder@uni.example";
const ADMIN: &str = "admin@uni.example";

fn fixture() -> Vec<Record> {
    let person = |email: &str, roles: &str| {
        json!({"email": email, "name": email, "kind": "staff", "authorised_until": null,
               "roles": if roles.is_empty() { vec![] } else { vec![roles] }})
    };
    let system = |id: &str, owner: &str| {
        json!({"id": id, "name": id, "description": null, "kind": "application", "external": false,
               "organisation": null, "status": "active", "owner": owner, "administrators": [],
               "dpia_status": "approved", "dpia_reference": format!("DART-{id}"),
               "dpia_review_due": null, "architecture_checklist": "approved"})
    };
    let mut out = Vec::new();
    for (e, r) in [
        (REQUESTER, ""),
        (DPT, "data_product_team"),
        (REGISTRAR, ""),
        (LIBRARIAN, ""),
        (BUILDER, "product_line"),
        (ADMIN, "admin"),
    ] {
        out.push(
            Record::from_json(flowgate_core::register::RecordKind::Person, person(e, r))
                .expect("person"),
        );
    }
    for (id, owner) in [("sits", REGISTRAR), ("alma", LIBRARIAN)] {
        out.push(
            Record::from_json(
                flowgate_core::register::RecordKind::System,
                system(id, owner),
            )
            .expect("system"),
        );
    }
    out.push(
        Record::from_json(
            flowgate_core::register::RecordKind::DataItem,
            json!({"id": "student-enrolment", "name": "Enrolment", "description": null,
                   "classification": "confidential", "personal_data": true,
                   "special_category": false, "authoritative_system": "sits"}),
        )
        .expect("item"),
    );
    out
}

async fn spawn_app(backend: Backend) -> App {
    spawn_app_with(backend, Vec::new()).await
}

/// A running server whose register is the fixture and `extra`.
async fn spawn_app_with(backend: Backend, extra: Vec<Record>) -> App {
    let db = TestDatabase::new(backend).await;
    let store = db.open().await;
    let mut reg = store.load_register().await.expect("load");
    let ctx = ChangeContext {
        actor: "test",
        now: Utc::now(),
        summary: None,
    };
    let mut records = fixture();
    records.extend(extra);
    store
        .apply(&mut reg, records, &ctx, &mut |_| {})
        .await
        .expect("fixture");
    let mut tokens = BTreeMap::new();
    for who in [REQUESTER, DPT, REGISTRAR, LIBRARIAN, BUILDER, ADMIN] {
        let email = flowgate_core::Email::parse(who).expect("email");
        let (token, _) = store
            .create_token(&email, None, "test", Utc::now())
            .await
            .expect("token");
        tokens.insert(who, token);
    }
    let mut state = AppState::load(store.clone(), Authz::builtin().expect("policy"))
        .await
        .expect("state");
    // The pages' tests sign in by choosing a person; the API ignores it.
    state.dev_sign_in = true;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    store.set_public_url(&format!("http://{addr}"));
    let register = state.register.clone();
    let server = tokio::spawn(serve(state, listener, async {
        let _ = stopped.await;
    }));
    App {
        addr,
        client: reqwest::Client::new(),
        tokens,
        store,
        register,
        db,
        stop,
        server,
    }
}

impl App {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    async fn call(
        &self,
        method: reqwest::Method,
        who: &str,
        path: &str,
        body: Option<Value>,
        if_match: Option<&str>,
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let mut req = self.client.request(method, self.url(path));
        if let Some(t) = self.tokens.get(who) {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        if let Some(m) = if_match {
            req = req.header("If-Match", m);
        }
        let resp = req.send().await.expect("send");
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.expect("body");
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, headers, value)
    }

    async fn post(&self, who: &str, path: &str, body: Value) -> (StatusCode, Value) {
        let (s, _, v) = self
            .call(reqwest::Method::POST, who, path, Some(body), None)
            .await;
        (s, v)
    }

    async fn get(&self, who: &str, path: &str) -> (StatusCode, Value) {
        let (s, _, v) = self.call(reqwest::Method::GET, who, path, None, None).await;
        (s, v)
    }

    /// Takes an action and expects it to succeed, returning the new state.
    async fn step(&self, who: &str, id: &str, action: &str, body: Value) -> String {
        let (s, v) = self
            .post(who, &format!("/api/v1/requests/{id}/{action}"), body)
            .await;
        assert_eq!(s, StatusCode::OK, "{action} by {who}: {v}");
        v["state"].as_str().unwrap_or_default().to_owned()
    }

    async fn raise(&self, target: &str) -> String {
        let (s, v) = self
            .post(
                REQUESTER,
                "/api/v1/requests",
                json!({"requester": REQUESTER, "justification": "borrowing rights by programme",
                       "source": "sits", "target": target, "data_items": ["student-enrolment"],
                       "intended_use": "loan periods", "ticket": "INC-42"}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        v["id"].as_str().expect("id").to_owned()
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        self.server.await.expect("join").expect("graceful shutdown");
        self.store.close().await;
        self.db.drop_database().await;
    }
}

macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test] async fn $name() { super::$name(flowgate_store::Backend::Sqlite).await; })*
        }
        mod postgres {
            $(#[tokio::test] async fn $name() { super::$name(flowgate_store::Backend::Postgres).await; })*
        }
    };
}

on_both!(
    health_and_readiness,
    a_request_goes_from_raised_to_a_recorded_flow,
    the_review_path_registers_the_target_and_records_its_dpia,
    simultaneous_approvals_and_refusals_end_in_one_outcome,
    tokens_and_errors_are_what_a_client_expects,
);

// After `on_both!`, which they use.
mod notify;
mod pages;

async fn health_and_readiness(backend: Backend) {
    let app = spawn_app(backend).await;
    let (s, _, body) = app
        .call(reqwest::Method::GET, "", "/healthz", None, None)
        .await;
    assert_eq!((s, body), (StatusCode::OK, Value::String("ok".into())));
    let (s, headers, _) = app
        .call(reqwest::Method::GET, "", "/readyz", None, None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        headers.contains_key("x-request-id"),
        "a request id on every response"
    );
    let (s, v) = app.get(REQUESTER, "/api/v1/register").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        v,
        json!({"people": 6, "systems": 2, "data_items": 1, "flows": 0})
    );
    app.store.close().await;
    let (s, _, _) = app
        .call(reqwest::Method::GET, "", "/readyz", None, None)
        .await;
    assert_eq!(
        s,
        StatusCode::SERVICE_UNAVAILABLE,
        "not ready once the database is gone"
    );
    let _ = app.stop.send(());
    app.server.await.expect("join").expect("graceful shutdown");
    app.db.drop_database().await;
}

/// 2.1–2.4 end to end: raise, triage, both IAOs approve, the product line prioritises, starts and
/// completes; the flow is in the register, linked to the request; the audit chain verifies.
async fn a_request_goes_from_raised_to_a_recorded_flow(backend: Backend) {
    let app = spawn_app(backend).await;
    let id = app.raise("alma").await;
    assert_eq!(
        app.step(DPT, &id, "triage", json!({})).await,
        "awaiting_approval"
    );
    // Awaiting approval: the two IAOs see it in their list.
    let (_, mine) = app
        .get(REGISTRAR, "/api/v1/requests?awaiting_my_approval=true")
        .await;
    assert_eq!(mine["items"][0]["id"], json!(id));
    assert_eq!(
        app.step(REGISTRAR, &id, "approve", json!({})).await,
        "awaiting_approval"
    );
    let (_, mine) = app
        .get(REGISTRAR, "/api/v1/requests?awaiting_my_approval=true")
        .await;
    assert_eq!(
        mine["items"],
        json!([]),
        "approved: no longer waiting for the registrar"
    );
    assert_eq!(
        app.step(LIBRARIAN, &id, "approve", json!({})).await,
        "approved"
    );
    assert_eq!(
        app.step(BUILDER, &id, "prioritise", json!({"priority": "high"}))
            .await,
        "prioritised"
    );
    assert_eq!(
        app.step(BUILDER, &id, "start", json!({})).await,
        "in_progress"
    );
    assert_eq!(
        app.step(
            BUILDER,
            &id,
            "complete",
            json!({"method": "api", "frequency": "daily"})
        )
        .await,
        "completed"
    );
    let (s, v) = app.get(REQUESTER, &format!("/api/v1/requests/{id}")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["flow"], json!(format!("flow-{id}")));
    let actions: Vec<&str> = v["history"]
        .as_array()
        .expect("history")
        .iter()
        .map(|h| h["action"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        actions,
        [
            "raise",
            "triage",
            "approve",
            "approve",
            "prioritise",
            "start",
            "complete"
        ]
    );
    // The flow is recorded in the register (2.4), in the store and in the server's index.
    let reg = app.store.load_register().await.expect("load");
    let flow = reg.flow(&format!("flow-{id}")).expect("the flow").to_flow();
    assert_eq!(flow.request.as_deref(), Some(id.as_str()));
    let (_, counts) = app.get(REQUESTER, "/api/v1/register").await;
    assert_eq!(counts["flows"], json!(1));
    let (_, impact) = app.get(LIBRARIAN, "/api/v1/systems/sits/impact").await;
    assert_eq!(
        impact["affected"],
        json!([{"system": "alma", "depth": 1, "flows": [format!("flow-{id}")],
                "owner": LIBRARIAN, "administrators": []}])
    );
    let v = app.store.verify().await.expect("verify");
    assert!(v.failure.is_none(), "the chain verifies: {:?}", v.failure);
    app.stop().await;
}

/// 2.2: a request into a system not yet in the register waits for review; the Data Product Team
/// registers the system with its DPIA and it moves on to the IAOs, then is approved.
async fn the_review_path_registers_the_target_and_records_its_dpia(backend: Backend) {
    let app = spawn_app(backend).await;
    let id = app.raise("talis").await;
    assert_eq!(
        app.step(DPT, &id, "triage", json!({})).await,
        "awaiting_review"
    );
    let (_, v) = app.get(DPT, &format!("/api/v1/requests/{id}")).await;
    assert_eq!(v["assessment"]["outcome"], json!("needs_review"));
    assert!(
        v["assessment"]["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .any(|f| f["rule"] == json!("P1") && f["clause"] == json!("1.3.3")),
        "{v}"
    );
    // Registered, but its DPIA is in progress: still waiting.
    let mut talis = json!({"id": "talis", "name": "Talis Aspire", "description": null,
        "kind": "saas", "external": false, "organisation": null, "status": "active",
        "owner": LIBRARIAN, "administrators": [], "dpia_status": "in_progress",
        "dpia_reference": "DART-2026-090", "dpia_review_due": null,
        "architecture_checklist": "approved"});
    let (s, _, w) = app
        .call(
            reqwest::Method::PUT,
            DPT,
            "/api/v1/systems/talis",
            Some(talis.clone()),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{w}");
    assert_eq!(w["reassessed"][0]["state"], json!("awaiting_review"));
    // The DPIA is approved: the request moves on.
    talis["dpia_status"] = json!("approved");
    let (s, _, w) = app
        .call(
            reqwest::Method::PUT,
            DPT,
            "/api/v1/systems/talis",
            Some(talis),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{w}");
    assert_eq!(w["change"], json!("updated"));
    assert_eq!(w["reassessed"][0]["state"], json!("awaiting_approval"));
    assert_eq!(
        app.step(REGISTRAR, &id, "approve", json!({})).await,
        "awaiting_approval"
    );
    assert_eq!(
        app.step(LIBRARIAN, &id, "approve", json!({})).await,
        "approved"
    );
    let v = app.store.verify().await.expect("verify");
    assert!(v.failure.is_none(), "{:?}", v.failure);
    app.stop().await;
}

/// Many approvals and refusals of one request at the same moment, all naming the version they
/// read: exactly one wins, every other gets 412 or 409, nothing is lost, and the chain holds.
async fn simultaneous_approvals_and_refusals_end_in_one_outcome(backend: Backend) {
    let app = spawn_app(backend).await;
    let id = app.raise("alma").await;
    app.step(DPT, &id, "triage", json!({})).await;
    let (_, headers, _) = app
        .call(
            reqwest::Method::GET,
            REQUESTER,
            &format!("/api/v1/requests/{id}"),
            None,
            None,
        )
        .await;
    let etag = headers
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .expect("etag")
        .to_owned();
    let mut attempts = Vec::new();
    for i in 0..24 {
        let (who, action, body) = match i % 4 {
            0 => (REGISTRAR, "approve", json!({})),
            1 => (LIBRARIAN, "approve", json!({})),
            2 => (
                DPT,
                "refuse",
                json!({"reason": "duplicate of another request"}),
            ),
            _ => (LIBRARIAN, "refuse", json!({"reason": "not needed"})),
        };
        let (app, id, etag) = (&app, id.clone(), etag.clone());
        attempts.push(async move {
            let (s, _, _) = app
                .call(
                    reqwest::Method::POST,
                    who,
                    &format!("/api/v1/requests/{id}/{action}"),
                    Some(body),
                    Some(&etag),
                )
                .await;
            s
        });
    }
    let statuses = futures_util::future::join_all(attempts).await;
    let won = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    assert_eq!(won, 1, "exactly one wins: {statuses:?}");
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::OK || *s == StatusCode::PRECONDITION_FAILED),
        "{statuses:?}"
    );
    let (_, v) = app.get(REQUESTER, &format!("/api/v1/requests/{id}")).await;
    assert_eq!(v["version"], json!(3), "raised, triaged, and one more step");
    assert_eq!(v["history"].as_array().map(Vec::len), Some(3));
    let verified = app.store.verify().await.expect("verify");
    assert!(verified.failure.is_none(), "{:?}", verified.failure);
    app.stop().await;
}

async fn tokens_and_errors_are_what_a_client_expects(backend: Backend) {
    let app = spawn_app(backend).await;
    // No token: 401 with a problem and a challenge.
    let (s, headers, v) = app
        .call(
            reqwest::Method::GET,
            "nobody",
            "/api/v1/requests",
            None,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(headers["content-type"], "application/problem+json");
    assert!(headers.contains_key("www-authenticate"));
    assert_eq!(v["status"], json!(401));
    // A token that may not: 403, naming what decided it.
    let (s, v) = app.get(REQUESTER, "/api/v1/tokens").await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert!(
        v["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("manage tokens"),
        "{v}"
    );
    // A bad field: 422 naming it.
    let (s, v) = app
        .post(
            REQUESTER,
            "/api/v1/assessments",
            json!({"requester": REQUESTER, "source": "sits"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        v["errors"]
            .as_array()
            .expect("errors")
            .iter()
            .any(|e| e["field"] == json!("target")),
        "{v}"
    );
    // Not JSON: 400.
    let resp = app
        .client
        .post(app.url("/api/v1/assessments"))
        .bearer_auth(&app.tokens[REQUESTER])
        .body("{not json")
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    // A step the workflow refuses: 409 saying why.
    let id = app.raise("alma").await;
    let (s, v) = app
        .post(
            BUILDER,
            &format!("/api/v1/requests/{id}/withdraw"),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    let (s, v) = app
        .post(
            REQUESTER,
            &format!("/api/v1/requests/{id}/answer"),
            json!({"answer": "x"}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert!(
        v["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("returned"),
        "{v}"
    );
    // A stale If-Match: 412.
    let (s, _, _) = app
        .call(
            reqwest::Method::POST,
            DPT,
            &format!("/api/v1/requests/{id}/triage"),
            Some(json!({})),
            Some("\"7\""),
        )
        .await;
    assert_eq!(s, StatusCode::PRECONDITION_FAILED);
    // The admin creates a token, it works, it is revoked, it stops working.
    let (s, v) = app
        .post(ADMIN, "/api/v1/tokens", json!({"person": LIBRARIAN}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let token = v["token"].as_str().expect("token").to_owned();
    let with = |t: &str| {
        app.client
            .get(app.url("/api/v1/me"))
            .bearer_auth(t.to_owned())
            .send()
    };
    assert_eq!(with(&token).await.expect("send").status(), StatusCode::OK);
    let tid = v["id"].as_str().expect("id").to_owned();
    let (s, _, _) = app
        .call(
            reqwest::Method::DELETE,
            ADMIN,
            &format!("/api/v1/tokens/{tid}"),
            None,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(
        with(&token).await.expect("send").status(),
        StatusCode::UNAUTHORIZED
    );
    // Impact (2.5): alma is downstream of sits once a flow is recorded; paged.
    let (s, v) = app.get(REQUESTER, "/api/v1/systems/sits/impact").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["total"], json!(0), "no flows yet: {v}");
    let (s, _) = app.get(REQUESTER, "/api/v1/systems/nowhere/impact").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, v) = app
        .get(REQUESTER, "/api/v1/systems/sits/impact?depth=0")
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    // A body over the limit is refused, and the server still answers.
    let big = "x".repeat(flowgate_server::api::MAX_BODY + 1);
    let resp = app
        .client
        .post(app.url("/api/v1/assessments"))
        .bearer_auth(&app.tokens[REQUESTER])
        .body(big)
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    app.stop().await;
}
