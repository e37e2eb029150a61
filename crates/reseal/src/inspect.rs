//! [`inspect`]: what an image is and what state it is in. Read-only.
//!
//! Every piece is read on its own: a missing hive, key or value, or a damaged file, makes that
//! piece `None` (`null` in JSON) and never stops the rest.

use std::collections::BTreeMap;

use crate::error::{Error, ErrorKind, Result};
use crate::evtx;
use crate::image::{join_path, Image, MACHINE_HIVES, SAM, SECURITY, SOFTWARE, SYSTEM};
use crate::providers::cloud_agents;
use crate::providers::external::{self, ExternalProvider};
use crate::sid::Sid;
use crate::targets::Target;
use crate::validate;

/// The folder of the event logs.
pub const EVENT_LOG_DIR: &str = r"Windows\System32\winevt\Logs";
const CURRENT_VERSION: &str = r"Microsoft\Windows NT\CurrentVersion";
const SOFTWARE_PROTECTION: &str = r"Microsoft\Windows NT\CurrentVersion\SoftwareProtectionPlatform";
const LOGON_UI: &str = r"Microsoft\Windows\CurrentVersion\Authentication\LogonUI";

/// What reseal can and cannot tell about activation.
pub const ACTIVATION_NOTE: &str = "reseal never reads or edits the licensing store (tokens.dat \
    and the SoftwareProtectionPlatform cache); whether the image is activated and how many rearms \
    remain is unknown offline. Only SkipRearm is reported. Specialize runs the rearm that sysprep \
    /generalize would have run, unless SkipRearm is 1.";

/// What [`inspect`] found. Everything it could not find is `None` (`null` in JSON).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Inspection {
    /// The Windows version.
    pub windows: WindowsInfo,
    /// The computer name (`ComputerName\ComputerName`).
    pub computer_name: Option<String>,
    /// The machine SID (SECURITY `Policy\PolAcDmS`, else the end of SAM `Domains\Account\V`).
    pub machine_sid: Option<String>,
    /// `ImageState` from the registry, else from `Windows\Setup\State\State.ini`.
    pub image_state: Option<String>,
    /// The `SYSTEM\Setup` values.
    pub setup: SetupInfo,
    /// `SYSTEM\Setup\SetupCl\PendingRequest` exists: setupcl replaces the SID on the next boot.
    pub sid_request_pending: bool,
    /// `SkipRearm` of SoftwareProtectionPlatform.
    pub skip_rearm: Option<u32>,
    /// The machine is joined to a domain (SECURITY `Policy\PolPrDmS` holds a SID).
    pub domain_joined: bool,
    /// `LastLoggedOnUser` of LogonUI.
    pub last_logged_on_user: Option<String>,
    /// Records in all readable event logs (`winevt\Logs\*.evtx`); `None` without the folder.
    pub event_log_records: Option<u64>,
    /// Records per event log file name (`None` = the file could not be read as an event log).
    pub event_logs: BTreeMap<String, Option<u64>>,
    /// Per hive: dirty state and replay outcome.
    pub hives: Vec<HiveInspection>,
    /// An interrupted reseal run left its journal in the image ([`crate::recover`] handles it).
    pub interrupted_run: bool,
    /// Third-party Sysprep providers registered under `SysPrepExternal` (none when unreadable).
    pub external_providers: Vec<ExternalProvider>,
    /// What is and is not known about activation.
    pub activation_note: String,
    /// The cloud provisioning agents installed (`cloudbase-init`, `ec2launch-v2`, ...).
    pub cloud_agents: Vec<String>,
    /// The disk image's container and its chain of files; `None` for a WIM or a directory.
    pub disk: Option<DiskContainer>,
}

/// A disk image's container format and the files it reads, top first: the image, then each
/// differencing parent or backing file.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct DiskContainer {
    /// The image's own format (`raw`, `VHD`, `VHDX`, `qcow2`).
    pub format: String,
    pub chain: Vec<DiskLayer>,
}

/// One file of a disk image's chain.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct DiskLayer {
    pub format: String,
    /// The file's path, as it was opened.
    pub file: String,
    /// The size in bytes of the virtual disk this file describes.
    pub virtual_size: u64,
}

