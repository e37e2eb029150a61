//! Mounting: the checks that refuse a volume Windows has not left in a state safe to edit.

use std::path::{Path, PathBuf};

use reseal_disk::BlockDevice;
use reseal_nt::FileTime;
use reseal_ntfs_sys::{self as sys, Failure, Mount};

use crate::error::{ntfs_error, Error, Result};
use crate::mft::{MFT_RECORD_MASK, MFT_ROOT, MFT_UPCASE, MFT_VOLUME};
use crate::on_disk::{check_system_records, BootSector, Damage, DamageOrIo, NTFS_OEM_ID};
use crate::upcase::Upcase;

/// `$VOLUME_INFORMATION` flag: chkdsk must run before the volume is trusted.
const VOLUME_IS_DIRTY: u16 = 0x0001;

/// How Windows left the volume, as found when mounting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VolumeState {
    /// The `$Volume` dirty flag is set.
    pub dirty: bool,
    /// hiberfil.sys starts with a hibernation signature (hibernation or Fast Startup).
    pub hibernated: bool,
}

/// An NTFS volume mounted through libntfs-3g on a block device.
///
/// Writable mounts refuse volumes that are BitLocker-encrypted, hibernated (including Fast
/// Startup), marked dirty, or whose `$LogFile` is unclean: each of these means Windows still
/// owns state that an offline edit would clobber, so the caller gets a typed [`Error`] and the
/// image is left untouched. libntfs-3g's `NTFS_MNT_RECOVER` (reset the journal and go ahead)
/// is deliberately not used, since it drops the pending metadata changes.
///
/// Read-only mounts refuse only BitLocker and non-NTFS volumes; [`Volume::state`] tells whether
/// what is read may be stale.
///
/// Call [`Volume::unmount`] to learn whether the final write-back succeeded; dropping a
/// `Volume` unmounts too, but can only ignore a failure.
pub struct Volume {
    pub(crate) mount: Mount,
    pub(crate) image: PathBuf,
    pub(crate) upcase: Upcase,
    pub(crate) writable: bool,
    state: VolumeState,
    /// The time the edits give the files they create or change; `None`: the clock.
    pub(crate) fixed_time: Option<FileTime>,
}

impl Volume {
    /// Mounts the NTFS file system that fills `device` (typically a
    /// [`reseal_disk::PartitionWindow`]).
    pub fn mount(mut device: Box<dyn BlockDevice>, writable: bool) -> Result<Volume> {
        let image = device.path().to_path_buf();
        check_boot_sector(device.as_mut(), &image)?;

        // Inspect read-only first, so a refusal writes nothing at all.
        let mount = Mount::open(device, sys::NTFS_MNT_RDONLY)
            .map_err(|failure| mount_error(&image, failure.failure))?;
        let state = match inspect(&mount, &image) {
            Ok(state) => state,
            Err(error) => {
                let _ = mount.unmount();
                return Err(error);
            }
        };
        let mount = if writable {
            if state.hibernated {
                let _ = mount.unmount();
                return Err(Error::Hibernated { image });
            }
            if state.dirty {
                let _ = mount.unmount();
                return Err(Error::Dirty { image });
            }
            let (result, device) = mount.unmount();
            result.map_err(|failure| ntfs_error(&image, "unmount", "\\", failure))?;
            Mount::open(device, 0).map_err(|failure| match failure.failure.errno {
                // hiberfil.sys is not active (checked above), so EPERM is libntfs-3g's answer
                // to a version 2.0 `$LogFile`: Windows kept metadata cached for a fast
                // restart, or lost power.
                libc::EPERM => Error::UncleanJournal {
                    image: image.clone(),
                },
                _ => mount_error(&image, failure.failure),
            })?
        } else {
            mount
        };
        let upcase = load_upcase(&mount).unwrap_or_else(Upcase::fallback);
        Ok(Volume {
            mount,
            image,
            upcase,
            writable,
            state,
            fixed_time: None,
        })
    }

    /// Gives every file and directory the edits create or change `time` (a reproducible run's)
    /// wherever libntfs-3g would write the clock's: standard information, file names in the
    /// record and in the directory index. `None`: the clock, as Windows would.
    pub fn set_fixed_time(&mut self, time: Option<FileTime>) {
        self.fixed_time = time;
    }

    /// The image file, as named in errors.
    pub fn image(&self) -> &Path {
        &self.image
    }

    pub fn is_writable(&self) -> bool {
        self.writable
    }

    /// How Windows left the volume (only ever clean for a writable mount).
    pub fn state(&self) -> VolumeState {
        self.state
    }

    /// Writes every change back, unmounts, and returns the device (flushed).
    pub fn unmount(self) -> Result<Box<dyn BlockDevice>> {
        let (result, device) = self.mount.unmount();
        result.map_err(|failure| ntfs_error(&self.image, "unmount", "\\", failure))?;
        Ok(device)
    }

    pub(crate) fn require_writable(&self) -> Result<()> {
        if self.writable {
            Ok(())
        } else {
            Err(Error::ReadOnly {
                image: self.image.clone(),
            })
        }
    }
}

