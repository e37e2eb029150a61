//! Whether an image is armed the way Sysprep leaves it: its next boot runs setupcl and specialize
//! (after generalize), then OOBE or audit mode. Pure reads; one named check per line of the
//! report.
//!
//! The checks accept what a real `sysprep /generalize /oobe` was seen to leave (sysprep-effects
//! §1.7, COFOUNDRY) and what reseal writes (`providers::setup_state`); values no Sysprep run
//! recorded (`SystemSetupInProgress`, `SetupPhase`, `CleanupState`, `ImageServicingData`) are
//! not required. What they refuse:
//!
//! | check | passes when | source |
//! |---|---|---|
//! | `image-state` | `ImageState` is `IMAGE_STATE_{GENERALIZE,SPECIALIZE}_RESEAL_TO_{mode}` | §1.1, §1.5 (MS-STATES) |
//! | `image-state-copies` | State.ini and `ImageServicingData`, where present, say the same | §1.1 (OOBE-DECOMP) |
//! | `setup-type` | `SetupType` is 2, and `SystemSetupInProgress` exists (the kernel bug-checks without it) | §1.2, §1.7 (COFOUNDRY, DECOMP-KERNEL) |
//! | `cmd-line` | `CmdLine` runs `windeploy.exe` | §1.2, §1.6 (COFOUNDRY's export gate) |
//! | `oobe-in-progress` | to OOBE only: `OOBEInProgress` is 1 | §1.7 (COFOUNDRY) |
//! | `generalization-state` | after generalize only: `GeneralizationState` is 4 (7 = setup has run) | §1.3, §1.7 (COFOUNDRY, CBI) |
//! | `child-completion` | no setup program the next boot runs is marked complete (3) | §1.3, §1.7 (OOBE-DECOMP, USOS) |
//! | `unattend-passes` | no pass the next boot runs has a failed status (1, 3, 5, 6, 8, above 9) | §1.3, §1.7 (SETUPPLAT-DECOMP) |
//! | `sid-request` | after generalize only: a pending setupcl request, and setupcl.exe in `SetupExecute` | §2.2, §2.3 (SCL-DECOMP, CLONEID) |

use reseal_hive::data::decode_multi_sz;

use crate::error::{Error, Remedy, Result};
use crate::image::{Image, SOFTWARE, SYSTEM};
use crate::options::Mode;
use crate::providers::machine_sid::PENDING_REQUEST;
use crate::providers::setup_state::{
    image_state, state_ini_image_state, CHILD_COMPLETION_KEY, FAILED_PASS_STATUSES,
    GENERALIZATION_PENDING, IMAGE_SERVICING_KEY, PASS_STATUS_MAX, SETUP_KEY, STATE_INI,
    SYSPREP_STATUS_KEY, UNATTEND_PASSES_KEY,
};
use crate::targets::Target;
use crate::validate;

/// `ChildCompletion` status of a setup program that has completed.
const CHILD_COMPLETE: u32 = 3;

/// One named check and its outcome.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VerifyCheck {
    /// The check's name (`setup-type`).
    pub name: &'static str,
    /// It passed.
    pub passed: bool,
    /// What was found, and for a failure why it is wrong.
    pub detail: String,
}

/// The image as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Every check passed: the next boot runs setup into the mode asked for.
    Armed,
    /// Armed, but for the other mode (audit when OOBE was asked, or the reverse).
    ArmedForOtherMode,
    /// Some of the state is armed and some is not: the next boot may not run setup, or may
    /// stop in it.
    HalfArmed,
    /// Nothing is armed: the next boot is a normal boot of a finished installation.
    NotArmed,
}

/// What [`verify`] found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VerifyReport {
    /// The mode asked for.
    pub mode: Mode,
    /// `ImageState` says the image was generalized (`None` when it is not a reseal state).
    pub generalized: Option<bool>,
    /// The image as a whole.
    pub verdict: Verdict,
    /// Every check, in order.
    pub checks: Vec<VerifyCheck>,
}

impl VerifyReport {
    /// `true` when the image is armed for the mode asked for.
    pub fn armed(&self) -> bool {
        self.verdict == Verdict::Armed
    }

    /// The checks that failed.
    pub fn failures(&self) -> impl Iterator<Item = &VerifyCheck> {
        self.checks.iter().filter(|check| !check.passed)
    }
}

/// Checks, without writing, whether the image is armed for `mode` as Sysprep leaves it.
pub fn verify(target: &mut dyn Target, mode: Mode) -> Result<VerifyReport> {
    let describe = target.describe();
    verify_image(target, mode).map_err(|e| e.naming_image(&describe, None))
}

