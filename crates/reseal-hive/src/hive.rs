//! [`Hive`]: an open hive file held in memory, with read views ([`Key`], [`Value`]) and in-place edits.
//!
//! Keys and values are addressed by path: backslash-separated key names below the root key
//! (`"ControlSet001\\Control\\ComputerName"`; `""` is the root), compared case-insensitively with
//! Unicode upper-casing as Windows does. The root key's own name is never part of a path.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::path::Path;

use crate::base_block::{self, BaseBlock, BASE_BLOCK_SIZE};
use crate::big_data::{self, BigData, SEGMENT_SIZE};
use crate::cell::{file_offset, read_u32, write_u32, write_u64, Store, NIL};
use crate::data::ValueType;
use crate::key_node::{self, KeyNode};
use crate::key_security::{self, KeySecurity};
use crate::key_value::{self, KeyValue};
use crate::log::ReplayReport;
use crate::name;
use crate::subkey_list::{self, Element, ListKind, SubkeyList, MAX_LEAF_ELEMENTS};
use crate::{Error, Result};

/// Windows refuses keys nested deeper than this; a deeper chain can only be a cycle in the lists.
pub(crate) const MAX_KEY_DEPTH: u16 = 512;

/// An open hive: the whole file in memory.
///
/// Reading never changes the bytes. Edits change only the cells they must (plus the base block on
/// commit), so untouched keys, values, security descriptors and classes stay byte-identical.
pub struct Hive {
    pub(crate) store: Store,
    was_dirty: bool,
    modified: bool,
    noted_log_sequence: Option<u32>,
}

/// The current time as a Windows FILETIME (100 ns ticks since 1601-01-01 UTC).
pub(crate) fn now_filetime() -> u64 {
    const UNIX_EPOCH_AS_FILETIME: u64 = 116_444_736_000_000_000;
    let since_unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    UNIX_EPOCH_AS_FILETIME + (since_unix.as_nanos() / 100) as u64
}

/// The components of a key path; a leading or trailing backslash is ignored.
fn split_path(path: &str) -> Result<Vec<&str>> {
    let trimmed = path.strip_prefix('\\').unwrap_or(path);
    let trimmed = trimmed.strip_suffix('\\').unwrap_or(trimmed);
    if trimmed.is_empty() {
        return Ok(Vec::new());
    }
    let components: Vec<&str> = trimmed.split('\\').collect();
    if components.iter().any(|c| c.is_empty()) {
        return Err(Error::InvalidArgument(format!(
            "key path {path:?} has an empty component"
        )));
    }
    Ok(components)
}

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

fn units_of(text: &str) -> Vec<u16> {
    text.encode_utf16().collect()
}

/// "Largest name length" fields count bytes of the UTF-16LE form.
fn name_bytes_len(units: &[u16]) -> u32 {
    units.len() as u32 * 2
}

/// One leaf of a key's subkey index.
pub(crate) struct Leaf {
    pub(crate) offset: u32,
    pub(crate) kind: ListKind,
    pub(crate) elements: Vec<Element>,
}

/// A key's subkey list as stored: one leaf, or an `ri` over several leaves.
pub(crate) struct SubkeyIndex {
    pub(crate) ri: Option<u32>,
    pub(crate) leaves: Vec<Leaf>,
}

impl SubkeyIndex {
    pub(crate) fn elements(&self) -> impl Iterator<Item = &Element> {
        self.leaves.iter().flat_map(|leaf| leaf.elements.iter())
    }
}

/// Where a name is or belongs in a key's subkey list (see [`Hive::locate_subkey`]).
struct Place {
    ri: Option<u32>,
    leaf_offsets: Vec<u32>,
    /// The leaf holding the name or its place.
    leaf_at: usize,
    /// The name's position in that leaf: the first element that does not sort before it.
    position: usize,
    /// The key with that name, if there is one.
    found: Option<u32>,
}

/// [`slice::partition_point`] over `0..len` with a predicate that can fail.
fn try_partition_point(
    len: usize,
    mut is_before: impl FnMut(usize) -> Result<bool>,
) -> Result<usize> {
    let (mut low, mut high) = (0, len);
    while low < high {
        let middle = low + (high - low) / 2;
        if is_before(middle)? {
            low = middle + 1;
        } else {
            high = middle;
        }
    }
    Ok(low)
}

