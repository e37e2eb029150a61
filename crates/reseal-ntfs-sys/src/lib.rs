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
//!   that pointer back to the callbacks in this file. The state outlives the volume: it is
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
//!   `data_flags`).
//! * **Panics** never cross the C boundary: the device callbacks catch them and report EIO.
#![allow(unsafe_op_in_unsafe_fn)]

use std::ffi::{c_char, c_int, c_uint, c_ulong, c_void, CString};
use std::fmt;
use std::marker::PhantomData;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::{self, NonNull};

use reseal_disk::BlockDevice;

#[cfg(feature = "fixtures")]
mod fixtures;

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

/// Which timestamps [`Inode::update_times`] sets to now.
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

fn errno() -> i32 {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

fn set_errno(value: i32) {
    // SAFETY: __errno_location returns the calling thread's errno slot.
    unsafe { *libc::__errno_location() = value }
}

/// What `d_private` points at: the block device and the position `read`/`write`/`seek` use.
pub struct DeviceState {
    device: Box<dyn BlockDevice>,
    position: u64,
    read_only: bool,
    last_error: Option<reseal_disk::Error>,
}

/// Recovers the state from the device; the callbacks are only ever given our own devices.
unsafe fn state<'a>(dev: *mut ffi::ntfs_device) -> &'a mut DeviceState {
    &mut *((*dev).d_private as *mut DeviceState)
}

/// Runs a callback body, turning a panic into EIO instead of unwinding into C.
fn guarded<T>(failed: T, body: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(value) => value,
        Err(_) => {
            set_errno(libc::EIO);
            failed
        }
    }
}

const ND_OPEN: c_ulong = 1 << ffi::ntfs_device_state_bits_ND_Open;
const ND_READ_ONLY: c_ulong = 1 << ffi::ntfs_device_state_bits_ND_ReadOnly;

unsafe extern "C" fn device_open(dev: *mut ffi::ntfs_device, flags: c_int) -> c_int {
    guarded(-1, || {
        let state = state(dev);
        if (*dev).d_state & ND_OPEN != 0 {
            set_errno(libc::EBUSY);
            return -1;
        }
        let wants_write = flags & libc::O_ACCMODE != libc::O_RDONLY;
        if wants_write && state.read_only {
            set_errno(libc::EROFS);
            return -1;
        }
        (*dev).d_state |= ND_OPEN;
        if !wants_write {
            (*dev).d_state |= ND_READ_ONLY;
        }
        state.position = 0;
        0
    })
}

unsafe extern "C" fn device_close(dev: *mut ffi::ntfs_device) -> c_int {
    guarded(-1, || {
        if (*dev).d_state & ND_OPEN == 0 {
            set_errno(libc::EBADF);
            return -1;
        }
        let state = state(dev);
        let flushed = if (*dev).d_state & ND_READ_ONLY == 0 {
            state.device.flush()
        } else {
            Ok(())
        };
        (*dev).d_state &= !(ND_OPEN | ND_READ_ONLY);
        match flushed {
            Ok(()) => 0,
            Err(error) => {
                state.last_error = Some(error);
                set_errno(libc::EIO);
                -1
            }
        }
    })
}

unsafe extern "C" fn device_seek(dev: *mut ffi::ntfs_device, offset: i64, whence: c_int) -> i64 {
    guarded(-1, || {
        let state = state(dev);
        let base = match whence {
            libc::SEEK_SET => 0,
            libc::SEEK_CUR => state.position as i64,
            libc::SEEK_END => state.device.len() as i64,
            _ => {
                set_errno(libc::EINVAL);
                return -1;
            }
        };
        match base.checked_add(offset) {
            Some(position) if position >= 0 => {
                state.position = position as u64;
                position
            }
            _ => {
                set_errno(libc::EINVAL);
                -1
            }
        }
    })
}

