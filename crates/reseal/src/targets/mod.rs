//! [`Target`]: the offline image reseal reads and writes, addressed by Windows-style paths.
//!
//! Paths are relative to the volume root, separated by `\` (a `/` is accepted too), and compared
//! case-insensitively as Windows does: `Windows\System32\config\SYSTEM`. `..`, drive letters and
//! absolute paths are refused so nothing outside the image is ever touched.

pub mod directory;
pub mod disk;
pub mod wim;

pub use directory::DirectoryTarget;
pub use disk::{DiskTarget, VolumeLocation};
pub use wim::{WimImageInfo, WimTarget};

use crate::error::{Error, Result};
use crate::journal::RecoveryOutcome;

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

/// An offline Windows image.
///
/// A target either writes through or commits atomically itself:
/// - writing through (the directory target): every write is atomic and durable when it returns
///   (the file is either entirely old or entirely new, even after a crash, and it survives a
///   power loss); apply makes the whole run all-or-nothing with its journal in the image.
/// - committing atomically ([`Target::commits_atomically`], the WIM and disk targets): writes
///   are staged and visible to later reads through the target, and [`Target::commit`] makes all
///   of them durable at once; a crash or an error before it leaves the image as it was (a disk
///   target may need [`Target::recover_interrupted_commit`] to get there). apply writes no
///   journal there and calls `commit` once at the end.
pub trait Target {
    /// A human-readable name for messages (`directory /mnt/win`).
    fn describe(&self) -> String;
    /// The contents of the file at `path`, or `None` when it does not exist.
    fn read_file(&mut self, path: &str) -> Result<Option<Vec<u8>>>;
    /// The entries of the directory at `path` (`""` = the root), or `None` when it does not exist.
    fn list_dir(&mut self, path: &str) -> Result<Option<Vec<DirEntry>>>;
    /// `true` when a file or directory exists at `path`.
    fn exists(&mut self, path: &str) -> Result<bool>;
    /// Replaces the existing file at `path` with `contents`, keeping its metadata (permissions,
    /// owner, access and creation times, extended attributes such as NTFS security descriptors).
    fn replace_file(&mut self, path: &str, contents: &[u8]) -> Result<()>;
    /// Creates the file at `path` (it must not exist) with `contents`, creating missing parent
    /// directories. It gets the parent directory's default permissions.
    fn create_file(&mut self, path: &str, contents: &[u8]) -> Result<()>;
    /// Deletes the file at `path`; a missing file is not an error.
    fn delete_file(&mut self, path: &str) -> Result<()>;
    /// Deletes the directory at `path` with everything in it; a missing directory is not an error.
    fn delete_dir_all(&mut self, path: &str) -> Result<()>;
    /// Checks that the image can be written, before any plan is made: a disk target mounts its
    /// volume for writing here, which refuses a hibernated or dirty volume. Writes need not
    /// call it first. Targets that can always be written have nothing to check.
    fn prepare_for_writes(&mut self) -> Result<()> {
        Ok(())
    }
    /// Removes whatever an interrupted [`Target::replace_file`] or [`Target::create_file`] of
    /// `path` may have left beside it (a half-written temporary file). Used by journal recovery.
    fn discard_incomplete_write(&mut self, path: &str) -> Result<()>;
    /// `true` when the target stages writes and makes them all durable at once in
    /// [`Target::commit`], so a run needs no journal: the image is entirely old until the commit
    /// and entirely new after it, even across a crash.
    fn commits_atomically(&self) -> bool {
        false
    }
    /// Makes every staged write durable at once. Targets that write through have nothing to do.
    fn commit(&mut self) -> Result<()> {
        Ok(())
    }
    /// Drops every staged write, so that reads show the image as it is on disk again (used when
    /// a run fails before its commit). Targets that write through have nothing staged.
    fn discard_staged(&mut self) -> Result<()> {
        Ok(())
    }
    /// For a target that commits atomically: finishes or discards a commit that a crash
    /// interrupted (a disk target's redo log), `None` when there was none. A WIM never needs
    /// it: its commit ends with the header write.
    fn recover_interrupted_commit(&mut self) -> Result<Option<RecoveryOutcome>> {
        Ok(None)
    }
}

/// Writes `contents` to `path`: [`Target::replace_file`] when the file exists, else
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
