//! Damaged WIMs are refused as corrupt before anything is edited: dentry names that are empty,
//! `.`, `..` or hold `/`, `\` or NUL; an image count the blob table or the XML data disagrees
//! with; XML nested too deep; blob table entries past the end of the file. Each error names the
//! WIM, the structure, where it is and why. The damaged WIMs are made here: captured without
//! compression by wimlib-imagex, then patched (the metadata's SHA-1 updated, so only the damage
//! under test is wrong).

mod common;

use std::path::{Path, PathBuf};

use common::capture;
use reseal_nt::utf16;
use reseal_wim::header::HEADER_SIZE;
use reseal_wim::Wim;
use sha1::{Digest, Sha1};

/// A WIM without compression holding files named `zz`, `q`, `a_b`, `c_d`, `e_f` and `g_h`.
fn uncompressed_wim(dir: &Path) -> PathBuf {
    let tree = dir.join("tree");
    std::fs::create_dir_all(tree.join("Windows")).unwrap();
    for name in ["zz", "q", "a_b", "c_d", "e_f", "g_h"] {
        std::fs::write(tree.join("Windows").join(name), name.as_bytes()).unwrap();
    }
    let wim = dir.join("damaged.wim");
    capture(&tree, &wim, &["--compress=none"]);
    wim
}

/// The dentry's fixed part is 102 bytes; its name length is at 100 and its name follows.
const DENTRY_NAME: usize = 102;

/// Patches the name of the dentry named `old` with `patch(name bytes, length field)` and
/// updates the metadata resource's SHA-1 in the blob table.
fn patch_dentry_name(wim: &Path, old: &str, patch: impl FnOnce(&mut [u8])) {
    let reshdr = {
        let opened = Wim::open(wim).unwrap();
        let table = opened.blob_table();
        table.entries[table.metadata[0]].reshdr
    };
    let mut bytes = std::fs::read(wim).unwrap();
    let (start, end) = (
        reshdr.offset as usize,
        (reshdr.offset + reshdr.size_in_wim) as usize,
    );
    let old_hash: [u8; 20] = Sha1::digest(&bytes[start..end]).into();
    let mut pattern = ((old.len() * 2) as u16).to_le_bytes().to_vec();
    pattern.extend(utf16::encode_le(old));
    pattern.extend([0, 0]);
    let found = bytes[start..end]
        .windows(pattern.len())
        .position(|w| w == pattern)
        .unwrap_or_else(|| panic!("no dentry named {old}"));
    let dentry = start + found + 2 - DENTRY_NAME;
    patch(&mut bytes[dentry..dentry + DENTRY_NAME + old.len() * 2]);
    let new_hash: [u8; 20] = Sha1::digest(&bytes[start..end]).into();
    let table = std::fs::read(wim).unwrap();
    let at = table
        .windows(20)
        .enumerate()
        .filter(|&(i, w)| w == old_hash && (i < start || i >= end))
        .map(|(i, _)| i)
        .collect::<Vec<_>>();
    assert_eq!(at.len(), 1, "the metadata hash is in the blob table once");
    bytes[at[0]..at[0] + 20].copy_from_slice(&new_hash);
    std::fs::write(wim, bytes).unwrap();
}

/// Opening `wim` and loading its image fails as corrupt, naming the WIM, `structure` and
/// `reason`; the file is as it was.
fn assert_corrupt(wim: &Path, structure: &str, reason: &str) {
    let before = std::fs::read(wim).unwrap();
    let result = Wim::open_for_update(wim).and_then(|mut opened| opened.load_image(1));
    let error = result.expect_err("the damaged WIM was accepted");
    assert!(
        matches!(error, reseal_wim::Error::Corrupt { .. }),
        "not corrupt: {error}"
    );
    let text = error.to_string();
    assert!(
        text.contains(&wim.display().to_string())
            && text.contains(&format!("invalid {structure}"))
            && text.contains(reason),
        "{text}"
    );
    assert_eq!(std::fs::read(wim).unwrap(), before, "the file changed");
}

#[test]
fn the_undamaged_capture_opens() {
    let dir = tempfile::tempdir().unwrap();
    let wim = uncompressed_wim(dir.path());
    // A patch that changes nothing keeps it readable: the hash bookkeeping is right.
    patch_dentry_name(&wim, "zz", |_| {});
    let mut opened = Wim::open(&wim).unwrap();
    let image = opened.load_image(1).unwrap();
    assert!(image.dentries.iter().any(|d| d.name == "zz"));
}

