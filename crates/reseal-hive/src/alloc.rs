//! The cell allocator.
//!
//! Free cells are found by walking every bin once (on the first allocation or free) and indexed
//! twice: by offset (to merge neighbours) and by size (so that an allocation costs O(log n) however
//! fragmented the hive is). Allocation takes the smallest free cell that is large enough (the
//! lowest offset among equals) and splits off the rest when at least a minimal cell remains;
//! freeing merges the cell with free neighbours in the same bin (never across a bin boundary, as
//! Windows requires). When no free cell fits, a new bin (a
//! multiple of 4096 bytes) is appended and the hive bins data size grows.
//!
//! Freed cells are zeroed: a generalized image must not keep deleted names and data in free space.

use std::collections::BTreeMap;

use crate::base_block::BASE_BLOCK_SIZE;
use crate::cell::{file_offset, write_u32, Store, CELL_ALIGNMENT, SIZE_FIELD};
use crate::hbin::{self, Bin, BIN_ALIGNMENT};
use crate::{Error, Result};
use reseal_nt::le;

/// The largest cell data this allocator hands out (far above any legitimate record: big data is
/// split into 16344-byte segments).
const MAX_CELL_DATA: usize = 64 << 20;

fn round_up(value: u64, to: u64) -> u64 {
    value.div_ceil(to) * to
}

impl Store {
    /// Walks every cell of every bin, returning each cell's offset and raw size (negative =
    /// allocated). Fails on a cell whose size is not a positive multiple of 8 or that crosses the
    /// end of its bin: such a hive cannot be edited safely.
    pub(crate) fn scan_cells(&self) -> Result<Vec<(u32, i32)>> {
        let mut cells = Vec::new();
        self.for_each_cell(|offset, raw| cells.push((offset, raw)))?;
        Ok(cells)
    }

    /// [`Store::scan_cells`] without collecting: `visit` gets each cell's offset and raw size.
    pub(crate) fn for_each_cell(&self, mut visit: impl FnMut(u32, i32)) -> Result<()> {
        for bin in &self.bins {
            let mut offset = bin.cells_start();
            while offset < bin.end() {
                if offset + SIZE_FIELD > bin.end() {
                    return Err(Error::corrupt(
                        file_offset(offset),
                        "cell size field crosses the end of its bin",
                    ));
                }
                let raw = le::u32_at(&self.bytes, BASE_BLOCK_SIZE + offset as usize)
                    .unwrap_or_default() as i32;
                let size = raw.unsigned_abs();
                if size < CELL_ALIGNMENT
                    || size % CELL_ALIGNMENT != 0
                    || u64::from(offset) + u64::from(size) > u64::from(bin.end())
                {
                    return Err(Error::corrupt(
                        file_offset(offset),
                        format!(
                            "cell size {raw} is invalid in the bin ending at {:#x}",
                            bin.end()
                        ),
                    ));
                }
                visit(offset, raw);
                offset += size;
            }
        }
        Ok(())
    }

    /// The free cells by offset, with their sizes (what the indexes must always agree with).
    #[cfg(test)]
    pub(crate) fn scan_free_cells(&self) -> Result<BTreeMap<u32, u32>> {
        let mut free = BTreeMap::new();
        self.for_each_cell(|offset, raw| {
            if raw > 0 {
                free.insert(offset, raw.unsigned_abs());
            }
        })?;
        Ok(free)
    }

    /// Builds the free-cell indexes and the cell-start index with one walk of every bin, once.
    /// Every edit calls it before reading anything, so that from then on a reference into the
    /// middle of a cell is an error instead of a silent overwrite.
    pub(crate) fn prepare_for_edits(&mut self) -> Result<()> {
        if self.free_cells.is_some() {
            return Ok(());
        }
        let mut by_offset = BTreeMap::new();
        let mut starts = vec![0u64; (self.bins_size / CELL_ALIGNMENT) as usize / 64 + 1];
        self.for_each_cell(|offset, raw| {
            let unit = (offset / CELL_ALIGNMENT) as usize;
            starts[unit / 64] |= 1 << (unit % 64);
            if raw > 0 {
                by_offset.insert(offset, raw.unsigned_abs());
            }
        })?;
        self.free_by_size = by_offset
            .iter()
            .map(|(&offset, &size)| (size, offset))
            .collect();
        self.free_cells = Some(by_offset);
        self.cell_starts = Some(starts);
        Ok(())
    }

    /// The free cells by offset, building the indexes on first use.
    fn free_map(&mut self) -> Result<&mut BTreeMap<u32, u32>> {
        self.prepare_for_edits()?;
        Ok(self.free_cells.get_or_insert_with(BTreeMap::new))
    }

