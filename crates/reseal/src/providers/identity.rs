//! Per-machine identifiers the Generalize.xml DLL providers remove.
//!
//! What Sysprep does (sysprep-effects §6.2, §6.5, §6.7, §8 item 8):
//! - `wuaueng.dll!GeneralizeForImaging` (0x300) removes the WSUS identity, `SusClientId` and
//!   `SusClientIdValidation` under `SOFTWARE\Microsoft\Windows\CurrentVersion\WindowsUpdate`
//!   [D: MS-WSUS, JPWINSUP].
//! - `sqmapi.dll!SqmSysprepGeneralize` (0x400) deletes `SOFTWARE\Microsoft\SQMClient\MachineId`
//!   [D: JPWINSUP].
//! - `dhcpcsvc.dll!DhcpClient_Generalize` (0x1400) drops the DHCP leases and, very likely, the
//!   DHCPv6 DUID `Tcpip6\Parameters\Dhcpv6DUID` [I].
//! - `nlmsprep.dll!NetworkListManager_Generalize` (0x2100) drops the network-list profiles and
//!   signatures [I].
//! - `Cryptography\MachineGuid`: whether any build resets it is not confirmed [?]; regenerating
//!   it is probably harmless [I].
//!
//! What reseal does: deletes those values; the lease values (`DhcpIPAddress`, `Lease`,
//! `T1`...) of every `Tcpip\Parameters\Interfaces\{GUID}` (static addresses and `EnableDHCP` stay);
//! the subkeys of `NetworkList\Profiles`, `Signatures\Managed` and `Signatures\Unmanaged` (the
//! container keys stay for NlaSvc); and only with `--new-machine-guid`, a new random lower-case
//! `MachineGuid`.

use reseal_hive::data::encode_sz;
use reseal_hive::ValueType;
use reseal_nt::Guid;

use crate::error::{Error, Result};
use crate::image::{SOFTWARE, SYSTEM};
use crate::providers::support::control_set_key;
use crate::providers::{PlanContext, Provider};

const NAME: &str = "identity";
const SOURCE_WSUS: &str = "Generalize.xml 18362 WindowsUpdateClient-Core GeneralizeForImaging; sysprep-effects §6.2 0x300 [D] (MS-WSUS, JPWINSUP)";
const SOURCE_SQM: &str =
    "Generalize.xml 18362 SQMApi SqmSysprepGeneralize; sysprep-effects §6.2 0x400 [D] (JPWINSUP)";
const SOURCE_DHCP: &str = "Generalize.xml 18362 DHCP-Client-Dll DhcpClient_Generalize; sysprep-effects §6.2 0x1400, §6.5 [I]";
const SOURCE_NLA: &str = "Generalize.xml 18362 NetworkProfile NetworkListManager_Generalize; sysprep-effects §6.2 0x2100, §6.5 [I]";
const SOURCE_MACHINE_GUID: &str =
    "sysprep-effects §6.7 MachineGuid [?] (regenerated only on request) [I]";

/// The DHCP lease values of one interface: bound to the source machine's network and lease.
pub const DHCP_LEASE_VALUES: [&str; 15] = [
    "DhcpIPAddress",
    "DhcpSubnetMask",
    "DhcpSubnetMaskOpt",
    "DhcpServer",
    "DhcpDefaultGateway",
    "DhcpNameServer",
    "DhcpDomain",
    "DhcpGatewayHardware",
    "DhcpGatewayHardwareCount",
    "DhcpInterfaceOptions",
    "Lease",
    "LeaseObtainedTime",
    "LeaseTerminatesTime",
    "T1",
    "T2",
];
const NETWORK_LIST: &str = r"Microsoft\Windows NT\CurrentVersion\NetworkList";
const NETWORK_LIST_CONTAINERS: [&str; 3] =
    [r"Profiles", r"Signatures\Managed", r"Signatures\Unmanaged"];

/// Removes the machine's WSUS, SQM, DHCP and network-list identity.
pub struct Identity;

impl Provider for Identity {
    fn name(&self) -> &'static str {
        NAME
    }

    fn plan(&self, ctx: &mut PlanContext<'_, '_>) -> Result<()> {
        let windows_update = r"Microsoft\Windows\CurrentVersion\WindowsUpdate";
        let mut wsus = ctx.source(SOURCE_WSUS);
        for name in ["SusClientId", "SusClientIdValidation"] {
            wsus.delete_value(SOFTWARE, windows_update, name)?;
        }
        ctx.source(SOURCE_SQM)
            .delete_value(SOFTWARE, r"Microsoft\SQMClient", "MachineId")?;

        let mut dhcp = ctx.source(SOURCE_DHCP);
        let tcpip6 = control_set_key(dhcp.image(), r"Services\Tcpip6\Parameters")?;
        dhcp.delete_value(SYSTEM, &tcpip6, "Dhcpv6DUID")?;
        let interfaces = control_set_key(dhcp.image(), r"Services\Tcpip\Parameters\Interfaces")?;
        for interface in dhcp.image().subkey_names(SYSTEM, &interfaces)? {
            let key = format!("{interfaces}\\{interface}");
            for name in DHCP_LEASE_VALUES {
                dhcp.delete_value(SYSTEM, &key, name)?;
            }
        }

        let mut network_list = ctx.source(SOURCE_NLA);
        for container in NETWORK_LIST_CONTAINERS {
            let key = format!("{NETWORK_LIST}\\{container}");
            for entry in network_list.image().subkey_names(SOFTWARE, &key)? {
                network_list.delete_key(SOFTWARE, &format!("{key}\\{entry}"))?;
            }
        }

        if ctx.options.new_machine_guid {
            let guid = random_guid(ctx.entropy)?;
            ctx.source(SOURCE_MACHINE_GUID).set_value(
                SOFTWARE,
                r"Microsoft\Cryptography",
                "MachineGuid",
                ValueType::SZ,
                &encode_sz(&guid),
            )?;
        }
        Ok(())
    }
}

/// A random (version 4) GUID from `entropy` in the form `MachineGuid` uses: lower case, no
/// braces.
pub fn random_guid(entropy: &reseal_nt::Entropy) -> Result<String> {
    let guid = Guid::random_from(entropy).map_err(|err| Error::other(None, err.to_string()))?;
    Ok(guid.to_string())
}
