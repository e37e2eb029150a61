//! Replace, create and delete through libntfs-3g on a partition inside raw, VHDX and VHD
//! disks, then check the result with ntfs-3g's own programs and the `ntfs` crate.

mod common;

use std::fs;

use common::*;
use reseal_nt::security_descriptor::{
    self as security, Ace, ObjectKind, SecurityDescriptor, ACCESS_ALLOWED_ACE_TYPE,
    FILE_ALL_ACCESS, SE_DACL_AUTO_INHERITED,
};
use reseal_ntfs::{Error, Volume};

const SYSTEM: &str = r"Windows\System32\config\SYSTEM";
const NEW_HIVE: &str = r"Windows\System32\config\NEWHIVE";
const PUBLIC_NEW: &str = r"Users\Public\new.txt";
const NEW_DIR_FILE: &str = r"Windows\Panther\unattend.log";

/// Well-known SIDs that must never get to read a file its directory keeps from them.
const BROAD_SIDS: &[&str] = &["S-1-1-0", "S-1-5-11", "S-1-5-32-545"];
const FILE_READ_DATA: u32 = 0x0001;

fn new_system() -> Vec<u8> {
    let mut bytes = b"regf".to_vec();
    bytes.extend(pattern(150_000, 11));
    bytes
}

fn untouched() -> Vec<FixtureFile> {
    fixture_files()
        .into_iter()
        .filter(|file| {
            ![SYSTEM, "readme.txt", r"Windows\System32\drivers\etc\hosts"].contains(&file.path)
                && !file.path.starts_with(r"Windows\Temp")
        })
        .collect()
}

/// What a descriptor says, whatever the order of its parts in bytes.
fn summary(descriptor: &[u8]) -> SecurityDescriptor {
    SecurityDescriptor::parse(descriptor).unwrap()
}

fn dacl_entries(descriptor: &[u8]) -> Vec<Ace> {
    summary(descriptor).dacl.expect("a DACL").aces
}

fn allowed(ace: &Ace, sid: &str) -> bool {
    ace.ace_type == ACCESS_ALLOWED_ACE_TYPE && ace.sid().is_some_and(|s| s.to_string() == sid)
}

fn allowed_read_data(aces: &[Ace], sid: &str) -> bool {
    aces.iter()
        .any(|ace| allowed(ace, sid) && ace.mask().unwrap_or(0) & FILE_READ_DATA != 0)
}

