//! Files and directories by Windows path: lookup, read, replace, create, delete.

use std::collections::HashSet;

use reseal_nt::security_descriptor::{self, ObjectKind};
use reseal_ntfs_sys::{self as sys, Inode};

use crate::error::{ntfs_error, Error, Result};
use crate::mft::{FIRST_USER_RECORD, MFT_RECORD_MASK, MFT_ROOT};
use crate::path;
use crate::volume::Volume;

/// `FILE_ATTRIBUTE_*` bits checked before touching a file's data.
const FILE_ATTRIBUTE_DIRECTORY: u32 = 0x0010;
const FILE_ATTRIBUTE_REPARSE_POINT: u32 = 0x0400;
const FILE_ATTRIBUTE_COMPRESSED: u32 = 0x0800;
const FILE_ATTRIBUTE_ENCRYPTED: u32 = 0x4000;

/// The unit in which a sparse file's new contents are written or left as a hole: NTFS's
/// default cluster size. It only decides which holes stay; libntfs-3g fills any part of a
/// cluster that is written, so the contents are right whatever the volume's cluster size.
const SPARSE_CHUNK: usize = 4096;

/// The unit in which a replaced file's new contents are compared with its old ones, so that
/// only the parts that differ are written.
const COMPARE_CHUNK: usize = 64 * 1024;

/// Windows Overlay Filter: CompactOS and `compact /exe` files keep their data in the
/// `WofCompressedData` stream and leave the unnamed `$DATA` sparse.
const IO_REPARSE_TAG_WOF: u32 = 0x8000_0017;

/// One entry of a directory listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    /// The long (Win32 or POSIX) name; 8.3 aliases are not listed separately.
    pub name: String,
    pub is_dir: bool,
    /// The size of the unnamed data stream in bytes (0 for directories).
    pub size: u64,
}

/// The four `$STANDARD_INFORMATION` timestamps, in 100 ns units since 1601 (FILETIME).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileTimes {
    pub creation: u64,
    pub last_write: u64,
    pub last_access: u64,
    /// Last change of the MFT record (attributes, security, size).
    pub change: u64,
}

/// A name found in a directory.
pub(crate) struct Found {
    pub(crate) mft_no: u64,
    /// The long name of the link, even when the lookup matched its 8.3 alias.
    pub(crate) name: Vec<u16>,
    pub(crate) is_dir: bool,
}

fn utf16(text: &str) -> Vec<u16> {
    text.encode_utf16().collect()
}

