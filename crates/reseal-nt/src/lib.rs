//! Windows building blocks shared by the reseal crates and its chores, in pure Rust: nothing
//! here links a C library, so `xtask` can use it on a machine that has only Rust.
//!
//! - [`sid`]: security identifiers, as text and in binary form.
//! - [`domain_swap`]: one account-domain SID replaced by another in SIDs, descriptors, bytes
//!   and text.
//! - [`evtx`]: event log files, the parts reseal writes and the record count it reports.
//! - [`security_descriptor`]: self-relative security descriptors, and the one a new file or
//!   directory inherits from its parent's.
//! - [`upcase`]: Windows' upper-casing of names.
//! - [`filetime`]: FILETIME time stamps and their conversion from and to Unix time.
//! - [`guid`]: GUIDs in Windows' byte layout, their text forms, random ones.
//! - [`hex`]: bytes as hexadecimal text and back.
//! - [`le`]: little-endian integers read from byte buffers, bounds checked.
//! - [`utf16`]: UTF-16LE text from and to bytes.
#![forbid(unsafe_code)]

pub mod domain_swap;
pub mod entropy;
pub mod evtx;
pub mod filetime;
pub mod guid;
pub mod hex;
pub mod le;
pub mod security_descriptor;
pub mod sid;
pub mod upcase;
pub mod utf16;

pub use entropy::Entropy;
pub use filetime::FileTime;
pub use guid::{Guid, GuidError};
pub use sid::{Sid, SidError};