fn edit_and_verify(container: Container) {
    let dir = tempfile::tempdir().unwrap();
    let part = build_partition(dir.path(), &[]);
    let system_descriptor_by_tool = ntfssecaudit_descriptor(&part, SYSTEM);
    let disk = build_disk(dir.path(), &part, container);

    // Read-only first: reads, case-insensitive lookup, listing, and the state before.
    let volume = Volume::mount(open_partition(&disk, false), false).unwrap();
    let original_system = &fixture_files()[0].contents;
    assert_eq!(
        volume.read_file(SYSTEM).unwrap().as_ref(),
        Some(original_system)
    );
    assert_eq!(
        volume
            .read_file(r"windows\SYSTEM32\Config\system")
            .unwrap()
            .as_ref(),
        Some(original_system)
    );
    assert_eq!(volume.read_file(r"Windows\nothing").unwrap(), None);
    let mut config: Vec<(String, bool, u64)> = volume
        .list_dir(r"Windows\System32\config")
        .unwrap()
        .into_iter()
        .map(|entry| (entry.name, entry.is_dir, entry.size))
        .collect();
    config.sort();
    let expected_size = |path: &str| {
        fixture_files()
            .into_iter()
            .find(|file| file.path == path)
            .map_or(0, |file| file.contents.len() as u64)
    };
    assert_eq!(
        config,
        [
            (
                "SOFTWARE".to_string(),
                false,
                expected_size(r"Windows\System32\config\SOFTWARE")
            ),
            ("SYSTEM".to_string(), false, expected_size(SYSTEM)),
        ]
    );
    let root: Vec<String> = volume
        .list_dir("")
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert!(root.contains(&"Windows".to_string()) && !root.iter().any(|n| n.starts_with('$')));
    let system_descriptor = volume.security_descriptor(SYSTEM).unwrap();
    assert_eq!(
        summary(&system_descriptor),
        summary(&system_descriptor_by_tool)
    );
    let system_times = volume.file_times(SYSTEM).unwrap();
    let system_attributes = volume.file_attributes(SYSTEM).unwrap();
    let config_descriptor = volume
        .security_descriptor(r"Windows\System32\config")
        .unwrap();
    let windows_descriptor = volume.security_descriptor("Windows").unwrap();
    // Why create_file sets a descriptor itself: what libntfs-3g's ntfs_create gives a new
    // file (ntfscp uses it) lets Everyone do anything.
    let copied = summary(&volume.security_descriptor(NTFSCP_FILE).unwrap());
    assert!(
        copied
            .dacl
            .iter()
            .flat_map(|acl| &acl.aces)
            .any(|ace| allowed(ace, "S-1-1-0") && ace.mask() == Some(FILE_ALL_ACCESS)),
        "{copied:?}"
    );
    volume.unmount().unwrap();

    let mut volume = Volume::mount(open_partition(&disk, true), true).unwrap();
    volume.replace_file(SYSTEM, &new_system()).unwrap();
    volume.replace_file("README.TXT", b"shorter").unwrap();
    volume.create_file(NEW_HIVE, &pattern(5_000, 12)).unwrap();
    volume.create_file(PUBLIC_NEW, b"public").unwrap();
    volume.create_dir(r"Windows\Panther").unwrap();
    volume.create_file(NEW_DIR_FILE, b"log").unwrap();
    volume
        .delete_file(r"windows\system32\drivers\etc\HOSTS")
        .unwrap();
    volume.delete_dir_all(r"Windows\Temp").unwrap();
    // Refusals while mounted, each naming the path.
    assert!(matches!(
        volume.create_file(SYSTEM, b"x"),
        Err(Error::AlreadyExists { .. })
    ));
    assert!(matches!(
        volume.replace_file(r"Windows\missing.txt", b"x"),
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        volume.delete_file(r"Windows\System32"),
        Err(Error::IsADirectory { .. })
    ));
    assert!(matches!(
        volume.delete_dir_all("big.bin"),
        Err(Error::NotADirectory { .. })
    ));
    assert!(matches!(
        volume.create_file(r"Windows\..\escape.txt", b"x"),
        Err(Error::InvalidPath { .. })
    ));
    let error = volume.replace_file(r"Nowhere\x", b"x").unwrap_err();
    assert!(error.to_string().contains(r"\Nowhere\x"), "{error}");
    volume.unmount().unwrap();

    // Our own reader after a fresh mount.
    let volume = Volume::mount(open_partition(&disk, false), false).unwrap();
    assert_eq!(volume.read_file(SYSTEM).unwrap(), Some(new_system()));
    assert_eq!(
        volume.security_descriptor(SYSTEM).unwrap(),
        system_descriptor
    );
    assert_eq!(volume.file_attributes(SYSTEM).unwrap(), system_attributes);
    let times = volume.file_times(SYSTEM).unwrap();
    assert_eq!(times.creation, system_times.creation);
    assert!(times.last_write >= system_times.last_write);
    assert!(!volume.exists(r"Windows\Temp").unwrap());

    // The new file in config inherits config's object-inheritable ACEs as effective ACEs.
    let new_descriptor = volume.security_descriptor(NEW_HIVE).unwrap();
    let expected = security::inherit(&config_descriptor, ObjectKind::File).unwrap();
    assert_eq!(new_descriptor, expected);
    let config_aces = dacl_entries(&config_descriptor);
    let new_aces = dacl_entries(&new_descriptor);
    let inheritable: Vec<&Ace> = config_aces
        .iter()
        .filter(|ace| ace.flags & 0x01 != 0)
        .collect();
    assert!(new_aces.iter().all(|new| inheritable
        .iter()
        .any(|old| old.ace_type == new.ace_type && old.sid() == new.sid())));
    // All six of config's entries are object-inheritable; Administrators' two with fewer rights
    // than their full control are left out, as Windows leaves out what an earlier entry already
    // grants (this was all six while inheritance repeated them).
    assert_eq!((inheritable.len(), new_aces.len()), (6, 4), "{new_aces:?}");
    // Effective entries with no inheritance flags; not flagged inherited either, since the
    // descriptor ntfssecaudit gave config is not auto-inherited (Windows flags them only under an
    // auto-inherited parent).
    assert_eq!(
        summary(&config_descriptor).control & SE_DACL_AUTO_INHERITED,
        0
    );
    assert!(new_aces.iter().all(|ace| ace.flags == 0), "{new_aces:?}");
    for sid in BROAD_SIDS {
        assert!(
            !allowed_read_data(&new_aces, sid),
            "{sid} may read a file created in config: {new_aces:?}"
        );
    }
    // A new directory inherits from its parent, and a file in it from the new directory.
    let panther = volume.security_descriptor(r"Windows\Panther").unwrap();
    assert_eq!(
        panther,
        security::inherit(&windows_descriptor, ObjectKind::Directory).unwrap()
    );
    assert_eq!(
        volume.security_descriptor(NEW_DIR_FILE).unwrap(),
        security::inherit(&panther, ObjectKind::File).unwrap()
    );
    // ...while a file in a directory open to Everyone is open to Everyone, as on Windows.
    let public_aces = dacl_entries(&volume.security_descriptor(PUBLIC_NEW).unwrap());
    assert!(
        allowed_read_data(&public_aces, "S-1-1-0"),
        "{public_aces:?}"
    );
    volume.unmount().unwrap();

    // Programs we did not write, on the partition copied back out of the container.
    let part = extract_partition(dir.path(), &disk, container);
    assert_ntfsfix_clean(&part);
    assert_eq!(ntfscat(&part, SYSTEM), Some(new_system()));
    assert_eq!(
        ntfscat(&part, "readme.txt").as_deref(),
        Some(&b"shorter"[..])
    );
    assert_eq!(ntfscat(&part, NEW_HIVE), Some(pattern(5_000, 12)));
    assert_eq!(ntfscat(&part, NEW_DIR_FILE).as_deref(), Some(&b"log"[..]));
    assert_eq!(ntfscat(&part, r"Windows\System32\drivers\etc\hosts"), None);
    assert!(!ntfsls(&part, "Windows").contains(&"Temp".to_string()));
    assert!(ntfsls(&part, r"Windows\System32\config").contains(&"NEWHIVE".to_string()));
    assert_eq!(
        summary(&ntfssecaudit_descriptor(&part, SYSTEM)),
        summary(&system_descriptor_by_tool)
    );
    assert_eq!(ntfssecaudit_descriptor(&part, NEW_HIVE), new_descriptor);
    for file in untouched() {
        assert_eq!(
            ntfscat(&part, file.path).as_ref(),
            Some(&file.contents),
            "{} changed",
            file.path
        );
    }
    assert_eq!(ntfscat(&part, NTFSCP_FILE), Some(ntfscp_contents()));
    assert_eq!(read_with_ntfs_crate(&part, SYSTEM), new_system());
    assert_eq!(read_with_ntfs_crate(&part, NEW_HIVE), pattern(5_000, 12));
}

