//! Impact analysis (2.4, 2.5): the systems downstream of a change, each at its least depth with
//! the flows that reach it there — by example, and against a plain fixpoint over generated
//! registers.

use std::collections::{BTreeMap, BTreeSet};

use flowgate_core::impact::{ImpactOptions, downstream};
use flowgate_core::register::*;
use flowgate_core::{DataItemId, Email, SystemId};
use proptest::prelude::*;

pub(crate) fn system(id: &str) -> Record {
    Record::System(System {
        id: SystemId::parse(id).expect("id"),
        name: id.to_owned(),
        description: None,
        kind: SystemKind::Application,
        external: false,
        organisation: None,
        status: SystemStatus::Active,
        owner: Some(Email::parse(&format!("{id}.iao@uni.example")).expect("email")),
        administrators: BTreeSet::new(),
        dpia_status: DpiaStatus::Approved,
        dpia_reference: None,
        dpia_review_due: None,
        architecture_checklist: ChecklistStatus::Approved,
    })
}

fn item(id: &str) -> Record {
    crate::policy::item(id, None, false)
}

fn flow(id: &str, s: &str, t: &str, items: &[&str], active: bool) -> Record {
    let status = if active {
        FlowStatus::Active
    } else {
        FlowStatus::Retired
    };
    crate::policy::flow(id, s, t, items, status)
}

fn people(systems: &[String]) -> Vec<Record> {
    systems
        .iter()
        .map(|s| {
            Record::Person(Person {
                email: Email::parse(&format!("{s}.iao@uni.example")).expect("email"),
                name: s.clone(),
                kind: PersonKind::Staff,
                authorised_until: None,
                roles: BTreeSet::new(),
            })
        })
        .collect()
}

