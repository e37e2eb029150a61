//! Replacing a file's data in place, checked with wimlib-imagex (verify, dir, extract).

mod common;

use std::path::Path;
use std::process::Command;

use common::{capture, extract_to_stdout, oracle_tree, verify, wimlib_imagex, OracleEntry};
use reseal_nt::hex;
use reseal_wim::{Wim, WimImage};
use sha1::{Digest, Sha1};

fn new_contents(seed: u8) -> Vec<u8> {
    // More than one 32 KiB chunk, compressible, and unlike anything already stored.
    let mut data: Vec<u8> = (0..90_000u32)
        .map(|i| ((i / 7) as u8).wrapping_mul(seed) ^ (i % 13) as u8)
        .collect();
    data.extend_from_slice(b"replaced by reseal-wim");
    data
}

/// Replaces `path` (wimlib's `/`-style path) in image `index` of `wim` and checks that only
/// its data and last write time (and those of its hard links) changed.
fn replace_and_check(wim: &Path, index: u32, path: &str, contents: &[u8]) {
    let images = reseal_wim::Wim::open(wim).unwrap().image_count();
    let before: Vec<_> = (1..=images).map(|i| oracle_tree(wim, i)).collect();
    let old_bytes = std::fs::read(wim).unwrap();

    let mut image = WimImage::open(wim, &index.to_string(), true).unwrap();
    let dentry = image.metadata().lookup(&path[1..]).unwrap();
    let linked: Vec<String> = image
        .metadata()
        .hard_links(dentry)
        .iter()
        .map(|&i| format!("/{}", image.metadata().path_of(i).replace('\\', "/")))
        .collect();
    image.replace_file(&path[1..], contents).unwrap();
    assert_eq!(image.read_file(&path[1..]).unwrap().unwrap(), contents);
    drop(image);

    verify(wim);
    let new_bytes = std::fs::read(wim).unwrap();
    assert_eq!(
        &new_bytes[208..old_bytes.len()],
        &old_bytes[208..],
        "{}: bytes after the header were rewritten",
        wim.display()
    );

    // Empty data is stored as no blob: a zero hash.
    let new_hash = if contents.is_empty() {
        "0".repeat(40)
    } else {
        hex::encode(&Sha1::digest(contents))
    };
    for (i, old_tree) in before.iter().enumerate() {
        let image_index = i as u32 + 1;
        let new_tree = oracle_tree(wim, image_index);
        assert_eq!(
            new_tree.keys().collect::<Vec<_>>(),
            old_tree.keys().collect::<Vec<_>>()
        );
        for (entry_path, old) in old_tree {
            let new = &new_tree[entry_path];
            if image_index != index || !linked.contains(entry_path) {
                assert_eq!(
                    new,
                    old,
                    "{} image {image_index} {entry_path} changed",
                    wim.display()
                );
                continue;
            }
            let expect = OracleEntry {
                last_write_time: new.last_write_time.clone(),
                streams: old
                    .streams
                    .iter()
                    .map(|(label, hash, size)| {
                        if label == "Unnamed data stream" {
                            (label.clone(), new_hash.clone(), contents.len() as u64)
                        } else {
                            (label.clone(), hash.clone(), *size)
                        }
                    })
                    .collect(),
                ..old.clone()
            };
            assert_eq!(
                new,
                &expect,
                "{} {entry_path}: more than data and last write time changed",
                wim.display()
            );
            assert_eq!(extract_to_stdout(wim, index, entry_path), contents);
        }
    }
    // A fresh reader agrees.
    let mut reopened = WimImage::open(wim, &index.to_string(), false).unwrap();
    assert_eq!(reopened.read_file(&path[1..]).unwrap().unwrap(), contents);
}

/// The first regular file with data in image `index`, as wimlib-imagex lists it.
fn some_file(wim: &Path, index: u32) -> String {
    oracle_tree(wim, index)
        .into_iter()
        .find(|(_, entry)| {
            entry.attributes & 0x10 == 0
                && entry
                    .streams
                    .iter()
                    .any(|(label, _, size)| label == "Unnamed data stream" && *size > 0)
        })
        .map(|(path, _)| path)
        .expect("a file with data")
}

