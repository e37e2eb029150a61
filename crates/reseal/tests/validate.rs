//! Validation: each check refuses what it should, all failures come at once, and each can be
//! skipped by name.

mod common;

use common::{edit_hive, new_hive, set_dword, set_sz, win7_clean_tree, Tree};
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
    validate(&mut Image::new(&mut target), &options).map(|_| ())
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

/// The checks added for what Sysprep checks before it runs (docs/providers.md, "Checks").
const PREFLIGHT_CHECKS: [&str; 5] = [
    "entra-joined",
    "mdm-enrolled",
    "unsupported-server-role",
    "failed-sysprep-run",
    "appx-not-provisioned",
];

const SOFTWARE_HIVE: &str = "Windows/System32/config/SOFTWARE";
const SYSTEM_HIVE: &str = "Windows/System32/config/SYSTEM";

/// Writes a new SOFTWARE hive made by `build`.
fn software(tree: &Tree, build: impl FnOnce(&mut reseal_hive::Hive)) {
    let mut hive = reseal_hive::Hive::new_empty("ROOT", 5);
    build(&mut hive);
    tree.write(SOFTWARE_HIVE, &hive.commit());
}

fn reason_of(tree: &Tree, check: &str) -> String {
    let mut target = DirectoryTarget::open(tree.root()).unwrap();
    run_checks(&mut Image::new(&mut target))
        .unwrap()
        .into_iter()
        .find(|f| f.check == check)
        .unwrap_or_else(|| panic!("{check} passed"))
        .reason
}

#[test]
fn every_check_is_listed_once() {
    for check in PREFLIGHT_CHECKS {
        assert_eq!(CHECKS.iter().filter(|c| **c == check).count(), 1, "{check}");
    }
}

#[test]
fn real_finished_installations_pass_the_preflight_checks() {
    // Windows 7 SP1 (GeneralizationState 7, CleanupState 2, ProductType WinNT).
    let Some(win7) = win7_clean_tree() else {
        return;
    };
    // Windows 10 1709 with its logs (GeneralizationState 7, no CleanupState).
    let win10 = Tree::empty();
    for (fixture, relative) in &common::REAL_HIVES[..3] {
        win10.copy_fixture(fixture, relative).unwrap();
    }
    for (name, tree) in [("win7", &win7), ("win10 1709", &win10)] {
        let failed = failed_checks(tree);
        for check in PREFLIGHT_CHECKS {
            assert!(!failed.contains(&check), "{name}: {check} in {failed:?}");
        }
    }
    // The values the checks read are there, so passing means something.
    let mut target = DirectoryTarget::open(win10.root()).unwrap();
    let mut image = Image::new(&mut target);
    assert_eq!(
        image
            .dword_value(
                reseal::image::SYSTEM,
                r"Setup\Status\SysprepStatus",
                "GeneralizationState"
            )
            .unwrap(),
        Some(7)
    );
    let mut target = DirectoryTarget::open(win7.root()).unwrap();
    let mut image = Image::new(&mut target);
    assert_eq!(
        image
            .string_value(
                reseal::image::SYSTEM,
                r"ControlSet001\Control\ProductOptions",
                "ProductType"
            )
            .unwrap()
            .as_deref(),
        Some("WinNT")
    );
}

#[test]
fn the_sample_passes_every_check_and_a_resealed_one_is_only_already_generalized() {
    let Some(tree) = common::sample_tree() else {
        return;
    };
    assert_eq!(failed_checks(&tree), Vec::<&str>::new());
    let mut target = DirectoryTarget::open(tree.root()).unwrap();
    reseal::generalize(&mut target, &common::fixed_options(), &[]).unwrap();
    drop(target);
    // GeneralizationState 4 under IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE: generalized, not failed.
    assert_eq!(failed_checks(&tree), vec!["already-generalized"]);
}

