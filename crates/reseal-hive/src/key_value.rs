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

use crate::cell::{read_u16, read_u32, require_len, require_signature};
use crate::{name, Result};

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
        usize::from(read_u16(self.data, 2))
    }
    fn name_bytes(&self) -> &'a [u8] {
        &self.data[NAME..NAME + self.name_length()]
    }
    fn compressed(&self) -> bool {
        read_u16(self.data, FLAGS) & VALUE_COMP_NAME != 0
    }
    pub(crate) fn name(&self) -> String {
        name::decode(self.name_bytes(), self.compressed())
    }
    pub(crate) fn name_units(&self) -> Vec<u16> {
        name::units(self.name_bytes(), self.compressed())
    }
    /// The raw data size field (with the inline bit).
    pub(crate) fn raw_data_size(&self) -> u32 {
        read_u32(self.data, DATA_SIZE)
    }
    /// The data length in bytes.
    pub(crate) fn data_len(&self) -> u32 {
        self.raw_data_size() & !DATA_INLINE
    }
    pub(crate) fn is_inline(&self) -> bool {
        self.raw_data_size() & DATA_INLINE != 0
    }
    pub(crate) fn data_offset(&self) -> u32 {
        read_u32(self.data, DATA_OFFSET)
    }
    /// The bytes of the data offset field (the inline data).
    pub(crate) fn inline_bytes(&self) -> &'a [u8] {
        &self.data[DATA_OFFSET..DATA_OFFSET + 4]
    }
    pub(crate) fn data_type(&self) -> u32 {
        read_u32(self.data, DATA_TYPE)
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
