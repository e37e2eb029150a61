//! Images made by Windows (and one by qemu with a pending log): open, read, list partitions.

mod common;

use common::*;
use reseal_disk::vhdx::Vhdx;
use reseal_disk::{open, open_writable, read_partition_table, BlockDevice, Error, PartitionScheme};
use std::path::{Path, PathBuf};

/// A copy of `image` in `dir` whose log qemu-img has replayed.
fn replayed_by_qemu(image: &Path, dir: &Path) -> PathBuf {
    let copy = dir.join("qemu-replayed.vhdx");
    replay_with_qemu(image, &copy);
    copy
}

/// Opens `image` read-only, which must find log entries and replay them in memory only.
fn open_with_pending_log(image: &Path) -> Vhdx {
    let vhdx = Vhdx::open(image, false).unwrap();
    assert!(vhdx.log_entries_replayed() > 0);
    assert!(
        !vhdx.header().log_guid.is_zero(),
        "the file's header is unchanged"
    );
    vhdx
}

/// Reads the whole disk in 1 MiB pieces and returns how many bytes are not zero.
fn nonzero_bytes(disk: &mut dyn BlockDevice) -> u64 {
    let mut buf = vec![0u8; 1 << 20];
    let mut count = 0;
    let mut offset = 0;
    while offset < disk.len() {
        let len = (disk.len() - offset).min(buf.len() as u64) as usize;
        disk.read_at(offset, &mut buf[..len]).unwrap();
        count += buf[..len].iter().filter(|&&b| b != 0).count() as u64;
        offset += len as u64;
    }
    count
}

#[test]
fn hyperv_and_virtualpc_dynamic_vhds_are_empty_127_gib_disks() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["hyperv2012r2-dynamic.vhd", "virtualpc-dynamic.vhd"] {
        let Some(path) = real_image(&format!("images/qemu/{name}"), dir.path()) else {
            return;
        };
        let mut disk = open(&path).unwrap();
        assert_eq!(disk.len(), 136_365_211_648, "{name}");
        let mut start = vec![0xAAu8; 1 << 20];
        disk.read_at(0, &mut start).unwrap();
        assert!(start.iter().all(|&b| b == 0), "{name}: no data");
        assert!(
            read_partition_table(&mut *disk).unwrap().is_none(),
            "{name}: not partitioned"
        );
    }
}

#[test]
fn disk2vhd_zero_filled_vhd_reads_zeros_like_qemu() {
    let dir = tempfile::tempdir().unwrap();
    let Some(path) = real_image("images/qemu/d2v-zerofilled.vhd.bz2", dir.path()) else {
        return;
    };
    let mut disk = open(&path).unwrap();
    assert_eq!(disk.len(), 263_454_720);
    assert_reads_like_qemu(&mut *disk, &path, "vpc", 1 << 20);
    assert_eq!(nonzero_bytes(&mut *disk), 0);
}

#[test]
fn hyperv_dynamic_vhdx_has_the_known_pattern() {
    let dir = tempfile::tempdir().unwrap();
    let Some(path) = real_image("images/qemu/iotest-dynamic-1G.vhdx.bz2", dir.path()) else {
        return;
    };
    let mut disk = open(&path).unwrap();
    assert_eq!(disk.len(), 1 << 30);
    // qemu iotest 064: 0xa5 up to 33 MiB, 0x96 up to 66 MiB, zeros after.
    for (start, end, byte) in [(0u64, 33u64, 0xA5u8), (33, 66, 0x96), (66, 80, 0)] {
        let mut buf = vec![0u8; ((end - start) << 20) as usize];
        disk.read_at(start << 20, &mut buf).unwrap();
        assert!(
            buf.iter().all(|&b| b == byte),
            "{start}..{end} MiB holds {byte:#x}"
        );
    }
}

#[test]
fn disk2vhd_vhdx_with_equal_header_sequence_numbers_opens() {
    let dir = tempfile::tempdir().unwrap();
    let Some(path) = real_image("images/qemu/test-disk2vhd.vhdx.bz2", dir.path()) else {
        return;
    };
    let vhdx = Vhdx::open(&path, false).unwrap();
    assert_eq!(vhdx.header().sequence_number, 1);
    assert_eq!(vhdx.creator(), "d2v");
    let mut disk = open(&path).unwrap();
    let table = read_partition_table(&mut *disk)
        .unwrap()
        .expect("a partition table");
    assert!(!table.partitions.is_empty());
    for partition in &table.partitions {
        assert!(partition.start + partition.size <= disk.len());
    }
    assert_reads_like_qemu(&mut *disk, &path, "vhdx", 1 << 20);
}

