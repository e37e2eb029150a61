//! VMDK disks (hosted sparse, flat and streamOptimized), read and written in place without
//! VMware or qemu.
//!
//! One module per structure: [`descriptor`] (the text naming the kind, the extents, the CID
//! and the parent), [`sparse_header`] (the "KDMV" header of a sparse extent), `grain` (grain
//! directory and tables, and new grains) and `stream_optimized` (compressed grains, markers
//! and the footer).
//!
//! The disk is either one sparse file with its descriptor embedded (monolithicSparse,
//! streamOptimized) or a descriptor file naming extent files beside it (monolithicFlat,
//! twoGbMaxExtentFlat, twoGbMaxExtentSparse). A child names its parent with
//! `parentFileNameHint`, and records the parent's CID as its `parentCID`: a parent whose CID
//! differs was changed after the child was made, and is refused.
//!
//! # Writing
//!
//! Flat extents and allocated grains are written in place; before that, opening a sparse
//! extent for writing reads every grain table and refuses the disk when a grain overlaps the
//! header, the embedded descriptor, a grain directory or table, or another grain. A write
//! into a grain the extent does not hold (or a zero grain) appends the whole grain at the end
//! of the extent file (what the guest saw there, with the write applied), then writes its
//! grain table entry, then the redundant table's entry, each flushed: a crash leaves the old
//! mapping or the new one, and at worst a leaked grain. The first write of an open gives the
//! disk a new CID, as qemu does, so children made from it no longer match; the CID keeps its width, so the
//! descriptor is changed by one small write in place. streamOptimized disks (compressed
//! grains) and disks whose grain directory is found through a footer (gdOffset GD_AT_END)
//! are not written: opening one for writing is refused.

mod create;
pub mod descriptor;
mod grain;
pub mod sparse_header;
mod stream_optimized;

use std::path::{Path, PathBuf};

use crate::block_device::{check_range, check_write, BlockDevice};
use crate::error::{Error, Result};
use crate::image_file::{read_structure, ImageFile, LocalFile};
use crate::parent::ParentHints;
use crate::vhd::MAX_PARENT_DEPTH;
use crate::Entropy;
use descriptor::{Access, CreateType, Descriptor, ExtentType};
use grain::{Grain, SparseExtent};
use sparse_header::SparseHeader;

pub(crate) use create::create_differencing_child;
pub use create::ParentRecord;

/// Whether `start` (the first bytes of a file) is a sparse extent or a descriptor file.
pub(crate) fn is_vmdk(start: &[u8]) -> bool {
    start.starts_with(sparse_header::MAGIC)
        || start.starts_with(sparse_header::COWD_MAGIC)
        || start.starts_with(descriptor::SIGNATURE.as_bytes())
}

enum ExtentData {
    Flat {
        file: Box<dyn ImageFile>,
        offset: u64,
    },
    /// Boxed: the extent's state is far larger than a flat extent's.
    Sparse(Box<SparseExtent>),
    Zero,
}

struct Extent {
    /// Where the extent starts on the virtual disk, in bytes.
    start: u64,
    length: u64,
    access: Access,
    data: ExtentData,
}

/// Where the descriptor's text is, to give the disk a new CID.
enum DescriptorHome {
    /// A bare sparse extent without a descriptor.
    None,
    File(Box<dyn ImageFile>),
    /// Embedded in the first (and only) extent's file at this offset.
    Embedded(u64),
}

/// The parent of a child disk, as the child names it and as it was found.
#[derive(Clone, Debug)]
pub struct ParentLink {
    pub recorded: String,
    pub path: PathBuf,
}

pub struct Vmdk {
    path: PathBuf,
    descriptor: Option<Descriptor>,
    home: DescriptorHome,
    extents: Vec<Extent>,
    size: u64,
    parent: Option<Box<dyn BlockDevice>>,
    parent_link: Option<ParentLink>,
    writable: bool,
    cid_updated: bool,
    /// Where the new CID of the first change comes from.
    write_entropy: Entropy,
}

fn sparse_header_of(file: &mut dyn ImageFile) -> Result<SparseHeader> {
    let bytes = read_structure(file, 0, sparse_header::SIZE, "VMDK sparse extent header")?;
    SparseHeader::parse(file.path(), &crate::bytes::array(&bytes, 0))
}

