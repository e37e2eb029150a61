//! [`WindowsDisk`]: the Windows volume of a disk image (raw, VHD, VHDX), found, read, edited and
//! committed in one session over the image opened once.
//!
//! # The session
//!
//! 1. [`WindowsDisk::open`] opens the container once, read-only, with its whole differencing
//!    chain ([`reseal_disk::open_image`]), and keeps it as a [`SharedDevice`]; the format and
//!    what a differencing child records about its parent come from that same open. Everything
//!    later reads through it: the partition table, every probe, every mount, and the parent
//!    side of an output child. Nothing reopens the image until the session has committed into it.
//! 2. The Windows volume is found: the partition asked for, or else the one NTFS volume holding
//!    `Windows\System32\config\SYSTEM` ([`SYSTEM_HIVE`]). Each candidate is probed by mounting it
//!    read-only and looking for that file; a disk without a partition table is probed as one
//!    volume. A BitLocker volume cannot be looked into: when no other partition holds Windows,
//!    its refusal is the answer, since it may be the Windows one.
//! 3. The volume is mounted read-only on a [`StagedDevice`] over the open device ([`read`]
//!    gives it), so inspecting a hibernated or dirty volume works and writes nothing.
//! 4. [`begin`] (or the first [`edit`]) unmounts it and mounts the same staged device again for
//!    writing, which refuses hibernation, a dirty flag or an unclean `$LogFile` before anything
//!    is changed. Edits land in the staged memory; the image is not touched.
//! 5. [`commit`] unmounts (libntfs-3g writes its caches back into memory) and writes only the
//!    4 KiB chunks that differ from the disk, when there was an edit at all: through the redo
//!    log into the image, or, after [`set_output_diff`], into a new VHD/VHDX differencing child
//!    or qcow2 overlay whose parent is the image, built as `CHILD.reseal-partial` over the open device, then
//!    hard-linked to its name (the image is only read). [`abort`] drops the staged writes instead.
//!
//! # Crash safety
//!
//! libntfs-3g does not journal its metadata, which is why it never writes to the image: an
//! error, a refusal or a crash before [`commit`] leaves the image as it was. The in-place commit
//! goes through [`reseal_disk::redo_log`]: the complete log is flushed beside the image before
//! the first byte of the image changes, so after a crash [`recover`] finishes it (or discards a
//! torn one) and the image is all old or all new. While such a log is pending, the session
//! reads nothing of the image (not even its partition table) and refuses with
//! [`DiskError::RedoLogPending`] until [`recover`] has run. An output child appears under its
//! name only complete; a failure removes the partial file.
//!
//! After an in-place commit the session's read-only open no longer shows the image as it is, so
//! a later read opens it afresh; after a commit into a child, later reads come from the child.
//!
//! [`read`]: WindowsDisk::read
//! [`begin`]: WindowsDisk::begin
//! [`edit`]: WindowsDisk::edit
//! [`commit`]: WindowsDisk::commit
//! [`abort`]: WindowsDisk::abort
//! [`recover`]: WindowsDisk::recover
//! [`set_output_diff`]: WindowsDisk::set_output_diff

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use reseal_disk::redo_log::{self, Recovery};
use reseal_disk::staged::{self, Change};
use reseal_disk::{
    BlockDevice, Entropy, Format, Layer, ParentRecord, PartitionWindow, SharedDevice, Staged,
    StagedDevice,
};

use crate::volume::Volume;

/// The file whose presence marks the Windows volume.
pub const SYSTEM_HIVE: &str = r"Windows\System32\config\SYSTEM";

/// Where on the disk a volume lies.
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

impl fmt::Display for VolumeLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.partition {
            Some(number) => write!(f, "partition {number} ({})", human_size(self.size)),
            None => write!(f, "the whole-disk volume ({})", human_size(self.size)),
        }
    }
}

