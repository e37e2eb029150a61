//! `verify::verify` on the sample image: untouched (not armed), after reseal's own runs (armed),
//! edited to the values a real Sysprep run was seen to leave (armed), and half-armed in the ways
//! real pipelines went wrong.

mod common;

use common::{edit_hive, sample_tree, set_dword, set_sz, Tree};
use reseal::verify::verify;
use reseal::{DirectoryTarget, GeneralizeOptions, Mode, ValueType, Verdict, VerifyReport};
use reseal_hive::data::encode_multi_sz;

const SYSTEM: &str = "Windows/System32/config/SYSTEM";
const SOFTWARE: &str = "Windows/System32/config/SOFTWARE";

fn verified(tree: &Tree, mode: Mode) -> VerifyReport {
    let mut target = DirectoryTarget::open(tree.root()).unwrap();
    verify(&mut target, mode).unwrap()
}

fn failed_checks(report: &VerifyReport) -> Vec<&'static str> {
    report.failures().map(|check| check.name).collect()
}

fn run(tree: &Tree, generalize: bool, mode: Mode) {
    let options = GeneralizeOptions {
        generalize,
        mode,
        ..GeneralizeOptions::default()
    };
    let mut target = DirectoryTarget::open(tree.root()).unwrap();
    reseal::generalize(&mut target, &options, &[]).unwrap();
}

#[test]
fn a_finished_installation_is_not_armed() {
    let Some(tree) = sample_tree() else {
        return;
    };
    let report = verified(&tree, Mode::Oobe);
    assert_eq!(report.verdict, Verdict::NotArmed, "{report:#?}");
    assert!(failed_checks(&report).contains(&"image-state"));
    assert!(failed_checks(&report).contains(&"sid-request"));
    assert!(failed_checks(&report).contains(&"child-completion"));
}

#[test]
fn what_reseal_writes_is_armed_in_every_mode_and_only_for_its_mode() {
    for (generalize, mode) in [
        (true, Mode::Oobe),
        (true, Mode::Audit),
        (false, Mode::Oobe),
        (false, Mode::Audit),
    ] {
        let Some(tree) = sample_tree() else {
            return;
        };
        run(&tree, generalize, mode);
        let report = verified(&tree, mode);
        assert_eq!(
            report.verdict,
            Verdict::Armed,
            "generalize={generalize} {mode:?}: {report:#?}"
        );
        assert_eq!(report.generalized, Some(generalize));
        let other = match mode {
            Mode::Oobe => Mode::Audit,
            Mode::Audit => Mode::Oobe,
        };
        let report = verified(&tree, other);
        assert_eq!(
            report.verdict,
            Verdict::ArmedForOtherMode,
            "generalize={generalize} {mode:?} checked for {other:?}: {report:#?}"
        );
        // An audit image has OOBEInProgress 0, which fails for OOBE as well.
        let expected = match other {
            Mode::Oobe => vec!["image-state", "oobe-in-progress"],
            Mode::Audit => vec!["image-state"],
        };
        assert_eq!(failed_checks(&report), expected);
    }
}

