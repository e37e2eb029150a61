//! VHD and VHDX images written by reseal-disk, read back by libvhdi (pyvhdi), a reader we did not
//! write, and compared with reseal-disk's own reads and, where qemu can open the image, qemu-img's.
//! libvhdi is the one independent reader here of the differencing children we write: qemu-img
//! cannot open differencing VHDX at all, nor follow a VHD's parent.
//!
//! libvhdi-python lives in a virtualenv that `cargo xtask setup` makes under the target dir.

mod common;

use common::*;
use reseal_disk::{open, open_writable, BlockDevice};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Opens `sys.argv[1]` with pyvhdi, resolving each parent from the name the child records (a
/// relative name against the child's directory) and attaching it with `set_parent`; prints
/// `LEVEL.key=value` lines for each file of the chain (0 is the image itself) and writes the
/// whole virtual disk as libvhdi reads it to `sys.argv[2]`.
const READER: &str = r#"
import os, sys, pyvhdi

def open_chain(path, level, keep):
    f = pyvhdi.file()
    f.open(path)
    keep.append(f)
    print(f"{level}.path={os.path.realpath(path)}")
    for key in ("media_size", "disk_type", "identifier", "parent_identifier", "parent_filename"):
        print(f"{level}.{key}={getattr(f, key)}")
    if f.disk_type == pyvhdi.disk_types.DIFFERENTIAL:
        name = f.parent_filename.replace("\\", "/")
        if not os.path.isabs(name):
            name = os.path.join(os.path.dirname(path), name)
        f.set_parent(open_chain(name, level + 1, keep))
    return f

keep = []
disk = open_chain(sys.argv[1], 0, keep)
with open(sys.argv[2], "wb") as out:
    offset, size = 0, disk.media_size
    while offset < size:
        data = disk.read_buffer_at_offset(min(1 << 20, size - offset), offset)
        if not data:
            sys.exit(f"short read at {offset}")
        out.write(data)
        offset += len(data)
"#;

/// What libvhdi reports about `image` and its parents, and the virtual disk it reads.
struct Libvhdi {
    facts: HashMap<String, String>,
    bytes: Vec<u8>,
}

impl Libvhdi {
    fn fact(&self, level: usize, key: &str) -> &str {
        self.facts
            .get(&format!("{level}.{key}"))
            .unwrap_or_else(|| panic!("libvhdi reported no {level}.{key}: {:?}", self.facts))
    }
}

fn libvhdi_read(python: &Path, image: &Path) -> Libvhdi {
    let out = image.with_extension("libvhdi-raw");
    let output = Command::new(python)
        .args(["-c", READER, path_str(image), path_str(&out)])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
    assert!(
        output.status.success(),
        "pyvhdi failed on {}: {}",
        image.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    let facts = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(key, value)| (key.to_string(), value.to_string()))
        .collect();
    let bytes = std::fs::read(&out).unwrap();
    std::fs::remove_file(&out).unwrap();
    Libvhdi { facts, bytes }
}

/// The first byte offset where two disks differ, for messages that point at the difference.
fn first_difference(a: &[u8], b: &[u8]) -> Option<usize> {
    a.iter()
        .zip(b)
        .position(|(x, y)| x != y)
        .or((a.len() != b.len()).then(|| a.len().min(b.len())))
}

fn assert_same_disk(what: &str, actual: &[u8], expected: &[u8]) {
    if let Some(offset) = first_difference(actual, expected) {
        panic!(
            "{what}: differs from the expected disk at byte {offset} (lengths {} and {})",
            actual.len(),
            expected.len()
        );
    }
}

/// Writes `writes` (offset, length, seed) through reseal-disk and into `expected`.
fn write_through_reseal(image: &Path, expected: &mut [u8], writes: &[(u64, usize, u64)]) {
    let mut disk = open_writable(image).unwrap();
    assert_eq!(disk.len(), expected.len() as u64, "{}", image.display());
    for &(offset, len, seed) in writes {
        let data = pseudo_random(len, seed);
        disk.write_at(offset, &data).unwrap();
        expected[offset as usize..offset as usize + len].copy_from_slice(&data);
    }
    disk.flush().unwrap();
}

fn qemu_image(dir: &Path, raw: &Path, format: &str, options: &str, name: &str) -> PathBuf {
    let extension = if format == "vpc" { "vhd" } else { "vhdx" };
    let image = dir.join(format!("{name}.{extension}"));
    qemu_convert(raw, "raw", &image, format, options);
    image
}

// disk_type values of libvhdi (pyvhdi.disk_types).
const FIXED: &str = "2";
const DYNAMIC: &str = "3";
const DIFFERENTIAL: &str = "4";

#[test]
fn dynamic_vhd_and_vhdx_written_by_us_read_alike_in_libvhdi_qemu_and_ours() {
    let Some(python) = libyal_python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let raw = gpt_raw_disk(dir.path(), 24, 20, 61);
    let raw_bytes = std::fs::read(&raw).unwrap();
    let writes = [
        (1u64 << 20, 4096usize, 1u64), // present data, whole sectors
        ((1 << 20) + 70_001, 999, 2),  // present data, partial sectors at both ends
        ((17 << 20) + 333, 5000, 3),   // an absent block, unaligned: partial sector bitmap
        ((8 << 20) - 100, 300, 4),     // across a block boundary
        ((20 << 20) + 1, 3 << 20, 5),  // several blocks at once
        (23 << 20, 1, 6),              // one byte in an absent block near the end
    ];
    for (format, options, name) in [
        ("vpc", "subformat=dynamic,force_size=on", "dynamic-vhd"),
        ("vhdx", "subformat=dynamic", "dynamic-vhdx"),
        ("vhdx", "subformat=dynamic,block_size=1M", "dynamic-1m-vhdx"),
    ] {
        let image = qemu_image(dir.path(), &raw, format, options, name);
        let mut expected = raw_bytes.clone();
        write_through_reseal(&image, &mut expected, &writes);

        let libvhdi = libvhdi_read(&python, &image);
        assert_eq!(libvhdi.fact(0, "disk_type"), DYNAMIC, "{name}");
        assert_eq!(
            libvhdi.fact(0, "media_size"),
            expected.len().to_string(),
            "{name}"
        );
        assert_same_disk(&format!("{name}: libvhdi"), &libvhdi.bytes, &expected);
        assert_same_disk(
            &format!("{name}: reseal-disk"),
            &read_all(&mut *open(&image).unwrap()),
            &expected,
        );
        assert_same_disk(
            &format!("{name}: qemu-img"),
            &qemu_read_raw(&image, format),
            &expected,
        );
    }
}

/// A differencing child of each parent, written at unaligned starts: libvhdi, which follows
/// the parent named in the child, must read the parent's bytes overlaid with the writes.
fn differencing_children_read_through_their_parents(
    format: &str,
    parents: &[(&str, &str)],
    create: fn(&Path, &Path) -> reseal_disk::Result<()>,
    writes: &[(u64, usize, u64)],
) {
    let Some(python) = libyal_python() else {
        return;
    };
    let extension = if format == "vpc" { "vhd" } else { "vhdx" };
    let dir = tempfile::tempdir().unwrap();
    let raw = gpt_raw_disk(dir.path(), 24, 20, 62);
    let raw_bytes = std::fs::read(&raw).unwrap();
    for &(options, name) in parents {
        let parent = qemu_image(dir.path(), &raw, format, options, name);
        let parent_type = libvhdi_read(&python, &parent)
            .fact(0, "disk_type")
            .to_string();
        let child = dir.path().join(format!("child-{name}.{extension}"));
        create(&parent, &child).unwrap();

        let empty = libvhdi_read(&python, &child);
        assert_eq!(empty.fact(0, "disk_type"), DIFFERENTIAL, "{name}");
        assert_eq!(
            empty.fact(1, "path"),
            path_str(&parent.canonicalize().unwrap()),
            "{name}: the parent libvhdi finds from the child's parent name"
        );
        assert_eq!(empty.fact(1, "disk_type"), parent_type, "{name}");
        assert_eq!(
            empty.fact(0, "parent_identifier"),
            empty.fact(1, "identifier"),
            "{name}: the child names its parent's identifier"
        );
        assert_eq!(
            empty.fact(0, "media_size"),
            raw_bytes.len().to_string(),
            "{name}"
        );
        if format == "vpc" {
            // Not for VHDX: libvhdi takes the sector bitmap of a differencing VHDX from the
            // offset in the chunk's sector bitmap entry without looking at its state, so in a
            // chunk whose bitmap block is SB_BLOCK_NOT_PRESENT (all of a new child, as MS-VHDX
            // 2.5.1.2 allows) it reads bits from the file's first bytes and data from offset 0.
            assert_same_disk(
                &format!("{name}: libvhdi, empty child"),
                &empty.bytes,
                &raw_bytes,
            );
        }

        let mut expected = raw_bytes.clone();
        write_through_reseal(&child, &mut expected, writes);
        let libvhdi = libvhdi_read(&python, &child);
        assert_same_disk(&format!("{name}: libvhdi"), &libvhdi.bytes, &expected);
        assert_same_disk(
            &format!("{name}: reseal-disk"),
            &read_all(&mut *open(&child).unwrap()),
            &expected,
        );
        assert_eq!(
            libvhdi.fact(0, "parent_identifier"),
            libvhdi.fact(1, "identifier"),
            "{name}: written child still names its parent"
        );
        assert_same_disk(
            &format!("{name}: the parent in libvhdi"),
            &libvhdi_read(&python, &parent).bytes,
            &raw_bytes,
        );
    }
}

#[test]
fn differencing_vhdx_children_written_by_us_read_through_their_parents_in_libvhdi() {
    differencing_children_read_through_their_parents(
        "vhdx",
        &[
            ("subformat=dynamic", "dynamic"),
            ("subformat=dynamic,block_size=1M", "dynamic-1m"),
            ("subformat=fixed", "fixed"),
        ],
        reseal_disk::vhdx::create_differencing,
        &[
            ((1u64 << 20) + 7, 1000usize, 11u64), // partial sectors over parent data
            ((3 << 20) + 5, 70_000, 12),          // over parent data and zeros
            ((8 << 20) - 300, 600, 13),           // across a block boundary
            ((12 << 20) + 3, 10, 14),             // inside one sector, parent has zeros
            ((1u64 << 20) + 500, 100, 15),        // again in a partly present block
            (16 << 20, 2 << 20, 16),              // whole blocks
        ],
    );
}

#[test]
fn differencing_vhd_children_written_by_us_read_through_their_parents_in_libvhdi() {
    differencing_children_read_through_their_parents(
        "vpc",
        &[
            ("subformat=dynamic,force_size=on", "dynamic"),
            ("subformat=fixed,force_size=on", "fixed"),
        ],
        reseal_disk::vhd::create_differencing,
        // Each write ends on a multiple of 8 sectors: libvhdi 20260901 tests a VHD sector
        // bitmap bit as `byte >> (7 - bit)` without masking, so in a bitmap byte whose set bits
        // stop before its last bit it takes the sectors after them as present in the child.
        // The bitmap bytes are big-endian (the first sector in the high bit), as the VHD
        // specification has them and as we write them; the starts stay unaligned.
        &[
            ((1u64 << 20) + 7, 4089usize, 11u64), // partial sector over parent data
            ((3 << 20) + 5, 69_627, 12),          // over parent data and zeros
            ((4 << 20) - 300, 4396, 13),          // across a block boundary
            ((12 << 20) + 4093, 3, 14),           // the end of a sector, parent has zeros
            ((1u64 << 20) + 500, 3596, 15),       // again in a partly present block
            (16 << 20, 2 << 20, 16),              // a whole block
        ],
    );
}

#[test]
fn libvhdi_tells_fixed_from_dynamic() {
    // The oracle itself: a fixed image must not pass for a dynamic one, or the disk_type checks
    // above would prove nothing.
    let Some(python) = libyal_python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let raw = gpt_raw_disk(dir.path(), 8, 6, 63);
    let image = qemu_image(dir.path(), &raw, "vhdx", "subformat=fixed", "fixed");
    let libvhdi = libvhdi_read(&python, &image);
    assert_eq!(libvhdi.fact(0, "disk_type"), FIXED);
    assert_same_disk("fixed", &libvhdi.bytes, &std::fs::read(&raw).unwrap());
}

#[test]
fn differencing_chains_written_by_us_read_through_both_parents_in_libvhdi() {
    let Some(python) = libyal_python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let raw = gpt_raw_disk(dir.path(), 24, 20, 64);
    let raw_bytes = std::fs::read(&raw).unwrap();
    type Create = fn(&Path, &Path) -> reseal_disk::Result<()>;
    let chains: [(&str, &str, Create); 2] = [
        (
            "vhdx",
            "subformat=dynamic",
            reseal_disk::vhdx::create_differencing,
        ),
        (
            "vpc",
            "subformat=dynamic,force_size=on",
            reseal_disk::vhd::create_differencing,
        ),
    ];
    for (format, options, create) in chains {
        let extension = if format == "vpc" { "vhd" } else { "vhdx" };
        let base = qemu_image(dir.path(), &raw, format, options, &format!("base-{format}"));
        let child = dir.path().join(format!("child.{extension}"));
        let grandchild = dir.path().join(format!("grandchild.{extension}"));
        let mut expected = raw_bytes.clone();
        create(&base, &child).unwrap();
        // Whole 4 KiB runs (see the VHD children above for why the ends are aligned).
        write_through_reseal(
            &child,
            &mut expected,
            &[((1 << 20) + 100, 8092, 21), ((5 << 20) - 4096, 8192, 22)],
        );
        create(&child, &grandchild).unwrap();
        write_through_reseal(
            &grandchild,
            &mut expected,
            &[((1 << 20) + 4000, 4192, 23), ((9 << 20) + 1, 4095, 24)],
        );

        let libvhdi = libvhdi_read(&python, &grandchild);
        for (level, file) in [(1, &child), (2, &base)] {
            assert_eq!(
                libvhdi.fact(level, "path"),
                path_str(&file.canonicalize().unwrap()),
                "{format}: level {level} of the chain"
            );
            assert_eq!(
                libvhdi.fact(level - 1, "parent_identifier"),
                libvhdi.fact(level, "identifier"),
                "{format}: level {} names level {level}",
                level - 1
            );
        }
        assert_eq!(libvhdi.fact(1, "disk_type"), DIFFERENTIAL, "{format}");
        assert_same_disk(&format!("{format}: libvhdi"), &libvhdi.bytes, &expected);
        assert_same_disk(
            &format!("{format}: reseal-disk"),
            &read_all(&mut *open(&grandchild).unwrap()),
            &expected,
        );
    }
}
