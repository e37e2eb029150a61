//! reseal: offline Sysprep. Generalizes a Windows image without booting it.
//!
//! The flow: [`open_target`] gives a [`Target`]; [`plan`] validates the image and asks each
//! [`Provider`] for its changes; [`apply`] writes them all-or-nothing through a journal;
//! [`generalize`] does both. [`recover`] finishes or discards a run that was interrupted.
#![forbid(unsafe_code)]

pub mod answer_file;
pub mod apply;
pub mod error;
pub mod evtx;
pub mod image;
pub mod inspect;
pub mod journal;
pub mod options;
pub mod plan;
pub mod providers;
pub mod sid;
pub mod target;
pub mod validate;

use std::path::Path;

pub use apply::ApplyReport;
pub use error::{Error, ErrorKind, Result};
pub use image::Image;
pub use inspect::Inspection;
pub use journal::RecoveryOutcome;
pub use options::{GeneralizeOptions, Mode};
pub use plan::{Action, AnswerSetting, Change, Note, Plan};
pub use providers::{PlanContext, Provider};
pub use reseal_hive::ValueType;
pub use sid::Sid;
pub use target::{DirEntry, DirectoryTarget, Target};

/// The folder every Windows image has; its absence means the path is not an image root.
const CONFIG_DIR: &str = r"Windows\System32\config";

/// Opens the image at `path`: a folder holding `Windows\System32\config` (a mounted volume or a
/// copy of one).
pub fn open_target(path: &Path) -> Result<Box<dyn Target>> {
    let mut target = DirectoryTarget::open(path)?;
    if !target.exists(CONFIG_DIR)? {
        return Err(Error::usage(format!(
            "{} is not a Windows image: it has no {CONFIG_DIR} (give the root of the Windows volume)",
            path.display()
        )));
    }
    Ok(Box::new(target))
}

/// Reads what the image is and what state it is in. Never writes.
pub fn inspect(target: &mut dyn Target) -> Result<Inspection> {
    inspect::inspect(target)
}

/// Validates the image (a refusal lists every failed check), then asks the built-in providers
/// and then `extra` for their changes. Never writes.
pub fn plan(
    target: &mut dyn Target,
    options: &GeneralizeOptions,
    extra: &[Box<dyn Provider>],
) -> Result<Plan> {
    if let Some(sid) = &options.sid {
        if !sid.is_machine_domain_sid() {
            return Err(Error::usage(format!(
                "--sid {sid} is not a machine SID: it must be S-1-5-21-A-B-C"
            )));
        }
    }
    journal::ensure_no_journal(target)?;
    let answer = match &options.unattend {
        Some(path) => Some(answer_file::AnswerFile::load(path)?),
        None => None,
    };
    let mut image = Image::new(target);
    validate::validate(&mut image, options)?;
    let mut plan = Plan::new();
    let builtin = providers::builtin_providers(options);
    for provider in builtin.iter().chain(extra) {
        let mut ctx = PlanContext {
            image: &mut image,
            options,
            answer: answer.as_ref(),
            plan: &mut plan,
        };
        provider.plan(&mut ctx).map_err(|e| Error {
            message: format!("{}: {}", provider.name(), e.message),
            ..e
        })?;
    }
    Ok(plan)
}

/// Applies `plan` to `target`, all-or-nothing.
pub fn apply(target: &mut dyn Target, plan: &Plan) -> Result<ApplyReport> {
    apply::apply(target, plan)
}

/// Plans, then applies unless `options.dry_run`.
pub fn generalize(
    target: &mut dyn Target,
    options: &GeneralizeOptions,
    extra: &[Box<dyn Provider>],
) -> Result<(Plan, Option<ApplyReport>)> {
    let plan = plan(target, options, extra)?;
    if options.dry_run {
        return Ok((plan, None));
    }
    let report = apply(target, &plan)?;
    Ok((plan, Some(report)))
}

/// Finishes (committed) or discards (not committed) the journal an interrupted run left in the
/// image; `None` when there is none.
pub fn recover(target: &mut dyn Target) -> Result<Option<RecoveryOutcome>> {
    journal::recover(target)
}
