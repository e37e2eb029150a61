//! [`DiskTarget`]: the Windows volume of a disk image (`.vhd`, `.vhdx`, raw), read and written
//! without mounting anything.
//!
//! This is an adapter: the disk editing itself (the image opened once, the Windows partition
//! found, the read-only mount on staged memory, the writable remount, the commit through the
//! redo log or into a differencing child, recovery) is [`reseal_ntfs::WindowsDisk`]'s. Here its
//! operations become the [`Target`] trait's, and its typed errors become reseal [`Error`]s that
//! name the caller's input ([`Input::Partition`], [`Input::OutputDiff`]) and the remedy.
//!
//! The image file is not touched until [`Target::commit`], which writes only the bytes that
//! differ, either into the image through a redo log beside it (all-or-nothing across a crash:
//! see [`reseal_disk::redo_log`]) or, with [`DiskTarget::set_output_diff`], into a new
//! differencing disk whose parent is the image, which stays byte-identical. An error or a
//! refusal before the commit leaves the image as it was.
//!
//! Refused with the reason, before any plan is made (see [`Target::prepare_for_writes`]): a
//! BitLocker volume, a hibernated volume (or Fast Startup), a volume marked dirty or with an
//! unclean `$LogFile`; while applying, still before anything is written: hives that are NTFS-
//! or WOF-compressed.

use std::path::Path;

use reseal_disk::Format;
use reseal_ntfs::windows_disk::SYSTEM_HIVE;
use reseal_ntfs::{DiskError, Volume, WindowsDisk};

use super::{path_components, DirEntry, FileSecuritySwap, RecoveryOutcome, Target};
use crate::error::{Error, ErrorKind, Input, Remedy, Result};
use crate::progress::{in_phase, Progress};
use reseal_nt::domain_swap::DomainSwap;

pub use reseal_ntfs::VolumeLocation;

/// The Windows volume of a disk image.
pub struct DiskTarget {
    disk: WindowsDisk,
    /// The files written or deleted since the last commit, recorded in the redo log.
    changed_paths: Vec<String>,
}

impl DiskTarget {
    /// Opens the disk image at `image` and finds its Windows volume: partition `partition` when
    /// given, else the one NTFS partition that holds Windows. Refuses when none or several do
    /// (listing them). Nothing is written.
    ///
    /// When an interrupted commit left a redo log beside the image, the volume is not read
    /// until [`Target::recover`] has dealt with it.
    pub fn open(image: &Path, partition: Option<u32>) -> Result<DiskTarget> {
        let disk = WindowsDisk::open(image, partition).map_err(|e| from_windows_disk(e, image))?;
        Ok(DiskTarget {
            disk,
            changed_paths: Vec::new(),
        })
    }

    /// Makes [`Target::commit`] write the changes into a new differencing disk at `child`
    /// (`.vhdx` for a VHDX image, `.vhd` for a VHD, `.qcow2`: a qcow2 overlay of an image of
    /// any format), leaving the image itself byte-identical.
    pub fn set_output_diff(&mut self, child: &Path) -> Result<()> {
        self.disk.set_output_diff(child).map_err(|e| self.error(e))
    }

    /// The Windows volume, once found.
    pub fn location(&self) -> Option<&VolumeLocation> {
        self.disk.location()
    }

    /// The volume for reading.
    fn volume(&mut self) -> Result<&Volume> {
        let image = self.disk.image().to_path_buf();
        self.disk.read().map_err(|e| from_windows_disk(e, &image))
    }

    /// Runs `edit` on the volume mounted for writing (into memory), and records `what` for the
    /// redo log's description.
    fn edit(
        &mut self,
        what: String,
        edit: impl FnOnce(&mut Volume) -> reseal_ntfs::Result<()>,
    ) -> Result<()> {
        let result = self.disk.edit(edit);
        result.map_err(|e| self.error(e))?;
        self.changed_paths.push(what);
        Ok(())
    }

    fn error(&self, error: DiskError) -> Error {
        from_windows_disk(error, self.disk.image())
    }

