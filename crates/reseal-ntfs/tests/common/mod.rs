//! Test images built with programs this project did not write (mkntfs, wimlib-imagex, ntfscp,
//! ntfssecaudit, sgdisk, qemu-img), and oracles reading them back (ntfscat, ntfsls, ntfsfix,
//! ntfssecaudit, the `ntfs` crate).
#![allow(dead_code, unused_imports)]

use std::fs;
use std::path::{Path, PathBuf};

use reseal_disk::{BlockDevice, PartitionWindow};
pub use reseal_testutil::ntfs_image::{
    self, apply_wim, assert_ntfsfix_clean, convert_to_raw, extract_range, make_volume, ntfscat,
    ntfsls, ntfssecaudit_descriptor, run, try_run, unix_path, write_at, Container, Scheme,
    FIRST_PARTITION_START as PARTITION_START,
};

/// The size of the NTFS partition in the test disks (it starts at sector 2048).
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
    make_volume(&part, PARTITION_SIZE);
    apply_wim(&wim, &part);
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

/// Puts the partition into a GPT disk at sector 2048 and converts it to `container`.
pub fn build_disk(dir: &Path, part: &Path, container: Container) -> PathBuf {
    ntfs_image::build_disk(dir, &[part], Scheme::Gpt, container)
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
        Container::Vhdx | Container::Vhd | Container::Qcow2 | Container::Vmdk => {
            let raw = dir.join("extracted.raw");
            convert_to_raw(disk, &raw);
            raw
        }
    };
    let part = dir.join("extracted-part.img");
    extract_range(&raw, PARTITION_START, PARTITION_SIZE, &part);
    part
}

/// Reads a file with the pure-Rust `ntfs` crate, a reader independent of libntfs-3g.
pub fn read_with_ntfs_crate(part: &Path, windows_path: &str) -> Vec<u8> {
    ntfs_image::read_with_ntfs_crate(part, windows_path)
        .unwrap_or_else(|| panic!("ntfs crate: {windows_path} not found"))
}

/// Mounts an NTFS volume file writable through libntfs-3g directly (no refusals checked).
pub fn mount_volume_file(volume: &Path) -> reseal_ntfs_sys::Mount {
    let device = reseal_disk::open_writable(volume).unwrap();
    reseal_ntfs_sys::Mount::open(device, 0).unwrap()
}

/// Runs `inspect` on the file at a Windows path, opened with the pure-Rust `ntfs` crate.
fn with_ntfs_crate_file<R>(
    volume: &Path,
    windows_path: &str,
    inspect: impl FnOnce(&ntfs::NtfsFile<'_>, &mut std::io::BufReader<fs::File>) -> R,
) -> R {
    ntfs_image::with_ntfs_crate_file(volume, windows_path, inspect)
        .unwrap_or_else(|| panic!("ntfs crate: {windows_path} not found"))
}

/// A named data stream (alternate data stream) read with the `ntfs` crate.
pub fn read_named_stream_with_ntfs_crate(
    volume: &Path,
    windows_path: &str,
    stream: &str,
) -> Vec<u8> {
    with_ntfs_crate_file(volume, windows_path, |file, reader| {
        ntfs_image::read_ntfs_crate_stream(file, reader, stream)
            .unwrap_or_else(|| panic!("ntfs crate: {windows_path}:{stream} not found"))
    })
}

/// The tag of the file's `$REPARSE_POINT` attribute as the `ntfs` crate finds it.
pub fn reparse_tag_with_ntfs_crate(volume: &Path, windows_path: &str) -> Option<u32> {
    with_ntfs_crate_file(volume, windows_path, |file, reader| {
        let mut attributes = file.attributes();
        while let Some(item) = attributes.next(reader) {
            let item = item.unwrap();
            let attribute = item.to_attribute().unwrap();
            if attribute.ty().unwrap() != ntfs::NtfsAttributeType::ReparsePoint {
                continue;
            }
            let mut value = attribute.value(reader).unwrap().attach(reader);
            let mut tag = [0u8; 4];
            std::io::Read::read_exact(&mut value, &mut tag).unwrap();
            return Some(u32::from_le_bytes(tag));
        }
        None
    })
}
