//! VHD (Virtual PC / Hyper-V generation 1) disks: fixed, dynamic and differencing.
//!
//! A fixed disk is the raw data followed by the [footer](footer). Dynamic and differencing disks
//! start with a copy of the footer, then the [dynamic header](dynamic_header), the block
//! allocation table (BAT: one big-endian sector number per block, all ones when the block is
//! absent), then blocks, each a sector bitmap (one bit per sector, padded to whole sectors)
//! followed by the block's data, and end with the footer.
//!
//! Reads of an absent block, or of a sector whose bitmap bit is clear, return zeros, or for a
//! differencing disk the parent's data. Writes only ever go to this file.
//!
//! Crash safety: a write into a present block writes the data first and sets bitmap bits
//! afterwards, so a sector is either the old or the new content. A new block is appended where
//! the footer was in this order: footer at the new end of the file, the block's bitmap (which
//! overwrites the old footer), a flush, then the BAT entry. Until the 4-byte BAT entry is
//! written the block is unreferenced space before a valid footer, so an interrupted allocation
//! leaves the old content readable and at worst leaks a block.

pub mod dynamic_header;
pub mod footer;

use std::path::Path;

use crate::block_device::{check_range, check_write, BlockDevice};
use crate::error::{Error, Result};
use crate::extent::{first_overlap, Extent};
use crate::image_file::{read_structure, ImageFile, LocalFile};
use crate::parent::{parent_paths_for_child, ParentHints};
use crate::sector_bitmap::{self, BitOrder};
use dynamic_header::{DynamicHeader, ParentLocator, DYNAMIC_HEADER_SIZE};
use footer::{DiskType, Footer, FOOTER_SIZE};
use reseal_nt::{utf16, Entropy, FileTime, Guid};

const SECTOR: u64 = 512;
const UNALLOCATED: u32 = u32::MAX;
const BIT_ORDER: BitOrder = BitOrder::MostSignificantFirst;
/// Longest parent locator text read (a Windows path is at most 32767 UTF-16 units).
const MAX_LOCATOR_DATA: u32 = 65536;
/// Differencing chains deeper than this are treated as a loop.
pub(crate) const MAX_PARENT_DEPTH: usize = 32;

/// A VHD disk of any type, as a [`BlockDevice`].
pub struct Vhd {
    file: Box<dyn ImageFile>,
    footer: Footer,
    /// Where the trailing footer is: always the last 512 bytes of the file.
    footer_offset: u64,
    sparse: Option<Sparse>,
}

/// The state of a dynamic or differencing disk.
struct Sparse {
    header: DynamicHeader,
    bat: Vec<u32>,
    block_size: u64,
    bitmap_size: u64,
    parent: Option<Box<dyn BlockDevice>>,
    /// The sector bitmap read last, by block offset: consecutive small reads mostly stay in
    /// one block.
    cached_bitmap: Option<(u64, Vec<u8>)>,
}

impl Vhd {
    /// Opens a VHD file; a differencing disk's parents are opened read-only.
    pub fn open(path: &Path, writable: bool) -> Result<Self> {
        Self::open_file(Box::new(LocalFile::open(path, writable)?))
    }

    pub fn open_file(file: Box<dyn ImageFile>) -> Result<Self> {
        Self::open_at_depth(file, 0)
    }

    pub(crate) fn open_at_depth(file: Box<dyn ImageFile>, depth: usize) -> Result<Self> {
        Self::open_with(file, ParentSource::Search { depth })
    }

    /// Opens a differencing VHD whose parent is `parent`, already open: the paths the child
    /// records are not searched, and only the parent's size is checked. For a child just made
    /// by [`create_differencing_child`] of that parent.
    pub(crate) fn open_with_parent(
        file: Box<dyn ImageFile>,
        parent: Box<dyn BlockDevice>,
    ) -> Result<Self> {
        Self::open_with(file, ParentSource::Given(parent))
    }