/// Reads what lies within the device; a read starting at or past the end returns 0 bytes,
/// like a file would.
unsafe fn read_at(dev: *mut ffi::ntfs_device, buf: *mut c_void, count: i64, offset: i64) -> i64 {
    let state = state(dev);
    if count < 0 || offset < 0 {
        set_errno(libc::EINVAL);
        return -1;
    }
    let len = state.device.len();
    let offset = offset as u64;
    if offset >= len || count == 0 {
        return 0;
    }
    let count = (count as u64).min(len - offset) as usize;
    let buf = std::slice::from_raw_parts_mut(buf as *mut u8, count);
    match state.device.read_at(offset, buf) {
        Ok(()) => count as i64,
        Err(error) => {
            state.last_error = Some(error);
            set_errno(libc::EIO);
            -1
        }
    }
}

unsafe fn write_at(dev: *mut ffi::ntfs_device, buf: *const c_void, count: i64, offset: i64) -> i64 {
    let state = state(dev);
    if (*dev).d_state & ND_READ_ONLY != 0 || state.read_only {
        set_errno(libc::EROFS);
        return -1;
    }
    if count < 0 || offset < 0 {
        set_errno(libc::EINVAL);
        return -1;
    }
    let len = state.device.len();
    let offset = offset as u64;
    if count == 0 {
        return 0;
    }
    if offset >= len {
        set_errno(libc::ENOSPC);
        return -1;
    }
    let count = (count as u64).min(len - offset) as usize;
    let buf = std::slice::from_raw_parts(buf as *const u8, count);
    match state.device.write_at(offset, buf) {
        Ok(()) => count as i64,
        Err(error) => {
            state.last_error = Some(error);
            set_errno(libc::EIO);
            -1
        }
    }
}

unsafe extern "C" fn device_read(dev: *mut ffi::ntfs_device, buf: *mut c_void, count: i64) -> i64 {
    guarded(-1, || {
        let position = state(dev).position as i64;
        let done = read_at(dev, buf, count, position);
        if done > 0 {
            state(dev).position += done as u64;
        }
        done
    })
}

unsafe extern "C" fn device_write(
    dev: *mut ffi::ntfs_device,
    buf: *const c_void,
    count: i64,
) -> i64 {
    guarded(-1, || {
        let position = state(dev).position as i64;
        let done = write_at(dev, buf, count, position);
        if done > 0 {
            state(dev).position += done as u64;
        }
        done
    })
}

unsafe extern "C" fn device_pread(
    dev: *mut ffi::ntfs_device,
    buf: *mut c_void,
    count: i64,
    offset: i64,
) -> i64 {
    guarded(-1, || read_at(dev, buf, count, offset))
}

unsafe extern "C" fn device_pwrite(
    dev: *mut ffi::ntfs_device,
    buf: *const c_void,
    count: i64,
    offset: i64,
) -> i64 {
    guarded(-1, || write_at(dev, buf, count, offset))
}

unsafe extern "C" fn device_sync(dev: *mut ffi::ntfs_device) -> c_int {
    guarded(-1, || {
        if (*dev).d_state & ND_READ_ONLY != 0 {
            return 0;
        }
        let state = state(dev);
        match state.device.flush() {
            Ok(()) => 0,
            Err(error) => {
                state.last_error = Some(error);
                set_errno(libc::EIO);
                -1
            }
        }
    })
}

unsafe extern "C" fn device_stat(dev: *mut ffi::ntfs_device, buf: *mut ffi::stat) -> c_int {
    guarded(-1, || {
        let state = state(dev);
        ptr::write_bytes(buf, 0, 1);
        // A regular file of the device's size: libntfs-3g then asks no block-device ioctls.
        (*buf).st_mode = libc::S_IFREG | 0o600;
        (*buf).st_size = state.device.len() as i64;
        0
    })
}

unsafe extern "C" fn device_ioctl(
    _dev: *mut ffi::ntfs_device,
    _request: c_ulong,
    _argp: *mut c_void,
) -> c_int {
    set_errno(libc::ENOTTY);
    -1
}

/// One table shared by every device; libntfs-3g never writes to it.
static mut DEVICE_OPERATIONS: ffi::ntfs_device_operations = ffi::ntfs_device_operations {
    open: Some(device_open),
    close: Some(device_close),
    seek: Some(device_seek),
    read: Some(device_read),
    write: Some(device_write),
    pread: Some(device_pread),
    pwrite: Some(device_pwrite),
    sync: Some(device_sync),
    stat: Some(device_stat),
    ioctl: Some(device_ioctl),
};

