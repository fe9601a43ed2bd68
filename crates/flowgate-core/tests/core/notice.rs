//! Change notices (2.5) by example: what raising one freezes, who may answer for a system and
//! how, when a change may be recorded done (an urgent one while targets are not ready, and the
//! record says so), and who each step tells.

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use flowgate_core::notice::*;
use flowgate_core::notify::{self, Links};
use flowgate_core::register::*;
use flowgate_core::{DataItemId, Email, NoticeId, RequestId, SystemId};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2027, 1, 4, 9, 0, 0)
        .single()
        .expect("time")
}

fn email(s: &str) -> Email {
    Email::parse(s).expect("email")
}

fn iao(system: &str) -> Email {
    email(&format!("{system}.iao@uni.example"))
}

const OWNER: &str = "change.owner@uni.example";

/// The impact tests' register (sits → moodle, dw at depth 1; analytics, powerbi at depth 2; a
/// retired flow to `old`; moodle → sits back), with an IAA on moodle.
fn register() -> Register {
    let mut reg = crate::impact::register();
    let Record::System(mut moodle) = crate::impact::system("moodle") else {
        unreachable!()
    };
    moodle.administrators.insert(email("vle.admin@uni.example"));
    reg.put(Record::Person(Person {
        email: email("vle.admin@uni.example"),
        name: "VLE admin".into(),
        kind: PersonKind::Staff,
        authorised_until: None,
        roles: Default::default(),
    }))
    .expect("person");
    reg.put(Record::System(moodle)).expect("moodle");
    reg
}

fn draft(urgent: bool, items: &[&str]) -> ChangeDraft {
    ChangeDraft {
        system: SystemId::parse("sits").expect("id"),
        summary: "Upgrade to SITS 10.2".into(),
        details: Some("  Column names of the enrolment view change.  ".into()),
        planned_for: NaiveDate::from_ymd_opt(2027, 2, 1).expect("date"),
        urgent,
        data_items: items
            .iter()
            .map(|d| DataItemId::parse(d).expect("item"))
            .collect(),
    }
}

fn raised(urgent: bool) -> ChangeNotice {
    raise(
        NoticeId::from_number(1),
        draft(urgent, &[]),
        &email(OWNER),
        &register(),
        now(),
    )
    .expect("raised")
    .notice
}

fn answer(
    n: &ChangeNotice,
    system: &str,
    by: &Email,
    r: Readiness,
    note: Option<&str>,
) -> Result<NoticeTransition, NoticeRefusal> {
    decide(
        n,
        &NoticeAction::Answer {
            system: SystemId::parse(system).expect("id"),
            readiness: r,
            note: note.map(str::to_owned),
        },
        by,
        &register(),
        now(),
    )
}

fn ready_all(mut n: ChangeNotice, except: &[&str]) -> ChangeNotice {
    for s in ["analytics", "dw", "moodle", "powerbi"] {
        if !except.contains(&s) {
            n = answer(&n, s, &iao(s), Readiness::Ready, None)
                .expect("ready")
                .notice;
        }
    }
    n
}

