//! [`Plan`]: the list of changes a run will make, built through helpers that only add a change
//! when the image differs from the wanted state (which makes runs idempotent). Providers reach
//! them through [`crate::PlanContext`], which gives every change its [`Origin`].

use std::fmt;

use reseal_hive::ValueType;
use serde::ser::SerializeStruct;
use serde_json::json;

use crate::error::{Error, Result};
use crate::image::{join_path, Image};
use crate::limits::ReadLimit;
use crate::targets::{split_parent, upper_case_name, DirEntry, FileSecuritySwap};
use reseal_nt::hex;

/// Everything one run will change, in order, with notes for the user.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Plan {
    /// The changes, in the order they apply.
    pub changes: Vec<Change>,
    /// Things the user should know (what was left alone and why).
    pub notes: Vec<Note>,
    /// Settings providers need in the answer file.
    pub answer_settings: Vec<AnswerSetting>,
    /// The operations that ran, checks then providers, in the order they ran
    /// ([`crate::operations`]).
    pub operations: Vec<&'static str>,
    /// How each check that ran came out (the failures that refuse a run never make a plan).
    pub checks: Vec<crate::validate::CheckOutcome>,
}

/// One change and who asked for it. In JSON: `provider`, `source`, then the action's fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The provider that planned it.
    pub provider: &'static str,
    /// Why: the Sysprep behaviour it reproduces (`"Generalize.xml: spopk.dll"`...).
    pub source: &'static str,
    /// What changes.
    pub action: Action,
}

/// Who plans a change and why; every change carries one, copied into [`Change`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin {
    /// The provider that plans it.
    pub provider: &'static str,
    /// The Sysprep behaviour it reproduces (`"Generalize.xml: spopk.dll"`...).
    pub source: &'static str,
}

/// One change to the image. Hive paths are image paths; key paths are below the hive root.
/// `Debug` shows what JSON shows: never the contents of a sensitive file.
#[derive(Clone, PartialEq, Eq)]
pub enum Action {
    /// Sets a value (the key exists or is created by an earlier `CreateKey`).
    SetValue {
        /// The hive's image path.
        hive: String,
        /// The key path below the hive root.
        key: String,
        /// The value name (`""` = the default value).
        name: String,
        /// The new type.
        value_type: ValueType,
        /// The new data.
        data: Vec<u8>,
        /// The value before, `None` when it did not exist.
        before: Option<(ValueType, Vec<u8>)>,
    },
    /// Deletes a value.
    DeleteValue {
        /// The hive's image path.
        hive: String,
        /// The key path below the hive root.
        key: String,
        /// The value name (`""` = the default value).
        name: String,
        /// The value before.
        before: (ValueType, Vec<u8>),
    },
    /// Creates a key (and missing keys above it).
    CreateKey {
        /// The hive's image path.
        hive: String,
        /// The key path below the hive root.
        key: String,
    },
    /// Deletes a key with its subkeys and values.
    DeleteKey {
        /// The hive's image path.
        hive: String,
        /// The key path below the hive root.
        key: String,
    },
    /// Renames a key (last path component) to `new_name`.
    RenameKey {
        /// The hive's image path.
        hive: String,
        /// The key path below the hive root.
        key: String,
        /// The new last component.
        new_name: String,
    },
    /// Replaces the account-domain SID `old_domain` by `new_domain` in every key security
    /// record (`sk`) of a hive that names it, each descriptor keeping its length.
    SwapKeySecurity {
        /// The hive's image path.
        hive: String,
        /// The domain SID replaced (`S-1-5-21-A-B-C`).
        old_domain: String,
        /// The domain SID put in its place.
        new_domain: String,
        /// How many records name the old domain.
        descriptors: usize,
    },
    /// Writes a file; `sensitive` contents (passwords) are never printed.
    WriteFile {
        /// The file's image path.
        path: String,
        /// The new contents.
        contents: Vec<u8>,
        /// The file existed before (it is replaced, keeping its metadata).
        existed: bool,
        /// The contents must never be shown.
        sensitive: bool,
    },
    /// Deletes a file.
    DeleteFile {
        /// The file's image path.
        path: String,
    },
    /// Deletes a directory with everything in it.
    DeleteDirectory {
        /// The directory's image path.
        path: String,
    },
    /// Replaces the account-domain SID `old_domain` by `new_domain` in every file and
    /// directory's security descriptor (see [`crate::Target::swap_file_security`]).
    SwapFileSecurity {
        /// The domain SID replaced (`S-1-5-21-A-B-C`).
        old_domain: String,
        /// The domain SID put in its place.
        new_domain: String,
        /// What the scan found: the descriptors that name the old domain and the files using
        /// them.
        found: FileSecuritySwap,
    },
}

