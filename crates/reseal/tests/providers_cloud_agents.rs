//! The cloud-agent providers on the sample image with each agent installed as its installer
//! leaves it: generalize resets the agent's per-instance state (read back with python3-hivex and
//! from the files), leaves the rest of its installation alone, and `inspect` names the agent. An
//! image without agents gets nothing from these providers.

mod common;

use common::{edit_hive, hivex_shallow, sample_tree, Tree};
use reseal::{DirectoryTarget, Plan, ValueType};

const SYSTEM: &str = "Windows/System32/config/SYSTEM";
const SOFTWARE: &str = "Windows/System32/config/SOFTWARE";
const SERVICES: &str = r"ControlSet001\Services";
const CLOUD_PROVIDERS: [&str; 3] = ["cloudbase-init", "ec2launch", "azure-guest-agent"];

const CLOUDBASE: &str = r"Cloudbase Solutions\Cloudbase-Init";
const CLOUDBASE_FOLDER: &str = "Program Files/Cloudbase Solutions/Cloudbase-Init";
const INSTANCE: &str = "i-0123456789abcdef0";
const OTHER_INSTANCE: &str = "3f2504e0-4f89-11d3-9a0c-0305e82c3301";

const EC2LAUNCH_DATA: &str = "ProgramData/Amazon/EC2Launch";

fn sz(text: &str) -> Vec<u8> {
    text.encode_utf16()
        .chain([0])
        .flat_map(u16::to_le_bytes)
        .collect()
}

/// A service key as an installer registers it.
fn add_service(tree: &Tree, name: &str, image_path: &str) {
    let key = format!(r"{SERVICES}\{name}");
    edit_hive(tree, SYSTEM, |hive| {
        hive.create_key(&key).unwrap();
        hive.set_value(&key, "ImagePath", ValueType::EXPAND_SZ, &sz(image_path))
            .unwrap();
        hive.set_value(&key, "Start", ValueType::DWORD, &2u32.to_le_bytes())
            .unwrap();
        hive.set_value(&key, "Type", ValueType::DWORD, &16u32.to_le_bytes())
            .unwrap();
    });
}

/// Cloudbase-Init after two instances booted from it: one ran its plugins under an instance id
/// (status 1 = done), the other's key also holds a value of its own.
fn with_cloudbase_init(tree: &Tree) {
    add_service(
        tree,
        "cloudbase-init",
        r#""C:\Program Files\Cloudbase Solutions\Cloudbase-Init\bin\OpenStackService.exe" cloudbase-init"#,
    );
    tree.write(
        &format!("{CLOUDBASE_FOLDER}/conf/cloudbase-init.conf"),
        b"[DEFAULT]\r\nusername=Admin\r\n",
    );
    tree.write(
        &format!("{CLOUDBASE_FOLDER}/conf/Unattend.xml"),
        b"<?xml version=\"1.0\"?><unattend xmlns=\"urn:schemas-microsoft-com:unattend\"/>",
    );
    tree.write(
        &format!("{CLOUDBASE_FOLDER}/log/cloudbase-init.log"),
        b"INFO cloudbaseinit.init [-] Executing plugins for stage 'MAIN'\r\n",
    );
    edit_hive(tree, SOFTWARE, |hive| {
        for (instance, plugins) in [
            (INSTANCE, &["SetHostNamePlugin", "CreateUserPlugin"][..]),
            (OTHER_INSTANCE, &["UserDataPlugin"][..]),
        ] {
            let key = format!(r"{CLOUDBASE}\{instance}\Plugins");
            hive.create_key(&key).unwrap();
            for plugin in plugins {
                hive.set_value(&key, plugin, ValueType::DWORD, &1u32.to_le_bytes())
                    .unwrap();
            }
        }
        hive.set_value(
            &format!(r"{CLOUDBASE}\{OTHER_INSTANCE}"),
            "Kept",
            ValueType::SZ,
            &sz("not plugin status"),
        )
        .unwrap();
    });
}

/// EC2Launch v2 after the instance's first boot: state files and logs.
fn with_ec2launch_v2(tree: &Tree) {
    add_service(
        tree,
        "EC2Launch",
        r#""C:\Program Files\Amazon\EC2Launch\service\EC2LaunchService.exe""#,
    );
    tree.write("Program Files/Amazon/EC2Launch/EC2Launch.exe", b"MZ");
    for (file, contents) in [
        (
            "config/agent-config.yml",
            &b"version: 1.0\r\nconfig: []\r\n"[..],
        ),
        ("state/.run-once", b""),
        ("state/state.json", b"{\"setAdminAccount\":\"success\"}"),
        ("state/previous-state.json", b"{}"),
        ("log/agent.log", b"2026-01-01 Info: EC2Launch started"),
        ("log/console.log", b"Windows is Ready to use"),
        ("log/error.log", b""),
        ("sysprep/unattend.xml", b"<unattend/>"),
    ] {
        tree.write(&format!("{EC2LAUNCH_DATA}/{file}"), contents);
    }
}