/// Why a disk-image session cannot go on. Each variant carries the values; callers word them
/// for their users.
#[derive(Debug, thiserror::Error)]
pub enum DiskError {
    /// A partition was asked for, but the disk has no partition table.
    #[error("{}: no partition table, so no partition {requested}", .image.display())]
    NoPartitionTable { image: PathBuf, requested: u32 },
    /// The partition asked for is not in the table.
    #[error("{}: no partition {requested}; it has {}", .image.display(), list(.available))]
    NoSuchPartition {
        image: PathBuf,
        requested: u32,
        available: Vec<VolumeLocation>,
    },
    /// The volume asked for (a partition, or the whole disk without a partition table) holds
    /// no NTFS file system.
    #[error("{}: {location} is not an NTFS volume ({reason})", .image.display())]
    NotNtfs {
        image: PathBuf,
        location: VolumeLocation,
        reason: String,
    },
    /// No Windows installation: `location` is the one volume looked into (a partition asked
    /// for, or the whole disk), or `None` when every partition (`available`) was.
    #[error("{}", no_windows(.image, .location.as_ref(), .available))]
    NoWindows {
        image: PathBuf,
        location: Option<VolumeLocation>,
        available: Vec<VolumeLocation>,
    },
    /// More than one volume holds Windows, and none was asked for.
    #[error("{}: more than one Windows installation: {}", .image.display(), list(.found))]
    SeveralWindows {
        image: PathBuf,
        found: Vec<VolumeLocation>,
    },
    /// The output differencing child exists already.
    #[error("{}: the file exists", .child.display())]
    OutputDiffExists { child: PathBuf },
    /// The output differencing child is not named `.vhd`/`.avhd`, `.vhdx`/`.avhdx`, `.vmdk` or
    /// `.qcow2`.
    #[error("{}: a differencing disk is named .vhdx, .vhd, .vmdk or .qcow2", .child.display())]
    OutputDiffName { child: PathBuf },
    /// The image cannot be the parent of a child of the format the child's name asks for
    /// (a VHD or VHDX child needs a parent of its own format; any image can back a qcow2 one).
    #[error("{}: a {} image cannot be the parent of the {} child {}", .image.display(),
        .image_format.name(), .wanted.name(), .child.display())]
    OutputDiffFormat {
        image: PathBuf,
        child: PathBuf,
        image_format: Format,
        wanted: Format,
    },
    /// An interrupted commit left its redo log beside the image: [`WindowsDisk::recover`]
    /// must run before the image is read.
    #[error("{}: an interrupted commit left its redo log beside the image", .image.display())]
    RedoLogPending { image: PathBuf },
    /// The NTFS layer failed or refused, on the volume at `location` when it is known.
    #[error("{}", volume_message(.source, .location.as_ref()))]
    Volume {
        location: Option<VolumeLocation>,
        #[source]
        source: Box<crate::Error>,
    },
    /// The container or partition layer failed.
    #[error(transparent)]
    Disk(#[from] reseal_disk::Error),
    /// The in-place commit failed after its redo log was complete: the image may hold part of
    /// the changes, and [`WindowsDisk::recover`] finishes them.
    #[error(transparent)]
    CommitIncomplete(reseal_disk::Error),
    /// A file operation of the commit failed (creating the output child's name, flushing its
    /// directory).
    #[error("{}: {action}: {source}", .path.display())]
    Io {
        path: PathBuf,
        action: &'static str,
        #[source]
        source: io::Error,
    },
}

impl DiskError {
    /// `true` for a volume Windows left in a state that must not be edited offline (BitLocker,
    /// hibernated, dirty, unclean journal).
    pub fn is_refusal(&self) -> bool {
        matches!(self, DiskError::Volume { source, .. } if is_refusal(source))
    }

    /// `true` for a damaged NTFS structure.
    pub fn is_damage(&self) -> bool {
        matches!(self, DiskError::Volume { source, .. } if matches!(**source, crate::Error::Damaged { .. }))
    }
}

fn is_refusal(error: &crate::Error) -> bool {
    use crate::Error as E;
    matches!(
        error,
        E::BitLocker { .. } | E::Hibernated { .. } | E::Dirty { .. } | E::UncleanJournal { .. }
    )
}

type Result<T, E = DiskError> = std::result::Result<T, E>;

/// The Windows volume of a disk image, in one editing session (see the module documentation).
pub struct WindowsDisk {
    /// The image as given.
    image: PathBuf,
    /// Where reads come from: the image, or after a commit into an output child the child.
    source: PathBuf,
    /// The partition asked for, or `None` to find the Windows one.
    requested: Option<u32>,
    /// Found at the first mount (deferred while a redo log waits for recovery).
    location: Option<VolumeLocation>,
    output_diff: Option<PathBuf>,
    /// `source`, opened once.
    opened: Option<Opened>,
    mounted: Option<Mounted>,
    /// An edit succeeded since the writable mount.
    edited: bool,
    /// The NTFS times of the edits and what the container draws when written.
    entropy: Entropy,
}

