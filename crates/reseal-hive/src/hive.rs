//! [`Hive`]: an open hive file held in memory, with read views ([`Key`], [`Value`]) and in-place edits.
//!
//! Keys and values are addressed by path: backslash-separated key names below the root key
//! (`"ControlSet001\\Control\\ComputerName"`; `""` is the root), compared case-insensitively with
//! Unicode upper-casing as Windows does. The root key's own name is never part of a path.

use std::borrow::Cow;
use std::path::Path;

use crate::data::ValueType;
use crate::log::ReplayReport;
use crate::Result;

/// An open hive: the whole file in memory.
///
/// Reading never changes the bytes. Edits change only the cells they must (plus the base block on
/// commit), so untouched keys, values, security descriptors and classes stay byte-identical.
pub struct Hive {
    bytes: Vec<u8>,
}

impl Hive {
    /// Opens hive file bytes as they are, without log replay. A dirty hive opens (see
    /// [`Hive::was_dirty`]); structural errors are reported with their file offset.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Hive> {
        let _ = bytes;
        todo!()
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
        let _ = path;
        todo!()
    }

    /// A new empty hive with a root key named `root_name` and format version 1.`minor_version`
    /// (3 to 6). The root key gets a default security descriptor (SYSTEM and Administrators full
    /// control, Everyone read), as offreg does for new hives.
    pub fn new_empty(root_name: &str, minor_version: u32) -> Hive {
        let _ = (root_name, minor_version);
        todo!()
    }

    /// Tells the hive the highest sequence number found in its logs, so [`Hive::commit`] writes
    /// sequence numbers above it.
    pub fn note_log_sequence(&mut self, max_log_sequence: Option<u32>) {
        let _ = max_log_sequence;
        todo!()
    }

    /// The current file bytes (not committed: edits are in the cells, the base block is unchanged
    /// until [`Hive::commit`]).
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// `true` when the hive was dirty when opened by [`Hive::from_bytes`] (sequence numbers differ
    /// or bad checksum).
    pub fn was_dirty(&self) -> bool {
        todo!()
    }

    /// The format minor version (3 to 6).
    pub fn minor_version(&self) -> u32 {
        todo!()
    }

    /// `true` once any edit has been made since opening or the last commit.
    pub fn is_modified(&self) -> bool {
        todo!()
    }

    /// The root key.
    pub fn root(&self) -> Result<Key<'_>> {
        todo!()
    }

    /// The key at `path` below the root, or `None` when any component does not exist.
    pub fn key(&self, path: &str) -> Result<Option<Key<'_>>> {
        let _ = path;
        todo!()
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
        let _ = path;
        todo!()
    }

    /// Deletes the key at `path` with all its subkeys and values, freeing their cells and dropping
    /// security descriptor references (freeing an `sk` at zero). Returns `false` when absent.
    /// The root key cannot be deleted.
    pub fn delete_key(&mut self, path: &str) -> Result<bool> {
        let _ = path;
        todo!()
    }

    /// Renames the key at `path` (last component) to `new_name`, keeping its subkeys, values,
    /// security and class; the parent's subkey list is re-sorted. Errors if a sibling has that name.
    pub fn rename_key(&mut self, path: &str, new_name: &str) -> Result<()> {
        let _ = (path, new_name);
        todo!()
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
        let _ = (path, name, value_type, data);
        todo!()
    }

    /// Deletes value `name` of the key at `path`. Returns `false` when the key or value is absent.
    pub fn delete_value(&mut self, path: &str, name: &str) -> Result<bool> {
        let _ = (path, name);
        todo!()
    }

    /// Finishes the edits as a consistent, clean hive file and returns its bytes: primary sequence
    /// number bumped above the current one and above any noted log sequence, hive bins written,
    /// secondary set equal, last-written timestamp and checksum updated. An unmodified clean hive
    /// comes back byte-identical.
    pub fn commit(&mut self) -> Vec<u8> {
        todo!()
    }

    /// Commits and writes the hive to `path` atomically (temporary file in the same directory,
    /// fsync, rename over, fsync the directory), then empties any `.LOG1`/`.LOG2`/`.LOG` beside it
    /// so no stale entry can be replayed over the new contents.
    pub fn write_file_atomic(&mut self, path: &Path) -> Result<()> {
        let _ = path;
        todo!()
    }
}

/// A key (nk cell) of an open hive.
#[derive(Clone, Copy)]
pub struct Key<'h> {
    hive: &'h Hive,
    /// Cell offset, relative to the start of the hive bins data.
    offset: u32,
}

impl<'h> Key<'h> {
    /// The key's name as stored (ASCII/Latin-1 or UTF-16 names both become a `String`).
    pub fn name(&self) -> Result<String> {
        let _ = (self.hive, self.offset);
        todo!()
    }
    /// The cell offset of this key's nk record (relative to the hive bins data), for diagnostics.
    pub fn cell_offset(&self) -> u32 {
        self.offset
    }
    /// Last written time (FILETIME).
    pub fn last_written(&self) -> Result<u64> {
        todo!()
    }
    /// The class name, if the key has one.
    pub fn class_name(&self) -> Result<Option<String>> {
        todo!()
    }
    /// The key's flags word (KEY_COMP_NAME 0x20, KEY_SYM_LINK 0x10, KEY_HIVE_ENTRY 0x4, ...).
    pub fn flags(&self) -> Result<u16> {
        todo!()
    }
    /// The self-relative security descriptor from the key's sk cell.
    pub fn security_descriptor(&self) -> Result<Cow<'h, [u8]>> {
        todo!()
    }
    /// The subkeys, in the order of the subkey list (sorted by upper-cased name).
    pub fn subkeys(&self) -> Result<Vec<Key<'h>>> {
        todo!()
    }
    /// The subkey named `name` (case-insensitive).
    pub fn subkey(&self, name: &str) -> Result<Option<Key<'h>>> {
        let _ = name;
        todo!()
    }
    /// The values, in the order of the value list.
    pub fn values(&self) -> Result<Vec<Value<'h>>> {
        todo!()
    }
    /// The value named `name` ("" = default value; case-insensitive).
    pub fn value(&self, name: &str) -> Result<Option<Value<'h>>> {
        let _ = name;
        todo!()
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
        let _ = (self.hive, self.offset);
        todo!()
    }
    pub fn value_type(&self) -> Result<ValueType> {
        todo!()
    }
    /// The raw data, whatever the type (inline data, a data cell, or a big-data record joined).
    pub fn data(&self) -> Result<Cow<'h, [u8]>> {
        todo!()
    }
    /// The data as a string (REG_SZ, REG_EXPAND_SZ, REG_LINK; UTF-16LE up to the first NUL).
    pub fn string(&self) -> Result<String> {
        Ok(crate::data::decode_sz(&self.data()?))
    }
    /// The data as REG_MULTI_SZ strings.
    pub fn multi_string(&self) -> Result<Vec<String>> {
        Ok(crate::data::decode_multi_sz(&self.data()?))
    }
    /// The data as a REG_DWORD (little-endian; REG_DWORD_BIG_ENDIAN is converted).
    pub fn dword(&self) -> Result<u32> {
        todo!()
    }
    /// The data as a REG_QWORD.
    pub fn qword(&self) -> Result<u64> {
        todo!()
    }
}