    fn ntfs_error(&self, error: reseal_ntfs::Error) -> Error {
        from_ntfs(error, self.disk.location())
    }
}

impl Target for DiskTarget {
    fn disk_container(&mut self) -> Result<Option<crate::inspect::DiskContainer>> {
        let chain = self.disk.chain().map_err(|e| self.error(e))?;
        Ok(Some(crate::inspect::DiskContainer::from_chain(&chain)))
    }

    fn describe(&self) -> String {
        match self.disk.location() {
            Some(location) => format!("{location} of {}", self.disk.image().display()),
            None => format!("disk image {}", self.disk.image().display()),
        }
    }

    fn read_file(&mut self, path: &str) -> Result<Option<Vec<u8>>> {
        path_components(path)?;
        let result = self.volume()?.read_file(path);
        result.map_err(|e| self.ntfs_error(e))
    }

    fn list_dir(&mut self, path: &str) -> Result<Option<Vec<DirEntry>>> {
        path_components(path)?;
        match self.volume()?.list_dir(path) {
            Ok(entries) => Ok(Some(entries.into_iter().map(DirEntry::from).collect())),
            Err(reseal_ntfs::Error::NotFound { .. } | reseal_ntfs::Error::NotADirectory { .. }) => {
                Ok(None)
            }
            Err(error) => Err(self.ntfs_error(error)),
        }
    }

    fn exists(&mut self, path: &str) -> Result<bool> {
        path_components(path)?;
        let result = self.volume()?.exists(path);
        result.map_err(|e| self.ntfs_error(e))
    }

    fn replace_file(&mut self, path: &str, contents: &[u8]) -> Result<()> {
        path_components(path)?;
        self.edit(format!("replaced {path}"), |volume| {
            volume.replace_file(path, contents)
        })
    }

    fn create_file(&mut self, path: &str, contents: &[u8]) -> Result<()> {
        let components = path_components(path)?;
        self.edit(format!("created {path}"), |volume| {
            for depth in 1..components.len() {
                let directory = components[..depth].join("\\");
                if !volume.exists(&directory)? {
                    volume.create_dir(&directory)?;
                }
            }
            volume.create_file(path, contents)
        })
    }

    fn delete_file(&mut self, path: &str) -> Result<()> {
        if !self.exists(path)? {
            return Ok(());
        }
        self.edit(format!("deleted {path}"), |volume| volume.delete_file(path))
    }

    fn delete_dir_all(&mut self, path: &str) -> Result<()> {
        if !self.exists(path)? {
            return Ok(());
        }
        self.edit(format!("deleted {path}\\"), |volume| {
            volume.delete_dir_all(path)
        })
    }

    fn prepare_for_writes(&mut self) -> Result<()> {
        self.begin()
    }

    fn set_entropy(&mut self, entropy: reseal_nt::Entropy) {
        self.disk.set_entropy(entropy);
    }

    fn begin(&mut self) -> Result<()> {
        let begun = self.disk.begin();
        begun.map_err(|e| self.error(e))
    }

    fn commit(&mut self, progress: &dyn Progress) -> Result<()> {
        let description = std::mem::take(&mut self.changed_paths);
        in_phase(progress, "writing the changes into the image", || {
            let committed = self.disk.commit(&description);
            committed.map_err(|e| self.error(e))
        })
    }

    fn abort(&mut self) {
        self.disk.abort();
        self.changed_paths.clear();
    }

    fn scan_file_security(&mut self, swap: &DomainSwap) -> Result<FileSecuritySwap> {
        let result = self.volume()?.scan_domain_swap(swap);
        let scanned = result.map_err(|e| self.ntfs_error(e))?;
        Ok(FileSecuritySwap {
            descriptors: scanned.descriptors,
            files: scanned.files,
        })
    }

