//! Damaged input gives typed errors and never a panic; interrupted writes leave the old or the
//! new data in an image qemu-img still reads.

mod common;

use common::*;
use reseal_disk::{open, open_file, BlockDevice, Error};
use reseal_testutil::vhdx_log::crc32c;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

fn corrupt_structure(result: reseal_disk::Result<Box<dyn BlockDevice>>) -> (&'static str, String) {
    match result {
        Err(Error::Corrupt {
            structure, reason, ..
        }) => (structure, reason),
        Err(other) => panic!("expected a corrupt structure, got {other}"),
        Ok(_) => panic!("expected a corrupt structure, the image opened"),
    }
}

fn patch(path: &Path, offset: u64, bytes: &[u8]) {
    let mut content = std::fs::read(path).unwrap();
    content[offset as usize..offset as usize + bytes.len()].copy_from_slice(bytes);
    std::fs::write(path, content).unwrap();
}

fn vhd_checksum(bytes: &[u8], field: usize) -> u32 {
    !bytes
        .iter()
        .enumerate()
        .filter(|(i, _)| !(field..field + 4).contains(i))
        .fold(0u32, |sum, (_, &b)| sum.wrapping_add(b as u32))
}

fn qemu_image(dir: &Path, format: &str, options: &str, name: &str) -> PathBuf {
    let raw = gpt_raw_disk(dir, 16, 14, 31);
    let image = dir.join(name);
    qemu_convert(&raw, "raw", &image, format, options);
    image
}

#[test]
fn vhd_damage_is_reported_with_the_structure() {
    let dir = tempfile::tempdir().unwrap();
    let image = qemu_image(
        dir.path(),
        "vpc",
        "subformat=dynamic,force_size=on",
        "d.vhd",
    );
    let pristine = std::fs::read(&image).unwrap();
    let len = pristine.len() as u64;

    // Bad footer checksum.
    patch(&image, len - 512 + 48, &[0x7F]);
    let (structure, reason) = corrupt_structure(open(&image));
    assert_eq!(structure, "VHD footer");
    assert!(reason.contains("checksum"), "{reason}");

    // Truncated: the footer at the end is gone.
    std::fs::write(&image, &pristine[..pristine.len() - 4096]).unwrap();
    assert_eq!(corrupt_structure(open(&image)).0, "VHD footer");

    // A BAT far larger than the file (with a valid header checksum).
    let mut bytes = pristine.clone();
    bytes[512 + 28..512 + 32].copy_from_slice(&0x4000_0000u32.to_be_bytes());
    let checksum = vhd_checksum(&bytes[512..1536], 36);
    bytes[512 + 36..512 + 40].copy_from_slice(&checksum.to_be_bytes());
    std::fs::write(&image, &bytes).unwrap();
    assert_eq!(
        corrupt_structure(open(&image)).0,
        "VHD block allocation table"
    );

    // A .vhd that is not one.
    let not_vhd = dir.path().join("zeros.vhd");
    std::fs::write(&not_vhd, vec![0u8; 4096]).unwrap();
    assert_eq!(corrupt_structure(open(&not_vhd)).0, "VHD footer");
}

