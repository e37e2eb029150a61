//! The exact registry and file actions of Sysprep's action files, copied verbatim.
//!
//! What Sysprep does (sysprep-effects §6.1-§6.3): besides DLL entry points, `Generalize.xml` and
//! `Cleanup.xml` list plain `registryActions` (`deleteValue`, `deleteKey`, `setValue`) and
//! `fileActions` (`deleteFile` with wildcards, `deleteDirectory`) [O: GEN-XML, CLEAN-XML]. Cleanup
//! rows run on every Sysprep run, Generalize rows only with `/generalize`.
//!
//! What reseal does: applies those rows (the "R" rows of §6.2 and §6.3) to the offline hives:
//! `HKEY_LOCAL_MACHINE\SYSTEM\CurrentControlSet` on the current control set of SYSTEM (an offline
//! hive has no `CurrentControlSet` link), `HKEY_LOCAL_MACHINE\SOFTWARE` on SOFTWARE,
//! `HKEY_USERS\.DEFAULT` on DEFAULT, and `HKEY_CURRENT_USER` on the built-in Administrator's
//! `NTUSER.DAT` (the account Sysprep runs as in audit mode, §6.1 [I]; its profile is found
//! through the `S-1-5-21-...-500` ProfileList entry, else `Users\Administrator`).
//!
//! Which Generalize.xml: the rows differ by build (the three public copies are 15063, 17134 and
//! 18362). The build comes from SOFTWARE `CurrentBuildNumber`: 18362 and later get the 18362 rows
//! (the newest public copy; later builds may add rows no public copy shows, §9 question 11);
//! 17134-18361 the 17134 rows (TPM `ODUID`, the CDP files, and `CloudStore` deleted instead of
//! marked); 15063-17133 the 15063 rows. An unreadable build gets the 18362 rows and a note; a build
//! before 15063 gets no Generalize.xml rows (no public copy covers it) and a note. The Cleanup.xml
//! rows are the 17134 copy's (§6.3).

use reseal_hive::data::encode_dword;
use reseal_hive::ValueType;

use crate::error::Result;
use crate::image::{Image, DEFAULT, SOFTWARE, SYSTEM};
use crate::providers::support::windows_build;
use crate::providers::{PlanContext, Provider};

const NAME: &str = "action-files";

/// One action of an action file, with the path exactly as the file writes it.
#[derive(Debug, Clone, Copy)]
pub enum RowAction {
    DeleteValue {
        path: &'static str,
        name: &'static str,
    },
    DeleteKey {
        path: &'static str,
    },
    SetDword {
        path: &'static str,
        name: &'static str,
        value: u32,
    },
    /// `deleteFile`, whose last component may hold `*`/`?` wildcards.
    DeleteFiles {
        path: &'static str,
    },
    DeleteDirectory {
        path: &'static str,
    },
}

/// One row: the builds whose action file has it, its source and the action.
#[derive(Debug, Clone, Copy)]
pub struct Row {
    pub first_build: u32,
    pub last_build: u32,
    pub source: &'static str,
    pub action: RowAction,
}

const ANY: u32 = u32::MAX;
const OLDEST_KNOWN_BUILD: u32 = 15063;
const DEFAULT_BUILD: u32 = 18362;

const fn row(first_build: u32, last_build: u32, source: &'static str, action: RowAction) -> Row {
    Row {
        first_build,
        last_build,
        source,
        action,
    }
}

use RowAction::{DeleteDirectory, DeleteFiles, DeleteKey, DeleteValue, SetDword};

const TPM_WMI: &str = r"HKEY_LOCAL_MACHINE\SYSTEM\CurrentControlSet\Services\TPM\WMI";
const SRC_WLID: &str = "Generalize.xml 15063/17134/18362 WLIDSvc [O]";
const SRC_WWAN_UI: &str = "Generalize.xml 15063/17134/18362 WwanUI [O]";
const SRC_DIRECT_ACCESS: &str = "Generalize.xml 15063/17134/18362 DirectAccess-ConnectionFlow [O]";
const SRC_TPM: &str = "Generalize.xml 15063/17134/18362 TPM-Driver-WMI [O]";
const SRC_TPM_ODUID: &str = "Generalize.xml 17134/18362 TPM-Driver-WMI ODUID [O]";
const SRC_MBB: &str =
    "Generalize.xml 15063/17134/18362 Mobile-Broadband-Experience-Parser-Task [O]";
