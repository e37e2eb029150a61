//! Key and value edits on a [`Hive`]: create, delete and rename keys, set and delete values.
//! Each changes only the cells it must; the subkey index, value data and freed subtrees are kept
//! up by `subkey_list`, `key_value` and `subtree`.

use crate::cell::{write_u32, write_u64, NIL};
use crate::data::ValueType;
use crate::hive::{new_key_fields, split_path};
use crate::key_node;
use crate::key_security;
use crate::key_value;
use crate::name::{self, name_bytes_len, units_of};
use crate::{Error, Hive, Result};

fn validate_key_name(key_name: &str) -> Result<()> {
    let len = key_name.encode_utf16().count();
    if key_name.is_empty() || key_name.contains('\\') || len > name::MAX_KEY_NAME_LEN {
        return Err(Error::InvalidArgument(format!(
            "key name {key_name:?} must be 1 to {} characters without a backslash",
            name::MAX_KEY_NAME_LEN
        )));
    }
    Ok(())
}

fn validate_value_name(value_name: &str) -> Result<()> {
    if value_name.encode_utf16().count() > name::MAX_VALUE_NAME_LEN {
        return Err(Error::InvalidArgument(format!(
            "value name of {} characters is longer than {}",
            value_name.chars().count(),
            name::MAX_VALUE_NAME_LEN
        )));
    }
    Ok(())
}

impl Hive {
    /// Creates the key at `path` and any missing keys above it. Each new key shares its parent's
    /// security descriptor (reference count increased) and gets the current time as last-written
    /// time. Returns `false` when the key already existed (nothing changes then).
    pub fn create_key(&mut self, path: &str) -> Result<bool> {
        self.store.prepare_for_edits()?;
        let components = split_path(path)?;
        for component in &components {
            validate_key_name(component)?;
        }
        let existing = self.checked_keys(&components)?;
        let mut key = *existing.last().expect("the root is always there");
        let missing = &components[existing.len() - 1..];
        for component in missing {
            self.modified = true;
            key = self.add_subkey(key, component)?;
        }
        Ok(!missing.is_empty())
    }

    /// Deletes the key at `path` with all its subkeys and values, freeing their cells and dropping
    /// security descriptor references (freeing an `sk` at zero). Returns `false` when absent.
    /// The root key cannot be deleted.
    pub fn delete_key(&mut self, path: &str) -> Result<bool> {
        self.store.prepare_for_edits()?;
        let Some((parent, key)) = self.find_with_parent(path)? else {
            return Ok(false);
        };
        let doomed = self.subtree_cells(key)?;
        self.modified = true;
        self.remove_subkey(parent, key)?;
        self.release(doomed)?;
        Ok(true)
    }

    /// Renames the key at `path` (last component) to `new_name`, keeping its subkeys, values,
    /// security and class; the parent's subkey list is re-sorted. Errors if a sibling has that name.
    /// The root key (`path` `""`) can only get a name of the same encoded length, written
    /// where the old one stands (the root's cell is not moved).
    pub fn rename_key(&mut self, path: &str, new_name: &str) -> Result<()> {
        let now = self.now().0;
        self.store.prepare_for_edits()?;
        validate_key_name(new_name)?;
        if split_path(path)?.is_empty() {
            return self.rename_root_in_place(new_name, now);
        }
        let Some((parent, key)) = self.find_with_parent(path)? else {
            return Err(Error::KeyNotFound(path.to_string()));
        };
        let new_units = units_of(new_name);
        if let Some(sibling) = self.find_subkey(parent, &new_units)? {
            if sibling != key {
                return Err(Error::InvalidArgument(format!(
                    "cannot rename {path:?} to {new_name:?}: a sibling key has that name"
                )));
            }
        }
        self.modified = true;
        self.remove_subkey(parent, key)?;
        let (raw_name, compressed) = name::encode(new_name);
        let mut node = key_node::encode(self.store.cell(key)?, &raw_name, compressed);
        write_u64(&mut node, key_node::LAST_WRITTEN, now);
        let moved = self.store.rewrite(Some(key), &node)?;
        if moved != key {
            let children: Vec<u32> = self
                .subkey_index(moved)?
                .elements()
                .map(|e| e.offset)
                .collect();
            for child in children {
                self.nk(child)?;
                write_u32(self.store.cell_mut(child)?, key_node::PARENT, moved);
            }
        }
        self.insert_subkey(parent, moved, &new_units)
    }

