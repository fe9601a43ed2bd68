//! Who is told what when something happens: the notifications a request step or a change notice
//! step gives rise to, as the text of an e-mail and the facts of a webhook.
//!
//! Pure. The store calls these inside the transaction that records the step, and writes what they
//! return to its outbox in that same transaction: a step is never recorded without its messages,
//! nor a message sent for a step that was not recorded.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;
use serde_json::{Value, json};

use crate::ids::{Email, NoticeId, RequestId, SystemId};
use crate::notice::{AffectedSystem, ChangeNotice, NoticeActionName, NoticeTransition, Readiness};
use crate::register::Register;
use crate::workflow::{ActionName, SharingRequest, State, Transition};

/// Where a notification's links point. The store knows the server's public address and the key
/// that signs answer links; this module only says which link goes where.
pub trait Links {
    /// The page of a request.
    fn request(&self, id: &RequestId) -> String;
    /// The page of a change notice.
    fn notice(&self, id: &NoticeId) -> String;
    /// A page on which `person` answers `notice` for `system` without signing in first.
    fn answer(&self, notice: &NoticeId, system: &SystemId, person: &Email) -> String;
}

/// One message to one person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Notification {
    pub to: Email,
    /// The systems it is about: a system's webhooks receive what is about it.
    pub systems: Vec<SystemId>,
    /// What happened, e.g. `notice.raised`, `request.awaiting_approval`.
    pub event: &'static str,
    pub subject: String,
    /// The e-mail's text.
    pub text: String,
    /// The page to look at.
    pub link: String,
    /// The facts, for a webhook.
    pub data: Value,
}

/// The notifications a request step gives rise to.
pub fn for_request(t: &Transition, register: &Register, links: &dyn Links) -> Vec<Notification> {
    let r = &t.request;
    let link = links.request(&r.id);
    let systems = vec![r.ask.source.clone(), r.ask.target.clone()];
    let data = json!({
        "request": r.id,
        "state": r.state,
        "source": r.ask.source,
        "target": r.ask.target,
        "requester": r.ask.requester,
    });
    let headline = describe(r, register);
    let message = |to: &Email, event: &'static str, subject: String, body: String| Notification {
        to: to.clone(),
        systems: systems.clone(),
        event,
        subject,
        text: format!("{body}\n\n{headline}\n\nSee the request: {link}\n"),
        link: link.clone(),
        data: data.clone(),
    };
    let mut out = Vec::new();
    let entered = |s: State| r.state == s && t.from != Some(s);
    if entered(State::AwaitingApproval) {
        // Each IAO whose side still waits, once even when they own both systems (2.3).
        let mut owners: Vec<&Email> = r
            .sides_awaiting()
            .iter()
            .filter_map(|side| {
                let id = match side {
                    crate::workflow::Side::Source => &r.ask.source,
                    crate::workflow::Side::Target => &r.ask.target,
                };
                register.system(id.as_str())?.owner.as_ref()
            })
            .filter(|o| **o != r.ask.requester)
            .collect();
        owners.sort();
        owners.dedup();
        for o in owners {
            out.push(message(
                o,
                "request.awaiting_approval",
                format!("Request {} awaits your approval", r.id),
                "As the Information Asset Owner of a system it names, your approval is needed before it can be built (2.3).".into(),
            ));
        }
    }
    match t.action {
        ActionName::ReturnForInformation => out.push(message(
            &r.ask.requester,
            "request.returned",
            format!("Request {} needs more information from you", r.id),
            format!(
                "Your request was returned with a question:\n\n  {}\n\nAnswer it on the request's page and it goes back where it was.",
                r.question.as_deref().unwrap_or_default()
            ),
        )),
        ActionName::Refuse => out.push(message(
            &r.ask.requester,
            "request.refused",
            format!("Request {} was refused", r.id),
            format!(
                "Your request was refused:\n\n  {}",
                r.reason.as_deref().unwrap_or("no reason was given")
            ),
        )),
        ActionName::Complete => {
            let flow = r.flow.as_ref().map(|f| f.to_string()).unwrap_or_default();
            let mut told: Vec<&Email> = std::iter::once(&r.ask.requester)
                .chain(systems.iter().filter_map(|s| register.system(s.as_str())?.owner.as_ref()))
                .collect();
            told.sort();
            told.dedup();
            for p in told {
                out.push(message(
                    p,
                    "request.completed",
                    format!("Request {} is complete: flow {flow} is recorded", r.id),
                    format!(
                        "The interface was built and is recorded in the Information Asset Register as flow {flow} (2.4)."
                    ),
                ));
            }
        }
        _ if entered(State::Approved) => out.push(message(
            &r.ask.requester,
            "request.approved",
            format!("Request {} is approved", r.id),
            "Both Information Asset Owners approved it (2.3); it is now with the product line to build.".into(),
        )),
        _ => {}
    }
    out
}