/// Something the user should know about the run.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Note {
    /// The provider that wrote it.
    pub provider: &'static str,
    /// The note.
    pub message: String,
}

/// A setting another provider needs in the answer file (pass, component, XML path, value).
/// A value under an element whose name contains "Password" is never printed (not even by
/// `Debug`).
#[derive(Clone, PartialEq, Eq)]
pub struct AnswerSetting {
    /// The provider that needs it.
    pub provider: &'static str,
    /// The configuration pass (`specialize`, `oobeSystem`...).
    pub pass: String,
    /// The component (`Microsoft-Windows-Shell-Setup`...).
    pub component: String,
    /// The element path below the component.
    pub path: Vec<String>,
    /// The value.
    pub value: String,
}

impl Plan {
    /// An empty plan.
    pub fn new() -> Plan {
        Plan::default()
    }

    /// `true` when the plan changes nothing.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    fn push(&mut self, origin: Origin, action: Action) {
        self.changes.push(Change {
            provider: origin.provider,
            source: origin.source,
            action,
        });
    }

    /// Sets value `name` of `key` in `hive` unless it already has that type and data; creates the
    /// key first when missing.
    #[allow(clippy::too_many_arguments)]
    pub fn set_value(
        &mut self,
        image: &mut Image,
        origin: Origin,
        hive: &str,
        key: &str,
        name: &str,
        value_type: ValueType,
        data: &[u8],
    ) -> Result<()> {
        let before = image.value(hive, key, name)?;
        if before.as_ref() == Some(&(value_type, data.to_vec())) {
            return Ok(());
        }
        self.create_key(image, origin, hive, key)?;
        edit_hive(image, hive, |h| h.set_value(key, name, value_type, data))?;
        self.push(
            origin,
            Action::SetValue {
                hive: hive.to_string(),
                key: key.to_string(),
                name: name.to_string(),
                value_type,
                data: data.to_vec(),
                before,
            },
        );
        Ok(())
    }

    /// Deletes value `name` of `key` in `hive` when it exists.
    pub fn delete_value(
        &mut self,
        image: &mut Image,
        origin: Origin,
        hive: &str,
        key: &str,
        name: &str,
    ) -> Result<()> {
        let Some(before) = image.value(hive, key, name)? else {
            return Ok(());
        };
        edit_hive(image, hive, |h| h.delete_value(key, name))?;
        self.push(
            origin,
            Action::DeleteValue {
                hive: hive.to_string(),
                key: key.to_string(),
                name: name.to_string(),
                before,
            },
        );
        Ok(())
    }

    /// Creates `key` (and missing keys above it) in `hive` when it is missing.
    pub fn create_key(
        &mut self,
        image: &mut Image,
        origin: Origin,
        hive: &str,
        key: &str,
    ) -> Result<()> {
        if image.key_exists(hive, key)? {
            return Ok(());
        }
        edit_hive(image, hive, |h| h.create_key(key))?;
        self.push(
            origin,
            Action::CreateKey {
                hive: hive.to_string(),
                key: key.to_string(),
            },
        );
        Ok(())
    }

    /// Deletes `key` in `hive` with its subkeys and values when it exists.
    pub fn delete_key(
        &mut self,
        image: &mut Image,
        origin: Origin,
        hive: &str,
        key: &str,
    ) -> Result<()> {
        if !image.key_exists(hive, key)? {
            return Ok(());
        }
        edit_hive(image, hive, |h| h.delete_key(key))?;
        self.push(
            origin,
            Action::DeleteKey {
                hive: hive.to_string(),
                key: key.to_string(),
            },
        );
        Ok(())
    }

    /// Renames `key` in `hive` to `new_name` when it exists and is not already named exactly so.
    pub fn rename_key(
        &mut self,
        image: &mut Image,
        origin: Origin,
        hive: &str,
        key: &str,
        new_name: &str,
    ) -> Result<()> {
        let current_name = match image.hive(hive)? {
            Some(h) => match h.key(key).map_err(|e| Error::from_hive(hive, e))? {
                Some(k) => k.name().map_err(|e| Error::from_hive(hive, e))?,
                None => return Ok(()),
            },
            None => return Ok(()),
        };
        if current_name == new_name {
            return Ok(());
        }
        edit_hive(image, hive, |h| h.rename_key(key, new_name))?;
        self.push(
            origin,
            Action::RenameKey {
                hive: hive.to_string(),
                key: key.to_string(),
                new_name: new_name.to_string(),
            },
        );
        Ok(())
    }

    /// Replaces the old domain SID of `swap` by the new one in the key security records of
    /// `hive` that name it, when there are any.
    pub fn swap_key_security(
        &mut self,
        image: &mut Image,
        origin: Origin,
        hive: &str,
        swap: &reseal_nt::domain_swap::DomainSwap,
    ) -> Result<()> {
        if image.hive(hive)?.is_none() {
            return Ok(());
        }
        let descriptors = edit_hive(image, hive, |h| swap_domain_in_key_security(h, swap))?;
        if descriptors == 0 {
            return Ok(());
        }
        self.push(
            origin,
            Action::SwapKeySecurity {
                hive: hive.to_string(),
                old_domain: swap.old().to_string(),
                new_domain: swap.new_sid().to_string(),
                descriptors,
            },
        );
        Ok(())
    }

    /// Writes `contents` to the file at `path` unless it already holds exactly that.
    pub fn write_file(
        &mut self,
        image: &mut Image,
        origin: Origin,
        path: &str,
        contents: &[u8],
        sensitive: bool,
    ) -> Result<()> {
        let existing = image.entry(path)?;
        if let Some(DirEntry { is_dir: true, .. }) = existing {
            return Err(Error::other(
                Some(path),
                "cannot write the file: a directory has that name",
            ));
        }
        // Only a file of the same size can already hold `contents`; no other is read.
        let same_size = ReadLimit {
            what: "file",
            max: contents.len() as u64,
        };
        let unchanged = match &existing {
            Some(entry) if entry.size == same_size.max => {
                image.read_file(path, same_size)?.as_deref() == Some(contents)
            }
            _ => false,
        };
        if unchanged {
            return Ok(());
        }
        image.plan_write(path, contents);
        self.push(
            origin,
            Action::WriteFile {
                path: path.to_string(),
                contents: contents.to_vec(),
                existed: existing.is_some(),
                sensitive,
            },
        );
        Ok(())
    }

    /// Deletes the file at `path` when it exists.
    pub fn delete_file(&mut self, image: &mut Image, origin: Origin, path: &str) -> Result<()> {
        self.delete_entry(image, origin, path, false)
    }

    /// Deletes the files in `dir` whose names match `pattern` (`*` and `?` wildcards,
    /// case-insensitive, like `*.pf`). Subdirectories are left alone.
    pub fn delete_files_matching(
        &mut self,
        image: &mut Image,
        origin: Origin,
        dir: &str,
        pattern: &str,
    ) -> Result<()> {
        let Some(entries) = image.list_dir(dir)? else {
            return Ok(());
        };
        for entry in entries {
            if !entry.is_dir && wildcard_match(pattern, &entry.name) {
                self.delete_file(image, origin, &join_path(dir, &entry.name))?;
            }
        }
        Ok(())
    }

    /// Deletes the directory at `path` with its contents when it exists.
    pub fn delete_directory(
        &mut self,
        image: &mut Image,
        origin: Origin,
        path: &str,
    ) -> Result<()> {
        self.delete_entry(image, origin, path, true)
    }

    /// Deletes the file or (`directory`) the directory at `path` when it exists; the other kind
    /// at that path is an error.
    fn delete_entry(
        &mut self,
        image: &mut Image,
        origin: Origin,
        path: &str,
        directory: bool,
    ) -> Result<()> {
        let Some(found) = image.entry(path)? else {
            return Ok(());
        };
        if found.is_dir != directory {
            let (wanted, actual) = if directory {
                ("a directory", "a file")
            } else {
                ("a file", "a directory")
            };
            return Err(Error::other(
                Some(path),
                format!("cannot delete it as {wanted}: it is {actual}"),
            ));
        }
        let path = path.to_string();
        let action = if directory {
            image.plan_delete_dir(&path);
            Action::DeleteDirectory { path }
        } else {
            image.plan_delete(&path);
            Action::DeleteFile { path }
        };
        self.push(origin, action);
        Ok(())
    }

    /// Replaces `old_domain` by `new_domain` in the file-system security descriptors, when the
    /// scan `found` any that name it.
    pub fn swap_file_security(
        &mut self,
        origin: Origin,
        old_domain: &reseal_nt::Sid,
        new_domain: &reseal_nt::Sid,
        found: FileSecuritySwap,
    ) {
        if found.descriptors == 0 {
            return;
        }
        self.push(
            origin,
            Action::SwapFileSecurity {
                old_domain: old_domain.to_string(),
                new_domain: new_domain.to_string(),
                found,
            },
        );
    }

    /// Adds a note for the user.
    pub fn note(&mut self, provider: &'static str, message: impl Into<String>) {
        self.notes.push(Note {
            provider,
            message: message.into(),
        });
    }

    /// Asks for a setting in the answer file.
    pub fn answer_setting(&mut self, setting: AnswerSetting) {
        self.answer_settings.push(setting);
    }
}

