//! [`apply`]: carries out a [`Plan`] all-or-nothing, through the journal.

use crate::error::Result;
use crate::plan::Plan;
use crate::target::Target;

/// What [`apply`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ApplyReport {
    /// Hives committed and written (their logs emptied).
    pub hives_written: Vec<String>,
    /// Files written (created or replaced).
    pub files_written: Vec<String>,
    /// Files deleted.
    pub files_deleted: Vec<String>,
    /// Directories deleted.
    pub directories_deleted: Vec<String>,
}

/// Applies `plan` to `target`: all changes or none.
pub fn apply(target: &mut dyn Target, plan: &Plan) -> Result<ApplyReport> {
    let _ = (target, plan);
    todo!()
}
