//! [`Hive`]: an open hive file held in memory, opened from bytes (with or without log replay) or
//! made empty, and its keys and values found by path. Its other methods live beside what they
//! handle: `edit` (key and value edits), `commit` (sealing the edits), `file` (the file and its
//! logs on disk), and `subkey_list`, `key_value`, `big_data`, `key_security` and `subtree` (the
//! cells behind keys and values); [`Key`] and [`Value`] are the read views.
//!
//! Keys and values are addressed by path: backslash-separated key names below the root key
//! (`"ControlSet001\\Control\\ComputerName"`; `""` is the root), compared case-insensitively with
//! Unicode upper-casing as Windows does. The root key's own name is never part of a path.

use crate::base_block::{self, BaseBlock, BASE_BLOCK_SIZE};
use crate::cell::{write_u32, write_u64, Store, NIL};
use crate::key_node::{self, KeyNode};
use crate::key_security::{self, KeySecurity};
use crate::key_value::KeyValue;
use crate::log::ReplayReport;
use crate::name;
use crate::{Error, Key, Result, Value};
use reseal_nt::FileTime;

/// An open hive: the whole file in memory.
///
/// Reading never changes the bytes. Edits change only the cells they must (plus the base block on
/// commit), so untouched keys, values, security descriptors and classes stay byte-identical.
pub struct Hive {
    pub(crate) store: Store,
    was_dirty: bool,
    pub(crate) modified: bool,
    pub(crate) noted_log_sequence: Option<u32>,
    /// The last-written time edits and commits stamp; `None`: the clock.
    fixed_time: Option<FileTime>,
}

/// The components of a key path; a leading or trailing backslash is ignored.
pub(crate) fn split_path(path: &str) -> Result<Vec<&str>> {
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

impl Hive {
    /// Stamps every later edit and commit with `time` instead of the clock's (a reproducible
    /// run: the same edits give the same bytes); `None` goes back to the clock.
    pub fn set_fixed_time(&mut self, time: Option<FileTime>) {
        self.fixed_time = time;
    }

    /// The time an edit or commit stamps now.
    pub(crate) fn now(&self) -> FileTime {
        self.fixed_time.unwrap_or_else(FileTime::now)
    }

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
            fixed_time: None,
        };
        hive.nk(root)?;
        Ok(hive)
    }

    /// Replays `logs` (name, bytes) into `bytes` with Windows' rules, then opens the result.
    pub fn from_bytes_with_logs(
        bytes: Vec<u8>,
        logs: &[(&str, &[u8])],
    ) -> Result<(Hive, ReplayReport)> {
        let (recovered, report) = crate::log::replay_owned(bytes, logs)?;
        let mut hive = Hive::from_bytes(recovered)?;
        hive.note_log_sequence(report.max_log_sequence);
        Ok((hive, report))
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
        let mut fields = new_key_fields(NIL, NIL, FileTime::now());
        let flags = key_node::KEY_HIVE_ENTRY | key_node::KEY_NO_DELETE;
        fields[key_node::FLAGS..key_node::FLAGS + 2].copy_from_slice(&flags.to_le_bytes());
        let root = store.alloc_with(&key_node::encode(&fields, &raw_name, compressed))?;
        let descriptor = key_security::default_descriptor();
        let sk = store.alloc(key_security::encode(0, &descriptor).len())?;
        store.rewrite(Some(sk), &key_security::encode(sk, &descriptor))?;
        write_u32(store.cell_mut(root)?, key_node::SECURITY, sk);

        let mut base = base_block::write::new_base_block(minor_version, root, bin_size);
        base_block::write::set_last_written(&mut base, FileTime::now().0);
        base_block::write::seal(&mut base);
        store.bytes[..BASE_BLOCK_SIZE].copy_from_slice(&base);
        Ok(Hive {
            store,
            was_dirty: false,
            modified: false,
            noted_log_sequence: None,
            fixed_time: None,
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

    pub(crate) fn base_block(&self) -> BaseBlock<'_> {
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

    pub(crate) fn nk(&self, offset: u32) -> Result<KeyNode<'_>> {
        KeyNode::parse(self.store.cell(offset)?, offset)
    }

    pub(crate) fn vk(&self, offset: u32) -> Result<KeyValue<'_>> {
        KeyValue::parse(self.store.cell(offset)?, offset)
    }

    pub(crate) fn sk(&self, offset: u32) -> Result<KeySecurity<'_>> {
        KeySecurity::parse(self.store.cell(offset)?, offset)
    }
}

/// The fixed fields of a new key node: no subkeys, values or class, written at `time`.
pub(crate) fn new_key_fields(parent: u32, security: u32, time: FileTime) -> [u8; key_node::NAME] {
    let mut fields = [0u8; key_node::NAME];
    write_u64(&mut fields, key_node::LAST_WRITTEN, time.0);
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
