//! The custom libntfs-3g device: the `ntfs_device_operations` callbacks that read and write a
//! [`BlockDevice`] through the [`DeviceState`] behind `d_private`, catching panics and turning
//! block-layer failures into `EIO` (see the invariants at the top of the crate).

use std::ffi::{c_int, c_ulong, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;

use reseal_disk::BlockDevice;

use crate::{ffi, set_errno};

/// What `d_private` points at: the block device and the position `read`/`write`/`seek` use.
pub struct DeviceState {
    pub(crate) device: Box<dyn BlockDevice>,
    pub(crate) position: u64,
    pub(crate) read_only: bool,
    pub(crate) last_error: Option<reseal_disk::Error>,
}

/// Recovers the state from the device; the callbacks are only ever given our own devices.
unsafe fn state<'a>(dev: *mut ffi::ntfs_device) -> &'a mut DeviceState {
    &mut *((*dev).d_private as *mut DeviceState)
}

/// Runs a callback body, turning a panic into EIO instead of unwinding into C.
pub(crate) fn guarded<T>(failed: T, body: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(value) => value,
        Err(_) => {
            set_errno(libc::EIO);
            failed
        }
    }
}

pub(crate) const ND_OPEN: c_ulong = 1 << ffi::ntfs_device_state_bits_ND_Open;
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
pub(crate) static mut DEVICE_OPERATIONS: ffi::ntfs_device_operations =
    ffi::ntfs_device_operations {
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
