//! Helpers shared by the integration tests: external tools, image recipes, test data.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use reseal_disk::ImageFile as _;

/// Runs a tool and returns its stdout; a missing tool fails with the way to install it.
pub fn run(program: &str, args: &[&str]) -> String {
    let output = Command::new(program).args(args).output().unwrap_or_else(|e| {
        panic!("cannot run {program} ({e}); run `cargo xtask setup` to install qemu-utils and gdisk")
    });
    assert!(
        output.status.success(),
        "{program} {args:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn path_str(path: &Path) -> &str {
    path.to_str().expect("test paths are UTF-8")
}

/// Deterministic pseudo-random bytes (xorshift), different for each seed.
pub fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

/// A raw disk of `disk_mib` MiB with one GPT partition (type 0700) of `partition_mib` MiB at
/// sector 2048, random data in parts of the partition and zeros elsewhere.
pub fn gpt_raw_disk(dir: &Path, disk_mib: u64, partition_mib: u64, seed: u64) -> PathBuf {
    let raw = dir.join("disk.raw");
    run("truncate", &["-s", &format!("{disk_mib}M"), path_str(&raw)]);
    run(
        "sgdisk",
        &[
            "-o",
            "-n",
            &format!("1:2048:+{partition_mib}M"),
            "-t",
            "1:0700",
            "-c",
            "1:Windows",
            path_str(&raw),
        ],
    );
    // Data in scattered places, leaving whole blocks of zeros for the sparse formats.
    let mut bytes = std::fs::read(&raw).unwrap();
    for (index, start) in [1u64 << 20, 3 << 20, (5 << 20) + 4096, 9 << 20]
        .iter()
        .enumerate()
    {
        let start = *start as usize;
        // The backup GPT lives in the last 33 sectors.
        let len = 300_000.min(bytes.len().saturating_sub(start + 34 * 512));
        if len == 0 {
            continue;
        }
        bytes[start..start + len].copy_from_slice(&pseudo_random(len, seed + index as u64));
    }
    std::fs::write(&raw, &bytes).unwrap();
    raw
}

pub fn qemu_convert(input: &Path, input_format: &str, output: &Path, format: &str, options: &str) {
    let mut args = vec!["convert", "-f", input_format, "-O", format];
    if !options.is_empty() {
        args.extend(["-o", options]);
    }
    args.extend([path_str(input), path_str(output)]);
    run("qemu-img", &args);
}

/// The virtual disk as qemu-img sees it.
pub fn qemu_read_raw(image: &Path, format: &str) -> Vec<u8> {
    let out = image.with_extension("qemu-raw");
    qemu_convert(image, format, &out, "raw", "");
    let bytes = std::fs::read(&out).unwrap();
    std::fs::remove_file(&out).unwrap();
    bytes
}

/// `qemu-img check`'s exit code and report of `image` in `format`, to tell that a refusal left
/// the image as it was.
pub fn qemu_check_report(image: &Path, format: &str) -> (Option<i32>, String) {
    let output = std::process::Command::new("qemu-img")
        .args(["check", "-f", format, path_str(image)])
        .output()
        .expect("qemu-img runs");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).to_string()
            + &String::from_utf8_lossy(&output.stderr),
    )
}

/// `qemu-img check` of a VHDX: fails the test unless qemu reports no errors.
pub fn qemu_check_vhdx(image: &Path) {
    let report = run("qemu-img", &["check", "-f", "vhdx", path_str(image)]);
    assert!(
        report.contains("No errors were found"),
        "qemu-img check {}: {report}",
        image.display()
    );
}

/// Decompresses a `.bz2` or `.gz` fixture into `dir`.
pub fn decompress(fixture: &Path, dir: &Path) -> PathBuf {
    let name = fixture.file_name().unwrap().to_string_lossy();
    let (tool, stem) = if let Some(stem) = name.strip_suffix(".bz2") {
        ("bzip2", stem)
    } else if let Some(stem) = name.strip_suffix(".gz") {
        ("gzip", stem)
    } else {
        panic!("{name} is not compressed")
    };
    let out = dir.join(stem);
    let output = Command::new(tool)
        .args(["-dc", path_str(fixture)])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {tool}: {e}"));
    assert!(output.status.success(), "{tool} -dc {name} failed");
    std::fs::write(&out, output.stdout).unwrap();
    out
}

/// Copies a VHDX to `copy` and lets qemu-img replay its pending log there (it replays only
/// when it opens a file for writing, as `check -r all` does).
pub fn replay_with_qemu(image: &Path, copy: &Path) {
    std::fs::copy(image, copy).unwrap();
    run(
        "qemu-img",
        &["check", "-r", "all", "-f", "vhdx", path_str(copy)],
    );
}

