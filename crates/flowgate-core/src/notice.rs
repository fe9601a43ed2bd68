//! Change notices (2.5): a change owner tells the owners of every system downstream of a source
//! system that it is about to change, and each of them says whether their system is ready.
//!
//! ```text
//! raise ─► open ─(each affected system: acknowledged, then ready | not_ready)─► done
//!            └──────────────────────────────withdraw──────────────────────────► withdrawn
//! ```
//! The affected systems are computed by [`impact::downstream`](crate::impact::downstream) when
//! the notice is raised and frozen into it: the notice says who was told, whatever the register
//! says later. The 2.5 of the Code makes the target's IAO responsible for being ready, and ICT
//! responsible for giving as much notice as it can; so a notice shows its notice period and who
//! has not answered, and a change is recorded as done only when every affected system is ready
//! — unless it is urgent, when it may go ahead anyway and the record names the systems that were
//! not ready (2.5, last sentence).
//!
//! Pure, like the request workflow: `(notice, action, actor, register, now) -> transition |
//! refusal`. Who may raise a notice or record it done is the Cedar policy's to say; that only an
//! affected system's IAO or IAAs answer for it is the Code's (2.5), and decided here.

use chrono::{DateTime, NaiveDate, Utc};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ids::{DataItemId, Email, FlowId, NoticeId, SystemId};
use crate::impact::{self, ImpactOptions};
use crate::register::{Register, UnknownVariant};

crate::register::closed_enum!(
    /// Where a notice is in its life.
    NoticeState {
        /// Raised; the affected systems are answering.
        Open = "open",
        /// The change was made.
        Done = "done",
        /// The change will not happen.
        Withdrawn = "withdrawn",
    }
);

crate::register::closed_enum!(
    /// What an affected system has said about a change (2.5).
    Readiness {
        /// Nothing yet.
        Pending = "pending",
        /// Its IAO or an IAA has read the notice.
        Acknowledged = "acknowledged",
        /// Ready for the change.
        Ready = "ready",
        /// Not ready, with a note saying what is missing.
        NotReady = "not_ready",
    }
);

impl Readiness {
    /// Whether the system has said whether it is ready.
    pub fn is_answered(self) -> bool {
        matches!(self, Readiness::Ready | Readiness::NotReady)
    }
}

crate::register::closed_enum!(
    /// Every action on a notice, by its name in the API, the CLI, the audit log and the policy.
    NoticeActionName {
        Raise = "raise",
        Acknowledge = "acknowledge",
        Ready = "ready",
        NotReady = "not_ready",
        Remind = "remind",
        Done = "done",
        Withdraw = "withdraw",
    }
);

impl NoticeActionName {
    /// The verb of a refusal: "cannot record as done change notice chg-3: ...".
    pub fn verb(self) -> &'static str {
        match self {
            NoticeActionName::Raise => "raise",
            NoticeActionName::Acknowledge => "acknowledge",
            NoticeActionName::Ready | NoticeActionName::NotReady => "answer",
            NoticeActionName::Remind => "send a reminder for",
            NoticeActionName::Done => "record as done",
            NoticeActionName::Withdraw => "withdraw",
        }
    }
}

/// What a change owner says when raising a notice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeDraft {
    /// The source system that changes.
    pub system: SystemId,
    /// What changes, in a line ("Upgrade to SITS 10.2").
    pub summary: String,
    /// More about it: what will be different for systems downstream.
    #[serde(default)]
    pub details: Option<String>,
    /// When the change is planned.
    pub planned_for: NaiveDate,
    /// An urgent change may go ahead while systems downstream are not ready (2.5).
    #[serde(default)]
    pub urgent: bool,
    /// Only flows carrying these items are followed out of `system`; empty: every flow.
    #[serde(default)]
    pub data_items: Vec<DataItemId>,
}

