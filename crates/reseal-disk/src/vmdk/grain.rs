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
