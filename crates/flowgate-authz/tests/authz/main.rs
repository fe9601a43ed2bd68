//! Who may do what to a request, in every state: the shipped Cedar policy and the workflow
//! together, as the API applies them (policy first, then the workflow's own rules).
//!
//! `matrix.txt` is the whole table — every (state, action, role), allowed (and to which state) or
//! refused (and by what) — for a reader to hold against 2.1–2.4. The test fails when the code and
//! the table disagree; `FLOWGATE_BLESS=1` rewrites the table after a deliberate change.

use std::collections::BTreeSet;
use std::fmt::Write;

use chrono::{TimeZone, Utc};
use flowgate_authz::{Authz, RegisterAction, RequestAction};
use flowgate_core::policy::{Access, Request};
use flowgate_core::register::*;
use flowgate_core::workflow::{
    Action, ActionName, Priority, RequestId, SharingRequest, State, decide,
};
use flowgate_core::{DataItemId, Email, SystemId};

fn email(s: &str) -> Email {
    Email::parse(s).expect("email")
}

const ROLES: &[(&str, &str)] = &[
    ("requester", "requester@uni.example"),
    ("data_product_team", "dpt@uni.example"),
    ("source_iao", "registry.iao@uni.example"),
    ("target_iao", "vle.iao@uni.example"),
    ("target_iaa", "vle.admin@uni.example"),
    ("product_line", "builder@uni.example"),
    ("dpo", "dpo@uni.example"),
    ("admin", "admin@uni.example"),
    ("stranger", "someone@uni.example"),
];

fn register() -> Register {
    let mut records = Vec::new();
    for (role, who) in ROLES {
        let roles: BTreeSet<Role> = Role::parse(role).into_iter().collect();
        records.push(Record::Person(Person {
            email: email(who),
            name: (*role).into(),
            kind: PersonKind::Staff,
            authorised_until: None,
            roles,
        }));
    }
    for (id, owner, admin) in [
        ("sits", "registry.iao@uni.example", None),
        (
            "moodle",
            "vle.iao@uni.example",
            Some("vle.admin@uni.example"),
        ),
    ] {
        records.push(Record::System(System {
            id: SystemId::parse(id).expect("id"),
            name: id.into(),
            description: None,
            kind: SystemKind::Application,
            external: false,
            organisation: None,
            status: SystemStatus::Active,
            owner: Some(email(owner)),
            administrators: admin.map(email).into_iter().collect(),
            dpia_status: DpiaStatus::Approved,
            dpia_reference: Some(format!("DART-{id}")),
            dpia_review_due: None,
            architecture_checklist: ChecklistStatus::Approved,
        }));
    }
    records.push(Record::DataItem(DataItem {
        id: DataItemId::parse("student-core").expect("id"),
        name: "Student record — core".into(),
        description: None,
        classification: Classification::Confidential,
        personal_data: true,
        special_category: false,
        authoritative_system: Some(SystemId::parse("sits").expect("id")),
    }));
    Register::from_records(records).expect("register")
}

fn request_in(state: State) -> SharingRequest {
    let now = Utc
        .with_ymd_and_hms(2026, 12, 4, 10, 0, 0)
        .single()
        .expect("time");
    let ask = Request {
        requester: email("requester@uni.example"),
        justification: "timetables".into(),
        source: SystemId::parse("sits").expect("id"),
        target: SystemId::parse("moodle").expect("id"),
        data_items: [DataItemId::parse("student-core").expect("id")].into(),
        intended_use: "show modules".into(),
        access: Access::ReadOnly,
    };
    let mut r = flowgate_core::workflow::raise(
        RequestId::from_number(1),
        ask,
        None,
        &email("requester@uni.example"),
        now,
    )
    .expect("raise")
    .request;
    r.state = state;
    if state == State::Returned {
        r.returned_from = Some(State::AwaitingApproval);
    }
    r
}

fn action(name: ActionName) -> Action {
    match name {
        ActionName::Raise | ActionName::Triage => Action::Triage,
        ActionName::Reassess => Action::Reassess,
        ActionName::Approve => Action::Approve,
        ActionName::Refuse => Action::Refuse {
            reason: Some("not needed".into()),
        },
        ActionName::ReturnForInformation => Action::ReturnForInformation {
            question: "which modules?".into(),
        },
        ActionName::Answer => Action::Answer {
            answer: "all".into(),
        },
        ActionName::Withdraw => Action::Withdraw,
        ActionName::Prioritise => Action::Prioritise {
            priority: Priority::High,
            target_date: None,
        },
        ActionName::Start => Action::Start,
        ActionName::Complete => Action::Complete {
            method: FlowMethod::Api,
            frequency: None,
        },
    }
}

