//! The journal: how a run survives a crash.
//!
//! Before the first change, every new file content (hives included) is staged in
//! `reseal-journal\` at the image root with a manifest, each made durable, then a `COMMITTED`
//! marker is written: that rename is the moment the run is decided. Then each file is replaced
//! atomically and the journal is removed. A later run that finds a journal rolls forward (redoes
//! every operation; each one can be redone safely) when it is committed, and rolls back (deletes
//! it) otherwise: nothing in the image is touched before the marker exists, and the marker is
//! removed only after every operation is done.
//!
//! An NTFS security descriptor set on a file of an ntfs-3g mount (its `system.ntfs_acl`) is
//! one more operation: the new descriptor is in the manifest, and setting it again is as safe
//! as writing a file again, so it rolls forward with the rest.
//!
//! Only the directory target has a journal: a WIM and a disk image commit atomically in their
//! own ways.

use reseal_nt::security_descriptor::SecurityDescriptor;
use serde::{Deserialize, Serialize};

use super::{write_file, FileStore};
use crate::error::{Error, Remedy, Result};
use crate::limits;
use crate::progress::{NoProgress, Progress};
use crate::targets::{split_parent, RecoveryOutcome};

/// The journal folder at the image root.
pub const JOURNAL_DIR: &str = "reseal-journal";
const MANIFEST: &str = r"reseal-journal\manifest.json";
const COMMITTED: &str = r"reseal-journal\COMMITTED";
const STAGED_DIR: &str = r"reseal-journal\staged";
/// The marker's contents once every operation is done and the journal is being removed.
const DONE: &[u8] = b"done\n";
const MANIFEST_VERSION: u32 = 1;

/// One file operation of a run, as the journal records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Operation {
    /// Write `contents` to `path` (replace keeping metadata, or create).
    Write { path: String, contents: Vec<u8> },
    /// Empty the file at `path` if it exists (a hive's transaction log).
    Empty { path: String },
    /// Delete the file at `path` if it exists.
    DeleteFile { path: String },
    /// Delete the directory at `path` with its contents if it exists.
    DeleteDirectory { path: String },
    /// Set the NTFS security descriptor of the file or directory at `path`.
    SetSecurity { path: String, descriptor: Vec<u8> },
}

impl Operation {
    /// The image path the operation changes.
    pub(crate) fn path(&self) -> &str {
        match self {
            Operation::Write { path, .. }
            | Operation::Empty { path }
            | Operation::DeleteFile { path }
            | Operation::DeleteDirectory { path }
            | Operation::SetSecurity { path, .. } => path,
        }
    }
}

/// The manifest as stored: the operations, with staged file names and checksums for writes.
#[derive(Debug, Serialize, Deserialize)]
struct Manifest {
    version: u32,
    entries: Vec<ManifestEntry>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
enum ManifestEntry {
    Write {
        path: String,
        staged: String,
        size: u64,
        crc32: u32,
    },
    Empty {
        path: String,
    },
    DeleteFile {
        path: String,
    },
    DeleteDirectory {
        path: String,
    },
    SetSecurity {
        path: String,
        /// The self-relative descriptor, in hex.
        descriptor: String,
    },
}

impl ManifestEntry {
    /// The image path the entry changes.
    fn path(&self) -> &str {
        match self {
            ManifestEntry::Write { path, .. }
            | ManifestEntry::Empty { path }
            | ManifestEntry::DeleteFile { path }
            | ManifestEntry::DeleteDirectory { path }
            | ManifestEntry::SetSecurity { path, .. } => path,
        }
    }
}

/// The error for a run that finds a journal: the interrupted run must be recovered first.
pub(crate) fn interrupted_run_error() -> Error {
    Error {
        remedy: Some(Remedy::Recover),
        ..Error::other(
            Some(JOURNAL_DIR),
            "an earlier reseal run on this image was interrupted",
        )
    }
}

/// Stages `operations` and commits the journal. Nothing outside the journal folder is touched.
/// On failure the partial journal is removed (best effort; a leftover one is rolled back later).
pub(crate) fn commit(target: &mut dyn FileStore, operations: &[Operation]) -> Result<()> {
    if target.exists(JOURNAL_DIR)? {
        return Err(interrupted_run_error());
    }
    let result = stage(target, operations);
    if result.is_err() {
        let _ = target.delete_dir_all(JOURNAL_DIR);
    }
    result
}

fn stage(target: &mut dyn FileStore, operations: &[Operation]) -> Result<()> {
    let mut entries = Vec::with_capacity(operations.len());
    for (index, operation) in operations.iter().enumerate() {
        entries.push(match operation {
            Operation::Write { path, contents } => {
                let staged = format!("{:04}", index + 1);
                target.create_file(&format!(r"{STAGED_DIR}\{staged}"), contents)?;
                ManifestEntry::Write {
                    path: path.clone(),
                    staged,
                    size: contents.len() as u64,
                    crc32: crc32fast::hash(contents),
                }
            }
            Operation::Empty { path } => ManifestEntry::Empty { path: path.clone() },
            Operation::DeleteFile { path } => ManifestEntry::DeleteFile { path: path.clone() },
            Operation::DeleteDirectory { path } => {
                ManifestEntry::DeleteDirectory { path: path.clone() }
            }
            Operation::SetSecurity { path, descriptor } => ManifestEntry::SetSecurity {
                path: path.clone(),
                descriptor: reseal_nt::hex::encode(descriptor),
            },
        });
    }
    let manifest = Manifest {
        version: MANIFEST_VERSION,
        entries,
    };
    let json = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| Error::other(Some(MANIFEST), format!("cannot encode: {e}")))?;
    target.create_file(MANIFEST, &json)?;
    target.create_file(COMMITTED, b"committed\n")
}