struct Opened {
    device: SharedDevice,
    format: Format,
    parent_record: Option<ParentRecord>,
    chain: Vec<Layer>,
}

struct Mounted {
    volume: Volume,
    staged: Staged,
    writable: bool,
}

/// What a volume holds, as far as finding Windows goes.
enum Probe {
    Windows,
    NoWindows,
    NotNtfs(String),
}

impl WindowsDisk {
    /// Opens the disk image at `image` and finds its Windows volume: partition `partition` when
    /// given, else the one NTFS volume that holds Windows; mounts it read-only. Nothing is
    /// written.
    ///
    /// When an interrupted commit left a redo log beside the image, nothing is read (the
    /// session opens) until [`WindowsDisk::recover`] has dealt with it.
    pub fn open(image: &Path, partition: Option<u32>) -> Result<WindowsDisk> {
        let mut disk = WindowsDisk {
            image: image.to_path_buf(),
            source: image.to_path_buf(),
            requested: partition,
            location: None,
            output_diff: None,
            opened: None,
            mounted: None,
            edited: false,
            entropy: Entropy::default(),
        };
        if !redo_log::is_pending(image) {
            disk.mount(false)?;
        }
        Ok(disk)
    }

    /// Takes the times of the edits (the files' NTFS times: a fixed time, or the clock) and the
    /// random values of the commit (a VHDX's write GUIDs, a new child's identifiers) from
    /// `entropy`, for a reproducible run.
    pub fn set_entropy(&mut self, entropy: Entropy) {
        if let Some(mounted) = &mut self.mounted {
            mounted.volume.set_fixed_time(entropy.fixed_time());
        }
        self.entropy = entropy;
    }

    /// The image as given.
    pub fn image(&self) -> &Path {
        &self.image
    }

    /// The Windows volume, once found.
    pub fn location(&self) -> Option<&VolumeLocation> {
        self.location.as_ref()
    }

    /// The image file and each parent or backing file under it, top first (the image is
    /// opened if it is not yet).
    pub fn chain(&mut self) -> Result<Vec<Layer>> {
        self.device()?;
        Ok(self
            .opened
            .as_ref()
            .map(|opened| opened.chain.clone())
            .unwrap_or_default())
    }

    /// The container format, once the image is open.
    pub fn format(&self) -> Option<Format> {
        self.opened.as_ref().map(|opened| opened.format)
    }

    /// Makes [`WindowsDisk::commit`] write the changes into a new differencing disk at `child`,
    /// leaving the image itself byte-identical. Its name says its format: `.vhdx` for a VHDX
    /// image, `.vhd` for a VHD, `.vmdk` for a VMDK, and `.qcow2` for a qcow2 overlay of an image
    /// of any format.
    pub fn set_output_diff(&mut self, child: &Path) -> Result<()> {
        if child.exists() {
            return Err(DiskError::OutputDiffExists {
                child: child.to_path_buf(),
            });
        }
        let Some(wanted) = child_format(child) else {
            return Err(DiskError::OutputDiffName {
                child: child.to_path_buf(),
            });
        };
        let format = match self.format() {
            Some(format) => format,
            // Not open because a redo log waits: the format is in the first and last bytes,
            // which recovery does not change.
            None if redo_log::is_pending(&self.source) => {
                let mut file = reseal_disk::LocalFile::open(&self.source, false)?;
                reseal_disk::detect_format(&mut file)?
            }
            None => {
                self.device()?;
                self.format().unwrap_or(Format::Raw)
            }
        };
        // A qcow2 overlay backs onto any format; a VHD or VHDX child only onto its own.
        if wanted != Format::Qcow2 && format != wanted {
            return Err(DiskError::OutputDiffFormat {
                image: self.image.clone(),
                child: child.to_path_buf(),
                image_format: format,
                wanted,
            });
        }
        self.output_diff = Some(child.to_path_buf());
        Ok(())
    }

    /// The volume, for reading: mounted read-only on first use (or as [`WindowsDisk::begin`]
    /// left it).
    pub fn read(&mut self) -> Result<&Volume> {
        if self.mounted.is_none() {
            self.mount(false)?;
        }
        Ok(&self.mounted.as_ref().expect("mounted above").volume)
    }

