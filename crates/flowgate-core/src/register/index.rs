//! The in-memory index of the whole register: what the principles and impact analysis query, so
//! that no question about the register scans its flows.
//!
//! People, systems and data items are few (thousands) and kept as whole records. Flows are many
//! (a large university: a million) and kept compactly: systems and data items as `u32` positions,
//! ids, requests and frequencies in shared arenas, so that a flow costs about 100 bytes in all
//! rather than the ~300 of a `Flow` with its own strings. `Register::flow` rebuilds the record.
//!
//! What is indexed, and the cost of each question:
//! - a record by id: one hash lookup;
//! - flows out of / into a system: the system's adjacency list;
//! - the active flows carrying a data item into a system: a binary search in a sorted
//!   `(target, data item, flow)` table — the question Principle 2 (1.3.4) asks for every item;
//! - the authoritative system of a data item: one lookup.

use std::hash::BuildHasher;

use chrono::{Datelike, NaiveDate};
// hashbrown's default hasher (foldhash) rather than SipHash: ids are not attacker-chosen keys
// in a way that matters here, and every assessment makes a dozen lookups.
use hashbrown::{DefaultHashBuilder, HashMap, HashTable};

use super::model::{DataItem, Flow, FlowMethod, FlowStatus, Person, Record, RecordKind, System};
use crate::ids::FlowId;

/// A flow's fields, by reference: what a bulk load reads from the database.
#[derive(Debug, Clone, Copy)]
pub struct FlowFields<'a> {
    pub id: &'a str,
    pub source: &'a str,
    pub target: &'a str,
    pub method: FlowMethod,
    pub frequency: Option<&'a str>,
    pub status: FlowStatus,
    pub request: Option<&'a str>,
    pub established_on: Option<NaiveDate>,
}

/// A flow a bulk load could not take, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("flow '{id}': {field}: {message}")]
pub struct LoadError {
    pub id: String,
    pub field: &'static str,
    pub message: String,
}

/// A register's system and data item positions and its flow-id hasher, copied so that another
/// thread can turn the text a bulk load reads into index positions while this one builds the
/// index: loading a million flows then uses both cores.
#[derive(Debug, Clone)]
pub struct Resolver {
    systems: HashMap<String, Ix>,
    items: HashMap<String, Ix>,
    hasher: DefaultHashBuilder,
}

/// Flows read and resolved by a loader thread, for [`Register::load_batch`]. Give a flow its data
/// items with [`FlowBatch::take_items`], then add the flow with [`FlowBatch::push_flow`].
#[derive(Debug, Default)]
pub struct FlowBatch {
    text: String,
    rows: Vec<BatchRow>,
    items: Vec<Ix>,
    /// Where the items of the flow being read begin in `items`.
    pending: usize,
}

#[derive(Debug, Clone, Copy)]
struct BatchRow {
    id: Span,
    hash: u64,
    items: Span,
    request: Option<Span>,
    frequency: Option<Span>,
    source: Ix,
    target: Ix,
    established_on: i32,
    method: FlowMethod,
    status: FlowStatus,
}

/// The data items of flows, read in flow id order by a loader thread of their own and resolved
/// to index positions: one run per flow. [`FlowBatch::take_items`] gives a run to its flow.
#[derive(Debug, Default)]
pub struct ItemRuns {
    text: String,
    /// Each run's flow id (in `text`) and items (in `items`).
    runs: Vec<(Span, Span)>,
    items: Vec<Ix>,
}

impl ItemRuns {
    /// How many flows' runs the batch holds.
    pub fn len(&self) -> usize {
        self.runs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }

    /// The flow id of run `i`.
    pub fn flow(&self, i: usize) -> &str {
        &self.text[self.runs[i].0.range()]
    }

    /// Adds an item of `flow`; rows of one flow must come together.
    pub fn push(&mut self, r: &Resolver, flow: &str, item: &str) -> Result<(), LoadError> {
        let Some(&ix) = r.items.get(item) else {
            return Err(LoadError {
                id: flow.to_owned(),
                field: "data_items",
                message: format!("no data item with id '{item}'"),
            });
        };
        let same = self
            .runs
            .last()
            .is_some_and(|&(id, _)| &self.text[id.range()] == flow);
        if !same {
            let start = self.text.len() as u32;
            self.text.push_str(flow);
            let id = Span {
                start,
                len: flow.len() as u32,
            };
            let items = Span {
                start: self.items.len() as u32,
                len: 0,
            };
            self.runs.push((id, items));
        }
        self.items.push(ix);
        if let Some(last) = self.runs.last_mut() {
            last.1.len += 1;
        }
        Ok(())
    }
}

