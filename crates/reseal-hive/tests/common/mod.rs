//! Shared test helpers: our view of a hive as a tree in the same shape as hivex's.
#![allow(dead_code)]

use reseal_hive::{Hive, Key};
use reseal_testutil::{HivexKey, HivexValue};

/// Every hive under the shared fixtures that hivex reads completely. Left out: the logs, the regf
/// 1.1 NT 3.1 SOFTWARE, `EricZimmerman/SAMBadHBinHeader` (hivex refuses it), `regipy/corrupted_system_hive`
/// and `yarp/System_Delta` (hivex fails on one of its values with "Bad address").
pub const HIVES_HIVEX_OPENS: &[&str] = &[
    "hives/yarp/BigDataHive",
    "hives/yarp/UnicodeHive",
    "hives/yarp/StringValuesHive",
    "hives/yarp/NewDirtyHive1/NewDirtyHive",
    "hives/yarp/NewDirtyHive1/RecoveredHive_Windows10",
    "hives/yarp/ManySubkeysHive",
    "hives/yarp/ExtendedASCIIHive",
    "hives/yarp/OldDirtyHive/RecoveredHive_Windows7",
    "hives/yarp/OldDirtyHive/OldDirtyHive",
    "hives/yarp/BogusKeyNamesHive",
    "hives/yarp/MultiSzHive",
    "hives/aiowinreg/win2022_64/security.reg",
    "hives/aiowinreg/win2022_64/sam.reg",
    "hives/aiowinreg/win2012_64/security.reg",
    "hives/aiowinreg/win2012_64/sam.reg",
    "hives/aiowinreg/win2016_64/security.reg",
    "hives/aiowinreg/win2016_64/sam.reg",
    "hives/aiowinreg/win2008_32/security.reg",
    "hives/aiowinreg/win2008_32/sam.reg",
    "hives/aiowinreg/nt/security.reg",
    "hives/aiowinreg/nt/system.reg",
    "hives/aiowinreg/nt/sam.reg",
    "hives/aiowinreg/win2008r2_64/security.reg",
    "hives/aiowinreg/win2008r2_64/sam.reg",
    "hives/hivex/special",
    "hives/EricZimmerman/NTUSER1.DAT",
    "hives/EricZimmerman/SECURITY",
    "hives/EricZimmerman/SAM",
    "hives/EricZimmerman/SAM_DUPENAME",
    "hives/nt-hive/testhive",
    "hives/regipy/UsrClass.dat",
    "hives/regipy/ntuser_software_partial",
    "hives/regipy/SYSTEM",
    "hives/regipy/transactions_NTUSER.DAT",
    "hives/regipy/SYSTEM_B",
    "hives/regipy/SECURITY",
    "hives/regipy/SAM",
    "hives/regipy/NTUSER.DAT",
    "hives/regipy/BCD",
    "hives/dfwinreg/NTUSER.DAT",
    "hives/notatin/NTUSER.DAT",
    "hives/notatin/win7_ntuser.dat",
];

