//! VHDX log replay as MS-VHDX 2.3 has it: a valid log replays as qemu-img replays it; a log
//! that would write where a log may not, or holds no valid sequence, is refused as corrupt and
//! the file is left byte for byte as it was.

mod common;

use common::*;
use reseal_disk::vhdx::Vhdx;
use reseal_disk::{open, open_writable, Error};
use reseal_testutil::vhdx_log::{arm, entry_header_in_every_sector, log_location, LogEntry, Write};
use std::path::{Path, PathBuf};

const GUID: [u8; 16] = *b"reseal-log-guid!";
const MIB: u64 = 1 << 20;

/// A 16 MiB dynamic VHDX with 1 MiB blocks, made by qemu-img (its log is empty).
fn vhdx(dir: &Path) -> PathBuf {
    let raw = gpt_raw_disk(dir, 16, 14, 7);
    let image = dir.join("d.vhdx");
    qemu_convert(
        &raw,
        "raw",
        &image,
        "vhdx",
        "subformat=dynamic,block_size=1M",
    );
    image
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().len()
}

/// The BAT's file offset, from region table 1.
fn bat_offset(bytes: &[u8]) -> u64 {
    region_offset(bytes, &[0x66, 0x77, 0xC2, 0x2D])
}

/// The metadata region's file offset, from region table 1.
fn metadata_offset(bytes: &[u8]) -> u64 {
    region_offset(bytes, &[0x06, 0xA2, 0x7C, 0x8B])
}

fn region_offset(bytes: &[u8], guid_start: &[u8]) -> u64 {
    let table = &bytes[192 << 10..256 << 10];
    let count = u32::from_le_bytes(table[8..12].try_into().unwrap()) as usize;
    (0..count)
        .map(|i| &table[16 + i * 32..48 + i * 32])
        .find(|entry| entry.starts_with(guid_start))
        .map(|entry| u64::from_le_bytes(entry[16..24].try_into().unwrap()))
        .expect("the region")
}

fn sector(fill: u8) -> Vec<u8> {
    let mut bytes = vec![fill; 4096];
    bytes[..8].copy_from_slice(b"LEADING!");
    bytes[4092..].copy_from_slice(b"TAIL");
    bytes
}

/// Opens `image` read-only and for writing; both must refuse it as a corrupt VHDX log, and the
/// file must not change. Returns the reason.
fn assert_refused(image: &Path) -> String {
    let before = std::fs::read(image).unwrap();
    let mut reasons = Vec::new();
    for result in [open(image), open_writable(image)] {
        match result {
            Err(Error::Corrupt {
                path,
                structure,
                reason,
            }) => {
                assert_eq!(path, image);
                assert_eq!(structure, "VHDX log", "{reason}");
                reasons.push(reason);
            }
            Err(other) => panic!("expected a corrupt VHDX log, got {other}"),
            Ok(_) => panic!("{}: the log was accepted", image.display()),
        }
    }
    assert!(std::fs::read(image).unwrap() == before, "the file changed");
    assert_eq!(reasons[0], reasons[1]);
    reasons.remove(0)
}

