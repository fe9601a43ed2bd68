//! `flowgate check` and `flowgate lint`: the principles engine on the command line.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::Path;

use chrono::NaiveDate;
use flowgate_core::policy::{
    self, Assessment, Finding, Outcome as Decision, RULES, Request, Severity,
};
use flowgate_core::register::FlowRef;
use flowgate_store::Store;
use serde_json::json;

use crate::output::{Format, table};
use crate::{BadInput, Outcome};

/// The width text output is wrapped to: readable on an 80-column terminal.
const WIDTH: usize = 80;

/// Colour only on a terminal, and never when `NO_COLOR` is set (no-color.org).
struct Paint(bool);

impl Paint {
    fn stdout() -> Paint {
        Paint(
            std::io::stdout().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        )
    }
    fn paint(&self, code: &str, text: &str) -> String {
        if self.0 {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }
    fn severity(&self, s: Severity) -> String {
        let (code, label) = match s {
            Severity::Violation => ("1;31", "violation"),
            Severity::Review => ("1;33", "review   "),
            Severity::Warning => ("36", "warning  "),
            Severity::Info => ("2", "info     "),
        };
        self.paint(code, label)
    }
    fn outcome(&self, o: Decision) -> String {
        match o {
            Decision::Rejected => self.paint("1;31", "REJECTED"),
            Decision::NeedsReview => self.paint("1;33", "NEEDS REVIEW"),
            Decision::Proceed => self.paint("1;32", "PROCEED"),
        }
    }
}

/// The date assessments are made as of: `--as-of`, or today.
pub fn as_of(arg: Option<NaiveDate>) -> NaiveDate {
    arg.unwrap_or_else(|| chrono::Local::now().date_naive())
}

/// Reads and checks a request file.
pub fn read_request(path: &Path) -> Result<Request, BadInput> {
    let name = path.display();
    let bytes = std::fs::read(path).map_err(|e| BadInput(format!("{name}: cannot read: {e}")))?;
    let value: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| BadInput(format!("{name}: not valid JSON: {e}")))?;
    Request::from_json(&value).map_err(|errors| {
        BadInput(
            errors
                .iter()
                .map(|e| format!("{name}: {e}"))
                .collect::<Vec<_>>()
                .join("\n"),
        )
    })
}

/// The exit status of a decision: 0 proceed, 1 rejected, 3 needs review.
fn exit_for(o: Decision) -> Outcome {
    match o {
        Decision::Proceed => Outcome::Ok,
        Decision::Rejected => Outcome::Failed,
        Decision::NeedsReview => Outcome::Exit(3),
    }
}

pub async fn check(
    store: &Store,
    request: &Path,
    as_of: NaiveDate,
    format: Format,
) -> anyhow::Result<Outcome> {
    let request = read_request(request)?;
    let register = store.load_register().await?;
    let a = policy::assess(&register, &request, as_of);
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&a)?),
        Format::Text => print!("{}", render_assessment(&request, &a, &Paint::stdout())),
    }
    Ok(exit_for(a.outcome))
}

/// Wraps at [`WIDTH`], never splitting a word (a date, an id) at its hyphens.
fn wrap_hanging(text: &str, first: &str, rest: &str) -> String {
    let opts = textwrap::Options::new(WIDTH)
        .initial_indent(first)
        .subsequent_indent(rest)
        .break_words(false)
        .word_splitter(textwrap::WordSplitter::NoHyphenation);
    textwrap::fill(text, opts)
}

fn wrap(text: &str, indent: &str) -> String {
    wrap_hanging(text, indent, indent)
}

