//! [`apply`]: carries out a [`Plan`] all-or-nothing, through the journal.
//!
//! Everything is computed before the first write: each touched hive is opened once (logs
//! replayed), gets all its registry changes in plan order and is committed to new bytes; each
//! change is checked against the image first, so a plan made from another state of the image is
//! refused instead of half-applied. Then the journal takes over (see [`crate::journal`]), or,
//! for a target that commits atomically itself (a WIM), the operations are staged on the target
//! and committed at once.

use std::collections::btree_map::{BTreeMap, Entry};

use reseal_hive::Hive;

use crate::error::{Error, Result};
use crate::image::{hive_logs, load_hive, Image};
use crate::journal::{self, Operation};
use crate::plan::{Action, Plan};
use crate::progress::{in_phase, Progress};
use crate::targets::{canonical_path, Target};

/// What [`apply`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ApplyReport {
    /// Hives committed and written (their transaction logs emptied).
    pub hives_written: Vec<String>,
    /// Files written (created or replaced).
    pub files_written: Vec<String>,
    /// Files deleted.
    pub files_deleted: Vec<String>,
    /// Directories deleted.
    pub directories_deleted: Vec<String>,
}

/// Applies `plan` to `target`: all changes or none, even across a crash. `progress` hears of
/// the hive commits, each write or delete, and the target's commit.
pub fn apply(target: &mut dyn Target, plan: &Plan, progress: &dyn Progress) -> Result<ApplyReport> {
    journal::ensure_no_journal(target)?;
    refuse_mixed_changes(plan)?;
    let mut report = ApplyReport::default();
    let mut operations = in_phase(progress, "committing the hives", || {
        hive_operations(target, plan, &mut report)
    })?;
    operations.extend(file_operations(target, plan, &mut report)?);
    if operations.is_empty() {
        if target.commits_atomically() {
            // Nothing to write, but the target may owe its output (a differencing child).
            in_phase(progress, "writing the changes into the image", || {
                target.commit()
            })?;
        }
        return Ok(report);
    }
    if target.commits_atomically() {
        // The target's own commit makes the run all-or-nothing; an error before it leaves the
        // image as it was, and the staged writes are dropped so the target shows that too.
        let staged = journal::perform_all(target, &operations, progress).and_then(|()| {
            in_phase(progress, "writing the changes into the image", || {
                target.commit()
            })
        });
        if let Err(error) = staged {
            let _ = target.discard_staged();
            return Err(error);
        }
        return Ok(report);
    }
    in_phase(progress, "writing the journal", || {
        journal::commit(target, &operations)
    })?;
    journal::perform_all(target, &operations, progress)
        .and_then(|()| journal::finish(target))
        .map_err(Error::after_commit_point)?;
    Ok(report)
}

/// The error for a change that does not match the image.
fn stale(file: &str, what: String) -> Error {
    Error::other(
        Some(file),
        format!("{what}: the image changed since the plan was made; plan again"),
    )
}

/// Refuses plans that both edit a hive and write or delete its file or logs directly, and plans
/// that touch the journal folder.
fn refuse_mixed_changes(plan: &Plan) -> Result<()> {
    let hives: Vec<String> = plan
        .changes
        .iter()
        .filter_map(|c| c.action.hive())
        .map(canonical_path)
        .collect();
    for change in &plan.changes {
        let path = match &change.action {
            Action::WriteFile { path, .. }
            | Action::DeleteFile { path }
            | Action::DeleteDirectory { path } => canonical_path(path),
            _ => continue,
        };
        if path == canonical_path(journal::JOURNAL_DIR)
            || path.starts_with(&format!("{}\\", canonical_path(journal::JOURNAL_DIR)))
        {
            return Err(Error::usage(format!(
                "the plan changes {path}, inside reseal's own journal folder ({})",
                change.provider
            )));
        }
        if let Some(hive) = hives.iter().find(|h| {
            **h == path
                || h.starts_with(&format!("{path}\\"))
                || path.starts_with(&format!("{h}.LOG"))
        }) {
            return Err(Error::usage(format!(
                "the plan both edits the hive {hive} and changes the file {path} ({}): one or the other",
                change.provider
            )));
        }
    }
    Ok(())
}

