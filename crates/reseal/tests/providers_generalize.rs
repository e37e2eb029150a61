//! Generalize as a whole on the reference image (built here, read back with hivex): the setup
//! state Sysprep leaves, audit and OOBE and the reseals without generalize, a second run, and
//! real Windows hives.

mod common;

use common::reference_image::*;
use common::{hivex_value, hivex_value_at, Tree};
use reseal::image::Image;
use reseal::providers::accounts::is_account_disabled;
use reseal::{Action, DirectoryTarget, GeneralizeOptions, Mode};
use reseal_hive::data::{decode_multi_sz, decode_sz, encode_dword};

#[test]
fn generalize_to_oobe_leaves_the_sysprep_setup_state() {
    let (tree, _) = generalized_reference_image();
    let sys = system(&tree);
    // Setup state.
    assert_eq!(
        setup_values(&system(&tree)),
        // What the real Sysprep run left (sysprep-effects §1.7, COFOUNDRY): SetupType 2,
        // OOBEInProgress 1; SystemSetupInProgress 1 and SetupPhase 4 from the applied image (USOS).
        (r"oobe\windeploy.exe".to_string(), 2, 1, 1, 4)
    );
    let (registry_state, ini) = image_state(&tree);
    assert_eq!(registry_state, "IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE");
    assert_eq!(
        ini,
        // Unquoted, as WritePrivateProfileStringW writes it (sysprep-effects §1.1, OOBE-DECOMP).
        "[State]\r\nImageState=IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE\r\n"
    );
    assert_eq!(
        dword(&sys, r"Setup\Status\SysprepStatus", "GeneralizationState"),
        // 4 until the clone's setup has run (sysprep-effects §1.7, COFOUNDRY).
        Some(4)
    );
    assert_eq!(
        dword(&sys, r"Setup\Status\SysprepStatus", "CleanupState"),
        Some(2)
    );
    assert!(exists(
        &tree,
        "Windows/System32/Sysprep/Sysprep_succeeded.tag"
    ));
}

#[test]
fn a_second_run_plans_nothing_and_setupcl_stays_listed_once() {
    let tree = reference_image();
    generalize(&tree, &options());
    let again = GeneralizeOptions {
        ignore_checks: vec!["already-generalized".to_string()],
        ..options()
    };
    let plan = plan_on(&tree, &again).unwrap();
    assert!(plan.changes.is_empty(), "{plan}");
    generalize(&tree, &again);
    assert_eq!(
        setup_execute(&system(&tree)),
        vec![
            "existing-setup-program.exe".to_string(),
            "setupcl.exe".to_string()
        ]
    );
}

#[test]
fn audit_oobe_and_the_reseals_without_generalize_differ_as_sysprep_does() {
    // (generalize, mode, ImageState, OOBEInProgress): SetupType is 2 in every mode (the real
    // run, COFOUNDRY; the Vista audit reseal, LU-307); OOBEInProgress is 1 only when headed for
    // OOBE (sysprep-effects §1.2, §1.7).
    let cases = [
        (true, Mode::Oobe, "IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE", 1),
        (
            true,
            Mode::Audit,
            "IMAGE_STATE_GENERALIZE_RESEAL_TO_AUDIT",
            0,
        ),
        (
            false,
            Mode::Oobe,
            "IMAGE_STATE_SPECIALIZE_RESEAL_TO_OOBE",
            1,
        ),
        (
            false,
            Mode::Audit,
            "IMAGE_STATE_SPECIALIZE_RESEAL_TO_AUDIT",
            0,
        ),
    ];
    for (generalize_image, mode, state, oobe_in_progress) in cases {
        let tree = reference_image();
        let options = GeneralizeOptions {
            generalize: generalize_image,
            mode,
            ..options()
        };
        generalize(&tree, &options);
        let what = format!("generalize={generalize_image} mode={mode:?}");
        assert_eq!(
            setup_values(&system(&tree)),
            (r"oobe\windeploy.exe".to_string(), 2, 1, oobe_in_progress, 4),
            "{what}"
        );
        let (registry_state, ini) = image_state(&tree);
        assert_eq!(registry_state, state, "{what}");
        assert!(
            ini.contains(&format!("ImageState={state}\r\n")),
            "{what}: {ini}"
        );

        let sys = system(&tree);
        let sw = software(&tree);
        let sam = hivex(&tree, "Windows/System32/config/SAM");
        let (_, f) = hivex_value(&sam, r"SAM\Domains\Account\Users\000001F4", "F").unwrap();
        let disabled = generalize_image && mode == Mode::Oobe;
        assert_eq!(is_account_disabled(&f), Some(disabled), "{what}");
        if !disabled {
            assert_eq!(f, administrator_f(), "{what}: F untouched");
        }
        // Generalize-only work.
        assert_eq!(
            has_key(&sys, r"Setup\SetupCl\PendingRequest"),
            generalize_image,
            "{what}"
        );
        assert_eq!(
            setup_execute(&sys).contains(&"setupcl.exe".to_string()),
            generalize_image,
            "{what}"
        );
        assert_eq!(
            has_value(
                &sw,
                r"Microsoft\Windows\CurrentVersion\WindowsUpdate",
                "SusClientId"
            ),
            !generalize_image,
            "{what}"
        );
        assert_eq!(
            has_value(&sys, &format!(r"{CS}\Services\TPM\WMI"), "WindowsAIKHash"),
            !generalize_image,
            "{what}"
        );
        let name = string(
            &sys,
            &format!(r"{CS}\Control\ComputerName\ComputerName"),
            "ComputerName",
        );
        assert_eq!(
            name.as_deref() == Some(OLD_NAME),
            !generalize_image,
            "{what}"
        );
        // Cleanup.xml work runs every time.
        assert!(
            !has_value(
                &sw,
                r"Microsoft\Windows NT\CurrentVersion\Schedule",
                "HashingCompleted"
            ),
            "{what}"
        );
        assert_eq!(
            evtx_records(&tree.path("Windows/System32/winevt/Logs/System.evtx")),
            0,
            "{what}"
        );
        assert!(!exists(&tree, "Windows/Prefetch/Layout.ini"), "{what}");
    }
}