    /// Mounts the volume for writing (into memory), remounting the read-only mount on the same
    /// staged device. Refuses a volume Windows did not leave safe to edit.
    pub fn begin(&mut self) -> Result<()> {
        match self.mounted.take() {
            Some(mounted) if mounted.writable => {
                self.mounted = Some(mounted);
                return Ok(());
            }
            Some(mounted) => {
                self.edited = false;
                // The read-only mount wrote nothing; its device (the window over the staged
                // device) is mounted again.
                if let Ok(device) = mounted.volume.unmount() {
                    mounted.staged.discard();
                    let mut volume =
                        Volume::mount(device, true).map_err(|source| self.volume_error(source))?;
                    volume.set_fixed_time(self.entropy.fixed_time());
                    self.mounted = Some(Mounted {
                        volume,
                        staged: mounted.staged,
                        writable: true,
                    });
                    return Ok(());
                }
            }
            None => self.edited = false,
        }
        self.mount(true)
    }

    /// Runs `edit` on the volume mounted for writing (see [`WindowsDisk::begin`]); what it
    /// writes stays in memory until [`WindowsDisk::commit`].
    pub fn edit<T>(&mut self, edit: impl FnOnce(&mut Volume) -> crate::Result<T>) -> Result<T> {
        self.begin()?;
        let volume = &mut self.mounted.as_mut().expect("mounted by begin").volume;
        let result = edit(volume);
        let value = result.map_err(|source| self.volume_error(source))?;
        self.edited = true;
        Ok(value)
    }

    /// Writes what the edits changed (see the module documentation), described by
    /// `description` in the redo log; without an edit only an output child is made. The
    /// session then reads the result.
    pub fn commit(&mut self, description: &[String]) -> Result<()> {
        let edited = std::mem::take(&mut self.edited);
        let changes = match self.mounted.take() {
            Some(mounted) if mounted.writable => {
                // Unmounting writes libntfs-3g's caches back, into the staged memory.
                let location = self.location.clone();
                mounted
                    .volume
                    .unmount()
                    .map_err(|source| DiskError::Volume {
                        location,
                        source: Box::new(source),
                    })?;
                // Without an edit, what the writable mount itself changed (libntfs-3g resets
                // the journal) is not written: a run that changes nothing leaves the image as
                // it was.
                if edited {
                    mounted.staged.changes()?
                } else {
                    Vec::new()
                }
            }
            read_only => {
                self.mounted = read_only;
                Vec::new()
            }
        };
        match self.output_diff.clone() {
            None => {
                if changes.is_empty() {
                    return Ok(());
                }
                let entropy = self.entropy.split();
                redo_log::commit(&self.source, &changes, description, entropy).map_err(
                    |error| {
                        // A complete log left behind means the image may hold part of the changes.
                        if redo_log::is_pending(&self.source) {
                            DiskError::CommitIncomplete(error)
                        } else {
                            DiskError::Disk(error)
                        }
                    },
                )?;
                // The read-only open no longer shows the image as it is.
                self.mounted = None;
                self.opened = None;
            }
            Some(child) => {
                self.write_child(&child, &changes)?;
                self.mounted = None;
                self.opened = None;
                self.source = child;
                self.output_diff = None;
            }
        }
        Ok(())
    }

    /// Drops every staged write: the next read shows the image as it is.
    pub fn abort(&mut self) {
        if let Some(mounted) = self.mounted.take() {
            // The final write-back only reaches the staged memory, which is dropped with it.
            let _ = mounted.volume.unmount();
        }
        self.edited = false;
    }

    /// `true` when an interrupted commit left its redo log beside the image (or, after a commit
    /// into a differencing child, beside the child) for [`WindowsDisk::recover`].
    pub fn has_pending_redo_log(&self) -> bool {
        redo_log::is_pending(&self.source)
    }

    /// Finishes (a complete log) or discards (a torn one) what an interrupted commit left
    /// beside the image; staged writes are dropped first.
    pub fn recover(&mut self) -> Result<Recovery> {
        self.abort();
        let recovery = redo_log::recover(&self.source)?;
        if recovery != Recovery::Nothing {
            self.opened = None;
        }
        Ok(recovery)
    }