/// The sample edited to what the real Server 2019 `sysprep /generalize /oobe /quit` left
/// (sysprep-effects §1.7, COFOUNDRY), the values it did not report taken from the other armed
/// observations of §1.7 (ChildCompletion: the applied image, USOS, and Windows' OOBE code,
/// OOBE-DECOMP; a pending setupcl request: CLONEID) and everything else left as the finished
/// installation had it: SystemSetupInProgress 0, SetupPhase 0, no ImageServicingData, no
/// CleanupState, no UnattendPasses.
fn edited_to_the_real_sysprep_values() -> Option<Tree> {
    let tree = sample_tree()?;
    edit_hive(&tree, SYSTEM, |hive| {
        set_dword(hive, "Setup", "SetupType", 2);
        set_sz(hive, "Setup", "CmdLine", r"oobe\windeploy.exe");
        set_dword(hive, "Setup", "OOBEInProgress", 1);
        set_sz(
            hive,
            "Setup",
            "RespecializeCmdLine",
            "sysprep /respecialize /quiet",
        );
        set_dword(
            hive,
            r"Setup\Status\SysprepStatus",
            "GeneralizationState",
            4,
        );
        hive.delete_value(r"Setup\Status\SysprepStatus", "CleanupState")
            .unwrap();
        set_dword(hive, r"Setup\Status\ChildCompletion", "setup.exe", 0);
        set_dword(hive, r"Setup\Status\ChildCompletion", "oobeldr.exe", 0);
        set_dword(hive, r"Setup\Status\ChildCompletion", "SetupFinalTasks", 0);
        set_dword(hive, r"Setup\SetupCl\PendingRequest", "OperationFlags", 4);
        hive.set_value(
            r"ControlSet001\Control\Session Manager",
            "SetupExecute",
            ValueType::MULTI_SZ,
            &encode_multi_sz(&["setupcl.exe"]),
        )
        .unwrap();
    });
    edit_hive(&tree, SOFTWARE, |hive| {
        set_sz(
            hive,
            r"Microsoft\Windows\CurrentVersion\Setup\State",
            "ImageState",
            "IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE",
        );
    });
    tree.write(
        "Windows/Setup/State/State.ini",
        b"[State]\r\nImageState=IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE\r\n",
    );
    Some(tree)
}

#[test]
fn the_values_a_real_sysprep_run_left_are_armed() {
    let Some(tree) = edited_to_the_real_sysprep_values() else {
        return;
    };
    let report = verified(&tree, Mode::Oobe);
    assert_eq!(report.verdict, Verdict::Armed, "{report:#?}");
}

#[test]
fn half_armed_images_fail_the_check_that_says_why() {
    // (what goes wrong, the edit, the check that fails)
    type Edit = fn(&mut reseal_hive::Hive);
    let cases: [(&str, Edit, &str); 6] = [
        // COFOUNDRY: sysprep exited 0 and left SetupType 0 and an empty CmdLine.
        (
            "unarmed setup values",
            |hive| {
                set_dword(hive, "Setup", "SetupType", 0);
                set_sz(hive, "Setup", "CmdLine", "");
            },
            "setup-type",
        ),
        (
            "GeneralizationState 7, reseal's former value",
            |hive| {
                set_dword(
                    hive,
                    r"Setup\Status\SysprepStatus",
                    "GeneralizationState",
                    7,
                )
            },
            "generalization-state",
        ),
        (
            "a finished install's ChildCompletion",
            |hive| set_dword(hive, r"Setup\Status\ChildCompletion", "oobeldr.exe", 3),
            "child-completion",
        ),
        (
            "a failed oobeSystem status (AUTOWINAD)",
            |hive| set_dword(hive, r"Setup\Status\UnattendPasses", "oobeSystem", 1),
            "unattend-passes",
        ),
        (
            "no setupcl request",
            |hive| {
                hive.delete_value(r"Setup\SetupCl\PendingRequest", "OperationFlags")
                    .unwrap();
            },
            "sid-request",
        ),
        (
            "OOBEInProgress 0, reseal's former value",
            |hive| set_dword(hive, "Setup", "OOBEInProgress", 0),
            "oobe-in-progress",
        ),
    ];
    for (what, edit, check) in cases {
        let Some(tree) = edited_to_the_real_sysprep_values() else {
            return;
        };
        edit_hive(&tree, SYSTEM, edit);
        let report = verified(&tree, Mode::Oobe);
        assert_eq!(report.verdict, Verdict::HalfArmed, "{what}: {report:#?}");
        assert!(
            failed_checks(&report).contains(&check),
            "{what}: {:?}",
            failed_checks(&report)
        );
    }
}

#[test]
fn verify_writes_nothing() {
    let Some(tree) = edited_to_the_real_sysprep_values() else {
        return;
    };
    let before = tree.snapshot();
    verified(&tree, Mode::Oobe);
    verified(&tree, Mode::Audit);
    assert!(tree.snapshot() == before, "verify changed the image");
}