#[test]
fn vhdx_damage_is_reported_with_the_structure() {
    let dir = tempfile::tempdir().unwrap();
    let image = qemu_image(dir.path(), "vhdx", "subformat=dynamic", "d.vhdx");
    let pristine = std::fs::read(&image).unwrap();

    // One bad header: the other copy is used.
    patch(&image, 64 * 1024 + 100, &[0xEE]);
    open(&image).expect("the second header is still valid");
    // Both bad.
    patch(&image, 128 * 1024 + 100, &[0xEE]);
    let (structure, reason) = corrupt_structure(open(&image));
    assert_eq!(structure, "VHDX headers");
    assert!(reason.contains("CRC-32C"), "{reason}");

    // Both region tables bad.
    std::fs::write(&image, &pristine).unwrap();
    patch(&image, 192 * 1024 + 40, &[0xEE]);
    patch(&image, 256 * 1024 + 40, &[0xEE]);
    assert_eq!(corrupt_structure(open(&image)).0, "VHDX region tables");

    // Truncated in the middle of the BAT region.
    std::fs::write(&image, &pristine[..(2 << 20) + 4096]).unwrap();
    let (structure, _) = corrupt_structure(open(&image));
    assert!(structure.starts_with("VHDX"), "{structure}");

    // A virtual size whose BAT cannot fit its region (the metadata has no checksum).
    let metadata = find_metadata_region(&pristine);
    let mut bytes = pristine.clone();
    let size_item = find_metadata_item(&bytes, metadata, &[0x24, 0x42, 0xA5, 0x2F]);
    bytes[size_item..size_item + 8].copy_from_slice(&(60u64 << 40).to_le_bytes());
    std::fs::write(&image, &bytes).unwrap();
    let (structure, reason) = corrupt_structure(open(&image));
    assert_eq!(structure, "VHDX BAT", "{reason}");

    // A partly present block in a disk without a parent (so without sector bitmaps).
    let bat = find_region(&pristine, &[0x66, 0x77, 0xC2, 0x2D]);
    let mut bytes = pristine.clone();
    bytes[bat] = (bytes[bat] & !7) | 7;
    std::fs::write(&image, &bytes).unwrap();
    let (structure, reason) = corrupt_structure(open(&image));
    assert_eq!(structure, "VHDX BAT", "{reason}");
    assert!(reason.contains("state 7"), "{reason}");
}

/// VHD blocks must lie clear of the header structures and of each other.
#[test]
fn vhd_blocks_that_overlap_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let image = qemu_image(
        dir.path(),
        "vpc",
        "subformat=dynamic,force_size=on",
        "d.vhd",
    );
    let pristine = std::fs::read(&image).unwrap();
    let be = |at: usize, len: usize| {
        pristine[at..at + len]
            .iter()
            .fold(0u64, |value, &byte| value << 8 | byte as u64) as usize
    };
    let header = be(16, 8);
    let (bat, entries) = (be(header + 16, 8), be(header + 28, 4));
    let present: Vec<usize> = (0..entries)
        .filter(|&index| be(bat + index * 4, 4) != 0xFFFF_FFFF)
        .collect();
    assert!(present.len() >= 2, "the test disk has blocks");
    let cases = [
        (pristine[bat + present[0] * 4..][..4].to_vec(), "overlap"),
        (
            ((header / 512) as u32).to_be_bytes().to_vec(),
            "the dynamic disk header",
        ),
        (((bat / 512) as u32).to_be_bytes().to_vec(), "the BAT"),
    ];
    for (value, reason) in cases {
        let mut bytes = pristine.clone();
        bytes[bat + present[1] * 4..][..4].copy_from_slice(&value);
        std::fs::write(&image, &bytes).unwrap();
        let (structure, why) = corrupt_structure(open(&image));
        assert_eq!(structure, "VHD block allocation table", "{why}");
        assert!(why.contains(reason), "{reason:?} in {why}");
        let (_, writable) = corrupt_structure(reseal_disk::open_writable(&image));
        assert_eq!(writable, why);
        assert!(std::fs::read(&image).unwrap() == bytes, "the file changed");
    }
}

