//! The request lifecycle (2.1–2.4): every action in every state, by the requester, an IAO, someone
//! else — allowed (and to which state) or refused (and why).

use std::collections::BTreeSet;

use chrono::{DateTime, TimeZone, Utc};
use flowgate_core::policy::{Access, Request};
use flowgate_core::register::*;
use flowgate_core::workflow::{
    Action, Priority, RequestId, SharingRequest, State, decide, flow_id_for, raise,
};
use flowgate_core::{DataItemId, Email, SystemId};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 4, 10, 0, 0)
        .single()
        .expect("time")
}

fn email(s: &str) -> Email {
    Email::parse(s).expect("email")
}

fn system(id: &str, owner: &str, dpia: DpiaStatus) -> Record {
    Record::System(System {
        id: SystemId::parse(id).expect("id"),
        name: id.to_owned(),
        description: None,
        kind: SystemKind::Application,
        external: false,
        organisation: None,
        status: SystemStatus::Active,
        owner: Some(email(owner)),
        administrators: BTreeSet::new(),
        dpia_status: dpia,
        dpia_reference: Some(format!("DART-{id}")),
        dpia_review_due: None,
        architecture_checklist: ChecklistStatus::Approved,
    })
}

/// `sits` (IAO registry) is the authority for `student-core`; `moodle` (IAO vle) is clean;
/// `alumni` has no DPIA; `hr` and `payroll` are both owned by hr.iao.
fn register() -> Register {
    let mut records = Vec::new();
    for p in [
        "requester@uni.example",
        "registry.iao@uni.example",
        "vle.iao@uni.example",
        "hr.iao@uni.example",
        "dpt@uni.example",
    ] {
        records.push(Record::Person(Person {
            email: email(p),
            name: p.into(),
            kind: PersonKind::Staff,
            authorised_until: None,
            roles: BTreeSet::new(),
        }));
    }
    records.push(system(
        "sits",
        "registry.iao@uni.example",
        DpiaStatus::Approved,
    ));
    records.push(system(
        "moodle",
        "vle.iao@uni.example",
        DpiaStatus::Approved,
    ));
    records.push(system("alumni", "vle.iao@uni.example", DpiaStatus::None));
    records.push(system("hr", "hr.iao@uni.example", DpiaStatus::Approved));
    records.push(system(
        "payroll",
        "hr.iao@uni.example",
        DpiaStatus::Approved,
    ));
    for (item, authority) in [("student-core", "sits"), ("staff-core", "hr")] {
        records.push(Record::DataItem(DataItem {
            id: DataItemId::parse(item).expect("id"),
            name: item.into(),
            description: None,
            classification: Classification::Confidential,
            personal_data: true,
            special_category: false,
            authoritative_system: Some(SystemId::parse(authority).expect("id")),
        }));
    }
    Register::from_records(records).expect("register")
}

fn ask(source: &str, target: &str, item: &str) -> Request {
    Request {
        requester: email("requester@uni.example"),
        justification: "timetables need enrolments".into(),
        source: SystemId::parse(source).expect("id"),
        target: SystemId::parse(target).expect("id"),
        data_items: [DataItemId::parse(item).expect("id")].into(),
        intended_use: "show each student their modules".into(),
        access: Access::ReadOnly,
    }
}

fn request_in(state: State, ask: Request) -> SharingRequest {
    let mut r = raise(
        RequestId::from_number(7),
        ask,
        None,
        &email("requester@uni.example"),
        now(),
    )
    .expect("raise")
    .request;
    r.state = state;
    if state == State::Returned {
        r.returned_from = Some(State::AwaitingApproval);
        r.question = Some("which modules?".into());
    }
    r
}

const REQUESTER: &str = "requester@uni.example";
const SOURCE_IAO: &str = "registry.iao@uni.example";
const TARGET_IAO: &str = "vle.iao@uni.example";
const DPT: &str = "dpt@uni.example";

/// `Ok(state)` or `Err(part of the refusal)`.
type Expect = Result<State, &'static str>;

fn check(state: State, action: Action, actor: &str, expected: Expect) {
    let reg = register();
    let req = request_in(state, ask("sits", "moodle", "student-core"));
    let got = decide(&req, &action, &email(actor), &reg, now());
    match (&got, expected) {
        (Ok(t), Ok(s)) => {
            assert_eq!(t.request.state, s, "{state} {action:?} by {actor}");
            assert_eq!(t.request.version, req.version + 1);
            assert_eq!(t.from, Some(state));
        }
        (Err(e), Err(part)) => assert!(
            e.to_string().contains(part),
            "{state} {action:?} by {actor}: `{e}` does not say `{part}`"
        ),
        _ => panic!("{state} {action:?} by {actor}: expected {expected:?}, got {got:?}"),
    }
}

