//! Case-insensitive lookup, as Windows does it, with names that differ only in case (which
//! ntfscp can create: libntfs-3g makes POSIX-namespace names).

mod common;

use common::*;
use reseal_ntfs::{Error, Volume};

#[test]
fn exact_names_win_and_case_only_differences_are_ambiguous() {
    let dir = tempfile::tempdir().unwrap();
    let part = build_partition(
        dir.path(),
        &[
            FixtureFile {
                path: "case.txt",
                contents: b"lower".to_vec(),
            },
            FixtureFile {
                path: "CASE.txt",
                contents: b"upper".to_vec(),
            },
        ],
    );
    let disk = build_disk(dir.path(), &part, Container::Raw);
    let mut volume = Volume::mount(open_partition(&disk, true), true).unwrap();
    assert_eq!(volume.read_file("case.txt").unwrap().unwrap(), b"lower");
    assert_eq!(volume.read_file("CASE.txt").unwrap().unwrap(), b"upper");
    let error = volume.read_file("Case.TXT").unwrap_err();
    match &error {
        Error::AmbiguousName { candidates, .. } => {
            let mut candidates = candidates.clone();
            candidates.sort();
            assert_eq!(candidates, ["CASE.txt", "case.txt"]);
        }
        other => panic!("expected an ambiguous name, got {other}"),
    }
    // A name that exists in another case is not created a second time.
    assert!(matches!(
        volume.create_file("README.TXT", b"x"),
        Err(Error::AlreadyExists { .. })
    ));
    volume.delete_file("CASE.txt").unwrap();
    assert_eq!(volume.read_file("Case.TXT").unwrap().unwrap(), b"lower");
    volume.unmount().unwrap();

    let part = extract_partition(dir.path(), &disk, Container::Raw);
    assert_ntfsfix_clean(&part);
    assert_eq!(ntfscat(&part, "case.txt").as_deref(), Some(&b"lower"[..]));
    let names = ntfsls(&part, "");
    assert!(names.contains(&"case.txt".to_string()));
    assert!(!names.contains(&"CASE.txt".to_string()), "{names:?}");
}
