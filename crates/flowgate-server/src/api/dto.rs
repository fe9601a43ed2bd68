//! What the API sends and receives, described for the OpenAPI document. Each view is built from
//! the domain's own types by `From`, so the document and the wire cannot drift apart.

use chrono::{DateTime, NaiveDate, Utc};
use flowgate_core::policy::{Assessment, Finding};
use flowgate_core::register::{DataItem, Person, System};
use flowgate_core::workflow::SharingRequest;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

fn strings<T: ToString>(items: impl IntoIterator<Item = T>) -> Vec<String> {
    items.into_iter().map(|i| i.to_string()).collect()
}

/// One finding of an assessment, with the clause of DPA CoP 06 it comes from.
#[derive(Debug, Serialize, ToSchema)]
pub struct FindingView {
    /// e.g. `P2`, `CHECKLIST`.
    pub rule: String,
    /// e.g. `1.3.4`.
    pub clause: String,
    #[schema(pattern = "^(violation|review|warning|info)$")]
    pub severity: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_item: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flow: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suggestion: Option<String>,
}

impl From<&Finding> for FindingView {
    fn from(f: &Finding) -> Self {
        FindingView {
            rule: f.rule.into(),
            clause: f.clause.into(),
            severity: f.severity.to_string(),
            message: f.message.clone(),
            system: f.system.as_ref().map(ToString::to_string),
            data_item: f.data_item.as_ref().map(ToString::to_string),
            flow: f.flow.as_ref().map(ToString::to_string),
            suggestion: f.suggestion.clone(),
        }
    }
}

/// A decision on a request and every reason for it.
#[derive(Debug, Serialize, ToSchema)]
pub struct AssessmentView {
    #[schema(pattern = "^(proceed|needs_review|rejected)$")]
    pub outcome: String,
    /// The policy assessed against: `DPA CoP 06 v2.1`.
    pub policy: String,
    pub as_of: NaiveDate,
    pub findings: Vec<FindingView>,
}

impl From<&Assessment> for AssessmentView {
    fn from(a: &Assessment) -> Self {
        AssessmentView {
            outcome: a.outcome.to_string(),
            policy: a.policy.into(),
            as_of: a.as_of,
            findings: a.findings.iter().map(FindingView::from).collect(),
        }
    }
}

/// What a request asks (2.1), as sent to `POST /api/v1/assessments` and `POST /api/v1/requests`.
#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code)] // Read as JSON by `Request::from_json`, which names every wrong field.
pub struct AskBody {
    /// The requester's e-mail; for a raised request, the caller's own.
    pub requester: String,
    /// The business reason.
    pub justification: String,
    pub source: String,
    pub target: String,
    #[schema(min_items = 1)]
    pub data_items: Vec<String>,
    pub intended_use: String,
    /// `read_only` (the default) or `read_write` (never allowed, 1.3.5).
    #[schema(pattern = "^(read_only|read_write)$")]
    pub access: Option<String>,
    /// A service desk ticket reference (only when raising).
    pub ticket: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ApprovalView {
    #[schema(pattern = "^(source|target)$")]
    pub side: String,
    pub by: String,
    pub at: DateTime<Utc>,
}

/// One step in a request's history, from the audit log.
#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryEntry {
    /// The audit event's sequence number.
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub from: Option<String>,
    pub to: Option<String>,
    pub note: Option<String>,
}

/// A data sharing / integration request and where it is.
#[derive(Debug, Serialize, ToSchema)]
pub struct RequestView {
    pub id: String,
    pub requester: String,
    pub justification: String,
    pub source: String,
    pub target: String,
    pub data_items: Vec<String>,
    pub intended_use: String,
    pub access: String,
    pub ticket: Option<String>,
    pub state: String,
    pub returned_from: Option<String>,
    pub question: Option<String>,
    pub approvals: Vec<ApprovalView>,
    pub priority: Option<String>,
    pub target_date: Option<NaiveDate>,
    pub reason: Option<String>,
    pub flow: Option<String>,
    pub raised_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Also sent as the `ETag`; send it back in `If-Match` with an action.
    pub version: i64,
    /// The request assessed against the register as it is now (on a single request only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assessment: Option<AssessmentView>,
    /// Its steps, from the audit log (on a single request only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history: Option<Vec<HistoryEntry>>,
    /// The actions the caller may take now, by the policy and the workflow.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_actions: Option<Vec<String>>,
}

