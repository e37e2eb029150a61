//! Reading real WIMs and fresh captures, checked against wimlib-imagex.

mod common;

use std::path::{Path, PathBuf};

use common::{capture, extract_to_stdout, oracle_tree};
use reseal_nt::hex;
use reseal_wim::{Wim, WimImage};

/// Checks every dentry and every file's data of every image of `wim` against wimlib-imagex.
/// Returns how many files had their contents compared.
fn assert_matches_wimlib(wim_path: &Path) -> usize {
    let wim = Wim::open(wim_path).unwrap();
    let count = wim.image_count();
    assert!(count >= 1, "{}", wim_path.display());
    let mut compared = 0;
    for index in 1..=count {
        let oracle = oracle_tree(wim_path, index);
        let mut image = WimImage::open(wim_path, &index.to_string(), false).unwrap();
        let metadata = image.metadata().clone();
        let ours: Vec<String> = (0..metadata.dentries.len())
            .map(|i| format!("/{}", metadata.path_of(i).replace('\\', "/")))
            .collect();
        let mut sorted = ours.clone();
        sorted.sort();
        assert_eq!(
            sorted,
            oracle.keys().cloned().collect::<Vec<_>>(),
            "{} image {index}: paths",
            wim_path.display()
        );
        for (i, path) in ours.iter().enumerate() {
            let dentry = &metadata.dentries[i];
            let expected = &oracle[path];
            let what = format!("{} image {index} {path}", wim_path.display());
            assert_eq!(dentry.short_name, expected.short_name, "{what}: short name");
            assert_eq!(dentry.attributes, expected.attributes, "{what}: attributes");
            assert_eq!(
                metadata.security_descriptor(i).map(hex::encode),
                expected.security_descriptor,
                "{what}: security descriptor"
            );
            assert_eq!(
                metadata.hard_links(i).len() as u32,
                expected.link_count,
                "{what}: link count"
            );
            let unnamed = expected
                .streams
                .iter()
                .find(|(label, _, _)| label == "Unnamed data stream");
            if let Some((_, hash, size)) = unnamed {
                assert_eq!(&hex::encode(&dentry.data_hash()), hash, "{what}: data hash");
                assert_eq!(
                    image.wim().blob_size(&dentry.data_hash()),
                    Some(*size),
                    "{what}: data size"
                );
            }
            let named: Vec<String> = expected
                .streams
                .iter()
                .filter(|(label, _, _)| label.starts_with("Named"))
                .map(|(_, hash, _)| hash.clone())
                .collect();
            let ours_named: Vec<String> = dentry
                .named_streams
                .iter()
                .map(|s| hex::encode(&s.hash))
                .collect();
            assert_eq!(ours_named, named, "{what}: named streams");
            if !dentry.is_dir() && unnamed.is_some_and(|(_, _, size)| *size > 0) {
                let data = image.read_file(&path[1..]).unwrap().unwrap();
                assert_eq!(
                    data,
                    extract_to_stdout(wim_path, index, path),
                    "{what}: contents"
                );
                compared += 1;
            }
        }
    }
    compared
}

#[test]
fn real_wims_read_like_wimlib() {
    for name in [
        "XPRESS.wim",
        "LZX.wim",
        "LZMS.wim",
        "BootXPRESS.wim",
        "MultiImage.wim",
    ] {
        let Some(path) = reseal_testutil::real_fixture(&format!("images/managedwimlib/{name}"))
        else {
            return;
        };
        assert!(
            assert_matches_wimlib(&path) > 0,
            "{name}: no file contents compared"
        );
    }
    if let Some(path) = reseal_testutil::real_fixture("images/discutils/TestData.wim") {
        assert!(assert_matches_wimlib(&path) > 0);
    }
}

fn sample_tree() -> PathBuf {
    reseal_testutil::workspace_root().join("fixtures/sample")
}

/// A tree with the shapes that matter: nested directories, empty and multi-chunk files, a hard
/// link, a symbolic link, names differing only in case.
pub fn build_tree(root: &Path) {
    std::fs::create_dir_all(root.join("Windows/System32/config")).unwrap();
    std::fs::create_dir_all(root.join("Users/Default")).unwrap();
    std::fs::create_dir_all(root.join("empty dir")).unwrap();
    let big: Vec<u8> = (0..200_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8 & 0x3f)
        .collect();
    std::fs::write(root.join("Windows/System32/config/SOFTWARE"), &big).unwrap();
    std::fs::write(
        root.join("Windows/System32/config/SYSTEM"),
        b"regf system hive stand-in",
    )
    .unwrap();
    std::fs::write(root.join("Users/Default/empty.txt"), b"").unwrap();
    std::fs::write(root.join("Users/Default/ntuser.dat"), b"user hive").unwrap();
    std::fs::hard_link(
        root.join("Users/Default/ntuser.dat"),
        root.join("Users/Default/link.dat"),
    )
    .unwrap();
    std::os::unix::fs::symlink("Windows", root.join("winlink")).unwrap();
    std::fs::write(root.join("Case.txt"), b"upper").unwrap();
    std::fs::write(root.join("case.txt"), b"lower").unwrap();
}