fn refuse(reason: &str) -> Action {
    Action::Refuse {
        reason: Some(reason.into()),
    }
}

fn ret() -> Action {
    Action::ReturnForInformation {
        question: "which modules?".into(),
    }
}

fn answer() -> Action {
    Action::Answer {
        answer: "all of them".into(),
    }
}

fn prioritise() -> Action {
    Action::Prioritise {
        priority: Priority::High,
        target_date: None,
    }
}

fn complete() -> Action {
    Action::Complete {
        method: FlowMethod::Api,
        frequency: Some("daily".into()),
    }
}

#[test]
fn every_action_in_every_state_2_1_to_2_4() {
    use State::*;
    let final_states = [Completed, Refused, Withdrawn];
    let open_states = [
        WithDataProductTeam,
        AwaitingReview,
        AwaitingApproval,
        Approved,
        Prioritised,
        InProgress,
        Returned,
    ];
    // Nothing happens to a finished request, whoever asks.
    for s in final_states {
        for a in [
            Action::Triage,
            Action::Approve,
            refuse("x"),
            ret(),
            answer(),
            Action::Withdraw,
            prioritise(),
            Action::Start,
            complete(),
        ] {
            check(s, a, DPT, Err("nothing more can happen"));
        }
    }
    // Before completion: refuse, return and withdraw apply everywhere (2.1–2.3).
    for s in open_states {
        check(s, refuse("not needed"), DPT, Ok(Refused));
        check(s, Action::Withdraw, REQUESTER, Ok(Withdrawn));
        check(s, Action::Withdraw, DPT, Err("only the requester"));
        if s == Returned {
            check(s, ret(), DPT, Err("already returned"));
            check(s, answer(), REQUESTER, Ok(AwaitingApproval));
            check(s, answer(), DPT, Err("only the requester"));
        } else {
            check(s, ret(), DPT, Ok(Returned));
            check(
                s,
                answer(),
                REQUESTER,
                Err("applies to a request that is returned"),
            );
        }
    }
    // Triage (2.2): a clean request goes to the IAOs.
    check(
        WithDataProductTeam,
        Action::Triage,
        DPT,
        Ok(AwaitingApproval),
    );
    check(AwaitingReview, Action::Triage, DPT, Ok(AwaitingApproval));
    check(AwaitingApproval, Action::Triage, DPT, Ok(AwaitingApproval));
    check(
        Approved,
        Action::Triage,
        DPT,
        Err("applies to a request that is"),
    );
    check(AwaitingReview, Action::Reassess, DPT, Ok(AwaitingApproval));
    check(
        WithDataProductTeam,
        Action::Reassess,
        DPT,
        Err("awaiting_review"),
    );
    // Approval (2.3).
    check(
        AwaitingApproval,
        Action::Approve,
        SOURCE_IAO,
        Ok(AwaitingApproval),
    );
    check(
        AwaitingApproval,
        Action::Approve,
        TARGET_IAO,
        Ok(AwaitingApproval),
    );
    check(
        AwaitingApproval,
        Action::Approve,
        DPT,
        Err("only the Information Asset Owner"),
    );
    check(
        AwaitingApproval,
        Action::Approve,
        REQUESTER,
        Err("own request"),
    );
    for s in [WithDataProductTeam, AwaitingReview, Approved, InProgress] {
        check(s, Action::Approve, SOURCE_IAO, Err("awaiting_approval"));
    }
    // The product line (2.3, 2.4).
    check(Approved, prioritise(), DPT, Ok(Prioritised));
    check(Prioritised, prioritise(), DPT, Ok(Prioritised));
    check(InProgress, prioritise(), DPT, Ok(InProgress));
    check(
        AwaitingApproval,
        prioritise(),
        DPT,
        Err("approved or prioritised"),
    );
    check(Approved, Action::Start, DPT, Ok(InProgress));
    check(Prioritised, Action::Start, DPT, Ok(InProgress));
    check(
        InProgress,
        Action::Start,
        DPT,
        Err("approved or prioritised"),
    );
    check(InProgress, complete(), DPT, Ok(Completed));
    check(Approved, complete(), DPT, Err("in_progress"));
}

