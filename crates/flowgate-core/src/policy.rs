//! The principles engine: a request to share or integrate data, assessed against the register as
//! of a date. Every finding names its rule and the clause of DPA CoP 06 it comes from, says why in
//! plain words, and where it can, the way forward.
//!
//! [`RULES`] reads like the Code: one small function per rule, each with its id, clause and title,
//! in the order a Data Product Team would check them (2.2). The decision table of `product.md` is
//! P1–P3; the other rules are the checks users expect beside them.
//!
//! Every question is answered from the [`Register`] index: no rule scans the flows.

use std::collections::BTreeSet;
use std::fmt;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::ids::{DataItemId, Email, FlowId, SystemId};
use crate::register::{
    ChecklistStatus, DataItem, DpiaStatus, FlowRef, PersonKind, Register, System, SystemStatus,
};

/// The policy every assessment is made under.
pub const POLICY: &str = "DPA CoP 06 v2.1";

/// What access the target asks for. Principle 3 (1.3.5) allows only read-only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    #[default]
    ReadOnly,
    ReadWrite,
}

/// A data sharing / integration request (2.1): who asks and why, which data from which source,
/// into which target for what use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    pub requester: Email,
    pub justification: String,
    pub source: SystemId,
    pub target: SystemId,
    /// At least one; a set, so each item is assessed once.
    pub data_items: BTreeSet<DataItemId>,
    pub intended_use: String,
    pub access: Access,
}

/// How much a finding weighs. Ordered: a violation outweighs a review, and so on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// For information only.
    Info,
    /// May proceed, but someone should act (reuse a flow, put an agreement in place).
    Warning,
    /// Cannot proceed until something is reviewed or recorded (a DPIA, a checklist).
    Review,
    /// Against the Code: the request cannot proceed as asked.
    Violation,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Review => "review",
            Severity::Violation => "violation",
        })
    }
}

/// The decision: the most severe finding's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Proceed,
    NeedsReview,
    Rejected,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Proceed => "proceed",
            Outcome::NeedsReview => "needs_review",
            Outcome::Rejected => "rejected",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One thing the assessment found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub rule: &'static str,
    pub clause: &'static str,
    pub severity: Severity,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system: Option<SystemId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_item: Option<DataItemId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flow: Option<FlowId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suggestion: Option<String>,
}

/// A decision and every reason for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Assessment {
    pub outcome: Outcome,
    pub policy: &'static str,
    pub as_of: NaiveDate,
    pub findings: Vec<Finding>,
}

/// A rule of the engine: its id, the clause it comes from, what it checks, and the check.
#[derive(Clone, Copy)]
pub struct Rule {
    pub id: &'static str,
    pub clause: &'static str,
    pub title: &'static str,
    check: fn(&Case<'_>, &mut Findings),
}

impl fmt::Debug for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Rule({} {}: {})", self.id, self.clause, self.title)
    }
}