    /// Records the free cell at `offset` in both indexes.
    fn add_free(&mut self, offset: u32, size: u32) -> Result<()> {
        self.free_map()?.insert(offset, size);
        self.free_by_size.insert((size, offset));
        Ok(())
    }

    /// Takes the free cell at `offset` out of both indexes, returning its size.
    fn take_free(&mut self, offset: u32) -> Result<Option<u32>> {
        let size = self.free_map()?.remove(&offset);
        if let Some(size) = size {
            self.free_by_size.remove(&(size, offset));
        }
        Ok(size)
    }

    /// The smallest free cell of at least `needed` bytes (lowest offset among equals).
    fn best_fit(&mut self, needed: u32) -> Result<Option<(u32, u32)>> {
        self.free_map()?;
        Ok(self
            .free_by_size
            .range((needed, 0)..)
            .next()
            .map(|&(size, offset)| (offset, size)))
    }

    fn write_size(&mut self, offset: u32, raw: i32) {
        write_u32(
            &mut self.bytes,
            BASE_BLOCK_SIZE + offset as usize,
            raw as u32,
        );
    }

    fn zero(&mut self, offset: u32, len: u32) {
        let start = BASE_BLOCK_SIZE + offset as usize;
        self.bytes[start..start + len as usize].fill(0);
    }

    /// Allocates a cell for `data_len` bytes of data (zero-filled) and returns its offset.
    pub(crate) fn alloc(&mut self, data_len: usize) -> Result<u32> {
        if data_len > MAX_CELL_DATA {
            return Err(Error::InvalidArgument(format!(
                "a cell of {data_len} bytes is larger than the {MAX_CELL_DATA} bytes allowed"
            )));
        }
        let needed = round_up(
            data_len as u64 + u64::from(SIZE_FIELD),
            u64::from(CELL_ALIGNMENT),
        ) as u32;
        let (offset, size) = match self.best_fit(needed)? {
            Some(cell) => cell,
            None => self.append_bin(needed)?,
        };
        self.take_free(offset)?;
        let used = if size - needed >= CELL_ALIGNMENT {
            self.add_free(offset + needed, size - needed)?;
            self.set_cell_start(offset + needed, true);
            self.write_size(offset + needed, (size - needed) as i32);
            needed
        } else {
            size
        };
        self.write_size(offset, -(used as i32));
        self.zero(offset + SIZE_FIELD, used - SIZE_FIELD);
        Ok(offset)
    }

    /// Appends a bin with one free cell of at least `cell_size` bytes; returns that free cell.
    fn append_bin(&mut self, cell_size: u32) -> Result<(u32, u32)> {
        let bin_size = round_up(
            u64::from(cell_size) + u64::from(hbin::HEADER_SIZE),
            u64::from(BIN_ALIGNMENT),
        );
        let new_total = u64::from(self.bins_size) + bin_size;
        if new_total > u64::from(i32::MAX as u32) {
            return Err(Error::InvalidArgument(
                "the hive would grow beyond 2 GiB".to_string(),
            ));
        }
        let bin = Bin {
            offset: self.bins_size,
            size: bin_size as u32,
        };
        // Anything after the last bin (slack some writers leave) is not part of the hive.
        self.bytes
            .truncate(BASE_BLOCK_SIZE + self.bins_size as usize);
        self.bytes
            .extend_from_slice(&hbin::new_header(bin.offset, bin.size));
        self.bytes.resize(BASE_BLOCK_SIZE + new_total as usize, 0);
        self.bins.push(bin);
        self.bins_size = new_total as u32;
        self.index_new_pages();
        let cell = (bin.cells_start(), bin.size - hbin::HEADER_SIZE);
        self.set_cell_start(cell.0, true);
        self.write_size(cell.0, cell.1 as i32);
        self.add_free(cell.0, cell.1)?;
        Ok(cell)
    }

    /// Frees the allocated cell at `offset`, zeroing it and merging it with free neighbours in its bin.
    pub(crate) fn free(&mut self, offset: u32) -> Result<()> {
        self.prepare_for_edits()?;
        self.checked_keys
            .get_mut()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(&offset);
        let size = self.cell(offset)?.len() as u32 + SIZE_FIELD;
        let bin = self.bin_of(offset)?;
        let mut start = offset;
        let mut merged = size;
        // A cell ending its bin is followed by a bin header, never by a free cell.
        if let Some(next_size) = self.take_free(offset + size)? {
            merged += next_size;
            self.set_cell_start(offset + size, false);
        }
        let previous = self
            .free_map()?
            .range(bin.cells_start()..offset)
            .next_back()
            .map(|(&prev, &prev_size)| (prev, prev_size));
        if let Some((prev, prev_size)) = previous {
            if prev + prev_size == offset {
                self.take_free(prev)?;
                self.set_cell_start(offset, false);
                start = prev;
                merged += prev_size;
            }
        }
        self.add_free(start, merged)?;
        self.write_size(start, merged as i32);
        self.zero(start + SIZE_FIELD, merged - SIZE_FIELD);
        Ok(())
    }

