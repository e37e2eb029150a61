//! qcow2 images written by reseal-disk (in place, a new overlay over a backing file, a grown
//! refcount table) read back by libqcow (pyqcow), a reader we did not write, and compared with
//! what the writes should give and with qemu-img's reading.
//!
//! libqcow-python lives in the virtualenv that `cargo xtask setup` makes under the target dir.

mod common;

use common::*;
use reseal_disk::{differencing, open_image, open_writable, BlockDevice, Format};
use std::path::Path;
use std::process::Command;

/// Opens `sys.argv[1]` with pyqcow, its backing file (a qcow2 named in `sys.argv[3]`, if given)
/// attached with `set_parent`, and writes the whole virtual disk as libqcow reads it to
/// `sys.argv[2]`.
const READER: &str = r#"
import sys, pyqcow

disk = pyqcow.file()
disk.open(sys.argv[1])
if len(sys.argv) > 3:
    parent = pyqcow.file()
    parent.open(sys.argv[3])
    disk.set_parent(parent)
with open(sys.argv[2], "wb") as out:
    offset, size = 0, disk.media_size
    while offset < size:
        data = disk.read_buffer_at_offset(min(1 << 20, size - offset), offset)
        if not data:
            sys.exit(f"short read at {offset}")
        out.write(data)
        offset += len(data)
"#;

/// The virtual disk of `image` as libqcow reads it.
fn libqcow_read(python: &Path, image: &Path, backing: Option<&Path>) -> Vec<u8> {
    let out = image.with_extension("libqcow.raw");
    let mut command = Command::new(python);
    command.args(["-c", READER]).arg(image).arg(&out);
    if let Some(backing) = backing {
        command.arg(backing);
    }
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "pyqcow cannot read {}: {}",
        image.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    let bytes = std::fs::read(&out).unwrap();
    std::fs::remove_file(&out).unwrap();
    bytes
}

/// Writes into allocated data, into unallocated zeros, across clusters and at the very end.
fn write(device: &mut dyn BlockDevice, expected: &mut [u8]) {
    let len = device.len();
    for (offset, data) in [
        ((1 << 20) + 100, pseudo_random(5000, 1)),
        ((7 << 20) + 4096, pseudo_random(4096, 2)),
        ((11 << 20) - 700, pseudo_random(70_000, 3)),
        (len - 512, pseudo_random(512, 4)),
    ] {
        device.write_at(offset, &data).unwrap();
        expected[offset as usize..offset as usize + data.len()].copy_from_slice(&data);
    }
    device.flush().unwrap();
}

#[test]
fn qcow2_images_written_by_us_read_alike_in_libqcow_and_qemu() {
    let Some(python) = libyal_python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let raw = gpt_raw_disk(dir.path(), 12, 10, 41);
    let original = std::fs::read(&raw).unwrap();

    // Written in place.
    for (options, name) in [
        ("compat=0.10", "v2"),
        ("compat=1.1", "v3"),
        ("compat=1.1,cluster_size=4K,refcount_bits=8", "v3-4k"),
    ] {
        let image = dir.path().join(format!("{name}.qcow2"));
        qemu_convert(&raw, "raw", &image, "qcow2", options);
        let mut expected = original.clone();
        write(&mut *open_writable(&image).unwrap(), &mut expected);
        assert!(
            libqcow_read(&python, &image, None) == expected,
            "{name}: libqcow"
        );
        assert!(qemu_read_raw(&image, "qcow2") == expected, "{name}: qemu");
    }

    // A new overlay over a qcow2 backing file, which stays as it was.
    let base = dir.path().join("v3.qcow2");
    let base_bytes = std::fs::read(&base).unwrap();
    let base_disk = qemu_read_raw(&base, "qcow2");
    let opened = open_image(&base).unwrap();
    let overlay = dir.path().join("overlay.qcow2");
    let mut device =
        differencing::create_qcow2_overlay(Format::Qcow2, &base, opened.device, &overlay).unwrap();
    let mut expected = base_disk.clone();
    write(&mut *device, &mut expected);
    drop(device);
    assert!(
        std::fs::read(&base).unwrap() == base_bytes,
        "the backing file changed"
    );
    assert!(
        libqcow_read(&python, &overlay, Some(&base)) == expected,
        "overlay: libqcow"
    );
    assert!(
        qemu_read_raw(&overlay, "qcow2") == expected,
        "overlay: qemu"
    );

    // 512-byte clusters with 64-bit refcounts: the table counts the first 2 MiB of the file,
    // which 1.9 MB of data nearly fill; 600 new clusters outgrow it.
    let small_raw = dir.path().join("small.raw");
    let mut expected = pseudo_random(1_900_000, 21);
    expected.resize(4 << 20, 0);
    std::fs::write(&small_raw, &expected).unwrap();
    let tiny = dir.path().join("tiny.qcow2");
    qemu_convert(
        &small_raw,
        "raw",
        &tiny,
        "qcow2",
        "cluster_size=512,refcount_bits=64",
    );
    let table_before = std::fs::read(&tiny).unwrap()[48..56].to_vec();
    let data = pseudo_random(600 * 512, 5);
    let mut device = open_writable(&tiny).unwrap();
    let at = 2 << 20;
    device.write_at(at, &data).unwrap();
    drop(device);
    expected[at as usize..at as usize + data.len()].copy_from_slice(&data);
    assert_ne!(
        std::fs::read(&tiny).unwrap()[48..56].to_vec(),
        table_before,
        "the refcount table moved"
    );
    assert!(
        libqcow_read(&python, &tiny, None) == expected,
        "tiny: libqcow"
    );
    assert!(qemu_read_raw(&tiny, "qcow2") == expected, "tiny: qemu");
}
