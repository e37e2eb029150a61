//! Amazon's launch agents: EC2Launch v2 is reset as `ec2launch reset --clean` resets it; EC2Launch
//! v1 and EC2Config are reported.
//!
//! What EC2Launch v2 does (AWS, "EC2Launch v2 settings": directory structure, `reset`, `status`,
//! the `sysprep` task): its data is in `%ProgramData%\Amazon\EC2Launch`. `state\.run-once` records
//! that the agent has run since Sysprep, so tasks of frequency `once` (the administrator
//! password, user data marked once...) are skipped; `state\state.json` and
//! `state\previous-state.json` hold each task's status. `ec2launch reset` deletes `.run-once`,
//! and leaves the agent with no record of its last run (`status` exit code 5: both state files
//! gone); `--clean` also cleans the instance logs in `log\`. The `sysprep` task resets the same
//! state before it runs Sysprep.
//!
//! What reseal does: deletes those three state files and empties `log\` (the folder stays, the
//! agent writes there). The configuration (`config\agent-config.yml`) stays as set.
//!
//! EC2Launch v1 and EC2Config are armed for the next boot by running their own scripts and
//! settings programs (`InitializeInstance.ps1 -Schedule` registers a scheduled task; EC2Config's
//! settings), which reseal does not reproduce offline: the plan says so.

use crate::error::Result;
use crate::providers::cloud_agents::CloudAgent;
use crate::providers::support::{empty_directory, join};
use crate::providers::{PlanContext, Provider};

const NAME: &str = "ec2launch";
const SOURCE_STATE: &str = "AWS EC2Launch v2 settings: `ec2launch reset` deletes \
     state\\.run-once; after it state.json and previous-state.json are gone (`status` exit 5) [D]";
const SOURCE_LOGS: &str =
    "AWS EC2Launch v2 settings: `ec2launch reset --clean` cleans the instance logs in log\\ [D]";

/// EC2Launch v2's binaries.
pub(crate) const V2_INSTALL_FOLDER: &str = r"Program Files\Amazon\EC2Launch";
/// EC2Launch v2's configuration, state and logs.
const V2_DATA: &str = r"ProgramData\Amazon\EC2Launch";
/// EC2Launch v1's scripts, configuration and logs.
pub(crate) const V1_FOLDER: &str = r"ProgramData\Amazon\EC2-Windows\Launch";
/// EC2Config's service folder.
pub(crate) const EC2CONFIG_FOLDER: &str = r"Program Files\Amazon\Ec2ConfigService";

/// The state files `ec2launch reset` removes, below the data folder.
const V2_STATE_FILES: [&str; 3] = [
    r"state\.run-once",
    r"state\state.json",
    r"state\previous-state.json",
];

/// Resets EC2Launch v2; reports EC2Launch v1 and EC2Config.
pub struct Ec2Launch;

impl Provider for Ec2Launch {
    fn name(&self) -> &'static str {
        NAME
    }

    fn plan(&self, ctx: &mut PlanContext<'_, '_>) -> Result<()> {
        if CloudAgent::Ec2LaunchV2.is_installed(ctx.image)? {
            let mut state = ctx.source(SOURCE_STATE);
            for file in V2_STATE_FILES {
                state.delete_file(&join(V2_DATA, file))?;
            }
            let mut logs = ctx.source(SOURCE_LOGS);
            empty_directory(&mut logs, &join(V2_DATA, "log"))?;
            ctx.note(
                "EC2Launch v2 is reset as `ec2launch reset --clean` resets it: its tasks of \
                 frequency once (administrator password, user data...) run again on the clone's \
                 first boot. Its `sysprep` task would also write its own answer file and disable \
                 RDP, which reseal does not do",
            );
        }
        if CloudAgent::Ec2LaunchV1.is_installed(ctx.image)? {
            ctx.note(
                "EC2Launch v1 is installed: it runs on a clone's first boot only when \
                 InitializeInstance.ps1 -Schedule ran before capture (a scheduled task), which \
                 reseal cannot do offline; run it before reseal, or use EC2Launch v2",
            );
        }
        if CloudAgent::Ec2Config.is_installed(ctx.image)? {
            ctx.note(
                "EC2Config is installed: its per-instance settings (Ec2SetPassword and the other \
                 plugin states in its config.xml) are reset by its own Sysprep bundling, which \
                 reseal does not reproduce; set them in EC2Config before reseal",
            );
        }
        Ok(())
    }
}
