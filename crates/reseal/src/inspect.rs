//! [`inspect`]: what an image is and what state it is in, read-only.

use std::collections::BTreeMap;

use crate::error::Result;
use crate::image::HiveStatus;
use crate::target::Target;

/// What [`inspect`] found. Everything it could not find is `None` (`null` in JSON).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Inspection {
    /// The Windows version.
    pub windows: WindowsInfo,
    /// The computer name (`ComputerName\ComputerName`).
    pub computer_name: Option<String>,
    /// The machine SID from the SAM (`S-1-5-21-...`).
    pub machine_sid: Option<String>,
    /// `ImageState` from `Setup\State\State.ini` or the registry (`IMAGE_STATE_COMPLETE`...).
    pub image_state: Option<String>,
    /// The `SYSTEM\Setup` values.
    pub setup: SetupInfo,
    /// `SYSTEM\Setup\SetupCl\PendingRequest` exists (setupcl will run on the next boot).
    pub sid_request_pending: Option<bool>,
    /// `SkipRearm` of SoftwareProtectionPlatform.
    pub skip_rearm: Option<u32>,
    /// The machine is joined to a domain (SECURITY `Policy\PolPrDmS`).
    pub domain_joined: Option<bool>,
    /// `LastLoggedOnUser` of LogonUI.
    pub last_logged_on_user: Option<String>,
    /// Records in all event logs (`winevt\Logs\*.evtx`).
    pub event_log_records: Option<u64>,
    /// Records per event log file name (`None` = the file could not be read).
    pub event_logs: BTreeMap<String, Option<u64>>,
    /// Per hive: dirty state and replay outcome.
    pub hives: Vec<HiveStatus>,
    /// What is and is not known about activation.
    pub activation_note: String,
}

/// The Windows version of the image.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct WindowsInfo {
    pub product_name: Option<String>,
    pub edition_id: Option<String>,
    pub build: Option<u32>,
    /// `DisplayVersion` (`22H2`) or, before 20H2, `ReleaseId`.
    pub version: Option<String>,
    /// `PROCESSOR_ARCHITECTURE` (`AMD64`, `x86`, `ARM64`).
    pub architecture: Option<String>,
}

/// The `SYSTEM\Setup` values that say what the next boot does.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SetupInfo {
    pub cmd_line: Option<String>,
    pub setup_type: Option<u32>,
    pub system_setup_in_progress: Option<u32>,
    pub oobe_in_progress: Option<u32>,
    pub setup_phase: Option<u32>,
}

/// Reads what the image is and what state it is in. Never writes.
pub fn inspect(target: &mut dyn Target) -> Result<Inspection> {
    let _ = target;
    todo!()
}
