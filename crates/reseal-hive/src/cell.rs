//! Cells: the allocation units inside hive bins.
//!
//! A cell starts with a signed 32-bit size that includes the size field itself: negative means
//! allocated, positive means free. Cells are 8-byte aligned and never cross the end of their bin.
//! Cell offsets are relative to the start of the hive bins data (file offset minus 4096); the value
//! `0xFFFFFFFF` means "no cell".
//!
//! [`Store`] owns the hive file bytes and hands out the data of allocated cells after checking all
//! of the above, so the record parsers only ever see bytes that belong to one cell.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Mutex;

use crate::base_block::BASE_BLOCK_SIZE;
use crate::hbin::{self, Bin};
use crate::{Error, Result};
use reseal_nt::le;

/// "No cell" in offset fields.
pub(crate) const NIL: u32 = 0xFFFF_FFFF;
/// Size of the cell size field.
pub(crate) const SIZE_FIELD: u32 = 4;
/// Cells are sized and placed in multiples of this.
pub(crate) const CELL_ALIGNMENT: u32 = 8;

/// The file offset of cell offset `offset` (for messages).
pub(crate) fn file_offset(offset: u32) -> u64 {
    BASE_BLOCK_SIZE as u64 + u64::from(offset)
}

pub(crate) fn write_u32(data: &mut [u8], at: usize, value: u32) {
    data[at..at + 4].copy_from_slice(&value.to_le_bytes());
}

pub(crate) fn write_u64(data: &mut [u8], at: usize, value: u64) {
    data[at..at + 8].copy_from_slice(&value.to_le_bytes());
}

/// Checks that a record's cell data is at least `needed` bytes long.
pub(crate) fn require_len(data: &[u8], needed: usize, offset: u32, what: &str) -> Result<()> {
    if data.len() < needed {
        return Err(Error::corrupt(
            file_offset(offset),
            format!("{what} needs {needed} bytes, its cell holds {}", data.len()),
        ));
    }
    Ok(())
}

/// Checks a record's two-byte signature.
pub(crate) fn require_signature(data: &[u8], expected: &'static str, offset: u32) -> Result<()> {
    let found = data.get(..2).unwrap_or(data);
    if found != expected.as_bytes() {
        return Err(Error::BadSignature {
            offset: file_offset(offset) + u64::from(SIZE_FIELD),
            expected,
            found: String::from_utf8_lossy(found).into_owned(),
        });
    }
    Ok(())
}

/// The hive file bytes with their bins, and (once an edit needs it) the free cells.
pub(crate) struct Store {
    pub(crate) bytes: Vec<u8>,
    pub(crate) bins: Vec<Bin>,
    /// The bin holding each 4096-byte page of the hive bins data ([`hbin::bin_containing`] for
    /// every page, computed once: every cell access needs its bin).
    page_bins: Vec<Bin>,
    /// The hive bins data size (grows when bins are appended; written to the base block on commit).
    pub(crate) bins_size: u32,
    /// Free cells by offset, with their sizes; built on the first allocation or free.
    pub(crate) free_cells: Option<BTreeMap<u32, u32>>,
    /// The same free cells as (size, offset), for best-fit allocation; kept in step with
    /// `free_cells`.
    pub(crate) free_by_size: BTreeSet<(u32, u32)>,
    /// One bit per 8-byte unit of the hive bins data, set where a cell of a bin's cell chain
    /// starts (allocated or free); built with `free_cells`. While it exists, every cell access
    /// must land on a chain start: a reference into the middle of another cell (overlapping
    /// cells) would otherwise let an edit overwrite or free cells that other keys still use.
    pub(crate) cell_starts: Option<Vec<u64>>,
    /// Keys `Hive::check_key` found sound. After the check only this engine writes the bytes,
    /// and what it writes is sound, so a key is checked once, not at every edit that goes
    /// through it (an edit in a list of 50,000 subkeys would otherwise read all of them); a
    /// freed cell leaves the set, as another cell may come to stand there.
    pub(crate) checked_keys: Mutex<HashSet<u32>>,
}

impl Store {
    /// Reads the bins of `bytes` (base block already checked) up to `bins_size`.
    pub(crate) fn new(bytes: Vec<u8>, bins_size: u32) -> Result<Store> {
        let end = BASE_BLOCK_SIZE as u64 + u64::from(bins_size);
        if (bytes.len() as u64) < end {
            return Err(Error::Truncated {
                offset: BASE_BLOCK_SIZE as u64,
                what: "hive bins data",
                needed: u64::from(bins_size),
                available: bytes.len().saturating_sub(BASE_BLOCK_SIZE) as u64,
            });
        }
        let bins = hbin::parse_bins(&bytes[BASE_BLOCK_SIZE..end as usize])?;
        let mut store = Store {
            bytes,
            bins,
            page_bins: Vec::new(),
            bins_size,
            free_cells: None,
            free_by_size: BTreeSet::new(),
            cell_starts: None,
            checked_keys: Mutex::new(HashSet::new()),
        };
        store.index_new_pages();
        Ok(store)
    }