fn with_azure_guest_agent(tree: &Tree) {
    add_service(
        tree,
        "WindowsAzureGuestAgent",
        r"C:\WindowsAzure\GuestAgent_2.7.41491.1102\WindowsAzureGuestAgent.exe",
    );
    add_service(
        tree,
        "RdAgent",
        r"C:\WindowsAzure\GuestAgent_2.7.41491.1102\WaAppAgent.exe",
    );
    tree.write("WindowsAzure/Logs/WaAppAgent.log", b"[INFO] Heartbeat");
}

/// Generalizes the tree; a second run over it is allowed, to show it plans nothing more.
fn generalize(tree: &Tree) -> Plan {
    let options = reseal::GeneralizeOptions {
        ignore_checks: vec!["already-generalized".to_string()],
        ..common::fixed_options()
    };
    let mut target = DirectoryTarget::open(tree.root()).unwrap();
    reseal::generalize(&mut target, &options, &[]).unwrap().0
}

fn inspect(tree: &Tree) -> Vec<String> {
    let mut target = DirectoryTarget::open(tree.root()).unwrap();
    reseal::inspect(&mut target).unwrap().cloud_agents
}

fn changes_of<'p>(plan: &'p Plan, provider: &str) -> Vec<&'p reseal::Change> {
    plan.changes
        .iter()
        .filter(|change| change.provider == provider)
        .collect()
}

fn notes_of(plan: &Plan, provider: &str) -> Vec<String> {
    plan.notes
        .iter()
        .filter(|note| note.provider == provider)
        .map(|note| note.message.clone())
        .collect()
}

#[test]
fn cloudbase_init_plugin_status_is_forgotten_and_the_installation_kept() {
    let Some(tree) = sample_tree() else { return };
    with_cloudbase_init(&tree);
    let software = tree.path(SOFTWARE);
    let before = hivex_shallow(&software, CLOUDBASE).expect("Cloudbase-Init key written");
    assert_eq!(before.children.len(), 2);

    let plan = generalize(&tree);

    let changes = changes_of(&plan, "cloudbase-init");
    assert_eq!(changes.len(), 2, "{changes:#?}");
    assert!(changes
        .iter()
        .all(|change| change.source.contains("Cloudbase-Init")));
    // The instance key that held only plugin status goes; the other keeps its own value.
    let after = hivex_shallow(&software, CLOUDBASE).expect("the Cloudbase-Init key stays");
    assert_eq!(after.children, vec![OTHER_INSTANCE.to_string()]);
    let other = hivex_shallow(&software, &format!(r"{CLOUDBASE}\{OTHER_INSTANCE}")).unwrap();
    assert!(other.children.is_empty(), "{other:?}");
    assert_eq!(other.values.len(), 1);
    assert_eq!(other.values[0].0, "Kept");
    // The service and the installation stay.
    let service = hivex_shallow(&tree.path(SYSTEM), &format!(r"{SERVICES}\cloudbase-init"))
        .expect("the service stays");
    assert!(service
        .values
        .iter()
        .any(|(name, _, _)| name == "ImagePath"));
    for file in ["conf/cloudbase-init.conf", "conf/Unattend.xml"] {
        assert!(tree.path(&format!("{CLOUDBASE_FOLDER}/{file}")).exists());
    }
    let notes = notes_of(&plan, "cloudbase-init").join("\n");
    assert!(notes.contains("2 saved plugin status"), "{notes}");
    assert!(notes.contains(r"conf\Unattend.xml"), "{notes}");

    // A second run finds nothing left to reset.
    assert!(changes_of(&generalize(&tree), "cloudbase-init").is_empty());
}

#[test]
fn cloudbase_init_status_of_an_x86_build_is_forgotten_below_wow6432node() {
    let Some(tree) = sample_tree() else { return };
    tree.write(
        "Program Files (x86)/Cloudbase Solutions/Cloudbase-Init/bin/OpenStackService.exe",
        b"MZ",
    );
    let key = format!(r"WOW6432Node\{CLOUDBASE}\{INSTANCE}\Plugins");
    edit_hive(&tree, SOFTWARE, |hive| {
        hive.create_key(&key).unwrap();
        hive.set_value(&key, "MTUPlugin", ValueType::DWORD, &1u32.to_le_bytes())
            .unwrap();
    });

    generalize(&tree);

    let after = hivex_shallow(&tree.path(SOFTWARE), &format!(r"WOW6432Node\{CLOUDBASE}"))
        .expect("the Cloudbase-Init key stays");
    assert!(after.children.is_empty(), "{after:?}");
}