/// The text a person reads: the decision first, then each finding with its clause and its way
/// forward.
fn render_assessment(request: &Request, a: &Assessment, paint: &Paint) -> String {
    let mut out = String::new();
    let items: Vec<&str> = request.data_items.iter().map(|d| d.as_str()).collect();
    let verdict = match a.outcome {
        Decision::Rejected => "this request cannot proceed as asked",
        Decision::NeedsReview => "this request can proceed once the reviews below are done",
        Decision::Proceed => {
            "this request may proceed to the Information Asset Owners for approval (2.3)"
        }
    };
    out.push_str(&wrap(
        &format!("{}: {verdict}", paint.outcome(a.outcome)),
        "",
    ));
    out.push('\n');
    out.push_str(&wrap(
        &format!(
            "{} → {} ({}), for {}; assessed under {} as of {}",
            request.source,
            request.target,
            items.join(", "),
            request.requester,
            a.policy,
            a.as_of
        ),
        "",
    ));
    out.push('\n');
    if a.findings.is_empty() {
        out.push('\n');
        out.push_str(&wrap(
            "No findings: both systems are known and reviewed, and every item comes from its authority.",
            "",
        ));
        out.push('\n');
    }
    for f in &a.findings {
        out.push('\n');
        out.push_str(&render_finding(f, paint));
    }
    out
}

fn render_finding(f: &Finding, paint: &Paint) -> String {
    let head = format!("{} {} ({})", paint.severity(f.severity), f.rule, f.clause);
    let mut out = format!("{head}\n{}\n", wrap(&f.message, "    "));
    if let Some(s) = &f.suggestion {
        out.push_str(&wrap(&format!("→ {s}"), "    "));
        out.push('\n');
    }
    out
}

/// `flowgate check --rules`.
pub fn rules() -> Outcome {
    let mut t = table(["rule", "clause", "checks that"]);
    for r in RULES {
        t.add_row(vec![r.id, r.clause, r.title]);
    }
    println!("{t}");
    Outcome::Ok
}

/// A heading per rule id, for the lint report.
fn heading(rule: &str) -> &'static str {
    match rule {
        "P1" => "Systems without a current DPIA",
        "P2" => "Data not taken from its authoritative system",
        "P3" => "Data flowing into its authoritative system",
        "LIFECYCLE" => "Systems retired or only proposed",
        "CHECKLIST" => "ICT Architecture Checklist pending or rejected",
        "OWNER" => "Systems with no Information Asset Owner to approve",
        "SPECIAL" => "Special category data, for the DPO",
        "EXTERNAL" => "Outside the university: data sharing agreements",
        "REUSE" => "The same data carried twice",
        _ => "Other findings",
    }
}

