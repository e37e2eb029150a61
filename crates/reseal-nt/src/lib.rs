//! Windows building blocks shared by the reseal crates and its chores, in pure Rust: nothing
//! here links a C library, so `xtask` can use it on a machine that has only Rust.
//!
//! - [`sid`]: security identifiers, as text and in binary form.
//! - [`evtx`]: event log files, the parts reseal writes and the record count it reports.
//! - [`security_descriptor`]: self-relative security descriptors, and the one a new file or
//!   directory inherits from its parent's.
#![forbid(unsafe_code)]

pub mod evtx;
pub mod security_descriptor;
pub mod sid;
pub mod upcase;

pub use sid::{Sid, SidError};
