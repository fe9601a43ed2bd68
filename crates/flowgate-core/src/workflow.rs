//! The request lifecycle (2.1–2.4) as a pure state machine: `(request, action, actor, register,
//! now) -> transition | refusal`.
//!
//! ```text
//! raise (2.1) ─► with_data_product_team ─triage (2.2)─► awaiting_review ─reassess/triage─┐
//!                         │                                                              ▼
//!                         └──────────────triage (clean)──────────────────────► awaiting_approval
//!   approve by the IAO of the source and of the target (2.3) ─► approved ─prioritise─► prioritised
//!   ─start─► in_progress ─complete (2.4: the flow is recorded)─► completed
//! ```
//! Before completion a request can also be returned for information (and answered, going back to
//! where it was), refused with a reason, or withdrawn by its requester.
//!
//! What is decided here is what the Code says about a request's course: which step may follow
//! which, that the principles are assessed again at triage, approval and completion (the
//! register may have changed), that nobody approves their own request and only a system's
//! Information Asset Owner approves for it (2.3), and that only the requester answers or
//! withdraws. *Who in the organisation* may triage, refuse or complete is the Cedar policy's
//! to say (`flowgate-authz`), so that a university can change it without changing the code.

use std::collections::BTreeSet;
use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

pub use crate::ids::RequestId;
use crate::ids::{Email, FlowId};
use crate::policy::{self, Assessment, Outcome, Request, Severity};
use crate::register::{Flow, FlowMethod, FlowStatus, Register, UnknownVariant};

crate::register::closed_enum!(
    /// Where a request is in its life.
    State {
        /// Raised (2.1), waiting for the Data Product Team's triage (2.2).
        WithDataProductTeam = "with_data_product_team",
        /// Needs a DPIA, a checklist review or a system registered first (2.2).
        AwaitingReview = "awaiting_review",
        /// Waiting for the IAOs of the source and of the target (2.3).
        AwaitingApproval = "awaiting_approval",
        /// Approved by both IAOs: with the product line (2.3).
        Approved = "approved",
        /// Given a priority by the product line.
        Prioritised = "prioritised",
        /// Being built by the product line.
        InProgress = "in_progress",
        /// Returned to the requester with a question.
        Returned = "returned",
        /// Built and recorded in the register (2.4).
        Completed = "completed",
        Refused = "refused",
        Withdrawn = "withdrawn",
    }
);

impl State {
    /// Whether nothing more can happen to a request in this state.
    pub fn is_final(self) -> bool {
        matches!(self, State::Completed | State::Refused | State::Withdrawn)
    }
}

crate::register::closed_enum!(
    /// The product line's priority for an approved request.
    Priority { Low = "low", Normal = "normal", High = "high", Urgent = "urgent" }
);

crate::register::closed_enum!(
    /// Which end of the flow an IAO approves for.
    Side { Source = "source", Target = "target" }
);

crate::register::closed_enum!(
    /// Every action on a request, by its name in the API, the CLI and the Cedar policy.
    ActionName {
        Raise = "raise",
        Triage = "triage",
        Reassess = "reassess",
        Approve = "approve",
        Refuse = "refuse",
        ReturnForInformation = "return",
        Answer = "answer",
        Withdraw = "withdraw",
        Prioritise = "prioritise",
        Start = "start",
        Complete = "complete",
    }
);

/// An IAO's approval of one side (2.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    pub side: Side,
    pub by: Email,
    pub at: DateTime<Utc>,
}

/// A data sharing / integration request as raised and as it moves (2.1–2.4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharingRequest {
    pub id: RequestId,
    /// What is asked: requester, justification, source, items, target, intended use, access.
    #[serde(flatten)]
    pub ask: Request,
    /// The service desk ticket it came from, if any.
    pub ticket: Option<String>,
    pub state: State,
    /// While `returned`: the state it goes back to when answered.
    pub returned_from: Option<State>,
    /// While `returned`: the question the requester must answer.
    pub question: Option<String>,
    pub approvals: Vec<Approval>,
    pub priority: Option<Priority>,
    pub target_date: Option<NaiveDate>,
    /// Why it was refused.
    pub reason: Option<String>,
    /// The flow recorded on completion (2.4).
    pub flow: Option<FlowId>,
    pub raised_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Moves by one with every transition: the ETag that keeps two approvers from both winning.
    pub version: i64,
}