#[test]
fn a_valid_log_replays_as_qemu_replays_it() {
    let dir = tempfile::tempdir().unwrap();
    let image = vhdx(dir.path());
    let pristine = std::fs::read(&image).unwrap();
    let pristine_disk = qemu_read_raw(&image, "vhdx");
    let len = file_len(&image);
    let end = len.div_ceil(MIB) * MIB;
    // Entry 1: the BAT without the entries of blocks 8 and up. Entry 2: zeros over a new MiB
    // at the end of the file, which grows it.
    let bat = bat_offset(&pristine);
    let mut bat_sector = pristine[bat as usize..bat as usize + 4096].to_vec();
    bat_sector[8 * 8..].fill(0);
    let first = LogEntry::new(41, 0, GUID, len).with(Write::Data {
        file_offset: bat,
        sector: bat_sector,
    });
    let first_bytes = first.to_bytes();
    let mut second = LogEntry::new(42, 0, GUID, len).with(Write::Zero {
        file_offset: end,
        length: MIB,
    });
    second.last_file_offset = end + MIB;
    arm(
        &image,
        GUID,
        &[
            (0, first_bytes.clone()),
            (first_bytes.len() as u32, second.to_bytes()),
        ],
    );
    let armed = std::fs::read(&image).unwrap();
    let theirs = dir.path().join("qemu.vhdx");
    replay_with_qemu(&image, &theirs);
    let qemu_disk = qemu_read_raw(&theirs, "vhdx");
    assert!(
        qemu_disk != pristine_disk,
        "the log changes what the disk holds"
    );

    // Read-only: replayed in memory, the file untouched.
    let mut disk = Vhdx::open(&image, false).unwrap();
    assert_eq!(disk.log_entries_replayed(), 2);
    assert!(
        read_all(&mut disk) == qemu_disk,
        "in-memory replay differs from qemu's"
    );
    drop(disk);
    assert!(std::fs::read(&image).unwrap() == armed);

    // Writable: replayed into the file, which qemu-img then reads as it read its own replay.
    let disk = Vhdx::open(&image, true).unwrap();
    assert_eq!(disk.log_entries_replayed(), 2);
    assert!(disk.header().log_guid.is_zero());
    drop(disk);
    assert_eq!(file_len(&image), end + MIB);
    assert_eq!(file_len(&image), file_len(&theirs));
    assert!(qemu_read_raw(&image, "vhdx") == qemu_disk);
    qemu_check_vhdx(&image);
}

#[test]
fn a_log_that_writes_over_offset_0_is_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let image = vhdx(dir.path());
    let len = file_len(&image);
    let attack = LogEntry::new(1, 0, GUID, len).with(Write::Data {
        file_offset: 0,
        sector: sector(0xEE),
    });
    arm(&image, GUID, &[(0, attack.to_bytes())]);
    let reason = assert_refused(&image);
    assert!(reason.contains("at file offset 0,"), "{reason}");
    assert!(reason.contains("file identifier"), "{reason}");
    assert!(reason.contains("log entry 1"), "{reason}");
}

#[test]
fn writes_into_the_headers_reserved_space_or_the_log_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let pristine_image = vhdx(dir.path());
    let pristine = std::fs::read(&pristine_image).unwrap();
    let len = pristine.len() as u64;
    let (log_offset, log_length) = log_location(&pristine_image);
    let cases = [
        (
            Write::Data {
                file_offset: 64 << 10,
                sector: sector(1),
            },
            "headers",
        ),
        (
            Write::Data {
                file_offset: 128 << 10,
                sector: sector(1),
            },
            "headers",
        ),
        (
            Write::Zero {
                file_offset: 512 << 10,
                length: 4096,
            },
            "reserved",
        ),
        // From the second region table copy into the reserved space after it.
        (
            Write::Zero {
                file_offset: 256 << 10,
                length: 128 << 10,
            },
            "reserved",
        ),
        (
            Write::Data {
                file_offset: log_offset + 8192,
                sector: sector(2),
            },
            "over the log itself",
        ),
        (
            Write::Zero {
                file_offset: log_offset + log_length as u64 - 4096,
                length: 8192,
            },
            "over the log itself",
        ),
    ];
    for (write, expected) in cases {
        std::fs::write(&pristine_image, &pristine).unwrap();
        let mut entry = LogEntry::new(5, 0, GUID, len).with(write);
        entry.last_file_offset = entry.last_file_offset.max(8 << 20);
        arm(&pristine_image, GUID, &[(0, entry.to_bytes())]);
        let reason = assert_refused(&pristine_image);
        assert!(reason.contains(expected), "{reason}");
    }
}

