//! Files on an NTFS volume inside a disk image, edited through libntfs-3g over reseal's own
//! block layer: no loop device, no FUSE, no root.
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use reseal_disk::PartitionWindow;
//! use reseal_ntfs::Volume;
//!
//! let mut disk = reseal_disk::open_writable("disk.vhdx".as_ref())?;
//! let table = reseal_disk::read_partition_table(disk.as_mut())?.expect("partitioned disk");
//! let part = &table.partitions[0];
//! let window = PartitionWindow::new(disk, part.start, part.size)?;
//! let mut volume = Volume::mount(Box::new(window), true)?;
//! volume.replace_file(r"Windows\System32\config\SYSTEM", b"new hive")?;
//! volume.unmount()?;
//! # Ok(()) }
//! ```
//!
//! # Modules
//!
//! * [`windows_disk`]: the editing session of a disk image's Windows volume: the image opened
//!   once, the Windows partition found by probing, a read-only mount on staged memory, the
//!   writable remount, and the commit through the redo log or into a differencing child. This
//!   is the crash-safe way to edit an image.
//! * [`volume`]: mounting and the refusals (BitLocker, hibernation/Fast Startup, dirty flag,
//!   unclean journal), checked read-only before anything is written.
//! * `files`: lookup by Windows path (case-insensitive, with the volume's `$UpCase`), read,
//!   replace in place, create (with the descriptor `reseal_nt::security_descriptor::inherit`
//!   gives), delete; methods of [`Volume`] built on the mount it holds.
//! * `on_disk`: the boot sector and the MFT's system records, checked before libntfs-3g
//!   mounts, so damage is named with its structure, offset and reason.
//! * `mft`, `error`, `path`, `upcase`: what both of them use (MFT record numbers, errors,
//!   Windows path syntax, the upper-case table); they use neither, so dependencies go one way:
//!   `files` → `volume` → the rest.
//!
//! # What is not crash-safe
//!
//! libntfs-3g writes metadata without journaling. An interrupted [`Volume::replace_file`] can
//! leave the file truncated or half written, and an interrupted create or delete can leave
//! metadata that chkdsk has to repair. Callers that need atomicity mount the volume on a
//! [`reseal_disk::StagedDevice`] and commit the changes through a redo log, as
//! [`WindowsDisk`] does.
#![forbid(unsafe_code)]

mod error;
mod files;
mod mft;
mod on_disk;
mod path;
mod security_swap;
mod upcase;
pub mod volume;
pub mod windows_disk;

pub use error::{Error, Result};
pub use files::{DirEntry, FileTimes};
pub use security_swap::SecuritySwap;
pub use volume::{Volume, VolumeState};
pub use windows_disk::{DiskError, VolumeLocation, WindowsDisk};
