//! A WIM with real security descriptors (captured from an NTFS volume image with wimlib's NTFS-3G
//! mode), generalized by reseal, applied back to a new NTFS volume: ntfs-3g's own tools read the
//! hives' descriptors there, and they are the originals.

mod common;

use std::path::Path;

use common::sample_tree;
use reseal::{GeneralizeOptions, Sid};
use reseal_testutil::ntfs_image::{
    apply_wim, make_volume, ntfssecaudit_descriptor, read_with_ntfs_crate, run, unix_path,
};
use reseal_testutil::{hivex_tree_of_bytes, workspace_root};

const HIVES: [&str; 3] = [
    r"Windows\System32\config\SYSTEM",
    r"Windows\System32\config\SAM",
    r"Windows\System32\config\SOFTWARE",
];

fn capture(volume: &Path, wim: &Path) {
    run(
        "wimlib-imagex",
        &[&"capture", &volume, &wim, &"--compress=LZX"],
    );
}

#[test]
fn hive_security_descriptors_survive_generalize_and_apply() {
    let Some(_) = sample_tree() else { return };
    let dir = tempfile::tempdir().unwrap();
    let volume = dir.path().join("source.img");
    make_volume(&volume, 64 << 20);
    apply_wim(&workspace_root().join("fixtures/sample.wim"), &volume);
    // Descriptors of our own choosing, different per hive, set by ntfs-3g's tool.
    for (hive, mode) in HIVES.iter().zip(["600", "640", "700"]) {
        run("ntfssecaudit", &[&volume, &mode, &unix_path(hive)]);
    }
    let originals: Vec<Vec<u8>> = HIVES
        .iter()
        .map(|hive| ntfssecaudit_descriptor(&volume, hive))
        .collect();
    assert_ne!(
        originals[0], originals[1],
        "the descriptors differ per hive"
    );

    let wim = dir.path().join("captured.wim");
    capture(&volume, &wim);
    let options = GeneralizeOptions {
        computer_name: Some("NEW-PC".into()),
        sid: Some(Sid::parse_machine_sid("S-1-5-21-1111111111-2222222222-3333333333").unwrap()),
        ..Default::default()
    };
    let mut target = reseal::open_target(&wim).unwrap();
    let (_, report) = reseal::generalize(target.as_mut(), &options, &[]).unwrap();
    let report = report.unwrap();
    drop(target);
    for hive in HIVES {
        assert!(
            report
                .hives_written
                .iter()
                .any(|h| h.eq_ignore_ascii_case(hive)),
            "{hive} was rewritten"
        );
    }
    run("wimlib-imagex", &[&"verify", &wim]);

    let applied = dir.path().join("applied.img");
    make_volume(&applied, 64 << 20);
    apply_wim(&wim, &applied);
    for (hive, original) in HIVES.iter().zip(&originals) {
        assert_eq!(
            &ntfssecaudit_descriptor(&applied, hive),
            original,
            "the security descriptor of {hive}"
        );
    }
    // And the applied SYSTEM hive is the generalized one.
    let system = read_with_ntfs_crate(&applied, HIVES[0]).unwrap();
    let tree = hivex_tree_of_bytes(&system);
    let setup = tree.children.iter().find(|k| k.name == "Setup").unwrap();
    let in_progress = setup
        .values
        .iter()
        .find(|v| v.name == "SystemSetupInProgress")
        .unwrap();
    assert_eq!(in_progress.data, 1u32.to_le_bytes());
}
