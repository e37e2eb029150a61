//! [`DirectoryTarget`]: an image that is a folder on the host (a mounted NTFS volume or a copy),
//! written in transactions through a journal kept in the image.
//!
//! The layers, bottom up:
//! - [`FileStore`]: files written through, each write atomic and durable when it returns;
//!   [`Folder`] is the store of a host folder (Windows path resolution, metadata kept on
//!   replacement).
//! - [`journal`]: how a transaction over a store survives a crash.
//! - [`DirectoryTarget`]: the [`Target`] over a store. Its writes are staged in memory between
//!   [`Target::begin`] and [`Target::commit`]; the commit writes the journal, carries the
//!   writes out and removes the journal. A journal found at open time belongs to an interrupted
//!   run, which [`Target::recover`] finishes or discards.

pub mod folder;
pub mod journal;

use std::collections::HashSet;
use std::path::Path;

pub use folder::{replace_host_file, replace_host_hive, Folder};

use self::journal::{Operation, JOURNAL_DIR};
use crate::error::{Error, Result};
use crate::lock::DIRECTORY_LOCK_FILE;
use crate::progress::Progress;
use crate::targets::{
    canonical_path, path_components, DirEntry, FileSecuritySwap, RecoveryOutcome, Target,
};
use reseal_nt::domain_swap::DomainSwap;

/// Files under one root, written through: each write is atomic (the file is entirely old or
/// entirely new, even after a crash) and durable when it returns. What the journal works on.
pub trait FileStore {
    /// A human-readable name for messages (`directory /mnt/win`).
    fn describe(&self) -> String;
    /// The contents of the file at `path`, or `None` when it does not exist.
    fn read_file(&mut self, path: &str) -> Result<Option<Vec<u8>>>;
    /// The entries of the directory at `path` (`""` = the root), or `None` when it does not exist.
    fn list_dir(&mut self, path: &str) -> Result<Option<Vec<DirEntry>>>;
    /// `true` when a file or directory exists at `path`.
    fn exists(&mut self, path: &str) -> Result<bool>;
    /// Replaces the existing file at `path` with `contents`, keeping its metadata.
    fn replace_file(&mut self, path: &str, contents: &[u8]) -> Result<()>;
    /// Creates the file at `path` (it must not exist), creating missing parent directories.
    fn create_file(&mut self, path: &str, contents: &[u8]) -> Result<()>;
    /// Deletes the file at `path`; a missing file is not an error.
    fn delete_file(&mut self, path: &str) -> Result<()>;
    /// Deletes the directory at `path` with everything in it; a missing one is not an error.
    fn delete_dir_all(&mut self, path: &str) -> Result<()>;
    /// Removes whatever an interrupted [`FileStore::replace_file`] or
    /// [`FileStore::create_file`] of `path` may have left beside it (a half-written temporary
    /// file). Used by journal recovery.
    fn discard_incomplete_write(&mut self, path: &str) -> Result<()>;
    /// The NTFS security descriptor of the file or directory at `path` when the store keeps
    /// one (a volume mounted with ntfs-3g shows it as an extended attribute), else `None`.
    fn ntfs_security_descriptor(&mut self, path: &str) -> Result<Option<Vec<u8>>> {
        let _ = path;
        Ok(None)
    }
    /// Sets the NTFS security descriptor of the existing file or directory at `path`, durably
    /// when it returns; a store without such descriptors refuses.
    fn set_ntfs_security_descriptor(&mut self, path: &str, descriptor: &[u8]) -> Result<()> {
        let _ = descriptor;
        Err(Error::other(
            Some(path),
            "cannot set its NTFS security descriptor: this folder keeps none",
        ))
    }
}

/// Writes `contents` to `path` in `store`: replaces the file when it exists, else creates it.
pub fn write_file(store: &mut dyn FileStore, path: &str, contents: &[u8]) -> Result<()> {
    if store.exists(path)? {
        store.replace_file(path, contents)
    } else {
        store.create_file(path, contents)
    }
}

/// A file or directory (its image path) and its security descriptor with the new domain.
type SwappedDescriptor = (String, Vec<u8>);

