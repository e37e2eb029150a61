//! A hosted sparse extent's grain directory and grain tables: where each grain of the extent
//! is in its file, and new grains appended at the end of it.
//!
//! A grain directory entry is the sector of a grain table (0: none); a grain table entry is
//! the sector of a grain (0: not allocated, read from the parent or as zeros; 1 with the
//! zero-grain flag: zeros). With the redundant-grain-table flag a second directory points to
//! copies of the tables, which are kept equal.

use std::collections::HashMap;

use super::sparse_header::SparseHeader;
use super::stream_optimized;
use crate::error::{Error, Result};
use crate::image_file::{read_structure, ImageFile};

/// The grain table entry of a zero grain (with the zero-grain flag).
const ZERO_GRAIN: u32 = 1;

/// Where one grain's data is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Grain {
    /// Not in this extent: the parent's data, or zeros.
    Unallocated,
    Zero,
    /// Stored as it is at this file offset.
    Data(u64),
    /// Stored compressed at this file offset.
    Compressed(u64),
}

pub(crate) struct SparseExtent {
    pub file: Box<dyn ImageFile>,
    pub header: SparseHeader,
    /// The header's gdOffset was GD_AT_END: the directory is found through the footer at the
    /// end of the file (`header` is the footer's copy).
    pub directory_in_footer: bool,
    directory: Vec<u32>,
    redundant_directory: Option<Vec<u32>>,
    tables: HashMap<usize, Vec<u32>>,
    /// The last compressed grain inflated (its file offset and bytes): reads come in pieces
    /// smaller than a grain (a file system's 4 KiB clusters), and each piece of a 64 KiB grain
    /// would otherwise inflate the whole grain again.
    last_inflated: Option<(u64, Vec<u8>)>,
    /// How many compressed grains were inflated, for the tests of that cache.
    grains_inflated: u64,
}

/// The most grain table bytes kept in memory; the cache is emptied when it grows past this.
const TABLE_CACHE_BYTES: usize = 64 << 20;

fn read_directory(
    file: &mut dyn ImageFile,
    header: &SparseHeader,
    sector: u64,
    structure: &'static str,
) -> Result<Vec<u32>> {
    let entries = header.grain_tables();
    let length = entries.saturating_mul(4);
    let offset = sector.saturating_mul(512);
    if length > file.len() {
        return Err(Error::corrupt(
            file.path(),
            structure,
            format!(
                "{entries} entries at offset {offset} reach past the end of the file ({} bytes)",
                file.len()
            ),
        ));
    }
    let bytes = read_structure(file, offset, length as usize, structure)?;
    Ok(bytes
        .chunks_exact(4)
        .map(|entry| crate::bytes::le_u32(entry, 0))
        .collect())
}

impl SparseExtent {
    pub fn open(mut file: Box<dyn ImageFile>, header: SparseHeader) -> Result<SparseExtent> {
        let directory_in_footer = header.gd_offset == super::sparse_header::GD_AT_END;
        let header = stream_optimized::effective_header(&mut *file, header)?;
        let directory = read_directory(
            &mut *file,
            &header,
            header.gd_offset,
            "VMDK grain directory",
        )?;
        let redundant_directory = if header.has_redundant_grain_table() && header.rgd_offset != 0 {
            Some(read_directory(
                &mut *file,
                &header,
                header.rgd_offset,
                "VMDK redundant grain directory",
            )?)
        } else {
            None
        };
        Ok(SparseExtent {
            file,
            header,
            directory_in_footer,
            directory,
            redundant_directory,
            tables: HashMap::new(),
            last_inflated: None,
            grains_inflated: 0,
        })
    }

    fn table(&mut self, index: usize) -> Result<Option<&mut Vec<u32>>> {
        let sector = self.directory[index];
        if sector == 0 {
            return Ok(None);
        }
        if !self.tables.contains_key(&index) {
            if self.tables.len() * self.header.gtes_per_gt as usize * 4 >= TABLE_CACHE_BYTES {
                self.tables.clear();
            }
            let length = self.header.gtes_per_gt as usize * 4;
            let bytes = read_structure(
                &mut *self.file,
                u64::from(sector) * 512,
                length,
                "VMDK grain table",
            )?;
            let table = bytes
                .chunks_exact(4)
                .map(|entry| crate::bytes::le_u32(entry, 0))
                .collect();
            self.tables.insert(index, table);
        }
        Ok(self.tables.get_mut(&index))
    }

    fn position(&self, grain: u64) -> (usize, usize) {
        let per_table = u64::from(self.header.gtes_per_gt);
        ((grain / per_table) as usize, (grain % per_table) as usize)
    }

