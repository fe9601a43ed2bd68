//! `flowgate generate`: a synthetic register of a chosen size with the shape of a real one, for
//! load tests and benchmarks. Deterministic for a given seed.
//!
//! The shape: a few hub systems (student records, identity, HR, finance, the warehouse) own most
//! data items and have a large fan-out; other systems sit in layers below them and pass data on;
//! a few are external, proposed or retired. Most flows take data from its authoritative system,
//! some (the legacy debt every university has) from a copy; one in twenty is retired.

use std::collections::BTreeSet;
use std::path::PathBuf;

use anyhow::Context;
use chrono::NaiveDate;
use clap::Args;
use flowgate_core::register::{
    ChecklistStatus, Classification, DataItem, DpiaStatus, Flow, FlowMethod, FlowStatus, Person,
    PersonKind, Record, Register, Role, System, SystemKind, SystemStatus,
};
use flowgate_core::{DataItemId, Email, FlowId, SystemId};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::Outcome;

#[derive(Debug, Args)]
pub struct Options {
    /// How many systems.
    #[arg(long, default_value_t = 10_000)]
    systems: usize,
    /// How many flows.
    #[arg(long, default_value_t = 1_000_000)]
    flows: usize,
    /// How many data items.
    #[arg(long, default_value_t = 2_000)]
    items: usize,
    /// The random seed: the same seed gives the same register.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// The folder to write people.csv, systems.csv, data_items.csv and flows.csv into.
    #[arg(long)]
    out: PathBuf,
}

const HUBS: [(&str, &str); 5] = [
    ("sits", "Student records"),
    ("idm", "Identity management"),
    ("hr", "HR and payroll"),
    ("finance", "Finance"),
    ("dw", "Data warehouse"),
];

pub fn run(opts: &Options) -> anyhow::Result<Outcome> {
    anyhow::ensure!(
        opts.systems >= HUBS.len() + 2,
        "--systems must be at least {}",
        HUBS.len() + 2
    );
    anyhow::ensure!(opts.items >= 1, "--items must be at least 1");
    let register = generate(opts.systems, opts.flows, opts.items, opts.seed)?;
    std::fs::create_dir_all(&opts.out)
        .with_context(|| format!("failed to create {}", opts.out.display()))?;
    for (name, bytes) in flowgate_exchange::write_csv(&register) {
        let path = opts.out.join(name);
        std::fs::write(&path, bytes)
            .with_context(|| format!("failed to write {}", path.display()))?;
    }
    println!(
        "wrote {} people, {} systems, {} data items and {} flows to {}",
        register.people().len(),
        register.systems().len(),
        register.data_items().len(),
        register.flows().len(),
        opts.out.display()
    );
    Ok(Outcome::Ok)
}

fn id<T>(f: fn(&str) -> Result<T, flowgate_core::IdError>, s: &str) -> anyhow::Result<T> {
    f(s).map_err(|e| anyhow::anyhow!("generator made a bad id: {e}"))
}

fn date(rng: &mut SmallRng, from_year: i32, to_year: i32) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(
        rng.random_range(from_year..=to_year),
        rng.random_range(1..=12),
        rng.random_range(1..=28),
    )
}

