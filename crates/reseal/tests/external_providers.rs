//! Third-party Sysprep providers registered in the image: listed by inspect, and noted in the
//! plan with what an offline run cannot do for them.

mod common;

use common::{edit_hive, sample_tree, Tree};
use reseal::{DirectoryTarget, GeneralizeOptions, Mode, ValueType};
use reseal_hive::data::{encode_multi_sz, encode_sz};

const EXTERNAL: &str = r"Microsoft\Windows\CurrentVersion\Setup\SysPrepExternal";
/// The Azure guest agent's generalize provider, as image builders find it (AZ-AGENTBAKER).
const AGENT_DLL: &str =
    r"C:\WindowsAzure\GuestAgent_2.7.41491.1102_2024-02-14_010532\VMAgentDisabler.dll";

/// The sample with a cleanup, a generalize and a specialize provider registered, one of them
/// under a subkey of its pass and one as REG_MULTI_SZ.
fn registered_tree() -> Option<Tree> {
    let tree = sample_tree()?;
    edit_hive(&tree, "Windows/System32/config/SOFTWARE", |h| {
        let generalize = format!(r"{EXTERNAL}\Generalize");
        h.create_key(&generalize).unwrap();
        h.set_value(
            &generalize,
            "WindowsAzureGuestAgent",
            ValueType::SZ,
            &encode_sz(&format!("\"{AGENT_DLL}\",DisableVMAgent")),
        )
        .unwrap();
        let cleanup = format!(r"{EXTERNAL}\Cleanup\{{6B9F2E40-3C1D-4A5B-8E7F-0A1B2C3D4E5F}}");
        h.create_key(&cleanup).unwrap();
        h.set_value(
            &cleanup,
            "",
            ValueType::EXPAND_SZ,
            &encode_sz(r"%ProgramFiles%\Contoso\ContosoSysprep.dll,Sysprep_Cleanup_Contoso"),
        )
        .unwrap();
        let specialize = format!(r"{EXTERNAL}\Specialize");
        h.create_key(&specialize).unwrap();
        h.set_value(
            &specialize,
            "SqlServer",
            ValueType::MULTI_SZ,
            &encode_multi_sz(&[
                r#""C:\Program Files\Microsoft SQL Server\160\Setup Bootstrap\SQL2022\x64\sqlsysprep.dll",SqlSysprep_Specialize"#,
                "",
            ]),
        )
        .unwrap();
    });
    Some(tree)
}

fn notes(tree: &Tree, generalize: bool) -> Vec<String> {
    let mut target = DirectoryTarget::open(tree.root()).unwrap();
    let options = GeneralizeOptions {
        generalize,
        mode: Mode::Oobe,
        ..common::fixed_options()
    };
    reseal::plan(&mut target, &options, &[])
        .unwrap()
        .notes
        .into_iter()
        .filter(|n| n.provider == "external-providers")
        .map(|n| n.message)
        .collect()
}

#[test]
fn inspect_lists_every_registered_provider() {
    let Some(tree) = registered_tree() else {
        return;
    };
    let mut target = DirectoryTarget::open(tree.root()).unwrap();
    let inspection = reseal::inspect(&mut target).unwrap();
    let listed: Vec<(String, String, String, Option<String>)> = inspection
        .external_providers
        .iter()
        .map(|p| {
            (
                p.pass.clone(),
                p.value.clone(),
                p.dll.clone(),
                p.entry_point.clone(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        vec![
            (
                "Cleanup".to_string(),
                r"{6B9F2E40-3C1D-4A5B-8E7F-0A1B2C3D4E5F}\".to_string(),
                r"%ProgramFiles%\Contoso\ContosoSysprep.dll".to_string(),
                Some("Sysprep_Cleanup_Contoso".to_string()),
            ),
            (
                "Generalize".to_string(),
                "WindowsAzureGuestAgent".to_string(),
                AGENT_DLL.to_string(),
                Some("DisableVMAgent".to_string()),
            ),
            (
                "Specialize".to_string(),
                "SqlServer".to_string(),
                r"C:\Program Files\Microsoft SQL Server\160\Setup Bootstrap\SQL2022\x64\sqlsysprep.dll"
                    .to_string(),
                Some("SqlSysprep_Specialize".to_string()),
            ),
        ]
    );
    let json = serde_json::to_value(&inspection).unwrap();
    assert_eq!(json["external_providers"][1]["dll"], AGENT_DLL);
    assert_eq!(json["external_providers"][1]["pass"], "Generalize");
}

#[test]
fn the_plan_notes_what_offline_generalize_cannot_run() {
    let Some(tree) = registered_tree() else {
        return;
    };
    let generalize = notes(&tree, true);
    assert_eq!(generalize.len(), 3, "{generalize:#?}");
    assert!(generalize[0].starts_with(
        r"%ProgramFiles%\Contoso\ContosoSysprep.dll!Sysprep_Cleanup_Contoso (SOFTWARE Microsoft\Windows\CurrentVersion\Setup\SysPrepExternal\Cleanup\{6B9F2E40"
    ), "{generalize:#?}");
    assert!(generalize[0].contains("what it would clean up stays in the image"));
    assert!(generalize[1].starts_with(&format!("{AGENT_DLL}!DisableVMAgent")));
    assert!(generalize[1].contains("machine-specific state it would remove stays in the image"));
    assert!(generalize[2].contains("sqlsysprep.dll!SqlSysprep_Specialize"));
    assert!(generalize[2].contains("Windows setup calls it during specialize"));

    // Without generalize only the cleanup provider is Sysprep's to call.
    let reseal = notes(&tree, false);
    assert_eq!(reseal.len(), 1, "{reseal:#?}");
    assert!(reseal[0].contains("ContosoSysprep.dll"));
}

#[test]
fn an_image_without_registrations_lists_none() {
    let Some(tree) = sample_tree() else {
        return;
    };
    let mut target = DirectoryTarget::open(tree.root()).unwrap();
    assert!(reseal::inspect(&mut target)
        .unwrap()
        .external_providers
        .is_empty());
    assert!(notes(&tree, true).is_empty());
}
