//! Change notices and their notifications against a real SMTP server (aiosmtpd, started here on
//! a free loopback port) and a real webhook receiver: the right people get the right mail for a
//! change with depth-2 dependants; SMTP down during the change loses nothing and delivers once
//! when it returns; a webhook's signature checks out; messages left undelivered when a server
//! stops are delivered by the next one; the e-mail's link records an answer.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use flowgate_core::register::{Record, RecordKind};
use flowgate_server::notify::{NotifySettings, SmtpSettings, SmtpTls, Worker, verify_signature};
use flowgate_store::Backend;
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{App, BUILDER, DPT, REGISTRAR, spawn_app_with};

on_both!(
    the_owners_downstream_get_the_right_mail_and_answer_through_it,
    an_urgent_change_goes_ahead_and_the_record_says_who_was_not_ready,
    smtp_down_during_the_change_loses_nothing_and_delivers_once,
    messages_left_when_a_server_stops_are_delivered_by_the_next,
    a_webhook_call_is_signed_and_retried_with_the_same_key,
    request_steps_notify_the_approvers_and_the_requester,
    a_reminder_goes_once_to_those_who_have_not_answered,
);

const VLE_IAO: &str = "vle.iao@uni.example";
const VLE_ADMIN: &str = "vle.admin@uni.example";
const BI_IAO: &str = "bi.iao@uni.example";

/// sits → moodle (f-1) → analytics (f-2): analytics is at depth 2 of a change to sits; and a
/// retired flow sits → legacy that must not count.
fn dependants() -> Vec<Record> {
    let person = |email: &str| {
        Record::from_json(
            RecordKind::Person,
            json!({"email": email, "name": email, "kind": "staff", "authorised_until": null, "roles": []}),
        )
        .expect("person")
    };
    let system = |id: &str, owner: &str, admins: &[&str]| {
        Record::from_json(
            RecordKind::System,
            json!({"id": id, "name": format!("System {id}"), "description": null, "kind": "application",
                   "external": false, "organisation": null, "status": "active", "owner": owner,
                   "administrators": admins, "dpia_status": "approved", "dpia_reference": null,
                   "dpia_review_due": null, "architecture_checklist": "approved"}),
        )
        .expect("system")
    };
    let flow = |id: &str, s: &str, t: &str, status: &str| {
        Record::from_json(
            RecordKind::Flow,
            json!({"id": id, "source": s, "target": t, "data_items": ["student-enrolment"],
                   "method": "api", "frequency": null, "status": status, "request": null,
                   "established_on": null}),
        )
        .expect("flow")
    };
    vec![
        person(VLE_IAO),
        person(VLE_ADMIN),
        person(BI_IAO),
        system("moodle", VLE_IAO, &[VLE_ADMIN]),
        system("analytics", BI_IAO, &[]),
        system("legacy", BI_IAO, &[]),
        flow("f-1", "sits", "moodle", "active"),
        flow("f-2", "moodle", "analytics", "active"),
        flow("f-3", "sits", "legacy", "retired"),
    ]
}

/// A free loopback port (bound and released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// aiosmtpd writing every message it accepts into a maildir. Stopped when dropped.
struct Smtp {
    port: u16,
    maildir: PathBuf,
    child: Option<std::process::Child>,
    _dir: tempfile::TempDir,
}

impl Smtp {
    /// Reserves a port and a maildir without starting the server: SMTP is "down".
    fn down() -> Smtp {
        let dir = tempfile::tempdir().expect("tempdir");
        Smtp {
            port: free_port(),
            maildir: dir.path().join("mail"),
            child: None,
            _dir: dir,
        }
    }

    async fn start(&mut self) {
        let child = std::process::Command::new("python3")
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{}", self.port))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&self.maildir)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("start aiosmtpd (python3 -m pip install aiosmtpd; scripts/test does)");
        self.child = Some(child);
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("aiosmtpd did not start on port {}", self.port);
    }

    fn settings(&self) -> SmtpSettings {
        SmtpSettings {
            host: "127.0.0.1".into(),
            port: self.port,
            tls: SmtpTls::None,
            credentials: None,
            from: "Flowgate <flowgate@uni.example>".parse().expect("from"),
        }
    }