#[test]
fn ec2launch_v2_is_reset_as_ec2launch_reset_clean_resets_it() {
    let Some(tree) = sample_tree() else { return };
    with_ec2launch_v2(&tree);

    let plan = generalize(&tree);

    assert_eq!(changes_of(&plan, "ec2launch").len(), 6);
    for gone in [
        "state/.run-once",
        "state/state.json",
        "state/previous-state.json",
        "log/agent.log",
        "log/console.log",
        "log/error.log",
    ] {
        assert!(
            !tree.path(&format!("{EC2LAUNCH_DATA}/{gone}")).exists(),
            "{gone} deleted"
        );
    }
    // The folders the agent writes to, its configuration and its binaries stay.
    for kept in [
        "state",
        "log",
        "config/agent-config.yml",
        "sysprep/unattend.xml",
    ] {
        assert!(
            tree.path(&format!("{EC2LAUNCH_DATA}/{kept}")).exists(),
            "{kept} kept"
        );
    }
    assert!(tree
        .path("Program Files/Amazon/EC2Launch/EC2Launch.exe")
        .exists());
    assert!(hivex_shallow(&tree.path(SYSTEM), &format!(r"{SERVICES}\EC2Launch")).is_some());
    assert_eq!(notes_of(&plan, "ec2launch").len(), 1);

    assert!(changes_of(&generalize(&tree), "ec2launch").is_empty());
}

#[test]
fn ec2launch_v1_and_ec2config_are_reported_not_changed() {
    let Some(tree) = sample_tree() else { return };
    tree.write(
        "ProgramData/Amazon/EC2-Windows/Launch/Scripts/InitializeInstance.ps1",
        b"param([switch]$Schedule)",
    );
    add_service(
        &tree,
        "Ec2Config",
        r#""C:\Program Files\Amazon\Ec2ConfigService\Ec2Config.exe""#,
    );
    let before = tree.snapshot();

    let plan = reseal::plan(
        &mut DirectoryTarget::open(tree.root()).unwrap(),
        &common::fixed_options(),
        &[],
    )
    .unwrap();

    assert!(changes_of(&plan, "ec2launch").is_empty());
    let notes = notes_of(&plan, "ec2launch");
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert!(notes[0].contains("InitializeInstance.ps1 -Schedule"));
    assert!(notes[1].contains("EC2Config"));
    assert_eq!(tree.snapshot(), before, "planning writes nothing");
    assert_eq!(inspect(&tree), ["ec2launch-v1", "ec2config"]);
}

#[test]
fn the_azure_guest_agent_is_reported_and_left_alone() {
    let Some(tree) = sample_tree() else { return };
    with_azure_guest_agent(&tree);

    let plan = generalize(&tree);

    assert!(changes_of(&plan, "azure-guest-agent").is_empty());
    let notes = notes_of(&plan, "azure-guest-agent");
    assert_eq!(notes.len(), 1);
    assert!(notes[0].contains("VMAgentDisabler.dll"));
    assert!(tree.path("WindowsAzure/Logs/WaAppAgent.log").exists());
    for service in ["WindowsAzureGuestAgent", "RdAgent"] {
        assert!(hivex_shallow(&tree.path(SYSTEM), &format!(r"{SERVICES}\{service}")).is_some());
    }
}

#[test]
fn an_image_without_agents_gets_nothing_from_the_cloud_agent_providers() {
    let Some(tree) = sample_tree() else { return };
    let plan = generalize(&tree);
    for provider in CLOUD_PROVIDERS {
        assert!(changes_of(&plan, provider).is_empty(), "{provider}");
        assert!(notes_of(&plan, provider).is_empty(), "{provider}");
    }
    assert!(inspect(&tree).is_empty());
}

#[test]
fn inspect_names_each_installed_agent() {
    let Some(tree) = sample_tree() else { return };
    with_cloudbase_init(&tree);
    with_ec2launch_v2(&tree);
    with_azure_guest_agent(&tree);
    assert_eq!(
        inspect(&tree),
        ["cloudbase-init", "ec2launch-v2", "azure-guest-agent"]
    );
    // In JSON too, as a list of names.
    let mut target = DirectoryTarget::open(tree.root()).unwrap();
    let json = serde_json::to_value(reseal::inspect(&mut target).unwrap()).unwrap();
    assert_eq!(
        json["cloud_agents"],
        serde_json::json!(["cloudbase-init", "ec2launch-v2", "azure-guest-agent"])
    );
}
