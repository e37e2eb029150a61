//! The file that holds a container: byte-addressed, growable, with the path used in errors.
//!
//! Containers read and write their file only through [`ImageFile`], so tests can put a
//! wrapper in between (to inject write failures) and read-only opens can layer a pending
//! VHDX log over the file in memory.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

pub trait ImageFile: Send {
    /// The path named in errors.
    fn path(&self) -> &Path;
    fn len(&self) -> u64;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Reads exactly `buf.len()` bytes; reading past the end is an error.
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<()>;
    /// Writes all of `buf`, growing the file when it reaches past the end.
    fn write_at(&mut self, offset: u64, buf: &[u8]) -> Result<()>;
    fn set_len(&mut self, len: u64) -> Result<()>;
    /// Writes `length` zero bytes, in pieces so a large range needs little memory.
    fn write_zeros(&mut self, offset: u64, length: u64) -> Result<()> {
        const PIECE: u64 = 1 << 20;
        let zeros = vec![0u8; PIECE.min(length) as usize];
        let mut done = 0;
        while done < length {
            let piece = PIECE.min(length - done);
            self.write_at(offset + done, &zeros[..piece as usize])?;
            done += piece;
        }
        Ok(())
    }
    /// Makes every completed write durable.
    fn sync(&mut self) -> Result<()>;
    /// Makes every completed write durable before any later one: the flush between two steps
    /// of a crash-safe update (data before the table entry that points to it). A file nobody
    /// uses yet ([`LocalFile::open_unpublished`]) skips it: a crash leaves it unused whatever
    /// order its writes reached the disk in, and its final [`ImageFile::sync`] flushes them all.
    fn order_writes(&mut self) -> Result<()> {
        self.sync()
    }
    fn is_writable(&self) -> bool;
}

impl<F: ImageFile + ?Sized> ImageFile for Box<F> {
    fn path(&self) -> &Path {
        (**self).path()
    }
    fn len(&self) -> u64 {
        (**self).len()
    }
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<()> {
        (**self).read_at(offset, buf)
    }
    fn write_at(&mut self, offset: u64, buf: &[u8]) -> Result<()> {
        (**self).write_at(offset, buf)
    }
    fn set_len(&mut self, len: u64) -> Result<()> {
        (**self).set_len(len)
    }
    fn write_zeros(&mut self, offset: u64, length: u64) -> Result<()> {
        (**self).write_zeros(offset, length)
    }
    fn sync(&mut self) -> Result<()> {
        (**self).sync()
    }
    fn order_writes(&mut self) -> Result<()> {
        (**self).order_writes()
    }
    fn is_writable(&self) -> bool {
        (**self).is_writable()
    }
}

/// A file on the local file system.
pub struct LocalFile {
    file: File,
    path: PathBuf,
    len: u64,
    writable: bool,
    /// Not yet linked under the name it is used by (a new child made under a temporary name).
    unpublished: bool,
}

impl LocalFile {
    /// Opens the regular file at `path` (through symbolic links). Anything else is refused
    /// before it is opened: opening a FIFO blocks until something writes to it, and a device
    /// or socket has no length to read an image from; a parent locator in a hostile image can
    /// name any of them.
    pub fn open(path: &Path, writable: bool) -> Result<Self> {
        let kind = std::fs::metadata(path)
            .map_err(|e| Error::io(path, "cannot open", e))?
            .file_type();
        if !kind.is_file() {
            let what = if kind.is_dir() {
                "a folder"
            } else {
                "a FIFO, socket or device"
            };
            return Err(Error::io(
                path,
                "cannot open",
                std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("is {what}, not an image file"),
                ),
            ));
        }
        let file = OpenOptions::new()
            .read(true)
            .write(writable)
            .open(path)
            .map_err(|e| Error::io(path, "cannot open", e))?;
        let len = file
            .metadata()
            .map_err(|e| Error::io(path, "cannot read the file size", e))?
            .len();
        Ok(LocalFile {
            file,
            path: path.to_path_buf(),
            len,
            writable,
            unpublished: false,
        })
    }

    /// Opens for writing a file that nothing uses until it is complete, such as a new
    /// differencing child made under a temporary name and linked to its own once written: its
    /// writes need no flush between them ([`ImageFile::order_writes`]), only the final one.
    pub fn open_unpublished(path: &Path) -> Result<Self> {
        Ok(LocalFile {
            unpublished: true,
            ..LocalFile::open(path, true)?
        })
    }

    /// Creates (or truncates) a file for writing.
    pub fn create(path: &Path) -> Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .map_err(|e| Error::io(path, "cannot create", e))?;
        Ok(LocalFile {
            file,
            path: path.to_path_buf(),
            len: 0,
            writable: true,
            unpublished: false,
        })
    }
}

