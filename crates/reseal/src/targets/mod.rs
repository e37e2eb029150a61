//! [`Target`]: the offline image reseal reads and writes, addressed by Windows-style paths.
//!
//! Paths are relative to the volume root, separated by `\` (a `/` is accepted too), and compared
//! case-insensitively as Windows does: `Windows\System32\config\SYSTEM`. `..`, drive letters and
//! absolute paths are refused so nothing outside the image is ever touched.

pub mod directory;
pub mod disk;
pub mod wim;

pub use directory::{DirectoryTarget, FileStore, Folder};
pub use disk::{DiskTarget, VolumeLocation};
pub use wim::{WimImageInfo, WimTarget};

use reseal_nt::domain_swap::DomainSwap;

use crate::error::{Error, Result};
use crate::progress::Progress;

/// One entry of a directory listing.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DirEntry {
    /// The name as stored on disk (its case preserved).
    pub name: String,
    /// `true` for a directory.
    pub is_dir: bool,
    /// The size in bytes (0 for directories).
    pub size: u64,
}

/// What [`Target::recover`] did with what an interrupted run left.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case", tag = "outcome")]
pub enum RecoveryOutcome {
    /// The run was committed: its changes were finished.
    RolledForward {
        /// The files the run wrote or deleted.
        files: Vec<String>,
    },
    /// The run was not committed: nothing had been applied; what it left was deleted.
    RolledBack,
    /// The run had left nothing to finish or undo (it had finished and was cleaning up, or had
    /// not staged anything yet); what was left of it was deleted.
    LeftoverRemoved,
}

/// What replacing one domain SID by another in the file system's security descriptors changes.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct FileSecuritySwap {
    /// Distinct descriptors (NTFS $Secure entries, WIM security-table entries, or distinct
    /// ntfs-3g ACL xattr values) that name the old domain.
    pub descriptors: u64,
    /// Files and directories whose descriptor is one of them.
    pub files: u64,
}

/// What the default [`Target::scan_file_security`] and [`Target::swap_file_security`] say.
const FILE_SECURITY_SWAP: &str = "replacing a domain SID in the file security descriptors";

/// An offline Windows image, read at any time and written in transactions.
///
/// A run is: open the target (each container is opened and parsed once), read, [`begin`], stage
/// writes, then [`commit`] or [`abort`]. The commit is all-or-nothing, even across a crash:
/// until its commit point the image is entirely old; after it, entirely new, or finished by
/// [`recover`] (each target keeps what it needs for that: a directory its journal in the image,
/// a disk image a redo log beside it; a WIM needs nothing, its header is written last).
///
/// Reads between `begin` and `commit` are not guaranteed to see the staged writes (a directory
/// stages them in memory, a WIM or a disk image in its own structures): read everything a
/// change depends on first.
///
/// [`begin`]: Target::begin
/// [`commit`]: Target::commit
/// [`abort`]: Target::abort
/// [`recover`]: Target::recover
pub trait Target {
    /// A human-readable name for messages (`directory /mnt/win`).
    fn describe(&self) -> String;
    /// The contents of the file at `path`, or `None` when it does not exist.
    fn read_file(&mut self, path: &str) -> Result<Option<Vec<u8>>>;
    /// The entries of the directory at `path` (`""` = the root), or `None` when it does not exist.
    fn list_dir(&mut self, path: &str) -> Result<Option<Vec<DirEntry>>>;
    /// `true` when a file or directory exists at `path`.
    fn exists(&mut self, path: &str) -> Result<bool>;

    /// Checks, before a plan is made, that the image's state allows writing it: a disk target
    /// mounts its volume for writing (into memory), which refuses a hibernated or dirty volume.
    /// Nothing is written; targets that can always be written have nothing to check.
    fn prepare_for_writes(&mut self) -> Result<()> {
        Ok(())
    }
    /// Starts a transaction, after checking that the image can be written: an interrupted run
    /// must be recovered first, and a disk target mounts its volume for writing (into memory),
    /// which refuses a hibernated or dirty volume. Nothing is written. Starting a transaction
    /// that is already open does nothing.
    fn begin(&mut self) -> Result<()>;
    /// Stages the replacement of the existing file at `path` by `contents`; the file keeps its
    /// metadata (permissions, owner, times, extended attributes such as NTFS security
    /// descriptors).
    fn replace_file(&mut self, path: &str, contents: &[u8]) -> Result<()>;
    /// Stages the creation of the file at `path` (it must not exist) with `contents`, and of its
    /// missing parent directories. It gets the security Windows gives a new file there.
    fn create_file(&mut self, path: &str, contents: &[u8]) -> Result<()>;
    /// Stages the deletion of the file at `path`; a missing file is not an error.
    fn delete_file(&mut self, path: &str) -> Result<()>;
    /// Stages the deletion of the directory at `path` with everything in it; a missing directory
    /// is not an error.
    fn delete_dir_all(&mut self, path: &str) -> Result<()>;
    /// Makes every write staged since [`Target::begin`] durable at once, reporting its steps to
    /// `progress`, and ends the transaction. After an error the image is as it was, unless the
    /// error says the commit point was passed ([`crate::Error::needs_recovery`]).
    fn commit(&mut self, progress: &dyn Progress) -> Result<()>;
    /// Drops every write staged since [`Target::begin`] and ends the transaction.
    fn abort(&mut self);
    /// Takes back a buffer the run is done with (the contents of a file written), for a later
    /// read to fill. Only a WIM target keeps one: each image of a multi-image run reads its
    /// hives into it instead of fresh memory.
    fn give_back(&mut self, buffer: Vec<u8>) {
        drop(buffer);
    }

