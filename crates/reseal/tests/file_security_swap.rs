//! The machine's account-domain SID replaced in the file system's security descriptors
//! (`Target::scan_file_security`, `Target::swap_file_security`), checked with readers we did
//! not write.

use std::path::Path;

use reseal::progress::NoProgress;
use reseal::targets::{Target, WimTarget};
use reseal::Sid;
use reseal_nt::domain_swap::DomainSwap;
use reseal_testutil::ntfs_image::run;

/// The account domain of the machine the managed-wimlib sample trees were captured on: their
/// owner is its account 1001.
const CAPTURE_DOMAIN: &str = "S-1-5-21-2516598036-4149101818-1193433654";
const NEW_DOMAIN: &str = "S-1-5-21-1111111111-2222222222-3333333333";

fn swap() -> DomainSwap {
    DomainSwap::new(
        &Sid::parse_machine_sid(CAPTURE_DOMAIN).unwrap(),
        &Sid::parse_machine_sid(NEW_DOMAIN).unwrap(),
    )
    .unwrap()
}

/// A domain's three numbers as they stand in a binary SID, in the hex wimlib-imagex prints.
fn domain_hex(domain: &str) -> String {
    Sid::parse_machine_sid(domain).unwrap().to_bytes()[12..]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `wimlib-imagex dir --detailed` of image 1: every path with its attributes, times, streams'
/// hashes and security descriptor.
fn wimlib_listing(wim: &Path) -> String {
    let out = run("wimlib-imagex", &[&"dir", &wim, &"1", &"--detailed"]);
    String::from_utf8(out.stdout).unwrap()
}

/// Image 1 of the WIM, opened as a target (the sample trees hold no Windows, which
/// `open_target` asks for).
fn wim_target(wim: &Path) -> WimTarget {
    WimTarget::open(wim, "1").unwrap()
}

fn real_wim_copy(dir: &Path) -> Option<std::path::PathBuf> {
    let source = reseal_testutil::real_fixture("images/managedwimlib/XPRESS.wim")?;
    let copy = dir.join("install.wim");
    std::fs::copy(source, &copy).unwrap();
    Some(copy)
}

#[test]
fn wim_descriptors_get_the_new_domain_and_nothing_else_changes() {
    let dir = tempfile::tempdir().unwrap();
    let Some(wim) = real_wim_copy(dir.path()) else {
        return;
    };
    let (old_hex, new_hex) = (domain_hex(CAPTURE_DOMAIN), domain_hex(NEW_DOMAIN));
    let before = wimlib_listing(&wim);
    assert!(
        before.contains(&old_hex),
        "the sample names the capture domain"
    );

    let mut target = wim_target(&wim);
    let scanned = target.scan_file_security(&swap()).unwrap();
    assert!(scanned.descriptors >= 1 && scanned.files >= scanned.descriptors);
    let descriptor_lines = before
        .lines()
        .filter(|line| line.starts_with("Security Descriptor") && line.contains(&old_hex))
        .count() as u64;
    assert_eq!(
        scanned.files, descriptor_lines,
        "one per dentry wimlib lists"
    );

    target.begin().unwrap();
    let swapped = target.swap_file_security(&swap()).unwrap();
    assert_eq!(swapped, scanned);
    target.commit(&NoProgress).unwrap();
    assert_eq!(
        target.scan_file_security(&swap()).unwrap().descriptors,
        0,
        "a second swap finds nothing"
    );
    drop(target);

    let after = wimlib_listing(&wim);
    assert!(
        !after.contains(&old_hex),
        "no descriptor names the old domain"
    );
    // Every path, time, attribute and stream hash as it was; each descriptor the old one with
    // the domain replaced.
    assert_eq!(after, before.replace(&old_hex, &new_hex));
    run("wimlib-imagex", &[&"verify", &wim]);
}

#[test]
fn wim_swap_aborted_leaves_the_file_byte_identical() {
    let dir = tempfile::tempdir().unwrap();
    let Some(wim) = real_wim_copy(dir.path()) else {
        return;
    };
    let original = std::fs::read(&wim).unwrap();
    let mut target = wim_target(&wim);
    target.begin().unwrap();
    assert!(target.swap_file_security(&swap()).unwrap().descriptors >= 1);
    target.abort();
    drop(target);
    assert_eq!(std::fs::read(&wim).unwrap(), original);
}

#[test]
fn wim_swap_outside_a_transaction_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let Some(wim) = real_wim_copy(dir.path()) else {
        return;
    };
    let original = std::fs::read(&wim).unwrap();
    let mut target = wim_target(&wim);
    let err = target.swap_file_security(&swap()).unwrap_err();
    assert_eq!(err.kind, reseal::ErrorKind::Usage, "{err}");
    drop(target);
    assert_eq!(std::fs::read(&wim).unwrap(), original);
}

