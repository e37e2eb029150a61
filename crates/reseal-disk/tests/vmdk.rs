//! VMDK disks made by qemu-img in every subformat, read and written, against qemu.

mod common;

use common::*;
use reseal_disk::vmdk::Vmdk;
use reseal_disk::{open, open_file, open_image, open_writable, BlockDevice, Error, Format};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The subformats qemu writes, and whether reseal writes them in place.
const SUBFORMATS: [(&str, bool); 5] = [
    ("monolithicSparse", true),
    ("monolithicFlat", true),
    ("twoGbMaxExtentSparse", true),
    ("twoGbMaxExtentFlat", true),
    ("streamOptimized", false),
];

fn make_vmdk(dir: &Path, raw: &Path, options: &str, name: &str) -> PathBuf {
    let image = dir.join(format!("{name}.vmdk"));
    qemu_convert(raw, "raw", &image, "vmdk", options);
    image
}

/// `qemu-img check`: fails the test when qemu reports an error.
fn assert_check_clean(image: &Path, what: &str) {
    let output = Command::new("qemu-img")
        .args(["check", "-f", "vmdk", path_str(image)])
        .output()
        .expect("qemu-img runs");
    let report = String::from_utf8_lossy(&output.stdout).to_string()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && report.contains("No errors were found"),
        "{what}: qemu-img check:\n{report}"
    );
}

fn qemu_compare(image: &Path, raw: &Path) -> bool {
    Command::new("qemu-img")
        .args([
            "compare",
            "-f",
            "vmdk",
            "-F",
            "raw",
            path_str(image),
            path_str(raw),
        ])
        .status()
        .expect("qemu-img runs")
        .success()
}

/// Into allocated data, into the unallocated zeros after it, across a grain boundary, and at
/// the very end of the disk.
fn writes(len: u64) -> Vec<(u64, Vec<u8>)> {
    vec![
        ((1 << 20) + 100, pseudo_random(5000, 1)),
        ((7 << 20) + 4096, pseudo_random(4096, 2)),
        ((11 << 20) - 700, pseudo_random(70_000, 3)),
        (len - 512, pseudo_random(512, 4)),
    ]
}

fn apply(expected: &mut [u8], writes: &[(u64, Vec<u8>)]) {
    for (offset, data) in writes {
        expected[*offset as usize..*offset as usize + data.len()].copy_from_slice(data);
    }
}

fn cid_of(image: &Path) -> u32 {
    Vmdk::open(image, false).unwrap().cid().unwrap()
}

#[test]
fn reads_equal_the_raw_disk_for_every_subformat() {
    let dir = tempfile::tempdir().unwrap();
    let raw = gpt_raw_disk(dir.path(), 24, 20, 41);
    let raw_bytes = std::fs::read(&raw).unwrap();
    let mut images: Vec<(PathBuf, String)> = SUBFORMATS
        .iter()
        .map(|(subformat, _)| {
            let options = format!("subformat={subformat}");
            (
                make_vmdk(dir.path(), &raw, &options, subformat),
                subformat.to_string(),
            )
        })
        .collect();
    for (options, name) in [
        ("subformat=monolithicSparse,zeroed_grain=on", "zeroed-grain"),
        ("subformat=monolithicSparse,compat6=on", "version-3"),
        (
            "subformat=streamOptimized,adapter_type=lsilogic",
            "stream-lsilogic",
        ),
    ] {
        images.push((make_vmdk(dir.path(), &raw, options, name), name.to_string()));
    }
    for (image, name) in images {
        let opened = open_image(&image).unwrap();
        assert_eq!(opened.format, Format::Vmdk, "{name}");
        let mut disk = opened.device;
        assert_eq!(disk.len(), raw_bytes.len() as u64, "{name}");
        assert!(
            read_all(&mut *disk) == raw_bytes,
            "{name}: reads equal the raw disk"
        );
        assert!(
            qemu_read_raw(&image, "vmdk") == raw_bytes,
            "{name}: qemu agrees"
        );
    }
}

#[test]
fn zero_grains_read_as_zeros() {
    let dir = tempfile::tempdir().unwrap();
    let raw = gpt_raw_disk(dir.path(), 24, 20, 42);
    let image = make_vmdk(
        dir.path(),
        &raw,
        "subformat=monolithicSparse,zeroed_grain=on",
        "zg",
    );
    run(
        "qemu-io",
        &["-f", "vmdk", "-c", "write -z 1M 128k", path_str(&image)],
    );
    let expected = qemu_read_raw(&image, "vmdk");
    assert!(expected[1 << 20..(1 << 20) + 131072]
        .iter()
        .all(|&b| b == 0));
    assert!(read_all(&mut *open(&image).unwrap()) == expected);
}