/// The rules, in the order the Data Product Team checks a request (2.2).
pub const RULES: &[Rule] = &[
    Rule {
        id: "SCOPE",
        clause: "1.2.2",
        title: "the requester is staff, a student or an authorised third party",
        check: requester_in_scope,
    },
    Rule {
        id: "P1",
        clause: "1.3.3",
        title: "source and target are known systems in the register (2.2)",
        check: systems_known,
    },
    Rule {
        id: "P1",
        clause: "1.3.3",
        title: "source and target are covered by a current, approved DPIA",
        check: dpia_current,
    },
    Rule {
        id: "LIFECYCLE",
        clause: "2.2",
        title: "source and target are in service: not retired, not merely proposed",
        check: systems_in_service,
    },
    Rule {
        id: "CHECKLIST",
        clause: "2.2",
        title: "the ICT Architecture Checklist of source and target is not pending or rejected",
        check: architecture_checklist,
    },
    Rule {
        id: "OWNER",
        clause: "2.3",
        title: "source and target each have an Information Asset Owner to approve",
        check: owners_recorded,
    },
    Rule {
        id: "P2",
        clause: "1.3.4",
        title: "each data item is known and has an authoritative system",
        check: items_have_authority,
    },
    Rule {
        id: "P2",
        clause: "1.3.4",
        title: "the source is the authoritative system of each item, not a copy",
        check: source_is_authoritative,
    },
    Rule {
        id: "P3",
        clause: "1.3.5",
        title: "the target is not the authoritative system of any item",
        check: target_not_authoritative,
    },
    Rule {
        id: "P3",
        clause: "1.3.5",
        title: "the data is read-only at the target",
        check: read_only_at_target,
    },
    Rule {
        id: "SPECIAL",
        clause: "1.3.3",
        title: "special category data is reviewed by the Data Protection Officer",
        check: special_category,
    },
    Rule {
        id: "EXTERNAL",
        clause: "1.3.1, 1.3.2",
        title: "an external source or target has a data sharing agreement",
        check: external_systems,
    },
    Rule {
        id: "REUSE",
        clause: "2.4",
        title: "no active flow from the source to the target already carries the item",
        check: existing_flow,
    },
];

/// What a rule looks at: the request, the register, the date, and (for `lint`) the flow being
/// assessed, which is not an "existing flow" to itself.
struct Case<'a> {
    register: &'a Register,
    request: &'a Request,
    as_of: NaiveDate,
    itself: Option<&'a str>,
    /// Whether there is a requester to check (a flow already recorded has none).
    has_requester: bool,
    source: Option<&'a System>,
    target: Option<&'a System>,
    /// The requested items, looked up once for all the rules.
    items: Vec<(&'a DataItemId, Option<&'a DataItem>)>,
}

impl Case<'_> {
    /// The request's systems, labelled: `[("source", id, system?), ("target", ...)]`.
    fn ends(&self) -> [(&'static str, &SystemId, Option<&System>); 2] {
        [
            ("source", &self.request.source, self.source),
            ("target", &self.request.target, self.target),
        ]
    }

    fn items(&self) -> impl Iterator<Item = (&DataItemId, Option<&DataItem>)> {
        self.items.iter().copied()
    }

    /// Active flows into `system` carrying `item`, other than the flow being assessed.
    fn active_into<'r>(
        &'r self,
        system: &SystemId,
        item: &DataItemId,
    ) -> impl Iterator<Item = FlowRef<'r>> + 'r {
        let itself = self.itself;
        self.register
            .active_flows_carrying_into(system.as_str(), item.as_str())
            .filter(move |f| Some(f.id()) != itself)
    }
}

/// Collects findings for one rule.
struct Findings {
    rule: &'static str,
    clause: &'static str,
    out: Vec<Finding>,
}

impl Findings {
    fn add(&mut self, severity: Severity, message: String) -> &mut Finding {
        self.out.push(Finding {
            rule: self.rule,
            clause: self.clause,
            severity,
            message,
            system: None,
            data_item: None,
            flow: None,
            suggestion: None,
        });
        let last = self.out.len() - 1;
        &mut self.out[last]
    }
}

impl Finding {
    fn system(&mut self, s: &SystemId) -> &mut Self {
        self.system = Some(s.clone());
        self
    }
    fn item(&mut self, d: &DataItemId) -> &mut Self {
        self.data_item = Some(d.clone());
        self
    }
    fn flow(&mut self, f: &str) -> &mut Self {
        self.flow = FlowId::parse(f).ok();
        self
    }
    fn suggest(&mut self, s: String) -> &mut Self {
        self.suggestion = Some(s);
        self
    }
}

/// Assesses a request against every rule.
pub fn assess(register: &Register, request: &Request, as_of: NaiveDate) -> Assessment {
    run(Case {
        register,
        request,
        as_of,
        itself: None,
        has_requester: true,
        source: register.system(request.source.as_str()),
        target: register.system(request.target.as_str()),
        items: resolve(register, request),
    })
}