#[test]
fn a_region_table_update_through_the_log_is_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let image = vhdx(dir.path());
    let pristine = std::fs::read(&image).unwrap();
    // The first sector of region table 2, rewritten with its own bytes: the log may do that.
    let table = pristine[256 << 10..(256 << 10) + 4096].to_vec();
    let entry = LogEntry::new(3, 0, GUID, pristine.len() as u64).with(Write::Data {
        file_offset: 256 << 10,
        sector: table,
    });
    arm(&image, GUID, &[(0, entry.to_bytes())]);
    let armed = std::fs::read(&image).unwrap();
    let disk = Vhdx::open(&image, true).unwrap();
    assert_eq!(disk.log_entries_replayed(), 1);
    drop(disk);
    let after = std::fs::read(&image).unwrap();
    assert!(
        after[192 << 10..] == armed[192 << 10..],
        "only the headers changed"
    );
    qemu_check_vhdx(&image);
}

/// What a log leaves is checked before it is written: a log that zeroes the metadata region
/// is refused with the metadata's damage, and the file keeps its pending log.
#[test]
fn a_log_that_would_damage_the_metadata_is_refused_before_it_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let image = vhdx(dir.path());
    let pristine = std::fs::read(&image).unwrap();
    let metadata = metadata_offset(&pristine);
    let entry = LogEntry::new(3, 0, GUID, pristine.len() as u64).with(Write::Zero {
        file_offset: metadata,
        length: 4096,
    });
    arm(&image, GUID, &[(0, entry.to_bytes())]);
    let armed = std::fs::read(&image).unwrap();
    match Vhdx::open(&image, true) {
        Err(Error::Corrupt { structure, .. }) => assert_eq!(structure, "VHDX metadata"),
        Err(other) => panic!("expected corrupt metadata, got {other}"),
        Ok(_) => panic!("a log that zeroes the metadata was accepted"),
    }
    assert!(std::fs::read(&image).unwrap() == armed, "the file changed");
}

#[test]
fn writes_past_the_last_file_offset_or_any_file_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let image = vhdx(dir.path());
    let pristine = std::fs::read(&image).unwrap();
    let len = pristine.len() as u64;
    let last = len.div_ceil(MIB) * MIB;
    let past = LogEntry::new(9, 0, GUID, len).with(Write::Data {
        file_offset: last,
        sector: sector(3),
    });
    arm(&image, GUID, &[(0, past.to_bytes())]);
    let reason = assert_refused(&image);
    assert!(
        reason.contains(&format!("last file offset {last}")),
        "{reason}"
    );

    std::fs::write(&image, &pristine).unwrap();
    let wrapping = LogEntry::new(9, 0, GUID, len).with(Write::Zero {
        file_offset: u64::MAX - 4095,
        length: 8192,
    });
    arm(&image, GUID, &[(0, wrapping.to_bytes())]);
    assert!(assert_refused(&image).contains("past the end of any file"));

    std::fs::write(&image, &pristine).unwrap();
    let mut huge = LogEntry::new(9, 0, GUID, len);
    huge.last_file_offset = 1 << 60;
    arm(&image, GUID, &[(0, huge.to_bytes())]);
    assert!(assert_refused(&image).contains("more than any VHDX file"));
}

#[test]
fn a_truncated_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let image = vhdx(dir.path());
    let len = file_len(&image);
    let mut entry = LogEntry::new(2, 0, GUID, len);
    entry.flushed_file_offset = len.div_ceil(MIB) * MIB + MIB;
    arm(&image, GUID, &[(0, entry.to_bytes())]);
    assert!(assert_refused(&image).contains("truncated"));
}