impl SharingRequest {
    /// The sides that still need an approval.
    pub fn sides_awaiting(&self) -> Vec<Side> {
        Side::ALL
            .iter()
            .copied()
            .filter(|s| !self.approvals.iter().any(|a| a.side == *s))
            .collect()
    }
}

/// What the actor asks to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Triage,
    /// Assess again after the register changed (a DPIA or checklist recorded, a system added).
    Reassess,
    Approve,
    /// `None`: refuse with the current assessment's violations as the reason.
    Refuse {
        reason: Option<String>,
    },
    ReturnForInformation {
        question: String,
    },
    Answer {
        answer: String,
    },
    Withdraw,
    Prioritise {
        priority: Priority,
        target_date: Option<NaiveDate>,
    },
    Start,
    Complete {
        method: FlowMethod,
        frequency: Option<String>,
    },
}

impl Action {
    pub fn name(&self) -> ActionName {
        match self {
            Action::Triage => ActionName::Triage,
            Action::Reassess => ActionName::Reassess,
            Action::Approve => ActionName::Approve,
            Action::Refuse { .. } => ActionName::Refuse,
            Action::ReturnForInformation { .. } => ActionName::ReturnForInformation,
            Action::Answer { .. } => ActionName::Answer,
            Action::Withdraw => ActionName::Withdraw,
            Action::Prioritise { .. } => ActionName::Prioritise,
            Action::Start => ActionName::Start,
            Action::Complete { .. } => ActionName::Complete,
        }
    }
}

/// What a transition did: the request after it, and what the audit event records beside it.
#[derive(Debug, Clone)]
pub struct Transition {
    pub action: ActionName,
    pub from: Option<State>,
    pub request: SharingRequest,
    /// The assessment made on the way, if the step makes one.
    pub assessment: Option<Assessment>,
    /// A note for the history: the reason, question or answer.
    pub note: Option<String>,
    /// The flow to record in the register, on completion (2.4).
    pub flow: Option<Flow>,
}

/// Why an action cannot be taken. The message says so in words a requester understands.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot {action} request {request}: {reason}")]
pub struct Refusal {
    pub action: ActionName,
    pub request: String,
    pub reason: String,
}

fn refuse<T>(action: ActionName, request: &str, reason: impl Into<String>) -> Result<T, Refusal> {
    Err(Refusal {
        action,
        request: request.to_owned(),
        reason: reason.into(),
    })
}