/// Assesses a flow already in the register as if it were requested on `as_of`: what `lint` does
/// to every active flow. The flow is not an existing flow to itself, and there is no requester.
pub fn assess_flow(register: &Register, flow: &FlowRef<'_>, as_of: NaiveDate) -> Assessment {
    let request = Request {
        requester: Email::parse("register@flowgate.invalid")
            .unwrap_or_else(|_| unreachable!("a valid address")),
        justification: String::new(),
        source: flow.source().id.clone(),
        target: flow.target().id.clone(),
        data_items: flow.data_items().map(|d| d.id.clone()).collect(),
        intended_use: String::new(),
        access: Access::ReadOnly,
    };
    run(Case {
        register,
        request: &request,
        as_of,
        itself: Some(flow.id()),
        has_requester: false,
        source: Some(flow.source()),
        target: Some(flow.target()),
        items: resolve(register, &request),
    })
}

fn resolve<'a>(
    register: &'a Register,
    request: &'a Request,
) -> Vec<(&'a DataItemId, Option<&'a DataItem>)> {
    request
        .data_items
        .iter()
        .map(|id| (id, register.data_item(id.as_str())))
        .collect()
}

fn run(case: Case<'_>) -> Assessment {
    let mut findings = Vec::new();
    for rule in RULES {
        let mut f = Findings {
            rule: rule.id,
            clause: rule.clause,
            out: std::mem::take(&mut findings),
        };
        (rule.check)(&case, &mut f);
        findings = f.out;
    }
    Assessment {
        outcome: outcome_of(&findings),
        policy: POLICY,
        as_of: case.as_of,
        findings,
    }
}

/// `rejected` if any violation, else `needs_review` if any review, else `proceed`.
pub fn outcome_of(findings: &[Finding]) -> Outcome {
    match findings.iter().map(|f| f.severity).max() {
        Some(Severity::Violation) => Outcome::Rejected,
        Some(Severity::Review) => Outcome::NeedsReview,
        _ => Outcome::Proceed,
    }
}

// ---- the rules ----

fn requester_in_scope(c: &Case<'_>, f: &mut Findings) {
    if !c.has_requester {
        return;
    }
    let who = &c.request.requester;
    match c.register.person(who.as_str()) {
        None => {
            f.add(
                Severity::Violation,
                format!("the requester {who} is not in the register: the Code applies to staff, students and authorised third parties"),
            )
            .suggest("register the requester as a person (with their kind) before raising the request".into());
        }
        Some(p) if p.kind == PersonKind::ThirdParty => match p.authorised_until {
            Some(until) if until < c.as_of => {
                f.add(
                    Severity::Violation,
                    format!("the requester {who} is a third party whose authorisation ended on {until}"),
                )
                .suggest("renew the third party's authorisation, or have a member of staff raise the request".into());
            }
            None => {
                f.add(
                    Severity::Violation,
                    format!("the requester {who} is a third party with no recorded authorisation"),
                )
                .suggest("record the date the third party's authorisation ends".into());
            }
            Some(_) => {}
        },
        Some(_) => {}
    }
}

fn systems_known(c: &Case<'_>, f: &mut Findings) {
    for (end, id, system) in c.ends() {
        if system.is_none() {
            f.add(
                Severity::Review,
                format!(
                    "the {end} system '{id}' is not in the register, so it has not been reviewed"
                ),
            )
            .system(id)
            .suggest(format!(
                "register '{id}' with its Information Asset Owner and arrange a DPIA in DART (2.2)"
            ));
        }
    }
}