    /// Extends the page-to-bin table over bins appended since it was last extended.
    pub(crate) fn index_new_pages(&mut self) {
        let pages = self.bins_size / hbin::BIN_ALIGNMENT;
        for page in self.page_bins.len() as u32..pages {
            match hbin::bin_containing(&self.bins, page * hbin::BIN_ALIGNMENT) {
                Some(bin) => self.page_bins.push(bin),
                None => break,
            }
        }
    }

    /// `true` when `offset` starts a cell of its bin's chain, or when the chain is not indexed
    /// (reading alone never needs it).
    fn is_cell_start(&self, offset: u32) -> bool {
        let unit = (offset / CELL_ALIGNMENT) as usize;
        self.cell_starts.as_ref().is_none_or(|bits| {
            bits.get(unit / 64)
                .is_some_and(|word| word & (1 << (unit % 64)) != 0)
        })
    }

    /// Marks (`true`) or unmarks the cell chain start at `offset` in the index, if it exists.
    pub(crate) fn set_cell_start(&mut self, offset: u32, start: bool) {
        let unit = (offset / CELL_ALIGNMENT) as usize;
        if let Some(bits) = self.cell_starts.as_mut() {
            if bits.len() <= unit / 64 {
                bits.resize(unit / 64 + 1, 0);
            }
            if start {
                bits[unit / 64] |= 1 << (unit % 64);
            } else {
                bits[unit / 64] &= !(1 << (unit % 64));
            }
        }
    }

    /// The bin holding `offset`, or an error naming it.
    pub(crate) fn bin_of(&self, offset: u32) -> Result<Bin> {
        let page = (offset / hbin::BIN_ALIGNMENT) as usize;
        self.page_bins.get(page).copied().ok_or_else(|| {
            Error::corrupt(
                file_offset(offset),
                format!(
                    "cell offset {offset:#x} is outside the hive bins data ({:#x} bytes)",
                    self.bins_size
                ),
            )
        })
    }

    /// The raw size field of the cell at `offset` (negative = allocated), checked to lie in a bin,
    /// and that bin.
    fn raw_size(&self, offset: u32) -> Result<(i32, Bin)> {
        let bin = self.bin_of(offset)?;
        if offset < bin.cells_start() || offset % CELL_ALIGNMENT != 0 {
            return Err(Error::corrupt(
                file_offset(offset),
                format!("cell offset {offset:#x} is not a cell boundary"),
            ));
        }
        if offset + SIZE_FIELD > bin.end() {
            return Err(Error::corrupt(
                file_offset(offset),
                "cell size field crosses the end of its bin",
            ));
        }
        if !self.is_cell_start(offset) {
            return Err(Error::corrupt(
                file_offset(offset),
                format!(
                    "cell offset {offset:#x} lies inside another cell of its bin (overlapping cells)"
                ),
            ));
        }
        let at = BASE_BLOCK_SIZE + offset as usize;
        Ok((le::u32_at(&self.bytes, at).unwrap_or_default() as i32, bin))
    }

    /// The byte range (in `bytes`) of the data of the allocated cell at `offset`.
    fn cell_range(&self, offset: u32) -> Result<std::ops::Range<usize>> {
        let (size, bin) = self.raw_size(offset)?;
        if size >= 0 {
            return Err(Error::corrupt(
                file_offset(offset),
                format!("cell is free (size {size}) but is referenced as allocated"),
            ));
        }
        let size = size.unsigned_abs();
        if size < SIZE_FIELD || u64::from(offset) + u64::from(size) > u64::from(bin.end()) {
            return Err(Error::corrupt(
                file_offset(offset),
                format!(
                    "cell size {size:#x} does not fit its bin (which ends at offset {:#x})",
                    bin.end()
                ),
            ));
        }
        let start = BASE_BLOCK_SIZE + (offset + SIZE_FIELD) as usize;
        Ok(start..BASE_BLOCK_SIZE + (offset + size) as usize)
    }

    /// The data (after the size field) of the allocated cell at `offset`.
    pub(crate) fn cell(&self, offset: u32) -> Result<&[u8]> {
        let range = self.cell_range(offset)?;
        Ok(&self.bytes[range])
    }

    /// The data of the allocated cell at `offset`, for writing.
    pub(crate) fn cell_mut(&mut self, offset: u32) -> Result<&mut [u8]> {
        let range = self.cell_range(offset)?;
        Ok(&mut self.bytes[range])
    }
}
