//! Big data records (`db`): value data above 16344 bytes in hives of format 1.4 and later.
//!
//! Layout of the cell data (msuhanov's specification, "Big data"): signature `db`, a 16-bit number
//! of segments, and the offset of the segment list (a cell of segment offsets). Each segment is a
//! cell holding 16344 bytes of the data (the last one holds the rest).
//!
//! `Hive`'s methods here tell a big data record from a plain data cell and join its segments.

use std::collections::HashSet;

use crate::cell::{file_offset, require_len, require_signature};
use crate::{Error, Hive, Result};
use reseal_nt::le;

/// Data above this size goes into a big data record (format 1.4+); also the size of each segment.
pub(crate) const SEGMENT_SIZE: usize = 16344;

/// A view of a big data record's cell data.
pub(crate) struct BigData {
    pub(crate) segment_count: u16,
    pub(crate) segment_list: u32,
}

impl BigData {
    pub(crate) fn parse(data: &[u8], offset: u32) -> Result<Self> {
        require_len(data, 8, offset, "big data record")?;
        require_signature(data, "db", offset)?;
        Ok(BigData {
            segment_count: le::u16_at(data, 2).unwrap_or_default(),
            segment_list: le::u32_at(data, 4).unwrap_or_default(),
        })
    }
}

/// `true` when `cell_data` starts like a big data record.
pub(crate) fn looks_like_big_data(cell_data: &[u8]) -> bool {
    cell_data.len() >= 8 && &cell_data[..2] == b"db"
}

/// The cell data of a big data record (its 4 trailing bytes are unused, as Windows leaves them).
pub(crate) fn encode(segment_count: u16, segment_list: u32) -> Vec<u8> {
    let mut data = b"db".to_vec();
    data.extend_from_slice(&segment_count.to_le_bytes());
    data.extend_from_slice(&segment_list.to_le_bytes());
    data.extend_from_slice(&[0; 4]);
    data
}

/// The segment offsets in a segment list cell (at most `count`, bounded by the cell).
pub(crate) fn segment_offsets(list: &[u8], count: u16, offset: u32) -> Result<Vec<u32>> {
    let count = usize::from(count);
    require_len(list, count * 4, offset, "big data segment list")?;
    Ok((0..count)
        .map(|i| le::u32_at(list, i * 4).unwrap_or_default())
        .collect())
}

impl Hive {
    /// `true` when a value of `len` bytes whose data cell is `cell` is stored as big data.
    pub(crate) fn is_big_data(&self, len: usize, cell: &[u8]) -> bool {
        self.minor_version() >= 4 && len > SEGMENT_SIZE && looks_like_big_data(cell)
    }

    /// The segment cells of the big data record at `offset` for a value of `len` bytes, checked:
    /// as many segments as the length needs, each listed once, each cell large enough for its part.
    pub(crate) fn big_data_segments(&self, offset: u32, len: usize) -> Result<(BigData, Vec<u32>)> {
        let record = BigData::parse(self.store.cell(offset)?, offset)?;
        let needed = len.div_ceil(SEGMENT_SIZE);
        if usize::from(record.segment_count) != needed {
            return Err(Error::corrupt(
                file_offset(offset),
                format!(
                    "big data record has {} segments, a value of {len} bytes needs {needed}",
                    record.segment_count
                ),
            ));
        }
        let segments = segment_offsets(
            self.store.cell(record.segment_list)?,
            record.segment_count,
            record.segment_list,
        )?;
        // Distinct segments are distinct cells, so the data can never outgrow the hive.
        let mut distinct = HashSet::new();
        if let Some(twice) = segments.iter().find(|&&s| !distinct.insert(s)) {
            return Err(Error::corrupt(
                file_offset(record.segment_list),
                format!("big data segment {twice:#x} is listed twice"),
            ));
        }
        for (index, &segment) in segments.iter().enumerate() {
            let wanted = (len - index * SEGMENT_SIZE).min(SEGMENT_SIZE);
            let size = self.store.cell(segment)?.len();
            if size < wanted {
                return Err(Error::corrupt(
                    file_offset(segment),
                    format!(
                        "big data segment {index} is a cell of {size} bytes, {wanted} expected"
                    ),
                ));
            }
        }
        Ok((record, segments))
    }

    pub(crate) fn big_data(&self, offset: u32, len: usize) -> Result<Vec<u8>> {
        let (_, segments) = self.big_data_segments(offset, len)?;
        let mut data = Vec::with_capacity(len);
        for segment in segments {
            let wanted = (len - data.len()).min(SEGMENT_SIZE);
            data.extend_from_slice(&self.store.cell(segment)?[..wanted]);
        }
        Ok(data)
    }
}