impl Vmdk {
    pub fn open(path: &Path, writable: bool) -> Result<Self> {
        Self::open_file(Box::new(LocalFile::open(path, writable)?))
    }

    pub fn open_file(file: Box<dyn ImageFile>) -> Result<Self> {
        Self::open_at_depth(file, 0)
    }

    pub(crate) fn open_at_depth(file: Box<dyn ImageFile>, depth: usize) -> Result<Self> {
        Self::open_with(file, depth, None)
    }

    /// Opens a child whose parent is `parent`, already open: the parentFileNameHint is not
    /// followed. For a child just made by [`create_differencing_child`] of that parent.
    pub(crate) fn open_with_parent(
        file: Box<dyn ImageFile>,
        parent: Box<dyn BlockDevice>,
    ) -> Result<Self> {
        Self::open_with(file, 0, Some(parent))
    }

    fn open_with(
        mut file: Box<dyn ImageFile>,
        depth: usize,
        given_parent: Option<Box<dyn BlockDevice>>,
    ) -> Result<Self> {
        let path = file.path().to_path_buf();
        let writable = file.is_writable();
        let mut start = [0u8; 4];
        if file.len() >= 4 {
            file.read_at(0, &mut start)?;
        }
        let mut vmdk = if &start == sparse_header::MAGIC || &start == sparse_header::COWD_MAGIC {
            Self::open_sparse_file(file)?
        } else {
            Self::open_descriptor_file(file)?
        };
        if writable {
            vmdk.refuse_writes_where_unsupported()?;
            vmdk.refuse_overlapping_grains()?;
        }
        vmdk.writable = writable;
        let hint = vmdk
            .descriptor
            .as_ref()
            .and_then(|d| d.parent_file_name_hint.clone());
        match (hint, given_parent) {
            (Some(hint), None) => vmdk.open_parent(&path, &hint, depth)?,
            (Some(hint), Some(parent)) => {
                vmdk.parent = Some(parent);
                vmdk.parent_link = Some(ParentLink {
                    recorded: hint,
                    path: PathBuf::new(),
                });
            }
            (None, _) => {}
        }
        Ok(vmdk)
    }

    /// A monolithicSparse or streamOptimized disk (or a bare sparse extent).
    fn open_sparse_file(mut file: Box<dyn ImageFile>) -> Result<Self> {
        let path = file.path().to_path_buf();
        let header = sparse_header_of(&mut *file)?;
        let (descriptor, home) = if header.descriptor_offset != 0 && header.descriptor_size != 0 {
            let length = header.descriptor_size.saturating_mul(512);
            if length > descriptor::MAX_LENGTH {
                return Err(Error::corrupt(
                    &path,
                    "VMDK sparse extent header",
                    format!(
                        "the embedded descriptor is {length} bytes long, more than {}",
                        descriptor::MAX_LENGTH
                    ),
                ));
            }
            let at = header.descriptor_offset.saturating_mul(512);
            let text = read_structure(&mut *file, at, length as usize, "VMDK descriptor")?;
            let parsed = Descriptor::parse(&path, &text)?;
            if !matches!(
                parsed.create_type,
                CreateType::MonolithicSparse | CreateType::StreamOptimized
            ) || parsed.extents.len() != 1
                || parsed.extents[0].kind != ExtentType::Sparse
            {
                return Err(Error::corrupt(
                    &path,
                    "VMDK descriptor",
                    format!(
                        "the descriptor embedded in a sparse extent describes a {} disk of {} extents; expected one sparse extent (monolithicSparse or streamOptimized)",
                        parsed.create_type.name(),
                        parsed.extents.len()
                    ),
                ));
            }
            (Some(parsed), DescriptorHome::Embedded(at))
        } else {
            (None, DescriptorHome::None)
        };
        let (sectors, access) = match &descriptor {
            Some(d) => (d.extents[0].sectors, d.extents[0].access),
            None => (header.capacity, Access::ReadWrite),
        };
        let extent = Self::sparse_extent(file, header, sectors)?;
        Ok(Vmdk {
            path,
            descriptor,
            home,
            extents: vec![Extent {
                start: 0,
                length: sectors * 512,
                access,
                data: ExtentData::Sparse(extent),
            }],
            size: sectors * 512,
            parent: None,
            parent_link: None,
            writable: false,
            cid_updated: false,
            write_entropy: Entropy::default(),
        })
    }