/// An image folder, written in journaled transactions (see the module documentation).
pub struct DirectoryTarget {
    store: Box<dyn FileStore>,
    /// The writes of the open transaction, in order; `None` outside a transaction.
    staged: Option<Vec<Operation>>,
}

impl DirectoryTarget {
    /// Opens the image folder at `root` (it must be a directory).
    pub fn open(root: &Path) -> Result<DirectoryTarget> {
        Ok(DirectoryTarget::over(Box::new(Folder::open(root)?)))
    }

    /// A target over any write-through store (a test can give one that fails on purpose).
    pub fn over(store: Box<dyn FileStore>) -> DirectoryTarget {
        DirectoryTarget {
            store,
            staged: None,
        }
    }

    /// `true` when the open transaction already writes the file at `path`.
    fn stages_write_to(&self, path: &str) -> bool {
        let wanted = canonical_path(path);
        self.staged.iter().flatten().any(|operation| {
            matches!(operation, Operation::Write { .. })
                && canonical_path(operation.path()) == wanted
        })
    }

    /// Stages `operation` in the open transaction, refusing paths in the journal's own folder
    /// and the lock file.
    fn stage(&mut self, operation: Operation) -> Result<()> {
        let path = canonical_path(operation.path());
        let journal = canonical_path(JOURNAL_DIR);
        if path == journal || path.starts_with(&format!("{journal}\\")) {
            return Err(Error::usage(format!(
                "{} lies in reseal's own journal folder ({JOURNAL_DIR})",
                operation.path()
            )));
        }
        if path == canonical_path(DIRECTORY_LOCK_FILE) {
            return Err(Error::usage(format!(
                "{} is reseal's own lock file",
                operation.path()
            )));
        }
        match self.staged.as_mut() {
            Some(staged) => {
                staged.push(operation);
                Ok(())
            }
            None => Err(Error::usage(format!(
                "{}: a write outside a transaction (begin one first)",
                operation.path()
            ))),
        }
    }

    /// Every file and directory whose NTFS security descriptor names the old domain of `swap`,
    /// with its descriptor swapped, and their count; checked whole before anything is staged.
    fn descriptors_to_swap(
        &mut self,
        swap: &DomainSwap,
    ) -> Result<(FileSecuritySwap, Vec<SwappedDescriptor>)> {
        let mut distinct: HashSet<Vec<u8>> = HashSet::new();
        let mut swapped_files = Vec::new();
        let mut pending = vec![String::new()];
        while let Some(dir) = pending.pop() {
            let Some(entries) = self.list_dir(&dir)? else {
                continue;
            };
            let mut paths: Vec<String> = Vec::new();
            if dir.is_empty() {
                paths.push(String::new());
            }
            for entry in entries {
                if dir.is_empty() && entry.name.eq_ignore_ascii_case(JOURNAL_DIR) {
                    continue;
                }
                let path = if dir.is_empty() {
                    entry.name
                } else {
                    format!("{dir}\\{}", entry.name)
                };
                if entry.is_dir {
                    pending.push(path.clone());
                }
                paths.push(path);
            }
            for path in paths {
                let Some(descriptor) = self.store.ntfs_security_descriptor(&path)? else {
                    continue;
                };
                let swapped = swap.swap_in_descriptor(&descriptor).map_err(|e| {
                    Error::corrupt(
                        format!("{}: {path}", self.store.describe()),
                        format!("its NTFS security descriptor (system.ntfs_acl) is damaged: {e}"),
                    )
                })?;
                if let Some(swapped) = swapped {
                    swapped_files.push((path, swapped));
                    distinct.insert(descriptor);
                }
            }
        }
        let found = FileSecuritySwap {
            descriptors: distinct.len() as u64,
            files: swapped_files.len() as u64,
        };
        Ok((found, swapped_files))
    }
}

impl Target for DirectoryTarget {
    fn describe(&self) -> String {
        self.store.describe()
    }

    fn read_file(&mut self, path: &str) -> Result<Option<Vec<u8>>> {
        self.store.read_file(path)
    }

