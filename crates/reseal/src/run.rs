//! Running a command on an image file as a user names it: every image of a WIM at once
//! (`index` `"all"`), a new copy of a WIM that is edited instead of the input, and an
//! interrupted run recovered before anything else.
//!
//! [`inspect_images`], [`generalize_images`], [`rename_images`] and [`newsid_images`] report what happens to each image through a
//! callback as it happens, so a front end can show the first images' results even when a later
//! one fails. Every image of a WIM (`"all"`) is generalized first and then written by one
//! commit, so an error on one leaves every image as it was; those images are reported once the
//! commit is done.

use std::fs::{self, File, OpenOptions as FileOptions};
use std::path::Path;
use std::sync::Arc;

use crate::error::{Error, Input, Result};
use crate::inspect::Inspection;
use crate::lock::{ImageLock, LockMode};
use crate::progress::Progress;
use crate::targets::{RecoveryOutcome, Target, WimTarget};
use crate::{ApplyReport, GeneralizeOptions, NewSidOptions, OpenOptions, Plan, Provider, Rename};

/// The index value that selects every image of a WIM.
pub const ALL_IMAGES: &str = "all";

/// Which images to run on and where the result goes.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions<'a> {
    /// The image (`index`: a 1-based index, a name, or [`ALL_IMAGES`] for a WIM), the partition
    /// and the differencing child, as for [`crate::open_target_with`].
    pub open: OpenOptions<'a>,
    /// Copy the WIM to this new file and edit the copy, leaving the input untouched; the copy
    /// is removed again when the run fails (WIM files only).
    pub output: Option<&'a Path>,
}

/// What happened to one image of a run, reported as it happens.
#[derive(Debug)]
pub enum RunEvent {
    /// An interrupted earlier run was finished or discarded before this run's work.
    Recovered {
        /// The image, as [`Target::describe`] names it.
        target: String,
        /// What recovery did.
        outcome: RecoveryOutcome,
    },
    /// The image was inspected.
    Inspected {
        /// The image, as [`Target::describe`] names it.
        target: String,
        /// What it is and what state it is in.
        inspection: Box<Inspection>,
    },
    /// The image was planned and, unless it was a dry run, written (generalized, resealed or
    /// renamed).
    Generalized {
        /// The image, as [`Target::describe`] names it.
        target: String,
        /// The changes.
        plan: Plan,
        /// What was written; `None` for a dry run.
        applied: Option<ApplyReport>,
    },
}

/// The images `index` selects in the image file at `path`: every image of a WIM for
/// [`ALL_IMAGES`] (any case), else just the one given (or none, the default).
pub fn selected_images(path: &Path, index: Option<&str>) -> Result<Vec<Option<String>>> {
    match index {
        Some(all) if all.eq_ignore_ascii_case(ALL_IMAGES) => {
            if !crate::is_wim_file(path) {
                return Err(Error::bad_value(
                    Input::Index,
                    ALL_IMAGES,
                    format!(
                        "{} is not a WIM file; only a WIM file has images to choose",
                        path.display()
                    ),
                ));
            }
            let images = crate::WimTarget::list_images(path)?;
            Ok(images
                .iter()
                .map(|image| Some(image.index.to_string()))
                .collect())
        }
        other => Ok(vec![other.map(str::to_string)]),
    }
}

/// What a run does to one open image, telling the run's events to its second argument.
type ImageWork<'a> = dyn FnMut(&mut dyn Target, &mut dyn FnMut(RunEvent)) -> Result<()> + 'a;