/// Logs whose entries do not form a valid sequence: MS-VHDX says the file is corrupt.
#[test]
fn a_log_without_a_valid_sequence_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let image = vhdx(dir.path());
    let pristine = std::fs::read(&image).unwrap();
    let len = pristine.len() as u64;
    let valid = LogEntry::new(7, 0, GUID, len).with(Write::Data {
        file_offset: 2 << 20,
        sector: pristine[2 << 20..(2 << 20) + 4096].to_vec(),
    });
    let valid_bytes = valid.to_bytes();
    // The valid entry alone replays (the control for every case below).
    arm(&image, GUID, &[(0, valid_bytes.clone())]);
    assert_eq!(Vhdx::open(&image, false).unwrap().log_entries_replayed(), 1);

    let mut other_guid = valid.clone();
    other_guid.log_guid = *b"another-log-guid";
    let mut bad_crc = valid_bytes.clone();
    bad_crc[100] ^= 1;
    let mut zero_sequence = valid.clone();
    zero_sequence.sequence_number = 0;
    let mut tail_elsewhere = valid.clone();
    tail_elsewhere.tail = 64 << 10;
    let mut misaligned_flushed = valid.clone();
    misaligned_flushed.flushed_file_offset += 4096;
    let reseal = |mut bytes: Vec<u8>, patch: &dyn Fn(&mut Vec<u8>)| {
        patch(&mut bytes);
        reseal_testutil::vhdx_log::seal(&mut bytes);
        bytes
    };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("another LogGuid", other_guid.to_bytes()),
        ("a bad CRC-32C", bad_crc),
        ("sequence number 0", zero_sequence.to_bytes()),
        ("a tail with no entry", tail_elsewhere.to_bytes()),
        (
            "a flushed file offset not in MiB",
            misaligned_flushed.to_bytes(),
        ),
        (
            "reserved field set",
            reseal(valid_bytes.clone(), &|b| b[28] = 1),
        ),
        (
            "descriptor of another sequence",
            reseal(valid_bytes.clone(), &|b| b[64 + 24] = 8),
        ),
        (
            "data sector of another sequence",
            reseal(valid_bytes.clone(), &|b| b[4096 + 4092] = 8),
        ),
        (
            "data sector without its signature",
            reseal(valid_bytes.clone(), &|b| b[4096] = b'D'),
        ),
        (
            "unknown descriptor",
            reseal(valid_bytes.clone(), &|b| b[64] = b'x'),
        ),
        ("a sector after the data", {
            let mut longer = valid_bytes.clone();
            longer.extend_from_slice(&[0u8; 4096]);
            let length = longer.len() as u32;
            longer[8..12].copy_from_slice(&length.to_le_bytes());
            reseal(longer, &|_| {})
        }),
    ];
    for (what, bytes) in cases {
        std::fs::write(&image, &pristine).unwrap();
        arm(&image, GUID, &[(0, bytes)]);
        let reason = assert_refused(&image);
        assert!(reason.contains("no valid sequence"), "{what}: {reason}");
    }
    // The reason counts the entries of other logs (qemu-img's own, already replayed, remain).
    std::fs::write(&image, &pristine).unwrap();
    arm(&image, GUID, &[(0, other_guid.to_bytes())]);
    let reason = assert_refused(&image);
    let counts: Vec<&str> = reason
        .split(['(', ' '])
        .filter(|word| word.parse::<u32>().is_ok())
        .collect();
    assert!(
        reason.contains("of them with another LogGuid")
            && counts[counts.len() - 2] == counts[counts.len() - 1],
        "{reason}"
    );
}