#[test]
fn writes_pass_qemu_check_and_compare_and_change_the_cid() {
    let dir = tempfile::tempdir().unwrap();
    let raw = gpt_raw_disk(dir.path(), 24, 20, 43);
    let raw_bytes = std::fs::read(&raw).unwrap();
    let writes = writes(raw_bytes.len() as u64);
    let mut expected = raw_bytes.clone();
    apply(&mut expected, &writes);
    let expected_raw = dir.path().join("expected.raw");
    std::fs::write(&expected_raw, &expected).unwrap();
    for (subformat, writable) in SUBFORMATS {
        let image = make_vmdk(
            dir.path(),
            &raw,
            &format!("subformat={subformat}"),
            subformat,
        );
        if !writable {
            continue;
        }
        let cid_before = cid_of(&image);
        let descriptor_len = std::fs::metadata(&image).unwrap().len();
        {
            let mut disk = open_writable(&image).unwrap();
            for (offset, data) in &writes {
                disk.write_at(*offset, data).unwrap();
            }
            disk.flush().unwrap();
            assert!(
                read_all(&mut *disk) == expected,
                "{subformat}: our reads see the writes"
            );
        }
        assert_check_clean(&image, subformat);
        assert!(
            qemu_compare(&image, &expected_raw),
            "{subformat}: qemu-img compare"
        );
        assert_ne!(cid_of(&image), cid_before, "{subformat}: a new CID");
        if subformat.ends_with("Flat") || subformat == "twoGbMaxExtentSparse" {
            assert_eq!(
                std::fs::metadata(&image).unwrap().len(),
                descriptor_len,
                "{subformat}: the descriptor keeps its length"
            );
        }
    }
}

#[test]
fn the_redundant_grain_tables_stay_equal_to_the_primary_ones() {
    let dir = tempfile::tempdir().unwrap();
    let raw = gpt_raw_disk(dir.path(), 24, 20, 44);
    let image = make_vmdk(dir.path(), &raw, "subformat=monolithicSparse", "rgd");
    {
        let mut disk = open_writable(&image).unwrap();
        for (offset, data) in writes(24 << 20) {
            disk.write_at(offset, &data).unwrap();
        }
    }
    let bytes = std::fs::read(&image).unwrap();
    let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
    let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap()) as usize;
    let (rgd, gd, per_table) = (u64_at(48) * 512, u64_at(56) * 512, u32_at(44));
    let tables = (u64_at(12) * 512).div_ceil(per_table * u64_at(20) * 512);
    let mut allocated = 0;
    for table in 0..tables {
        let (primary, redundant) = (u32_at(gd + 4 * table) * 512, u32_at(rgd + 4 * table) * 512);
        assert_eq!(
            bytes[primary..primary + 4 * per_table],
            bytes[redundant..redundant + 4 * per_table],
            "grain table {table}"
        );
        allocated += (0..per_table)
            .filter(|&i| u32_at(primary + 4 * i) != 0)
            .count();
    }
    assert!(allocated > 0);
}

#[test]
fn stream_optimized_disks_are_refused_for_writing_and_left_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let raw = gpt_raw_disk(dir.path(), 8, 4, 45);
    let image = make_vmdk(dir.path(), &raw, "subformat=streamOptimized", "stream");
    let before = std::fs::read(&image).unwrap();
    let error = open_writable(&image).err().expect("refused");
    assert!(matches!(error, Error::Unsupported { .. }), "{error}");
    assert!(error.to_string().contains("streamOptimized"), "{error}");
    assert!(std::fs::read(&image).unwrap() == before);
}

