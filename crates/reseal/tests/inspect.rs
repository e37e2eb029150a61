//! Inspect on real hives, and `null` for everything that is missing or damaged.

mod common;

use common::{new_hive, win7_tree, Tree};
use reseal::{DirectoryTarget, ValueType};
use reseal_hive::data::{encode_dword, encode_sz};

fn inspect(tree: &Tree) -> reseal::Inspection {
    let mut target = DirectoryTarget::open(tree.root()).unwrap();
    reseal::inspect(&mut target).unwrap()
}

#[test]
fn a_windows_7_system_hive_gives_name_setup_and_architecture() {
    let Some(tree) = win7_tree() else { return };
    let found = inspect(&tree);
    assert_eq!(found.computer_name.as_deref(), Some("WKS-WIN732BITA"));
    assert_eq!(found.windows.architecture.as_deref(), Some("x86"));
    assert_eq!(found.setup.setup_type, Some(0));
    assert_eq!(found.setup.system_setup_in_progress, Some(0));
    assert_eq!(found.setup.cmd_line.as_deref(), Some(""));
    assert!(!found.domain_joined);
    // Without SOFTWARE, its pieces are unknown.
    assert_eq!(found.windows.product_name, None);
    assert_eq!(found.windows.build, None);
    assert_eq!(found.skip_rearm, None);
    assert_eq!(found.image_state, None);
    assert_eq!(found.event_log_records, None);
    assert!(found
        .machine_sid
        .as_deref()
        .unwrap()
        .starts_with("S-1-5-21-"));
    let security = found
        .hives
        .iter()
        .find(|h| h.path.ends_with("SECURITY"))
        .unwrap();
    assert_eq!(
        (security.was_dirty, security.recovered),
        (Some(true), Some(false))
    );
    let software = found
        .hives
        .iter()
        .find(|h| h.path.ends_with("SOFTWARE"))
        .unwrap();
    assert!(!software.present);

    let json = serde_json::to_value(&found).unwrap();
    assert!(json["windows"]["product_name"].is_null());
    assert!(json["image_state"].is_null());
    assert_eq!(json["computer_name"], "WKS-WIN732BITA");
    assert!(json["activation_note"]
        .as_str()
        .unwrap()
        .contains("never reads"));
}

#[test]
fn the_machine_sid_of_a_server_2022_comes_from_security_or_sam() {
    let sid = "S-1-5-21-4042553000-2217363381-1479057140";
    let both = Tree::empty();
    let sam_only = Tree::empty();
    for (tree, files) in [
        (&both, &["sam.reg", "security.reg"][..]),
        (&sam_only, &["sam.reg"][..]),
    ] {
        for file in files {
            let name = file.trim_end_matches(".reg").to_uppercase();
            let fixture = format!("hives/aiowinreg/win2022_64/{file}");
            if tree
                .copy_fixture(&fixture, &format!("Windows/System32/config/{name}"))
                .is_none()
            {
                return;
            }
        }
    }
    let found = inspect(&both);
    assert_eq!(found.machine_sid.as_deref(), Some(sid));
    assert!(
        found.domain_joined,
        "this server is a member of the TEST domain"
    );
    let found = inspect(&sam_only);
    assert_eq!(found.machine_sid.as_deref(), Some(sid));
    assert!(!found.domain_joined);
}

