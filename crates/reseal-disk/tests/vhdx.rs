//! VHDX fixed, dynamic and differencing disks against qemu-img.

mod common;

use common::*;
use reseal_disk::vhdx::Vhdx;
use reseal_disk::{open, open_writable, read_partition_table, BlockDevice, Error};
use std::path::{Path, PathBuf};

fn make_vhdx(dir: &Path, raw: &Path, options: &str, name: &str) -> PathBuf {
    let vhdx = dir.join(format!("{name}.vhdx"));
    qemu_convert(raw, "raw", &vhdx, "vhdx", options);
    vhdx
}

const RECIPES: [(&str, &str); 3] = [
    ("subformat=fixed", "fixed"),
    ("subformat=dynamic", "dynamic"),
    ("subformat=dynamic,block_size=1M", "dynamic-1m"),
];

#[test]
fn reads_equal_the_raw_disk() {
    let dir = tempfile::tempdir().unwrap();
    let raw = gpt_raw_disk(dir.path(), 24, 20, 21);
    let raw_bytes = std::fs::read(&raw).unwrap();
    for (options, name) in RECIPES {
        let vhdx = make_vhdx(dir.path(), &raw, options, name);
        let mut disk = open(&vhdx).unwrap();
        assert_eq!(disk.len(), raw_bytes.len() as u64, "{name}");
        assert!(
            read_all(&mut *disk) == raw_bytes,
            "{name}: reads equal the raw disk"
        );
        let table = read_partition_table(&mut *disk).unwrap().unwrap();
        assert_eq!(table.partitions.len(), 1, "{name}");
        assert_eq!(table.partitions[0].size, 20 << 20, "{name}");
    }
}

#[test]
fn writes_in_place_and_into_new_blocks_pass_qemu_check() {
    let dir = tempfile::tempdir().unwrap();
    let raw = gpt_raw_disk(dir.path(), 24, 20, 22);
    let raw_bytes = std::fs::read(&raw).unwrap();
    for (options, name) in RECIPES {
        let vhdx = make_vhdx(dir.path(), &raw, options, name);
        let header_before = Vhdx::open(&vhdx, false).unwrap().header().clone();
        let mut expected = raw_bytes.clone();
        {
            let mut disk = open_writable(&vhdx).unwrap();
            for (offset, len, seed) in [
                (1u64 << 20, 4096usize, 1u64), // present data
                ((17 << 20) + 333, 5000, 2),   // an absent block, unaligned
                ((8 << 20) - 100, 300, 3),     // across a block boundary
                ((20 << 20) + 1, 3 << 20, 4),  // several blocks at once
            ] {
                let data = pseudo_random(len, 300 + seed);
                disk.write_at(offset, &data).unwrap();
                expected[offset as usize..offset as usize + len].copy_from_slice(&data);
            }
            disk.flush().unwrap();
            assert!(
                read_all(&mut *disk) == expected,
                "{name}: our reads after our writes"
            );
        }
        qemu_check_vhdx(&vhdx);
        assert!(
            qemu_read_raw(&vhdx, "vhdx") == expected,
            "{name}: qemu sees our writes"
        );

        let reopened = Vhdx::open(&vhdx, false).unwrap();
        let header_after = reopened.header();
        assert!(header_after.sequence_number > header_before.sequence_number);
        assert_ne!(header_after.file_write_guid, header_before.file_write_guid);
        assert_ne!(header_after.data_write_guid, header_before.data_write_guid);
    }
}

#[test]
fn read_only_open_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let raw = gpt_raw_disk(dir.path(), 8, 6, 23);
    let vhdx = make_vhdx(dir.path(), &raw, "subformat=dynamic", "dynamic");
    let before = std::fs::read(&vhdx).unwrap();
    let mut disk = open(&vhdx).unwrap();
    read_all(&mut *disk);
    assert!(matches!(
        disk.write_at(0, &[0]),
        Err(Error::ReadOnly { .. })
    ));
    drop(disk);
    assert!(std::fs::read(&vhdx).unwrap() == before);
}

