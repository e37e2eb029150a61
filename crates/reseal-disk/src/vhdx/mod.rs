//! VHDX (Hyper-V) disks: fixed, dynamic and differencing.
//!
//! The first MiB holds the [file identifier](file_identifier), two [headers](header) and two
//! [region tables](region_table); the regions are the [log](log), the [metadata](metadata) and
//! the [BAT](bat), followed by payload and sector bitmap blocks, all 1 MiB aligned.
//!
//! Opening replays a pending log: into the file when opened for writing (then the headers are
//! rewritten with a zero LogGuid), in memory when opened read-only.
//!
//! Writes and crash safety: the first write of a session writes the non-current header with
//! the next sequence number, a new FileWriteGuid and a new DataWriteGuid, and flushes it; a torn
//! header fails its CRC and the other copy stays current. Writes into a present block go in
//! place. A new block is appended 1 MiB aligned at the end of the file, filled, flushed, and
//! only then referenced by its 8-byte BAT entry, so an interrupted allocation leaves the old
//! (zero or parent) content and at worst unreferenced space. For a partly present block of a
//! differencing disk the data is written before the sector bitmap bits that expose it. BAT
//! updates are single aligned 8-byte writes made without the log: this relies on sector
//! writes being atomic, as the VHD format does.

pub mod bat;
mod checksummed;
pub mod file_identifier;
pub mod header;
pub mod log;
pub mod metadata;
pub mod region_table;

use std::collections::BTreeMap;
use std::path::Path;

use crate::block_device::{check_range, check_write, BlockDevice};
use crate::error::{Error, Result};
use crate::extent::{first_overlap, Extent};
use crate::image_file::{read_structure, ImageFile, LocalFile};
use crate::parent::{parent_paths_for_child, ParentHints};
use crate::sector_bitmap::{self, BitOrder};
use crate::vhd::{block_pieces, read_absent, ParentSource, MAX_PARENT_DEPTH};
use bat::{BatEntry, BatGeometry, MIB};
use file_identifier::FileIdentifier;
use header::{Header, HEADER_OFFSETS, HEADER_SIZE};
use metadata::Metadata;
use region_table::{
    Region, RegionTable, BAT_REGION, METADATA_REGION, REGION_TABLE_OFFSETS, REGION_TABLE_SIZE,
};
use reseal_nt::{Entropy, Guid};

const BIT_ORDER: BitOrder = BitOrder::LeastSignificantFirst;

/// A VHDX disk as a [`BlockDevice`].
pub struct Vhdx {
    file: Box<dyn ImageFile>,
    identifier: FileIdentifier,
    header: Header,
    /// Which of the two header slots holds `header`.
    current_slot: usize,
    /// Whether this session has already announced its writes in the header.
    write_session_started: bool,
    /// Where the session's new FileWriteGuid and DataWriteGuid come from.
    write_entropy: Entropy,
    metadata: Metadata,
    bat_offset: u64,
    bat: Vec<BatEntry>,
    geometry: BatGeometry,
    parent: Option<Box<dyn BlockDevice>>,
    log_entries_replayed: usize,
}

impl Vhdx {
    pub fn open(path: &Path, writable: bool) -> Result<Self> {
        Self::open_file(Box::new(LocalFile::open(path, writable)?))
    }

    pub fn open_file(file: Box<dyn ImageFile>) -> Result<Self> {
        Self::open_at_depth(file, 0)
    }

    pub(crate) fn open_at_depth(file: Box<dyn ImageFile>, depth: usize) -> Result<Self> {
        Self::open_with(file, ParentSource::Search { depth })
    }

    /// Opens a differencing VHDX whose parent is `parent`, already open: the parent locator is
    /// not followed, and only the parent's size is checked. For a child just made by
    /// [`create_differencing_child`] of that parent.
    pub(crate) fn open_with_parent(
        file: Box<dyn ImageFile>,
        parent: Box<dyn BlockDevice>,
    ) -> Result<Self> {
        Self::open_with(file, ParentSource::Given(parent))
    }

