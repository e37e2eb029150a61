//! `appx-not-provisioned`: AppX packages installed for a user but not provisioned for all users,
//! Sysprep's most common refusal (`0x80073cf2`, sysprep-effects §7).
//!
//! Read from SOFTWARE `Microsoft\Windows\CurrentVersion\Appx\AppxAllUserStore` [O]:
//! `Applications\<full name>` are the provisioned packages, `InboxApplications\<full name>` the
//! inbox apps (tolerated by Sysprep even when not provisioned), `<user SID>\<full name>` the
//! packages registered for that user, and `EndOfLife\<user SID>\<full name>` packages being
//! removed for that user. A package full name is `Name_Version_Architecture_ResourceId_PublisherId`.
//!
//! A user's package passes when a package of the same name, version and publisher is provisioned
//! (any architecture: a user holds the x64 package of a provisioned `_neutral_~_` bundle), when
//! an inbox app has its name and publisher, when it is a resource package (it comes with its
//! main package), when its manifest (`Program Files\WindowsApps\<full name>\AppxManifest.xml`)
//! declares a framework (Sysprep tolerates those), or when it is marked end-of-life for that
//! user. The state repository database (`ProgramData\Microsoft\Windows\AppRepository\
//! StateRepository-Machine.srd`) is not read.

use std::collections::BTreeSet;

use crate::error::Result;
use crate::image::{Image, SOFTWARE};

/// SOFTWARE: the machine's AppX package store.
pub const ALL_USER_STORE: &str = r"Microsoft\Windows\CurrentVersion\Appx\AppxAllUserStore";
/// The folder of installed packages, one subfolder per full name.
const WINDOWS_APPS: &str = r"Program Files\WindowsApps";
/// How many packages the refusal names before it counts the rest.
const SHOWN: usize = 10;

/// A package full name split into its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageId {
    pub name: String,
    pub version: String,
    pub architecture: String,
    pub resource_id: String,
    pub publisher_id: String,
}

impl PackageId {
    /// Parses `Name_Version_Architecture_ResourceId_PublisherId`; `None` for anything else.
    pub fn parse(full_name: &str) -> Option<PackageId> {
        let parts: Vec<&str> = full_name.split('_').collect();
        let [name, version, architecture, resource_id, publisher_id] = parts[..] else {
            return None;
        };
        if name.is_empty() || version.is_empty() || publisher_id.is_empty() {
            return None;
        }
        Some(PackageId {
            name: name.to_ascii_lowercase(),
            version: version.to_string(),
            architecture: architecture.to_ascii_lowercase(),
            resource_id: resource_id.to_string(),
            publisher_id: publisher_id.to_ascii_lowercase(),
        })
    }

    /// A resource package (language, scale...), as opposed to a main package or a bundle (`~`).
    fn is_resource(&self) -> bool {
        !self.resource_id.is_empty() && self.resource_id != "~"
    }
}

pub(super) fn appx_not_provisioned(image: &mut Image) -> Result<Option<String>> {
    let store_keys = image.subkey_names(SOFTWARE, ALL_USER_STORE)?;
    let users: Vec<&String> = store_keys
        .iter()
        .filter(|k| k.starts_with("S-1-5-21-"))
        .collect();
    if users.is_empty() {
        return Ok(None);
    }
    let provisioned: BTreeSet<(String, String, String)> =
        parsed_subkeys(image, &format!(r"{ALL_USER_STORE}\Applications"))?
            .into_iter()
            .map(|p| (p.name, p.version, p.publisher_id))
            .collect();
    let inbox: BTreeSet<(String, String)> =
        parsed_subkeys(image, &format!(r"{ALL_USER_STORE}\InboxApplications"))?
            .into_iter()
            .map(|p| (p.name, p.publisher_id))
            .collect();

    let mut offending = Vec::new();
    for sid in users {
        let end_of_life: BTreeSet<String> = image
            .subkey_names(SOFTWARE, &format!(r"{ALL_USER_STORE}\EndOfLife\{sid}"))?
            .into_iter()
            .map(|n| n.to_ascii_lowercase())
            .collect();
        for full_name in image.subkey_names(SOFTWARE, &format!(r"{ALL_USER_STORE}\{sid}"))? {
            let Some(id) = PackageId::parse(&full_name) else {
                continue;
            };
            let tolerated = id.is_resource()
                || provisioned.contains(&(
                    id.name.clone(),
                    id.version.clone(),
                    id.publisher_id.clone(),
                ))
                || inbox.contains(&(id.name.clone(), id.publisher_id.clone()))
                || end_of_life.contains(&full_name.to_ascii_lowercase())
                || is_framework(image, &full_name);
            if !tolerated {
                offending.push(format!("{full_name} (user {sid})"));
            }
        }
    }
    if offending.is_empty() {
        return Ok(None);
    }
    let count = offending.len();
    let mut shown = offending
        .into_iter()
        .take(SHOWN)
        .collect::<Vec<_>>()
        .join(", ");
    if count > SHOWN {
        shown.push_str(&format!(" and {} more", count - SHOWN));
    }
    Ok(Some(format!(
        r"{count} AppX package(s) are installed for a user but not provisioned for all users \
         (SOFTWARE {ALL_USER_STORE}): {shown}; Sysprep stops on these with 0x80073cf2. Remove \
         each package for its user, or provision it, before generalizing"
    )))
}

