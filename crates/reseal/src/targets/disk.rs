//! [`DiskTarget`]: the Windows volume of a disk image (`.vhd`, `.vhdx`, raw), read and written
//! without mounting anything.
//!
//! The layers: `reseal-disk` opens the container and its partition table; the Windows partition
//! is the NTFS volume holding `Windows\System32\config\SYSTEM` (or the one `--partition N`
//! names); `reseal-ntfs` edits that volume through libntfs-3g.
//!
//! The volume is mounted on a [`StagedDevice`] over the image opened read-only, so every write
//! lands in memory and the image file is not touched until [`Target::commit`]. The commit then
//! writes only the bytes that differ, either into the image through a redo log beside it
//! (all-or-nothing across a crash: see [`reseal_disk::redo_log`]) or, with
//! [`DiskTarget::set_output_diff`], into a new differencing disk whose parent is the image,
//! which stays byte-identical. An error or a refusal before the commit leaves the image as it
//! was.
//!
//! Refused with the reason, before any plan is made (see [`Target::begin`]): a
//! BitLocker volume, a hibernated volume (or Fast Startup), a volume marked dirty or with an
//! unclean `$LogFile`; while applying, still before anything is written: hives that are NTFS-
//! or WOF-compressed.

use std::fs;
use std::path::{Path, PathBuf};

use reseal_disk::{redo_log, BlockDevice, Format, PartitionWindow, Staged, StagedDevice};
use reseal_ntfs::Volume;

use super::{path_components, DirEntry, RecoveryOutcome, Target};
use crate::error::{Error, ErrorKind, Result};
use crate::progress::{in_phase, Progress};

/// The file whose presence marks the Windows volume.
const SYSTEM_HIVE: &str = r"Windows\System32\config\SYSTEM";

/// Where on the disk the Windows volume lies.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VolumeLocation {
    /// The 1-based partition number, or `None` for a disk without a partition table whose
    /// whole content is one NTFS volume.
    pub partition: Option<u32>,
    /// Byte offset of the volume on the virtual disk.
    pub start: u64,
    /// Size of the volume in bytes.
    pub size: u64,
}

impl std::fmt::Display for VolumeLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.partition {
            Some(number) => write!(f, "partition {number} ({})", human_size(self.size)),
            None => write!(f, "the whole-disk volume ({})", human_size(self.size)),
        }
    }
}

/// The Windows volume of a disk image.
pub struct DiskTarget {
    /// The image as given.
    image: PathBuf,
    /// The image reads come from: the input, or after a commit with `--output-diff` the child.
    source: PathBuf,
    /// `--partition N`, or `None` to find the Windows partition.
    requested_partition: Option<u32>,
    /// Found at the first mount (deferred while an unfinished commit waits for recovery).
    location: Option<VolumeLocation>,
    output_diff: Option<PathBuf>,
    mounted: Option<Mounted>,
    /// The files written or deleted since the last commit, recorded in the redo log.
    changed_paths: Vec<String>,
}

struct Mounted {
    volume: Volume,
    staged: Staged,
    writable: bool,
}

impl DiskTarget {
    /// Opens the disk image at `image` and finds its Windows volume: partition `partition` when
    /// given, else the one NTFS partition that holds Windows. Refuses when none or several do
    /// (listing them). Nothing is written.
    ///
    /// When an interrupted commit left a redo log beside the image, the volume is not read
    /// until [`Target::recover`] has dealt with it.
    pub fn open(image: &Path, partition: Option<u32>) -> Result<DiskTarget> {
        let mut target = DiskTarget {
            image: image.to_path_buf(),
            source: image.to_path_buf(),
            requested_partition: partition,
            location: None,
            output_diff: None,
            mounted: None,
            changed_paths: Vec::new(),
        };
        if !redo_log::is_pending(image) {
            target.volume()?;
        }
        Ok(target)
    }