    fn open_with(mut file: Box<dyn ImageFile>, parent: ParentSource) -> Result<Self> {
        let path = file.path().to_path_buf();
        let identifier_bytes = read_structure(
            &mut *file,
            0,
            file_identifier::READ_SIZE,
            "VHDX file identifier",
        )?;
        let identifier = FileIdentifier::parse(&path, &identifier_bytes)?;
        let (mut header, mut current_slot) = read_current_header(&mut *file)?;

        // A pending log is laid over the file in memory, and what it changes is read and
        // checked through it before a writable open replays it into the file.
        let replay = if header.log_guid.is_zero() {
            log::Replay::none(file.len())
        } else {
            let location = log::LogLocation {
                guid: header.log_guid,
                offset: header.log_offset,
                length: header.log_length,
            };
            log::pending(&mut *file, &location)?
        };
        let mut overlay = log::LogOverlay::new(file, replay);
        let Layout {
            metadata,
            bat_offset,
            bat,
            geometry,
        } = read_layout(&mut overlay, (header.log_offset, header.log_length as u64))?;
        let log_entries_replayed = overlay.entries();
        let file: Box<dyn ImageFile> = if header.log_guid.is_zero() {
            overlay.into_inner()
        } else if overlay.file_is_writable() {
            let mut file = overlay.write_through()?;
            file.sync()?;
            // Both copies say the log is empty, so neither can bring the replayed log back.
            header.log_guid = Guid::ZERO;
            for _ in 0..2 {
                header.sequence_number += 1;
                current_slot = 1 - current_slot;
                file.write_at(HEADER_OFFSETS[current_slot], &header.to_bytes())?;
                file.sync()?;
            }
            file
        } else {
            Box::new(overlay)
        };

        let parent = match (metadata.has_parent, parent) {
            (true, ParentSource::Search { depth }) => Some(open_parent(&path, &metadata, depth)?),
            (true, ParentSource::Given(parent)) => {
                if parent.len() != metadata.virtual_disk_size {
                    return Err(Error::ParentMismatch {
                        path,
                        parent: parent.path().to_path_buf(),
                        reason: format!(
                            "its size is {}, the child's is {}",
                            parent.len(),
                            metadata.virtual_disk_size
                        ),
                    });
                }
                Some(parent)
            }
            (false, _) => None,
        };
        Ok(Vhdx {
            file,
            identifier,
            header,
            current_slot,
            write_session_started: false,
            write_entropy: Entropy::default(),
            metadata,
            bat_offset,
            bat,
            geometry,
            parent,
            log_entries_replayed,
        })
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// What a new differencing child of this disk records about it.
    pub(crate) fn parent_record(&self) -> ParentRecord {
        ParentRecord {
            data_write_guid: self.header.data_write_guid,
            metadata: self.metadata.clone(),
        }
    }

    pub fn creator(&self) -> &str {
        &self.identifier.creator
    }

    /// How many log entries were replayed when the file was opened.
    pub fn log_entries_replayed(&self) -> usize {
        self.log_entries_replayed
    }

    /// The sector bitmap bytes for `first_sector..end_sector` of `block`, and the bit index of
    /// `first_sector` within them.
    fn read_bitmap(
        &mut self,
        block: u64,
        first_sector: u64,
        end_sector: u64,
    ) -> Result<(Vec<u8>, u64, u64)> {
        let entry = self.bat[self.geometry.bitmap_index(block)];
        if entry.state() != bat::SECTOR_BITMAP_PRESENT {
            return Err(Error::corrupt(
                self.file.path(),
                "VHDX BAT",
                format!("block {block} is partly present but its sector bitmap block is absent"),
            ));
        }
        let sectors_per_block = self.geometry.block_size / self.metadata.logical_sector_size as u64;
        let first_bit = (block % self.geometry.chunk_ratio) * sectors_per_block + first_sector;
        let end_bit = first_bit + (end_sector - first_sector);
        let byte_start = first_bit / 8;
        let mut bytes = vec![0u8; (end_bit.div_ceil(8) - byte_start) as usize];
        let bytes_offset = entry.file_offset() + byte_start;
        self.file.read_at(bytes_offset, &mut bytes)?;
        Ok((bytes, first_bit - byte_start * 8, bytes_offset))
    }

    fn read_in_block(&mut self, block: u64, in_block: u64, out: &mut [u8]) -> Result<()> {
        let virtual_offset = block * self.geometry.block_size + in_block;
        let entry = self.bat[self.geometry.payload_index(block)];
        match entry.state() {
            bat::FULLY_PRESENT => self.file.read_at(entry.file_offset() + in_block, out),
            bat::PARTIALLY_PRESENT => {
                let sector = self.metadata.logical_sector_size as u64;
                let first_sector = in_block / sector;
                let end_sector = (in_block + out.len() as u64).div_ceil(sector);
                let (bitmap, first_bit, _) = self.read_bitmap(block, first_sector, end_sector)?;
                let present = |position: u64| {
                    sector_bitmap::is_set(
                        &bitmap,
                        first_bit + (position / sector - first_sector),
                        BIT_ORDER,
                    )
                };
                let mut done = 0usize;
                while done < out.len() {
                    let run_present = present(in_block + done as u64);
                    let mut end = done;
                    while end < out.len() && present(in_block + end as u64) == run_present {
                        let sector_end = ((in_block + end as u64) / sector + 1) * sector - in_block;
                        end = (sector_end as usize).min(out.len());
                    }
                    if run_present {
                        self.file.read_at(
                            entry.file_offset() + in_block + done as u64,
                            &mut out[done..end],
                        )?;
                    } else {
                        read_absent(
                            &mut self.parent,
                            virtual_offset + done as u64,
                            &mut out[done..end],
                        )?;
                    }
                    done = end;
                }
                Ok(())
            }
            bat::NOT_PRESENT => read_absent(&mut self.parent, virtual_offset, out),
            _ => {
                out.fill(0);
                Ok(())
            }
        }
    }

    /// Draws the FileWriteGuid and DataWriteGuid of this session's first write from `entropy`
    /// (a seeded run's, for the same bytes again) instead of the operating system.
    pub fn set_write_entropy(&mut self, entropy: Entropy) {
        self.write_entropy = entropy;
    }

    /// Announces this session's writes in the header (see the module documentation).
    fn start_write_session(&mut self) -> Result<()> {
        if self.write_session_started {
            return Ok(());
        }
        let mut header = self.header.clone();
        header.sequence_number += 1;
        let random = || {
            Guid::random_from(&self.write_entropy)
                .map_err(|err| Error::no_random(self.file.path(), err))
        };
        header.file_write_guid = random()?;
        header.data_write_guid = random()?;
        let slot = 1 - self.current_slot;
        self.file
            .write_at(HEADER_OFFSETS[slot], &header.to_bytes())?;
        self.file.order_writes()?;
        self.header = header;
        self.current_slot = slot;
        self.write_session_started = true;
        Ok(())
    }

    /// Appends a zero-filled, 1 MiB aligned block of `size` bytes and returns its offset.
    fn append_block(&mut self, size: u64) -> Result<u64> {
        let offset = self.file.len().next_multiple_of(MIB);
        self.file.set_len(offset + size)?;
        Ok(offset)
    }

    fn set_bat_entry(&mut self, index: usize, entry: BatEntry) -> Result<()> {
        self.file
            .write_at(self.bat_offset + index as u64 * 8, &entry.0.to_le_bytes())?;
        self.bat[index] = entry;
        Ok(())
    }

    fn write_in_block(&mut self, block: u64, in_block: u64, data: &[u8]) -> Result<()> {
        let index = self.geometry.payload_index(block);
        let entry = self.bat[index];
        match entry.state() {
            bat::FULLY_PRESENT => self.file.write_at(entry.file_offset() + in_block, data),
            bat::PARTIALLY_PRESENT => self.write_partial(block, entry, in_block, data),
            bat::NOT_PRESENT if self.parent.is_some() => {
                let bitmap_index = self.geometry.bitmap_index(block);
                if self.bat[bitmap_index].state() != bat::SECTOR_BITMAP_PRESENT {
                    let bitmap_offset = self.append_block(MIB)?;
                    self.file.order_writes()?;
                    self.set_bat_entry(
                        bitmap_index,
                        BatEntry::new(bat::SECTOR_BITMAP_PRESENT, bitmap_offset),
                    )?;
                }
                let offset = self.append_block(self.geometry.block_size)?;
                self.file.order_writes()?;
                // No bitmap bit is set yet, so the block still shows the parent.
                let entry = BatEntry::new(bat::PARTIALLY_PRESENT, offset);
                self.set_bat_entry(index, entry)?;
                self.write_partial(block, entry, in_block, data)
            }
            _ => {
                // Absent, zero, unmapped or undefined: all read as zeros, like a new block.
                let offset = self.append_block(self.geometry.block_size)?;
                self.file.write_at(offset + in_block, data)?;
                self.file.order_writes()?;
                self.set_bat_entry(index, BatEntry::new(bat::FULLY_PRESENT, offset))
            }
        }
    }

    fn write_partial(
        &mut self,
        block: u64,
        entry: BatEntry,
        in_block: u64,
        data: &[u8],
    ) -> Result<()> {
        let sector = self.metadata.logical_sector_size as u64;
        let first_sector = in_block / sector;
        let end_sector = (in_block + data.len() as u64).div_ceil(sector);
        let span_start = first_sector * sector;
        // Whole sectors become present, so partial sectors keep the bytes the disk shows now.
        let mut merged = vec![0u8; ((end_sector - first_sector) * sector) as usize];
        self.read_in_block(block, span_start, &mut merged)?;
        let at = (in_block - span_start) as usize;
        merged[at..at + data.len()].copy_from_slice(data);
        self.file
            .write_at(entry.file_offset() + span_start, &merged)?;
        let (mut bitmap, first_bit, bitmap_offset) =
            self.read_bitmap(block, first_sector, end_sector)?;
        for bit in first_bit..first_bit + (end_sector - first_sector) {
            sector_bitmap::set(&mut bitmap, bit, BIT_ORDER);
        }
        self.file.write_at(bitmap_offset, &bitmap)
    }
}

impl BlockDevice for Vhdx {
    fn path(&self) -> &Path {
        self.file.path()
    }