#[test]
fn edits_a_partition_of_a_raw_gpt_disk() {
    edit_and_verify(Container::Raw);
}

#[test]
fn edits_a_partition_of_a_dynamic_vhdx() {
    edit_and_verify(Container::Vhdx);
}

#[test]
fn edits_a_partition_of_a_dynamic_vhd() {
    edit_and_verify(Container::Vhd);
}

#[test]
fn read_only_mount_refuses_writes_and_leaves_the_image_alone() {
    let dir = tempfile::tempdir().unwrap();
    let part = build_partition(dir.path(), &[]);
    let disk = build_disk(dir.path(), &part, Container::Raw);
    let before = std::fs::read(&disk).unwrap();
    let mut volume = Volume::mount(open_partition(&disk, false), false).unwrap();
    assert!(matches!(
        volume.replace_file(SYSTEM, b"x"),
        Err(Error::ReadOnly { .. })
    ));
    assert!(matches!(
        volume.create_file("new.txt", b"x"),
        Err(Error::ReadOnly { .. })
    ));
    volume.unmount().unwrap();
    assert!(
        std::fs::read(&disk).unwrap() == before,
        "a read-only mount changed the image"
    );
}

#[test]
fn deleting_a_reparse_point_removes_its_reparse_index_entry() {
    let dir = tempfile::tempdir().unwrap();
    // wimlib-imagex applies a captured symbolic link as a reparse point, indexed in
    // `$Extend\$Reparse`, which the delete must find and update.
    fs::create_dir_all(dir.path().join("tree")).unwrap();
    std::os::unix::fs::symlink("readme.txt", dir.path().join("tree/link.txt")).unwrap();
    let part = build_partition(dir.path(), &[]);
    let indexed = reparse_index_size(&part);
    let disk = build_disk(dir.path(), &part, Container::Raw);
    let mut volume = Volume::mount(open_partition(&disk, true), true).unwrap();
    volume.delete_file("link.txt").unwrap();
    volume.unmount().unwrap();
    let part = extract_partition(dir.path(), &disk, Container::Raw);
    assert_ntfsfix_clean(&part);
    let root = ntfsls(&part, "");
    assert!(!root.contains(&"link.txt".to_string()), "{root:?}");
    assert!(root.contains(&"readme.txt".to_string()), "{root:?}");
    // ntfsfix does not look at `$Reparse`: ntfsinfo shows its index lost the entry.
    assert!(
        reparse_index_size(&part) < indexed,
        "the reparse index still holds the deleted link"
    );
}

