//! An open inode: [`Inode`] reads its attributes, times, directory entries, security
//! descriptor and reparse data, sets its security descriptor and times, and opens its
//! attributes.

use std::ffi::{c_char, c_int, c_uint, c_void};
use std::marker::PhantomData;
use std::ptr::{self, NonNull};

use crate::device::guarded;
use crate::{ffi, Attr, Failure, Mount, UPDATE_ATIME, UPDATE_CTIME, UPDATE_MTIME};

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

/// Byte offsets in an attribute record (`ATTR_RECORD`, layout.h): its length, the
/// non-resident flag, and a resident value's length and offset.
const ATTR_LENGTH: usize = 4;
const ATTR_NON_RESIDENT: usize = 8;
const ATTR_VALUE_LENGTH: usize = 16;
const ATTR_VALUE_OFFSET: usize = 20;
/// The offsets of the four times in a file name attribute's value (`FILE_NAME_ATTR`: creation,
/// last data change, last MFT change, last access), and where the last one ends.
const FILE_NAME_TIMES: [usize; 4] = [8, 16, 24, 32];
const FILE_NAME_TIMES_END: usize = 40;

/// An open inode; closed when dropped (errors ignored) or by [`Inode::close`].
pub struct Inode<'m> {
    pub(crate) ni: NonNull<ffi::ntfs_inode>,
    pub(crate) mount: &'m Mount,
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

    /// Sets the [`UPDATE_ATIME`]/[`UPDATE_MTIME`]/[`UPDATE_CTIME`] timestamps to `time` (100 ns
    /// units since 1601) instead of now; written back on close, into the standard information
    /// and the directory index's copy, as [`Inode::update_times`] is.
    pub fn set_times(&mut self, mask: u32, time: u64) {
        // The update marks the inode and its names dirty (the only way to mark the names
        // without touching `state`); the clock's times it sets are then replaced.
        self.update_times(mask);
        let time: ffi::ntfs_time = time.to_le();
        let ni = self.ni.as_ptr();
        // SAFETY: the inode is open; the time fields lie before any conditional part.
        unsafe {
            if mask & UPDATE_ATIME != 0 {
                (*ni).last_access_time = time;
            }
            if mask & UPDATE_MTIME != 0 {
                (*ni).last_data_change_time = time;
            }
            if mask & UPDATE_CTIME != 0 {
                (*ni).last_mft_change_time = time;
            }
        }
    }

    /// Gives an inode libntfs-3g has just created `time` for every timestamp it took from the
    /// clock: the four of its standard information (and of the directory index's copy, written
    /// back on close) and those of each file name attribute in its MFT record.
    pub fn set_creation_times(&mut self, time: u64) -> Result<(), Failure> {
        self.set_times(UPDATE_ATIME | UPDATE_MTIME | UPDATE_CTIME, time);
        let time: ffi::ntfs_time = time.to_le();
        let ni = self.ni.as_ptr();
        // SAFETY: the inode is open; the search context is put back before returning, and the
        // file name values written lie inside their resident attribute (checked).
        unsafe {
            (*ni).creation_time = time;
            let ctx = ffi::ntfs_attr_get_search_ctx(ni, ptr::null_mut());
            if ctx.is_null() {
                return Err(self.mount.failure());
            }
            let mut found = Ok(());
            while ffi::ntfs_attr_lookup(
                ffi::ATTR_TYPES_AT_FILE_NAME,
                ptr::addr_of_mut!(ffi::AT_UNNAMED) as *mut ffi::ntfschar,
                0,
                ffi::IGNORE_CASE_BOOL_CASE_SENSITIVE,
                0,
                ptr::null(),
                0,
                ctx,
            ) == 0
            {
                let attr = (*ctx).attr as *mut u8;
                let read_u32 =
                    |at: usize| u32::from_le((attr.add(at) as *const u32).read_unaligned());
                let record_length = read_u32(ATTR_LENGTH) as usize;
                let value_length = read_u32(ATTR_VALUE_LENGTH) as usize;
                let value_offset =
                    u16::from_le((attr.add(ATTR_VALUE_OFFSET) as *const u16).read_unaligned());
                let value_offset = usize::from(value_offset);
                if *attr.add(ATTR_NON_RESIDENT) != 0
                    || value_length < FILE_NAME_TIMES_END
                    || value_offset + value_length > record_length
                {
                    found = Err(Failure {
                        errno: libc::EIO,
                        device_error: None,
                    });
                    break;
                }
                for at in FILE_NAME_TIMES {
                    (attr.add(value_offset + at) as *mut u64).write_unaligned(time);
                }
                ffi::ntfs_inode_mark_dirty((*ctx).ntfs_ino);
            }
            if found.is_ok() && crate::errno() != libc::ENOENT {
                found = Err(self.mount.failure());
            }
            ffi::ntfs_attr_put_search_ctx(ctx);
            found
        }
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
