//! Test helpers shared by the reseal crates (dev-dependency only).
//!
//! - [`real_fixture`]: a file from `../shared/fixtures/real` (real Windows data that is never copied
//!   into the repository). Missing data skips a test locally but fails it when `CI=true`.
//! - [`hivex_tree`]: a hive read by python3-hivex, a reader we did not write, as the oracle.
//! - [`ntfs_image`]: NTFS volumes and partitioned VHD/VHDX/raw disks made with mkntfs, sgdisk,
//!   wimlib-imagex and qemu-img, and the ntfs-3g programs and `ntfs` crate that read them back.
//! - [`vhdx_log`]: VHDX log entries built from the specification, valid or crafted, to arm a
//!   VHDX with a pending log.
#![forbid(unsafe_code)]

pub mod ntfs_image;
pub mod vhdx_log;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;

/// The workspace root (the folder with the top-level Cargo.toml).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crates/<name> has a workspace root two levels up")
        .to_path_buf()
}

/// `../shared` beside the checkout, overridable with `RESEAL_SHARED`.
pub fn shared_dir() -> PathBuf {
    match std::env::var_os("RESEAL_SHARED") {
        Some(dir) => PathBuf::from(dir),
        None => workspace_root().join("..").join("shared"),
    }
}

fn running_in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// The path of `shared/fixtures/real/<relative>`, or `None` (after a note on stderr) when it is
/// missing. Under `CI=true` a missing fixture panics: CI must never pass by skipping real data.
pub fn real_fixture(relative: &str) -> Option<PathBuf> {
    let path = shared_dir().join("fixtures/real").join(relative);
    if path.exists() {
        return Some(path);
    }
    if running_in_ci() {
        panic!(
            "real fixture {} is missing (CI=true requires ../shared/fixtures/real)",
            path.display()
        );
    }
    eprintln!("skipping: real fixture {} is missing", path.display());
    None
}

/// The Debian python that has the `hivex` module (the pyenv `python3` on PATH cannot import it).
pub const HIVEX_PYTHON: &str = "/usr/bin/python3";

/// One key as python3-hivex sees it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct HivexKey {
    pub name: String,
    /// Values in hivex's order: (name, type, data).
    pub values: Vec<HivexValue>,
    pub children: Vec<HivexKey>,
}

/// One value as python3-hivex sees it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct HivexValue {
    pub name: String,
    pub value_type: u32,
    pub data: Vec<u8>,
}

const HIVEX_DUMP: &str = r#"
import hivex, json, sys
h = hivex.Hivex(sys.argv[1])
def key(n):
    values = []
    for v in h.node_values(n):
        t, data = h.value_value(v)
        values.append({"name": h.value_key(v), "value_type": t, "data": list(data)})
    return {"name": h.node_name(n), "values": values,
            "children": [key(c) for c in h.node_children(n)]}
json.dump(key(h.root()), sys.stdout)
"#;

/// Reads the hive file at `path` with python3-hivex and returns its whole tree.
///
/// Panics with hivex's message when hivex cannot open the file (callers use it on hives it reads).
/// hivex ignores transaction logs and reads the bins as they are.
pub fn hivex_tree(path: &Path) -> HivexKey {
    let out = Command::new(HIVEX_PYTHON)
        .args(["-c", HIVEX_DUMP])
        .arg(path)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {HIVEX_PYTHON} (install python3-hivex): {e}"));
    assert!(
        out.status.success(),
        "hivex could not read {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("hivex dump is JSON")
}

/// Like [`hivex_tree`] for hive bytes in memory (written to a temporary file first).
pub fn hivex_tree_of_bytes(bytes: &[u8]) -> HivexKey {
    // A file of its own for each call: tests running at once may dump the same bytes.
    let mut file = tempfile::Builder::new()
        .prefix("reseal-hivex-")
        .tempfile()
        .unwrap();
    std::io::Write::write_all(&mut file, bytes).unwrap();
    hivex_tree(file.path())
}

/// A writable copy of the repository's `fixtures/sample.wim` (made by `cargo xtask fixtures`) as
/// `install.wim` in a new temporary folder, or `None`, said on stderr, when it is missing.
pub fn sample_wim_copy() -> Option<(tempfile::TempDir, std::path::PathBuf)> {
    let source = workspace_root().join("fixtures/sample.wim");
    if !source.exists() {
        eprintln!("skipping: {} is missing", source.display());
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("install.wim");
    std::fs::copy(&source, &copy).unwrap();
    Some((dir, copy))
}

/// A writable copy of the repository's sample image folder `fixtures/sample` at `dir/sample`,
/// or `None`, said on stderr, when the sample is missing.
pub fn sample_copy_in(dir: &Path) -> Option<PathBuf> {
    let source = workspace_root().join("fixtures/sample");
    if !source.join("Windows/System32/config/SYSTEM").exists() {
        eprintln!("skipping: {} is missing", source.display());
        return None;
    }
    let image = dir.join("sample");
    copy_dir(&source, &image);
    Some(image)
}

/// A writable copy of the repository's sample image folder `fixtures/sample` (made by `cargo
/// xtask fixtures`) in a new temporary folder, or `None`, said on stderr, when it is missing.
pub fn sample_dir_copy() -> Option<tempfile::TempDir> {
    let source = workspace_root().join("fixtures/sample");
    if !source.join("Windows/System32/config/SYSTEM").exists() {
        eprintln!("skipping: {} is missing", source.display());
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&source, dir.path());
    Some(dir)
}

/// Every file below `root` with its bytes, by path relative to `root`, for before/after
/// comparisons; a special file (link, FIFO, ...) is recorded by its kind, never followed.
pub fn snapshot_tree(root: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            let kind = entry.file_type().unwrap();
            let name = path.strip_prefix(root).unwrap().display().to_string();
            if kind.is_dir() {
                stack.push(path);
            } else if kind.is_file() {
                files.push((name, std::fs::read(&path).unwrap()));
            } else {
                files.push((name, format!("{kind:?}").into_bytes()));
            }
        }
    }
    files.sort();
    files
}

/// Copies the folder `from` with everything in it to `to` (created when missing).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let dest = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &dest);
        } else {
            std::fs::copy(entry.path(), &dest).unwrap();
        }
    }
}
