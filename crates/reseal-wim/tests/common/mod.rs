//! wimlib-imagex as the oracle: its view of an image, parsed from `dir --detailed`.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// One file as `wimlib-imagex dir --detailed` prints it (times as printed).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OracleEntry {
    pub short_name: String,
    pub attributes: u32,
    pub security_descriptor: Option<String>,
    pub creation_time: String,
    pub last_write_time: String,
    pub last_access_time: String,
    pub link_count: u32,
    /// Object id and other lines we do not interpret, kept for before/after comparisons.
    pub other: Vec<String>,
    /// (stream label, hash, uncompressed size), in printed order.
    pub streams: Vec<(String, String, u64)>,
}

pub fn wimlib_imagex(args: &[&str]) -> Vec<u8> {
    let output = Command::new("wimlib-imagex")
        .args(args)
        .output()
        .expect("wimlib-imagex is installed");
    assert!(
        output.status.success(),
        "wimlib-imagex {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// Full path (`/`-separated, `/` = root) to entry.
pub fn oracle_tree(wim: &Path, image: u32) -> BTreeMap<String, OracleEntry> {
    let text = String::from_utf8(wimlib_imagex(&[
        "dir",
        wim.to_str().unwrap(),
        &image.to_string(),
        "--detailed",
    ]))
    .unwrap();
    let mut tree = BTreeMap::new();
    let mut path = None::<String>;
    let mut entry = OracleEntry::default();
    let mut stream_label = None::<String>;
    let mut stream_hash = String::new();
    let value = |line: &str| {
        line.split_once(" = ")
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_default()
    };
    for line in text.lines() {
        if line.starts_with("Full Path") {
            if let Some(done) = path.take() {
                tree.insert(done, std::mem::take(&mut entry));
            }
            path = Some(value(line).trim_matches('"').to_string());
        } else if line.starts_with("Short Name") {
            entry.short_name = value(line).trim_matches('"').to_string();
        } else if line.starts_with("Attributes") {
            entry.attributes =
                u32::from_str_radix(value(line).trim_start_matches("0x"), 16).unwrap();
        } else if line.starts_with("Security Descriptor") {
            entry.security_descriptor = Some(value(line));
        } else if line.starts_with("Creation Time") {
            entry.creation_time = value(line);
        } else if line.starts_with("Last Write Time") {
            entry.last_write_time = value(line);
        } else if line.starts_with("Last Access Time") {
            entry.last_access_time = value(line);
        } else if line.starts_with("Link Count") {
            entry.link_count = value(line).parse().unwrap();
        } else if line.starts_with('\t') && line.trim_end().ends_with(':') {
            stream_label = Some(line.trim().trim_end_matches(':').to_string());
        } else if line.starts_with("Hash") && stream_label.is_some() {
            stream_hash = value(line).trim_start_matches("0x").to_string();
        } else if line.starts_with("Uncompressed size") && stream_label.is_some() {
            let size = value(line).trim_end_matches(" bytes").parse().unwrap();
            entry.streams.push((
                stream_label.take().unwrap(),
                std::mem::take(&mut stream_hash),
                size,
            ));
        } else if line.starts_with("Object ID")
            || line.starts_with("Birth")
            || line.starts_with("Link Group ID")
        {
            entry.other.push(line.to_string());
        }
    }
    if let Some(done) = path.take() {
        tree.insert(done, entry);
    }
    tree
}

pub fn extract_to_stdout(wim: &Path, image: u32, path: &str) -> Vec<u8> {
    wimlib_imagex(&[
        "extract",
        wim.to_str().unwrap(),
        &image.to_string(),
        path,
        "--to-stdout",
    ])
}

/// A small tree to edit: an answer file, a temp folder with a subfolder, a file with a hard link.
pub fn small_windows_tree(root: &Path) {
    std::fs::create_dir_all(root.join("Windows/Panther")).unwrap();
    std::fs::create_dir_all(root.join("Windows/Temp/sub")).unwrap();
    std::fs::write(root.join("Windows/Panther/unattend.xml"), b"<unattend/>").unwrap();
    std::fs::write(root.join("Windows/Temp/a.log"), vec![b'a'; 70_000]).unwrap();
    std::fs::write(root.join("Windows/Temp/sub/b.log"), b"b").unwrap();
    std::fs::write(root.join("keep.txt"), b"keep").unwrap();
    std::fs::hard_link(root.join("keep.txt"), root.join("Windows/keep-link.txt")).unwrap();
}

/// Captures `source` into `out` as an image named "Sample" (`extra`: more capture options).
pub fn capture(source: &Path, out: &Path, extra: &[&str]) {
    let status = Command::new("wimlib-imagex")
        .args([
            "capture",
            source.to_str().unwrap(),
            out.to_str().unwrap(),
            "Sample",
        ])
        .args(extra)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("wimlib-imagex is installed");
    assert!(
        status.success(),
        "wimlib-imagex capture {} failed",
        source.display()
    );
}

/// `wimlib-imagex verify` must accept `wim`.
pub fn verify(wim: &Path) {
    let output = Command::new("wimlib-imagex")
        .args(["verify", wim.to_str().unwrap()])
        .output()
        .expect("wimlib-imagex is installed");
    assert!(
        output.status.success(),
        "wimlib-imagex verify {} failed: {}{}",
        wim.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
