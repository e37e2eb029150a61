//! Key nodes (`nk`): one registry key.
//!
//! Layout of the cell data (msuhanov's specification, "Key node"):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 2 | signature `nk` |
//! | 2 | 2 | flags (`KEY_COMP_NAME` 0x20, `KEY_SYM_LINK` 0x10, `KEY_NO_DELETE` 0x8, `KEY_HIVE_ENTRY` 0x4, ...) |
//! | 4 | 8 | last written timestamp (FILETIME) |
//! | 12 | 4 | access bits |
//! | 16 | 4 | parent key node offset |
//! | 20 | 4 | number of subkeys |
//! | 24 | 4 | number of volatile subkeys |
//! | 28 | 4 | subkeys list offset |
//! | 32 | 4 | volatile subkeys list offset |
//! | 36 | 4 | number of key values |
//! | 40 | 4 | key values list offset |
//! | 44 | 4 | key security offset |
//! | 48 | 4 | class name offset |
//! | 52 | 4 | largest subkey name length (low 16 bits; the upper bits hold flags) |
//! | 56 | 4 | largest subkey class name length |
//! | 60 | 4 | largest value name length |
//! | 64 | 4 | largest value data size |
//! | 68 | 4 | WorkVar |
//! | 72 | 2 | key name length (bytes) |
//! | 74 | 2 | class name length (bytes) |
//! | 76 | ... | key name (Latin-1 when `KEY_COMP_NAME`, UTF-16LE otherwise) |

use crate::cell::{require_len, require_signature};
use crate::{name, Result};
use reseal_nt::le;

pub(crate) const FLAGS: usize = 2;
pub(crate) const LAST_WRITTEN: usize = 4;
pub(crate) const PARENT: usize = 16;
pub(crate) const SUBKEY_COUNT: usize = 20;
pub(crate) const SUBKEYS_LIST: usize = 28;
pub(crate) const VOLATILE_SUBKEYS_LIST: usize = 32;
pub(crate) const VALUE_COUNT: usize = 36;
pub(crate) const VALUES_LIST: usize = 40;
pub(crate) const SECURITY: usize = 44;
pub(crate) const CLASS_NAME: usize = 48;
pub(crate) const MAX_SUBKEY_NAME: usize = 52;
pub(crate) const MAX_SUBKEY_CLASS: usize = 56;
pub(crate) const MAX_VALUE_NAME: usize = 60;
pub(crate) const MAX_VALUE_DATA: usize = 64;
pub(crate) const NAME_LENGTH: usize = 72;
pub(crate) const CLASS_LENGTH: usize = 74;
pub(crate) const NAME: usize = 76;

/// The key name is stored in Latin-1, one byte per character.
pub(crate) const KEY_COMP_NAME: u16 = 0x0020;
/// The root key of a hive.
pub(crate) const KEY_HIVE_ENTRY: u16 = 0x0004;
/// The key cannot be deleted.
pub(crate) const KEY_NO_DELETE: u16 = 0x0008;
/// Only the low 16 bits of "largest subkey name length" are a length.
pub(crate) const MAX_SUBKEY_NAME_MASK: u32 = 0xFFFF;

/// A view of a key node's cell data.
#[derive(Clone, Copy)]
pub(crate) struct KeyNode<'a> {
    data: &'a [u8],
}

impl<'a> KeyNode<'a> {
    /// Checks the signature and that the fixed fields and the name fit in the cell.
    pub(crate) fn parse(data: &'a [u8], offset: u32) -> Result<Self> {
        require_len(data, NAME, offset, "key node")?;
        require_signature(data, "nk", offset)?;
        let node = KeyNode { data };
        require_len(
            data,
            NAME + usize::from(node.name_length()),
            offset,
            "key node name",
        )?;
        Ok(node)
    }

    pub(crate) fn flags(&self) -> u16 {
        le::u16_at(self.data, FLAGS).unwrap_or_default()
    }
    pub(crate) fn last_written(&self) -> u64 {
        le::u64_at(self.data, LAST_WRITTEN).unwrap_or_default()
    }
    pub(crate) fn parent(&self) -> u32 {
        le::u32_at(self.data, PARENT).unwrap_or_default()
    }
    pub(crate) fn subkey_count(&self) -> u32 {
        le::u32_at(self.data, SUBKEY_COUNT).unwrap_or_default()
    }
    pub(crate) fn subkeys_list(&self) -> u32 {
        le::u32_at(self.data, SUBKEYS_LIST).unwrap_or_default()
    }
    pub(crate) fn value_count(&self) -> u32 {
        le::u32_at(self.data, VALUE_COUNT).unwrap_or_default()
    }
    pub(crate) fn values_list(&self) -> u32 {
        le::u32_at(self.data, VALUES_LIST).unwrap_or_default()
    }
    pub(crate) fn security(&self) -> u32 {
        le::u32_at(self.data, SECURITY).unwrap_or_default()
    }
    pub(crate) fn class_name(&self) -> u32 {
        le::u32_at(self.data, CLASS_NAME).unwrap_or_default()
    }
    pub(crate) fn class_length(&self) -> u16 {
        le::u16_at(self.data, CLASS_LENGTH).unwrap_or_default()
    }
    pub(crate) fn max_subkey_name(&self) -> u32 {
        le::u32_at(self.data, MAX_SUBKEY_NAME).unwrap_or_default()
    }
    pub(crate) fn max_value_name(&self) -> u32 {
        le::u32_at(self.data, MAX_VALUE_NAME).unwrap_or_default()
    }
    pub(crate) fn max_value_data(&self) -> u32 {
        le::u32_at(self.data, MAX_VALUE_DATA).unwrap_or_default()
    }
    pub(crate) fn name_length(&self) -> u16 {
        le::u16_at(self.data, NAME_LENGTH).unwrap_or_default()
    }
    fn name_bytes(&self) -> &'a [u8] {
        &self.data[NAME..NAME + usize::from(self.name_length())]
    }
    fn compressed(&self) -> bool {
        self.flags() & KEY_COMP_NAME != 0
    }
    pub(crate) fn name(&self) -> String {
        name::decode(self.name_bytes(), self.compressed())
    }
    pub(crate) fn name_units(&self) -> Vec<u16> {
        name::units(self.name_bytes(), self.compressed())
    }
    /// Compares the key's name with `upcased` (see [`name::compare_upcased`]).
    pub(crate) fn compare_name(&self, upcased: &[u16]) -> std::cmp::Ordering {
        name::compare_upcased(self.name_bytes(), self.compressed(), upcased)
    }
}

/// The cell data of a key node named `key_name` (raw stored bytes, `compressed` = Latin-1) with
/// everything else taken from `fields`: a template whose fixed part (bytes 0..76) is copied.
pub(crate) fn encode(fields: &[u8], key_name: &[u8], compressed: bool) -> Vec<u8> {
    let mut data = fields[..NAME].to_vec();
    data[..2].copy_from_slice(b"nk");
    let flags = le::u16_at(&data, FLAGS).unwrap_or_default();
    let flags = if compressed {
        flags | KEY_COMP_NAME
    } else {
        flags & !KEY_COMP_NAME
    };
    data[FLAGS..FLAGS + 2].copy_from_slice(&flags.to_le_bytes());
    data[NAME_LENGTH..NAME_LENGTH + 2].copy_from_slice(&(key_name.len() as u16).to_le_bytes());
    data.extend_from_slice(key_name);
    data
}
