//! Checks that run before anything is written. Each has a name; all failures are reported at
//! once, and each can be skipped by name (`GeneralizeOptions::ignore_checks`: it runs, and its
//! failure is recorded as ignored) or left out (`GeneralizeOptions::operations`: it does not run).
//!
//! Each check refuses what Sysprep refuses, or what would leave a clone broken or tied to the
//! source machine; docs/providers.md ("Checks") gives each one's source.

mod appx;
mod server_roles;

use crate::error::{Error, Input, Remedy, Result};
use crate::image::{Image, MACHINE_HIVES, SECURITY, SOFTWARE, SYSTEM};
use crate::options::GeneralizeOptions;
use crate::providers::setup_state::{
    state_ini_image_state, GENERALIZATION_DONE, STATE_INI, STATE_KEY, SYSPREP_STATUS_KEY,
};

/// A check: `Some(reason)` when the image fails it.
type CheckFn = fn(&mut Image) -> Result<Option<String>>;

/// A check as the operations list shows it: its name, what it refuses, and how it runs.
pub struct Check {
    /// The check's name (what `ignore_checks` and `operations` take).
    pub name: &'static str,
    /// What the check refuses, in one line.
    pub description: &'static str,
    run: CheckFn,
}

/// Every check, in the order they run: the one table of check names.
pub const CHECK_TABLE: [Check; 10] = [
    Check {
        name: "domain-joined",
        description: "refuses an image joined to an Active Directory domain",
        run: domain_joined,
    },
    Check {
        name: "entra-joined",
        description: "refuses an image joined to Microsoft Entra ID",
        run: entra_joined,
    },
    Check {
        name: "mdm-enrolled",
        description: "refuses an image enrolled in device management (MDM)",
        run: mdm_enrolled,
    },
    Check {
        name: "unsupported-server-role",
        description: "refuses a server role Sysprep does not support",
        run: server_roles::unsupported_server_role,
    },
    Check {
        name: "upgraded-before-1607",
        description: "refuses an installation upgraded to a build before Windows 10 1607",
        run: upgraded_before_1607,
    },
    Check {
        name: "pending-servicing",
        description: "refuses an image whose servicing waits for a reboot",
        run: pending_servicing,
    },
    Check {
        name: "already-generalized",
        description: "refuses an image that is already generalized or not fully installed",
        run: already_generalized,
    },
    Check {
        name: "failed-sysprep-run",
        description: "refuses an image a Sysprep run left half-done",
        run: failed_sysprep_run,
    },
    Check {
        name: "appx-not-provisioned",
        description: "refuses a per-user Store app that is not provisioned for all users",
        run: appx::appx_not_provisioned,
    },
    Check {
        name: "dirty-hive",
        description: "refuses a hive whose logs cannot make it consistent",
        run: dirty_hive,
    },
];

/// The names of all checks, in the order they run.
pub const CHECKS: &[&str] = &check_names();

const fn check_names() -> [&'static str; CHECK_TABLE.len()] {
    let mut names = [""; CHECK_TABLE.len()];
    let mut i = 0;
    while i < CHECK_TABLE.len() {
        names[i] = CHECK_TABLE[i].name;
        i += 1;
    }
    names
}

/// The first build on which Sysprep supports upgraded installations (Windows 10 1607).
const FIRST_BUILD_SUPPORTING_UPGRADES: u32 = 14393;

/// The `ImageState` of a normal, installed system.
pub const IMAGE_STATE_COMPLETE: &str = "IMAGE_STATE_COMPLETE";

/// `CleanupState` of an installation Sysprep may run on again (§1.3: WIN7-SYSTEM, the fixes).
pub const CLEANUP_STATE_CLEAN: u32 = 2;

const CURRENT_VERSION: &str = r"Microsoft\Windows NT\CurrentVersion";
const PENDING_XML: &str = r"Windows\WinSxS\pending.xml";
/// SOFTWARE: Component Based Servicing, whose keys say servicing waits for a reboot.
const CBS_KEY: &str = r"Microsoft\Windows\CurrentVersion\Component Based Servicing";
/// SYSTEM, under the control set: the Microsoft Entra joins, one subkey each.
const ENTRA_JOIN_INFO: &str = r"Control\CloudDomainJoin\JoinInfo";
/// SOFTWARE: MDM enrollments, one subkey each beside Windows' own bookkeeping subkeys.
const ENROLLMENTS_KEY: &str = r"Microsoft\Enrollments";
/// Subkeys of [`ENROLLMENTS_KEY`] an unenrolled Windows has; they are no enrollment.
const ENROLLMENTS_BUILT_IN: [&str; 5] = [
    "Context",
    "Ownership",
    "Status",
    "ValidNodePaths",
    "PollOnLoginTasksCreated",
];