impl FlowBatch {
    /// How many flows the batch holds.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    fn text(&mut self, s: &str) -> Span {
        let start = self.text.len() as u32;
        self.text.push_str(s);
        Span {
            start,
            len: s.len() as u32,
        }
    }

    /// Gives run `i` of `runs` to the flow about to be pushed.
    pub fn take_items(&mut self, runs: &ItemRuns, i: usize) {
        self.items
            .extend_from_slice(&runs.items[runs.runs[i].1.range()]);
    }

    /// Adds a flow with the items taken since the last flow. Refuses a flow with an invalid id
    /// or a reference to nothing.
    pub fn push_flow(&mut self, r: &Resolver, f: FlowFields<'_>) -> Result<(), LoadError> {
        let fail = |field: &'static str, message: String| {
            Err(LoadError {
                id: f.id.to_owned(),
                field,
                message,
            })
        };
        if !crate::ids::is_valid_slug(f.id) {
            return fail("id", format!("'{}' is not a valid id", f.id));
        }
        let Some(&source) = r.systems.get(f.source) else {
            return fail("source", format!("no system with id '{}'", f.source));
        };
        let Some(&target) = r.systems.get(f.target) else {
            return fail("target", format!("no system with id '{}'", f.target));
        };
        let mine = &mut self.items[self.pending..];
        mine.sort_unstable();
        let kept = {
            let mut n = 0;
            for i in 0..mine.len() {
                if i == 0 || mine[i] != mine[n - 1] {
                    mine[n] = mine[i];
                    n += 1;
                }
            }
            n
        };
        self.items.truncate(self.pending + kept);
        let items = Span {
            start: self.pending as u32,
            len: kept as u32,
        };
        self.pending = self.items.len();
        let row = BatchRow {
            id: self.text(f.id),
            hash: r.hasher.hash_one(f.id),
            items,
            request: f.request.map(|q| self.text(q)),
            frequency: f.frequency.map(|q| self.text(q)),
            source,
            target,
            established_on: f.established_on.map_or(NO_DATE, |d| d.num_days_from_ce()),
            method: f.method,
            status: f.status,
        };
        self.rows.push(row);
        Ok(())
    }
}

/// Whether `store_flow` keeps the flow links current or leaves them to one rebuild at the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Links {
    Keep,
    Defer,
}

/// What `Register::put` did with a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    Added,
    Updated,
    Unchanged,
}

/// A reference from a record to one that is not in the register.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: no {noun} with id '{id}'")]
pub struct DanglingReference {
    /// The column that holds the reference, e.g. `target`.
    pub field: &'static str,
    /// What it should name: "system", "person", "data item".
    pub noun: &'static str,
    pub id: String,
}

type Ix = u32;
const NO_FREQUENCY: u32 = u32::MAX;
const NO_DATE: i32 = i32::MIN;

/// A span in one of the flow table's arenas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    start: u32,
    len: u32,
}

impl Span {
    fn range(self) -> std::ops::Range<usize> {
        self.start as usize..(self.start + self.len) as usize
    }
}

/// One flow, compactly: 36 bytes plus its share of the arenas.
#[derive(Debug, Clone, Copy)]
struct FlowRec {
    id: Span,
    items: Span,
    request: Span,
    source: Ix,
    target: Ix,
    frequency: u32,
    established_on: i32,
    method: FlowMethod,
    status: FlowStatus,
    has_request: bool,
}

#[derive(Debug, Clone, Default)]
struct FlowTable {
    recs: Vec<FlowRec>,
    /// Flow ids and request references, back to back.
    text: String,
    /// Data items of every flow, back to back, sorted within a flow.
    items: Vec<Ix>,
    /// Interned frequencies ("daily", "hourly"): a register has a handful of distinct ones.
    frequencies: Vec<Box<str>>,
    frequency_ix: HashMap<Box<str>, u32>,
    /// Flow id -> position in `recs`, hashed by the id's text in `text` (no second copy of ids).
    by_id: HashTable<Ix>,
    hasher: DefaultHashBuilder,
}

impl FlowTable {
    fn id(&self, ix: Ix) -> &str {
        &self.text[self.recs[ix as usize].id.range()]
    }

    fn find(&self, id: &str) -> Option<Ix> {
        let hash = self.hasher.hash_one(id);
        self.by_id.find(hash, |&ix| self.id(ix) == id).copied()
    }

    fn push_text(&mut self, s: &str) -> Span {
        let start = self.text.len() as u32;
        self.text.push_str(s);
        Span {
            start,
            len: s.len() as u32,
        }
    }

    fn intern_frequency(&mut self, f: &str) -> u32 {
        // A register has a handful of frequencies, and a bulk load meets runs of the same one.
        if let Some(last) = self.frequencies.last()
            && **last == *f
        {
            return self.frequencies.len() as u32 - 1;
        }
        if let Some(&ix) = self.frequency_ix.get(f) {
            return ix;
        }
        let ix = self.frequencies.len() as u32;
        self.frequencies.push(f.into());
        self.frequency_ix.insert(f.into(), ix);
        ix
    }
}

/// What [`Register::walk_downstream`] found: each system reached with its depth, in the order
/// found (by depth), and the flows that reach it there, `flows[flow_start[i]..flow_start[i + 1]]`
/// for the `i`th system.
#[derive(Debug, Clone, Default)]
pub struct Walk {
    pub(crate) reached: Vec<(Ix, u32)>,
    pub(crate) flow_start: Vec<u32>,
    pub(crate) flows: Vec<Ix>,
}

