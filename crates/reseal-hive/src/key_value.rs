//! Key values (`vk`): one named value of a key.
//!
//! Layout of the cell data (msuhanov's specification, "Key value"):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 2 | signature `vk` |
//! | 2 | 2 | name length (bytes; 0 = the default value) |
//! | 4 | 4 | data size; most significant bit set = the data (up to 4 bytes) is stored in the data offset field |
//! | 8 | 4 | data offset |
//! | 12 | 4 | data type |
//! | 16 | 2 | flags (`VALUE_COMP_NAME` 0x0001 = Latin-1 name) |
//! | 18 | 2 | spare |
//! | 20 | ... | value name |
//!
//! The key's value list is a plain cell holding the vk offsets (unsorted).
//!
//! `Hive`'s methods here read a key's value list and a value's data wherever it lives (inline in
//! the vk, a plain cell, or a `db` record), store new data, and list the cells it occupies.

use std::borrow::Cow;

use crate::big_data::{self, SEGMENT_SIZE};
use crate::cell::{file_offset, require_len, require_signature};
use crate::{name, Error, Hive, Result};
use reseal_nt::le;

pub(crate) const DATA_SIZE: usize = 4;
pub(crate) const DATA_OFFSET: usize = 8;
pub(crate) const DATA_TYPE: usize = 12;
const FLAGS: usize = 16;
const NAME: usize = 20;

/// The value name is stored in Latin-1.
const VALUE_COMP_NAME: u16 = 0x0001;
/// Set in the data size when the data lives in the data offset field.
pub(crate) const DATA_INLINE: u32 = 0x8000_0000;
/// At most this many bytes are stored inline.
pub(crate) const MAX_INLINE: usize = 4;

/// A view of a key value's cell data.
#[derive(Clone, Copy)]
pub(crate) struct KeyValue<'a> {
    data: &'a [u8],
}

impl<'a> KeyValue<'a> {
    pub(crate) fn parse(data: &'a [u8], offset: u32) -> Result<Self> {
        require_len(data, NAME, offset, "key value")?;
        require_signature(data, "vk", offset)?;
        let value = KeyValue { data };
        require_len(data, NAME + value.name_length(), offset, "key value name")?;
        Ok(value)
    }

    fn name_length(&self) -> usize {
        usize::from(le::u16_at(self.data, 2).unwrap_or_default())
    }
    fn name_bytes(&self) -> &'a [u8] {
        &self.data[NAME..NAME + self.name_length()]
    }
    fn compressed(&self) -> bool {
        le::u16_at(self.data, FLAGS).unwrap_or_default() & VALUE_COMP_NAME != 0
    }
    pub(crate) fn name(&self) -> String {
        name::decode(self.name_bytes(), self.compressed())
    }
    pub(crate) fn name_units(&self) -> Vec<u16> {
        name::units(self.name_bytes(), self.compressed())
    }
    /// The raw data size field (with the inline bit).
    pub(crate) fn raw_data_size(&self) -> u32 {
        le::u32_at(self.data, DATA_SIZE).unwrap_or_default()
    }
    /// The data length in bytes.
    pub(crate) fn data_len(&self) -> u32 {
        self.raw_data_size() & !DATA_INLINE
    }
    pub(crate) fn is_inline(&self) -> bool {
        self.raw_data_size() & DATA_INLINE != 0
    }
    pub(crate) fn data_offset(&self) -> u32 {
        le::u32_at(self.data, DATA_OFFSET).unwrap_or_default()
    }
    /// The bytes of the data offset field (the inline data).
    pub(crate) fn inline_bytes(&self) -> &'a [u8] {
        &self.data[DATA_OFFSET..DATA_OFFSET + 4]
    }
    pub(crate) fn data_type(&self) -> u32 {
        le::u32_at(self.data, DATA_TYPE).unwrap_or_default()
    }
}

/// The cell data of a new key value named `value_name` (its data fields are filled in later).
pub(crate) fn encode(value_name: &str) -> Vec<u8> {
    let (raw, compressed) = name::encode(value_name);
    let mut data = vec![0u8; NAME];
    data[..2].copy_from_slice(b"vk");
    data[2..4].copy_from_slice(&(raw.len() as u16).to_le_bytes());
    let flags = if compressed { VALUE_COMP_NAME } else { 0 };
    data[FLAGS..FLAGS + 2].copy_from_slice(&flags.to_le_bytes());
    data.extend_from_slice(&raw);
    data
}

impl Hive {
    pub(crate) fn value_offsets(&self, key: u32) -> Result<Vec<u32>> {
        let node = self.nk(key)?;
        let count = node.value_count() as usize;
        if count == 0 {
            return Ok(Vec::new());
        }
        let list = node.values_list();
        let data = self.store.cell(list)?;
        crate::cell::require_len(data, count.saturating_mul(4), list, "value list")?;
        Ok((0..count)
            .map(|i| le::u32_at(data, i * 4).unwrap_or_default())
            .collect())
    }

