//! Volumes Windows has not left safe to edit are refused with a typed error, and the image
//! stays byte-identical.

mod common;

use std::fs;
use std::path::Path;

use common::*;
use reseal_ntfs::{Error, Volume};

const VOLUME_INFORMATION: u32 = 0x70;
const VOLUME_IS_DIRTY: u16 = 0x0001;

/// Sets the dirty flag in `$Volume`'s `$VOLUME_INFORMATION`, in `$MFT` and in `$MFTMirr`
/// (libntfs-3g refuses a mirror that differs), as Windows does when it schedules chkdsk.
fn mark_dirty(disk: &Path) {
    let image = fs::read(disk).unwrap();
    let part = &image[PARTITION_START as usize..];
    let le16 = |at: usize| u16::from_le_bytes([part[at], part[at + 1]]) as u64;
    let le64 = |at: usize| u64::from_le_bytes(part[at..at + 8].try_into().unwrap());
    let cluster = le16(0x0B) * u64::from(part[0x0D]);
    let per_record = part[0x40] as i8;
    let record_size = if per_record < 0 {
        1u64 << (-per_record)
    } else {
        per_record as u64 * cluster
    };
    for lcn in [le64(0x30), le64(0x38)] {
        let record = (lcn * cluster + 3 * record_size) as usize;
        assert_eq!(&part[record..record + 4], b"FILE");
        let mut attribute = record + le16(record + 0x14) as usize;
        loop {
            let kind = u32::from_le_bytes(part[attribute..attribute + 4].try_into().unwrap());
            assert_ne!(kind, 0xFFFF_FFFF, "$Volume has no volume information");
            let length = u32::from_le_bytes(part[attribute + 4..attribute + 8].try_into().unwrap());
            if kind == VOLUME_INFORMATION {
                let flags = attribute + le16(attribute + 0x14) as usize + 10;
                // The last two bytes of each sector belong to the update sequence array.
                assert!((flags - record) % 512 < 510);
                let old = le16(flags) as u16;
                write_at(
                    disk,
                    PARTITION_START + flags as u64,
                    &(old | VOLUME_IS_DIRTY).to_le_bytes(),
                );
                break;
            }
            attribute += length as usize;
        }
    }
}

/// Mounting writable fails with the error `check` accepts, and changes no byte.
fn assert_refused(disk: &Path, check: impl Fn(&Error) -> bool) {
    let before = fs::read(disk).unwrap();
    let error = match Volume::mount(open_partition(disk, true), true) {
        Ok(_) => panic!("a writable mount was allowed"),
        Err(error) => error,
    };
    assert!(check(&error), "unexpected error: {error}");
    assert!(
        error.to_string().contains(&disk.display().to_string()),
        "the error does not name the image: {error}"
    );
    assert!(
        fs::read(disk).unwrap() == before,
        "the refused mount changed the image"
    );
}

#[test]
fn a_hibernated_volume_is_refused_for_writing_and_readable() {
    let dir = tempfile::tempdir().unwrap();
    let mut hiberfil = b"HIBR".to_vec();
    hiberfil.extend(pattern(16_384, 7));
    let part = build_partition(
        dir.path(),
        &[FixtureFile {
            path: "hiberfil.sys",
            contents: hiberfil,
        }],
    );
    let disk = build_disk(dir.path(), &part, Container::Raw);
    assert_refused(&disk, |error| matches!(error, Error::Hibernated { .. }));
    assert!(Volume::mount(open_partition(&disk, true), true)
        .err()
        .unwrap()
        .to_string()
        .contains("Fast Startup"));
    let volume = Volume::mount(open_partition(&disk, false), false).unwrap();
    assert!(volume.state().hibernated);
    assert!(!volume.state().dirty);
    volume.unmount().unwrap();
}

#[test]
fn a_hiberfil_that_was_resumed_from_does_not_block_writing() {
    let dir = tempfile::tempdir().unwrap();
    let mut hiberfil = b"wake".to_vec();
    hiberfil.extend(vec![0; 8192]);
    let part = build_partition(
        dir.path(),
        &[FixtureFile {
            path: "hiberfil.sys",
            contents: hiberfil,
        }],
    );
    let disk = build_disk(dir.path(), &part, Container::Raw);
    let mut volume = Volume::mount(open_partition(&disk, true), true).unwrap();
    assert!(!volume.state().hibernated);
    volume.replace_file("readme.txt", b"ok").unwrap();
    volume.unmount().unwrap();
}

#[test]
fn a_volume_marked_dirty_is_refused_for_writing() {
    let dir = tempfile::tempdir().unwrap();
    let part = build_partition(dir.path(), &[]);
    let disk = build_disk(dir.path(), &part, Container::Raw);
    mark_dirty(&disk);
    assert_refused(&disk, |error| matches!(error, Error::Dirty { .. }));
    let volume = Volume::mount(open_partition(&disk, false), false).unwrap();
    assert!(volume.state().dirty);
    volume.unmount().unwrap();
}

#[test]
fn a_bitlocker_volume_is_refused_before_libntfs_3g_sees_it() {
    let dir = tempfile::tempdir().unwrap();
    let part = build_partition(dir.path(), &[]);
    let disk = build_disk(dir.path(), &part, Container::Raw);
    write_at(&disk, PARTITION_START + 3, b"-FVE-FS-");
    assert_refused(&disk, |error| matches!(error, Error::BitLocker { .. }));
    let read_only = Volume::mount(open_partition(&disk, false), false);
    assert!(matches!(read_only, Err(Error::BitLocker { .. })));
}

#[test]
fn a_partition_without_ntfs_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let part = dir.path().join("empty.img");
    fs::File::create(&part)
        .unwrap()
        .set_len(PARTITION_SIZE)
        .unwrap();
    let disk = build_disk(dir.path(), &part, Container::Raw);
    assert_refused(&disk, |error| matches!(error, Error::NotNtfs { .. }));
}

#[test]
fn reparse_points_are_neither_read_nor_replaced() {
    let dir = tempfile::tempdir().unwrap();
    // wimlib-imagex applies a captured symbolic link as an NTFS reparse point.
    fs::create_dir_all(dir.path().join("tree")).unwrap();
    std::os::unix::fs::symlink("readme.txt", dir.path().join("tree/link.txt")).unwrap();
    let part = build_partition(dir.path(), &[]);
    let disk = build_disk(dir.path(), &part, Container::Raw);
    let before = fs::read(&disk).unwrap();
    let mut volume = Volume::mount(open_partition(&disk, true), true).unwrap();
    assert_ne!(volume.file_attributes("link.txt").unwrap() & 0x0400, 0);
    let replace = volume.replace_file("link.txt", b"x").unwrap_err();
    assert!(matches!(replace, Error::Unsupported { .. }), "{replace}");
    assert!(replace.to_string().contains("0xa000000c"), "{replace}");
    let read = volume.read_file("link.txt").unwrap_err();
    assert!(matches!(read, Error::Unsupported { .. }), "{read}");
    volume.unmount().unwrap();
    assert!(
        fs::read(&disk).unwrap() == before,
        "a refused replace changed the image"
    );
}
