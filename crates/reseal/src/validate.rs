//! Checks that run before anything is written. Each has a name; all failures are reported at
//! once, and each can be skipped by name (`GeneralizeOptions::ignore_checks`).

use crate::error::{Error, Input, Remedy, Result};
use crate::image::{Image, MACHINE_HIVES, SECURITY, SOFTWARE, SYSTEM};
use crate::options::GeneralizeOptions;
use crate::providers::setup_state::{state_ini_image_state, STATE_INI, STATE_KEY};

/// The names of all checks, in the order they run.
pub const CHECKS: &[&str] = &[
    "domain-joined",
    "upgraded-before-1607",
    "pending-servicing",
    "already-generalized",
    "dirty-hive",
];

/// The first build on which Sysprep supports upgraded installations (Windows 10 1607).
const FIRST_BUILD_SUPPORTING_UPGRADES: u32 = 14393;

/// The `ImageState` of a normal, installed system.
pub const IMAGE_STATE_COMPLETE: &str = "IMAGE_STATE_COMPLETE";

const CURRENT_VERSION: &str = r"Microsoft\Windows NT\CurrentVersion";
const PENDING_XML: &str = r"Windows\WinSxS\pending.xml";

/// One failed check.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CheckFailure {
    /// The check's name (what `GeneralizeOptions::ignore_checks` takes).
    pub check: &'static str,
    /// Why the image fails it.
    pub reason: String,
}

/// Runs every check not in `options.ignore_checks`; all failures come back at once in one
/// [`crate::ErrorKind::Refused`] error. An unknown name in `ignore_checks` is a usage error.
pub fn validate(image: &mut Image, options: &GeneralizeOptions) -> Result<()> {
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
    let failures: Vec<CheckFailure> = run_checks(image)?
        .into_iter()
        .filter(|f| !options.ignore_checks.iter().any(|name| name == f.check))
        .collect();
    if failures.is_empty() {
        return Ok(());
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

/// Runs every check and returns the failures (none ignored).
pub fn run_checks(image: &mut Image) -> Result<Vec<CheckFailure>> {
    let mut failures = Vec::new();
    let checks: [(&'static str, CheckFn); 5] = [
        ("domain-joined", domain_joined),
        ("upgraded-before-1607", upgraded_before_1607),
        ("pending-servicing", pending_servicing),
        ("already-generalized", already_generalized),
        ("dirty-hive", dirty_hive),
    ];
    for (check, run) in checks {
        if let Some(reason) = run(image)? {
            failures.push(CheckFailure { check, reason });
        }
    }
    Ok(failures)
}

/// A check: `Some(reason)` when the image fails it.
type CheckFn = fn(&mut Image) -> Result<Option<String>>;

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
    Ok((!reasons.is_empty()).then(|| {
        format!(
            "{}; boot the image once so Windows finishes, then generalize",
            reasons.join("; ")
        )
    }))
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

fn dirty_hive(image: &mut Image) -> Result<Option<String>> {
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