/// Carries out committed `operations` in order, then removes the journal. Each operation can be
/// redone, so an interrupted roll-forward is finished by the next one.
pub(crate) fn roll_forward(target: &mut dyn FileStore, operations: &[Operation]) -> Result<()> {
    perform_all(target, operations, &NoProgress)?;
    finish(target)
}

/// Carries out `operations` in order, first removing what an interrupted earlier attempt may
/// have left beside each file; one phase of `progress` with a step per operation.
pub(crate) fn perform_all(
    target: &mut dyn FileStore,
    operations: &[Operation],
    progress: &dyn Progress,
) -> Result<()> {
    progress.start("writing and deleting files", Some(operations.len() as u64));
    let result = operations
        .iter()
        .enumerate()
        .try_for_each(|(index, operation)| {
            // Setting a descriptor writes no temporary file.
            if !matches!(operation, Operation::SetSecurity { .. }) {
                target.discard_incomplete_write(operation.path())?;
            }
            perform(target, operation)?;
            progress.advance(index as u64 + 1);
            Ok(())
        });
    progress.finish();
    result
}

/// Carries out one operation on `target`.
pub(crate) fn perform(target: &mut dyn FileStore, operation: &Operation) -> Result<()> {
    match operation {
        Operation::Write { path, contents } => write_file(target, path, contents),
        Operation::Empty { path } => {
            if target.exists(path)? {
                target.replace_file(path, &[])?;
            }
            Ok(())
        }
        Operation::DeleteFile { path } => target.delete_file(path),
        Operation::DeleteDirectory { path } => target.delete_dir_all(path),
        Operation::SetSecurity { path, descriptor } => {
            target.set_ntfs_security_descriptor(path, descriptor)
        }
    }
}

/// Removes a rolled-forward journal so that a crash at any point of the removal is recognised:
/// the marker first says "done", then the staged files and manifest go, then the marker, then
/// the (by then empty) folder.
pub(crate) fn finish(target: &mut dyn FileStore) -> Result<()> {
    target.replace_file(COMMITTED, DONE)?;
    target.delete_dir_all(STAGED_DIR)?;
    target.delete_file(MANIFEST)?;
    target.delete_file(COMMITTED)?;
    target.delete_dir_all(JOURNAL_DIR)
}