/// Replaces, in place, the old domain SID of `swap` in every key security record of `hive` that
/// names it; returns how many did. A descriptor that does not parse is damage: nothing is
/// changed then.
pub(crate) fn swap_domain_in_key_security(
    hive: &mut reseal_hive::Hive,
    swap: &reseal_nt::domain_swap::DomainSwap,
) -> reseal_hive::Result<usize> {
    let mut replacements = Vec::new();
    for record in hive.security_records()? {
        let swapped = swap.swap_in_descriptor(record.descriptor).map_err(|e| {
            reseal_hive::Error::corrupt(
                (reseal_hive::base_block::BASE_BLOCK_SIZE as u64) + u64::from(record.offset),
                format!("security record's descriptor: {e}"),
            )
        })?;
        if let Some(new) = swapped {
            replacements.push((record.offset, new));
        }
    }
    for (offset, descriptor) in &replacements {
        hive.replace_security_descriptor(*offset, descriptor)?;
    }
    Ok(replacements.len())
}

/// Runs `edit` on the in-memory hive at `path` (so later providers see the change); a change to
/// an absent hive is an error, and an engine error names the hive.
fn edit_hive<T>(
    image: &mut Image,
    path: &str,
    edit: impl FnOnce(&mut reseal_hive::Hive) -> reseal_hive::Result<T>,
) -> Result<T> {
    let hive = image.hive_mut(path)?.ok_or_else(|| {
        Error::other(
            Some(path),
            "the hive does not exist in the image, so it cannot be changed",
        )
    })?;
    edit(hive).map_err(|e| Error::from_hive(path, e))
}