    fn open_with(mut file: Box<dyn ImageFile>, parent: ParentSource) -> Result<Self> {
        let path = file.path().to_path_buf();
        if file.len() < FOOTER_SIZE as u64 {
            return Err(Error::corrupt(
                &path,
                "VHD footer",
                format!("the file has only {} bytes", file.len()),
            ));
        }
        let footer_offset = file.len() - FOOTER_SIZE as u64;
        let footer_bytes = read_structure(&mut *file, footer_offset, FOOTER_SIZE, "VHD footer")?;
        let footer = Footer::parse(&path, &footer_bytes.try_into().expect("512 bytes"))?;
        let sparse = match footer.disk_type {
            DiskType::Fixed => {
                if footer.current_size > footer_offset {
                    return Err(Error::corrupt(
                        &path,
                        "VHD footer",
                        format!(
                            "a fixed disk of {} bytes needs a longer file ({} data bytes); the file is truncated",
                            footer.current_size, footer_offset
                        ),
                    ));
                }
                None
            }
            DiskType::Dynamic | DiskType::Differencing => {
                Some(Sparse::open(&mut *file, &footer, footer_offset, parent)?)
            }
        };
        Ok(Vhd {
            file,
            footer,
            footer_offset,
            sparse,
        })
    }

    pub fn footer(&self) -> &Footer {
        &self.footer
    }

    pub fn dynamic_header(&self) -> Option<&DynamicHeader> {
        self.sparse.as_ref().map(|sparse| &sparse.header)
    }

    /// What a new differencing child of this disk records about it.
    pub(crate) fn parent_record(&self) -> ParentRecord {
        ParentRecord {
            footer: self.footer.clone(),
            block_size: self.sparse.as_ref().map(|sparse| sparse.block_size),
        }
    }
}

/// Where a differencing disk's parent comes from.
pub(crate) enum ParentSource {
    /// Found from the paths the child records, `depth` levels below the disk first opened.
    Search { depth: usize },
    /// Already open.
    Given(Box<dyn BlockDevice>),
}

/// What a differencing child records about its parent VHD (see [`Vhd::parent_record`]).
#[derive(Clone, Debug)]
pub(crate) struct ParentRecord {
    footer: Footer,
    /// `None` for a fixed disk.
    block_size: Option<u64>,
}

impl Sparse {
    fn open(
        file: &mut dyn ImageFile,
        footer: &Footer,
        footer_offset: u64,
        parent: ParentSource,
    ) -> Result<Self> {
        let path = file.path().to_path_buf();
        let header_bytes = read_structure(
            file,
            footer.data_offset,
            DYNAMIC_HEADER_SIZE,
            "VHD dynamic disk header",
        )?;
        let header = DynamicHeader::parse(&path, &header_bytes)?;
        let block_size = header.block_size as u64;
        let entries = header.max_table_entries as u64;
        if entries * block_size < footer.current_size {
            return Err(Error::corrupt(
                &path,
                "VHD dynamic disk header",
                format!(
                    "{entries} BAT entries of {block_size}-byte blocks do not cover the disk size {}",
                    footer.current_size
                ),
            ));
        }
        // Checked against the file size before allocating, so a damaged count cannot ask for
        // more memory than the file holds.
        if header.table_offset.saturating_add(entries * 4) > footer_offset {
            return Err(Error::corrupt(
                &path,
                "VHD block allocation table",
                format!(
                    "{entries} entries at offset {} reach past the footer at {footer_offset}",
                    header.table_offset
                ),
            ));
        }
        let table = read_structure(
            file,
            header.table_offset,
            (entries * 4) as usize,
            "VHD block allocation table",
        )?;
        let bat: Vec<u32> = table
            .chunks_exact(4)
            .map(|entry| u32::from_be_bytes([entry[0], entry[1], entry[2], entry[3]]))
            .collect();
        let bitmap_size = (block_size / SECTOR).div_ceil(8).next_multiple_of(SECTOR);
        // Blocks (each its sector bitmap, then its data) lie between the structures at the
        // start of the file and the footer, clear of them and of each other.
        let mut in_use = vec![
            Extent::new("the footer copy", 0, FOOTER_SIZE as u64),
            Extent::new(
                "the dynamic disk header",
                footer.data_offset,
                DYNAMIC_HEADER_SIZE as u64,
            ),
            Extent::new("the BAT", header.table_offset, entries * 4),
        ];
        for (index, &entry) in bat.iter().enumerate() {
            if entry == UNALLOCATED {
                continue;
            }
            let block = Extent::new(
                format!("block {index} (BAT entry at sector {entry})"),
                entry as u64 * SECTOR,
                bitmap_size + block_size,
            );
            if block.end() > footer_offset {
                return Err(Error::corrupt(
                    &path,
                    "VHD block allocation table",
                    format!("{block} reaches past the footer at {footer_offset}"),
                ));
            }
            in_use.push(block);
        }
        if let Some((first, second)) = first_overlap(&in_use) {
            return Err(Error::corrupt(
                &path,
                "VHD block allocation table",
                format!("{first} and {second} overlap"),
            ));
        }
        let parent = match (footer.disk_type, parent) {
            (DiskType::Differencing, ParentSource::Search { depth }) => {
                Some(open_parent(file, footer, &header, depth)?)
            }
            (DiskType::Differencing, ParentSource::Given(parent)) => {
                if parent.len() != footer.current_size {
                    return Err(Error::ParentMismatch {
                        path,
                        parent: parent.path().to_path_buf(),
                        reason: format!(
                            "its size is {}, the child's is {}",
                            parent.len(),
                            footer.current_size
                        ),
                    });
                }
                Some(parent)
            }
            _ => None,
        };
        Ok(Sparse {
            header,
            bat,
            block_size,
            bitmap_size,
            parent,
            cached_bitmap: None,
        })
    }