#[test]
fn a_child_reads_through_its_parent_and_writes_only_itself() {
    let dir = tempfile::tempdir().unwrap();
    let raw = gpt_raw_disk(dir.path(), 24, 20, 46);
    let base = make_vmdk(dir.path(), &raw, "subformat=monolithicSparse", "base");
    let sub = dir.path().join("sub");
    std::fs::create_dir(&sub).unwrap();
    // base <- middle (absolute hint) <- top (relative hint, in another directory)
    let middle = dir.path().join("middle.vmdk");
    run(
        "qemu-img",
        &[
            "create",
            "-f",
            "vmdk",
            "-b",
            path_str(&base),
            "-F",
            "vmdk",
            path_str(&middle),
        ],
    );
    run(
        "qemu-io",
        &[
            "-f",
            "vmdk",
            "-c",
            "write -P 0x33 2M 64k",
            path_str(&middle),
        ],
    );
    let top = sub.join("top.vmdk");
    run(
        "qemu-img",
        &[
            "create",
            "-f",
            "vmdk",
            "-b",
            "../middle.vmdk",
            "-F",
            "vmdk",
            path_str(&top),
        ],
    );
    let base_before = std::fs::read(&base).unwrap();
    let middle_before = std::fs::read(&middle).unwrap();
    let expected_before = qemu_read_raw(&top, "vmdk");
    let opened = Vmdk::open(&top, false).unwrap();
    assert_eq!(opened.parent_link().unwrap().recorded, "../middle.vmdk");
    drop(opened);
    assert!(
        read_all(&mut *open(&top).unwrap()) == expected_before,
        "chain reads"
    );
    let writes = writes(expected_before.len() as u64);
    let mut expected = expected_before.clone();
    apply(&mut expected, &writes);
    {
        let mut disk = open_writable(&top).unwrap();
        for (offset, data) in &writes {
            disk.write_at(*offset, data).unwrap();
        }
        disk.flush().unwrap();
    }
    assert_check_clean(&top, "top");
    assert!(
        qemu_read_raw(&top, "vmdk") == expected,
        "qemu reads the writes"
    );
    assert!(
        std::fs::read(&base).unwrap() == base_before,
        "base untouched"
    );
    assert!(
        std::fs::read(&middle).unwrap() == middle_before,
        "middle untouched"
    );
}

#[test]
fn a_parent_whose_cid_changed_is_refused_with_both_values() {
    let dir = tempfile::tempdir().unwrap();
    let raw = gpt_raw_disk(dir.path(), 8, 4, 47);
    let base = make_vmdk(dir.path(), &raw, "subformat=monolithicSparse", "base");
    let child = dir.path().join("child.vmdk");
    run(
        "qemu-img",
        &[
            "create",
            "-f",
            "vmdk",
            "-b",
            "base.vmdk",
            "-F",
            "vmdk",
            path_str(&child),
        ],
    );
    let recorded = cid_of(&base);
    open_writable(&base).unwrap().write_at(0, &[1]).unwrap();
    let changed = cid_of(&base);
    match open(&child) {
        Err(error @ Error::ParentMismatch { .. }) => {
            let text = error.to_string();
            assert!(text.contains(&format!("{recorded:08x}")), "{text}");
            assert!(text.contains(&format!("{changed:08x}")), "{text}");
        }
        other => panic!("expected a parent mismatch, got {:?}", other.err()),
    }

    std::fs::remove_file(&base).unwrap();
    match open(&child) {
        Err(Error::MissingParent { parent_name, .. }) => assert_eq!(parent_name, "base.vmdk"),
        other => panic!("expected a missing parent, got {:?}", other.err()),
    }
}

#[test]
fn refusals_name_the_kind() {
    let dir = tempfile::tempdir().unwrap();
    let raw = gpt_raw_disk(dir.path(), 8, 4, 48);
    let image = make_vmdk(dir.path(), &raw, "subformat=monolithicFlat", "flat");
    let text = std::fs::read_to_string(&image).unwrap();
    for kind in ["vmfsSparse", "vmfsThin", "seSparse", "vmfsRDM", "custom"] {
        let named = dir.path().join(format!("{kind}.vmdk"));
        std::fs::write(&named, text.replace("monolithicFlat", kind)).unwrap();
        match open(&named) {
            Err(error @ Error::Unsupported { .. }) => {
                assert!(error.to_string().contains(kind), "{error}")
            }
            other => panic!("{kind}: expected a refusal, got {:?}", other.err()),
        }
    }
    let vmfs_extent = dir.path().join("vmfs-extent.vmdk");
    std::fs::write(&vmfs_extent, text.replace(" FLAT ", " VMFS ")).unwrap();
    assert!(open(&vmfs_extent)
        .err()
        .unwrap()
        .to_string()
        .contains("VMFS"));

    let truncated = dir.path().join("truncated.vmdk");
    std::fs::write(&truncated, text.replace("RW 16384 FLAT", "RW 32768 FLAT")).unwrap();
    assert_ne!(std::fs::read_to_string(&truncated).unwrap(), text);
    assert!(matches!(open(&truncated), Err(Error::Corrupt { .. })));

    let named = dir.path().join("not.vmdk");
    std::fs::write(&named, vec![0u8; 4096]).unwrap();
    assert!(matches!(open(&named), Err(Error::Corrupt { .. })));
}

