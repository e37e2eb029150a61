//! `reseal-hive`: a Windows registry hive (regf) engine.
//!
//! It reads hives as Windows writes them (format versions 1.3 to 1.6), replays their transaction
//! logs with Windows' rules, edits them in place (untouched cells stay byte-identical) and commits
//! them so that no stale log can ever be replayed over the result.
//!
//! The modules follow the on-disk structures, as in msuhanov's regf specification:
//! [`base_block`] (the 4096-byte file header), `hbin` (hive bins), `cell`, `key_node` (nk),
//! `key_value` (vk; a key's value list and where value data lives), `subkey_list` (lf/lh/li/ri;
//! reading, searching and updating a key's subkey index), `key_security` (sk; reference counts),
//! `big_data` (db) and [`log`] (LOG1/LOG2 replay); beside them `name` (name encodings, case
//! folding, hashes), `alloc` (the cell allocator) and `check` ([`Hive::check`], a structure report).
//! [`Hive`] is the entry point: `hive` opens it and finds keys by path, `edit` changes keys and
//! values, `subtree` frees a deleted key's cells, `commit` seals the edits, `file` reads a
//! hive file with its logs; `key` and `value` hold the read views [`Key`] and [`Value`].
//! [`data`] has the value types and data encodings, [`reg_file`] regedit's .reg text.
#![forbid(unsafe_code)]

mod alloc;
pub mod base_block;
mod big_data;
mod cell;
mod check;
mod commit;
pub mod data;
mod edit;
mod error;
mod file;
mod hbin;
mod hive;
mod key;
mod key_node;
mod key_security;
mod key_value;
pub mod log;
mod name;
pub mod reg_file;
mod search;
mod subkey_list;
mod subtree;
mod value;

pub use check::CheckReport;
pub use data::ValueType;
pub use error::{Error, Result};
pub use file::{log_files_beside, MAX_FILE_SIZE};
pub use hive::Hive;
pub use key::Key;
pub use key_security::SecurityRecord;
pub use search::KeyFilter;
pub use value::Value;
