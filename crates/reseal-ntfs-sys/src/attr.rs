//! An open attribute: [`Attr`] reads its sizes and flags and reads, writes and truncates its
//! contents.

use std::ffi::c_void;
use std::marker::PhantomData;
use std::ptr::NonNull;

use crate::{ffi, Failure, Inode, Mount};

/// An open attribute of an inode.
pub struct Attr<'i> {
    pub(crate) na: NonNull<ffi::ntfs_attr>,
    pub(crate) mount: &'i Mount,
    pub(crate) _inode: PhantomData<&'i Inode<'i>>,
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