    fn len(&self) -> u64 {
        self.metadata.virtual_disk_size
    }

    fn logical_sector_size(&self) -> u32 {
        self.metadata.logical_sector_size
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<()> {
        check_range(self.file.path(), offset, buf.len(), self.len())?;
        for (block, in_block, at, len) in block_pieces(offset, buf.len(), self.geometry.block_size)
        {
            self.read_in_block(block as u64, in_block, &mut buf[at..at + len])?;
        }
        Ok(())
    }

    fn write_at(&mut self, offset: u64, buf: &[u8]) -> Result<()> {
        check_write(&*self.file, offset, buf.len(), self.len())?;
        self.start_write_session()?;
        for (block, in_block, at, len) in block_pieces(offset, buf.len(), self.geometry.block_size)
        {
            self.write_in_block(block as u64, in_block, &buf[at..at + len])?;
        }
        Ok(())
    }

    fn container_format(&self) -> Option<crate::Format> {
        Some(crate::Format::Vhdx)
    }

    fn backing_device(&self) -> Option<&dyn BlockDevice> {
        self.parent.as_deref()
    }

    fn flush(&mut self) -> Result<()> {
        self.file.sync()
    }
}

/// The regions, metadata and BAT of a VHDX, read and checked.
struct Layout {
    metadata: Metadata,
    bat_offset: u64,
    bat: Vec<BatEntry>,
    geometry: BatGeometry,
}

/// `log` is the log's file offset and length, which no region or block may overlap.
fn read_layout(file: &mut dyn ImageFile, log: (u64, u64)) -> Result<Layout> {
    let path = file.path().to_path_buf();
    let regions = read_region_table(&mut *file)?;
    let find_region = |guid, name: &'static str| -> Result<Region> {
        let region = regions.find(guid).ok_or_else(|| {
            Error::corrupt(&path, "VHDX region table", format!("no {name} region"))
        })?;
        let end = region.file_offset.saturating_add(region.length as u64);
        if region.file_offset < MIB || region.file_offset % MIB != 0 || end > file.len() {
            return Err(Error::corrupt(
                &path,
                "VHDX region table",
                format!(
                    "the {name} region ({} bytes at {}) is misaligned or past the end of the file ({} bytes)",
                    region.length, region.file_offset, file.len()
                ),
            ));
        }
        Ok(region)
    };
    let metadata_region = find_region(METADATA_REGION, "metadata")?;
    let bat_region = find_region(BAT_REGION, "BAT")?;
    let in_use = [
        Extent::new("the log", log.0, log.1),
        Extent::new(
            "the metadata region",
            metadata_region.file_offset,
            metadata_region.length as u64,
        ),
        Extent::new(
            "the BAT region",
            bat_region.file_offset,
            bat_region.length as u64,
        ),
    ];
    if let Some((first, second)) = first_overlap(&in_use) {
        return Err(Error::corrupt(
            &path,
            "VHDX region table",
            format!("{first} and {second} overlap"),
        ));
    }
    let metadata_bytes = read_structure(
        &mut *file,
        metadata_region.file_offset,
        metadata_region.length as usize,
        "VHDX metadata",
    )?;
    let metadata = Metadata::parse(&path, &metadata_bytes)?;

