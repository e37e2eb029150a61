//! Cloud provisioning agents: finding them in an image, and one provider per agent that resets
//! its per-instance state the way the agent's own documentation prescribes before an image is
//! captured, so each clone provisions itself afresh.
//!
//! An agent is installed when its service key (`ControlSet00N\Services\NAME`) or its install
//! folder is in the image. docs/providers.md gives each provider's sources.

pub mod azure_guest_agent;
pub mod cloudbase_init;
pub mod ec2launch;

use crate::error::Result;
use crate::image::{Image, SYSTEM};
use crate::providers::support::control_set_key;

/// A cloud provisioning agent reseal knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloudAgent {
    /// Cloudbase-Init (OpenStack, MAAS, and other clouds' metadata).
    CloudbaseInit,
    /// Amazon EC2Launch v2 (Windows Server 2022 and later AMIs, and newer ones of older versions).
    Ec2LaunchV2,
    /// Amazon EC2Launch v1 (Windows Server 2016 and 2019 AMIs): PowerShell scripts.
    Ec2LaunchV1,
    /// Amazon EC2Config (AMIs before Windows Server 2016).
    Ec2Config,
    /// The Azure Windows guest agent (`WindowsAzureGuestAgent`, `RdAgent`).
    AzureGuestAgent,
}

impl CloudAgent {
    /// Every agent, in the order inspect lists them.
    pub const ALL: [CloudAgent; 5] = [
        CloudAgent::CloudbaseInit,
        CloudAgent::Ec2LaunchV2,
        CloudAgent::Ec2LaunchV1,
        CloudAgent::Ec2Config,
        CloudAgent::AzureGuestAgent,
    ];

    /// The agent's name, as inspect reports it.
    pub fn name(self) -> &'static str {
        match self {
            CloudAgent::CloudbaseInit => "cloudbase-init",
            CloudAgent::Ec2LaunchV2 => "ec2launch-v2",
            CloudAgent::Ec2LaunchV1 => "ec2launch-v1",
            CloudAgent::Ec2Config => "ec2config",
            CloudAgent::AzureGuestAgent => "azure-guest-agent",
        }
    }

    /// The names of the services that show the agent is installed.
    fn services(self) -> &'static [&'static str] {
        match self {
            CloudAgent::CloudbaseInit => &["cloudbase-init"],
            CloudAgent::Ec2LaunchV2 => &["EC2Launch"],
            // EC2Launch v1 runs as scheduled tasks, not as a service.
            CloudAgent::Ec2LaunchV1 => &[],
            CloudAgent::Ec2Config => &["Ec2Config"],
            CloudAgent::AzureGuestAgent => &["WindowsAzureGuestAgent", "RdAgent"],
        }
    }

    /// The install folders that show the agent is installed.
    fn folders(self) -> &'static [&'static str] {
        match self {
            CloudAgent::CloudbaseInit => &[
                cloudbase_init::INSTALL_FOLDER,
                cloudbase_init::INSTALL_FOLDER_X86,
            ],
            CloudAgent::Ec2LaunchV2 => &[ec2launch::V2_INSTALL_FOLDER],
            CloudAgent::Ec2LaunchV1 => &[ec2launch::V1_FOLDER],
            CloudAgent::Ec2Config => &[ec2launch::EC2CONFIG_FOLDER],
            CloudAgent::AzureGuestAgent => &[azure_guest_agent::FOLDER],
        }
    }

    /// `true` when the agent's service key or install folder is in the image.
    pub fn is_installed(self, image: &mut Image) -> Result<bool> {
        for service in self.services() {
            let key = control_set_key(image, &format!(r"Services\{service}"))?;
            if image.key_exists(SYSTEM, &key)? {
                return Ok(true);
            }
        }
        for folder in self.folders() {
            if image.exists(folder)? {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

/// The cloud agents installed in the image.
pub fn installed_agents(image: &mut Image) -> Result<Vec<CloudAgent>> {
    let mut found = Vec::new();
    for agent in CloudAgent::ALL {
        if agent.is_installed(image)? {
            found.push(agent);
        }
    }
    Ok(found)
}
