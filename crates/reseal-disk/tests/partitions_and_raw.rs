//! Partition tables (GPT from sgdisk, MBR with logical partitions written here), raw disks,
//! partition windows and format detection.

mod common;

use common::*;
use reseal_disk::{
    open, open_writable, read_partition_table, BlockDevice, Error, PartitionScheme, PartitionTable,
    PartitionType, PartitionWindow,
};
use std::path::Path;

/// Writes `bytes` as the disk image at `path` and reads its partition table back.
fn rewrite_and_read_table(
    path: &Path,
    bytes: &[u8],
) -> reseal_disk::Result<Option<PartitionTable>> {
    std::fs::write(path, bytes).unwrap();
    read_partition_table(&mut *open(path).unwrap())
}

/// The structure named by the error of a table that must be refused as corrupt.
fn corrupt_table_structure(path: &Path, bytes: &[u8]) -> &'static str {
    match rewrite_and_read_table(path, bytes) {
        Err(Error::Corrupt { structure, .. }) => structure,
        other => panic!("expected a corrupt partition table, got {other:?}"),
    }
}

fn mbr_entry(sector: &mut [u8], index: usize, partition_type: u8, first_lba: u32, sectors: u32) {
    let entry = &mut sector[446 + index * 16..462 + index * 16];
    entry[4] = partition_type;
    entry[8..12].copy_from_slice(&first_lba.to_le_bytes());
    entry[12..16].copy_from_slice(&sectors.to_le_bytes());
}

/// An image that starts with a volume's boot record (mkntfs's NTFS, whose boot code fills the
/// place of MBR entries; a BitLocker or exFAT one) is one file system, not a partitioned disk.
#[test]
fn a_volume_boot_record_is_not_a_partition_table() {
    let dir = tempfile::tempdir().unwrap();
    let volume = dir.path().join("volume.img");
    reseal_testutil::ntfs_image::make_volume(&volume, 16 << 20);
    let mut bytes = std::fs::read(&volume).unwrap();
    assert_eq!(&bytes[510..512], &[0x55, 0xAA]);
    for oem_id in [b"NTFS    ", b"-FVE-FS-", b"EXFAT   "] {
        bytes[3..11].copy_from_slice(oem_id);
        let table = rewrite_and_read_table(&volume, &bytes).unwrap();
        assert!(table.is_none(), "{oem_id:?}: {table:?}");
    }
    // The same sector with an MBR's first bytes and one entry is a table again.
    bytes[3..11].copy_from_slice(b"\0\0\0\0\0\0\0\0");
    bytes[446..510].fill(0);
    mbr_entry(&mut bytes, 0, 0x07, 2048, 4096);
    let table = rewrite_and_read_table(&volume, &bytes).unwrap().unwrap();
    assert_eq!(table.partitions.len(), 1);
}

#[test]
fn mbr_with_primary_and_logical_partitions() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mbr.img");
    let mut disk = vec![0u8; 16 << 20];
    let signature = |sector: &mut [u8]| sector[510..512].copy_from_slice(&[0x55, 0xAA]);
    mbr_entry(&mut disk[..512], 0, 0x07, 2048, 8192);
    mbr_entry(&mut disk[..512], 1, 0x0F, 10240, 20000);
    signature(&mut disk[..512]);
    // First extended boot record: a logical partition and a link to the next record.
    let first = 10240 * 512;
    mbr_entry(&mut disk[first..first + 512], 0, 0x07, 63, 4000);
    mbr_entry(&mut disk[first..first + 512], 1, 0x05, 5000, 3000);
    signature(&mut disk[first..first + 512]);
    let second = (10240 + 5000) * 512;
    mbr_entry(&mut disk[second..second + 512], 0, 0x0B, 63, 2000);
    signature(&mut disk[second..second + 512]);
    let table = rewrite_and_read_table(&path, &disk).unwrap().unwrap();
    assert_eq!(table.scheme, PartitionScheme::Mbr);
    let summary: Vec<(u32, PartitionType, u64, u64)> = table
        .partitions
        .iter()
        .map(|p| (p.number, p.partition_type, p.start / 512, p.size / 512))
        .collect();
    assert_eq!(
        summary,
        vec![
            (1, PartitionType::Mbr(0x07), 2048, 8192),
            (5, PartitionType::Mbr(0x07), 10240 + 63, 4000),
            (6, PartitionType::Mbr(0x0B), 10240 + 5000 + 63, 2000),
        ]
    );

    // A partition past the end of the disk is reported, not trusted.
    mbr_entry(&mut disk[..512], 2, 0x07, 30000, 100_000);
    assert_eq!(corrupt_table_structure(&path, &disk), "MBR partition entry");
}