mod disk {
    use std::path::{Path, PathBuf};

    use reseal::progress::NoProgress;
    use reseal::Sid;
    use reseal_nt::security_descriptor::SecurityDescriptor;
    use reseal_ntfs::Volume;
    use reseal_testutil::ntfs_image::{
        apply_wim, assert_ntfsfix_clean, build_disk, convert_to_raw, extract_range, make_volume,
        ntfssecaudit_descriptor, run, Container, Scheme, FIRST_PARTITION_START,
    };
    use reseal_testutil::workspace_root;

    use super::{swap, CAPTURE_DOMAIN};

    const VOLUME_SIZE: u64 = 64 << 20;
    /// Two files given one descriptor, a directory another: two distinct descriptors, three
    /// files.
    const SAME_DESCRIPTOR: [&str; 2] = [
        r"Windows\System32\config\SAM",
        r"Windows\System32\config\SECURITY",
    ];
    const OWN_DESCRIPTOR: &str = r"Windows\System32\config";

    /// Every path of the sample image, from wimlib's listing of it.
    fn sample_paths() -> Vec<String> {
        let sample = workspace_root().join("fixtures/sample.wim");
        let out = run("wimlib-imagex", &[&"dir", &sample, &"1"]);
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|line| line.trim_start_matches('/').replace('/', "\\"))
            .filter(|path| !path.is_empty())
            .collect()
    }

    /// `descriptor` owned by the capture domain's account `rid`.
    fn owned_by_local_account(descriptor: &[u8], rid: u32) -> Vec<u8> {
        let mut parsed = SecurityDescriptor::parse(descriptor).unwrap();
        parsed.owner = Some(Sid::parse(&format!("{CAPTURE_DOMAIN}-{rid}")).unwrap());
        parsed.to_bytes().unwrap()
    }

    /// The sample image in an NTFS volume whose files in `SAME_DESCRIPTOR` and `OWN_DESCRIPTOR`
    /// are owned by local accounts (set through libntfs-3g, as ntfs-3g's `system.ntfs_acl`
    /// does), in a VHDX disk.
    fn disk_with_local_owners(dir: &Path) -> PathBuf {
        let volume = volume_with_local_owners(dir);
        let disk = build_disk(dir, &[&volume], Scheme::Gpt, Container::Vhdx);
        std::fs::remove_file(volume).unwrap();
        disk
    }

    /// The volume of [`disk_with_local_owners`], on its own.
    pub(super) fn volume_with_local_owners(dir: &Path) -> PathBuf {
        let volume = dir.join("windows.img");
        make_volume(&volume, VOLUME_SIZE);
        apply_wim(&workspace_root().join("fixtures/sample.wim"), &volume);
        let device = reseal_disk::open_writable(&volume).unwrap();
        let mut mounted = Volume::mount(device, true).unwrap();
        let shared = owned_by_local_account(
            &mounted.security_descriptor(SAME_DESCRIPTOR[0]).unwrap(),
            1001,
        );
        for path in SAME_DESCRIPTOR {
            mounted.set_security_descriptor(path, &shared).unwrap();
        }
        let own =
            owned_by_local_account(&mounted.security_descriptor(OWN_DESCRIPTOR).unwrap(), 1002);
        mounted
            .set_security_descriptor(OWN_DESCRIPTOR, &own)
            .unwrap();
        mounted.unmount().unwrap();
        volume
    }

    fn volume_of(dir: &Path, disk: &Path, name: &str) -> PathBuf {
        let raw = dir.join(format!("{name}.raw"));
        convert_to_raw(disk, &raw);
        let volume = dir.join(name);
        extract_range(&raw, FIRST_PARTITION_START, VOLUME_SIZE, &volume);
        std::fs::remove_file(raw).unwrap();
        volume
    }

    /// Every file's descriptor as ntfssecaudit reads it.
    fn descriptors(volume: &Path, paths: &[String]) -> Vec<Vec<u8>> {
        paths
            .iter()
            .map(|path| ntfssecaudit_descriptor(volume, path))
            .collect()
    }

    /// `true` when the bytes hold the old domain's three numbers.
    pub(super) fn names_old_domain(descriptor: &[u8]) -> bool {
        let domain = Sid::parse_machine_sid(CAPTURE_DOMAIN).unwrap().to_bytes()[12..].to_vec();
        descriptor.windows(domain.len()).any(|w| w == domain)
    }

    #[test]
    fn disk_descriptors_get_the_new_domain_file_by_file() {
        let dir = tempfile::tempdir().unwrap();
        let disk = disk_with_local_owners(dir.path());
        let paths = sample_paths();
        let before_volume = volume_of(dir.path(), &disk, "before.img");
        let before = descriptors(&before_volume, &paths);
        assert_eq!(before.iter().filter(|d| names_old_domain(d)).count(), 3);

        let mut target = reseal::open_target(&disk).unwrap();
        let scanned = target.scan_file_security(&swap()).unwrap();
        assert_eq!(
            (scanned.descriptors, scanned.files),
            (2, 3),
            "{SAME_DESCRIPTOR:?} share one descriptor, {OWN_DESCRIPTOR} has its own"
        );
        target.begin().unwrap();
        assert_eq!(target.swap_file_security(&swap()).unwrap(), scanned);
        target.commit(&NoProgress).unwrap();
        assert_eq!(target.scan_file_security(&swap()).unwrap().files, 0);
        drop(target);

        let after_volume = volume_of(dir.path(), &disk, "after.img");
        let after = descriptors(&after_volume, &paths);
        for ((path, old), new) in paths.iter().zip(&before).zip(&after) {
            let mut expected = old.clone();
            swap().swap_in_bytes(&mut expected);
            assert_eq!(new, &expected, "the descriptor of {path}");
            assert!(!names_old_domain(new), "{path}");
        }
        assert_ntfsfix_clean(&after_volume);
        run("ntfssecaudit", &[&"-a", &after_volume]);
    }

    #[test]
    fn disk_swap_not_committed_leaves_the_image_byte_identical() {
        let dir = tempfile::tempdir().unwrap();
        let disk = disk_with_local_owners(dir.path());
        let original = std::fs::read(&disk).unwrap();
        let mut target = reseal::open_target(&disk).unwrap();
        target.begin().unwrap();
        assert_eq!(target.swap_file_security(&swap()).unwrap().files, 3);
        // The process dies before the commit: everything libntfs-3g wrote was in memory.
        drop(target);
        assert_eq!(std::fs::read(&disk).unwrap(), original);
        assert!(!dir.path().read_dir().unwrap().any(|e| e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .contains("redo")));
    }
}

