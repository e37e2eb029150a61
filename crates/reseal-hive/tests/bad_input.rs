//! Damaged input: truncated and mutated real hives, and hand-made corruptions (cycles, an `ri`
//! inside an `ri`, offsets out of range, absurd counts). Every case must end in a typed error or a
//! readable hive: never a panic, an endless loop or a huge allocation.

mod common;

use common::*;
use reseal_hive::{Error, Hive, Key, ValueType};

/// Visits every key and value, stopping at the first error or after `budget` keys.
fn walk(key: &Key<'_>, budget: &mut u32) -> reseal_hive::Result<()> {
    *budget = budget.saturating_sub(1);
    if *budget == 0 {
        return Ok(());
    }
    key.name()?;
    key.class_name()?;
    key.security_descriptor()?;
    for value in key.values()? {
        value.name()?;
        value.data()?;
    }
    for child in key.subkeys()? {
        walk(&child, budget)?;
    }
    Ok(())
}

fn walk_all(hive: &Hive) -> reseal_hive::Result<()> {
    walk(&hive.root()?, &mut u32::MAX.clone())
}

/// Everything a user might do with a hive that opened: read it all, check it, edit and commit.
fn exercise(bytes: Vec<u8>) {
    let Ok(mut hive) = Hive::from_bytes(bytes) else {
        return;
    };
    if let Ok(root) = hive.root() {
        let _ = walk(&root, &mut 100_000);
    }
    let _ = hive.check();
    let _ = hive.create_key("reseal-test\\sub");
    let _ = hive.set_value("reseal-test", "v", ValueType::BINARY, &[1; 20000]);
    if let Ok(Some(root)) = hive.key("") {
        let first = root
            .subkeys()
            .ok()
            .and_then(|k| k.first().and_then(|k| k.name().ok()));
        if let Some(first) = first {
            let _ = hive.rename_key(&first, "renamed");
            let _ = hive.delete_key("renamed");
        }
    }
    let _ = hive.delete_value("reseal-test", "v");
    let _ = hive.commit();
}

/// A small deterministic generator (xorshift), so failures reproduce.
struct Xorshift(u64);
impl Xorshift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

const SMALL_HIVES: &[&str] = &[
    "hives/nt-hive/testhive",
    "hives/regipy/SAM",
    "hives/yarp/BigDataHive",
    "hives/hivex/special",
];

#[test]
fn truncated_real_hives_never_panic() {
    for relative in SMALL_HIVES {
        let Some(bytes) = fixture_bytes(relative) else {
            continue;
        };
        let mut cuts: Vec<usize> = (0..bytes.len()).step_by(bytes.len() / 150 + 1).collect();
        cuts.extend([
            0,
            3,
            4095,
            4096,
            4097,
            4096 + 31,
            4096 + 4095,
            bytes.len() - 1,
        ]);
        for cut in cuts {
            let truncated = bytes[..cut].to_vec();
            // Bytes after the hive bins data (some files have slack there) are not needed.
            let needed = 4096 + u32::from_le_bytes(bytes[40..44].try_into().unwrap()) as usize;
            match Hive::from_bytes(truncated.clone()) {
                Ok(_) => assert!(cut >= needed, "{relative} cut at {cut} opened"),
                Err(e) => assert!(e.is_corrupt_input(), "{relative} cut at {cut}: {e}"),
            }
            exercise(truncated);
        }
    }
}

#[test]
fn mutated_real_hives_never_panic() {
    let mut random = Xorshift(0x9E37_79B9_7F4A_7C15);
    for relative in SMALL_HIVES {
        let Some(bytes) = fixture_bytes(relative) else {
            continue;
        };
        for _ in 0..600 {
            let mut mutated = bytes.clone();
            for _ in 0..1 + random.next() % 4 {
                // Mostly hit the bins, where the structures are; sometimes the base block.
                let at = (random.next() as usize) % mutated.len();
                let value = random.next();
                match value % 3 {
                    0 => mutated[at] ^= 0xFF,
                    1 => mutated[at] = value as u8 >> 2,
                    _ => {
                        // A whole little-endian word: sizes, counts and offsets.
                        let word = match (value >> 8) % 4 {
                            0 => 0xFFFF_FFFF,
                            1 => 0x7FFF_FFFF,
                            2 => 0x8000_0000,
                            _ => (value >> 32) as u32 % (bytes.len() as u32),
                        };
                        let at = at & !3;
                        if at + 4 <= mutated.len() {
                            mutated[at..at + 4].copy_from_slice(&word.to_le_bytes());
                        }
                    }
                }
            }
            exercise(mutated);
        }
    }
}

#[test]
fn real_hives_hivex_refuses_fail_cleanly() {
    for relative in [
        "hives/EricZimmerman/SAMBadHBinHeader",
        "hives/regf-samples/3.1/SOFTWARE",
    ] {
        let Some(bytes) = fixture_bytes(relative) else {
            continue;
        };
        let error = Hive::from_bytes(bytes).err().expect(relative);
        assert!(error.is_corrupt_input(), "{relative}: {error}");
    }
    for relative in [
        "hives/regipy/corrupted_system_hive",
        "hives/yarp/System_Delta",
    ] {
        if let Some(bytes) = fixture_bytes(relative) {
            exercise(bytes);
        }
    }
}

fn chain_hive() -> Vec<u8> {
    let mut hive = Hive::new_empty("ROOT", 5);
    hive.create_key("A\\B\\C").unwrap();
    hive.set_value("A", "v", ValueType::BINARY, &[5; 100])
        .unwrap();
    hive.commit()
}

