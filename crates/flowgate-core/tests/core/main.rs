//! The register index: every answer it gives equals the answer of a plain scan over the records,
//! after any sequence of additions and updates, and whether built incrementally or in bulk.

mod impact;
mod notice;
mod policy;
mod workflow;

use std::collections::BTreeSet;

use flowgate_core::register::*;
use flowgate_core::{DataItemId, Email, FlowId, SystemId};
use proptest::prelude::*;

fn person(i: usize) -> Record {
    Record::Person(Person {
        email: Email::parse(&format!("p{i}@uni.example")).expect("email"),
        name: format!("P{i}"),
        kind: PersonKind::Staff,
        authorised_until: None,
        roles: BTreeSet::new(),
    })
}

fn system(i: usize) -> Record {
    Record::System(System {
        id: SystemId::parse(&format!("s{i}")).expect("id"),
        name: format!("S{i}"),
        description: None,
        kind: SystemKind::Application,
        external: false,
        organisation: None,
        status: SystemStatus::Active,
        owner: Some(Email::parse("p0@uni.example").expect("email")),
        administrators: BTreeSet::new(),
        dpia_status: DpiaStatus::Approved,
        dpia_reference: None,
        dpia_review_due: None,
        architecture_checklist: ChecklistStatus::NotRequired,
    })
}

fn item(i: usize, authority: Option<usize>) -> Record {
    Record::DataItem(DataItem {
        id: DataItemId::parse(&format!("d{i}")).expect("id"),
        name: format!("D{i}"),
        description: None,
        classification: Classification::Internal,
        personal_data: false,
        special_category: false,
        authoritative_system: authority.map(|a| SystemId::parse(&format!("s{a}")).expect("id")),
    })
}

/// (flow number, source, target, items, active)
type FlowSpec = (usize, usize, usize, BTreeSet<usize>, bool);

fn flow((n, s, t, items, active): &FlowSpec) -> Record {
    Record::Flow(Flow {
        id: FlowId::parse(&format!("f{n}")).expect("id"),
        source: SystemId::parse(&format!("s{s}")).expect("id"),
        target: SystemId::parse(&format!("s{t}")).expect("id"),
        data_items: items
            .iter()
            .map(|i| DataItemId::parse(&format!("d{i}")).expect("id"))
            .collect(),
        method: FlowMethod::Api,
        frequency: (n % 2 == 0).then(|| "daily".to_owned()),
        status: if *active {
            FlowStatus::Active
        } else {
            FlowStatus::Retired
        },
        request: (n % 3 == 0).then(|| format!("REQ{n}")),
        established_on: None,
    })
}

const SYSTEMS: usize = 6;
const ITEMS: usize = 4;

fn flow_spec() -> impl Strategy<Value = FlowSpec> {
    flow_spec_among(12)
}

/// Flows numbered below `ids`: few ids make many updates, many ids make mostly additions.
fn flow_spec_among(ids: usize) -> impl Strategy<Value = FlowSpec> {
    (
        0..ids,
        0..SYSTEMS,
        1..SYSTEMS,
        prop::collection::btree_set(0..ITEMS, 1..=3),
        prop::bool::weighted(0.8),
    )
        .prop_map(|(n, s, d, items, active)| (n, s, (s + d) % SYSTEMS, items, active))
}

fn base() -> Vec<Record> {
    let mut r = vec![person(0)];
    r.extend((0..SYSTEMS).map(system));
    r.extend((0..ITEMS).map(|i| item(i, (i < ITEMS - 1).then_some(i % SYSTEMS))));
    r
}

/// Every question the index answers, asked of the index and of a plain scan of the final flows.
fn assert_agrees_with_scan(reg: &Register) {
    let flows: Vec<Flow> = reg.flows().map(|f| f.to_flow()).collect();
    for s in 0..SYSTEMS {
        let sid = format!("s{s}");
        let mut out: Vec<&str> = reg.flows_out_of(&sid).map(|f| f.id()).collect();
        let mut scan_out: Vec<&str> = flows
            .iter()
            .filter(|f| f.source.as_str() == sid)
            .map(|f| f.id.as_str())
            .collect();
        out.sort_unstable();
        scan_out.sort_unstable();
        assert_eq!(out, scan_out, "flows out of {sid}");
        let mut inn: Vec<&str> = reg.flows_into(&sid).map(|f| f.id()).collect();
        let mut scan_in: Vec<&str> = flows
            .iter()
            .filter(|f| f.target.as_str() == sid)
            .map(|f| f.id.as_str())
            .collect();
        inn.sort_unstable();
        scan_in.sort_unstable();
        assert_eq!(inn, scan_in, "flows into {sid}");
        for i in 0..ITEMS {
            let iid = format!("d{i}");
            let mut got: Vec<&str> = reg
                .active_flows_carrying_into(&sid, &iid)
                .map(|f| f.id())
                .collect();
            let mut want: Vec<&str> = flows
                .iter()
                .filter(|f| {
                    f.target.as_str() == sid
                        && f.status == FlowStatus::Active
                        && f.data_items.iter().any(|d| d.as_str() == iid)
                })
                .map(|f| f.id.as_str())
                .collect();
            got.sort_unstable();
            want.sort_unstable();
            assert_eq!(got, want, "active flows carrying {iid} into {sid}");
        }
    }
    for d in reg.data_items() {
        assert_eq!(
            reg.authoritative_system(d.id.as_str()).map(|s| &s.id),
            d.authoritative_system.as_ref()
        );
    }
}