impl From<&SharingRequest> for RequestView {
    fn from(r: &SharingRequest) -> Self {
        RequestView {
            id: r.id.to_string(),
            requester: r.ask.requester.to_string(),
            justification: r.ask.justification.clone(),
            source: r.ask.source.to_string(),
            target: r.ask.target.to_string(),
            data_items: strings(&r.ask.data_items),
            intended_use: r.ask.intended_use.clone(),
            access: match r.ask.access {
                flowgate_core::policy::Access::ReadOnly => "read_only".into(),
                flowgate_core::policy::Access::ReadWrite => "read_write".into(),
            },
            ticket: r.ticket.clone(),
            state: r.state.to_string(),
            returned_from: r.returned_from.map(|s| s.to_string()),
            question: r.question.clone(),
            approvals: r
                .approvals
                .iter()
                .map(|a| ApprovalView {
                    side: a.side.to_string(),
                    by: a.by.to_string(),
                    at: a.at,
                })
                .collect(),
            priority: r.priority.map(|p| p.to_string()),
            target_date: r.target_date,
            reason: r.reason.clone(),
            flow: r.flow.as_ref().map(ToString::to_string),
            raised_at: r.raised_at,
            updated_at: r.updated_at,
            version: r.version,
            assessment: None,
            history: None,
            allowed_actions: None,
        }
    }
}

/// A page of requests.
#[derive(Debug, Serialize, ToSchema)]
pub struct RequestPage {
    pub items: Vec<RequestView>,
    /// How many match in all.
    pub total: i64,
    pub limit: i64,
    pub offset: i64,
}

/// An information system in the register (1.3.1, 1.3.2): the same fields as the import's.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SystemView {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    #[schema(pattern = "^(application|database|saas|file_share|paper|other)$")]
    pub kind: String,
    pub external: bool,
    pub organisation: Option<String>,
    #[schema(pattern = "^(proposed|active|retired)$")]
    pub status: String,
    /// The Information Asset Owner.
    pub owner: Option<String>,
    /// The Information Asset Administrators.
    pub administrators: Vec<String>,
    #[schema(pattern = "^(none|in_progress|approved|rejected)$")]
    pub dpia_status: String,
    /// The DPIA's reference in DART.
    pub dpia_reference: Option<String>,
    pub dpia_review_due: Option<NaiveDate>,
    #[schema(pattern = "^(not_required|pending|approved|rejected)$")]
    pub architecture_checklist: String,
}