impl Volume {
    fn parts<'p>(&self, path: &'p str) -> Result<Vec<&'p str>> {
        path::components(path).map_err(|reason| Error::InvalidPath {
            image: self.image.clone(),
            path: path.to_string(),
            reason,
        })
    }

    pub(crate) fn open(&self, mft_no: u64, shown: &str) -> Result<Inode<'_>> {
        self.mount
            .open_inode(mft_no)
            .map_err(|failure| ntfs_error(&self.image, "open", shown, failure))
    }

    fn attributes(&self, inode: &Inode<'_>, shown: &str) -> Result<u32> {
        inode
            .file_attributes()
            .map_err(|failure| ntfs_error(&self.image, "read attributes of", shown, failure))
    }

    /// The entries of a directory with their long names, `.`/`..` left out.
    pub(crate) fn children(&self, dir: &mut Inode<'_>, shown: &str) -> Result<Vec<Found>> {
        let entries = dir
            .read_dir()
            .map_err(|failure| ntfs_error(&self.image, "list", shown, failure))?;
        let mut found = Vec::new();
        for entry in &entries {
            if entry.name_type == sys::FILE_NAME_DOS || is_dot_entry(&entry.name) {
                continue;
            }
            found.push(Found {
                mft_no: entry.mft_reference & MFT_RECORD_MASK,
                name: entry.name.clone(),
                is_dir: self.entry_is_dir(entry, shown)?,
            });
        }
        Ok(found)
    }

    fn entry_is_dir(&self, entry: &sys::RawDirEntry, shown: &str) -> Result<bool> {
        if entry.dt_type == sys::DT_DIR {
            return Ok(true);
        }
        if entry.dt_type != sys::DT_REPARSE {
            return Ok(false);
        }
        // A reparse point may be a directory (junction) or a file: ask the inode.
        let inode = self.open(entry.mft_reference & MFT_RECORD_MASK, shown)?;
        Ok(self.attributes(&inode, shown)? & FILE_ATTRIBUTE_DIRECTORY != 0)
    }

    /// Looks `name` up in `dir`: an exact match first, then a unique case-insensitive one
    /// (with the volume's `$UpCase`), 8.3 aliases included.
    fn find_in(&self, dir: &mut Inode<'_>, name: &str, shown: &str) -> Result<Option<Found>> {
        let entries = dir
            .read_dir()
            .map_err(|failure| ntfs_error(&self.image, "list", shown, failure))?;
        let wanted = utf16(name);
        let candidates: Vec<&sys::RawDirEntry> = entries
            .iter()
            .filter(|entry| !is_dot_entry(&entry.name))
            .filter(|entry| self.upcase.eq_ignore_case(&entry.name, &wanted))
            .collect();
        let chosen = match candidates.iter().find(|entry| entry.name == wanted) {
            Some(exact) => *exact,
            None => {
                let records: HashSet<u64> = candidates
                    .iter()
                    .map(|entry| entry.mft_reference & MFT_RECORD_MASK)
                    .collect();
                match (records.len(), candidates.first()) {
                    (0, _) | (_, None) => return Ok(None),
                    (1, Some(first)) => *first,
                    _ => {
                        return Err(Error::AmbiguousName {
                            image: self.image.clone(),
                            path: format!("{}\\{name}", shown.trim_end_matches('\\')),
                            candidates: candidates
                                .iter()
                                .map(|entry| String::from_utf16_lossy(&entry.name))
                                .collect(),
                        })
                    }
                }
            }
        };
        let record = chosen.mft_reference & MFT_RECORD_MASK;
        let long = if chosen.name_type == sys::FILE_NAME_DOS {
            entries
                .iter()
                .find(|entry| {
                    entry.name_type != sys::FILE_NAME_DOS
                        && entry.mft_reference & MFT_RECORD_MASK == record
                })
                .unwrap_or(chosen)
        } else {
            chosen
        };
        Ok(Some(Found {
            mft_no: record,
            name: long.name.clone(),
            is_dir: self.entry_is_dir(long, shown)?,
        }))
    }

    /// Walks `parts` from the root; `None` when a component is missing or not a directory.
    fn resolve(&self, parts: &[&str]) -> Result<Option<Inode<'_>>> {
        let mut current = self.open(MFT_ROOT, "\\")?;
        for (index, part) in parts.iter().enumerate() {
            let shown = path::display(&parts[..index]);
            let Some(found) = self.find_in(&mut current, part, &shown)? else {
                return Ok(None);
            };
            if index + 1 < parts.len() && !found.is_dir {
                return Ok(None);
            }
            current = self.open(found.mft_no, &path::display(&parts[..=index]))?;
        }
        Ok(Some(current))
    }

    /// The directory holding the last component of `parts`, which must exist.
    fn parent_dir(&self, parts: &[&str]) -> Result<Inode<'_>> {
        let parent = &parts[..parts.len().saturating_sub(1)];
        let shown = path::display(parent);
        let Some(dir) = self.resolve(parent)? else {
            return Err(Error::NotFound {
                image: self.image.clone(),
                path: shown,
            });
        };
        if self.attributes(&dir, &shown)? & FILE_ATTRIBUTE_DIRECTORY == 0 {
            return Err(Error::NotADirectory {
                image: self.image.clone(),
                path: shown,
            });
        }
        Ok(dir)
    }

    fn existing(&self, parts: &[&str]) -> Result<Inode<'_>> {
        self.resolve(parts)?.ok_or_else(|| Error::NotFound {
            image: self.image.clone(),
            path: path::display(parts),
        })
    }

    /// Whether a file or directory exists at `path`.
    pub fn exists(&self, path: &str) -> Result<bool> {
        let parts = self.parts(path)?;
        Ok(self.resolve(&parts)?.is_some())
    }

    /// The contents of the unnamed data stream of the file at `path`; `None` if there is no
    /// such file. Compressed (LZNT1) files are decompressed by libntfs-3g; encrypted files and
    /// reparse points (WOF/CompactOS files, symbolic links, deduplicated files) are refused
    /// rather than read as garbage or zeros.
    pub fn read_file(&self, path: &str) -> Result<Option<Vec<u8>>> {
        let parts = self.parts(path)?;
        let shown = path::display(&parts);
        let Some(inode) = self.resolve(&parts)? else {
            return Ok(None);
        };
        let attributes = self.attributes(&inode, &shown)?;
        if attributes & FILE_ATTRIBUTE_DIRECTORY != 0 {
            return Err(Error::IsADirectory {
                image: self.image.clone(),
                path: shown,
            });
        }
        self.refuse_unreadable(&inode, attributes, &shown)?;
        let Some(mut data) = inode
            .open_attr(sys::AT_DATA, &[])
            .map_err(|failure| ntfs_error(&self.image, "open data of", &shown, failure))?
        else {
            return Ok(Some(Vec::new()));
        };
        let size = data.data_size();
        let mut contents = Vec::new();
        let too_large = || Error::Unsupported {
            image: self.image.clone(),
            path: shown.clone(),
            reason: format!("{size} bytes do not fit in memory"),
        };
        let len = usize::try_from(size).map_err(|_| too_large())?;
        contents.try_reserve_exact(len).map_err(|_| too_large())?;
        contents.resize(len, 0);
        self.read_all_at(&mut data, 0, &mut contents, &shown)?;
        Ok(Some(contents))
    }

    /// Fills `buffer` from `data` at `offset`; data that ends before the buffer is full is an
    /// error.
    pub(crate) fn read_all_at(
        &self,
        data: &mut sys::Attr<'_>,
        offset: usize,
        buffer: &mut [u8],
        shown: &str,
    ) -> Result<()> {
        let mut done = 0;
        while done < buffer.len() {
            let read = data
                .pread((offset + done) as u64, &mut buffer[done..])
                .map_err(|failure| ntfs_error(&self.image, "read", shown, failure))?;
            if read == 0 {
                return Err(Error::Ntfs {
                    image: self.image.clone(),
                    path: shown.to_string(),
                    action: "read",
                    errno: libc::EIO,
                    reason: format!(
                        "data ends at {} of {} bytes",
                        offset + done,
                        offset + buffer.len()
                    ),
                    device: None,
                });
            }
            done += read;
        }
        Ok(())
    }

    fn refuse_unreadable(&self, inode: &Inode<'_>, attributes: u32, shown: &str) -> Result<()> {
        let unsupported = |reason: String| Error::Unsupported {
            image: self.image.clone(),
            path: shown.to_string(),
            reason,
        };
        if attributes & FILE_ATTRIBUTE_ENCRYPTED != 0 {
            return Err(unsupported("the file is EFS-encrypted".into()));
        }
        if attributes & FILE_ATTRIBUTE_REPARSE_POINT != 0 {
            // The unnamed data of a reparse point is not the file's content: a WOF file's is
            // sparse, a symbolic link's or deduplicated file's lives elsewhere.
            return Err(unsupported(match self.reparse_tag(inode, shown)? {
                Some(IO_REPARSE_TAG_WOF) => "the file is WOF/CompactOS-compressed (reparse tag 0x80000017); its data lives in the WofCompressedData stream".into(),
                Some(tag) => format!("the file is a reparse point (tag {tag:#010x}), not plain data"),
                None => "the file is a reparse point without reparse data".into(),
            }));
        }
        Ok(())
    }

    fn reparse_tag(&self, inode: &Inode<'_>, shown: &str) -> Result<Option<u32>> {
        let data = inode
            .reparse_data()
            .map_err(|failure| ntfs_error(&self.image, "read reparse point of", shown, failure))?;
        Ok(data
            .filter(|bytes| bytes.len() >= 4)
            .map(|bytes| u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])))
    }

    /// The entries of the directory at `path` (for the root, without the metadata files).
    pub fn list_dir(&self, path: &str) -> Result<Vec<DirEntry>> {
        let parts = self.parts(path)?;
        let shown = path::display(&parts);
        let mut dir = self.existing(&parts)?;
        if self.attributes(&dir, &shown)? & FILE_ATTRIBUTE_DIRECTORY == 0 {
            return Err(Error::NotADirectory {
                image: self.image.clone(),
                path: shown,
            });
        }
        let is_root = parts.is_empty();
        self.children(&mut dir, &shown)?
            .into_iter()
            .filter(|found| !(is_root && found.mft_no < FIRST_USER_RECORD))
            .map(|found| {
                let name = String::from_utf16_lossy(&found.name);
                let size = if found.is_dir {
                    0
                } else {
                    self.data_size(found.mft_no, &format!("{shown}\\{name}"))?
                };
                Ok(DirEntry {
                    name,
                    is_dir: found.is_dir,
                    size,
                })
            })
            .collect()
    }

    /// The size of a file's unnamed data stream (0 when it has none). The directory index
    /// holds a size too, but Windows does not keep it current, so the inode is asked.
    fn data_size(&self, mft_no: u64, shown: &str) -> Result<u64> {
        let inode = self
            .mount
            .open_inode(mft_no)
            .map_err(|failure| ntfs_error(&self.image, "open", shown, failure))?;
        let data = inode
            .open_attr(sys::AT_DATA, &[])
            .map_err(|failure| ntfs_error(&self.image, "open data of", shown, failure))?;
        Ok(data.map_or(0, |data| data.data_size()))
    }

    /// Replaces the contents of an existing file in place: the same inode, so its security
    /// descriptor, attributes, names and creation time stay; the last-write and change times
    /// are set to now, as Windows does on a write.
    ///
    /// Refused: directories, and files whose data libntfs-3g cannot rewrite faithfully
    /// (compressed, encrypted, reparse points such as WOF/CompactOS files). Sparse files are
    /// rewritten and stay sparse.
    pub fn replace_file(&mut self, path: &str, contents: &[u8]) -> Result<()> {
        self.require_writable()?;
        let parts = self.parts(path)?;
        let shown = path::display(&parts);
        let mut inode = self.existing(&parts)?;
        let attributes = self.attributes(&inode, &shown)?;
        let unsupported = |reason: String| Error::Unsupported {
            image: self.image.clone(),
            path: shown.clone(),
            reason,
        };
        if attributes & FILE_ATTRIBUTE_DIRECTORY != 0 {
            return Err(Error::IsADirectory {
                image: self.image.clone(),
                path: shown,
            });
        }
        self.refuse_unreadable(&inode, attributes, &shown)?;
        if attributes & FILE_ATTRIBUTE_COMPRESSED != 0 {
            return Err(unsupported("the file is NTFS-compressed".into()));
        }
        {
            let Some(mut data) = inode
                .open_attr(sys::AT_DATA, &[])
                .map_err(|failure| ntfs_error(&self.image, "open data of", &shown, failure))?
            else {
                return Err(unsupported("the file has no unnamed data stream".into()));
            };
            let flags = data.flags();
            if flags & sys::ATTR_COMPRESSION_MASK != 0 {
                return Err(unsupported("the data stream is compressed".into()));
            }
            if flags & sys::ATTR_IS_ENCRYPTED != 0 {
                return Err(unsupported("the data stream is encrypted".into()));
            }
            let truncate = |data: &mut sys::Attr<'_>, size: usize| {
                data.truncate(size as u64)
                    .map_err(|failure| ntfs_error(&self.image, "truncate", &shown, failure))
            };
            if flags & sys::ATTR_IS_SPARSE != 0 {
                // A sparse stream is emptied, grown back as one hole, and only the parts of
                // the new contents that are not zeros are written, as wimlib applies a sparse
                // file. libntfs-3g clears the sparse attribute of a stream left without holes;
                // Windows would keep it, and keeping the holes keeps it too.
                truncate(&mut data, 0)?;
                truncate(&mut data, contents.len())?;
                for (index, chunk) in contents.chunks(SPARSE_CHUNK).enumerate() {
                    if chunk.iter().any(|&byte| byte != 0) {
                        self.write_all_at(&mut data, index * SPARSE_CHUNK, chunk, &shown)?;
                    }
                }
            } else {
                let old_len = usize::try_from(data.data_size()).unwrap_or(usize::MAX);
                truncate(&mut data, contents.len())?;
                self.write_changed(&mut data, contents, old_len.min(contents.len()), &shown)?;
            }
        }
        self.stamp_times(&mut inode, sys::UPDATE_MTIME | sys::UPDATE_CTIME);
        inode
            .close()
            .map_err(|failure| ntfs_error(&self.image, "write back", &shown, failure))
    }

    /// Sets the `mask` times (`UPDATE_*`) of `inode` to now: the fixed time when there is one,
    /// else the clock.
    fn stamp_times(&self, inode: &mut Inode<'_>, mask: u32) {
        match self.fixed_time {
            Some(time) => inode.set_times(mask, time.0),
            None => inode.update_times(mask),
        }
    }

    /// With a fixed time, gives the directory `parent_mft_no` that time as its last write and
    /// change time, which libntfs-3g set from the clock when it deleted one of its entries.
    fn restamp_after_delete(&self, parent_mft_no: u64, shown: &str) -> Result<()> {
        if self.fixed_time.is_none() {
            return Ok(());
        }
        let mut parent = self.open(parent_mft_no, shown)?;
        self.stamp_times(&mut parent, sys::UPDATE_MTIME | sys::UPDATE_CTIME);
        parent
            .close()
            .map_err(|failure| ntfs_error(&self.image, "write back", shown, failure))
    }

    /// With a fixed time, gives a file that keeps another name after one was deleted (a hard
    /// link) that time as its change time, which libntfs-3g set from the clock. A file whose
    /// last name went is gone: its MFT record is no longer in use, which opening it reports.
    fn restamp_other_links(&self, mft_no: u64, shown: &str) -> Result<()> {
        if self.fixed_time.is_none() {
            return Ok(());
        }
        match self.mount.open_inode(mft_no) {
            Ok(mut inode) => {
                self.stamp_times(&mut inode, sys::UPDATE_CTIME);
                inode
                    .close()
                    .map_err(|failure| ntfs_error(&self.image, "write back", shown, failure))
            }
            Err(failure) if failure.errno == libc::ENOENT => Ok(()),
            Err(failure) => Err(ntfs_error(&self.image, "open", shown, failure)),
        }
    }

    fn write_all(&self, data: &mut sys::Attr<'_>, contents: &[u8], shown: &str) -> Result<()> {
        self.write_all_at(data, 0, contents, shown)
    }

    /// Writes `contents` over a data stream whose first `kept` bytes hold old data: of those,
    /// only the [`COMPARE_CHUNK`]s that differ; the rest whole. A hive edited in a few cells is
    /// so written in a few clusters instead of whole, which the disk target would otherwise
    /// stage in memory and compare with the disk (docs/PERFORMANCE.md).
    fn write_changed(
        &self,
        data: &mut sys::Attr<'_>,
        contents: &[u8],
        kept: usize,
        shown: &str,
    ) -> Result<()> {
        let mut old = vec![0u8; COMPARE_CHUNK];
        let mut offset = 0;
        while offset < kept {
            let end = (offset + COMPARE_CHUNK).min(kept);
            let old = &mut old[..end - offset];
            self.read_all_at(data, offset, old, shown)?;
            if old[..] != contents[offset..end] {
                self.write_all_at(data, offset, &contents[offset..end], shown)?;
            }
            offset = end;
        }
        self.write_all_at(data, kept, &contents[kept..], shown)
    }

    fn write_all_at(
        &self,
        data: &mut sys::Attr<'_>,
        offset: usize,
        contents: &[u8],
        shown: &str,
    ) -> Result<()> {
        let mut done = 0;
        while done < contents.len() {
            let written = data
                .pwrite((offset + done) as u64, &contents[done..])
                .map_err(|failure| ntfs_error(&self.image, "write", shown, failure))?;
            if written == 0 {
                return Err(Error::Ntfs {
                    image: self.image.clone(),
                    path: shown.to_string(),
                    action: "write",
                    errno: libc::ENOSPC,
                    reason: format!("stopped at {done} of {} bytes", contents.len()),
                    device: None,
                });
            }
            done += written;
        }
        Ok(())
    }

    /// Creates a file that must not exist yet, with the security descriptor Windows would give
    /// it in its directory ([`security_descriptor::inherit`], the same for every reseal target).
    ///
    /// The name is stored as libntfs-3g creates names: in the POSIX namespace, without an 8.3
    /// alias. Windows opens such names like any other.
    pub fn create_file(&mut self, path: &str, contents: &[u8]) -> Result<()> {
        self.create(path, Some(contents))
    }

    /// Creates a directory (its parent must exist), inheriting like Windows
    /// ([`security_descriptor::inherit`]).
    pub fn create_dir(&mut self, path: &str) -> Result<()> {
        self.create(path, None)
    }

    fn create(&mut self, path: &str, contents: Option<&[u8]>) -> Result<()> {
        self.require_writable()?;
        let parts = self.parts(path)?;
        let shown = path::display(&parts);
        let Some(name) = parts.last() else {
            return Err(Error::AlreadyExists {
                image: self.image.clone(),
                path: shown,
            });
        };
        let parent_shown = path::display(&parts[..parts.len() - 1]);
        let mut parent = self.parent_dir(&parts)?;
        if self.find_in(&mut parent, name, &parent_shown)?.is_some() {
            return Err(Error::AlreadyExists {
                image: self.image.clone(),
                path: shown,
            });
        }
        let parent_descriptor = parent.security_descriptor().map_err(|failure| {
            ntfs_error(&self.image, "read security of", &parent_shown, failure)
        })?;
        let kind = match contents {
            Some(_) => ObjectKind::File,
            None => ObjectKind::Directory,
        };
        let descriptor =
            security_descriptor::inherit(&parent_descriptor, kind).map_err(|error| {
                Error::InvalidSecurityDescriptor {
                    image: self.image.clone(),
                    path: parent_shown.clone(),
                    reason: error.to_string(),
                }
            })?;
        let name16 = utf16(name);
        let mut inode = self
            .mount
            .create(&parent, &name16, contents.is_none())
            .map_err(|failure| ntfs_error(&self.image, "create", &shown, failure))?;
        // libntfs-3g gave the inode an Everyone-full-access descriptor: replace it before
        // any data goes in, and take the file away again if that fails.
        let filled = inode
            .set_security_descriptor(&descriptor)
            .map_err(|failure| ntfs_error(&self.image, "set security of", &shown, failure))
            .and_then(|()| match contents {
                Some(contents) => {
                    let mut data = inode
                        .open_attr(sys::AT_DATA, &[])
                        .map_err(|failure| {
                            ntfs_error(&self.image, "open data of", &shown, failure)
                        })?
                        .ok_or_else(|| Error::Ntfs {
                            image: self.image.clone(),
                            path: shown.clone(),
                            action: "open data of",
                            errno: libc::ENOENT,
                            reason: "the new file has no data stream".into(),
                            device: None,
                        })?;
                    self.write_all(&mut data, contents, &shown)
                }
                None => Ok(()),
            });
        if let Err(error) = filled {
            let _ = self.mount.delete(inode, parent, &name16, &shown);
            return Err(error);
        }
        // libntfs-3g stamped the new file and its directory with the clock.
        if let Some(time) = self.fixed_time {
            inode
                .set_creation_times(time.0)
                .map_err(|failure| ntfs_error(&self.image, "set times of", &shown, failure))?;
            self.stamp_times(&mut parent, sys::UPDATE_MTIME | sys::UPDATE_CTIME);
        }
        inode
            .close_in_dir(&parent)
            .map_err(|failure| ntfs_error(&self.image, "write back", &shown, failure))?;
        parent
            .close()
            .map_err(|failure| ntfs_error(&self.image, "write back", &parent_shown, failure))
    }

    /// Deletes a file (one link of it, as Windows does for hard links).
    pub fn delete_file(&mut self, path: &str) -> Result<()> {
        self.require_writable()?;
        let parts = self.parts(path)?;
        let shown = path::display(&parts);
        let Some(name) = parts.last() else {
            return Err(Error::IsADirectory {
                image: self.image.clone(),
                path: shown,
            });
        };
        let mut parent = self.parent_dir(&parts)?;
        let found = self
            .find_in(&mut parent, name, &path::display(&parts[..parts.len() - 1]))?
            .ok_or_else(|| Error::NotFound {
                image: self.image.clone(),
                path: shown.clone(),
            })?;
        if found.is_dir {
            return Err(Error::IsADirectory {
                image: self.image.clone(),
                path: shown,
            });
        }
        let parent_mft_no = parent.mft_no();
        drop(parent);
        self.delete_link(parent_mft_no, found.mft_no, &found.name, &shown)
    }

    /// Deletes a directory and everything below it. The root cannot be deleted.
    pub fn delete_dir_all(&mut self, path: &str) -> Result<()> {
        self.require_writable()?;
        let parts = self.parts(path)?;
        let shown = path::display(&parts);
        if parts.is_empty() {
            return Err(Error::InvalidPath {
                image: self.image.clone(),
                path: path.to_string(),
                reason: "the root directory cannot be deleted".into(),
            });
        }
        let mut parent = self.parent_dir(&parts)?;
        let parent_shown = path::display(&parts[..parts.len() - 1]);
        let found = self
            .find_in(&mut parent, parts[parts.len() - 1], &parent_shown)?
            .ok_or_else(|| Error::NotFound {
                image: self.image.clone(),
                path: shown.clone(),
            })?;
        if !found.is_dir {
            return Err(Error::NotADirectory {
                image: self.image.clone(),
                path: shown,
            });
        }
        struct Pending {
            mft_no: u64,
            parent: u64,
            name: Vec<u16>,
            path: String,
        }
        let mut stack = vec![Pending {
            mft_no: found.mft_no,
            parent: parent.mft_no(),
            name: found.name,
            path: shown,
        }];
        drop(parent);
        // Depth-first without recursion: a directory is deleted once it has been emptied.
        while let Some(top) = stack.last() {
            let mut dir = self.open(top.mft_no, &top.path)?;
            let children = self.children(&mut dir, &top.path)?;
            drop(dir);
            let (top_mft, top_path) = (top.mft_no, top.path.clone());
            let mut subdirs = Vec::new();
            for child in children {
                let child_path = format!("{top_path}\\{}", String::from_utf16_lossy(&child.name));
                if child.is_dir {
                    if stack.iter().any(|pending| pending.mft_no == child.mft_no) {
                        return Err(Error::Ntfs {
                            image: self.image.clone(),
                            path: child_path,
                            action: "delete",
                            errno: libc::ELOOP,
                            reason: "the directory contains itself (corrupt index)".into(),
                            device: None,
                        });
                    }
                    subdirs.push(Pending {
                        mft_no: child.mft_no,
                        parent: top_mft,
                        name: child.name,
                        path: child_path,
                    });
                } else {
                    self.delete_link(top_mft, child.mft_no, &child.name, &child_path)?;
                }
            }
            if subdirs.is_empty() {
                if let Some(done) = stack.pop() {
                    self.delete_link(done.parent, done.mft_no, &done.name, &done.path)?;
                }
            } else {
                stack.extend(subdirs);
            }
        }
        Ok(())
    }

    fn delete_link(&self, parent: u64, mft_no: u64, name: &[u16], shown: &str) -> Result<()> {
        let inode = self.open(mft_no, shown)?;
        let dir = self.open(parent, shown)?;
        self.mount
            .delete(inode, dir, name, shown)
            .map_err(|failure| ntfs_error(&self.image, "delete", shown, failure))?;
        self.restamp_after_delete(parent, shown)?;
        self.restamp_other_links(mft_no, shown)
    }

    /// The self-relative security descriptor of the file or directory at `path`.
    pub fn security_descriptor(&self, path: &str) -> Result<Vec<u8>> {
        let parts = self.parts(path)?;
        let shown = path::display(&parts);
        self.existing(&parts)?
            .security_descriptor()
            .map_err(|failure| ntfs_error(&self.image, "read security of", &shown, failure))
    }

    /// Replaces the security descriptor of the file or directory at `path` (self-relative;
    /// libntfs-3g checks it and answers EINVAL for a malformed one).
    pub fn set_security_descriptor(&mut self, path: &str, descriptor: &[u8]) -> Result<()> {
        self.require_writable()?;
        let parts = self.parts(path)?;
        let shown = path::display(&parts);
        let mut inode = self.existing(&parts)?;
        inode
            .set_security_descriptor(descriptor)
            .map_err(|failure| ntfs_error(&self.image, "set security of", &shown, failure))?;
        inode
            .close()
            .map_err(|failure| ntfs_error(&self.image, "write back", &shown, failure))
    }

    /// The Windows attributes (`FILE_ATTRIBUTE_*`) of the file or directory at `path`.
    pub fn file_attributes(&self, path: &str) -> Result<u32> {
        let parts = self.parts(path)?;
        let inode = self.existing(&parts)?;
        self.attributes(&inode, &path::display(&parts))
    }

    /// The timestamps of the file or directory at `path`.
    pub fn file_times(&self, path: &str) -> Result<FileTimes> {
        let parts = self.parts(path)?;
        let shown = path::display(&parts);
        let [creation, last_write, last_access, change] = self
            .existing(&parts)?
            .times()
            .map_err(|failure| ntfs_error(&self.image, "read times of", &shown, failure))?;
        Ok(FileTimes {
            creation,
            last_write,
            last_access,
            change,
        })
    }
}

fn is_dot_entry(name: &[u16]) -> bool {
    name == [u16::from(b'.')] || name == [u16::from(b'.'), u16::from(b'.')]
}
