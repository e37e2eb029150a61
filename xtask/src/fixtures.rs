//! `cargo xtask fixtures`: builds the sample image `fixtures/sample/` (a small offline Windows 10
//! 22H2 tree) from the text specs in `fixtures/spec/`, then captures `fixtures/sample.wim`.
//!
//! - `spec/image.txt` lists the hives, event logs, empty directories and UTF-16 files
//!   ([`manifest`]);
//! - `spec/hives/*.reg` are the hives' contents in regedit's format (`reseal_hive::reg_file`);
//! - `spec/logs/*.events` are the events of each log ([`events`]);
//! - `spec/files/` holds every other file at its image path; text gets CRLF line ends.
//!
//! Everything is deterministic except the hives' key timestamps and header time (the hive
//! engine stamps the current time) and the WIM's GUID and creation time. File times are set to
//! [`FILE_TIME`] so that the WIM's directory entries do not vary.

mod binxml;
mod events;
mod manifest;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::remove_if_present;
use std::time::{Duration, SystemTime};

use reseal_hive::{base_block, reg_file, Hive};
use reseal_nt::utf16;

use manifest::Manifest;

/// Modification time of every file and directory of the sample: 2024-05-14T10:00:00Z, shortly
/// after the reference machine's last events.
const FILE_TIME: Duration = Duration::from_secs(1_715_680_800);

/// Image name given to the captured WIM.
const WIM_IMAGE_NAME: &str = "Windows 10 Pro";

/// Rebuilds `fixtures/sample/` and `fixtures/sample.wim` under `workspace_root`.
pub fn generate(workspace_root: &Path) -> Result<(), String> {
    let fixtures = workspace_root.join("fixtures");
    let spec = fixtures.join("spec");
    let sample = fixtures.join("sample");
    let staging = fixtures.join(".sample.new");
    remove_if_present(&staging)?;
    build_tree(&spec, &staging)?;
    remove_if_present(&sample)?;
    fs::rename(&staging, &sample).map_err(|e| io_error(&staging, e))?;
    eprintln!("fixtures: wrote {}", sample.display());
    capture_wim(&sample, &fixtures.join("sample.wim"))
}

/// The transaction log Windows keeps beside a clean hive: a new-format log (file type 6) that is
/// only its 512-byte base block, a copy of the hive's with the same sequence numbers, and no log
/// entries, so replay has nothing to apply.
fn clean_hive_log(hive: &[u8]) -> Vec<u8> {
    let mut log = hive[..LOG_BASE_BLOCK_SIZE].to_vec();
    base_block::write::set_file_type(&mut log, base_block::FILE_TYPE_LOG_NEW);
    base_block::write::seal(&mut log);
    log
}

/// A log's base block is one 512-byte sector (clustering factor 1).
const LOG_BASE_BLOCK_SIZE: usize = 512;

/// Builds the sample tree described by `spec_dir` into `out_dir` (which must not exist yet).
pub fn build_tree(spec_dir: &Path, out_dir: &Path) -> Result<(), String> {
    let manifest_path = spec_dir.join("image.txt");
    let manifest = manifest::parse(&read_text(&manifest_path)?, &display(&manifest_path))?;
    fs::create_dir_all(out_dir).map_err(|e| io_error(out_dir, e))?;
    let mut written = BTreeSet::new();

    for hive in &manifest.hives {
        let spec_path = spec_dir.join(&hive.spec);
        let bytes = build_hive(&spec_path, hive)?;
        write_new(out_dir, &hive.path, &bytes, &mut written)?;
        let log = clean_hive_log(&bytes);
        for suffix in [".LOG1", ".LOG2"] {
            write_new(
                out_dir,
                &format!("{}{suffix}", hive.path),
                &log,
                &mut written,
            )?;
        }
    }
    for log in &manifest.logs {
        let spec_path = spec_dir.join(&log.spec);
        let list = events::parse(&read_text(&spec_path)?, &display(&spec_path))?;
        let bytes = events::build_log(&list, &display(&spec_path))?;
        write_new(out_dir, &log.path, &bytes, &mut written)?;
    }
    for dir in &manifest.empty_dirs {
        let path = out_dir.join(dir);
        fs::create_dir_all(&path).map_err(|e| io_error(&path, e))?;
    }
    copy_files(spec_dir, &manifest, out_dir, &mut written)?;
    for utf16 in &manifest.utf16_files {
        if !written.contains(utf16) {
            return Err(format!(
                "{}: utf16 {utf16}: no such file under spec/files",
                display(&manifest_path)
            ));
        }
    }
    set_file_times(out_dir)
}

/// A hive from its `.reg` spec: a new empty hive with the item's root name and version, the
/// spec applied, committed.
fn build_hive(spec_path: &Path, item: &manifest::HiveItem) -> Result<Vec<u8>, String> {
    let bytes = fs::read(spec_path).map_err(|e| io_error(spec_path, e))?;
    let fail = |e: reseal_hive::Error| format!("{}: {e}", display(spec_path));
    let text = reg_file::decode_file(&bytes).map_err(fail)?;
    let ops = reg_file::parse(&text).map_err(fail)?;
    let mut hive = Hive::new_empty(&item.root_name, item.minor_version);
    reg_file::apply(&mut hive, &ops, &item.root_label).map_err(fail)?;
    Ok(hive.commit())
}

