//! The OpenAPI document against the code: every routed handler is in it (a handler routed with a
//! plain axum `.route(...)` would not be, so the source may not have one), and every path a
//! handler declares is in it with its method.

fn sources() -> Vec<(String, String)> {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/src");
    let mut out = Vec::new();
    let mut dirs = vec![std::path::PathBuf::from(root)];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("src") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).expect("read");
                out.push((path.display().to_string(), text));
            }
        }
    }
    out
}

#[test]
fn every_routed_handler_is_in_the_openapi_document() {
    let doc = serde_json::to_value(flowgate_server::openapi()).expect("json");
    let paths = doc["paths"].as_object().expect("paths");
    let mut declared = 0;
    for (file, text) in sources() {
        // The HTML pages (src/web) are not part of the API and not in its document.
        if file.contains("/src/web/") {
            continue;
        }
        assert!(
            !text.contains(".route(\""),
            "{file}: routes are added with utoipa_axum's routes!(...) so that they are documented"
        );
        // `#[utoipa::path(post, path = "/api/v1/...")]`, also inside the action macro's uses.
        for (i, _) in text.match_indices("path = \"") {
            let rest = &text[i + 8..];
            let path = &rest[..rest.find('"').expect("closing quote")];
            let before = &text[..i];
            let method = ["get", "post", "put", "delete"]
                .into_iter()
                .filter_map(|m| before.rfind(&format!("({m},")).map(|at| (at, m)))
                .max()
                .map(|(_, m)| m);
            assert!(
                paths.contains_key(path),
                "{file}: {path} is not in the document"
            );
            if let Some(m) = method {
                assert!(
                    paths[path].get(m).is_some(),
                    "{file}: {m} {path} is not in the document"
                );
            }
            declared += 1;
        }
        for (i, _) in text.match_indices("action_endpoint!(") {
            let rest = &text[i..];
            if let Some(p) = rest.split('"').nth(1).filter(|p| p.starts_with("/api/")) {
                assert!(
                    paths.get(p).and_then(|x| x.get("post")).is_some(),
                    "{file}: POST {p} is not in the document"
                );
                declared += 1;
            }
        }
    }
    assert!(
        declared >= 20,
        "found only {declared} handlers: is the scan still reading them?"
    );
}

#[test]
fn the_document_is_openapi_3_1_with_bearer_auth_and_problem_details() {
    let doc = serde_json::to_value(flowgate_server::openapi()).expect("json");
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    assert!(doc["components"]["schemas"]["Problem"].is_object());
    for action in [
        "triage",
        "approve",
        "refuse",
        "return",
        "answer",
        "withdraw",
        "prioritise",
        "start",
        "complete",
    ] {
        let p = format!("/api/v1/requests/{{id}}/{action}");
        assert!(doc["paths"][&p]["post"].is_object(), "{p}");
    }
}