/// A system downstream of the change, as it was found when the notice was raised, and its answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AffectedSystem {
    pub system: SystemId,
    pub name: String,
    /// 1: fed directly by the changed system; 2: by a system at depth 1; ...
    pub depth: u32,
    /// The flows that reach it at that depth.
    pub flows: Vec<FlowId>,
    /// The systems those flows come from.
    pub via: Vec<SystemId>,
    /// Its IAO and IAAs when the notice was raised: the people who were told.
    pub owner: Option<Email>,
    pub administrators: Vec<Email>,
    pub readiness: Readiness,
    pub note: Option<String>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub answered_by: Option<Email>,
    pub answered_at: Option<DateTime<Utc>>,
}

impl AffectedSystem {
    /// The people told about the change to this system: its IAO and its IAAs, without repeats.
    pub fn contacts(&self) -> Vec<&Email> {
        let mut out: Vec<&Email> = self.owner.iter().chain(&self.administrators).collect();
        out.sort();
        out.dedup();
        out
    }
}

/// A change notice (2.5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeNotice {
    pub id: NoticeId,
    #[serde(flatten)]
    pub change: ChangeDraft,
    pub raised_by: Email,
    pub raised_at: DateTime<Utc>,
    pub state: NoticeState,
    /// Frozen when raised, sorted by depth and then system id.
    pub affected: Vec<AffectedSystem>,
    /// When the reminder went to those who had not answered.
    pub reminded_at: Option<DateTime<Utc>>,
    /// When it was recorded done or withdrawn, by whom, and what they said.
    pub closed_at: Option<DateTime<Utc>>,
    pub closed_by: Option<Email>,
    pub closing_note: Option<String>,
    /// An urgent change recorded done while these systems were not ready (2.5).
    pub went_ahead_while_not_ready: Vec<SystemId>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

impl ChangeNotice {
    /// Days between raising the notice and the planned date: the notice given (2.5).
    pub fn notice_period_days(&self) -> i64 {
        (self.change.planned_for - self.raised_at.date_naive()).num_days()
    }

    /// The affected systems that have not said whether they are ready.
    pub fn unanswered(&self) -> impl Iterator<Item = &AffectedSystem> {
        self.affected.iter().filter(|a| !a.readiness.is_answered())
    }

    /// The affected systems that are not ready: not answered, or answered not ready.
    pub fn not_ready(&self) -> impl Iterator<Item = &AffectedSystem> {
        self.affected
            .iter()
            .filter(|a| a.readiness != Readiness::Ready)
    }

    pub fn affected_system(&self, id: &str) -> Option<&AffectedSystem> {
        self.affected.iter().find(|a| a.system.as_str() == id)
    }

    /// Whether `person` is told about this change for some affected system.
    pub fn concerns(&self, person: &Email) -> bool {
        self.affected.iter().any(|a| a.contacts().contains(&person))
    }
}

/// What the actor asks to do to a notice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoticeAction {
    /// An affected system's answer, by its IAO or an IAA.
    Answer {
        system: SystemId,
        readiness: Readiness,
        note: Option<String>,
    },
    /// The reminder to those who have not answered: Flowgate's own step.
    Remind,
    /// The change was made.
    Done { note: Option<String> },
    /// The change will not happen.
    Withdraw { reason: Option<String> },
}

impl NoticeAction {
    pub fn name(&self) -> NoticeActionName {
        match self {
            NoticeAction::Answer { readiness, .. } => match readiness {
                Readiness::Pending | Readiness::Acknowledged => NoticeActionName::Acknowledge,
                Readiness::Ready => NoticeActionName::Ready,
                Readiness::NotReady => NoticeActionName::NotReady,
            },
            NoticeAction::Remind => NoticeActionName::Remind,
            NoticeAction::Done { .. } => NoticeActionName::Done,
            NoticeAction::Withdraw { .. } => NoticeActionName::Withdraw,
        }
    }
}

/// What a step did: the notice after it, and what the audit event records beside it.
#[derive(Debug, Clone)]
pub struct NoticeTransition {
    pub action: NoticeActionName,
    pub from: Option<NoticeState>,
    pub notice: ChangeNotice,
    /// The affected system that answered, for an answer.
    pub system: Option<SystemId>,
    pub note: Option<String>,
    /// For a reminder: the systems it went to.
    pub reminded: Vec<SystemId>,
}