    /// The open image (opened on first use), refused while a redo log waits for recovery.
    fn device(&mut self) -> Result<SharedDevice> {
        if redo_log::is_pending(&self.source) {
            return Err(DiskError::RedoLogPending {
                image: self.source.clone(),
            });
        }
        if let Some(opened) = &self.opened {
            return Ok(opened.device.clone());
        }
        let image = reseal_disk::open_image(&self.source)?;
        let device = SharedDevice::new(image.device);
        self.opened = Some(Opened {
            device: device.clone(),
            format: image.format,
            parent_record: image.parent_record,
            chain: image.chain,
        });
        Ok(device)
    }

    /// Mounts the Windows volume (found first if need be) on a new staged device.
    fn mount(&mut self, writable: bool) -> Result<()> {
        let device = self.device()?;
        let location = match &self.location {
            Some(location) => location.clone(),
            None => {
                let location = self.find_windows_volume(&device)?;
                self.location = Some(location.clone());
                location
            }
        };
        let staged_device = StagedDevice::new(Box::new(device));
        let staged = staged_device.staged();
        let window = PartitionWindow::new(staged_device, location.start, location.size)?;
        let mut volume =
            Volume::mount(Box::new(window), writable).map_err(|source| DiskError::Volume {
                location: Some(location),
                source: Box::new(source),
            })?;
        volume.set_fixed_time(self.entropy.fixed_time());
        self.mounted = Some(Mounted {
            volume,
            staged,
            writable,
        });
        Ok(())
    }

    fn volume_error(&self, source: crate::Error) -> DiskError {
        DiskError::Volume {
            location: self.location.clone(),
            source: Box::new(source),
        }
    }

    /// Finds the volume asked for, or the one that holds Windows, on `device`.
    fn find_windows_volume(&self, device: &SharedDevice) -> Result<VolumeLocation> {
        let image = || self.image.clone();
        let table = reseal_disk::read_partition_table(&mut device.clone())?;
        let Some(table) = table else {
            if let Some(requested) = self.requested {
                return Err(DiskError::NoPartitionTable {
                    image: image(),
                    requested,
                });
            }
            let whole = VolumeLocation {
                partition: None,
                start: 0,
                size: device.len(),
            };
            return match probe(device, &whole)? {
                Probe::Windows => Ok(whole),
                Probe::NoWindows => Err(DiskError::NoWindows {
                    image: image(),
                    location: Some(whole),
                    available: Vec::new(),
                }),
                Probe::NotNtfs(reason) => Err(DiskError::NotNtfs {
                    image: image(),
                    location: whole,
                    reason,
                }),
            };
        };
        let locations: Vec<VolumeLocation> = table
            .partitions
            .iter()
            .map(|partition| VolumeLocation {
                partition: Some(partition.number),
                start: partition.start,
                size: partition.size,
            })
            .collect();
        if let Some(requested) = self.requested {
            let Some(location) = locations.iter().find(|l| l.partition == Some(requested)) else {
                return Err(DiskError::NoSuchPartition {
                    image: image(),
                    requested,
                    available: locations,
                });
            };
            return match probe(device, location)? {
                Probe::Windows => Ok(location.clone()),
                Probe::NoWindows => Err(DiskError::NoWindows {
                    image: image(),
                    location: Some(location.clone()),
                    available: locations.clone(),
                }),
                Probe::NotNtfs(reason) => Err(DiskError::NotNtfs {
                    image: image(),
                    location: location.clone(),
                    reason,
                }),
            };
        }
        let mut windows = Vec::new();
        let mut refusals = Vec::new();
        for location in &locations {
            match probe(device, location) {
                Ok(Probe::Windows) => windows.push(location.clone()),
                Ok(Probe::NoWindows | Probe::NotNtfs(_)) => {}
                // A BitLocker or damaged volume cannot be looked into; it may be the Windows
                // one, which is said when no other volume holds Windows.
                Err(error) if error.is_refusal() || error.is_damage() => refusals.push(error),
                Err(error) => return Err(error),
            }
        }
        if windows.is_empty() && !refusals.is_empty() {
            return Err(refusals.remove(0));
        }
        match windows.len() {
            0 => Err(DiskError::NoWindows {
                image: image(),
                location: None,
                available: locations,
            }),
            1 => Ok(windows.remove(0)),
            _ => Err(DiskError::SeveralWindows {
                image: image(),
                found: windows,
            }),
        }
    }