    /// Every message received: (to, subject, message-id, body).
    fn received(&self) -> Vec<Mail> {
        let mut out = Vec::new();
        for sub in ["new", "cur"] {
            let Ok(entries) = std::fs::read_dir(self.maildir.join(sub)) else {
                continue;
            };
            for e in entries.flatten() {
                out.push(Mail::parse(
                    &std::fs::read_to_string(e.path()).expect("mail"),
                ));
            }
        }
        out.sort_by(|a, b| (&a.to, &a.subject).cmp(&(&b.to, &b.subject)));
        out
    }

    /// Waits until `n` messages have arrived (the worker runs in the background).
    async fn wait_for(&self, n: usize) -> Vec<Mail> {
        for _ in 0..200 {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.received()
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        if let Some(c) = &mut self.child {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[derive(Debug)]
struct Mail {
    to: String,
    subject: String,
    message_id: String,
    body: String,
}

impl Mail {
    fn parse(raw: &str) -> Mail {
        let raw = raw.replace("\r\n", "\n");
        let (head, body) = raw.split_once("\n\n").unwrap_or((&raw, ""));
        // Unfold continued header lines.
        let head = head.replace("\n ", " ").replace("\n\t", " ");
        let header = |name: &str| {
            head.lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
                })
                .unwrap_or_default()
        };
        let body = if header("Content-Transfer-Encoding").eq_ignore_ascii_case("quoted-printable") {
            decode_qp(body)
        } else {
            body.to_owned()
        };
        Mail {
            to: header("To"),
            subject: header("Subject"),
            message_id: header("Message-ID"),
            body,
        }
    }
}

fn decode_qp(s: &str) -> String {
    let s = s.replace("=\n", "");
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'='
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn worker(app: &App, smtp: Option<&Smtp>) -> Worker {
    Worker::new(
        app.store.clone(),
        app.register.clone(),
        NotifySettings {
            smtp: smtp.map(Smtp::settings),
            poll: Duration::from_millis(100),
            ..NotifySettings::default()
        },
    )
    .expect("worker")
}

async fn app_with_dependants(backend: Backend) -> App {
    let mut app = spawn_app_with(backend, dependants()).await;
    for who in [VLE_IAO, VLE_ADMIN, BI_IAO] {
        let email = flowgate_core::Email::parse(who).expect("email");
        let (token, _) = app
            .store
            .create_token(&email, None, "test", Utc::now())
            .await
            .expect("token");
        app.tokens.insert(who, token);
    }
    app
}

async fn raise_notice(app: &App, urgent: bool) -> Value {
    let planned = (Utc::now().date_naive() + chrono::Duration::days(30)).to_string();
    let (s, v) = app
        .post(
            DPT,
            "/api/v1/notices",
            json!({"system": "sits", "summary": "Upgrade to SITS 10.2", "planned_for": planned,
                   "urgent": urgent, "details": "The enrolment view changes."}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    v
}

/// The link in an e-mail's text that answers for `system`.
fn answer_link(body: &str, system: &str) -> String {
    let at = body
        .find(&format!("({system}) is affected"))
        .unwrap_or_else(|| panic!("{system} in {body}"));
    let rest = &body[at..];
    let start = rest.find("http://").expect("link");
    rest[start..]
        .split_whitespace()
        .next()
        .expect("link")
        .to_owned()
}

async fn the_owners_downstream_get_the_right_mail_and_answer_through_it(backend: Backend) {
    let app = app_with_dependants(backend).await;
    let mut smtp = Smtp::down();
    smtp.start().await;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let running = tokio::spawn(worker(&app, Some(&smtp)).run(stopped));

    // Only the Data Product Team and product lines raise notices (the policy).
    let (s, v) = app
        .post(
            REGISTRAR,
            "/api/v1/notices",
            json!({"system": "sits", "summary": "x", "planned_for": "2099-01-01"}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    let (s, v) = app
        .post(
            DPT,
            "/api/v1/notices",
            json!({"system": "sits", "summary": "x", "planned_for": "01/02/2099"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["errors"][0]["field"], "planned_for", "{v}");

    let notice = raise_notice(&app, false).await;
    let affected: Vec<(&str, u64)> = notice["affected"]
        .as_array()
        .expect("affected")
        .iter()
        .map(|a| {
            (
                a["system"].as_str().unwrap_or(""),
                a["depth"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(affected, vec![("moodle", 1), ("analytics", 2)], "{notice}");
    assert_eq!(notice["notice_period_days"], 30);

    // One e-mail to each of moodle's IAO and IAA and analytics' IAO; none to legacy (retired
    // flow) or to sits.
    let mail = smtp.wait_for(3).await;
    let to: Vec<&str> = mail.iter().map(|m| m.to.as_str()).collect();
    assert_eq!(to, vec![BI_IAO, VLE_ADMIN, VLE_IAO], "{mail:#?}");
    for m in &mail {
        assert!(m.subject.contains("Change to sits on"), "{m:?}");
        assert!(m.subject.contains("Upgrade to SITS 10.2"), "{m:?}");
        assert!(m.message_id.ends_with("@flowgate>"), "{m:?}");
    }
    assert!(
        mail[0].body.contains("at depth 2, through moodle"),
        "{}",
        mail[0].body
    );
    assert!(
        mail[1].body.contains("directly, by f-1"),
        "{}",
        mail[1].body
    );

    // The IAA follows their link: the page changes nothing; the form records the answer.
    let link = answer_link(&mail[1].body, "moodle");
    let page = app.client.get(&link).send().await.expect("get");
    assert_eq!(page.status(), StatusCode::OK);
    assert!(
        page.headers()["content-security-policy"]
            .to_str()
            .unwrap_or("")
            .contains("default-src 'none'")
    );
    let html = page.text().await.expect("html");
    assert!(
        html.contains("You are answering for <strong>System moodle (moodle)</strong>"),
        "{html}"
    );
    let (_, v) = app.get(VLE_IAO, "/api/v1/notices/chg-1").await;
    assert_eq!(
        v["affected"][0]["readiness"], "pending",
        "opening the link records nothing"
    );
    let posted = app
        .client
        .post(&link)
        .form(&[("answer", "not_ready"), ("note", "")])
        .send()
        .await
        .expect("post");
    assert_eq!(posted.status(), StatusCode::CONFLICT);
    assert!(
        posted
            .text()
            .await
            .expect("html")
            .contains("a note is required with not_ready")
    );
    let posted = app
        .client
        .post(&link)
        .form(&[("answer", "ready"), ("note", "")])
        .send()
        .await
        .expect("post");
    assert_eq!(posted.status(), StatusCode::OK);
    assert!(
        posted
            .text()
            .await
            .expect("html")
            .contains("moodle is ready.")
    );
    let bad = app
        .client
        .get(app.url("/answer/0123abcd"))
        .send()
        .await
        .expect("get");
    assert_eq!(bad.status(), StatusCode::NOT_FOUND);

    // Through the API: not by someone else's system's owner; by analytics' IAO.
    let (s, v) = app
        .post(
            VLE_IAO,
            "/api/v1/notices/chg-1/answer",
            json!({"system": "analytics", "answer": "ready"}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    // Not ready yet: the change cannot be recorded done, and the owner is told why.
    let (s, v) = app
        .post(
            BI_IAO,
            "/api/v1/notices/chg-1/answer",
            json!({"system": "analytics", "answer": "not_ready", "note": "reports need rework"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = app
        .post(BUILDER, "/api/v1/notices/chg-1/done", json!({}))
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert!(
        v["detail"]
            .as_str()
            .unwrap_or("")
            .contains("'analytics' (not_ready)"),
        "{v}"
    );
    let (_, v) = app.get(DPT, "/api/v1/notices/chg-1").await;
    assert_eq!(v["unanswered"], json!([]));
    assert_eq!(v["not_ready"], json!(["analytics"]));
    let actions: Vec<&str> = v["history"]
        .as_array()
        .expect("history")
        .iter()
        .map(|h| h["action"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        actions,
        vec!["raise", "ready (moodle)", "not_ready (analytics)"]
    );
    // The change owner hears that analytics is not ready.
    let mail = smtp.wait_for(4).await;
    let to_owner: Vec<&Mail> = mail.iter().filter(|m| m.to == DPT).collect();
    assert_eq!(to_owner.len(), 1, "{mail:#?}");
    assert!(to_owner[0].body.contains("reports need rework"));

    let (s, v) = app
        .post(
            BI_IAO,
            "/api/v1/notices/chg-1/answer",
            json!({"system": "analytics", "answer": "ready"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = app
        .post(
            BUILDER,
            "/api/v1/notices/chg-1/done",
            json!({"note": "done on the day"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["state"], "done");
    let mail = smtp.wait_for(7).await;
    assert_eq!(
        mail.iter()
            .filter(|m| m.subject.starts_with("Done:"))
            .count(),
        3,
        "{mail:#?}"
    );

    let _ = stop.send(true);
    running.await.expect("worker stops");
    let (_, v) = app.get(super::ADMIN, "/api/v1/outbox").await;
    assert_eq!(
        (v["pending"].clone(), v["failed"].clone()),
        (json!(0), json!(0)),
        "{v}"
    );
    app.stop().await;
}

async fn an_urgent_change_goes_ahead_and_the_record_says_who_was_not_ready(backend: Backend) {
    let app = app_with_dependants(backend).await;
    raise_notice(&app, true).await;
    let (s, v) = app
        .post(
            VLE_IAO,
            "/api/v1/notices/chg-1/answer",
            json!({"system": "moodle", "answer": "ready"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = app
        .post(
            DPT,
            "/api/v1/notices/chg-1/done",
            json!({"note": "security fix"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["went_ahead_while_not_ready"], json!(["analytics"]), "{v}");
    let (s, v) = app
        .post(
            BI_IAO,
            "/api/v1/notices/chg-1/answer",
            json!({"system": "analytics", "answer": "ready"}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "closed: {v}");
    app.stop().await;
}

async fn smtp_down_during_the_change_loses_nothing_and_delivers_once(backend: Backend) {
    let app = app_with_dependants(backend).await;
    let mut smtp = Smtp::down();
    let w = worker(&app, Some(&smtp));
    raise_notice(&app, false).await;
    let now = Utc::now();
    assert_eq!(w.deliver_due(now).await.expect("deliver"), 3);
    let (_, v) = app.get(super::ADMIN, "/api/v1/outbox?status=pending").await;
    assert_eq!(v["pending"], 3, "{v}");
    for m in v["items"].as_array().expect("items") {
        assert_eq!(m["attempts"], 1);
        assert!(
            m["last_error"]
                .as_str()
                .unwrap_or("")
                .contains("SMTP 127.0.0.1"),
            "{m}"
        );
    }
    // Still down, and before the backoff: nothing is tried.
    assert_eq!(w.deliver_due(now).await.expect("deliver"), 0);
    smtp.start().await;
    let later = now + chrono::Duration::seconds(31);
    assert_eq!(w.deliver_due(later).await.expect("deliver"), 3);
    assert_eq!(
        w.deliver_due(later + chrono::Duration::days(1))
            .await
            .expect("deliver"),
        0
    );
    let mail = smtp.received();
    let to: Vec<&str> = mail.iter().map(|m| m.to.as_str()).collect();
    assert_eq!(to, vec![BI_IAO, VLE_ADMIN, VLE_IAO], "each once");
    let (_, v) = app.get(super::ADMIN, "/api/v1/outbox").await;
    assert_eq!(
        (v["pending"].clone(), v["delivered"].clone()),
        (json!(0), json!(3)),
        "{v}"
    );
    app.stop().await;
}

async fn messages_left_when_a_server_stops_are_delivered_by_the_next(backend: Backend) {
    let app = app_with_dependants(backend).await;
    let mut smtp = Smtp::down();
    smtp.start().await;
    // No worker runs: the server "stops" with three messages queued.
    raise_notice(&app, false).await;
    let store = app.db.open().await;
    let register = std::sync::Arc::new(tokio::sync::RwLock::new(
        store.load_register().await.expect("load"),
    ));
    let next = Worker::new(
        store.clone(),
        register,
        NotifySettings {
            smtp: Some(smtp.settings()),
            ..NotifySettings::default()
        },
    )
    .expect("worker");
    assert_eq!(next.deliver_due(Utc::now()).await.expect("deliver"), 3);
    assert_eq!(smtp.received().len(), 3);
    store.close().await;
    app.stop().await;
}

/// Calls received by the webhook receiver: (idempotency key, event, signature valid, body).
type Calls = Arc<Mutex<Vec<(String, String, bool, Value)>>>;

/// A webhook receiver that checks each call's signature, and answers 503 to the first call.
async fn receiver(secret: Arc<Mutex<String>>) -> (SocketAddr, Calls) {
    use axum::body::Bytes;
    use axum::http::HeaderMap;
    let calls: Calls = Arc::default();
    let seen = calls.clone();
    let handler = move |headers: HeaderMap, body: Bytes| {
        let calls = seen.clone();
        let secret = secret.lock().expect("secret").clone();
        async move {
            let h = |k: &str| {
                headers
                    .get(k)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_owned()
            };
            let valid = verify_signature(
                &secret,
                &h("flowgate-signature"),
                &body,
                Utc::now().timestamp(),
                300,
            )
            .is_ok();
            let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let mut calls = calls.lock().expect("calls");
            calls.push((
                h("flowgate-idempotency-key"),
                h("flowgate-event"),
                valid,
                json,
            ));
            if calls.len() == 1 {
                StatusCode::SERVICE_UNAVAILABLE
            } else if valid {
                StatusCode::OK
            } else {
                StatusCode::UNAUTHORIZED
            }
        }
    };
    let router = axum::Router::new().route("/hook", axum::routing::post(handler));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, router).await });
    (addr, calls)
}

async fn a_webhook_call_is_signed_and_retried_with_the_same_key(backend: Backend) {
    let app = app_with_dependants(backend).await;
    let secret = Arc::new(Mutex::new(String::new()));
    let (addr, calls) = receiver(secret.clone()).await;
    // Registered by an administrator, for the analytics system.
    let (s, v) = app
        .post(
            DPT,
            "/api/v1/webhooks",
            json!({"url": format!("http://{addr}/hook"), "system": "analytics"}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    let (s, v) = app
        .post(
            super::ADMIN,
            "/api/v1/webhooks",
            json!({"url": "ftp://x/hook", "system": "analytics"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let (s, v) = app
        .post(
            super::ADMIN,
            "/api/v1/webhooks",
            json!({"url": format!("http://{addr}/hook"), "system": "analytics"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    *secret.lock().expect("secret") = v["secret"].as_str().expect("secret").to_owned();
    let (_, list) = app.get(super::ADMIN, "/api/v1/webhooks").await;
    assert!(list[0].get("secret").is_none(), "never listed: {list}");

    raise_notice(&app, false).await;
    // E-mail has no server here: only the webhook goes.
    let w = worker(&app, None);
    let now = Utc::now();
    assert_eq!(w.deliver_due(now).await.expect("deliver"), 1);
    assert_eq!(
        w.deliver_due(now + chrono::Duration::seconds(31))
            .await
            .expect("deliver"),
        1
    );
    assert_eq!(
        w.deliver_due(now + chrono::Duration::days(1))
            .await
            .expect("deliver"),
        0
    );
    let calls = calls.lock().expect("calls").clone();
    assert_eq!(calls.len(), 2, "refused once, then delivered: {calls:?}");
    assert_eq!(
        calls[0].0, calls[1].0,
        "the same idempotency key both times"
    );
    assert!(calls.iter().all(|c| c.2), "signatures valid: {calls:?}");
    assert_eq!(calls[1].1, "notice.raised");
    assert_eq!(calls[1].3["data"]["notice"], "chg-1");
    assert_eq!(calls[1].3["systems"], json!(["analytics"]));
    // A tampered body does not verify.
    let body = calls[1].3.to_string();
    let header = flowgate_server::notify::signature_header(
        &secret.lock().expect("s"),
        now.timestamp(),
        body.as_bytes(),
    );
    assert!(
        verify_signature(
            &secret.lock().expect("s"),
            &header,
            body.as_bytes(),
            now.timestamp(),
            300
        )
        .is_ok()
    );
    assert!(
        verify_signature(
            &secret.lock().expect("s"),
            &header,
            b"{}",
            now.timestamp(),
            300
        )
        .is_err()
    );
    assert!(
        verify_signature(
            &secret.lock().expect("s"),
            &header,
            body.as_bytes(),
            now.timestamp() + 3600,
            300
        )
        .is_err()
    );
    app.stop().await;
}

/// Request workflow events go through the same outbox.
async fn request_steps_notify_the_approvers_and_the_requester(backend: Backend) {
    let app = app_with_dependants(backend).await;
    let id = app.raise("moodle").await;
    assert_eq!(
        app.step(DPT, &id, "triage", json!({})).await,
        "awaiting_approval"
    );
    let (_, v) = app.get(super::ADMIN, "/api/v1/outbox").await;
    let mut got: Vec<(String, String)> = v["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|m| {
            (
                m["event"].as_str().unwrap_or("").into(),
                m["recipient"].as_str().unwrap_or("").into(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            ("request.awaiting_approval".to_owned(), REGISTRAR.to_owned()),
            ("request.awaiting_approval".to_owned(), VLE_IAO.to_owned()),
        ]
    );
    app.step(REGISTRAR, &id, "approve", json!({})).await;
    assert_eq!(
        app.step(VLE_IAO, &id, "approve", json!({})).await,
        "approved"
    );
    let (_, v) = app.get(super::ADMIN, "/api/v1/outbox?limit=1").await;
    assert_eq!(v["items"][0]["event"], "request.approved");
    assert_eq!(v["items"][0]["recipient"], super::REQUESTER);
    assert_eq!(v["pending"], 3);
    app.stop().await;
}

async fn a_reminder_goes_once_to_those_who_have_not_answered(backend: Backend) {
    let app = app_with_dependants(backend).await;
    let mut smtp = Smtp::down();
    smtp.start().await;
    let planned = (Utc::now().date_naive() + chrono::Duration::days(5)).to_string();
    let (s, v) = app
        .post(
            DPT,
            "/api/v1/notices",
            json!({"system": "sits", "summary": "Patch", "planned_for": planned}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, v) = app
        .post(
            VLE_ADMIN,
            "/api/v1/notices/chg-1/answer",
            json!({"system": "moodle", "answer": "ready"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let w = |days: i64| {
        Worker::new(
            app.store.clone(),
            app.register.clone(),
            NotifySettings {
                smtp: Some(smtp.settings()),
                remind_days: days,
                ..NotifySettings::default()
            },
        )
        .expect("worker")
    };
    let now = Utc::now();
    // Five days out: not yet due with a three-day reminder; due with a seven-day one, once.
    assert_eq!(w(3).send_reminders(now).await.expect("reminders"), 0);
    assert_eq!(w(7).send_reminders(now).await.expect("reminders"), 1);
    assert_eq!(w(7).send_reminders(now).await.expect("reminders"), 0);
    w(7).deliver_due(now).await.expect("deliver");
    let reminders: Vec<Mail> = smtp
        .received()
        .into_iter()
        .filter(|m| m.subject.starts_with("Reminder"))
        .collect();
    let to: Vec<&str> = reminders.iter().map(|m| m.to.as_str()).collect();
    assert_eq!(
        to,
        vec![BI_IAO],
        "only analytics has not answered: {reminders:#?}"
    );
    assert!(
        reminders[0].body.contains("a change due in 5 days"),
        "{}",
        reminders[0].body
    );
    let (_, v) = app.get(DPT, "/api/v1/notices/chg-1").await;
    assert!(v["reminded_at"].is_string(), "{v}");
    let last = v["history"]
        .as_array()
        .and_then(|h| h.last())
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        (last["action"].clone(), last["actor"].clone()),
        (json!("remind"), json!("flowgate"))
    );
    app.stop().await;
}