const SRC_SECURE_BOOT: &str = "Generalize.xml 15063/17134/18362 SecureBoot-FirmwareUpdate [O]";
const SRC_PORTABLE: &str = "Generalize.xml 15063/17134/18362 PortableWorkspaces-SysPrep [O]";
const SRC_SPACEPORT: &str = "Generalize.xml 15063/17134/18362 Spaceport [O]";
const SRC_GPIO: &str = "Generalize.xml 15063/17134/18362 GPIOButtons [O]";
const SRC_INIT_MACHINE: &str = "Generalize.xml 15063/17134/18362 CoreSystem-InitMachineConfig [O]";
const SRC_SENSE: &str = "Generalize.xml 15063/17134/18362 SenseClient-Service [O]";
const SRC_CDP: &str = "Generalize.xml 17134/18362 CDPSvc [O]";
const SRC_CLOUD_STORE_17134: &str = "Generalize.xml 17134 CloudStore [O]";
const SRC_CLOUD_STORE_18362: &str = "Generalize.xml 18362 CloudStore [O]";
const SRC_AUTOPILOT: &str = "Generalize.xml 18362 Management-Service-WinRT [O]";
const SRC_SCHEDULE: &str =
    "Cleanup.xml 17134 Task Scheduler (order 0xE00) [O] (sysprep-effects §6.3)";
const SRC_VSCACHE: &str =
    "Cleanup.xml 17134 Themes VSCache (order 0x1000) [O] (sysprep-effects §6.3)";

