//! The directory target: Windows path resolution, atomic writes that keep metadata.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, SystemTime};

use common::Tree;
use reseal::targets::{FileStore, Folder};
use reseal::ErrorKind;

#[test]
fn paths_resolve_case_insensitively_as_on_windows() {
    let tree = Tree::empty();
    tree.write("Windows/System32/config/SYSTEM", b"hive");
    tree.write("Users/Administrator/NTUSER.DAT", b"user");
    let mut target = Folder::open(tree.root()).unwrap();

    assert_eq!(
        target.read_file(r"WINDOWS\system32\Config\system").unwrap(),
        Some(b"hive".to_vec())
    );
    assert_eq!(
        target.read_file("users/administrator/ntuser.dat").unwrap(),
        Some(b"user".to_vec())
    );
    assert_eq!(
        target
            .read_file(r"Windows\System32\config\SOFTWARE")
            .unwrap(),
        None
    );
    assert_eq!(target.read_file(r"Nowhere\at\all").unwrap(), None);
    assert!(target.exists(r"windows\SYSTEM32").unwrap());
    assert!(!target.exists(r"windows\SysWOW64").unwrap());

    let listing = target
        .list_dir(r"WINDOWS\SYSTEM32\CONFIG")
        .unwrap()
        .unwrap();
    assert_eq!(listing.len(), 1);
    assert_eq!(listing[0].name, "SYSTEM");
    assert!(!listing[0].is_dir);
    assert_eq!(listing[0].size, 4);
    assert_eq!(target.list_dir("Missing").unwrap(), None);

    // A replacement keeps the name as stored on disk.
    target
        .replace_file(r"windows\system32\config\system", b"new")
        .unwrap();
    assert_eq!(
        fs::read(tree.path("Windows/System32/config/SYSTEM")).unwrap(),
        b"new"
    );
    assert!(!tree.path("Windows/System32/config/system").exists());
}

#[test]
fn two_names_differing_only_in_case_are_an_error_naming_both() {
    let tree = Tree::empty();
    tree.write("Windows/Temp/a.log", b"1");
    tree.write("Windows/Temp/A.LOG", b"2");
    let mut target = Folder::open(tree.root()).unwrap();
    // The exact name wins, as it is the one the caller means.
    assert_eq!(
        target.read_file(r"Windows\Temp\a.log").unwrap(),
        Some(b"1".to_vec())
    );
    let err = target.read_file(r"Windows\Temp\A.log").unwrap_err();
    assert!(
        err.message.contains("a.log") && err.message.contains("A.LOG"),
        "{err}"
    );
}

#[test]
fn paths_cannot_leave_the_image() {
    let tree = Tree::empty();
    let outside = tempfile::tempdir().unwrap();
    fs::write(outside.path().join("secret"), b"x").unwrap();
    std::os::unix::fs::symlink(outside.path(), tree.path("Windows/link")).unwrap();
    let mut target = Folder::open(tree.root()).unwrap();

    for escaping in [
        r"..\secret",
        r"Windows\..\..\secret",
        r"\etc\passwd",
        r"C:\Windows",
    ] {
        let err = target.read_file(escaping).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Usage, "{escaping}: {err}");
    }
    let err = target.read_file(r"Windows\link\secret").unwrap_err();
    assert!(err.message.contains("symbolic link"), "{err}");
    assert_eq!(err.kind, ErrorKind::CorruptInput, "{err}");
    let err = target.create_file(r"Windows\link\new", b"x").unwrap_err();
    assert!(err.message.contains("symbolic link"), "{err}");
    assert!(!outside.path().join("new").exists());
    assert!(target.delete_dir_all("").is_err());
}

#[test]
fn special_files_are_refused_as_damage_without_being_opened() {
    let tree = Tree::empty();
    let fifo = tree.path("Windows/pipe");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(status.success());
    let mut target = Folder::open(tree.root()).unwrap();

    // Opening the FIFO for reading would block: each of these returns at once.
    let read = target.read_file(r"Windows\pipe").unwrap_err();
    let replace = target.replace_file(r"Windows\pipe", b"x").unwrap_err();
    let below = target.create_file(r"Windows\pipe\file", b"x").unwrap_err();
    let delete = target.delete_dir_all(r"Windows\pipe").unwrap_err();
    for (err, expected) in [
        (read, "a file"),
        (replace, "a file"),
        (below, "a folder"),
        (delete, "a file or folder"),
    ] {
        assert_eq!(err.kind, ErrorKind::CorruptInput, "{err}");
        assert!(
            err.message
                .contains("is a FIFO where the image should hold")
                && err.message.contains(expected)
                && err.file.as_deref() == Some(fifo.to_str().unwrap()),
            "{err:?}"
        );
    }
}