/// The findings of `severity` or worse, as one sentence each.
fn findings_text(a: &Assessment, at_least: Severity) -> String {
    a.findings
        .iter()
        .filter(|f| f.severity >= at_least)
        .map(|f| format!("{} ({}): {}", f.rule, f.clause, f.message))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Raises a request (2.1). The requester is the actor: a request is raised by the person who
/// needs the data.
pub fn raise(
    id: RequestId,
    ask: Request,
    ticket: Option<String>,
    actor: &Email,
    now: DateTime<Utc>,
) -> Result<Transition, Refusal> {
    if &ask.requester != actor {
        return refuse(
            ActionName::Raise,
            id.as_str(),
            format!(
                "a request is raised by its requester ('{}'), not by '{actor}'",
                ask.requester
            ),
        );
    }
    Ok(Transition {
        action: ActionName::Raise,
        from: None,
        request: SharingRequest {
            id,
            ask,
            ticket: ticket.filter(|t| !t.trim().is_empty()),
            state: State::WithDataProductTeam,
            returned_from: None,
            question: None,
            approvals: Vec::new(),
            priority: None,
            target_date: None,
            reason: None,
            flow: None,
            raised_at: now,
            updated_at: now,
            version: 1,
        },
        assessment: None,
        note: None,
        flow: None,
    })
}

/// Decides an action on a request. Pure: the same inputs give the same answer.
pub fn decide(
    req: &SharingRequest,
    action: &Action,
    actor: &Email,
    register: &Register,
    now: DateTime<Utc>,
) -> Result<Transition, Refusal> {
    use State::*;
    let name = action.name();
    let no = |reason: String| refuse(name, req.id.as_str(), reason);
    if req.state.is_final() {
        return no(format!(
            "it is {} and nothing more can happen to it",
            req.state
        ));
    }
    let as_of = now.date_naive();
    let mut next = req.clone();
    next.version += 1;
    next.updated_at = now;
    let mut assessment = None;
    let mut note = None;
    let mut flow = None;
    let wrong_state = |allowed: &[State]| {
        no(format!(
            "it is {}; {name} applies to a request that is {}",
            req.state,
            allowed
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(" or ")
        ))
    };
    match action {
        Action::Triage | Action::Reassess => {
            let allowed: &[State] = if *action == Action::Triage {
                &[WithDataProductTeam, AwaitingReview, AwaitingApproval]
            } else {
                &[AwaitingReview]
            };
            if !allowed.contains(&req.state) {
                return wrong_state(allowed);
            }
            let a = policy::assess(register, &req.ask, as_of);
            match a.outcome {
                Outcome::Rejected if *action == Action::Triage => {
                    return no(format!(
                        "the principles do not allow it — {}; refuse it (the findings are the reason) or return it to the requester",
                        findings_text(&a, Severity::Violation)
                    ));
                }
                Outcome::Rejected | Outcome::NeedsReview => {
                    next.state = AwaitingReview;
                }
                Outcome::Proceed => next.state = AwaitingApproval,
            }
            if next.state != AwaitingApproval {
                // Approvals given before the register changed no longer stand.
                next.approvals.clear();
            }
            assessment = Some(a);
        }
        Action::Approve => {
            if req.state != AwaitingApproval {
                return wrong_state(&[AwaitingApproval]);
            }
            if &req.ask.requester == actor {
                return no("nobody approves their own request (2.3)".into());
            }
            let owner_of = |id: &str| register.system(id).and_then(|s| s.owner.as_ref());
            let mine: Vec<Side> = [
                (Side::Source, owner_of(req.ask.source.as_str())),
                (Side::Target, owner_of(req.ask.target.as_str())),
            ]
            .into_iter()
            .filter(|(_, owner)| *owner == Some(actor))
            .map(|(side, _)| side)
            .collect();
            if mine.is_empty() {
                return no(format!(
                    "only the Information Asset Owner of '{}' or of '{}' approves it (2.3), and '{actor}' is neither",
                    req.ask.source, req.ask.target
                ));
            }
            let awaiting: Vec<Side> = req.sides_awaiting();
            let new: Vec<Side> = mine.into_iter().filter(|s| awaiting.contains(s)).collect();
            if new.is_empty() {
                return no(format!("'{actor}' has already approved it"));
            }
            let a = policy::assess(register, &req.ask, as_of);
            if a.outcome != Outcome::Proceed {
                return no(format!(
                    "the principles no longer allow it — {}; the Data Product Team must triage it again",
                    findings_text(&a, Severity::Review)
                ));
            }
            for side in new {
                next.approvals.push(Approval {
                    side,
                    by: actor.clone(),
                    at: now,
                });
            }
            if next.sides_awaiting().is_empty() {
                next.state = Approved;
            }
            assessment = Some(a);
        }
        Action::Refuse { reason } => {
            let reason = match reason.as_deref().map(str::trim) {
                Some(r) if !r.is_empty() => r.to_owned(),
                _ => {
                    let a = policy::assess(register, &req.ask, as_of);
                    if a.outcome != Outcome::Rejected {
                        return no(
                            "a reason is needed: the principles find no violation to refuse it for"
                                .into(),
                        );
                    }
                    let text = findings_text(&a, Severity::Violation);
                    assessment = Some(a);
                    text
                }
            };
            next.state = Refused;
            next.returned_from = None;
            next.question = None;
            next.reason = Some(reason.clone());
            note = Some(reason);
        }
        Action::ReturnForInformation { question } => {
            if req.state == Returned {
                return no("it is already returned with a question to answer".into());
            }
            let question = question.trim();
            if question.is_empty() {
                return no("a question for the requester is needed".into());
            }
            next.state = Returned;
            next.returned_from = Some(req.state);
            next.question = Some(question.to_owned());
            note = Some(question.to_owned());
        }
        Action::Answer { answer } => {
            if req.state != Returned {
                return wrong_state(&[Returned]);
            }
            if &req.ask.requester != actor {
                return no(format!(
                    "only the requester ('{}') answers its question",
                    req.ask.requester
                ));
            }
            let answer = answer.trim();
            if answer.is_empty() {
                return no("the answer is empty".into());
            }
            next.state = req.returned_from.unwrap_or(WithDataProductTeam);
            next.returned_from = None;
            next.question = None;
            note = Some(answer.to_owned());
        }
        Action::Withdraw => {
            if &req.ask.requester != actor {
                return no(format!(
                    "only the requester ('{}') withdraws it",
                    req.ask.requester
                ));
            }
            next.state = Withdrawn;
            next.returned_from = None;
            next.question = None;
        }
        Action::Prioritise {
            priority,
            target_date,
        } => {
            let allowed = [Approved, Prioritised, InProgress];
            if !allowed.contains(&req.state) {
                return wrong_state(&allowed);
            }
            if let Some(d) = target_date
                && *d < as_of
            {
                return no(format!("the target date {d} is in the past"));
            }
            if req.state != InProgress {
                next.state = Prioritised;
            }
            next.priority = Some(*priority);
            next.target_date = *target_date;
        }
        Action::Start => {
            let allowed = [Approved, Prioritised];
            if !allowed.contains(&req.state) {
                return wrong_state(&allowed);
            }
            next.state = InProgress;
        }
        Action::Complete { method, frequency } => {
            if req.state != InProgress {
                return wrong_state(&[InProgress]);
            }
            let a = policy::assess(register, &req.ask, as_of);
            if a.outcome != Outcome::Proceed {
                return no(format!(
                    "the principles no longer allow it — {}; it cannot be recorded as an interface (2.4)",
                    findings_text(&a, Severity::Review)
                ));
            }
            let id = flow_id_for(&req.id);
            if register.flow(id.as_str()).is_some() {
                return no(format!("the register already has a flow '{id}'"));
            }
            flow = Some(Flow {
                id: id.clone(),
                source: req.ask.source.clone(),
                target: req.ask.target.clone(),
                data_items: req.ask.data_items.iter().cloned().collect::<BTreeSet<_>>(),
                method: *method,
                frequency: frequency.clone().filter(|f| !f.trim().is_empty()),
                status: FlowStatus::Active,
                request: Some(req.id.to_string()),
                established_on: Some(as_of),
            });
            next.state = Completed;
            next.flow = Some(id);
            assessment = Some(a);
        }
    }
    Ok(Transition {
        action: name,
        from: Some(req.state),
        request: next,
        assessment,
        note,
        flow,
    })
}

/// The id of the flow a request records on completion: `flow-` and the request's id, so each
/// request records at most one.
pub fn flow_id_for(id: &RequestId) -> FlowId {
    FlowId::parse(&format!("flow-{id}")).unwrap_or_else(|_| unreachable!("a valid slug"))
}

/// Parses an action from its API form: the name and a JSON body with its fields.
pub fn action_from_json(
    name: ActionName,
    body: &serde_json::Value,
) -> Result<Action, policy::FieldError> {
    let text = |field: &str| -> Result<Option<String>, policy::FieldError> {
        match body.get(field) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(policy::FieldError {
                field: field.into(),
                message: format!("expected a string, found {other}"),
            }),
        }
    };
    let required = |field: &str| -> Result<String, policy::FieldError> {
        match text(field)? {
            Some(s) if !s.trim().is_empty() => Ok(s),
            _ => Err(policy::FieldError {
                field: field.into(),
                message: "is required".into(),
            }),
        }
    };
    let bad = |field: &str, e: UnknownVariant| policy::FieldError {
        field: field.into(),
        message: e.to_string(),
    };
    Ok(match name {
        ActionName::Raise => {
            return Err(policy::FieldError {
                field: "action".into(),
                message: "a request is raised by POST /api/v1/requests".into(),
            });
        }
        ActionName::Triage => Action::Triage,
        ActionName::Reassess => Action::Reassess,
        ActionName::Approve => Action::Approve,
        ActionName::Refuse => Action::Refuse {
            reason: text("reason")?,
        },
        ActionName::ReturnForInformation => Action::ReturnForInformation {
            question: required("question")?,
        },
        ActionName::Answer => Action::Answer {
            answer: required("answer")?,
        },
        ActionName::Withdraw => Action::Withdraw,
        ActionName::Prioritise => Action::Prioritise {
            priority: Priority::parse(&required("priority")?).map_err(|e| bad("priority", e))?,
            target_date: text("target_date")?
                .map(|d| {
                    d.parse::<NaiveDate>().map_err(|_| policy::FieldError {
                        field: "target_date".into(),
                        message: format!("'{d}' is not a date (YYYY-MM-DD)"),
                    })
                })
                .transpose()?,
        },
        ActionName::Start => Action::Start,
        ActionName::Complete => Action::Complete {
            method: FlowMethod::parse(&required("method")?).map_err(|e| bad("method", e))?,
            frequency: text("frequency")?,
        },
    })
}
