//! Event logs: every channel file emptied.
//!
//! What Sysprep does (sysprep-effects §4): `/generalize` deletes the event logs [D:
//! MS-SYSPREP-CLI]; the work is done by Cleanup.xml's `wevtapi.dll!EvtIntSysprepCleanup` (order
//! 0x400), which clears the channels through the event-log service, so the files stay where their
//! channel configuration points [O: CLEAN-XML, ITTRIP]. Cleanup.xml runs on every Sysprep run.
//!
//! What reseal does: every `Windows\System32\winevt\Logs\*.evtx` is replaced by a valid empty log
//! (`crate::evtx::empty_log`: file header plus one empty chunk, checksums computed, next record 1),
//! which is what a cleared channel looks like. Replacing rather than deleting keeps each file's name,
//! permissions and other metadata, and does not rely on Windows recreating missing channel files
//! (which §4 can only infer).

use crate::error::Result;
use crate::providers::support::join;
use crate::providers::{PlanContext, Provider};

const NAME: &str = "event-logs";
const SOURCE: &str =
    "Cleanup.xml 17134 EventLog EvtIntSysprepCleanup [O]; sysprep-effects §4 [D] (MS-SYSPREP-CLI)";

/// The event log directory.
pub const LOGS_DIR: &str = r"Windows\System32\winevt\Logs";

/// Empties every event log.
pub struct EventLogs;

impl Provider for EventLogs {
    fn name(&self) -> &'static str {
        NAME
    }

    fn plan(&self, ctx: &mut PlanContext<'_, '_>) -> Result<()> {
        let Some(entries) = ctx.image.list_dir(LOGS_DIR)? else {
            ctx.note(format!("{LOGS_DIR} does not exist: no event logs to clear"));
            return Ok(());
        };
        let empty = crate::evtx::empty_log();
        let mut logs = ctx.source(SOURCE);
        for entry in entries {
            if entry.is_dir || !entry.name.to_ascii_lowercase().ends_with(".evtx") {
                continue;
            }
            let path = join(LOGS_DIR, &entry.name);
            logs.write_file(&path, &empty, false)?;
        }
        Ok(())
    }
}