/// The size of `$Extend\$Reparse`'s index root as ntfsinfo reports it (32 bytes when empty).
fn reparse_index_size(volume: &std::path::Path) -> u64 {
    let output = run("ntfsinfo", &[&"-F", &"/$Extend/$Reparse", &volume]);
    let text = String::from_utf8_lossy(&output.stdout);
    let line = text
        .lines()
        .find(|line| line.trim_start().starts_with("Index Size:"))
        .unwrap_or_else(|| panic!("no index size in ntfsinfo output:\n{text}"));
    let decimal = line.split_whitespace().nth(2).unwrap();
    decimal.parse().unwrap()
}

const FILE_ATTRIBUTE_SPARSE_FILE: u32 = 0x0200;
// In a folder every fixture volume has; ntfscp does not create folders.
const EVENT_LOG: &str = r"Windows\Temp\setup\logs\Application.evtx";

/// Windows volumes hold sparse files (wimlib applies a captured sparse file as one, and event
/// logs are often sparse): they are replaced like any other file and keep the sparse attribute,
/// as on Windows when a program rewrites a sparse file.
#[test]
fn a_sparse_file_is_replaced_and_stays_sparse() {
    let dir = tempfile::tempdir().unwrap();
    let head = pattern(8_192, 21);
    let part = build_partition(
        dir.path(),
        &[FixtureFile {
            path: EVENT_LOG,
            contents: head.clone(),
        }],
    );
    // Writing past the end leaves a hole, which libntfs-3g records as a sparse run and marks
    // the file and its data stream sparse, as ntfs-3g and Windows do.
    let tail = pattern(16_384, 22);
    let hole_end = 1 << 20;
    {
        let mount = mount_volume_file(&part);
        let file = mount.open_path(EVENT_LOG).unwrap();
        {
            let mut data = file
                .open_attr(reseal_ntfs_sys::AT_DATA, &[])
                .unwrap()
                .unwrap();
            assert_eq!(data.pwrite(hole_end, &tail).unwrap(), tail.len());
            assert_ne!(data.flags() & reseal_ntfs_sys::ATTR_IS_SPARSE, 0);
        }
        file.close().unwrap();
        let (result, _) = mount.unmount();
        result.unwrap();
    }
    let disk = build_disk(dir.path(), &part, Container::Vhdx);
    let volume = Volume::mount(open_partition(&disk, false), false).unwrap();
    assert_ne!(
        volume.file_attributes(EVENT_LOG).unwrap() & FILE_ATTRIBUTE_SPARSE_FILE,
        0,
        "the fixture is not sparse"
    );
    volume.unmount().unwrap();

    // New contents longer than the old ones, with a run of zeros in the middle.
    let mut new = pattern(600_000, 23);
    new.extend(vec![0u8; 300_000]);
    new.extend(pattern(700_000, 24));
    let mut volume = Volume::mount(open_partition(&disk, true), true).unwrap();
    volume.replace_file(EVENT_LOG, &new).unwrap();
    assert_ne!(
        volume.file_attributes(EVENT_LOG).unwrap() & FILE_ATTRIBUTE_SPARSE_FILE,
        0,
        "the file lost its sparse attribute"
    );
    volume.unmount().unwrap();

    let extracted = extract_partition(dir.path(), &disk, Container::Vhdx);
    assert!(
        ntfscat(&extracted, EVENT_LOG).unwrap() == new,
        "ntfscat differs"
    );
    assert!(
        read_with_ntfs_crate(&extracted, EVENT_LOG) == new,
        "the ntfs crate reads other contents"
    );
    assert_ntfsfix_clean(&extracted);
}

