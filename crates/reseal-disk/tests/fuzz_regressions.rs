//! Inputs the fuzz targets found a problem with (docs/FUZZING.md), rebuilt here from images
//! qemu-img makes: header fields that claim tables far larger than any real disk has, in a
//! sparse file long enough to hold them, are refused before the tables are read into memory.

mod common;

use common::*;
use reseal_disk::open;
use std::path::Path;

fn refusal(image: &Path) -> String {
    match open(image) {
        Ok(_) => panic!("{} opened", image.display()),
        Err(error) => error.to_string(),
    }
}

/// Makes `image` a sparse file of 8 GiB, long enough to hold what its header claims.
fn grow(image: &Path) {
    let file = std::fs::OpenOptions::new().write(true).open(image).unwrap();
    file.set_len(8 << 30).unwrap();
}

/// The disk target ran out of memory on a qcow2 whose refcount table claimed gigabytes.
#[test]
fn qcow2_tables_past_qemus_limits_are_refused_before_they_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let raw = gpt_raw_disk(dir.path(), 8, 4, 38);

    // 65,536 clusters of 64 KiB: a 4 GiB refcount table (qemu's limit is 8 MiB).
    let refcounts = dir.path().join("refcounts.qcow2");
    qemu_convert(&raw, "raw", &refcounts, "qcow2", "compat=1.1");
    reseal_testutil::ntfs_image::write_at(&refcounts, 56, &0x1_0000u32.to_be_bytes());
    grow(&refcounts);
    let said = refusal(&refcounts);
    assert!(
        said.contains("refcount table") && said.contains("limit"),
        "{said}"
    );

    // A 32 PiB disk needs a 512 MiB L1 table (qemu's limit is 32 MiB).
    let l1 = dir.path().join("l1.qcow2");
    qemu_convert(&raw, "raw", &l1, "qcow2", "compat=1.1");
    reseal_testutil::ntfs_image::write_at(&l1, 24, &(1u64 << 55).to_be_bytes());
    reseal_testutil::ntfs_image::write_at(&l1, 36, &(1u32 << 26).to_be_bytes());
    grow(&l1);
    let said = refusal(&l1);
    assert!(
        said.contains("L1 table") && said.contains("limit"),
        "{said}"
    );
}

/// The same for a VMDK sparse extent whose capacity needs a 64 MiB grain directory.
#[test]
fn a_vmdk_grain_directory_past_the_limit_is_refused_before_it_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let raw = gpt_raw_disk(dir.path(), 8, 4, 39);
    let vmdk = dir.path().join("directory.vmdk");
    qemu_convert(&raw, "raw", &vmdk, "vmdk", "subformat=monolithicSparse");
    // 2^40 sectors in tables of 512 grains of 64 KiB: 2^24 tables, a 64 MiB directory.
    reseal_testutil::ntfs_image::write_at(&vmdk, 12, &(1u64 << 40).to_le_bytes());
    grow(&vmdk);
    let said = refusal(&vmdk);
    assert!(said.contains("grain directory"), "{said}");
}