mod directory {
    use std::path::{Path, PathBuf};
    use std::process::Command;

    use reseal::progress::NoProgress;
    use reseal::targets::{DirectoryTarget, FileStore, Folder, Target};
    use reseal::{DirEntry, ErrorKind, RecoveryOutcome};

    use reseal_nt::security_descriptor::SecurityDescriptor;
    use reseal_testutil::ntfs_image::{
        assert_ntfsfix_clean, find_program, ntfssecaudit_descriptor,
    };

    use super::disk::volume_with_local_owners;
    use super::swap;

    /// An ntfs-3g (FUSE) mount, unmounted when dropped.
    struct Mounted {
        point: PathBuf,
    }

    impl Mounted {
        /// Mounts `volume` on `point`; `None`, said on stderr, when this machine cannot mount
        /// FUSE file systems.
        fn mount(volume: &Path, point: &Path) -> Option<Mounted> {
            let output = Command::new(find_program("ntfs-3g"))
                .arg(volume)
                .arg(point)
                .output()
                .unwrap();
            if !output.status.success() {
                eprintln!(
                    "skipping: ntfs-3g cannot mount here: {}",
                    String::from_utf8_lossy(&output.stderr).trim()
                );
                return None;
            }
            Some(Mounted {
                point: point.to_path_buf(),
            })
        }
    }

    impl Drop for Mounted {
        fn drop(&mut self) {
            for (program, args) in [("umount", &[][..]), ("fusermount3", &["-u"][..])] {
                let status = Command::new(program).args(args).arg(&self.point).status();
                if matches!(status, Ok(status) if status.success()) {
                    return;
                }
            }
            eprintln!("could not unmount {}", self.point.display());
        }
    }