/// Locks the image file at `path` (`mode`; waiting when `options.wait`) for the whole run,
/// opens each selected image of it in turn, finishes or discards what an interrupted run left
/// in it, and runs `work` on it; stops at the first error.
///
/// Recovery needs the image to itself: a run that holds it shared and finds an interrupted run
/// lets go and takes it exclusively first, so it never recovers what a live run is writing.
fn for_each_image(
    path: &Path,
    options: &OpenOptions,
    mode: LockMode,
    each: &mut dyn FnMut(RunEvent),
    work: &mut ImageWork,
) -> Result<()> {
    let mut lock = Arc::new(ImageLock::acquire(path, mode, options.wait)?);
    // The images of a WIM are listed under the lock: no run changes the file meanwhile.
    for index in &selected_images(path, options.index)? {
        let open = OpenOptions {
            index: index.as_deref(),
            ..*options
        };
        let mut target = crate::open_locked(path, &open, Arc::clone(&lock))?;
        if lock.mode() == LockMode::Shared && target.has_interrupted_run()? {
            drop(target);
            drop(lock);
            lock = Arc::new(ImageLock::acquire(path, LockMode::Exclusive, options.wait)?);
            target = crate::open_locked(path, &open, Arc::clone(&lock))?;
        }
        if let Some(outcome) = target.recover()? {
            each(RunEvent::Recovered {
                target: target.describe(),
                outcome,
            });
        }
        let image = target.describe();
        work(target.as_mut(), each).map_err(|e| e.naming_image(&image, Some(path)))?;
    }
    Ok(())
}

/// Inspects each image `options.index` selects of the image file at `path` (an interrupted run
/// is recovered first), reporting each to `each`. The image is held shared (other readers may
/// hold it too, never a writer), and exclusively while an interrupted run is recovered.
pub fn inspect_images(
    path: &Path,
    options: &OpenOptions,
    each: &mut dyn FnMut(RunEvent),
) -> Result<()> {
    let mode = LockMode::Shared;
    for_each_image(path, options, mode, each, &mut |target, each| {
        let inspection = crate::inspect(target)?;
        each(RunEvent::Inspected {
            target: target.describe(),
            inspection: Box::new(inspection),
        });
        Ok(())
    })
}

/// Generalizes (or reseals, by `options`) each image `run.open.index` selects of the image
/// file at `path`, or of its copy at `run.output`; an interrupted run is recovered first. Each
/// image is reported to `each` once done. The image file is locked exclusively for the whole
/// run (the input shared while it is copied).
pub fn generalize_images(
    path: &Path,
    run: &RunOptions,
    options: &GeneralizeOptions,
    extra: &[Box<dyn Provider>],
    progress: &dyn Progress,
    each: &mut dyn FnMut(RunEvent),
) -> Result<()> {
    edit_images(path, run, options.dry_run, progress, each, &mut |target| {
        crate::generalize_with_progress(target, options, extra, progress)
    })
}

/// Renames the machine (see [`crate::rename`]) in each image `run.open.index` selects of the
/// image file at `path`, or of its copy at `run.output`, as [`generalize_images`] runs.
pub fn rename_images(
    path: &Path,
    run: &RunOptions,
    rename: &Rename,
    progress: &dyn Progress,
    each: &mut dyn FnMut(RunEvent),
) -> Result<()> {
    edit_images(path, run, rename.dry_run, progress, each, &mut |target| {
        crate::rename_with_progress(target, rename, progress)
    })
}

/// Gives each image `run.open.index` selects of the image file at `path` (or of its copy at
/// `run.output`) a new machine SID (see [`crate::newsid`]), as [`generalize_images`] runs:
/// every image of a WIM (`all`) by one commit. Each image is its own installation, so each
/// gets its own SID: `options.sid` when given (the same for every image), else one drawn for
/// each image in turn from one source, seeded by `options.seed` for a reproducible run.
pub fn newsid_images(
    path: &Path,
    run: &RunOptions,
    options: &NewSidOptions,
    progress: &dyn Progress,
    each: &mut dyn FnMut(RunEvent),
) -> Result<()> {
    let fixed_time = options
        .source_date_epoch
        .map(|seconds| reseal_nt::FileTime::from_unix(seconds, 0));
    let sids = crate::newsid::sid_source(&reseal_nt::Entropy::new(options.seed, fixed_time));
    edit_images(path, run, options.dry_run, progress, each, &mut |target| {
        crate::newsid::newsid_drawing_from(target, options, Some(&sids), progress)
    })
}

/// What a writing run does to one open image: its plan and what was written.
type EditWork<'a> = dyn FnMut(&mut dyn Target) -> Result<(Plan, Option<ApplyReport>)> + 'a;