impl From<&System> for SystemView {
    fn from(s: &System) -> Self {
        SystemView {
            id: s.id.to_string(),
            name: s.name.clone(),
            description: s.description.clone(),
            kind: s.kind.to_string(),
            external: s.external,
            organisation: s.organisation.clone(),
            status: s.status.to_string(),
            owner: s.owner.as_ref().map(ToString::to_string),
            administrators: strings(&s.administrators),
            dpia_status: s.dpia_status.to_string(),
            dpia_reference: s.dpia_reference.clone(),
            dpia_review_due: s.dpia_review_due,
            architecture_checklist: s.architecture_checklist.to_string(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SystemPage {
    pub items: Vec<SystemView>,
    pub total: i64,
    pub limit: i64,
    pub offset: i64,
}

/// A system written through `PUT /api/v1/systems/{id}`, with the requests its change moved on.
#[derive(Debug, Serialize, ToSchema)]
pub struct SystemWritten {
    pub system: SystemView,
    /// `added`, `updated` or `unchanged`.
    pub change: String,
    /// Requests awaiting review on this system that were assessed again (2.2).
    pub reassessed: Vec<RequestView>,
}

/// A data item with its authoritative system (1.3.4).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DataItemView {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    #[schema(pattern = "^(public|internal|confidential|highly_confidential)$")]
    pub classification: String,
    pub personal_data: bool,
    pub special_category: bool,
    pub authoritative_system: Option<String>,
}

impl From<&DataItem> for DataItemView {
    fn from(d: &DataItem) -> Self {
        DataItemView {
            id: d.id.to_string(),
            name: d.name.clone(),
            description: d.description.clone(),
            classification: d.classification.to_string(),
            personal_data: d.personal_data,
            special_category: d.special_category,
            authoritative_system: d.authoritative_system.as_ref().map(ToString::to_string),
        }
    }
}

/// A person in the register (1.2.2).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PersonView {
    pub email: String,
    pub name: String,
    #[schema(pattern = "^(staff|student|third_party)$")]
    pub kind: String,
    pub authorised_until: Option<NaiveDate>,
    /// Of `data_product_team`, `dpo`, `product_line`, `admin`.
    pub roles: Vec<String>,
}

impl From<&Person> for PersonView {
    fn from(p: &Person) -> Self {
        PersonView {
            email: p.email.to_string(),
            name: p.name.clone(),
            kind: p.kind.to_string(),
            authorised_until: p.authorised_until,
            roles: strings(&p.roles),
        }
    }
}

/// The register's size.
#[derive(Debug, Serialize, ToSchema)]
pub struct RegisterCounts {
    pub people: usize,
    pub systems: usize,
    pub data_items: usize,
    pub flows: usize,
}

/// An API token, without its secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenView {
    pub id: String,
    pub person: String,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub expires_on: Option<NaiveDate>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<&flowgate_store::TokenInfo> for TokenView {
    fn from(t: &flowgate_store::TokenInfo) -> Self {
        TokenView {
            id: t.id.clone(),
            person: t.person.to_string(),
            created_at: t.created_at,
            created_by: t.created_by.clone(),
            expires_on: t.expires_on,
            revoked_at: t.revoked_at,
        }
    }
}

/// A new token: `token` is shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenCreated {
    pub token: String,
    #[serde(flatten)]
    pub info: TokenView,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct TokenBody {
    pub person: String,
    pub expires_on: Option<NaiveDate>,
}

/// Who the caller is.
#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    pub email: String,
    pub name: Option<String>,
    pub roles: Vec<String>,
    /// Systems the caller is the Information Asset Owner of.
    pub owns: Vec<String>,
}

/// The body of an action; which fields apply depends on the action.
#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code)] // Read as JSON by `workflow::action_from_json`.
pub struct ActionBody {
    /// `refuse`: why (optional when the assessment has violations: they become the reason).
    pub reason: Option<String>,
    /// `return`: the question for the requester.
    pub question: Option<String>,
    /// `answer`: the requester's answer.
    pub answer: Option<String>,
    /// `prioritise`: low, normal, high or urgent.
    #[schema(pattern = "^(low|normal|high|urgent)$")]
    pub priority: Option<String>,
    /// `prioritise`: the date the product line aims to finish by.
    pub target_date: Option<NaiveDate>,
    /// `complete`: how the interface was built (api, file_transfer, database_link, replication,
    /// manual, other).
    #[schema(pattern = "^(api|file_transfer|database_link|replication|manual|other)$")]
    pub method: Option<String>,
    /// `complete`: how often it runs.
    pub frequency: Option<String>,
}

/// A system affected by a change to another (2.5), at its least depth.
#[derive(Debug, Serialize, ToSchema)]
pub struct AffectedView {
    pub system: String,
    pub depth: u32,
    /// The flows that reach it at that depth.
    pub flows: Vec<String>,
    /// Its Information Asset Owner.
    pub owner: Option<String>,
    /// Its Information Asset Administrators.
    pub administrators: Vec<String>,
}

/// Who is downstream of a system, directly or through others, sorted by depth then id; paged.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImpactView {
    pub system: String,
    pub affected: Vec<AffectedView>,
    /// How many systems are affected in all.
    pub total: i64,
    pub limit: i64,
    pub offset: i64,
}