#[test]
fn captures_read_like_wimlib_in_every_compression() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    build_tree(&tree);
    for (name, extra) in [
        ("lzx.wim", &["--compress=LZX"][..]),
        ("xpress.wim", &["--compress=XPRESS"][..]),
        ("none.wim", &["--compress=none"][..]),
        ("lzms.wim", &["--compress=LZMS"][..]),
        ("solid.esd", &["--solid"][..]),
        ("integrity.wim", &["--check", "--compress=LZX"][..]),
    ] {
        let wim = dir.path().join(name);
        capture(&tree, &wim, extra);
        assert!(assert_matches_wimlib(&wim) >= 4, "{name}");
    }
    // The repository's sample image, as committed.
    let committed = reseal_testutil::workspace_root().join("fixtures/sample.wim");
    if committed.is_file() {
        assert!(assert_matches_wimlib(&committed) > 0);
    }
    let sample = sample_tree();
    if sample.is_dir() {
        let wim = dir.path().join("sample.wim");
        capture(&sample, &wim, &["--compress=LZX"]);
        assert!(assert_matches_wimlib(&wim) > 0);
    }
}

#[test]
fn lookups_ignore_case_but_prefer_the_exact_name() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    build_tree(&tree);
    let wim = dir.path().join("t.wim");
    capture(&tree, &wim, &["--compress=LZX"]);
    let mut image = WimImage::open(&wim, "Sample", false).unwrap();
    assert_eq!(
        image
            .read_file(r"windows\SYSTEM32\Config\system")
            .unwrap()
            .unwrap(),
        b"regf system hive stand-in"
    );
    assert_eq!(image.read_file("case.txt").unwrap().unwrap(), b"lower");
    assert_eq!(image.read_file("Case.txt").unwrap().unwrap(), b"upper");
    assert_eq!(image.read_file("CASE.TXT").unwrap().unwrap().len(), 5);
    assert_eq!(
        image
            .read_file(r"Users\Default\empty.txt")
            .unwrap()
            .unwrap(),
        b""
    );
    assert!(image.read_file("missing").unwrap().is_none());
    assert!(image.read_file(r"..\x").unwrap().is_none());
    assert!(image.read_file("Windows").is_err());
    let mut listing = image.list_dir(r"Windows\System32\config").unwrap().unwrap();
    listing.sort_by(|a, b| a.name.cmp(&b.name));
    let names: Vec<(&str, u64)> = listing.iter().map(|e| (e.name.as_str(), e.size)).collect();
    assert_eq!(names, [("SOFTWARE", 200_000), ("SYSTEM", 25)]);
    assert!(image.list_dir("nowhere").unwrap().is_none());
    assert!(image.list_dir("Case.txt").is_err());
    assert!(WimImage::open(&wim, "7", false).is_err());
    assert!(WimImage::open(&wim, "no such name", false).is_err());
    assert_eq!(WimImage::open(&wim, "1", false).unwrap().index(), 1);
}

#[test]
fn split_wims_are_refused_with_a_reason() {
    for name in ["Split.swm", "Split2.swm"] {
        let Some(path) = reseal_testutil::real_fixture(&format!("images/managedwimlib/{name}"))
        else {
            return;
        };
        let error = Wim::open(&path)
            .err()
            .expect("split WIMs are refused")
            .to_string();
        assert!(
            error.contains("split WIM") && error.contains(name),
            "{error}"
        );
    }
}

#[test]
fn pipable_wims_are_refused_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    build_tree(&tree);
    let wim = dir.path().join("p.wim");
    capture(&tree, &wim, &["--pipable"]);
    let error = Wim::open(&wim)
        .err()
        .expect("pipable WIMs are refused")
        .to_string();
    assert!(error.contains("pipable"), "{error}");
}

/// Damaged copies of real WIMs give errors, never panics or runaway allocations.
#[test]
fn damaged_wims_fail_cleanly() {
    let Some(path) = reseal_testutil::real_fixture("images/managedwimlib/MultiImage.wim") else {
        return;
    };
    let original = std::fs::read(&path).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("damaged.wim");
    let mut state = 0x9e37_79b9u32;
    let mut failures = 0;
    for round in 0..400 {
        let mut bytes = original.clone();
        state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        let at = state as usize % bytes.len();
        bytes[at] ^= 1 << (round % 8);
        if round % 50 == 0 {
            bytes.truncate(at);
        }
        std::fs::write(&copy, &bytes).unwrap();
        let outcome = (|| -> reseal_wim::Result<()> {
            let wim = Wim::open(&copy)?;
            for index in 1..=wim.image_count() {
                let mut image = WimImage::open(&copy, &index.to_string(), false)?;
                let paths: Vec<String> = (0..image.metadata().dentries.len())
                    .map(|i| image.metadata().path_of(i))
                    .collect();
                for path in paths {
                    if !image.lookup(&path).is_some_and(|d| d.is_dir()) {
                        image.read_file(&path)?;
                    }
                }
            }
            Ok(())
        })();
        if outcome.is_err() {
            failures += 1;
        }
    }
    // Flips in the XML text, times, unused fields or the (unread) integrity table are
    // harmless to a reader; flips in hashed data or structure must be reported.
    assert!(
        failures > 50,
        "only {failures} of 400 damaged copies were reported"
    );
    std::fs::write(&copy, &original[..original.len() / 2]).unwrap();
    assert!(WimImage::open(&copy, "1", false).is_err());
}