#[test]
fn a_crash_at_any_write_of_an_allocation_leaves_old_or_new_data() {
    let dir = tempfile::tempdir().unwrap();
    let raw = gpt_raw_disk(dir.path(), 12, 10, 49);
    let raw_bytes = std::fs::read(&raw).unwrap();
    // Into allocated data, then across a grain boundary into grains the disk does not have.
    let writes = vec![
        ((1 << 20) + 100, pseudo_random(3000, 5)),
        ((7 << 20) - 300, pseudo_random(1000, 6)),
        ((10 << 20) + 512, pseudo_random(70_000, 7)),
    ];
    for (options, name) in [
        ("subformat=monolithicSparse", "sparse"),
        ("subformat=monolithicSparse,zeroed_grain=on", "zeroed-grain"),
    ] {
        let pristine = make_vmdk(dir.path(), &raw, options, name);
        let grain = 64 << 10;
        let mut allowed = 0;
        loop {
            let image = dir.path().join(format!("{name}-crash.vmdk"));
            std::fs::copy(&pristine, &image).unwrap();
            let file = FailingFile::new(&image, allowed, true);
            let mut disk = open_file(Box::new(file)).unwrap();
            let mut completed = 0;
            let mut crashed = false;
            for (offset, data) in &writes {
                match disk.write_at(*offset, data) {
                    Ok(()) => completed += 1,
                    Err(_) => {
                        crashed = true;
                        break;
                    }
                }
            }
            drop(disk);
            assert_check_clean(&image, &format!("{name}: crash after {allowed} writes"));
            let after = read_all(&mut *open(&image).unwrap());
            assert!(
                qemu_read_raw(&image, "vmdk") == after,
                "{name}: qemu and we agree"
            );
            let mut old = raw_bytes.clone();
            apply(&mut old, &writes[..completed]);
            if crashed {
                let mut new = old.clone();
                apply(&mut new, &writes[completed..completed + 1]);
                let (offset, data) = &writes[completed];
                let range = *offset as usize..*offset as usize + data.len();
                // Each sector of the interrupted write holds its old or its new bytes, and
                // each newly allocated grain all old or all new.
                let mut position = range.start;
                while position < range.end {
                    let end = ((position / grain + 1) * grain).min(range.end);
                    let piece = &after[position..end];
                    assert!(
                        piece == &old[position..end] || piece == &new[position..end] || {
                            (position..end).step_by(512).all(|s| {
                                let e = (s / 512 * 512 + 512).min(end);
                                after[s..e] == old[s..e] || after[s..e] == new[s..e]
                            })
                        },
                        "{name}: crash after {allowed} writes: bytes {position}..{end} are neither old nor new"
                    );
                    position = end;
                }
                assert!(
                    after[..range.start] == old[..range.start],
                    "{name}: before the write"
                );
                assert!(
                    after[range.end..] == old[range.end..],
                    "{name}: after the write"
                );
            } else {
                assert!(after == old, "{name}: every write done");
                break;
            }
            allowed += 1;
        }
        assert!(
            allowed > 5,
            "{name}: the writes allocated ({allowed} file writes)"
        );
    }
}

/// Clears grain directory entry `table` (and its redundant copy) of a monolithicSparse VMDK,
/// as writers that make grain tables only when first needed leave it; the table must map no
/// grain, so the disk reads the same.
fn clear_directory_entry(image: &Path, table: usize) {
    let mut bytes = std::fs::read(image).unwrap();
    let u32_at = |b: &[u8], at: usize| u32::from_le_bytes(b[at..at + 4].try_into().unwrap());
    let u64_at = |b: &[u8], at: usize| u64::from_le_bytes(b[at..at + 8].try_into().unwrap());
    let per_table = u32_at(&bytes, 44) as usize;
    for directory in [u64_at(&bytes, 48), u64_at(&bytes, 56)] {
        let entry = directory as usize * 512 + 4 * table;
        let table_at = u32_at(&bytes, entry) as usize * 512;
        assert!(table_at != 0, "qemu made grain table {table}");
        assert!(bytes[table_at..table_at + 4 * per_table]
            .iter()
            .all(|&b| b == 0));
        bytes[entry..entry + 4].fill(0);
    }
    std::fs::write(image, &bytes).unwrap();
}