#[test]
fn a_failed_earlier_sysprep_run_is_refused() {
    let Some(tree) = win7_clean_tree() else {
        return;
    };
    let status = r"Setup\Status\SysprepStatus";
    // A stuck run (§1.3: 3 on clones whose setup never completed), with no ImageState at all.
    edit_hive(&tree, SYSTEM_HIVE, |h| {
        set_dword(h, status, "GeneralizationState", 3)
    });
    let reason = reason_of(&tree, "failed-sysprep-run");
    assert!(
        reason.contains("GeneralizationState is 3, not 7"),
        "{reason}"
    );
    assert!(!reason.contains("CleanupState"), "{reason}");
    validate_with(&tree, &["failed-sysprep-run"]).unwrap();

    // ImageState complete, CleanupState off too: both named.
    tree.write(
        "Windows/Setup/State/State.ini",
        b"[State]\r\nImageState=IMAGE_STATE_COMPLETE\r\n",
    );
    edit_hive(&tree, SYSTEM_HIVE, |h| {
        set_dword(h, status, "CleanupState", 1)
    });
    let reason = reason_of(&tree, "failed-sysprep-run");
    assert!(reason.contains("CleanupState is 1, not 2"), "{reason}");
    assert_eq!(failed_checks(&tree), vec!["failed-sysprep-run"]);

    // What a real `sysprep /generalize /oobe` leaves (§1.7, COFOUNDRY): already-generalized only.
    tree.write(
        "Windows/Setup/State/State.ini",
        b"[State]\r\nImageState=IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE\r\n",
    );
    edit_hive(&tree, SYSTEM_HIVE, |h| {
        set_dword(h, status, "GeneralizationState", 4);
        set_dword(h, status, "CleanupState", 2);
    });
    assert_eq!(failed_checks(&tree), vec!["already-generalized"]);

    // The clone once its setup has run: clean again.
    tree.write(
        "Windows/Setup/State/State.ini",
        b"[State]\r\nImageState=IMAGE_STATE_COMPLETE\r\n",
    );
    edit_hive(&tree, SYSTEM_HIVE, |h| {
        set_dword(h, status, "GeneralizationState", 7)
    });
    assert_eq!(failed_checks(&tree), Vec::<&str>::new());
}

#[test]
fn component_based_servicing_waiting_for_a_reboot_is_refused() {
    let Some(tree) = win7_clean_tree() else {
        return;
    };
    let cbs = r"Microsoft\Windows\CurrentVersion\Component Based Servicing";
    // A settled machine: SessionsPending exists with Exclusive 0; nothing is pending.
    software(&tree, |h| {
        set_dword(h, &format!(r"{cbs}\SessionsPending"), "Exclusive", 0);
        set_dword(
            h,
            &format!(r"{cbs}\SessionsPending"),
            "TotalSessionPhases",
            1,
        );
        h.create_key(&format!(r"{cbs}\Packages")).unwrap();
    });
    assert_eq!(failed_checks(&tree), Vec::<&str>::new());

    for key in ["RebootPending", "PackagesPending"] {
        software(&tree, |h| {
            h.create_key(&format!(r"{cbs}\{key}")).unwrap();
        });
        let reason = reason_of(&tree, "pending-servicing");
        assert!(reason.contains(&format!(r"{cbs}\{key} exists")), "{reason}");
    }

    software(&tree, |h| {
        set_dword(h, &format!(r"{cbs}\SessionsPending"), "Exclusive", 1)
    });
    let reason = reason_of(&tree, "pending-servicing");
    assert!(
        reason.contains(r"SessionsPending\Exclusive is 1"),
        "{reason}"
    );
    validate_with(&tree, &["pending-servicing"]).unwrap();
}

const STORE: &str = r"Microsoft\Windows\CurrentVersion\Appx\AppxAllUserStore";
const USER: &str = "S-1-5-21-2212166346-2367470993-1604424929-1001";