fn dpia_current(c: &Case<'_>, f: &mut Findings) {
    for (end, id, system) in c.ends() {
        let Some(s) = system else { continue };
        let reference = s
            .dpia_reference
            .as_deref()
            .map(|r| format!(" ({r})"))
            .unwrap_or_default();
        match s.dpia_status {
            DpiaStatus::Approved => {
                if let Some(due) = s.dpia_review_due.filter(|due| *due < c.as_of) {
                    f.add(
                        Severity::Review,
                        format!(
                            "the DPIA{reference} of the {end} '{id}' was due for review on {due}"
                        ),
                    )
                    .system(id)
                    .suggest(format!(
                        "review the DPIA of '{id}' in DART and record the new review date"
                    ));
                }
            }
            DpiaStatus::None => {
                f.add(Severity::Review, format!("the {end} '{id}' has no DPIA"))
                    .system(id)
                    .suggest(format!("arrange a DPIA of '{id}' in DART (2.2)"));
            }
            DpiaStatus::InProgress => {
                f.add(
                    Severity::Review,
                    format!("the DPIA{reference} of the {end} '{id}' is still in progress"),
                )
                .system(id)
                .suggest("wait for the DPIA to be approved, then assess again".into());
            }
            DpiaStatus::Rejected => {
                f.add(
                    Severity::Violation,
                    format!("the DPIA{reference} of the {end} '{id}' was rejected"),
                )
                .system(id)
                .suggest(format!(
                    "no data may flow {} '{id}' until a new DPIA is approved",
                    if end == "source" { "from" } else { "into" }
                ));
            }
        }
    }
}

fn systems_in_service(c: &Case<'_>, f: &mut Findings) {
    for (end, id, system) in c.ends() {
        match system.map(|s| s.status) {
            Some(SystemStatus::Retired) => {
                f.add(Severity::Violation, format!("the {end} '{id}' is retired"))
                    .system(id)
                    .suggest("choose the system that replaced it".into());
            }
            Some(SystemStatus::Proposed) => {
                f.add(
                    Severity::Review,
                    format!("the {end} '{id}' is only proposed, not yet in service"),
                )
                .system(id)
                .suggest(format!(
                    "complete the review of '{id}' and record it as active"
                ));
            }
            _ => {}
        }
    }
}

fn architecture_checklist(c: &Case<'_>, f: &mut Findings) {
    for (end, id, system) in c.ends() {
        match system.map(|s| s.architecture_checklist) {
            Some(ChecklistStatus::Pending) => {
                f.add(
                    Severity::Review,
                    format!("the ICT Architecture Checklist of the {end} '{id}' is pending"),
                )
                .system(id)
                .suggest("complete the ICT Architecture Checklist, then assess again".into());
            }
            Some(ChecklistStatus::Rejected) => {
                f.add(
                    Severity::Violation,
                    format!("the ICT Architecture Checklist of the {end} '{id}' was rejected"),
                )
                .system(id);
            }
            _ => {}
        }
    }
}

fn owners_recorded(c: &Case<'_>, f: &mut Findings) {
    for (end, id, system) in c.ends() {
        if system.is_some_and(|s| s.owner.is_none()) {
            f.add(
                Severity::Review,
                format!("the {end} '{id}' has no Information Asset Owner recorded, so nobody can approve the request for it"),
            )
            .system(id)
            .suggest(format!("record the Information Asset Owner of '{id}' in the register"));
        }
    }
}

fn items_have_authority(c: &Case<'_>, f: &mut Findings) {
    for (id, item) in c.items() {
        match item {
            None => {
                f.add(
                    Severity::Review,
                    format!("the data item '{id}' is not in the register"),
                )
                .item(id)
                .suggest(format!("register '{id}' with its authoritative system"));
            }
            Some(d) if d.authoritative_system.is_none() => {
                f.add(
                    Severity::Review,
                    format!("no authoritative system has been established for '{id}'"),
                )
                .item(id)
                .suggest(format!(
                    "agree which system is authoritative for '{id}' and record it"
                ));
            }
            Some(_) => {}
        }
    }
}

