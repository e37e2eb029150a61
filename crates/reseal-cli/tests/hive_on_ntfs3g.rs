//! `reseal hive set` on a Windows volume mounted with ntfs-3g (FUSE), as people debugging an image
//! on Linux use it: the hive and its logs keep their NTFS security descriptor and attributes.
//!
//! Skipped, saying why, only when this machine cannot mount FUSE file systems (no /dev/fuse, no
//! permission); missing programs are a failure, as in every test.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{code, reseal, text};
use reseal_hive::data::encode_dword;
use reseal_testutil::ntfs_image::{find_program, make_volume};
use reseal_testutil::{hivex_tree, workspace_root};

/// ntfs-3g's extended attribute holding a file's NTFS security descriptor (self-relative).
const NTFS_ACL: &str = "system.ntfs_acl";
/// ntfs-3g's extended attribute holding a file's `FILE_ATTRIBUTE_*` bits (u32, little-endian).
const NTFS_ATTRIB: &str = "system.ntfs_attrib";

/// An ntfs-3g mount, unmounted when dropped (also when the test fails).
struct Mounted {
    point: PathBuf,
}

impl Mounted {
    /// Mounts the NTFS volume file `volume` on the empty folder `point`; Err with ntfs-3g's
    /// message when FUSE mounts are not possible here.
    fn mount(volume: &Path, point: &Path) -> Result<Mounted, String> {
        let output = Command::new(find_program("ntfs-3g"))
            .arg(volume)
            .arg(point)
            .output()
            .map_err(|e| format!("cannot run ntfs-3g: {e}"))?;
        if !output.status.success() {
            return Err(format!(
                "ntfs-3g could not mount {}: {}",
                volume.display(),
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
        let mounted = Mounted {
            point: point.to_path_buf(),
        };
        // ntfs-3g said yes; make sure the folder really is a FUSE mount now, or the test would
        // check the host file system instead.
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let shown = point.to_string_lossy();
        assert!(
            mountinfo
                .lines()
                .any(|line| line.split(' ').nth(4) == Some(&*shown) && line.contains(" fuse")),
            "ntfs-3g succeeded but {shown} is not a FUSE mount:\n{mountinfo}"
        );
        Ok(mounted)
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        // umount needs root (which mounting needed too); fusermount3 is FUSE's own way.
        for (program, args) in [("umount", &[][..]), ("fusermount3", &["-u"][..])] {
            let status = Command::new(program).args(args).arg(&self.point).status();
            if matches!(status, Ok(status) if status.success()) {
                return;
            }
        }
        eprintln!("could not unmount {}", self.point.display());
    }
}

/// A security descriptor unlike the one ntfs-3g gives a new file: owner Administrators, group
/// SYSTEM, DACL allowing SYSTEM full control and Users read and execute.
fn distinctive_descriptor() -> Vec<u8> {
    let sid = |subauthorities: &[u32]| {
        let mut sid = vec![1, subauthorities.len() as u8, 0, 0, 0, 0, 0, 5];
        subauthorities
            .iter()
            .for_each(|s| sid.extend_from_slice(&s.to_le_bytes()));
        sid
    };
    let (system, administrators, users) = (sid(&[18]), sid(&[32, 544]), sid(&[32, 545]));
    let ace = |mask: u32, sid: &[u8]| {
        let mut ace = vec![0, 0]; // ACCESS_ALLOWED_ACE_TYPE, no inheritance flags
        ace.extend_from_slice(&(8 + sid.len() as u16).to_le_bytes());
        ace.extend_from_slice(&mask.to_le_bytes());
        ace.extend_from_slice(sid);
        ace
    };
    let aces = [ace(0x001F_01FF, &system), ace(0x0012_00A9, &users)].concat();
    let mut dacl = vec![2, 0]; // ACL_REVISION
    dacl.extend_from_slice(&(8 + aces.len() as u16).to_le_bytes());
    dacl.extend_from_slice(&2u16.to_le_bytes());
    dacl.extend_from_slice(&[0, 0]);
    dacl.extend_from_slice(&aces);
    let dacl_at = 20u32;
    let owner_at = dacl_at + dacl.len() as u32;
    let group_at = owner_at + administrators.len() as u32;
    // Revision 1, control SE_SELF_RELATIVE | SE_DACL_PRESENT.
    let mut descriptor = vec![1, 0];
    descriptor.extend_from_slice(&0x8004u16.to_le_bytes());
    for offset in [owner_at, group_at, 0, dacl_at] {
        descriptor.extend_from_slice(&offset.to_le_bytes());
    }
    [descriptor, dacl, administrators, system].concat()
}

fn ntfs_metadata(file: &Path) -> (Vec<u8>, Vec<u8>) {
    let read = |name| {
        xattr::get(file, name)
            .unwrap_or_else(|e| panic!("{}: reading {name}: {e}", file.display()))
            .unwrap_or_else(|| panic!("{}: ntfs-3g gives no {name}", file.display()))
    };
    (read(NTFS_ACL), read(NTFS_ATTRIB))
}

#[test]
fn hive_set_on_an_ntfs3g_mount_keeps_the_security_descriptor_and_attributes() {
    let dir = tempfile::tempdir().unwrap();
    let volume = dir.path().join("volume.ntfs");
    make_volume(&volume, 32 << 20);
    let point = dir.path().join("mnt");
    std::fs::create_dir(&point).unwrap();
    // Declared after `dir`, so it is unmounted before the folder is removed.
    let _mounted = match Mounted::mount(&volume, &point) {
        Ok(mounted) => mounted,
        Err(reason) => {
            eprintln!("skipping: this machine cannot mount with ntfs-3g: {reason}");
            return;
        }
    };

    let config = workspace_root().join("fixtures/sample/Windows/System32/config");
    for name in ["SYSTEM", "SYSTEM.LOG1", "SYSTEM.LOG2"] {
        std::fs::copy(config.join(name), point.join(name)).unwrap();
    }
    let hive = point.join("SYSTEM");
    let log = point.join("SYSTEM.LOG1");
    let descriptor = distinctive_descriptor();
    // FILE_ATTRIBUTE_HIDDEN | SYSTEM | ARCHIVE.
    let attributes = 0x26u32.to_le_bytes().to_vec();
    for file in [&hive, &log] {
        xattr::set(file, NTFS_ACL, &descriptor).unwrap();
        xattr::set(file, NTFS_ATTRIB, &attributes).unwrap();
    }
    let before = [ntfs_metadata(&hive), ntfs_metadata(&log)];
    assert_eq!(before[0], (descriptor.clone(), attributes.clone()));

    let output = reseal(&[
        "hive",
        hive.to_str().unwrap(),
        "set",
        r"Reseal\Test",
        "Answer",
        "--type",
        "dword",
        "0x2a",
    ]);
    assert_eq!(code(&output), 0, "{}", text(&output));

    assert_eq!(
        [ntfs_metadata(&hive), ntfs_metadata(&log)],
        before,
        "the hive and its log keep their NTFS security descriptor and attributes"
    );
    let tree = hivex_tree(&hive);
    let answer = tree
        .children
        .iter()
        .find(|key| key.name == "Reseal")
        .and_then(|key| key.children.iter().find(|key| key.name == "Test"))
        .and_then(|key| key.values.iter().find(|value| value.name == "Answer"))
        .expect("Answer was written");
    assert_eq!(
        (answer.value_type, answer.data.clone()),
        (4, encode_dword(42))
    );
    assert_eq!(
        std::fs::metadata(&log).unwrap().len(),
        0,
        "the log is emptied"
    );
}