/// An AppX store as Windows keeps it: provisioned bundles and inbox apps, a user holding the
/// packages of those bundles, and `extra` packages for that user.
fn appx_store(tree: &Tree, extra: &[&str]) {
    software(tree, |h| {
        for provisioned in [
            "Microsoft.WindowsCalculator_10.1705.1301.0_neutral_~_8wekyb3d8bbwe",
            "Microsoft.MicrosoftEdge.Stable_120.0.2210.91_neutral__8wekyb3d8bbwe",
        ] {
            set_sz(
                h,
                &format!(r"{STORE}\Applications\{provisioned}"),
                "Path",
                r"C:\Program Files\WindowsApps\x\AppxManifest.xml",
            );
        }
        set_sz(
            h,
            &format!(
                r"{STORE}\InboxApplications\Microsoft.Windows.CloudExperienceHost_10.0.16299.15_neutral_neutral_cw5n1h2txyewy"
            ),
            "Path",
            r"C:\Windows\SystemApps\x\AppxManifest.xml",
        );
        h.create_key(&format!(r"{STORE}\Deprovisioned")).unwrap();
        for package in [
            // The x64 package and a resource package of a provisioned bundle.
            "Microsoft.WindowsCalculator_10.1705.1301.0_x64__8wekyb3d8bbwe",
            "Microsoft.WindowsCalculator_10.1705.1301.0_neutral_split.scale-100_8wekyb3d8bbwe",
            "Microsoft.MicrosoftEdge.Stable_120.0.2210.91_neutral__8wekyb3d8bbwe",
            // An inbox app in a newer version than the inbox one.
            "Microsoft.Windows.CloudExperienceHost_10.0.16299.125_neutral_neutral_cw5n1h2txyewy",
        ]
        .iter()
        .chain(extra)
        {
            h.create_key(&format!(r"{STORE}\{USER}\{package}")).unwrap();
        }
        // The local system's own registrations are no user's.
        h.create_key(&format!(
            r"{STORE}\S-1-5-18\Microsoft.Edge.GameAssist_1.0.3423.0_x64__8wekyb3d8bbwe"
        ))
        .unwrap();
    });
}

#[test]
fn appx_packages_installed_for_a_user_but_not_provisioned_are_refused() {
    let Some(tree) = win7_clean_tree() else {
        return;
    };
    appx_store(&tree, &[]);
    assert_eq!(failed_checks(&tree), Vec::<&str>::new());

    // The packages of the two public logs (SRV2022-LOG; a Windows Update's newer Edge for the
    // current user although the older one is provisioned).
    let game_assist = "Microsoft.Edge.GameAssist_1.0.3423.0_x64__8wekyb3d8bbwe";
    let newer_edge = "Microsoft.MicrosoftEdge.Stable_121.0.2277.83_neutral__8wekyb3d8bbwe";
    appx_store(&tree, &[game_assist, newer_edge]);
    let reason = reason_of(&tree, "appx-not-provisioned");
    assert!(reason.starts_with("2 AppX package(s)"), "{reason}");
    assert!(
        reason.contains(&format!("{game_assist} (user {USER})")),
        "{reason}"
    );
    assert!(reason.contains(newer_edge), "{reason}");
    assert!(reason.contains("0x80073cf2"), "{reason}");
    assert!(!reason.contains("Calculator"), "{reason}");
    validate_with(&tree, &["appx-not-provisioned"]).unwrap();

    // A framework package, told by its manifest, is tolerated.
    let vclibs = "Microsoft.VCLibs.140.00_14.0.30704.0_x64__8wekyb3d8bbwe";
    appx_store(&tree, &[vclibs]);
    assert!(reason_of(&tree, "appx-not-provisioned").contains(vclibs));
    tree.write(
        &format!("Program Files/WindowsApps/{vclibs}/AppxManifest.xml"),
        b"<?xml version=\"1.0\"?>\r\n<Package xmlns=\"http://schemas.microsoft.com/appx/manifest/foundation/windows10\">\r\n  <Properties>\r\n    <Framework>true</Framework>\r\n  </Properties>\r\n</Package>\r\n",
    );
    assert_eq!(failed_checks(&tree), Vec::<&str>::new());

    // A package being removed for that user (EndOfLife) is tolerated.
    software(&tree, |h| {
        h.create_key(&format!(r"{STORE}\{USER}\{game_assist}"))
            .unwrap();
        h.create_key(&format!(r"{STORE}\EndOfLife\{USER}\{game_assist}"))
            .unwrap();
    });
    assert_eq!(failed_checks(&tree), Vec::<&str>::new());
}

