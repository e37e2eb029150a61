//! The machine SID provider: the request setupcl carries out at the next boot, a chosen SID,
//! and SAM and SECURITY hives (built here or real) that must agree on the SID.

mod common;

use common::reference_image::*;
use common::{hivex_value, Tree};
use reseal::image::{Image, SAM, SECURITY};
use reseal::providers::machine_sid::machine_sid_bytes;
use reseal::{DirectoryTarget, ErrorKind, GeneralizeOptions, Sid};

#[test]
fn generalize_to_oobe_requests_a_new_machine_sid_once() {
    let (tree, _) = generalized_reference_image();
    let sys = system(&tree);
    // Machine SID request: the old SID is PolAcDmS byte for byte; setupcl appended once.
    let security = hivex(&tree, "Windows/System32/config/SECURITY");
    let (_, polacdms) = hivex_value(&security, r"Policy\PolAcDmS", "").unwrap();
    let request = pending_request(&sys);
    let old = request
        .values
        .iter()
        .find(|v| v.name == "SidAccountDomainOld")
        .unwrap();
    assert_eq!(old.data, polacdms);
    assert_eq!(
        old.value_type, 0x5D6C_70BA,
        "the type SclPendRequest writes"
    );
    assert_eq!(
        dword(&sys, r"Setup\SetupCl\PendingRequest", "OperationFlags"),
        Some(0x5F04)
    );
    assert!(!has_value(
        &sys,
        r"Setup\SetupCl\PendingRequest",
        "SidAccountDomainNew"
    ));
    assert_eq!(
        setup_execute(&sys),
        vec![
            "existing-setup-program.exe".to_string(),
            "setupcl.exe".to_string()
        ]
    );
}

#[test]
fn a_chosen_sid_goes_into_the_request() {
    let tree = reference_image();
    let sid = Sid::parse_machine_sid("S-1-5-21-1000-2000-3000").unwrap();
    generalize(
        &tree,
        &GeneralizeOptions {
            sid: Some(sid.clone()),
            ..options()
        },
    );
    let (value_type, data) = hivex_value(
        &system(&tree),
        r"Setup\SetupCl\PendingRequest",
        "SidAccountDomainNew",
    )
    .unwrap();
    assert_eq!(value_type, 0x5D6C_70BA);
    assert_eq!(data, sid.to_bytes());

    // A later run without --sid drops the stale choice, so setupcl picks a random SID.
    let again = GeneralizeOptions {
        ignore_checks: vec!["already-generalized".to_string()],
        ..options()
    };
    generalize(&tree, &again);
    assert!(!has_value(
        &system(&tree),
        r"Setup\SetupCl\PendingRequest",
        "SidAccountDomainNew"
    ));
}

#[test]
fn hives_that_disagree_on_the_machine_sid_stop_the_run_naming_both() {
    let other = Sid::parse("S-1-5-21-1-2-3").unwrap().to_bytes();
    let tree = reference_image_with_sam(&other);
    let before = tree.snapshot();
    let error = plan_on(&tree, &options()).unwrap_err();
    assert_eq!(error.kind, ErrorKind::Refused);
    assert!(
        error.message.contains(SECURITY) && error.message.contains(SAM),
        "{error}"
    );
    assert!(
        error.message.contains(MACHINE_SID) && error.message.contains("S-1-5-21-1-2-3"),
        "{error}"
    );
    assert_eq!(tree.snapshot(), before);
}

/// The machine SID read from a real SAM and SECURITY pair copied into a fresh tree, or `None`
/// when the fixtures are missing.
fn real_machine_sid(sam: &str, security: &str) -> Option<(Tree, reseal::Result<Vec<u8>>)> {
    let tree = Tree::empty();
    tree.copy_fixture(sam, "Windows/System32/config/SAM")?;
    tree.copy_fixture(security, "Windows/System32/config/SECURITY")?;
    let mut target = DirectoryTarget::open(tree.root()).unwrap();
    let result = machine_sid_bytes(&mut Image::new(&mut target));
    Some((tree, result))
}

#[test]
fn real_sam_and_security_hives_agree_on_the_machine_sid() {
    for version in [
        "win2008_32",
        "win2008r2_64",
        "win2012_64",
        "win2016_64",
        "win2022_64",
    ] {
        let Some((tree, result)) = real_machine_sid(
            &format!("hives/aiowinreg/{version}/sam.reg"),
            &format!("hives/aiowinreg/{version}/security.reg"),
        ) else {
            return;
        };
        let bytes = result.unwrap_or_else(|e| panic!("{version}: {e}"));
        assert!(
            Sid::from_bytes(&bytes).unwrap().is_machine_domain_sid(),
            "{version}"
        );
        // hivex reads the same bytes in both hives.
        let security = hivex(&tree, "Windows/System32/config/SECURITY");
        assert_eq!(
            hivex_value(&security, r"Policy\PolAcDmS", "").unwrap().1,
            bytes,
            "{version}"
        );
        let sam = hivex(&tree, "Windows/System32/config/SAM");
        let (_, v) = hivex_value(&sam, r"SAM\Domains\Account", "V").unwrap();
        assert_eq!(&v[v.len() - 24..], bytes.as_slice(), "{version}");
    }
}

#[test]
fn a_real_sam_and_security_from_different_machines_are_refused() {
    // regipy's SAM and SECURITY samples come from two different machines.
    let Some((_, result)) = real_machine_sid("hives/regipy/SAM", "hives/regipy/SECURITY") else {
        return;
    };
    let error = result.unwrap_err();
    assert_eq!(error.kind, ErrorKind::Refused);
    assert!(
        error.message.contains(SAM) && error.message.contains(SECURITY),
        "{error}"
    );
}