/// A mounted NTFS volume on a [`BlockDevice`].
pub struct Mount {
    volume: NonNull<ffi::ntfs_volume>,
    state: NonNull<DeviceState>,
    mounted: bool,
}

// SAFETY: libntfs-3g keeps no per-thread state for a volume; `Mount` is not `Sync`, so only one
// thread uses it at a time, and the block device inside is `Send`.
unsafe impl Send for Mount {}

impl Mount {
    /// Mounts the NTFS volume on `device` with `NTFS_MNT_*` `flags`. With [`NTFS_MNT_RDONLY`]
    /// nothing is ever written to the device.
    ///
    /// libntfs-3g's refusals come back as errno: `EPERM` for a hibernated Windows (hiberfil.sys
    /// starts with `hibr`) or a version 2.0 `$LogFile` (metadata Windows kept cached),
    /// `EOPNOTSUPP` for an unclean `$LogFile`, `EINVAL` for a device that holds no NTFS.
    pub fn open(device: Box<dyn BlockDevice>, flags: u64) -> Result<Mount, MountFailure> {
        let read_only = flags & NTFS_MNT_RDONLY != 0;
        let name = CString::new(device.path().display().to_string().replace('\0', "?"))
            .unwrap_or_else(|_| CString::from(c"ntfs-device"));
        let state = Box::into_raw(Box::new(DeviceState {
            device,
            position: 0,
            read_only,
            last_error: None,
        }));
        // SAFETY: the name is copied by ntfs_device_alloc; DEVICE_OPERATIONS is a static that
        // lives forever; `state` stays valid until reclaimed below or by `unmount`.
        unsafe {
            let dev = ffi::ntfs_device_alloc(
                name.as_ptr(),
                0,
                ptr::addr_of_mut!(DEVICE_OPERATIONS),
                state as *mut c_void,
            );
            if dev.is_null() {
                let errno = errno();
                let state = Box::from_raw(state);
                return Err(MountFailure {
                    failure: Failure {
                        errno,
                        device_error: None,
                    },
                    device: state.device,
                });
            }
            let volume = ffi::ntfs_device_mount(dev, flags as ffi::ntfs_mount_flags);
            let Some(volume) = NonNull::new(volume) else {
                let errno = errno();
                // A failed mount leaves the device allocated (and normally closed).
                (*dev).d_state &= !ND_OPEN;
                ffi::ntfs_device_free(dev);
                let mut state = Box::from_raw(state);
                return Err(MountFailure {
                    failure: Failure {
                        errno,
                        device_error: state.last_error.take(),
                    },
                    device: state.device,
                });
            };
            // The caches `ntfs_mount` sets up (ntfs_umount frees them). Without the lookup
            // cache, libntfs-3g cannot find `$Extend\$Reparse` or `$Extend\$ObjId` on a
            // case-sensitive mount (it converts a null name), so setting or deleting a
            // reparse point or object id would fail with EINVAL.
            ffi::ntfs_create_lru_caches(volume.as_ptr());
            // Security descriptors of NTFS 3.x live in $Secure, which library users open
            // themselves; on older versions this fails harmlessly (they keep SDs per file).
            ffi::ntfs_open_secure(volume.as_ptr());
            Ok(Mount {
                volume,
                state: NonNull::new_unchecked(state),
                mounted: true,
            })
        }
    }

    /// Writes everything back, unmounts and returns the device.
    pub fn unmount(mut self) -> (Result<(), Failure>, Box<dyn BlockDevice>) {
        let result = self.release();
        // SAFETY: released: libntfs-3g holds no pointer to the state any more.
        let state = unsafe { Box::from_raw(self.state.as_ptr()) };
        std::mem::forget(self);
        (result, state.device)
    }

    fn release(&mut self) -> Result<(), Failure> {
        if !self.mounted {
            return Ok(());
        }
        self.mounted = false;
        // SAFETY: the volume is mounted and no Inode borrows self (unmount takes self).
        let status = unsafe { ffi::ntfs_umount(self.volume.as_ptr(), ffi::BOOL_FALSE) };
        if status == 0 {
            Ok(())
        } else {
            Err(self.failure())
        }
    }