/// Reads a real fixture hive, or `None` when the fixtures are absent (see `real_fixture`).
pub fn fixture_bytes(relative: &str) -> Option<Vec<u8>> {
    let path = reseal_testutil::real_fixture(relative)?;
    Some(std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

/// Our whole tree, in hivex's shape.
pub fn our_tree(hive: &Hive) -> HivexKey {
    key_tree(&hive.root().expect("root"))
}

pub fn key_tree(key: &Key<'_>) -> HivexKey {
    HivexKey {
        name: key.name().expect("key name"),
        values: key
            .values()
            .expect("values")
            .iter()
            .map(|v| HivexValue {
                name: v.name().expect("value name"),
                value_type: v.value_type().expect("value type").0,
                data: v.data().expect("value data").into_owned(),
            })
            .collect(),
        children: key
            .subkeys()
            .expect("subkeys")
            .iter()
            .map(key_tree)
            .collect(),
    }
}

/// The tree with every level's values and children sorted by name, so that order does not matter.
pub fn normalized(mut key: HivexKey) -> HivexKey {
    key.values
        .sort_by(|a, b| (&a.name, &a.data).cmp(&(&b.name, &b.data)));
    key.children = key.children.into_iter().map(normalized).collect();
    key.children.sort_by(|a, b| a.name.cmp(&b.name));
    key
}

/// The first difference between two normalized trees, as a path and a description.
pub fn first_difference(ours: &HivexKey, theirs: &HivexKey, path: &str) -> Option<String> {
    if ours.name != theirs.name {
        return Some(format!("{path}: name {:?} vs {:?}", ours.name, theirs.name));
    }
    let here = format!("{path}\\{}", ours.name);
    if ours.values.len() != theirs.values.len() {
        return Some(format!(
            "{here}: {} values vs {}",
            ours.values.len(),
            theirs.values.len()
        ));
    }
    for (a, b) in ours.values.iter().zip(&theirs.values) {
        if a != b {
            return Some(format!(
                "{here}: value {:?} (type {}, {} bytes) vs {:?} (type {}, {} bytes)",
                a.name,
                a.value_type,
                a.data.len(),
                b.name,
                b.value_type,
                b.data.len()
            ));
        }
    }
    if ours.children.len() != theirs.children.len() {
        let names = |k: &HivexKey| {
            k.children
                .iter()
                .map(|c| c.name.clone())
                .collect::<Vec<_>>()
        };
        return Some(format!(
            "{here}: subkeys {:?} vs {:?}",
            names(ours),
            names(theirs)
        ));
    }
    ours.children
        .iter()
        .zip(&theirs.children)
        .find_map(|(a, b)| first_difference(a, b, &here))
}

pub fn count_keys(key: &HivexKey) -> usize {
    1 + key.children.iter().map(count_keys).sum::<usize>()
}

/// The tree as the `nt-hive` crate (a second reader we did not write) sees it.
pub fn nt_hive_tree(bytes: &[u8]) -> HivexKey {
    let hive = nt_hive::Hive::new(bytes).expect("nt-hive opens the hive");
    nt_key_tree(&hive.root_key_node().expect("nt-hive root"))
}

fn nt_key_tree(key: &nt_hive::KeyNode<&[u8]>) -> HivexKey {
    let values = match key.values() {
        Some(values) => values
            .expect("nt-hive values")
            .map(|v| {
                let v = v.expect("nt-hive value");
                HivexValue {
                    name: v.name().expect("nt-hive value name").to_string_lossy(),
                    value_type: v.data_type().expect("nt-hive value type") as u32,
                    data: v
                        .data()
                        .expect("nt-hive data")
                        .into_vec()
                        .expect("nt-hive data bytes"),
                }
            })
            .collect(),
        None => Vec::new(),
    };
    let children = match key.subkeys() {
        Some(subkeys) => subkeys
            .expect("nt-hive subkeys")
            .map(|k| nt_key_tree(&k.expect("nt-hive subkey")))
            .collect(),
        None => Vec::new(),
    };
    HivexKey {
        name: key.name().expect("nt-hive key name").to_string_lossy(),
        values,
        children,
    }
}

/// Every allocated cell of a hive file (by offset relative to the hive bins data), read with a
/// small parser independent of the engine.
pub fn allocated_cells(bytes: &[u8]) -> std::collections::BTreeMap<u32, Vec<u8>> {
    let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
    let bins_size = u32_at(40) as usize;
    let mut cells = std::collections::BTreeMap::new();
    let mut bin = 0usize;
    while bin < bins_size {
        let bin_size = u32_at(4096 + bin + 8) as usize;
        let mut cell = bin + 32;
        while cell < bin + bin_size {
            let size = u32_at(4096 + cell) as i32;
            let len = size.unsigned_abs() as usize;
            assert!(len >= 8 && len % 8 == 0, "cell size {size} at {cell:#x}");
            if size < 0 {
                cells.insert(cell as u32, bytes[4096 + cell..4096 + cell + len].to_vec());
            }
            cell += len;
        }
        bin += bin_size;
    }
    cells
}

/// Offsets of allocated cells of `before` that are not byte-identical in `after`.
pub fn changed_cells(before: &[u8], after: &[u8]) -> Vec<u32> {
    let after_cells = allocated_cells(after);
    allocated_cells(before)
        .into_iter()
        .filter(|(offset, bytes)| after_cells.get(offset) != Some(bytes))
        .map(|(offset, _)| offset)
        .collect()
}

/// The key at `path` (names compared case-insensitively) in a tree, for building expected trees.
pub fn tree_key<'t>(tree: &'t mut HivexKey, path: &[&str]) -> &'t mut HivexKey {
    let mut key = tree;
    for component in path {
        let at = key
            .children
            .iter()
            .position(|c| c.name.to_uppercase() == component.to_uppercase())
            .unwrap_or_else(|| panic!("no key {component:?}"));
        key = &mut key.children[at];
    }
    key
}

/// Checks a committed hive: hivex and nt-hive both read exactly `expected`. nt-hive is skipped for
/// format 1.3 hives, because it reads data above 16344 bytes as big data whatever the version
/// (Windows stores such data in one plain cell in 1.3 hives).
///
/// It also checks the structure with [`Hive::check`]: no orphan cells, no problems, and security
/// reference counts that match the keys using them.
pub fn assert_readers_see(committed: &[u8], expected: &HivexKey) {
    let report = Hive::from_bytes(committed.to_vec())
        .expect("committed hive opens")
        .check();
    assert!(report.is_clean(), "{report:?}");
    let expected = normalized(expected.clone());
    let hivex = normalized(reseal_testutil::hivex_tree_of_bytes(committed));
    assert_eq!(first_difference(&hivex, &expected, "hivex"), None);
    let minor_version = u32::from_le_bytes(committed[24..28].try_into().unwrap());
    if minor_version < 4 {
        return;
    }
    let nt = normalized(nt_hive_tree(committed));
    assert_eq!(first_difference(&nt, &expected, "nt-hive"), None);
}

/// Offsets of the key nodes named `name` in a committed hive.
pub fn key_node_offset(bytes: &[u8], name: &str) -> u32 {
    allocated_cells(bytes)
        .into_iter()
        .find(|(_, cell)| {
            &cell[4..6] == b"nk"
                && cell.len() >= 80 + name.len()
                && u16::from_le_bytes([cell[76], cell[77]]) as usize == name.len()
                && &cell[80..80 + name.len()] == name.as_bytes()
        })
        .map(|(offset, _)| offset)
        .unwrap_or_else(|| panic!("no key node {name}"))
}

/// Writes `value` at byte `field` of the data of the cell at `cell` (hive bins offset).
pub fn put_u32(bytes: &mut [u8], cell: u32, field: usize, value: u32) {
    let at = 4096 + cell as usize + 4 + field;
    bytes[at..at + 4].copy_from_slice(&value.to_le_bytes());
}

/// The u32 at byte `field` of the data of the cell at `cell` (hive bins offset).
pub fn field(bytes: &[u8], cell: u32, field: usize) -> u32 {
    let at = 4096 + cell as usize + 4 + field;
    u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap())
}