    /// Each file's descriptor set again with the new domain on the volume mounted in memory
    /// (see `reseal_ntfs::SecuritySwap`), reaching the image with every other write through
    /// the redo log at commit.
    fn swap_file_security(&mut self, swap: &DomainSwap) -> Result<FileSecuritySwap> {
        let mut done = reseal_ntfs::SecuritySwap::default();
        self.edit(
            "security descriptors moved to the new domain".to_string(),
            |volume| {
                done = volume.swap_domain(swap)?;
                Ok(())
            },
        )?;
        Ok(FileSecuritySwap {
            descriptors: done.descriptors,
            files: done.files,
        })
    }

    fn has_interrupted_run(&mut self) -> Result<bool> {
        Ok(self.disk.has_pending_redo_log())
    }

    fn recover(&mut self) -> Result<Option<RecoveryOutcome>> {
        self.changed_paths.clear();
        let recovery = self.disk.recover().map_err(|e| self.error(e))?;
        let outcome = match recovery {
            reseal_disk::redo_log::Recovery::Nothing => None,
            reseal_disk::redo_log::Recovery::RolledForward { description } => {
                Some(RecoveryOutcome::RolledForward { files: description })
            }
            reseal_disk::redo_log::Recovery::Discarded => Some(RecoveryOutcome::RolledBack),
        };
        Ok(outcome)
    }
}

impl From<reseal_ntfs::DirEntry> for DirEntry {
    fn from(entry: reseal_ntfs::DirEntry) -> DirEntry {
        DirEntry {
            name: entry.name,
            is_dir: entry.is_dir,
            size: entry.size,
        }
    }
}

/// `true` when `path` names a disk image file this target opens: any regular file that is not
/// a WIM (the format is recognized from its content; see [`reseal_disk::detect_format`]).
pub fn is_disk_image(path: &Path) -> bool {
    path.is_file() && !super::wim::is_wim_file(path)
}