    /// The failure of the call that just returned an error.
    fn failure(&self) -> Failure {
        let errno = errno();
        // SAFETY: the state is only touched by callbacks during a libntfs-3g call, and no call
        // is running now.
        let device_error = unsafe { (*self.state.as_ptr()).last_error.take() };
        Failure {
            errno,
            device_error,
        }
    }

    /// The inode with MFT record number `mft_no` (the sequence number is not checked).
    pub fn open_inode(&self, mft_no: u64) -> Result<Inode<'_>, Failure> {
        // SAFETY: the volume is mounted for as long as `self` lives.
        let ni = unsafe { ffi::ntfs_inode_open(self.volume.as_ptr(), mft_no) };
        match NonNull::new(ni) {
            Some(ni) => Ok(Inode { ni, mount: self }),
            None => Err(self.failure()),
        }
    }

    /// Creates a file (`directory == false`) or directory named `name` in `dir`.
    ///
    /// libntfs-3g gives the new inode a security descriptor granting Everyone full access;
    /// callers set the intended one with [`Inode::set_security_descriptor`].
    pub fn create<'m>(
        &'m self,
        dir: &Inode<'m>,
        name: &[u16],
        directory: bool,
    ) -> Result<Inode<'m>, Failure> {
        let Ok(name_len) = u8::try_from(name.len()) else {
            return Err(Failure {
                errno: libc::ENAMETOOLONG,
                device_error: None,
            });
        };
        let mode = if directory {
            libc::S_IFDIR
        } else {
            libc::S_IFREG
        };
        // SAFETY: `dir` is an open inode of this volume; the name is copied.
        let ni = unsafe { ffi::ntfs_create(dir.ni.as_ptr(), 0, name.as_ptr(), name_len, mode) };
        match NonNull::new(ni) {
            Some(ni) => Ok(Inode { ni, mount: self }),
            None => Err(self.failure()),
        }
    }

    /// Removes the link `name` of `inode` from `dir` (a directory must be empty). Both inodes
    /// are closed, as `ntfs_delete` always does. `path` names the file for libntfs-3g's lookup
    /// cache.
    pub fn delete<'m>(
        &'m self,
        inode: Inode<'m>,
        dir: Inode<'m>,
        name: &[u16],
        path: &str,
    ) -> Result<(), Failure> {
        let name_len = u8::try_from(name.len()).unwrap_or(u8::MAX);
        let path = CString::new(path.replace('\0', "")).unwrap_or_default();
        let (ni, dir_ni) = (inode.ni.as_ptr(), dir.ni.as_ptr());
        std::mem::forget(inode);
        std::mem::forget(dir);
        // SAFETY: both inodes are open and now owned by ntfs_delete, which closes them.
        let status = unsafe {
            ffi::ntfs_delete(
                self.volume.as_ptr(),
                path.as_ptr(),
                ni,
                dir_ni,
                name.as_ptr(),
                name_len,
            )
        };
        if status == 0 {
            Ok(())
        } else {
            Err(self.failure())
        }
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = self.release();
        // SAFETY: released (or never handed back): no one else points at the state.
        drop(unsafe { Box::from_raw(self.state.as_ptr()) });
    }
}

/// A directory entry as `ntfs_readdir` reports it.
#[derive(Debug, Clone)]
pub struct RawDirEntry {
    /// UTF-16 name, as stored.
    pub name: Vec<u16>,
    /// `FILE_NAME_POSIX` (0), `WIN32` (1), `DOS` (2) or `WIN32_AND_DOS` (3).
    pub name_type: u8,
    /// MFT reference: record number in the low 48 bits, sequence number above.
    pub mft_reference: u64,
    /// `NTFS_DT_DIR`, `NTFS_DT_REG`, `NTFS_DT_REPARSE`...
    pub dt_type: u32,
}

pub const DT_DIR: u32 = ffi::NTFS_DT_DIR;
pub const DT_REPARSE: u32 = ffi::NTFS_DT_REPARSE;