    /// Sets value `name` ("" = default value) of the existing key at `path`, creating or
    /// replacing it. Data above 16344 bytes goes into a big-data (`db`) record when the hive's
    /// minor version is >= 4. The key's last-written time and maxima are updated.
    pub fn set_value(
        &mut self,
        path: &str,
        name: &str,
        value_type: ValueType,
        data: &[u8],
    ) -> Result<()> {
        let now = self.now().0;
        self.store.prepare_for_edits()?;
        validate_value_name(name)?;
        let key = self.existing_key(path)?;
        let existing = self.find_value(key, &units_of(name))?;
        let old_data_cells = match existing {
            Some(vk) => self.value_data_cells(vk)?,
            None => Vec::new(),
        };
        self.modified = true;
        // A plain data cell is rewritten in place when the new data also goes into a plain cell.
        let reusable = match old_data_cells.as_slice() {
            [plain] => Some(*plain),
            _ => None,
        };
        let (raw_size, data_offset, reused) = self.store_value_data(data, reusable)?;
        let vk = match existing {
            Some(vk) => vk,
            None => self.append_value(key, name)?,
        };
        let cell = self.store.cell_mut(vk)?;
        write_u32(cell, key_value::DATA_SIZE, raw_size);
        write_u32(cell, key_value::DATA_OFFSET, data_offset);
        write_u32(cell, key_value::DATA_TYPE, value_type.0);
        if !reused {
            for cell in old_data_cells {
                self.store.free(cell)?;
            }
        }
        let name_len = name_bytes_len(&units_of(name));
        let node = self.nk(key)?;
        let (max_name, max_data) = (node.max_value_name(), node.max_value_data());
        let cell = self.store.cell_mut(key)?;
        write_u32(cell, key_node::MAX_VALUE_NAME, max_name.max(name_len));
        write_u32(
            cell,
            key_node::MAX_VALUE_DATA,
            max_data.max(data.len() as u32),
        );
        write_u64(cell, key_node::LAST_WRITTEN, now);
        Ok(())
    }

    /// Deletes value `name` of the key at `path`. Returns `false` when the key or value is absent.
    pub fn delete_value(&mut self, path: &str, name: &str) -> Result<bool> {
        let now = self.now().0;
        self.store.prepare_for_edits()?;
        let components = split_path(path)?;
        let keys = self.checked_keys(&components)?;
        if keys.len() <= components.len() {
            return Ok(false);
        }
        let key = *keys.last().expect("the root is always there");
        let Some(vk) = self.find_value(key, &units_of(name))? else {
            return Ok(false);
        };
        let mut doomed = self.value_data_cells(vk)?;
        doomed.push(vk);
        self.modified = true;
        let node = self.nk(key)?;
        let list = node.values_list();
        let remaining: Vec<u32> = self
            .value_offsets(key)?
            .into_iter()
            .filter(|&v| v != vk)
            .collect();
        let new_list = if remaining.is_empty() {
            self.store.free(list)?;
            NIL
        } else {
            let data: Vec<u8> = remaining.iter().flat_map(|v| v.to_le_bytes()).collect();
            self.store.rewrite(Some(list), &data)?
        };
        let cell = self.store.cell_mut(key)?;
        write_u32(cell, key_node::VALUES_LIST, new_list);
        write_u32(cell, key_node::VALUE_COUNT, remaining.len() as u32);
        if remaining.is_empty() {
            // As Windows does when a key's last value goes.
            write_u32(cell, key_node::MAX_VALUE_NAME, 0);
            write_u32(cell, key_node::MAX_VALUE_DATA, 0);
        }
        write_u64(cell, key_node::LAST_WRITTEN, now);
        for cell in doomed {
            self.store.free(cell)?;
        }
        Ok(true)
    }

