//! [`apply`]: carries out a [`Plan`] all-or-nothing, in one transaction of the target.
//!
//! Everything is computed before the first write: each touched hive gets all its registry
//! changes in plan order and is committed to new bytes; each change is checked against the image
//! first, so a plan made from another state of the image is refused instead of half-applied.
//! Then the writes are staged in a transaction of the target, which commits them at once (see
//! [`Target`]).
//!
//! When the plan was just made on the same target ([`crate::generalize`]), the hives the planning
//! loaded and edited are committed as they are: each hive is read and its logs replayed once
//! per run.

use std::collections::btree_map::{BTreeMap, Entry};

use reseal_hive::Hive;
use reseal_nt::domain_swap::DomainSwap;

use crate::error::{Error, Result};
use crate::image::{hive_logs, load_hive, Image};
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
    apply_with_hives(target, plan, None, progress)
}

/// [`apply`], with the hives the plan edits already loaded and edited as planned (by canonical
/// path), when the plan was just made on this target.
pub(crate) fn apply_with_hives(
    target: &mut dyn Target,
    plan: &Plan,
    edited_hives: Option<BTreeMap<String, Hive>>,
    progress: &dyn Progress,
) -> Result<ApplyReport> {
    refuse_mixed_changes(plan)?;
    target.begin()?;
    let mut report = ApplyReport::default();
    let result = (|| {
        let mut writes = in_phase(progress, "committing the hives", || {
            hive_writes(target, plan, edited_hives, &mut report)
        })?;
        writes.extend(file_writes(target, plan, &mut report)?);
        stage_all(target, writes, progress)?;
        swap_file_security(target, plan)?;
        // Even with nothing to write the target may owe its output (a differencing child).
        target.commit(progress)
    })();
    if result.is_err() {
        // Whatever was staged is dropped, so the target shows the image as it is again.
        target.abort();
    }
    result.map(|()| report)
}

/// One write of a run, decided before the transaction begins.
enum Write {
    /// Replace the existing file at `path` (an emptied hive log has empty contents).
    Replace { path: String, contents: Vec<u8> },
    /// Create the file at `path`.
    Create { path: String, contents: Vec<u8> },
    /// Delete the file at `path`.
    DeleteFile { path: String },
    /// Delete the directory at `path` with everything in it.
    DeleteDirectory { path: String },
}

/// Stages `writes` in the open transaction of `target`, one progress step each.
fn stage_all(target: &mut dyn Target, writes: Vec<Write>, progress: &dyn Progress) -> Result<()> {
    progress.start("staging the changes", Some(writes.len() as u64));
    let result = writes
        .into_iter()
        .enumerate()
        .try_for_each(|(index, write)| {
            match write {
                Write::Replace { path, contents } => {
                    target.replace_file(&path, &contents)?;
                    target.give_back(contents);
                }
                Write::Create { path, contents } => target.create_file(&path, &contents)?,
                Write::DeleteFile { path } => target.delete_file(&path)?,
                Write::DeleteDirectory { path } => target.delete_dir_all(&path)?,
            }
            progress.advance(index as u64 + 1);
            Ok(())
        });
    progress.finish();
    result
}

/// Stages the plan's SID replacements in the file-system security descriptors, each checked
/// to change what the plan's scan found.
fn swap_file_security(target: &mut dyn Target, plan: &Plan) -> Result<()> {
    for change in &plan.changes {
        let Action::SwapFileSecurity {
            old_domain,
            new_domain,
            found,
        } = &change.action
        else {
            continue;
        };
        let swap = plan_domain_swap(old_domain, new_domain)?;
        let swapped = target.swap_file_security(&swap)?;
        if swapped != *found {
            return Err(stale(
                &target.describe(),
                format!(
                    "{} file security descriptors named {old_domain}, not the {} planned",
                    swapped.descriptors, found.descriptors
                ),
            ));
        }
    }
    Ok(())
}