unsafe extern "C" fn collect_entry(
    dirent: *mut c_void,
    name: *const ffi::ntfschar,
    name_len: c_int,
    name_type: c_int,
    _pos: i64,
    mref: ffi::MFT_REF,
    dt_type: c_uint,
) -> c_int {
    guarded(-1, || {
        let entries = &mut *(dirent as *mut Vec<RawDirEntry>);
        let name = if name.is_null() || name_len <= 0 {
            Vec::new()
        } else {
            std::slice::from_raw_parts(name, name_len as usize)
                .iter()
                .map(|unit| u16::from_le(*unit))
                .collect()
        };
        entries.push(RawDirEntry {
            name,
            name_type: name_type as u8,
            mft_reference: mref,
            dt_type,
        });
        0
    })
}

/// An open inode; closed when dropped (errors ignored) or by [`Inode::close`].
pub struct Inode<'m> {
    ni: NonNull<ffi::ntfs_inode>,
    mount: &'m Mount,
}

impl<'m> Inode<'m> {
    pub fn mft_no(&self) -> u64 {
        // SAFETY: `mft_no` is the first field of an open inode.
        unsafe { (*self.ni.as_ptr()).mft_no }
    }

    /// Writes the inode back and closes it, reporting a write-back failure.
    pub fn close(self) -> Result<(), Failure> {
        let ni = self.ni.as_ptr();
        let mount = self.mount;
        std::mem::forget(self);
        // SAFETY: the inode is open and not used after this.
        if unsafe { ffi::ntfs_inode_close(ni) } == 0 {
            Ok(())
        } else {
            Err(mount.failure())
        }
    }

    /// Like [`Inode::close`], for an inode whose directory `dir` is open too: the copy of the
    /// file's sizes and times in the directory index is updated through `dir`, instead of
    /// through a second, conflicting opening of the same directory (which fails with EIO).
    pub fn close_in_dir(self, dir: &Inode<'m>) -> Result<(), Failure> {
        let ni = self.ni.as_ptr();
        let mount = self.mount;
        std::mem::forget(self);
        // SAFETY: both inodes are open; only `ni` is closed.
        if unsafe { ffi::ntfs_inode_close_in_dir(ni, dir.ni.as_ptr()) } == 0 {
            Ok(())
        } else {
            Err(mount.failure())
        }
    }

    /// The Windows file attributes (`FILE_ATTRIBUTE_*`), directory bit included.
    pub fn file_attributes(&self) -> Result<u32, Failure> {
        let mut value = [0u8; 4];
        // SAFETY: the buffer holds the 4 bytes the call writes.
        let size = unsafe {
            ffi::ntfs_get_ntfs_attrib(self.ni.as_ptr(), value.as_mut_ptr() as *mut c_char, 4)
        };
        if size == 4 {
            Ok(u32::from_le_bytes(value))
        } else {
            Err(self.size_failure(size))
        }
    }

    /// A failure from a getter returning `-errno` or an unexpected size.
    fn size_failure(&self, size: c_int) -> Failure {
        Failure {
            errno: if size < 0 { -size } else { libc::EIO },
            // SAFETY: no libntfs-3g call is running.
            device_error: unsafe { (*self.mount.state.as_ptr()).last_error.take() },
        }
    }

    /// Creation, last write, last access and MFT change times, in 100 ns units since 1601.
    pub fn times(&self) -> Result<[u64; 4], Failure> {
        let mut value = [0u64; 4];
        // SAFETY: the buffer holds the 32 bytes the call writes.
        let size = unsafe {
            ffi::ntfs_inode_get_times(self.ni.as_ptr(), value.as_mut_ptr() as *mut c_char, 32)
        };
        if size == 32 {
            Ok(value)
        } else {
            Err(self.size_failure(size))
        }
    }

    /// Sets the [`UPDATE_MTIME`]/[`UPDATE_CTIME`] timestamps to now (written back on close).
    pub fn update_times(&mut self, mask: u32) {
        // SAFETY: the inode is open.
        unsafe { ffi::ntfs_inode_update_times(self.ni.as_ptr(), mask) }
    }

