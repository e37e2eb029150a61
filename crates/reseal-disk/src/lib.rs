//! Disk containers and partition tables, read and written without mounting anything.
//!
//! # Layers
//!
//! * [`ImageFile`]: the file holding a container ([`LocalFile`] on the local file system).
//!   Containers do all their I/O through it, so it can be wrapped (tests inject write failures
//!   this way, and a read-only VHDX open lays its pending log over the file in memory).
//! * [`BlockDevice`]: the virtual disk, addressed by byte: [`raw::RawDisk`] (the file is the
//!   disk), [`vhd::Vhd`] (fixed, dynamic, differencing), [`vhdx::Vhdx`] (fixed, dynamic,
//!   differencing, with log replay), [`qcow2::Qcow2`] (versions 2 and 3, backing chains) and
//!   [`vmdk::Vmdk`] (hosted sparse, flat and streamOptimized extents, parent chains).
//!   A differencing disk holds its parent as a read-only
//!   `BlockDevice`; writes only ever go to the child. [`open`] and [`open_writable`] recognize
//!   the format from the content.
//! * [`open_image`] opens a container once and says what it is ([`OpenedImage`]); a
//!   [`SharedDevice`] lets that one open serve every later use, and [`differencing`] makes a new
//!   child of it without reading the parent chain again.
//! * [`partition`]: MBR and GPT tables read from a `BlockDevice`; a [`PartitionWindow`] is one
//!   partition as a `BlockDevice` of its own, which is what a file system layer mounts.
//! * [`staged`]: a [`StagedDevice`] holds writes in memory over a read-only device, so a file
//!   system can be edited without touching the image; [`redo_log`] then writes the changes
//!   into the image all-or-nothing.
//!
//! Every structure is checked when it is read (signatures, checksums, sizes and offsets against
//! the file size), and damage is reported as an [`Error`] naming the file, the structure and
//! the reason; no input makes this crate panic or allocate more than the file could hold.
//!
//! # What is crash-safe
//!
//! An interrupted write leaves an image that still opens, where each sector holds its old or
//! its new content:
//!
//! * Raw disks and fixed VHD/VHDX blocks are written in place: a sector is as atomic as the
//!   storage makes it.
//! * VHD: a new block is appended as footer at the new end, bitmap over the old footer, flush,
//!   then the 4-byte BAT entry; sector bitmap bits are set only after the data is written.
//! * VHDX: the first write of a session updates the non-current header (sequence number + 1,
//!   new FileWriteGuid and DataWriteGuid) and flushes it; a torn header fails its CRC and the
//!   other copy stays current. New blocks are appended 1 MiB aligned, filled and flushed
//!   before their 8-byte BAT entry is written; sector bitmap bits follow the data.
//! * BAT entries are written in place without the VHDX log, relying on aligned small writes
//!   within a sector being atomic. An interrupted allocation can leak unreferenced space at the
//!   end of the file, never expose stale data.
//! * qcow2: a write into a cluster the image does not own alone is copied into a new cluster
//!   at the end: data, flush, refcount, flush, L2 entry, flush, then the old refcount dropped
//!   (see [`qcow2`]). A crash leaks clusters at worst, as qemu allows.
//! * VMDK: a write into a grain the extent does not hold appends the grain, then writes its
//!   grain table entry and the redundant one, each flushed (see [`vmdk`]): a crash leaks a
//!   grain at worst.
//! * Log replay on a writable open writes the logged sectors, flushes, then writes both
//!   headers with a zero LogGuid; interrupted, the log is simply replayed again.
//!
//! Not crash-safe: a single write spanning several sectors can be torn between them (as on a
//! real disk), and nothing orders writes across separate [`BlockDevice::write_at`] calls unless
//! the caller uses [`BlockDevice::flush`].
#![forbid(unsafe_code)]

mod block_device;
mod bytes;
mod crc32c;
pub mod differencing;
mod error;
mod extent;
mod image_file;
mod io_adapter;
mod parent;
pub mod partition;
pub mod qcow2;
pub mod raw;
pub mod redo_log;
mod sector_bitmap;
pub mod staged;
pub mod vhd;
pub mod vhdx;
pub mod vmdk;