/// Why a step on a notice cannot be taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot {} change notice {notice}: {reason}", .action.verb())]
pub struct NoticeRefusal {
    pub action: NoticeActionName,
    pub notice: String,
    pub reason: String,
}

fn refuse<T>(
    action: NoticeActionName,
    notice: &str,
    reason: impl Into<String>,
) -> Result<T, NoticeRefusal> {
    Err(NoticeRefusal {
        action,
        notice: notice.to_owned(),
        reason: reason.into(),
    })
}

fn non_empty(s: Option<String>) -> Option<String> {
    s.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

/// Raises a notice: finds every system downstream of the change (through active flows, the
/// first hop restricted to the changing data items if any are named) and freezes them into it.
pub fn raise(
    id: NoticeId,
    mut change: ChangeDraft,
    actor: &Email,
    register: &Register,
    now: DateTime<Utc>,
) -> Result<NoticeTransition, NoticeRefusal> {
    let no = |reason: String| refuse(NoticeActionName::Raise, id.as_str(), reason);
    change.summary = change.summary.trim().to_owned();
    change.details = non_empty(change.details);
    if change.summary.is_empty() {
        return no("say what changes (the summary is empty)".into());
    }
    if change.planned_for < now.date_naive() {
        return no(format!(
            "the planned date {} is in the past",
            change.planned_for
        ));
    }
    for item in &change.data_items {
        if register.data_item(item.as_str()).is_none() {
            return no(format!("no data item '{item}' in the register"));
        }
    }
    change.data_items.sort();
    change.data_items.dedup();
    let options = ImpactOptions {
        data_items: change.data_items.clone(),
        max_depth: None,
    };
    let Some(found) = impact::downstream(register, change.system.as_str(), &options) else {
        return no(format!("no system '{}' in the register", change.system));
    };
    let affected = found
        .iter()
        .map(|a| AffectedSystem {
            system: a.system.id.clone(),
            name: a.system.name.clone(),
            depth: a.depth,
            flows: a
                .flows
                .iter()
                .filter_map(|f| FlowId::parse(f).ok())
                .collect(),
            via: a
                .via
                .iter()
                .filter_map(|s| SystemId::parse(s).ok())
                .collect(),
            owner: a.system.owner.clone(),
            administrators: a.system.administrators.iter().cloned().collect(),
            readiness: Readiness::Pending,
            note: None,
            acknowledged_at: None,
            answered_by: None,
            answered_at: None,
        })
        .collect();
    Ok(NoticeTransition {
        action: NoticeActionName::Raise,
        from: None,
        notice: ChangeNotice {
            id,
            change,
            raised_by: actor.clone(),
            raised_at: now,
            state: NoticeState::Open,
            affected,
            reminded_at: None,
            closed_at: None,
            closed_by: None,
            closing_note: None,
            went_ahead_while_not_ready: Vec::new(),
            updated_at: now,
            version: 1,
        },
        system: None,
        note: None,
        reminded: Vec::new(),
    })
}

/// Whether `person` answers for `system` (2.5): its IAO or one of its IAAs, as the register says
/// now, or as it said when the notice was raised (the people who were told).
pub fn answers_for(register: &Register, affected: &AffectedSystem, person: &Email) -> bool {
    let now = register
        .system(affected.system.as_str())
        .is_some_and(|s| s.owner.as_ref() == Some(person) || s.administrators.contains(person));
    now || affected.contacts().contains(&person)
}

/// Decides a step on a notice. Pure: the same inputs give the same answer.
pub fn decide(
    notice: &ChangeNotice,
    action: &NoticeAction,
    actor: &Email,
    register: &Register,
    now: DateTime<Utc>,
) -> Result<NoticeTransition, NoticeRefusal> {
    let name = action.name();
    let no = |reason: String| refuse(name, notice.id.as_str(), reason);
    if notice.state != NoticeState::Open {
        return no(format!(
            "it is {} and nothing more can happen to it",
            notice.state
        ));
    }
    let mut next = notice.clone();
    next.updated_at = now;
    next.version = notice.version + 1;
    let mut t = NoticeTransition {
        action: name,
        from: Some(notice.state),
        notice: next,
        system: None,
        note: None,
        reminded: Vec::new(),
    };
    match action {
        NoticeAction::Answer {
            system,
            readiness,
            note,
        } => {
            let note = non_empty(note.clone());
            let Some(i) = t.notice.affected.iter().position(|a| &a.system == system) else {
                return no(format!("'{system}' is not among the systems it affects"));
            };
            let a = &mut t.notice.affected[i];
            if !answers_for(register, a, actor) {
                return no(format!(
                    "only the Information Asset Owner or an Information Asset Administrator of '{system}' answers for it (2.5), and '{actor}' is neither"
                ));
            }
            match readiness {
                Readiness::Pending => {
                    return no("an answer is acknowledged, ready or not_ready".into());
                }
                Readiness::Acknowledged => {
                    if a.readiness != Readiness::Pending {
                        return no(format!("'{system}' has already answered {}", a.readiness));
                    }
                }
                Readiness::NotReady if note.is_none() => {
                    return no(format!(
                        "say what '{system}' still needs (a note is required with not_ready)"
                    ));
                }
                Readiness::Ready | Readiness::NotReady => {}
            }
            // Saying ready or not ready says the notice was read.
            a.acknowledged_at.get_or_insert(now);
            a.readiness = *readiness;
            a.note = note.clone();
            a.answered_by = Some(actor.clone());
            a.answered_at = Some(now);
            t.system = Some(system.clone());
            t.note = note;
        }
        NoticeAction::Remind => {
            if notice.reminded_at.is_some() {
                return no("the reminder has already gone".into());
            }
            // When every system has answered, the reminder is recorded as sent to nobody: the
            // notice is then no longer due one.
            t.reminded = notice.unanswered().map(|a| a.system.clone()).collect();
            t.notice.reminded_at = Some(now);
        }
        NoticeAction::Done { note } => {
            let not_ready: Vec<&AffectedSystem> = notice.not_ready().collect();
            if !not_ready.is_empty() && !notice.change.urgent {
                let list = not_ready
                    .iter()
                    .map(|a| format!("'{}' ({})", a.system, a.readiness))
                    .collect::<Vec<_>>()
                    .join(", ");
                return no(format!(
                    "{} of the affected systems {} not ready: {list}; only an urgent change goes ahead before its targets are ready (2.5)",
                    not_ready.len(),
                    if not_ready.len() == 1 { "is" } else { "are" }
                ));
            }
            t.notice.went_ahead_while_not_ready =
                not_ready.iter().map(|a| a.system.clone()).collect();
            close(
                &mut t,
                NoticeState::Done,
                actor,
                non_empty(note.clone()),
                now,
            );
        }
        NoticeAction::Withdraw { reason } => {
            close(
                &mut t,
                NoticeState::Withdrawn,
                actor,
                non_empty(reason.clone()),
                now,
            );
        }
    }
    Ok(t)
}

fn close(
    t: &mut NoticeTransition,
    state: NoticeState,
    actor: &Email,
    note: Option<String>,
    now: DateTime<Utc>,
) {
    t.notice.state = state;
    t.notice.closed_at = Some(now);
    t.notice.closed_by = Some(actor.clone());
    t.notice.closing_note = note.clone();
    t.note = note;
}

/// Parses an answer's name as the API and the CLI take it.
pub fn readiness_from_answer(answer: &str) -> Result<Readiness, UnknownVariant> {
    match Readiness::parse(answer)? {
        Readiness::Pending => Err(UnknownVariant {
            value: answer.trim().to_owned(),
            allowed: "acknowledged, ready, not_ready".into(),
        }),
        r => Ok(r),
    }
}
