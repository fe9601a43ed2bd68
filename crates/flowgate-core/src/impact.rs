//! Impact analysis (2.4, 2.5): which systems depend on a system, directly or through others, and
//! so whose owners must be told when it changes.
//!
//! Depth 1 is every system that an **active** flow from the changed system reaches; depth k+1 is
//! every system that an active flow from a system at depth k reaches, whatever it carries. Each
//! affected system appears once, at its least depth, with the flows that reach it at that depth;
//! the changed system itself never does. A breadth-first walk over the index's adjacency lists:
//! each system is expanded once, each active flow out of an affected system looked at once.

use crate::ids::DataItemId;
use crate::register::{Register, System};

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

/// The systems downstream of `changed`, sorted by depth and then id; `None` when `changed` is not
/// in the register.
pub fn downstream<'a>(
    register: &'a Register,
    changed: &str,
    options: &ImpactOptions,
) -> Option<Vec<Affected<'a>>> {
    let walked = register.walk_downstream(changed, options.max_depth, |f| {
        options.data_items.is_empty() || options.data_items.iter().any(|d| f.carries(d.as_str()))
    })?;
    let mut out: Vec<Affected<'a>> = walked
        .into_iter()
        .map(|(system, depth, flows)| {
            let mut via: Vec<&str> = flows.iter().map(|f| f.source().id.as_str()).collect();
            via.sort_unstable();
            via.dedup();
            let mut flows: Vec<&str> = flows.iter().map(|f| f.id()).collect();
            flows.sort_unstable();
            Affected {
                system,
                depth,
                flows,
                via,
            }
        })
        .collect();
    out.sort_by(|a, b| (a.depth, &a.system.id).cmp(&(b.depth, &b.system.id)));
    Some(out)
}