/// One failed check.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CheckFailure {
    /// The check's name (what `GeneralizeOptions::ignore_checks` takes).
    pub check: &'static str,
    /// Why the image fails it.
    pub reason: String,
}

/// How one check that ran came out, on a run that went on.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CheckOutcome {
    /// The check's name.
    pub check: &'static str,
    /// `None` when the image passed; else why it failed, a failure the caller chose to ignore.
    pub ignored_failure: Option<String>,
}

/// Runs the checks `options.operations` selects (all by default); a failure of a check in
/// `options.ignore_checks` is kept as ignored, and all other failures come back at once in one
/// [`crate::ErrorKind::Refused`] error. An unknown name in `ignore_checks` is a usage error.
pub fn validate(image: &mut Image, options: &GeneralizeOptions) -> Result<Vec<CheckOutcome>> {
    if let Some(unknown) = options
        .ignore_checks
        .iter()
        .find(|name| !CHECKS.contains(&name.as_str()))
    {
        return Err(Error::bad_value(
            Input::IgnoreCheck,
            unknown,
            format!("no such check (the checks are {})", CHECKS.join(", ")),
        ));
    }
    let selection = crate::operations::Selection::of(options)?;
    let mut outcomes = Vec::new();
    let mut failures = Vec::new();
    for check in CHECK_TABLE
        .iter()
        .filter(|check| selection.runs(check.name))
    {
        let failure = (check.run)(image)?;
        let ignored = options.ignore_checks.iter().any(|name| name == check.name);
        match failure {
            Some(reason) if !ignored => failures.push(CheckFailure {
                check: check.name,
                reason,
            }),
            ignored_failure => outcomes.push(CheckOutcome {
                check: check.name,
                ignored_failure,
            }),
        }
    }
    if failures.is_empty() {
        return Ok(outcomes);
    }
    let mut message = String::from("the image cannot be generalized safely:");
    for failure in &failures {
        message.push_str(&format!("\n  {}: {}", failure.check, failure.reason));
    }
    Err(Error {
        remedy: Some(Remedy::FixOrSkipChecks),
        ..Error::refused(message)
    })
}

/// Refuses an image whose hives hold changes their logs cannot restore, for the commands that
/// run no other check (`rename`; `newsid` lists it with its own refusals): writing such a hive
/// back would drop those changes.
/// Unlike the `dirty-hive` check of generalize, nothing overrides it.
pub fn refuse_unrestorable_hives(image: &mut Image) -> Result<()> {
    match dirty_hive(image)? {
        None => Ok(()),
        Some(reason) => Err(Error::refused(format!("dirty-hive: {reason}"))),
    }
}

/// Runs every check and returns the failures (none ignored).
pub fn run_checks(image: &mut Image) -> Result<Vec<CheckFailure>> {
    let mut failures = Vec::new();
    for check in &CHECK_TABLE {
        if let Some(reason) = (check.run)(image)? {
            failures.push(CheckFailure {
                check: check.name,
                reason,
            });
        }
    }
    Ok(failures)
}

/// The primary-domain SID (SECURITY `Policy\PolPrDmS`), when the machine is joined to a domain.
pub fn primary_domain_sid(image: &mut Image) -> Result<Option<Vec<u8>>> {
    Ok(image
        .value(SECURITY, r"Policy\PolPrDmS", "")?
        .map(|(_, data)| data)
        .filter(|data| data.iter().any(|&b| b != 0)))
}

fn domain_joined(image: &mut Image) -> Result<Option<String>> {
    Ok(primary_domain_sid(image)?.map(|sid| {
        let shown = crate::sid::Sid::from_bytes(&sid)
            .map(|s| s.to_string())
            .unwrap_or_else(|_| "a domain".to_string());
        format!(
            "the machine is joined to {shown} (SECURITY Policy\\PolPrDmS); leave the domain \
             before imaging it"
        )
    }))
}

/// The build number (`CurrentBuildNumber`, else `CurrentBuild`) from SOFTWARE.
pub fn build_number(image: &mut Image) -> Result<Option<u32>> {
    for name in ["CurrentBuildNumber", "CurrentBuild"] {
        if let Some(text) = image.string_value(SOFTWARE, CURRENT_VERSION, name)? {
            if let Ok(build) = text.trim().parse() {
                return Ok(Some(build));
            }
        }
    }
    Ok(None)
}

