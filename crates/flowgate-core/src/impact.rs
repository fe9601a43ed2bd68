//! Impact analysis (2.4, 2.5): which systems depend on a system, directly or through others, and
//! so whose owners must be told when it changes.
//!
//! Depth 1 is every system that an **active** flow from the changed system reaches; depth k+1 is
//! every system that an active flow from a system at depth k reaches, whatever it carries. Each
//! affected system appears once, at its least depth, with the flows that reach it at that depth;
//! the changed system itself never does. A breadth-first walk over the index's adjacency lists:
//! each system is expanded once, each active flow out of an affected system looked at once.

use crate::ids::DataItemId;
use crate::register::{FlowRef, Register, System, Walk};

/// What to follow.
#[derive(Debug, Clone, Default)]
pub struct ImpactOptions {
    /// Only first-hop flows carrying at least one of these (the items that change); empty: any.
    pub data_items: Vec<DataItemId>,
    /// Stop after this depth; `None`: follow every path to its end.
    pub max_depth: Option<u32>,
}

/// A system affected by a change, at its least depth, with the flows that reach it there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Affected<'a> {
    pub system: &'a System,
    pub depth: u32,
    /// Flow ids, sorted.
    pub flows: Vec<&'a str>,
    /// The systems those flows come from (at `depth - 1`), sorted and without repeats.
    pub via: Vec<&'a str>,
}

/// Everything downstream of a change, sorted by depth and then system id. Compact: the systems
/// and the flows reaching them are positions in the register until an entry is asked for, so a
/// page of a hub's impact costs the walk and that page, not the strings of every flow.
#[derive(Debug, Clone)]
pub struct Impact<'a> {
    register: &'a Register,
    walk: Walk,
    /// Indexes into the walk's systems, in the order they are listed.
    order: Vec<u32>,
}

impl<'a> Impact<'a> {
    /// How many systems are affected.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// The `i`th affected system, with its depth, without its flows.
    pub fn system(&self, i: usize) -> (&'a System, u32) {
        let (s, depth) = self.walk.reached[self.order[i] as usize];
        (self.register.system_at(s), depth)
    }

    /// How many flows reach the `i`th affected system at its depth.
    pub fn flow_count(&self, i: usize) -> usize {
        let k = self.order[i] as usize;
        (self.walk.flow_start[k + 1] - self.walk.flow_start[k]) as usize
    }

    /// The `i`th affected system, with its flows and where they come from.
    pub fn get(&self, i: usize) -> Affected<'a> {
        let k = self.order[i] as usize;
        let (system, depth) = self.system(i);
        let range = self.walk.flow_start[k] as usize..self.walk.flow_start[k + 1] as usize;
        let refs: Vec<FlowRef<'a>> = self.walk.flows[range]
            .iter()
            .map(|&f| self.register.flow_at(f))
            .collect();
        let mut via: Vec<&str> = refs.iter().map(|f| f.source().id.as_str()).collect();
        via.sort_unstable();
        via.dedup();
        let mut flows: Vec<&str> = refs.iter().map(|f| f.id()).collect();
        flows.sort_unstable();
        Affected {
            system,
            depth,
            flows,
            via,
        }
    }

    /// Every affected system with its flows, in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = Affected<'a>> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }

    /// The greatest depth reached (0 when nothing is affected).
    pub fn max_depth(&self) -> u32 {
        self.walk.reached.last().map_or(0, |r| r.1)
    }
}

/// The systems downstream of `changed`, sorted by depth and then id; `None` when `changed` is not
/// in the register.
pub fn downstream<'a>(
    register: &'a Register,
    changed: &str,
    options: &ImpactOptions,
) -> Option<Impact<'a>> {
    let walk = register.walk_downstream(changed, options.max_depth, |f| {
        options.data_items.is_empty() || options.data_items.iter().any(|d| f.carries(d.as_str()))
    })?;
    // The walk lists systems by depth already; within a depth, by id.
    let mut order: Vec<u32> = (0..walk.reached.len() as u32).collect();
    order.sort_unstable_by_key(|&k| {
        let (s, depth) = walk.reached[k as usize];
        (u64::from(depth) << 32) | u64::from(register.system_rank(s))
    });
    Some(Impact {
        register,
        walk,
        order,
    })
}