/// A disk-session error as a reseal error naming the input it is about; `image` is the image as
/// given.
fn from_windows_disk(error: DiskError, image: &Path) -> Error {
    let listing = |locations: &[VolumeLocation]| {
        locations
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let shown = image.display();
    match error {
        DiskError::NoPartitionTable { requested, .. } => Error::bad_value(
            Input::Partition,
            requested,
            format!("{shown} has no partition table"),
        ),
        DiskError::NoSuchPartition {
            requested,
            available,
            ..
        } => Error::bad_value(
            Input::Partition,
            requested,
            format!(
                "{shown} has no such partition; it has {}",
                listing(&available)
            ),
        ),
        DiskError::NotNtfs {
            location, reason, ..
        } => match location.partition {
            Some(number) => Error::bad_value(
                Input::Partition,
                number,
                format!("{location} of {shown} is not an NTFS volume ({reason})"),
            ),
            None => Error::usage(format!(
                "{shown} has no partition table and is not an NTFS volume ({reason}); give a \
                 disk image with a Windows partition"
            )),
        },
        DiskError::NoWindows {
            location,
            available,
            ..
        } => match location {
            Some(
                location @ VolumeLocation {
                    partition: Some(number),
                    ..
                },
            ) => Error::bad_value(
                Input::Partition,
                number,
                format!(
                    "{location} of {shown} holds no Windows installation (no \
                     {SYSTEM_HIVE})"
                ),
            ),
            Some(_) => Error::usage(format!(
                "{shown} has no partition table, and its NTFS volume holds no Windows \
                 installation (no {SYSTEM_HIVE})"
            )),
            None => Error::usage(format!(
                "{shown}: no partition holds a Windows installation (an NTFS volume with \
                 {SYSTEM_HIVE}); it has {}",
                listing(&available)
            )),
        },
        DiskError::SeveralWindows { found, .. } => Error {
            remedy: Some(Remedy::ChoosePartition),
            ..Error::usage(format!(
                "{shown} holds more than one Windows installation: {}",
                listing(&found)
            ))
        },
        DiskError::OutputDiffExists { child } => Error::bad_value(
            Input::OutputDiff,
            child.display(),
            "the file exists; give a new file name",
        ),
        DiskError::OutputDiffName { child } => Error::bad_value(
            Input::OutputDiff,
            child.display(),
            "name the differencing disk .vhdx, .vhd or .vmdk (the image's own format) or .qcow2 (a qcow2 overlay)",
        ),
        DiskError::OutputDiffFormat {
            image,
            child,
            image_format,
            ..
        } => {
            let needed = match image_format {
                Format::Vhdx => "a .vhdx or .qcow2 child",
                Format::Vhd => "a .vhd or .qcow2 child",
                Format::Vmdk => "a .vmdk or .qcow2 child",
                Format::Raw | Format::Qcow2 => "a .qcow2 overlay",
            };
            Error::bad_value(
                Input::OutputDiff,
                child.display(),
                format!(
                    "{} is a {} image, which needs {needed}",
                    image.display(),
                    image_format.name()
                ),
            )
        }
        DiskError::RedoLogPending { image } => Error {
            remedy: Some(Remedy::Recover),
            ..Error::other(
                Some(&image.display().to_string()),
                "an interrupted run left its redo log beside the image",
            )
        },
        DiskError::Volume { location, source } => from_ntfs(*source, location.as_ref()),
        DiskError::Disk(error) => from_disk(error),
        // A complete log left behind means the image may hold part of the changes.
        DiskError::CommitIncomplete(error) => from_disk(error).after_commit_point(),
        DiskError::Io {
            path,
            action,
            source,
        } => Error::io(path.display().to_string(), action, &source),
    }
}

/// A container or partition-table error as a reseal error (see [`disk_error_kind`]).
pub fn from_disk(error: reseal_disk::Error) -> Error {
    Error::wrap(disk_error_kind(&error), None, error)
}

/// Damaged or unsupported structures, and a missing or mismatched differencing parent, are
/// input reseal cannot use ([`ErrorKind::CorruptInput`]); failing I/O is any other error ([`ErrorKind::Other`]).
fn disk_error_kind(error: &reseal_disk::Error) -> ErrorKind {
    use reseal_disk::Error as E;
    match error {
        E::Io { .. } | E::ReadOnly { .. } => ErrorKind::Other,
        E::UnusableParent { source, .. } => disk_error_kind(source),
        E::Corrupt { .. }
        | E::Unsupported { .. }
        | E::MissingParent { .. }
        | E::ParentMismatch { .. }
        | E::OutOfRange { .. } => ErrorKind::CorruptInput,
    }
}

/// An NTFS error: a volume Windows left in a state that must not be edited offline
/// (BitLocker, hibernated, dirty, unclean journal) is a refusal ([`ErrorKind::Refused`]); a file or
/// structure that cannot be handled safely (compressed or WOF hives, damaged NTFS) is input
/// reseal cannot use ([`ErrorKind::CorruptInput`]).
fn from_ntfs(error: reseal_ntfs::Error, location: Option<&VolumeLocation>) -> Error {
    use reseal_ntfs::Error as E;
    let kind = match &error {
        E::BitLocker { .. } | E::Hibernated { .. } | E::Dirty { .. } | E::UncleanJournal { .. } => {
            ErrorKind::Refused
        }
        E::NotNtfs { .. }
        | E::Damaged { .. }
        | E::Unsupported { .. }
        | E::InvalidSecurityDescriptor { .. }
        | E::AmbiguousName { .. } => ErrorKind::CorruptInput,
        E::Disk(disk) => disk_error_kind(disk),
        E::Ntfs {
            device: Some(disk), ..
        } => disk_error_kind(disk),
        E::InvalidPath { .. } => ErrorKind::Usage,
        E::ReadOnly { .. }
        | E::NotFound { .. }
        | E::AlreadyExists { .. }
        | E::IsADirectory { .. }
        | E::NotADirectory { .. }
        | E::Ntfs { .. } => ErrorKind::Other,
    };
    let message = match location.and_then(|l| l.partition) {
        Some(number) => format!("{error} (partition {number})"),
        None => error.to_string(),
    };
    Error {
        kind,
        ..Error::other(None, message)
    }
    .with_source(error)
}
