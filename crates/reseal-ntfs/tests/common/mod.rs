//! Test images built with programs this project did not write (mkntfs, wimlib-imagex, ntfscp,
//! ntfssecaudit, sgdisk, qemu-img), and oracles reading them back (ntfscat, ntfsls, ntfsfix,
//! ntfssecaudit, the `ntfs` crate).
#![allow(dead_code)]

use std::fs;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use reseal_disk::{BlockDevice, PartitionWindow};

/// Where the NTFS partition starts in the partitioned disks (sector 2048) and its size.
pub const PARTITION_START: u64 = 1 << 20;
pub const PARTITION_SIZE: u64 = 64 << 20;

/// A file of the fixture tree: Windows path and contents.
pub struct FixtureFile {
    pub path: &'static str,
    pub contents: Vec<u8>,
}

/// Deterministic, non-repeating-looking bytes.
pub fn pattern(len: usize, seed: u32) -> Vec<u8> {
    let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            (state >> 24) as u8
        })
        .collect()
}

/// The files every fixture volume holds (directories follow from the paths).
pub fn fixture_files() -> Vec<FixtureFile> {
    let mut system = b"regf".to_vec();
    system.extend(pattern(20_000, 1));
    vec![
        FixtureFile {
            path: r"Windows\System32\config\SYSTEM",
            contents: system,
        },
        FixtureFile {
            path: r"Windows\System32\config\SOFTWARE",
            contents: pattern(70_000, 2),
        },
        FixtureFile {
            path: r"Windows\System32\drivers\etc\hosts",
            contents: b"127.0.0.1 localhost\r\n".to_vec(),
        },
        FixtureFile {
            path: r"Windows\Temp\setup\logs\setupact.log",
            contents: pattern(9_000, 3),
        },
        FixtureFile {
            path: r"Windows\Temp\setup\readme.txt",
            contents: b"temporary".to_vec(),
        },
        FixtureFile {
            path: r"Windows\Temp\top.txt",
            contents: b"top".to_vec(),
        },
        FixtureFile {
            path: r"Users\Public\desktop.ini",
            contents: b"[.ShellClassInfo]\r\n".to_vec(),
        },
        FixtureFile {
            path: "readme.txt",
            contents: pattern(3_000, 4),
        },
        FixtureFile {
            path: "big.bin",
            contents: pattern(400_000, 5),
        },
    ]
}

/// The file ntfscp copies in after the tree (ntfscp creates files, not directories).
pub const NTFSCP_FILE: &str = "copied.txt";
pub fn ntfscp_contents() -> Vec<u8> {
    b"copied in with ntfscp\n".to_vec()
}

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

