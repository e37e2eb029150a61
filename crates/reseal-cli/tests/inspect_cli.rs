//! `reseal inspect` shows the Sysprep providers registered in an image, in text and JSON; the
//! `--ignore-check` help names every check.

mod common;

use common::{code, reseal, text};
use reseal_hive::data::encode_sz;
use reseal_hive::{Hive, ValueType};
use reseal_testutil::{copy_dir, workspace_root};

const DLL: &str = r"C:\WindowsAzure\GuestAgent_2.7.41491.1102\VMAgentDisabler.dll";

#[test]
fn inspect_shows_registered_sysprep_providers() {
    let source = workspace_root().join("fixtures/sample");
    if !source.exists() {
        eprintln!("skipping: {} is missing", source.display());
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("sample");
    copy_dir(&source, &image);
    let software = image.join("Windows/System32/config/SOFTWARE");
    let (mut hive, _) = Hive::open_file(&software).unwrap();
    let key = r"Microsoft\Windows\CurrentVersion\Setup\SysPrepExternal\Generalize";
    hive.create_key(key).unwrap();
    hive.set_value(
        key,
        "WindowsAzureGuestAgent",
        ValueType::SZ,
        &encode_sz(&format!("\"{DLL}\",DisableVMAgent")),
    )
    .unwrap();
    reseal::targets::directory::replace_host_hive(&software, hive).unwrap();
    let path = image.to_str().unwrap();

    let shown = reseal(&["inspect", path]);
    assert_eq!(code(&shown), 0, "{}", text(&shown));
    let line = String::from_utf8_lossy(&shown.stdout)
        .lines()
        .find(|l| l.starts_with("Sysprep provider"))
        .map(str::to_string)
        .unwrap_or_else(|| panic!("no provider line:\n{}", text(&shown)));
    assert!(
        line.ends_with(&format!(
            "Generalize: {DLL}!DisableVMAgent (value WindowsAzureGuestAgent)"
        )),
        "{line}"
    );

    let json = reseal(&["inspect", path, "--json"]);
    assert_eq!(code(&json), 0, "{}", text(&json));
    let document: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let providers = &document["external_providers"];
    assert_eq!(providers[0]["dll"], DLL, "{document}");
    assert_eq!(providers[0]["entry_point"], "DisableVMAgent");
}

#[test]
fn the_ignore_check_help_names_every_check() {
    let help = reseal(&["generalize", "--help"]);
    assert_eq!(code(&help), 0);
    let help = String::from_utf8_lossy(&help.stdout).into_owned();
    for check in reseal::validate::CHECKS {
        assert!(help.contains(check), "{check} in\n{help}");
    }
    let unknown = reseal(&["generalize", "x", "--ignore-check", "no-such-check"]);
    assert_eq!(code(&unknown), 2, "{}", text(&unknown));
    assert!(
        text(&unknown).contains("appx-not-provisioned"),
        "{}",
        text(&unknown)
    );
}