    /// Every entry of this directory, `.` and `..` and DOS aliases included.
    pub fn read_dir(&mut self) -> Result<Vec<RawDirEntry>, Failure> {
        let mut entries: Vec<RawDirEntry> = Vec::new();
        let mut position: i64 = 0;
        // SAFETY: `entries` outlives the call and is only touched by `collect_entry`.
        let status = unsafe {
            ffi::ntfs_readdir(
                self.ni.as_ptr(),
                &mut position,
                &mut entries as *mut Vec<RawDirEntry> as *mut c_void,
                Some(collect_entry),
            )
        };
        if status == 0 {
            Ok(entries)
        } else {
            Err(self.mount.failure())
        }
    }

    /// Opens the attribute of `attr_type` named `name` (empty: the unnamed one); `None` when
    /// the inode has no such attribute.
    pub fn open_attr(&self, attr_type: u32, name: &[u16]) -> Result<Option<Attr<'_>>, Failure> {
        let Ok(name_len) = u32::try_from(name.len()) else {
            return Err(Failure {
                errno: libc::ENAMETOOLONG,
                device_error: None,
            });
        };
        let name_le: Vec<u16> = name.iter().map(|unit| unit.to_le()).collect();
        // SAFETY: AT_UNNAMED is libntfs-3g's own marker for "no name", compared by address;
        // a named lookup gets a copy of the name, which ntfs_attr_open duplicates.
        let na = unsafe {
            let name_ptr = if name.is_empty() {
                ptr::addr_of_mut!(ffi::AT_UNNAMED) as *mut ffi::ntfschar
            } else {
                name_le.as_ptr() as *mut ffi::ntfschar
            };
            ffi::ntfs_attr_open(self.ni.as_ptr(), attr_type, name_ptr, name_len)
        };
        match NonNull::new(na) {
            Some(na) => Ok(Some(Attr {
                na,
                mount: self.mount,
                _inode: PhantomData,
            })),
            None => {
                let failure = self.mount.failure();
                if failure.errno == libc::ENOENT {
                    Ok(None)
                } else {
                    Err(failure)
                }
            }
        }
    }

    /// The self-relative security descriptor that applies to this inode.
    pub fn security_descriptor(&self) -> Result<Vec<u8>, Failure> {
        let mut scx = self.security_context();
        let mut buffer = vec![0u8; 4096];
        loop {
            // SAFETY: the context only carries the volume; the buffer is `buffer.len()` long.
            let size = unsafe {
                ffi::ntfs_get_ntfs_acl(
                    &mut scx.context,
                    self.ni.as_ptr(),
                    buffer.as_mut_ptr() as *mut c_char,
                    buffer.len(),
                )
            };
            if size <= 0 {
                return Err(self.size_failure(size));
            }
            let size = size as usize;
            if size <= buffer.len() {
                buffer.truncate(size);
                return Ok(buffer);
            }
            buffer.resize(size, 0);
        }
    }

    /// Replaces this inode's security descriptor (stored in `$Secure` on NTFS 3.x). libntfs-3g
    /// rejects a descriptor that is not valid and self-relative with `EINVAL`.
    pub fn set_security_descriptor(&mut self, descriptor: &[u8]) -> Result<(), Failure> {
        let mut scx = self.security_context();
        // SAFETY: the descriptor is copied before libntfs-3g modifies anything.
        let status = unsafe {
            ffi::ntfs_set_ntfs_acl(
                &mut scx.context,
                self.ni.as_ptr(),
                descriptor.as_ptr() as *const c_char,
                descriptor.len(),
                0,
            )
        };
        if status == 0 {
            Ok(())
        } else {
            Err(self.mount.failure())
        }
    }

    /// The reparse point data (tag first), `None` when the inode has none.
    pub fn reparse_data(&self) -> Result<Option<Vec<u8>>, Failure> {
        // SAFETY: a null buffer of size 0 asks for the size only.
        let size = unsafe { ffi::ntfs_get_ntfs_reparse_data(self.ni.as_ptr(), ptr::null_mut(), 0) };
        if size == -libc::ENODATA || size == 0 {
            return Ok(None);
        }
        if size < 0 {
            return Err(self.size_failure(size));
        }
        let mut buffer = vec![0u8; size as usize];
        // SAFETY: the buffer is `size` bytes long.
        let read = unsafe {
            ffi::ntfs_get_ntfs_reparse_data(
                self.ni.as_ptr(),
                buffer.as_mut_ptr() as *mut c_char,
                buffer.len(),
            )
        };
        if read < 0 {
            return Err(self.size_failure(read));
        }
        buffer.truncate(read as usize);
        Ok(Some(buffer))
    }

    fn security_context(&self) -> SecurityContext {
        let mut context = SecurityContext {
            context: ffi::SECURITY_CONTEXT::default(),
            cache: Box::new(ptr::null_mut()),
        };
        context.context.vol = self.mount.volume.as_ptr();
        // No permission cache: the ACL getters and setters only look it up when present.
        context.context.pseccache = &mut *context.cache;
        context
    }
}

