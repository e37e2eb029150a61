//! Disk containers and partition tables, read and written without mounting anything.
#![forbid(unsafe_code)]

mod block_device;
mod bytes;
mod crc32c;
mod error;
mod guid;
mod image_file;
mod parent;
pub mod partition;
pub mod raw;
mod sector_bitmap;
pub mod vhd;
pub mod vhdx;

use std::path::Path;

pub use block_device::{BlockDevice, PartitionWindow};
pub use error::{Error, Result};
pub use guid::Guid;
pub use image_file::{ImageFile, LocalFile};
pub use partition::{
    read_partition_table, Partition, PartitionScheme, PartitionTable, PartitionType,
};

/// The container formats [`open`] recognizes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Raw,
    Vhd,
    Vhdx,
}

/// Recognizes the format from the content: the VHDX file identifier at offset 0, or a VHD
/// footer at the end (or its copy at offset 0). A `.vhd`/`.vhdx` extension on a file that has
/// neither is an error rather than a raw disk, so a damaged image is never used as raw data.
pub fn detect_format(file: &mut dyn ImageFile) -> Result<Format> {
    let mut start = [0u8; 8];
    let mut end = [0u8; 8];
    let len = file.len();
    if len >= 8 {
        file.read_at(0, &mut start)?;
    }
    if len >= 512 {
        file.read_at(len - 512, &mut end)?;
    }
    if &start == b"vhdxfile" {
        return Ok(Format::Vhdx);
    }
    if vhd::footer::Footer::has_cookie(&end) || vhd::footer::Footer::has_cookie(&start) {
        return Ok(Format::Vhd);
    }
    let extension = file
        .path()
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    match extension.as_deref() {
        Some("vhd") | Some("avhd") => Err(Error::corrupt(
            file.path(),
            "VHD footer",
            "the file is named .vhd but has no \"conectix\" footer",
        )),
        Some("vhdx") | Some("avhdx") => Err(Error::corrupt(
            file.path(),
            "VHDX file identifier",
            "the file is named .vhdx but does not start with \"vhdxfile\"",
        )),
        _ => Ok(Format::Raw),
    }
}

/// Opens a disk image read-only, recognizing its format (see [`detect_format`]).
pub fn open(path: &Path) -> Result<Box<dyn BlockDevice>> {
    open_file(Box::new(LocalFile::open(path, false)?))
}

/// Opens a disk image for reading and writing.
pub fn open_writable(path: &Path) -> Result<Box<dyn BlockDevice>> {
    open_file(Box::new(LocalFile::open(path, true)?))
}

/// Opens a disk image held by any [`ImageFile`]; writable when the file is.
pub fn open_file(mut file: Box<dyn ImageFile>) -> Result<Box<dyn BlockDevice>> {
    Ok(match detect_format(&mut *file)? {
        Format::Raw => Box::new(raw::RawDisk::new(file)),
        Format::Vhd => Box::new(vhd::Vhd::open_file(file)?),
        Format::Vhdx => Box::new(vhdx::Vhdx::open_file(file)?),
    })
}
