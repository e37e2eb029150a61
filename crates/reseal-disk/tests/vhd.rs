//! VHD fixed, dynamic and differencing disks against qemu-img.

mod common;

use common::*;
use reseal_disk::{open, open_writable, read_partition_table, BlockDevice, Error};
use std::path::Path;

fn make_vhd(dir: &Path, raw: &Path, subformat: &str) -> std::path::PathBuf {
    let vhd = dir.join(format!("{subformat}.vhd"));
    qemu_convert(
        raw,
        "raw",
        &vhd,
        "vpc",
        &format!("subformat={subformat},force_size=on"),
    );
    vhd
}

/// Writes in place and into absent blocks, then compares with qemu's view.
fn write_and_compare(vhd: &Path, expected: &mut [u8]) {
    let writes: [(u64, usize, u64); 4] = [
        (1 << 20, 5000, 1),                    // inside present data
        ((13 << 20) + 100, 3000, 2),           // an absent block, unaligned
        ((2 << 20) - 700, 1400, 3),            // across a block boundary
        (expected.len() as u64 - 512, 512, 4), // the last sector
    ];
    {
        let mut disk = open_writable(vhd).unwrap();
        for (offset, len, seed) in writes {
            let data = pseudo_random(len, 100 + seed);
            disk.write_at(offset, &data).unwrap();
            expected[offset as usize..offset as usize + len].copy_from_slice(&data);
        }
        disk.flush().unwrap();
        assert_eq!(read_all(&mut *disk), expected, "our reads after our writes");
    }
    assert!(
        qemu_read_raw(vhd, "vpc") == expected,
        "qemu sees our writes"
    );
    assert!(read_all(&mut *open(vhd).unwrap()) == expected, "reopened");
}

#[test]
fn fixed_and_dynamic_read_and_write_like_qemu() {
    let dir = tempfile::tempdir().unwrap();
    let raw = gpt_raw_disk(dir.path(), 16, 14, 7);
    let raw_bytes = std::fs::read(&raw).unwrap();
    for subformat in ["fixed", "dynamic"] {
        let vhd = make_vhd(dir.path(), &raw, subformat);
        let mut disk = open(&vhd).unwrap();
        assert_eq!(disk.len(), raw_bytes.len() as u64, "{subformat}");
        assert!(
            read_all(&mut *disk) == raw_bytes,
            "{subformat}: reads equal the raw disk"
        );
        let table = read_partition_table(&mut *disk).unwrap().unwrap();
        assert_eq!(table.partitions.len(), 1);
        assert_eq!(table.partitions[0].start, 2048 * 512);
        assert_eq!(table.partitions[0].name, "Windows");
        drop(disk);
        let mut expected = raw_bytes.clone();
        write_and_compare(&vhd, &mut expected);
    }
}

#[test]
fn read_only_open_refuses_writes() {
    let dir = tempfile::tempdir().unwrap();
    let raw = gpt_raw_disk(dir.path(), 8, 6, 3);
    let vhd = make_vhd(dir.path(), &raw, "dynamic");
    let mut disk = open(&vhd).unwrap();
    assert!(matches!(
        disk.write_at(0, &[1, 2, 3]),
        Err(Error::ReadOnly { .. })
    ));
    assert!(matches!(
        disk.read_at(disk.len() - 1, &mut [0, 0]),
        Err(Error::OutOfRange { .. })
    ));
}

#[test]
fn differencing_child_reads_merged_and_leaves_the_parent_alone() {
    let dir = tempfile::tempdir().unwrap();
    let raw = gpt_raw_disk(dir.path(), 16, 14, 11);
    let raw_bytes = std::fs::read(&raw).unwrap();
    for subformat in ["dynamic", "fixed"] {
        let parent = make_vhd(dir.path(), &raw, subformat);
        let parent_before = std::fs::read(&parent).unwrap();
        let child = dir.path().join(format!("child-{subformat}.vhd"));
        reseal_disk::vhd::create_differencing(&parent, &child).unwrap();

        let mut disk = open(&child).unwrap();
        assert!(
            read_all(&mut *disk) == raw_bytes,
            "an empty child shows the parent"
        );
        drop(disk);

        let mut expected = raw_bytes.clone();
        let mut disk = open_writable(&child).unwrap();
        // Unaligned writes: partial sectors must keep the parent's other bytes.
        for (offset, len, seed) in [
            (1_048_700u64, 1000usize, 1u64),
            ((3 << 20) + 5, 70_000, 2),
            ((12 << 20) + 3, 10, 3),
        ] {
            let data = pseudo_random(len, 200 + seed);
            disk.write_at(offset, &data).unwrap();
            expected[offset as usize..offset as usize + len].copy_from_slice(&data);
        }
        disk.flush().unwrap();
        drop(disk);
        assert!(
            read_all(&mut *open(&child).unwrap()) == expected,
            "{subformat}: merged reads"
        );
        assert!(
            std::fs::read(&parent).unwrap() == parent_before,
            "the parent is untouched"
        );
    }
}