#[test]
fn create_file_makes_parents_and_refuses_to_overwrite() {
    let tree = Tree::empty();
    let mut target = Folder::open(tree.root()).unwrap();
    target
        .create_file(r"Windows\Panther\Unattend\unattend.xml", b"<unattend/>")
        .unwrap();
    assert_eq!(
        fs::read(tree.path("Windows/Panther/Unattend/unattend.xml")).unwrap(),
        b"<unattend/>"
    );
    // Existing components are reused whatever their case.
    target
        .create_file(r"WINDOWS\panther\setupact.log", b"")
        .unwrap();
    let panthers = fs::read_dir(tree.path("Windows"))
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            name.to_string_lossy().eq_ignore_ascii_case("panther")
        })
        .count();
    assert_eq!(panthers, 1);
    assert!(tree.path("Windows/Panther/setupact.log").exists());

    let err = target
        .create_file(r"windows\panther\UNATTEND\Unattend.XML", b"again")
        .unwrap_err();
    assert!(err.message.contains("already exists"), "{err}");
    assert!(err.file.unwrap().contains("unattend.xml"));
    let err = target
        .replace_file(r"Windows\missing.txt", b"x")
        .unwrap_err();
    assert!(err.message.contains("does not exist"), "{err}");
    // No temporary files are left behind.
    let names: Vec<String> = fs::read_dir(tree.path("Windows/Panther"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.starts_with(".reseal")), "{names:?}");
}

#[test]
fn new_files_take_the_default_permissions() {
    let tree = Tree::empty();
    let mut target = Folder::open(tree.root()).unwrap();
    target.create_file(r"Windows\new.txt", b"x").unwrap();
    // Compare with a file the host creates in the same directory the ordinary way.
    fs::write(tree.path("Windows/reference.txt"), b"x").unwrap();
    let mode = |p: &str| fs::metadata(tree.path(p)).unwrap().permissions().mode();
    assert_eq!(mode("Windows/new.txt"), mode("Windows/reference.txt"));
}

#[test]
fn replace_file_keeps_permissions_access_time_and_extended_attributes() {
    let tree = Tree::empty();
    let file = tree.path("Windows/System32/config/SAM");
    tree.write("Windows/System32/config/SAM", b"old contents");
    fs::set_permissions(&file, fs::Permissions::from_mode(0o640)).unwrap();
    let old_access = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    let old_modified = SystemTime::UNIX_EPOCH + Duration::from_secs(1_100_000_000);
    fs::File::options()
        .write(true)
        .open(&file)
        .unwrap()
        .set_times(
            fs::FileTimes::new()
                .set_accessed(old_access)
                .set_modified(old_modified),
        )
        .unwrap();
    let xattrs_work = xattr::set(&file, "user.reseal.test", b"ntfs-like metadata").is_ok();
    if !xattrs_work {
        eprintln!("skipping the extended attribute part: this filesystem refuses user xattrs");
    }

    let mut target = Folder::open(tree.root()).unwrap();
    target
        .replace_file(r"Windows\System32\config\SAM", b"new contents")
        .unwrap();

    let meta = fs::metadata(&file).unwrap();
    assert_eq!(fs::read(&file).unwrap(), b"new contents");
    assert_eq!(meta.permissions().mode() & 0o7777, 0o640);
    assert_eq!(meta.accessed().unwrap(), old_access);
    assert!(
        meta.modified().unwrap() > old_modified,
        "mtime must be the write time"
    );
    if xattrs_work {
        assert_eq!(
            xattr::get(&file, "user.reseal.test").unwrap().as_deref(),
            Some(&b"ntfs-like metadata"[..])
        );
    }
}

#[test]
fn replace_file_keeps_a_read_only_mode() {
    let tree = Tree::empty();
    let file = tree.path("Windows/ro.txt");
    tree.write("Windows/ro.txt", b"old");
    let _ = xattr::set(&file, "user.attr", b"v");
    fs::set_permissions(&file, fs::Permissions::from_mode(0o444)).unwrap();
    let mut target = Folder::open(tree.root()).unwrap();
    target.replace_file(r"Windows\ro.txt", b"new").unwrap();
    assert_eq!(fs::read(&file).unwrap(), b"new");
    assert_eq!(
        fs::metadata(&file).unwrap().permissions().mode() & 0o7777,
        0o444
    );
}