/// BAT entries in use and the regions are checked against each other before anything is
/// read or written through them: a block over a region or over another block, or two
/// regions sharing bytes, is corruption, and a writable open changes nothing.
#[test]
fn vhdx_blocks_and_regions_that_overlap_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let image = qemu_image(
        dir.path(),
        "vhdx",
        "subformat=dynamic,block_size=1M",
        "d.vhdx",
    );
    let pristine = std::fs::read(&image).unwrap();
    let bat = find_region(&pristine, &[0x66, 0x77, 0xC2, 0x2D]);
    let metadata = find_metadata_region(&pristine);
    let entry = |index: usize| {
        u64::from_le_bytes(
            pristine[bat + index * 8..bat + index * 8 + 8]
                .try_into()
                .unwrap(),
        )
    };
    let present: Vec<usize> = (0..16).filter(|&index| entry(index) & 7 == 6).collect();
    assert!(present.len() >= 2, "the test disk has blocks in the file");
    let refused = |bytes: &[u8], structure: &str, reason: &str| {
        std::fs::write(&image, bytes).unwrap();
        for writable in [false, true] {
            let result = if writable {
                reseal_disk::open_writable(&image)
            } else {
                open(&image)
            };
            let (found, why) = corrupt_structure(result);
            assert_eq!(found, structure, "{why}");
            assert!(why.contains(reason), "{reason:?} in {why}");
        }
        assert!(std::fs::read(&image).unwrap() == bytes, "the file changed");
    };

    // A block over the metadata region.
    let mut bytes = pristine.clone();
    let over_metadata = (metadata as u64 / (1 << 20)) << 20 | 6;
    bytes[bat + present[0] * 8..][..8].copy_from_slice(&over_metadata.to_le_bytes());
    refused(&bytes, "VHDX BAT", "the metadata region");

    // Two entries for the same block.
    let mut bytes = pristine.clone();
    bytes[bat + present[1] * 8..][..8].copy_from_slice(&entry(present[0]).to_le_bytes());
    refused(&bytes, "VHDX BAT", "overlap");

    // The BAT region moved over the metadata region, in both region tables.
    let mut bytes = pristine.clone();
    for table in [192usize << 10, 256 << 10] {
        let count = u32::from_le_bytes(bytes[table + 8..table + 12].try_into().unwrap()) as usize;
        for index in 0..count {
            let at = table + 16 + index * 32;
            if bytes[at..at + 4] == [0x66, 0x77, 0xC2, 0x2D] {
                bytes[at + 16..at + 24].copy_from_slice(&(metadata as u64).to_le_bytes());
            }
        }
        let mut region = bytes[table..table + 65536].to_vec();
        region[4..8].fill(0);
        let checksum = crc32c(&region);
        bytes[table + 4..table + 8].copy_from_slice(&checksum.to_le_bytes());
    }
    refused(&bytes, "VHDX region table", "overlap");
}

/// The offset of the region whose GUID starts with `guid_start`, from region table 1.
fn find_region(bytes: &[u8], guid_start: &[u8]) -> usize {
    let table = &bytes[192 * 1024..256 * 1024];
    let count = u32::from_le_bytes(table[8..12].try_into().unwrap()) as usize;
    (0..count)
        .map(|i| &table[16 + i * 32..48 + i * 32])
        .find(|entry| entry.starts_with(guid_start))
        .map(|entry| u64::from_le_bytes(entry[16..24].try_into().unwrap()) as usize)
        .expect("the region")
}

/// The metadata region (GUID 8B7CA206-...).
fn find_metadata_region(bytes: &[u8]) -> usize {
    find_region(bytes, &[0x06, 0xA2, 0x7C, 0x8B])
}

/// The file offset of the metadata item whose GUID starts with `guid_start`.
fn find_metadata_item(bytes: &[u8], region: usize, guid_start: &[u8]) -> usize {
    let count = u16::from_le_bytes(bytes[region + 10..region + 12].try_into().unwrap()) as usize;
    (0..count)
        .map(|i| &bytes[region + 32 + i * 32..region + 64 + i * 32])
        .find(|entry| entry.starts_with(guid_start))
        .map(|entry| region + u32::from_le_bytes(entry[16..20].try_into().unwrap()) as usize)
        .expect("the item")
}

/// Opens the image, lists partitions and reads a few ranges; any error is fine, a panic is not.
fn exercise(path: &Path) {
    let Ok(mut disk) = open(path) else {
        return;
    };
    let _ = reseal_disk::read_partition_table(&mut *disk);
    let len = disk.len();
    let mut buf = vec![0u8; 1 << 20];
    for offset in [0, len / 2, len.saturating_sub(1 << 20)] {
        let piece = (len - offset).min(buf.len() as u64) as usize;
        let _ = disk.read_at(offset, &mut buf[..piece]);
    }
}

/// Flips bytes of a real image one at a time (in a private copy) and exercises it.
fn mutate_everywhere(path: &Path, positions: &[u64]) {
    mutate_everywhere_through(path, path, positions)
}

/// Flips bytes of `path` one at a time and exercises the image opened through `image` (the
/// same file, or a descriptor naming it).
fn mutate_everywhere_through(path: &Path, image: &Path, positions: &[u64]) {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    use std::os::unix::fs::FileExt;
    for (index, &position) in positions.iter().enumerate() {
        let mut original = [0u8];
        file.read_exact_at(&mut original, position).unwrap();
        let mutated = match index % 4 {
            0 => original[0] ^ 0x01,
            1 => original[0] ^ 0x80,
            2 => 0xFF,
            _ => 0x00,
        };
        if mutated == original[0] {
            continue;
        }
        file.write_all_at(&[mutated], position).unwrap();
        let outcome = catch_unwind(AssertUnwindSafe(|| exercise(image)));
        file.write_all_at(&original, position).unwrap();
        assert!(
            outcome.is_ok(),
            "{}: panic with byte {position} set to {mutated:#04x}",
            path.display()
        );
    }
}