    fn sparse_extent(
        file: Box<dyn ImageFile>,
        header: SparseHeader,
        sectors: u64,
    ) -> Result<Box<SparseExtent>> {
        if sectors > header.capacity {
            return Err(Error::corrupt(
                file.path(),
                "VMDK extent",
                format!(
                    "the descriptor gives the extent {sectors} sectors, its header a capacity of {}",
                    header.capacity
                ),
            ));
        }
        SparseExtent::open(file, header).map(Box::new)
    }

    /// A descriptor file and the extent files it names.
    fn open_descriptor_file(mut file: Box<dyn ImageFile>) -> Result<Self> {
        let path = file.path().to_path_buf();
        if file.len() > descriptor::MAX_LENGTH {
            return Err(Error::corrupt(
                &path,
                "VMDK descriptor",
                format!(
                    "a descriptor file of {} bytes is longer than {}",
                    file.len(),
                    descriptor::MAX_LENGTH
                ),
            ));
        }
        let length = file.len() as usize;
        let text = read_structure(&mut *file, 0, length, "VMDK descriptor")?;
        let parsed = Descriptor::parse(&path, &text)?;
        let size = parsed.disk_size(&path)?;
        let directory = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        let mut extents = Vec::new();
        let mut start = 0u64;
        for line in &parsed.extents {
            let length = line.sectors * 512;
            let writable = file.is_writable() && line.access == Access::ReadWrite;
            let data = match (line.kind, &line.file_name) {
                (ExtentType::Zero, _) => ExtentData::Zero,
                (_, None) => unreachable_extent(&path)?,
                (kind, Some(name)) => {
                    if writable {
                        refuse_writing_outside(&path, name)?;
                    }
                    let extent_path = directory.join(name.replace('\\', "/"));
                    let mut extent_file: Box<dyn ImageFile> =
                        Box::new(LocalFile::open(&extent_path, writable)?);
                    if kind == ExtentType::Flat {
                        let offset = line.offset.saturating_mul(512);
                        let needed = offset.saturating_add(length);
                        if extent_file.len() < needed {
                            return Err(Error::corrupt(
                                &extent_path,
                                "VMDK flat extent",
                                format!(
                                    "the descriptor needs {needed} bytes of it, the file holds {}",
                                    extent_file.len()
                                ),
                            ));
                        }
                        ExtentData::Flat {
                            file: extent_file,
                            offset,
                        }
                    } else {
                        let header = sparse_header_of(&mut *extent_file)?;
                        ExtentData::Sparse(Self::sparse_extent(extent_file, header, line.sectors)?)
                    }
                }
            };
            extents.push(Extent {
                start,
                length,
                access: line.access,
                data,
            });
            start += length;
        }
        Ok(Vmdk {
            path,
            descriptor: Some(parsed),
            home: DescriptorHome::File(file),
            extents,
            size,
            parent: None,
            parent_link: None,
            writable: false,
            cid_updated: false,
            write_entropy: Entropy::default(),
        })
    }

    fn refuse_writes_where_unsupported(&self) -> Result<()> {
        let compressed = self.extents.iter().any(|extent| {
            matches!(&extent.data, ExtentData::Sparse(sparse) if sparse.header.is_compressed())
        });
        if compressed {
            return Err(Error::unsupported(
                &self.path,
                "VMDK sparse extent header",
                "a streamOptimized disk (compressed grains, the OVA form) is not written in place: its grains are packed one after another, so a changed one would have to be appended and the stream rewritten; convert it to monolithicSparse (qemu-img convert -O vmdk), generalize that, and convert back",
            ));
        }
        let footer = self.extents.iter().any(|extent| {
            matches!(&extent.data, ExtentData::Sparse(sparse) if sparse.directory_in_footer)
        });
        if footer {
            return Err(Error::unsupported(
                &self.path,
                "VMDK sparse extent header",
                "gdOffset is GD_AT_END (expected a sector): the grain directory is found through the footer in the last sectors of the file, and a grain appended after it would hide the footer from the next open; convert the disk (qemu-img convert -O vmdk) to write it",
            ));
        }
        Ok(())
    }

