//! The XML counts an update writes (DIRCOUNT, FILECOUNT, TOTALBYTES, HARDLINKBYTES) are the
//! ones wimlib computes for the same tree: wimlib-imagex update, given commands that cancel
//! out, recomputes them, and must find nothing to change.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::{capture, verify, wimlib_imagex};
use reseal_testutil::ntfs_image::{make_volume, run};
use reseal_wim::WimImage;

/// The count lines of `wimlib-imagex info` for image 1.
fn counts(wim: &Path) -> Vec<String> {
    let info = String::from_utf8(wimlib_imagex(&["info", wim.to_str().unwrap(), "1"])).unwrap();
    let lines: Vec<String> = info
        .lines()
        .filter(|line| {
            [
                "Directory Count:",
                "File Count:",
                "Total Bytes:",
                "Hard Link Bytes:",
            ]
            .iter()
            .any(|field| line.starts_with(field))
        })
        .map(str::to_string)
        .collect();
    assert_eq!(lines.len(), 4, "{info}");
    lines
}

/// Has wimlib recompute the counts of image 1 without changing its tree: add an empty
/// directory and delete it again in one update.
fn counts_as_wimlib_computes_them(wim: &Path, scratch: &Path) -> Vec<String> {
    let copy = scratch.join("recomputed.wim");
    std::fs::copy(wim, &copy).unwrap();
    let empty = scratch.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let mut child = Command::new("wimlib-imagex")
        .args(["update", copy.to_str().unwrap(), "1"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("wimlib-imagex is installed");
    use std::io::Write;
    writeln!(
        child.stdin.take().unwrap(),
        "add '{}' /recount-probe\ndelete --recursive /recount-probe",
        empty.display()
    )
    .unwrap();
    assert!(
        child.wait().unwrap().success(),
        "wimlib-imagex update failed"
    );
    counts(&copy)
}

fn build_tree(root: &Path) {
    std::fs::create_dir_all(root.join("Windows/System32")).unwrap();
    std::fs::create_dir_all(root.join("Windows/Temp/sub")).unwrap();
    std::fs::write(root.join("Windows/System32/linked.dll"), vec![7u8; 1000]).unwrap();
    for link in ["Windows/linked-1.dll", "Windows/Temp/linked-2.dll"] {
        std::fs::hard_link(root.join("Windows/System32/linked.dll"), root.join(link)).unwrap();
    }
    std::fs::write(root.join("Windows/System32/pair.txt"), b"pair").unwrap();
    std::fs::hard_link(
        root.join("Windows/System32/pair.txt"),
        root.join("Windows/pair.txt"),
    )
    .unwrap();
    std::fs::write(root.join("Windows/Temp/a.log"), vec![b'a'; 5000]).unwrap();
    std::fs::write(root.join("Windows/Temp/sub/b.log"), b"b").unwrap();
    std::fs::write(root.join("plain.txt"), b"plain").unwrap();
    std::os::unix::fs::symlink("Windows", root.join("to-windows")).unwrap();
    std::os::unix::fs::symlink("plain.txt", root.join("to-plain")).unwrap();
}

/// The tree of [`build_tree`] captured with LZX as `c.wim` in `dir`.
fn captured_tree(dir: &Path) -> std::path::PathBuf {
    let tree = dir.join("tree");
    build_tree(&tree);
    let wim = dir.join("c.wim");
    capture(&tree, &wim, &["--compress=LZX"]);
    wim
}

#[test]
fn counts_match_wimlib_after_deletes_creates_and_replaces() {
    let dir = tempfile::tempdir().unwrap();
    let wim = captured_tree(dir.path());
    let captured = counts(&wim);
    assert_eq!(counts_as_wimlib_computes_them(&wim, dir.path()), captured);
    assert!(
        captured.iter().any(|line| line.ends_with(" 2004")),
        "two extra links of 1000 bytes and one of 4: {captured:?}"
    );

    // Each edit written on its own, then a batch: the counts follow every step.
    let mut image = WimImage::open(&wim, "1", true).unwrap();
    image
        .replace_file(r"Windows\System32\linked.dll", &vec![9u8; 3000])
        .unwrap();
    drop(image);
    verify(&wim);
    let after_replace = counts(&wim);
    assert_ne!(after_replace, captured);
    assert_eq!(
        counts_as_wimlib_computes_them(&wim, dir.path()),
        after_replace
    );

    let mut image = WimImage::open(&wim, "1", true).unwrap();
    image.set_batch(true);
    // One link of the three goes with its directory, one of the pair on its own.
    assert!(image.delete(r"Windows\Temp").unwrap());
    assert!(image.delete(r"Windows\pair.txt").unwrap());
    assert!(image.delete("to-plain").unwrap());
    image
        .create_file(r"Windows\Setup\Scripts\SetupComplete.cmd", b"@echo off\r\n")
        .unwrap();
    image
        .replace_file("plain.txt", b"longer than before")
        .unwrap();
    image.commit().unwrap();
    drop(image);
    verify(&wim);
    let after_batch = counts(&wim);
    // The root, Windows, System32, Setup, Scripts; two links of linked.dll, pair.txt,
    // plain.txt, SetupComplete.cmd and the directory symlink (a reparse point, so a file).
    // Bytes: 2 × 3000 + 4 + 18 + 11 + the symlink's 44 bytes of reparse data.
    assert_eq!(
        after_batch,
        [
            "Directory Count:        5",
            "File Count:             6",
            "Total Bytes:            6077",
            "Hard Link Bytes:        3000",
        ]
    );
    assert_eq!(
        counts_as_wimlib_computes_them(&wim, dir.path()),
        after_batch
    );
}

/// Alternate data streams count in the sizes (an NTFS-3G capture has them).
#[test]
fn alternate_data_streams_count_as_wimlib_counts_them() {
    let dir = tempfile::tempdir().unwrap();
    let volume = dir.path().join("volume.img");
    make_volume(&volume, 16 << 20);
    let data = dir.path().join("data");
    std::fs::write(&data, vec![b'd'; 700]).unwrap();
    let zone = dir.path().join("zone");
    std::fs::write(&zone, b"[ZoneTransfer]\r\nZoneId=3\r\n").unwrap();
    run("ntfscp", &[&volume, &data, &"SYSTEM"]);
    run("ntfscp", &[&volume, &data, &"other.bin"]);
    for file in ["SYSTEM", "other.bin"] {
        run(
            "ntfscp",
            &[&"-N", &"Zone.Identifier", &volume, &zone, &file],
        );
    }
    let wim = dir.path().join("ntfs.wim");
    capture(&volume, &wim, &["--compress=LZX"]);

    let mut image = WimImage::open(&wim, "1", true).unwrap();
    image.set_batch(true);
    image.replace_file("SYSTEM", &vec![b's'; 1234]).unwrap();
    assert!(image.delete("other.bin").unwrap());
    image.commit().unwrap();
    drop(image);
    verify(&wim);
    let ours = counts(&wim);
    assert!(
        ours.contains(&"Total Bytes:            1260".to_string()),
        "1234 bytes of data and 26 of the stream: {ours:?}"
    );
    assert_eq!(counts_as_wimlib_computes_them(&wim, dir.path()), ours);
}

/// An image set aside for another (`--index all`) gets its counts from the tree as edited,
/// without the tree being parsed back from the bytes written: the same counts.
#[test]
fn counts_of_an_image_set_aside_match_wimlib() {
    let dir = tempfile::tempdir().unwrap();
    let single = captured_tree(dir.path());
    let wim = dir.path().join("two.wim");
    for name in ["One", "Two"] {
        wimlib_imagex(&[
            "export",
            single.to_str().unwrap(),
            "1",
            wim.to_str().unwrap(),
            name,
        ]);
    }
    let captured = counts(&wim);

    let mut image = WimImage::open(&wim, "1", true).unwrap();
    image.set_batch(true);
    assert!(image.delete(r"Windows\Temp").unwrap());
    image
        .create_file(r"Windows\Setup\Scripts\SetupComplete.cmd", b"@echo off\r\n")
        .unwrap();
    image
        .replace_file("plain.txt", b"longer than before")
        .unwrap();
    image.select_image("2").unwrap();
    image.commit().unwrap();
    drop(image);
    verify(&wim);
    let after = counts(&wim);
    assert_ne!(after, captured);
    assert_eq!(counts_as_wimlib_computes_them(&wim, dir.path()), after);
}
