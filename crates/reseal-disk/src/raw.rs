//! A raw disk image: the file is the disk, byte for byte.

use std::path::Path;

use crate::block_device::{check_range, BlockDevice};
use crate::error::Result;
use crate::image_file::ImageFile;

pub struct RawDisk {
    file: Box<dyn ImageFile>,
    /// Fixed at open: a raw disk never grows through writes.
    len: u64,
}

impl RawDisk {
    pub fn new(file: Box<dyn ImageFile>) -> Self {
        let len = file.len();
        RawDisk { file, len }
    }
}

impl BlockDevice for RawDisk {
    fn path(&self) -> &Path {
        self.file.path()
    }
    fn len(&self) -> u64 {
        self.len
    }
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<()> {
        check_range(self.file.path(), offset, buf.len(), self.len)?;
        self.file.read_at(offset, buf)
    }
    fn write_at(&mut self, offset: u64, buf: &[u8]) -> Result<()> {
        check_range(self.file.path(), offset, buf.len(), self.len)?;
        self.file.write_at(offset, buf)
    }
    fn container_format(&self) -> Option<crate::Format> {
        Some(crate::Format::Raw)
    }

    fn flush(&mut self) -> Result<()> {
        self.file.sync()
    }
}