fn verify_image(target: &mut dyn Target, mode: Mode) -> Result<VerifyReport> {
    // What an interrupted run left is neither the image before it nor after it; verify does
    // not change the image, so it does not recover it.
    if target.has_interrupted_run()? {
        return Err(Error {
            remedy: Some(Remedy::Recover),
            ..Error::other(
                None,
                "an earlier reseal run on this image was interrupted (its journal or redo log is there)",
            )
        });
    }
    let mut image = Image::new(target);
    let image = &mut image;
    let state = validate::image_state(image)?;
    let generalized = state.as_deref().and_then(|state| {
        [true, false].into_iter().find(|&generalize| {
            [Mode::Oobe, Mode::Audit]
                .iter()
                .any(|&m| state.eq_ignore_ascii_case(image_state(generalize, m)))
        })
    });
    let armed_mode = state.as_deref().and_then(|state| {
        [Mode::Oobe, Mode::Audit].into_iter().find(|&m| {
            [true, false]
                .iter()
                .any(|&g| state.eq_ignore_ascii_case(image_state(g, m)))
        })
    });

    let mut checks = vec![check_image_state(state.as_deref(), armed_mode, mode)];
    checks.push(check_image_state_copies(image, state.as_deref())?);
    checks.push(check_setup_type(image)?);
    checks.push(check_cmd_line(image)?);
    if mode == Mode::Oobe {
        checks.push(check_oobe_in_progress(image)?);
    }
    // What the next boot runs: specialize only after generalize; without a reseal state, the
    // full setup of the mode asked for is assumed.
    let generalize = generalized.unwrap_or(true);
    if generalize {
        checks.push(check_generalization_state(image)?);
    }
    checks.push(check_child_completion(image, generalize, mode)?);
    checks.push(check_unattend_passes(image, generalize, mode)?);
    if generalize {
        checks.push(check_sid_request(image)?);
    }

    let verdict = verdict(&checks, armed_mode, mode);
    Ok(VerifyReport {
        mode,
        generalized,
        verdict,
        checks,
    })
}

fn verdict(checks: &[VerifyCheck], armed_mode: Option<Mode>, mode: Mode) -> Verdict {
    let failed = |name: &str| checks.iter().any(|c| c.name == name && !c.passed);
    let others_pass = checks
        .iter()
        .filter(|c| c.name != "image-state" && c.name != "oobe-in-progress")
        .all(|c| c.passed);
    match armed_mode {
        Some(armed) if armed == mode && checks.iter().all(|c| c.passed) => Verdict::Armed,
        Some(armed) if armed != mode && others_pass => Verdict::ArmedForOtherMode,
        None if failed("setup-type") && failed("cmd-line") => Verdict::NotArmed,
        _ => Verdict::HalfArmed,
    }
}

fn passed(name: &'static str, detail: String) -> VerifyCheck {
    VerifyCheck {
        name,
        passed: true,
        detail,
    }
}

fn failed(name: &'static str, detail: String) -> VerifyCheck {
    VerifyCheck {
        name,
        passed: false,
        detail,
    }
}

fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Oobe => "OOBE",
        Mode::Audit => "audit mode",
    }
}

fn check_image_state(state: Option<&str>, armed_mode: Option<Mode>, mode: Mode) -> VerifyCheck {
    const NAME: &str = "image-state";
    match (state, armed_mode) {
        (None, _) => failed(
            NAME,
            "no ImageState in the registry or State.ini: not armed".into(),
        ),
        (Some(state), Some(armed)) if armed == mode => passed(NAME, state.to_string()),
        (Some(state), Some(armed)) => failed(
            NAME,
            format!(
                "{state}: armed for {}, not {}",
                mode_name(armed),
                mode_name(mode)
            ),
        ),
        (Some(state), None) => failed(
            NAME,
            format!("{state}: not a reseal state, so setup will not run"),
        ),
    }
}

fn check_image_state_copies(image: &mut Image, state: Option<&str>) -> Result<VerifyCheck> {
    const NAME: &str = "image-state-copies";
    let Some(state) = state else {
        return Ok(passed(NAME, "no ImageState to compare".into()));
    };
    let ini = image
        .read_file(STATE_INI, crate::limits::STATE_INI)?
        .and_then(|bytes| state_ini_image_state(&bytes));
    let servicing = image.string_value(SOFTWARE, IMAGE_SERVICING_KEY, "ImageState")?;
    let mut differing = Vec::new();
    for (place, copy) in [("State.ini", ini), ("ImageServicingData", servicing)] {
        if let Some(copy) = copy.filter(|copy| !copy.eq_ignore_ascii_case(state)) {
            differing.push(format!("{place} says {copy}"));
        }
    }
    Ok(if differing.is_empty() {
        passed(NAME, "the copies that exist agree".into())
    } else {
        failed(
            NAME,
            format!("ImageState is {state}, but {}", differing.join(" and ")),
        )
    })
}

fn check_setup_type(image: &mut Image) -> Result<VerifyCheck> {
    const NAME: &str = "setup-type";
    let setup_type = image.dword_value(SYSTEM, SETUP_KEY, "SetupType")?;
    let in_progress = image.dword_value(SYSTEM, SETUP_KEY, "SystemSetupInProgress")?;
    Ok(match (setup_type, in_progress) {
        (Some(2), Some(_)) => passed(NAME, "SetupType 2".into()),
        (Some(2), None) => failed(
            NAME,
            "SystemSetupInProgress is missing: the kernel stops the boot (0x9A)".into(),
        ),
        (Some(other), _) => failed(
            NAME,
            format!("SetupType is {other}, not 2: Winlogon does not start setup"),
        ),
        (None, _) => failed(NAME, "SetupType is missing".into()),
    })
}