    /// A grain that overlaps its extent's metadata or another grain is damage a write in place
    /// would spread; such a disk is not written at all.
    fn refuse_overlapping_grains(&mut self) -> Result<()> {
        for extent in &mut self.extents {
            if let ExtentData::Sparse(sparse) = &mut extent.data {
                sparse.check_layout_for_writing()?;
            }
        }
        Ok(())
    }

    fn open_parent(&mut self, child: &Path, hint: &str, depth: usize) -> Result<()> {
        if depth >= MAX_PARENT_DEPTH {
            return Err(Error::unsupported(
                child,
                "VMDK parent chain",
                format!("more than {MAX_PARENT_DEPTH} parents (a loop?)"),
            ));
        }
        let hints = ParentHints::of_one_path(hint, true);
        let (parent, found) = hints.open_first(child, hint, |mut file| {
            let mut start = [0u8; 32];
            let read = start.len().min(file.len() as usize);
            file.read_at(0, &mut start[..read])?;
            if !is_vmdk(&start[..read]) {
                return Err(Error::unsupported(
                    file.path(),
                    "VMDK parent",
                    "the parent of a VMDK is not a VMDK disk (qemu and VMware accept only VMDK parents)",
                ));
            }
            Vmdk::open_at_depth(file, depth + 1)
        })?;
        let expected = self.descriptor.as_ref().map_or(0, |d| d.parent_cid);
        match parent.cid() {
            Some(cid) if cid == expected => {}
            found_cid => {
                return Err(Error::ParentMismatch {
                    path: child.to_path_buf(),
                    parent: found.clone(),
                    reason: format!(
                        "the child's parentCID is {expected:08x}, the parent's CID is {}: the parent changed after the child was made",
                        found_cid.map_or("missing".to_string(), |cid| format!("{cid:08x}"))
                    ),
                })
            }
        }
        self.parent = Some(Box::new(parent));
        self.parent_link = Some(ParentLink {
            recorded: hint.to_string(),
            path: found,
        });
        Ok(())
    }

    /// The disk's content id, which a child records as its parentCID (none for a bare extent).
    pub fn cid(&self) -> Option<u32> {
        self.descriptor.as_ref().map(|d| d.cid)
    }

    /// What a new child records of this disk; `None` for a bare extent, which has no CID.
    pub fn parent_record(&self) -> Option<ParentRecord> {
        self.descriptor.as_ref().map(|descriptor| ParentRecord {
            cid: descriptor.cid,
            size: self.size,
            hardware_lines: descriptor.hardware_lines.clone(),
        })
    }

    pub fn descriptor(&self) -> Option<&Descriptor> {
        self.descriptor.as_ref()
    }

    pub fn parent_link(&self) -> Option<&ParentLink> {
        self.parent_link.as_ref()
    }

    /// Draws the new CID of this session's first change from `entropy` (a seeded run's, for the
    /// same bytes again) instead of the operating system.
    pub fn set_write_entropy(&mut self, entropy: Entropy) {
        self.write_entropy = entropy;
    }

    /// Gives the disk a new CID before its first change, keeping the digits' width.
    fn update_cid(&mut self) -> Result<()> {
        if self.cid_updated {
            return Ok(());
        }
        let Some(descriptor) = &self.descriptor else {
            self.cid_updated = true;
            return Ok(());
        };
        let width = descriptor.cid_digits.len();
        let old = descriptor.cid;
        let mut new_cid = old;
        while new_cid == old {
            let random = create::random_cid(&self.path, &self.write_entropy)?;
            new_cid = u32::from_str_radix(&descriptor::cid_text(random, width), 16).unwrap_or(old);
        }
        let text = descriptor::cid_text(new_cid, width);
        let digits_at = descriptor.cid_digits.start as u64;
        match &mut self.home {
            DescriptorHome::None => {}
            DescriptorHome::File(file) => {
                file.write_at(digits_at, text.as_bytes())?;
                file.order_writes()?;
            }
            DescriptorHome::Embedded(at) => {
                let at = *at + digits_at;
                if let Some(Extent {
                    data: ExtentData::Sparse(sparse),
                    ..
                }) = self.extents.first_mut()
                {
                    sparse.file.write_at(at, text.as_bytes())?;
                    sparse.file.order_writes()?;
                }
            }
        }
        if let Some(descriptor) = &mut self.descriptor {
            descriptor.cid = new_cid;
        }
        self.cid_updated = true;
        Ok(())
    }

