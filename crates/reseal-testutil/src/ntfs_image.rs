//! NTFS volumes and partitioned disk images built with programs this project did not write
//! (mkntfs, wimlib-imagex, sgdisk, qemu-img), and oracles that read them back (ntfscat, ntfsls,
//! ntfsfix, ntfssecaudit, the pure-Rust `ntfs` crate).
//!
//! Partitions are placed 1 MiB aligned from sector 2048, the layout Windows Setup uses.

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Where the first partition of a disk built here starts (sector 2048).
pub const FIRST_PARTITION_START: u64 = 1 << 20;

/// Finds a program on PATH or in the sbin directories, failing with the fix.
pub fn find_program(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs = std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/local/sbin"].map(PathBuf::from));
    for dir in dirs {
        let candidate = dir.join(name);
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!("{name} is not installed; run `cargo xtask setup` to install what the tests run");
}

/// Runs a program that must succeed; panics with its output otherwise.
pub fn run(program: &str, args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    let output = try_run(program, args);
    assert!(
        output.status.success(),
        "{program} {:?} failed: {}\n{}",
        args.iter().map(|a| a.as_ref()).collect::<Vec<_>>(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Runs a program that may fail; returns its output either way.
pub fn try_run(program: &str, args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    Command::new(find_program(program))
        .args(args.iter().map(|arg| arg.as_ref()))
        .output()
        .unwrap_or_else(|error| panic!("running {program}: {error}"))
}

/// A Windows path (`Windows\System32`) as the ntfs-3g programs take it (`/Windows/System32`).
pub fn unix_path(windows: &str) -> String {
    format!("/{}", windows.replace('\\', "/"))
}

/// Writes `bytes` into the file at `offset`, leaving the rest of it as it is.
pub fn write_at(path: &Path, offset: u64, bytes: &[u8]) {
    use std::os::unix::fs::FileExt;
    let file = fs::OpenOptions::new().write(true).open(path).unwrap();
    file.write_all_at(bytes, offset).unwrap();
}

/// An empty NTFS volume of `size` bytes in a new file (mkntfs, with the geometry fields that
/// put it at sector 2048 of a disk).
pub fn make_volume(path: &Path, size: u64) {
    fs::File::create(path).unwrap().set_len(size).unwrap();
    run("mkntfs", &[&"-F", &"-f", &"-q", &"-p", &"2048", &path]);
}

/// Applies image 1 of `wim` into the NTFS volume file `volume` (wimlib's NTFS-3G mode, which
/// writes security descriptors, short names and streams as Windows would have them).
pub fn apply_wim(wim: &Path, volume: &Path) {
    run("wimlib-imagex", &[&"apply", &wim, &"1", &volume]);
}

/// The container a disk image is converted to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Container {
    Raw,
    Vhdx,
    Vhd,
    Qcow2,
    /// monolithicSparse
    Vmdk,
}

/// The partition table of a disk built here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Gpt,
    Mbr,
}

/// Builds a disk holding `partitions` (volume files, each a multiple of 1 MiB) one after the
/// other from sector 2048, with a table made by sgdisk (`--gpttombr` for MBR), converted to
/// `container` by qemu-img. Returns the disk's path (`<dir>/disk.<ext>`).
pub fn build_disk(
    dir: &Path,
    partitions: &[&Path],
    scheme: Scheme,
    container: Container,
) -> PathBuf {
    let raw = dir.join("disk.raw");
    let sizes: Vec<u64> = partitions
        .iter()
        .map(|part| fs::metadata(part).unwrap().len())
        .collect();
    let total = FIRST_PARTITION_START + sizes.iter().sum::<u64>() + (1 << 20);
    fs::File::create(&raw).unwrap().set_len(total).unwrap();
    let mut table_args: Vec<String> = vec!["-o".into()];
    for (index, size) in sizes.iter().enumerate() {
        assert_eq!(size % (1 << 20), 0, "partition sizes are whole MiB");
        let number = index + 1;
        table_args.push("-n".into());
        table_args.push(format!("{number}:0:+{}M", size >> 20));
        table_args.push("-t".into());
        table_args.push(format!("{number}:0700"));
    }
    if scheme == Scheme::Mbr {
        let numbers: Vec<String> = (1..=partitions.len()).map(|n| n.to_string()).collect();
        table_args.push("-m".into());
        table_args.push(numbers.join(":"));
    }
    let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = table_args
        .iter()
        .map(|a| a as &dyn AsRef<std::ffi::OsStr>)
        .collect();
    args.push(&raw);
    run("sgdisk", &args);
    let mut offset = FIRST_PARTITION_START;
    for (part, size) in partitions.iter().zip(&sizes) {
        write_at(&raw, offset, &fs::read(part).unwrap());
        offset += size;
    }
    let (format, options, extension) = match container {
        Container::Raw => return raw,
        Container::Vhdx => ("vhdx", "subformat=dynamic", "vhdx"),
        Container::Vhd => ("vpc", "subformat=dynamic,force_size=on", "vhd"),
        Container::Qcow2 => ("qcow2", "compat=1.1", "qcow2"),
        Container::Vmdk => ("vmdk", "subformat=monolithicSparse", "vmdk"),
    };
    let disk = dir.join(format!("disk.{extension}"));
    run(
        "qemu-img",
        &[
            &"convert", &"-f", &"raw", &"-O", &format, &"-o", &options, &raw, &disk,
        ],
    );
    fs::remove_file(&raw).unwrap();
    disk
}

/// The whole virtual disk as raw bytes, converted by qemu-img (any format it knows, differencing
/// chains included) into `<dir>/<name>`.
pub fn convert_to_raw(disk: &Path, raw: &Path) {
    run("qemu-img", &[&"convert", &"-O", &"raw", &disk, &raw]);
}

/// Copies `len` bytes at `start` of a raw disk into a volume file of its own.
pub fn extract_range(raw: &Path, start: u64, len: u64, volume: &Path) {
    let bytes = fs::read(raw).unwrap();
    fs::write(volume, &bytes[start as usize..(start + len) as usize]).unwrap();
}

/// `qemu-img check`: panics with its report unless the image has no errors or leaks.
pub fn assert_qemu_img_check_clean(disk: &Path) {
    let output = try_run("qemu-img", &[&"check", &disk]);
    let report = String::from_utf8_lossy(&output.stdout).to_string()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && report.contains("No errors were found"),
        "qemu-img check {} reports a problem:\n{report}",
        disk.display()
    );
}

/// `ntfscat`: the contents of a file, or `None` when ntfscat cannot find it.
pub fn ntfscat(volume: &Path, windows_path: &str) -> Option<Vec<u8>> {
    let output = try_run("ntfscat", &[&volume, &unix_path(windows_path)]);
    output.status.success().then_some(output.stdout)
}

/// `ntfsls`: the names in a directory.
pub fn ntfsls(volume: &Path, windows_path: &str) -> Vec<String> {
    let output = run("ntfsls", &[&"-p", &unix_path(windows_path), &volume]);
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// `ntfsfix -n`: checks the volume without writing; panics with its report on a problem.
pub fn assert_ntfsfix_clean(volume: &Path) {
    let output = try_run("ntfsfix", &[&"-n", &volume]);
    let report = String::from_utf8_lossy(&output.stdout).to_string()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && report.contains("processed successfully"),
        "ntfsfix -n reports a problem:\n{report}"
    );
}

/// `ntfssecaudit -v`: the security descriptor bytes of a file as ntfssecaudit dumps them.
pub fn ntfssecaudit_descriptor(volume: &Path, windows_path: &str) -> Vec<u8> {
    let output = run("ntfssecaudit", &[&"-v", &volume, &unix_path(windows_path)]);
    let text = String::from_utf8_lossy(&output.stdout);
    let mut bytes = Vec::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        let Some(offset) = words.next() else { continue };
        if offset.len() != 6 || !offset.chars().all(|c| c.is_ascii_hexdigit()) {
            continue;
        }
        for word in words {
            for pair in word.as_bytes().chunks(2) {
                let hex = std::str::from_utf8(pair).unwrap();
                bytes.push(u8::from_str_radix(hex, 16).unwrap());
            }
        }
    }
    assert!(
        !bytes.is_empty(),
        "no descriptor in ntfssecaudit output:\n{text}"
    );
    bytes
}

