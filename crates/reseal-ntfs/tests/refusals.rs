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

/// A raw disk whose volume holds `\hiberfil.sys` with `contents`.
fn disk_with_hiberfil(dir: &Path, contents: Vec<u8>) -> std::path::PathBuf {
    let part = build_partition(
        dir,
        &[FixtureFile {
            path: "hiberfil.sys",
            contents,
        }],
    );
    build_disk(dir, &part, Container::Raw)
}

#[test]
fn a_hibernated_volume_is_refused_for_writing_and_readable() {
    let dir = tempfile::tempdir().unwrap();
    let mut hiberfil = b"HIBR".to_vec();
    hiberfil.extend(pattern(16_384, 7));
    let disk = disk_with_hiberfil(dir.path(), hiberfil);
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
    let disk = disk_with_hiberfil(dir.path(), hiberfil);
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

/// `$LogFile` record number and the size of its pages (mkntfs and Windows both use 4 KiB).
const MFT_LOGFILE: u64 = 2;
const LOG_PAGE_SIZE: usize = 4096;

/// A `$LogFile` restart page (`RSTR`) as Windows leaves it while the volume is in use: one log
/// client ("NTFS") in the in-use list and the restart area's RESTART_VOLUME_IS_CLEAN flag
/// (0x0002) clear. Layout from the NTFS format (layout of `RESTART_PAGE_HEADER`,
/// `RESTART_AREA` and `LOG_CLIENT_RECORD` in libntfs-3g's logfile.h), protected by an update
/// sequence array like every multi-sector NTFS record.
fn unclean_restart_page(log_size: u64, major_version: i16, minor_version: i16) -> Vec<u8> {
    let mut page = vec![0u8; LOG_PAGE_SIZE];
    let mut put = |at: usize, bytes: &[u8]| page[at..at + bytes.len()].copy_from_slice(bytes);
    let sectors = LOG_PAGE_SIZE / 512;
    const USA_OFFSET: usize = 0x1E;
    const RESTART_AREA: usize = 0x30;
    const CLIENT_ARRAY: usize = 0x40;
    const CLIENT_RECORD_SIZE: usize = 0xA0;
    const NO_CLIENT: u16 = 0xFFFF;
    let lsn: u64 = 0x0010_0000;
    // Restart page header.
    put(0x00, b"RSTR");
    put(0x04, &(USA_OFFSET as u16).to_le_bytes());
    put(0x06, &(sectors as u16 + 1).to_le_bytes());
    put(0x10, &(LOG_PAGE_SIZE as u32).to_le_bytes()); // system page size
    put(0x14, &(LOG_PAGE_SIZE as u32).to_le_bytes()); // log page size
    put(0x18, &(RESTART_AREA as u16).to_le_bytes());
    put(0x1A, &minor_version.to_le_bytes());
    put(0x1C, &major_version.to_le_bytes());
    // Restart area.
    let area = RESTART_AREA;
    put(area, &lsn.to_le_bytes()); // current LSN
    put(area + 0x08, &1u16.to_le_bytes()); // log clients
    put(area + 0x0A, &NO_CLIENT.to_le_bytes()); // free list
    put(area + 0x0C, &0u16.to_le_bytes()); // in-use list: client 0
    put(area + 0x0E, &0u16.to_le_bytes()); // flags: not RESTART_VOLUME_IS_CLEAN
    let size_bits = 64 - log_size.leading_zeros();
    put(area + 0x10, &(67 - size_bits).to_le_bytes()); // sequence number bits
    put(
        area + 0x14,
        &((CLIENT_ARRAY + CLIENT_RECORD_SIZE) as u16).to_le_bytes(),
    );
    put(area + 0x16, &(CLIENT_ARRAY as u16).to_le_bytes());
    put(area + 0x18, &log_size.to_le_bytes()); // file size
    put(area + 0x24, &0x30u16.to_le_bytes()); // log record header length
    put(area + 0x26, &0x40u16.to_le_bytes()); // log page data offset
    put(area + 0x28, &1u32.to_le_bytes()); // restart log open count
                                           // The one client, the NTFS driver, with nothing before the current LSN checkpointed.
    let client = area + CLIENT_ARRAY;
    put(client, &lsn.to_le_bytes()); // oldest LSN
    put(client + 0x08, &lsn.to_le_bytes()); // client restart LSN
    put(client + 0x10, &NO_CLIENT.to_le_bytes()); // previous client
    put(client + 0x12, &NO_CLIENT.to_le_bytes()); // next client
    put(client + 0x14, &1u16.to_le_bytes()); // sequence number
    put(client + 0x1C, &8u32.to_le_bytes()); // name length in bytes
    let name: Vec<u8> = "NTFS".encode_utf16().flat_map(u16::to_le_bytes).collect();
    put(client + 0x20, &name);
    // Update sequence array: the number first, then the words it replaces at each sector end.
    let update_sequence_number = 1u16.to_le_bytes();
    put(USA_OFFSET, &update_sequence_number);
    for sector in 0..sectors {
        let end = sector * 512 + 510;
        let original = [page[end], page[end + 1]];
        page[USA_OFFSET + 2 + 2 * sector..USA_OFFSET + 4 + 2 * sector].copy_from_slice(&original);
        page[end..end + 2].copy_from_slice(&update_sequence_number);
    }
    page
}

/// Writes both restart pages of `$LogFile` in an NTFS volume file, where the pure-Rust `ntfs`
/// crate (a reader independent of libntfs-3g) says its data lies.
fn write_unclean_log(volume: &Path, major_version: i16, minor_version: i16) {
    let mut reader = std::io::BufReader::new(fs::File::open(volume).unwrap());
    let ntfs = ntfs::Ntfs::new(&mut reader).unwrap();
    let log = ntfs.file(&mut reader, MFT_LOGFILE).unwrap();
    let data = log.data(&mut reader, "").unwrap().unwrap();
    let attribute = data.to_attribute().unwrap();
    let ntfs::attribute_value::NtfsAttributeValue::NonResident(value) =
        attribute.value(&mut reader).unwrap()
    else {
        panic!("$LogFile data is not non-resident");
    };
    let log_size = value.len();
    let first_run = value.data_runs().next().unwrap().unwrap();
    assert!(first_run.allocated_size() >= 2 * LOG_PAGE_SIZE as u64);
    let start = first_run.data_position().value().unwrap().get();
    drop(reader);
    // mkntfs leaves the journal empty (all 0xFF), which libntfs-3g takes as clean.
    let current = fs::read(volume).unwrap();
    assert!(current[start as usize..][..2 * LOG_PAGE_SIZE]
        .iter()
        .all(|&byte| byte == 0xFF));
    let page = unclean_restart_page(log_size, major_version, minor_version);
    write_at(volume, start, &page);
    write_at(volume, start + LOG_PAGE_SIZE as u64, &page);
}

#[test]
fn a_volume_whose_journal_was_not_closed_cleanly_is_refused_for_writing() {
    let dir = tempfile::tempdir().unwrap();
    let part = build_partition(dir.path(), &[]);
    write_unclean_log(&part, 1, 1);
    // ntfs-3g's own programs see the same unclean journal (ntfscp refuses without --force).
    let copied = dir.path().join("probe.txt");
    fs::write(&copied, b"probe").unwrap();
    let ntfscp = try_run("ntfscp", &[&part, &copied, &"probe.txt"]);
    let report = String::from_utf8_lossy(&ntfscp.stderr).to_string();
    assert!(!ntfscp.status.success(), "ntfscp wrote to the volume");
    assert!(report.contains("unclean file system"), "{report}");
    let disk = build_disk(dir.path(), &part, Container::Raw);
    assert_refused(&disk, |error| matches!(error, Error::UncleanJournal { .. }));
    // Reading stays possible: the journal only matters to writers.
    let volume = Volume::mount(open_partition(&disk, false), false).unwrap();
    assert_eq!(
        volume.read_file("readme.txt").unwrap().unwrap(),
        pattern(3_000, 4)
    );
    volume.unmount().unwrap();
}

#[test]
fn a_journal_holding_windows_cached_metadata_is_refused_as_unclean() {
    // Version 2.0 restart pages: Windows 8 and later kept metadata cached for a fast restart
    // (or lost power); libntfs-3g answers EPERM, as for hibernation, but hiberfil.sys is not
    // active here, so the journal is what must be named.
    let dir = tempfile::tempdir().unwrap();
    let part = build_partition(dir.path(), &[]);
    write_unclean_log(&part, 2, 0);
    let disk = build_disk(dir.path(), &part, Container::Vhdx);
    assert_refused(&disk, |error| matches!(error, Error::UncleanJournal { .. }));
}

/// What `replace_file` of `path` answered on a writable mount of `disk`; the image must be
/// byte-identical afterwards.
fn refused_replace(disk: &Path, path: &str) -> Error {
    let before = fs::read(disk).unwrap();
    let mut volume = Volume::mount(open_partition(disk, true), true).unwrap();
    let error = volume.replace_file(path, b"regf new hive").unwrap_err();
    volume.unmount().unwrap();
    assert!(
        fs::read(disk).unwrap() == before,
        "a refused replace changed the image"
    );
    for part in [disk.display().to_string(), path.to_string()] {
        assert!(error.to_string().contains(&part), "{part} not in: {error}");
    }
    error
}

const FILE_ATTRIBUTE_COMPRESSED: u32 = 0x0800;
const FILE_ATTRIBUTE_REPARSE_POINT: u32 = 0x0400;

#[test]
fn an_ntfs_compressed_hive_is_read_but_not_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let part = build_partition(dir.path(), &[]);
    // libntfs-3g compresses a new file's data when its directory carries the compressed
    // attribute and compression is switched on, as Windows does for `compact /c` directories.
    let hive: Vec<u8> = b"regf"
        .iter()
        .copied()
        .chain((0..200_000u32).map(|i| (i % 251) as u8 & 0x0F))
        .collect();
    let mut mount = mount_volume_file(&part);
    mount
        .create_compressed_file(r"Windows\System32\config", "SAM", &hive)
        .unwrap();
    let (result, _) = mount.unmount();
    result.unwrap();
    // The `ntfs` crate sees a compressed data attribute whose clusters are not the plain
    // bytes; ntfscat decompresses them to what was written.
    let raw = read_with_ntfs_crate(&part, r"Windows\System32\config\SAM");
    assert_ne!(raw, hive, "the data was stored uncompressed");
    assert!(ntfscat(&part, r"Windows\System32\config\SAM").unwrap() == hive);
    let disk = build_disk(dir.path(), &part, Container::Vhdx);

    let volume = Volume::mount(open_partition(&disk, false), false).unwrap();
    let attributes = volume
        .file_attributes(r"Windows\System32\config\SAM")
        .unwrap();
    assert_ne!(attributes & FILE_ATTRIBUTE_COMPRESSED, 0);
    assert!(
        volume
            .read_file(r"Windows\System32\config\SAM")
            .unwrap()
            .unwrap()
            == hive
    );
    volume.unmount().unwrap();

    let error = refused_replace(&disk, r"Windows\System32\config\SAM");
    assert!(matches!(error, Error::Unsupported { .. }), "{error}");
    assert!(error.to_string().contains("compressed"), "{error}");
}