use std::path::Path;

pub use block_device::{chain, BlockDevice, Layer, PartitionWindow, SharedDevice};
pub use differencing::ParentRecord;
pub use error::{Error, Result};
pub use image_file::{sync_directory_of, ImageFile, LocalFile};
pub use io_adapter::BlockDeviceIo;
pub use partition::{
    read_partition_table, Partition, PartitionScheme, PartitionTable, PartitionType,
};
pub use reseal_nt::{Entropy, Guid};
pub use staged::{Staged, StagedDevice};

/// The container formats [`open`] recognizes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Raw,
    Vhd,
    Vhdx,
    Qcow2,
    Vmdk,
}

impl Format {
    /// Every format, in the order help texts list them.
    pub const ALL: [Format; 5] = [
        Format::Raw,
        Format::Vhd,
        Format::Vhdx,
        Format::Vmdk,
        Format::Qcow2,
    ];

    /// The name qemu gives the format (`-f`, and a qcow2 overlay's backing-format extension).
    pub fn qemu_name(self) -> &'static str {
        match self {
            Format::Raw => "raw",
            Format::Vhd => "vpc",
            Format::Vhdx => "vhdx",
            Format::Qcow2 => "qcow2",
            Format::Vmdk => "vmdk",
        }
    }

    /// The name people use for the format.
    pub fn name(self) -> &'static str {
        match self {
            Format::Raw => "raw",
            Format::Vhd => "VHD",
            Format::Vhdx => "VHDX",
            Format::Qcow2 => "qcow2",
            Format::Vmdk => "VMDK",
        }
    }
}

/// Recognizes the format from the content: the VHDX file identifier at offset 0, or a VHD
/// footer at the end (or its copy at offset 0). A `.vhd`/`.vhdx` extension on a file that has
/// neither is an error rather than a raw disk, so a damaged image is never used as raw data.
pub fn detect_format(file: &mut dyn ImageFile) -> Result<Format> {
    let mut start = [0u8; 32];
    let mut end = [0u8; 8];
    let len = file.len();
    let start_len = start.len().min(len as usize);
    file.read_at(0, &mut start[..start_len])?;
    if len >= 512 {
        file.read_at(len - 512, &mut end)?;
    }
    if start.starts_with(b"vhdxfile") {
        return Ok(Format::Vhdx);
    }
    if start[..4] == *qcow2::header::MAGIC {
        return Ok(Format::Qcow2);
    }
    if vmdk::is_vmdk(&start[..start_len]) {
        return Ok(Format::Vmdk);
    }
    if vhd::footer::Footer::has_cookie(&end) || vhd::footer::Footer::has_cookie(&start[..8]) {
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
        Some("vmdk") => Err(Error::corrupt(
            file.path(),
            "VMDK sparse extent header",
            "the file is named .vmdk but is neither a sparse extent (\"KDMV\") nor a descriptor (\"# Disk DescriptorFile\")",
        )),
        Some("qcow2") => Err(Error::corrupt(
            file.path(),
            "qcow2 header",
            "the file is named .qcow2 but does not start with \"QFI\\xfb\"",
        )),
        _ => Ok(Format::Raw),
    }
}

/// Opens a disk image read-only, recognizing its format (see [`detect_format`]).
pub fn open(path: &Path) -> Result<Box<dyn BlockDevice>> {
    open_image(path).map(|image| image.device)
}

/// A disk image opened read-only (with its parent chain), and what opening it learned.
pub struct OpenedImage {
    /// The virtual disk.
    pub device: Box<dyn BlockDevice>,
    /// The container format, recognized from the content.
    pub format: Format,
    /// What a new differencing child of this image records about it
    /// ([`differencing::create_child`]); `None` for raw and qcow2 images and a bare VMDK extent
    /// without a descriptor, which can only be the backing file of a qcow2 overlay
    /// ([`differencing::create_qcow2_overlay`]).
    pub parent_record: Option<ParentRecord>,
    /// The image file and each parent or backing file under it, top first ([`chain`]).
    pub chain: Vec<Layer>,
}