/// `wimlib-imagex dir --detailed` of image 1: each path's security descriptor, by Windows path
/// (`Windows\Panther`).
pub fn wim_descriptors(wim: &Path) -> BTreeMap<String, Vec<u8>> {
    let output = run("wimlib-imagex", &[&"dir", &wim, &"1", &"--detailed"]);
    let text = String::from_utf8(output.stdout).unwrap();
    let mut descriptors = BTreeMap::new();
    let mut path = None;
    for line in text.lines() {
        if let Some(value) = line.strip_prefix("Full Path           = \"") {
            path = Some(
                value
                    .trim_end_matches('"')
                    .trim_start_matches('/')
                    .replace('/', "\\"),
            );
        } else if let Some(hex) = line.strip_prefix("Security Descriptor = ") {
            let bytes = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
                .collect();
            descriptors.insert(path.take().expect("a path first"), bytes);
        }
    }
    descriptors
}

/// Runs `inspect` on the file at a Windows path, opened with the pure-Rust `ntfs` crate, a
/// reader independent of libntfs-3g; `None` when a component of the path is missing.
pub fn with_ntfs_crate_file<R>(
    volume: &Path,
    windows_path: &str,
    inspect: impl FnOnce(&ntfs::NtfsFile<'_>, &mut BufReader<fs::File>) -> R,
) -> Option<R> {
    let mut reader = BufReader::new(fs::File::open(volume).unwrap());
    let mut ntfs = ntfs::Ntfs::new(&mut reader).unwrap();
    ntfs.read_upcase_table(&mut reader).unwrap();
    let mut file = ntfs.root_directory(&mut reader).unwrap();
    for name in windows_path.split('\\') {
        let index = file.directory_index(&mut reader).unwrap();
        let mut finder = index.finder();
        let entry =
            ntfs::indexes::NtfsFileNameIndex::find(&mut finder, &ntfs, &mut reader, name)?.unwrap();
        file = entry.to_file(&ntfs, &mut reader).unwrap();
    }
    Some(inspect(&file, &mut reader))
}

/// Reads a data stream of a file opened with the `ntfs` crate (`""`: the unnamed one); `None`
/// when the file has no such stream.
pub fn read_ntfs_crate_stream(
    file: &ntfs::NtfsFile<'_>,
    reader: &mut BufReader<fs::File>,
    stream: &str,
) -> Option<Vec<u8>> {
    let item = file.data(reader, stream)?.unwrap();
    let attribute = item.to_attribute().unwrap();
    let mut value = attribute.value(reader).unwrap().attach(reader);
    let mut contents = Vec::new();
    value.read_to_end(&mut contents).unwrap();
    Some(contents)
}

/// Reads a file with the pure-Rust `ntfs` crate; `None` when a component of the path is
/// missing.
pub fn read_with_ntfs_crate(volume: &Path, windows_path: &str) -> Option<Vec<u8>> {
    with_ntfs_crate_file(volume, windows_path, |file, reader| {
        read_ntfs_crate_stream(file, reader, "")
            .unwrap_or_else(|| panic!("ntfs crate: {windows_path} has no data stream"))
    })
}

/// A disk image in `container` under `dir` whose one GPT partition holds the sample image: a
/// 64 MiB NTFS volume with `fixtures/sample.wim` applied.
pub fn sample_disk(dir: &Path, container: Container) -> PathBuf {
    let volume = dir.join("windows.img");
    make_volume(&volume, 64 << 20);
    apply_wim(
        &crate::workspace_root().join("fixtures/sample.wim"),
        &volume,
    );
    build_disk(dir, &[&volume], Scheme::Gpt, container)
}
