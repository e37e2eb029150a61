//! Where an update's writes go: the WIM file itself. The trait exists so that tests can wrap
//! the file in a writer that fails part way (after some bytes or some calls) and check what a
//! failure or a crash at each step of an update leaves behind.

use std::fs::File;
use std::io::{self, Seek, SeekFrom, Write};

/// The operations an update performs on the WIM file, in the order it performs them: appended
/// resources, syncs, the header at offset 0, and cutting off what a failed update appended.
pub trait WimWriter: Send {
    /// Writes all of `bytes` at `offset`.
    fn write_all_at(&mut self, offset: u64, bytes: &[u8]) -> io::Result<()>;
    /// Makes everything written so far durable.
    fn sync_all(&mut self) -> io::Result<()>;
    /// Cuts the file to `len` bytes.
    fn set_len(&mut self, len: u64) -> io::Result<()>;
}

impl WimWriter for File {
    fn write_all_at(&mut self, offset: u64, bytes: &[u8]) -> io::Result<()> {
        self.seek(SeekFrom::Start(offset))?;
        self.write_all(bytes)
    }

    fn sync_all(&mut self) -> io::Result<()> {
        File::sync_all(self)
    }

    fn set_len(&mut self, len: u64) -> io::Result<()> {
        File::set_len(self, len)
    }
}