pub fn run(program: &str, args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    let output = Command::new(find_program(program))
        .args(args.iter().map(|arg| arg.as_ref()))
        .output()
        .unwrap_or_else(|error| panic!("running {program}: {error}"));
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

fn unix_path(windows: &str) -> String {
    format!("/{}", windows.replace('\\', "/"))
}

/// A 64 MiB NTFS partition image: mkntfs, the fixture tree applied with wimlib-imagex,
/// one file copied with ntfscp, and `Windows\System32\config` restricted with ntfssecaudit
/// (mode 700: the owner, Administrators, has full access; Everyone only reads attributes).
/// `extra` files are copied in with ntfscp afterwards (wimlib leaves out files such as
/// hiberfil.sys when capturing); their directories must exist.
pub fn build_partition(dir: &Path, extra: &[FixtureFile]) -> PathBuf {
    let tree = dir.join("tree");
    for file in fixture_files().iter() {
        let target = tree.join(file.path.replace('\\', "/"));
        fs::create_dir_all(target.parent().unwrap()).unwrap();
        fs::write(&target, &file.contents).unwrap();
    }
    let wim = dir.join("tree.wim");
    run("wimlib-imagex", &[&"capture", &tree, &wim]);
    let part = dir.join("part.img");
    fs::File::create(&part)
        .unwrap()
        .set_len(PARTITION_SIZE)
        .unwrap();
    run("mkntfs", &[&"-F", &"-f", &"-q", &"-p", &"2048", &part]);
    run("wimlib-imagex", &[&"apply", &wim, &"1", &part]);
    let copied = dir.join(NTFSCP_FILE);
    fs::write(&copied, ntfscp_contents()).unwrap();
    run("ntfscp", &[&part, &copied, &NTFSCP_FILE]);
    run(
        "ntfssecaudit",
        &[&part, &"700", &"/Windows/System32/config"],
    );
    // Last: ntfssecaudit itself refuses a volume with an active hiberfil.sys.
    for (index, file) in extra.iter().enumerate() {
        let source = dir.join(format!("extra-{index}"));
        fs::write(&source, &file.contents).unwrap();
        run("ntfscp", &[&part, &source, &unix_path(file.path)]);
    }
    part
}

/// The container formats the tests go through.
#[derive(Debug, Clone, Copy)]
pub enum Container {
    Raw,
    Vhdx,
    Vhd,
}

/// Puts the partition into a GPT disk at sector 2048 and converts it to `container`.
pub fn build_disk(dir: &Path, part: &Path, container: Container) -> PathBuf {
    let raw = dir.join("disk.raw");
    fs::File::create(&raw)
        .unwrap()
        .set_len(PARTITION_START + PARTITION_SIZE + (1 << 20))
        .unwrap();
    run(
        "sgdisk",
        &[&"-o", &"-n", &"1:2048:+64M", &"-t", &"1:0700", &raw],
    );
    let partition = fs::read(part).unwrap();
    write_at(&raw, PARTITION_START, &partition);
    match container {
        Container::Raw => raw,
        Container::Vhdx => {
            let vhdx = dir.join("disk.vhdx");
            run(
                "qemu-img",
                &[
                    &"convert",
                    &"-f",
                    &"raw",
                    &"-O",
                    &"vhdx",
                    &"-o",
                    &"subformat=dynamic",
                    &raw,
                    &vhdx,
                ],
            );
            vhdx
        }
        Container::Vhd => {
            let vhd = dir.join("disk.vhd");
            run(
                "qemu-img",
                &[
                    &"convert",
                    &"-f",
                    &"raw",
                    &"-O",
                    &"vpc",
                    &"-o",
                    &"subformat=dynamic,force_size=on",
                    &raw,
                    &vhd,
                ],
            );
            vhd
        }
    }
}

pub fn write_at(path: &Path, offset: u64, bytes: &[u8]) {
    use std::os::unix::fs::FileExt;
    let file = fs::OpenOptions::new().write(true).open(path).unwrap();
    file.write_all_at(bytes, offset).unwrap();
}

/// The first partition of a disk image as a block device, through reseal-disk.
pub fn open_partition(disk: &Path, writable: bool) -> Box<dyn BlockDevice> {
    let mut device = if writable {
        reseal_disk::open_writable(disk).unwrap()
    } else {
        reseal_disk::open(disk).unwrap()
    };
    let table = reseal_disk::read_partition_table(device.as_mut())
        .unwrap()
        .expect("the test disk has a partition table");
    let partition = &table.partitions[0];
    assert_eq!(partition.start, PARTITION_START);
    Box::new(PartitionWindow::new(device, partition.start, partition.size).unwrap())
}

/// Copies the NTFS partition out of a disk image (converting VHD/VHDX with qemu-img), for
/// the ntfs-3g programs.
pub fn extract_partition(dir: &Path, disk: &Path, container: Container) -> PathBuf {
    let raw = match container {
        Container::Raw => disk.to_path_buf(),
        Container::Vhdx | Container::Vhd => {
            let raw = dir.join("extracted.raw");
            run("qemu-img", &[&"convert", &"-O", &"raw", &disk, &raw]);
            raw
        }
    };
    let bytes = fs::read(&raw).unwrap();
    let part = dir.join("extracted-part.img");
    let start = PARTITION_START as usize;
    fs::write(&part, &bytes[start..start + PARTITION_SIZE as usize]).unwrap();
    part
}

/// `ntfscat`: the contents of a file, or `None` when ntfscat cannot find it.
pub fn ntfscat(part: &Path, windows_path: &str) -> Option<Vec<u8>> {
    let output = try_run("ntfscat", &[&part, &unix_path(windows_path)]);
    output.status.success().then_some(output.stdout)
}

/// `ntfsls`: the names in a directory.
pub fn ntfsls(part: &Path, windows_path: &str) -> Vec<String> {
    let output = run("ntfsls", &[&"-p", &unix_path(windows_path), &part]);
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// `ntfsfix -n`: checks the volume without writing; panics with its report on a problem.
pub fn assert_ntfsfix_clean(part: &Path) {
    let output = try_run("ntfsfix", &[&"-n", &part]);
    let report = String::from_utf8_lossy(&output.stdout).to_string()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && report.contains("processed successfully"),
        "ntfsfix -n reports a problem:\n{report}"
    );
}

/// `ntfssecaudit -v`: the security descriptor bytes of a file as ntfssecaudit dumps them.
pub fn ntfssecaudit_descriptor(part: &Path, windows_path: &str) -> Vec<u8> {
    let output = run("ntfssecaudit", &[&"-v", &part, &unix_path(windows_path)]);
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

/// Reads a file with the pure-Rust `ntfs` crate, a reader independent of libntfs-3g.
pub fn read_with_ntfs_crate(part: &Path, windows_path: &str) -> Vec<u8> {
    let mut reader = BufReader::new(fs::File::open(part).unwrap());
    let mut ntfs = ntfs::Ntfs::new(&mut reader).unwrap();
    ntfs.read_upcase_table(&mut reader).unwrap();
    let mut file = ntfs.root_directory(&mut reader).unwrap();
    for name in windows_path.split('\\') {
        let index = file.directory_index(&mut reader).unwrap();
        let mut finder = index.finder();
        let entry = ntfs::indexes::NtfsFileNameIndex::find(&mut finder, &ntfs, &mut reader, name)
            .unwrap_or_else(|| panic!("ntfs crate: {name} not found in {windows_path}"))
            .unwrap();
        file = entry.to_file(&ntfs, &mut reader).unwrap();
    }
    let item = file.data(&mut reader, "").unwrap().unwrap();
    let attribute = item.to_attribute().unwrap();
    let mut value = attribute.value(&mut reader).unwrap().attach(&mut reader);
    let mut contents = Vec::new();
    value.read_to_end(&mut contents).unwrap();
    contents
}