#[test]
fn real_windows_hives_generalize_as_hivex_reads_them() {
    // A real Windows 10 SYSTEM hive (dirty, with its logs) and a real Server 2022 SAM/SECURITY
    // pair; SOFTWARE is built, since no real one is at hand. The hives are big, so hivex reads
    // single keys rather than whole trees.
    let tree = Tree::empty();
    if tree.copy_real_hives().is_none() {
        return;
    }
    software_hive().write(&tree, "Windows/System32/config/SOFTWARE");
    let system_file = tree.path("Windows/System32/config/SYSTEM");
    let control_set = {
        let mut target = DirectoryTarget::open(tree.root()).unwrap();
        Image::new(&mut target).control_set().unwrap()
    };
    let session_manager = format!(r"{control_set}\Control\Session Manager");
    let computer_name_key = format!(r"{control_set}\Control\ComputerName\ComputerName");
    let name_before = hivex_value_at(&system_file, &computer_name_key, "ComputerName");

    // The server pair is domain-joined and SYSTEM_B has pending file renames: both are refused
    // by validation, which is not what this test is about.
    let options = GeneralizeOptions {
        ignore_checks: vec!["domain-joined".to_string(), "pending-servicing".to_string()],
        ..options()
    };
    let mut target = DirectoryTarget::open(tree.root()).unwrap();
    let plan = reseal::plan(&mut target, &options, &[]).unwrap();
    let execute_before: Vec<String> = plan
        .changes
        .iter()
        .find_map(|change| match &change.action {
            Action::SetValue { name, before, .. } if name == "SetupExecute" => Some(
                before
                    .as_ref()
                    .map(|(_, data)| decode_multi_sz(data))
                    .unwrap_or_default(),
            ),
            _ => None,
        })
        .expect("setupcl.exe is added");
    reseal::apply(&mut target, &plan).unwrap();

    let read = |key: &str, name: &str| hivex_value_at(&system_file, key, name);
    // sysprep-effects §1.7: SetupType 2 and OOBEInProgress 1 as the real Sysprep run left them
    // (COFOUNDRY); SystemSetupInProgress 1 and SetupPhase 4 as in an applied image (USOS).
    for (name, expected) in [
        ("SetupType", 2),
        ("SystemSetupInProgress", 1),
        ("OOBEInProgress", 1),
        ("SetupPhase", 4),
    ] {
        assert_eq!(
            read("Setup", name),
            Some((4, encode_dword(expected))),
            "{name}"
        );
    }
    assert_eq!(
        read("Setup", "CmdLine")
            .map(|(_, d)| decode_sz(&d))
            .as_deref(),
        Some(r"oobe\windeploy.exe")
    );
    let polacdms = hivex_value_at(
        &tree.path("Windows/System32/config/SECURITY"),
        r"Policy\PolAcDmS",
        "",
    )
    .unwrap()
    .1;
    assert_eq!(
        read(r"Setup\SetupCl\PendingRequest", "SidAccountDomainOld"),
        Some((0x5D6C_70BA, polacdms))
    );
    let mut expected = execute_before;
    expected.push("setupcl.exe".to_string());
    let (_, execute) = read(&session_manager, "SetupExecute").unwrap();
    assert_eq!(decode_multi_sz(&execute), expected);
    assert_ne!(read(&computer_name_key, "ComputerName"), name_before);
    let (_, f) = hivex_value_at(
        &tree.path("Windows/System32/config/SAM"),
        r"SAM\Domains\Account\Users\000001F4",
        "F",
    )
    .unwrap();
    assert_eq!(is_account_disabled(&f), Some(true));
}