#[test]
fn differencing_child_reads_merged_and_leaves_the_parent_alone() {
    let dir = tempfile::tempdir().unwrap();
    let raw = gpt_raw_disk(dir.path(), 24, 20, 24);
    let raw_bytes = std::fs::read(&raw).unwrap();
    for (options, name) in RECIPES {
        let parent = make_vhdx(dir.path(), &raw, options, name);
        let parent_before = std::fs::read(&parent).unwrap();
        let child = dir.path().join(format!("child-{name}.vhdx"));
        reseal_disk::vhdx::create_differencing(&parent, &child).unwrap();
        assert!(
            read_all(&mut *open(&child).unwrap()) == raw_bytes,
            "{name}: empty child"
        );

        let mut expected = raw_bytes.clone();
        {
            let mut disk = open_writable(&child).unwrap();
            for (offset, len, seed) in [
                ((1u64 << 20) + 7, 1000usize, 1u64),
                ((9 << 20) + 512, 70_000, 2),
                ((17 << 20) + 3, 10, 3),
                ((1u64 << 20) + 500, 100, 4), // again in a partly present block
            ] {
                let data = pseudo_random(len, 400 + seed);
                disk.write_at(offset, &data).unwrap();
                expected[offset as usize..offset as usize + len].copy_from_slice(&data);
            }
            disk.flush().unwrap();
        }
        assert!(
            read_all(&mut *open(&child).unwrap()) == expected,
            "{name}: merged reads"
        );
        assert!(
            std::fs::read(&parent).unwrap() == parent_before,
            "{name}: parent untouched"
        );
    }
}

#[test]
fn differencing_child_rejects_a_parent_written_since() {
    let dir = tempfile::tempdir().unwrap();
    let raw = gpt_raw_disk(dir.path(), 8, 6, 25);
    let parent = make_vhdx(dir.path(), &raw, "subformat=dynamic", "parent");
    let child = dir.path().join("child.vhdx");
    reseal_disk::vhdx::create_differencing(&parent, &child).unwrap();
    open_writable(&parent).unwrap().write_at(0, &[1]).unwrap();
    match open(&child) {
        Err(Error::ParentMismatch { reason, .. }) => assert!(reason.contains("DataWriteGuid")),
        other => panic!("expected a parent mismatch, got {:?}", other.err()),
    }
}

/// A chain opened once serves a new child: after `open_image`, the chain's base is moved away,
/// and the child made with `differencing::create_child` over the open device is still written
/// and reads as the chain plus its writes (once the base is back where the chain records it).
#[test]
fn a_child_of_an_open_chain_needs_no_second_open() {
    let dir = tempfile::tempdir().unwrap();
    let raw = gpt_raw_disk(dir.path(), 16, 14, 26);
    let raw_bytes = std::fs::read(&raw).unwrap();
    for (format, extension, options) in [
        ("vhdx", "vhdx", "subformat=dynamic"),
        ("vpc", "vhd", "subformat=dynamic,force_size=on"),
    ] {
        let base = dir.path().join(format!("base.{extension}"));
        qemu_convert(&raw, "raw", &base, format, options);
        let middle = dir.path().join(format!("middle.{extension}"));
        let output = dir.path().join(format!("output.{extension}"));
        let create = match extension {
            "vhdx" => reseal_disk::vhdx::create_differencing,
            _ => reseal_disk::vhd::create_differencing,
        };
        create(&base, &middle).unwrap();

        let opened = reseal_disk::open_image(&middle).unwrap();
        assert_eq!(
            opened.format,
            reseal_disk::detect_format(&mut reseal_disk::LocalFile::open(&middle, false).unwrap())
                .unwrap()
        );
        let record = opened.parent_record.clone().unwrap();
        assert_eq!(record.format(), opened.format);
        let shared = reseal_disk::SharedDevice::new(opened.device);
        let moved = dir.path().join("moved-away");
        std::fs::rename(&base, &moved).unwrap();
        assert!(matches!(open(&middle), Err(Error::MissingParent { .. })));

        let mut expected = raw_bytes.clone();
        let mut child = reseal_disk::differencing::create_child(
            &record,
            &middle,
            Box::new(shared.clone()),
            &output,
            reseal_disk::Entropy::default(),
        )
        .unwrap();
        for (offset, len, seed) in [((1u64 << 20) + 4096, 8192usize, 1u64), (9 << 20, 4096, 2)] {
            let data = pseudo_random(len, 500 + seed);
            child.write_at(offset, &data).unwrap();
            expected[offset as usize..offset as usize + len].copy_from_slice(&data);
        }
        child.flush().unwrap();
        assert!(read_all(&mut *child) == expected, "{extension}: the child");
        assert!(
            read_all(&mut shared.clone()) == raw_bytes,
            "{extension}: the open chain"
        );
        drop(child);

        std::fs::rename(&moved, &base).unwrap();
        assert!(
            read_all(&mut *open(&output).unwrap()) == expected,
            "{extension}: the child reopened through its recorded chain"
        );
        for path in [&base, &middle, &output] {
            std::fs::remove_file(path).unwrap();
        }
    }
}