fn upgraded_before_1607(image: &mut Image) -> Result<Option<String>> {
    let upgrade_value = image
        .value(SYSTEM, "Setup", "Upgrade")?
        .is_some_and(|(_, data)| data.iter().any(|&b| b != 0));
    let upgraded = upgrade_value || image.key_exists(SYSTEM, r"Setup\Upgrade")?;
    if !upgraded {
        return Ok(None);
    }
    Ok(match build_number(image)? {
        Some(build) if build >= FIRST_BUILD_SUPPORTING_UPGRADES => None,
        Some(build) => Some(format!(
            "this installation was upgraded (SYSTEM Setup\\Upgrade) and is build {build}; Sysprep \
             supports upgraded installations only from build {FIRST_BUILD_SUPPORTING_UPGRADES} \
             (Windows 10 1607)"
        )),
        None => Some(
            "this installation was upgraded (SYSTEM Setup\\Upgrade) and its build is unknown; \
             Sysprep supports upgraded installations only from Windows 10 1607"
                .to_string(),
        ),
    })
}

fn pending_servicing(image: &mut Image) -> Result<Option<String>> {
    let mut reasons = Vec::new();
    if image.exists(PENDING_XML)? {
        reasons.push(format!(
            "{PENDING_XML} exists (servicing is waiting for a reboot)"
        ));
    }
    if image.hive(SYSTEM)?.is_some() {
        let control_set = image.control_set()?;
        let key = format!(r"{control_set}\Control\Session Manager");
        for name in [
            "PendingFileRenameOperations",
            "PendingFileRenameOperations2",
        ] {
            let pending = image.value(SYSTEM, &key, name)?.is_some_and(|(_, data)| {
                reseal_hive::data::decode_multi_sz(&data)
                    .iter()
                    .any(|s| !s.is_empty())
            });
            if pending {
                reasons.push(format!(
                    "{key}\\{name} lists files to replace at the next boot"
                ));
            }
        }
    }
    reasons.extend(cbs_pending(image)?);
    Ok((!reasons.is_empty()).then(|| {
        format!(
            "{}; boot the image once so Windows finishes, then generalize",
            reasons.join("; ")
        )
    }))
}

/// What Component Based Servicing records as waiting for a reboot: the `RebootPending` and
/// `PackagesPending` keys exist only while it waits, and `SessionsPending` holds a non-zero
/// `Exclusive` while a servicing session is unfinished (the key itself is always there).
fn cbs_pending(image: &mut Image) -> Result<Vec<String>> {
    let mut reasons = Vec::new();
    for key in ["RebootPending", "PackagesPending"] {
        if image.key_exists(SOFTWARE, &format!(r"{CBS_KEY}\{key}"))? {
            reasons.push(format!(
                r"SOFTWARE {CBS_KEY}\{key} exists (servicing waits for a reboot)"
            ));
        }
    }
    let sessions = format!(r"{CBS_KEY}\SessionsPending");
    if let Some(exclusive) = image.dword_value(SOFTWARE, &sessions, "Exclusive")? {
        if exclusive != 0 {
            reasons.push(format!(
                r"SOFTWARE {sessions}\Exclusive is {exclusive} (a servicing session is unfinished)"
            ));
        }
    }
    Ok(reasons)
}

/// `ImageState` from the registry, else from `State.ini`.
pub fn image_state(image: &mut Image) -> Result<Option<String>> {
    if let Some(state) = image.string_value(SOFTWARE, STATE_KEY, "ImageState")? {
        return Ok(Some(state));
    }
    Ok(image
        .read_file(STATE_INI, crate::limits::STATE_INI)?
        .and_then(|bytes| state_ini_image_state(&bytes)))
}

fn already_generalized(image: &mut Image) -> Result<Option<String>> {
    Ok(image_state(image)?
        .filter(|state| !state.eq_ignore_ascii_case(IMAGE_STATE_COMPLETE))
        .map(|state| {
            format!(
                "ImageState is {state}, not {IMAGE_STATE_COMPLETE}: the image is already \
                 generalized or a setup pass did not finish; boot it through setup first"
            )
        }))
}

/// Sysprep's record of an earlier run (SYSTEM `Setup\Status\SysprepStatus`) that a clean
/// installation does not have: `GeneralizationState` other than 7 or `CleanupState` other than 2
/// (each may be absent). An image whose `ImageState` is not `IMAGE_STATE_COMPLETE` is
/// `already-generalized`'s to report: a generalized image (by Sysprep or reseal) has
/// `GeneralizationState` 4 until its setup has run.
fn failed_sysprep_run(image: &mut Image) -> Result<Option<String>> {
    let state = image_state(image)?;
    if state.is_some_and(|s| !s.eq_ignore_ascii_case(IMAGE_STATE_COMPLETE)) {
        return Ok(None);
    }
    let mut found = Vec::new();
    if let Some(g) = image.dword_value(SYSTEM, SYSPREP_STATUS_KEY, "GeneralizationState")? {
        if g != GENERALIZATION_DONE {
            found.push(format!(
                "GeneralizationState is {g}, not {GENERALIZATION_DONE}"
            ));
        }
    }
    if let Some(c) = image.dword_value(SYSTEM, SYSPREP_STATUS_KEY, "CleanupState")? {
        if c != CLEANUP_STATE_CLEAN {
            found.push(format!("CleanupState is {c}, not {CLEANUP_STATE_CLEAN}"));
        }
    }
    Ok((!found.is_empty()).then(|| {
        format!(
            r"SYSTEM {SYSPREP_STATUS_KEY}: {}, although ImageState says setup is complete: an \
             earlier Sysprep run failed or did not finish, and Sysprep refuses to run external \
             providers from a state it considers invalid; find out what stopped it \
             (Windows\System32\Sysprep\Panther\setupact.log) before generalizing",
            found.join(", ")
        )
    }))
}

