//! The web pages over the socket on both backends (the browser tests run them on SQLite in
//! chromium): signing in, the session cookie's attributes, the security headers, CSRF, and every
//! page answering from either database.

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};

use super::{App, REQUESTER, spawn_app};
use flowgate_store::Backend;

on_both!(pages_sign_in_raise_and_list_on_either_database);

/// A browser without JavaScript: no redirects followed, the session cookie carried by hand.
struct Browser {
    http: reqwest::Client,
    cookie: Option<String>,
}

impl Browser {
    fn new() -> Browser {
        Browser {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            cookie: None,
        }
    }

    async fn get(&self, app: &App, path: &str) -> (StatusCode, HeaderMap, String) {
        let mut req = self.http.get(app.url(path));
        if let Some(c) = &self.cookie {
            req = req.header("cookie", c);
        }
        let r = req.send().await.expect("get");
        (
            r.status(),
            r.headers().clone(),
            r.text().await.expect("body"),
        )
    }

    async fn post(
        &self,
        app: &App,
        path: &str,
        form: &[(&str, &str)],
    ) -> (StatusCode, HeaderMap, String) {
        let mut req = self.http.post(app.url(path)).form(form);
        if let Some(c) = &self.cookie {
            req = req.header("cookie", c);
        }
        let r = req.send().await.expect("post");
        (
            r.status(),
            r.headers().clone(),
            r.text().await.expect("body"),
        )
    }
}

/// The CSRF token in a page's forms.
fn csrf(html: &str) -> String {
    let at = html
        .find("name=\"csrf\" value=\"")
        .expect("a form with a CSRF token");
    html[at + 19..].split('"').next().expect("token").to_owned()
}

async fn pages_sign_in_raise_and_list_on_either_database(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut b = Browser::new();
    // Not signed in: every page sends you to sign in.
    let (s, h, _) = b.get(&app, "/").await;
    assert_eq!(
        (s, h[LOCATION].to_str().unwrap_or("")),
        (StatusCode::SEE_OTHER, "/sign-in")
    );
    let (s, h, html) = b.get(&app, "/sign-in").await;
    assert_eq!(s, StatusCode::OK);
    let csp = h["content-security-policy"].to_str().unwrap_or("");
    assert!(
        csp.contains("default-src 'none'")
            && csp.contains("script-src 'self'")
            && !csp.contains("unsafe"),
        "{csp}"
    );
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["referrer-policy"], "no-referrer");
    assert!(html.contains("Development sign-in"), "marked on every page");
    // Somebody the register does not know cannot sign in.
    let (s, _, _) = b
        .post(&app, "/sign-in", &[("person", "nobody@uni.example")])
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, h, _) = b.post(&app, "/sign-in", &[("person", REQUESTER)]).await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let set = h[SET_COOKIE].to_str().unwrap_or("").to_owned();
    for attr in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/"] {
        assert!(set.contains(attr), "{set}");
    }
    b.cookie = Some(set.split(';').next().unwrap_or("").to_owned());

    let (s, _, html) = b.get(&app, "/").await;
    assert_eq!(s, StatusCode::OK);
    assert!(html.contains(&format!("Signed in as {REQUESTER}")));
    let (_, _, form) = b.get(&app, "/requests/new").await;
    let token = csrf(&form);
    let ask = [
        ("source", "sits"),
        ("target", "alma"),
        ("data_items", "student-enrolment"),
        ("justification", "borrowing rights"),
        ("intended_use", "loan periods"),
    ];
    // Without the session's token, nothing is raised.
    let mut forged = ask.to_vec();
    forged.extend([("csrf", "forged"), ("step", "raise")]);
    let (s, _, _) = b.post(&app, "/requests/new", &forged).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // Assessed as typed, then raised.
    let mut with = ask.to_vec();
    with.push(("csrf", &token));
    let (s, _, fragment) = b.post(&app, "/requests/assess", &with).await;
    assert_eq!(s, StatusCode::OK);
    assert!(fragment.contains("Proceed"), "{fragment}");
    with.push(("step", "raise"));
    let (s, h, _) = b.post(&app, "/requests/new", &with).await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    assert!(
        h[LOCATION]
            .to_str()
            .unwrap_or("")
            .starts_with("/requests/req-1?"),
        "{h:?}"
    );

    for (path, expect) in [
        ("/requests/req-1", "with data product team"),
        ("/requests?mine=true", "req-1"),
        ("/requests?state=refused", "No request matches"),
        ("/systems?q=sits", "sits"),
        ("/systems?show=dpia-due", "systems"),
        ("/systems/sits", "Flows into and out of sits"),
        ("/flows", "flows"),
        ("/data-items", "student-enrolment"),
        ("/people", REQUESTER),
        ("/notices", "Change notices"),
        ("/lint", "active flows"),
    ] {
        let (s, _, html) = b.get(&app, path).await;
        assert_eq!(s, StatusCode::OK, "{path}");
        assert!(html.contains(expect), "{path}: {expect}");
    }
    let (s, _, _) = b.get(&app, "/audit").await;
    assert_eq!(
        s,
        StatusCode::FORBIDDEN,
        "the audit log is not a requester's"
    );
    let (s, _, _) = b.get(&app, "/systems/nowhere").await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    let (s, h, _) = b.post(&app, "/sign-out", &[("csrf", &token)]).await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    assert!(h[SET_COOKIE].to_str().unwrap_or("").contains("Max-Age=0"));
    let (s, _, _) = b.get(&app, "/").await;
    assert_eq!(
        s,
        StatusCode::SEE_OTHER,
        "the old cookie no longer signs anyone in"
    );
    app.stop().await;
}
