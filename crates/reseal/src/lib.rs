//! reseal: offline Sysprep. Generalizes a Windows image without booting it.
//!
//! The flow: [`open_target`] gives a [`Target`] (a directory, one image of a WIM file, or the
//! Windows volume of a raw, VHD, VHDX, qcow2 or VMDK disk image);
//! [`plan`] validates the image and asks each [`Provider`] for its changes; [`apply`] writes them
//! all-or-nothing, in one transaction of the target; [`generalize`] does both, reading each hive
//! once. [`recover`] finishes or discards a run that was interrupted.
#![forbid(unsafe_code)]

pub mod account_domain;
pub mod answer_file;
pub mod apply;
pub mod error;
pub mod image;
pub mod inspect;
pub mod limits;
pub mod lock;
pub mod newsid;
pub mod operations;
pub mod options;
pub mod plan;
pub mod progress;
pub mod providers;
pub mod run;
pub mod run_record;
pub mod targets;
pub mod validate;
pub mod verify;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

pub use apply::ApplyReport;
pub use error::{Error, ErrorKind, Input, Remedy, Result};
pub use image::Image;
pub use inspect::Inspection;
pub use lock::{ImageLock, LockMode};
pub use newsid::{newsid, NewSidOptions};
pub use options::{GeneralizeOptions, Mode, Rename};
pub use plan::{Action, AnswerSetting, Change, Note, Origin, Plan};
pub use progress::{NoProgress, Progress};
pub use providers::{PlanContext, Planner, Provider};
pub use reseal_disk::Format as DiskFormat;
pub use reseal_hive::ValueType;
pub use reseal_nt::{evtx, sid, Sid};
pub use run::{
    generalize_images, inspect_images, newsid_images, rename_images, RunEvent, RunOptions,
};
pub use targets::wim::is_wim_file;
pub use targets::{
    DirEntry, DirectoryTarget, DiskTarget, FileSecuritySwap, RecoveryOutcome, Target,
    VolumeLocation, WimImageInfo, WimTarget,
};
pub use verify::{Verdict, VerifyReport};

/// Opens the image at `path`: a folder holding `Windows\System32\config\SYSTEM` (a mounted
/// volume or a copy of one), a WIM file holding a single image, or a disk image with one Windows
/// volume.
pub fn open_target(path: &Path) -> Result<Box<dyn Target>> {
    open_target_with(path, &OpenOptions::default())
}

/// Opens the image at `path`, as [`open_target`] does; `index` (a 1-based index or an image
/// name) selects the image of a WIM file and is required when it holds more than one.
pub fn open_target_with_index(path: &Path, index: Option<&str>) -> Result<Box<dyn Target>> {
    open_target_with(
        path,
        &OpenOptions {
            index,
            ..OpenOptions::default()
        },
    )
}

/// Which part of an image file to open, and where a disk image's changes go.
#[derive(Debug, Clone, Copy, Default)]
pub struct OpenOptions<'a> {
    /// The image of a WIM file: a 1-based index or an image name (WIM files only).
    pub index: Option<&'a str>,
    /// The partition of a disk image, 1-based; by default the one holding Windows.
    pub partition: Option<u32>,
    /// Write a disk image's changes into this new differencing disk instead of the image.
    pub output_diff: Option<&'a Path>,
    /// How [`open_target_with`] locks the image (see [`lock`]): exclusively by default, which
    /// a run that may write or recover needs; shared for a run that only reads. The run calls
    /// choose for themselves ([`inspect_images`] shared, [`generalize_images`] exclusive).
    pub lock: LockMode,
    /// Wait until other runs release the image instead of failing at once with
    /// [`ErrorKind::InUse`].
    pub wait: bool,
}

/// Opens the image at `path` (see [`open_target`]) with `options`; an option that does not
/// apply to the kind of image is a usage error.
///
/// The image is locked first (`options.lock`, see [`lock`]) and stays locked until the target
/// is dropped; another run holding it is an [`ErrorKind::InUse`] error, unless `options.wait`.
pub fn open_target_with(path: &Path, options: &OpenOptions) -> Result<Box<dyn Target>> {
    let lock = ImageLock::acquire(path, options.lock, options.wait)?;
    open_locked(path, options, Arc::new(lock))
}

/// Opens the image at `path` with `options`, holding `lock` (taken on that image) until the
/// target is dropped.
pub(crate) fn open_locked(
    path: &Path,
    options: &OpenOptions,
    lock: Arc<ImageLock>,
) -> Result<Box<dyn Target>> {
    let target = open_unlocked(path, options)?;
    Ok(Box::new(lock::LockedTarget::new(target, lock)))
}

