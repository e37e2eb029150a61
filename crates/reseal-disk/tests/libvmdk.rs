//! VMDK disks written by reseal-disk, read back by libvmdk (pyvmdk), a reader we did not write,
//! and compared with what was written and with reseal-disk's own reads.
//!
//! libvmdk-python lives in the virtualenv that `cargo xtask setup` makes under the target dir.

mod common;

use common::*;
use reseal_disk::vmdk::Vmdk;
use reseal_disk::{open, open_writable, BlockDevice};
use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

/// Opens `sys.argv[1]` with pyvmdk (its extent files and each parent found from
/// parentFileNameHint, relative to the child's directory), prints `LEVEL.key=value` lines for
/// each disk of the chain (0 is the image itself) and writes the virtual disk as libvmdk reads
/// it to `sys.argv[2]`.
const READER: &str = r#"
import os, sys, pyvmdk

def open_chain(path, level, keep):
    h = pyvmdk.handle()
    h.open(path)
    h.open_extent_data_files()
    keep.append(h)
    print(f"{level}.content_identifier={h.content_identifier:08x}")
    print(f"{level}.parent_content_identifier={h.parent_content_identifier:08x}")
    print(f"{level}.media_size={h.media_size}")
    name = h.parent_filename
    if name:
        name = name.replace("\\", "/")
        if not os.path.isabs(name):
            name = os.path.join(os.path.dirname(path), name)
        h.set_parent(open_chain(name, level + 1, keep))
    return h

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

struct Libvmdk {
    facts: HashMap<String, String>,
    bytes: Vec<u8>,
}

fn libvmdk_read(python: &Path, image: &Path) -> Libvmdk {
    let out = image.with_extension("libvmdk-raw");
    let output = Command::new(python)
        .args(["-c", READER, path_str(image), path_str(&out)])
        .output()
        .expect("the virtualenv python runs");
    assert!(
        output.status.success(),
        "pyvmdk cannot read {}: {}",
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
    Libvmdk { facts, bytes }
}

fn writes(len: u64) -> Vec<(u64, Vec<u8>)> {
    vec![
        ((1 << 20) + 100, pseudo_random(5000, 11)),
        ((7 << 20) + 4096, pseudo_random(4096, 12)),
        ((11 << 20) - 700, pseudo_random(70_000, 13)),
        (len - 512, pseudo_random(512, 14)),
    ]
}

#[test]
fn libvmdk_reads_what_reseal_writes_in_every_writable_subformat() {
    let Some(python) = libyal_python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let raw = gpt_raw_disk(dir.path(), 24, 20, 51);
    let mut expected = std::fs::read(&raw).unwrap();
    for (offset, data) in writes(expected.len() as u64) {
        expected[offset as usize..offset as usize + data.len()].copy_from_slice(&data);
    }
    for subformat in [
        "monolithicSparse",
        "monolithicFlat",
        "twoGbMaxExtentSparse",
        "twoGbMaxExtentFlat",
    ] {
        let image = dir.path().join(format!("{subformat}.vmdk"));
        qemu_convert(
            &raw,
            "raw",
            &image,
            "vmdk",
            &format!("subformat={subformat}"),
        );
        {
            let mut disk = open_writable(&image).unwrap();
            for (offset, data) in writes(disk.len()) {
                disk.write_at(offset, &data).unwrap();
            }
            disk.flush().unwrap();
        }
        let read = libvmdk_read(&python, &image);
        assert!(
            read.bytes == expected,
            "{subformat}: libvmdk reads the writes"
        );
        let cid = Vmdk::open(&image, false).unwrap().cid().unwrap();
        assert_eq!(
            read.facts["0.content_identifier"],
            format!("{cid:08x}"),
            "{subformat}"
        );
    }
}

#[test]
fn libvmdk_reads_a_child_written_over_its_parent() {
    let Some(python) = libyal_python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let raw = gpt_raw_disk(dir.path(), 24, 20, 52);
    let base = dir.path().join("base.vmdk");
    qemu_convert(&raw, "raw", &base, "vmdk", "subformat=monolithicSparse");
    let child = dir.path().join("child.vmdk");
    run(
        "qemu-img",
        &[
            "create",
            "-f",
            "vmdk",
            "-b",
            "base.vmdk",
            "-F",
            "vmdk",
            path_str(&child),
        ],
    );
    let mut expected = std::fs::read(&raw).unwrap();
    {
        let mut disk = open_writable(&child).unwrap();
        for (offset, data) in writes(disk.len()) {
            disk.write_at(offset, &data).unwrap();
            expected[offset as usize..offset as usize + data.len()].copy_from_slice(&data);
        }
    }
    let read = libvmdk_read(&python, &child);
    assert!(read.bytes == expected, "libvmdk reads the chain");
    assert!(
        read_all(&mut *open(&child).unwrap()) == expected,
        "so do we"
    );
    assert_eq!(
        read.facts["0.parent_content_identifier"], read.facts["1.content_identifier"],
        "the child still names its parent's CID"
    );
}

#[test]
fn libvmdk_reads_a_child_reseal_made() {
    let Some(python) = libyal_python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let raw = gpt_raw_disk(dir.path(), 24, 20, 54);
    let image = dir.path().join("base.vmdk");
    qemu_convert(&raw, "raw", &image, "vmdk", "subformat=monolithicSparse");
    let opened = reseal_disk::open_image(&image).unwrap();
    let record = opened.parent_record.unwrap();
    let child = dir.path().join("child.vmdk");
    let mut expected = std::fs::read(&raw).unwrap();
    {
        let mut device = reseal_disk::differencing::create_child(
            &record,
            &image,
            opened.device,
            &child,
            reseal_disk::Entropy::default(),
        )
        .unwrap();
        for (offset, data) in writes(device.len()) {
            device.write_at(offset, &data).unwrap();
            expected[offset as usize..offset as usize + data.len()].copy_from_slice(&data);
        }
    }
    let read = libvmdk_read(&python, &child);
    assert!(
        read.bytes == expected,
        "libvmdk reads the new child over its parent"
    );
    assert_eq!(
        read.facts["0.parent_content_identifier"],
        read.facts["1.content_identifier"]
    );
}