/// The registry and file rows of Generalize.xml (sysprep-effects §6.2 "R" rows).
#[rustfmt::skip]
pub const GENERALIZE_ROWS: &[Row] = &[
    row(15063, ANY, SRC_WLID, DeleteKey { path: r"HKEY_USERS\.DEFAULT\Software\Microsoft\IdentityCRL" }),
    row(15063, ANY, SRC_WWAN_UI, DeleteKey { path: r"HKEY_CURRENT_USER\SOFTWARE\Microsoft\Windows\CurrentVersion\MultiModeScenarios\LastKnownLocation" }),
    row(15063, ANY, SRC_DIRECT_ACCESS, DeleteKey { path: r"HKEY_CURRENT_USER\SOFTWARE\Microsoft\Windows\CurrentVersion\VAN\{7724F5B4-9A4A-4a93-AD09-B06F7AB31035}\HideDisconnectMessage" }),
    row(15063, ANY, SRC_TPM, DeleteValue { path: TPM_WMI, name: "ADBackupCommonName" }),
    row(15063, ANY, SRC_TPM, DeleteValue { path: TPM_WMI, name: "ADBackupSrkPubDigest" }),
    row(15063, ANY, SRC_TPM, DeleteValue { path: TPM_WMI, name: "LastPPIRequest" }),
    row(15063, ANY, SRC_TPM, DeleteValue { path: TPM_WMI, name: "NoPPIClear" }),
    row(15063, ANY, SRC_TPM, DeleteValue { path: TPM_WMI, name: "NoPPIProvision" }),
    row(15063, ANY, SRC_TPM, DeleteValue { path: TPM_WMI, name: "NoResourceVirtualizationOnNextReboot" }),
    row(15063, ANY, SRC_TPM, DeleteValue { path: TPM_WMI, name: "PPIVersion_Test" }),
    row(15063, ANY, SRC_TPM, DeleteValue { path: TPM_WMI, name: "WindowsAIKHash" }),
    row(15063, ANY, SRC_TPM, DeleteValue { path: TPM_WMI, name: "WindowsAIKBinding" }),
    row(15063, ANY, SRC_TPM, DeleteValue { path: TPM_WMI, name: "WindowsAIKPub" }),
    row(15063, ANY, SRC_TPM, DeleteKey { path: r"HKEY_LOCAL_MACHINE\SYSTEM\CurrentControlSet\Services\TPM\WMI\Admin" }),
    row(15063, ANY, SRC_TPM, DeleteKey { path: r"HKEY_LOCAL_MACHINE\SYSTEM\CurrentControlSet\Services\TPM\WMI\Endorsement" }),
    row(15063, ANY, SRC_TPM, DeleteKey { path: r"HKEY_LOCAL_MACHINE\SYSTEM\CurrentControlSet\Services\TPM\WMI\HealthCert" }),
    row(15063, ANY, SRC_TPM, DeleteKey { path: r"HKEY_LOCAL_MACHINE\SYSTEM\CurrentControlSet\Services\TPM\WMI\User" }),
    row(15063, ANY, SRC_TPM, DeleteKey { path: r"HKEY_LOCAL_MACHINE\SYSTEM\CurrentControlSet\Services\TPM\KeyAttestationKeys" }),
    row(15063, ANY, SRC_TPM, DeleteKey { path: r"HKEY_LOCAL_MACHINE\SYSTEM\CurrentControlSet\Services\TPM\PlatformQuoteKeys" }),
    row(17134, ANY, SRC_TPM_ODUID, DeleteKey { path: r"HKEY_LOCAL_MACHINE\SYSTEM\CurrentControlSet\Services\TPM\ODUID" }),
    row(15063, ANY, SRC_MBB, DeleteKey { path: r"HKEY_LOCAL_MACHINE\Software\Microsoft\WwanSvc\MobileBroadbandAccounts\NetworkInterfaceBindings" }),
    row(15063, ANY, SRC_SECURE_BOOT, SetDword { path: r"HKEY_LOCAL_MACHINE\System\CurrentControlSet\Control\SecureBoot", name: "AvailableUpdates", value: 0x8002 }),
    row(15063, ANY, SRC_PORTABLE, DeleteValue { path: r"HKEY_LOCAL_MACHINE\SYSTEM\CurrentControlSet\Control", name: "PortableOperatingSystem" }),
    row(15063, ANY, SRC_SPACEPORT, DeleteValue { path: r"HKEY_LOCAL_MACHINE\SYSTEM\CurrentControlSet\Services\spaceport\Parameters", name: "ControlId" }),
    row(15063, ANY, SRC_SPACEPORT, DeleteValue { path: r"HKEY_LOCAL_MACHINE\SYSTEM\CurrentControlSet\Services\spaceport\Parameters", name: "PrimordialId" }),
    row(15063, ANY, SRC_GPIO, DeleteValue { path: r"HKEY_LOCAL_MACHINE\SYSTEM\CurrentControlSet\Control\PriorityControl", name: "ConvertibleSlateMode" }),
    row(15063, ANY, SRC_INIT_MACHINE, SetDword { path: r"HKEY_LOCAL_MACHINE\System\CurrentControlSet\Control\InitialMachineConfig", name: "Sequence", value: 1 }),
    row(15063, ANY, SRC_SENSE, DeleteValue { path: r"HKEY_LOCAL_MACHINE\Software\Microsoft\Windows Advanced Threat Protection", name: "senseGuid" }),
    row(15063, ANY, SRC_SENSE, DeleteValue { path: r"HKEY_LOCAL_MACHINE\Software\Policies\Microsoft\Windows Advanced Threat Protection", name: "latency" }),
    row(15063, ANY, SRC_SENSE, DeleteValue { path: r"HKEY_LOCAL_MACHINE\Software\Policies\Microsoft\Windows Advanced Threat Protection", name: "latencyMode" }),
    row(17134, ANY, SRC_CDP, DeleteFiles { path: r"$(runtime.windows)\ServiceProfiles\LocalService\AppData\Local\ConnectedDevicesPlatform\*.sst" }),
    row(17134, ANY, SRC_CDP, DeleteFiles { path: r"$(runtime.windows)\ServiceProfiles\LocalService\AppData\Local\ConnectedDevicesPlatform\*.cdp" }),
    row(17134, 18361, SRC_CLOUD_STORE_17134, DeleteKey { path: r"HKEY_CURRENT_USER\Software\Microsoft\Windows\CurrentVersion\CloudStore" }),
    row(18362, ANY, SRC_CLOUD_STORE_18362, SetDword { path: r"HKEY_CURRENT_USER\Software\Microsoft\Windows\CurrentVersion\CloudStore", name: "IsSysPrepGeneralized", value: 1 }),
    row(18362, ANY, SRC_AUTOPILOT, DeleteDirectory { path: r"$(runtime.windows)\ServiceState\Autopilot" }),
    row(18362, ANY, SRC_AUTOPILOT, DeleteKey { path: r"HKEY_LOCAL_MACHINE\Software\Microsoft\Provisioning\AutopilotPolicy" }),
    row(18362, ANY, SRC_AUTOPILOT, DeleteKey { path: r"HKEY_LOCAL_MACHINE\Software\Microsoft\Provisioning\Diagnostics\Autopilot" }),
    row(18362, ANY, SRC_AUTOPILOT, DeleteValue { path: r"HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\Windows NT\CurrentVersion\Notifications\Data", name: "41871D20A3BC1475" }),
];