    /// The sectors of the directories and grain tables (and of the header and an embedded
    /// descriptor): what a grain must not overlap. Each as (first sector, sector after the
    /// last, structure).
    fn metadata_sectors(&self) -> Vec<(u64, u64, &'static str)> {
        let header = &self.header;
        let directory_sectors = header.grain_tables().saturating_mul(4).div_ceil(512);
        let table_sectors = (u64::from(header.gtes_per_gt) * 4).div_ceil(512);
        let mut metadata = vec![(0, 1, "sparse extent header")];
        if header.descriptor_offset != 0 && header.descriptor_size != 0 {
            metadata.push((
                header.descriptor_offset,
                header
                    .descriptor_offset
                    .saturating_add(header.descriptor_size),
                "embedded descriptor",
            ));
        }
        let directories = [
            (
                Some(&self.directory),
                header.gd_offset,
                "grain directory",
                "grain table",
            ),
            (
                self.redundant_directory.as_ref(),
                header.rgd_offset,
                "redundant grain directory",
                "redundant grain table",
            ),
        ];
        for (directory, sector, name, table_name) in directories {
            let Some(directory) = directory else {
                continue;
            };
            metadata.push((sector, sector.saturating_add(directory_sectors), name));
            for &table in directory.iter().filter(|&&table| table != 0) {
                let table = u64::from(table);
                metadata.push((table, table + table_sectors, table_name));
            }
        }
        metadata
    }

    /// Refuses an extent to be written when a grain overlaps its header, descriptor,
    /// directories or grain tables, or another grain: a write in place into that grain would
    /// overwrite them. Every grain table is read once; the grains' sectors are kept sorted.
    pub fn check_layout_for_writing(&mut self) -> Result<()> {
        let grain_sectors = self.header.grain_size;
        let zero_grain = self.header.has_zero_grain();
        let mut grains = Vec::new();
        for index in 0..self.directory.len() {
            if let Some(table) = self.table(index)? {
                grains.extend(
                    table
                        .iter()
                        .copied()
                        .filter(|&entry| entry != 0 && !(zero_grain && entry == ZERO_GRAIN)),
                );
            }
        }
        grains.sort_unstable();
        let mut metadata = self.metadata_sectors();
        metadata.sort_unstable();
        for pair in metadata.windows(2) {
            let ((start, end, name), (next_start, next_end, next_name)) = (pair[0], pair[1]);
            if next_start < end {
                return Err(Error::corrupt(
                    self.file.path(),
                    "VMDK grain directory",
                    format!(
                        "the {next_name} at sectors {next_start}..{next_end} overlaps the {name} at sectors {start}..{end}"
                    ),
                ));
            }
        }
        for (start, end, name) in metadata {
            // The first grain ending after `start`; it overlaps if it begins before `end`.
            let index =
                grains.partition_point(|&sector| u64::from(sector) + grain_sectors <= start);
            if let Some(&sector) = grains.get(index).filter(|&&sector| u64::from(sector) < end) {
                let grain = self.grains_at_sector(sector)?.first().copied();
                return Err(self.overlap(
                    sector,
                    grain,
                    &format!("the {name} at sectors {start}..{end}"),
                ));
            }
        }
        for pair in grains.windows(2) {
            let (first, second) = (u64::from(pair[0]), u64::from(pair[1]));
            if second < first + grain_sectors {
                let at_first = self.grains_at_sector(pair[0])?;
                let at_second = self.grains_at_sector(pair[1])?;
                // Cross-linked (the same sector twice): the second grain pointing there.
                let other = at_second.get(usize::from(first == second)).copied();
                return Err(self.overlap(
                    pair[0],
                    at_first.first().copied(),
                    &other.map_or("another grain".to_string(), |grain| {
                        format!("grain {grain} at sector {second}")
                    }),
                ));
            }
        }
        Ok(())
    }

    /// The refusal of a grain at `sector` (grain number `grain`) that overlaps `other`.
    fn overlap(&self, sector: u32, grain: Option<u64>, other: &str) -> Error {
        let grain = grain.map_or("a grain".to_string(), |grain| format!("grain {grain}"));
        Error::corrupt(
            self.file.path(),
            "VMDK grain table",
            format!(
                "{grain} is at sector {sector} and so overlaps {other}; a write into it would overwrite that, so the extent is not written"
            ),
        )
    }

    /// The grains whose table entry is `sector`, to name them in a refusal.
    fn grains_at_sector(&mut self, sector: u32) -> Result<Vec<u64>> {
        let per_table = u64::from(self.header.gtes_per_gt);
        let mut grains = Vec::new();
        for index in 0..self.directory.len() {
            if let Some(table) = self.table(index)? {
                let first = index as u64 * per_table;
                grains.extend(
                    (0..table.len())
                        .filter(|&entry| table[entry] == sector)
                        .map(|entry| first + entry as u64),
                );
            }
        }
        Ok(grains)
    }

