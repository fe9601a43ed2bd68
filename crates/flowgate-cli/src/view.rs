//! `flowgate list` and `flowgate show`: the register as readable tables.

use flowgate_core::register::{FlowRef, Person, RecordKind, Register, System};
use flowgate_store::Store;

use crate::output::{fields, or_dash, table};
use crate::{BadInput, Outcome};

pub async fn list(store: &Store, kind: RecordKind, limit: usize) -> anyhow::Result<Outcome> {
    let reg = store.load_register().await?;
    let ids = reg.sorted_ids(kind);
    let total = ids.len();
    let shown = if limit == 0 { total } else { total.min(limit) };
    let ids = &ids[..shown];
    let t = match kind {
        RecordKind::Person => {
            let mut t = table([
                "email",
                "name",
                "kind",
                "roles",
                "authorised until",
                "owns",
                "administers",
            ]);
            for id in ids {
                let Some(p) = reg.person(id) else { continue };
                let (owns, administers) = responsibilities(&reg, p);
                t.add_row(vec![
                    p.email.to_string(),
                    p.name.clone(),
                    p.kind.to_string(),
                    p.roles
                        .iter()
                        .map(|r| r.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    or_dash(&p.authorised_until),
                    owns.len().to_string(),
                    administers.len().to_string(),
                ]);
            }
            t
        }
        RecordKind::System => {
            let mut t = table([
                "id",
                "name",
                "status",
                "owner (IAO)",
                "DPIA",
                "external",
                "flows out",
                "flows in",
            ]);
            for id in ids {
                let Some(s) = reg.system(id) else { continue };
                t.add_row(vec![
                    s.id.to_string(),
                    s.name.clone(),
                    s.status.to_string(),
                    or_dash(&s.owner),
                    dpia(s),
                    if s.external {
                        s.organisation.clone().unwrap_or_else(|| "yes".into())
                    } else {
                        "no".into()
                    },
                    reg.flows_out_of(id)
                        .filter(FlowRef::is_active)
                        .count()
                        .to_string(),
                    reg.flows_into(id)
                        .filter(FlowRef::is_active)
                        .count()
                        .to_string(),
                ]);
            }
            t
        }
        RecordKind::DataItem => {
            let mut t = table([
                "id",
                "name",
                "classification",
                "personal",
                "special category",
                "authoritative system",
            ]);
            for id in ids {
                let Some(d) = reg.data_item(id) else { continue };
                t.add_row(vec![
                    d.id.to_string(),
                    d.name.clone(),
                    d.classification.to_string(),
                    yes_no(d.personal_data),
                    yes_no(d.special_category),
                    d.authoritative_system
                        .as_ref()
                        .map_or_else(|| "not established".to_owned(), ToString::to_string),
                ]);
            }
            t
        }
        RecordKind::Flow => {
            let mut t = table(["id", "source", "target", "data items", "method", "status"]);
            for id in ids {
                let Some(f) = reg.flow(id) else { continue };
                t.add_row(flow_row(&f));
            }
            t
        }
    };
    println!("{t}");
    if shown < total {
        println!(
            "{shown} of {total} {} shown (--limit 0 shows all)",
            flowgate_store::plural(kind, total)
        );
    } else {
        println!("{total} {}", flowgate_store::plural(kind, total));
    }
    Ok(Outcome::Ok)
}

fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.to_owned()
}

fn dpia(s: &System) -> String {
    let mut d = s.dpia_status.to_string();
    if let Some(due) = s.dpia_review_due {
        d.push_str(&format!(", review due {due}"));
    }
    d
}

fn flow_row(f: &FlowRef<'_>) -> Vec<String> {
    let items = f
        .data_items()
        .map(|d| d.id.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let mut row = vec![f.id().to_owned(), f.source().id.to_string()];
    row.extend([
        f.target().id.to_string(),
        items,
        f.method().to_string(),
        f.status().to_string(),
    ]);
    row
}

/// Systems a person owns (IAO) and administers (IAA).
fn responsibilities<'a>(reg: &'a Register, p: &Person) -> (Vec<&'a System>, Vec<&'a System>) {
    let owns = reg
        .systems()
        .iter()
        .filter(|s| s.owner.as_ref() == Some(&p.email))
        .collect();
    let administers = reg
        .systems()
        .iter()
        .filter(|s| s.administrators.contains(&p.email))
        .collect();
    (owns, administers)
}

fn person_label(reg: &Register, email: &Option<flowgate_core::Email>) -> String {
    match email {
        None => "- (no IAO recorded)".to_owned(),
        Some(e) => match reg.person(e.as_str()) {
            Some(p) => format!("{} <{}>", p.name, p.email),
            None => e.to_string(),
        },
    }
}

