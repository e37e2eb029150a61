//! The shared upcase table against Windows' own upper-casing as real hives record it: every `lh`
//! subkey-list element stores `H = 37 * H + upcase(unit)` of its key's name, computed by Windows,
//! and every subkey list is sorted by upper-cased name. Each key of each real hive this crate
//! opens is walked with a small parser independent of the engine; its hash is recomputed with
//! `reseal_nt::upcase`, its list order checked with it, and it is looked up by name through the
//! engine.

use std::path::{Path, PathBuf};

use reseal_hive::{Hive, Key};
use reseal_nt::le;
use reseal_nt::upcase::{compare_ignore_case, upcase_unit};

const KEY_COMP_NAME: u16 = 0x0020;

#[derive(Default)]
struct Counts {
    keys: u64,
    non_ascii_names: u64,
    /// The non-ASCII names, each with whether its list is an `lh`.
    non_ascii: Vec<String>,
    lh_elements: u64,
    lh_non_ascii: u64,
    hash_mismatches: Vec<String>,
    order_violations: Vec<String>,
    lookup_failures: Vec<String>,
}

/// Hive files under `dir` (transaction logs left out), sorted.
fn hive_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            hive_files(&path, out);
            continue;
        }
        let name = path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .to_ascii_uppercase();
        if !(name.ends_with(".LOG") || name.ends_with(".LOG1") || name.ends_with(".LOG2")) {
            out.push(path);
        }
    }
    out.sort();
}

struct Raw<'b> {
    bytes: &'b [u8],
}

impl Raw<'_> {
    /// The data of the cell at `offset` (relative to the hive bins), without its size field.
    fn cell(&self, offset: u32) -> &[u8] {
        let at = 4096 + offset as usize;
        let size = i32::from_le_bytes(self.bytes[at..at + 4].try_into().unwrap());
        &self.bytes[at + 4..at + size.unsigned_abs() as usize]
    }

    /// The name of the key node at `offset`, as UTF-16 units.
    fn key_name(&self, offset: u32) -> Vec<u16> {
        let nk = self.cell(offset);
        assert_eq!(&nk[..2], b"nk", "key node at {offset:#x}");
        let flags = le::u16_at(nk, 2).unwrap();
        let len = le::u16_at(nk, 0x48).unwrap() as usize;
        let raw = &nk[0x4C..0x4C + len];
        if flags & KEY_COMP_NAME != 0 {
            raw.iter().map(|&b| u16::from(b)).collect()
        } else {
            raw.chunks_exact(2)
                .map(|pair| u16::from_le_bytes([pair[0], pair[1]]))
                .collect()
        }
    }

    /// The subkey list elements of the key node at `offset` in list order, across an `ri`:
    /// (key node offset, stored `lh` hash when the leaf is an `lh`).
    fn subkeys(&self, offset: u32) -> Vec<(u32, Option<u32>)> {
        let nk = self.cell(offset);
        if le::u32_at(nk, 0x14).unwrap() == 0 {
            return Vec::new();
        }
        let mut elements = Vec::new();
        self.list(le::u32_at(nk, 0x1C).unwrap(), &mut elements);
        elements
    }

    fn list(&self, offset: u32, out: &mut Vec<(u32, Option<u32>)>) {
        let list = self.cell(offset);
        let count = le::u16_at(list, 2).unwrap() as usize;
        match &list[..2] {
            b"ri" | b"li" => {
                for i in 0..count {
                    let element = le::u32_at(list, 4 + 4 * i).unwrap();
                    if &list[..2] == b"ri" {
                        self.list(element, out);
                    } else {
                        out.push((element, None));
                    }
                }
            }
            b"lf" | b"lh" => {
                for i in 0..count {
                    let element = le::u32_at(list, 4 + 8 * i).unwrap();
                    let hint = le::u32_at(list, 8 + 8 * i).unwrap();
                    out.push((element, (&list[..2] == b"lh").then_some(hint)));
                }
            }
            other => panic!("subkey list {other:?} at {offset:#x}"),
        }
    }
}

fn lh_hash(name: &[u16]) -> u32 {
    name.iter().fold(0u32, |h, &unit| {
        h.wrapping_mul(37)
            .wrapping_add(u32::from(upcase_unit(unit)))
    })
}

