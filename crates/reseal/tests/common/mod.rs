//! Shared test helpers: temporary image trees built from real hives, snapshots, hivex lookups.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use reseal_testutil::{copy_dir, real_fixture, HivexKey};

pub mod reference_image;

/// Real Windows hives (a dirty Windows 10 SYSTEM with its logs, a Server 2022 SAM/SECURITY
/// pair) under `../shared/fixtures/real`, each with where it goes in an image.
pub const REAL_HIVES: [(&str, &str); 5] = [
    ("hives/regipy/SYSTEM_B", "Windows/System32/config/SYSTEM"),
    (
        "hives/regipy/SYSTEM_B.LOG1",
        "Windows/System32/config/SYSTEM.LOG1",
    ),
    (
        "hives/regipy/SYSTEM_B.LOG2",
        "Windows/System32/config/SYSTEM.LOG2",
    ),
    (
        "hives/aiowinreg/win2022_64/sam.reg",
        "Windows/System32/config/SAM",
    ),
    (
        "hives/aiowinreg/win2022_64/security.reg",
        "Windows/System32/config/SECURITY",
    ),
];

/// A temporary image folder (deleted on drop).
pub struct Tree {
    pub dir: tempfile::TempDir,
}

impl Tree {
    /// An empty image: just `Windows\System32\config`.
    pub fn empty() -> Tree {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("Windows/System32/config")).unwrap();
        Tree { dir }
    }

    /// The image root on the host.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// The host path of an image path written with `/`.
    pub fn path(&self, relative: &str) -> PathBuf {
        self.root().join(relative)
    }

    /// Copies the real fixture `fixture` to `relative` (writable). `None` when it is missing.
    pub fn copy_fixture(&self, fixture: &str, relative: &str) -> Option<()> {
        let source = real_fixture(fixture)?;
        let dest = self.path(relative);
        fs::create_dir_all(dest.parent().unwrap()).unwrap();
        fs::write(&dest, fs::read(source).unwrap()).unwrap();
        Some(())
    }

    /// Copies the real Windows hives of [`REAL_HIVES`] into the tree; `None` when the real
    /// fixtures are missing (outside CI).
    pub fn copy_real_hives(&self) -> Option<()> {
        for (fixture, relative) in REAL_HIVES {
            self.copy_fixture(fixture, relative)?;
        }
        Some(())
    }

    /// Writes a file (creating parents).
    pub fn write(&self, relative: &str, contents: &[u8]) {
        let dest = self.path(relative);
        fs::create_dir_all(dest.parent().unwrap()).unwrap();
        fs::write(dest, contents).unwrap();
    }

    /// Every file under the root with its bytes, by `/`-separated relative path.
    pub fn snapshot(&self) -> BTreeMap<String, Vec<u8>> {
        let mut files = BTreeMap::new();
        walk(self.root(), self.root(), &mut files);
        files
    }

    /// Every directory under the root, by `/`-separated relative path.
    pub fn directories(&self) -> Vec<String> {
        let mut dirs = Vec::new();
        walk_dirs(self.root(), self.root(), &mut dirs);
        dirs.sort();
        dirs
    }
}

fn walk(root: &Path, dir: &Path, files: &mut BTreeMap<String, Vec<u8>>) {
    for entry in fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let path = entry.path();
        if entry.file_type().unwrap().is_dir() {
            walk(root, &path, files);
        } else {
            let relative = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            files.insert(relative, fs::read(&path).unwrap());
        }
    }
}

fn walk_dirs(root: &Path, dir: &Path, dirs: &mut Vec<String>) {
    for entry in fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            let path = entry.path();
            dirs.push(
                path.strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned(),
            );
            walk_dirs(root, &path, dirs);
        }
    }
}

/// The workgroup Windows 7 machine of the regipy fixtures: SYSTEM, SAM and SECURITY.
pub fn win7_tree() -> Option<Tree> {
    let tree = Tree::empty();
    tree.copy_fixture("hives/regipy/SYSTEM", "Windows/System32/config/SYSTEM")?;
    tree.copy_fixture("hives/regipy/SAM", "Windows/System32/config/SAM")?;
    tree.copy_fixture("hives/regipy/SECURITY", "Windows/System32/config/SECURITY")?;
    Some(tree)
}

/// [`win7_tree`] with its SECURITY hive made clean: the fixture's sequence numbers differ (it
/// was copied from a running system without its logs), which the `dirty-hive` check refuses.
pub fn win7_clean_tree() -> Option<Tree> {
    let tree = win7_tree()?;
    let path = tree.path("Windows/System32/config/SECURITY");
    let mut hive = reseal_hive::Hive::from_bytes(fs::read(&path).unwrap()).unwrap();
    assert!(hive.was_dirty(), "the fixture is known to be dirty");
    // A no-op edit makes the commit write a consistent base block.
    hive.create_key("Policy").unwrap();
    let bytes = hive.commit();
    fs::write(&path, bytes).unwrap();
    Some(tree)
}

/// The key at `path` (backslash-separated, case-insensitive) in a hivex tree.
pub fn hivex_key<'a>(root: &'a HivexKey, path: &str) -> Option<&'a HivexKey> {
    let mut key = root;
    for name in path.split('\\').filter(|c| !c.is_empty()) {
        key = key
            .children
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case(name))?;
    }
    Some(key)
}

/// The (type, data) of value `name` of the key at `path` in a hivex tree.
pub fn hivex_value(root: &HivexKey, path: &str, name: &str) -> Option<(u32, Vec<u8>)> {
    hivex_key(root, path)?
        .values
        .iter()
        .find(|v| v.name.eq_ignore_ascii_case(name))
        .map(|v| (v.value_type, v.data.clone()))
}