/// A system affected by a change notice, as found when it was raised, and its answer (2.5).
#[derive(Debug, Serialize, ToSchema)]
pub struct NoticeAffectedView {
    pub system: String,
    pub name: String,
    pub depth: u32,
    pub flows: Vec<String>,
    /// The systems those flows come from.
    pub via: Vec<String>,
    pub owner: Option<String>,
    pub administrators: Vec<String>,
    /// pending, acknowledged, ready or not_ready.
    pub readiness: String,
    pub note: Option<String>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub answered_by: Option<String>,
    pub answered_at: Option<DateTime<Utc>>,
}

/// A change notice for a source system (2.5).
#[derive(Debug, Serialize, ToSchema)]
pub struct NoticeView {
    pub id: String,
    /// The system that changes.
    pub system: String,
    pub summary: String,
    pub details: Option<String>,
    pub planned_for: NaiveDate,
    pub urgent: bool,
    /// Only flows carrying these items were followed out of `system`.
    pub data_items: Vec<String>,
    pub raised_by: String,
    pub raised_at: DateTime<Utc>,
    /// open, done or withdrawn.
    pub state: String,
    /// Days between raising the notice and the planned date.
    pub notice_period_days: i64,
    pub affected: Vec<NoticeAffectedView>,
    /// Affected systems that have not said whether they are ready.
    pub unanswered: Vec<String>,
    /// Affected systems not (yet) ready.
    pub not_ready: Vec<String>,
    pub reminded_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
    pub closed_by: Option<String>,
    pub closing_note: Option<String>,
    /// An urgent change recorded done while these were not ready (2.5).
    pub went_ahead_while_not_ready: Vec<String>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
    /// Its steps, from the audit log (on a single notice only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history: Option<Vec<HistoryEntry>>,
}

impl From<&flowgate_core::notice::ChangeNotice> for NoticeView {
    fn from(n: &flowgate_core::notice::ChangeNotice) -> Self {
        NoticeView {
            id: n.id.to_string(),
            system: n.change.system.to_string(),
            summary: n.change.summary.clone(),
            details: n.change.details.clone(),
            planned_for: n.change.planned_for,
            urgent: n.change.urgent,
            data_items: strings(&n.change.data_items),
            raised_by: n.raised_by.to_string(),
            raised_at: n.raised_at,
            state: n.state.to_string(),
            notice_period_days: n.notice_period_days(),
            affected: n
                .affected
                .iter()
                .map(|a| NoticeAffectedView {
                    system: a.system.to_string(),
                    name: a.name.clone(),
                    depth: a.depth,
                    flows: strings(&a.flows),
                    via: strings(&a.via),
                    owner: a.owner.as_ref().map(ToString::to_string),
                    administrators: strings(&a.administrators),
                    readiness: a.readiness.to_string(),
                    note: a.note.clone(),
                    acknowledged_at: a.acknowledged_at,
                    answered_by: a.answered_by.as_ref().map(ToString::to_string),
                    answered_at: a.answered_at,
                })
                .collect(),
            unanswered: strings(n.unanswered().map(|a| &a.system)),
            not_ready: strings(n.not_ready().map(|a| &a.system)),
            reminded_at: n.reminded_at,
            closed_at: n.closed_at,
            closed_by: n.closed_by.as_ref().map(ToString::to_string),
            closing_note: n.closing_note.clone(),
            went_ahead_while_not_ready: strings(&n.went_ahead_while_not_ready),
            updated_at: n.updated_at,
            version: n.version,
            history: None,
        }
    }
}

