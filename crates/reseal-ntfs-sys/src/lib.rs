//! libntfs-3g bindings and the few safe wrappers `reseal-ntfs` builds on: the only place with
//! `unsafe` code for NTFS.
//!
//! libntfs-3g normally opens a device by path. Here it reads and writes through a custom
//! device ([`ffi::ntfs_device_operations`]) backed by a [`reseal_disk::BlockDevice`], so a
//! volume inside a VHD/VHDX or a partition of a raw disk is edited without mounting anything.
//!
//! # Invariants
//!
//! * **Device ownership.** [`Mount::open`] moves the `Box<dyn BlockDevice>` into a heap
//!   [`DeviceState`] whose raw pointer is the device's `d_private`. libntfs-3g only ever hands
//!   that pointer back to the callbacks in `device.rs`. The state outlives the volume: it is
//!   reclaimed (`Box::from_raw`) only after `ntfs_umount` returned (which closes *and frees*
//!   the `ntfs_device`) or, when mounting fails, after `ntfs_device_free`, which the caller
//!   must do because a failed `ntfs_device_mount` leaves the device allocated.
//! * **Volume, inodes, attributes.** A [`Mount`] owns its `ntfs_volume`; an [`Inode`] borrows
//!   the `Mount` and owns its `ntfs_inode` (closed on drop, or explicitly with
//!   [`Inode::close`], which reports the write-back error); an [`Attr`] borrows its `Inode` and
//!   owns its `ntfs_attr`. The borrows make "close the volume while an inode is open"
//!   impossible to write.
//! * **`ntfs_delete` closes both inodes**, the file's and its directory's, whether it succeeds
//!   or fails. [`Mount::delete`] therefore takes both [`Inode`]s by value and forgets them.
//! * **errno.** libntfs-3g returns -1 or NULL and sets `errno`. The wrappers read it right
//!   after the failing call and return it as [`Failure::errno`]. A device callback that fails
//!   sets `errno = EIO` and keeps the block layer's own error, which the next failure returned
//!   from this crate carries as [`Failure::device_error`].
//! * **Threads.** libntfs-3g has no locking. A [`Mount`] may move to another thread
//!   ([`Send`]: nothing in libntfs-3g is tied to the thread that mounted), but is not
//!   [`Sync`]: one volume is used by one thread at a time. Inodes and attributes are neither.
//! * **Struct fields.** The layout of `ntfs_volume`'s tail depends on libntfs-3g's build
//!   options, so no `ntfs_volume` field is read here (the test-only `fixtures` feature sets a bit
//!   of `state`, its third field). `ntfs_inode` and `ntfs_attr` are read only
//!   for fields ahead of any conditional part (`mft_no`, `data_size`, `initialized_size`,
//!   `data_flags`); the only fields written are `ntfs_inode`'s four times, also ahead of it,
//!   after `ntfs_inode_update_times` has marked the inode for write-back. A new inode's file
//!   name attributes are reached through a search context (`ntfs_attr_lookup`), their values
//!   checked to lie inside their attribute record before their times are written.
//! * **Panics** never cross the C boundary: the device callbacks catch them and report EIO.
#![allow(unsafe_op_in_unsafe_fn)]

use std::fmt;

use reseal_disk::BlockDevice;

mod attr;
mod device;
#[cfg(feature = "fixtures")]
mod fixtures;
mod inode;
mod mount;

pub use attr::Attr;
pub use device::DeviceState;
pub use inode::{Inode, RawDirEntry, DT_DIR, DT_REPARSE};
pub use mount::Mount;

/// The generated bindings: an allowlist (`bindgen/src/lib.rs`), checked in and rewritten by
/// `cargo xtask bindgen`.
#[allow(
    non_upper_case_globals,
    non_camel_case_types,
    non_snake_case,
    dead_code,
    clippy::all
)]
pub mod ffi {
    include!("bindings.rs");
}

/// `ntfs_mount_flags` (volume.h); the enum has no name bindgen could pick up.
pub const NTFS_MNT_RDONLY: u64 = 0x0000_0001;
pub const NTFS_MNT_MAY_RDONLY: u64 = 0x0200_0000;
pub const NTFS_MNT_RECOVER: u64 = 0x1000_0000;
pub const NTFS_MNT_IGNORE_HIBERFILE: u64 = 0x2000_0000;

/// `$DATA` attribute flags (`ATTR_FLAGS`, layout.h).
pub const ATTR_IS_COMPRESSED: u16 = ffi::ATTR_FLAGS_ATTR_IS_COMPRESSED;
pub const ATTR_COMPRESSION_MASK: u16 = ffi::ATTR_FLAGS_ATTR_COMPRESSION_MASK;
pub const ATTR_IS_ENCRYPTED: u16 = ffi::ATTR_FLAGS_ATTR_IS_ENCRYPTED;
pub const ATTR_IS_SPARSE: u16 = ffi::ATTR_FLAGS_ATTR_IS_SPARSE;

/// Attribute types used by `reseal-ntfs`.
pub const AT_DATA: u32 = ffi::ATTR_TYPES_AT_DATA;
pub const AT_VOLUME_INFORMATION: u32 = ffi::ATTR_TYPES_AT_VOLUME_INFORMATION;

/// `FILE_NAME_DOS`: the 8.3 alias of a long name, listed separately by `ntfs_readdir`.
pub const FILE_NAME_DOS: u8 = ffi::FILE_NAME_TYPE_FLAGS_FILE_NAME_DOS;

/// Which timestamps [`Inode::update_times`] sets to now ([`Inode::set_times`] to a given time).
pub const UPDATE_ATIME: u32 = ffi::ntfs_time_update_flags_NTFS_UPDATE_ATIME;
pub const UPDATE_MTIME: u32 = ffi::ntfs_time_update_flags_NTFS_UPDATE_MTIME;
pub const UPDATE_CTIME: u32 = ffi::ntfs_time_update_flags_NTFS_UPDATE_CTIME;

/// A failed libntfs-3g call: its errno, plus the block layer's error when a device read or
/// write was the cause.
#[derive(Debug)]
pub struct Failure {
    pub errno: i32,
    pub device_error: Option<reseal_disk::Error>,
}

impl Failure {
    pub fn io_error(&self) -> std::io::Error {
        std::io::Error::from_raw_os_error(self.errno)
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.device_error {
            Some(device) => write!(f, "{} ({device})", self.io_error()),
            None => write!(f, "{}", self.io_error()),
        }
    }
}

/// A failed mount, handing the device back so the caller can retry or inspect it.
pub struct MountFailure {
    pub failure: Failure,
    pub device: Box<dyn BlockDevice>,
}

impl fmt::Debug for MountFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MountFailure")
            .field("failure", &self.failure)
            .field("device", &self.device.path())
            .finish()
    }
}

pub(crate) fn errno() -> i32 {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

pub(crate) fn set_errno(value: i32) {
    // SAFETY: __errno_location returns the calling thread's errno slot.
    unsafe { *libc::__errno_location() = value }
}