fn spread(len: u64, count: u64, seed: u64) -> Vec<u64> {
    pseudo_random(count as usize * 8, seed)
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap()) % len)
        .collect()
}

#[test]
fn mutated_real_vhds_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    for name in [
        "qemu/hyperv2012r2-dynamic.vhd",
        "qemu/virtualpc-dynamic.vhd",
        "dfvfs/fat-differential.vhd",
    ] {
        let Some(path) = real_image(&format!("images/{name}"), dir.path()) else {
            return;
        };
        let len = std::fs::metadata(&path).unwrap().len();
        // Footer copy, dynamic header and the first BAT entries; the footer; anywhere.
        let mut positions: Vec<u64> = (0..2048).collect();
        positions.extend(len - 512..len);
        positions.extend(spread(len, 300, 41));
        mutate_everywhere(&path, &positions);
    }
}

#[test]
fn mutated_real_vhdxs_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    for name in [
        "discutils/vhdx-log-replay.vhdx",
        "qemu/iotest-dynamic-1G.vhdx.bz2",
    ] {
        let Some(path) = real_image(&format!("images/{name}"), dir.path()) else {
            return;
        };
        let bytes = std::fs::read(&path).unwrap();
        let len = bytes.len() as u64;
        let metadata = find_metadata_region(&bytes) as u64;
        drop(bytes);
        // Identifier, both headers, both region tables, the metadata table and items, anywhere.
        let mut positions: Vec<u64> = (0..64).collect();
        for structure in [64u64 << 10, 128 << 10, 192 << 10, 256 << 10] {
            positions.extend(structure..structure + 128);
        }
        positions.extend(metadata..metadata + 256);
        positions.extend((metadata + 65536..metadata + 65536 + 4096).step_by(13));
        positions.extend(spread(len.min(8 << 20), 300, 42));
        positions.extend(spread(len, 100, 43));
        mutate_everywhere(&path, &positions);
    }
}