/// `true` when the journal folder holds no file at all (at most an empty `staged` folder): what a
/// crash leaves just before staging starts or just after a finished journal is removed.
fn holds_nothing(target: &mut dyn FileStore) -> Result<bool> {
    let entries = target.list_dir(JOURNAL_DIR)?.unwrap_or_default();
    for entry in entries {
        let empty_staged_dir = entry.is_dir
            && crate::targets::same_path(&entry.name, "staged")
            && target
                .list_dir(STAGED_DIR)?
                .is_none_or(|staged| staged.is_empty());
        if !empty_staged_dir {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Reads a committed journal's operations, checking every staged file before anything is done.
fn read_committed(target: &mut dyn FileStore) -> Result<Vec<Operation>> {
    let corrupt = |why: String| {
        Error::corrupt(
            MANIFEST,
            format!(
                "{why}; the interrupted run cannot be finished. Restore the image from a backup \
                 (the journal folder {JOURNAL_DIR} shows what the run was changing)"
            ),
        )
    };
    // The journal lies in the image, which may be damaged or hostile: nothing larger than
    // reseal writes is read.
    let listed_size = |target: &mut dyn FileStore, path: &str| -> Result<Option<u64>> {
        let (dir, _) = split_parent(path);
        Ok(limits::listed_file(target.list_dir(&dir)?, path).map(|entry| entry.size))
    };
    if let Some(size) = listed_size(target, MANIFEST)? {
        limits::JOURNAL_MANIFEST.check(MANIFEST, size)?;
    }
    let bytes = target
        .read_file(MANIFEST)?
        .ok_or_else(|| corrupt("the journal is committed but its manifest is missing".into()))?;
    let manifest: Manifest = serde_json::from_slice(&bytes)
        .map_err(|e| corrupt(format!("the manifest cannot be read: {e}")))?;
    if manifest.version != MANIFEST_VERSION {
        return Err(corrupt(format!(
            "manifest version {} is not one this reseal knows",
            manifest.version
        )));
    }
    // A path that cannot be in the image (`..`, a drive letter) or a staged file that is not one
    // plain name in the staged folder is damage in the journal, found before anything is read
    // through it.
    for entry in &manifest.entries {
        if let Err(refusal) = crate::targets::path_components(entry.path()) {
            return Err(corrupt(format!("an entry is damaged: {}", refusal.message)));
        }
        if let ManifestEntry::Write { staged, .. } = entry {
            let plain = !staged.is_empty()
                && staged != "."
                && staged != ".."
                && !staged.contains(['\\', '/', ':']);
            if !plain {
                return Err(corrupt(format!(
                    "an entry is damaged: its staged file {staged:?} is not a name in {STAGED_DIR}"
                )));
            }
        }
    }
    let mut operations = Vec::with_capacity(manifest.entries.len());
    for entry in manifest.entries {
        operations.push(match entry {
            ManifestEntry::Write {
                path,
                staged,
                size,
                crc32,
            } => {
                let staged_path = format!(r"{STAGED_DIR}\{staged}");
                if let Some(listed) = listed_size(target, &staged_path)? {
                    limits::STAGED_FILE.check(&staged_path, listed)?;
                }
                let contents = target
                    .read_file(&staged_path)?
                    .ok_or_else(|| corrupt(format!("staged file {staged_path} is missing")))?;
                if contents.len() as u64 != size || crc32fast::hash(&contents) != crc32 {
                    return Err(corrupt(format!(
                        "staged file {staged_path} for {path} is damaged"
                    )));
                }
                Operation::Write { path, contents }
            }
            ManifestEntry::Empty { path } => Operation::Empty { path },
            ManifestEntry::DeleteFile { path } => Operation::DeleteFile { path },
            ManifestEntry::DeleteDirectory { path } => Operation::DeleteDirectory { path },
            ManifestEntry::SetSecurity { path, descriptor } => {
                let descriptor = reseal_nt::hex::decode(&descriptor)
                    .ok()
                    .filter(|bytes| SecurityDescriptor::parse(bytes).is_ok())
                    .ok_or_else(|| {
                        corrupt(format!(
                            "the security descriptor recorded for {path} is damaged"
                        ))
                    })?;
                Operation::SetSecurity { path, descriptor }
            }
        });
    }
    Ok(operations)
}

/// Finishes or discards an interrupted run's journal; `None` when there is none.
pub fn recover(target: &mut dyn FileStore) -> Result<Option<RecoveryOutcome>> {
    if !target.exists(JOURNAL_DIR)? {
        return Ok(None);
    }
    match target.read_file(COMMITTED)? {
        Some(marker) if marker == DONE => {
            target.delete_dir_all(JOURNAL_DIR)?;
            return Ok(Some(RecoveryOutcome::LeftoverRemoved));
        }
        Some(_) => {}
        None => {
            let outcome = if holds_nothing(target)? {
                RecoveryOutcome::LeftoverRemoved
            } else {
                RecoveryOutcome::RolledBack
            };
            target.delete_dir_all(JOURNAL_DIR)?;
            return Ok(Some(outcome));
        }
    }
    let operations = read_committed(target)?;
    roll_forward(target, &operations).map_err(|e| Error {
        message: format!("{} (while finishing an interrupted run)", e.message),
        remedy: Some(Remedy::RecoverAgain),
        ..e
    })?;
    Ok(Some(RecoveryOutcome::RolledForward {
        files: operations.iter().map(|o| o.path().to_string()).collect(),
    }))
}