pub async fn lint(store: &Store, as_of: NaiveDate, format: Format) -> anyhow::Result<Outcome> {
    let register = store.load_register().await?;
    let assessed: Vec<(FlowRef<'_>, Assessment)> = register
        .flows()
        .filter(FlowRef::is_active)
        .map(|f| (f, policy::assess_flow(&register, &f, as_of)))
        .collect();
    let count = |o: Decision| assessed.iter().filter(|(_, a)| a.outcome == o).count();
    let (rejected, review, proceed) = (
        count(Decision::Rejected),
        count(Decision::NeedsReview),
        count(Decision::Proceed),
    );
    match format {
        Format::Json => {
            let mut flows: Vec<_> = assessed
                .iter()
                .filter(|(_, a)| !a.findings.is_empty())
                .collect();
            flows.sort_by_key(|(f, _)| f.id());
            let doc = json!({
                "policy": policy::POLICY,
                "as_of": as_of,
                "flows_assessed": assessed.len(),
                "outcomes": {"rejected": rejected, "needs_review": review, "proceed": proceed},
                "flows": flows.iter().map(|(f, a)| json!({
                    "flow": f.id(),
                    "source": f.source().id,
                    "target": f.target().id,
                    "outcome": a.outcome,
                    "findings": a.findings,
                })).collect::<Vec<_>>(),
            });
            println!("{}", serde_json::to_string_pretty(&doc)?);
        }
        Format::Text => print!(
            "{}",
            render_lint(
                &assessed,
                as_of,
                (rejected, review, proceed),
                &Paint::stdout()
            )
        ),
    }
    Ok(if rejected > 0 {
        Outcome::Failed
    } else {
        Outcome::Ok
    })
}

/// Findings grouped so that a person can act on them: by rule, most severe first; a system's
/// finding once, with the flows it affects; a flow's finding per flow.
fn render_lint(
    assessed: &[(FlowRef<'_>, Assessment)],
    as_of: NaiveDate,
    counts: (usize, usize, usize),
    paint: &Paint,
) -> String {
    // rule -> (most severe, system lines keyed by (system, message) -> flows, flow lines)
    type Group = (
        Severity,
        BTreeMap<(String, String), (Severity, Option<String>, Vec<String>)>,
        Vec<(Severity, String, Option<String>)>,
    );
    let mut groups: BTreeMap<&str, Group> = BTreeMap::new();
    for (flow, a) in assessed {
        for f in &a.findings {
            let g = groups
                .entry(f.rule)
                .or_insert_with(|| (f.severity, BTreeMap::new(), Vec::new()));
            g.0 = g.0.max(f.severity);
            let system_level = f.data_item.is_none() && f.flow.is_none() && f.system.is_some();
            if system_level {
                let key = (
                    f.system
                        .as_ref()
                        .map(ToString::to_string)
                        .unwrap_or_default(),
                    f.message.clone(),
                );
                let e =
                    g.1.entry(key)
                        .or_insert_with(|| (f.severity, f.suggestion.clone(), Vec::new()));
                e.2.push(flow.id().to_owned());
            } else {
                let line = format!(
                    "{} {} → {}: {}",
                    flow.id(),
                    flow.source().id,
                    flow.target().id,
                    f.message
                );
                g.2.push((f.severity, line, f.suggestion.clone()));
            }
        }
    }
    let mut ordered: Vec<(&str, Group)> = groups.into_iter().collect();
    let rank = |rule: &str| {
        RULES
            .iter()
            .position(|r| r.id == rule)
            .unwrap_or(usize::MAX)
    };
    ordered.sort_by(|a, b| b.1.0.cmp(&a.1.0).then(rank(a.0).cmp(&rank(b.0))));

    let mut out = wrap(
        &format!(
            "Flowgate lint: the register's active flows assessed as if requested on {as_of} ({})",
            policy::POLICY
        ),
        "",
    );
    out.push('\n');
    out.push_str(&format!(
        "{} active flows: {} rejected, {} need review, {} proceed\n",
        assessed.len(),
        paint.paint("1;31", &counts.0.to_string()),
        paint.paint("1;33", &counts.1.to_string()),
        paint.paint("1;32", &counts.2.to_string()),
    ));
    for (rule, (_, systems, mut flows)) in ordered {
        let clause = RULES.iter().find(|r| r.id == rule).map_or("", |r| r.clause);
        let n = systems.len() + flows.len();
        out.push_str(&format!(
            "\n{} — {rule} ({clause}): {n}\n",
            paint.paint("1", heading(rule))
        ));
        for ((_, message), (sev, suggestion, affected)) in systems {
            let flows_note = match affected.len() {
                1 => format!(" (flow {})", affected[0]),
                n if n <= 4 => format!(" (flows {})", affected.join(", ")),
                n => format!(" ({n} flows, e.g. {})", affected[..3].join(", ")),
            };
            out.push_str(&item(
                sev,
                &format!("{message}{flows_note}"),
                suggestion.as_deref(),
            ));
        }
        // Most severe first, then by flow.
        flows.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        flows.dedup();
        for (sev, line, suggestion) in flows {
            out.push_str(&item(sev, &line, suggestion.as_deref()));
        }
    }
    out
}

/// One line of the lint report: a bullet for its severity, the text, and the way forward.
fn item(severity: Severity, text: &str, suggestion: Option<&str>) -> String {
    let mut out = wrap_hanging(&format!("{} {text}", bullet(severity)), "  ", "    ");
    out.push('\n');
    if let Some(s) = suggestion {
        out.push_str(&wrap_hanging(&format!("→ {s}"), "    ", "      "));
        out.push('\n');
    }
    out
}

fn bullet(s: Severity) -> &'static str {
    match s {
        Severity::Violation => "✗",
        Severity::Review => "?",
        Severity::Warning => "!",
        Severity::Info => "·",
    }
}
