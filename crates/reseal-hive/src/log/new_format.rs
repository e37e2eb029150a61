//! New-format log entries (`HvLE`, Windows 8.1 and later, log base block file type 6).
//!
//! A new-format log is a 512-byte copy of the hive's base block (file type 6) followed, from offset
//! 512, by log entries, each at a 512-byte boundary (msuhanov's regf specification, "New format"):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | signature `HvLE` |
//! | 4 | 4 | size of the entry (a multiple of 512) |
//! | 8 | 4 | flags (bit 0 goes to the base block's flags field when the entry is applied) |
//! | 12 | 4 | sequence number (written to both base block sequence numbers when applied) |
//! | 16 | 4 | hive bins data size (a multiple of 4096: the hive grows to it) |
//! | 20 | 4 | dirty page count |
//! | 24 | 8 | Hash-1: Marvin32 of bytes `40..size` |
//! | 32 | 8 | Hash-2: Marvin32 of bytes `0..32` (so it covers Hash-1) |
//! | 40 | 8 × count | dirty page references: offset in the hive bins data (u32), size (u32) |
//! | … | … | the dirty pages, in reference order, without padding |
//!
//! A log holds entries with consecutive sequence numbers, starting at its base block's sequence
//! number, possibly followed by older (already applied) entries or garbage.

use super::marvin32::{marvin32, LOG_ENTRY_SEED};
use crate::base_block::BASE_BLOCK_SIZE;
use reseal_nt::le;

/// Log entries start after the log's base block copy, which is one 512-byte sector.
pub const FIRST_ENTRY_OFFSET: usize = 512;
/// Entries are sector-aligned and sized.
pub const ENTRY_ALIGNMENT: usize = 512;
/// `HvLE`.
pub const SIGNATURE: &[u8; 4] = b"HvLE";

const HEADER_SIZE: usize = 40;
const PAGE_REFERENCE_SIZE: usize = 8;
const HIVE_BIN_ALIGNMENT: u32 = 4096;

/// The sequence number of the entry header at `offset` in `log`, read without checking the
/// hashes, when the header has the `HvLE` signature and a sector-multiple size (used to find the
/// highest sequence number a log mentions).
pub fn unverified_sequence_at(log: &[u8], offset: usize) -> Option<u32> {
    let header = log.get(offset..offset.checked_add(HEADER_SIZE)?)?;
    let size = le::u32_at(header, 4).unwrap_or_default() as usize;
    (&header[..4] == SIGNATURE && size >= ENTRY_ALIGNMENT && size % ENTRY_ALIGNMENT == 0)
        .then(|| le::u32_at(header, 12).unwrap_or_default())
}

/// One dirty page of an entry: where it goes in the hive bins data, and its bytes.
#[derive(Debug, Clone, Copy)]
pub struct DirtyPage<'a> {
    /// Offset relative to the start of the hive bins data.
    pub offset: u32,
    pub bytes: &'a [u8],
}

/// A verified log entry: signature, size, hashes, hive bins data size and every page reference
/// have been checked against the entry's own bytes, so applying it cannot go out of bounds.
#[derive(Debug, Clone, Copy)]
pub struct LogEntry<'a> {
    bytes: &'a [u8],
}