#[test]
fn gpt_falls_back_to_the_backup_header() {
    let dir = tempfile::tempdir().unwrap();
    let raw = gpt_raw_disk(dir.path(), 8, 6, 61);
    let pristine = std::fs::read(&raw).unwrap();
    let expected = {
        let mut device = open(&raw).unwrap();
        let table = read_partition_table(&mut *device).unwrap().unwrap();
        assert_eq!(table.scheme, PartitionScheme::Gpt);
        assert_eq!(table.partitions[0].start, 2048 * 512);
        assert_eq!(table.partitions[0].size, 6 << 20);
        assert_eq!(table.partitions[0].name, "Windows");
        // sgdisk's 0700 is Microsoft basic data.
        let basic_data = "ebd0a0a2-b9e5-4433-87c0-68b6b72699c7".parse().unwrap();
        assert_eq!(
            table.partitions[0].partition_type,
            PartitionType::Gpt(basic_data)
        );
        table.partitions
    };

    // A damaged primary header or primary entry array: the backup copy is used.
    for (position, what) in [(512 + 40, "primary header"), (1024 + 3, "primary entries")] {
        let mut damaged = pristine.clone();
        damaged[position] ^= 0xFF;
        assert_eq!(
            rewrite_and_read_table(&raw, &damaged)
                .unwrap()
                .unwrap()
                .partitions,
            expected,
            "damaged {what}"
        );
    }

    let mut damaged = pristine.clone();
    damaged[1024 + 3] ^= 0xFF; // the primary entries
    let last_sector = pristine.len() - 512;
    damaged[last_sector + 40] ^= 0xFF; // and the backup header
    assert_eq!(
        corrupt_table_structure(&raw, &damaged),
        "GPT partition entries"
    );
}

#[test]
fn raw_disk_and_partition_window() {
    let dir = tempfile::tempdir().unwrap();
    let raw = gpt_raw_disk(dir.path(), 8, 6, 62);
    let mut expected = std::fs::read(&raw).unwrap();
    let mut device = open_writable(&raw).unwrap();
    assert_eq!(device.len(), expected.len() as u64);
    let partition = read_partition_table(&mut *device)
        .unwrap()
        .unwrap()
        .partitions[0]
        .clone();

    let mut window = PartitionWindow::new(&mut *device, partition.start, partition.size).unwrap();
    assert_eq!(window.len(), partition.size);
    let mut head = vec![0u8; 4096];
    window.read_at(0, &mut head).unwrap();
    assert!(head[..] == expected[partition.start as usize..][..4096]);
    let data = pseudo_random(1000, 63);
    window.write_at(partition.size - 1000, &data).unwrap();
    let end = (partition.start + partition.size) as usize;
    expected[end - 1000..end].copy_from_slice(&data);
    assert!(matches!(
        window.write_at(partition.size - 999, &data),
        Err(Error::OutOfRange { .. })
    ));
    window.flush().unwrap();
    assert!(matches!(
        PartitionWindow::new(&mut *device, partition.start, expected.len() as u64),
        Err(Error::OutOfRange { .. })
    ));
    drop(device);
    assert!(std::fs::read(&raw).unwrap() == expected);
}

#[test]
fn format_is_detected_from_the_content() {
    let dir = tempfile::tempdir().unwrap();
    let raw = gpt_raw_disk(dir.path(), 8, 6, 64);
    let raw_bytes = std::fs::read(&raw).unwrap();
    // Names that say nothing (or the wrong thing) about the format.
    for (format, options, name) in [
        ("vpc", "subformat=fixed,force_size=on", "fixed.bin"),
        ("vpc", "subformat=dynamic,force_size=on", "dynamic.img"),
        ("vhdx", "subformat=dynamic", "dynamic.vhd"),
    ] {
        let image = dir.path().join(name);
        qemu_convert(&raw, "raw", &image, format, options);
        let mut device = open(&image).unwrap();
        assert_eq!(device.len(), raw_bytes.len() as u64, "{name}");
        assert!(read_all(&mut *device) == raw_bytes, "{name}");
    }
    let empty = dir.path().join("empty.vhdx");
    std::fs::write(&empty, b"").unwrap();
    assert!(matches!(
        open(&empty),
        Err(Error::Corrupt {
            structure: "VHDX file identifier",
            ..
        })
    ));
    assert!(matches!(
        open(&dir.path().join("absent.img")),
        Err(Error::Io { .. })
    ));
}

#[test]
fn block_device_as_a_stream() {
    use std::io::{Read, Seek, SeekFrom, Write};
    let dir = tempfile::tempdir().unwrap();
    let raw = gpt_raw_disk(dir.path(), 8, 6, 65);
    let bytes = std::fs::read(&raw).unwrap();
    let mut stream = reseal_disk::BlockDeviceIo::new(open_writable(&raw).unwrap());
    stream.seek(SeekFrom::Start(1 << 20)).unwrap();
    let mut buf = vec![0u8; 5000];
    stream.read_exact(&mut buf).unwrap();
    assert!(buf[..] == bytes[1 << 20..][..5000]);
    assert_eq!(
        stream.seek(SeekFrom::End(-10)).unwrap(),
        bytes.len() as u64 - 10
    );
    let mut tail = Vec::new();
    stream.read_to_end(&mut tail).unwrap();
    assert!(tail[..] == bytes[bytes.len() - 10..]);
    stream.seek(SeekFrom::End(-4)).unwrap();
    assert_eq!(stream.write(b"abcdefgh").unwrap(), 4);
    assert!(stream.write(b"x").is_err());
    stream.flush().unwrap();
    drop(stream);
    assert_eq!(&std::fs::read(&raw).unwrap()[bytes.len() - 4..], b"abcd");
}