/// A `SECURITY_CONTEXT` that carries only the volume, as the raw ACL getters and setters need.
struct SecurityContext {
    context: ffi::SECURITY_CONTEXT,
    cache: Box<*mut ffi::PERMISSIONS_CACHE>,
}

impl Drop for Inode<'_> {
    fn drop(&mut self) {
        // SAFETY: the inode is open; errors surface through `close` for callers that care.
        unsafe {
            ffi::ntfs_inode_close(self.ni.as_ptr());
        }
    }
}

/// An open attribute of an inode.
pub struct Attr<'i> {
    na: NonNull<ffi::ntfs_attr>,
    mount: &'i Mount,
    _inode: PhantomData<&'i Inode<'i>>,
}

impl Attr<'_> {
    fn attr(&self) -> &ffi::ntfs_attr {
        // SAFETY: the attribute is open; the fields read lie before any conditional part.
        unsafe { self.na.as_ref() }
    }

    /// The value's length in bytes.
    pub fn data_size(&self) -> u64 {
        self.attr().data_size.max(0) as u64
    }

    /// How far the value has been written; bytes past it read as zeros.
    pub fn initialized_size(&self) -> u64 {
        self.attr().initialized_size.max(0) as u64
    }

    /// The `ATTR_FLAGS` of the attribute record: compressed, encrypted, sparse.
    pub fn flags(&self) -> u16 {
        self.attr().data_flags
    }

    /// Reads up to `buf.len()` bytes at `position`; fewer at the end of the value.
    pub fn pread(&mut self, position: u64, buf: &mut [u8]) -> Result<usize, Failure> {
        let position = i64::try_from(position).unwrap_or(i64::MAX);
        // SAFETY: the attribute is open; libntfs-3g writes at most `buf.len()` bytes.
        let read = unsafe {
            ffi::ntfs_attr_pread(
                self.na.as_ptr(),
                position,
                buf.len() as i64,
                buf.as_mut_ptr() as *mut c_void,
            )
        };
        if read < 0 {
            Err(self.mount.failure())
        } else {
            Ok(read as usize)
        }
    }

    /// Writes `buf` at `position`, growing the value if needed; returns the bytes written.
    pub fn pwrite(&mut self, position: u64, buf: &[u8]) -> Result<usize, Failure> {
        let position = i64::try_from(position).unwrap_or(i64::MAX);
        // SAFETY: the attribute is open; libntfs-3g reads `buf.len()` bytes.
        let written = unsafe {
            ffi::ntfs_attr_pwrite(
                self.na.as_ptr(),
                position,
                buf.len() as i64,
                buf.as_ptr() as *const c_void,
            )
        };
        if written < 0 {
            Err(self.mount.failure())
        } else {
            Ok(written as usize)
        }
    }

    /// Sets the value's length, freeing or allocating clusters.
    pub fn truncate(&mut self, size: u64) -> Result<(), Failure> {
        let size = i64::try_from(size).map_err(|_| Failure {
            errno: libc::EFBIG,
            device_error: None,
        })?;
        // SAFETY: the attribute is open.
        if unsafe { ffi::ntfs_attr_truncate(self.na.as_ptr(), size) } == 0 {
            Ok(())
        } else {
            Err(self.mount.failure())
        }
    }
}

impl Drop for Attr<'_> {
    fn drop(&mut self) {
        // SAFETY: the attribute is open and not used after this.
        unsafe { ffi::ntfs_attr_close(self.na.as_ptr()) }
    }
}
