//! Leftovers of the reference machine: setup logs, cached answer files, prefetch traces, error
//! reports and crash dumps.
//!
//! What Sysprep does (sysprep-effects §6.3, §6.9, §6.10, §8 items 4 and 10):
//! - Panther logs: the reference machine's `%WINDIR%\Panther\*.log`, `UnattendGC\` and
//!   `diag*.xml` stay unless deleted; an offline generalizer may delete them [D locations; I cleanup].
//! - Cached answer files: Setup keeps an annotated copy in `%WINDIR%\Panther\`; stale copies
//!   (`Panther\unattend.xml`, `Panther\Unattend\`, `System32\Sysprep\unattend.xml`) would feed
//!   the next boot old settings, so they are removed [D: MS-AUTOMATION search order; §6.9].
//! - Prefetch: Cleanup.xml's `sysmain.dll!PfSvSysprepCleanup` (0x600) removes `*.pf`,
//!   `Layout.ini` and the `*.db` files [O/I].
//! - WER: Cleanup.xml's `wer.dll!WerSysprepCleanup` (0xA00) empties the report queues [I].
//! - Crash dumps: no source shows Sysprep deleting them [?]; safe to delete [I].
//!
//! What reseal does: deletes those files, but for its own record of earlier runs
//! (`Panther\reseal.log`, [`crate::run_record`]); the WER, Minidump and LiveKernelReports directories
//! are emptied but kept, since their owners expect them. `Windows\Panther\unattend.xml` is left to
//! the answer-file provider when it writes a new one there, so the plan holds one write of that
//! file instead of a delete followed by a write.

use crate::error::Result;
use crate::plan::wildcard_match;
use crate::providers::answer_file::writes_answer_file;
use crate::providers::support::{empty_directory, join};
use crate::providers::{PlanContext, Provider};
use crate::run_record;
use crate::targets::split_parent;

const NAME: &str = "leftovers";
const SOURCE_PANTHER: &str = "sysprep-effects §6.10 Panther logs [D locations; I cleanup]";
const SOURCE_ANSWER: &str =
    "sysprep-effects §6.9/§8 item 4 stale cached answer files [D] (MS-AUTOMATION)";
const SOURCE_PREFETCH: &str =
    "Cleanup.xml 17134 sysmain.dll PfSvSysprepCleanup; sysprep-effects §6.3 0x600 [O/I]";
const SOURCE_WER: &str =
    "Cleanup.xml 17134 wer.dll WerSysprepCleanup; sysprep-effects §6.3 0xA00 [I]";
const SOURCE_DUMPS: &str = "sysprep-effects §6.10 crash dumps [?]; safe to delete [I]";

const PANTHER: &str = r"Windows\Panther";
const PREFETCH: &str = r"Windows\Prefetch";
const WER: &str = r"ProgramData\Microsoft\Windows\WER";

/// Removes the reference machine's logs, caches and dumps.
pub struct Leftovers;

impl Provider for Leftovers {
    fn name(&self) -> &'static str {
        NAME
    }

    fn plan(&self, ctx: &mut PlanContext<'_, '_>) -> Result<()> {
        let keep_cached_answer = writes_answer_file(ctx);

        let mut panther = ctx.source(SOURCE_PANTHER);
        // reseal's own record of earlier runs stays: deleting it would lose what prepared the
        // image, and make every second run plan a change.
        let (_, record) = split_parent(run_record::PATH);
        for entry in panther.image().list_dir(PANTHER)?.unwrap_or_default() {
            if !entry.is_dir
                && wildcard_match("*.log", &entry.name)
                && !entry.name.eq_ignore_ascii_case(&record)
            {
                panther.delete_file(&join(PANTHER, &entry.name))?;
            }
        }
        panther.delete_files_matching(PANTHER, "diag*.xml")?;
        panther.delete_directory(&join(PANTHER, "UnattendGC"))?;

        let mut cached_answer = ctx.source(SOURCE_ANSWER);
        // The answer-file provider overwrites the cached copy in place when it writes one.
        if !keep_cached_answer {
            cached_answer.delete_files_matching(PANTHER, "unattend.xml")?;
        }
        cached_answer.delete_directory(&join(PANTHER, "Unattend"))?;
        cached_answer.delete_files_matching(r"Windows\System32\Sysprep", "unattend.xml")?;

        let mut prefetch = ctx.source(SOURCE_PREFETCH);
        for pattern in ["*.pf", "Layout.ini", "*.db"] {
            prefetch.delete_files_matching(PREFETCH, pattern)?;
        }

        let mut wer = ctx.source(SOURCE_WER);
        for queue in ["ReportQueue", "ReportArchive", "Temp"] {
            empty_directory(&mut wer, &join(WER, queue))?;
        }

        let mut dumps = ctx.source(SOURCE_DUMPS);
        dumps.delete_file(r"Windows\MEMORY.DMP")?;
        for dir in [r"Windows\Minidump", r"Windows\LiveKernelReports"] {
            empty_directory(&mut dumps, dir)?;
        }
        Ok(())
    }
}