/// The whole register, indexed. Built from the store, changed only by `put`, which keeps every
/// index current.
#[derive(Debug, Clone, Default)]
pub struct Register {
    people: Vec<Person>,
    person_ix: HashMap<String, Ix>,
    systems: Vec<System>,
    system_ix: HashMap<String, Ix>,
    items: Vec<DataItem>,
    item_ix: HashMap<String, Ix>,
    /// Per data item, the position of its authoritative system.
    authoritative: Vec<Option<Ix>>,
    flows: FlowTable,
    /// Per system, the flows out of it and into it (any status).
    out_flows: Vec<Vec<Ix>>,
    in_flows: Vec<Vec<Ix>>,
    /// Per system, `(target, flow)` of each **active** flow out of it: what impact analysis
    /// walks. Reading the target beside the flow keeps the walk in two small arrays instead of
    /// a visit to each flow's record, which at a million flows is most of the cost.
    active_out: Vec<Vec<(Ix, Ix)>>,
    /// Each system's rank in id order, made when first asked for after a system is added: impact
    /// lists thousands of systems in id order, and integers sort faster than their ids.
    system_rank: std::sync::OnceLock<Vec<u32>>,
    /// Moves on with every change: what a cache of an answer about the whole register is keyed
    /// by.
    generation: u64,
    /// `(target, data item, flow)` for every active flow and each of its items, sorted.
    carrying: Vec<(Ix, Ix, Ix)>,
    /// Where each target's entries start in `carrying` (one more entry than there are systems),
    /// so a lookup searches only its target's few entries, which share a cache line or two.
    carrying_start: Vec<u32>,
}

/// A flow in the register, read through the index without copying it out.
#[derive(Debug, Clone, Copy)]
pub struct FlowRef<'a> {
    register: &'a Register,
    ix: Ix,
}

impl<'a> FlowRef<'a> {
    fn rec(&self) -> &'a FlowRec {
        &self.register.flows.recs[self.ix as usize]
    }

    pub fn id(&self) -> &'a str {
        self.register.flows.id(self.ix)
    }

    pub fn source(&self) -> &'a System {
        &self.register.systems[self.rec().source as usize]
    }

    pub fn target(&self) -> &'a System {
        &self.register.systems[self.rec().target as usize]
    }

    pub fn status(&self) -> FlowStatus {
        self.rec().status
    }

    pub fn is_active(&self) -> bool {
        self.rec().status == FlowStatus::Active
    }

    pub fn method(&self) -> FlowMethod {
        self.rec().method
    }

    /// The data items the flow carries, in id order.
    pub fn data_items(&self) -> impl ExactSizeIterator<Item = &'a DataItem> + 'a {
        let reg = self.register;
        reg.flows.items[self.rec().items.range()]
            .iter()
            .map(move |&i| &reg.items[i as usize])
    }

    pub fn carries(&self, item: &str) -> bool {
        self.data_items().any(|d| d.id.as_str() == item)
    }

    /// The whole record, rebuilt from the index.
    pub fn to_flow(&self) -> Flow {
        let r = self.rec();
        let t = &self.register.flows;
        Flow {
            // The index only ever holds ids that were parsed when the flow was put.
            id: FlowId::parse(self.id()).unwrap_or_else(|_| unreachable!("index holds parsed ids")),
            source: self.source().id.clone(),
            target: self.target().id.clone(),
            data_items: self.data_items().map(|d| d.id.clone()).collect(),
            method: r.method,
            frequency: (r.frequency != NO_FREQUENCY)
                .then(|| t.frequencies[r.frequency as usize].to_string()),
            status: r.status,
            request: r.has_request.then(|| t.text[r.request.range()].to_owned()),
            established_on: (r.established_on != NO_DATE)
                .then(|| NaiveDate::from_num_days_from_ce_opt(r.established_on))
                .flatten(),
        }
    }
}

impl Register {
    pub fn new() -> Self {
        Self::default()
    }

    // ---- lookups by id ----

    pub fn person(&self, email: &str) -> Option<&Person> {
        self.person_ix.get(email).map(|&i| &self.people[i as usize])
    }

    pub fn system(&self, id: &str) -> Option<&System> {
        self.system_ix.get(id).map(|&i| &self.systems[i as usize])
    }

    pub fn data_item(&self, id: &str) -> Option<&DataItem> {
        self.item_ix.get(id).map(|&i| &self.items[i as usize])
    }

