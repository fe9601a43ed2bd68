//! The Information Asset Register (IAR): its records (`model`) and the in-memory index over them
//! (`index`) that every question about the register is answered from.

mod index;
mod model;

pub use index::{
    DanglingReference, FlowBatch, FlowFields, FlowRef, ItemRuns, LoadError, PutOutcome, Register,
    Resolver, Walk,
};
pub(crate) use model::closed_enum;
pub use model::*;