fn source_is_authoritative(c: &Case<'_>, f: &mut Findings) {
    let source = &c.request.source;
    for (id, item) in c.items() {
        let authority = item.and_then(|d| d.authoritative_system.as_ref());
        let take_from = |a: Option<&SystemId>| match a {
            Some(a) => format!("request '{id}' from its authoritative system '{a}'"),
            None => {
                format!("establish the authoritative system for '{id}' and request it from there")
            }
        };
        // The authority is the source Principle 2 asks for, whatever flows into it (a flow into
        // an authority is Principle 3's concern, not a copy).
        if authority == Some(source) {
            continue;
        }
        // The flow with the lowest id, so the message names the same flow however the register
        // was loaded.
        if let Some(copy) = c.active_into(source, id).min_by_key(|fl| fl.id()) {
            f.add(
                Severity::Violation,
                format!(
                    "'{source}' holds a copy of '{id}' (it receives it from '{}' through flow {}), so it cannot be the source of it",
                    copy.source().id,
                    copy.id()
                ),
            )
            .system(source)
            .item(id)
            .flow(copy.id())
            .suggest(take_from(authority));
        } else if let Some(a) = authority {
            f.add(
                Severity::Violation,
                format!("'{source}' is not the authoritative system for '{id}'; '{a}' is"),
            )
            .system(source)
            .item(id)
            .suggest(take_from(Some(a)));
        }
    }
}

fn target_not_authoritative(c: &Case<'_>, f: &mut Findings) {
    let target = &c.request.target;
    for (id, item) in c.items() {
        if item.and_then(|d| d.authoritative_system.as_ref()) == Some(target) {
            f.add(
                Severity::Violation,
                format!("'{target}' is the authoritative system for '{id}': data flowing into it would be changed outside the authority"),
            )
            .system(target)
            .item(id)
            .suggest(format!("make changes to '{id}' in '{target}' itself; no flow may write into it"));
        }
    }
}

fn read_only_at_target(c: &Case<'_>, f: &mut Findings) {
    if c.request.access == Access::ReadWrite {
        let target = &c.request.target;
        f.add(
            Severity::Violation,
            format!("the request asks for read-write access at '{target}': shared data must be read-only at the target"),
        )
        .system(target)
        .suggest("ask for read-only access; changes are made on the authoritative system and flow out from there".into());
    }
}

fn special_category(c: &Case<'_>, f: &mut Findings) {
    for (id, item) in c.items() {
        if item.is_some_and(|d| d.special_category) {
            f.add(
                Severity::Review,
                format!("'{id}' is special category data: the DPO must confirm a lawful condition for it and that both DPIAs cover it"),
            )
            .item(id)
            .suggest("send the request to the Data Protection Officer with the DPIA references".into());
        }
    }
}

fn external_systems(c: &Case<'_>, f: &mut Findings) {
    for (end, id, system) in c.ends() {
        if let Some(s) = system.filter(|s| s.external) {
            let org = s.organisation.as_deref().unwrap_or("another organisation");
            f.add(
                Severity::Warning,
                format!("the {end} '{id}' is outside the university (run by {org}): a data sharing agreement is needed"),
            )
            .system(id)
            .suggest(format!("confirm a data sharing agreement with {org} is in place"));
        }
    }
}

fn existing_flow(c: &Case<'_>, f: &mut Findings) {
    let (source, target) = (&c.request.source, &c.request.target);
    for (id, _) in c.items() {
        if let Some(existing) = c
            .active_into(target, id)
            .filter(|fl| fl.source().id == *source)
            .min_by_key(|fl| fl.id())
        {
            f.add(
                Severity::Warning,
                format!(
                    "flow {} already carries '{id}' from '{source}' to '{target}'",
                    existing.id()
                ),
            )
            .item(id)
            .flow(existing.id())
            .suggest(format!(
                "reuse flow {} rather than build a second interface",
                existing.id()
            ));
        }
    }
}

