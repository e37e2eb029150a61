//! The answer file the next boot reads: the user's `--unattend` file with the settings other
//! providers need, at `Windows\Panther\unattend.xml`.
//!
//! What Sysprep does (sysprep-effects §6.9): `sysprep /unattend:<file>` caches the given file for
//! the coming passes; Windows Setup finds it in `%WINDIR%\Panther\` (implicit search order, ahead
//! of `System32\Sysprep\`) [D: MS-AUTOMATION, MS-SYSPREP-CLI]; Rufus places an answer file at
//! exactly that path of an applied image and the later passes use it [O: RUFUS].
//!
//! What reseal does: runs last, after every provider has added its answer settings (the
//! specialize `ComputerName`, the first-boot rearm). It takes the user's file (every element,
//! attribute and comment kept; see `crate::answer_file`), or an empty `unattend` document, sets
//! those settings in it, and plans one write of `Windows\Panther\unattend.xml`. A file holding any
//! password is written as sensitive, so its contents are never printed. New components get the
//! image's processor architecture (`PROCESSOR_ARCHITECTURE`). With no user file and no settings,
//! nothing is written (the leftovers provider then removes any stale cached copy).

use crate::answer_file::AnswerFile;
use crate::error::Result;
use crate::providers::support::answer_file_architecture;
use crate::providers::{PlanContext, Provider};

const NAME: &str = "answer-file";
const SOURCE: &str = "sysprep-effects §6.9 answer file in %WINDIR%\\Panther [D] (MS-AUTOMATION, MS-SYSPREP-CLI); Panther\\unattend.xml [O] (RUFUS)";

/// Where the answer file goes.
pub const ANSWER_FILE: &str = r"Windows\Panther\unattend.xml";

/// Writes the merged answer file.
pub struct AnswerFileProvider;

/// Whether the answer-file provider will write [`ANSWER_FILE`] for this run, given the settings
/// planned so far (it runs last, so later providers must not add settings after this is asked).
pub fn writes_answer_file(ctx: &PlanContext<'_, '_>) -> bool {
    ctx.answer.is_some() || !ctx.plan().answer_settings.is_empty()
}

/// The user's answer file (or an empty one) with the plan's answer settings merged in.
pub fn merged_answer_file(ctx: &mut PlanContext<'_, '_>) -> Result<AnswerFile> {
    let architecture = answer_file_architecture(ctx.image)?;
    let mut answer = ctx.answer.cloned().unwrap_or_else(AnswerFile::empty);
    answer.merge(&ctx.plan().answer_settings, &architecture);
    Ok(answer)
}

impl Provider for AnswerFileProvider {
    fn name(&self) -> &'static str {
        NAME
    }

    fn plan(&self, ctx: &mut PlanContext<'_, '_>) -> Result<()> {
        if !writes_answer_file(ctx) {
            return Ok(());
        }
        let answer = merged_answer_file(ctx)?;
        let sensitive = answer.contains_passwords();
        let xml = answer.to_xml();
        ctx.source(SOURCE)
            .write_file(ANSWER_FILE, xml.as_bytes(), sensitive)
    }
}