fn walk(raw: &Raw<'_>, key: &Key<'_>, path: &str, counts: &mut Counts) {
    let mut previous: Option<Vec<u16>> = None;
    for (offset, hash) in raw.subkeys(key.cell_offset()) {
        let name = raw.key_name(offset);
        let shown = String::from_utf16_lossy(&name);
        let child_path = format!("{path}\\{shown}");
        counts.keys += 1;
        let non_ascii = name.iter().any(|&unit| unit >= 0x80);
        counts.non_ascii_names += u64::from(non_ascii);
        if non_ascii {
            let kind = if hash.is_some() { "lh" } else { "other list" };
            counts.non_ascii.push(format!("{shown:?} ({kind})"));
        }
        if let Some(stored) = hash {
            counts.lh_elements += 1;
            counts.lh_non_ascii += u64::from(non_ascii);
            let ours = lh_hash(&name);
            if ours != stored {
                counts.hash_mismatches.push(format!(
                    "{child_path:?}: stored {stored:#010x}, recomputed {ours:#010x}"
                ));
            }
        }
        if let Some(previous) = &previous {
            if compare_ignore_case(previous, &name).is_ge() {
                counts.order_violations.push(format!("{child_path:?}"));
            }
        }
        previous = Some(name);
        let found = key.subkey(&shown).ok().flatten();
        let Some(child) = found.filter(|k| k.cell_offset() == offset) else {
            // A name that is not valid UTF-16 cannot be asked for by a `&str`.
            if !shown.contains('\u{FFFD}') {
                counts.lookup_failures.push(format!("{child_path:?}"));
            }
            continue;
        };
        walk(raw, &child, &child_path, counts);
    }
}

#[test]
fn windows_lh_hashes_and_order_match_the_table() {
    let Some(dir) = reseal_testutil::real_fixture("hives") else {
        return;
    };
    let mut files = Vec::new();
    hive_files(&dir, &mut files);
    let mut total = Counts::default();
    let mut opened = 0;
    for path in &files {
        let relative = path.strip_prefix(&dir).unwrap().display().to_string();
        let hive = match Hive::open_file(path) {
            Ok((hive, _)) => hive,
            Err(e) => {
                eprintln!("{relative}: not opened ({e})");
                continue;
            }
        };
        opened += 1;
        let raw = Raw {
            bytes: hive.bytes(),
        };
        let mut counts = Counts::default();
        walk(&raw, &hive.root().unwrap(), "", &mut counts);
        eprintln!(
            "{relative}: {} keys, {} non-ASCII names, {} lh elements ({} non-ASCII), \
             {} hash mismatches, {} order violations, {} lookup failures",
            counts.keys,
            counts.non_ascii_names,
            counts.lh_elements,
            counts.lh_non_ascii,
            counts.hash_mismatches.len(),
            counts.order_violations.len(),
            counts.lookup_failures.len()
        );
        let prefix = |list: Vec<String>| list.into_iter().map(|s| format!("{relative}: {s}"));
        total.keys += counts.keys;
        total.non_ascii_names += counts.non_ascii_names;
        total.non_ascii.extend(prefix(counts.non_ascii));
        total.lh_elements += counts.lh_elements;
        total.lh_non_ascii += counts.lh_non_ascii;
        total.hash_mismatches.extend(prefix(counts.hash_mismatches));
        total
            .order_violations
            .extend(prefix(counts.order_violations));
        total.lookup_failures.extend(prefix(counts.lookup_failures));
    }
    eprintln!(
        "total: {opened} of {} hive files opened, {} keys, {} non-ASCII names, {} lh elements \
         ({} non-ASCII), {} hash mismatches, {} order violations, {} lookup failures",
        files.len(),
        total.keys,
        total.non_ascii_names,
        total.lh_elements,
        total.lh_non_ascii,
        total.hash_mismatches.len(),
        total.order_violations.len(),
        total.lookup_failures.len()
    );
    eprintln!("non-ASCII names:\n{}", total.non_ascii.join("\n"));
    assert!(opened > 0, "no real hive opened");
    assert!(total.lh_non_ascii > 0, "no non-ASCII name was checked");
    assert!(
        total.hash_mismatches.is_empty(),
        "lh hashes Windows stored differ from the table's:\n{}",
        total.hash_mismatches.join("\n")
    );
    assert!(
        total.order_violations.is_empty(),
        "subkey lists not sorted by the table's upper case:\n{}",
        total.order_violations.join("\n")
    );
    assert!(
        total.lookup_failures.is_empty(),
        "keys not found by name:\n{}",
        total.lookup_failures.join("\n")
    );
}