/// The swap a plan's change names by the texts of its two domain SIDs.
fn plan_domain_swap(old_domain: &str, new_domain: &str) -> Result<DomainSwap> {
    let parse = |text: &str| {
        reseal_nt::Sid::parse_machine_sid(text)
            .map_err(|e| Error::usage(format!("the plan's domain SID {text}: {e}")))
    };
    DomainSwap::new(&parse(old_domain)?, &parse(new_domain)?)
        .map_err(|e| Error::usage(format!("the plan's domain SIDs: {e}")))
}

/// The error for a change that does not match the image.
fn stale(file: &str, what: String) -> Error {
    Error::other(
        Some(file),
        format!("{what}: the image changed since the plan was made; plan again"),
    )
}

/// Refuses plans that both edit a hive and write or delete its file or logs directly.
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

/// Commits each hive the plan edits and returns the writes (hive bytes, emptied logs). Hives
/// edited by the planning are committed as they are; otherwise each is opened once and gets
/// its changes in plan order, each checked against it first.
fn hive_writes(
    target: &mut dyn Target,
    plan: &Plan,
    edited_hives: Option<BTreeMap<String, Hive>>,
    report: &mut ApplyReport,
) -> Result<Vec<Write>> {
    // Hives in the order the plan first touches them.
    let mut order: Vec<String> = Vec::new();
    for path in plan.changes.iter().filter_map(|c| c.action.hive()) {
        if !order
            .iter()
            .any(|seen| canonical_path(seen) == canonical_path(path))
        {
            order.push(path.to_string());
        }
    }
    let mut hives = match edited_hives {
        Some(hives) => hives,
        None => load_and_edit(target, plan)?,
    };
    let mut writes = Vec::new();
    for path in order {
        let Some(hive) = hives.remove(&canonical_path(&path)) else {
            return Err(stale(
                &path,
                "the hive the plan edits was not loaded".to_string(),
            ));
        };
        writes.push(Write::Replace {
            path: path.clone(),
            contents: hive.into_committed(),
        });
        for log in hive_logs(target, &path)? {
            writes.push(Write::Replace {
                path: log,
                contents: Vec::new(),
            });
        }
        report.hives_written.push(path);
    }
    Ok(writes)
}

/// Loads each hive the plan edits once and makes its changes in plan order.
fn load_and_edit(target: &mut dyn Target, plan: &Plan) -> Result<BTreeMap<String, Hive>> {
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
                entry.insert(hive)
            }
        };
        edit_hive(hive, path, &change.action)?;
    }
    Ok(hives)
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
        Action::SwapKeySecurity {
            old_domain,
            new_domain,
            descriptors,
            ..
        } => {
            let swap = plan_domain_swap(old_domain, new_domain)?;
            let swapped = crate::plan::swap_domain_in_key_security(hive, &swap).map_err(err)?;
            if swapped != *descriptors {
                return Err(stale(
                    path,
                    format!(
                        "{swapped} key security descriptors named {old_domain}, not the \
                         {descriptors} planned"
                    ),
                ));
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// The plan's file changes as writes, each checked against the image as the earlier changes
/// leave it.
fn file_writes(
    target: &mut dyn Target,
    plan: &Plan,
    report: &mut ApplyReport,
) -> Result<Vec<Write>> {
    let mut image = Image::new(target);
    let mut writes = Vec::new();
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
                report.files_written.push(path.clone());
                let (path, contents) = (path.clone(), contents.clone());
                writes.push(if *existed {
                    Write::Replace { path, contents }
                } else {
                    Write::Create { path, contents }
                });
            }
            Action::DeleteFile { path } => {
                if !image.exists(path)? {
                    return Err(stale(path, "the file to delete is missing".to_string()));
                }
                image.plan_delete(path);
                writes.push(Write::DeleteFile { path: path.clone() });
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
                writes.push(Write::DeleteDirectory { path: path.clone() });
                report.directories_deleted.push(path.clone());
            }
            _ => {}
        }
    }
    Ok(writes)
}