/// A replaced file is written where its new contents differ from its old, not whole: a hive
/// edited in a few cells costs a few clusters (docs/PERFORMANCE.md). Measured as the bytes
/// the volume stages over the disk, against a mount that edits nothing; the result is read back
/// by the `ntfs` crate.
#[test]
fn a_replaced_file_is_written_only_where_it_changed() {
    const BIG: &str = "big.bin";
    const SIZE: usize = 1 << 20;
    let dir = tempfile::tempdir().unwrap();
    let old = pattern(SIZE, 21);
    let part = build_partition(
        dir.path(),
        &[FixtureFile {
            path: BIG,
            contents: old.clone(),
        }],
    );
    let disk = build_disk(dir.path(), &part, Container::Raw);
    let staged_by = |edit: &dyn Fn(&mut Volume)| {
        let device = reseal_disk::StagedDevice::new(open_partition(&disk, false));
        let staged = device.staged();
        let mut volume = Volume::mount(Box::new(device), true).unwrap();
        edit(&mut volume);
        volume.unmount().unwrap();
        staged
    };
    let mount_alone = staged_by(&|_| {}).staged_bytes();

    // One byte changed in the middle, and 100 bytes added at the end.
    let mut new = old.clone();
    new[SIZE / 2] ^= 0xff;
    new.extend(pattern(100, 22));
    let staged = staged_by(&|volume| volume.replace_file(BIG, &new).unwrap());
    let for_the_edit = staged.staged_bytes() - mount_alone;
    assert!(
        for_the_edit < SIZE as u64 / 4,
        "{for_the_edit} bytes staged to change one byte of {SIZE} and append 100"
    );

    let mut writable = open_partition(&disk, true);
    reseal_disk::staged::write_changes(writable.as_mut(), &staged.changes().unwrap()).unwrap();
    drop(writable);
    let part = extract_partition(dir.path(), &disk, Container::Raw);
    assert_ntfsfix_clean(&part);
    assert_eq!(read_with_ntfs_crate(&part, BIG), new);

    // A shorter file: the kept part compared, the stream truncated.
    let shorter = new[..SIZE / 3].to_vec();
    let staged = staged_by(&|volume| volume.replace_file(BIG, &shorter).unwrap());
    let mut writable = open_partition(&disk, true);
    reseal_disk::staged::write_changes(writable.as_mut(), &staged.changes().unwrap()).unwrap();
    drop(writable);
    let part = extract_partition(dir.path(), &disk, Container::Raw);
    assert_ntfsfix_clean(&part);
    assert_eq!(read_with_ntfs_crate(&part, BIG), shorter);
}

/// A file deleted while it keeps another name (a hard link; Windows shares many files between
/// WinSxS and System32 so) keeps that name, and with a fixed time its change time is that time
/// instead of libntfs-3g's clock: two runs on two copies give the same bytes.
#[test]
fn deleting_one_name_of_a_hard_linked_file_with_a_fixed_time_is_reproducible() {
    let dir = tempfile::tempdir().unwrap();
    // wimlib-imagex captures the two names as one file and applies them as NTFS hard links;
    // the fixture tree's readme.txt is written over this inode, both names keep it.
    let tree = dir.path().join("tree");
    fs::create_dir_all(&tree).unwrap();
    fs::write(tree.join("readme.txt"), b"").unwrap();
    fs::hard_link(tree.join("readme.txt"), tree.join("readme-link.txt")).unwrap();
    let part = build_partition(dir.path(), &[]);
    let disk = build_disk(dir.path(), &part, Container::Raw);
    let fixed = reseal_nt::FileTime(133_444_555_666_777_000);

    let mut results = Vec::new();
    for run in 0..2 {
        let copy = dir.path().join(format!("run-{run}.img"));
        fs::copy(&disk, &copy).unwrap();
        let mut volume = Volume::mount(open_partition(&copy, true), true).unwrap();
        volume.set_fixed_time(Some(fixed));
        volume.delete_file("readme-link.txt").unwrap();
        // A file without another name is deleted as before.
        volume.delete_file(r"Windows\Temp\top.txt").unwrap();
        volume.unmount().unwrap();
        results.push(fs::read(&copy).unwrap());
    }
    assert!(
        results[0] == results[1],
        "two runs with the same fixed time differ"
    );

    let part = extract_partition(dir.path(), &dir.path().join("run-0.img"), Container::Raw);
    assert_ntfsfix_clean(&part);
    let root = ntfsls(&part, "");
    assert!(!root.contains(&"readme-link.txt".to_string()), "{root:?}");
    assert_eq!(read_with_ntfs_crate(&part, "readme.txt"), pattern(3_000, 4));
    let change_time =
        reseal_testutil::ntfs_image::with_ntfs_crate_file(&part, "readme.txt", |file, _| {
            file.info()
                .unwrap()
                .mft_record_modification_time()
                .nt_timestamp()
        })
        .unwrap();
    assert_eq!(change_time, fixed.0, "the surviving name's change time");
}
