//! [`Image`]: what providers read through. It loads hives lazily (replaying their transaction
//! logs) and overlays the changes planned so far, so each provider sees the state the earlier ones
//! leave behind and a change is planned only once.

use std::collections::BTreeMap;

use reseal_hive::{Hive, ValueType};

use crate::error::{Error, Result};
use crate::limits::{self, read_image_file, ReadLimit};
use crate::targets::{canonical_path, split_parent, upper_case_name, DirEntry, Target};

/// The SYSTEM hive.
pub const SYSTEM: &str = r"Windows\System32\config\SYSTEM";
/// The SOFTWARE hive.
pub const SOFTWARE: &str = r"Windows\System32\config\SOFTWARE";
/// The SAM hive.
pub const SAM: &str = r"Windows\System32\config\SAM";
/// The SECURITY hive.
pub const SECURITY: &str = r"Windows\System32\config\SECURITY";
/// The DEFAULT hive (the profile of system services and the logon screen).
pub const DEFAULT: &str = r"Windows\System32\config\DEFAULT";

/// The machine hives, in the order reseal reports them.
pub const MACHINE_HIVES: &[&str] = &[SYSTEM, SOFTWARE, SAM, SECURITY, DEFAULT];

/// The transaction log suffixes Windows uses beside a hive.
const LOG_SUFFIXES: &[&str] = &[".LOG1", ".LOG2", ".LOG"];

/// How a hive was loaded: its dirty state and what log replay did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HiveStatus {
    /// The hive's image path.
    pub path: String,
    /// The hive was dirty on disk (its logs hold changes not yet in the file).
    pub was_dirty: bool,
    /// The hive is consistent: clean, or dirty and fully recovered from its logs.
    pub recovered: bool,
    /// The image paths of the transaction logs found beside it.
    pub logs: Vec<String>,
    /// What replay did or why it stopped, one line each.
    pub notes: Vec<String>,
}

/// The image paths of the transaction logs beside the hive at `path` that exist.
pub(crate) fn hive_logs(target: &mut dyn Target, path: &str) -> Result<Vec<String>> {
    let (dir, name) = split_parent(path);
    let Some(entries) = target.list_dir(&dir)? else {
        return Ok(Vec::new());
    };
    let mut logs = Vec::new();
    for suffix in LOG_SUFFIXES {
        let wanted = upper_case_name(&format!("{name}{suffix}"));
        if let Some(entry) = entries
            .iter()
            .find(|e| !e.is_dir && upper_case_name(&e.name) == wanted)
        {
            logs.push(join_path(&dir, &entry.name));
        }
    }
    Ok(logs)
}

/// Loads the hive at `path` with its logs replayed, or `None` when the file is absent.
///
/// A dirty hive whose logs cannot recover it is still opened as it is on disk, with
/// `recovered == false`, so the `dirty-hive` check can name it (and a caller who ignores that
/// check works on the bytes Windows would also see without its logs).
pub(crate) fn load_hive(target: &mut dyn Target, path: &str) -> Result<Option<(Hive, HiveStatus)>> {
    let Some(bytes) = read_image_file(target, path, limits::HIVE)? else {
        return Ok(None);
    };
    let log_paths = hive_logs(target, path)?;
    let mut log_bytes = Vec::new();
    for log in &log_paths {
        if let Some(bytes) = read_image_file(target, log, limits::HIVE)? {
            log_bytes.push((split_parent(log).1, bytes));
        }
    }
    let logs: Vec<(&str, &[u8])> = log_bytes
        .iter()
        .map(|(name, bytes)| (name.as_str(), bytes.as_slice()))
        .collect();
    let mut status = HiveStatus {
        path: path.to_string(),
        was_dirty: false,
        recovered: true,
        logs: log_paths.clone(),
        notes: Vec::new(),
    };
    match Hive::from_bytes_with_logs(bytes, &logs) {
        Ok((hive, report)) => {
            status.was_dirty = report.was_dirty;
            status.recovered = report.recovered;
            status.notes = report.notes;
            status.notes.extend(report.applied.iter().map(|log| {
                format!(
                    "{}: applied {} entries (sequence {} to {}), {} pages",
                    log.name, log.entries, log.first_sequence, log.last_sequence, log.pages
                )
            }));
            Ok(Some((hive, status)))
        }
        Err(replay_error) => {
            // Read again rather than held twice: a failed replay is rare, an 80 MiB hive is not.
            let bytes = read_image_file(target, path, limits::HIVE)?.unwrap_or_default();
            let hive = Hive::from_bytes(bytes).map_err(|e| Error::from_hive(path, e))?;
            status.was_dirty = hive.was_dirty();
            status.recovered = !hive.was_dirty();
            status
                .notes
                .push(format!("log replay failed: {replay_error}"));
            Ok(Some((hive, status)))
        }
    }
}

