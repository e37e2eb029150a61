//! reseal: offline Sysprep. Generalizes a Windows image without booting it.
//!
//! The flow: [`open_target`] gives a [`Target`] (a directory, or one image of a WIM file);
//! [`plan`] validates the image and asks each [`Provider`] for its changes; [`apply`] writes them
//! all-or-nothing (through a journal, or the target's own atomic commit for a WIM);
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
pub use target::{DirEntry, DirectoryTarget, Target, WimImageInfo, WimTarget};

/// The folder every Windows image has; its absence means the path is not an image root.
const CONFIG_DIR: &str = r"Windows\System32\config";

/// Opens the image at `path`: a folder holding `Windows\System32\config` (a mounted volume or a
/// copy of one), or a WIM file holding a single image.
pub fn open_target(path: &Path) -> Result<Box<dyn Target>> {
    open_target_with_index(path, None)
}

/// Opens the image at `path`, as [`open_target`] does; `index` (a 1-based index or an image
/// name) selects the image of a WIM file and is required when it holds more than one. An index
/// on a directory is a usage error.
pub fn open_target_with_index(path: &Path, index: Option<&str>) -> Result<Box<dyn Target>> {
    if is_wim_file(path) {
        let selector = match index {
            Some(index) => index.to_string(),
            None => {
                let images = WimTarget::list_images(path)?;
                if images.len() != 1 {
                    let list: Vec<String> = images.iter().map(ToString::to_string).collect();
                    return Err(Error::usage(format!(
                        "{} holds {} images; choose one with --index N or NAME (or all): {}",
                        path.display(),
                        images.len(),
                        list.join(", ")
                    )));
                }
                "1".to_string()
            }
        };
        let mut target = WimTarget::open(path, &selector)?;
        if !target.exists(CONFIG_DIR)? {
            return Err(Error::usage(format!(
                "{} is not a Windows image: it has no {CONFIG_DIR}",
                target.describe()
            )));
        }
        return Ok(Box::new(target));
    }
    if let Some(index) = index {
        return Err(Error::usage(format!(
            "--index {index}: {} is a directory image, which holds one installation; --index is \
             for WIM files",
            path.display()
        )));
    }
    let mut target = DirectoryTarget::open(path)?;
    if !target.exists(CONFIG_DIR)? {
        return Err(Error::usage(format!(
            "{} is not a Windows image: it has no {CONFIG_DIR} (give the root of the Windows volume)",
            path.display()
        )));
    }
    Ok(Box::new(target))
}

/// `true` when `path` is a WIM file: its name ends in `.wim` or `.esd` (any case), or it is a
/// file that starts with the WIM magic (`.swm` parts, renamed files).
pub fn is_wim_file(path: &Path) -> bool {
    let by_extension = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("wim") || e.eq_ignore_ascii_case("esd"));
    by_extension || starts_with_wim_magic(path)
}

/// `true` when `path` is a regular file whose first bytes are the WIM magic.
fn starts_with_wim_magic(path: &Path) -> bool {
    use std::io::Read;
    if !path.is_file() {
        return false;
    }
    let mut magic = [0u8; 8];
    std::fs::File::open(path)
        .and_then(|mut file| file.read_exact(&mut magic))
        .is_ok_and(|()| &magic == target::wim::WIM_MAGIC)
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
/// image; `None` when there is none, and always for a target that commits atomically itself (a
/// WIM), which never holds a journal.
pub fn recover(target: &mut dyn Target) -> Result<Option<RecoveryOutcome>> {
    if target.commits_atomically() {
        return Ok(None);
    }
    journal::recover(target)
}