    fn extent_index(&self, offset: u64) -> usize {
        self.extents
            .partition_point(|extent| extent.start + extent.length <= offset)
    }

    /// What the parent (or nothing: zeros) shows at `offset`; a shorter parent reads as zeros
    /// past its end.
    fn read_parent(&mut self, offset: u64, out: &mut [u8]) -> Result<()> {
        out.fill(0);
        if let Some(parent) = &mut self.parent {
            let available = parent.len().saturating_sub(offset).min(out.len() as u64) as usize;
            if available > 0 {
                parent.read_at(offset, &mut out[..available])?;
            }
        }
        Ok(())
    }

    /// Reads bytes of one grain of a sparse extent: `within` bytes into grain `grain`, whose
    /// virtual offset is `virtual_start`.
    fn read_in_grain(
        &mut self,
        index: usize,
        grain: u64,
        within: u64,
        virtual_start: u64,
        out: &mut [u8],
    ) -> Result<()> {
        let ExtentData::Sparse(sparse) = &mut self.extents[index].data else {
            return Ok(());
        };
        match sparse.grain(grain)? {
            Grain::Unallocated => self.read_parent(virtual_start + within, out),
            mapping => sparse.read_grain(grain, mapping, within, out),
        }
    }

    fn write_in_grain(
        &mut self,
        index: usize,
        grain: u64,
        within: u64,
        virtual_start: u64,
        data: &[u8],
    ) -> Result<()> {
        let ExtentData::Sparse(sparse) = &mut self.extents[index].data else {
            return Ok(());
        };
        let mapping = sparse.grain(grain)?;
        if let Grain::Data(host) = mapping {
            return sparse.file.write_at(host + within, data);
        }
        let grain_bytes = sparse.header.grain_bytes() as usize;
        let mut content = vec![0u8; grain_bytes];
        self.read_in_grain(index, grain, 0, virtual_start, &mut content)?;
        content[within as usize..within as usize + data.len()].copy_from_slice(data);
        let ExtentData::Sparse(sparse) = &mut self.extents[index].data else {
            return Ok(());
        };
        sparse.allocate(grain, &content)
    }

    /// Runs `action` over the pieces of `offset..offset+len`: one per flat or zero extent,
    /// one per grain of a sparse extent, as (extent, grain, offset within it, virtual offset
    /// of the grain or extent, range of the buffer).
    fn pieces(
        &self,
        offset: u64,
        len: usize,
    ) -> Vec<(usize, u64, u64, u64, std::ops::Range<usize>)> {
        let mut pieces = Vec::new();
        let mut done = 0usize;
        while done < len {
            let position = offset + done as u64;
            let index = self.extent_index(position);
            let extent = &self.extents[index];
            let in_extent = position - extent.start;
            let (grain, within, unit_start, unit_length) = match &extent.data {
                ExtentData::Sparse(sparse) => {
                    let grain_bytes = sparse.header.grain_bytes();
                    let grain = in_extent / grain_bytes;
                    (
                        grain,
                        in_extent % grain_bytes,
                        extent.start + grain * grain_bytes,
                        grain_bytes,
                    )
                }
                _ => (0, in_extent, extent.start, extent.length),
            };
            let unit_end = (unit_start + unit_length).min(extent.start + extent.length);
            let piece = (unit_end - position).min((len - done) as u64) as usize;
            pieces.push((index, grain, within, unit_start, done..done + piece));
            done += piece;
        }
        pieces
    }
}

/// Refuses to write an extent the descriptor names outside its own folder (an absolute path, or
/// one through `..`): a descriptor is the image's own data, and a crafted one must not make a
/// run write into any file of the host. VMware and qemu write extents beside the descriptor.
fn refuse_writing_outside(descriptor: &Path, name: &str) -> Result<()> {
    let outside = name.starts_with(['/', '\\'])
        || name.as_bytes().get(1) == Some(&b':')
        || name.split(['/', '\\']).any(|component| component == "..");
    if outside {
        return Err(Error::unsupported(
            descriptor,
            "VMDK descriptor",
            format!(
                "the extent {name:?} lies outside the descriptor's folder; reseal writes only \
                 extents beside the descriptor (it reads them anywhere)"
            ),
        ));
    }
    Ok(())
}