/// Opens a disk image read-only, as [`open`] does, keeping its format and what a differencing
/// child needs to know of it, so the caller never has to open the file again for those.
pub fn open_image(path: &Path) -> Result<OpenedImage> {
    let mut file: Box<dyn ImageFile> = Box::new(LocalFile::open(path, false)?);
    let format = detect_format(&mut *file)?;
    let mut image = match format {
        Format::Raw => OpenedImage {
            device: Box::new(raw::RawDisk::new(file)),
            format,
            parent_record: None,
            chain: Vec::new(),
        },
        Format::Vhd => {
            let vhd = vhd::Vhd::open_file(file)?;
            OpenedImage {
                parent_record: Some(ParentRecord::vhd(vhd.parent_record())),
                device: Box::new(vhd),
                format,
                chain: Vec::new(),
            }
        }
        Format::Vhdx => {
            let vhdx = vhdx::Vhdx::open_file(file)?;
            OpenedImage {
                parent_record: Some(ParentRecord::vhdx(vhdx.parent_record())),
                device: Box::new(vhdx),
                format,
                chain: Vec::new(),
            }
        }
        Format::Qcow2 => OpenedImage {
            device: Box::new(qcow2::Qcow2::open_file(file)?),
            format,
            parent_record: None,
            chain: Vec::new(),
        },
        Format::Vmdk => {
            let vmdk = vmdk::Vmdk::open_file(file)?;
            OpenedImage {
                parent_record: vmdk.parent_record().map(ParentRecord::vmdk),
                device: Box::new(vmdk),
                format,
                chain: Vec::new(),
            }
        }
    };
    image.chain = chain(&*image.device);
    Ok(image)
}

/// Opens a disk image for reading and writing.
pub fn open_writable(path: &Path) -> Result<Box<dyn BlockDevice>> {
    open_writable_with(path, Entropy::default())
}

/// [`open_writable`], drawing what the container changes on a write from `entropy` (a VHDX's
/// new FileWriteGuid and DataWriteGuid, a VMDK's new CID; the other formats draw nothing), so
/// a seeded run writes the same bytes again.
pub fn open_writable_with(path: &Path, entropy: Entropy) -> Result<Box<dyn BlockDevice>> {
    let mut file: Box<dyn ImageFile> = Box::new(LocalFile::open(path, true)?);
    match detect_format(&mut *file)? {
        Format::Vhdx => {
            let mut vhdx = vhdx::Vhdx::open_file(file)?;
            vhdx.set_write_entropy(entropy);
            Ok(Box::new(vhdx))
        }
        Format::Vmdk => {
            let mut vmdk = vmdk::Vmdk::open_file(file)?;
            vmdk.set_write_entropy(entropy);
            Ok(Box::new(vmdk))
        }
        _ => open_file(file),
    }
}

/// Opens a disk image held by any [`ImageFile`]; writable when the file is.
pub fn open_file(mut file: Box<dyn ImageFile>) -> Result<Box<dyn BlockDevice>> {
    Ok(match detect_format(&mut *file)? {
        Format::Raw => Box::new(raw::RawDisk::new(file)),
        Format::Vhd => Box::new(vhd::Vhd::open_file(file)?),
        Format::Vhdx => Box::new(vhdx::Vhdx::open_file(file)?),
        Format::Qcow2 => Box::new(qcow2::Qcow2::open_file(file)?),
        Format::Vmdk => Box::new(vmdk::Vmdk::open_file(file)?),
    })
}

#[cfg(test)]
mod tests {
    use super::Format;

    #[test]
    fn format_all_lists_every_format_once() {
        // `ALL` holds each format once, in this order. No wildcard arm: a new format does not
        // compile here until it is given a place, a reminder to add it to `ALL` too (which
        // this test cannot see missing).
        let place = |format: Format| match format {
            Format::Raw => 0,
            Format::Vhd => 1,
            Format::Vhdx => 2,
            Format::Vmdk => 3,
            Format::Qcow2 => 4,
        };
        for (at, format) in Format::ALL.into_iter().enumerate() {
            assert_eq!(place(format), at, "{format:?}");
        }
    }
}