fn check_cmd_line(image: &mut Image) -> Result<VerifyCheck> {
    const NAME: &str = "cmd-line";
    Ok(match image.string_value(SYSTEM, SETUP_KEY, "CmdLine")? {
        Some(line) if line.to_ascii_lowercase().contains("windeploy.exe") => passed(NAME, line),
        Some(line) => failed(
            NAME,
            format!("CmdLine is {line:?}: windeploy.exe, which runs setup, is not started"),
        ),
        None => failed(NAME, "CmdLine is missing".into()),
    })
}

fn check_oobe_in_progress(image: &mut Image) -> Result<VerifyCheck> {
    const NAME: &str = "oobe-in-progress";
    Ok(
        match image.dword_value(SYSTEM, SETUP_KEY, "OOBEInProgress")? {
            Some(1) => passed(NAME, "OOBEInProgress 1".into()),
            found => failed(
                NAME,
                format!(
                    "OOBEInProgress is {}, not 1 as Sysprep leaves it for OOBE",
                    shown(found)
                ),
            ),
        },
    )
}

fn check_generalization_state(image: &mut Image) -> Result<VerifyCheck> {
    const NAME: &str = "generalization-state";
    Ok(
        match image.dword_value(SYSTEM, SYSPREP_STATUS_KEY, "GeneralizationState")? {
            Some(GENERALIZATION_PENDING) => passed(NAME, "GeneralizationState 4".into()),
            found => failed(
                NAME,
                format!(
                    "GeneralizationState is {}, not {GENERALIZATION_PENDING}: software that waits \
                     for setup to finish (7) starts during specialize",
                    shown(found)
                ),
            ),
        },
    )
}

fn check_child_completion(image: &mut Image, generalize: bool, mode: Mode) -> Result<VerifyCheck> {
    const NAME: &str = "child-completion";
    let mut children = Vec::new();
    if generalize {
        children.push("setup.exe");
    }
    children.extend(["oobeldr.exe", "SetupFinalTasks"]);
    if mode == Mode::Audit {
        children.push("audit.exe");
    }
    let mut stale = Vec::new();
    for child in children {
        if image.dword_value(SYSTEM, CHILD_COMPLETION_KEY, child)? == Some(CHILD_COMPLETE) {
            stale.push(child);
        }
    }
    Ok(if stale.is_empty() {
        passed(
            NAME,
            "no program the next boot runs is marked complete".into(),
        )
    } else {
        failed(
            NAME,
            format!(
                "stale ChildCompletion: {} marked complete ({CHILD_COMPLETE}) from the finished \
                 setup",
                stale.join(", ")
            ),
        )
    })
}

fn check_unattend_passes(image: &mut Image, generalize: bool, mode: Mode) -> Result<VerifyCheck> {
    const NAME: &str = "unattend-passes";
    let mut passes = Vec::new();
    if generalize {
        passes.push("specialize");
    }
    match mode {
        Mode::Oobe => passes.push("oobeSystem"),
        Mode::Audit => passes.extend(["auditSystem", "auditUser"]),
    }
    let mut bad = Vec::new();
    for pass in passes {
        if let Some(status) = image.dword_value(SYSTEM, UNATTEND_PASSES_KEY, pass)? {
            if FAILED_PASS_STATUSES.contains(&status) || status > PASS_STATUS_MAX {
                bad.push(format!("{pass}={status}"));
            }
        }
    }
    Ok(if bad.is_empty() {
        passed(NAME, "no pass to run has a failed status".into())
    } else {
        failed(
            NAME,
            format!(
                "{}: a failed status, setup stops (\"system is in an invalid state\")",
                bad.join(", ")
            ),
        )
    })
}

fn check_sid_request(image: &mut Image) -> Result<VerifyCheck> {
    const NAME: &str = "sid-request";
    let pending = image
        .dword_value(SYSTEM, PENDING_REQUEST, "OperationFlags")?
        .is_some();
    let control_set = image.control_set()?;
    let session_manager = format!(r"{control_set}\Control\Session Manager");
    let mut scheduled = false;
    for list in ["SetupExecute", "SetupExecuteNoPnpSync"] {
        if let Some((_, data)) = image.value(SYSTEM, &session_manager, list)? {
            scheduled |= decode_multi_sz(&data)
                .iter()
                .any(|entry| entry.trim().eq_ignore_ascii_case("setupcl.exe"));
        }
    }
    Ok(match (pending, scheduled) {
        (true, true) => passed(NAME, "a setupcl request, and setupcl.exe scheduled".into()),
        (false, _) => failed(
            NAME,
            "pending SID request missing: no OperationFlags under Setup\\SetupCl\\PendingRequest, \
             so the clone keeps the machine SID"
                .into(),
        ),
        (true, false) => failed(
            NAME,
            format!(
                "setupcl.exe is not in {session_manager}\\SetupExecute: the request never runs"
            ),
        ),
    })
}

fn shown(value: Option<u32>) -> String {
    value.map_or_else(|| "missing".to_string(), |v| v.to_string())
}