/// Copies `spec/files/**` into the image: text with CRLF line ends, or UTF-16LE with a
/// byte-order mark for the files the manifest lists as `utf16`.
fn copy_files(
    spec_dir: &Path,
    manifest: &Manifest,
    out_dir: &Path,
    written: &mut BTreeSet<String>,
) -> Result<(), String> {
    let files_dir = spec_dir.join("files");
    for relative in list_files(&files_dir)? {
        let source = files_dir.join(&relative);
        let text = read_text(&source)?;
        let crlf = with_crlf(&text);
        let bytes = if manifest.utf16_files.contains(&relative) {
            utf16::encode_le_with_bom(&crlf)
        } else {
            crlf.into_bytes()
        };
        write_new(out_dir, &relative, &bytes, written)?;
    }
    Ok(())
}

/// Text with every line ending as CRLF (the spec files are kept with LF in git).
fn with_crlf(text: &str) -> String {
    text.replace("\r\n", "\n").replace('\n', "\r\n")
}

/// The files below `dir`, as sorted `/`-separated relative paths.
fn list_files(dir: &Path) -> Result<Vec<String>, String> {
    let mut files = Vec::new();
    let mut pending = vec![PathBuf::new()];
    while let Some(relative) = pending.pop() {
        let path = dir.join(&relative);
        for entry in fs::read_dir(&path).map_err(|e| io_error(&path, e))? {
            let entry = entry.map_err(|e| io_error(&path, e))?;
            let child = relative.join(entry.file_name());
            let file_type = entry.file_type().map_err(|e| io_error(&entry.path(), e))?;
            if file_type.is_dir() {
                pending.push(child);
            } else {
                let text = child.to_str().ok_or_else(|| {
                    format!("{}: file names must be UTF-8", display(&entry.path()))
                })?;
                files.push(text.replace('\\', "/"));
            }
        }
    }
    files.sort();
    Ok(files)
}

/// Writes `bytes` at `relative` under `out_dir`, refusing to produce a path twice.
fn write_new(
    out_dir: &Path,
    relative: &str,
    bytes: &[u8],
    written: &mut BTreeSet<String>,
) -> Result<(), String> {
    if !written.insert(relative.to_string()) {
        return Err(format!(
            "{relative} is produced twice (by the manifest and spec/files)"
        ));
    }
    let path = out_dir.join(relative);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(|e| io_error(parent, e))?;
    }
    fs::write(&path, bytes).map_err(|e| io_error(&path, e))
}

/// Sets the modification time of everything under `root` (and `root`) to [`FILE_TIME`].
fn set_file_times(root: &Path) -> Result<(), String> {
    let time = SystemTime::UNIX_EPOCH + FILE_TIME;
    // Children first, so setting a directory's time comes after all changes inside it.
    let mut all = Vec::new();
    collect_paths(root, &mut all)?;
    for path in all.iter().rev() {
        let file = fs::File::open(path).map_err(|e| io_error(path, e))?;
        file.set_modified(time).map_err(|e| io_error(path, e))?;
    }
    Ok(())
}

/// `root` and everything below it, parents before children.
fn collect_paths(root: &Path, out: &mut Vec<PathBuf>) -> Result<(), String> {
    out.push(root.to_path_buf());
    if root.is_dir() {
        let mut entries: Vec<PathBuf> = fs::read_dir(root)
            .map_err(|e| io_error(root, e))?
            .map(|entry| entry.map(|e| e.path()))
            .collect::<Result<_, _>>()
            .map_err(|e| io_error(root, e))?;
        entries.sort();
        for entry in entries {
            collect_paths(&entry, out)?;
        }
    }
    Ok(())
}

/// Captures `sample` into `wim` with wimlib-imagex (LZX, one image).
fn capture_wim(sample: &Path, wim: &Path) -> Result<(), String> {
    let present = Command::new("wimlib-imagex")
        .arg("--version")
        .output()
        .is_ok_and(|out| out.status.success());
    if !present {
        return Err(
            "wimlib-imagex is not installed (package wimtools): run cargo xtask setup".to_string(),
        );
    }
    let staging = wim.with_extension("wim.new");
    remove_if_present(&staging)?;
    let status = Command::new("wimlib-imagex")
        .arg("capture")
        .arg(sample)
        .arg(&staging)
        .arg(WIM_IMAGE_NAME)
        .arg("--compress=LZX")
        .status()
        .map_err(|e| format!("cannot run wimlib-imagex: {e}"))?;
    if !status.success() {
        return Err(format!("wimlib-imagex capture failed ({status})"));
    }
    fs::rename(&staging, wim).map_err(|e| io_error(wim, e))?;
    eprintln!("fixtures: wrote {}", wim.display());
    Ok(())
}

fn read_text(path: &Path) -> Result<String, String> {
    fs::read_to_string(path).map_err(|e| io_error(path, e))
}

fn display(path: &Path) -> String {
    path.display().to_string()
}

fn io_error(path: &Path, e: std::io::Error) -> String {
    format!("{}: {e}", path.display())
}

#[cfg(test)]
mod tests;