/// A field of a request that is missing, empty, unknown or wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl Request {
    /// The fields a request has, in the order 2.1 lists them.
    pub const FIELDS: [&'static str; 7] = [
        "requester",
        "justification",
        "source",
        "target",
        "data_items",
        "intended_use",
        "access",
    ];

    /// Reads a request from its JSON form, naming every field that is wrong:
    /// `{"requester", "justification", "source", "target", "data_items", "intended_use", "access"?}`.
    pub fn from_json(value: &serde_json::Value) -> Result<Request, Vec<FieldError>> {
        use serde_json::Value;
        let mut errors = Vec::new();
        let mut err = |field: &str, message: String| {
            errors.push(FieldError {
                field: field.to_owned(),
                message,
            })
        };
        let Value::Object(map) = value else {
            err("request", "expected a JSON object".into());
            return Err(errors);
        };
        for key in map.keys() {
            if !Self::FIELDS.contains(&key.as_str()) {
                err(
                    key,
                    format!("unknown field (expected {})", Self::FIELDS.join(", ")),
                );
            }
        }
        let mut text = |field: &str| -> Option<String> {
            match map.get(field) {
                None | Some(Value::Null) => {
                    err(field, "is required".into());
                    None
                }
                Some(Value::String(s)) if s.trim().is_empty() => {
                    err(field, "must not be empty".into());
                    None
                }
                Some(Value::String(s)) => Some(s.trim().to_owned()),
                Some(other) => {
                    err(field, format!("expected a string, found {other}"));
                    None
                }
            }
        };
        let requester = text("requester");
        let justification = text("justification");
        let source = text("source");
        let target = text("target");
        let intended_use = text("intended_use");
        let mut parse = |field: &str, v: Option<String>| -> Option<SystemId> {
            v.and_then(|v| {
                SystemId::parse(&v)
                    .map_err(|e| err(field, e.to_string()))
                    .ok()
            })
        };
        let source = parse("source", source);
        let target = parse("target", target);
        let requester = requester.and_then(|r| {
            Email::parse(&r)
                .map_err(|e| err("requester", e.to_string()))
                .ok()
        });
        let mut data_items = BTreeSet::new();
        match map.get("data_items") {
            None | Some(Value::Null) => err("data_items", "is required".into()),
            Some(Value::Array(items)) if items.is_empty() => {
                err("data_items", "must name at least one data item".into())
            }
            Some(Value::Array(items)) => {
                for v in items {
                    match v.as_str().map(DataItemId::parse) {
                        Some(Ok(id)) => {
                            if !data_items.insert(id.clone()) {
                                err("data_items", format!("'{id}' is listed twice"));
                            }
                        }
                        Some(Err(e)) => err("data_items", e.to_string()),
                        None => err("data_items", format!("expected a data item id, found {v}")),
                    }
                }
            }
            Some(other) => err(
                "data_items",
                format!("expected a list of data item ids, found {other}"),
            ),
        }
        let access = match map.get("access") {
            None | Some(Value::Null) => Access::ReadOnly,
            Some(Value::String(s)) if s == "read_only" => Access::ReadOnly,
            Some(Value::String(s)) if s == "read_write" => Access::ReadWrite,
            Some(other) => {
                err(
                    "access",
                    format!("{other} is not one of read_only, read_write"),
                );
                Access::ReadOnly
            }
        };
        if let (Some(s), Some(t)) = (&source, &target)
            && s == t
        {
            err(
                "target",
                format!("'{t}' is also the source: a request joins two different systems"),
            );
        }
        match (requester, justification, source, target, intended_use) {
            (
                Some(requester),
                Some(justification),
                Some(source),
                Some(target),
                Some(intended_use),
            ) if errors.is_empty() => Ok(Request {
                requester,
                justification,
                source,
                target,
                data_items,
                intended_use,
                access,
            }),
            _ => Err(errors),
        }
    }
}