#[test]
fn swap_vhdx_is_an_unpartitioned_swap_area() {
    let dir = tempfile::tempdir().unwrap();
    let Some(path) = real_image("images/discutils/swap.vhdx.gz", dir.path()) else {
        return;
    };
    let mut disk = open(&path).unwrap();
    assert_eq!(disk.len(), 10 << 30);
    assert!(read_partition_table(&mut *disk).unwrap().is_none());
    let mut signature = [0u8; 10];
    disk.read_at(4096 - 10, &mut signature).unwrap();
    assert_eq!(&signature, b"SWAPSPACE2");
    assert_reads_like_qemu(&mut *disk, &path, "vhdx", 128);
}

#[test]
fn pending_log_is_applied_in_memory_read_only_and_replayed_for_writing() {
    let dir = tempfile::tempdir().unwrap();
    let Some(path) = real_image("images/discutils/vhdx-log-replay.vhdx", dir.path()) else {
        return;
    };
    let before = std::fs::read(&path).unwrap();
    let qemu_copy = replayed_by_qemu(&path, dir.path());
    let read_only = {
        let mut disk: Box<dyn BlockDevice> = Box::new(open_with_pending_log(&path));
        let table = read_partition_table(&mut *disk)
            .unwrap()
            .expect("a partition table");
        assert_eq!(table.partitions.len(), 2, "{table:?}");
        read_all(&mut *disk)
    };
    assert!(
        std::fs::read(&path).unwrap() == before,
        "a read-only open writes nothing"
    );

    let replayed = {
        let vhdx = Vhdx::open(&path, true).unwrap();
        assert!(vhdx.log_entries_replayed() > 0);
        assert!(vhdx.header().log_guid.is_zero());
        let mut disk: Box<dyn BlockDevice> = Box::new(vhdx);
        read_all(&mut *disk)
    };
    assert!(read_only == replayed, "in-memory and in-file replay agree");
    let reopened = Vhdx::open(&path, false).unwrap();
    assert_eq!(reopened.log_entries_replayed(), 0, "nothing left to replay");
    qemu_check_vhdx(&path);
    assert!(
        qemu_read_raw(&path, "vhdx") == replayed,
        "qemu reads our replay"
    );
    assert!(
        qemu_read_raw(&qemu_copy, "vhdx") == replayed,
        "qemu's own replay agrees"
    );
    let mut disk = open(&path).unwrap();
    assert_eq!(
        read_partition_table(&mut *disk)
            .unwrap()
            .unwrap()
            .partitions
            .len(),
        2
    );
}

#[test]
fn qemu_dirty_log_replays_like_qemu() {
    let dir = tempfile::tempdir().unwrap();
    let Some(path) = real_image("images/qemu/iotest-dirtylog-10G-4M.vhdx.bz2", dir.path()) else {
        return;
    };
    let in_memory = {
        let mut disk: Box<dyn BlockDevice> = Box::new(open_with_pending_log(&path));
        let mut start = vec![0u8; 64 << 20];
        disk.read_at(0, &mut start).unwrap();
        start
    };
    let qemu_copy = replayed_by_qemu(&path, dir.path());
    let mut qemu_disk = open(&qemu_copy).unwrap();
    let mut qemu_start = vec![0u8; 64 << 20];
    qemu_disk.read_at(0, &mut qemu_start).unwrap();
    assert!(
        in_memory == qemu_start,
        "our in-memory replay equals qemu's replay"
    );
    assert!(in_memory.iter().any(|&b| b != 0), "the log holds data");

    let mut ours = open_writable(&path).unwrap();
    let mut replayed = vec![0u8; 64 << 20];
    ours.read_at(0, &mut replayed).unwrap();
    assert!(replayed == in_memory);
    drop(ours);
    qemu_check_vhdx(&path);
}

#[test]
fn differencing_vhd_without_its_parent_names_the_parent() {
    let dir = tempfile::tempdir().unwrap();
    let Some(path) = real_image("images/dfvfs/fat-differential.vhd", dir.path()) else {
        return;
    };
    match open(&path) {
        Err(error @ Error::MissingParent { .. }) => {
            let message = error.to_string();
            assert!(message.contains("missing differencing parent"), "{message}");
            assert!(message.contains("fat-parent.vhd"), "{message}");
            assert!(message.contains("fat-differential.vhd"), "{message}");
        }
        other => panic!("expected a missing parent error, got {:?}", other.err()),
    }
}

#[test]
fn partition_schemes_of_real_images() {
    let dir = tempfile::tempdir().unwrap();
    let Some(path) = real_image("images/discutils/vhdx-log-replay.vhdx", dir.path()) else {
        return;
    };
    let mut disk = open(&path).unwrap();
    let table = read_partition_table(&mut *disk).unwrap().unwrap();
    assert!(matches!(
        table.scheme,
        PartitionScheme::Gpt | PartitionScheme::Mbr
    ));
    for partition in &table.partitions {
        assert!(partition.size > 0);
        assert!(partition.start + partition.size <= disk.len());
    }
}
