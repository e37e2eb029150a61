//! Hive bins: the `hbin` blocks that follow the base block and hold the cells.
//!
//! Each bin starts with a 32-byte header (msuhanov's specification, "Hive bin"): signature `hbin`,
//! its own offset relative to the start of the hive bins data, its size (a multiple of 4096), 8
//! reserved bytes, a timestamp (meaningful in the first bin only) and 4 spare bytes. Cells fill the
//! rest of the bin and never cross its end.

use crate::base_block::BASE_BLOCK_SIZE;
use crate::{Error, Result};
use reseal_nt::le;

/// Size of a hive bin header; the first cell of a bin starts right after it.
pub(crate) const HEADER_SIZE: u32 = 32;
/// Hive bins are sized in multiples of this.
pub(crate) const BIN_ALIGNMENT: u32 = 4096;
const SIGNATURE: &[u8; 4] = b"hbin";

/// One hive bin's place in the hive bins data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Bin {
    /// Offset relative to the start of the hive bins data.
    pub(crate) offset: u32,
    pub(crate) size: u32,
}

impl Bin {
    pub(crate) fn end(&self) -> u32 {
        self.offset + self.size
    }
    /// Offset of the first cell.
    pub(crate) fn cells_start(&self) -> u32 {
        self.offset + HEADER_SIZE
    }
}

/// Reads the chain of bins filling `hive_bins` (the bytes after the base block, exactly as long as
/// the base block's hive bins data size). Each header must sit where the previous bin ends, name its
/// own offset and have a size that is a non-zero multiple of 4096 inside the data.
pub(crate) fn parse_bins(hive_bins: &[u8]) -> Result<Vec<Bin>> {
    let total = hive_bins.len();
    let mut bins = Vec::new();
    let mut offset = 0usize;
    while offset < total {
        let file_offset = (BASE_BLOCK_SIZE + offset) as u64;
        let Some(header) = hive_bins.get(offset..offset + HEADER_SIZE as usize) else {
            return Err(Error::Truncated {
                offset: file_offset,
                what: "hive bin header",
                needed: u64::from(HEADER_SIZE),
                available: (total - offset) as u64,
            });
        };
        if &header[..4] != SIGNATURE {
            return Err(Error::BadSignature {
                offset: file_offset,
                expected: "hbin",
                found: String::from_utf8_lossy(&header[..4]).into_owned(),
            });
        }
        let stored_offset = le::u32_at(header, 4).unwrap_or_default();
        if stored_offset as usize != offset {
            return Err(Error::corrupt(
                file_offset,
                format!("hive bin says it is at offset {stored_offset:#x}, found at {offset:#x}"),
            ));
        }
        let size = le::u32_at(header, 8).unwrap_or_default();
        if size == 0 || size % BIN_ALIGNMENT != 0 || size as usize > total - offset {
            return Err(Error::corrupt(
                file_offset,
                format!(
                    "hive bin size {size:#x} is not a multiple of 4096 within the {:#x} bytes left",
                    total - offset
                ),
            ));
        }
        bins.push(Bin {
            offset: offset as u32,
            size,
        });
        offset += size as usize;
    }
    Ok(bins)
}

/// The bin holding `offset` (`bins` sorted by offset, as [`parse_bins`] returns them).
pub(crate) fn bin_containing(bins: &[Bin], offset: u32) -> Option<Bin> {
    let after = bins.partition_point(|b| b.offset <= offset);
    let bin = *bins.get(after.checked_sub(1)?)?;
    (offset < bin.end()).then_some(bin)
}

/// The header of a new bin at `offset` of `size` bytes.
pub(crate) fn new_header(offset: u32, size: u32) -> [u8; HEADER_SIZE as usize] {
    let mut header = [0u8; HEADER_SIZE as usize];
    header[..4].copy_from_slice(SIGNATURE);
    header[4..8].copy_from_slice(&offset.to_le_bytes());
    header[8..12].copy_from_slice(&size.to_le_bytes());
    header
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_and_lookup() {
        let mut data = vec![0u8; 3 * 4096];
        data[..32].copy_from_slice(&new_header(0, 4096));
        data[4096..4096 + 32].copy_from_slice(&new_header(4096, 8192));
        let bins = parse_bins(&data).unwrap();
        assert_eq!(bins.len(), 2);
        assert_eq!(bin_containing(&bins, 5000), Some(bins[1]));
        assert_eq!(bin_containing(&bins, 3 * 4096), None);
    }

    #[test]
    fn misplaced_or_oversized_bins_are_errors() {
        let mut data = vec![0u8; 4096];
        data[..32].copy_from_slice(&new_header(0, 8192));
        assert!(matches!(parse_bins(&data), Err(Error::Corrupt { .. })));
        data[..32].copy_from_slice(&new_header(4096, 4096));
        assert!(matches!(parse_bins(&data), Err(Error::Corrupt { .. })));
        data[..4].copy_from_slice(b"hbim");
        assert!(matches!(parse_bins(&data), Err(Error::BadSignature { .. })));
    }
}