#[test]
fn both_iaos_must_approve_and_one_owner_of_both_approves_once_2_3() {
    let reg = register();
    let req = request_in(
        State::AwaitingApproval,
        ask("sits", "moodle", "student-core"),
    );
    let t = decide(&req, &Action::Approve, &email(SOURCE_IAO), &reg, now()).expect("source");
    assert_eq!(t.request.state, State::AwaitingApproval);
    let again = decide(
        &t.request,
        &Action::Approve,
        &email(SOURCE_IAO),
        &reg,
        now(),
    );
    assert!(
        again
            .expect_err("twice")
            .reason
            .contains("already approved")
    );
    let t = decide(
        &t.request,
        &Action::Approve,
        &email(TARGET_IAO),
        &reg,
        now(),
    )
    .expect("target");
    assert_eq!(t.request.state, State::Approved);
    assert_eq!(t.request.approvals.len(), 2);

    let one_owner = request_in(State::AwaitingApproval, ask("hr", "payroll", "staff-core"));
    let t = decide(
        &one_owner,
        &Action::Approve,
        &email("hr.iao@uni.example"),
        &reg,
        now(),
    )
    .expect("one owner of both");
    assert_eq!(t.request.state, State::Approved);
    assert_eq!(t.request.approvals.len(), 2);
}

#[test]
fn triage_sends_a_request_needing_a_dpia_to_review_and_refuses_one_with_violations_2_2() {
    let reg = register();
    let needs_dpia = request_in(
        State::WithDataProductTeam,
        ask("sits", "alumni", "student-core"),
    );
    let t = decide(&needs_dpia, &Action::Triage, &email(DPT), &reg, now()).expect("triage");
    assert_eq!(t.request.state, State::AwaitingReview);
    assert!(t.assessment.is_some());

    // P3 (1.3.5): the target is the authority of the item.
    let into_authority = request_in(
        State::WithDataProductTeam,
        ask("moodle", "sits", "student-core"),
    );
    let e =
        decide(&into_authority, &Action::Triage, &email(DPT), &reg, now()).expect_err("violation");
    assert!(e.reason.contains("P3 (1.3.5)"), "{e}");
    // ... and refusing it without a reason gives the violations as the reason.
    let t = decide(
        &into_authority,
        &Action::Refuse { reason: None },
        &email(DPT),
        &reg,
        now(),
    )
    .expect("refuse");
    assert_eq!(t.request.state, State::Refused);
    assert!(
        t.request
            .reason
            .as_deref()
            .unwrap_or_default()
            .contains("1.3.5")
    );
    // A clean request needs a reason to be refused.
    let clean = request_in(
        State::WithDataProductTeam,
        ask("sits", "moodle", "student-core"),
    );
    let e = decide(
        &clean,
        &Action::Refuse { reason: None },
        &email(DPT),
        &reg,
        now(),
    )
    .expect_err("no reason");
    assert!(e.reason.contains("a reason is needed"));
}

#[test]
fn approval_and_completion_assess_again_because_the_register_may_have_changed() {
    let mut reg = register();
    let req = request_in(
        State::AwaitingApproval,
        ask("sits", "moodle", "student-core"),
    );
    // moodle's DPIA is rejected after triage.
    reg.put(system("moodle", TARGET_IAO, DpiaStatus::Rejected))
        .expect("put");
    let e =
        decide(&req, &Action::Approve, &email(SOURCE_IAO), &reg, now()).expect_err("reassessed");
    assert!(e.reason.contains("no longer allow"), "{e}");
    let building = request_in(State::InProgress, ask("sits", "moodle", "student-core"));
    let e = decide(&building, &complete(), &email(DPT), &reg, now()).expect_err("reassessed");
    assert!(e.reason.contains("cannot be recorded"), "{e}");
}

#[test]
fn completion_records_the_flow_linked_to_its_request_2_4() {
    let reg = register();
    let req = request_in(State::InProgress, ask("sits", "moodle", "student-core"));
    let t = decide(&req, &complete(), &email(DPT), &reg, now()).expect("complete");
    let flow = t.flow.expect("a flow");
    assert_eq!(flow.id, flow_id_for(&req.id));
    assert_eq!(flow.request.as_deref(), Some("req-7"));
    assert_eq!(flow.status, FlowStatus::Active);
    assert_eq!(flow.established_on, Some(now().date_naive()));
    assert_eq!(t.request.flow, Some(flow.id));
}

#[test]
fn a_request_is_raised_by_its_requester_and_ids_parse() {
    let e = raise(
        RequestId::from_number(1),
        ask("sits", "moodle", "student-core"),
        None,
        &email(DPT),
        now(),
    )
    .expect_err("on behalf");
    assert!(e.reason.contains("raised by its requester"));
    assert_eq!(
        RequestId::parse("req-12").map(|r| r.to_string()),
        Ok("req-12".into())
    );
    for bad in ["req-", "req-x", "12", "REQ-1x"] {
        assert!(RequestId::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn a_request_round_trips_through_json() {
    let req = request_in(State::Returned, ask("sits", "moodle", "student-core"));
    let json = serde_json::to_value(&req).expect("json");
    assert_eq!(json["state"], "returned");
    assert_eq!(json["source"], "sits");
    let back: SharingRequest = serde_json::from_value(json).expect("back");
    assert_eq!(back, req);
}
