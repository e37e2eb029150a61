//! A file reseal creates gets the same security descriptor, byte for byte, whatever the target:
//! the Windows volume of a disk image and a WIM captured from that same volume, each given
//! `Windows\Panther\unattend.xml` and `Windows\System32\Sysprep\Sysprep_succeeded.tag` (and
//! their missing directories). Read back with tools we did not write: ntfssecaudit for the
//! volume, wimlib-imagex for the WIM.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use reseal_nt::security_descriptor::{
    self, Ace, Acl, ObjectKind, SecurityDescriptor, CONTAINER_INHERIT_ACE, FILE_ALL_ACCESS,
    GENERIC_ALL, GENERIC_EXECUTE, GENERIC_READ, INHERITED_ACE, INHERIT_ONLY_ACE,
    OBJECT_INHERIT_ACE, SE_DACL_AUTO_INHERITED, SE_DACL_PROTECTED,
};
use reseal_nt::Sid;
use reseal_ntfs::Volume;
use reseal_testutil::ntfs_image::{
    apply_wim, make_volume, ntfssecaudit_descriptor, run, wim_descriptors,
};
use reseal_testutil::workspace_root;

const UNATTEND: &str = r"Windows\Panther\unattend.xml";
const TAG: &str = r"Windows\System32\Sysprep\Sysprep_succeeded.tag";
/// What the two creations make, parents first.
const CREATED: [(&str, ObjectKind); 4] = [
    (r"Windows\Panther", ObjectKind::Directory),
    (UNATTEND, ObjectKind::File),
    (r"Windows\System32\Sysprep", ObjectKind::Directory),
    (TAG, ObjectKind::File),
];
const TRUSTED_INSTALLER: &str = "S-1-5-80-956008885-3418522649-1831038044-1853292631-2271478464";

fn sid(text: &str) -> Sid {
    Sid::parse(text).unwrap()
}

/// A descriptor of the shape Windows 10 gives `C:\Windows` and `C:\Windows\System32`: owned by
/// TrustedInstaller, protected and auto-inherited, with CREATOR OWNER and generic inherit-only
/// entries beside the effective ones.
fn windows_directory_descriptor() -> Vec<u8> {
    let io = OBJECT_INHERIT_ACE | CONTAINER_INHERIT_ACE | INHERIT_ONLY_ACE;
    let read_execute = GENERIC_READ | GENERIC_EXECUTE;
    let dacl = vec![
        Ace::allowed(io, GENERIC_ALL, sid("S-1-3-0")),
        Ace::allowed(io, GENERIC_ALL, sid("S-1-5-18")),
        Ace::allowed(0, 0x0013_01bf, sid("S-1-5-18")),
        Ace::allowed(io, GENERIC_ALL, sid("S-1-5-32-544")),
        Ace::allowed(0, 0x0013_01bf, sid("S-1-5-32-544")),
        Ace::allowed(io, read_execute, sid("S-1-5-32-545")),
        Ace::allowed(0, 0x0012_00a9, sid("S-1-5-32-545")),
        Ace::allowed(
            CONTAINER_INHERIT_ACE | INHERIT_ONLY_ACE,
            GENERIC_ALL,
            sid(TRUSTED_INSTALLER),
        ),
        Ace::allowed(0, FILE_ALL_ACCESS, sid(TRUSTED_INSTALLER)),
        Ace::allowed(0, 0x0012_00a9, sid("S-1-15-2-1")),
        Ace::allowed(io, read_execute, sid("S-1-15-2-1")),
        Ace::allowed(0, 0x0012_00a9, sid("S-1-15-2-2")),
        Ace::allowed(io, read_execute, sid("S-1-15-2-2")),
    ];
    SecurityDescriptor::new(
        SE_DACL_PROTECTED | SE_DACL_AUTO_INHERITED,
        Some(sid(TRUSTED_INSTALLER)),
        Some(sid(TRUSTED_INSTALLER)),
        None,
        Some(Acl::new(dacl)),
    )
    .to_bytes()
    .unwrap()
}

