//! Writers that only tests use, to build volumes reseal must refuse to edit: files compressed by
//! NTFS, WOF reparse points with their `WofCompressedData` stream, and a lookup by path to reach
//! the files to change. Compiled with the `fixtures` feature only; reseal itself never writes any
//! of these.

use std::ffi::c_char;

use super::{ffi, Failure, Inode, Mount, AT_DATA};

impl Mount {
    /// Lets libntfs-3g write compressed data, as ntfs-3g's `compression` mount option does: a
    /// file created afterwards in a directory with `FILE_ATTRIBUTE_COMPRESSED` gets an
    /// LZNT1-compressed data stream (clusters of at most 4 KiB only).
    pub fn enable_compression(&mut self) {
        // SAFETY: `state` is the third field of `ntfs_volume`, ahead of every field that
        // depends on libntfs-3g's build options; no libntfs-3g call is running (`&mut self`).
        unsafe {
            (*self.volume.as_ptr()).state |= 1 << ffi::ntfs_volume_state_bits_NV_Compression;
        }
    }

    /// Creates the file `name` in the directory at `dir_path` holding `contents` compressed by
    /// NTFS, as Windows does after `compact /c` on the directory: compression is switched on,
    /// the directory gets `FILE_ATTRIBUTE_COMPRESSED`, and the new file's data is written in
    /// LZNT1 units (a unit that would not shrink is stored as it is, in a compressed attribute).
    pub fn create_compressed_file(
        &mut self,
        dir_path: &str,
        name: &str,
        contents: &[u8],
    ) -> Result<(), Failure> {
        const FILE_ATTRIBUTE_COMPRESSED: u32 = 0x0800;
        self.enable_compression();
        let mut dir = self.open_path(dir_path)?;
        let attributes = dir.file_attributes()?;
        dir.set_file_attributes(attributes | FILE_ATTRIBUTE_COMPRESSED)?;
        let name: Vec<u16> = name.encode_utf16().collect();
        let file = self.create(&dir, &name, false)?;
        let no_data = || Failure {
            errno: libc::EIO,
            device_error: None,
        };
        {
            let mut data = file.open_attr(AT_DATA, &[])?.ok_or_else(no_data)?;
            if data.pwrite(0, contents)? != contents.len() {
                return Err(no_data());
            }
        }
        file.close_in_dir(&dir)?;
        dir.close()
    }

    /// Opens the file or directory at a Windows path (`Windows\System32\config`) from the
    /// root, names compared without regard to ASCII case; `ENOENT` when a component is missing.
    pub fn open_path(&self, windows_path: &str) -> Result<Inode<'_>, Failure> {
        const MFT_ROOT: u64 = 5;
        const MFT_RECORD_MASK: u64 = 0x0000_FFFF_FFFF_FFFF;
        let mut inode = self.open_inode(MFT_ROOT)?;
        for name in windows_path.split('\\') {
            let entries = inode.read_dir()?;
            let entry = entries
                .iter()
                .find(|entry| String::from_utf16_lossy(&entry.name).eq_ignore_ascii_case(name))
                .ok_or(Failure {
                    errno: libc::ENOENT,
                    device_error: None,
                })?;
            inode = self.open_inode(entry.mft_reference & MFT_RECORD_MASK)?;
        }
        Ok(inode)
    }
}

impl Inode<'_> {
    /// Sets the Windows attributes (`FILE_ATTRIBUTE_*`). libntfs-3g accepts
    /// `FILE_ATTRIBUTE_COMPRESSED` on directories only.
    pub fn set_file_attributes(&mut self, attributes: u32) -> Result<(), Failure> {
        let value = attributes.to_le_bytes();
        // SAFETY: the inode is open; the 4 bytes are copied.
        let status = unsafe {
            ffi::ntfs_set_ntfs_attrib(self.ni.as_ptr(), value.as_ptr() as *const c_char, 4, 0)
        };
        self.status(status)
    }

    /// Makes the inode a reparse point with `data` (the tag first, as Windows'
    /// `REPARSE_DATA_BUFFER`), indexed in `$Extend\$Reparse`.
    pub fn set_reparse_data(&mut self, data: &[u8]) -> Result<(), Failure> {
        // SAFETY: the inode is open; libntfs-3g checks the buffer's lengths and copies it.
        let status = unsafe {
            ffi::ntfs_set_ntfs_reparse_data(
                self.ni.as_ptr(),
                data.as_ptr() as *const c_char,
                data.len(),
                0,
            )
        };
        self.status(status)
    }

    /// Adds an empty named data stream (an alternate data stream), to be filled through
    /// [`Inode::open_attr`].
    pub fn add_data_stream(&mut self, name: &[u16]) -> Result<(), Failure> {
        let Ok(name_len) = u8::try_from(name.len()) else {
            return Err(Failure {
                errno: libc::ENAMETOOLONG,
                device_error: None,
            });
        };
        let mut name_le: Vec<u16> = name.iter().map(|unit| unit.to_le()).collect();
        // SAFETY: the inode is open; the name is copied; a null value of size 0 is an empty one.
        let status = unsafe {
            ffi::ntfs_attr_add(
                self.ni.as_ptr(),
                AT_DATA,
                name_le.as_mut_ptr(),
                name_len,
                std::ptr::null(),
                0,
            )
        };
        self.status(status)
    }

    fn status(&self, status: i32) -> Result<(), Failure> {
        if status == 0 {
            Ok(())
        } else {
            Err(self.mount.failure())
        }
    }
}