impl<'a> LogEntry<'a> {
    /// Parses and verifies the entry at `offset` in `log`.
    ///
    /// `Ok(None)` means there is no entry there (end of the log, zero padding or other bytes without
    /// the signature): the normal end of a log. `Err(reason)` means an entry is there but is bad.
    pub fn parse(log: &'a [u8], offset: usize) -> Result<Option<LogEntry<'a>>, String> {
        if log.len().saturating_sub(offset) < HEADER_SIZE
            || log.get(offset..offset + 4) != Some(SIGNATURE.as_slice())
        {
            return Ok(None);
        }
        let header = &log[offset..offset + HEADER_SIZE];
        let size = le::u32_at(header, 4).unwrap_or_default() as usize;
        if size < ENTRY_ALIGNMENT || size % ENTRY_ALIGNMENT != 0 {
            return Err(format!(
                "entry at offset {offset:#x}: size {size:#x} is not a positive multiple of 512"
            ));
        }
        let Some(bytes) = log.get(offset..offset.saturating_add(size)) else {
            return Err(format!(
                "entry at offset {offset:#x}: size {size:#x} runs past the end of the log ({:#x} bytes)",
                log.len()
            ));
        };
        let entry = LogEntry { bytes };
        entry.verify().map_err(|reason| {
            format!(
                "entry at offset {offset:#x} (sequence {}): {reason}",
                entry.sequence()
            )
        })?;
        Ok(Some(entry))
    }

    /// Checks everything but the sequence number, which only the caller can judge.
    fn verify(&self) -> Result<(), String> {
        // Hash-2 covers the header (with Hash-1), Hash-1 the rest: together, every byte.
        let hash_2 = marvin32(LOG_ENTRY_SEED, &self.bytes[..32]);
        if hash_2 != le::u64_at(self.bytes, 32).unwrap_or_default() {
            return Err(format!(
                "Hash-2 mismatch (stored {:#018x}, computed {hash_2:#018x})",
                le::u64_at(self.bytes, 32).unwrap_or_default()
            ));
        }
        let hash_1 = marvin32(LOG_ENTRY_SEED, &self.bytes[HEADER_SIZE..]);
        if hash_1 != le::u64_at(self.bytes, 24).unwrap_or_default() {
            return Err(format!(
                "Hash-1 mismatch (stored {:#018x}, computed {hash_1:#018x})",
                le::u64_at(self.bytes, 24).unwrap_or_default()
            ));
        }
        let bins_size = self.hive_bins_data_size();
        if bins_size < HIVE_BIN_ALIGNMENT || bins_size % HIVE_BIN_ALIGNMENT != 0 {
            return Err(format!(
                "hive bins data size {bins_size:#x} is not a positive multiple of 4096"
            ));
        }
        let count = self.dirty_page_count() as usize;
        if count == 0 {
            return Err("no dirty pages".into());
        }
        let pages_start = count
            .checked_mul(PAGE_REFERENCE_SIZE)
            .and_then(|table| table.checked_add(HEADER_SIZE))
            .filter(|&start| start <= self.bytes.len())
            .ok_or_else(|| {
                format!(
                    "{count} dirty page references do not fit in the entry ({:#x} bytes)",
                    self.bytes.len()
                )
            })?;
        let mut pages_end = pages_start;
        for (index, (offset, size)) in self.page_references().enumerate() {
            pages_end = pages_end
                .checked_add(size as usize)
                .filter(|&end| end <= self.bytes.len())
                .ok_or_else(|| {
                    format!("dirty page {index} (size {size:#x}) runs past the end of the entry")
                })?;
            if offset.checked_add(size).is_none_or(|end| end > bins_size) {
                return Err(format!(
                    "dirty page {index} ({offset:#x}+{size:#x}) lies outside the hive bins data size {bins_size:#x}"
                ));
            }
        }
        Ok(())
    }

    pub fn size(&self) -> usize {
        self.bytes.len()
    }
    pub fn flags(&self) -> u32 {
        le::u32_at(self.bytes, 8).unwrap_or_default()
    }
    pub fn sequence(&self) -> u32 {
        le::u32_at(self.bytes, 12).unwrap_or_default()
    }
    pub fn hive_bins_data_size(&self) -> u32 {
        le::u32_at(self.bytes, 16).unwrap_or_default()
    }
    pub fn dirty_page_count(&self) -> u32 {
        le::u32_at(self.bytes, 20).unwrap_or_default()
    }

    /// `(offset in the hive bins data, size)` of each page, from the reference table.
    fn page_references(&self) -> impl Iterator<Item = (u32, u32)> + 'a {
        let bytes = self.bytes;
        let table_end = HEADER_SIZE
            .saturating_add((self.dirty_page_count() as usize).saturating_mul(PAGE_REFERENCE_SIZE))
            .min(bytes.len());
        bytes[HEADER_SIZE..table_end]
            .chunks_exact(PAGE_REFERENCE_SIZE)
            .map(|reference| {
                (
                    le::u32_at(reference, 0).unwrap_or_default(),
                    le::u32_at(reference, 4).unwrap_or_default(),
                )
            })
    }

    /// The dirty pages with their bytes (verified to lie inside the entry).
    pub fn dirty_pages(&self) -> impl Iterator<Item = DirtyPage<'a>> + 'a {
        let bytes = self.bytes;
        let mut position =
            HEADER_SIZE + (self.dirty_page_count() as usize).saturating_mul(PAGE_REFERENCE_SIZE);
        self.page_references().filter_map(move |(offset, size)| {
            let page = bytes.get(position..position.checked_add(size as usize)?)?;
            position += size as usize;
            Some(DirtyPage {
                offset,
                bytes: page,
            })
        })
    }