    /// Every file and directory under `root` (the mount point), as Windows paths.
    fn every_path(root: &Path) -> Vec<String> {
        let mut paths = vec![String::new()];
        let mut pending = vec![root.to_path_buf()];
        while let Some(dir) = pending.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let entry = entry.unwrap();
                let relative = entry.path().strip_prefix(root).unwrap().to_owned();
                if entry.file_type().unwrap().is_dir() {
                    pending.push(entry.path());
                }
                paths.push(relative.to_string_lossy().replace('/', "\\"));
            }
        }
        paths.sort();
        paths
    }

    /// Each path's `system.ntfs_acl` on the mount; `None` where ntfs-3g gives none (EIO for
    /// the root of a volume wimlib applied).
    fn mounted_descriptors(root: &Path, paths: &[String]) -> Vec<Option<Vec<u8>>> {
        paths
            .iter()
            .map(|path| {
                let host = root.join(path.replace('\\', "/"));
                xattr::get(&host, NTFS_ACL).ok().flatten()
            })
            .collect()
    }

    const NTFS_ACL: &str = "system.ntfs_acl";

    /// A folder over the mount whose `fail_after`-th descriptor write and later ones fail, as
    /// a crash or an I/O error in the middle of the journal's operations would leave it.
    struct FailingStore {
        inner: Folder,
        fail_after: usize,
        set: usize,
    }

    impl FileStore for FailingStore {
        fn describe(&self) -> String {
            self.inner.describe()
        }
        fn read_file(&mut self, path: &str) -> reseal::Result<Option<Vec<u8>>> {
            self.inner.read_file(path)
        }
        fn list_dir(&mut self, path: &str) -> reseal::Result<Option<Vec<DirEntry>>> {
            self.inner.list_dir(path)
        }
        fn exists(&mut self, path: &str) -> reseal::Result<bool> {
            self.inner.exists(path)
        }
        fn replace_file(&mut self, path: &str, contents: &[u8]) -> reseal::Result<()> {
            self.inner.replace_file(path, contents)
        }
        fn create_file(&mut self, path: &str, contents: &[u8]) -> reseal::Result<()> {
            self.inner.create_file(path, contents)
        }
        fn delete_file(&mut self, path: &str) -> reseal::Result<()> {
            self.inner.delete_file(path)
        }
        fn delete_dir_all(&mut self, path: &str) -> reseal::Result<()> {
            self.inner.delete_dir_all(path)
        }
        fn discard_incomplete_write(&mut self, path: &str) -> reseal::Result<()> {
            self.inner.discard_incomplete_write(path)
        }
        fn ntfs_security_descriptor(&mut self, path: &str) -> reseal::Result<Option<Vec<u8>>> {
            self.inner.ntfs_security_descriptor(path)
        }
        fn set_ntfs_security_descriptor(
            &mut self,
            path: &str,
            descriptor: &[u8],
        ) -> reseal::Result<()> {
            self.set += 1;
            if self.set >= self.fail_after {
                return Err(reseal::Error::other(Some(path), "injected failure"));
            }
            self.inner.set_ntfs_security_descriptor(path, descriptor)
        }
    }

    /// Every descriptor after the swap is the one before with the domain replaced, and none
    /// names the old domain; read on the mount and, after unmounting, by ntfssecaudit, with
    /// ntfsfix finding the volume clean.
    fn assert_swapped(
        volume: &Path,
        paths: &[String],
        before: &[Option<Vec<u8>>],
        after_on_mount: &[Option<Vec<u8>>],
    ) {
        for ((path, old), new) in paths.iter().zip(before).zip(after_on_mount) {
            let mut expected = old.clone();
            if let Some(expected) = &mut expected {
                swap().swap_in_bytes(expected);
            }
            assert_eq!(new, &expected, "the descriptor of {path}");
            let new = new.as_deref().unwrap_or_default();
            assert!(!super::disk::names_old_domain(new), "{path}");
        }
        for (path, new) in paths.iter().zip(after_on_mount) {
            let Some(new) = new else { continue };
            // ntfs-3g hands a descriptor back laid out otherwise than it stores it.
            if path.starts_with("Windows\\System32\\config") {
                assert_eq!(
                    SecurityDescriptor::parse(&ntfssecaudit_descriptor(volume, path)).unwrap(),
                    SecurityDescriptor::parse(new).unwrap(),
                    "{path}"
                );
            }
        }
        assert_ntfsfix_clean(volume);
    }

    #[test]
    fn an_ntfs3g_mount_gets_the_new_domain_through_the_journal() {
        let dir = tempfile::tempdir().unwrap();
        let volume = volume_with_local_owners(dir.path());
        let point = dir.path().join("mnt");
        std::fs::create_dir(&point).unwrap();
        let Some(mounted) = Mounted::mount(&volume, &point) else {
            return;
        };
        let paths = every_path(&mounted.point);
        let before = mounted_descriptors(&mounted.point, &paths);
        assert_eq!(
            before
                .iter()
                .flatten()
                .filter(|d| super::disk::names_old_domain(d))
                .count(),
            3
        );
        let mut target = DirectoryTarget::open(&mounted.point).unwrap();
        let scanned = target.scan_file_security(&swap()).unwrap();
        assert_eq!((scanned.descriptors, scanned.files), (2, 3));
        target.begin().unwrap();
        assert_eq!(target.swap_file_security(&swap()).unwrap(), scanned);
        // Staged only: nothing on the volume changed yet.
        assert_eq!(mounted_descriptors(&mounted.point, &paths), before);
        target.commit(&NoProgress).unwrap();
        assert_eq!(target.scan_file_security(&swap()).unwrap().files, 0);
        assert!(!target.has_interrupted_run().unwrap());
        drop(target);
        let after = mounted_descriptors(&mounted.point, &paths);
        assert_eq!(every_path(&mounted.point), paths, "no file left behind");
        drop(mounted);
        assert_swapped(&volume, &paths, &before, &after);
    }

    #[test]
    fn a_descriptor_swap_that_fails_halfway_is_finished_by_recovery() {
        let dir = tempfile::tempdir().unwrap();
        let volume = volume_with_local_owners(dir.path());
        let point = dir.path().join("mnt");
        std::fs::create_dir(&point).unwrap();
        let Some(mounted) = Mounted::mount(&volume, &point) else {
            return;
        };
        let paths = every_path(&mounted.point);
        let before = mounted_descriptors(&mounted.point, &paths);
        let store = FailingStore {
            inner: Folder::open(&mounted.point).unwrap(),
            fail_after: 2,
            set: 0,
        };
        let mut target = DirectoryTarget::over(Box::new(store));
        target.begin().unwrap();
        target.swap_file_security(&swap()).unwrap();
        let err = target.commit(&NoProgress).unwrap_err();
        assert!(err.to_string().contains("injected failure"), "{err}");
        drop(target);
        // One descriptor was set before the failure: the journal is committed, so the run is
        // finished, not undone.
        let halfway = mounted_descriptors(&mounted.point, &paths);
        let changed = halfway.iter().zip(&before).filter(|(a, b)| a != b).count();
        assert_eq!(
            changed, 1,
            "the first descriptor was set before the failure"
        );

        let mut target = DirectoryTarget::open(&mounted.point).unwrap();
        assert!(target.has_interrupted_run().unwrap());
        let outcome = target.recover().unwrap();
        assert!(
            matches!(outcome, Some(RecoveryOutcome::RolledForward { ref files }) if files.len() == 3),
            "{outcome:?}"
        );
        assert!(!target.has_interrupted_run().unwrap());
        drop(target);
        let after = mounted_descriptors(&mounted.point, &paths);
        assert_eq!(every_path(&mounted.point), paths, "no journal left behind");
        drop(mounted);
        assert_swapped(&volume, &paths, &before, &after);
    }

    #[test]
    fn a_folder_without_ntfs_descriptors_has_nothing_to_swap() {
        let Some(dir) = reseal_testutil::sample_dir_copy() else {
            return;
        };
        let mut target = DirectoryTarget::open(dir.path()).unwrap();
        let scanned = target.scan_file_security(&swap()).unwrap();
        assert_eq!((scanned.descriptors, scanned.files), (0, 0));
        let err = target.swap_file_security(&swap()).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Usage, "outside a transaction: {err}");
        target.begin().unwrap();
        assert_eq!(target.swap_file_security(&swap()).unwrap(), scanned);
        target.commit(&NoProgress).unwrap();
        assert!(!target.has_interrupted_run().unwrap());
    }
}