#[test]
fn real_wims_take_a_replaced_file() {
    let dir = tempfile::tempdir().unwrap();
    for name in [
        "XPRESS.wim",
        "LZX.wim",
        "LZMS.wim",
        "BootXPRESS.wim",
        "MultiImage.wim",
    ] {
        let Some(original) = reseal_testutil::real_fixture(&format!("images/managedwimlib/{name}"))
        else {
            return;
        };
        let wim = dir.path().join(name);
        std::fs::copy(&original, &wim).unwrap();
        let mut permissions = std::fs::metadata(&wim).unwrap().permissions();
        #[allow(clippy::permissions_set_readonly_false)]
        permissions.set_readonly(false);
        std::fs::set_permissions(&wim, permissions).unwrap();
        let count = reseal_wim::Wim::open(&wim).unwrap().image_count();
        // The last image: for MultiImage.wim the others must stay as they were.
        let path = some_file(&wim, count);
        replace_and_check(&wim, count, &path, &new_contents(3));
        // A second update on top of the first, with small contents this time.
        replace_and_check(&wim, count, &path, b"second");
    }
}

fn build_tree(root: &Path) {
    std::fs::create_dir_all(root.join("Windows/System32/config")).unwrap();
    std::fs::create_dir_all(root.join("Users/Default")).unwrap();
    let big: Vec<u8> = (0..200_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8 & 0x3f)
        .collect();
    std::fs::write(root.join("Windows/System32/config/SOFTWARE"), &big).unwrap();
    std::fs::write(
        root.join("Windows/System32/config/SYSTEM"),
        b"regf system hive stand-in",
    )
    .unwrap();
    std::fs::write(root.join("Users/Default/ntuser.dat"), b"user hive").unwrap();
    std::fs::hard_link(
        root.join("Users/Default/ntuser.dat"),
        root.join("Users/Default/link.dat"),
    )
    .unwrap();
    std::fs::write(root.join("Users/Default/empty.txt"), b"").unwrap();
    std::fs::write(root.join("same.txt"), b"regf system hive stand-in").unwrap();
}

#[test]
fn captures_take_replaced_files_in_every_compression() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    build_tree(&tree);
    for (name, extra) in [
        ("lzx.wim", &["--compress=LZX"][..]),
        ("none.wim", &["--compress=none"][..]),
        ("solid.esd", &["--solid"][..]),
        ("integrity.wim", &["--check", "--compress=XPRESS"][..]),
        ("boot.wim", &["--compress=LZX", "--boot"][..]),
        // Chunks smaller than the usual 32 KiB: new resources must use them too.
        (
            "small-chunks.wim",
            &["--compress=XPRESS", "--chunk-size=4096"][..],
        ),
    ] {
        let wim = dir.path().join(name);
        capture(&tree, &wim, extra);
        replace_and_check(
            &wim,
            1,
            "/Windows/System32/config/SOFTWARE",
            &new_contents(5),
        );
        // Both hard links see the new data; attributes and security stay.
        replace_and_check(&wim, 1, "/Users/Default/link.dat", &new_contents(9));
        // An empty file gets data; a file becomes empty.
        replace_and_check(&wim, 1, "/Users/Default/empty.txt", b"now with data");
        replace_and_check(&wim, 1, "/Windows/System32/config/SYSTEM", b"");
        // Contents equal to a blob already stored are not stored twice.
        let len = std::fs::metadata(&wim).unwrap().len();
        replace_and_check(&wim, 1, "/same.txt", &new_contents(5));
        let grown = std::fs::metadata(&wim).unwrap().len() - len;
        assert!(
            grown < 20_000,
            "{name}: the shared blob was stored again ({grown} bytes appended)"
        );
    }
}

#[test]
fn read_only_handles_and_directories_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    build_tree(&tree);
    let wim = dir.path().join("t.wim");
    capture(&tree, &wim, &["--compress=LZX"]);
    let before = std::fs::read(&wim).unwrap();
    let mut reader = WimImage::open(&wim, "1", false).unwrap();
    assert!(reader
        .replace_file(r"Windows\System32\config\SYSTEM", b"x")
        .is_err());
    let mut writer = WimImage::open(&wim, "1", true).unwrap();
    assert!(writer.replace_file("Windows", b"x").is_err());
    assert!(writer.replace_file("missing.txt", b"x").is_err());
    assert_eq!(std::fs::read(&wim).unwrap(), before);
}