/// Opens each hive the plan edits once, makes its changes in plan order, commits it, and
/// returns the writes (hive bytes, emptied logs).
fn hive_operations(
    target: &mut dyn Target,
    plan: &Plan,
    report: &mut ApplyReport,
) -> Result<Vec<Operation>> {
    // Hives in the order the plan first touches them.
    let mut order: Vec<String> = Vec::new();
    let mut hives: BTreeMap<String, Hive> = BTreeMap::new();
    for change in &plan.changes {
        let Some(path) = change.action.hive() else {
            continue;
        };
        let hive = match hives.entry(canonical_path(path)) {
            Entry::Occupied(entry) => entry.into_mut(),
            Entry::Vacant(entry) => {
                let (hive, _) = load_hive(target, path)?.ok_or_else(|| {
                    stale(path, "the hive the plan edits does not exist".to_string())
                })?;
                order.push(path.to_string());
                entry.insert(hive)
            }
        };
        edit_hive(hive, path, &change.action)?;
    }
    let mut operations = Vec::new();
    for path in order {
        let Some(mut hive) = hives.remove(&canonical_path(&path)) else {
            continue;
        };
        operations.push(Operation::Write {
            path: path.clone(),
            contents: hive.commit(),
        });
        for log in hive_logs(target, &path)? {
            operations.push(Operation::Empty { path: log });
        }
        report.hives_written.push(path);
    }
    Ok(operations)
}

/// Makes one registry change, after checking the hive is in the state the plan saw.
fn edit_hive(hive: &mut Hive, path: &str, action: &Action) -> Result<()> {
    let err = |e| Error::from_hive(path, e);
    let current = |hive: &Hive, key: &str, name: &str| -> Result<Option<(_, Vec<u8>)>> {
        match hive.value(key, name).map_err(err)? {
            Some(v) => Ok(Some((
                v.value_type().map_err(err)?,
                v.data().map_err(err)?.into_owned(),
            ))),
            None => Ok(None),
        }
    };
    match action {
        Action::SetValue {
            key,
            name,
            value_type,
            data,
            before,
            ..
        } => {
            if current(hive, key, name)? != *before {
                return Err(stale(
                    path,
                    format!("value {key}\\{name:?} is not as planned"),
                ));
            }
            if hive.key(key).map_err(err)?.is_none() {
                return Err(stale(path, format!("key {key} does not exist")));
            }
            hive.set_value(key, name, *value_type, data).map_err(err)
        }
        Action::DeleteValue {
            key, name, before, ..
        } => {
            if current(hive, key, name)?.as_ref() != Some(before) {
                return Err(stale(
                    path,
                    format!("value {key}\\{name:?} is not as planned"),
                ));
            }
            hive.delete_value(key, name).map(drop).map_err(err)
        }
        Action::CreateKey { key, .. } => match hive.create_key(key).map_err(err)? {
            true => Ok(()),
            false => Err(stale(path, format!("key {key} already exists"))),
        },
        Action::DeleteKey { key, .. } => match hive.delete_key(key).map_err(err)? {
            true => Ok(()),
            false => Err(stale(path, format!("key {key} does not exist"))),
        },
        Action::RenameKey { key, new_name, .. } => {
            if hive.key(key).map_err(err)?.is_none() {
                return Err(stale(path, format!("key {key} does not exist")));
            }
            hive.rename_key(key, new_name).map_err(err)
        }
        _ => Ok(()),
    }
}

/// The plan's file changes as operations, each checked against the image as the earlier changes
/// leave it.
fn file_operations(
    target: &mut dyn Target,
    plan: &Plan,
    report: &mut ApplyReport,
) -> Result<Vec<Operation>> {
    let mut image = Image::new(target);
    let mut operations = Vec::new();
    for change in &plan.changes {
        match &change.action {
            Action::WriteFile {
                path,
                contents,
                existed,
                ..
            } => {
                if image.exists(path)? != *existed {
                    let state = if *existed {
                        "is missing"
                    } else {
                        "already exists"
                    };
                    return Err(stale(path, format!("the file {state}")));
                }
                image.plan_write(path, contents);
                operations.push(Operation::Write {
                    path: path.clone(),
                    contents: contents.clone(),
                });
                report.files_written.push(path.clone());
            }
            Action::DeleteFile { path } => {
                if !image.exists(path)? {
                    return Err(stale(path, "the file to delete is missing".to_string()));
                }
                image.plan_delete(path);
                operations.push(Operation::DeleteFile { path: path.clone() });
                report.files_deleted.push(path.clone());
            }
            Action::DeleteDirectory { path } => {
                if !image.exists(path)? {
                    return Err(stale(
                        path,
                        "the directory to delete is missing".to_string(),
                    ));
                }
                image.plan_delete_dir(path);
                operations.push(Operation::DeleteDirectory { path: path.clone() });
                report.directories_deleted.push(path.clone());
            }
            _ => {}
        }
    }
    Ok(operations)
}