/// The registry and file rows of Cleanup.xml (sysprep-effects §6.3 "R" rows), run every time.
#[rustfmt::skip]
pub const CLEANUP_ROWS: &[Row] = &[
    row(0, ANY, SRC_SCHEDULE, DeleteValue { path: r"HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\Windows NT\CurrentVersion\Schedule", name: "HashingCompleted" }),
    row(0, ANY, SRC_SCHEDULE, DeleteValue { path: r"HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\Windows NT\CurrentVersion\Schedule", name: "MigrationCleanupCompleted" }),
    row(0, ANY, SRC_SCHEDULE, DeleteValue { path: r"HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\Windows NT\CurrentVersion\Schedule", name: "DomainJoinDetected" }),
    row(0, ANY, SRC_VSCACHE, DeleteFiles { path: r"$(runtime.windows)\Resources\Themes\aero\VSCache\*" }),
];

/// Applies the action files' registry and file rows.
pub struct ActionFiles;

/// The Generalize.xml copy whose rows a build gets, or `None` for builds no public copy covers.
pub fn generalize_build(build: Option<u32>) -> Option<u32> {
    match build {
        None => Some(DEFAULT_BUILD),
        Some(build) if build < OLDEST_KNOWN_BUILD => None,
        Some(build) => Some(build),
    }
}

impl Provider for ActionFiles {
    fn name(&self) -> &'static str {
        NAME
    }

    fn plan(&self, ctx: &mut PlanContext<'_, '_>) -> Result<()> {
        let mut rows: Vec<&Row> = CLEANUP_ROWS.iter().collect();
        if ctx.options.generalize {
            let build = windows_build(ctx.image)?;
            match generalize_build(build) {
                Some(selected) => {
                    if build.is_none() {
                        ctx.note(
                            "the Windows build is unreadable (SOFTWARE CurrentBuildNumber); the \
                             Generalize.xml rows of build 18362 are applied",
                        );
                    }
                    rows.extend(
                        GENERALIZE_ROWS
                            .iter()
                            .filter(|row| (row.first_build..=row.last_build).contains(&selected)),
                    );
                }
                None => ctx.note(format!(
                    "build {} is older than every public Generalize.xml copy (15063 is the \
                         oldest); none of its registry and file rows are applied",
                    build.unwrap_or_default()
                )),
            }
        }
        let user_hive = administrator_hive(ctx.image)?;
        let mut skipped_user_rows = 0;
        for row in rows {
            if !apply_row(ctx, row, user_hive.as_deref())? {
                skipped_user_rows += 1;
            }
        }
        if skipped_user_rows > 0 {
            ctx.note(format!(
                "the built-in Administrator's NTUSER.DAT was not found; {skipped_user_rows} \
                     HKEY_CURRENT_USER action(s) skipped"
            ));
        }
        Ok(())
    }
}