fn describe(r: &SharingRequest, register: &Register) -> String {
    let name = |id: &SystemId| {
        register
            .system(id.as_str())
            .map_or_else(|| id.to_string(), |s| format!("{} ({id})", s.name))
    };
    let items = r
        .ask
        .data_items
        .iter()
        .map(|d| d.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "{}: {} from {} to {}, raised by {}.\nWhy: {}",
        r.id,
        items,
        name(&r.ask.source),
        name(&r.ask.target),
        r.ask.requester,
        r.ask.justification
    )
}

/// The affected systems each person is told about, by person.
fn by_contact<'a>(
    systems: impl Iterator<Item = &'a AffectedSystem>,
) -> BTreeMap<&'a Email, Vec<&'a AffectedSystem>> {
    let mut out: BTreeMap<&Email, Vec<&AffectedSystem>> = BTreeMap::new();
    for a in systems {
        for p in a.contacts() {
            out.entry(p).or_default().push(a);
        }
    }
    out
}

/// The notifications a change notice step gives rise to (2.5).
pub fn for_notice(t: &NoticeTransition, links: &dyn Links) -> Vec<Notification> {
    let n = &t.notice;
    let link = links.notice(&n.id);
    let urgent = if n.change.urgent { "URGENT " } else { "" };
    let about = format!(
        "{urgent}change to {} on {}: {}",
        n.change.system, n.change.planned_for, n.change.summary
    );
    let facts = |systems: &[&AffectedSystem]| {
        json!({
            "notice": n.id,
            "system": n.change.system,
            "summary": n.change.summary,
            "planned_for": n.change.planned_for,
            "urgent": n.change.urgent,
            "state": n.state,
            "affected": systems.iter().map(|a| json!({
                "system": a.system, "depth": a.depth, "readiness": a.readiness,
            })).collect::<Vec<_>>(),
        })
    };
    let message = |to: &Email, systems: &[&AffectedSystem], event, subject, text| Notification {
        to: to.clone(),
        systems: systems.iter().map(|a| a.system.clone()).collect(),
        event,
        subject,
        text,
        link: link.clone(),
        data: facts(systems),
    };
    let mut out = Vec::new();
    match t.action {
        NoticeActionName::Raise | NoticeActionName::Remind => {
            let reminder = t.action == NoticeActionName::Remind;
            let told = by_contact(
                n.affected
                    .iter()
                    .filter(|a| !reminder || t.reminded.contains(&a.system)),
            );
            for (person, systems) in told {
                let text = notice_text(n, person, &systems, reminder, links);
                let (event, subject) = if reminder {
                    (
                        "notice.reminder",
                        format!("Reminder: {about} — are you ready?"),
                    )
                } else {
                    ("notice.raised", capitalise(&about))
                };
                out.push(message(person, &systems, event, subject, text));
            }
        }
        NoticeActionName::Done | NoticeActionName::Withdraw => {
            let done = t.action == NoticeActionName::Done;
            for (person, systems) in by_contact(n.affected.iter()) {
                let mut text = if done {
                    format!("The {about} has been made (2.5).\n")
                } else {
                    format!("The {about} will not happen: the notice was withdrawn.\n")
                };
                if let Some(note) = &n.closing_note {
                    let _ = writeln!(text, "\n  {note}");
                }
                if done && !n.went_ahead_while_not_ready.is_empty() {
                    let _ = writeln!(
                        text,
                        "\nIt was urgent and went ahead while these systems were not ready: {}.",
                        n.went_ahead_while_not_ready
                            .iter()
                            .map(|s| s.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                }
                let _ = write!(text, "\nSee the notice: {link}\n");
                let (event, subject) = if done {
                    ("notice.done", format!("Done: {about}"))
                } else {
                    ("notice.withdrawn", format!("Withdrawn: {about}"))
                };
                out.push(message(person, &systems, event, subject, text));
            }
        }
        NoticeActionName::NotReady => {
            if let Some(a) = t
                .system
                .as_ref()
                .and_then(|s| n.affected_system(s.as_str()))
            {
                out.push(message(
                    &n.raised_by,
                    &[a],
                    "notice.not_ready",
                    format!("{} is not ready for the {about}", a.system),
                    format!(
                        "{} ({}) is not ready for the {about}.\n\n  {}\n\nanswered by {}\n\nSee the notice: {link}\n",
                        a.name,
                        a.system,
                        a.note.as_deref().unwrap_or_default(),
                        a.answered_by.as_ref().map(|e| e.as_str()).unwrap_or_default(),
                    ),
                ));
            }
        }
        NoticeActionName::Acknowledge | NoticeActionName::Ready => {}
    }
    out
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// The e-mail telling `person` about a change to systems they answer for, with a link per system.
fn notice_text(
    n: &ChangeNotice,
    person: &Email,
    systems: &[&AffectedSystem],
    reminder: bool,
    links: &dyn Links,
) -> String {
    let mut t = String::new();
    if let Some(at) = n.reminded_at.filter(|_| reminder) {
        let _ = writeln!(
            t,
            "Reminder: you have not yet said whether these systems are ready for a change due in {} days.\n",
            (n.change.planned_for - at.date_naive()).num_days().max(0)
        );
    }
    let _ = writeln!(
        t,
        "{} will change {} on {}{}: {}",
        n.raised_by,
        n.change.system,
        n.change.planned_for,
        if n.change.urgent {
            " (urgent: it may go ahead even if your systems are not ready, 2.5)"
        } else {
            ""
        },
        n.change.summary
    );
    if let Some(d) = &n.change.details {
        let _ = writeln!(t, "\n{d}");
    }
    if !n.change.data_items.is_empty() {
        let _ = writeln!(
            t,
            "\nData items changing: {}",
            n.change
                .data_items
                .iter()
                .map(|d| d.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let _ = writeln!(
        t,
        "\nNotice given: {} days. As an Information Asset Owner or Administrator of a system that receives data from it, directly or through other systems, you are responsible for that system being ready (2.5).\n",
        n.notice_period_days()
    );
    for a in systems {
        let how = if a.depth == 1 {
            format!(
                "directly, by {}",
                a.flows
                    .iter()
                    .map(|f| f.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        } else {
            format!(
                "at depth {}, through {}",
                a.depth,
                a.via
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        let answered = match a.readiness {
            Readiness::Pending => String::new(),
            r => format!(" — answered so far: {r}"),
        };
        let _ = writeln!(
            t,
            "* {} ({}) is affected {how}{answered}.\n  Say whether it is ready: {}",
            a.name,
            a.system,
            links.answer(&n.id, &a.system, person)
        );
    }
    let _ = write!(t, "\nSee the notice: {}\n", links.notice(&n.id));
    t
}
