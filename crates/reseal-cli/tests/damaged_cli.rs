//! Damaged disk images are refused with exit code 4, a message naming the image, the structure
//! and the reason, and the image left byte for byte as it was.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::{code, reseal, text};
use reseal_testutil::ntfs_image::{apply_wim, build_disk, make_volume, Container, Scheme};
use reseal_testutil::vhdx_log::{arm, LogEntry, Write};
use reseal_testutil::workspace_root;

fn sample_disk(dir: &Path, container: Container) -> PathBuf {
    let volume = dir.join("windows.img");
    make_volume(&volume, 64 << 20);
    apply_wim(&workspace_root().join("fixtures/sample.wim"), &volume);
    build_disk(dir, &[&volume], Scheme::Gpt, container)
}

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