    /// Makes [`Target::commit`] write the changes into a new differencing disk at `child`
    /// (`.vhdx` for a VHDX image, `.vhd` for a VHD), leaving the image itself byte-identical.
    pub fn set_output_diff(&mut self, child: &Path) -> Result<()> {
        let shown = child.display();
        if child.exists() {
            return Err(Error::usage(format!(
                "--output-diff {shown}: the file exists; give a new file name"
            )));
        }
        let wanted = match extension_of(child).as_deref() {
            Some("vhdx") | Some("avhdx") => Format::Vhdx,
            Some("vhd") | Some("avhd") => Format::Vhd,
            _ => {
                return Err(Error::usage(format!(
                    "--output-diff {shown}: name the differencing disk .vhdx or .vhd"
                )))
            }
        };
        let format = disk_format(&self.image)?;
        if format != wanted {
            let needed = match format {
                Format::Vhdx => "a .vhdx child",
                Format::Vhd => "a .vhd child",
                Format::Raw => "a VHD or VHDX image: a raw image cannot be a differencing parent; convert it or copy it and generalize the copy",
            };
            return Err(Error::usage(format!(
                "--output-diff {shown}: {} is a {} image, which needs {needed}",
                self.image.display(),
                format_name(format)
            )));
        }
        self.output_diff = Some(child.to_path_buf());
        Ok(())
    }

    /// The Windows volume, once found.
    pub fn location(&self) -> Option<&VolumeLocation> {
        self.location.as_ref()
    }

    /// The volume, mounted read-only on first use.
    fn volume(&mut self) -> Result<&mut Volume> {
        if self.mounted.is_none() {
            self.mounted = Some(self.mount(false)?);
        }
        Ok(&mut self.mounted.as_mut().expect("mounted above").volume)
    }

    /// The volume mounted for writing (into memory): remounts a read-only mount.
    fn writable_volume(&mut self) -> Result<&mut Volume> {
        if !self.mounted.as_ref().is_some_and(|m| m.writable) {
            self.unmount_discarding();
            self.mounted = Some(self.mount(true)?);
        }
        Ok(&mut self.mounted.as_mut().expect("mounted above").volume)
    }

    fn mount(&mut self, writable: bool) -> Result<Mounted> {
        if redo_log::is_pending(&self.source) {
            return Err(Error::other(
                Some(&self.source.display().to_string()),
                "an interrupted run left its redo log beside the image; run `reseal recover` on \
                 the image first",
            ));
        }
        let location = match &self.location {
            Some(location) => location.clone(),
            None => {
                let location = find_windows_volume(&self.source, self.requested_partition)?;
                self.location = Some(location.clone());
                location
            }
        };
        let staged_device = StagedDevice::new(reseal_disk::open(&self.source).map_err(from_disk)?);
        let staged = staged_device.staged();
        let window = PartitionWindow::new(staged_device, location.start, location.size)
            .map_err(from_disk)?;
        let volume =
            Volume::mount(Box::new(window), writable).map_err(|e| from_ntfs(e, Some(&location)))?;
        Ok(Mounted {
            volume,
            staged,
            writable,
        })
    }

    /// Unmounts, dropping whatever was staged.
    fn unmount_discarding(&mut self) {
        if let Some(mounted) = self.mounted.take() {
            // The final write-back only reaches the staged memory, which is dropped with it.
            let _ = mounted.volume.unmount();
        }
        self.changed_paths.clear();
    }

    fn describe_location(&self) -> String {
        match &self.location {
            Some(location) => format!("{location} of {}", self.image.display()),
            None => format!("disk image {}", self.image.display()),
        }
    }

    /// Runs `edit` on the volume mounted for writing (into memory), and records `what` for the
    /// redo log's description.
    fn edit(
        &mut self,
        what: String,
        edit: impl FnOnce(&mut Volume) -> reseal_ntfs::Result<()>,
    ) -> Result<()> {
        let result = edit(self.writable_volume()?);
        result.map_err(|e| self.ntfs_error(e))?;
        self.changed_paths.push(what);
        Ok(())
    }

    fn ntfs_error(&self, error: reseal_ntfs::Error) -> Error {
        from_ntfs(error, self.location.as_ref())
    }
}