/// The packages named by the subkeys of `key` (other subkeys skipped).
fn parsed_subkeys(image: &mut Image, key: &str) -> Result<Vec<PackageId>> {
    Ok(image
        .subkey_names(SOFTWARE, key)?
        .iter()
        .filter_map(|name| PackageId::parse(name))
        .collect())
}

/// Whether the installed package's manifest declares it a framework package
/// (`<Framework>true</Framework>` under `Properties`). A manifest that is missing or cannot be
/// read (a key name no file can have) is no framework's: the package is then reported, and the
/// check can be skipped.
fn is_framework(image: &mut Image, full_name: &str) -> bool {
    let manifest = format!(r"{WINDOWS_APPS}\{full_name}\AppxManifest.xml");
    match image.read_file(&manifest, crate::limits::APPX_MANIFEST) {
        Ok(Some(bytes)) => framework_declared(&String::from_utf8_lossy(&bytes)),
        _ => false,
    }
}

/// `<Framework>true</Framework>` in a manifest's text, whitespace and namespace prefixes allowed.
fn framework_declared(manifest: &str) -> bool {
    let mut rest = manifest;
    while let Some(start) = rest.find("Framework>") {
        let before = &rest[..start];
        let after = &rest[start + "Framework>".len()..];
        // An opening tag: `<Framework>` or `<prefix:Framework>`, not `</Framework>`.
        let opening = before
            .rfind('<')
            .map(|lt| {
                let tag = &before[lt + 1..];
                !tag.starts_with('/') && tag.chars().all(|c| c.is_ascii_alphanumeric() || c == ':')
            })
            .unwrap_or(false);
        if opening && after.trim_start().to_ascii_lowercase().starts_with("true") {
            return true;
        }
        rest = after;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_names_are_split_into_their_five_parts() {
        let id = PackageId::parse("Microsoft.WindowsCalculator_10.1705.1301.0_x64__8wekyb3d8bbwe")
            .unwrap();
        assert_eq!(id.name, "microsoft.windowscalculator");
        assert_eq!(id.version, "10.1705.1301.0");
        assert_eq!(id.architecture, "x64");
        assert_eq!(id.resource_id, "");
        assert_eq!(id.publisher_id, "8wekyb3d8bbwe");
        assert!(!id.is_resource());
        let bundle =
            PackageId::parse("Microsoft.WindowsCalculator_10.1705.1301.0_neutral_~_8wekyb3d8bbwe")
                .unwrap();
        assert!(!bundle.is_resource());
        let resource = PackageId::parse(
            "Microsoft.WindowsCalculator_10.1705.1301.0_neutral_split.scale-100_8wekyb3d8bbwe",
        )
        .unwrap();
        assert!(resource.is_resource());
        assert_eq!(PackageId::parse("Applications"), None);
        assert_eq!(PackageId::parse("a_b_c_d"), None);
        assert_eq!(PackageId::parse("a_b_c_d_e_f"), None);
    }

    #[test]
    fn a_framework_is_recognized_by_its_manifest() {
        assert!(framework_declared(
            "<Package><Properties>\r\n  <Framework>true</Framework></Properties></Package>"
        ));
        assert!(framework_declared(
            "<Properties><Framework> true </Framework>"
        ));
        assert!(!framework_declared(
            "<Properties><Framework>false</Framework>"
        ));
        assert!(!framework_declared(
            "<Properties><DisplayName>x</DisplayName></Properties>"
        ));
        assert!(!framework_declared("</Framework>true"));
    }
}
