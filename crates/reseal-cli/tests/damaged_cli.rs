//! Damaged disk images are refused with exit code 4, a message naming the image, the structure
//! and the reason, and the image left byte for byte as it was.

mod common;

use std::fs;
use std::path::Path;

use common::{code, reseal, text};
use reseal_testutil::ntfs_image::{sample_disk, Container};
use reseal_testutil::vhdx_log::{arm, LogEntry, Write};

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Runs inspect, verify and generalize on `disk`: each must exit 4 with a message holding every
/// piece of `expected`, and leave the image as it was.
fn assert_refused_as_corrupt(disk: &Path, expected: &[&str]) {
    let before = fs::read(disk).unwrap();
    for command in ["inspect", "verify", "generalize"] {
        let output = reseal(&[command, s(disk)]);
        let message = text(&output);
        assert_eq!(code(&output), 4, "{command}: {message}");
        assert!(
            message.contains(s(disk)),
            "{command} names the image: {message}"
        );
        for piece in expected {
            assert!(message.contains(piece), "{command}: {piece:?} in {message}");
        }
        assert!(
            fs::read(disk).unwrap() == before,
            "{command} changed the image"
        );
    }
}

/// The attack of a log entry with a valid CRC that writes over the file identifier.
#[test]
fn a_crafted_vhdx_log_that_writes_over_offset_0_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let disk = sample_disk(dir.path(), Container::Vhdx);
    let guid = *b"crafted-log-guid";
    let len = fs::metadata(&disk).unwrap().len();
    let attack = LogEntry::new(1, 0, guid, len).with(Write::Data {
        file_offset: 0,
        sector: vec![0xEE; 4096],
    });
    arm(&disk, guid, &[(0, attack.to_bytes())]);
    assert_refused_as_corrupt(&disk, &["VHDX log", "file offset 0,", "file identifier"]);
}

/// The offset of the NTFS partition's $MFT on a raw disk made by `sample_disk`.
fn mft_offset(disk: &[u8]) -> usize {
    let start = reseal_testutil::ntfs_image::FIRST_PARTITION_START as usize;
    let boot = &disk[start..start + 512];
    let cluster = u16::from_le_bytes([boot[0x0B], boot[0x0C]]) as usize * boot[0x0D] as usize;
    start + u64::from_le_bytes(boot[0x30..0x38].try_into().unwrap()) as usize * cluster
}

#[test]
fn damaged_ntfs_is_exit_4_with_the_structure_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    let disk = sample_disk(dir.path(), Container::Raw);
    let pristine = fs::read(&disk).unwrap();
    let mft = mft_offset(&pristine);

    // $MFT record 0 marked bad by chkdsk.
    let mut bytes = pristine.clone();
    bytes[mft..mft + 4].copy_from_slice(b"BAAD");
    fs::write(&disk, &bytes).unwrap();
    assert_refused_as_corrupt(
        &disk,
        &["damaged NTFS MFT record 0 ($MFT)", "BAAD", "partition 1"],
    );

    // A boot sector whose OEM id is gone, the backup intact: not "no Windows installation".
    let mut bytes = pristine.clone();
    let boot = reseal_testutil::ntfs_image::FIRST_PARTITION_START as usize;
    bytes[boot + 3..boot + 11].copy_from_slice(b"XXXXXXXX");
    fs::write(&disk, &bytes).unwrap();
    assert_refused_as_corrupt(
        &disk,
        &["damaged NTFS boot sector", "OEM id", "backup boot sector"],
    );
}