#[test]
fn a_write_where_the_grain_directory_has_no_table_adds_one() {
    let dir = tempfile::tempdir().unwrap();
    // 96 MiB: grain tables of 32 MiB each; the data (and so the grains) lie in the first one
    // and at the very end (the backup GPT), so the middle table maps nothing.
    let raw = gpt_raw_disk(dir.path(), 96, 20, 51);
    let raw_bytes = std::fs::read(&raw).unwrap();
    let pristine = make_vmdk(dir.path(), &raw, "subformat=monolithicSparse", "no-table");
    clear_directory_entry(&pristine, 1);
    assert_check_clean(&pristine, "the cleared entry");
    assert!(qemu_read_raw(&pristine, "vmdk") == raw_bytes);
    let writes = vec![((40 << 20) - 300, pseudo_random(70_000, 8))];
    let mut expected = raw_bytes.clone();
    apply(&mut expected, &writes);
    let expected_raw = dir.path().join("expected.raw");
    std::fs::write(&expected_raw, &expected).unwrap();
    let mut allowed = 0;
    loop {
        let image = dir.path().join("no-table-crash.vmdk");
        std::fs::copy(&pristine, &image).unwrap();
        let mut disk = open_file(Box::new(FailingFile::new(&image, allowed, true))).unwrap();
        let crashed = writes
            .iter()
            .any(|(offset, data)| disk.write_at(*offset, data).is_err());
        drop(disk);
        let what = format!("crash after {allowed} writes");
        assert_check_clean(&image, &what);
        let after = qemu_read_raw(&image, "vmdk");
        assert!(
            read_all(&mut *open(&image).unwrap()) == after,
            "{what}: qemu and we agree"
        );
        if !crashed {
            assert!(after == expected, "every write done");
            assert!(qemu_compare(&image, &expected_raw));
            let bytes = std::fs::read(&image).unwrap();
            let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
            let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap());
            let (primary, redundant) = (
                u32_at(u64_at(56) as usize * 512 + 4) as usize * 512,
                u32_at(u64_at(48) as usize * 512 + 4) as usize * 512,
            );
            assert!(primary != 0 && redundant != 0 && primary != redundant);
            assert_eq!(
                bytes[primary..primary + 2048],
                bytes[redundant..redundant + 2048]
            );
            break;
        }
        assert!(allowed < 100, "the write never completed");
        // Each new grain holds all old (zeros) or all new bytes; nothing else changes.
        for grain in after
            .chunks(64 << 10)
            .zip(expected.chunks(64 << 10))
            .zip(raw_bytes.chunks(64 << 10))
        {
            let ((after, new), old) = grain;
            assert!(
                after == old || after == new,
                "{what}: a grain neither old nor new"
            );
        }
        allowed += 1;
    }
    // Two tables (primary and redundant), then the grains and their entries.
    assert!(allowed > 6, "the write made tables ({allowed} file writes)");
}

fn set_u32(image: &Path, at: u64, value: u32) {
    reseal_testutil::ntfs_image::write_at(image, at, &value.to_le_bytes());
}

/// The refusal of opening `image` for writing (or of a write, if it opens).
fn write_refusal(image: &Path) -> Error {
    match open_writable(image) {
        Err(error) => error,
        Ok(mut disk) => disk
            .write_at(4096, &[0xEE; 8192])
            .expect_err("the write is refused"),
    }
}