#[test]
fn software_values_and_setup_state_are_read() {
    let tree = Tree::empty();
    let cv = r"Microsoft\Windows NT\CurrentVersion";
    new_hive(
        &tree,
        "Windows/System32/config/SOFTWARE",
        &[
            (
                cv,
                "ProductName",
                ValueType::SZ,
                encode_sz("Windows 10 Pro"),
            ),
            (cv, "EditionID", ValueType::SZ, encode_sz("Professional")),
            (cv, "CurrentBuildNumber", ValueType::SZ, encode_sz("19045")),
            (cv, "ReleaseId", ValueType::SZ, encode_sz("2009")),
            (cv, "DisplayVersion", ValueType::SZ, encode_sz("22H2")),
            (
                r"Microsoft\Windows NT\CurrentVersion\SoftwareProtectionPlatform",
                "SkipRearm",
                ValueType::DWORD,
                encode_dword(1),
            ),
            (
                r"Microsoft\Windows\CurrentVersion\Authentication\LogonUI",
                "LastLoggedOnUser",
                ValueType::SZ,
                encode_sz(r"REF-PC01\Administrator"),
            ),
        ],
    );
    new_hive(
        &tree,
        "Windows/System32/config/SYSTEM",
        &[
            ("Select", "Current", ValueType::DWORD, encode_dword(1)),
            (
                r"ControlSet001\Control\Session Manager\Environment",
                "PROCESSOR_ARCHITECTURE",
                ValueType::SZ,
                encode_sz("AMD64"),
            ),
            (
                r"Setup\SetupCl\PendingRequest",
                "x",
                ValueType::DWORD,
                encode_dword(1),
            ),
            (
                "Setup",
                "CmdLine",
                ValueType::SZ,
                encode_sz(r"oobe\windeploy.exe"),
            ),
        ],
    );
    tree.write(
        "Windows/Setup/State/State.ini",
        b"[State]\r\nImageState=\"IMAGE_STATE_COMPLETE\"\r\n",
    );
    let found = inspect(&tree);
    assert_eq!(
        found.windows.product_name.as_deref(),
        Some("Windows 10 Pro")
    );
    assert_eq!(found.windows.edition_id.as_deref(), Some("Professional"));
    assert_eq!(found.windows.build, Some(19045));
    assert_eq!(found.windows.version.as_deref(), Some("22H2"));
    assert_eq!(found.windows.architecture.as_deref(), Some("AMD64"));
    assert_eq!(found.skip_rearm, Some(1));
    assert_eq!(
        found.last_logged_on_user.as_deref(),
        Some(r"REF-PC01\Administrator")
    );
    assert_eq!(found.image_state.as_deref(), Some("IMAGE_STATE_COMPLETE"));
    assert!(found.sid_request_pending);
    assert_eq!(found.setup.cmd_line.as_deref(), Some(r"oobe\windeploy.exe"));
    assert_eq!(found.computer_name, None);
}

#[test]
fn event_logs_are_counted_per_file_and_in_total() {
    let tree = Tree::empty();
    let logs = "Windows/System32/winevt/Logs";
    if tree
        .copy_fixture("evtx/plaso/System2.evtx", &format!("{logs}/System.evtx"))
        .is_none()
        || tree
            .copy_fixture(
                "evtx/omerbenamram-evtx/new-user-security.evtx",
                &format!("{logs}/Security.evtx"),
            )
            .is_none()
    {
        return;
    }
    tree.write(&format!("{logs}/Empty.evtx"), &reseal::evtx::empty_log());
    tree.write(&format!("{logs}/Broken.evtx"), b"not an event log");
    tree.write(&format!("{logs}/notes.txt"), b"ignored");

    // The evtx crate, which we did not write, counts the records as the oracle.
    let oracle = |name: &str| -> u64 {
        let bytes = std::fs::read(tree.path(&format!("{logs}/{name}"))).unwrap();
        let mut parser = evtx::EvtxParser::from_buffer(bytes).unwrap();
        parser.records().filter(|r| r.is_ok()).count() as u64
    };
    let (system, security) = (oracle("System.evtx"), oracle("Security.evtx"));
    assert!(system > 0 && security > 0);

    let found = inspect(&tree);
    assert_eq!(found.event_logs.len(), 4, "{:?}", found.event_logs);
    assert_eq!(found.event_logs["System.evtx"], Some(system));
    assert_eq!(found.event_logs["Security.evtx"], Some(security));
    assert_eq!(found.event_logs["Empty.evtx"], Some(0));
    assert_eq!(found.event_logs["Broken.evtx"], None);
    assert_eq!(found.event_log_records, Some(system + security));
}

#[test]
fn an_empty_or_damaged_image_gives_nulls_not_errors() {
    let tree = Tree::empty();
    let found = inspect(&tree);
    assert_eq!(found.computer_name, None);
    assert_eq!(found.machine_sid, None);
    assert!(!found.sid_request_pending);
    assert!(found.hives.iter().all(|h| !h.present));

    tree.write("Windows/System32/config/SYSTEM", &[0x42; 8192]);
    tree.write("Windows/System32/config/SAM", b"regf");
    let found = inspect(&tree);
    let system = found
        .hives
        .iter()
        .find(|h| h.path.ends_with("SYSTEM"))
        .unwrap();
    assert!(system.present);
    assert!(
        system.error.as_deref().unwrap().contains("SYSTEM"),
        "{system:?}"
    );
    assert_eq!(found.computer_name, None);
    assert_eq!(found.windows.architecture, None);
    assert_eq!(found.machine_sid, None);
    serde_json::to_string(&found).unwrap();
}

#[test]
fn an_interrupted_run_is_reported() {
    let tree = Tree::empty();
    assert!(!inspect(&tree).interrupted_run);
    tree.write("reseal-journal/manifest.json", b"{}");
    assert!(inspect(&tree).interrupted_run);
}
