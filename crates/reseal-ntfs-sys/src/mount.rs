//! A mounted volume: [`Mount`] mounts libntfs-3g on a block device through the custom device,
//! opens, creates and deletes inodes, and unmounts, handing the device back.

use std::ffi::{c_void, CString};
use std::ptr::{self, NonNull};

use reseal_disk::BlockDevice;

use crate::device::{DeviceState, DEVICE_OPERATIONS, ND_OPEN};
use crate::{errno, ffi, Failure, Inode, MountFailure, NTFS_MNT_RDONLY};

/// A mounted NTFS volume on a [`BlockDevice`].
pub struct Mount {
    pub(crate) volume: NonNull<ffi::ntfs_volume>,
    pub(crate) state: NonNull<DeviceState>,
    pub(crate) mounted: bool,
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
    pub(crate) fn failure(&self) -> Failure {
        let errno = errno();
        // SAFETY: the state is only touched by callbacks during a libntfs-3g call, and no call
        // is running now.
        let device_error = unsafe { (*self.state.as_ptr()).last_error.take() };
        Failure {
            errno,
            device_error,
        }
    }

    /// Whether libntfs-3g has the volume's `$Secure` open: then a file whose
    /// `$STANDARD_INFORMATION` names a security id gets that id's descriptor from it (otherwise
    /// each file's own `$SECURITY_DESCRIPTOR` attribute is read).
    pub fn uses_secure(&self) -> bool {
        // SAFETY: the volume is mounted for as long as `self` lives; the field is only read.
        unsafe { !self.volume.as_ref().secure_ni.is_null() }
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