    /// Writes the entry into the hive file bytes `hive` (base block included), first growing it to
    /// the entry's hive bins data size. Returns the number of pages written.
    pub fn apply(&self, hive: &mut Vec<u8>) -> u32 {
        let needed = BASE_BLOCK_SIZE + self.hive_bins_data_size() as usize;
        if hive.len() < needed {
            hive.resize(needed, 0);
        }
        let mut written = 0;
        for page in self.dirty_pages() {
            let start = BASE_BLOCK_SIZE + page.offset as usize;
            if let Some(target) = hive.get_mut(start..start + page.bytes.len()) {
                target.copy_from_slice(page.bytes);
                written += 1;
            }
        }
        written
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A well-formed entry with the given pages, hashes computed.
    pub(crate) fn build_entry(sequence: u32, bins_size: u32, pages: &[(u32, &[u8])]) -> Vec<u8> {
        let payload: usize = pages.iter().map(|(_, p)| p.len()).sum();
        let unpadded = HEADER_SIZE + pages.len() * PAGE_REFERENCE_SIZE + payload;
        let size = unpadded.div_ceil(ENTRY_ALIGNMENT) * ENTRY_ALIGNMENT;
        let mut e = vec![0u8; size];
        e[..4].copy_from_slice(SIGNATURE);
        e[4..8].copy_from_slice(&(size as u32).to_le_bytes());
        e[12..16].copy_from_slice(&sequence.to_le_bytes());
        e[16..20].copy_from_slice(&bins_size.to_le_bytes());
        e[20..24].copy_from_slice(&(pages.len() as u32).to_le_bytes());
        let mut at = HEADER_SIZE;
        for (offset, page) in pages {
            e[at..at + 4].copy_from_slice(&offset.to_le_bytes());
            e[at + 4..at + 8].copy_from_slice(&(page.len() as u32).to_le_bytes());
            at += 8;
        }
        for (_, page) in pages {
            e[at..at + page.len()].copy_from_slice(page);
            at += page.len();
        }
        let h1 = marvin32(LOG_ENTRY_SEED, &e[HEADER_SIZE..]);
        e[24..32].copy_from_slice(&h1.to_le_bytes());
        let h2 = marvin32(LOG_ENTRY_SEED, &e[..32]);
        e[32..40].copy_from_slice(&h2.to_le_bytes());
        e
    }

    #[test]
    fn parses_and_applies_a_built_entry() {
        let page = vec![0xabu8; 4096];
        let entry = build_entry(7, 8192, &[(4096, &page)]);
        let parsed = LogEntry::parse(&entry, 0).unwrap().unwrap();
        assert_eq!((parsed.sequence(), parsed.dirty_page_count()), (7, 1));
        let mut hive = vec![0u8; 4096 + 4096];
        assert_eq!(parsed.apply(&mut hive), 1);
        assert_eq!(hive.len(), 4096 + 8192);
        assert!(hive[8192..].iter().all(|&b| b == 0xab));
    }

    #[test]
    fn rejects_flipped_bytes_and_bad_structure() {
        let page = vec![1u8; 4096];
        let good = build_entry(1, 4096, &[(0, &page)]);
        for position in [5, 13, 17, 25, 33, 41, 100, 4000] {
            let mut bad = good.clone();
            bad[position] ^= 0x10;
            assert!(
                LogEntry::parse(&bad, 0).is_err(),
                "flip at {position} accepted"
            );
        }
        // A page outside the hive bins data size, with valid hashes.
        let outside = build_entry(1, 4096, &[(4096, &page)]);
        assert!(LogEntry::parse(&outside, 0)
            .unwrap_err()
            .contains("outside"));
        // An absurd page count, with valid hashes.
        let mut absurd = build_entry(1, 4096, &[(0, &page)]);
        absurd[20..24].copy_from_slice(&u32::MAX.to_le_bytes());
        let h2 = marvin32(LOG_ENTRY_SEED, &absurd[..32]);
        absurd[32..40].copy_from_slice(&h2.to_le_bytes());
        assert!(LogEntry::parse(&absurd, 0)
            .unwrap_err()
            .contains("do not fit"));
        // No signature: the normal end of a log.
        assert!(LogEntry::parse(&[0u8; 1024], 0).unwrap().is_none());
        assert!(LogEntry::parse(&good[..100], 0).is_err());
    }
}