/// `true` when `name` matches `pattern` (`*` any run, `?` one character), case-insensitively.
pub fn wildcard_match(pattern: &str, name: &str) -> bool {
    let pattern: Vec<char> = upper_case_name(pattern).chars().collect();
    let name: Vec<char> = upper_case_name(name).chars().collect();
    // Classic greedy matching with backtracking to the last `*`.
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        if p < pattern.len() && (pattern[p] == '?' || pattern[p] == name[n]) {
            p += 1;
            n += 1;
        } else if p < pattern.len() && pattern[p] == '*' {
            star = Some((p, n));
            p += 1;
        } else if let Some((star_p, star_n)) = star {
            p = star_p + 1;
            n = star_n + 1;
            star = Some((star_p, star_n + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

/// The last component of a hive path (`SYSTEM`), for short displays.
/// How a hive is shown: `SYSTEM` for the machine hives, the whole path for the others (user
/// hives all share the name NTUSER.DAT).
fn hive_name(hive: &str) -> String {
    let (dir, name) = split_parent(hive);
    if crate::targets::same_path(&dir, r"Windows\System32\config") {
        name
    } else {
        hive.to_string()
    }
}

/// For two binary values of one length: the span where they differ, as `old -> new` hex, so a
/// change deep inside a long value is visible.
fn binary_difference(old: &[u8], new: &[u8]) -> Option<String> {
    const SHOWN: usize = 32;
    if old.len() != new.len() {
        return None;
    }
    let first = old.iter().zip(new).position(|(a, b)| a != b)?;
    let last = old.iter().zip(new).rposition(|(a, b)| a != b)?;
    let end = (last + 1).min(first + SHOWN);
    let more = if end <= last { "..." } else { "" };
    Some(format!(
        "{} bytes, at offset {first:#x}: {}{more} -> {}{more}",
        new.len(),
        hex::encode(&old[first..end]),
        hex::encode(&new[first..end])
    ))
}

/// Registry data as a person reads it: strings quoted, numbers in decimal and hex, other data
/// in hex (long data shortened).
pub fn describe_value(value_type: ValueType, data: &[u8]) -> String {
    use reseal_hive::data::{decode_multi_sz, decode_sz};
    match value_type {
        ValueType::SZ | ValueType::EXPAND_SZ | ValueType::LINK => format!("{:?}", decode_sz(data)),
        ValueType::MULTI_SZ => format!("{:?}", decode_multi_sz(data)),
        ValueType::DWORD if data.len() == 4 => {
            let v = u32::from_le_bytes([data[0], data[1], data[2], data[3]]);
            format!("{v} ({v:#x})")
        }
        ValueType::QWORD if data.len() == 8 => {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(data);
            let v = u64::from_le_bytes(bytes);
            format!("{v} ({v:#x})")
        }
        _ => {
            const SHOWN: usize = 32;
            let hex = hex::encode(&data[..data.len().min(SHOWN)]);
            if data.len() > SHOWN {
                format!("hex:{hex}... ({} bytes)", data.len())
            } else {
                format!("hex:{hex}")
            }
        }
    }
}

impl Change {
    /// The change in one line of a log (`change by PROVIDER: VERB LOCATION DETAIL`), sensitive
    /// contents hidden as [`Action::detail`] hides them; the run's log and the record in the
    /// image both write it.
    pub fn log_line(&self) -> String {
        let line = format!(
            "change by {}: {} {} {}",
            self.provider,
            self.action.verb(),
            self.action.location(),
            self.action.detail()
        );
        line.trim_end().to_string()
    }
}

impl Note {
    /// The note in one line of a log (`note by PROVIDER: MESSAGE`).
    pub fn log_line(&self) -> String {
        format!("note by {}: {}", self.provider, self.message)
    }
}

impl Action {
    /// A short verb for the change (`set value`, `delete file`...).
    pub fn verb(&self) -> &'static str {
        match self {
            Action::SetValue { before: None, .. } => "add value",
            Action::SetValue { .. } => "set value",
            Action::DeleteValue { .. } => "delete value",
            Action::CreateKey { .. } => "create key",
            Action::DeleteKey { .. } => "delete key",
            Action::RenameKey { .. } => "rename key",
            Action::SwapKeySecurity { .. } => "replace SID in key security",
            Action::WriteFile { existed: true, .. } => "replace file",
            Action::WriteFile { .. } => "create file",
            Action::DeleteFile { .. } => "delete file",
            Action::DeleteDirectory { .. } => "delete directory",
            Action::SwapFileSecurity { .. } => "replace SID in file security",
        }
    }

    /// The hive this change edits, if it is a registry change.
    pub fn hive(&self) -> Option<&str> {
        match self {
            Action::SetValue { hive, .. }
            | Action::DeleteValue { hive, .. }
            | Action::CreateKey { hive, .. }
            | Action::DeleteKey { hive, .. }
            | Action::RenameKey { hive, .. }
            | Action::SwapKeySecurity { hive, .. } => Some(hive),
            _ => None,
        }
    }

    /// What the change touches: `SYSTEM\key` (with `"name"` for values) or a file path.
    pub fn location(&self) -> String {
        match self {
            Action::SetValue {
                hive, key, name, ..
            }
            | Action::DeleteValue {
                hive, key, name, ..
            } => format!("{}\\{key} {name:?}", hive_name(hive)),
            Action::CreateKey { hive, key }
            | Action::DeleteKey { hive, key }
            | Action::RenameKey { hive, key, .. } => format!("{}\\{key}", hive_name(hive)),
            Action::SwapKeySecurity { hive, .. } => format!("{} key security", hive_name(hive)),
            Action::WriteFile { path, .. }
            | Action::DeleteFile { path }
            | Action::DeleteDirectory { path } => path.clone(),
            Action::SwapFileSecurity { .. } => "every file and directory".to_string(),
        }
    }

    /// The change's details for a person (never the contents of a sensitive file).
    pub fn detail(&self) -> String {
        match self {
            Action::SetValue {
                value_type,
                data,
                before,
                ..
            } => {
                if let Some((t, old)) = before {
                    let is_hex = describe_value(*t, old).starts_with("hex:");
                    if t == value_type && is_hex {
                        if let Some(difference) = binary_difference(old, data) {
                            return format!("{value_type} {difference}");
                        }
                    }
                }
                let after = format!("{value_type} {}", describe_value(*value_type, data));
                match before {
                    Some((t, d)) => format!("{t} {} -> {after}", describe_value(*t, d)),
                    None => after,
                }
            }
            Action::DeleteValue { before: (t, d), .. } => {
                format!("was {t} {}", describe_value(*t, d))
            }
            Action::CreateKey { .. } | Action::DeleteKey { .. } => String::new(),
            Action::RenameKey { new_name, .. } => format!("-> {new_name}"),
            Action::SwapKeySecurity {
                old_domain,
                new_domain,
                descriptors,
                ..
            } => format!("{old_domain} -> {new_domain} in {descriptors} descriptors"),
            Action::WriteFile {
                contents,
                sensitive: true,
                ..
            } => format!("{} bytes (contents hidden: sensitive)", contents.len()),
            Action::WriteFile { contents, .. } => format!("{} bytes", contents.len()),
            Action::DeleteFile { .. } | Action::DeleteDirectory { .. } => String::new(),
            Action::SwapFileSecurity {
                old_domain,
                new_domain,
                found,
            } => format!(
                "{old_domain} -> {new_domain} in {} descriptors, used by {} files and directories",
                found.descriptors, found.files
            ),
        }
    }

    /// The change as JSON: every field, data both readable and in hex; sensitive file contents
    /// are left out.
    fn to_json(&self) -> serde_json::Value {
        let value_json = |t: &ValueType, d: &[u8]| json!({"type": t.to_string(), "display": describe_value(*t, d), "hex": hex::encode(d)});
        match self {
            Action::SetValue {
                hive,
                key,
                name,
                value_type,
                data,
                before,
            } => json!({
                "action": "set-value", "hive": hive, "key": key, "name": name,
                "value": value_json(value_type, data),
                "before": before.as_ref().map(|(t, d)| value_json(t, d)),
            }),
            Action::DeleteValue {
                hive,
                key,
                name,
                before: (t, d),
            } => json!({
                "action": "delete-value", "hive": hive, "key": key, "name": name,
                "before": value_json(t, d),
            }),
            Action::CreateKey { hive, key } => {
                json!({"action": "create-key", "hive": hive, "key": key})
            }
            Action::DeleteKey { hive, key } => {
                json!({"action": "delete-key", "hive": hive, "key": key})
            }
            Action::RenameKey {
                hive,
                key,
                new_name,
            } => json!({"action": "rename-key", "hive": hive, "key": key, "new_name": new_name}),
            Action::SwapKeySecurity {
                hive,
                old_domain,
                new_domain,
                descriptors,
            } => json!({
                "action": "swap-key-security", "hive": hive, "old_domain": old_domain,
                "new_domain": new_domain, "descriptors": descriptors,
            }),
            Action::WriteFile {
                path,
                contents,
                existed,
                sensitive,
            } => {
                let shown = if *sensitive {
                    serde_json::Value::Null
                } else {
                    match std::str::from_utf8(contents) {
                        Ok(text) => json!({"text": text}),
                        Err(_) => json!({"hex": hex::encode(contents)}),
                    }
                };
                json!({
                    "action": "write-file", "path": path, "size": contents.len(),
                    "existed": existed, "sensitive": sensitive, "contents": shown,
                })
            }
            Action::DeleteFile { path } => json!({"action": "delete-file", "path": path}),
            Action::DeleteDirectory { path } => {
                json!({"action": "delete-directory", "path": path})
            }
            Action::SwapFileSecurity {
                old_domain,
                new_domain,
                found,
            } => json!({
                "action": "swap-file-security", "old_domain": old_domain,
                "new_domain": new_domain, "descriptors": found.descriptors, "files": found.files,
            }),
        }
    }
}

impl serde::Serialize for Action {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.to_json().serialize(s)
    }
}

impl fmt::Debug for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_json())
    }
}

