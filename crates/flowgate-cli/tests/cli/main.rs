//! The `flowgate` binary end to end: import refuses bad input and leaves the database exactly as
//! it was; export → import → export is byte-identical; `audit verify` exits 0 or 1 naming the
//! place. Run on SQLite and on PostgreSQL.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use flowgate_store::Backend;
use flowgate_store::testing::TestDatabase;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn flowgate(db: &TestDatabase, dir: &Path, args: &[&str]) -> Run {
    let out: Output = Command::new(env!("CARGO_BIN_EXE_flowgate"))
        .args(args)
        .current_dir(dir)
        .env("FLOWGATE_DATABASE_URL", &db.url)
        .env("FLOWGATE_ACTOR", "tester@uni.example")
        .env_remove("CARGO_PKG_NAME")
        .output()
        .expect("flowgate runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn ok(r: Run) -> Run {
    assert_eq!(
        r.code, 0,
        "expected success\nstdout: {}\nstderr: {}",
        r.stdout, r.stderr
    );
    r
}

struct Env {
    db: TestDatabase,
    dir: tempfile::TempDir,
}

impl Env {
    async fn new(backend: Backend) -> Env {
        Env {
            db: TestDatabase::new(backend).await,
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }
    fn run(&self, args: &[&str]) -> Run {
        flowgate(&self.db, self.dir.path(), args)
    }
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    fn export_json(&self) -> String {
        ok(self.run(&["export", "--format", "json"])).stdout
    }
    async fn sql(&self, sql: &str) {
        let store = self.db.open().await;
        sqlx::query(sql)
            .execute(store.pool())
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        store.close().await;
    }
    async fn finish(self) {
        self.db.drop_database().await;
    }
}

/// The demo's CSV files, copied into a folder so a test can spoil one of them.
fn demo_folder(into: &Path) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("demo");
    let dst = into.join("iar");
    std::fs::create_dir_all(&dst).expect("mkdir");
    for f in ["people.csv", "systems.csv", "data_items.csv", "flows.csv"] {
        std::fs::copy(src.join(f), dst.join(f)).expect("copy");
    }
    dst
}

macro_rules! on_both {
    ($($case:ident),* $(,)?) => {
        mod sqlite { $( #[tokio::test] async fn $case() { super::$case(super::Backend::Sqlite).await } )* }
        mod postgres { $( #[tokio::test] async fn $case() { super::$case(super::Backend::Postgres).await } )* }
    };
}

on_both!(
    demo_loads_once_and_verifies,
    every_kind_of_bad_file_is_refused_and_changes_nothing,
    json_export_import_export_is_byte_identical,
    csv_and_xlsx_round_trip,
    verify_fails_naming_the_place_after_tampering,
    set_edits_one_record_through_the_audit_log,
    generate_writes_the_size_asked_for_and_it_imports,
    check_decides_with_its_exit_codes_and_explains_why,
    lint_reports_the_demo_registers_legacy_debt,
    tokens_are_created_once_listed_and_revoked,
    impact_lists_every_system_downstream_with_its_owners,
    notices_are_raised_answered_and_closed_as_the_code_says,
);

async fn notices_are_raised_answered_and_closed_as_the_code_says(backend: Backend) {
    let env = Env::new(backend).await;
    ok(env.run(&["demo", "--load-only"]));
    let as_who = |who: &str, args: &[&str]| {
        let mut all = vec!["--actor", who];
        all.extend_from_slice(args);
        env.run(&all)
    };
    let planned = (chrono::Utc::now().date_naive() + chrono::Duration::days(21)).to_string();
    let raise = [
        "notices",
        "raise",
        "--system",
        "sits",
        "--summary",
        "Upgrade to SITS 10.2",
        "--planned",
        &planned,
        "--format",
        "json",
    ];
    // The registrar owns sits but is not a change owner: the policy refuses.
    let refused = as_who("registrar@uni.example", &raise);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(
        refused
            .stderr
            .contains("registrar@uni.example may not raise a change notice: no policy permits it"),
        "{}",
        refused.stderr
    );
    let raised = ok(as_who("pl.integrations@uni.example", &raise));
    let v: serde_json::Value = serde_json::from_str(&raised.stdout).expect("json");
    assert_eq!(v["id"], "chg-1");
    assert_eq!(v["notice_period_days"], 21);
    let affected = v["affected"].as_array().expect("affected");
    assert!(
        affected
            .iter()
            .any(|a| a["system"] == "dw" && a["depth"] == 1)
    );
    assert!(
        affected
            .iter()
            .any(|a| a["system"] == "powerbi" && a["depth"] == 2)
    );
    // dw's IAA answers for dw; not for a system they do not administer.
    let nope = as_who(
        "bi.dev@uni.example",
        &[
            "notices", "answer", "chg-1", "--system", "moodle", "--answer", "ready",
        ],
    );
    assert_eq!(nope.code, 2);
    assert!(
        nope.stderr.contains("may not answer for 'moodle'"),
        "{}",
        nope.stderr
    );
    let no_note = as_who(
        "bi.dev@uni.example",
        &[
            "notices",
            "answer",
            "chg-1",
            "--system",
            "dw",
            "--answer",
            "not_ready",
        ],
    );
    assert_eq!(no_note.code, 2);
    assert!(
        no_note.stderr.contains("a note is required with not_ready"),
        "{}",
        no_note.stderr
    );
    ok(as_who(
        "bi.dev@uni.example",
        &[
            "notices",
            "answer",
            "chg-1",
            "--system",
            "dw",
            "--answer",
            "not_ready",
            "--note",
            "ETL rework",
        ],
    ));
    let done = as_who("pl.integrations@uni.example", &["notices", "done", "chg-1"]);
    assert_eq!(done.code, 2);
    assert!(
        done.stderr
            .contains("only an urgent change goes ahead before its targets are ready (2.5)"),
        "{}",
        done.stderr
    );
    let shown = ok(env.run(&["notices", "show", "chg-1"]));
    assert!(
        shown.stdout.contains("notice given: 21 days"),
        "{}",
        shown.stdout
    );
    assert!(shown.stdout.contains("ETL rework"), "{}", shown.stdout);
    let list = ok(env.run(&["notices", "list", "--state", "open"]));
    assert!(list.stdout.contains("chg-1"), "{}", list.stdout);
    // Every IAO and IAA told has an e-mail queued; the outbox shows it pending (no server ran).
    let outbox = ok(env.run(&["outbox", "list", "--format", "json"]));
    let o: serde_json::Value = serde_json::from_str(&outbox.stdout).expect("json");
    assert!(o["counts"]["pending"].as_i64().unwrap_or(0) >= 3, "{o}");
    assert!(
        o["items"]
            .as_array()
            .expect("items")
            .iter()
            .any(|m| m["recipient"] == "bi.dev@uni.example" && m["event"] == "notice.raised")
    );
    let pruned = ok(env.run(&["outbox", "prune", "--days", "0"]));
    assert!(
        pruned.stderr.contains("deleted 0 messages"),
        "nothing was delivered: {}",
        pruned.stderr
    );
    ok(as_who(
        "pl.integrations@uni.example",
        &["notices", "withdraw", "chg-1", "--note", "postponed"],
    ));
    let again = as_who(
        "bi.dev@uni.example",
        &[
            "notices", "answer", "chg-1", "--system", "dw", "--answer", "ready",
        ],
    );
    assert!(
        again
            .stderr
            .contains("it is withdrawn and nothing more can happen to it"),
        "{}",
        again.stderr
    );
    ok(env.run(&["audit", "verify"]));
    env.finish().await;
}

async fn impact_lists_every_system_downstream_with_its_owners(backend: Backend) {
    let env = Env::new(backend).await;
    ok(env.run(&["demo", "--load-only"]));
    let json = ok(env.run(&["impact", "sits", "--format", "json"]));
    let v: serde_json::Value = serde_json::from_str(&json.stdout).expect("json");
    assert_eq!(v["system"], "sits");
    let affected = v["affected"].as_array().expect("affected");
    let find = |id: &str| affected.iter().find(|a| a["system"] == id).cloned();
    let dw = find("dw").expect("dw depends on sits");
    assert_eq!(dw["depth"], 1);
    assert_eq!(dw["owner"], "bi.manager@uni.example");
    assert_eq!(
        dw["administrators"],
        serde_json::json!(["bi.dev@uni.example"])
    );
    assert_eq!(find("powerbi").expect("through dw")["depth"], 2);
    assert!(
        find("sits").is_none(),
        "the changed system is never in the result"
    );
    let depths: Vec<u64> = affected
        .iter()
        .map(|a| a["depth"].as_u64().unwrap_or(0))
        .collect();
    assert!(
        depths.windows(2).all(|w| w[0] <= w[1]),
        "sorted by depth: {depths:?}"
    );
    let direct = ok(env.run(&["impact", "sits", "--depth", "1", "--format", "json"]));
    let v: serde_json::Value = serde_json::from_str(&direct.stdout).expect("json");
    assert!(
        v["affected"]
            .as_array()
            .expect("list")
            .iter()
            .all(|a| a["depth"] == 1)
    );
    let text = ok(env.run(&["impact", "sits"]));
    assert!(
        text.stdout.starts_with("Changing sits affects"),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout.contains("└─ powerbi") || text.stdout.contains("├─ powerbi"),
        "{}",
        text.stdout
    );
    let unknown = env.run(&["impact", "nosuch"]);
    assert_eq!(unknown.code, 2);
    assert!(
        unknown.stderr.contains("no system with id 'nosuch'"),
        "{}",
        unknown.stderr
    );
    let bad_item = env.run(&["impact", "sits", "--data-item", "nothing-like-it"]);
    assert_eq!(bad_item.code, 2);
    assert!(
        bad_item.stderr.contains("nothing-like-it"),
        "{}",
        bad_item.stderr
    );
    env.finish().await;
}

async fn tokens_are_created_once_listed_and_revoked(backend: Backend) {
    let env = Env::new(backend).await;
    ok(env.run(&["demo", "--load-only"]));
    let created = ok(env.run(&["tokens", "create", "--person", "Registrar@uni.example"]));
    let token = created.stdout.trim().to_owned();
    assert!(
        token.starts_with("fgt_") && token.len() == 4 + 16 + 1 + 64,
        "{token}"
    );
    assert!(
        created.stderr.contains("shown only this once"),
        "{}",
        created.stderr
    );
    let listed = ok(env.run(&["tokens", "list", "--format", "json"]));
    assert!(
        listed.stdout.contains("registrar@uni.example"),
        "{}",
        listed.stdout
    );
    assert!(
        !listed.stdout.contains(&token[21..]),
        "the secret is never listed"
    );
    let id = &token[4..20];
    let revoked = ok(env.run(&["tokens", "revoke", id]));
    assert!(revoked.stdout.contains(id));
    let again = env.run(&["tokens", "revoke", id]);
    assert_eq!(again.code, 2, "{}", again.stderr);
    let unknown = env.run(&["tokens", "create", "--person", "nobody@uni.example"]);
    assert_eq!(unknown.code, 2);
    assert!(
        unknown.stderr.contains("nobody@uni.example"),
        "{}",
        unknown.stderr
    );
    let past = env.run(&[
        "tokens",
        "create",
        "--person",
        "registrar@uni.example",
        "--expires",
        "2001-01-01",
    ]);
    assert_eq!(past.code, 2);
    assert!(past.stderr.contains("--expires"), "{}", past.stderr);
    env.finish().await;
}

#[test]
fn policy_validate_accepts_the_shipped_policy_and_names_what_is_wrong_in_another() {
    let dir = tempfile::tempdir().expect("dir");
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_flowgate"))
            .args(args)
            .current_dir(dir.path())
            .output()
            .expect("runs");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let shipped = concat!(env!("CARGO_MANIFEST_DIR"), "/../../policies/flowgate.cedar");
    let (code, out, _) = run(&["policy", "validate", shipped]);
    assert_eq!(code, 0);
    assert!(out.contains("valid — 13 policies"), "{out}");
    let bad = dir.path().join("mine.cedar");
    std::fs::write(
        &bad,
        "permit(principal, action == Flowgate::Action::\"approve\", resource) when { resource.colour == \"red\" };",
    )
    .expect("write");
    let (code, _, err) = run(&["policy", "validate", bad.to_str().expect("path")]);
    assert_eq!(code, 2);
    assert!(
        err.contains("mine.cedar") && err.contains("colour"),
        "{err}"
    );
    assert!(
        !dir.path().join("flowgate.db").exists(),
        "validating opens no database"
    );
}

async fn demo_loads_once_and_verifies(backend: Backend) {
    let env = Env::new(backend).await;
    let first = ok(env.run(&["demo", "--load-only"]));
    assert!(
        first
            .stdout
            .contains("added 28 people, 29 systems, 20 data items, 47 flows"),
        "{}",
        first.stdout
    );
    assert!(
        first.stdout.contains("flowgate show system sits"),
        "says what to try next"
    );
    let second = ok(env.run(&["demo", "--load-only"]));
    assert!(second.stdout.contains("not empty"), "{}", second.stdout);
    let v = ok(env.run(&["audit", "verify"]));
    assert!(v.stdout.contains("125 events"), "{}", v.stdout);
    let show = ok(env.run(&["show", "system", "sits"]));
    for expected in [
        "Dr Alison Reid <registrar@uni.example>",
        "DART-2021-014",
        "flows out: 17",
        "flows in: 3",
        "exam-spreadsheets",
    ] {
        assert!(
            show.stdout.contains(expected),
            "missing {expected:?} in\n{}",
            show.stdout
        );
    }
    let list = ok(env.run(&["list", "flows", "--limit", "5"]));
    assert!(
        list.stdout.contains("5 of 47 flows shown"),
        "{}",
        list.stdout
    );
    let missing = env.run(&["show", "system", "nope"]);
    assert_eq!(
        (missing.code, missing.stderr.trim()),
        (2, "no system with id 'nope'")
    );
    env.finish().await;
}

async fn every_kind_of_bad_file_is_refused_and_changes_nothing(backend: Backend) {
    let env = Env::new(backend).await;
    ok(env.run(&["demo", "--load-only"]));
    let before = env.export_json();
    let head_before = ok(env.run(&["audit", "log", "--since", "120"])).stdout;
    let iar = demo_folder(env.dir.path());
    // Each case: the file, the text to replace, its replacement, and the message expected.
    let cases: &[(&str, &str, &str, &str)] = &[
        (
            "systems.csv",
            "application,false,,active,vle.iao",
            "applicaton,false,,active,vle.iao",
            "systems.csv:6: kind: 'applicaton' is not one of application, database, saas, file_share, paper, other",
        ),
        (
            "flows.csv",
            "f-003,idm,moodle",
            "f-003,idm,no-such-system",
            "flows.csv:4: target: no system with id 'no-such-system'",
        ),
        (
            "flows.csv",
            "id,source,target,",
            "id,source,",
            "flows.csv:1: target: missing required column",
        ),
        (
            "people.csv",
            "dpt.analyst@uni.example,Tom Okafor",
            "dpt.lead@uni.example,Tom Okafor",
            "people.csv:3: email: duplicate id 'dpt.lead@uni.example' (first at people.csv:2)",
        ),
        (
            "people.csv",
            "third_party,2027-06-30",
            "third_party,31/06/2027",
            "people.csv:28: authorised_until: '31/06/2027' is not a date (use YYYY-MM-DD)",
        ),
        (
            "people.csv",
            "Helen Marsh",
            "Helen M\u{1}rsh",
            "people.csv:4: name: not valid UTF-8 text (save the file as CSV UTF-8)",
        ),
    ];
    for (file, from, to, message) in cases {
        let path = iar.join(file);
        let original = std::fs::read(&path).expect("read");
        let text = String::from_utf8(original.clone()).expect("utf-8");
        assert!(text.contains(from), "{file} has {from:?}");
        let mut spoiled = text.replacen(from, to, 1).into_bytes();
        if to.contains('\u{1}') {
            // A Latin-1 byte where UTF-8 is expected.
            let at = spoiled.iter().position(|&b| b == 1).expect("marker");
            spoiled[at] = 0xE4;
        }
        std::fs::write(&path, &spoiled).expect("write");
        let r = env.run(&["import", iar.to_str().expect("utf-8 path")]);
        assert_eq!(r.code, 2, "{file}: {}", r.stderr);
        assert!(
            r.stderr.contains("import refused, nothing was written"),
            "{}",
            r.stderr
        );
        assert!(
            r.stderr.contains(message),
            "expected {message:?} in\n{}",
            r.stderr
        );
        std::fs::write(&path, &original).expect("restore");
        assert_eq!(
            env.export_json(),
            before,
            "the register is unchanged after {file}"
        );
    }
    assert_eq!(
        ok(env.run(&["audit", "log", "--since", "120"])).stdout,
        head_before,
        "no event appended"
    );
    // The untouched folder imports, changing nothing because the demo holds the same records.
    let again = ok(env.run(&["import", iar.to_str().expect("utf-8 path")]));
    assert!(again.stdout.contains("124 unchanged"), "{}", again.stdout);
    let not_there = env.run(&["import", "nowhere.xlsx"]);
    assert_eq!(not_there.code, 2);
    assert!(
        not_there
            .stderr
            .contains("nowhere.xlsx: no such file or folder"),
        "{}",
        not_there.stderr
    );
    env.finish().await;
}

async fn json_export_import_export_is_byte_identical(backend: Backend) {
    let env = Env::new(backend).await;
    ok(env.run(&["demo", "--load-only"]));
    let first = env.export_json();
    let file = env.path("iar.json");
    std::fs::write(&file, &first).expect("write");
    let other = Env::new(backend).await;
    let imported = ok(other.run(&["import", file.to_str().expect("path")]));
    assert!(
        imported
            .stdout
            .contains("added 28 people, 29 systems, 20 data items, 47 flows"),
        "{}",
        imported.stdout
    );
    assert_eq!(other.export_json(), first);
    ok(other.run(&["audit", "verify"]));
    other.finish().await;
    env.finish().await;
}

async fn csv_and_xlsx_round_trip(backend: Backend) {
    let env = Env::new(backend).await;
    ok(env.run(&["demo", "--load-only"]));
    let json = env.export_json();
    for (format, out) in [("csv", "out-csv"), ("xlsx", "iar.xlsx")] {
        let path = env.path(out);
        ok(env.run(&[
            "export",
            "--format",
            format,
            "--out",
            path.to_str().expect("path"),
        ]));
        let other = Env::new(backend).await;
        ok(other.run(&["import", path.to_str().expect("path")]));
        assert_eq!(other.export_json(), json, "{format} round-trips");
        other.finish().await;
    }
    env.finish().await;
}

async fn verify_fails_naming_the_place_after_tampering(backend: Backend) {
    let env = Env::new(backend).await;
    ok(env.run(&["demo", "--load-only"]));
    ok(env.run(&["audit", "verify"]));
    env.sql("UPDATE systems SET owner = 'dpo@uni.example' WHERE id = 'sits'")
        .await;
    let r = env.run(&["audit", "verify"]);
    assert_eq!(r.code, 1);
    assert!(r.stdout.contains("system 'sits': the table row differs from the audit log (owner is \"dpo@uni.example\" in the table but \"registrar@uni.example\" in the audit log)"), "{}", r.stdout);
    env.sql("UPDATE systems SET owner = 'registrar@uni.example' WHERE id = 'sits'")
        .await;
    ok(env.run(&["audit", "verify"]));
    env.sql("UPDATE audit_events SET actor = 'someone.else@uni.example' WHERE seq = 40")
        .await;
    let r = env.run(&["audit", "verify"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stdout.contains("the audit chain is broken at event 40"),
        "{}",
        r.stdout
    );
    env.finish().await;
}

async fn set_edits_one_record_through_the_audit_log(backend: Backend) {
    let env = Env::new(backend).await;
    ok(env.run(&["demo", "--load-only"]));
    let r = ok(env.run(&[
        "set",
        "system",
        "moodle",
        "dpia_review_due=2028-10-31",
        "dpia_reference=DART-2026-099",
    ]));
    assert!(
        r.stdout
            .contains("updated system 'moodle' (audit event 126)"),
        "{}",
        r.stdout
    );
    let bad = env.run(&["set", "system", "moodle", "dpia_status=aproved"]);
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("system 'moodle': dpia_status: 'aproved' is not one of none, in_progress, approved, rejected"), "{}", bad.stderr);
    let log = ok(env.run(&["audit", "log", "--since", "125", "--format", "json"]));
    let events: serde_json::Value = serde_json::from_str(&log.stdout).expect("json");
    assert_eq!(events[0]["actor"], "tester@uni.example");
    assert_eq!(events[0]["payload"]["dpia_review_due"], "2028-10-31");
    assert_eq!(
        events.as_array().map(Vec::len),
        Some(1),
        "the refused edit appended nothing"
    );
    ok(env.run(&["audit", "verify"]));
    env.finish().await;
}

async fn generate_writes_the_size_asked_for_and_it_imports(backend: Backend) {
    let env = Env::new(backend).await;
    let out = env.path("gen");
    let args = [
        "generate",
        "--systems",
        "60",
        "--flows",
        "700",
        "--items",
        "25",
        "--seed",
        "7",
        "--out",
        out.to_str().expect("path"),
    ];
    let r = ok(env.run(&args));
    assert!(
        r.stdout
            .contains("20 people, 60 systems, 25 data items and 700 flows"),
        "{}",
        r.stdout
    );
    let first = std::fs::read(out.join("flows.csv")).expect("flows.csv");
    ok(env.run(&args));
    assert_eq!(
        std::fs::read(out.join("flows.csv")).expect("flows.csv"),
        first,
        "the same seed gives the same register"
    );
    let imported = ok(env.run(&["import", out.to_str().expect("path")]));
    assert!(
        imported
            .stdout
            .contains("added 20 people, 60 systems, 25 data items, 700 flows"),
        "{}",
        imported.stdout
    );
    ok(env.run(&["audit", "verify"]));
    env.finish().await;
}

fn request_file(
    env: &Env,
    name: &str,
    source: &str,
    target: &str,
    items: &[&str],
    access: Option<&str>,
) -> String {
    let mut req = serde_json::json!({
        "requester": "a.researcher@uni.example",
        "justification": "a business reason",
        "source": source,
        "target": target,
        "data_items": items,
        "intended_use": "read-only reporting",
    });
    if let Some(a) = access {
        req["access"] = a.into();
    }
    let path = env.path(name);
    std::fs::write(&path, req.to_string()).expect("write request");
    path.to_str().expect("path").to_owned()
}

async fn check_decides_with_its_exit_codes_and_explains_why(backend: Backend) {
    let env = Env::new(backend).await;
    ok(env.run(&["demo", "--load-only"]));
    let as_of = ["--as-of", "2026-12-04"];

    let proceed = request_file(
        &env,
        "proceed.json",
        "sits",
        "alma",
        &["student-enrolment"],
        None,
    );
    let r = env.run(&["check", &proceed, as_of[0], as_of[1]]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.starts_with("PROCEED: "), "{}", r.stdout);
    assert!(
        !r.stdout.contains('\x1b'),
        "no colour when not on a terminal"
    );
    assert!(
        r.stdout.lines().all(|l| l.chars().count() <= 80),
        "fits 80 columns:\n{}",
        r.stdout
    );

    let copy = request_file(&env, "copy.json", "dw", "powerbi", &["student-core"], None);
    let r = env.run(&["check", &copy, as_of[0], as_of[1]]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(r.stdout.starts_with("REJECTED: "), "{}", r.stdout);
    assert!(r.stdout.contains("P2 (1.3.4)"), "{}", r.stdout);
    assert!(
        r.stdout
            .contains("→ request 'student-core' from its authoritative system 'sits'"),
        "{}",
        r.stdout
    );

    let review = request_file(
        &env,
        "review.json",
        "sits",
        "alumni",
        &["student-contact"],
        None,
    );
    let r = env.run(&["check", &review, as_of[0], as_of[1]]);
    assert_eq!(r.code, 3, "{}", r.stdout);
    assert!(
        r.stdout.contains("the target 'alumni' has no DPIA"),
        "{}",
        r.stdout
    );

    let r = env.run(&["check", &copy, as_of[0], as_of[1], "--format", "json"]);
    let doc: serde_json::Value = serde_json::from_str(&r.stdout).expect("json");
    assert_eq!(doc["outcome"], "rejected");
    assert_eq!(doc["policy"], "DPA CoP 06 v2.1");
    assert_eq!(doc["as_of"], "2026-12-04");
    let f = &doc["findings"][0];
    assert_eq!(
        (
            f["rule"].as_str(),
            f["clause"].as_str(),
            f["severity"].as_str()
        ),
        (Some("P2"), Some("1.3.4"), Some("violation"))
    );
    assert_eq!(
        (
            f["system"].as_str(),
            f["data_item"].as_str(),
            f["flow"].as_str()
        ),
        (Some("dw"), Some("student-core"), Some("f-005"))
    );

    let write = request_file(
        &env,
        "write.json",
        "sits",
        "alma",
        &["student-enrolment"],
        Some("read_write"),
    );
    let r = env.run(&["check", &write, as_of[0], as_of[1]]);
    assert_eq!(r.code, 1);
    assert!(r.stdout.contains("P3 (1.3.5)"), "{}", r.stdout);

    std::fs::write(env.path("bad.json"), r#"{"requester": "a.researcher@uni.example", "source": "sits", "target": "sits", "data_items": [], "colour": "red"}"#).expect("write");
    let r = env.run(&["check", env.path("bad.json").to_str().expect("path")]);
    assert_eq!(r.code, 2);
    for expected in [
        "bad.json: colour: unknown field",
        "bad.json: justification: is required",
        "bad.json: data_items: must name at least one data item",
        "bad.json: target: 'sits' is also the source",
    ] {
        assert!(
            r.stderr.contains(expected),
            "missing {expected:?} in {}",
            r.stderr
        );
    }
    let r = env.run(&["check", "missing.json"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("missing.json: cannot read"),
        "{}",
        r.stderr
    );

    let rules = ok(env.run(&["check", "--rules"]));
    for id in [
        "SCOPE",
        "P1",
        "LIFECYCLE",
        "CHECKLIST",
        "P2",
        "P3",
        "SPECIAL",
        "EXTERNAL",
        "REUSE",
    ] {
        assert!(rules.stdout.contains(id), "{id} in {}", rules.stdout);
    }
    env.finish().await;
}

async fn lint_reports_the_demo_registers_legacy_debt(backend: Backend) {
    let env = Env::new(backend).await;
    ok(env.run(&["demo", "--load-only"]));
    let r = env.run(&["lint", "--as-of", "2026-12-04"]);
    assert_eq!(r.code, 1, "violations exit 1: {}", r.stderr);
    for expected in [
        "45 active flows: 6 rejected, 13 need review, 26 proceed",
        "Data not taken from its authoritative system — P2 (1.3.4)",
        "f-008 dw → powerbi: 'dw' holds a copy of 'student-core'",
        "Data flowing into its authoritative system — P3 (1.3.5)",
        "f-024 exam-spreadsheets → sits",
        "the target 'alumni' has no DPIA (flow f-037)",
    ] {
        assert!(
            r.stdout.contains(expected),
            "missing {expected:?} in\n{}",
            r.stdout
        );
    }
    assert!(
        r.stdout.lines().all(|l| l.chars().count() <= 80),
        "fits 80 columns:\n{}",
        r.stdout
    );
    let j = env.run(&["lint", "--as-of", "2026-12-04", "--format", "json"]);
    let doc: serde_json::Value = serde_json::from_str(&j.stdout).expect("json");
    assert_eq!(doc["flows_assessed"], 45);
    assert_eq!(doc["outcomes"]["rejected"], 6);
    let f008 = doc["flows"]
        .as_array()
        .expect("flows")
        .iter()
        .find(|f| f["flow"] == "f-008")
        .expect("f-008 reported");
    assert_eq!(f008["outcome"], "rejected");
    env.finish().await;
}