#[test]
fn a_subkey_list_pointing_to_an_ancestor_is_an_error() {
    let mut bytes = chain_hive();
    let (a, c) = (key_node_offset(&bytes, "A"), key_node_offset(&bytes, "C"));
    let root_list = field(&bytes, field(&bytes, a, 16), 28);
    // C now lists A (through the root's list) as its subkey.
    put_u32(&mut bytes, c, 20, 1);
    put_u32(&mut bytes, c, 28, root_list);
    let mut hive = Hive::from_bytes(bytes.clone()).unwrap();
    let error = walk_all(&hive).unwrap_err();
    assert!(matches!(error, Error::Corrupt { .. }), "{error}");
    assert!(!hive.check().problems.is_empty());
    let error = hive.delete_key("A").unwrap_err();
    // C's list names A, whose parent field names the root: the loop is found before any change.
    assert!(error.to_string().contains("parent field"), "{error}");
    assert_eq!(hive.bytes(), &bytes[..], "nothing changed before the error");
    assert!(!hive.is_modified());
}

#[test]
fn an_index_root_inside_an_index_root_is_an_error() {
    let mut hive = Hive::new_empty("ROOT", 5);
    for i in 0..1200 {
        hive.create_key(&format!("K{i}")).unwrap();
    }
    let mut bytes = hive.commit();
    let (ri, _) = allocated_cells(&bytes)
        .into_iter()
        .find(|(_, cell)| &cell[4..6] == b"ri")
        .unwrap();
    put_u32(&mut bytes, ri, 4, ri);
    let hive = Hive::from_bytes(bytes).unwrap();
    let error = hive.root().unwrap().subkeys().err().unwrap();
    assert!(error.to_string().contains("index root"), "{error}");
    let expected_offset = 4096 + u64::from(ri);
    assert!(matches!(error, Error::Corrupt { offset, .. } if offset == expected_offset));
}

#[test]
fn offsets_out_of_range_and_absurd_counts_are_errors() {
    let bytes = chain_hive();
    let a = key_node_offset(&bytes, "A");
    let cases: &[(usize, u32, &str)] = &[
        (28, 0x7FFF_FFF0, "outside the hive bins"), // subkey list offset
        (28, 0x21, "not a cell boundary"),          // misaligned
        (20, u32::MAX, ""),                         // subkey count
        (36, u32::MAX, "value list"),               // value count
        (40, 0x7FFF_FFF0, "outside the hive bins"), // value list offset
        (44, 0x7FFF_FFF0, "outside the hive bins"), // security offset
    ];
    for &(at, value, message) in cases {
        let mut damaged = bytes.clone();
        put_u32(&mut damaged, a, at, value);
        let hive = Hive::from_bytes(damaged.clone()).unwrap();
        let result = walk_all(&hive);
        if message.is_empty() {
            // A wrong count with a good list is read from the list, as Windows does.
            assert!(result.is_ok());
        } else {
            let error = result.unwrap_err();
            assert!(error.to_string().contains(message), "field {at}: {error}");
            assert!(error.is_corrupt_input());
        }
        exercise(damaged);
    }
    // Value data larger than its cell.
    let mut damaged = bytes.clone();
    let vk = field(&bytes, field(&bytes, a, 40), 0);
    put_u32(&mut damaged, vk, 4, 0x7FFF_0000);
    let hive = Hive::from_bytes(damaged).unwrap();
    let error = hive.value("A", "v").unwrap().unwrap().data().unwrap_err();
    assert!(error.to_string().contains("does not fit"), "{error}");
}

#[test]
fn base_block_damage() {
    let bytes = chain_hive();
    let mut bad_checksum = bytes.clone();
    bad_checksum[508] ^= 1;
    let hive = Hive::from_bytes(bad_checksum).unwrap();
    assert!(hive.was_dirty(), "a bad checksum makes the hive dirty");
    let mut huge_bins = bytes.clone();
    huge_bins[40..44].copy_from_slice(&0x7FFF_F000u32.to_le_bytes());
    assert!(matches!(
        Hive::from_bytes(huge_bins),
        Err(Error::Truncated { .. })
    ));
    let mut bad_root = bytes.clone();
    bad_root[36..40].copy_from_slice(&0x10u32.to_le_bytes());
    let error = Hive::from_bytes(bad_root).err().unwrap();
    assert!(
        matches!(error, Error::Corrupt { offset: 0x1010, .. }),
        "{error}"
    );
    let mut log_file = bytes;
    log_file[28] = 6;
    assert!(matches!(
        Hive::from_bytes(log_file),
        Err(Error::Unsupported(_))
    ));
}

#[test]
fn big_data_segments_listed_twice_are_an_error() {
    let mut hive = Hive::new_empty("ROOT", 5);
    hive.create_key("A").unwrap();
    hive.set_value("A", "big", ValueType::BINARY, &[9; 40000])
        .unwrap();
    let mut bytes = hive.commit();
    let (db, cell) = allocated_cells(&bytes)
        .into_iter()
        .find(|(_, cell)| &cell[4..6] == b"db")
        .unwrap();
    let list = u32::from_le_bytes(cell[8..12].try_into().unwrap());
    let first = field(&bytes, list, 0);
    put_u32(&mut bytes, list, 4, first);
    let hive = Hive::from_bytes(bytes).unwrap();
    let error = hive.value("A", "big").unwrap().unwrap().data().unwrap_err();
    assert!(error.to_string().contains("listed twice"), "{error}");
    assert!(!hive.check().problems.is_empty(), "db at {db:#x}");
}