#[test]
fn a_microsoft_entra_join_is_refused() {
    let Some(tree) = win7_clean_tree() else {
        return;
    };
    let join_info = r"ControlSet001\Control\CloudDomainJoin\JoinInfo";
    // The key without a join.
    edit_hive(&tree, SYSTEM_HIVE, |h| {
        h.create_key(join_info).unwrap();
    });
    assert_eq!(failed_checks(&tree), Vec::<&str>::new());
    edit_hive(&tree, SYSTEM_HIVE, |h| {
        let join = format!(r"{join_info}\0D5A0B7A3F9A1E4C2B8D6F0E1A2B3C4D5E6F7A8B");
        set_sz(h, &join, "TenantId", "72f988bf-86f1-41af-91ab-2d7cd011db47");
        set_sz(h, &join, "UserEmail", "admin@contoso.onmicrosoft.com");
    });
    let reason = reason_of(&tree, "entra-joined");
    assert!(
        reason.contains("to tenant 72f988bf-86f1-41af-91ab-2d7cd011db47"),
        "{reason}"
    );
    assert!(
        reason.contains("by admin@contoso.onmicrosoft.com"),
        "{reason}"
    );
    assert_eq!(failed_checks(&tree), vec!["entra-joined"]);
    validate_with(&tree, &["entra-joined"]).unwrap();
}

#[test]
fn an_mdm_enrollment_is_refused_and_windows_own_subkeys_are_not() {
    let Some(tree) = win7_clean_tree() else {
        return;
    };
    let enrollments = r"Microsoft\Enrollments";
    let unenrolled = |h: &mut reseal_hive::Hive| {
        for built_in in ["Context", "Ownership", "Status", "ValidNodePaths"] {
            h.create_key(&format!(r"{enrollments}\{built_in}")).unwrap();
        }
        set_dword(
            h,
            &format!(r"{enrollments}\Status"),
            "DeviceEnrollmentCount",
            0,
        );
        // A leftover of an enrollment that was removed: no user, not enrolled.
        let leftover = format!(r"{enrollments}\1B6A4E0C-9C2F-4E7B-A3D1-5F0E2C8B7A64");
        set_dword(h, &leftover, "EnrollmentState", 0);
        set_dword(h, &leftover, "EnrollmentType", 0);
    };
    software(&tree, unenrolled);
    assert_eq!(failed_checks(&tree), Vec::<&str>::new());

    software(&tree, |h| {
        unenrolled(h);
        let intune = format!(r"{enrollments}\8E4C3A7B-2D1F-4B6E-9A0C-7F5D3E2B1A90");
        set_dword(h, &intune, "EnrollmentState", 1);
        set_dword(h, &intune, "EnrollmentType", 6);
        set_sz(h, &intune, "ProviderID", "MS DM Server");
        set_sz(h, &intune, "UPN", "user@contoso.com");
    });
    let reason = reason_of(&tree, "mdm-enrolled");
    assert!(
        reason.contains(
            "8E4C3A7B-2D1F-4B6E-9A0C-7F5D3E2B1A90 with MS DM Server for user@contoso.com"
        ),
        "{reason}"
    );
    assert!(!reason.contains("1B6A4E0C"), "{reason}");
    assert_eq!(failed_checks(&tree), vec!["mdm-enrolled"]);
    validate_with(&tree, &["mdm-enrolled"]).unwrap();
}