impl serde::Serialize for Change {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut json = serde_json::Map::new();
        json.insert("provider".into(), self.provider.into());
        json.insert("source".into(), self.source.into());
        if let serde_json::Value::Object(fields) = self.action.to_json() {
            json.extend(fields);
        }
        json.serialize(s)
    }
}

impl AnswerSetting {
    /// `true` when the value is a password (an element on its path names one).
    pub fn is_sensitive(&self) -> bool {
        self.path
            .iter()
            .any(|p| p.to_ascii_lowercase().contains("password"))
    }

    /// The value for display: hidden when sensitive.
    pub fn shown_value(&self) -> &str {
        if self.is_sensitive() {
            "(hidden: sensitive)"
        } else {
            &self.value
        }
    }
}

impl fmt::Debug for AnswerSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AnswerSetting")
            .field("provider", &self.provider)
            .field("pass", &self.pass)
            .field("component", &self.component)
            .field("path", &self.path)
            .field("value", &self.shown_value())
            .finish()
    }
}

impl serde::Serialize for AnswerSetting {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut out = s.serialize_struct("AnswerSetting", 6)?;
        out.serialize_field("provider", self.provider)?;
        out.serialize_field("pass", &self.pass)?;
        out.serialize_field("component", &self.component)?;
        out.serialize_field("path", &self.path)?;
        out.serialize_field("value", &(!self.is_sensitive()).then_some(&self.value))?;
        out.serialize_field("sensitive", &self.is_sensitive())?;
        out.end()
    }
}