/// A reader of interrupted images.
#[derive(Clone, Copy)]
enum Oracle {
    /// `qemu-img check` (VHDX) and `qemu-img convert` to raw.
    Qemu(&'static str),
    /// reseal-disk itself, opening the image read-only.
    Ours,
}

/// The virtual disk as every oracle reads it; they must agree.
fn read_back(image: &Path, oracles: &[Oracle]) -> Vec<u8> {
    let name = image.file_name().unwrap().to_string_lossy().into_owned();
    let mut views = oracles.iter().map(|oracle| match oracle {
        Oracle::Qemu(format) => {
            if *format == "vhdx" {
                qemu_check_vhdx(image);
            }
            qemu_read_raw(image, format)
        }
        Oracle::Ours => read_all(&mut *open(image).unwrap()),
    });
    let first = views.next().unwrap();
    for other in views {
        assert!(other == first, "{name}: reseal-disk and qemu-img disagree");
    }
    first
}

/// Writes into a present block and into absent ones, crashing after each possible number of
/// file writes (cleanly, then tearing the last write); the image must then hold, for each
/// write, the old or the new bytes and nothing else changed.
fn interrupted_writes(format: &str, options: &str, name: &str) {
    let dir = tempfile::tempdir().unwrap();
    let image = qemu_image(dir.path(), format, options, name);
    let qemu = Oracle::Qemu(if format == "vpc" { "vpc" } else { "vhdx" });
    interrupted_writes_on(&image, &[Oracle::Ours, qemu]);
}

/// The ranges of `offset..offset+len` that must each be all old or all new: the whole write,
/// or with `by_sector` each 512-byte sector of the virtual disk it touches.
fn pieces(offset: usize, len: usize, by_sector: bool) -> Vec<(usize, usize)> {
    if !by_sector {
        return vec![(offset, offset + len)];
    }
    let end = offset + len;
    let mut starts = vec![offset];
    starts.extend((offset / 512 + 1..end.div_ceil(512)).map(|sector| sector * 512));
    starts
        .iter()
        .map(|&start| (start, ((start / 512 + 1) * 512).min(end)))
        .collect()
}

fn interrupted_writes_on(image: &Path, oracles: &[Oracle]) {
    let name = image.file_name().unwrap().to_string_lossy().into_owned();
    let image = image.to_path_buf();
    let pristine = std::fs::read(&image).unwrap();
    let old = read_back(&image, oracles);
    let writes: Vec<(usize, Vec<u8>)> = vec![
        (1 << 20, pseudo_random(3000, 51)),          // present
        ((11 << 20) + 77, pseudo_random(5000, 52)),  // absent block
        ((13 << 20) + 4096, pseudo_random(512, 53)), // another absent block
    ];
    for torn in [false, true] {
        let mut allowed = 0;
        loop {
            std::fs::write(&image, &pristine).unwrap();
            let file = FailingFile::new(&image, allowed, torn);
            let completed = match open_file(Box::new(file)) {
                Ok(mut disk) => writes
                    .iter()
                    .all(|(offset, data)| disk.write_at(*offset as u64, data).is_ok()),
                Err(_) => false,
            };
            let seen = read_back(&image, oracles);
            let mut expected_old = old.clone();
            for (offset, data) in &writes {
                // A torn data write may leave some sectors new and others old, as on any disk.
                for (start, end) in pieces(*offset, data.len(), torn) {
                    let region = &seen[start..end];
                    assert!(
                        region == &old[start..end] || region == &data[start - offset..end - offset],
                        "{name}: after {allowed} writes (torn: {torn}) the bytes at {start} are neither old nor new"
                    );
                }
                expected_old[*offset..*offset + data.len()]
                    .copy_from_slice(&seen[*offset..*offset + data.len()]);
            }
            assert!(
                seen == expected_old,
                "{name}: after {allowed} writes (torn: {torn}) other bytes changed"
            );
            if completed {
                for (offset, data) in &writes {
                    assert!(seen[*offset..*offset + data.len()] == data[..]);
                }
                break;
            }
            allowed += 1;
            assert!(allowed < 100, "{name}: the writes never complete");
        }
        // The header, the allocations and the data each take writes: a crash was injected
        // between them.
        assert!(
            allowed >= 4,
            "{name}: only {allowed} file writes; nothing was interrupted"
        );
    }
}

#[test]
fn interrupted_vhd_writes_keep_old_or_new_data() {
    interrupted_writes("vpc", "subformat=dynamic,force_size=on", "f.vhd");
}

#[test]
fn interrupted_vhdx_writes_keep_old_or_new_data() {
    interrupted_writes("vhdx", "subformat=dynamic,block_size=1M", "f.vhdx");
}

#[test]
fn interrupted_differencing_writes_keep_old_or_new_data() {
    let dir = tempfile::tempdir().unwrap();
    let vhd_parent = qemu_image(
        dir.path(),
        "vpc",
        "subformat=dynamic,force_size=on",
        "p.vhd",
    );
    let vhd_child = dir.path().join("c.vhd");
    reseal_disk::vhd::create_differencing(&vhd_parent, &vhd_child).unwrap();
    // qemu-img cannot open differencing images.
    interrupted_writes_on(&vhd_child, &[Oracle::Ours]);

    let vhdx_parent = qemu_image(
        dir.path(),
        "vhdx",
        "subformat=dynamic,block_size=1M",
        "p.vhdx",
    );
    let vhdx_child = dir.path().join("c.vhdx");
    reseal_disk::vhdx::create_differencing(&vhdx_parent, &vhdx_child).unwrap();
    interrupted_writes_on(&vhdx_child, &[Oracle::Ours]);
}

/// Opening a VHDX with a pending log for writing replays the log into the file and then clears
/// the LogGuid in both headers. Crashing after each possible number of those writes (cleanly,
/// then tearing the last one) must leave an image that still opens and reads as the replayed
/// disk: the log stays pending until a header says it is empty, and replaying is idempotent.
#[test]
fn interrupted_log_replay_keeps_the_replayed_content() {
    let dir = tempfile::tempdir().unwrap();
    let Some(image) = real_image("images/discutils/vhdx-log-replay.vhdx", dir.path()) else {
        return;
    };
    let pristine = std::fs::read(&image).unwrap();
    // The reference: qemu-img's own replay (it replays only when it opens the file for
    // writing), as a VHDX and as raw bytes.
    let replayed_by_qemu = |image: &Path, name: &str| {
        let copy = dir.path().join(name);
        replay_with_qemu(image, &copy);
        copy
    };
    let reference = replayed_by_qemu(&image, "reference.vhdx");
    let reference_raw = dir.path().join("reference.raw");
    qemu_convert(&reference, "vhdx", &reference_raw, "raw", "");
    assert_reads_as_raw(&image, &reference_raw, "before any write");
    for torn in [false, true] {
        let mut allowed = 0;
        loop {
            std::fs::write(&image, &pristine).unwrap();
            let file = FailingFile::new(&image, allowed, torn);
            let completed = open_file(Box::new(file)).is_ok();
            let context = format!("after {allowed} writes (torn: {torn})");
            assert_reads_as_raw(&image, &reference_raw, &context);
            let by_qemu = replayed_by_qemu(&image, "interrupted.vhdx");
            let compare = std::process::Command::new("qemu-img")
                .args(["compare", "-f", "vhdx", "-F", "vhdx"])
                .args([&by_qemu, &reference])
                .output()
                .unwrap();
            assert!(
                compare.status.success(),
                "{context}: qemu-img reads other data: {}",
                String::from_utf8_lossy(&compare.stdout)
            );
            if completed {
                let reopened = reseal_disk::vhdx::Vhdx::open(&image, false).unwrap();
                assert_eq!(reopened.log_entries_replayed(), 0, "the log was cleared");
                qemu_check_vhdx(&image);
                break;
            }
            allowed += 1;
            assert!(allowed < 1000, "the replay never completes");
        }
        // The replayed entries' writes and the two header updates.
        assert!(
            allowed >= 3,
            "only {allowed} file writes; nothing was interrupted"
        );
    }
}

/// reseal-disk opens `image` read-only (replaying a pending log in memory) and reads the same
/// bytes as the raw file `expected`, compared a piece at a time.
fn assert_reads_as_raw(image: &Path, expected: &Path, context: &str) {
    use std::io::Read;
    let mut disk = open(image).unwrap();
    let mut raw = std::fs::File::open(expected).unwrap();
    assert_eq!(disk.len(), raw.metadata().unwrap().len());
    let mut ours = vec![0u8; 4 << 20];
    let mut theirs = vec![0u8; 4 << 20];
    let mut offset = 0;
    while offset < disk.len() {
        let len = (disk.len() - offset).min(ours.len() as u64) as usize;
        disk.read_at(offset, &mut ours[..len]).unwrap();
        raw.read_exact(&mut theirs[..len]).unwrap();
        assert!(
            ours[..len] == theirs[..len],
            "{context}: reseal-disk reads other bytes than qemu-img in the 4 MiB at {offset}"
        );
        offset += len as u64;
    }
}

/// Changes fields of checksummed structures and repairs the checksum, so that the damage gets
/// past the checksum to the code that interprets the fields.
#[test]
fn damage_behind_valid_checksums_never_panics() {
    use std::os::unix::fs::FileExt;
    let dir = tempfile::tempdir().unwrap();
    let vhd = qemu_image(
        dir.path(),
        "vpc",
        "subformat=dynamic,force_size=on",
        "d.vhd",
    );
    let vhdx = qemu_image(
        dir.path(),
        "vhdx",
        "subformat=dynamic,block_size=1M",
        "d.vhdx",
    );
    let values = [0x00u8, 0x80, 0xFF];

    // VHD: footer (at the end and its copy at 0) and dynamic header, ones' complement sums.
    let pristine = std::fs::read(&vhd).unwrap();
    let footer = pristine.len() - 512;
    for (structure, size, checksum_at) in [(footer, 512, 64), (0, 512, 64), (512, 1024, 36)] {
        for position in (0..size).filter(|p| !(checksum_at..checksum_at + 4).contains(p)) {
            for value in values {
                let mut bytes = pristine[structure..structure + size].to_vec();
                bytes[position] = value;
                let checksum = vhd_checksum(&bytes, checksum_at);
                bytes[checksum_at..checksum_at + 4].copy_from_slice(&checksum.to_be_bytes());
                let file = std::fs::OpenOptions::new().write(true).open(&vhd).unwrap();
                file.write_all_at(&bytes, structure as u64).unwrap();
                let outcome = catch_unwind(AssertUnwindSafe(|| exercise(&vhd)));
                file.write_all_at(&pristine[structure..structure + size], structure as u64)
                    .unwrap();
                assert!(
                    outcome.is_ok(),
                    "VHD byte {} set to {value:#x}",
                    structure + position
                );
            }
        }
    }

    // VHDX: both headers (fields up to 80) and both region tables (entries), CRC-32C.
    let pristine = std::fs::read(&vhdx).unwrap();
    for (structure, size, fields) in [
        (64usize << 10, 4096usize, 8..80usize),
        (128 << 10, 4096, 8..80),
        (192 << 10, 65536, 8..80),
        (256 << 10, 65536, 8..80),
    ] {
        for position in fields {
            for value in values {
                let mut bytes = pristine[structure..structure + size].to_vec();
                bytes[position] = value;
                bytes[4..8].fill(0);
                let checksum = crc32c(&bytes);
                bytes[4..8].copy_from_slice(&checksum.to_le_bytes());
                let file = std::fs::OpenOptions::new().write(true).open(&vhdx).unwrap();
                file.write_all_at(&bytes, structure as u64).unwrap();
                let outcome = catch_unwind(AssertUnwindSafe(|| exercise(&vhdx)));
                file.write_all_at(&pristine[structure..structure + size], structure as u64)
                    .unwrap();
                assert!(
                    outcome.is_ok(),
                    "VHDX byte {} set to {value:#x}",
                    structure + position
                );
            }
        }
    }
}

/// A FIFO is refused before it is opened, which would block until something writes to it.
#[test]
fn a_fifo_is_no_image_file_and_is_not_opened() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("disk.vhdx");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(status.success());
    let error = open(&fifo).err().expect("a FIFO is refused");
    assert!(error.to_string().contains("not an image file"), "{error}");
}

