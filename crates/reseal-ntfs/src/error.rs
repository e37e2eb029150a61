//! Errors of the NTFS layer. Every error names the image and, where there is one, the path.

use std::path::{Path, PathBuf};

use reseal_ntfs_sys::Failure;

/// A refusal or failure of an NTFS operation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The partition is BitLocker-encrypted: its boot sector says `-FVE-FS-`.
    #[error("{}: the volume is BitLocker-encrypted (boot sector signature -FVE-FS-); decrypt it in Windows (manage-bde -off) before editing the image", .image.display())]
    BitLocker { image: PathBuf },
    /// The partition holds no NTFS file system.
    #[error("{}: not an NTFS volume: {reason}", .image.display())]
    NotNtfs { image: PathBuf, reason: String },
    /// hiberfil.sys holds a hibernation image (full hibernation or Fast Startup): writing now
    /// would be lost or corrupt the volume when Windows resumes.
    #[error("{}: Windows is hibernated or was shut down with Fast Startup (hiberfil.sys is active); boot it and shut down fully (shutdown /s /t 0) or disable Fast Startup, then retry", .image.display())]
    Hibernated { image: PathBuf },
    /// The `$Volume` dirty flag is set: chkdsk is due and the metadata may be inconsistent.
    #[error("{}: the NTFS volume is marked dirty (chkdsk is pending); run chkdsk /f in Windows, then retry", .image.display())]
    Dirty { image: PathBuf },
    /// `$LogFile` holds changes Windows has not applied yet.
    #[error("{}: the NTFS journal ($LogFile) holds unapplied changes because Windows did not shut down cleanly; boot it and shut down fully, then retry", .image.display())]
    UncleanJournal { image: PathBuf },
    /// An NTFS structure is damaged: `structure` at byte `offset` of the volume (when known)
    /// is not what NTFS writes, for `reason`.
    #[error("{}: damaged NTFS {structure}{}: {reason}", .image.display(), at_offset(*.offset))]
    Damaged {
        image: PathBuf,
        structure: &'static str,
        offset: Option<u64>,
        reason: String,
    },
    /// A write on a volume mounted read-only.
    #[error("{}: the volume is mounted read-only", .image.display())]
    ReadOnly { image: PathBuf },
    /// A path that cannot name a file on Windows.
    #[error("{}: invalid path {path:?}: {reason}", .image.display())]
    InvalidPath {
        image: PathBuf,
        path: String,
        reason: String,
    },
    #[error("{}: {path}: no such file or directory", .image.display())]
    NotFound { image: PathBuf, path: String },
    #[error("{}: {path}: already exists", .image.display())]
    AlreadyExists { image: PathBuf, path: String },
    #[error("{}: {path}: is a directory", .image.display())]
    IsADirectory { image: PathBuf, path: String },
    #[error("{}: {path}: not a directory", .image.display())]
    NotADirectory { image: PathBuf, path: String },
    /// Several entries differ only in case (POSIX names) and none matches exactly.
    #[error("{}: {path}: ambiguous, several names match without regard to case: {}", .image.display(), .candidates.join(", "))]
    AmbiguousName {
        image: PathBuf,
        path: String,
        candidates: Vec<String>,
    },
    /// A file whose data cannot be rewritten safely: compressed, encrypted, or a
    /// reparse point such as a WOF/CompactOS-compressed file.
    #[error("{}: {path}: {reason}", .image.display())]
    Unsupported {
        image: PathBuf,
        path: String,
        reason: String,
    },
    /// A security descriptor that cannot be parsed.
    #[error("{}: {path}: invalid security descriptor: {reason}", .image.display())]
    InvalidSecurityDescriptor {
        image: PathBuf,
        path: String,
        reason: String,
    },
    /// libntfs-3g failed; `errno` as it reported it, with the block layer's error when a device
    /// read or write was the cause.
    #[error("{}: {action} {path}: {reason}", .image.display())]
    Ntfs {
        image: PathBuf,
        path: String,
        action: &'static str,
        errno: i32,
        reason: String,
        /// The block layer's error (already in `reason`), kept so callers can classify it: a
        /// damaged container is not a file system failure.
        device: Option<Box<reseal_disk::Error>>,
    },
    /// The block layer failed outside libntfs-3g (reading the boot sector).
    #[error(transparent)]
    Disk(#[from] reseal_disk::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

fn at_offset(offset: Option<u64>) -> String {
    offset.map_or_else(String::new, |offset| format!(" at volume offset {offset}"))
}

/// An [`Error::Ntfs`] for a failed libntfs-3g call, or [`Error::Damaged`] when libntfs-3g
/// found damage: it answers EIO for records, attributes and indexes it cannot trust (a failed
/// device read comes with the block layer's error instead).
pub(crate) fn ntfs_error(
    image: &Path,
    action: &'static str,
    path: &str,
    failure: Failure,
) -> Error {
    if failure.errno == libc::EIO && failure.device_error.is_none() {
        return Error::Damaged {
            image: image.to_path_buf(),
            structure: "file system",
            offset: None,
            reason: format!(
                "libntfs-3g cannot {action} {path}: a record, attribute or index on the way is damaged (bad fixups, attribute lengths or signature)"
            ),
        };
    }
    let reason = failure.to_string();
    Error::Ntfs {
        image: image.to_path_buf(),
        path: path.to_string(),
        action,
        errno: failure.errno,
        reason,
        device: failure.device_error.map(Box::new),
    }
}