/// Opens the image at `path` with `options`; the caller has locked it.
fn open_unlocked(path: &Path, options: &OpenOptions) -> Result<Box<dyn Target>> {
    let refuse = |input: Input, for_what: &str| {
        let value = match input {
            Input::Index => options.index.map(str::to_string),
            Input::Partition => options.partition.map(|n| n.to_string()),
            Input::OutputDiff => options.output_diff.map(|p| p.display().to_string()),
            _ => None,
        };
        Err(Error {
            value,
            ..Error::bad_input(input, format!("{} is not {for_what}", path.display()))
        })
    };
    if path.is_dir() {
        if options.index.is_some() {
            return refuse(
                Input::Index,
                "a WIM file (a directory holds one installation)",
            );
        }
        if options.partition.is_some() {
            return refuse(Input::Partition, "a disk image");
        }
        if options.output_diff.is_some() {
            return refuse(Input::OutputDiff, "a disk image");
        }
        let mut target = DirectoryTarget::open(path)?;
        check_windows_image(&mut target, " (give the root of the Windows volume)")?;
        return Ok(Box::new(target));
    }
    if !path.exists() {
        return Err(Error {
            file: Some(path.display().to_string()),
            ..Error::usage(
                "no such file or directory: give an image folder, a WIM file or a disk image",
            )
        });
    }
    if is_wim_file(path) {
        if options.partition.is_some() {
            return refuse(
                Input::Partition,
                "a disk image (it is a WIM file, whose images are chosen by index)",
            );
        }
        if options.output_diff.is_some() {
            return refuse(
                Input::OutputDiff,
                "a disk image (it is a WIM file; --output NEW.wim edits a copy of it)",
            );
        }
        return open_wim_image(path, options.index);
    }
    if options.index.is_some() {
        return refuse(
            Input::Index,
            "a WIM file (a disk image's volume is chosen by partition)",
        );
    }
    let mut target = DiskTarget::open(path, options.partition)?;
    if let Some(child) = options.output_diff {
        target.set_output_diff(child)?;
    }
    Ok(Box::new(target))
}

/// Opens image `index` of a WIM file (required when it holds more than one image).
fn open_wim_image(path: &Path, index: Option<&str>) -> Result<Box<dyn Target>> {
    let mut target = WimTarget::open_selected(path, index)?;
    check_windows_image(&mut target, "")?;
    Ok(Box::new(target))
}

/// Refuses a directory or WIM image without a Windows installation: one without the SYSTEM
/// hive, which every command reads first (a disk image's partition is found by it too), so
/// that every command gives the same answer.
/// `hint` follows the reason (what to give instead), or is empty.
fn check_windows_image(target: &mut dyn Target, hint: &str) -> Result<()> {
    if !target.exists(image::SYSTEM)? {
        return Err(Error::usage(format!(
            "{} is not a Windows image: it has no {}{hint}",
            target.describe(),
            image::SYSTEM
        )));
    }
    Ok(())
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
    plan_keeping_hives(target, options, extra).map(|(plan, _)| plan)
}

/// [`plan`], also giving back the hives the planning loaded, edited as planned (by canonical
/// path), so that applying the plan right away reads none of them again.
fn plan_keeping_hives(
    target: &mut dyn Target,
    options: &GeneralizeOptions,
    extra: &[Box<dyn Provider>],
) -> Result<(Plan, BTreeMap<String, reseal_hive::Hive>)> {
    if let Some(sid) = &options.sid {
        if !sid.is_machine_domain_sid() {
            return Err(Error::bad_value(
                Input::Sid,
                sid,
                "not a machine SID: it must be S-1-5-21-A-B-C",
            ));
        }
    }
    let selection = operations::Selection::of(options)?;
    let answer = match &options.unattend {
        Some(path) => Some(answer_file::AnswerFile::load(path)?),
        None => None,
    };
    let builtin = providers::builtin_providers(options, &selection);
    let providers: Vec<&dyn Provider> = builtin.iter().chain(extra).map(AsRef::as_ref).collect();
    let run = if options.generalize {
        "generalize"
    } else {
        "reseal"
    };
    let record = run_record::RunRecord::new(run, options);
    plan_with_providers(target, options, answer.as_ref(), &providers, true, &record)
}