#[test]
fn dentry_names_that_leave_or_split_a_path_are_corrupt() {
    let units = |text: &str| utf16::encode_le(text);
    let cases: &[(&str, &str, &str)] = &[
        ("zz", "..", "the name is \"..\""),
        ("q", ".", "the name is \".\""),
        ("a_b", "a/b", "contains '/'"),
        ("c_d", "c\\d", "contains '\\\\'"),
        ("e_f", "e\0f", "contains '\\0'"),
    ];
    for &(old, new, reason) in cases {
        let dir = tempfile::tempdir().unwrap();
        let wim = uncompressed_wim(dir.path());
        let new = units(new);
        patch_dentry_name(&wim, old, |dentry| {
            dentry[DENTRY_NAME..].copy_from_slice(&new);
        });
        assert_corrupt(&wim, "dentry", reason);
        assert_corrupt(&wim, "dentry", "at offset ");
    }
    let dir = tempfile::tempdir().unwrap();
    let wim = uncompressed_wim(dir.path());
    patch_dentry_name(&wim, "g_h", |dentry| {
        dentry[100..102].copy_from_slice(&[0, 0])
    });
    assert_corrupt(&wim, "dentry", "the name is empty");
}

#[test]
fn an_image_count_the_blob_table_disagrees_with_is_corrupt() {
    let Some((_dir, wim)) = reseal_testutil::sample_wim_copy() else {
        return;
    };
    let mut bytes = std::fs::read(&wim).unwrap();
    bytes[44..48].copy_from_slice(&0x7FFF_FFFFu32.to_le_bytes());
    std::fs::write(&wim, bytes).unwrap();
    assert_corrupt(
        &wim,
        "header",
        "image count at offset 44 is 2147483647, but the blob table holds metadata for 1 images",
    );
}

/// Replaces the XML data with `xml`, appended at the end of the file.
fn replace_xml(wim: &Path, xml: &str) {
    let mut header = Wim::open(wim).unwrap().header().clone();
    let mut bytes = std::fs::read(wim).unwrap();
    let encoded = utf16::encode_le_with_bom(xml);
    header.xml_data.offset = bytes.len() as u64;
    header.xml_data.size_in_wim = encoded.len() as u64;
    header.xml_data.uncompressed_size = encoded.len() as u64;
    bytes.extend(encoded);
    bytes[..HEADER_SIZE].copy_from_slice(&header.to_bytes());
    std::fs::write(wim, bytes).unwrap();
}

#[test]
fn xml_nested_too_deep_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let wim = uncompressed_wim(dir.path());
    let image = "<IMAGE INDEX=\"1\"><NAME>Sample</NAME></IMAGE>";
    replace_xml(
        &wim,
        &format!("<WIM>{image}{}{}</WIM>", "<X>".repeat(5), "</X>".repeat(5)),
    );
    Wim::open(&wim).expect("a few levels are fine");
    replace_xml(
        &wim,
        &format!(
            "<WIM>{image}{}{}</WIM>",
            "<X>".repeat(10_000),
            "</X>".repeat(10_000)
        ),
    );
    assert_corrupt(
        &wim,
        "XML data",
        "nested 10001 levels deep, more than the 32 allowed",
    );
    // wimlib cannot read such a WIM either.
    let info = std::process::Command::new("wimlib-imagex")
        .args(["info", wim.to_str().unwrap()])
        .output()
        .expect("wimlib-imagex is installed");
    assert!(
        !info.status.success(),
        "wimlib-imagex read XML 10001 levels deep"
    );
}

#[test]
fn xml_describing_another_number_of_images_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let wim = uncompressed_wim(dir.path());
    let image = |i: u32| format!("<IMAGE INDEX=\"{i}\"><NAME>Sample{i}</NAME></IMAGE>");
    replace_xml(&wim, &format!("<WIM>{}{}</WIM>", image(1), image(2)));
    assert_corrupt(
        &wim,
        "XML data",
        "describes 2 images, the header and blob table 1",
    );
}

#[test]
fn a_blob_table_entry_past_the_end_of_the_file_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let wim = uncompressed_wim(dir.path());
    let (table, index) = {
        let opened = Wim::open(&wim).unwrap();
        let table = opened.blob_table();
        let index = (0..table.entries.len())
            .find(|i| !table.metadata.contains(i))
            .unwrap();
        (opened.header().blob_table, index)
    };
    assert!(!table.is_compressed());
    let mut bytes = std::fs::read(&wim).unwrap();
    let len = bytes.len() as u64;
    let at = table.offset as usize + index * reseal_wim::blob_table::ENTRY_SIZE + 8;
    bytes[at..at + 8].copy_from_slice(&(len + 4096).to_le_bytes());
    std::fs::write(&wim, bytes).unwrap();
    assert_corrupt(
        &wim,
        "blob table",
        &format!("entry {index} lies at offset {}", len + 4096),
    );
}
