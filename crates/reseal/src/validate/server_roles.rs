//! `unsupported-server-role`: server roles Microsoft lists as not supporting Sysprep
//! (MS-ROLES, "Sysprep Support for Server Roles"; sysprep-effects §7).
//!
//! A domain controller is recognized by `Control\ProductOptions\ProductType` `LanmanNt` (the
//! product type Windows reports for a domain controller), or by the directory database the NTDS
//! service names (`Services\NTDS\Parameters\DSA Database file`). The other roles are recognized
//! on a server (`ProductType` `ServerNT`) by the service each installs; roles with no service of
//! their own, or whose unsupported state cannot be read offline (Windows Deployment Services is
//! unsupported only while initialized), are not checked.

use crate::error::Result;
use crate::image::{Image, SYSTEM};

/// The first build on which the DHCP Server role is unsupported (Windows Server 2008 R2).
const DHCP_UNSUPPORTED_FROM_BUILD: u32 = 7600;

/// Unsupported roles recognized by their service: (service key name, role, first build).
const ROLE_SERVICES: [(&str, &str, u32); 5] = [
    ("CertSvc", "Active Directory Certificate Services", 0),
    ("adfssrv", "Active Directory Federation Services", 0),
    ("DHCPServer", "DHCP Server", DHCP_UNSUPPORTED_FROM_BUILD),
    ("IAS", "Network Policy and Access Services", 0),
    ("WsusService", "Windows Server Update Services", 0),
];

/// The service name prefix of an Active Directory Lightweight Directory Services instance.
const AD_LDS_PREFIX: &str = "ADAM_";

pub(super) fn unsupported_server_role(image: &mut Image) -> Result<Option<String>> {
    if image.hive(SYSTEM)?.is_none() {
        return Ok(None);
    }
    let control_set = image.control_set()?;
    let services = format!(r"{control_set}\Services");
    let product_options = format!(r"{control_set}\Control\ProductOptions");
    let product_type = image
        .string_value(SYSTEM, &product_options, "ProductType")?
        .unwrap_or_default();
    let mut roles = Vec::new();

    let directory_database = image.string_value(
        SYSTEM,
        &format!(r"{services}\NTDS\Parameters"),
        "DSA Database file",
    )?;
    if product_type.eq_ignore_ascii_case("LanmanNt") {
        roles.push(format!(
            r"Active Directory Domain Services (a domain controller: {product_options}\ProductType is {product_type})"
        ));
    } else if let Some(database) = directory_database.filter(|d| !d.is_empty()) {
        roles.push(format!(
            r"Active Directory Domain Services (a domain controller: {services}\NTDS\Parameters names the directory database {database})"
        ));
    }

    if product_type.eq_ignore_ascii_case("ServerNT") {
        let build = super::build_number(image)?;
        let installed = image.subkey_names(SYSTEM, &services)?;
        for (service, role, first_build) in ROLE_SERVICES {
            let applies = build.is_none_or(|b| b >= first_build);
            if applies && installed.iter().any(|s| s.eq_ignore_ascii_case(service)) {
                roles.push(format!(r"{role} (service {services}\{service})"));
            }
        }
        let instances: Vec<&String> = installed
            .iter()
            .filter(|s| {
                s.len() > AD_LDS_PREFIX.len()
                    && s.get(..AD_LDS_PREFIX.len())
                        .is_some_and(|p| p.eq_ignore_ascii_case(AD_LDS_PREFIX))
            })
            .collect();
        if !instances.is_empty() {
            let names: Vec<&str> = instances.iter().map(|s| s.as_str()).collect();
            roles.push(format!(
                "Active Directory Lightweight Directory Services (instances {})",
                names.join(", ")
            ));
        }
    }

    Ok((!roles.is_empty()).then(|| {
        format!(
            "the image holds server roles that do not support Sysprep: {}; remove them before \
             imaging and add them on each clone after deployment",
            roles.join("; ")
        )
    }))
}