#[test]
fn grains_over_the_metadata_or_another_grain_are_refused_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let pristine = dir.path().join("pristine.vmdk");
    run(
        "qemu-img",
        &["create", "-f", "vmdk", path_str(&pristine), "8M"],
    );
    run(
        "qemu-io",
        &[
            "-f",
            "vmdk",
            "-c",
            "write -P 0x5a 0 128k",
            path_str(&pristine),
        ],
    );
    let bytes = std::fs::read(&pristine).unwrap();
    let u32_at =
        |at: u64| u32::from_le_bytes(bytes[at as usize..at as usize + 4].try_into().unwrap());
    let u64_at =
        |at: u64| u64::from_le_bytes(bytes[at as usize..at as usize + 8].try_into().unwrap());
    assert_eq!(u32_at(8) & 4, 0, "qemu sets no zero-grain flag");
    let (rgd, gd) = (u64_at(48), u64_at(56));
    let table = u64::from(u32_at(gd * 512));
    let first_grain = u32_at(table * 512);
    assert!(
        first_grain != 0 && u32_at(table * 512 + 8) == 0,
        "grains 0 and 1 only"
    );

    // (what, grain table entry, its new value, what the refusal names)
    let cases = [
        ("sector 1", 0, 1, "embedded descriptor at sectors 1..".to_string()),
        ("the grain table", 0, table as u32, format!("grain table at sectors {table}..")),
        ("the grain directory", 0, gd as u32, format!("the grain directory at sectors {gd}..")),
        (
            "the redundant directory",
            0,
            rgd as u32,
            format!("redundant grain directory at sectors {rgd}.."),
        ),
        (
            "a cross-linked grain",
            2,
            first_grain,
            format!("grain 0 is at sector {first_grain} and so overlaps grain 2 at sector {first_grain}"),
        ),
    ];
    for (name, entry, value, expected) in cases {
        let image = dir.path().join("patched.vmdk");
        std::fs::copy(&pristine, &image).unwrap();
        set_u32(&image, table * 512 + 4 * entry, value);
        let before = std::fs::read(&image).unwrap();
        let check_before = qemu_check_report(&image, "vmdk");
        match write_refusal(&image) {
            Error::Corrupt {
                path,
                structure,
                reason,
            } => {
                assert_eq!(path, image, "{name}");
                assert_eq!(structure, "VMDK grain table", "{name}");
                assert!(reason.contains(&expected), "{name}: {reason}");
            }
            other => panic!("{name}: expected a corrupt grain table, got {other}"),
        }
        assert!(
            std::fs::read(&image).unwrap() == before,
            "{name}: unchanged"
        );
        assert_eq!(qemu_check_report(&image, "vmdk"), check_before, "{name}");
    }

    // With the zero-grain flag, an entry of 1 is a zero grain, not sector 1: written as a new
    // grain, and qemu agrees.
    let zero = dir.path().join("zero-grain.vmdk");
    std::fs::copy(&pristine, &zero).unwrap();
    set_u32(&zero, 8, u32_at(8) | 4);
    set_u32(&zero, table * 512 + 4 * 4, 1);
    {
        let mut disk = open_writable(&zero).unwrap();
        disk.write_at(4 << 16, &[0xEE; 8192]).unwrap();
        disk.write_at(4096, &[0xEE; 8192]).unwrap();
        disk.flush().unwrap();
    }
    assert_check_clean(&zero, "zero grain written");
    let mut expected = vec![0u8; 8 << 20];
    expected[..128 << 10].fill(0x5a);
    expected[4096..4096 + 8192].fill(0xEE);
    expected[4 << 16..(4 << 16) + 8192].fill(0xEE);
    assert!(qemu_read_raw(&zero, "vmdk") == expected);
}

/// Moves the grain directory of `image` behind a footer, as VMware's streaming writers leave
/// it: gdOffset GD_AT_END in the header, and a footer marker, the header with the real
/// gdOffset, and the end-of-stream marker at the end.
fn move_directory_to_footer(image: &Path) {
    let mut bytes = std::fs::read(image).unwrap();
    let header = bytes[..512].to_vec();
    bytes.resize(bytes.len().div_ceil(512) * 512, 0);
    let mut marker = vec![0u8; 512];
    marker[..8].copy_from_slice(&1u64.to_le_bytes());
    marker[12..16].copy_from_slice(&3u32.to_le_bytes());
    bytes.extend_from_slice(&marker);
    bytes.extend_from_slice(&header);
    bytes.extend_from_slice(&[0u8; 512]);
    bytes[56..64].copy_from_slice(&u64::MAX.to_le_bytes());
    std::fs::write(image, &bytes).unwrap();
}