/// NTFS-3G mode capture: files carry real security descriptors and an alternate data stream,
/// which a replace must keep (wimlib's own update API drops them).
#[test]
fn ntfs_captures_keep_security_descriptors_and_streams() {
    let dir = tempfile::tempdir().unwrap();
    let volume = dir.path().join("volume.img");
    let run = |program: &str, args: &[&str]| {
        let output = Command::new(program).args(args).output();
        match output {
            Ok(output) => assert!(
                output.status.success(),
                "{program} {args:?}: {}",
                String::from_utf8_lossy(&output.stderr)
            ),
            Err(e)
                if e.kind() == std::io::ErrorKind::NotFound
                    && std::env::var("CI").as_deref() != Ok("true") =>
            {
                eprintln!("skipping: {program} is not installed");
                return false;
            }
            Err(e) => panic!("{program}: {e}"),
        }
        true
    };
    std::fs::File::create(&volume)
        .unwrap()
        .set_len(16 << 20)
        .unwrap();
    if !run(
        "/usr/sbin/mkntfs",
        &["-F", "-f", "-q", volume.to_str().unwrap()],
    ) {
        return;
    }
    let source = dir.path().join("hive");
    std::fs::write(&source, b"original hive").unwrap();
    let zone = dir.path().join("zone");
    std::fs::write(&zone, b"[ZoneTransfer]\r\nZoneId=3\r\n").unwrap();
    let v = volume.to_str().unwrap();
    assert!(run(
        "/usr/sbin/ntfscp",
        &[v, source.to_str().unwrap(), "SYSTEM"]
    ));
    assert!(run(
        "/usr/sbin/ntfscp",
        &["-N", "Zone.Identifier", v, zone.to_str().unwrap(), "SYSTEM"]
    ));
    assert!(run(
        "/usr/sbin/ntfscp",
        &[v, zone.to_str().unwrap(), "other.txt"]
    ));
    let wim = dir.path().join("ntfs.wim");
    capture(&volume, &wim, &["--compress=LZX"]);

    let tree = oracle_tree(&wim, 1);
    let system = &tree["/SYSTEM"];
    assert!(
        system.security_descriptor.is_some(),
        "NTFS mode gives real descriptors"
    );
    assert!(system
        .streams
        .iter()
        .any(|(label, _, _)| label.contains("Zone.Identifier")));
    replace_and_check(&wim, 1, "/SYSTEM", &new_contents(11));
    let after = oracle_tree(&wim, 1);
    assert_eq!(
        after["/SYSTEM"].security_descriptor,
        system.security_descriptor
    );
    assert_eq!(after["/SYSTEM"].attributes, system.attributes);
    let mut image = WimImage::open(&wim, "1", false).unwrap();
    assert_eq!(
        image
            .read_named_stream("system", "zone.identifier")
            .unwrap()
            .unwrap(),
        b"[ZoneTransfer]\r\nZoneId=3\r\n"
    );
    assert!(image
        .read_named_stream("system", "other")
        .unwrap()
        .is_none());
}

/// In a solid WIM new blobs are ordinary resources compressed with the header's codec (see
/// the crate documentation); wimlib reads them and can repack them into a solid resource.
#[test]
fn new_blobs_in_a_solid_wim_are_non_solid_and_repackable() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    build_tree(&tree);
    let wim = dir.path().join("solid.esd");
    capture(&tree, &wim, &["--solid"]);
    let contents = new_contents(3);
    let mut image = WimImage::open(&wim, "1", true).unwrap();
    image
        .replace_file(r"Windows\System32\config\SOFTWARE", &contents)
        .unwrap();
    drop(image);
    verify(&wim);

    let mut reopened = Wim::open(&wim).unwrap();
    assert!(!reopened.blob_table().solid_runs.is_empty(), "a solid WIM");
    let hash: [u8; 20] = Sha1::digest(&contents).into();
    let entry = &reopened.blob_table().entries[reopened.blob_table().find(&hash).unwrap()];
    assert_eq!(entry.solid_run, None);
    assert!(entry.reshdr.is_compressed());
    assert_eq!(reopened.read_blob(&hash).unwrap(), contents);

    wimlib_imagex(&["optimize", wim.to_str().unwrap(), "--solid"]);
    verify(&wim);
    assert_eq!(
        extract_to_stdout(&wim, 1, "/Windows/System32/config/SOFTWARE"),
        contents
    );
    let repacked = Wim::open(&wim).unwrap();
    let index = repacked.blob_table().find(&hash).unwrap();
    assert!(repacked.blob_table().entries[index].solid_run.is_some());
}