impl DiskContainer {
    pub(crate) fn from_chain(chain: &[reseal_disk::Layer]) -> DiskContainer {
        DiskContainer {
            format: chain
                .first()
                .map(|top| top.format.name().to_string())
                .unwrap_or_default(),
            chain: chain
                .iter()
                .map(|layer| DiskLayer {
                    format: layer.format.name().to_string(),
                    file: layer.path.display().to_string(),
                    virtual_size: layer.virtual_size,
                })
                .collect(),
        }
    }
}

/// The Windows version of the image.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct WindowsInfo {
    /// `ProductName` (`Windows 10 Pro`).
    pub product_name: Option<String>,
    /// `EditionID` (`Professional`).
    pub edition_id: Option<String>,
    /// `CurrentBuildNumber` (`19045`).
    pub build: Option<u32>,
    /// `DisplayVersion` (`22H2`) or, before 20H2, `ReleaseId`.
    pub version: Option<String>,
    /// `PROCESSOR_ARCHITECTURE` (`AMD64`, `x86`, `ARM64`).
    pub architecture: Option<String>,
}

/// The `SYSTEM\Setup` values that say what the next boot does.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SetupInfo {
    /// `CmdLine`: what Winlogon runs in setup mode.
    pub cmd_line: Option<String>,
    /// `SetupType`.
    pub setup_type: Option<u32>,
    /// `SystemSetupInProgress`.
    pub system_setup_in_progress: Option<u32>,
    /// `OOBEInProgress`.
    pub oobe_in_progress: Option<u32>,
    /// `SetupPhase`.
    pub setup_phase: Option<u32>,
}

/// One hive as inspect found it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HiveInspection {
    /// The hive's image path.
    pub path: String,
    /// The file exists.
    pub present: bool,
    /// It was dirty on disk.
    pub was_dirty: Option<bool>,
    /// It is consistent (clean, or recovered by its logs).
    pub recovered: Option<bool>,
    /// Its transaction logs.
    pub logs: Vec<String>,
    /// What log replay did.
    pub notes: Vec<String>,
    /// Why it could not be read, if it could not.
    pub error: Option<String>,
    /// The kind of that error (damaged bytes or another failure).
    #[serde(skip)]
    pub error_kind: Option<ErrorKind>,
}

impl Inspection {
    /// The first hive inspect could not read, as an error of its kind (a damaged hive is
    /// [`ErrorKind::CorruptInput`]): what the inspection reports about the image is then
    /// incomplete, though every hive's state is in it.
    pub fn unreadable(&self) -> Option<Error> {
        self.hives.iter().find_map(|hive| {
            let (message, kind) = (hive.error.as_ref()?, hive.error_kind?);
            let mut error = Error::other(None, message.clone());
            error.kind = kind;
            Some(error)
        })
    }
}

/// Reads what the image is and what state it is in. Never writes.
pub fn inspect(target: &mut dyn Target) -> Result<Inspection> {
    let interrupted_run = target.has_interrupted_run().unwrap_or(false);
    let disk = target.disk_container().ok().flatten();
    let mut image = Image::new(target);
    let image = &mut image;
    let control_set = image.control_set().ok();
    let string = |image: &mut Image, hive: &str, key: &str, name: &str| {
        image.string_value(hive, key, name).ok().flatten()
    };
    let dword = |image: &mut Image, hive: &str, key: &str, name: &str| {
        image.dword_value(hive, key, name).ok().flatten()
    };
    let in_control_set = |key: &str| control_set.as_ref().map(|cs| format!(r"{cs}\{key}"));

    let windows = WindowsInfo {
        product_name: string(image, SOFTWARE, CURRENT_VERSION, "ProductName"),
        edition_id: string(image, SOFTWARE, CURRENT_VERSION, "EditionID"),
        build: validate::build_number(image).ok().flatten(),
        version: string(image, SOFTWARE, CURRENT_VERSION, "DisplayVersion")
            .or_else(|| string(image, SOFTWARE, CURRENT_VERSION, "ReleaseId")),
        architecture: in_control_set(r"Control\Session Manager\Environment")
            .and_then(|key| string(image, SYSTEM, &key, "PROCESSOR_ARCHITECTURE")),
    };
    let computer_name = in_control_set(r"Control\ComputerName\ComputerName")
        .and_then(|key| string(image, SYSTEM, &key, "ComputerName"));
    let setup = SetupInfo {
        cmd_line: string(image, SYSTEM, "Setup", "CmdLine"),
        setup_type: dword(image, SYSTEM, "Setup", "SetupType"),
        system_setup_in_progress: dword(image, SYSTEM, "Setup", "SystemSetupInProgress"),
        oobe_in_progress: dword(image, SYSTEM, "Setup", "OOBEInProgress"),
        setup_phase: dword(image, SYSTEM, "Setup", "SetupPhase"),
    };
    let (event_log_records, event_logs) = event_log_counts(image);
    Ok(Inspection {
        windows,
        computer_name,
        machine_sid: machine_sid(image).map(|sid| sid.to_string()),
        image_state: validate::image_state(image).ok().flatten(),
        setup,
        sid_request_pending: image
            .key_exists(SYSTEM, r"Setup\SetupCl\PendingRequest")
            .unwrap_or(false),
        skip_rearm: dword(image, SOFTWARE, SOFTWARE_PROTECTION, "SkipRearm"),
        domain_joined: validate::primary_domain_sid(image).ok().flatten().is_some(),
        last_logged_on_user: string(image, SOFTWARE, LOGON_UI, "LastLoggedOnUser"),
        event_log_records,
        event_logs,
        hives: hive_inspections(image),
        interrupted_run,
        external_providers: external::registered(image).unwrap_or_default(),
        activation_note: ACTIVATION_NOTE.to_string(),
        cloud_agents: cloud_agents::installed_agents(image)
            .unwrap_or_default()
            .into_iter()
            .map(|agent| agent.name().to_string())
            .collect(),
        disk,
    })
}

