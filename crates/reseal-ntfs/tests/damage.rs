//! Damaged NTFS structures are refused with `Error::Damaged` naming the structure, its offset
//! and what is wrong, before libntfs-3g mounts anything; the image stays byte-identical.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::*;
use reseal_ntfs::{Error, Volume};

const DAMAGED_FILE: &str = "damaged.bin";

/// A change to the bytes of a disk, and a piece of the reason it must give.
type Damage<'a, T> = (Box<dyn Fn(&mut T) + 'a>, &'static str);

/// A raw GPT disk whose NTFS partition holds the fixture tree and `\damaged.bin`.
fn disk(dir: &Path) -> PathBuf {
    let part = build_partition(
        dir,
        &[FixtureFile {
            path: DAMAGED_FILE,
            contents: pattern(10_000, 5),
        }],
    );
    build_disk(dir, &part, Container::Raw)
}

/// Where the $MFT starts on the disk and how large its records are, from the boot sector.
fn mft(image: &[u8]) -> (usize, usize) {
    let boot = &image[PARTITION_START as usize..];
    let cluster = u16::from_le_bytes([boot[0x0B], boot[0x0C]]) as usize * boot[0x0D] as usize;
    let record_size = match boot[0x40] as i8 {
        shift if shift < 0 => 1 << -shift,
        clusters => clusters as usize * cluster,
    };
    let lcn = u64::from_le_bytes(boot[0x30..0x38].try_into().unwrap()) as usize;
    (PARTITION_START as usize + lcn * cluster, record_size)
}

/// Applies `damage` to a copy of `pristine` at `disk`, mounts it (read-only and writable) and
/// returns the error, checking that it is the same both times and changed nothing.
fn mount_error(disk: &Path, pristine: &[u8], damage: impl Fn(&mut Vec<u8>)) -> Error {
    let mut bytes = pristine.to_vec();
    damage(&mut bytes);
    fs::write(disk, &bytes).unwrap();
    let mut errors = Vec::new();
    for writable in [false, true] {
        match Volume::mount(open_partition(disk, writable), writable) {
            Ok(_) => panic!("a damaged volume was mounted"),
            Err(error) => errors.push(error),
        }
        assert!(fs::read(disk).unwrap() == bytes, "the refused mount wrote");
    }
    assert_eq!(errors[0].to_string(), errors[1].to_string());
    errors.remove(0)
}

fn assert_damaged(error: &Error, structure: &str, offset: Option<u64>, reason: &str) {
    match error {
        Error::Damaged {
            structure: found,
            offset: at,
            reason: why,
            ..
        } => {
            assert_eq!(*found, structure, "{error}");
            assert_eq!(*at, offset, "{error}");
            assert!(why.contains(reason), "{reason:?} in {error}");
        }
        other => panic!("expected damaged {structure}, got {other}"),
    }
}

#[test]
fn a_damaged_boot_sector_is_named_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let disk = disk(dir.path());
    let pristine = fs::read(&disk).unwrap();
    let boot = PARTITION_START as usize;
    let error = mount_error(&disk, &pristine, |b| {
        b[boot + 3..boot + 11].copy_from_slice(b"XXXXXXXX")
    });
    assert_damaged(
        &error,
        "boot sector",
        Some(0),
        "the backup boot sector at volume offset",
    );
    assert!(
        error.to_string().contains(&disk.display().to_string()),
        "{error}"
    );
    let cases: Vec<Damage<[u8]>> = vec![
        (Box::new(|s| s[11..13].fill(0)), "0 bytes per sector"),
        (Box::new(|s| s[13] = 3), "sectors per cluster is 0x03"),
        (Box::new(|s| s[0x30..0x38].fill(0xFF)), "the $MFT cluster"),
        (
            Box::new(|s| s[0x28..0x30].copy_from_slice(&u64::MAX.to_le_bytes())),
            "do not fit",
        ),
        (Box::new(|s| s[510] = 0), "end marker"),
    ];
    for (damage, reason) in cases {
        let error = mount_error(&disk, &pristine, |b| damage(&mut b[boot..boot + 512]));
        assert_damaged(&error, "boot sector", Some(0), reason);
    }
    // Without a valid backup, a foreign boot sector is just not NTFS.
    let size = PARTITION_SIZE as usize;
    let error = mount_error(&disk, &pristine, |b| {
        b[boot + 3..boot + 11].copy_from_slice(b"MSDOS5.0");
        b[boot + size - 512..boot + size].fill(0);
    });
    assert!(matches!(error, Error::NotNtfs { .. }), "{error}");
}

#[test]
fn a_damaged_mft_record_0_is_named_with_its_offset() {
    let dir = tempfile::tempdir().unwrap();
    let disk = disk(dir.path());
    let pristine = fs::read(&disk).unwrap();
    let (record, size) = mft(&pristine);
    let volume_offset = Some((record - PARTITION_START as usize) as u64);
    let first_attribute =
        record + u16::from_le_bytes([pristine[record + 0x14], pristine[record + 0x15]]) as usize;
    let structure = "MFT record 0 ($MFT)";
    let cases: Vec<Damage<Vec<u8>>> = vec![
        (
            Box::new(|b| b[record..record + 4].copy_from_slice(b"BAAD")),
            "chkdsk marked it bad",
        ),
        (
            Box::new(|b| b[record + 510] ^= 0xFF),
            "the fixup at offset 510",
        ),
        (
            Box::new(|b| b[first_attribute + 4..first_attribute + 8].fill(0)),
            "has length 0",
        ),
        (
            Box::new(|b| {
                b[first_attribute + 4..first_attribute + 8]
                    .copy_from_slice(&0x7000_0000u32.to_le_bytes())
            }),
            "has length 1879048192",
        ),
        (
            Box::new(|b| {
                let garbage = pattern(size, 9);
                b[record..record + size].copy_from_slice(&garbage);
            }),
            "not FILE",
        ),
    ];
    for (damage, reason) in cases {
        let error = mount_error(&disk, &pristine, damage);
        assert_damaged(&error, structure, volume_offset, reason);
    }
}

/// Damage libntfs-3g finds itself, in a record reseal does not check before mounting, is
/// still damage (not a failing device).
#[test]
fn a_damaged_file_record_is_damage_not_an_io_error() {
    let dir = tempfile::tempdir().unwrap();
    let disk = disk(dir.path());
    let pristine = fs::read(&disk).unwrap();
    let (mft, size) = mft(&pristine);
    let name: Vec<u8> = DAMAGED_FILE
        .encode_utf16()
        .flat_map(|unit| unit.to_le_bytes())
        .collect();
    let record = (16..4096)
        .map(|number| mft + number * size)
        .find(|&at| {
            pristine[at..at + 4] == *b"FILE"
                && pristine[at..at + size]
                    .windows(name.len())
                    .any(|w| w == name)
        })
        .expect("the file's record");
    let mut bytes = pristine.clone();
    bytes[record + 510] ^= 0xFF;
    fs::write(&disk, &bytes).unwrap();
    let volume = Volume::mount(open_partition(&disk, false), false).unwrap();
    let error = volume.read_file(DAMAGED_FILE).unwrap_err();
    assert_damaged(&error, "file system", None, "damaged");
    assert!(error.to_string().contains(DAMAGED_FILE), "{error}");
    // The intact volume reads it (the control).
    fs::write(&disk, &pristine).unwrap();
    let volume = Volume::mount(open_partition(&disk, false), false).unwrap();
    assert_eq!(
        volume.read_file(DAMAGED_FILE).unwrap(),
        Some(pattern(10_000, 5))
    );
}
