//! Activation: the rearm Sysprep does at generalize, done honestly.
//!
//! What Sysprep does (sysprep-effects §5): Generalize.xml calls `slc.dll!SLReArmWindows`
//! (Security-SPP, order 0x1B00) [O: GEN-XML], which resets the licensing state, the grace timer
//! and the KMS client machine ID (CMID) [D: MS-SLMGR, JPWINSUP]. It does nothing when
//! `SOFTWARE\Microsoft\Windows NT\CurrentVersion\SoftwareProtectionPlatform\SkipRearm` is 1, which
//! the generalize-pass answer-file setting `Microsoft-Windows-Security-SPP/SkipRearm` controls
//! [D: MS-UNATTEND-SKIPREARM].
//!
//! What reseal does: the licensing store (`spp\store`, signed and undocumented) is never edited.
//! - With `--skip-rearm`, or `SkipRearm` = 1 in the answer file's generalize pass: `SkipRearm` = 1
//!   (REG_DWORD) in the registry, as the answer-file setting leaves it [D]; licensing stays as is,
//!   and a note says that KMS clones then share the CMID until someone runs `slmgr /rearm` [D:
//!   JPWINSUP].
//! - Otherwise: the rearm is scheduled for the first boot, as the specialize-pass
//!   `Microsoft-Windows-Deployment/RunSynchronous` command `cscript //B
//!   %WINDIR%\System32\slmgr.vbs /rearm`, which consumes a rearm like real generalize [I: §5
//!   "what an offline generalizer can do"], and a note says so. If the registry already holds
//!   `SkipRearm` = 1, the note says the scheduled rearm will do nothing; the value is left as the
//!   image's owner set it.

use reseal_hive::data::encode_dword;
use reseal_hive::ValueType;

use crate::error::Result;
use crate::image::SOFTWARE;
use crate::providers::{PlanContext, Provider};

const NAME: &str = "activation";
const SOURCE_SKIP_REARM: &str = "Generalize.xml 18362 Security-SPP SLReArmWindows [O]; SkipRearm [D] (MS-UNATTEND-SKIPREARM, MS-SLMGR)";

/// The key holding `SkipRearm`.
pub const SPP_KEY: &str = r"Microsoft\Windows NT\CurrentVersion\SoftwareProtectionPlatform";
/// The first-boot rearm command.
pub const REARM_COMMAND: &str = r"cscript //B %WINDIR%\System32\slmgr.vbs /rearm";

/// Reproduces the generalize rearm without touching the licensing store.
pub struct Activation;

impl Provider for Activation {
    fn name(&self) -> &'static str {
        NAME
    }

    fn plan(&self, ctx: &mut PlanContext<'_, '_>) -> Result<()> {
        let from_answer = ctx.answer.and_then(|answer| answer.skip_rearm());
        if ctx.options.skip_rearm || from_answer == Some(1) {
            ctx.source(SOURCE_SKIP_REARM).set_value(
                SOFTWARE,
                SPP_KEY,
                "SkipRearm",
                ValueType::DWORD,
                &encode_dword(1),
            )?;
            ctx.note(
                "SkipRearm: the licensing state is left as it is (no rearm); KMS clients made \
                 from this image share one client machine ID until `slmgr /rearm` runs on each",
            );
            return Ok(());
        }
        ctx.answer_setting(
            "specialize",
            "Microsoft-Windows-Deployment",
            &["RunSynchronous", "RunSynchronousCommand", "Path"],
            REARM_COMMAND,
        );
        let already_skipping = ctx.image.dword_value(SOFTWARE, SPP_KEY, "SkipRearm")? == Some(1);
        let mut message = String::from(
            "reseal cannot rearm licensing offline (the licensing store is not edited); the rearm \
             Sysprep does at generalize is scheduled for the first boot instead (specialize \
             RunSynchronous: slmgr.vbs /rearm), which uses one of the image's rearms",
        );
        if already_skipping {
            message.push_str(
                "; the image already has SkipRearm=1, so that rearm will do nothing unless it is \
                 set to 0",
            );
        }
        ctx.note(message);
        Ok(())
    }
}