/// Plans one row; `false` when it targets HKEY_CURRENT_USER and there is no user hive.
fn apply_row(ctx: &mut PlanContext<'_, '_>, row: &Row, user_hive: Option<&str>) -> Result<bool> {
    let mut changes = ctx.source(row.source);
    match row.action {
        DeleteValue { path, name } => {
            let Some((hive, key)) = registry_location(changes.image(), path, user_hive)? else {
                return Ok(false);
            };
            changes.delete_value(&hive, &key, name)?;
        }
        DeleteKey { path } => {
            let Some((hive, key)) = registry_location(changes.image(), path, user_hive)? else {
                return Ok(false);
            };
            changes.delete_key(&hive, &key)?;
        }
        SetDword { path, name, value } => {
            let Some((hive, key)) = registry_location(changes.image(), path, user_hive)? else {
                return Ok(false);
            };
            changes.set_value(&hive, &key, name, ValueType::DWORD, &encode_dword(value))?;
        }
        DeleteFiles { path } => {
            let path = image_file_path(path);
            let (dir, pattern) = path.rsplit_once('\\').unwrap_or(("", path.as_str()));
            changes.delete_files_matching(dir, pattern)?;
        }
        DeleteDirectory { path } => {
            changes.delete_directory(&image_file_path(path))?;
        }
    }
    Ok(true)
}

/// Strips `prefix` from `text`, ignoring ASCII case.
fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

/// The hive and key an action-file registry path means offline; `None` for an HKEY_CURRENT_USER
/// path when there is no user hive.
pub fn registry_location(
    image: &mut Image,
    path: &str,
    user_hive: Option<&str>,
) -> Result<Option<(String, String)>> {
    if let Some(rest) = strip_prefix_ignore_case(path, r"HKEY_LOCAL_MACHINE\SYSTEM\") {
        let key = match strip_prefix_ignore_case(rest, r"CurrentControlSet\") {
            Some(below) => format!("{}\\{below}", image.control_set()?),
            None => rest.to_string(),
        };
        return Ok(Some((SYSTEM.to_string(), key)));
    }
    if let Some(rest) = strip_prefix_ignore_case(path, r"HKEY_LOCAL_MACHINE\SOFTWARE\") {
        return Ok(Some((SOFTWARE.to_string(), rest.to_string())));
    }
    if let Some(rest) = strip_prefix_ignore_case(path, r"HKEY_USERS\.DEFAULT\") {
        return Ok(Some((DEFAULT.to_string(), rest.to_string())));
    }
    if let Some(rest) = strip_prefix_ignore_case(path, r"HKEY_CURRENT_USER\") {
        return Ok(user_hive.map(|hive| (hive.to_string(), rest.to_string())));
    }
    Err(crate::error::Error::other(
        None,
        format!("action-file path {path} names a hive reseal does not map"),
    ))
}

/// An action-file file path (`$(runtime.windows)\...`) as an image path.
pub fn image_file_path(path: &str) -> String {
    match strip_prefix_ignore_case(path, r"$(runtime.windows)\") {
        Some(rest) => format!(r"Windows\{rest}"),
        None => path.to_string(),
    }
}

const PROFILE_LIST: &str = r"Microsoft\Windows NT\CurrentVersion\ProfileList";
const DEFAULT_ADMINISTRATOR_HIVE: &str = r"Users\Administrator\NTUSER.DAT";

/// The image path of the built-in Administrator's `NTUSER.DAT`, when that hive exists: the one
/// in the profile of the `S-1-5-21-...-500` ProfileList entry, else `Users\Administrator`'s.
pub fn administrator_hive(image: &mut Image) -> Result<Option<String>> {
    let administrator = image
        .subkey_names(SOFTWARE, PROFILE_LIST)?
        .into_iter()
        .find(|sid| sid.starts_with("S-1-5-21-") && sid.ends_with("-500"));
    let profile = match administrator {
        Some(sid) => image.string_value(
            SOFTWARE,
            &format!("{PROFILE_LIST}\\{sid}"),
            "ProfileImagePath",
        )?,
        None => None,
    };
    let Some(profile) = profile else {
        return Ok(image
            .exists(DEFAULT_ADMINISTRATOR_HIVE)?
            .then(|| DEFAULT_ADMINISTRATOR_HIVE.to_string()));
    };
    // `user_hives` turns profile paths into image paths; pick the one inside this profile.
    let profile = profile.trim_end_matches('\\').to_ascii_lowercase();
    Ok(image.user_hives()?.into_iter().find(|hive| {
        let directory = hive.rsplit_once('\\').map_or("", |(dir, _)| dir);
        let directory = format!("\\{}", directory.to_ascii_lowercase());
        profile.ends_with(&directory)
    }))
}
