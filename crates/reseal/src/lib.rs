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

/// Opens the image at `path` (a folder holding `Windows\System32\config`).
pub fn open_target(path: &Path) -> Result<Box<dyn Target>> {
    Ok(Box::new(DirectoryTarget::open(path)?))
}

/// Reads what the image is and what state it is in.
pub fn inspect(target: &mut dyn Target) -> Result<Inspection> {
    inspect::inspect(target)
}

/// Validates the image, then asks the built-in providers and `extra` for their changes.
pub fn plan(
    target: &mut dyn Target,
    options: &GeneralizeOptions,
    extra: &[Box<dyn Provider>],
) -> Result<Plan> {
    let _ = (target, options, extra);
    todo!()
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