impl Hive {
    /// Opens hive file bytes as they are, without log replay. A dirty hive opens (see
    /// [`Hive::was_dirty`]); structural errors are reported with their file offset.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Hive> {
        let base = BaseBlock::parse(&bytes)?;
        if base.major_version() != 1 || !(3..=6).contains(&base.minor_version()) {
            return Err(Error::Unsupported(format!(
                "regf format version {}.{} (this engine reads 1.3 to 1.6)",
                base.major_version(),
                base.minor_version()
            )));
        }
        if base.file_type() != base_block::FILE_TYPE_PRIMARY {
            return Err(Error::Unsupported(format!(
                "file type {} is a transaction log, not a hive",
                base.file_type()
            )));
        }
        let was_dirty = base.is_dirty();
        let bins_size = base.hive_bins_data_size();
        let root = base.root_cell_offset();
        let hive = Hive {
            store: Store::new(bytes, bins_size)?,
            was_dirty,
            modified: false,
            noted_log_sequence: None,
        };
        hive.nk(root)?;
        Ok(hive)
    }

    /// Replays `logs` (name, bytes) into `bytes` with Windows' rules, then opens the result.
    pub fn from_bytes_with_logs(
        bytes: Vec<u8>,
        logs: &[(&str, &[u8])],
    ) -> Result<(Hive, ReplayReport)> {
        let (recovered, report) = crate::log::replay(&bytes, logs)?;
        let mut hive = Hive::from_bytes(recovered)?;
        hive.note_log_sequence(report.max_log_sequence);
        Ok((hive, report))
    }

    /// Reads a hive file and its transaction logs (`<file>.LOG1`, `<file>.LOG2`, `<file>.LOG`,
    /// matched case-insensitively in the same directory) and replays them.
    pub fn open_file(path: &Path) -> Result<(Hive, ReplayReport)> {
        let read = |p: &Path| {
            std::fs::read(p).map_err(|source| Error::Io {
                path: p.to_path_buf(),
                source,
            })
        };
        let bytes = read(path)?;
        let mut logs = Vec::new();
        for log_path in log_files_beside(path)? {
            let log_name = log_path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            logs.push((log_name, read(&log_path)?));
        }
        let log_refs: Vec<(&str, &[u8])> = logs
            .iter()
            .map(|(n, b)| (n.as_str(), b.as_slice()))
            .collect();
        Hive::from_bytes_with_logs(bytes, &log_refs)
    }

    /// A new empty hive with a root key named `root_name` and format version 1.`minor_version`
    /// (3 to 6). The root key gets a default security descriptor (SYSTEM and Administrators full
    /// control, Everyone read), as offreg does for new hives.
    ///
    /// A version outside 3..=6 is clamped into it; a root name longer than 255 characters is cut.
    pub fn new_empty(root_name: &str, minor_version: u32) -> Hive {
        let root_name: String = root_name.chars().take(name::MAX_KEY_NAME_LEN).collect();
        Hive::build_empty(&root_name, minor_version.clamp(3, 6))
            .expect("a fresh hive bin has room for a root key and its security record")
    }

    fn build_empty(root_name: &str, minor_version: u32) -> Result<Hive> {
        let bin_size = crate::hbin::BIN_ALIGNMENT;
        let mut bytes = vec![0u8; BASE_BLOCK_SIZE + bin_size as usize];
        bytes[BASE_BLOCK_SIZE..BASE_BLOCK_SIZE + crate::hbin::HEADER_SIZE as usize]
            .copy_from_slice(&crate::hbin::new_header(0, bin_size));
        let first_cell = crate::hbin::HEADER_SIZE;
        write_u32(
            &mut bytes,
            BASE_BLOCK_SIZE + first_cell as usize,
            bin_size - first_cell,
        );
        let mut store = Store::new(bytes, bin_size)?;

        let (raw_name, compressed) = name::encode(root_name);
        let mut fields = new_key_fields(NIL, NIL);
        let flags = key_node::KEY_HIVE_ENTRY | key_node::KEY_NO_DELETE;
        fields[key_node::FLAGS..key_node::FLAGS + 2].copy_from_slice(&flags.to_le_bytes());
        let root = store.alloc_with(&key_node::encode(&fields, &raw_name, compressed))?;
        let descriptor = key_security::default_descriptor();
        let sk = store.alloc(key_security::encode(0, &descriptor).len())?;
        store.rewrite(Some(sk), &key_security::encode(sk, &descriptor))?;
        write_u32(store.cell_mut(root)?, key_node::SECURITY, sk);

        let mut base = base_block::write::new_base_block(minor_version, root, bin_size);
        base_block::write::set_last_written(&mut base, now_filetime());
        base_block::write::seal(&mut base);
        store.bytes[..BASE_BLOCK_SIZE].copy_from_slice(&base);
        Ok(Hive {
            store,
            was_dirty: false,
            modified: false,
            noted_log_sequence: None,
        })
    }

    /// Tells the hive the highest sequence number found in its logs, so [`Hive::commit`] writes
    /// sequence numbers above it.
    pub fn note_log_sequence(&mut self, max_log_sequence: Option<u32>) {
        self.noted_log_sequence = self.noted_log_sequence.max(max_log_sequence);
    }

    /// The current file bytes (not committed: edits are in the cells, the base block is unchanged
    /// until [`Hive::commit`]).
    pub fn bytes(&self) -> &[u8] {
        &self.store.bytes
    }

    /// `true` when the hive was dirty when opened by [`Hive::from_bytes`] (sequence numbers differ
    /// or bad checksum).
    pub fn was_dirty(&self) -> bool {
        self.was_dirty
    }

    fn base_block(&self) -> BaseBlock<'_> {
        BaseBlock::parse(&self.store.bytes).expect("the base block was checked when opening")
    }

    /// The format minor version (3 to 6).
    pub fn minor_version(&self) -> u32 {
        self.base_block().minor_version()
    }

    /// `true` once any edit has been made since opening or the last commit.
    pub fn is_modified(&self) -> bool {
        self.modified
    }

    /// The root key.
    pub fn root(&self) -> Result<Key<'_>> {
        let offset = self.base_block().root_cell_offset();
        self.nk(offset)?;
        Ok(Key {
            hive: self,
            offset,
            depth: 0,
        })
    }

    /// The key at `path` below the root, or `None` when any component does not exist.
    pub fn key(&self, path: &str) -> Result<Option<Key<'_>>> {
        let mut key = self.root()?;
        for component in split_path(path)? {
            match key.subkey(component)? {
                Some(subkey) => key = subkey,
                None => return Ok(None),
            }
        }
        Ok(Some(key))
    }

    /// Shorthand: the value `name` ("" = default value) of the key at `path`, if both exist.
    pub fn value(&self, path: &str, name: &str) -> Result<Option<Value<'_>>> {
        match self.key(path)? {
            Some(key) => key.value(name),
            None => Ok(None),
        }
    }

    /// Creates the key at `path` and any missing keys above it. Each new key shares its parent's
    /// security descriptor (reference count increased) and gets the current time as last-written
    /// time. Returns `false` when the key already existed (nothing changes then).
    pub fn create_key(&mut self, path: &str) -> Result<bool> {
        self.store.prepare_for_edits()?;
        let components = split_path(path)?;
        for component in &components {
            validate_key_name(component)?;
        }
        let mut key = self.root()?.offset;
        let mut created = false;
        for component in components {
            key = match self.find_subkey(key, &units_of(component))? {
                Some(existing) => existing,
                None => {
                    created = true;
                    self.modified = true;
                    self.add_subkey(key, component)?
                }
            };
        }
        Ok(created)
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
    pub fn rename_key(&mut self, path: &str, new_name: &str) -> Result<()> {
        self.store.prepare_for_edits()?;
        validate_key_name(new_name)?;
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
        write_u64(&mut node, key_node::LAST_WRITTEN, now_filetime());
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
        write_u64(cell, key_node::LAST_WRITTEN, now_filetime());
        Ok(())
    }

    /// Deletes value `name` of the key at `path`. Returns `false` when the key or value is absent.
    pub fn delete_value(&mut self, path: &str, name: &str) -> Result<bool> {
        self.store.prepare_for_edits()?;
        let Some(key) = self.key(path)?.map(|k| k.offset) else {
            return Ok(false);
        };
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
        write_u64(cell, key_node::LAST_WRITTEN, now_filetime());
        for cell in doomed {
            self.store.free(cell)?;
        }
        Ok(true)
    }

    /// Finishes the edits as a consistent, clean hive file and returns its bytes: primary sequence
    /// number bumped above the current one and above any noted log sequence, hive bins written,
    /// secondary set equal, last-written timestamp and checksum updated. An unmodified clean hive
    /// comes back byte-identical.
    pub fn commit(&mut self) -> Vec<u8> {
        self.seal();
        self.store.bytes.clone()
    }

    /// [`Hive::commit`] for a hive that is no longer needed: the committed bytes without a copy.
    pub fn into_committed(mut self) -> Vec<u8> {
        self.seal();
        self.store.bytes
    }

    /// Brings the base block up to date for a commit (see [`Hive::commit`]), in place.
    fn seal(&mut self) {
        let base = self.base_block();
        if !self.modified && !base.is_dirty() {
            return;
        }
        let sequence = base
            .primary_sequence()
            .max(base.secondary_sequence())
            .max(self.noted_log_sequence.unwrap_or(0))
            .saturating_add(1);
        let header = &mut self.store.bytes[..BASE_BLOCK_SIZE];
        base_block::write::set_primary_sequence(header, sequence);
        base_block::write::set_secondary_sequence(header, sequence);
        base_block::write::set_last_written(header, now_filetime());
        base_block::write::set_hive_bins_data_size(header, self.store.bins_size);
        base_block::write::seal(header);
        self.modified = false;
    }

    /// Commits and writes the hive to `path` atomically (temporary file in the same directory,
    /// fsync, rename over, fsync the directory), then empties any `.LOG1`/`.LOG2`/`.LOG` beside it
    /// so no stale entry can be replayed over the new contents.
    pub fn write_file_atomic(&mut self, path: &Path) -> Result<()> {
        use std::io::Write;
        let io_error = |p: &Path| {
            let p = p.to_path_buf();
            move |source| Error::Io { path: p, source }
        };
        // Sealed in place and written from the hive's own bytes: no second copy of the hive.
        self.seal();
        let bytes = &self.store.bytes;
        let file_name = path.file_name().ok_or_else(|| {
            Error::InvalidArgument(format!("{} has no file name", path.display()))
        })?;
        let dir = parent_dir(path);
        let temp = dir.join(format!(
            ".{}.{}.reseal-tmp",
            file_name.to_string_lossy(),
            std::process::id()
        ));
        let written = (|| {
            let mut file = std::fs::File::create(&temp)?;
            file.write_all(bytes)?;
            // The replaced file's permissions carry over to the new one.
            if let Ok(existing) = std::fs::metadata(path) {
                file.set_permissions(existing.permissions())?;
            }
            file.sync_all()
        })();
        if let Err(source) = written {
            let _ = std::fs::remove_file(&temp);
            return Err(Error::Io { path: temp, source });
        }
        if let Err(source) = std::fs::rename(&temp, path) {
            let _ = std::fs::remove_file(&temp);
            return Err(Error::Io {
                path: path.to_path_buf(),
                source,
            });
        }
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io_error(dir))?;
        for log in log_files_beside(path)? {
            std::fs::OpenOptions::new()
                .write(true)
                .truncate(true)
                .open(&log)
                .and_then(|f| f.sync_all())
                .map_err(io_error(&log))?;
        }
        Ok(())
    }

    // ---- reading helpers ----

    pub(crate) fn nk(&self, offset: u32) -> Result<KeyNode<'_>> {
        KeyNode::parse(self.store.cell(offset)?, offset)
    }

    pub(crate) fn vk(&self, offset: u32) -> Result<KeyValue<'_>> {
        KeyValue::parse(self.store.cell(offset)?, offset)
    }

    pub(crate) fn sk(&self, offset: u32) -> Result<KeySecurity<'_>> {
        KeySecurity::parse(self.store.cell(offset)?, offset)
    }

    /// The subkey index of the key at `key`: its leaves (and `ri`), each leaf read once, checked
    /// for leaves or keys listed twice.
    pub(crate) fn subkey_index(&self, key: u32) -> Result<SubkeyIndex> {
        let (ri, leaf_offsets) = self.subkey_leaf_offsets(key)?;
        // The key's list cell: the ri, or its only leaf.
        let list = ri.or(leaf_offsets.first().copied()).unwrap_or(NIL);
        let mut seen = HashSet::new();
        let mut leaves = Vec::with_capacity(leaf_offsets.len());
        for offset in leaf_offsets {
            if !seen.insert(offset) {
                return Err(Error::corrupt(
                    file_offset(list),
                    format!("index root lists leaf {offset:#x} twice"),
                ));
            }
            leaves.push(self.leaf(offset)?);
        }
        let mut keys = HashSet::new();
        if let Some(twice) = leaves
            .iter()
            .flat_map(|l| l.elements.iter())
            .find(|e| !keys.insert(e.offset))
        {
            return Err(Error::corrupt(
                file_offset(list),
                format!("subkey list names key {:#x} twice", twice.offset),
            ));
        }
        Ok(SubkeyIndex { ri, leaves })
    }

    /// The `ri` of the key at `key`, if its list has one, and the offsets of its leaves (none when
    /// the key has no subkeys). The leaves themselves are not read.
    fn subkey_leaf_offsets(&self, key: u32) -> Result<(Option<u32>, Vec<u32>)> {
        let node = self.nk(key)?;
        let list = node.subkeys_list();
        if node.subkey_count() == 0 || list == NIL {
            return Ok((None, Vec::new()));
        }
        let top = SubkeyList::parse(self.store.cell(list)?, list)?;
        Ok(match top.kind {
            ListKind::Ri => (Some(list), top.elements().map(|e| e.offset).collect()),
            _ => (None, vec![list]),
        })
    }

    /// The leaf list at `offset`, never an `ri` (an index root only points to leaves).
    fn leaf_list(&self, offset: u32) -> Result<SubkeyList<'_>> {
        let list = SubkeyList::parse(self.store.cell(offset)?, offset)?;
        if list.kind == ListKind::Ri {
            return Err(Error::corrupt(
                file_offset(offset),
                "an index root (ri) points to another index root",
            ));
        }
        Ok(list)
    }

    /// The leaf at `offset` with its elements.
    fn leaf(&self, offset: u32) -> Result<Leaf> {
        let list = self.leaf_list(offset)?;
        Ok(Leaf {
            offset,
            kind: list.kind,
            elements: list.elements().collect(),
        })
    }

    /// Where the name `upcased` (see [`reseal_nt::upcase::upcase_units`]) is or belongs in the
    /// subkey list of the key at `key`, found by binary search as Windows does (lists are sorted by
    /// upper-cased name): `None` when the key has no subkeys.
    fn locate_subkey(&self, key: u32, upcased: &[u16]) -> Result<Option<Place>> {
        let (ri, leaf_offsets) = self.subkey_leaf_offsets(key)?;
        let Some(last_leaf) = leaf_offsets.len().checked_sub(1) else {
            return Ok(None);
        };
        let sorts_before = |element: Element| -> Result<bool> {
            Ok(self.nk(element.offset)?.compare_name(upcased).is_lt())
        };
        // The first leaf whose last name sorts at or after the name, else the last leaf.
        let leaf_at = try_partition_point(leaf_offsets.len(), |i| {
            let leaf = self.leaf_list(leaf_offsets[i])?;
            match leaf.get(leaf.len().wrapping_sub(1)) {
                Some(last) => sorts_before(last),
                None => Ok(true),
            }
        })?
        .min(last_leaf);
        let leaf = self.leaf_list(leaf_offsets[leaf_at])?;
        let position = try_partition_point(leaf.len(), |i| match leaf.get(i) {
            Some(element) => sorts_before(element),
            None => Ok(false),
        })?;
        let found = match leaf.get(position) {
            Some(element) if self.nk(element.offset)?.compare_name(upcased).is_eq() => {
                Some(element.offset)
            }
            _ => None,
        };
        Ok(Some(Place {
            ri,
            leaf_offsets,
            leaf_at,
            position,
            found,
        }))
    }

    fn find_subkey(&self, key: u32, wanted: &[u16]) -> Result<Option<u32>> {
        Ok(self
            .locate_subkey(key, &reseal_nt::upcase::upcase_units(wanted))?
            .and_then(|place| place.found))
    }

    pub(crate) fn value_offsets(&self, key: u32) -> Result<Vec<u32>> {
        let node = self.nk(key)?;
        let count = node.value_count() as usize;
        if count == 0 {
            return Ok(Vec::new());
        }
        let list = node.values_list();
        let data = self.store.cell(list)?;
        crate::cell::require_len(data, count.saturating_mul(4), list, "value list")?;
        Ok((0..count).map(|i| read_u32(data, i * 4)).collect())
    }

    fn find_value(&self, key: u32, wanted: &[u16]) -> Result<Option<u32>> {
        for offset in self.value_offsets(key)? {
            if reseal_nt::upcase::eq_ignore_case(&self.vk(offset)?.name_units(), wanted) {
                return Ok(Some(offset));
            }
        }
        Ok(None)
    }

    /// `true` when a value of `len` bytes whose data cell is `cell` is stored as big data.
    fn is_big_data(&self, len: usize, cell: &[u8]) -> bool {
        self.minor_version() >= 4 && len > SEGMENT_SIZE && big_data::looks_like_big_data(cell)
    }

    /// The data of the value at `offset`, following inline, plain-cell and big-data storage.
    fn value_data(&self, offset: u32) -> Result<Cow<'_, [u8]>> {
        let vk = self.vk(offset)?;
        let len = vk.data_len() as usize;
        if vk.is_inline() {
            if len > key_value::MAX_INLINE {
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

    fn big_data(&self, offset: u32, len: usize) -> Result<Vec<u8>> {
        let record = BigData::parse(self.store.cell(offset)?, offset)?;
        let segments = big_data::segment_offsets(
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
        let mut data = Vec::with_capacity(len.min(self.store.bins_size as usize));
        for segment in segments {
            let wanted = (len - data.len()).min(SEGMENT_SIZE);
            if wanted == 0 {
                break;
            }
            let cell = self.store.cell(segment)?;
            let part = cell.get(..wanted).ok_or_else(|| {
                Error::corrupt(
                    file_offset(segment),
                    format!(
                        "big data segment of {} bytes, {wanted} expected",
                        cell.len()
                    ),
                )
            })?;
            data.extend_from_slice(part);
        }
        if data.len() < len {
            return Err(Error::corrupt(
                file_offset(offset),
                format!("big data record holds {} of {len} bytes", data.len()),
            ));
        }
        Ok(data)
    }

    // ---- editing helpers ----

    /// The key at `path` with its parent, or `None` when absent. The root has no parent: naming it
    /// is an error.
    fn find_with_parent(&self, path: &str) -> Result<Option<(u32, u32)>> {
        let components = split_path(path)?;
        let Some((last, above)) = components.split_last() else {
            return Err(Error::InvalidArgument(
                "the root key cannot be deleted or renamed".to_string(),
            ));
        };
        let Some(parent) = self.key(&above.join("\\"))? else {
            return Ok(None);
        };
        Ok(self
            .find_subkey(parent.offset, &units_of(last))?
            .map(|key| (parent.offset, key)))
    }

    fn existing_key(&self, path: &str) -> Result<u32> {
        self.key(path)?
            .map(|k| k.offset)
            .ok_or_else(|| Error::KeyNotFound(path.to_string()))
    }

    /// Creates key `key_name` below `parent` and links it into the parent's subkey list.
    fn add_subkey(&mut self, parent: u32, key_name: &str) -> Result<u32> {
        let security = self.nk(parent)?.security();
        self.sk(security)?;
        let (raw_name, compressed) = name::encode(key_name);
        let node = key_node::encode(&new_key_fields(parent, security), &raw_name, compressed);
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

    /// Inserts `key` (named `key_name`) into `parent`'s subkey list at its sorted place and updates
    /// the parent's subkey count, largest subkey name length and last-written time.
    fn insert_subkey(&mut self, parent: u32, key: u32, key_name: &[u16]) -> Result<()> {
        // A key without subkeys gets its first leaf.
        let place = self
            .locate_subkey(parent, &reseal_nt::upcase::upcase_units(key_name))?
            .unwrap_or(Place {
                ri: None,
                leaf_offsets: vec![NIL],
                leaf_at: 0,
                position: 0,
                found: None,
            });
        let mut leaf = match place.leaf_offsets[place.leaf_at] {
            NIL => Leaf {
                offset: NIL,
                kind: if self.minor_version() >= 5 {
                    ListKind::Lh
                } else {
                    ListKind::Lf
                },
                elements: Vec::new(),
            },
            offset => self.leaf(offset)?,
        };
        let element = Element {
            offset: key,
            hint: leaf.kind.hint(key_name),
        };
        leaf.elements.insert(place.position, element);
        self.write_subkey_leaf(parent, place.ri, place.leaf_offsets, place.leaf_at, leaf)?;

        let node = self.nk(parent)?;
        let (count, max_name) = (node.subkey_count(), node.max_subkey_name());
        let longest = (max_name & key_node::MAX_SUBKEY_NAME_MASK).max(name_bytes_len(key_name));
        let max_name = (max_name & !key_node::MAX_SUBKEY_NAME_MASK)
            | longest.min(key_node::MAX_SUBKEY_NAME_MASK);
        let cell = self.store.cell_mut(parent)?;
        write_u32(cell, key_node::SUBKEY_COUNT, count.saturating_add(1));
        write_u32(cell, key_node::MAX_SUBKEY_NAME, max_name);
        write_u64(cell, key_node::LAST_WRITTEN, now_filetime());
        Ok(())
    }

    /// Unlinks `key` from `parent`'s subkey list and updates the parent's count and last-written time.
    fn remove_subkey(&mut self, parent: u32, key: u32) -> Result<()> {
        let mut index = self.subkey_index(parent)?;
        let found = index.leaves.iter().enumerate().find_map(|(i, leaf)| {
            leaf.elements
                .iter()
                .position(|e| e.offset == key)
                .map(|at| (i, at))
        });
        let Some((leaf_at, position)) = found else {
            return Err(Error::corrupt(
                file_offset(parent),
                format!("key {key:#x} is missing from its parent's subkey list"),
            ));
        };
        let leaf_offsets = index.leaves.iter().map(|l| l.offset).collect();
        let mut leaf = index.leaves.swap_remove(leaf_at);
        leaf.elements.remove(position);
        self.write_subkey_leaf(parent, index.ri, leaf_offsets, leaf_at, leaf)?;
        let node = self.nk(parent)?;
        let count = node.subkey_count().saturating_sub(1);
        let max_name = node.max_subkey_name();
        let cell = self.store.cell_mut(parent)?;
        write_u32(cell, key_node::SUBKEY_COUNT, count);
        if count == 0 {
            // As Windows does when a key's last subkey goes; the upper bits are flags and stay.
            write_u32(
                cell,
                key_node::MAX_SUBKEY_NAME,
                max_name & !key_node::MAX_SUBKEY_NAME_MASK,
            );
            write_u32(cell, key_node::MAX_SUBKEY_CLASS, 0);
        }
        write_u64(cell, key_node::LAST_WRITTEN, now_filetime());
        Ok(())
    }

    /// Writes back `leaf`, leaf `changed` of the list whose `ri` and leaves are `ri` and
    /// `leaf_offsets` (its elements were edited): in place when it fits, split in two under an
    /// `ri` when it grew past [`MAX_LEAF_ELEMENTS`], dropped when empty. The `ri` and the parent's
    /// list offset are rewritten only when the set of leaves changed; other leaves are not touched.
    fn write_subkey_leaf(
        &mut self,
        parent: u32,
        ri: Option<u32>,
        leaf_offsets: Vec<u32>,
        changed: usize,
        mut leaf: Leaf,
    ) -> Result<()> {
        let mut after = leaf_offsets.clone();
        let old_offset = (leaf.offset != NIL).then_some(leaf.offset);
        if leaf.elements.is_empty() {
            if let Some(offset) = old_offset {
                self.store.free(offset)?;
            }
            after.remove(changed);
        } else if leaf.elements.len() > MAX_LEAF_ELEMENTS {
            let upper = leaf.elements.split_off(leaf.elements.len() / 2);
            after[changed] = self
                .store
                .rewrite(old_offset, &subkey_list::encode(leaf.kind, &leaf.elements))?;
            let upper_offset = self
                .store
                .alloc_with(&subkey_list::encode(leaf.kind, &upper))?;
            after.insert(changed + 1, upper_offset);
        } else {
            after[changed] = self
                .store
                .rewrite(old_offset, &subkey_list::encode(leaf.kind, &leaf.elements))?;
        }
        if leaf_offsets == after {
            return Ok(());
        }
        let ri_elements: Vec<Element> = after
            .iter()
            .map(|&offset| Element { offset, hint: 0 })
            .collect();
        let list = match (ri, after.len()) {
            (Some(ri), 0) => {
                self.store.free(ri)?;
                NIL
            }
            (None, 0) => NIL,
            (None, 1) => after[0],
            (ri, _) => self
                .store
                .rewrite(ri, &subkey_list::encode(ListKind::Ri, &ri_elements))?,
        };
        write_u32(self.store.cell_mut(parent)?, key_node::SUBKEYS_LIST, list);
        Ok(())
    }

    /// Stores value data: inline (up to 4 bytes), a plain cell, or a big data record. Returns the
    /// vk's data size field (with the inline bit when inline) and data offset field, and whether
    /// the plain cell `reuse` was taken over (rewritten in place, or moved and freed).
    fn store_value_data(&mut self, data: &[u8], reuse: Option<u32>) -> Result<(u32, u32, bool)> {
        let len = u32::try_from(data.len())
            .ok()
            .filter(|&l| l & key_value::DATA_INLINE == 0)
            .ok_or_else(|| Error::InvalidArgument(format!("value data of {} bytes", data.len())))?;
        if data.len() <= key_value::MAX_INLINE {
            let mut inline = [0u8; 4];
            inline[..data.len()].copy_from_slice(data);
            return Ok((
                len | key_value::DATA_INLINE,
                u32::from_le_bytes(inline),
                false,
            ));
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

    /// The cells holding the data of the value at `vk` (not the vk itself).
    pub(crate) fn value_data_cells(&self, vk: u32) -> Result<Vec<u32>> {
        let value = self.vk(vk)?;
        let len = value.data_len() as usize;
        if value.is_inline() || len == 0 {
            return Ok(Vec::new());
        }
        let data_offset = value.data_offset();
        let cell = self.store.cell(data_offset)?;
        if !self.is_big_data(len, cell) {
            return Ok(vec![data_offset]);
        }
        let record = BigData::parse(cell, data_offset)?;
        let mut cells = big_data::segment_offsets(
            self.store.cell(record.segment_list)?,
            record.segment_count,
            record.segment_list,
        )?;
        cells.extend([record.segment_list, data_offset]);
        Ok(cells)
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

    /// Every cell of the subtree at `key` and the security references it holds, checked before
    /// anything is freed: a cell reached twice or a key nested in its own subtree is corruption.
    fn subtree_cells(&self, key: u32) -> Result<Doomed> {
        let mut doomed = Doomed::default();
        let mut seen = HashSet::new();
        let mut pending = vec![key];
        while let Some(key) = pending.pop() {
            if !seen.insert(key) {
                return Err(Error::corrupt(
                    file_offset(key),
                    "key is reached twice below the key being deleted (a cycle in subkey lists)",
                ));
            }
            let node = self.nk(key)?;
            let index = self.subkey_index(key)?;
            pending.extend(index.elements().map(|e| e.offset));
            doomed.cells.extend(index.ri);
            doomed.cells.extend(index.leaves.iter().map(|l| l.offset));
            let values = self.value_offsets(key)?;
            if !values.is_empty() {
                doomed.cells.push(node.values_list());
            }
            for vk in values {
                doomed.cells.extend(self.value_data_cells(vk)?);
                doomed.cells.push(vk);
            }
            if node.class_name() != NIL && node.class_length() > 0 {
                self.store.cell(node.class_name())?;
                doomed.cells.push(node.class_name());
            }
            self.sk(node.security())?;
            *doomed.security.entry(node.security()).or_default() += 1;
            doomed.cells.push(key);
        }
        let mut unique = HashSet::new();
        if let Some(&twice) = doomed.cells.iter().find(|&&c| !unique.insert(c)) {
            return Err(Error::corrupt(
                file_offset(twice),
                "cell is used twice within the key being deleted",
            ));
        }
        Ok(doomed)
    }

    /// Frees `doomed`'s cells and drops its security references.
    fn release(&mut self, doomed: Doomed) -> Result<()> {
        for cell in doomed.cells {
            self.store.free(cell)?;
        }
        for (sk, dropped) in doomed.security {
            self.drop_security_references(sk, dropped)?;
        }
        Ok(())
    }

    /// Decreases the reference count of the `sk` at `offset`; at zero it leaves the sk list and is freed.
    fn drop_security_references(&mut self, offset: u32, dropped: u32) -> Result<()> {
        let sk = self.sk(offset)?;
        let (count, flink, blink) = (sk.reference_count(), sk.flink(), sk.blink());
        let count = count.saturating_sub(dropped);
        if count > 0 {
            write_u32(
                self.store.cell_mut(offset)?,
                key_security::REFERENCE_COUNT,
                count,
            );
            return Ok(());
        }
        if flink != offset {
            self.sk(flink)?;
            self.sk(blink)?;
            write_u32(self.store.cell_mut(blink)?, key_security::FLINK, flink);
            write_u32(self.store.cell_mut(flink)?, key_security::BLINK, blink);
        }
        self.store.free(offset)
    }
}

/// Cells to free when deleting a key, and the number of references to drop per `sk`.
#[derive(Default)]
struct Doomed {
    cells: Vec<u32>,
    security: HashMap<u32, u32>,
}

/// The fixed fields of a new key node: no subkeys, values or class, current time.
fn new_key_fields(parent: u32, security: u32) -> [u8; key_node::NAME] {
    let mut fields = [0u8; key_node::NAME];
    write_u64(&mut fields, key_node::LAST_WRITTEN, now_filetime());
    write_u32(&mut fields, key_node::PARENT, parent);
    for field in [
        key_node::SUBKEYS_LIST,
        key_node::VOLATILE_SUBKEYS_LIST,
        key_node::VALUES_LIST,
        key_node::CLASS_NAME,
    ] {
        write_u32(&mut fields, field, NIL);
    }
    write_u32(&mut fields, key_node::SECURITY, security);
    fields
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// The transaction logs beside the hive at `path`: `<name>.LOG1`, `<name>.LOG2`, `<name>.LOG`
/// (in that order), file names compared case-insensitively.
fn log_files_beside(path: &Path) -> Result<Vec<std::path::PathBuf>> {
    let Some(file_name) = path.file_name() else {
        return Ok(Vec::new());
    };
    let base = file_name.to_string_lossy().to_lowercase();
    let dir = parent_dir(path);
    let entries = std::fs::read_dir(dir).map_err(|source| Error::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut found: Vec<(usize, std::path::PathBuf)> = Vec::new();
    for entry in entries.flatten() {
        let entry_name = entry.file_name().to_string_lossy().to_lowercase();
        let rank = ["log1", "log2", "log"]
            .iter()
            .position(|ext| entry_name == format!("{base}.{ext}"));
        if let Some(rank) = rank {
            found.push((rank, entry.path()));
        }
    }
    found.sort();
    Ok(found.into_iter().map(|(_, p)| p).collect())
}

/// A key (nk cell) of an open hive.
#[derive(Clone, Copy)]
pub struct Key<'h> {
    hive: &'h Hive,
    /// Cell offset, relative to the start of the hive bins data.
    offset: u32,
    /// Levels below the root; bounded by [`MAX_KEY_DEPTH`] so that a cycle cannot recurse forever.
    depth: u16,
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

/// A value (vk cell) of an open hive.
#[derive(Clone, Copy)]
pub struct Value<'h> {
    hive: &'h Hive,
    offset: u32,
}

impl<'h> Value<'h> {
    /// The value's name ("" for the default value).
    pub fn name(&self) -> Result<String> {
        Ok(self.hive.vk(self.offset)?.name())
    }
    pub fn value_type(&self) -> Result<ValueType> {
        Ok(ValueType(self.hive.vk(self.offset)?.data_type()))
    }
    /// The raw data, whatever the type (inline data, a data cell, or a big-data record joined).
    pub fn data(&self) -> Result<Cow<'h, [u8]>> {
        self.hive.value_data(self.offset)
    }
    /// The data as a string (REG_SZ, REG_EXPAND_SZ, REG_LINK; UTF-16LE up to the first NUL).
    pub fn string(&self) -> Result<String> {
        Ok(crate::data::decode_sz(&self.data()?))
    }
    /// The data as REG_MULTI_SZ strings.
    pub fn multi_string(&self) -> Result<Vec<String>> {
        Ok(crate::data::decode_multi_sz(&self.data()?))
    }
    fn fixed<const N: usize>(&self) -> Result<[u8; N]> {
        let data = self.data()?;
        data.get(..N)
            .and_then(|d| <[u8; N]>::try_from(d).ok())
            .ok_or_else(|| {
                Error::corrupt(
                    file_offset(self.offset),
                    format!("value data is {} bytes, {N} needed", data.len()),
                )
            })
    }
    /// The data as a REG_DWORD (little-endian; REG_DWORD_BIG_ENDIAN is converted).
    pub fn dword(&self) -> Result<u32> {
        let bytes = self.fixed::<4>()?;
        Ok(if self.value_type()? == ValueType::DWORD_BIG_ENDIAN {
            u32::from_be_bytes(bytes)
        } else {
            u32::from_le_bytes(bytes)
        })
    }
    /// The data as a REG_QWORD.
    pub fn qword(&self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.fixed::<8>()?))
    }
}
