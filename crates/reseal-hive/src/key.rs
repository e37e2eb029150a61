//! [`Key`]: a read view of one key (nk cell) of an open [`Hive`].

use std::borrow::Cow;

use crate::cell::{file_offset, NIL};
use crate::key_node::KeyNode;
use crate::name::units_of;
use crate::{Error, Hive, Result, Value};

/// Windows refuses keys nested deeper than this; a deeper chain can only be a cycle in the lists.
pub(crate) const MAX_KEY_DEPTH: u16 = 512;

/// A key (nk cell) of an open hive.
#[derive(Clone, Copy)]
pub struct Key<'h> {
    pub(crate) hive: &'h Hive,
    /// Cell offset, relative to the start of the hive bins data.
    pub(crate) offset: u32,
    /// Levels below the root; bounded by [`MAX_KEY_DEPTH`] so that a cycle cannot recurse forever.
    pub(crate) depth: u16,
}

impl<'h> Key<'h> {
    fn node(&self) -> Result<KeyNode<'h>> {
        self.hive.nk(self.offset)
    }
    /// The key's name as stored (ASCII/Latin-1 or UTF-16 names both become a `String`).
    pub fn name(&self) -> Result<String> {
        Ok(self.node()?.name())
    }
    /// The cell offset of this key's nk record (relative to the hive bins data), for diagnostics.
    pub fn cell_offset(&self) -> u32 {
        self.offset
    }
    /// Last written time (FILETIME).
    pub fn last_written(&self) -> Result<u64> {
        Ok(self.node()?.last_written())
    }
    /// The class name, if the key has one.
    pub fn class_name(&self) -> Result<Option<String>> {
        let node = self.node()?;
        let (offset, len) = (node.class_name(), usize::from(node.class_length()));
        if offset == NIL || len == 0 {
            return Ok(None);
        }
        let cell = self.hive.store.cell(offset)?;
        crate::cell::require_len(cell, len, offset, "class name")?;
        Ok(Some(crate::name::decode(&cell[..len], false)))
    }
    /// The key's flags word (KEY_COMP_NAME 0x20, KEY_SYM_LINK 0x10, KEY_HIVE_ENTRY 0x4, ...).
    pub fn flags(&self) -> Result<u16> {
        Ok(self.node()?.flags())
    }
    /// The self-relative security descriptor from the key's sk cell.
    pub fn security_descriptor(&self) -> Result<Cow<'h, [u8]>> {
        let sk = self.hive.sk(self.node()?.security())?;
        Ok(Cow::Borrowed(sk.descriptor()))
    }
    /// The subkeys, in the order of the subkey list (sorted by upper-cased name).
    pub fn subkeys(&self) -> Result<Vec<Key<'h>>> {
        if self.depth >= MAX_KEY_DEPTH {
            return Err(Error::corrupt(
                file_offset(self.offset),
                format!("keys nested deeper than {MAX_KEY_DEPTH} levels (a cycle in subkey lists)"),
            ));
        }
        let index = self.hive.subkey_index(self.offset)?;
        index
            .elements()
            .map(|e| {
                if e.offset == self.offset {
                    return Err(Error::corrupt(
                        file_offset(self.offset),
                        "key lists itself as a subkey",
                    ));
                }
                self.hive.nk(e.offset)?;
                Ok(Key {
                    hive: self.hive,
                    offset: e.offset,
                    depth: self.depth + 1,
                })
            })
            .collect()
    }
    /// The subkey named `name` (case-insensitive).
    pub fn subkey(&self, name: &str) -> Result<Option<Key<'h>>> {
        if self.depth >= MAX_KEY_DEPTH {
            return Ok(None);
        }
        Ok(self
            .hive
            .find_subkey(self.offset, &units_of(name))?
            .map(|offset| Key {
                hive: self.hive,
                offset,
                depth: self.depth + 1,
            }))
    }
    /// The values, in the order of the value list.
    pub fn values(&self) -> Result<Vec<Value<'h>>> {
        self.hive
            .value_offsets(self.offset)?
            .into_iter()
            .map(|offset| {
                self.hive.vk(offset)?;
                Ok(Value {
                    hive: self.hive,
                    offset,
                })
            })
            .collect()
    }
    /// The value named `name` ("" = default value; case-insensitive).
    pub fn value(&self, name: &str) -> Result<Option<Value<'h>>> {
        Ok(self
            .hive
            .find_value(self.offset, &units_of(name))?
            .map(|offset| Value {
                hive: self.hive,
                offset,
            }))
    }
}