    fn block_offset(&self, block: usize) -> Option<u64> {
        match self.bat[block] {
            UNALLOCATED => None,
            sector => Some(sector as u64 * SECTOR),
        }
    }

    fn read_bitmap(&mut self, file: &mut dyn ImageFile, block_offset: u64) -> Result<Vec<u8>> {
        if let Some((offset, bitmap)) = &self.cached_bitmap {
            if *offset == block_offset {
                return Ok(bitmap.clone());
            }
        }
        let mut bitmap = vec![0u8; self.bitmap_size as usize];
        file.read_at(block_offset, &mut bitmap)?;
        self.cached_bitmap = Some((block_offset, bitmap.clone()));
        Ok(bitmap)
    }

    /// Writes a block's sector bitmap and keeps the cache in step with the file.
    fn write_bitmap(
        &mut self,
        file: &mut dyn ImageFile,
        block_offset: u64,
        bitmap: Vec<u8>,
    ) -> Result<()> {
        self.cached_bitmap = None;
        file.write_at(block_offset, &bitmap)?;
        self.cached_bitmap = Some((block_offset, bitmap));
        Ok(())
    }

    /// Reads `out.len()` bytes at `in_block` within one block.
    fn read_in_block(
        &mut self,
        file: &mut dyn ImageFile,
        block: usize,
        in_block: u64,
        out: &mut [u8],
    ) -> Result<()> {
        let virtual_offset = block as u64 * self.block_size + in_block;
        let Some(block_offset) = self.block_offset(block) else {
            return read_absent(&mut self.parent, virtual_offset, out);
        };
        let bitmap = self.read_bitmap(file, block_offset)?;
        let data_offset = block_offset + self.bitmap_size;
        let mut done = 0usize;
        while done < out.len() {
            // A run of sectors that are all present or all absent.
            let present =
                sector_bitmap::is_set(&bitmap, (in_block + done as u64) / SECTOR, BIT_ORDER);
            let mut end = done;
            while end < out.len()
                && sector_bitmap::is_set(&bitmap, (in_block + end as u64) / SECTOR, BIT_ORDER)
                    == present
            {
                let sector_end = ((in_block + end as u64) / SECTOR + 1) * SECTOR - in_block;
                end = (sector_end as usize).min(out.len());
            }
            let run = &mut out[done..end];
            if present {
                file.read_at(data_offset + in_block + done as u64, run)?;
            } else {
                read_absent(&mut self.parent, virtual_offset + done as u64, run)?;
            }
            done = end;
        }
        Ok(())
    }