    let geometry = BatGeometry::new(
        metadata.virtual_disk_size,
        metadata.block_size,
        metadata.logical_sector_size,
        metadata.has_parent,
    );
    if geometry.total_entries * 8 > bat_region.length as u64 {
        return Err(Error::corrupt(
            &path,
            "VHDX BAT",
            format!(
                "{} entries do not fit in the {}-byte BAT region",
                geometry.total_entries, bat_region.length
            ),
        ));
    }
    let bat_bytes = read_structure(
        &mut *file,
        bat_region.file_offset,
        (geometry.total_entries * 8) as usize,
        "VHDX BAT",
    )?;
    let bat = bat::parse_entries(&bat_bytes);
    check_bat(
        &path,
        &bat,
        &geometry,
        metadata.has_parent,
        file.len(),
        &in_use,
    )?;
    Ok(Layout {
        metadata,
        bat_offset: bat_region.file_offset,
        bat,
        geometry,
    })
}

fn read_current_header(file: &mut dyn ImageFile) -> Result<(Header, usize)> {
    let path = file.path().to_path_buf();
    let mut parsed = Vec::new();
    for (slot, offset) in HEADER_OFFSETS.iter().enumerate() {
        let structure = ["VHDX header 1", "VHDX header 2"][slot];
        let bytes = read_structure(file, *offset, HEADER_SIZE, structure)?;
        parsed.push(Header::parse(&path, &bytes, slot));
    }
    let second = parsed.pop().expect("two headers");
    let first = parsed.pop().expect("two headers");
    match (first, second) {
        (Ok(a), Ok(b)) if b.sequence_number > a.sequence_number => Ok((b, 1)),
        (Ok(a), _) => Ok((a, 0)),
        (Err(_), Ok(b)) => Ok((b, 1)),
        (Err(a), Err(b)) => Err(Error::corrupt(
            &path,
            "VHDX headers",
            format!("neither copy is valid ({a}; {b})"),
        )),
    }
}

fn read_region_table(file: &mut dyn ImageFile) -> Result<RegionTable> {
    let path = file.path().to_path_buf();
    let mut errors = Vec::new();
    for (which, offset) in REGION_TABLE_OFFSETS.iter().enumerate() {
        let bytes = read_structure(file, *offset, REGION_TABLE_SIZE, "VHDX region table")?;
        match RegionTable::parse(&path, &bytes, which) {
            Ok(table) => {
                if let Some(unknown) = table
                    .regions
                    .iter()
                    .find(|r| r.required && r.guid != BAT_REGION && r.guid != METADATA_REGION)
                {
                    return Err(Error::unsupported(
                        &path,
                        "VHDX region table",
                        format!("required region {} is unknown", unknown.guid),
                    ));
                }
                return Ok(table);
            }
            Err(error) => errors.push(error.to_string()),
        }
    }
    Err(Error::corrupt(
        &path,
        "VHDX region tables",
        format!("neither copy is valid ({})", errors.join("; ")),
    ))
}

/// Every BAT entry has a state valid for its kind of block and disk (MS-VHDX 2.5.1), and every
/// block in the file lies after the first MiB, within the file, and clear of the log, the
/// regions (`in_use`) and every other block.
fn check_bat(
    path: &Path,
    bat: &[BatEntry],
    geometry: &BatGeometry,
    has_parent: bool,
    file_len: u64,
    in_use: &[Extent],
) -> Result<()> {
    let mut present = Vec::new();
    for (index, entry) in bat.iter().enumerate() {
        let is_bitmap = (index as u64 + 1) % (geometry.chunk_ratio + 1) == 0;
        let size = if is_bitmap { MIB } else { geometry.block_size };
        let in_file = match (is_bitmap, entry.state()) {
            (true, bat::NOT_PRESENT) => false,
            // Only differencing disks have sector bitmaps, and blocks they make partial.
            (true, bat::SECTOR_BITMAP_PRESENT) if has_parent => true,
            (false, bat::NOT_PRESENT | bat::UNDEFINED | bat::ZERO | bat::UNMAPPED) => false,
            (false, bat::FULLY_PRESENT) => true,
            (false, bat::PARTIALLY_PRESENT) if has_parent => true,
            (_, state) => {
                let kind = if is_bitmap {
                    "sector bitmap"
                } else {
                    "payload"
                };
                let disk = if has_parent {
                    "a differencing"
                } else {
                    "a fixed or dynamic"
                };
                return Err(Error::corrupt(
                    path,
                    "VHDX BAT",
                    format!(
                        "entry {index} (at BAT offset {}) has state {state}, not valid for a {kind} block of {disk} disk",
                        index * 8
                    ),
                ));
            }
        };
        if !in_file {
            continue;
        }
        let block = Extent::new(
            format!("the block of BAT entry {index}"),
            entry.file_offset(),
            size,
        );
        if block.start < MIB || block.end() > file_len {
            return Err(Error::corrupt(
                path,
                "VHDX BAT",
                format!("{block} lies outside the file ({file_len} bytes) or in its first MiB"),
            ));
        }
        present.push(block);
    }
    present.extend_from_slice(in_use);
    if let Some((first, second)) = first_overlap(&present) {
        return Err(Error::corrupt(
            path,
            "VHDX BAT",
            format!("{first} and {second} overlap"),
        ));
    }
    Ok(())
}

fn parse_braced_guid(text: &str) -> Option<Guid> {
    text.parse().ok()
}

/// Opens the parent named in the parent locator and checks its DataWriteGuid against
/// `parent_linkage`: a parent written since the child was made no longer matches it.
fn open_parent(path: &Path, metadata: &Metadata, depth: usize) -> Result<Box<dyn BlockDevice>> {
    if depth >= MAX_PARENT_DEPTH {
        return Err(Error::unsupported(
            path,
            "VHDX differencing chain",
            format!("more than {MAX_PARENT_DEPTH} parents (a loop?)"),
        ));
    }
    let locator = &metadata.parent_locator;
    let linkage = locator
        .get("parent_linkage")
        .and_then(|text| parse_braced_guid(text))
        .ok_or_else(|| Error::corrupt(path, "VHDX parent locator", "no valid parent_linkage"))?;
    let alternate_linkage = locator
        .get("parent_linkage2")
        .and_then(|text| parse_braced_guid(text));
    let mut hints = ParentHints::default();
    hints.relative.extend(locator.get("relative_path").cloned());
    for key in ["absolute_win32_path", "volume_path"] {
        hints.absolute.extend(locator.get(key).cloned());
    }
    let parent_name = locator
        .get("relative_path")
        .or(locator.get("absolute_win32_path"))
        .cloned()
        .unwrap_or_default();
    let (parent, parent_path) = hints.open_first(path, &parent_name, |file| {
        Vhdx::open_at_depth(file, depth + 1)
    })?;
    let parent_data = parent.header.data_write_guid;
    if parent_data != linkage && Some(parent_data) != alternate_linkage {
        return Err(Error::ParentMismatch {
            path: path.to_path_buf(),
            parent: parent_path.clone(),
            reason: format!(
                "its DataWriteGuid is {parent_data}, the child's parent_linkage is {linkage}; the parent was modified after the child was made"
            ),
        });
    }
    if parent.metadata.virtual_disk_size != metadata.virtual_disk_size {
        return Err(Error::ParentMismatch {
            path: path.to_path_buf(),
            parent: parent_path.clone(),
            reason: format!(
                "its size is {}, the child's is {}",
                parent.metadata.virtual_disk_size, metadata.virtual_disk_size
            ),
        });
    }
    Ok(Box::new(parent))
}

/// Creates an empty differencing VHDX at `child_path` whose parent is the VHDX at `parent_path`.
///
/// Layout: identifier, headers and region tables in the first MiB, a 1 MiB log, the metadata
/// region at 2 MiB, the BAT at 3 MiB.
pub fn create_differencing(parent_path: &Path, child_path: &Path) -> Result<()> {
    let parent = Vhdx::open(parent_path, false)?;
    create_differencing_child(
        &parent.parent_record(),
        parent_path,
        child_path,
        &Entropy::default(),
    )
}

/// What a differencing child records about its parent VHDX (see [`Vhdx::parent_record`]).
#[derive(Clone, Debug)]
pub(crate) struct ParentRecord {
    data_write_guid: Guid,
    metadata: Metadata,
}

/// [`create_differencing`] for a parent already open, described by `parent`: the parent file
/// is not read. The child's GUIDs (page 83 data, FileWriteGuid, DataWriteGuid) are drawn from
/// `entropy`.
pub(crate) fn create_differencing_child(
    parent: &ParentRecord,
    parent_path: &Path,
    child_path: &Path,
    entropy: &Entropy,
) -> Result<()> {
    let (parent_absolute, relative) = parent_paths_for_child(parent_path, child_path)?;
    let random = || Guid::random_from(entropy).map_err(|err| Error::no_random(child_path, err));

    let mut parent_locator = BTreeMap::new();
    parent_locator.insert(
        "parent_linkage".to_string(),
        format!("{{{}}}", parent.data_write_guid),
    );
    if let Some(relative) = relative {
        parent_locator.insert("relative_path".to_string(), relative);
    }
    parent_locator.insert(
        "absolute_win32_path".to_string(),
        parent_absolute.to_string_lossy().into_owned(),
    );
    let metadata = Metadata {
        has_parent: true,
        leave_blocks_allocated: false,
        page_83_data: Some(random()?),
        parent_locator,
        ..parent.metadata.clone()
    };
    let geometry = BatGeometry::new(
        metadata.virtual_disk_size,
        metadata.block_size,
        metadata.logical_sector_size,
        true,
    );
    let (log_offset, metadata_offset, bat_offset) = (MIB, 2 * MIB, 3 * MIB);
    let bat_length = (geometry.total_entries * 8).next_multiple_of(MIB);
    let regions = RegionTable {
        regions: vec![
            Region {
                guid: BAT_REGION,
                file_offset: bat_offset,
                length: bat_length as u32,
                required: true,
            },
            Region {
                guid: METADATA_REGION,
                file_offset: metadata_offset,
                length: MIB as u32,
                required: true,
            },
        ],
    };
    let header = Header {
        sequence_number: 1,
        file_write_guid: random()?,
        data_write_guid: random()?,
        log_guid: Guid::ZERO,
        log_version: 0,
        version: 1,
        log_length: MIB as u32,
        log_offset,
    };

    let mut child = LocalFile::create(child_path)?;
    child.set_len(bat_offset + bat_length)?;
    child.write_at(
        0,
        &FileIdentifier {
            creator: "reseal".into(),
        }
        .to_bytes(),
    )?;
    let region_bytes = regions.to_bytes();
    for offset in REGION_TABLE_OFFSETS {
        child.write_at(offset, &region_bytes)?;
    }
    child.write_at(metadata_offset, &metadata.to_region_bytes(MIB as usize))?;
    child.write_at(HEADER_OFFSETS[0], &header.to_bytes())?;
    let second = Header {
        sequence_number: 2,
        ..header
    };
    child.write_at(HEADER_OFFSETS[1], &second.to_bytes())?;
    child.sync()
}