#[test]
fn replace_host_file_replaces_only_an_existing_regular_file_and_names_it() {
    use reseal::targets::directory::replace_host_file;
    let tree = Tree::empty();
    let real = tree.path("real.txt");
    tree.write("real.txt", b"old");
    let link = tree.path("link.txt");
    std::os::unix::fs::symlink(&real, &link).unwrap();

    let refused = replace_host_file(&link, b"new").unwrap_err();
    assert!(
        refused.to_string().contains("link.txt") && refused.to_string().contains("symbolic link"),
        "{refused}"
    );
    assert!(fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(fs::read(&real).unwrap(), b"old");

    let missing = replace_host_file(&tree.path("missing.txt"), b"new").unwrap_err();
    assert!(missing.to_string().contains("missing.txt"), "{missing}");
    assert!(!tree.path("missing.txt").exists());

    replace_host_file(&real, b"new").unwrap();
    assert_eq!(fs::read(&real).unwrap(), b"new");
}

#[test]
fn deletes_are_idempotent_and_type_checked() {
    let tree = Tree::empty();
    tree.write("Windows/Prefetch/A.pf", b"1");
    tree.write("Windows/Temp/x.tmp", b"1");
    let mut target = Folder::open(tree.root()).unwrap();
    target.delete_file(r"windows\temp\X.TMP").unwrap();
    assert!(!tree.path("Windows/Temp/x.tmp").exists());
    target.delete_file(r"windows\temp\X.TMP").unwrap();
    assert!(target.delete_file(r"Windows\Prefetch").is_err());
    assert!(target.delete_dir_all(r"Windows\Temp\none").is_ok());
    target.delete_dir_all(r"WINDOWS\PREFETCH").unwrap();
    assert!(!tree.path("Windows/Prefetch").exists());
}

#[test]
fn an_interrupted_write_is_discarded() {
    let tree = Tree::empty();
    tree.write("Windows/a.txt", b"old");
    // What a crash between writing and renaming leaves.
    tree.write("Windows/.reseal-new.A.TXT", b"half");
    let mut target = Folder::open(tree.root()).unwrap();
    let names: Vec<String> = target
        .list_dir("Windows")
        .unwrap()
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(names, vec!["System32", "a.txt"]);
    Folder::open(tree.root())
        .unwrap()
        .discard_incomplete_write(r"Windows\a.txt")
        .unwrap();
    assert!(!tree.path("Windows/.reseal-new.A.TXT").exists());
    assert_eq!(fs::read(tree.path("Windows/a.txt")).unwrap(), b"old");
}

#[test]
fn open_target_wants_a_windows_image() {
    let empty = tempfile::tempdir().unwrap();
    let err = reseal::open_target(empty.path()).err().unwrap();
    assert_eq!(err.kind, ErrorKind::Usage);
    assert!(
        err.message.contains(r"Windows\System32\config\SYSTEM"),
        "{err}"
    );
    // The config folder alone is not enough: every command reads SYSTEM first.
    let tree = Tree::empty();
    let err = reseal::open_target(tree.root()).err().unwrap();
    assert_eq!(err.kind, ErrorKind::Usage);
    assert!(err.message.contains("is not a Windows image"), "{err}");
    tree.write("Windows/System32/config/SYSTEM", b"");
    assert!(reseal::open_target(tree.root()).is_ok());
    let err = reseal::open_target(&tree.path("missing")).err().unwrap();
    assert!(err.file.unwrap().ends_with("missing"));
}

#[test]
fn replace_file_keeps_the_owner() {
    use std::os::unix::fs::MetadataExt;
    let tree = Tree::empty();
    let file = tree.path("Windows/owned.txt");
    tree.write("Windows/owned.txt", b"old");
    if std::os::unix::fs::chown(&file, Some(4242), Some(4343)).is_err() {
        eprintln!("skipping: only root can give a file another owner");
        return;
    }
    // Attributes outside the user namespace (ntfs-3g's are system.*) need root as well.
    xattr::set(&file, "trusted.reseal.test", b"privileged").unwrap();
    let mut target = Folder::open(tree.root()).unwrap();
    target.replace_file(r"Windows\owned.txt", b"new").unwrap();
    let meta = fs::metadata(&file).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (4242, 4343));
    assert_eq!(
        xattr::get(&file, "trusted.reseal.test").unwrap().as_deref(),
        Some(&b"privileged"[..])
    );
    assert_eq!(fs::read(&file).unwrap(), b"new");
}