    /// Where grain `grain` of this extent is.
    pub fn grain(&mut self, grain: u64) -> Result<Grain> {
        let (table_index, entry_index) = self.position(grain);
        let Some(table) = self.table(table_index)? else {
            return Ok(Grain::Unallocated);
        };
        let entry = table[entry_index];
        let zero_grain = self.header.has_zero_grain();
        let compressed = self.header.is_compressed();
        let grain_bytes = self.header.grain_bytes();
        Ok(match entry {
            0 => Grain::Unallocated,
            ZERO_GRAIN if zero_grain => Grain::Zero,
            sector => {
                let host = u64::from(sector) * 512;
                let needed = if compressed { 1 } else { grain_bytes };
                if host.saturating_add(needed) > self.file.len() {
                    return Err(Error::corrupt(
                        self.file.path(),
                        "VMDK grain table",
                        format!(
                            "grain {grain} is at sector {sector}, past the end of the file ({} bytes)",
                            self.file.len()
                        ),
                    ));
                }
                if compressed {
                    Grain::Compressed(host)
                } else {
                    Grain::Data(host)
                }
            }
        })
    }

    /// Reads `out.len()` bytes of an allocated grain, `within` bytes into it.
    pub fn read_grain(
        &mut self,
        grain: u64,
        mapping: Grain,
        within: u64,
        out: &mut [u8],
    ) -> Result<()> {
        match mapping {
            Grain::Data(host) => self.file.read_at(host + within, out),
            Grain::Compressed(host) => {
                let data = match &self.last_inflated {
                    Some((at, data)) if *at == host => data,
                    _ => {
                        let data = stream_optimized::read_compressed_grain(
                            &mut *self.file,
                            &self.header,
                            grain,
                            host,
                        )?;
                        self.grains_inflated += 1;
                        &self.last_inflated.insert((host, data)).1
                    }
                };
                out.copy_from_slice(&data[within as usize..within as usize + out.len()]);
                Ok(())
            }
            Grain::Zero | Grain::Unallocated => {
                out.fill(0);
                Ok(())
            }
        }
    }

    /// How many compressed grains were inflated since the extent was opened.
    #[cfg(test)]
    pub fn grains_inflated(&self) -> u64 {
        self.grains_inflated
    }

    /// Appends `content` (one whole grain) at the end of the file and points grain `grain` at
    /// it: the data, then the grain table entry, then its redundant copy, each flushed, so a
    /// crash leaves the old mapping, or the new one with its data, and at worst a leaked grain.
    /// A grain whose directory entry is 0 first gets a grain table ([`Self::add_table`]).
    pub fn allocate(&mut self, grain: u64, content: &[u8]) -> Result<()> {
        let (table_index, entry_index) = self.position(grain);
        if self.directory[table_index] == 0 {
            self.add_table(table_index)?;
        }
        let table_sector = self.directory[table_index];
        let sector = self.append(content, "VMDK grain")?;
        self.file.order_writes()?;
        let entry_at = u64::from(table_sector) * 512 + entry_index as u64 * 4;
        self.file.write_at(entry_at, &sector.to_le_bytes())?;
        self.file.order_writes()?;
        let redundant_sector = self
            .redundant_directory
            .as_ref()
            .map_or(0, |directory| directory[table_index]);
        if redundant_sector != 0 {
            let redundant_at = u64::from(redundant_sector) * 512 + entry_index as u64 * 4;
            self.file.write_at(redundant_at, &sector.to_le_bytes())?;
            self.file.order_writes()?;
        }
        if let Some(table) = self.table(table_index)? {
            table[entry_index] = sector;
        }
        Ok(())
    }

    /// Gives directory entry `table_index` a grain table of zeros (all its grains unallocated,
    /// as the entry 0 said), appended at the end of the file, and the redundant directory one
    /// of its own: each table written and flushed before the directory entry that points to
    /// it, so a crash leaves the entry 0 or pointing at zeros, which read alike. qemu and
    /// VMware make every table when they make the disk; other writers may leave entries 0.
    fn add_table(&mut self, table_index: usize) -> Result<()> {
        let zeros = vec![0u8; self.header.gtes_per_gt as usize * 4];
        let directories = [
            (self.header.gd_offset, false),
            (self.header.rgd_offset, true),
        ];
        for (directory_sector, redundant) in directories {
            if redundant && self.redundant_directory.is_none() {
                continue;
            }
            let sector = self.append(&zeros, "VMDK grain table")?;
            self.file.order_writes()?;
            let entry_at = directory_sector * 512 + table_index as u64 * 4;
            self.file.write_at(entry_at, &sector.to_le_bytes())?;
            self.file.order_writes()?;
            match (redundant, self.redundant_directory.as_mut()) {
                (true, Some(directory)) => directory[table_index] = sector,
                _ => self.directory[table_index] = sector,
            }
        }
        Ok(())
    }

    /// Writes `content` at the first sector boundary at or after the end of the file and
    /// returns that sector.
    fn append(&mut self, content: &[u8], structure: &'static str) -> Result<u32> {
        let host = self.file.len().div_ceil(512) * 512;
        let sector = u32::try_from(host / 512).map_err(|_| {
            Error::unsupported(
                self.file.path(),
                structure,
                format!("offset {host} lies past what a 32-bit sector number reaches"),
            )
        })?;
        self.file.write_at(host, content)?;
        Ok(sector)
    }
}
