//! The hive targets' shared pieces: a bounded walk over everything a hive exposes, the edit
//! script that `hive_edit_commit` derives from its input, and how the `hive_replay` input is
//! split into a hive and its logs.

use reseal_hive::{Hive, Key, ValueType};

/// The walk stops after this many keys: a hive whose subkey lists share keys can fan out
/// exponentially within the depth limit, and the walk must stay fast for the fuzzer.
pub const WALK_KEY_BUDGET: usize = 20_000;

/// Reads every key and value reachable from the root (up to [`WALK_KEY_BUDGET`] keys): names,
/// class, security descriptor, timestamps, value data in every typed form. Errors are ignored,
/// so reading goes on past a bad cell; only panics, hangs and huge allocations matter here.
/// Returns the number of keys visited and whether any read failed.
pub fn walk(hive: &Hive) -> (usize, bool) {
    let mut failed = false;
    let mut note = |ok: bool| failed |= !ok;
    let root = match hive.root() {
        Ok(root) => root,
        Err(_) => return (0, true),
    };
    let mut pending: Vec<Key<'_>> = vec![root];
    let mut visited = 0;
    while let Some(key) = pending.pop() {
        if visited == WALK_KEY_BUDGET {
            break;
        }
        visited += 1;
        note(key.name().is_ok());
        note(key.class_name().is_ok());
        note(key.security_descriptor().is_ok());
        note(key.last_written().is_ok());
        note(key.flags().is_ok());
        match key.values() {
            Ok(values) => {
                for value in values {
                    note(value.name().is_ok());
                    note(value.value_type().is_ok());
                    note(value.data().is_ok());
                    // Type mismatches are normal errors here: only the reading matters.
                    let _ = value.string();
                    let _ = value.multi_string();
                    let _ = value.dword();
                    let _ = value.qword();
                }
            }
            Err(_) => note(false),
        }
        match key.subkeys() {
            Ok(subkeys) => pending.extend(subkeys),
            Err(_) => note(false),
        }
    }
    (visited, failed)
}

/// Up to `limit` key paths below the root (breadth first), with up to 4 value names each; `""`
/// (the root itself) comes first.
fn existing_paths(hive: &Hive, limit: usize) -> Vec<(String, Vec<String>)> {
    let mut found = Vec::new();
    let Ok(root) = hive.root() else {
        return found;
    };
    let mut queue = std::collections::VecDeque::from([(String::new(), root)]);
    while let Some((path, key)) = queue.pop_front() {
        if found.len() == limit {
            break;
        }
        let value_names = key
            .values()
            .map(|values| {
                values
                    .iter()
                    .take(4)
                    .filter_map(|v| v.name().ok())
                    .collect()
            })
            .unwrap_or_default();
        for subkey in key.subkeys().unwrap_or_default().into_iter().take(limit) {
            if let Ok(name) = subkey.name() {
                let child = if path.is_empty() {
                    name
                } else {
                    format!("{path}\\{name}")
                };
                queue.push_back((child, subkey));
            }
        }
        found.push((path, value_names));
    }
    found
}

/// Data sizes around the storage boundaries: inline (<= 4), plain cell, big data (> 16344).
const DATA_SIZES: [usize; 9] = [0, 1, 4, 5, 100, 4096, 16344, 16345, 40000];

/// One edit of the script.
#[derive(Debug, Clone)]
pub enum Edit {
    CreateKey(String),
    SetValue {
        path: String,
        name: String,
        value_type: ValueType,
        data: Vec<u8>,
    },
    DeleteValue(String, String),
    DeleteKey(String),
    RenameKey(String, String),
    Commit,
}

use Edit::*;

/// Splits an `open_edit_commit` input: the first byte is the script length `n`, the next `n`
/// bytes are the script (4 bytes per edit), the rest is the hive.
pub fn split_script(data: &[u8]) -> (&[u8], &[u8]) {
    let Some((&len, rest)) = data.split_first() else {
        return (&[], &[]);
    };
    rest.split_at((len as usize).min(rest.len()))
}

/// Turns script bytes into edits on paths and value names that exist in `hive` or not.
pub fn edits(hive: &Hive, script: &[u8]) -> Vec<Edit> {
    let paths = existing_paths(hive, 64);
    let mut edits = Vec::new();
    for op in script.chunks_exact(4) {
        let [code, key_choice, name_choice, size_choice] = [op[0], op[1], op[2], op[3]];
        // Existing keys (the root first) plus keys that do not exist yet.
        let made_up = ["fuzz", "fuzz\\deeper", "FUZZ\\Deeper\\deepest"];
        let choice = key_choice as usize % (paths.len() + made_up.len());
        let (path, value_names) = match paths.get(choice) {
            Some((path, names)) => (path.clone(), names.clone()),
            None => (made_up[choice - paths.len()].to_string(), Vec::new()),
        };
        let mut names = vec![String::new(), "v".to_string(), "V".to_string()];
        names.extend(value_names);
        let value_name = names[name_choice as usize % names.len()].clone();
        let edit = match code % 6 {
            0 => CreateKey(if name_choice % 2 == 0 {
                path
            } else {
                format!("{path}\\new{}", name_choice % 7)
            }),
            1 => {
                let len = DATA_SIZES[size_choice as usize % DATA_SIZES.len()];
                SetValue {
                    path,
                    name: value_name,
                    value_type: ValueType(u32::from(size_choice >> 4) % 12),
                    data: vec![size_choice; len],
                }
            }
            2 => DeleteValue(path, value_name),
            3 => DeleteKey(path),
            4 => {
                let new_name = match name_choice % 3 {
                    0 => "renamed".to_string(),
                    1 => "RENAMED".to_string(),
                    // A sibling's or an ancestor's name: collisions must be refused cleanly.
                    _ => paths[name_choice as usize % paths.len().max(1)..]
                        .first()
                        .and_then(|(p, _)| p.rsplit('\\').next().map(str::to_string))
                        .filter(|n| !n.is_empty())
                        .unwrap_or_else(|| "x".to_string()),
                };
                RenameKey(path, new_name)
            }
            _ => Commit,
        };
        edits.push(edit);
    }
    edits
}

/// Applies one edit; the result says whether it was refused.
pub fn apply(hive: &mut Hive, edit: &Edit) -> reseal_hive::Result<()> {
    match edit {
        CreateKey(path) => hive.create_key(path).map(drop),
        SetValue {
            path,
            name,
            value_type,
            data,
        } => hive.set_value(path, name, *value_type, data),
        DeleteValue(path, name) => hive.delete_value(path, name).map(drop),
        DeleteKey(path) => hive.delete_key(path).map(drop),
        RenameKey(path, new_name) => hive.rename_key(path, new_name),
        Commit => {
            hive.commit();
            Ok(())
        }
    }
}

/// Splits a `replay` input into a hive and one or two logs: two little-endian u32 lengths (the
/// hive's and the first log's, each cut to what is there), then the hive, the first log and, if
/// anything is left, the second log.
pub fn split_logs(data: &[u8]) -> (&[u8], Vec<&[u8]>) {
    let length = |at: usize| {
        data.get(at..at + 4)
            .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    };
    let (hive_len, log1_len) = (length(0), length(4));
    let rest = data.get(8..).unwrap_or_default();
    let (hive, rest) = rest.split_at(hive_len.min(rest.len()));
    let (log1, log2) = rest.split_at(log1_len.min(rest.len()));
    let mut logs = vec![log1];
    if !log2.is_empty() {
        logs.push(log2);
    }
    (hive, logs)
}