/// Runs `work` on each selected image of `path`, or of its copy at `run.output` (not made for a
/// dry run), locked exclusively, reporting each as [`RunEvent::Generalized`].
fn edit_images(
    path: &Path,
    run: &RunOptions,
    dry_run: bool,
    progress: &dyn Progress,
    each: &mut dyn FnMut(RunEvent),
    work: &mut EditWork,
) -> Result<()> {
    // Refuses `all` for a file that is not a WIM before anything is copied.
    selected_images(path, run.open.index)?;
    if run.output.is_some() && !crate::is_wim_file(path) {
        return Err(Error::bad_input(
            Input::Output,
            format!(
                "{} is not a WIM file: only a WIM is copied and the copy edited (a disk image's \
                 changes go into a differencing disk, --output-diff)",
                path.display()
            ),
        ));
    }
    let edited = match run.output {
        // A dry run writes nothing, so the plan is made on the input itself.
        Some(output) if !dry_run => {
            // No run may change the input while it is copied.
            let _input = ImageLock::acquire(path, LockMode::Shared, run.open.wait)?;
            copy_to_new_file(path, output)?;
            output
        }
        _ => path,
    };
    let every_wim_image = run
        .open
        .index
        .is_some_and(|index| index.eq_ignore_ascii_case(ALL_IMAGES));
    let result = if every_wim_image && crate::is_wim_file(edited) {
        edit_wim_images(edited, run, progress, each, work)
    } else {
        let mode = LockMode::Exclusive;
        for_each_image(edited, &run.open, mode, each, &mut |target, each| {
            let (plan, applied) = work(target)?;
            each(RunEvent::Generalized {
                target: target.describe(),
                plan,
                applied,
            });
            Ok(())
        })
    };
    if result.is_err() && edited != path {
        // The copy is the input with at most some images done: not the asked-for result.
        let _ = fs::remove_file(edited);
    }
    result
}

/// Runs `work` on every image of the WIM file at `path` through one handle and writes them all
/// by one commit (one blob table, XML data and header), so that the file holds every old image
/// or every new one. The images are reported to `each` once that commit is done; on an error
/// nothing is written and nothing is reported.
fn edit_wim_images(
    path: &Path,
    run: &RunOptions,
    progress: &dyn Progress,
    each: &mut dyn FnMut(RunEvent),
    work: &mut EditWork,
) -> Result<()> {
    let _lock = ImageLock::acquire(path, LockMode::Exclusive, run.open.wait)?;
    // Listed under the lock: no run changes the file meanwhile.
    let images = selected_images(path, run.open.index)?;
    let mut target: Option<WimTarget> = None;
    let mut events = Vec::with_capacity(images.len());
    let result = (|| {
        for index in images.iter().flatten() {
            let target = match &mut target {
                Some(target) => {
                    target.select_image(index)?;
                    target
                }
                None => {
                    let mut opened = WimTarget::open(path, index)?;
                    opened.defer_commits();
                    target.insert(opened)
                }
            };
            let image = target.describe();
            crate::check_windows_image(target, "")
                .map_err(|e| e.naming_image(&image, Some(path)))?;
            let (plan, applied) = work(target).map_err(|e| e.naming_image(&image, Some(path)))?;
            events.push(RunEvent::Generalized {
                target: target.describe(),
                plan,
                applied,
            });
        }
        match &mut target {
            Some(target) => target.commit_all(progress),
            None => Ok(()),
        }
    })();
    if result.is_err() {
        if let Some(target) = &mut target {
            target.abort();
        }
        return result;
    }
    for event in events {
        each(event);
    }
    Ok(())
}

/// Copies `from` to the new file `to` and flushes it, refusing to overwrite anything; a
/// partial copy is removed.
fn copy_to_new_file(from: &Path, to: &Path) -> Result<()> {
    let shown = to.display().to_string();
    let mut source =
        File::open(from).map_err(|e| Error::io(from.display().to_string(), "cannot open", &e))?;
    let mut destination = FileOptions::new()
        .write(true)
        .create_new(true)
        .open(to)
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                Error::bad_value(
                    Input::Output,
                    &shown,
                    "the file exists; give a new file name",
                )
            } else {
                Error::io(&shown, "cannot create", &e)
            }
        })?;
    let copied = std::io::copy(&mut source, &mut destination)
        .and_then(|_| destination.sync_all())
        .map_err(|e| Error::io(&shown, "cannot copy the input into it", &e));
    if copied.is_err() {
        let _ = fs::remove_file(to);
    }
    copied
}
