//! New differencing children of a disk image that is already open.
//!
//! [`crate::vhd::create_differencing`] and [`crate::vhdx::create_differencing`] open the parent
//! (and so its whole chain) to learn what the child records about it. A caller that has the
//! parent open already keeps the [`ParentRecord`] [`crate::open_image`] gave, and
//! [`create_child`] makes the child and opens it for writing over the parent device it has:
//! neither the parent file nor its own parents are opened again, so they may even have been
//! moved since.

use std::path::Path;

use crate::block_device::BlockDevice;
use crate::error::Result;
use crate::image_file::LocalFile;
use crate::{qcow2, vhd, vhdx, vmdk, Entropy, Format};

/// The suffix of the temporary name a child is made under (`CHILD.reseal-partial`) before it
/// is linked to its own name; a VMDK child's descriptor names its extent without it.
pub const PARTIAL_SUFFIX: &str = ".reseal-partial";

/// What a new differencing child records about its parent: the VHD's unique id, timestamp,
/// geometry and block size, the VHDX's DataWriteGuid and metadata, or the VMDK's CID, size
/// and hardware lines (a VMDK child is a monolithicSparse disk, whatever the parent's kind).
#[derive(Clone, Debug)]
pub struct ParentRecord(Kind);

#[derive(Clone, Debug)]
enum Kind {
    Vhd(vhd::ParentRecord),
    Vhdx(vhdx::ParentRecord),
    Vmdk(vmdk::ParentRecord),
}

impl ParentRecord {
    pub(crate) fn vhd(record: vhd::ParentRecord) -> ParentRecord {
        ParentRecord(Kind::Vhd(record))
    }

    pub(crate) fn vhdx(record: vhdx::ParentRecord) -> ParentRecord {
        ParentRecord(Kind::Vhdx(record))
    }

    pub(crate) fn vmdk(record: vmdk::ParentRecord) -> ParentRecord {
        ParentRecord(Kind::Vmdk(record))
    }

    /// The parent's format, which is the child's.
    pub fn format(&self) -> Format {
        match self.0 {
            Kind::Vhd(_) => Format::Vhd,
            Kind::Vhdx(_) => Format::Vhdx,
            Kind::Vmdk(_) => Format::Vmdk,
        }
    }
}

/// Creates an empty differencing disk at `child_path` (of `record`'s format) whose parent is
/// the image at `parent_path`, described by `record`, and opens it for writing with `parent`
/// (that image, already open) as its parent device. The child records `parent_path` as
/// [`crate::vhd::create_differencing`] and [`crate::vhdx::create_differencing`] do. The
/// child's identifiers and times (a VHD's unique id and timestamp; a VHDX's GUIDs, those of
/// its first write session too; a VMDK's CID) come from `entropy`.
///
/// The child is taken to be unused until it is complete (made under a temporary name and
/// linked to its own afterwards, as [`PARTIAL_SUFFIX`] says): its writes are not flushed one
/// by one in the order a crash-safe update needs, only all together by the device's `flush`.
pub fn create_child(
    record: &ParentRecord,
    parent_path: &Path,
    parent: Box<dyn BlockDevice>,
    child_path: &Path,
    entropy: Entropy,
) -> Result<Box<dyn BlockDevice>> {
    match &record.0 {
        Kind::Vhd(record) => {
            vhd::create_differencing_child(record, parent_path, child_path, &entropy)?;
            let file = Box::new(LocalFile::open_unpublished(child_path)?);
            Ok(Box::new(vhd::Vhd::open_with_parent(file, parent)?))
        }
        Kind::Vhdx(record) => {
            vhdx::create_differencing_child(record, parent_path, child_path, &entropy)?;
            let file = Box::new(LocalFile::open_unpublished(child_path)?);
            let mut child = vhdx::Vhdx::open_with_parent(file, parent)?;
            child.set_write_entropy(entropy);
            Ok(Box::new(child))
        }
        Kind::Vmdk(record) => {
            // The child may be made under a temporary name: its descriptor names the extent
            // as the file will finally be called, which a monolithic disk never follows.
            let name = child_path
                .file_name()
                .map(|name| name.to_string_lossy().into_owned())
                .unwrap_or_default();
            let extent_name = name.strip_suffix(PARTIAL_SUFFIX).unwrap_or(&name);
            vmdk::create_differencing_child(
                record,
                parent_path,
                child_path,
                extent_name,
                &entropy,
            )?;
            let file = Box::new(LocalFile::open_unpublished(child_path)?);
            let mut child = vmdk::Vmdk::open_with_parent(file, parent)?;
            child.set_write_entropy(entropy);
            Ok(Box::new(child))
        }
    }
}

/// Creates an empty qcow2 version 3 overlay at `child_path` whose backing file is the image at
/// `parent_path` (of `parent_format`: any format qcow2 can back onto), and opens it for writing
/// with `parent` (that image, already open) as its backing device. The overlay records the
/// backing file's format and its name: the bare file name when the overlay is in the same
/// directory, else its absolute path ([`qcow2::create::backing_name_for`]). Like
/// [`create_child`], the overlay is taken to be unused until it is complete.
pub fn create_qcow2_overlay(
    parent_format: Format,
    parent_path: &Path,
    parent: Box<dyn BlockDevice>,
    child_path: &Path,
) -> Result<Box<dyn BlockDevice>> {
    let name = qcow2::create::backing_name_for(parent_path, child_path)?;
    qcow2::create::create_overlay(child_path, parent.len(), &name, parent_format)?;
    let file = Box::new(LocalFile::open_unpublished(child_path)?);
    Ok(Box::new(qcow2::Qcow2::open_over_backing(
        file,
        parent,
        parent_path,
        parent_format,
    )?))
}