/// sits → moodle (f1: core) → analytics (f3); sits → dw (f2: marks) → analytics (f4) and
/// → powerbi (f5); sits → old (f6, retired); moodle → sits (f7: a cycle back).
pub(crate) fn register() -> Register {
    let names: Vec<String> = ["sits", "moodle", "dw", "analytics", "powerbi", "old"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut r = people(&names);
    r.extend(names.iter().map(|s| system(s)));
    r.push(item("core"));
    r.push(item("marks"));
    r.push(flow("f1", "sits", "moodle", &["core"], true));
    r.push(flow("f2", "sits", "dw", &["marks"], true));
    r.push(flow("f3", "moodle", "analytics", &["core"], true));
    r.push(flow("f4", "dw", "analytics", &["marks"], true));
    r.push(flow("f5", "dw", "powerbi", &["marks"], true));
    r.push(flow("f6", "sits", "old", &["core"], false));
    r.push(flow("f7", "moodle", "sits", &["core"], true));
    Register::from_records(r).expect("register")
}

/// `(system, depth, flows)` of each affected system.
fn check(changed: &str, items: &[&str], max_depth: Option<u32>, expected: &[(&str, u32, &[&str])]) {
    let reg = register();
    let options = ImpactOptions {
        data_items: items
            .iter()
            .map(|i| DataItemId::parse(i).expect("id"))
            .collect(),
        max_depth,
    };
    let got: Vec<(String, u32, Vec<String>)> = downstream(&reg, changed, &options)
        .expect("known system")
        .iter()
        .map(|a| {
            (
                a.system.id.to_string(),
                a.depth,
                a.flows.iter().map(|f| f.to_string()).collect(),
            )
        })
        .collect();
    let want: Vec<(String, u32, Vec<String>)> = expected
        .iter()
        .map(|(s, d, f)| (s.to_string(), *d, f.iter().map(|x| x.to_string()).collect()))
        .collect();
    assert_eq!(
        got, want,
        "impact of {changed} (items {items:?}, depth {max_depth:?})"
    );
}

#[test]
fn downstream_systems_at_their_least_depth_2_5() {
    // Both paths reach analytics at depth 2; retired f6 counts for nothing; the cycle back to
    // sits does not list the changed system.
    check(
        "sits",
        &[],
        None,
        &[
            ("dw", 1, &["f2"]),
            ("moodle", 1, &["f1"]),
            ("analytics", 2, &["f3", "f4"]),
            ("powerbi", 2, &["f5"]),
        ],
    );
    check(
        "sits",
        &[],
        Some(1),
        &[("dw", 1, &["f2"]), ("moodle", 1, &["f1"])],
    );
    // Only the first hop is restricted to the items that change.
    check(
        "sits",
        &["marks"],
        None,
        &[
            ("dw", 1, &["f2"]),
            ("analytics", 2, &["f4"]),
            ("powerbi", 2, &["f5"]),
        ],
    );
    check(
        "moodle",
        &[],
        None,
        &[
            ("analytics", 1, &["f3"]),
            ("sits", 1, &["f7"]),
            ("dw", 2, &["f2"]),
            ("powerbi", 3, &["f5"]),
        ],
    );
    check("powerbi", &[], None, &[]);
    check("sits", &[], Some(0), &[]);
    assert!(downstream(&register(), "nowhere", &ImpactOptions::default()).is_none());
}

/// A plain fixpoint: least depths by relaxing every active flow until nothing changes.
fn naive(
    reg: &Register,
    flows: &[(String, String, String, bool, BTreeSet<String>)],
    changed: &str,
    items: &BTreeSet<String>,
    max: Option<u32>,
) -> Vec<(String, u32, Vec<String>)> {
    let usable = |s: &str, f_items: &BTreeSet<String>| {
        s != changed || items.is_empty() || f_items.iter().any(|i| items.contains(i))
    };
    let mut depth: BTreeMap<String, u32> = BTreeMap::new();
    depth.insert(changed.to_owned(), 0);
    loop {
        let mut changed_any = false;
        for (_, s, t, active, f_items) in flows {
            if !active || !usable(s, f_items) {
                continue;
            }
            if let Some(&ds) = depth.get(s)
                && depth.get(t).is_none_or(|&dt| dt > ds + 1)
            {
                depth.insert(t.clone(), ds + 1);
                changed_any = true;
            }
        }
        if !changed_any {
            break;
        }
    }
    let _ = reg;
    let mut out: Vec<(String, u32, Vec<String>)> = depth
        .iter()
        .filter(|(s, d)| s.as_str() != changed && **d > 0 && max.is_none_or(|m| **d <= m))
        .map(|(s, d)| {
            let mut reaching: Vec<String> = flows
                .iter()
                .filter(|(_, fs, ft, active, f_items)| {
                    *active && ft == s && usable(fs, f_items) && depth.get(fs) == Some(&(d - 1))
                })
                .map(|(id, ..)| id.clone())
                .collect();
            reaching.sort();
            (s.clone(), *d, reaching)
        })
        .collect();
    out.sort_by(|a, b| (a.1, &a.0).cmp(&(b.1, &b.0)));
    out
}

proptest! {
    #[test]
    fn the_walk_agrees_with_a_fixpoint(
        n in 2usize..10,
        edges in proptest::collection::vec((0usize..10, 0usize..10, any::<bool>(), 0u8..8), 0..40),
        start in 0usize..10,
        filter in 0u8..4,
        max in proptest::option::of(0u32..5),
    ) {
        let names: Vec<String> = (0..n).map(|i| format!("s{i}")).collect();
        let item_names = ["a", "b", "c"];
        let mut records = people(&names);
        records.extend(names.iter().map(|s| system(s)));
        records.extend(item_names.iter().map(|i| item(i)));
        let mut flows = Vec::new();
        for (k, (s, t, active, mask)) in edges.into_iter().enumerate() {
            let (s, t) = (names[s % n].clone(), names[t % n].clone());
            let f_items: BTreeSet<String> = item_names.iter().enumerate().filter(|(b, _)| mask & (1 << b) != 0).map(|(_, i)| i.to_string()).collect();
            let id = format!("f{k}");
            let refs: Vec<&str> = f_items.iter().map(String::as_str).collect();
            records.push(flow(&id, &s, &t, &refs, active));
            flows.push((id, s, t, active, f_items));
        }
        let reg = Register::from_records(records).expect("register");
        let changed = names[start % n].clone();
        let items: BTreeSet<String> = item_names.iter().enumerate().filter(|(b, _)| filter & (1 << b) != 0 && filter < 3).map(|(_, i)| i.to_string()).collect();
        let options = ImpactOptions {
            data_items: items.iter().map(|i| DataItemId::parse(i).expect("id")).collect(),
            max_depth: max,
        };
        let got: Vec<(String, u32, Vec<String>)> = downstream(&reg, &changed, &options)
            .expect("known")
            .iter()
            .map(|a| (a.system.id.to_string(), a.depth, a.flows.iter().map(|f| f.to_string()).collect()))
            .collect();
        prop_assert_eq!(got, naive(&reg, &flows, &changed, &items, max));
    }
}
