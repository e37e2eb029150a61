//! [`BlockDeviceIo`]: a [`BlockDevice`] as `std::io::{Read, Write, Seek}`, for readers that
//! expect a stream (such as the `ntfs` crate).

use std::io::{self, Read, Seek, SeekFrom, Write};

use crate::block_device::BlockDevice;

pub struct BlockDeviceIo<D: BlockDevice> {
    device: D,
    position: u64,
}

impl<D: BlockDevice> BlockDeviceIo<D> {
    pub fn new(device: D) -> Self {
        BlockDeviceIo {
            device,
            position: 0,
        }
    }

    pub fn into_inner(self) -> D {
        self.device
    }

    /// The bytes between the position and the end of the device, at most `wanted`.
    fn available(&self, wanted: usize) -> usize {
        self.device
            .len()
            .saturating_sub(self.position)
            .min(wanted as u64) as usize
    }
}

fn to_io(error: crate::Error) -> io::Error {
    io::Error::other(error)
}

impl<D: BlockDevice> Read for BlockDeviceIo<D> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let count = self.available(buf.len());
        self.device
            .read_at(self.position, &mut buf[..count])
            .map_err(to_io)?;
        self.position += count as u64;
        Ok(count)
    }
}

impl<D: BlockDevice> Write for BlockDeviceIo<D> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let count = self.available(buf.len());
        if count == 0 && !buf.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "write past the end of the device",
            ));
        }
        self.device
            .write_at(self.position, &buf[..count])
            .map_err(to_io)?;
        self.position += count as u64;
        Ok(count)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.device.flush().map_err(to_io)
    }
}

impl<D: BlockDevice> Seek for BlockDeviceIo<D> {
    fn seek(&mut self, target: SeekFrom) -> io::Result<u64> {
        let position = match target {
            SeekFrom::Start(offset) => Some(offset),
            SeekFrom::End(delta) => self.device.len().checked_add_signed(delta),
            SeekFrom::Current(delta) => self.position.checked_add_signed(delta),
        };
        self.position = position.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek before the start of the device",
            )
        })?;
        Ok(self.position)
    }
}