/// `dir\name`, or `name` when `dir` is the root.
pub(crate) fn join_path(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}\\{name}")
    }
}

/// A loaded hive and how it was loaded.
struct LoadedHive {
    hive: Hive,
    status: HiveStatus,
}

/// The planned state of one file.
#[derive(Clone)]
enum PlannedFile {
    Written(Vec<u8>),
    Deleted,
}

/// An image as providers see it: the target plus the changes planned so far.
pub struct Image<'t> {
    target: &'t mut dyn Target,
    /// Loaded hives by canonical path; `Ok(None)` = the file is absent, `Err` = it could not be
    /// loaded (kept so a damaged hive is read once and reported the same way each time).
    hives: BTreeMap<String, Result<Option<LoadedHive>>>,
    /// Planned file states by canonical path, with the path as first given.
    files: BTreeMap<String, (String, PlannedFile)>,
    /// Planned directory deletions (canonical paths).
    deleted_dirs: Vec<String>,
    /// The time hive edits stamp; `None`: the clock.
    fixed_time: Option<reseal_nt::FileTime>,
}

impl<'t> Image<'t> {
    /// An image over `target`; nothing is read until asked for.
    pub fn new(target: &'t mut dyn Target) -> Image<'t> {
        Image {
            target,
            hives: BTreeMap::new(),
            files: BTreeMap::new(),
            deleted_dirs: Vec::new(),
            fixed_time: None,
        }
    }

    /// Makes the hives' edits stamp `time` instead of the clock's (a reproducible run); set
    /// before any hive is read.
    pub(crate) fn set_fixed_time(&mut self, time: Option<reseal_nt::FileTime>) {
        self.fixed_time = time;
    }

    /// Loads the hive at `path` once; later calls reuse it.
    fn loaded(&mut self, path: &str) -> Result<Option<&mut LoadedHive>> {
        let key = canonical_path(path);
        let target = &mut *self.target;
        let fixed_time = self.fixed_time;
        let loaded = self.hives.entry(key).or_insert_with(|| {
            Ok(load_hive(target, path)?.map(|(mut hive, status)| {
                hive.set_fixed_time(fixed_time);
                LoadedHive { hive, status }
            }))
        });
        match loaded {
            Ok(hive) => Ok(hive.as_mut()),
            Err(e) => Err(e.clone()),
        }
    }

    /// The hive at `path` with its logs replayed and the planned edits made, or `None` when the
    /// file is absent.
    pub fn hive(&mut self, path: &str) -> Result<Option<&Hive>> {
        Ok(self.loaded(path)?.map(|l| &l.hive))
    }

    /// The hive at `path` for editing (the plan helpers keep the image in step with the plan).
    pub(crate) fn hive_mut(&mut self, path: &str) -> Result<Option<&mut Hive>> {
        Ok(self.loaded(path)?.map(|l| &mut l.hive))
    }

    /// How the hive at `path` was loaded, or `None` when the file is absent.
    pub fn hive_status(&mut self, path: &str) -> Result<Option<HiveStatus>> {
        Ok(self.loaded(path)?.map(|l| l.status.clone()))
    }

    /// The type and data of value `name` of `key` in `hive`, or `None` when the hive, key or
    /// value is absent.
    pub fn value(
        &mut self,
        hive: &str,
        key: &str,
        name: &str,
    ) -> Result<Option<(ValueType, Vec<u8>)>> {
        let Some(h) = self.hive(hive)? else {
            return Ok(None);
        };
        let read = || -> reseal_hive::Result<Option<(ValueType, Vec<u8>)>> {
            match h.value(key, name)? {
                Some(v) => Ok(Some((v.value_type()?, v.data()?.into_owned()))),
                None => Ok(None),
            }
        };
        read().map_err(|e| Error::from_hive(hive, e))
    }

    /// Value `name` of `key` in `hive` as a string, when it is a string type.
    pub fn string_value(&mut self, hive: &str, key: &str, name: &str) -> Result<Option<String>> {
        Ok(match self.value(hive, key, name)? {
            Some((t, data)) if [ValueType::SZ, ValueType::EXPAND_SZ].contains(&t) => {
                Some(reseal_hive::data::decode_sz(&data))
            }
            _ => None,
        })
    }

    /// Value `name` of `key` in `hive` as a number, when it is a REG_DWORD (4 bytes).
    pub fn dword_value(&mut self, hive: &str, key: &str, name: &str) -> Result<Option<u32>> {
        Ok(match self.value(hive, key, name)? {
            Some((t, data)) if t == ValueType::DWORD && data.len() >= 4 => {
                Some(u32::from_le_bytes([data[0], data[1], data[2], data[3]]))
            }
            Some((t, data)) if t == ValueType::DWORD_BIG_ENDIAN && data.len() >= 4 => {
                Some(u32::from_be_bytes([data[0], data[1], data[2], data[3]]))
            }
            _ => None,
        })
    }

    /// `true` when `key` exists in `hive` (`false` when the hive is absent).
    pub fn key_exists(&mut self, hive: &str, key: &str) -> Result<bool> {
        let Some(h) = self.hive(hive)? else {
            return Ok(false);
        };
        h.key(key)
            .map(|k| k.is_some())
            .map_err(|e| Error::from_hive(hive, e))
    }

    /// The names of the subkeys of `key` in `hive` (empty when the hive or key is absent).
    pub fn subkey_names(&mut self, hive: &str, key: &str) -> Result<Vec<String>> {
        let Some(h) = self.hive(hive)? else {
            return Ok(Vec::new());
        };
        let read = || -> reseal_hive::Result<Vec<String>> {
            match h.key(key)? {
                Some(k) => k.subkeys()?.iter().map(|s| s.name()).collect(),
                None => Ok(Vec::new()),
            }
        };
        read().map_err(|e| Error::from_hive(hive, e))
    }

    /// Every value of `key` in `hive` as (name, type, data), in the key's order (empty when the
    /// hive or key is absent).
    pub fn values(&mut self, hive: &str, key: &str) -> Result<Vec<(String, ValueType, Vec<u8>)>> {
        let Some(h) = self.hive(hive)? else {
            return Ok(Vec::new());
        };
        let read = || -> reseal_hive::Result<Vec<(String, ValueType, Vec<u8>)>> {
            let Some(k) = h.key(key)? else {
                return Ok(Vec::new());
            };
            k.values()?
                .iter()
                .map(|v| Ok((v.name()?, v.value_type()?, v.data()?.into_owned())))
                .collect()
        };
        read().map_err(|e| Error::from_hive(hive, e))
    }

    /// The current control set's key name (`ControlSet001`), from `SYSTEM\Select\Current`.
    pub fn control_set(&mut self) -> Result<String> {
        if self.hive(SYSTEM)?.is_none() {
            return Err(Error::corrupt(
                SYSTEM,
                "the SYSTEM hive is missing: this is not a Windows image",
            ));
        }
        let current = self
            .dword_value(SYSTEM, "Select", "Current")?
            .ok_or_else(|| {
                Error::corrupt(
                    SYSTEM,
                    r"Select\Current is missing: the current control set is unknown",
                )
            })?;
        let name = format!("ControlSet{current:03}");
        if !self.key_exists(SYSTEM, &name)? {
            return Err(Error::corrupt(
                SYSTEM,
                format!(r"Select\Current says {name}, which does not exist"),
            ));
        }
        Ok(name)
    }

    /// `true` when `canonical` lies in a directory planned for deletion.
    fn in_deleted_dir(&self, canonical: &str) -> bool {
        self.deleted_dirs
            .iter()
            .any(|dir| canonical == dir || canonical.starts_with(&format!("{dir}\\")))
    }

    /// The contents of the file at `path` as planned so far, or `None` when absent; a file
    /// larger than `limit` is refused before it is read.
    pub fn read_file(&mut self, path: &str, limit: ReadLimit) -> Result<Option<Vec<u8>>> {
        let canonical = canonical_path(path);
        if let Some((_, planned)) = self.files.get(&canonical) {
            return Ok(match planned {
                PlannedFile::Written(contents) => Some(contents.clone()),
                PlannedFile::Deleted => None,
            });
        }
        if self.in_deleted_dir(&canonical) {
            return Ok(None);
        }
        read_image_file(&mut *self.target, path, limit)
    }

    /// The directory entry of the file or folder at `path` as planned so far, or `None` when
    /// absent.
    pub fn entry(&mut self, path: &str) -> Result<Option<DirEntry>> {
        let (dir, name) = split_parent(path);
        let wanted = upper_case_name(&name);
        Ok(self.list_dir(&dir)?.and_then(|entries| {
            entries
                .into_iter()
                .find(|e| upper_case_name(&e.name) == wanted)
        }))
    }

    /// `true` when a file or directory exists at `path` as planned so far.
    pub fn exists(&mut self, path: &str) -> Result<bool> {
        let canonical = canonical_path(path);
        if let Some((_, planned)) = self.files.get(&canonical) {
            return Ok(matches!(planned, PlannedFile::Written(_)));
        }
        let prefix = format!("{canonical}\\");
        if self.files.iter().any(|(k, (_, planned))| {
            k.starts_with(&prefix) && matches!(planned, PlannedFile::Written(_))
        }) {
            return Ok(true);
        }
        if self.in_deleted_dir(&canonical) {
            return Ok(false);
        }
        self.target.exists(path)
    }

    /// The entries of the directory at `path` as planned so far, or `None` when absent.
    pub fn list_dir(&mut self, path: &str) -> Result<Option<Vec<DirEntry>>> {
        let canonical = canonical_path(path);
        let mut listing = if self.in_deleted_dir(&canonical) {
            None
        } else {
            self.target.list_dir(path)?
        };
        let prefix = if canonical.is_empty() {
            String::new()
        } else {
            format!("{canonical}\\")
        };
        let depth = canonical.split('\\').filter(|c| !c.is_empty()).count();
        for (key, (given, planned)) in &self.files {
            let Some(rest) = key.strip_prefix(&prefix) else {
                continue;
            };
            let entries = listing.get_or_insert_with(Vec::new);
            // The next component below this directory, as the plan spelled it (upper-casing can
            // change byte lengths, so it is found by position, not by offset).
            let given_name = given
                .split(['\\', '/'])
                .filter(|c| !c.is_empty() && *c != ".")
                .nth(depth)
                .unwrap_or_default()
                .to_string();
            match (rest.split_once('\\'), planned) {
                // A file directly in this directory.
                (None, PlannedFile::Written(contents)) => {
                    entries.retain(|e| upper_case_name(&e.name) != rest);
                    entries.push(DirEntry {
                        name: given_name,
                        is_dir: false,
                        size: contents.len() as u64,
                    });
                }
                (None, PlannedFile::Deleted) => {
                    entries.retain(|e| upper_case_name(&e.name) != rest);
                }
                // A file further down: its first directory exists.
                (Some((dir, _)), PlannedFile::Written(_)) => {
                    if !entries.iter().any(|e| upper_case_name(&e.name) == dir) {
                        entries.push(DirEntry {
                            name: given_name,
                            is_dir: true,
                            size: 0,
                        });
                    }
                }
                (Some(_), PlannedFile::Deleted) => {}
            }
        }
        if let Some(entries) = listing.as_mut() {
            let prefix_len = prefix.len();
            let deleted: Vec<&str> = self
                .deleted_dirs
                .iter()
                .filter(|d| d.starts_with(&prefix) && !d[prefix_len..].contains('\\'))
                .map(|d| &d[prefix_len..])
                .collect();
            let files = &self.files;
            entries.retain(|e| {
                let name = upper_case_name(&e.name);
                let recreated = files
                    .keys()
                    .any(|k| k.starts_with(&format!("{prefix}{name}\\")));
                !deleted.contains(&name.as_str()) || recreated
            });
            entries.sort_by(|a, b| a.name.cmp(&b.name));
        }
        Ok(listing)
    }

    /// Records that the plan writes `contents` to `path`.
    pub(crate) fn plan_write(&mut self, path: &str, contents: &[u8]) {
        self.files.insert(
            canonical_path(path),
            (path.to_string(), PlannedFile::Written(contents.to_vec())),
        );
    }

    /// Records that the plan deletes the file at `path`.
    pub(crate) fn plan_delete(&mut self, path: &str) {
        self.files.insert(
            canonical_path(path),
            (path.to_string(), PlannedFile::Deleted),
        );
    }

    /// Records that the plan deletes the directory at `path`.
    pub(crate) fn plan_delete_dir(&mut self, path: &str) {
        let canonical = canonical_path(path);
        let prefix = format!("{canonical}\\");
        self.files.retain(|k, _| !k.starts_with(&prefix));
        self.deleted_dirs.push(canonical);
    }

    /// The image paths of the user profile hives that exist (`Users\<name>\NTUSER.DAT`), from
    /// the profile list in SOFTWARE, the built-in Administrator's (RID 500) first. Without a
    /// profile list, `Users\Administrator\NTUSER.DAT` if present.
    pub fn user_hives(&mut self) -> Result<Vec<String>> {
        const PROFILE_LIST: &str = r"Microsoft\Windows NT\CurrentVersion\ProfileList";
        let mut profiles: Vec<(bool, String)> = Vec::new();
        for sid in self.subkey_names(SOFTWARE, PROFILE_LIST)? {
            if !sid.starts_with("S-1-5-21-") {
                continue;
            }
            let key = format!(r"{PROFILE_LIST}\{sid}");
            if let Some(dir) = self.string_value(SOFTWARE, &key, "ProfileImagePath")? {
                if let Some(relative) = image_relative_path(&dir) {
                    profiles.push((sid.ends_with("-500"), relative));
                }
            }
        }
        if profiles.is_empty() {
            profiles.push((true, r"Users\Administrator".to_string()));
        }
        // The built-in Administrator first, then the profile list's order.
        profiles.sort_by_key(|(is_admin, _)| !is_admin);
        let mut hives: Vec<String> = Vec::new();
        for (_, dir) in profiles {
            let hive = join_path(&dir, "NTUSER.DAT");
            let seen = hives
                .iter()
                .any(|h| canonical_path(h) == canonical_path(&hive));
            if !seen && self.exists(&hive)? {
                hives.push(hive);
            }
        }
        Ok(hives)
    }

    /// The hives loaded so far, with the planned edits made, by canonical path; the image is
    /// done with.
    pub(crate) fn into_hives(self) -> BTreeMap<String, Hive> {
        self.hives
            .into_iter()
            .filter_map(|(path, loaded)| Some((path, loaded.ok()??.hive)))
            .collect()
    }

    /// The target under this image (reads through it bypass the planned changes).
    pub fn target(&mut self) -> &mut dyn Target {
        self.target
    }
}

/// An image path for a path as Windows stores it (`%SystemDrive%\Users\x`, `C:\Users\x`), or
/// `None` when it points somewhere else (another drive letter is taken as the system drive).
fn image_relative_path(windows_path: &str) -> Option<String> {
    let rest = if let Some(rest) = windows_path
        .get(..13)
        .filter(|p| p.eq_ignore_ascii_case("%SystemDrive%"))
        .map(|_| &windows_path[13..])
    {
        rest
    } else if windows_path.len() >= 2 && windows_path.as_bytes()[1] == b':' {
        &windows_path[2..]
    } else {
        return None;
    };
    let relative = rest.trim_start_matches('\\');
    (!relative.is_empty()).then(|| relative.to_string())
}

#[cfg(test)]
mod tests {
    use super::image_relative_path;

    #[test]
    fn profile_paths_become_image_paths() {
        assert_eq!(
            image_relative_path(r"%SystemDrive%\Users\Administrator").as_deref(),
            Some(r"Users\Administrator")
        );
        assert_eq!(
            image_relative_path(r"C:\Users\x").as_deref(),
            Some(r"Users\x")
        );
        assert_eq!(image_relative_path(r"\\server\share"), None);
        assert_eq!(image_relative_path("C:"), None);
    }
}
