//! The domain of Flowgate, in the words of DPA CoP 06 ("Internal Sharing and Integration").
//!
//! Pure: nothing here does I/O or reads the clock. Time arrives as a parameter (`now`, `as_of`),
//! so every rule is a function that a unit test, a property test and a benchmark call directly.

pub mod audit;
pub mod ids;
pub mod impact;
pub mod notice;
pub mod notify;
pub mod policy;
pub mod register;
pub mod workflow;

pub use ids::{DataItemId, Email, FlowId, IdError, NoticeId, RequestId, SystemId};