/// The machine SID: SECURITY `Policy\PolAcDmS`, else the last 24 bytes of SAM
/// `SAM\Domains\Account\V`.
pub fn machine_sid(image: &mut Image) -> Option<Sid> {
    let from_security = image
        .value(SECURITY, r"Policy\PolAcDmS", "")
        .ok()
        .flatten()
        .and_then(|(_, data)| Sid::from_bytes(&data).ok())
        .filter(Sid::is_machine_domain_sid);
    from_security.or_else(|| {
        let (_, v) = image
            .value(SAM, r"SAM\Domains\Account", "V")
            .ok()
            .flatten()?;
        let tail = v.get(v.len().checked_sub(24)?..)?;
        Sid::from_bytes(tail)
            .ok()
            .filter(Sid::is_machine_domain_sid)
    })
}

/// The record count of each `.evtx` in the event log folder, and their sum (over the readable
/// ones).
fn event_log_counts(image: &mut Image) -> (Option<u64>, BTreeMap<String, Option<u64>>) {
    let mut counts = BTreeMap::new();
    let Ok(Some(entries)) = image.list_dir(EVENT_LOG_DIR) else {
        return (None, counts);
    };
    let mut total = 0u64;
    for entry in entries {
        if entry.is_dir || !entry.name.to_ascii_lowercase().ends_with(".evtx") {
            continue;
        }
        let count = image
            .read_file(
                &join_path(EVENT_LOG_DIR, &entry.name),
                crate::limits::EVENT_LOG,
            )
            .ok()
            .flatten()
            .and_then(|bytes| evtx::count_records(&bytes).ok());
        total = total.saturating_add(count.unwrap_or(0));
        counts.insert(entry.name, count);
    }
    (Some(total), counts)
}

/// Each machine hive and user hive, as loaded.
fn hive_inspections(image: &mut Image) -> Vec<HiveInspection> {
    let mut paths: Vec<String> = MACHINE_HIVES.iter().map(|h| h.to_string()).collect();
    paths.extend(image.user_hives().unwrap_or_default());
    paths
        .into_iter()
        .map(|path| match image.hive_status(&path) {
            Ok(Some(status)) => HiveInspection {
                path,
                present: true,
                was_dirty: Some(status.was_dirty),
                recovered: Some(status.recovered),
                logs: status.logs,
                notes: status.notes,
                error: None,
                error_kind: None,
            },
            Ok(None) => HiveInspection {
                path,
                present: false,
                was_dirty: None,
                recovered: None,
                logs: Vec::new(),
                notes: Vec::new(),
                error: None,
                error_kind: None,
            },
            Err(e) => HiveInspection {
                path,
                present: true,
                was_dirty: None,
                recovered: None,
                logs: Vec::new(),
                notes: Vec::new(),
                error: Some(e.to_string()),
                error_kind: Some(e.kind),
            },
        })
        .collect()
}