/// Gives `image`'s descriptor (a descriptor file, or the one embedded in a sparse extent)
/// the CID `digits`, which is one digit wider than qemu's eight.
fn set_wide_cid(image: &Path, digits: &str) {
    let mut bytes = std::fs::read(image).unwrap();
    let at = bytes
        .windows(5)
        .position(|window| window == b"\nCID=")
        .expect("a CID line")
        + 5;
    assert_eq!(bytes[at + 8], b'\n', "qemu writes eight digits");
    bytes.splice(at..at + 8, digits.bytes());
    if bytes.starts_with(b"KDMV") {
        // The embedded descriptor keeps its sectors: one byte of its padding goes.
        let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap());
        let end = ((u64_at(28) + u64_at(36)) * 512) as usize;
        assert_eq!(bytes.remove(end), 0, "padding after the descriptor");
    }
    std::fs::write(image, &bytes).unwrap();
}

#[test]
fn a_cid_wider_than_eight_digits_is_rewritten_whole_and_keeps_its_width() {
    let dir = tempfile::tempdir().unwrap();
    let raw = gpt_raw_disk(dir.path(), 8, 4, 55);
    let mut expected = std::fs::read(&raw).unwrap();
    let data = pseudo_random(5000, 9);
    expected[(1 << 20) + 100..(1 << 20) + 5100].copy_from_slice(&data);
    for subformat in ["monolithicSparse", "monolithicFlat"] {
        let image = make_vmdk(
            dir.path(),
            &raw,
            &format!("subformat={subformat}"),
            subformat,
        );
        set_wide_cid(&image, "0fffffffe");
        assert_eq!(cid_of(&image), 0xffff_fffe, "{subformat}: read whole");
        let length = std::fs::metadata(&image).unwrap().len();
        {
            let mut disk = open_writable(&image).unwrap();
            disk.write_at((1 << 20) + 100, &data).unwrap();
            disk.flush().unwrap();
        }
        let cid = Vmdk::open(&image, false)
            .unwrap_or_else(|error| panic!("{subformat}: reopened: {error}"))
            .cid()
            .unwrap();
        assert_ne!(cid, 0xffff_fffe, "{subformat}: a new CID");
        let text = String::from_utf8_lossy(&std::fs::read(&image).unwrap()).into_owned();
        assert!(
            text.contains(&format!("CID={cid:09x}\n")),
            "{subformat}: nine digits, the old width"
        );
        if subformat == "monolithicFlat" {
            assert_eq!(std::fs::metadata(&image).unwrap().len(), length);
        }
        assert_check_clean(&image, subformat);
        assert!(
            qemu_read_raw(&image, "vmdk") == expected,
            "{subformat}: qemu reads the write"
        );
    }
}

#[test]
fn a_grain_directory_found_through_the_footer_reads_as_qemu_reads_it() {
    let dir = tempfile::tempdir().unwrap();
    let raw = gpt_raw_disk(dir.path(), 8, 4, 50);
    let image = make_vmdk(dir.path(), &raw, "subformat=streamOptimized", "footer");
    move_directory_to_footer(&image);
    let expected = std::fs::read(&raw).unwrap();
    assert!(
        qemu_read_raw(&image, "vmdk") == expected,
        "qemu reads the footer"
    );
    assert!(
        read_all(&mut *open(&image).unwrap()) == expected,
        "so do we"
    );
}

#[test]
fn an_uncompressed_disk_with_its_directory_in_the_footer_is_refused_for_writing() {
    let dir = tempfile::tempdir().unwrap();
    let raw = gpt_raw_disk(dir.path(), 8, 4, 54);
    let image = make_vmdk(dir.path(), &raw, "subformat=monolithicSparse", "footer");
    move_directory_to_footer(&image);
    let expected = std::fs::read(&raw).unwrap();
    assert!(
        qemu_read_raw(&image, "vmdk") == expected,
        "qemu reads the footer"
    );
    let before = std::fs::read(&image).unwrap();
    let check_before = qemu_check_report(&image, "vmdk");
    let error = write_refusal(&image);
    assert!(matches!(error, Error::Unsupported { .. }), "{error}");
    let text = error.to_string();
    assert!(
        text.contains("footer.vmdk") && text.contains("GD_AT_END") && text.contains("footer"),
        "{text}"
    );
    assert!(std::fs::read(&image).unwrap() == before, "unchanged");
    assert_eq!(qemu_check_report(&image, "vmdk"), check_before);
    assert!(
        read_all(&mut *open(&image).unwrap()) == expected,
        "still read"
    );
}