pub async fn show(store: &Store, kind: RecordKind, id: &str) -> anyhow::Result<Outcome> {
    let reg = store.load_register().await?;
    let id = id.trim();
    let id_lower = id.to_ascii_lowercase();
    let not_found = || BadInput(format!("no {} with id '{id}'", kind.noun()));
    match kind {
        RecordKind::System => {
            let s = reg.system(id).ok_or_else(not_found)?;
            println!("{} — {}\n", s.id, s.name);
            println!(
                "{}",
                fields(vec![
                    ("description", or_dash(&s.description)),
                    ("kind", s.kind.to_string()),
                    ("status", s.status.to_string()),
                    (
                        "external",
                        if s.external {
                            format!("yes, run by {}", or_dash(&s.organisation))
                        } else {
                            "no".into()
                        }
                    ),
                    ("owner (IAO)", person_label(&reg, &s.owner)),
                    (
                        "administrators (IAA)",
                        if s.administrators.is_empty() {
                            "-".into()
                        } else {
                            s.administrators
                                .iter()
                                .map(|a| person_label(&reg, &Some(a.clone())))
                                .collect::<Vec<_>>()
                                .join("\n")
                        }
                    ),
                    ("DPIA", dpia(s)),
                    ("DPIA reference (DART)", or_dash(&s.dpia_reference)),
                    (
                        "ICT Architecture Checklist",
                        s.architecture_checklist.to_string()
                    ),
                ])
            );
            let authority: Vec<&str> = reg
                .data_items()
                .iter()
                .filter(|d| d.authoritative_system.as_ref() == Some(&s.id))
                .map(|d| d.id.as_str())
                .collect();
            println!(
                "\nauthoritative for: {}",
                if authority.is_empty() {
                    "nothing".to_owned()
                } else {
                    authority.join(", ")
                }
            );
            for (title, flows, source_column) in [
                ("flows out", reg.flows_out_of(id).collect::<Vec<_>>(), false),
                ("flows in", reg.flows_into(id).collect::<Vec<_>>(), true),
            ] {
                println!("\n{title}: {}", flows.len());
                if !flows.is_empty() {
                    let mut t = if source_column {
                        table(["id", "source", "data items", "method", "status"])
                    } else {
                        table(["id", "target", "data items", "method", "status"])
                    };
                    for f in flows.iter().take(200) {
                        let mut row = flow_row(f);
                        // Show the far end only.
                        row.remove(if source_column { 2 } else { 1 });
                        t.add_row(row);
                    }
                    println!("{t}");
                    if flows.len() > 200 {
                        println!("(first 200 shown)");
                    }
                }
            }
        }
        RecordKind::Person => {
            let p = reg.person(&id_lower).ok_or_else(not_found)?;
            let (owns, administers) = responsibilities(&reg, p);
            let names = |v: &[&System]| {
                if v.is_empty() {
                    "-".to_owned()
                } else {
                    v.iter()
                        .map(|s| s.id.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            };
            println!("{} <{}>\n", p.name, p.email);
            println!(
                "{}",
                fields(vec![
                    ("kind", p.kind.to_string()),
                    ("authorised until", or_dash(&p.authorised_until)),
                    (
                        "roles",
                        if p.roles.is_empty() {
                            "-".into()
                        } else {
                            p.roles
                                .iter()
                                .map(|r| r.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        }
                    ),
                    ("IAO of", names(&owns)),
                    ("IAA of", names(&administers)),
                ])
            );
        }
        RecordKind::DataItem => {
            let d = reg.data_item(id).ok_or_else(not_found)?;
            let carrying: Vec<FlowRef<'_>> = reg.flows().filter(|f| f.carries(id)).collect();
            println!("{} — {}\n", d.id, d.name);
            println!(
                "{}",
                fields(vec![
                    ("description", or_dash(&d.description)),
                    ("classification", d.classification.to_string()),
                    ("personal data", yes_no(d.personal_data)),
                    ("special category", yes_no(d.special_category)),
                    (
                        "authoritative system",
                        d.authoritative_system
                            .as_ref()
                            .map_or_else(|| "not established".to_owned(), ToString::to_string)
                    ),
                ])
            );
            println!("\nflows carrying it: {}", carrying.len());
            if !carrying.is_empty() {
                let mut t = table(["id", "source", "target", "data items", "method", "status"]);
                for f in carrying.iter().take(200) {
                    t.add_row(flow_row(f));
                }
                println!("{t}");
            }
        }
        RecordKind::Flow => {
            let f = reg.flow(id).ok_or_else(not_found)?.to_flow();
            println!("{}: {} → {}\n", f.id, f.source, f.target);
            println!(
                "{}",
                fields(vec![
                    (
                        "data items",
                        f.data_items
                            .iter()
                            .map(|d| d.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    ("method", f.method.to_string()),
                    ("frequency", or_dash(&f.frequency)),
                    ("status", f.status.to_string()),
                    ("request", or_dash(&f.request)),
                    ("established on", or_dash(&f.established_on)),
                ])
            );
        }
    }
    Ok(Outcome::Ok)
}