/// Builds the register in memory (checked like any other) before anything is written.
pub fn generate(
    n_systems: usize,
    n_flows: usize,
    n_items: usize,
    seed: u64,
) -> anyhow::Result<Register> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut records = Vec::new();

    // People: roughly one per three systems, a few with global roles, some third parties.
    let n_people = (n_systems / 3).max(10);
    let mut people = Vec::with_capacity(n_people);
    for i in 0..n_people {
        let email = id(Email::parse, &format!("person{i:05}@uni.example"))?;
        let third_party = i >= 10 && rng.random_bool(0.02);
        let roles: BTreeSet<Role> = match i {
            0 | 1 => [Role::DataProductTeam].into(),
            2 => [Role::Dpo].into(),
            3 => [Role::ProductLine].into(),
            4 => [Role::Admin].into(),
            _ => BTreeSet::new(),
        };
        people.push(email.clone());
        records.push(Record::Person(Person {
            email,
            name: format!("Person {i}"),
            kind: if third_party {
                PersonKind::ThirdParty
            } else {
                PersonKind::Staff
            },
            authorised_until: if third_party {
                date(&mut rng, 2025, 2028)
            } else {
                None
            },
            roles,
        }));
    }

    // Systems: hubs, then layers 1 (10%), 2 (30%) and 3 (the rest).
    let mut system_ids = Vec::with_capacity(n_systems);
    let mut layer = Vec::with_capacity(n_systems);
    let mut retired = Vec::with_capacity(n_systems);
    for i in 0..n_systems {
        let (sid, name, l) = if let Some((hub, hub_name)) = HUBS.get(i) {
            ((*hub).to_owned(), (*hub_name).to_owned(), 0u8)
        } else {
            let l = match (i * 10) / n_systems {
                0 => 1,
                1..=3 => 2,
                _ => 3,
            };
            (format!("sys-{i:05}"), format!("System {i}"), l)
        };
        let external = l > 0 && rng.random_bool(0.05);
        let status = if l == 0 {
            SystemStatus::Active
        } else {
            match rng.random_range(0..100) {
                0..=3 => SystemStatus::Proposed,
                4..=7 => SystemStatus::Retired,
                _ => SystemStatus::Active,
            }
        };
        let dpia_status = match rng.random_range(0..100) {
            0..=69 => DpiaStatus::Approved,
            70..=79 => DpiaStatus::InProgress,
            80..=97 => DpiaStatus::None,
            _ => DpiaStatus::Rejected,
        };
        let owner = people[rng.random_range(0..people.len())].clone();
        let administrators = (0..rng.random_range(0..3))
            .map(|_| people[rng.random_range(0..people.len())].clone())
            .collect();
        let sid = id(SystemId::parse, &sid)?;
        system_ids.push(sid.clone());
        layer.push(l);
        retired.push(status == SystemStatus::Retired);
        records.push(Record::System(System {
            id: sid,
            name,
            description: None,
            kind: if l == 0 {
                SystemKind::Application
            } else {
                SystemKind::ALL[rng.random_range(0..SystemKind::ALL.len())]
            },
            external,
            organisation: external.then(|| format!("Supplier {}", rng.random_range(1..200))),
            status,
            owner: Some(owner),
            administrators,
            dpia_status,
            dpia_reference: (dpia_status != DpiaStatus::None)
                .then(|| format!("DART-{}-{:04}", rng.random_range(2018..2027), i)),
            dpia_review_due: (dpia_status == DpiaStatus::Approved)
                .then(|| date(&mut rng, 2025, 2029))
                .flatten(),
            architecture_checklist: match rng.random_range(0..100) {
                0..=49 => ChecklistStatus::Approved,
                50..=89 => ChecklistStatus::NotRequired,
                90..=97 => ChecklistStatus::Pending,
                _ => ChecklistStatus::Rejected,
            },
        }));
    }
    let layer1_end = (n_systems / 10).max(HUBS.len() + 1);

    // Data items: 60% owned by the hubs (not the warehouse), most of the rest by layer-1 systems,
    // a few with no authority established.
    let mut item_ids = Vec::with_capacity(n_items);
    let mut authority: Vec<Option<usize>> = Vec::with_capacity(n_items);
    for i in 0..n_items {
        let a = match rng.random_range(0..100) {
            // The first item always has an authority, so that there is a flow to make.
            _ if i == 0 => Some(0),
            0..=59 => Some(rng.random_range(0..HUBS.len() - 1)),
            60..=94 => Some(rng.random_range(HUBS.len()..layer1_end)),
            _ => None,
        };
        let personal = rng.random_bool(0.6);
        let iid = id(DataItemId::parse, &format!("item-{i:05}"))?;
        item_ids.push(iid.clone());
        authority.push(a);
        records.push(Record::DataItem(DataItem {
            id: iid,
            name: format!("Data item {i}"),
            description: None,
            classification: Classification::ALL[rng.random_range(0..Classification::ALL.len())],
            personal_data: personal,
            special_category: personal && rng.random_bool(0.05),
            authoritative_system: a.map(|s| system_ids[s].clone()),
        }));
    }
    // Per system, the items it owns, so that multi-item flows take items from one authority.
    let mut owned: Vec<Vec<usize>> = vec![Vec::new(); n_systems];
    for (i, a) in authority.iter().enumerate() {
        if let Some(s) = a {
            owned[*s].push(i);
        }
    }
    let owners: Vec<usize> = (0..n_systems).filter(|&s| !owned[s].is_empty()).collect();
    // Per item, systems that have received it: where flows from a copy come from.
    let mut holders: Vec<Vec<usize>> = vec![Vec::new(); n_items];

    let methods = FlowMethod::ALL;
    let frequencies = [
        "real-time",
        "hourly",
        "daily",
        "nightly",
        "weekly",
        "monthly",
    ];
    let mut i = 0;
    while i < n_flows {
        // Source: mostly an authority (hubs most of all), sometimes a system holding a copy.
        let from_copy = rng.random_bool(0.1);
        let first_item;
        let source;
        if from_copy && i > 0 {
            first_item = rng.random_range(0..n_items);
            source = match holders[first_item].as_slice() {
                // Nobody holds a copy of this item yet: try again.
                [] => continue,
                h => h[rng.random_range(0..h.len())],
            };
        } else {
            source = if rng.random_bool(0.5) {
                rng.random_range(0..HUBS.len() - 1)
            } else {
                owners[rng.random_range(0..owners.len())]
            };
            let own = &owned[source];
            if own.is_empty() {
                continue;
            }
            first_item = own[rng.random_range(0..own.len())];
        }
        // Target: a system in a deeper layer than the source where there is one.
        let target = loop {
            let t = match layer[source] {
                0 => rng.random_range(HUBS.len()..n_systems),
                1 => rng.random_range(layer1_end.min(n_systems - 1)..n_systems),
                _ => rng.random_range(HUBS.len()..n_systems),
            };
            if t != source {
                break t;
            }
        };
        let mut items = BTreeSet::from([first_item]);
        let extra = rng.random_range(0..3);
        if !from_copy {
            for _ in 0..extra {
                let own = &owned[source];
                items.insert(own[rng.random_range(0..own.len())]);
            }
        }
        let status = if retired[source] || retired[target] || rng.random_bool(0.05) {
            FlowStatus::Retired
        } else {
            FlowStatus::Active
        };
        if status == FlowStatus::Active {
            for &it in &items {
                if holders[it].len() < 64 {
                    holders[it].push(target);
                }
            }
        }
        records.push(Record::Flow(Flow {
            id: id(FlowId::parse, &format!("f{i:07}"))?,
            source: system_ids[source].clone(),
            target: system_ids[target].clone(),
            data_items: items.into_iter().map(|it| item_ids[it].clone()).collect(),
            method: methods[rng.random_range(0..methods.len())],
            frequency: Some(frequencies[rng.random_range(0..frequencies.len())].to_owned()),
            status,
            request: rng
                .random_bool(0.3)
                .then(|| format!("RITM{:07}", rng.random_range(0..10_000_000))),
            established_on: date(&mut rng, 2012, 2026),
        }));
        i += 1;
    }
    Register::from_records(records)
        .map_err(|e| anyhow::anyhow!("generator made a dangling reference: {e}"))
}