#[test]
fn a_new_child_over_the_open_disk_holds_only_the_writes() {
    let dir = tempfile::tempdir().unwrap();
    let raw = gpt_raw_disk(dir.path(), 24, 20, 53);
    let raw_bytes = std::fs::read(&raw).unwrap();
    let writes = writes(raw_bytes.len() as u64);
    let mut expected = raw_bytes.clone();
    apply(&mut expected, &writes);
    let expected_raw = dir.path().join("expected.raw");
    std::fs::write(&expected_raw, &expected).unwrap();
    for subformat in ["monolithicSparse", "twoGbMaxExtentFlat", "streamOptimized"] {
        let image = make_vmdk(
            dir.path(),
            &raw,
            &format!("subformat={subformat}"),
            subformat,
        );
        let before = std::fs::read(&image).unwrap();
        let opened = open_image(&image).unwrap();
        let record = opened.parent_record.expect("a VMDK can be a parent");
        assert_eq!(record.format(), Format::Vmdk);
        let child = dir.path().join(format!("{subformat}-child.vmdk"));
        // Made under a temporary name, as the disk target does, then linked to its own.
        let partial = dir
            .path()
            .join(format!("{subformat}-child.vmdk.reseal-partial"));
        {
            let mut device = reseal_disk::differencing::create_child(
                &record,
                &image,
                opened.device,
                &partial,
                reseal_disk::Entropy::default(),
            )
            .unwrap();
            for (offset, data) in &writes {
                device.write_at(*offset, data).unwrap();
            }
            device.flush().unwrap();
            assert!(
                read_all(&mut *device) == expected,
                "{subformat}: reads through"
            );
        }
        std::fs::rename(&partial, &child).unwrap();
        assert!(
            std::fs::read(&image).unwrap() == before,
            "{subformat}: parent untouched"
        );
        assert_check_clean(&child, subformat);
        assert!(
            qemu_compare(&child, &expected_raw),
            "{subformat}: qemu-img compare"
        );
        assert!(
            read_all(&mut *open(&child).unwrap()) == expected,
            "{subformat}: reopened"
        );
        let info = run("qemu-img", &["info", "--backing-chain", path_str(&child)]);
        assert!(info.contains(&format!("{subformat}.vmdk")), "{info}");
        // Only the grains the writes touch, beside the tables.
        let child_len = std::fs::metadata(&child).unwrap().len();
        assert!(
            child_len < 2 << 20,
            "{subformat}: the child holds {child_len} bytes"
        );
    }
}

/// An extent named outside the descriptor's folder (through `..`, or by an absolute path) is
/// read, but never written: a crafted descriptor must not make a run write into another file
/// of the host. The same extent beside the descriptor is written.
#[test]
fn extents_outside_the_descriptors_folder_are_read_but_never_written() {
    let dir = tempfile::tempdir().unwrap();
    let raw = gpt_raw_disk(dir.path(), 8, 4, 48);
    let image = make_vmdk(dir.path(), &raw, "subformat=monolithicFlat", "flat");
    let text = std::fs::read_to_string(&image).unwrap();
    let extent = dir.path().join("flat-flat.vmdk");
    assert!(text.contains("\"flat-flat.vmdk\""), "{text}");
    let nested = dir.path().join("nested");
    std::fs::create_dir(&nested).unwrap();
    let expected = std::fs::read(&raw).unwrap();
    for (name, named) in [
        ("through ..", "../flat-flat.vmdk".to_string()),
        ("absolute", extent.display().to_string()),
    ] {
        let descriptor = nested.join("outside.vmdk");
        std::fs::write(&descriptor, text.replace("flat-flat.vmdk", &named)).unwrap();
        let before = std::fs::read(&extent).unwrap();
        let error = write_refusal(&descriptor);
        assert!(
            matches!(error, Error::Unsupported { .. }),
            "{name}: {error}"
        );
        assert!(
            error
                .to_string()
                .contains("outside the descriptor's folder"),
            "{name}: {error}"
        );
        assert!(
            std::fs::read(&extent).unwrap() == before,
            "{name}: the extent changed"
        );
        let mut disk = open(&descriptor).unwrap();
        let mut read = vec![0u8; 4096];
        disk.read_at(0, &mut read).unwrap();
        assert_eq!(
            &read[..],
            &expected[..4096],
            "{name}: read through the descriptor"
        );
    }
    let mut beside = open_writable(&image).unwrap();
    beside.write_at(4096, &[0xEE; 512]).unwrap();
}