#[test]
fn raising_freezes_every_system_downstream_with_its_depth_and_contacts_2_5() {
    let n = raised(false);
    let got: Vec<(&str, u32, Vec<&str>)> = n
        .affected
        .iter()
        .map(|a| {
            (
                a.system.as_str(),
                a.depth,
                a.contacts().iter().map(|e| e.as_str()).collect(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("dw", 1, vec!["dw.iao@uni.example"]),
            (
                "moodle",
                1,
                vec!["moodle.iao@uni.example", "vle.admin@uni.example"]
            ),
            ("analytics", 2, vec!["analytics.iao@uni.example"]),
            ("powerbi", 2, vec!["powerbi.iao@uni.example"]),
        ],
        "retired flow to `old` ignored, sits itself (reached back from moodle) never listed"
    );
    assert!(n.affected.iter().all(|a| a.readiness == Readiness::Pending));
    assert_eq!(n.notice_period_days(), 28);
    assert_eq!(
        n.change.details.as_deref(),
        Some("Column names of the enrolment view change.")
    );
    assert_eq!(n.state, NoticeState::Open);
}

#[test]
fn raising_for_changing_data_items_follows_only_their_first_hop() {
    let n = raise(
        NoticeId::from_number(2),
        draft(false, &["marks"]),
        &email(OWNER),
        &register(),
        now(),
    )
    .expect("raised")
    .notice;
    let got: Vec<&str> = n.affected.iter().map(|a| a.system.as_str()).collect();
    assert_eq!(got, vec!["dw", "analytics", "powerbi"]);
}

#[test]
fn raising_refuses_what_cannot_be_a_notice() {
    let cases: Vec<(ChangeDraft, &str)> = vec![
        (
            ChangeDraft {
                summary: "  ".into(),
                ..draft(false, &[])
            },
            "the summary is empty",
        ),
        (
            ChangeDraft {
                planned_for: NaiveDate::from_ymd_opt(2027, 1, 3).expect("date"),
                ..draft(false, &[])
            },
            "the planned date 2027-01-03 is in the past",
        ),
        (
            ChangeDraft {
                system: SystemId::parse("nowhere").expect("id"),
                ..draft(false, &[])
            },
            "no system 'nowhere' in the register",
        ),
        (
            draft(false, &["no-such-item"]),
            "no data item 'no-such-item' in the register",
        ),
    ];
    for (d, expected) in cases {
        let e = raise(
            NoticeId::from_number(3),
            d,
            &email(OWNER),
            &register(),
            now(),
        )
        .expect_err(expected);
        assert!(e.to_string().contains(expected), "{e}");
        assert!(
            e.to_string()
                .starts_with("cannot raise change notice chg-3: "),
            "{e}"
        );
    }
}

#[test]
fn only_an_affected_systems_iao_or_iaa_answers_for_it_2_5() {
    let n = raised(false);
    // The IAA of moodle may; the IAO of dw may not answer for moodle; nobody answers for a
    // system the change does not reach.
    let t = answer(
        &n,
        "moodle",
        &email("vle.admin@uni.example"),
        Readiness::Acknowledged,
        None,
    )
    .expect("IAA acknowledges");
    let a = t.notice.affected_system("moodle").expect("moodle");
    assert_eq!(a.readiness, Readiness::Acknowledged);
    assert_eq!(
        a.answered_by.as_ref().map(|e| e.as_str()),
        Some("vle.admin@uni.example")
    );
    assert_eq!(t.notice.version, n.version + 1);
    let e = answer(&n, "moodle", &iao("dw"), Readiness::Ready, None).expect_err("not theirs");
    assert!(
        e.reason.contains(
            "only the Information Asset Owner or an Information Asset Administrator of 'moodle'"
        ),
        "{e}"
    );
    let e = answer(&n, "old", &iao("old"), Readiness::Ready, None).expect_err("not affected");
    assert!(
        e.reason
            .contains("'old' is not among the systems it affects"),
        "{e}"
    );
}

#[test]
fn answers_go_acknowledged_then_ready_or_not_ready_with_a_note() {
    let n = raised(false);
    let e = answer(&n, "dw", &iao("dw"), Readiness::NotReady, Some("  ")).expect_err("no note");
    assert!(
        e.reason.contains("a note is required with not_ready"),
        "{e}"
    );
    let n = answer(&n, "dw", &iao("dw"), Readiness::Acknowledged, None)
        .expect("ack")
        .notice;
    let e = answer(&n, "dw", &iao("dw"), Readiness::Acknowledged, None).expect_err("twice");
    assert!(e.reason.contains("already answered acknowledged"), "{e}");
    let n = answer(
        &n,
        "dw",
        &iao("dw"),
        Readiness::NotReady,
        Some("ETL jobs need rewriting"),
    )
    .expect("not ready")
    .notice;
    let dw = n.affected_system("dw").expect("dw");
    assert_eq!(
        (dw.readiness, dw.note.as_deref()),
        (Readiness::NotReady, Some("ETL jobs need rewriting"))
    );
    // Ready straight away also records that it was read.
    let n = answer(&n, "powerbi", &iao("powerbi"), Readiness::Ready, None)
        .expect("ready")
        .notice;
    assert!(
        n.affected_system("powerbi")
            .expect("p")
            .acknowledged_at
            .is_some()
    );
    let unanswered: Vec<&str> = n.unanswered().map(|a| a.system.as_str()).collect();
    assert_eq!(unanswered, vec!["moodle", "analytics"]);
}

#[test]
fn a_change_is_done_only_when_every_target_is_ready_unless_urgent_2_5() {
    let n = ready_all(raised(false), &["dw"]);
    let done = NoticeAction::Done {
        note: Some("upgraded".into()),
    };
    let e = decide(&n, &done, &email(OWNER), &register(), now()).expect_err("dw not ready");
    assert_eq!(
        e.to_string(),
        "cannot record as done change notice chg-1: 1 of the affected systems is not ready: 'dw' (pending); only an urgent change goes ahead before its targets are ready (2.5)"
    );
    let n = ready_all(n, &[]);
    let t = decide(&n, &done, &email(OWNER), &register(), now()).expect("all ready");
    assert_eq!(t.notice.state, NoticeState::Done);
    assert!(t.notice.went_ahead_while_not_ready.is_empty());

    // Urgent: it goes ahead, and the record names who was not ready.
    let n = ready_all(raised(true), &["dw", "analytics"]);
    let t = decide(&n, &done, &email(OWNER), &register(), now()).expect("urgent goes ahead");
    let names: Vec<&str> = t
        .notice
        .went_ahead_while_not_ready
        .iter()
        .map(|s| s.as_str())
        .collect();
    assert_eq!(names, vec!["dw", "analytics"]);
    assert_eq!(t.notice.closed_by.as_ref().map(|e| e.as_str()), Some(OWNER));
    // Nothing more happens to a closed notice.
    let e = answer(&t.notice, "dw", &iao("dw"), Readiness::Ready, None).expect_err("closed");
    assert!(
        e.reason
            .contains("it is done and nothing more can happen to it"),
        "{e}"
    );
}

#[test]
fn a_reminder_goes_once_to_those_who_have_not_answered() {
    let n = ready_all(raised(false), &["dw", "moodle"]);
    let t = decide(&n, &NoticeAction::Remind, &email(OWNER), &register(), now()).expect("remind");
    let names: Vec<&str> = t.reminded.iter().map(|s| s.as_str()).collect();
    assert_eq!(names, vec!["dw", "moodle"]);
    let e = decide(
        &t.notice,
        &NoticeAction::Remind,
        &email(OWNER),
        &register(),
        now(),
    )
    .expect_err("once");
    assert!(e.reason.contains("already gone"), "{e}");
}

struct TestLinks;

impl Links for TestLinks {
    fn request(&self, id: &RequestId) -> String {
        format!("https://fg/requests/{id}")
    }
    fn notice(&self, id: &NoticeId) -> String {
        format!("https://fg/notices/{id}")
    }
    fn answer(&self, notice: &NoticeId, system: &SystemId, person: &Email) -> String {
        format!("https://fg/answer/{notice}/{system}/{person}")
    }
}

#[test]
fn raising_tells_each_contact_once_about_all_their_systems_with_a_link_each() {
    let t = raise(
        NoticeId::from_number(1),
        draft(false, &[]),
        &email(OWNER),
        &register(),
        now(),
    )
    .expect("raised");
    let sent = notify::for_notice(&t, &TestLinks);
    let to: Vec<(&str, Vec<&str>)> = sent
        .iter()
        .map(|m| {
            (
                m.to.as_str(),
                m.systems.iter().map(|s| s.as_str()).collect(),
            )
        })
        .collect();
    assert_eq!(
        to,
        vec![
            ("analytics.iao@uni.example", vec!["analytics"]),
            ("dw.iao@uni.example", vec!["dw"]),
            ("moodle.iao@uni.example", vec!["moodle"]),
            ("powerbi.iao@uni.example", vec!["powerbi"]),
            ("vle.admin@uni.example", vec!["moodle"]),
        ]
    );
    let analytics = &sent[0];
    assert_eq!(analytics.event, "notice.raised");
    assert_eq!(
        analytics.subject,
        "Change to sits on 2027-02-01: Upgrade to SITS 10.2"
    );
    assert!(
        analytics
            .text
            .contains("analytics (analytics) is affected at depth 2, through dw, moodle"),
        "{}",
        analytics.text
    );
    assert!(
        analytics
            .text
            .contains("https://fg/answer/chg-1/analytics/analytics.iao@uni.example"),
        "{}",
        analytics.text
    );
    assert!(
        analytics.text.contains("Notice given: 28 days"),
        "{}",
        analytics.text
    );
}

#[test]
fn each_step_tells_the_right_people() {
    let n = raised(true);
    // A reminder: only the contacts of systems that have not answered.
    let n = ready_all(n, &["dw"]);
    let t = decide(&n, &NoticeAction::Remind, &email(OWNER), &register(), now()).expect("remind");
    let sent = notify::for_notice(&t, &TestLinks);
    assert_eq!(
        sent.iter().map(|m| m.to.as_str()).collect::<Vec<_>>(),
        vec!["dw.iao@uni.example"]
    );
    assert!(
        sent[0]
            .subject
            .starts_with("Reminder: URGENT change to sits"),
        "{}",
        sent[0].subject
    );
    // Not ready: the change owner hears, with the note.
    let t = answer(
        &t.notice,
        "dw",
        &iao("dw"),
        Readiness::NotReady,
        Some("needs a week"),
    )
    .expect("nr");
    let sent = notify::for_notice(&t, &TestLinks);
    assert_eq!(sent.len(), 1);
    assert_eq!(
        (sent[0].to.as_str(), sent[0].event),
        (OWNER, "notice.not_ready")
    );
    assert!(sent[0].text.contains("needs a week"));
    // Done while dw was not ready: everyone told, and told that.
    let t = decide(
        &t.notice,
        &NoticeAction::Done { note: None },
        &email(OWNER),
        &register(),
        now(),
    )
    .expect("done");
    let sent = notify::for_notice(&t, &TestLinks);
    assert_eq!(sent.len(), 5);
    assert!(sent.iter().all(|m| m.event == "notice.done"));
    assert!(
        sent[0]
            .text
            .contains("went ahead while these systems were not ready: dw"),
        "{}",
        sent[0].text
    );
    // An acknowledgement tells nobody.
    let n = raised(false);
    let t = answer(&n, "dw", &iao("dw"), Readiness::Acknowledged, None).expect("ack");
    assert!(notify::for_notice(&t, &TestLinks).is_empty());
}