/// The sample image in a new NTFS volume file, `Windows` and `Windows\System32` with Windows'
/// descriptors, without `Windows\Panther` and `Windows\System32\Sysprep` (so that both files
/// and their directories are new).
fn windows_volume(path: &Path) -> Vec<u8> {
    make_volume(path, 64 << 20);
    apply_wim(&workspace_root().join("fixtures/sample.wim"), path);
    let descriptor = windows_directory_descriptor();
    let device = reseal_disk::open_writable(path).unwrap();
    let mut volume = Volume::mount(device, true).unwrap();
    for directory in ["Windows", r"Windows\System32"] {
        volume
            .set_security_descriptor(directory, &descriptor)
            .unwrap();
    }
    for directory in [r"Windows\Panther", r"Windows\System32\Sysprep"] {
        if volume.exists(directory).unwrap() {
            volume.delete_dir_all(directory).unwrap();
        }
    }
    volume.unmount().unwrap();
    descriptor
}

/// Creates the two files through the target at `image` and commits.
fn create_files(image: &Path) {
    let mut target = reseal::open_target(image).unwrap();
    target.begin().unwrap();
    target.create_file(UNATTEND, b"<unattend/>").unwrap();
    target.create_file(TAG, b"").unwrap();
    target.commit(&reseal::NoProgress).unwrap();
}

#[test]
fn a_new_file_gets_the_same_security_in_a_wim_and_on_a_disk() {
    if !workspace_root().join("fixtures/sample.wim").exists() {
        eprintln!("skipping: fixtures/sample.wim is missing");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let disk = dir.path().join("windows.img");
    let windows = windows_volume(&disk);
    let wim = dir.path().join("install.wim");
    run("wimlib-imagex", &[&"capture", &disk, &wim]);

    create_files(&disk);
    create_files(&wim);
    run("wimlib-imagex", &[&"verify", &wim]);

    let in_wim = wim_descriptors(&wim);
    let mut parent_descriptor = BTreeMap::from([
        ("Windows".to_string(), windows.clone()),
        (r"Windows\System32".to_string(), windows.clone()),
    ]);
    for (path, kind) in CREATED {
        let on_disk = ntfssecaudit_descriptor(&disk, path);
        assert_eq!(
            in_wim.get(path),
            Some(&on_disk),
            "{path}: the WIM and the disk differ"
        );
        // What inheritance gives from the parent, as it was captured.
        let parent = path.rsplit_once('\\').unwrap().0;
        let expected = security_descriptor::inherit(&parent_descriptor[parent], kind).unwrap();
        assert_eq!(on_disk, expected, "{path}");
        parent_descriptor.insert(path.to_string(), on_disk);
    }

    // What Windows gives a file an administrator creates in such a directory: owner
    // Administrators, group SYSTEM, each right once, every entry inherited.
    let unattend = SecurityDescriptor::parse(&parent_descriptor[UNATTEND]).unwrap();
    assert_eq!(unattend.owner, Some(sid("S-1-5-32-544")));
    assert_eq!(unattend.group, Some(sid("S-1-5-18")));
    assert_ne!(unattend.control & SE_DACL_AUTO_INHERITED, 0);
    let aces: Vec<(u8, u32, String)> = unattend
        .dacl
        .unwrap()
        .aces
        .iter()
        .map(|ace| {
            (
                ace.flags,
                ace.mask().unwrap(),
                ace.sid().unwrap().to_string(),
            )
        })
        .collect();
    let inherited = |mask: u32, sid: &str| (INHERITED_ACE, mask, sid.to_string());
    assert_eq!(
        aces,
        [
            inherited(FILE_ALL_ACCESS, "S-1-5-32-544"),
            inherited(FILE_ALL_ACCESS, "S-1-5-18"),
            inherited(0x0012_00a9, "S-1-5-32-545"),
            inherited(0x0012_00a9, "S-1-15-2-1"),
            inherited(0x0012_00a9, "S-1-15-2-2"),
        ]
    );
    assert_eq!(
        parent_descriptor[TAG], parent_descriptor[UNATTEND],
        "both files' directories inherit the same from the same"
    );
    fs::remove_file(&wim).unwrap();
}