    /// Writes `data` at `in_block` within one block, allocating the block first if needed.
    fn write_in_block(
        &mut self,
        file: &mut dyn ImageFile,
        footer: &Footer,
        footer_offset: &mut u64,
        block: usize,
        in_block: u64,
        data: &[u8],
    ) -> Result<()> {
        let block_offset = match self.block_offset(block) {
            Some(offset) => offset,
            None => self.allocate_block(file, footer, footer_offset, block)?,
        };
        let mut bitmap = self.read_bitmap(file, block_offset)?;
        let first_sector = in_block / SECTOR;
        let end_sector = (in_block + data.len() as u64).div_ceil(SECTOR);
        let all_present = (first_sector..end_sector)
            .all(|sector| sector_bitmap::is_set(&bitmap, sector, BIT_ORDER));
        let data_offset = block_offset + self.bitmap_size;
        if all_present {
            return file.write_at(data_offset + in_block, data);
        }
        // Whole sectors are marked present, so partial sectors take their other bytes from what
        // the disk shows now (the parent, zeros or this file).
        let span_start = first_sector * SECTOR;
        let mut merged = vec![0u8; ((end_sector - first_sector) * SECTOR) as usize];
        self.read_in_block(file, block, span_start, &mut merged)?;
        let at = (in_block - span_start) as usize;
        merged[at..at + data.len()].copy_from_slice(data);
        file.write_at(data_offset + span_start, &merged)?;
        for sector in first_sector..end_sector {
            sector_bitmap::set(&mut bitmap, sector, BIT_ORDER);
        }
        self.write_bitmap(file, block_offset, bitmap)
    }

    /// Appends a block where the footer is (see the module documentation for the order).
    fn allocate_block(
        &mut self,
        file: &mut dyn ImageFile,
        footer: &Footer,
        footer_offset: &mut u64,
        block: usize,
    ) -> Result<u64> {
        let block_offset = *footer_offset;
        let sector = block_offset / SECTOR;
        if block_offset % SECTOR != 0 || sector >= UNALLOCATED as u64 {
            return Err(Error::unsupported(
                file.path(),
                "VHD block allocation table",
                format!("a block at offset {block_offset} cannot be addressed by a 32-bit sector number"),
            ));
        }
        let new_footer_offset = block_offset + self.bitmap_size + self.block_size;
        file.write_at(new_footer_offset, &footer.to_bytes())?;
        // A dynamic disk's new block holds zeros, which is what the absent block read as, so
        // all of it is present; a differencing block starts empty and shows the parent.
        let bitmap_byte = if self.parent.is_some() { 0x00 } else { 0xFF };
        self.write_bitmap(
            file,
            block_offset,
            vec![bitmap_byte; self.bitmap_size as usize],
        )?;
        file.order_writes()?;
        let entry_offset = self.header.table_offset + block as u64 * 4;
        file.write_at(entry_offset, &(sector as u32).to_be_bytes())?;
        self.bat[block] = sector as u32;
        *footer_offset = new_footer_offset;
        Ok(block_offset)
    }
}

/// Splits `offset..offset+len` at block boundaries: (block, offset in block, offset in buffer, length).
pub(crate) fn block_pieces(
    offset: u64,
    len: usize,
    block_size: u64,
) -> impl Iterator<Item = (usize, u64, usize, usize)> {
    let mut done = 0usize;
    std::iter::from_fn(move || {
        if done >= len {
            return None;
        }
        let position = offset + done as u64;
        let in_block = position % block_size;
        let piece = ((block_size - in_block) as usize).min(len - done);
        let item = ((position / block_size) as usize, in_block, done, piece);
        done += piece;
        Some(item)
    })
}

