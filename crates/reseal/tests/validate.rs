//! Validation: each check refuses what it should, all failures come at once, and each can be
//! skipped by name.

mod common;

use common::{edit_hive, new_hive, win7_clean_tree, Tree};
use reseal::image::Image;
use reseal::validate::{run_checks, validate, CHECKS};
use reseal::{DirectoryTarget, ErrorKind, GeneralizeOptions, ValueType};
use reseal_hive::data::{encode_dword, encode_multi_sz, encode_sz};

const DOMAIN_SID: [u8; 24] = [
    1, 4, 0, 0, 0, 0, 0, 5, 21, 0, 0, 0, 0xe4, 0xb2, 0x8e, 0x09, 0xae, 0x58, 0x9f, 0xe1, 0xb1,
    0xd3, 0x6a, 0x77,
];

fn failed_checks(tree: &Tree) -> Vec<&'static str> {
    let mut target = DirectoryTarget::open(tree.root()).unwrap();
    run_checks(&mut Image::new(&mut target))
        .unwrap()
        .into_iter()
        .map(|f| f.check)
        .collect()
}

fn validate_with(tree: &Tree, ignore: &[&str]) -> reseal::Result<()> {
    let mut target = DirectoryTarget::open(tree.root()).unwrap();
    let options = GeneralizeOptions {
        ignore_checks: ignore.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    };
    validate(&mut Image::new(&mut target), &options)
}

#[test]
fn a_clean_workgroup_image_passes() {
    let Some(tree) = win7_clean_tree() else {
        return;
    };
    assert_eq!(failed_checks(&tree), Vec::<&str>::new());
    validate_with(&tree, &[]).unwrap();
}

#[test]
fn a_hive_copied_without_its_logs_while_dirty_is_refused() {
    let Some(tree) = common::win7_tree() else {
        return;
    };
    let err = validate_with(&tree, &[]).unwrap_err();
    assert!(
        err.message
            .contains(r"dirty-hive: Windows\System32\config\SECURITY"),
        "{err}"
    );
    validate_with(&tree, &["dirty-hive"]).unwrap();
}

#[test]
fn a_domain_member_is_refused() {
    let Some(tree) = win7_clean_tree() else {
        return;
    };
    edit_hive(&tree, "Windows/System32/config/SECURITY", |h| {
        h.set_value(r"Policy\PolPrDmS", "", ValueType::NONE, &DOMAIN_SID)
            .unwrap()
    });
    let err = validate_with(&tree, &[]).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Refused);
    assert!(err.message.contains("domain-joined"), "{err}");
    assert!(
        err.message
            .contains("S-1-5-21-160346852-3785316526-2003489713"),
        "{err}"
    );
    validate_with(&tree, &["domain-joined"]).unwrap();

    // An empty or all-zero PolPrDmS is a workgroup machine.
    edit_hive(&tree, "Windows/System32/config/SECURITY", |h| {
        h.set_value(r"Policy\PolPrDmS", "", ValueType::NONE, &[0; 24])
            .unwrap()
    });
    validate_with(&tree, &[]).unwrap();
}

#[test]
fn a_real_domain_member_is_refused() {
    let tree = Tree::empty();
    if tree
        .copy_fixture(
            "hives/aiowinreg/win2022_64/security.reg",
            "Windows/System32/config/SECURITY",
        )
        .is_none()
    {
        return;
    }
    assert_eq!(failed_checks(&tree), vec!["domain-joined"]);
}

#[test]
fn pending_servicing_is_refused() {
    let Some(tree) = win7_clean_tree() else {
        return;
    };
    tree.write("Windows/WinSxS/pending.xml", b"<PendingTransaction/>");
    assert_eq!(failed_checks(&tree), vec!["pending-servicing"]);
    std::fs::remove_file(tree.path("Windows/WinSxS/pending.xml")).unwrap();

    edit_hive(&tree, "Windows/System32/config/SYSTEM", |h| {
        h.set_value(
            r"ControlSet001\Control\Session Manager",
            "PendingFileRenameOperations",
            ValueType::MULTI_SZ,
            &encode_multi_sz(&[r"\??\C:\Windows\x.dll", ""]),
        )
        .unwrap()
    });
    let err = validate_with(&tree, &[]).unwrap_err();
    assert!(err.message.contains("PendingFileRenameOperations"), "{err}");
}