#[test]
fn differencing_parent_found_beside_the_child_after_a_move() {
    let dir = tempfile::tempdir().unwrap();
    let raw = gpt_raw_disk(dir.path(), 8, 6, 5);
    let raw_bytes = std::fs::read(&raw).unwrap();
    let elsewhere = dir.path().join("a");
    std::fs::create_dir(&elsewhere).unwrap();
    let parent = make_vhd(&elsewhere, &raw, "dynamic");
    let child = elsewhere.join("child.vhd");
    reseal_disk::vhd::create_differencing(&parent, &child).unwrap();
    // Both recorded paths now point nowhere; only the file name beside the child is left.
    let moved = dir.path().join("b");
    std::fs::rename(&elsewhere, &moved).unwrap();
    let mut disk = open(&moved.join("child.vhd")).unwrap();
    assert!(read_all(&mut *disk) == raw_bytes);
}

#[test]
fn differencing_parent_with_another_identity_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let raw = gpt_raw_disk(dir.path(), 8, 6, 5);
    let parent = make_vhd(dir.path(), &raw, "dynamic");
    let child = dir.path().join("child.vhd");
    reseal_disk::vhd::create_differencing(&parent, &child).unwrap();
    // A new conversion has a new unique id.
    std::fs::remove_file(&parent).unwrap();
    make_vhd(dir.path(), &raw, "dynamic");
    match open(&child) {
        Err(Error::ParentMismatch { reason, .. }) => assert!(reason.contains("unique id")),
        other => panic!("expected a parent mismatch, got {:?}", other.err()),
    }
    std::fs::remove_file(&parent).unwrap();
    match open(&child) {
        Err(error @ Error::MissingParent { .. }) => {
            assert!(error.to_string().contains("missing differencing parent"))
        }
        other => panic!("expected a missing parent, got {:?}", other.err()),
    }
}

/// Rewrites the relative (W2ru) parent locator of the dynamic VHD `child` to `text` and
/// reseals the dynamic header's checksum.
fn set_relative_locator(child: &Path, text: &str) {
    let mut bytes = std::fs::read(child).unwrap();
    let be32 = |b: &[u8], at: usize| u32::from_be_bytes(b[at..at + 4].try_into().unwrap());
    let header = u64::from_be_bytes(bytes[16..24].try_into().unwrap()) as usize;
    let locator = (0..8)
        .map(|index| header + 576 + index * 24)
        .find(|&at| &bytes[at..at + 4] == b"W2ru")
        .expect("a relative locator");
    let data: Vec<u8> = text.encode_utf16().flat_map(|u| u.to_le_bytes()).collect();
    assert!(data.len() <= be32(&bytes, locator + 4) as usize);
    let offset = u64::from_be_bytes(bytes[locator + 16..locator + 24].try_into().unwrap()) as usize;
    bytes[offset..offset + data.len()].copy_from_slice(&data);
    bytes[locator + 8..locator + 12].copy_from_slice(&(data.len() as u32).to_be_bytes());
    bytes[header + 36..header + 40].fill(0);
    let sum = bytes[header..header + 1024]
        .iter()
        .fold(0u32, |sum, &b| sum.wrapping_add(b as u32));
    bytes[header + 36..header + 40].copy_from_slice(&(!sum).to_be_bytes());
    std::fs::write(child, bytes).unwrap();
}

/// A relative parent locator leading out of the child's directory to a file that is no VHD:
/// the error names the child, the locator as recorded and the file it led to.
#[test]
fn a_parent_locator_leading_to_another_file_names_the_child_and_the_locator() {
    let dir = tempfile::tempdir().unwrap();
    let raw = gpt_raw_disk(dir.path(), 8, 6, 5);
    let parent = make_vhd(dir.path(), &raw, "dynamic");
    let child = dir.path().join("child.vhd");
    reseal_disk::vhd::create_differencing(&parent, &child).unwrap();
    std::fs::remove_file(&parent).unwrap();
    let hostile = "..\\..\\..\\..\\..\\..\\..\\..\\..\\..\\..\\..\\etc\\passwd";
    set_relative_locator(&child, hostile);
    let before = std::fs::read(&child).unwrap();
    match open(&child) {
        Err(error @ Error::UnusableParent { .. }) => {
            let Error::UnusableParent {
                path,
                parent,
                locator,
                source,
            } = &error
            else {
                unreachable!()
            };
            assert_eq!(path, &child);
            assert_eq!(locator, hostile);
            assert_eq!(parent, Path::new("/etc/passwd"));
            assert!(matches!(**source, Error::Corrupt { .. }), "{source}");
            let message = error.to_string();
            assert!(
                message.starts_with(&child.display().to_string()),
                "{message}"
            );
            assert!(message.contains("parent locator"), "{message}");
        }
        other => panic!("expected an unusable parent, got {:?}", other.err()),
    }
    assert!(std::fs::read(&child).unwrap() == before);
}