/// A real image from the shared fixtures, decompressed into `dir` when needed, or `None` when
/// the fixtures are absent (outside CI).
pub fn real_image(relative: &str, dir: &Path) -> Option<PathBuf> {
    let path = reseal_testutil::real_fixture(relative)?;
    if relative.ends_with(".bz2") || relative.ends_with(".gz") {
        return Some(decompress(&path, dir));
    }
    // Copied so that no test can alter the shared file.
    let copy = dir.join(path.file_name().unwrap());
    std::fs::copy(&path, &copy).unwrap();
    Some(copy)
}

pub fn read_all(device: &mut dyn reseal_disk::BlockDevice) -> Vec<u8> {
    let mut bytes = vec![0u8; device.len() as usize];
    device.read_at(0, &mut bytes).unwrap();
    bytes
}

/// Compares the first `limit_mib` MiB of the device with qemu's view of `image` piece by
/// piece, so that large sparse disks need little memory and time.
pub fn assert_reads_like_qemu(
    disk: &mut dyn reseal_disk::BlockDevice,
    image: &Path,
    format: &str,
    limit_mib: u64,
) {
    use std::io::Read;
    let raw = image.with_extension("qemu-raw");
    let (input, output) = (
        format!("if={}", path_str(image)),
        format!("of={}", path_str(&raw)),
    );
    let count = format!("count={limit_mib}");
    run(
        "qemu-img",
        &[
            "dd", "-f", format, "-O", "raw", "bs=1M", &count, &input, &output,
        ],
    );
    let end = disk.len().min(limit_mib << 20);
    let mut qemu = std::fs::File::open(&raw).unwrap();
    assert_eq!(
        qemu.metadata().unwrap().len(),
        end,
        "{}: size",
        image.display()
    );
    let mut ours = vec![0u8; 4 << 20];
    let mut theirs = vec![0u8; 4 << 20];
    let mut offset = 0u64;
    while offset < end {
        let len = (end - offset).min(ours.len() as u64) as usize;
        disk.read_at(offset, &mut ours[..len]).unwrap();
        qemu.read_exact(&mut theirs[..len]).unwrap();
        assert!(
            ours[..len] == theirs[..len],
            "{}: differs from qemu in the 4 MiB at {offset}",
            image.display()
        );
        offset += len as u64;
    }
    std::fs::remove_file(&raw).unwrap();
}

/// An image file that crashes after its first `allowed` writes: the next write fails and, when
/// `torn`, leaves the whole sectors of its first half written (sector writes are atomic, larger
/// ones may tear); every write after that fails without writing anything.
pub struct FailingFile {
    inner: reseal_disk::LocalFile,
    allowed: usize,
    done: usize,
    torn: bool,
}

impl FailingFile {
    pub fn new(image: &Path, allowed: usize, torn: bool) -> Self {
        FailingFile {
            inner: reseal_disk::LocalFile::open(image, true).unwrap(),
            allowed,
            done: 0,
            torn,
        }
    }

    fn injected(&self) -> reseal_disk::Error {
        reseal_disk::Error::Io {
            path: self.inner.path().to_path_buf(),
            action: "injected failure".into(),
            source: std::io::Error::other("injected"),
        }
    }

    pub fn crashed(&self) -> bool {
        self.done > self.allowed
    }
}

impl reseal_disk::ImageFile for FailingFile {
    fn path(&self) -> &Path {
        self.inner.path()
    }
    fn len(&self) -> u64 {
        self.inner.len()
    }
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> reseal_disk::Result<()> {
        self.inner.read_at(offset, buf)
    }
    fn write_at(&mut self, offset: u64, buf: &[u8]) -> reseal_disk::Result<()> {
        if self.crashed() {
            return Err(self.injected());
        }
        self.done += 1;
        if self.crashed() {
            let torn_end = (offset + buf.len() as u64 / 2) / 512 * 512;
            if self.torn && torn_end > offset {
                self.inner
                    .write_at(offset, &buf[..(torn_end - offset) as usize])?;
            }
            return Err(self.injected());
        }
        self.inner.write_at(offset, buf)
    }
    fn set_len(&mut self, len: u64) -> reseal_disk::Result<()> {
        if self.crashed() {
            return Err(self.injected());
        }
        self.done += 1;
        if self.crashed() {
            return Err(self.injected());
        }
        self.inner.set_len(len)
    }
    fn sync(&mut self) -> reseal_disk::Result<()> {
        self.inner.sync()
    }
    fn is_writable(&self) -> bool {
        true
    }
}

/// The virtualenv python that imports libyal's readers (pyvhdi, pyqcow, pyvmdk):
/// `<target dir>/libvhdi-venv/bin/python`, where `cargo xtask setup` installs them. `None`
/// (after a note) when it is missing; under `CI=true` a missing one fails the test instead.
pub fn libyal_python() -> Option<PathBuf> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let python = target.join("libvhdi-venv/bin/python");
    if python.exists() {
        return Some(python);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!(
            "{} is missing (CI=true requires libvhdi-python, libqcow-python and libvmdk-python); run `cargo xtask setup`",
            python.display()
        );
    }
    eprintln!(
        "skipping: {} is missing; run `cargo xtask setup` to install libyal's python readers",
        python.display()
    );
    None
}
