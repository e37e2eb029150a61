//! Old-format logs (Windows XP to 8: file type 1; NT 3.x/4 `.LOG`: file type 2): dirty vector and
//! dirty pages.
//!
//! Layout (msuhanov's regf specification, "Old format"):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 512 | copy of the hive's base block (file type 1 or 2, both sequence numbers equal) |
//! | 512 | 4 | signature `DIRT` |
//! | 516 | hive bins data size / 4096 | bitmap: bit *n* (LSB first) set = 512-byte page *n* of the hive bins data is dirty |
//! | next 512 boundary | 512 × set bits | the dirty pages, in bit order |
//!
//! The hive bins data size is the one in the log's base block copy. A log applies as a whole: it
//! has no sequence numbers of its own, so a truncated page list makes the whole log unusable.

use crate::base_block::BASE_BLOCK_SIZE;

/// `DIRT`.
pub const SIGNATURE: &[u8; 4] = b"DIRT";
/// The dirty vector starts after the log's base block copy, one 512-byte sector.
pub const DIRTY_VECTOR_OFFSET: usize = 512;
/// Every bit of the bitmap stands for one 512-byte page.
pub const PAGE_SIZE: usize = 512;

/// The dirty vector of an old-format log and the pages that follow it.
#[derive(Debug, Clone, Copy)]
pub struct DirtyVector<'a> {
    bitmap: &'a [u8],
    pages: &'a [u8],
}

impl<'a> DirtyVector<'a> {
    /// Reads the dirty vector of `log` for a hive bins data size of `hive_bins_data_size` (from the
    /// log's base block) and checks that every page it announces is present.
    pub fn parse(log: &'a [u8], hive_bins_data_size: u32) -> Result<DirtyVector<'a>, String> {
        let signature = log.get(DIRTY_VECTOR_OFFSET..DIRTY_VECTOR_OFFSET + SIGNATURE.len());
        if signature != Some(SIGNATURE.as_slice()) {
            return Err(format!(
                "no DIRT signature at offset {DIRTY_VECTOR_OFFSET:#x} (found {:02x?})",
                signature.unwrap_or_default()
            ));
        }
        if hive_bins_data_size == 0 || hive_bins_data_size % 4096 != 0 {
            return Err(format!(
                "hive bins data size {hive_bins_data_size:#x} in the base block is not a positive multiple of 4096"
            ));
        }
        // One bit per 512-byte page: one bitmap byte per 4096 bytes of hive bins data.
        let bitmap_start = DIRTY_VECTOR_OFFSET + SIGNATURE.len();
        let bitmap_len = hive_bins_data_size as usize / 4096;
        let bitmap = log
            .get(bitmap_start..bitmap_start + bitmap_len)
            .ok_or_else(|| {
                format!(
                    "the bitmap ({bitmap_len} bytes at {bitmap_start:#x}) runs past the end of the log ({:#x} bytes)",
                    log.len()
                )
            })?;
        let pages_start = (bitmap_start + bitmap_len).next_multiple_of(PAGE_SIZE);
        let page_count: usize = bitmap.iter().map(|b| b.count_ones() as usize).sum();
        let pages_len = page_count * PAGE_SIZE;
        let pages = log
            .get(pages_start..pages_start + pages_len)
            .ok_or_else(|| {
                format!(
                    "{page_count} dirty pages from {pages_start:#x} need {:#x} bytes, the log has {:#x}",
                    pages_start + pages_len,
                    log.len()
                )
            })?;
        Ok(DirtyVector { bitmap, pages })
    }

    /// `(offset in the hive bins data, page bytes)` for each dirty page, in bit order.
    pub fn dirty_pages(&self) -> impl Iterator<Item = (usize, &'a [u8])> + 'a {
        let bitmap = self.bitmap;
        let dirty_bits =
            (0..bitmap.len() * 8).filter(move |bit| bitmap[bit / 8] >> (bit % 8) & 1 == 1);
        dirty_bits
            .zip(self.pages.chunks_exact(PAGE_SIZE))
            .map(|(bit, page)| (bit * PAGE_SIZE, page))
    }

    /// Writes the dirty pages into the hive file bytes `hive` (base block included), growing it to
    /// the vector's hive bins data size first. Returns the number of pages written.
    pub fn apply(&self, hive: &mut Vec<u8>) -> u32 {
        let needed = BASE_BLOCK_SIZE + self.bitmap.len() * 8 * PAGE_SIZE;
        if hive.len() < needed {
            hive.resize(needed, 0);
        }
        let mut written = 0;
        for (offset, page) in self.dirty_pages() {
            let start = BASE_BLOCK_SIZE + offset;
            if let Some(target) = hive.get_mut(start..start + PAGE_SIZE) {
                target.copy_from_slice(page);
                written += 1;
            }
        }
        written
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log_with(bitmap: &[u8], pages: &[[u8; 512]]) -> Vec<u8> {
        let mut log = vec![0u8; 512];
        log.extend_from_slice(SIGNATURE);
        log.extend_from_slice(bitmap);
        log.resize(log.len().next_multiple_of(512), 0);
        for page in pages {
            log.extend_from_slice(page);
        }
        log
    }

    #[test]
    fn maps_bits_to_pages() {
        // Bits 1 and 9 of a 2-byte bitmap (8192 bytes of hive bins data).
        let log = log_with(&[0b10, 0b10], &[[1; 512], [2; 512]]);
        let vector = DirtyVector::parse(&log, 8192).unwrap();
        let pages: Vec<_> = vector.dirty_pages().map(|(o, p)| (o, p[0])).collect();
        assert_eq!(pages, [(512, 1), (9 * 512, 2)]);
        let mut hive = vec![0u8; 4096];
        assert_eq!(vector.apply(&mut hive), 2);
        assert_eq!(hive.len(), 4096 + 8192);
        assert_eq!((hive[4096 + 512], hive[4096 + 9 * 512]), (1, 2));
    }

    #[test]
    fn rejects_missing_pages_and_bad_sizes() {
        let log = log_with(&[0xff], &[[1; 512]]);
        assert!(DirtyVector::parse(&log, 4096)
            .unwrap_err()
            .contains("8 dirty pages"));
        assert!(DirtyVector::parse(&log, 4095).is_err());
        assert!(DirtyVector::parse(&log, 0).is_err());
        assert!(DirtyVector::parse(&log, u32::MAX - 4095).is_err());
        assert!(DirtyVector::parse(&log[..514], 4096).is_err());
    }
}