/// Of two valid sequences the one whose head has the higher sequence number is replayed, and
/// a sequence ends where the sequence numbers stop being consecutive.
#[test]
fn the_newest_valid_sequence_is_replayed_and_only_it() {
    let dir = tempfile::tempdir().unwrap();
    let image = vhdx(dir.path());
    let pristine = std::fs::read(&image).unwrap();
    let len = pristine.len() as u64;
    let mut last = len.div_ceil(MIB) * MIB;
    let target = last;
    last += MIB;
    let writing = |sequence: u64, tail: u32, fill: u8| {
        let mut entry = LogEntry::new(sequence, tail, GUID, len).with(Write::Data {
            file_offset: target,
            sector: sector(fill),
        });
        entry.last_file_offset = last;
        entry.to_bytes()
    };
    let replayed = |image: &Path| {
        let disk = Vhdx::open(image, true).unwrap();
        let count = disk.log_entries_replayed();
        drop(disk);
        let bytes = std::fs::read(image).unwrap();
        (count, bytes[target as usize + 8])
    };
    let entry = writing(1, 0, 0).len() as u32;

    // An old sequence (3, 4) at 0 and a newer one (9) at 64 KiB: 9 wins.
    arm(
        &image,
        GUID,
        &[
            (0, writing(3, 0, 0x33)),
            (entry, writing(4, 0, 0x44)),
            (64 << 10, writing(9, 64 << 10, 0x99)),
        ],
    );
    assert_eq!(replayed(&image), (1, 0x99));

    // 3 then 4 in one sequence: both replayed, in order.
    std::fs::write(&image, &pristine).unwrap();
    arm(
        &image,
        GUID,
        &[(0, writing(3, 0, 0x33)), (entry, writing(4, 0, 0x44))],
    );
    assert_eq!(replayed(&image), (2, 0x44));

    // 3 then 6: not consecutive, so 6 does not extend 3's sequence, and 6's own sequence
    // (from its tail at 0) is not valid; only 3 is replayed. A crafted 6 writing over the
    // headers is never looked at.
    std::fs::write(&image, &pristine).unwrap();
    let mut attack = LogEntry::new(6, 0, GUID, len).with(Write::Data {
        file_offset: 0,
        sector: sector(0xEE),
    });
    attack.last_file_offset = last;
    arm(
        &image,
        GUID,
        &[(0, writing(3, 0, 0x33)), (entry, attack.to_bytes())],
    );
    assert_eq!(replayed(&image), (1, 0x33));
    let after = std::fs::read(&image).unwrap();
    assert!(
        after[..64 << 10] == pristine[..64 << 10],
        "the identifier is intact"
    );

    // A head whose tail is outside its run: the run 3, 4 ends in 4 whose tail (64 KiB) holds
    // no entry of the run, so there is no valid sequence at all.
    std::fs::write(&image, &pristine).unwrap();
    arm(
        &image,
        GUID,
        &[
            (0, writing(3, 0, 0x33)),
            (entry, writing(4, 64 << 10, 0x44)),
        ],
    );
    assert!(assert_refused(&image).contains("no valid sequence"));
}

/// Every sector of an 8 MiB log an entry header claiming the whole log, none valid: refused
/// (no valid sequence) as quickly as an ordinary log, where checking each candidate whole
/// would checksum 16 GiB; log.rs's tests count the bytes checksummed.
#[test]
fn entry_headers_in_every_sector_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let raw = gpt_raw_disk(dir.path(), 16, 14, 7);
    let image = dir.path().join("d.vhdx");
    qemu_convert(
        &raw,
        "raw",
        &image,
        "vhdx",
        "subformat=dynamic,block_size=1M,log_size=8M",
    );
    let (_, log_length) = log_location(&image);
    assert_eq!(log_length, 8 << 20);
    let crafted = entry_header_in_every_sector(GUID, file_len(&image), log_length);
    arm(&image, GUID, &[(0, crafted)]);
    let reason = assert_refused(&image);
    assert!(
        reason.contains("no valid sequence")
            && reason.contains("2048 sectors start with \"loge\", 0 of them"),
        "{reason}"
    );
}

#[test]
fn a_log_past_the_end_of_the_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let image = vhdx(dir.path());
    let len = file_len(&image);
    arm(&image, GUID, &[]);
    let mut bytes = std::fs::read(&image).unwrap();
    for header in [64usize << 10, 128 << 10] {
        let log_offset = len.div_ceil(MIB) * MIB + MIB;
        bytes[header + 72..header + 80].copy_from_slice(&log_offset.to_le_bytes());
        reseal_testutil::vhdx_log::seal(&mut bytes[header..header + 4096]);
    }
    std::fs::write(&image, &bytes).unwrap();
    assert!(assert_refused(&image).contains("past the end of the file"));
}