#[test]
fn an_already_generalized_image_is_refused() {
    let Some(tree) = win7_clean_tree() else {
        return;
    };
    tree.write(
        "Windows/Setup/State/State.ini",
        b"[State]\r\nImageState=\"IMAGE_STATE_COMPLETE\"\r\n",
    );
    assert_eq!(failed_checks(&tree), Vec::<&str>::new());
    tree.write(
        "Windows/Setup/State/State.ini",
        b"[State]\r\nImageState=IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE\r\n",
    );
    let err = validate_with(&tree, &[]).unwrap_err();
    assert!(
        err.message
            .contains("IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE"),
        "{err}"
    );
    // The registry copy wins over State.ini.
    new_hive(
        &tree,
        "Windows/System32/config/SOFTWARE",
        &[(
            r"Microsoft\Windows\CurrentVersion\Setup\State",
            "ImageState",
            ValueType::SZ,
            encode_sz("IMAGE_STATE_COMPLETE"),
        )],
    );
    assert_eq!(failed_checks(&tree), Vec::<&str>::new());
}

#[test]
fn an_upgrade_is_refused_only_before_1607() {
    let Some(tree) = win7_clean_tree() else {
        return;
    };
    edit_hive(&tree, "Windows/System32/config/SYSTEM", |h| {
        h.set_value("Setup", "Upgrade", ValueType::DWORD, &encode_dword(1))
            .unwrap()
    });
    let build = |b: &str| {
        new_hive(
            &tree,
            "Windows/System32/config/SOFTWARE",
            &[(
                r"Microsoft\Windows NT\CurrentVersion",
                "CurrentBuildNumber",
                ValueType::SZ,
                encode_sz(b),
            )],
        )
    };
    // Build unknown (no SOFTWARE): refused.
    assert_eq!(failed_checks(&tree), vec!["upgraded-before-1607"]);
    build("9600");
    let err = validate_with(&tree, &[]).unwrap_err();
    assert!(err.message.contains("build 9600"), "{err}");
    build("14393");
    assert_eq!(failed_checks(&tree), Vec::<&str>::new());
}

#[test]
fn a_dirty_hive_without_its_logs_is_refused() {
    let tree = Tree::empty();
    if tree
        .copy_fixture("hives/regipy/SYSTEM_B", "Windows/System32/config/SYSTEM")
        .is_none()
    {
        return;
    }
    let err = validate_with(&tree, &[]).unwrap_err();
    assert!(err.message.contains("dirty-hive"), "{err}");
    assert!(err.message.contains(r"config\SYSTEM"), "{err}");
    // With its logs it is recovered.
    tree.copy_fixture(
        "hives/regipy/SYSTEM_B.LOG1",
        "Windows/System32/config/SYSTEM.LOG1",
    )
    .unwrap();
    tree.copy_fixture(
        "hives/regipy/SYSTEM_B.LOG2",
        "Windows/System32/config/SYSTEM.LOG2",
    )
    .unwrap();
    assert!(!failed_checks(&tree).contains(&"dirty-hive"));
}

#[test]
fn all_failures_are_listed_at_once_and_each_can_be_ignored() {
    let Some(tree) = win7_clean_tree() else {
        return;
    };
    edit_hive(&tree, "Windows/System32/config/SECURITY", |h| {
        h.set_value(r"Policy\PolPrDmS", "", ValueType::NONE, &DOMAIN_SID)
            .unwrap()
    });
    tree.write("Windows/WinSxS/pending.xml", b"x");
    tree.write(
        "Windows/Setup/State/State.ini",
        b"[State]\r\nImageState=IMAGE_STATE_UNDEPLOYABLE\r\n",
    );
    let err = validate_with(&tree, &[]).unwrap_err();
    for check in ["domain-joined", "pending-servicing", "already-generalized"] {
        assert!(
            err.message.contains(&format!("\n  {check}: ")),
            "{check}: {err}"
        );
    }
    assert_eq!(err.remedy, Some(reseal::Remedy::FixOrSkipChecks), "{err}");
    let err = validate_with(&tree, &["pending-servicing"]).unwrap_err();
    assert!(!err.message.contains("pending-servicing"), "{err}");
    assert!(err.message.contains("domain-joined"), "{err}");
    validate_with(
        &tree,
        &["pending-servicing", "domain-joined", "already-generalized"],
    )
    .unwrap();

    // Unknown names are a usage error that lists the real ones.
    let err = validate_with(&tree, &["no-such-check"]).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Usage);
    for check in CHECKS {
        assert!(err.message.contains(check), "{err}");
    }

    // Planning validates first and writes nothing when refused.
    let before = tree.snapshot();
    let mut target = DirectoryTarget::open(tree.root()).unwrap();
    let err = reseal::generalize(&mut target, &GeneralizeOptions::default(), &[]).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Refused, "{err}");
    assert_eq!(tree.snapshot(), before);
}
