//! Shared test helpers: temporary image trees built from real hives, snapshots, hivex lookups.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use reseal_testutil::{real_fixture, HivexKey};

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
            let relative = path.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            files.insert(relative, fs::read(&path).unwrap());
        }
    }
}

fn walk_dirs(root: &Path, dir: &Path, dirs: &mut Vec<String>) {
    for entry in fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            let path = entry.path();
            dirs.push(path.strip_prefix(root).unwrap().to_string_lossy().into_owned());
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