impl Target for DiskTarget {
    fn describe(&self) -> String {
        self.describe_location()
    }

    fn read_file(&mut self, path: &str) -> Result<Option<Vec<u8>>> {
        path_components(path)?;
        let result = self.volume()?.read_file(path);
        result.map_err(|e| self.ntfs_error(e))
    }

    fn list_dir(&mut self, path: &str) -> Result<Option<Vec<DirEntry>>> {
        path_components(path)?;
        match self.volume()?.list_dir(path) {
            Ok(entries) => Ok(Some(
                entries
                    .into_iter()
                    .map(|entry| DirEntry {
                        name: entry.name,
                        is_dir: entry.is_dir,
                        size: entry.size,
                    })
                    .collect(),
            )),
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
        self.writable_volume().map(drop)
    }

    fn begin(&mut self) -> Result<()> {
        self.writable_volume().map(drop)
    }

    fn commit(&mut self, progress: &dyn Progress) -> Result<()> {
        in_phase(progress, "writing the changes into the image", || {
            self.commit_staged()
        })
    }

    fn abort(&mut self) {
        self.unmount_discarding();
    }

    fn has_interrupted_run(&mut self) -> Result<bool> {
        Ok(redo_log::is_pending(&self.source))
    }

    fn recover(&mut self) -> Result<Option<RecoveryOutcome>> {
        self.unmount_discarding();
        let recovery = redo_log::recover(&self.source).map_err(from_disk)?;
        let outcome = match recovery {
            redo_log::Recovery::Nothing => None,
            redo_log::Recovery::RolledForward { description } => {
                Some(RecoveryOutcome::RolledForward { files: description })
            }
            redo_log::Recovery::Discarded => Some(RecoveryOutcome::RolledBack),
        };
        Ok(outcome)
    }
}

impl DiskTarget {
    /// Writes the staged changes through the redo log or into the differencing child.
    fn commit_staged(&mut self) -> Result<()> {
        let description = std::mem::take(&mut self.changed_paths);
        let changes = match self.mounted.take() {
            Some(mounted) if mounted.writable => {
                let location = self.location.clone();
                // Unmounting writes libntfs-3g's caches back, into the staged memory.
                mounted
                    .volume
                    .unmount()
                    .map_err(|e| from_ntfs(e, location.as_ref()))?;
                // Without an edit, what the writable mount itself changed (libntfs-3g resets
                // the journal) is not written: a run that changes nothing leaves the image as
                // it was.
                if description.is_empty() {
                    Vec::new()
                } else {
                    mounted.staged.changes().map_err(from_disk)?
                }
            }
            read_only => {
                self.mounted = read_only;
                Vec::new()
            }
        };
        match &self.output_diff {
            None => redo_log::commit(&self.source, &changes, &description).map_err(|e| {
                // A complete log left behind means the image may hold part of the changes.
                if redo_log::is_pending(&self.source) {
                    from_disk(e).after_commit_point()
                } else {
                    from_disk(e)
                }
            })?,
            Some(child) => {
                write_differencing_disk(&self.source, child, &changes)?;
                self.source = child.clone();
                self.output_diff = None;
            }
        }
        Ok(())
    }
}

/// Finds the Windows volume of the disk image at `image` (see [`DiskTarget::open`]).
pub fn find_windows_volume(image: &Path, requested: Option<u32>) -> Result<VolumeLocation> {
    let mut device = reseal_disk::open(image).map_err(from_disk)?;
    let table = reseal_disk::read_partition_table(device.as_mut()).map_err(from_disk)?;
    let shown = image.display();
    let Some(table) = table else {
        let whole = VolumeLocation {
            partition: None,
            start: 0,
            size: device.len(),
        };
        if let Some(number) = requested {
            return Err(Error::usage(format!(
                "--partition {number}: {shown} has no partition table"
            )));
        }
        return match probe(image, &whole)? {
            Probe::Windows => Ok(whole),
            Probe::NoWindows => Err(Error::usage(format!(
                "{shown} has no partition table, and its NTFS volume holds no Windows \
                 installation (no {SYSTEM_HIVE})"
            ))),
            Probe::NotNtfs(reason) => Err(Error::usage(format!(
                "{shown} has no partition table and is not an NTFS volume ({reason}); give a \
                 disk image with a Windows partition"
            ))),
        };
    };
    drop(device);
    let locations: Vec<VolumeLocation> = table
        .partitions
        .iter()
        .map(|partition| VolumeLocation {
            partition: Some(partition.number),
            start: partition.start,
            size: partition.size,
        })
        .collect();
    let listing = || {
        locations
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    if let Some(number) = requested {
        let Some(location) = locations.iter().find(|l| l.partition == Some(number)) else {
            return Err(Error::usage(format!(
                "--partition {number}: {shown} has no such partition; it has {}",
                listing()
            )));
        };
        return match probe(image, location)? {
            Probe::Windows => Ok(location.clone()),
            Probe::NoWindows => Err(Error::usage(format!(
                "--partition {number}: {location} of {shown} holds no Windows installation (no \
                 {SYSTEM_HIVE})"
            ))),
            Probe::NotNtfs(reason) => Err(Error::usage(format!(
                "--partition {number}: {location} of {shown} is not an NTFS volume ({reason})"
            ))),
        };
    }
    let mut windows = Vec::new();
    let mut refusals = Vec::new();
    for location in &locations {
        match probe(image, location) {
            Ok(Probe::Windows) => windows.push(location.clone()),
            Ok(Probe::NoWindows | Probe::NotNtfs(_)) => {}
            // A BitLocker volume cannot be looked into; it may be the Windows one.
            Err(error) if error.kind == ErrorKind::Refused => refusals.push(error),
            Err(error) => return Err(error),
        }
    }
    if windows.is_empty() && !refusals.is_empty() {
        return Err(refusals.remove(0));
    }
    match windows.len() {
        0 => Err(Error::usage(format!(
            "{shown}: no partition holds a Windows installation (an NTFS volume with \
             {SYSTEM_HIVE}); it has {}",
            listing()
        ))),
        1 => Ok(windows.remove(0)),
        _ => Err(Error::usage(format!(
            "{shown} holds more than one Windows installation: {}; choose one with --partition N",
            windows
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// What a volume holds, as far as finding Windows goes.
enum Probe {
    Windows,
    NoWindows,
    NotNtfs(String),
}

/// Mounts the volume at `location` read-only and looks for the SYSTEM hive. A BitLocker volume
/// is an error (a refusal).
fn probe(image: &Path, location: &VolumeLocation) -> Result<Probe> {
    let device = reseal_disk::open(image).map_err(from_disk)?;
    let window = PartitionWindow::new(device, location.start, location.size).map_err(from_disk)?;
    let volume = match Volume::mount(Box::new(window) as Box<dyn BlockDevice>, false) {
        Ok(volume) => volume,
        Err(reseal_ntfs::Error::NotNtfs { reason, .. }) => return Ok(Probe::NotNtfs(reason)),
        Err(error) => return Err(from_ntfs(error, Some(location))),
    };
    let found = volume
        .exists(SYSTEM_HIVE)
        .map_err(|e| from_ntfs(e, Some(location)))?;
    volume.unmount().map_err(|e| from_ntfs(e, Some(location)))?;
    Ok(if found {
        Probe::Windows
    } else {
        Probe::NoWindows
    })
}

/// Writes `changes` into a new differencing disk `child` of `parent`. The child is built under
/// a temporary name and appears under its own only when complete, so a failure or a crash never
/// leaves a partial child behind under the asked-for name.
fn write_differencing_disk(
    parent: &Path,
    child: &Path,
    changes: &[reseal_disk::staged::Change],
) -> Result<()> {
    let mut partial_name = child.file_name().unwrap_or_default().to_os_string();
    partial_name.push(".reseal-partial");
    let partial = child.with_file_name(partial_name);
    let _ = fs::remove_file(&partial);
    let written = (|| {
        match disk_format(parent)? {
            Format::Vhdx => reseal_disk::vhdx::create_differencing(parent, &partial),
            Format::Vhd => reseal_disk::vhd::create_differencing(parent, &partial),
            Format::Raw => {
                return Err(Error::usage(format!(
                    "{}: a raw image cannot be a differencing parent",
                    parent.display()
                )))
            }
        }
        .map_err(from_disk)?;
        let mut device = reseal_disk::open_writable(&partial).map_err(from_disk)?;
        reseal_disk::staged::write_changes(device.as_mut(), changes).map_err(from_disk)?;
        drop(device);
        // A hard link, unlike a rename, never replaces a file that appeared meanwhile.
        fs::hard_link(&partial, child)
            .map_err(|e| Error::io(child.display().to_string(), "cannot create", &e))?;
        reseal_disk::sync_directory_of(child).map_err(|e| {
            // The run fails, so the child it names must not stay.
            let _ = fs::remove_file(child);
            Error::io(
                child.display().to_string(),
                "cannot flush its directory",
                &e,
            )
        })
    })();
    let _ = fs::remove_file(&partial);
    written
}

fn disk_format(image: &Path) -> Result<Format> {
    let mut file = reseal_disk::LocalFile::open(image, false).map_err(from_disk)?;
    reseal_disk::detect_format(&mut file).map_err(from_disk)
}

fn format_name(format: Format) -> &'static str {
    match format {
        Format::Raw => "raw",
        Format::Vhd => "VHD",
        Format::Vhdx => "VHDX",
    }
}

fn extension_of(path: &Path) -> Option<String> {
    path.extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
}

fn human_size(bytes: u64) -> String {
    const GIB: u64 = 1 << 30;
    const MIB: u64 = 1 << 20;
    if bytes >= GIB {
        format!("{:.1} GiB", bytes as f64 / GIB as f64)
    } else {
        format!("{} MiB", bytes / MIB)
    }
}

/// `true` when `path` names a disk image file this target opens: any regular file that is not
/// a WIM (the format is recognized from its content; see [`reseal_disk::detect_format`]).
pub fn is_disk_image(path: &Path) -> bool {
    path.is_file() && !super::wim::is_wim_file(path)
}

/// A container or partition-table error as a reseal error (see [`disk_error_kind`]).
pub fn from_disk(error: reseal_disk::Error) -> Error {
    Error::wrap(disk_error_kind(&error), None, error)
}

/// Damaged or unsupported structures, and a missing or mismatched differencing parent, are
/// input reseal cannot use (exit code 4); failing I/O is any other error (exit code 1).
fn disk_error_kind(error: &reseal_disk::Error) -> ErrorKind {
    use reseal_disk::Error as E;
    match error {
        E::Io { .. } | E::ReadOnly { .. } => ErrorKind::Other,
        E::Corrupt { .. }
        | E::Unsupported { .. }
        | E::MissingParent { .. }
        | E::ParentMismatch { .. }
        | E::OutOfRange { .. } => ErrorKind::CorruptInput,
    }
}

/// An NTFS error: a volume Windows left in a state that must not be edited offline
/// (BitLocker, hibernated, dirty, unclean journal) is a refusal (exit code 3); a file or
/// structure that cannot be handled safely (compressed or WOF hives, damaged NTFS) is input
/// reseal cannot use (exit code 4).
fn from_ntfs(error: reseal_ntfs::Error, location: Option<&VolumeLocation>) -> Error {
    use reseal_ntfs::Error as E;
    let kind = match &error {
        E::BitLocker { .. } | E::Hibernated { .. } | E::Dirty { .. } | E::UncleanJournal { .. } => {
            ErrorKind::Refused
        }
        E::NotNtfs { .. }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_read_as_people_say_them() {
        let partition = VolumeLocation {
            partition: Some(3),
            start: 1 << 20,
            size: 64 << 30,
        };
        assert_eq!(partition.to_string(), "partition 3 (64.0 GiB)");
        let whole = VolumeLocation {
            partition: None,
            start: 0,
            size: 100 << 20,
        };
        assert_eq!(whole.to_string(), "the whole-disk volume (100 MiB)");
    }
}