    /// Grows or shrinks the allocated cell at `offset` to hold `data`: rewritten in place when it
    /// fits, otherwise moved to a new cell (the old one is freed). Returns the cell's offset.
    pub(crate) fn rewrite(&mut self, offset: Option<u32>, data: &[u8]) -> Result<u32> {
        self.prepare_for_edits()?;
        if let Some(offset) = offset {
            let cell = self.cell_mut(offset)?;
            if cell.len() >= data.len() {
                cell[..data.len()].copy_from_slice(data);
                cell[data.len()..].fill(0);
                return Ok(offset);
            }
        }
        let new = self.alloc(data.len())?;
        self.cell_mut(new)?[..data.len()].copy_from_slice(data);
        if let Some(old) = offset {
            self.free(old)?;
        }
        Ok(new)
    }

    /// Allocates a cell holding `data`.
    pub(crate) fn alloc_with(&mut self, data: &[u8]) -> Result<u32> {
        self.rewrite(None, data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn one_bin_store() -> Store {
        let mut bytes = vec![0u8; BASE_BLOCK_SIZE + 4096];
        bytes[BASE_BLOCK_SIZE..BASE_BLOCK_SIZE + 32].copy_from_slice(&hbin::new_header(0, 4096));
        write_u32(&mut bytes, BASE_BLOCK_SIZE + 32, 4096 - 32);
        Store::new(bytes, 4096).unwrap()
    }

    #[test]
    fn split_coalesce_and_grow() {
        let mut store = one_bin_store();
        let a = store.alloc(10).unwrap();
        let b = store.alloc(100).unwrap();
        let c = store.alloc(20).unwrap();
        assert_eq!((a, b, c), (32, 48, 152));
        assert_eq!(store.cell(a).unwrap().len(), 12);
        store.free(a).unwrap();
        store.free(c).unwrap();
        store.free(b).unwrap();
        // Everything merged back into one free cell spanning the bin.
        assert_eq!(
            store.scan_free_cells().unwrap(),
            BTreeMap::from([(32, 4096 - 32)])
        );
        assert_eq!(
            store.free_cells.as_ref().unwrap(),
            &store.scan_free_cells().unwrap()
        );
        // A cell larger than the bin makes a new, bigger bin.
        let big = store.alloc(5000).unwrap();
        assert_eq!(big, 4096 + 32);
        assert_eq!(store.bins_size, 4096 + 8192);
        assert_eq!(store.bins.len(), 2);
        // Freeing the last cell of bin 0 never merges with bin 1.
        let last = store.alloc(4096 - 32 - 4).unwrap();
        store.free(last).unwrap();
        assert_eq!(
            store.scan_free_cells().unwrap().get(&32),
            Some(&(4096 - 32))
        );
    }

    /// Both free-cell indexes agree with the bins after every step of a long mixed sequence,
    /// allocations take the best fit, and no free cell is left beside another in its bin.
    #[test]
    fn indexes_follow_the_bins() {
        let mut store = one_bin_store();
        let mut live = Vec::new();
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        for step in 0..3000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            if live.is_empty() || state % 5 < 3 {
                let free_before = store.free_cells.clone().unwrap_or_default();
                let len = (state >> 8) as usize % 600;
                let offset = store.alloc(len).unwrap();
                let needed = round_up(len as u64 + 4, 8) as u32;
                let best = free_before.values().filter(|&&size| size >= needed).min();
                if let Some(&best) = best {
                    assert_eq!(free_before.get(&offset), Some(&best), "step {step}");
                }
                live.push(offset);
            } else {
                let at = (state >> 8) as usize % live.len();
                store.free(live.swap_remove(at)).unwrap();
            }
            let scanned = store.scan_free_cells().unwrap();
            assert_eq!(store.free_cells.as_ref().unwrap(), &scanned, "step {step}");
            let by_size: BTreeSet<(u32, u32)> = scanned.iter().map(|(&o, &s)| (s, o)).collect();
            assert_eq!(store.free_by_size, by_size, "step {step}");
            for (&offset, &size) in &scanned {
                let bin = store.bin_of(offset).unwrap();
                assert!(offset + size <= bin.end());
                assert!(!scanned.contains_key(&(offset + size)), "step {step}");
            }
        }
    }
}