    /// How many of the image's file-system security descriptors name a SID of `swap`'s old
    /// domain, and the files using them. Reads only.
    fn scan_file_security(&mut self, swap: &DomainSwap) -> Result<FileSecuritySwap> {
        let _ = swap;
        Err(Error::unsupported(&self.describe(), FILE_SECURITY_SWAP))
    }
    /// Stages, in the open transaction, the replacement of `swap`'s old domain SID by the new
    /// one in every file and directory's security descriptor (lengths kept); made durable by
    /// `commit` with the other writes, old-or-new after a crash.
    fn swap_file_security(&mut self, swap: &DomainSwap) -> Result<FileSecuritySwap> {
        let _ = swap;
        Err(Error::unsupported(&self.describe(), FILE_SECURITY_SWAP))
    }

    /// `true` when an interrupted run left something that [`Target::recover`] must finish or
    /// discard before the image is read for a plan or written.
    fn has_interrupted_run(&mut self) -> Result<bool>;
    /// Finishes (committed) or discards (not committed) what an interrupted run left; `None`
    /// when there is nothing.
    fn recover(&mut self) -> Result<Option<RecoveryOutcome>>;
    /// Gives the next writes `entropy` as their source of times (new and replaced files, the
    /// image's own records: its fixed time, or the clock) and of random values (a container's
    /// identifiers), for a reproducible run. A target whose writes hold neither ignores it.
    fn set_entropy(&mut self, entropy: reseal_nt::Entropy) {
        let _ = entropy;
    }
    /// The container format of a disk image and its chain of files; `None` for a target that
    /// is not a disk image.
    fn disk_container(&mut self) -> Result<Option<crate::inspect::DiskContainer>> {
        Ok(None)
    }
}

/// Stages `contents` at `path`: [`Target::replace_file`] when the file exists, else
/// [`Target::create_file`].
pub fn write_file(target: &mut dyn Target, path: &str, contents: &[u8]) -> Result<()> {
    if target.exists(path)? {
        target.replace_file(path, contents)
    } else {
        target.create_file(path, contents)
    }
}

/// Splits an image path into its components, refusing paths that could leave the image.
pub fn path_components(path: &str) -> Result<Vec<&str>> {
    let components: Vec<&str> = path
        .split(['\\', '/'])
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    let refuse = |why: &str| Err(Error::usage(format!("image path {path:?} {why}")));
    if path.starts_with(['\\', '/']) {
        return refuse("must be relative to the volume root (no leading backslash)");
    }
    for component in &components {
        if *component == ".." {
            return refuse("must not contain \"..\"");
        }
        if component.contains(':') {
            return refuse("must not contain a drive letter or a stream name (\":\")");
        }
    }
    Ok(components)
}

/// `path` in the canonical form used as a map key: components joined by `\`, upper-cased as
/// Windows compares names.
pub fn canonical_path(path: &str) -> String {
    path.split(['\\', '/'])
        .filter(|c| !c.is_empty() && *c != ".")
        .map(upper_case_name)
        .collect::<Vec<_>>()
        .join("\\")
}

/// A file name upper-cased as Windows compares names (Windows' upcase table, one UTF-16 unit to
/// one: see [`reseal_nt::upcase`]).
pub fn upper_case_name(name: &str) -> String {
    reseal_nt::upcase::upcase_str(name)
}

/// `true` when `a` and `b` name the same file on Windows.
pub fn same_path(a: &str, b: &str) -> bool {
    canonical_path(a) == canonical_path(b)
}

/// The parent directory of `path` (`""` for a file at the root) and the final name.
pub fn split_parent(path: &str) -> (String, String) {
    let components: Vec<&str> = path
        .split(['\\', '/'])
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    match components.split_last() {
        Some((name, parents)) => (parents.join("\\"), (*name).to_string()),
        None => (String::new(), String::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_compared_as_windows_does() {
        assert!(same_path(
            r"Windows\System32\config\SYSTEM",
            "windows/system32/CONFIG/system"
        ));
        assert!(!same_path(r"Windows\a", r"Windows\b"));
        assert_eq!(upper_case_name("straße"), "STRAßE");
        // Windows' table leaves the dotless i as it is: "ıdir" is not "IDIR".
        assert!(!same_path(r"Windows\ıdir", r"WINDOWS\IDIR"));
        assert_eq!(
            split_parent(r"Windows\Panther\unattend.xml"),
            (r"Windows\Panther".to_string(), "unattend.xml".to_string())
        );
    }

    #[test]
    fn escaping_paths_are_refused() {
        assert!(path_components(r"..\etc\passwd").is_err());
        assert!(path_components(r"Windows\..\..\x").is_err());
        assert!(path_components(r"\Windows").is_err());
        assert!(path_components(r"C:\Windows").is_err());
        assert_eq!(
            path_components(r"Windows\System32").unwrap(),
            vec!["Windows", "System32"]
        );
    }
}