#[test]
fn mutated_qcow2_images_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    let raw = gpt_raw_disk(dir.path(), 8, 6, 44);
    for (options, name, compress) in [
        ("compat=1.1,cluster_size=4K", "v3", false),
        ("extended_l2=on,cluster_size=16K", "extended", false),
        ("compat=0.10,cluster_size=4K", "compressed", true),
    ] {
        let image = dir.path().join(format!("{name}.qcow2"));
        let mut args = vec!["convert", "-f", "raw", "-O", "qcow2", "-o", options];
        if compress {
            args.push("-c");
        }
        args.extend([path_str(&raw), path_str(&image)]);
        run("qemu-img", &args);
        run("qemu-img", &["snapshot", "-c", "s", path_str(&image)]);
        let len = std::fs::metadata(&image).unwrap().len();
        // The header with its extensions, the L1 and refcount tables and first L2 tables
        // (within the first clusters of these small images), and anywhere.
        let mut positions: Vec<u64> = (0..1024).collect();
        positions.extend(spread(len.min(256 << 10), 400, 45));
        positions.extend(spread(len, 200, 46));
        mutate_everywhere(&image, &positions);
    }
}

#[test]
fn mutated_vmdks_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    let raw = gpt_raw_disk(dir.path(), 8, 6, 47);
    for subformat in [
        "monolithicSparse",
        "streamOptimized",
        "twoGbMaxExtentSparse",
    ] {
        let image = dir.path().join(format!("{subformat}.vmdk"));
        qemu_convert(
            &raw,
            "raw",
            &image,
            "vmdk",
            &format!("subformat={subformat}"),
        );
        let len = std::fs::metadata(&image).unwrap().len();
        // The header, the descriptor, the grain directories and tables, and anywhere.
        let mut positions: Vec<u64> = (0..len.min(2048)).collect();
        positions.extend(spread(len.min(64 << 10), 400, 48));
        positions.extend(spread(len, 200, 49));
        mutate_everywhere(&image, &positions);
    }
    let extent = dir.path().join("twoGbMaxExtentSparse-s001.vmdk");
    let len = std::fs::metadata(&extent).unwrap().len();
    let mut positions: Vec<u64> = (0..512).collect();
    positions.extend(spread(len.min(64 << 10), 300, 50));
    mutate_everywhere_through(
        &extent,
        &dir.path().join("twoGbMaxExtentSparse.vmdk"),
        &positions,
    );
}