/// BitLocker replaces the OEM id with `-FVE-FS-`. A volume whose boot sector is not NTFS's is
/// not for us, unless its backup (in the volume's last sector) is: then the boot sector is
/// damaged. A valid boot sector is followed by the system records of the MFT.
fn check_boot_sector(device: &mut dyn BlockDevice, image: &Path) -> Result<()> {
    let size = device.len();
    if size < 1024 {
        return Err(Error::NotNtfs {
            image: image.to_path_buf(),
            reason: format!("the partition is only {size} bytes"),
        });
    }
    let mut sector = [0u8; 512];
    device.read_at(0, &mut sector)?;
    let damaged = |offset, reason| Error::Damaged {
        image: image.to_path_buf(),
        structure: "boot sector",
        offset: Some(offset),
        reason,
    };
    let boot = match (&sector[3..11], BootSector::parse(&sector, size)) {
        (b"-FVE-FS-", _) => {
            return Err(Error::BitLocker {
                image: image.to_path_buf(),
            })
        }
        (_, Ok(boot)) => boot,
        (oem_id, Err(reason)) if oem_id == NTFS_OEM_ID => return Err(damaged(0, reason)),
        (oem_id, Err(reason)) => {
            let mut backup = [0u8; 512];
            device.read_at(size - 512, &mut backup)?;
            if BootSector::parse(&backup, size).is_ok() {
                return Err(damaged(
                    0,
                    format!("{reason}; the backup boot sector at volume offset {} is intact (chkdsk can restore it)", size - 512),
                ));
            }
            return Err(Error::NotNtfs {
                image: image.to_path_buf(),
                reason: format!(
                    "boot sector OEM id is {:?}",
                    String::from_utf8_lossy(oem_id)
                ),
            });
        }
    };
    check_system_records(device, &boot).map_err(|error| match error {
        DamageOrIo::Io(error) => Error::Disk(error),
        DamageOrIo::Damage(Damage {
            structure,
            offset,
            reason,
        }) => Error::Damaged {
            image: image.to_path_buf(),
            structure,
            offset: Some(offset),
            reason,
        },
    })
}

/// Reads the dirty flag and looks for an active hiberfil.sys.
fn inspect(mount: &Mount, image: &Path) -> Result<VolumeState> {
    let mut info = [0u8; 12];
    let read = read_attribute_start(
        mount,
        image,
        MFT_VOLUME,
        "$Volume",
        sys::AT_VOLUME_INFORMATION,
        &mut info,
    )?;
    if read < info.len() {
        return Err(Error::NotNtfs {
            image: image.to_path_buf(),
            reason: "$Volume has no volume information".into(),
        });
    }
    let flags = u16::from_le_bytes([info[10], info[11]]);
    Ok(VolumeState {
        dirty: flags & VOLUME_IS_DIRTY != 0,
        hibernated: hiberfile_is_active(mount, image)?,
    })
}

/// Whether `\hiberfil.sys` starts with `hibr` in any case, as libntfs-3g and Windows check.
fn hiberfile_is_active(mount: &Mount, image: &Path) -> Result<bool> {
    let mut root = mount
        .open_inode(MFT_ROOT)
        .map_err(|failure| ntfs_error(image, "open", "\\", failure))?;
    let entries = root
        .read_dir()
        .map_err(|failure| ntfs_error(image, "list", "\\", failure))?;
    let Some(entry) = entries
        .iter()
        .find(|entry| String::from_utf16_lossy(&entry.name).eq_ignore_ascii_case("hiberfil.sys"))
    else {
        return Ok(false);
    };
    let mut signature = [0u8; 4];
    let read = read_attribute_start(
        mount,
        image,
        entry.mft_reference & MFT_RECORD_MASK,
        "\\hiberfil.sys",
        sys::AT_DATA,
        &mut signature,
    )?;
    Ok(read == 4 && signature.eq_ignore_ascii_case(b"hibr"))
}

/// Reads the first bytes of an unnamed attribute of the inode `mft_no` (named `shown` in
/// errors) into `buf`; how many there were (0 when the inode has no such attribute).
fn read_attribute_start(
    mount: &Mount,
    image: &Path,
    mft_no: u64,
    shown: &str,
    attr_type: u32,
    buf: &mut [u8],
) -> Result<usize> {
    let inode = mount
        .open_inode(mft_no)
        .map_err(|failure| ntfs_error(image, "open", shown, failure))?;
    let attr = inode
        .open_attr(attr_type, &[])
        .map_err(|failure| ntfs_error(image, "open", shown, failure))?;
    match attr {
        Some(mut attr) => attr
            .pread(0, buf)
            .map_err(|failure| ntfs_error(image, "read", shown, failure)),
        None => Ok(0),
    }
}

fn load_upcase(mount: &Mount) -> Option<Upcase> {
    let inode = mount.open_inode(MFT_UPCASE).ok()?;
    let mut data = inode.open_attr(sys::AT_DATA, &[]).ok()??;
    let mut bytes = vec![0u8; 65536 * 2];
    let read = data.pread(0, &mut bytes).ok()?;
    Upcase::from_bytes(&bytes[..read])
}

/// Translates libntfs-3g's mount errno into the refusal it stands for.
fn mount_error(image: &Path, failure: Failure) -> Error {
    let image = image.to_path_buf();
    match failure.errno {
        libc::EPERM => Error::Hibernated { image },
        libc::EOPNOTSUPP => Error::UncleanJournal { image },
        libc::EINVAL if failure.device_error.is_none() => Error::NotNtfs {
            image,
            reason: "libntfs-3g does not recognize the boot sector".into(),
        },
        _ => ntfs_error(&image, "mount", "\\", failure),
    }
}
