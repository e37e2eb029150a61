//! The journal: how a run survives a crash.
//!
//! Before the first change, every new file content (hives included) is staged in
//! `reseal-journal\` at the image root with a manifest, all made durable, then a `COMMITTED` marker
//! is written. Then each file is replaced atomically and the journal is removed. A later run that
//! finds a journal rolls forward when it is committed and rolls back (deletes it) otherwise.

use crate::error::Result;
use crate::target::Target;

/// The journal folder at the image root.
pub const JOURNAL_DIR: &str = "reseal-journal";

/// What [`recover`] did with a journal it found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case", tag = "outcome")]
pub enum RecoveryOutcome {
    /// The journal was committed: its changes were finished.
    RolledForward {
        /// The files the journal wrote or deleted.
        files: Vec<String>,
    },
    /// The journal was not committed: nothing had been applied; it was deleted.
    RolledBack,
}

/// Finishes or discards an interrupted run's journal; `None` when there is none.
pub fn recover(target: &mut dyn Target) -> Result<Option<RecoveryOutcome>> {
    let _ = target;
    todo!()
}