impl fmt::Display for Plan {
    /// A table of the changes, then the answer-file settings and the notes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.changes.is_empty() {
            writeln!(
                f,
                "No changes: the image is already in the requested state."
            )?;
        } else {
            let rows: Vec<[String; 5]> = self
                .changes
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    [
                        (i + 1).to_string(),
                        c.provider.to_string(),
                        c.action.verb().to_string(),
                        c.action.location(),
                        c.action.detail(),
                    ]
                })
                .collect();
            let header = ["#", "PROVIDER", "CHANGE", "WHERE", "DETAIL"].map(String::from);
            // A column is as wide as its cells, up to a limit; longer cells push the rest of
            // their line along rather than widening every line.
            const MAX_WIDTH: usize = 72;
            let mut widths = [0usize; 5];
            for row in std::iter::once(&header).chain(&rows) {
                for (w, cell) in widths.iter_mut().zip(row) {
                    *w = (*w).max(cell.chars().count().min(MAX_WIDTH));
                }
            }
            for row in std::iter::once(&header).chain(&rows) {
                let line = row
                    .iter()
                    .zip(widths)
                    .map(|(cell, w)| format!("{cell:<w$}"))
                    .collect::<Vec<_>>()
                    .join("  ");
                writeln!(f, "{}", line.trim_end())?;
            }
            writeln!(f, "{} change(s).", self.changes.len())?;
        }
        if !self.answer_settings.is_empty() {
            writeln!(f, "\nAnswer file settings:")?;
            for s in &self.answer_settings {
                writeln!(
                    f,
                    "  [{}] {} {} = {} ({})",
                    s.pass,
                    s.component,
                    s.path.join("/"),
                    s.shown_value(),
                    s.provider
                )?;
            }
        }
        if !self.notes.is_empty() {
            writeln!(f, "\nNotes:")?;
            for n in &self.notes {
                writeln!(f, "  {}: {}", n.provider, n.message)?;
            }
        }
        for outcome in &self.checks {
            if let Some(reason) = &outcome.ignored_failure {
                writeln!(f, "\nIgnored failed check {}: {reason}", outcome.check)?;
            }
        }
        if !self.operations.is_empty() {
            writeln!(f, "\nOperations run: {}", self.operations.join(", "))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_as_windows_does() {
        assert!(wildcard_match("*.pf", "CMD.EXE-1234.PF"));
        assert!(wildcard_match("*.pf", "a.pf"));
        assert!(!wildcard_match("*.pf", "a.pfx"));
        assert!(wildcard_match("setup*.log", "SetupAct.log"));
        assert!(wildcard_match("a?c", "abc"));
        assert!(!wildcard_match("a?c", "ac"));
        assert!(wildcard_match("*", ""));
        assert!(wildcard_match("*a*b", "xxaxxb"));
    }

    #[test]
    fn sensitive_contents_are_never_shown() {
        let mut plan = Plan::new();
        let secret = b"<Password>hunter2</Password>";
        plan.push(
            Origin {
                provider: "answer-file",
                source: "test",
            },
            Action::WriteFile {
                path: r"Windows\Panther\unattend.xml".into(),
                contents: secret.to_vec(),
                existed: false,
                sensitive: true,
            },
        );
        plan.answer_setting(AnswerSetting {
            provider: "accounts",
            pass: "oobeSystem".into(),
            component: "Microsoft-Windows-Shell-Setup".into(),
            path: vec![
                "UserAccounts".into(),
                "AdministratorPassword".into(),
                "Value".into(),
            ],
            value: "hunter2".into(),
        });
        let text = plan.to_string();
        let json = serde_json::to_string(&plan).unwrap();
        let debug = format!("{plan:?}");
        for shown in [&text, &json, &debug] {
            assert!(!shown.contains("hunter2"), "{shown}");
        }
        assert!(text.contains("create file"));
        assert!(json.contains("\"sensitive\":true"));
    }

    #[test]
    fn a_change_deep_in_a_binary_value_is_shown() {
        let old = [0u8; 80];
        let mut new = old;
        new[0x38] = 0x11;
        assert_eq!(
            binary_difference(&old, &new).as_deref(),
            Some("80 bytes, at offset 0x38: 00 -> 11")
        );
        assert_eq!(binary_difference(&old, &old), None);
        assert_eq!(binary_difference(&old, &[0; 4]), None);
        assert_eq!(hive_name(r"Windows\System32\config\SYSTEM"), "SYSTEM");
        assert_eq!(
            hive_name(r"Users\Administrator\NTUSER.DAT"),
            r"Users\Administrator\NTUSER.DAT"
        );
    }

    #[test]
    fn values_are_described_readably() {
        use reseal_hive::data::{encode_dword, encode_sz};
        assert_eq!(
            describe_value(ValueType::SZ, &encode_sz("oobe")),
            "\"oobe\""
        );
        assert_eq!(
            describe_value(ValueType::DWORD, &encode_dword(7)),
            "7 (0x7)"
        );
        assert_eq!(describe_value(ValueType::BINARY, &[1, 2]), "hex:0102");
        assert!(describe_value(ValueType::BINARY, &[0; 40]).ends_with("(40 bytes)"));
    }
}
