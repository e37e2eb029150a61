//! [`BlockDevice`]: a virtual disk addressed by byte, and [`PartitionWindow`], a byte range of a
//! device seen as a device of its own.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::error::{Error, Result};
use crate::image_file::ImageFile;
use crate::Format;

/// A virtual disk: a fixed number of bytes that can be read and written at any offset.
///
/// Reads and writes are exact: a range reaching past [`len`](BlockDevice::len) is an
/// [`Error::OutOfRange`] and nothing is transferred.
pub trait BlockDevice: Send {
    /// The file (or the top file of a differencing chain) named in errors.
    fn path(&self) -> &Path;
    /// The size of the virtual disk in bytes.
    fn len(&self) -> u64;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The logical sector size: the unit partition tables count in.
    fn logical_sector_size(&self) -> u32 {
        512
    }
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<()>;
    fn write_at(&mut self, offset: u64, buf: &[u8]) -> Result<()>;
    /// Makes every completed write durable in the image file.
    fn flush(&mut self) -> Result<()>;
    /// The container format of the image file this device reads, when it is one (not a
    /// partition window or a staged overlay).
    fn container_format(&self) -> Option<Format> {
        None
    }
    /// The device this one reads what it does not hold from: a differencing disk's parent or a
    /// qcow2 image's backing file.
    fn backing_device(&self) -> Option<&dyn BlockDevice> {
        None
    }
}

/// One image file of a disk's chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layer {
    pub format: Format,
    pub path: PathBuf,
    /// The size of the virtual disk this file describes, in bytes.
    pub virtual_size: u64,
}

/// The image files `device` reads, itself first, then each parent or backing file.
pub fn chain(device: &dyn BlockDevice) -> Vec<Layer> {
    let mut layers = Vec::new();
    let mut next = Some(device);
    while let Some(device) = next {
        let Some(format) = device.container_format() else {
            break;
        };
        layers.push(Layer {
            format,
            path: device.path().to_path_buf(),
            virtual_size: device.len(),
        });
        next = device.backing_device();
    }
    layers
}

/// Forwards every method to the device behind a pointer, so `Box<dyn BlockDevice>` and
/// `&mut D` are devices too.
macro_rules! forward_block_device {
    ($($pointer:ty),*) => {$(
        impl<D: BlockDevice + ?Sized> BlockDevice for $pointer {
            fn path(&self) -> &Path {
                (**self).path()
            }
            fn len(&self) -> u64 {
                (**self).len()
            }
            fn logical_sector_size(&self) -> u32 {
                (**self).logical_sector_size()
            }
            fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<()> {
                (**self).read_at(offset, buf)
            }
            fn write_at(&mut self, offset: u64, buf: &[u8]) -> Result<()> {
                (**self).write_at(offset, buf)
            }
            fn flush(&mut self) -> Result<()> {
                (**self).flush()
            }
            fn container_format(&self) -> Option<Format> {
                (**self).container_format()
            }
            fn backing_device(&self) -> Option<&dyn BlockDevice> {
                (**self).backing_device()
            }
        }
    )*};
}

forward_block_device!(Box<D>, &mut D);

/// Fails with [`Error::OutOfRange`] unless `offset..offset+len` lies within `size`.
pub(crate) fn check_range(path: &Path, offset: u64, len: usize, size: u64) -> Result<()> {
    match offset.checked_add(len as u64) {
        Some(end) if end <= size => Ok(()),
        _ => Err(Error::OutOfRange {
            path: path.to_path_buf(),
            offset,
            len: len as u64,
            size,
        }),
    }
}

/// [`check_range`] for a write, which also needs `file` open for writing.
pub(crate) fn check_write(file: &dyn ImageFile, offset: u64, len: usize, size: u64) -> Result<()> {
    check_range(file.path(), offset, len, size)?;
    if file.is_writable() {
        Ok(())
    } else {
        Err(Error::ReadOnly {
            path: file.path().to_path_buf(),
        })
    }
}

/// The bytes `start..start+len` of a device (typically a partition), addressed from 0.
pub struct PartitionWindow<D: BlockDevice> {
    device: D,
    start: u64,
    len: u64,
}

impl<D: BlockDevice> PartitionWindow<D> {
    /// Fails when the window does not lie within the device.
    pub fn new(device: D, start: u64, len: u64) -> Result<Self> {
        let fits = start
            .checked_add(len)
            .is_some_and(|end| end <= device.len());
        if !fits {
            return Err(Error::OutOfRange {
                path: device.path().to_path_buf(),
                offset: start,
                len,
                size: device.len(),
            });
        }
        Ok(PartitionWindow { device, start, len })
    }

    pub fn start(&self) -> u64 {
        self.start
    }

    pub fn into_inner(self) -> D {
        self.device
    }
}

impl<D: BlockDevice> BlockDevice for PartitionWindow<D> {
    fn path(&self) -> &Path {
        self.device.path()
    }
    fn len(&self) -> u64 {
        self.len
    }
    fn logical_sector_size(&self) -> u32 {
        self.device.logical_sector_size()
    }
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<()> {
        check_range(self.device.path(), offset, buf.len(), self.len)?;
        self.device.read_at(self.start + offset, buf)
    }
    fn write_at(&mut self, offset: u64, buf: &[u8]) -> Result<()> {
        check_range(self.device.path(), offset, buf.len(), self.len)?;
        self.device.write_at(self.start + offset, buf)
    }
    fn flush(&mut self) -> Result<()> {
        self.device.flush()
    }
}

/// One device used through several handles: every clone reads and writes the same device, one
/// call at a time. This is how a container opened once serves a partition table, several
/// partition windows, a [`crate::StagedDevice`] and a differencing child's parent in turn.
#[derive(Clone)]
pub struct SharedDevice {
    device: Arc<Mutex<Box<dyn BlockDevice>>>,
    path: PathBuf,
    len: u64,
    sector_size: u32,
}

impl SharedDevice {
    pub fn new(device: Box<dyn BlockDevice>) -> SharedDevice {
        SharedDevice {
            path: device.path().to_path_buf(),
            len: device.len(),
            sector_size: device.logical_sector_size(),
            device: Arc::new(Mutex::new(device)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Box<dyn BlockDevice>> {
        // Each call is a single device operation: a panic inside one leaves nothing of this
        // handle half-updated, so a poisoned lock is still usable.
        self.device
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl BlockDevice for SharedDevice {
    fn path(&self) -> &Path {
        &self.path
    }
    fn len(&self) -> u64 {
        self.len
    }
    fn logical_sector_size(&self) -> u32 {
        self.sector_size
    }
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.lock().read_at(offset, buf)
    }
    fn write_at(&mut self, offset: u64, buf: &[u8]) -> Result<()> {
        self.lock().write_at(offset, buf)
    }
    fn flush(&mut self) -> Result<()> {
        self.lock().flush()
    }
}
