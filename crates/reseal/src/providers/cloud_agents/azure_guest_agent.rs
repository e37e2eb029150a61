//! The Azure Windows guest agent: reported, not changed.
//!
//! What Azure prescribes before capturing a Windows image is Sysprep itself, with the guest agent
//! running (Azure docs, "Generalize a VM"; Azure Image Builder's Sysprep step waits for
//! `RdAgent` and `WindowsAzureGuestAgent`): the agent takes part in Sysprep through its own
//! external Sysprep provider, `VMAgentDisabler.dll`, registered under
//! `SOFTWARE\Microsoft\Windows\CurrentVersion\Setup\SysprepExternal\Generalize` (seen in
//! aks-engine's and AKS's image scripts). What that DLL changes is not documented, so reseal
//! changes nothing for the agent and says so in the plan; the agent's `C:\WindowsAzure` folder
//! and services stay as they are.

use crate::error::Result;
use crate::providers::cloud_agents::CloudAgent;
use crate::providers::{PlanContext, Provider};

const NAME: &str = "azure-guest-agent";

/// The agent's folder.
pub(crate) const FOLDER: &str = "WindowsAzure";

/// Reports the Azure guest agent.
pub struct AzureGuestAgent;

impl Provider for AzureGuestAgent {
    fn name(&self) -> &'static str {
        NAME
    }

    fn plan(&self, ctx: &mut PlanContext<'_, '_>) -> Result<()> {
        if CloudAgent::AzureGuestAgent.is_installed(ctx.image)? {
            ctx.note(
                "the Azure guest agent is installed: reseal leaves it as it is; its own \
                 generalize step (VMAgentDisabler.dll, an external Sysprep provider) cannot run \
                 offline and what it changes is not documented",
            );
        }
        Ok(())
    }
}