/// Writes `entry` as GPT entry `index` into both entry arrays of `disk` and reseals the CRC-32s
/// of the arrays and both headers, so that only the entry's content is wrong.
fn set_gpt_entry(disk: &mut [u8], index: usize, entry: &[u8; 128]) {
    let last = disk.len() / 512 - 1;
    for header_lba in [1, last] {
        let header = header_lba * 512;
        let le32 = |disk: &[u8], at: usize| {
            u32::from_le_bytes(disk[at..at + 4].try_into().unwrap()) as usize
        };
        let entries =
            u64::from_le_bytes(disk[header + 72..header + 80].try_into().unwrap()) as usize * 512;
        let (count, size) = (le32(disk, header + 80), le32(disk, header + 84));
        disk[entries + index * size..entries + index * size + 128].copy_from_slice(entry);
        let entries_crc = crc32fast::hash(&disk[entries..entries + count * size]);
        disk[header + 88..header + 92].copy_from_slice(&entries_crc.to_le_bytes());
        let header_size = le32(disk, header + 12);
        disk[header + 16..header + 20].fill(0);
        let header_crc = crc32fast::hash(&disk[header..header + header_size]);
        disk[header + 16..header + 20].copy_from_slice(&header_crc.to_le_bytes());
    }
}

fn gpt_entry(first_lba: u64, last_lba: u64) -> [u8; 128] {
    let mut entry = [0u8; 128];
    entry[..16].copy_from_slice(&[
        0xA2, 0xA0, 0xD0, 0xEB, 0xE5, 0xB9, 0x33, 0x44, 0x87, 0xC0, 0x68, 0xB6, 0xB7, 0x26, 0x99,
        0xC7,
    ]);
    entry[16] = 0x42;
    entry[32..40].copy_from_slice(&first_lba.to_le_bytes());
    entry[40..48].copy_from_slice(&last_lba.to_le_bytes());
    entry
}

/// Tables whose partitions overlap, or leave the space the table gives them, are refused (an
/// edit of one partition would write into the other), with valid checksums throughout.
#[test]
fn overlapping_or_misplaced_partitions_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let raw = gpt_raw_disk(dir.path(), 16, 6, 62);
    let pristine = std::fs::read(&raw).unwrap();
    let last_lba = pristine.len() as u64 / 512 - 1;

    // A second partition that does not overlap is read (the control).
    let mut disk = pristine.clone();
    set_gpt_entry(&mut disk, 1, &gpt_entry(20480, 20480 + 2047));
    let table = rewrite_and_read_table(&raw, &disk).unwrap().unwrap();
    assert_eq!(table.partitions.len(), 2);

    let cases = [
        (
            gpt_entry(2048 + 4096, 2048 + 20000),
            "GPT partition entries",
            "overlap",
        ),
        (
            gpt_entry(20480, last_lba),
            "GPT partition entry",
            "usable LBAs",
        ),
        (gpt_entry(1, 2047), "GPT partition entry", "usable LBAs"),
    ];
    for (entry, structure, reason) in cases {
        let mut disk = pristine.clone();
        set_gpt_entry(&mut disk, 1, &entry);
        std::fs::write(&raw, &disk).unwrap();
        match read_partition_table(&mut *open(&raw).unwrap()) {
            Err(Error::Corrupt {
                structure: found,
                reason: why,
                ..
            }) => {
                assert_eq!(found, structure, "{why}");
                assert!(why.contains(reason), "{why}");
            }
            other => panic!("expected {structure} refused for {reason}, got {other:?}"),
        }
    }

    // MBR: two primaries sharing sectors, and a partition over the MBR itself.
    let path = dir.path().join("mbr.img");
    let mut disk = vec![0u8; 16 << 20];
    disk[510..512].copy_from_slice(&[0x55, 0xAA]);
    mbr_entry(&mut disk[..512], 0, 0x07, 2048, 8192);
    mbr_entry(&mut disk[..512], 1, 0x07, 8192, 8192);
    assert_eq!(
        corrupt_table_structure(&path, &disk),
        "MBR partition entries"
    );
    mbr_entry(&mut disk[..512], 1, 0x07, 0, 2048);
    assert_eq!(corrupt_table_structure(&path, &disk), "MBR partition entry");
    mbr_entry(&mut disk[..512], 1, 0x07, 10240, 2048);
    assert_eq!(
        rewrite_and_read_table(&path, &disk)
            .unwrap()
            .unwrap()
            .partitions
            .len(),
        2
    );
}