/// A writable open and a new child draw their GUIDs (and a VHD child its timestamp) from the
/// entropy given: the same seed and time write the same bytes into two copies and make the same
/// child at the same path; another seed or time other bytes.
#[test]
fn seeded_writes_and_children_are_the_same_bytes_again() {
    use reseal_disk::{differencing, open_writable_with, Entropy};
    use reseal_nt::FileTime;
    let dir = tempfile::tempdir().unwrap();
    let raw = gpt_raw_disk(dir.path(), 16, 14, 27);
    let time = |seconds| Some(FileTime::from_unix(seconds, 0));
    let runs = [
        (42, time(1_700_000_000)),
        (42, time(1_700_000_000)),
        (43, time(1_700_000_000)),
        (42, time(1_800_000_000)),
    ];
    for (format, extension, options) in [
        ("vhdx", "vhdx", "subformat=dynamic"),
        ("vpc", "vhd", "subformat=dynamic,force_size=on"),
    ] {
        let base = dir.path().join(format!("base.{extension}"));
        qemu_convert(&raw, "raw", &base, format, options);
        let data = pseudo_random(8192, 600);
        let mut written = Vec::new();
        let mut children = Vec::new();
        for (run, &(seed, time)) in runs.iter().enumerate() {
            let copy = dir.path().join(format!("copy{run}.{extension}"));
            std::fs::copy(&base, &copy).unwrap();
            let mut disk = open_writable_with(&copy, Entropy::new(Some(seed), time)).unwrap();
            disk.write_at((3 << 20) + 512, &data).unwrap();
            drop(disk);
            written.push(std::fs::read(&copy).unwrap());

            let opened = reseal_disk::open_image(&base).unwrap();
            let child = dir.path().join(format!("child.{extension}"));
            let mut device = differencing::create_child(
                &opened.parent_record.unwrap(),
                &base,
                opened.device,
                &child,
                Entropy::new(Some(seed), time),
            )
            .unwrap();
            device.write_at(5 << 20, &data).unwrap();
            drop(device);
            let mut back = vec![0u8; data.len()];
            open(&child).unwrap().read_at(5 << 20, &mut back).unwrap();
            assert!(back == data, "{extension}: the child reopened");
            children.push(std::fs::read(&child).unwrap());
            std::fs::remove_file(&child).unwrap();
        }
        for (what, bytes) in [("written copy", &written), ("child", &children)] {
            assert!(
                bytes[0] == bytes[1],
                "{extension} {what}: the same seed differs"
            );
            if extension == "vhdx" {
                assert!(
                    bytes[0] != bytes[2],
                    "{extension} {what}: another seed is the same"
                );
            }
        }
        // A VHD child holds a timestamp, a VHDX nothing of the time.
        if extension == "vhd" {
            assert!(
                children[0] != children[2],
                "vhd child: another seed is the same"
            );
            assert!(
                children[0] != children[3],
                "vhd child: another time is the same"
            );
        }
    }
}