/// The whole table, one line per (state, action, role).
fn matrix() -> String {
    let authz = Authz::builtin().expect("the shipped policy validates");
    let reg = register();
    let now = Utc
        .with_ymd_and_hms(2026, 12, 4, 10, 0, 0)
        .single()
        .expect("time");
    let mut out = String::new();
    for state in State::ALL {
        let req = request_in(*state);
        for name in ActionName::ALL.iter().filter(|a| **a != ActionName::Raise) {
            for (role, who) in ROLES {
                let who = email(who);
                let d = authz
                    .decide_request(&reg, &who, RequestAction::Step(*name), &req)
                    .expect("decision");
                let result = if !d.allowed {
                    format!("refused by the policy ({d})")
                } else {
                    match decide(&req, &action(*name), &who, &reg, now) {
                        Ok(t) => format!("-> {}", t.request.state),
                        Err(e) => format!("refused by the workflow: {}", e.reason),
                    }
                };
                let _ = writeln!(
                    out,
                    "{:<22} {:<10} {role:<17} {result}",
                    state.as_str(),
                    name.as_str()
                );
            }
        }
    }
    out
}

#[test]
fn every_state_action_and_role_2_1_to_2_4() {
    let got = matrix();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/authz/matrix.txt");
    if std::env::var_os("FLOWGATE_BLESS").is_some() {
        std::fs::write(path, &got).expect("write the table");
    }
    let want = std::fs::read_to_string(path).expect("tests/authz/matrix.txt");
    for (i, (g, w)) in got.lines().zip(want.lines()).enumerate() {
        assert_eq!(g, w, "line {} of matrix.txt", i + 1);
    }
    assert_eq!(got.lines().count(), want.lines().count());
}

#[test]
fn separation_of_duties_2_3() {
    let authz = Authz::builtin().expect("policy");
    let reg = register();
    let req = request_in(State::AwaitingApproval);
    // The requester is also made IAO of the source: the policy still forbids approving.
    let mut reg2 = reg.clone();
    if let Some(System { .. }) = reg.system("sits") {
        let mut sits = reg.system("sits").cloned().expect("sits");
        sits.owner = Some(email("requester@uni.example"));
        reg2.put(Record::System(sits)).expect("put");
    }
    let d = authz
        .decide_request(
            &reg2,
            &email("requester@uni.example"),
            RequestAction::Step(ActionName::Approve),
            &req,
        )
        .expect("decision");
    assert!(!d.allowed);
    assert_eq!(
        d.policies,
        vec!["no-one-decides-their-own-request".to_owned()]
    );
}

#[test]
fn register_actions_follow_roles() {
    let authz = Authz::builtin().expect("policy");
    let reg = register();
    let may = |who: &str, a: RegisterAction| {
        authz
            .decide_register(&reg, &email(who), a)
            .expect("decision")
            .allowed
    };
    assert!(may("someone@uni.example", RegisterAction::ReadRegister));
    assert!(may("someone@uni.example", RegisterAction::Raise));
    assert!(!may("someone@uni.example", RegisterAction::WriteRegister));
    assert!(may("dpt@uni.example", RegisterAction::WriteRegister));
    assert!(!may("dpt@uni.example", RegisterAction::ManageTokens));
    assert!(may("admin@uni.example", RegisterAction::ManageTokens));
    assert!(may("dpo@uni.example", RegisterAction::ReadAudit));
    assert!(!may("requester@uni.example", RegisterAction::ReadAudit));
}

#[test]
fn a_bad_policy_is_refused_naming_the_file_and_the_problem() {
    let e = Authz::from_text("permit(principal, action, resource", "my.cedar").expect_err("parse");
    assert!(
        e.to_string()
            .starts_with("my.cedar: the policy does not parse"),
        "{e}"
    );
    let e = Authz::from_text(
        "permit(principal, action == Flowgate::Action::\"fly\", resource);",
        "my.cedar",
    )
    .expect_err("unknown action");
    assert!(e.to_string().contains("does not validate"), "{e}");
    assert!(e.to_string().contains("fly"), "{e}");
    let e = Authz::from_text(
        "permit(principal, action == Flowgate::Action::\"view\", resource) when { resource.colour == \"red\" };",
        "my.cedar",
    )
    .expect_err("unknown attribute");
    assert!(e.to_string().contains("colour"), "{e}");
}