    pub fn flow(&self, id: &str) -> Option<FlowRef<'_>> {
        self.flows.find(id).map(|ix| FlowRef { register: self, ix })
    }

    pub fn contains(&self, kind: RecordKind, id: &str) -> bool {
        match kind {
            RecordKind::Person => self.person_ix.contains_key(id),
            RecordKind::System => self.system_ix.contains_key(id),
            RecordKind::DataItem => self.item_ix.contains_key(id),
            RecordKind::Flow => self.flows.find(id).is_some(),
        }
    }

    /// Any record, as a whole record.
    pub fn get(&self, kind: RecordKind, id: &str) -> Option<Record> {
        match kind {
            RecordKind::Person => self.person(id).cloned().map(Record::Person),
            RecordKind::System => self.system(id).cloned().map(Record::System),
            RecordKind::DataItem => self.data_item(id).cloned().map(Record::DataItem),
            RecordKind::Flow => self.flow(id).map(|f| Record::Flow(f.to_flow())),
        }
    }

    // ---- the questions the principles and impact analysis ask ----

    /// Flows whose source is `system`, active or retired.
    pub fn flows_out_of(&self, system: &str) -> impl Iterator<Item = FlowRef<'_>> + '_ {
        self.adjacent(&self.out_flows, system)
    }

    /// Flows whose target is `system`, active or retired.
    pub fn flows_into(&self, system: &str) -> impl Iterator<Item = FlowRef<'_>> + '_ {
        self.adjacent(&self.in_flows, system)
    }

    fn adjacent<'a>(
        &'a self,
        lists: &'a [Vec<Ix>],
        system: &str,
    ) -> impl Iterator<Item = FlowRef<'a>> + 'a {
        let list: &[Ix] = match self.system_ix.get(system) {
            Some(&s) => &lists[s as usize],
            None => &[],
        };
        list.iter().map(move |&ix| FlowRef { register: self, ix })
    }

    /// Breadth-first over active flows from `start`: each system reached, once, at its least depth
    /// (at most `max_depth`), with the flows that reach it there; `first_hop` chooses which of
    /// `start`'s own flows to follow. `None` when `start` is not a system.
    ///
    /// Works on positions, not ids, and writes its answer compactly (a list of systems and one
    /// array of flows with a start per system): a million-flow register's hub reaches thousands of
    /// systems through hundreds of thousands of flows, and sorting or copying those is what would
    /// cost. Each level takes two passes over its frontier's flows — count the flows reaching
    /// each new system, then place them — instead of collecting pairs and sorting them.
    pub fn walk_downstream<'a>(
        &'a self,
        start: &str,
        max_depth: Option<u32>,
        first_hop: impl Fn(&FlowRef<'a>) -> bool,
    ) -> Option<Walk> {
        let &start = self.system_ix.get(start)?;
        const UNSEEN: u32 = u32::MAX;
        let n = self.systems.len();
        let mut depth_of = vec![UNSEEN; n];
        depth_of[start as usize] = 0;
        // Per system: flows reaching it at its depth, then where its next flow goes.
        let mut slot = vec![0u32; n];
        let mut walk = Walk {
            reached: Vec::new(),
            flow_start: vec![0],
            flows: Vec::new(),
        };
        let mut frontier = vec![start];
        let mut next = Vec::new();
        let mut depth = 0;
        while !frontier.is_empty() && max_depth.is_none_or(|m| depth < m) {
            depth += 1;
            let follows = |f: Ix| {
                depth > 1
                    || first_hop(&FlowRef {
                        register: self,
                        ix: f,
                    })
            };
            next.clear();
            for &s in &frontier {
                for &(target, f) in &self.active_out[s as usize] {
                    let t = target as usize;
                    if depth_of[t] < depth || !follows(f) {
                        continue;
                    }
                    if depth_of[t] == UNSEEN {
                        depth_of[t] = depth;
                        slot[t] = 0;
                        next.push(target);
                    }
                    slot[t] += 1;
                }
            }
            // Where each new system's flows start, in the order the systems were found.
            let mut at = walk.flows.len() as u32;
            for &t in &next {
                let count = slot[t as usize];
                slot[t as usize] = at;
                at += count;
                walk.reached.push((t, depth));
                walk.flow_start.push(at);
            }
            if next.is_empty() {
                // Nothing new at this depth: the walk is over, and there is nothing to place.
                break;
            }
            walk.flows.resize(at as usize, 0);
            for &s in &frontier {
                for &(target, f) in &self.active_out[s as usize] {
                    let t = target as usize;
                    if depth_of[t] != depth || !follows(f) {
                        continue;
                    }
                    walk.flows[slot[t] as usize] = f;
                    slot[t] += 1;
                }
            }
            std::mem::swap(&mut frontier, &mut next);
        }
        Some(walk)
    }

    /// A system's rank in the order of system ids.
    pub(crate) fn system_rank(&self, ix: Ix) -> u32 {
        self.system_rank.get_or_init(|| {
            let mut order: Vec<Ix> = (0..self.systems.len() as Ix).collect();
            order.sort_unstable_by(|&a, &b| {
                self.systems[a as usize]
                    .id
                    .cmp(&self.systems[b as usize].id)
            });
            let mut rank = vec![0u32; order.len()];
            for (r, &s) in order.iter().enumerate() {
                rank[s as usize] = r as u32;
            }
            rank
        })[ix as usize]
    }

    /// Changes with every change to the register (not a count of them).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// A system by its position.
    pub(crate) fn system_at(&self, ix: Ix) -> &System {
        &self.systems[ix as usize]
    }

    /// A flow by its position.
    pub(crate) fn flow_at(&self, ix: Ix) -> FlowRef<'_> {
        FlowRef { register: self, ix }
    }

    /// The active flows into `target` that carry `item`: does `target` already hold a copy of it?
    /// (Principle 2, 1.3.4: such a system cannot be a source of that item.)
    pub fn active_flows_carrying_into(
        &self,
        target: &str,
        item: &str,
    ) -> impl Iterator<Item = FlowRef<'_>> + '_ {
        let found = match (self.system_ix.get(target), self.item_ix.get(item)) {
            (Some(&t), Some(&i)) => {
                let of_target = &self.carrying[self.carrying_range(t)];
                let lo = of_target.partition_point(|&(_, ci, _)| ci < i);
                let hi = lo + of_target[lo..].partition_point(|&(_, ci, _)| ci == i);
                &of_target[lo..hi]
            }
            _ => &[],
        };
        found
            .iter()
            .map(move |&(_, _, ix)| FlowRef { register: self, ix })
    }

    /// The authoritative system of a data item (1.3.4), if the item is known and has one.
    pub fn authoritative_system(&self, item: &str) -> Option<&System> {
        let &i = self.item_ix.get(item)?;
        self.authoritative[i as usize].map(|s| &self.systems[s as usize])
    }

    // ---- whole-register iteration ----

    pub fn people(&self) -> &[Person] {
        &self.people
    }

    pub fn systems(&self) -> &[System] {
        &self.systems
    }

    pub fn data_items(&self) -> &[DataItem] {
        &self.items
    }

    pub fn flows(&self) -> impl ExactSizeIterator<Item = FlowRef<'_>> + '_ {
        (0..self.flows.recs.len() as Ix).map(move |ix| FlowRef { register: self, ix })
    }

    pub fn len(&self, kind: RecordKind) -> usize {
        match kind {
            RecordKind::Person => self.people.len(),
            RecordKind::System => self.systems.len(),
            RecordKind::DataItem => self.items.len(),
            RecordKind::Flow => self.flows.recs.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        RecordKind::ALL.iter().all(|&k| self.len(k) == 0)
    }

    /// The ids of one kind of record, sorted: the order of exports and comparisons.
    pub fn sorted_ids(&self, kind: RecordKind) -> Vec<&str> {
        let mut ids: Vec<&str> = match kind {
            RecordKind::Person => self.people.iter().map(|p| p.email.as_str()).collect(),
            RecordKind::System => self.systems.iter().map(|s| s.id.as_str()).collect(),
            RecordKind::DataItem => self.items.iter().map(|d| d.id.as_str()).collect(),
            RecordKind::Flow => (0..self.flows.recs.len() as Ix)
                .map(|i| self.flows.id(i))
                .collect(),
        };
        ids.sort_unstable();
        ids
    }

    // ---- changes ----

    /// The references `record` makes that this register cannot satisfy. `also` says whether a
    /// record of that kind and id is about to be added alongside (an import names records it adds
    /// itself).
    pub fn dangling_references(
        &self,
        record: &Record,
        also: &dyn Fn(RecordKind, &str) -> bool,
    ) -> Vec<DanglingReference> {
        let known = |kind: RecordKind, id: &str| self.contains(kind, id) || also(kind, id);
        let mut out = Vec::new();
        let mut need = |field: &'static str, kind: RecordKind, id: &str| {
            if !known(kind, id) {
                out.push(DanglingReference {
                    field,
                    noun: kind.noun(),
                    id: id.to_owned(),
                });
            }
        };
        match record {
            Record::Person(_) => {}
            Record::System(s) => {
                if let Some(owner) = &s.owner {
                    need("owner", RecordKind::Person, owner.as_str());
                }
                for a in &s.administrators {
                    need("administrators", RecordKind::Person, a.as_str());
                }
            }
            Record::DataItem(d) => {
                if let Some(a) = &d.authoritative_system {
                    need("authoritative_system", RecordKind::System, a.as_str());
                }
            }
            Record::Flow(f) => {
                need("source", RecordKind::System, f.source.as_str());
                need("target", RecordKind::System, f.target.as_str());
                for d in &f.data_items {
                    need("data_items", RecordKind::DataItem, d.as_str());
                }
            }
        }
        out
    }

    /// Adds or replaces a record, keeping every index current. Refuses, changing nothing, a
    /// record whose references are not in the register.
    pub fn put(&mut self, record: Record) -> Result<PutOutcome, DanglingReference> {
        self.generation += 1;
        if let Some(e) = self
            .dangling_references(&record, &|_, _| false)
            .into_iter()
            .next()
        {
            return Err(e);
        }
        Ok(match record {
            Record::Person(p) => put_simple(
                &mut self.people,
                &mut self.person_ix,
                p.email.to_string(),
                p,
            ),
            Record::System(s) => {
                let outcome =
                    put_simple(&mut self.systems, &mut self.system_ix, s.id.to_string(), s);
                if outcome == PutOutcome::Added {
                    self.system_rank = std::sync::OnceLock::new();
                    self.out_flows.push(Vec::new());
                    self.in_flows.push(Vec::new());
                    self.active_out.push(Vec::new());
                    // The newest system has the highest position: its range is empty, at the end.
                    if self.carrying_start.is_empty() {
                        self.carrying_start.push(0);
                    }
                    self.carrying_start.push(self.carrying.len() as u32);
                }
                outcome
            }
            Record::DataItem(d) => {
                let authority = d
                    .authoritative_system
                    .as_ref()
                    .and_then(|a| self.system_ix.get(a.as_str()).copied());
                let d_id = d.id.clone();
                let outcome = put_simple(&mut self.items, &mut self.item_ix, d.id.to_string(), d);
                match self.item_ix.get(d_id.as_str()) {
                    Some(&i) if (i as usize) < self.authoritative.len() => {
                        self.authoritative[i as usize] = authority
                    }
                    _ => self.authoritative.push(authority),
                }
                outcome
            }
            Record::Flow(f) => self.put_flow(f),
        })
    }

    fn put_flow(&mut self, f: Flow) -> PutOutcome {
        self.store_flow(f, Links::Keep).1
    }

    /// Writes a flow into the flow table, replacing any flow with the same id, and either keeps
    /// the adjacency lists and the carrying table current or leaves them for
    /// [`Register::rebuild_links`].
    fn store_flow(&mut self, f: Flow, links: Links) -> (Ix, PutOutcome) {
        let existing = self.flows.find(f.id.as_str());
        if let Some(ix) = existing {
            if (FlowRef { register: self, ix }).to_flow() == f {
                return (ix, PutOutcome::Unchanged);
            }
            if links == Links::Keep {
                self.unlink_flow(ix);
            }
        }
        // References were checked by the caller.
        let source = self.system_ix[f.source.as_str()];
        let target = self.system_ix[f.target.as_str()];
        let mut items: Vec<Ix> = f
            .data_items
            .iter()
            .map(|d| self.item_ix[d.as_str()])
            .collect();
        let ix = self.write_rec(
            existing,
            FlowFields {
                id: f.id.as_str(),
                source: f.source.as_str(),
                target: f.target.as_str(),
                method: f.method,
                frequency: f.frequency.as_deref(),
                status: f.status,
                request: f.request.as_deref(),
                established_on: f.established_on,
            },
            (source, target),
            &mut items,
        );
        if links == Links::Keep {
            self.out_flows[source as usize].push(ix);
            self.in_flows[target as usize].push(ix);
            if f.status == FlowStatus::Active {
                self.active_out[source as usize].push((target, ix));
            }
            for key in self.carrying_keys(ix) {
                let range = self.carrying_range(key.0);
                let at = range.start + self.carrying[range].partition_point(|&k| k < key);
                self.carrying.insert(at, key);
                self.shift_carrying_starts(key.0, 1);
            }
        }
        (
            ix,
            if existing.is_some() {
                PutOutcome::Updated
            } else {
                PutOutcome::Added
            },
        )
    }

    /// Writes a flow's record into the flow table (replacing `existing`), its ends and items
    /// already resolved to positions. Links are the caller's.
    fn write_rec(
        &mut self,
        existing: Option<Ix>,
        f: FlowFields<'_>,
        (source, target): (Ix, Ix),
        items: &mut Vec<Ix>,
    ) -> Ix {
        items.sort_unstable();
        items.dedup();
        let t = &mut self.flows;
        let id = match existing {
            Some(ix) => t.recs[ix as usize].id,
            None => t.push_text(f.id),
        };
        let items_span = Span {
            start: t.items.len() as u32,
            len: items.len() as u32,
        };
        t.items.extend_from_slice(items);
        let (request, has_request) = match f.request {
            Some(r) => (t.push_text(r), true),
            None => (Span { start: 0, len: 0 }, false),
        };
        let frequency = f.frequency.map_or(NO_FREQUENCY, |q| t.intern_frequency(q));
        let rec = FlowRec {
            id,
            items: items_span,
            request,
            source,
            target,
            frequency,
            established_on: f.established_on.map_or(NO_DATE, |d| d.num_days_from_ce()),
            method: f.method,
            status: f.status,
            has_request,
        };
        match existing {
            Some(ix) => {
                t.recs[ix as usize] = rec;
                ix
            }
            None => {
                let ix = t.recs.len() as Ix;
                t.recs.push(rec);
                let hash = t.hasher.hash_one(f.id);
                let (recs, text, hasher) = (&t.recs, &t.text, &t.hasher);
                t.by_id.insert_unique(hash, ix, |&i| {
                    hasher.hash_one(&text[recs[i as usize].id.range()])
                });
                ix
            }
        }
    }

    /// What a loader thread needs to resolve flows for this register: see [`FlowBatch`].
    pub fn resolver(&self) -> Resolver {
        Resolver {
            systems: self.system_ix.clone(),
            items: self.item_ix.clone(),
            hasher: self.flows.hasher,
        }
    }

    /// Adds the flows of a batch read by a bulk load. Call [`Register::finish_load`] after the
    /// last one. Ids must be unique, as the store's primary key makes them: a bulk load does not
    /// spend a lookup per flow checking.
    pub fn load_batch(&mut self, batch: &FlowBatch) {
        let t = &mut self.flows;
        for row in &batch.rows {
            let id = t.push_text(&batch.text[row.id.range()]);
            let items = Span {
                start: t.items.len() as u32,
                len: row.items.len,
            };
            t.items.extend_from_slice(&batch.items[row.items.range()]);
            let (request, has_request) = match row.request {
                Some(r) => (t.push_text(&batch.text[r.range()]), true),
                None => (Span { start: 0, len: 0 }, false),
            };
            let frequency = row
                .frequency
                .map_or(NO_FREQUENCY, |q| t.intern_frequency(&batch.text[q.range()]));
            let ix = t.recs.len() as Ix;
            t.recs.push(FlowRec {
                id,
                items,
                request,
                source: row.source,
                target: row.target,
                frequency,
                established_on: row.established_on,
                method: row.method,
                status: row.status,
                has_request,
            });
            let (recs, text, hasher) = (&t.recs, &t.text, &t.hasher);
            t.by_id.insert_unique(row.hash, ix, |&i| {
                hasher.hash_one(&text[recs[i as usize].id.range()])
            });
        }
    }

    /// Makes room for `n` more flows, so that a bulk load does not grow the tables step by step.
    pub fn reserve_flows(&mut self, n: usize) {
        let t = &mut self.flows;
        t.recs.reserve(n);
        t.items.reserve(n * 2);
        t.text.reserve(n * 10);
        let (recs, text, hasher) = (&t.recs, &t.text, &t.hasher);
        t.by_id
            .reserve(n, |&i| hasher.hash_one(&text[recs[i as usize].id.range()]));
    }

    /// Builds the links after a bulk load by [`Register::load_batch`].
    pub fn finish_load(&mut self) {
        self.generation += 1;
        self.rebuild_links();
    }

    /// The carrying-table entries of a flow: one per item, and none when it is retired.
    fn carrying_keys(&self, ix: Ix) -> impl Iterator<Item = (Ix, Ix, Ix)> + use<> {
        let r = self.flows.recs[ix as usize];
        let items: Vec<Ix> = if r.status == FlowStatus::Active {
            self.flows.items[r.items.range()].to_vec()
        } else {
            Vec::new()
        };
        items.into_iter().map(move |item| (r.target, item, ix))
    }

    fn unlink_flow(&mut self, ix: Ix) {
        let r = self.flows.recs[ix as usize];
        self.out_flows[r.source as usize].retain(|&f| f != ix);
        self.in_flows[r.target as usize].retain(|&f| f != ix);
        self.active_out[r.source as usize].retain(|&(_, f)| f != ix);
        for key in self.carrying_keys(ix) {
            let range = self.carrying_range(key.0);
            if let Ok(at) = self.carrying[range.clone()].binary_search(&key) {
                self.carrying.remove(range.start + at);
                self.shift_carrying_starts(key.0, -1);
            }
        }
    }

    fn carrying_range(&self, target: Ix) -> std::ops::Range<usize> {
        self.carrying_start[target as usize] as usize
            ..self.carrying_start[target as usize + 1] as usize
    }

    /// After an entry for `target` is inserted (+1) or removed (-1), every later target's
    /// entries start one place later or earlier.
    fn shift_carrying_starts(&mut self, target: Ix, by: i32) {
        for start in &mut self.carrying_start[target as usize + 1..] {
            *start = start.wrapping_add_signed(by);
        }
    }

    /// Builds a register from whole records: see [`Register::put_many`].
    pub fn from_records(
        records: impl IntoIterator<Item = Record>,
    ) -> Result<Register, DanglingReference> {
        let mut reg = Register::new();
        reg.put_many(records)?;
        Ok(reg)
    }

    /// Adds or replaces many records, as `put` would one by one, returning what happened to each.
    /// Each record may name records before it. When the change is large (an import, a replay of
    /// the log, a load from the store), the flow links are rebuilt once at the end in
    /// O(n log n) rather than kept sorted at every step. Stops at the first dangling reference,
    /// leaving the records before it in place.
    pub fn put_many(
        &mut self,
        records: impl IntoIterator<Item = Record>,
    ) -> Result<Vec<PutOutcome>, DanglingReference> {
        self.generation += 1;
        let records: Vec<Record> = records.into_iter().collect();
        let flows = records
            .iter()
            .filter(|r| matches!(r, Record::Flow(_)))
            .count();
        let bulk = flows > 1_000 && flows * 16 > self.flows.recs.len();
        if bulk {
            let t = &mut self.flows;
            t.recs.reserve(flows);
            t.items.reserve(flows * 2);
            t.text.reserve(flows * 10);
            let (recs, text, hasher) = (&t.recs, &t.text, &t.hasher);
            t.by_id.reserve(flows, |&i| {
                hasher.hash_one(&text[recs[i as usize].id.range()])
            });
        }
        let links = if bulk { Links::Defer } else { Links::Keep };
        let mut outcomes = Vec::with_capacity(records.len());
        let mut result = Ok(());
        for record in records {
            if let Some(e) = self
                .dangling_references(&record, &|_, _| false)
                .into_iter()
                .next()
            {
                result = Err(e);
                break;
            }
            outcomes.push(match record {
                Record::Flow(f) => self.store_flow(f, links).1,
                other => self.put(other)?,
            });
        }
        if bulk {
            self.rebuild_links();
        }
        result.map(|()| outcomes)
    }

    /// Rebuilds the adjacency lists and the carrying table from the flow table.
    fn rebuild_links(&mut self) {
        for l in self.out_flows.iter_mut().chain(self.in_flows.iter_mut()) {
            l.clear();
        }
        for l in &mut self.active_out {
            l.clear();
        }
        for ix in 0..self.flows.recs.len() as Ix {
            let r = self.flows.recs[ix as usize];
            self.out_flows[r.source as usize].push(ix);
            self.in_flows[r.target as usize].push(ix);
            if r.status == FlowStatus::Active {
                self.active_out[r.source as usize].push((r.target, ix));
            }
        }
        // Bucketed by target (a counting sort: two passes, where sorting a million entries
        // whole took a tenth of a second), then each target's few entries sorted.
        let mut starts = vec![0u32; self.systems.len() + 1];
        for ix in 0..self.flows.recs.len() as Ix {
            let r = self.flows.recs[ix as usize];
            if r.status == FlowStatus::Active {
                starts[r.target as usize + 1] += r.items.len;
            }
        }
        for i in 1..starts.len() {
            starts[i] += starts[i - 1];
        }
        let mut next = starts.clone();
        let mut carrying = vec![(0, 0, 0); starts[starts.len() - 1] as usize];
        for ix in 0..self.flows.recs.len() as Ix {
            let r = self.flows.recs[ix as usize];
            if r.status == FlowStatus::Active {
                for &item in &self.flows.items[r.items.range()] {
                    let at = &mut next[r.target as usize];
                    carrying[*at as usize] = (r.target, item, ix);
                    *at += 1;
                }
            }
        }
        for t in 0..self.systems.len() {
            carrying[starts[t] as usize..starts[t + 1] as usize].sort_unstable();
        }
        self.carrying = carrying;
        self.carrying_start = starts;
        self.shrink();
    }

    /// Gives back the slack that growing vectors leave: the index is built once and read often.
    fn shrink(&mut self) {
        self.carrying.shrink_to_fit();
        self.flows.recs.shrink_to_fit();
        self.flows.items.shrink_to_fit();
        self.flows.text.shrink_to_fit();
        for l in self.out_flows.iter_mut().chain(self.in_flows.iter_mut()) {
            l.shrink_to_fit();
        }
        for l in &mut self.active_out {
            l.shrink_to_fit();
        }
    }

    /// The first record, in kind then id order, that differs between two registers, with both
    /// sides (`None` where one register lacks it). `audit verify` uses it to compare the tables
    /// with the replayed log.
    pub fn first_difference(
        &self,
        other: &Register,
    ) -> Option<(RecordKind, String, Option<Record>, Option<Record>)> {
        for kind in RecordKind::ALL {
            let (mut a, mut b) = (
                self.sorted_ids(kind).into_iter().peekable(),
                other.sorted_ids(kind).into_iter().peekable(),
            );
            loop {
                let id = match (a.peek(), b.peek()) {
                    (None, None) => break,
                    (Some(x), Some(y)) => {
                        if x < y {
                            *x
                        } else {
                            *y
                        }
                    }
                    (Some(x), None) => *x,
                    (None, Some(y)) => *y,
                };
                let left = if a.peek() == Some(&id) {
                    a.next().and_then(|i| self.get(kind, i))
                } else {
                    None
                };
                let right = if b.peek() == Some(&id) {
                    b.next().and_then(|i| other.get(kind, i))
                } else {
                    None
                };
                if left != right {
                    return Some((kind, id.to_owned(), left, right));
                }
            }
        }
        None
    }

    /// Bytes held by the flow part of the index, for the benchmark's bytes-per-flow figure.
    pub fn flow_index_bytes(&self) -> usize {
        use std::mem::size_of;
        let t = &self.flows;
        t.recs.capacity() * size_of::<FlowRec>()
            + t.text.capacity()
            + t.items.capacity() * size_of::<Ix>()
            + t.by_id.capacity() * (size_of::<Ix>() + 1)
            + self.carrying.capacity() * size_of::<(Ix, Ix, Ix)>()
            + self
                .out_flows
                .iter()
                .chain(&self.in_flows)
                .map(|l| l.capacity() * size_of::<Ix>() + size_of::<Vec<Ix>>())
                .sum::<usize>()
            + self
                .active_out
                .iter()
                .map(|l| l.capacity() * size_of::<(Ix, Ix)>() + size_of::<Vec<(Ix, Ix)>>())
                .sum::<usize>()
    }
}

fn put_simple<T: PartialEq>(
    list: &mut Vec<T>,
    ix: &mut HashMap<String, Ix>,
    id: String,
    record: T,
) -> PutOutcome {
    match ix.get(&id) {
        Some(&i) if list[i as usize] == record => PutOutcome::Unchanged,
        Some(&i) => {
            list[i as usize] = record;
            PutOutcome::Updated
        }
        None => {
            ix.insert(id, list.len() as Ix);
            list.push(record);
            PutOutcome::Added
        }
    }
}