    /// The key at `path` with its parent, or `None` when absent. The root has no parent: naming it
    /// is an error.
    /// Writes `new_name` over the root key's name when it encodes to as many bytes, the same
    /// way (Latin-1 or UTF-16).
    fn rename_root_in_place(&mut self, new_name: &str, now: u64) -> Result<()> {
        let root = self.base_block().root_cell_offset();
        let node = self.nk(root)?;
        let (raw_name, compressed) = name::encode(new_name);
        let was_compressed = node.flags() & key_node::KEY_COMP_NAME != 0;
        let old_length = usize::from(node.name_length());
        if raw_name.len() != old_length || compressed != was_compressed {
            return Err(Error::InvalidArgument(format!(
                "the root key {:?} can only be renamed to a name of the same length: its cell \
                 is not moved",
                node.name()
            )));
        }
        self.modified = true;
        let cell = self.store.cell_mut(root)?;
        cell[key_node::NAME..key_node::NAME + old_length].copy_from_slice(&raw_name);
        write_u64(cell, key_node::LAST_WRITTEN, now);
        Ok(())
    }

    fn find_with_parent(&self, path: &str) -> Result<Option<(u32, u32)>> {
        let components = split_path(path)?;
        if components.is_empty() {
            return Err(Error::InvalidArgument(
                "the root key cannot be deleted or renamed".to_string(),
            ));
        }
        let keys = self.checked_keys(&components)?;
        Ok(match keys[..] {
            [.., parent, key] if keys.len() > components.len() => Some((parent, key)),
            _ => None,
        })
    }

    fn existing_key(&self, path: &str) -> Result<u32> {
        let components = split_path(path)?;
        let keys = self.checked_keys(&components)?;
        if keys.len() <= components.len() {
            return Err(Error::KeyNotFound(path.to_string()));
        }
        Ok(*keys.last().expect("the root is always there"))
    }

    /// The keys from the root along `components` as far as they exist (the root first), each
    /// checked ([`Hive::check_key`]) before it is searched: an edit never follows or changes a
    /// damaged structure, it refuses it with the offset and the reason before any byte changes.
    fn checked_keys(&self, components: &[&str]) -> Result<Vec<u32>> {
        let mut key = self.root()?.offset;
        self.check_key(key)?;
        let mut keys = vec![key];
        for component in components {
            match self.find_subkey(key, &units_of(component))? {
                Some(subkey) => {
                    self.check_key(subkey)?;
                    keys.push(subkey);
                    key = subkey;
                }
                None => break,
            }
        }
        Ok(keys)
    }

    /// Creates key `key_name` below `parent` and links it into the parent's subkey list.
    fn add_subkey(&mut self, parent: u32, key_name: &str) -> Result<u32> {
        let security = self.nk(parent)?.security();
        self.sk(security)?;
        let (raw_name, compressed) = name::encode(key_name);
        let node = key_node::encode(
            &new_key_fields(parent, security, self.now()),
            &raw_name,
            compressed,
        );
        let key = self.store.alloc_with(&node)?;
        let count = self.sk(security)?.reference_count();
        write_u32(
            self.store.cell_mut(security)?,
            key_security::REFERENCE_COUNT,
            count.saturating_add(1),
        );
        self.insert_subkey(parent, key, &units_of(key_name))?;
        Ok(key)
    }

    /// Creates an empty value `value_name` for `key` and appends it to the key's value list.
    fn append_value(&mut self, key: u32, value_name: &str) -> Result<u32> {
        let vk = self.store.alloc_with(&key_value::encode(value_name))?;
        let mut offsets = self.value_offsets(key)?;
        let node = self.nk(key)?;
        let old_list = (!offsets.is_empty()).then_some(node.values_list());
        offsets.push(vk);
        let data: Vec<u8> = offsets.iter().flat_map(|v| v.to_le_bytes()).collect();
        let list = self.store.rewrite(old_list, &data)?;
        let cell = self.store.cell_mut(key)?;
        write_u32(cell, key_node::VALUES_LIST, list);
        write_u32(cell, key_node::VALUE_COUNT, offsets.len() as u32);
        Ok(vk)
    }
}