/// Plans `providers` in order on `target`, after the validation checks when `validate`, then
/// the run's `record` in the image when anything changes; gives back the plan, naming the
/// checks and providers that ran, and the hives it loaded, edited as planned.
fn plan_with_providers(
    target: &mut dyn Target,
    options: &GeneralizeOptions,
    answer: Option<&answer_file::AnswerFile>,
    providers: &[&dyn Provider],
    validate: bool,
    record: &run_record::RunRecord,
) -> Result<(Plan, BTreeMap<String, reseal_hive::Hive>)> {
    if target.has_interrupted_run()? {
        return Err(Error::interrupted_run(&target.describe()));
    }
    target.prepare_for_writes()?;
    let entropy = options.entropy();
    target.set_entropy(entropy.split());
    let mut image = Image::new(target);
    image.set_fixed_time(options.fixed_time());
    let mut plan = Plan::new();
    if validate {
        let checks = validate::validate(&mut image, options)?;
        plan.operations = checks.iter().map(|outcome| outcome.check).collect();
        plan.checks = checks;
    } else {
        validate::refuse_unrestorable_hives(&mut image)?;
    }
    for provider in providers {
        plan.operations.push(provider.name());
        let mut ctx = PlanContext::new(
            &mut image,
            options,
            answer,
            &entropy,
            &mut plan,
            provider.name(),
        );
        provider.plan(&mut ctx).map_err(|e| Error {
            message: format!("{}: {}", provider.name(), e.message),
            ..e
        })?;
    }
    run_record::plan_record(&mut image, &mut plan, record, entropy.now())?;
    Ok((plan, image.into_hives()))
}

/// Applies `plan` to `target`, all-or-nothing.
pub fn apply(target: &mut dyn Target, plan: &Plan) -> Result<ApplyReport> {
    apply::apply(target, plan, &NoProgress)
}

/// Plans, then applies unless `options.dry_run`.
pub fn generalize(
    target: &mut dyn Target,
    options: &GeneralizeOptions,
    extra: &[Box<dyn Provider>],
) -> Result<(Plan, Option<ApplyReport>)> {
    generalize_with_progress(target, options, extra, &NoProgress)
}

/// [`generalize`], reporting its phases (planning, writing each change, committing) to
/// `progress`.
pub fn generalize_with_progress(
    target: &mut dyn Target,
    options: &GeneralizeOptions,
    extra: &[Box<dyn Provider>],
    progress: &dyn Progress,
) -> Result<(Plan, Option<ApplyReport>)> {
    let (plan, hives) = progress::in_phase(progress, "reading the image and planning", || {
        plan_keeping_hives(target, options, extra)
    })?;
    if options.dry_run {
        return Ok((plan, None));
    }
    let report = apply::apply_with_hives(target, &plan, Some(hives), progress)?;
    Ok((plan, Some(report)))
}

/// Renames the machine in place without generalizing: the computer name (and description)
/// goes into every registry value that holds it (`providers::computer_name::SetComputerName`),
/// nothing else changes; the setup state stays as it is. Plans, then applies unless
/// `rename.dry_run`. A name Windows would refuse is a usage error naming the rule it breaks.
pub fn rename(target: &mut dyn Target, rename: &Rename) -> Result<(Plan, Option<ApplyReport>)> {
    rename_with_progress(target, rename, &NoProgress)
}

/// [`rename`], reporting its phases to `progress`.
pub fn rename_with_progress(
    target: &mut dyn Target,
    rename: &Rename,
    progress: &dyn Progress,
) -> Result<(Plan, Option<ApplyReport>)> {
    // Refused before the image is read.
    providers::computer_name::validate_concrete_computer_name(rename.computer_name.trim())?;
    if let Some(description) = &rename.description {
        providers::computer_name::validate_description(description)?;
    }
    let options = rename.as_options();
    let provider = providers::computer_name::SetComputerName {
        name: rename.computer_name.clone(),
        description: rename.description.clone(),
    };
    let (plan, hives) = progress::in_phase(progress, "reading the image and planning", || {
        let record = run_record::RunRecord::new("rename", rename);
        plan_with_providers(target, &options, None, &[&provider], false, &record)
    })?;
    if rename.dry_run {
        return Ok((plan, None));
    }
    let report = apply::apply_with_hives(target, &plan, Some(hives), progress)?;
    Ok((plan, Some(report)))
}

/// Finishes (committed) or discards (not committed) what an interrupted run left: a directory's
/// journal, a disk image's redo log (a WIM never needs anything); `None` when there is nothing.
pub fn recover(target: &mut dyn Target) -> Result<Option<RecoveryOutcome>> {
    target.recover()
}