/// WOF reparse data as Windows writes it for `compact /c /exe:xpress4k` and CompactOS:
/// `REPARSE_DATA_BUFFER` with tag IO_REPARSE_TAG_WOF, then `WOF_EXTERNAL_INFO` (version 1,
/// provider 2 = file provider) and `FILE_PROVIDER_EXTERNAL_INFO_V1` (version 1, algorithm 0 =
/// XPRESS4K).
fn wof_reparse_data() -> Vec<u8> {
    let mut data = Vec::new();
    data.extend(0x8000_0017u32.to_le_bytes());
    data.extend(16u16.to_le_bytes());
    data.extend(0u16.to_le_bytes());
    for word in [1u32, 2, 1, 0] {
        data.extend(word.to_le_bytes());
    }
    data
}

#[test]
fn a_wof_compressed_hive_is_neither_read_nor_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let part = build_partition(dir.path(), &[]);
    let path = r"Windows\System32\config\SOFTWARE";
    let size = pattern(70_000, 2).len() as u64;
    // What Windows leaves: the compressed bytes in the `WofCompressedData` stream, the WOF
    // reparse point, and the unnamed data a hole of the original size.
    let compressed = pattern(30_000, 9);
    {
        let mount = mount_volume_file(&part);
        let mut file = mount.open_path(path).unwrap();
        file.set_reparse_data(&wof_reparse_data()).unwrap();
        let name: Vec<u16> = "WofCompressedData".encode_utf16().collect();
        file.add_data_stream(&name).unwrap();
        {
            let mut stream = file
                .open_attr(reseal_ntfs_sys::AT_DATA, &name)
                .unwrap()
                .unwrap();
            assert_eq!(stream.pwrite(0, &compressed).unwrap(), compressed.len());
            let mut data = file
                .open_attr(reseal_ntfs_sys::AT_DATA, &[])
                .unwrap()
                .unwrap();
            data.truncate(0).unwrap();
            data.truncate(size).unwrap();
        }
        file.close().unwrap();
        let (result, _) = mount.unmount();
        result.unwrap();
    }
    // Checked with the `ntfs` crate: the stream holds the bytes, the reparse point has the tag.
    assert_eq!(
        read_named_stream_with_ntfs_crate(&part, path, "WofCompressedData"),
        compressed
    );
    assert_eq!(reparse_tag_with_ntfs_crate(&part, path), Some(0x8000_0017));
    let disk = build_disk(dir.path(), &part, Container::Vhd);

    let volume = Volume::mount(open_partition(&disk, false), false).unwrap();
    assert_ne!(
        volume.file_attributes(path).unwrap() & FILE_ATTRIBUTE_REPARSE_POINT,
        0
    );
    let read = volume.read_file(path).unwrap_err();
    assert!(matches!(read, Error::Unsupported { .. }), "{read}");
    volume.unmount().unwrap();

    let error = refused_replace(&disk, path);
    assert!(matches!(error, Error::Unsupported { .. }), "{error}");
    assert!(error.to_string().contains("WOF"), "{error}");
    assert!(error.to_string().contains("0x80000017"), "{error}");
}