impl BlockDevice for Vhd {
    fn path(&self) -> &Path {
        self.file.path()
    }

    fn len(&self) -> u64 {
        self.footer.current_size
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<()> {
        check_range(self.file.path(), offset, buf.len(), self.len())?;
        let Some(sparse) = &mut self.sparse else {
            return self.file.read_at(offset, buf);
        };
        for (block, in_block, at, len) in block_pieces(offset, buf.len(), sparse.block_size) {
            sparse.read_in_block(&mut *self.file, block, in_block, &mut buf[at..at + len])?;
        }
        Ok(())
    }

    fn write_at(&mut self, offset: u64, buf: &[u8]) -> Result<()> {
        check_write(&*self.file, offset, buf.len(), self.len())?;
        let Some(sparse) = &mut self.sparse else {
            return self.file.write_at(offset, buf);
        };
        for (block, in_block, at, len) in block_pieces(offset, buf.len(), sparse.block_size) {
            sparse.write_in_block(
                &mut *self.file,
                &self.footer,
                &mut self.footer_offset,
                block,
                in_block,
                &buf[at..at + len],
            )?;
        }
        Ok(())
    }

    fn container_format(&self) -> Option<crate::Format> {
        Some(crate::Format::Vhd)
    }

    fn backing_device(&self) -> Option<&dyn BlockDevice> {
        self.sparse.as_ref()?.parent.as_deref()
    }

    fn flush(&mut self) -> Result<()> {
        self.file.sync()
    }
}

fn read_locator_text(file: &mut dyn ImageFile, locator: &ParentLocator) -> Result<String> {
    let length = locator.data_length.min(MAX_LOCATOR_DATA) as usize;
    let data = read_structure(file, locator.data_offset, length, "VHD parent locator")?;
    Ok(utf16::decode_le_lossy_until_nul(&data))
}

/// Opens the parent named by the locators and checks that it is the disk the child was made from.
fn open_parent(
    file: &mut dyn ImageFile,
    footer: &Footer,
    header: &DynamicHeader,
    depth: usize,
) -> Result<Box<dyn BlockDevice>> {
    let path = file.path().to_path_buf();
    if depth >= MAX_PARENT_DEPTH {
        return Err(Error::unsupported(
            &path,
            "VHD differencing chain",
            format!("more than {MAX_PARENT_DEPTH} parents (a loop?)"),
        ));
    }
    let mut hints = ParentHints::default();
    for locator in &header.parent_locators {
        match &locator.platform_code {
            b"W2ru" => hints.relative.push(read_locator_text(file, locator)?),
            b"W2ku" => hints.absolute.push(read_locator_text(file, locator)?),
            _ => {}
        }
    }
    hints.names.push(header.parent_unicode_name.clone());
    let (parent, parent_path) = hints.open_first(&path, &header.parent_unicode_name, |file| {
        Vhd::open_at_depth(file, depth + 1)
    })?;
    let mismatch = |reason: String| Error::ParentMismatch {
        path: path.clone(),
        parent: parent_path.clone(),
        reason,
    };
    if parent.footer.unique_id != header.parent_unique_id {
        return Err(mismatch(format!(
            "its unique id is {}, the child expects {}",
            parent.footer.unique_id, header.parent_unique_id
        )));
    }
    if parent.footer.current_size != footer.current_size {
        return Err(mismatch(format!(
            "its size is {}, the child's is {}",
            parent.footer.current_size, footer.current_size
        )));
    }
    Ok(Box::new(parent))
}

/// `time` as a VHD timestamp: seconds since 2000-01-01 00:00 UTC (0 before, the last
/// second a `u32` holds after).
fn vhd_timestamp(time: FileTime) -> u32 {
    const UNIX_TO_2000: i64 = 946_684_800;
    let since_2000 = time.to_unix_seconds().saturating_sub(UNIX_TO_2000).max(0);
    u32::try_from(since_2000).unwrap_or(u32::MAX)
}

/// Reads what a sparse disk holds where its file has no data: the parent's bytes, or zeros.
pub(crate) fn read_absent(
    parent: &mut Option<Box<dyn BlockDevice>>,
    virtual_offset: u64,
    out: &mut [u8],
) -> Result<()> {
    match parent {
        Some(parent) => parent.read_at(virtual_offset, out),
        None => {
            out.fill(0);
            Ok(())
        }
    }
}

/// Creates an empty differencing VHD at `child_path` whose parent is the VHD at `parent_path`.
///
/// The child records the parent as a relative (W2ru) and an absolute (W2ku) path and by name.
pub fn create_differencing(parent_path: &Path, child_path: &Path) -> Result<()> {
    let parent = Vhd::open(parent_path, false)?;
    create_differencing_child(
        &parent.parent_record(),
        parent_path,
        child_path,
        &Entropy::default(),
    )
}

/// [`create_differencing`] for a parent already open, described by `parent`: the parent file
/// is not read. The child's timestamp and unique id come from `entropy`.
pub(crate) fn create_differencing_child(
    parent: &ParentRecord,
    parent_path: &Path,
    child_path: &Path,
    entropy: &Entropy,
) -> Result<()> {
    let (parent_absolute, relative) = parent_paths_for_child(parent_path, child_path)?;

    let size = parent.footer.current_size;
    let block_size = parent.block_size.unwrap_or(2 * 1024 * 1024);
    let entries = size.div_ceil(block_size);
    let table_offset = (FOOTER_SIZE + DYNAMIC_HEADER_SIZE) as u64;
    let table_size = (entries * 4).next_multiple_of(SECTOR);

    let mut locator_texts: Vec<([u8; 4], Vec<u8>)> = Vec::new();
    if let Some(relative) = &relative {
        locator_texts.push((*b"W2ru", utf16::encode_le(relative)));
    }
    locator_texts.push((
        *b"W2ku",
        utf16::encode_le(&parent_absolute.to_string_lossy()),
    ));
    let mut next_offset = table_offset + table_size;
    let mut locators = Vec::new();
    for (code, text) in &locator_texts {
        let space = (text.len() as u64).next_multiple_of(SECTOR).max(SECTOR);
        locators.push(ParentLocator {
            platform_code: *code,
            data_space: space as u32,
            data_length: text.len() as u32,
            data_offset: next_offset,
        });
        next_offset += space;
    }

    let footer = Footer {
        features: 2,
        format_version: 0x0001_0000,
        data_offset: FOOTER_SIZE as u64,
        timestamp: vhd_timestamp(entropy.now()),
        creator_application: *b"rsl ",
        creator_version: 0x0001_0000,
        creator_host_os: *b"Wi2k",
        original_size: size,
        current_size: size,
        disk_geometry: parent.footer.disk_geometry,
        disk_type: DiskType::Differencing,
        unique_id: Guid::random_from(entropy).map_err(|err| Error::no_random(child_path, err))?,
        saved_state: 0,
    };
    let header = DynamicHeader {
        table_offset,
        header_version: 0x0001_0000,
        max_table_entries: u32::try_from(entries).map_err(|_| {
            Error::unsupported(parent_path, "VHD dynamic disk header", "too many blocks")
        })?,
        block_size: block_size as u32,
        parent_unique_id: parent.footer.unique_id,
        parent_timestamp: parent.footer.timestamp,
        parent_unicode_name: parent_absolute.to_string_lossy().into_owned(),
        parent_locators: locators.clone(),
    };

    let mut child = LocalFile::create(child_path)?;
    let footer_bytes = footer.to_bytes();
    child.write_at(0, &footer_bytes)?;
    child.write_at(FOOTER_SIZE as u64, &header.to_bytes())?;
    child.write_at(table_offset, &vec![0xFF; table_size as usize])?;
    for (locator, (_, text)) in locators.iter().zip(&locator_texts) {
        child.write_at(locator.data_offset, text)?;
    }
    child.write_at(next_offset, &footer_bytes)?;
    child.sync()
}