    pub(crate) fn find_value(&self, key: u32, wanted: &[u16]) -> Result<Option<u32>> {
        for offset in self.value_offsets(key)? {
            if reseal_nt::upcase::eq_ignore_case(&self.vk(offset)?.name_units(), wanted) {
                return Ok(Some(offset));
            }
        }
        Ok(None)
    }

    /// The data of the value at `offset`, following inline, plain-cell and big-data storage.
    pub(crate) fn value_data(&self, offset: u32) -> Result<Cow<'_, [u8]>> {
        let vk = self.vk(offset)?;
        let len = vk.data_len() as usize;
        if vk.is_inline() {
            if len > MAX_INLINE {
                return Err(Error::corrupt(
                    file_offset(offset),
                    format!("inline value data of {len} bytes (at most 4 fit)"),
                ));
            }
            return Ok(Cow::Borrowed(&vk.inline_bytes()[..len]));
        }
        if len == 0 {
            return Ok(Cow::Borrowed(&[]));
        }
        let data_offset = vk.data_offset();
        let cell = self.store.cell(data_offset)?;
        if self.is_big_data(len, cell) {
            return self.big_data(data_offset, len).map(Cow::Owned);
        }
        cell.get(..len).map(Cow::Borrowed).ok_or_else(|| {
            Error::corrupt(
                file_offset(data_offset),
                format!(
                    "value data of {len} bytes does not fit its cell of {} bytes",
                    cell.len()
                ),
            )
        })
    }

    /// Stores value data: inline (up to 4 bytes), a plain cell, or a big data record. Returns the
    /// vk's data size field (with the inline bit when inline) and data offset field, and whether
    /// the plain cell `reuse` was taken over (rewritten in place, or moved and freed).
    pub(crate) fn store_value_data(
        &mut self,
        data: &[u8],
        reuse: Option<u32>,
    ) -> Result<(u32, u32, bool)> {
        let len = u32::try_from(data.len())
            .ok()
            .filter(|&l| l & DATA_INLINE == 0)
            .ok_or_else(|| Error::InvalidArgument(format!("value data of {} bytes", data.len())))?;
        if data.len() <= MAX_INLINE {
            let mut inline = [0u8; 4];
            inline[..data.len()].copy_from_slice(data);
            return Ok((len | DATA_INLINE, u32::from_le_bytes(inline), false));
        }
        if data.len() <= SEGMENT_SIZE || self.minor_version() < 4 {
            return Ok((len, self.store.rewrite(reuse, data)?, reuse.is_some()));
        }
        let count = u16::try_from(data.len().div_ceil(SEGMENT_SIZE)).map_err(|_| {
            Error::InvalidArgument(format!("value data of {} bytes is too large", data.len()))
        })?;
        let mut segments = Vec::with_capacity(usize::from(count));
        for chunk in data.chunks(SEGMENT_SIZE) {
            // Every segment gets a full-size cell, the last one too, as Windows allocates them
            // (some readers take a segment's length from its cell).
            let segment = self.store.alloc(SEGMENT_SIZE)?;
            self.store.cell_mut(segment)?[..chunk.len()].copy_from_slice(chunk);
            segments.push(segment);
        }
        let list: Vec<u8> = segments.iter().flat_map(|s| s.to_le_bytes()).collect();
        let list = self.store.alloc_with(&list)?;
        let record = self.store.alloc_with(&big_data::encode(count, list))?;
        Ok((len, record, false))
    }

    /// The cells holding the data of the value at `vk` (not the vk itself), checked to hold
    /// its whole length: what an edit frees or rewrites must be what the value really uses.
    pub(crate) fn value_data_cells(&self, vk: u32) -> Result<Vec<u32>> {
        let value = self.vk(vk)?;
        let len = value.data_len() as usize;
        if value.is_inline() {
            if len > MAX_INLINE {
                return Err(Error::corrupt(
                    file_offset(vk),
                    format!("inline value data of {len} bytes (at most {MAX_INLINE} fit)"),
                ));
            }
            return Ok(Vec::new());
        }
        if len == 0 {
            return Ok(Vec::new());
        }
        let data_offset = value.data_offset();
        let cell = self.store.cell(data_offset)?;
        if !self.is_big_data(len, cell) {
            if cell.len() < len {
                return Err(Error::corrupt(
                    file_offset(vk),
                    format!(
                        "value data length is {len} bytes, but its cell at file offset {:#x} holds {}",
                        file_offset(data_offset),
                        cell.len()
                    ),
                ));
            }
            return Ok(vec![data_offset]);
        }
        let (record, mut cells) = self.big_data_segments(data_offset, len)?;
        cells.extend([record.segment_list, data_offset]);
        Ok(cells)
    }
}