    /// Writes `changes` into a new differencing disk `child` of the open image. The child is
    /// built under a temporary name and appears under its own only when complete, so a failure
    /// or a crash never leaves a partial child behind under the asked-for name.
    fn write_child(&mut self, child: &Path, changes: &[Change]) -> Result<()> {
        let parent = self.device()?;
        let opened = self.opened.as_ref();
        let image_format = opened.map_or(Format::Raw, |opened| opened.format);
        let record = opened.and_then(|opened| opened.parent_record.clone());
        let qcow2_overlay = child_format(child) == Some(Format::Qcow2);
        if record.is_none() && !qcow2_overlay {
            return Err(DiskError::OutputDiffFormat {
                image: self.image.clone(),
                child: child.to_path_buf(),
                image_format,
                wanted: Format::Vhdx,
            });
        }
        let mut partial_name = child.file_name().unwrap_or_default().to_os_string();
        partial_name.push(reseal_disk::differencing::PARTIAL_SUFFIX);
        let partial = child.with_file_name(partial_name);
        let _ = fs::remove_file(&partial);
        let written = (|| {
            let mut device = match &record {
                Some(record) if !qcow2_overlay => reseal_disk::differencing::create_child(
                    record,
                    &self.source,
                    Box::new(parent),
                    &partial,
                    self.entropy.split(),
                )?,
                _ => reseal_disk::differencing::create_qcow2_overlay(
                    image_format,
                    &self.source,
                    Box::new(parent),
                    &partial,
                )?,
            };
            staged::write_changes(device.as_mut(), changes)?;
            drop(device);
            // A hard link, unlike a rename, never replaces a file that appeared meanwhile.
            fs::hard_link(&partial, child).map_err(|source| DiskError::Io {
                path: child.to_path_buf(),
                action: "cannot create",
                source,
            })?;
            reseal_disk::sync_directory_of(child).map_err(|source| {
                // The commit fails, so the child it names must not stay.
                let _ = fs::remove_file(child);
                DiskError::Io {
                    path: child.to_path_buf(),
                    action: "cannot flush its directory",
                    source,
                }
            })
        })();
        let _ = fs::remove_file(&partial);
        written
    }
}

/// Mounts the volume at `location` of `device` read-only and looks for the SYSTEM hive. A
/// BitLocker volume is an error (a refusal).
fn probe(device: &SharedDevice, location: &VolumeLocation) -> Result<Probe> {
    let volume_error = |source| DiskError::Volume {
        location: Some(location.clone()),
        source: Box::new(source),
    };
    let window = PartitionWindow::new(device.clone(), location.start, location.size)?;
    let volume = match Volume::mount(Box::new(window), false) {
        Ok(volume) => volume,
        Err(crate::Error::NotNtfs { reason, .. }) => return Ok(Probe::NotNtfs(reason)),
        Err(error) => return Err(volume_error(error)),
    };
    let found = volume.exists(SYSTEM_HIVE).map_err(volume_error)?;
    volume.unmount().map_err(volume_error)?;
    Ok(if found {
        Probe::Windows
    } else {
        Probe::NoWindows
    })
}

/// The format a differencing child's name asks for: `.vhdx`/`.avhdx`, `.vhd`/`.avhd`, `.vmdk`
/// or `.qcow2`.
fn child_format(child: &Path) -> Option<Format> {
    let extension = child.extension()?.to_str()?.to_ascii_lowercase();
    match extension.as_str() {
        "vhdx" | "avhdx" => Some(Format::Vhdx),
        "vhd" | "avhd" => Some(Format::Vhd),
        "vmdk" => Some(Format::Vmdk),
        "qcow2" => Some(Format::Qcow2),
        _ => None,
    }
}

fn no_windows(
    image: &Path,
    location: Option<&VolumeLocation>,
    available: &[VolumeLocation],
) -> String {
    match location {
        Some(location) => format!(
            "{}: {location} holds no Windows installation (no {SYSTEM_HIVE})",
            image.display()
        ),
        None => format!(
            "{}: no partition holds a Windows installation (no {SYSTEM_HIVE}); it has {}",
            image.display(),
            list(available)
        ),
    }
}

/// An NTFS error, followed by the partition it concerns when there is one.
fn volume_message(source: &crate::Error, location: Option<&VolumeLocation>) -> String {
    match location.and_then(|location| location.partition) {
        Some(number) => format!("{source} (partition {number})"),
        None => source.to_string(),
    }
}

fn list(locations: &[VolumeLocation]) -> String {
    locations
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
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