    fn list_dir(&mut self, path: &str) -> Result<Option<Vec<DirEntry>>> {
        let mut entries = self.store.list_dir(path)?;
        // The lock file of the run is not part of the image.
        if path_components(path)?.is_empty() {
            if let Some(entries) = entries.as_mut() {
                entries.retain(|entry| !entry.name.eq_ignore_ascii_case(DIRECTORY_LOCK_FILE));
            }
        }
        Ok(entries)
    }

    fn exists(&mut self, path: &str) -> Result<bool> {
        self.store.exists(path)
    }

    fn begin(&mut self) -> Result<()> {
        if self.staged.is_some() {
            return Ok(());
        }
        if self.has_interrupted_run()? {
            return Err(journal::interrupted_run_error());
        }
        self.staged = Some(Vec::new());
        Ok(())
    }

    fn replace_file(&mut self, path: &str, contents: &[u8]) -> Result<()> {
        path_components(path)?;
        if !self.store.exists(path)? && !self.stages_write_to(path) {
            return Err(Error::other(
                Some(path),
                "cannot replace: the file does not exist in the image",
            ));
        }
        // Emptying a file (a hive's transaction log) is recorded as such: it needs no staged copy.
        let operation = if contents.is_empty() {
            Operation::Empty {
                path: path.to_string(),
            }
        } else {
            Operation::Write {
                path: path.to_string(),
                contents: contents.to_vec(),
            }
        };
        self.stage(operation)
    }

    fn create_file(&mut self, path: &str, contents: &[u8]) -> Result<()> {
        path_components(path)?;
        if self.store.exists(path)? {
            return Err(Error::other(Some(path), "cannot create: it already exists"));
        }
        self.stage(Operation::Write {
            path: path.to_string(),
            contents: contents.to_vec(),
        })
    }

    fn delete_file(&mut self, path: &str) -> Result<()> {
        path_components(path)?;
        self.stage(Operation::DeleteFile {
            path: path.to_string(),
        })
    }

    fn delete_dir_all(&mut self, path: &str) -> Result<()> {
        if path_components(path)?.is_empty() {
            return Err(Error::usage("refusing to delete the whole image"));
        }
        self.stage(Operation::DeleteDirectory {
            path: path.to_string(),
        })
    }

    fn commit(&mut self, progress: &dyn Progress) -> Result<()> {
        let operations = self.staged.take().unwrap_or_default();
        if operations.is_empty() {
            return Ok(());
        }
        let store = self.store.as_mut();
        crate::progress::in_phase(progress, "writing the journal", || {
            journal::commit(store, &operations)
        })?;
        journal::perform_all(store, &operations, progress)
            .and_then(|()| journal::finish(store))
            .map_err(Error::after_commit_point)
    }

    fn abort(&mut self) {
        self.staged = None;
    }

    /// Counts the files whose NTFS security descriptor (an ntfs-3g mount's `system.ntfs_acl`)
    /// names the old domain; a folder without such descriptors has none.
    fn scan_file_security(&mut self, swap: &DomainSwap) -> Result<FileSecuritySwap> {
        self.descriptors_to_swap(swap).map(|(found, _)| found)
    }

    /// Stages the new descriptor of every file whose descriptor names the old domain, each
    /// set after the transaction's file writes (a replaced file keeps its old descriptor, then
    /// gets the new one), all of them in the journal: old or new after a crash.
    fn swap_file_security(&mut self, swap: &DomainSwap) -> Result<FileSecuritySwap> {
        if self.staged.is_none() {
            return Err(Error::usage(format!(
                "{}: a write outside a transaction (begin one first)",
                self.describe()
            )));
        }
        let (found, swapped) = self.descriptors_to_swap(swap)?;
        for (path, descriptor) in swapped {
            self.stage(Operation::SetSecurity { path, descriptor })?;
        }
        Ok(found)
    }

    fn has_interrupted_run(&mut self) -> Result<bool> {
        self.store.exists(JOURNAL_DIR)
    }

    fn recover(&mut self) -> Result<Option<RecoveryOutcome>> {
        self.staged = None;
        journal::recover(self.store.as_mut())
    }
}