/// A page of change notices.
#[derive(Debug, Serialize, ToSchema)]
pub struct NoticePage {
    pub items: Vec<NoticeView>,
    pub total: i64,
    pub limit: i64,
    pub offset: i64,
}

/// Raising a change notice (2.5).
#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code)] // Read field by field, to name the field a problem is in.
pub struct NoticeBody {
    /// The source system that changes.
    pub system: String,
    /// What changes, in a line.
    pub summary: String,
    pub details: Option<String>,
    /// YYYY-MM-DD, today or later.
    pub planned_for: NaiveDate,
    /// An urgent change may go ahead while systems downstream are not ready (2.5).
    pub urgent: Option<bool>,
    /// Only flows carrying these items are followed out of `system`.
    pub data_items: Option<Vec<String>>,
}

/// An affected system's answer to a change notice.
#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code)] // Read field by field, to name the field a problem is in.
pub struct NoticeAnswerBody {
    /// The affected system answered for.
    pub system: String,
    /// acknowledged, ready or not_ready.
    #[schema(pattern = "^(acknowledged|ready|not_ready)$")]
    pub answer: String,
    /// Required with not_ready: what is still needed.
    pub note: Option<String>,
}

/// A note when recording a change done or withdrawing its notice.
#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code)] // Read field by field.
pub struct NoticeCloseBody {
    pub note: Option<String>,
}

/// A message in the outbox.
#[derive(Debug, Serialize, ToSchema)]
pub struct OutboxView {
    /// The idempotency key: `<audit seq>:<channel>:<recipient>`.
    pub id: String,
    /// The audit event that caused it.
    pub event_seq: i64,
    /// email or webhook.
    pub channel: String,
    /// An e-mail address, or a webhook's id.
    pub recipient: String,
    pub event: String,
    pub subject: String,
    /// pending, delivered or failed.
    pub status: String,
    pub attempts: i64,
    pub created_at: DateTime<Utc>,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub delivered_at: Option<DateTime<Utc>>,
}

impl From<&flowgate_store::OutboxMessage> for OutboxView {
    fn from(m: &flowgate_store::OutboxMessage) -> Self {
        OutboxView {
            id: m.id.clone(),
            event_seq: m.event_seq,
            channel: m.channel.as_str().into(),
            recipient: m.recipient.clone(),
            event: m.event.clone(),
            subject: m.subject.clone(),
            status: m.status.clone(),
            attempts: m.attempts,
            created_at: m.created_at,
            next_attempt_at: m.next_attempt_at,
            last_error: m.last_error.clone(),
            delivered_at: m.delivered_at,
        }
    }
}

/// A page of the outbox, newest first, with the counts of each state.
#[derive(Debug, Serialize, ToSchema)]
pub struct OutboxPage {
    pub items: Vec<OutboxView>,
    pub pending: i64,
    pub delivered: i64,
    pub failed: i64,
    pub limit: i64,
    pub offset: i64,
}

/// A webhook, without its secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookView {
    pub id: String,
    pub url: String,
    /// It receives what is sent to this person.
    pub person: Option<String>,
    /// It receives what is about this system.
    pub system: Option<String>,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub disabled_at: Option<DateTime<Utc>>,
}

impl From<&flowgate_store::Webhook> for WebhookView {
    fn from(w: &flowgate_store::Webhook) -> Self {
        WebhookView {
            id: w.id.clone(),
            url: w.url.clone(),
            person: w.person.clone(),
            system: w.system.clone(),
            created_at: w.created_at,
            created_by: w.created_by.clone(),
            disabled_at: w.disabled_at,
        }
    }
}

/// A new webhook: `secret` signs its deliveries and is shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookCreated {
    pub secret: String,
    #[serde(flatten)]
    pub webhook: WebhookView,
}

/// Registering a webhook: for a person or for a system, not both.
#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code)] // Read field by field.
pub struct WebhookBody {
    /// http or https.
    pub url: String,
    pub person: Option<String>,
    pub system: Option<String>,
}