/// Microsoft Entra joins: each subkey of `Control\CloudDomainJoin\JoinInfo` (named after the
/// join certificate's thumbprint) is one, with its tenant and the user who joined.
fn entra_joined(image: &mut Image) -> Result<Option<String>> {
    if image.hive(SYSTEM)?.is_none() {
        return Ok(None);
    }
    let key = format!(r"{}\{ENTRA_JOIN_INFO}", image.control_set()?);
    let mut joins = Vec::new();
    for join in image.subkey_names(SYSTEM, &key)? {
        let join_key = format!(r"{key}\{join}");
        let tenant = image.string_value(SYSTEM, &join_key, "TenantId")?;
        let user = image.string_value(SYSTEM, &join_key, "UserEmail")?;
        let mut shown = format!("join {join}");
        if let Some(tenant) = tenant.filter(|t| !t.is_empty()) {
            shown.push_str(&format!(" to tenant {tenant}"));
        }
        if let Some(user) = user.filter(|u| !u.is_empty()) {
            shown.push_str(&format!(" by {user}"));
        }
        joins.push(shown);
    }
    Ok((!joins.is_empty()).then(|| {
        format!(
            r"the machine is joined to Microsoft Entra ID (SYSTEM {key}: {}); every clone would \
             carry this device's identity and keys; leave Microsoft Entra ID before imaging it",
            joins.join("; ")
        )
    }))
}

/// MDM enrollments: subkeys of `SOFTWARE\Microsoft\Enrollments` other than Windows' own that
/// name an enrolled user (`UPN`), or an MDM provider (`ProviderID`) with `EnrollmentState` 1.
fn mdm_enrolled(image: &mut Image) -> Result<Option<String>> {
    let mut enrollments = Vec::new();
    for id in image.subkey_names(SOFTWARE, ENROLLMENTS_KEY)? {
        if ENROLLMENTS_BUILT_IN
            .iter()
            .any(|b| b.eq_ignore_ascii_case(&id))
        {
            continue;
        }
        let key = format!(r"{ENROLLMENTS_KEY}\{id}");
        let non_empty = |s: Option<String>| s.filter(|s| !s.trim().is_empty());
        let upn = non_empty(image.string_value(SOFTWARE, &key, "UPN")?);
        let provider = non_empty(image.string_value(SOFTWARE, &key, "ProviderID")?);
        let state = image.dword_value(SOFTWARE, &key, "EnrollmentState")?;
        if upn.is_none() && !(provider.is_some() && state == Some(1)) {
            continue;
        }
        let mut shown = id.clone();
        if let Some(provider) = provider {
            shown.push_str(&format!(" with {provider}"));
        }
        if let Some(upn) = upn {
            shown.push_str(&format!(" for {upn}"));
        }
        enrollments.push(shown);
    }
    Ok((!enrollments.is_empty()).then(|| {
        format!(
            r"the machine is enrolled in device management (SOFTWARE {ENROLLMENTS_KEY}: {}); every \
             clone would claim this enrollment; unenroll it before imaging it",
            enrollments.join(r", ")
        )
    }))
}

/// The `dirty-hive` check: the hives holding changes their logs cannot restore, if any.
pub(crate) fn dirty_hive(image: &mut Image) -> Result<Option<String>> {
    let mut hives: Vec<String> = MACHINE_HIVES.iter().map(|h| h.to_string()).collect();
    hives.extend(image.user_hives()?);
    let mut dirty = Vec::new();
    for hive in hives {
        if let Some(status) = image.hive_status(&hive)? {
            if status.was_dirty && !status.recovered {
                let why = status.notes.last().cloned().unwrap_or_default();
                dirty.push(format!("{hive} ({why})"));
            }
        }
    }
    Ok((!dirty.is_empty()).then(|| {
        format!(
            "{} holds changes its transaction logs cannot restore; boot the image and shut it \
             down cleanly first",
            dirty.join(", ")
        )
    }))
}