/// One key as python3-hivex sees it, without its subtree: values and subkey names.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct HivexShallowKey {
    pub name: String,
    /// (name, type, data) in hivex's order.
    pub values: Vec<(String, u32, Vec<u8>)>,
    pub children: Vec<String>,
}

const HIVEX_SHALLOW: &str = r#"
import hivex, json, sys
h = hivex.Hivex(sys.argv[1])
node = h.root()
for name in [p for p in sys.argv[2].split("\\") if p]:
    node = h.node_get_child(node, name)
    if node is None:
        print("null"); sys.exit(0)
values = [[h.value_key(v), h.value_value(v)[0], list(h.value_value(v)[1])] for v in h.node_values(node)]
json.dump({"name": h.node_name(node), "values": values,
           "children": [h.node_name(c) for c in h.node_children(node)]}, sys.stdout)
"#;

/// The key at `key_path` of the hive file at `hive` as hivex reads it (fast on big hives, unlike
/// a whole-tree dump). Panics when hivex cannot open the file.
pub fn hivex_shallow(hive: &Path, key_path: &str) -> Option<HivexShallowKey> {
    let out = std::process::Command::new(reseal_testutil::HIVEX_PYTHON)
        .args(["-c", HIVEX_SHALLOW])
        .arg(hive)
        .arg(key_path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "hivex could not read {}: {}",
        hive.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// [`hivex_shallow`] for hive bytes in memory.
pub fn hivex_shallow_of_bytes(bytes: &[u8], key_path: &str) -> Option<HivexShallowKey> {
    let file = tempfile::NamedTempFile::new().unwrap();
    fs::write(file.path(), bytes).unwrap();
    hivex_shallow(file.path(), key_path)
}

/// The (type, data) of value `name` of the key at `key_path`, as hivex reads the hive file.
pub fn hivex_value_at(hive: &Path, key_path: &str, name: &str) -> Option<(u32, Vec<u8>)> {
    hivex_shallow(hive, key_path)?
        .values
        .into_iter()
        .find(|(n, _, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, t, d)| (t, d))
}

/// Edits the hive file at `relative` in place with `edit` (through reseal-hive, the way a test
/// prepares an image state; what reseal then reads is checked separately).
pub fn edit_hive(tree: &Tree, relative: &str, edit: impl FnOnce(&mut reseal_hive::Hive)) {
    let path = tree.path(relative);
    let (mut hive, _) = reseal_hive::Hive::open_file(&path).unwrap();
    edit(&mut hive);
    reseal::targets::directory::replace_host_hive(&path, hive).unwrap();
}

/// Sets the `REG_DWORD` value `name` of `key` (created when missing) in `hive`.
pub fn set_dword(hive: &mut reseal_hive::Hive, key: &str, name: &str, value: u32) {
    hive.create_key(key).unwrap();
    let data = reseal_hive::data::encode_dword(value);
    hive.set_value(key, name, reseal::ValueType::DWORD, &data)
        .unwrap();
}

/// Sets the `REG_SZ` value `name` of `key` (created when missing) in `hive`.
pub fn set_sz(hive: &mut reseal_hive::Hive, key: &str, name: &str, value: &str) {
    hive.create_key(key).unwrap();
    let data = reseal_hive::data::encode_sz(value);
    hive.set_value(key, name, reseal::ValueType::SZ, &data)
        .unwrap();
}

/// Writes a new hive at `relative` holding `values` (key, name, type, data).
pub fn new_hive(tree: &Tree, relative: &str, values: &[(&str, &str, reseal::ValueType, Vec<u8>)]) {
    let mut hive = reseal_hive::Hive::new_empty("ROOT", 5);
    for (key, name, value_type, data) in values {
        hive.create_key(key).unwrap();
        hive.set_value(key, name, *value_type, data).unwrap();
    }
    let bytes = hive.commit();
    tree.write(relative, &bytes);
}

/// A copy of the repository's sample image (`fixtures/sample`), or `None` when it is not there.
pub fn sample_tree() -> Option<Tree> {
    let source = reseal_testutil::workspace_root().join("fixtures/sample");
    if !source.join("Windows/System32/config/SYSTEM").exists() {
        eprintln!("skipping: {} is missing", source.display());
        return None;
    }
    let tree = Tree {
        dir: tempfile::tempdir().unwrap(),
    };
    copy_dir(&source, tree.root());
    Some(tree)
}

/// The sample image with the real Windows 10 SYSTEM hive SYSTEM_B (a finished installation,
/// left dirty with its two logs) in place of its own; `None` when a fixture is missing.
pub fn system_b_tree() -> Option<Tree> {
    let tree = sample_tree()?;
    for (fixture, relative) in &REAL_HIVES[..3] {
        tree.copy_fixture(fixture, relative)?;
    }
    Some(tree)
}

/// Generalize options whose every generated value is fixed, so two runs plan the same bytes.
pub fn fixed_options() -> reseal::GeneralizeOptions {
    reseal::GeneralizeOptions {
        computer_name: Some("NEW-PC".into()),
        // Runs on different targets then plan the same record of the run, time included.
        source_date_epoch: Some(1_700_000_000),
        sid: Some(
            reseal::Sid::parse_machine_sid("S-1-5-21-1111111111-2222222222-3333333333").unwrap(),
        ),
        ..Default::default()
    }
}

/// Runs `wimlib-imagex` with `args`, which must succeed, and returns what it printed.
pub fn wimlib(args: &[&str]) -> String {
    let out = std::process::Command::new("wimlib-imagex")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "wimlib-imagex {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}