#[test]
fn server_roles_that_do_not_support_sysprep_are_refused() {
    let Some(tree) = win7_clean_tree() else {
        return;
    };
    let product = r"ControlSet001\Control\ProductOptions";
    let services = r"ControlSet001\Services";
    let build = |b: &str| {
        software(&tree, |h| {
            set_sz(
                h,
                r"Microsoft\Windows NT\CurrentVersion",
                "CurrentBuildNumber",
                b,
            )
        })
    };
    build("17763");

    // A client with the certificate services' service key: no server role.
    edit_hive(&tree, SYSTEM_HIVE, |h| {
        set_dword(h, &format!(r"{services}\CertSvc"), "Start", 2)
    });
    assert_eq!(failed_checks(&tree), Vec::<&str>::new());

    // A server: AD CS is unsupported.
    edit_hive(&tree, SYSTEM_HIVE, |h| {
        set_sz(h, product, "ProductType", "ServerNT")
    });
    let reason = reason_of(&tree, "unsupported-server-role");
    assert!(
        reason.contains(
            r"Active Directory Certificate Services (service ControlSet001\Services\CertSvc)"
        ),
        "{reason}"
    );

    // A server without those roles passes.
    edit_hive(&tree, SYSTEM_HIVE, |h| {
        h.delete_key(&format!(r"{services}\CertSvc")).unwrap();
    });
    assert_eq!(failed_checks(&tree), Vec::<&str>::new());

    // DHCP Server: supported on Server 2008, not from 2008 R2 on.
    edit_hive(&tree, SYSTEM_HIVE, |h| {
        set_dword(h, &format!(r"{services}\DHCPServer"), "Start", 2)
    });
    build("6002");
    assert_eq!(failed_checks(&tree), Vec::<&str>::new());
    build("7601");
    assert!(reason_of(&tree, "unsupported-server-role").contains("DHCP Server"));

    // An AD LDS instance.
    edit_hive(&tree, SYSTEM_HIVE, |h| {
        set_dword(h, &format!(r"{services}\ADAM_Contoso"), "Start", 2)
    });
    assert!(reason_of(&tree, "unsupported-server-role").contains("instances ADAM_Contoso"));

    // A domain controller, by its product type or its directory database.
    edit_hive(&tree, SYSTEM_HIVE, |h| {
        set_sz(h, product, "ProductType", "LanmanNt")
    });
    let reason = reason_of(&tree, "unsupported-server-role");
    assert!(reason.contains("a domain controller"), "{reason}");
    assert!(reason.contains("ProductType is LanmanNt"), "{reason}");
    edit_hive(&tree, SYSTEM_HIVE, |h| {
        set_sz(h, product, "ProductType", "ServerNT");
        set_sz(
            h,
            &format!(r"{services}\NTDS\Parameters"),
            "DSA Database file",
            r"C:\Windows\NTDS\ntds.dit",
        );
    });
    let reason = reason_of(&tree, "unsupported-server-role");
    assert!(reason.contains(r"C:\Windows\NTDS\ntds.dit"), "{reason}");
    validate_with(&tree, &["unsupported-server-role"]).unwrap();
}

#[test]
fn a_real_domain_controller_is_refused() {
    // The aiowinreg `nt` SYSTEM hive is a domain controller's (ProductType LanmanNT).
    let tree = Tree::empty();
    if tree
        .copy_fixture("hives/aiowinreg/nt/system.reg", SYSTEM_HIVE)
        .is_none()
    {
        return;
    }
    let reason = reason_of(&tree, "unsupported-server-role");
    assert!(
        reason.contains("Active Directory Domain Services (a domain controller"),
        "{reason}"
    );
    assert!(reason.contains("ProductType is LanmanNT"), "{reason}");
    validate_with(&tree, &["unsupported-server-role", "dirty-hive"]).unwrap();
}

#[test]
fn a_rename_refuses_a_hive_its_logs_cannot_restore_and_writes_nothing() {
    let tree = Tree::empty();
    if tree
        .copy_fixture("hives/regipy/SYSTEM_B", "Windows/System32/config/SYSTEM")
        .is_none()
    {
        return;
    }
    let before = tree.snapshot();
    let mut target = DirectoryTarget::open(tree.root()).unwrap();
    let rename = reseal::Rename {
        computer_name: "CLONE-7".into(),
        ..Default::default()
    };
    let err = reseal::rename(&mut target, &rename).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Refused, "{err}");
    assert!(
        err.message
            .contains(r"dirty-hive: Windows\System32\config\SYSTEM"),
        "{err}"
    );
    drop(target);
    assert!(tree.snapshot() == before, "the image changed");
}