proptest! {
    #[test]
    fn the_index_answers_as_a_scan_would_after_any_puts(specs in prop::collection::vec(flow_spec(), 0..40)) {
        let mut reg = Register::from_records(base()).expect("base");
        for s in &specs {
            reg.put(flow(s)).expect("valid flow");
        }
        assert_agrees_with_scan(&reg);
    }

    #[test]
    fn bulk_loading_and_putting_one_by_one_give_the_same_register(specs in prop::collection::vec(flow_spec(), 0..40)) {
        let mut one_by_one = Register::new();
        let records: Vec<Record> = base().into_iter().chain(specs.iter().map(flow)).collect();
        for r in records.clone() {
            one_by_one.put(r).expect("valid");
        }
        let bulk = Register::from_records(records).expect("valid");
        prop_assert_eq!(bulk.first_difference(&one_by_one), None);
        assert_agrees_with_scan(&bulk);
    }

    #[test]
    fn put_reports_added_updated_and_unchanged(specs in prop::collection::vec(flow_spec(), 1..20)) {
        let mut reg = Register::from_records(base()).expect("base");
        let mut seen = std::collections::HashMap::new();
        for s in &specs {
            let rec = flow(s);
            let expected = match seen.get(&s.0) {
                None => PutOutcome::Added,
                Some(prev) if *prev == rec => PutOutcome::Unchanged,
                Some(_) => PutOutcome::Updated,
            };
            prop_assert_eq!(reg.put(rec.clone()).expect("valid"), expected);
            seen.insert(s.0, rec);
        }
    }
}

proptest! {
    // Above a thousand flows, `put_many` rebuilds the links once instead of keeping them sorted.
    #![proptest_config(ProptestConfig::with_cases(16))]
    #[test]
    fn a_large_batch_gives_the_same_register_as_one_put_at_a_time(
        before in prop::collection::vec(flow_spec_among(400), 0..50),
        batch in prop::collection::vec(flow_spec_among(1_500), 1_001..1_400),
    ) {
        let mut one_by_one = Register::from_records(base()).expect("base");
        for s in before.iter().chain(&batch) {
            one_by_one.put(flow(s)).expect("valid");
        }
        let mut bulk = Register::from_records(base()).expect("base");
        bulk.put_many(before.iter().map(flow)).expect("valid");
        let outcomes = bulk.put_many(batch.iter().map(flow)).expect("valid");
        prop_assert_eq!(outcomes.len(), batch.len());
        prop_assert_eq!(bulk.first_difference(&one_by_one), None);
        assert_agrees_with_scan(&bulk);
    }

}

#[test]
fn a_record_naming_what_is_not_there_is_refused_and_changes_nothing() {
    let mut reg = Register::from_records(base()).expect("base");
    let bad = flow(&(1, 0, 1, BTreeSet::from([0]), true));
    let Record::Flow(mut f) = bad else {
        unreachable!()
    };
    f.target = SystemId::parse("nowhere").expect("id");
    let err = reg.put(Record::Flow(f)).expect_err("refused");
    assert_eq!(err.to_string(), "target: no system with id 'nowhere'");
    assert_eq!(reg.len(RecordKind::Flow), 0);
}

#[test]
fn retiring_a_flow_removes_it_from_the_carrying_index() {
    let mut reg = Register::from_records(base()).expect("base");
    reg.put(flow(&(1, 0, 1, BTreeSet::from([0, 1]), true)))
        .expect("valid");
    assert_eq!(reg.active_flows_carrying_into("s1", "d0").count(), 1);
    assert_eq!(
        reg.put(flow(&(1, 0, 1, BTreeSet::from([0, 1]), false)))
            .expect("valid"),
        PutOutcome::Updated
    );
    assert_eq!(reg.active_flows_carrying_into("s1", "d0").count(), 0);
    assert_eq!(
        reg.flows_into("s1").count(),
        1,
        "a retired flow is still a flow"
    );
}

#[test]
fn first_difference_names_the_record_and_both_sides() {
    let a = Register::from_records(base()).expect("base");
    let mut b = a.clone();
    b.put(item(0, None)).expect("valid");
    let (kind, id, left, right) = a.first_difference(&b).expect("differs");
    assert_eq!((kind, id.as_str()), (RecordKind::DataItem, "d0"));
    assert!(left.is_some() && right.is_some());
    assert_eq!(a.first_difference(&a.clone()), None);
}