fn unreachable_extent(path: &Path) -> Result<ExtentData> {
    Err(Error::corrupt(
        path,
        "VMDK extent",
        "a FLAT or SPARSE extent names no file",
    ))
}

impl BlockDevice for Vmdk {
    fn path(&self) -> &Path {
        &self.path
    }

    fn len(&self) -> u64 {
        self.size
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<()> {
        check_range(&self.path, offset, buf.len(), self.size)?;
        for (index, grain, within, unit_start, range) in self.pieces(offset, buf.len()) {
            let out = &mut buf[range];
            match &mut self.extents[index].data {
                ExtentData::Flat { file, offset } => file.read_at(*offset + within, out)?,
                ExtentData::Zero => out.fill(0),
                ExtentData::Sparse(_) => {
                    self.read_in_grain(index, grain, within, unit_start, out)?
                }
            }
        }
        Ok(())
    }

    fn write_at(&mut self, offset: u64, buf: &[u8]) -> Result<()> {
        check_range(&self.path, offset, buf.len(), self.size)?;
        if !self.writable {
            return Err(Error::ReadOnly {
                path: self.path.clone(),
            });
        }
        let pieces = self.pieces(offset, buf.len());
        for (index, ..) in &pieces {
            let extent = &self.extents[*index];
            let refusal = match (&extent.data, extent.access) {
                (_, Access::ReadOnly) => Some("the extent is RDONLY"),
                (ExtentData::Zero, _) => Some("the extent is a ZERO extent, which holds no data"),
                _ => None,
            };
            if let Some(reason) = refusal {
                return Err(Error::unsupported(
                    &self.path,
                    "VMDK extent",
                    format!("cannot write at offset {offset}: {reason}"),
                ));
            }
        }
        if let Some(ExtentData::Flat { file, .. }) = pieces.first().map(|p| &self.extents[p.0].data)
        {
            check_write(&**file, 0, 0, file.len())?;
        }
        self.update_cid()?;
        for (index, grain, within, unit_start, range) in pieces {
            let data = &buf[range];
            match &mut self.extents[index].data {
                ExtentData::Flat { file, offset } => file.write_at(*offset + within, data)?,
                ExtentData::Zero => {}
                ExtentData::Sparse(_) => {
                    self.write_in_grain(index, grain, within, unit_start, data)?
                }
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        if let DescriptorHome::File(file) = &mut self.home {
            file.sync()?;
        }
        for extent in &mut self.extents {
            match &mut extent.data {
                ExtentData::Flat { file, .. } => file.sync()?,
                ExtentData::Sparse(sparse) => sparse.file.sync()?,
                ExtentData::Zero => {}
            }
        }
        Ok(())
    }

    fn container_format(&self) -> Option<crate::Format> {
        Some(crate::Format::Vmdk)
    }

    fn backing_device(&self) -> Option<&dyn BlockDevice> {
        self.parent.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn a_compressed_grain_read_in_pieces_is_inflated_once() {
        let dir = tempfile::tempdir().unwrap();
        let raw = dir.path().join("disk.raw");
        let data: Vec<u8> = (0..(1u32 << 20))
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8 | 1)
            .collect();
        std::fs::write(&raw, &data).unwrap();
        let image = dir.path().join("disk.vmdk");
        let status = Command::new("qemu-img")
            .args(["convert", "-f", "raw", "-O", "vmdk", "-o"])
            .arg("subformat=streamOptimized")
            .arg(&raw)
            .arg(&image)
            .status()
            .expect("qemu-img is installed (cargo xtask setup)");
        assert!(status.success());

        let mut vmdk = Vmdk::open(&image, false).unwrap();
        let mut piece = vec![0u8; 4096];
        // The first two 64 KiB grains, 4 KiB at a time, then the first grain again.
        for offset in (0..2 << 16).step_by(4096).chain([0]) {
            vmdk.read_at(offset, &mut piece).unwrap();
            assert!(piece[..] == data[offset as usize..offset as usize + 4096]);
        }
        let ExtentData::Sparse(sparse) = &vmdk.extents[0].data else {
            panic!("a streamOptimized extent is sparse");
        };
        assert_eq!(sparse.grains_inflated(), 3);
    }
}