impl ImageFile for LocalFile {
    fn path(&self) -> &Path {
        &self.path
    }

    fn len(&self) -> u64 {
        self.len
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<()> {
        let end = offset.checked_add(buf.len() as u64);
        if end.is_none_or(|end| end > self.len) {
            return Err(Error::OutOfRange {
                path: self.path.clone(),
                offset,
                len: buf.len() as u64,
                size: self.len,
            });
        }
        // pread: one system call, where a seek and a read take two.
        self.file
            .read_exact_at(buf, offset)
            .map_err(|e| Error::io(&self.path, format!("cannot read at offset {offset}"), e))
    }

    fn write_at(&mut self, offset: u64, buf: &[u8]) -> Result<()> {
        if !self.writable {
            return Err(Error::ReadOnly {
                path: self.path.clone(),
            });
        }
        self.file
            .write_all_at(buf, offset)
            .map_err(|e| Error::io(&self.path, format!("cannot write at offset {offset}"), e))?;
        self.len = self.len.max(offset + buf.len() as u64);
        Ok(())
    }

    fn set_len(&mut self, len: u64) -> Result<()> {
        if !self.writable {
            return Err(Error::ReadOnly {
                path: self.path.clone(),
            });
        }
        self.file
            .set_len(len)
            .map_err(|e| Error::io(&self.path, format!("cannot set the size to {len}"), e))?;
        self.len = len;
        Ok(())
    }

    fn sync(&mut self) -> Result<()> {
        if !self.writable {
            return Ok(());
        }
        self.file
            .sync_all()
            .map_err(|e| Error::io(&self.path, "cannot flush", e))
    }

    fn order_writes(&mut self) -> Result<()> {
        if self.unpublished {
            return Ok(());
        }
        self.sync()
    }

    fn is_writable(&self) -> bool {
        self.writable
    }
}

/// Flushes the directory that holds `path`, so that creating, renaming or removing `path` is
/// durable. Some file systems (FUSE ones among them) cannot flush a directory handle and answer
/// EINVAL or "unsupported"; their directory changes are durable once the call returns, so that
/// answer counts as done.
pub fn sync_directory_of(path: &Path) -> std::io::Result<()> {
    const EINVAL: i32 = 22;
    let directory = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    match File::open(directory).and_then(|d| d.sync_all()) {
        Err(e)
            if e.raw_os_error() == Some(EINVAL) || e.kind() == std::io::ErrorKind::Unsupported =>
        {
            Ok(())
        }
        result => result,
    }
}

/// Reads a structure of `len` bytes, reporting a file too short for it as corruption of that
/// structure. `len` must already be bounded by the caller (it is allocated).
pub(crate) fn read_structure(
    file: &mut dyn ImageFile,
    offset: u64,
    len: usize,
    structure: &'static str,
) -> Result<Vec<u8>> {
    let end = offset.checked_add(len as u64);
    if end.is_none_or(|end| end > file.len()) {
        return Err(Error::corrupt(
            file.path(),
            structure,
            format!(
                "{len} bytes at offset {offset} lie past the end of the file ({} bytes); the file is truncated or the offset is wrong",
                file.len()
            ),
        ));
    }
    let mut buf = vec![0u8; len];
    file.read_at(offset, &mut buf)?;
    Ok(buf)
}
