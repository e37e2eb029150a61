//! What goes into the answer file reseal writes: the computer name, the activation rearm or
//! SkipRearm, and the user's own answer file, merged, kept and with its passwords hidden.

mod common;

use std::path::Path;

use common::reference_image::*;
use reseal::{Action, ErrorKind, GeneralizeOptions};

#[test]
fn generalize_to_oobe_replaces_the_computer_name_and_leaves_specialize_to_pick_one() {
    let (tree, _) = generalized_reference_image();
    let sys = system(&tree);
    // The old computer name is gone from the three values; specialize gets `*`.
    let name = string(
        &sys,
        &format!(r"{CS}\Control\ComputerName\ComputerName"),
        "ComputerName",
    )
    .unwrap();
    assert_ne!(name, OLD_NAME);
    assert!(name.starts_with("DESKTOP-") && name.len() == 15, "{name}");
    for value in ["Hostname", "NV Hostname"] {
        let host = string(&sys, &format!(r"{CS}\Services\Tcpip\Parameters"), value).unwrap();
        assert_eq!(host, name, "{value}");
    }
    let answer = std::fs::read_to_string(tree.path("Windows/Panther/unattend.xml")).unwrap();
    let parsed = reseal::answer_file::AnswerFile::parse(&answer).unwrap();
    assert_eq!(
        parsed.setting(
            "specialize",
            "Microsoft-Windows-Shell-Setup",
            &["ComputerName"]
        ),
        Some("*".to_string())
    );
}

#[test]
fn generalize_to_oobe_schedules_the_rearm_for_the_first_boot() {
    let (tree, plan) = generalized_reference_image();
    let sw = software(&tree);
    let answer = std::fs::read_to_string(tree.path("Windows/Panther/unattend.xml")).unwrap();
    let parsed = reseal::answer_file::AnswerFile::parse(&answer).unwrap();
    // Without SkipRearm the rearm is scheduled for the first boot, and the plan says so.
    assert_eq!(
        parsed.setting(
            "specialize",
            "Microsoft-Windows-Deployment",
            &["RunSynchronous", "RunSynchronousCommand", "Path"]
        ),
        Some(r"cscript //B %WINDIR%\System32\slmgr.vbs /rearm".to_string())
    );
    assert!(plan
        .notes
        .iter()
        .any(|n| n.provider == "activation" && n.message.contains("first boot")));
    assert!(!has_value(
        &sw,
        r"Microsoft\Windows NT\CurrentVersion\SoftwareProtectionPlatform",
        "SkipRearm"
    ));
}

#[test]
fn computer_names_are_checked_and_a_valid_one_is_used_everywhere() {
    for bad in [
        "",
        "THIS-NAME-IS-TOO-LONG",
        "12345",
        "has space",
        "dot.name",
        "star*",
    ] {
        let tree = reference_image();
        let error = plan_on(
            &tree,
            &GeneralizeOptions {
                computer_name: Some(bad.to_string()),
                ..options()
            },
        )
        .unwrap_err();
        assert_eq!(error.kind, ErrorKind::Usage, "{bad:?}: {error}");
        assert!(error.message.contains("computer name"), "{error}");
    }
    let tree = reference_image();
    generalize(
        &tree,
        &GeneralizeOptions {
            computer_name: Some("Lab-07".to_string()),
            ..options()
        },
    );
    let sys = system(&tree);
    assert_eq!(
        string(
            &sys,
            &format!(r"{CS}\Control\ComputerName\ComputerName"),
            "ComputerName"
        )
        .as_deref(),
        Some("LAB-07")
    );
    assert_eq!(
        string(
            &sys,
            &format!(r"{CS}\Services\Tcpip\Parameters"),
            "NV Hostname"
        )
        .as_deref(),
        Some("Lab-07")
    );
    let answer = std::fs::read_to_string(tree.path("Windows/Panther/unattend.xml")).unwrap();
    assert!(
        answer.contains("<ComputerName>Lab-07</ComputerName>"),
        "{answer}"
    );
}

#[test]
fn skip_rearm_from_the_option_or_the_answer_file() {
    let user_file = |dir: &Path| {
        let path = dir.join("unattend.xml");
        std::fs::write(
            &path,
            r#"<unattend xmlns="urn:schemas-microsoft-com:unattend"><settings pass="generalize"><component name="Microsoft-Windows-Security-SPP" processorArchitecture="amd64" publicKeyToken="31bf3856ad364e35" language="neutral" versionScope="nonSxS"><SkipRearm>1</SkipRearm></component></settings></unattend>"#,
        )
        .unwrap();
        path
    };
    let host = tempfile::tempdir().unwrap();
    for options in [
        GeneralizeOptions {
            skip_rearm: true,
            ..options()
        },
        GeneralizeOptions {
            unattend: Some(user_file(host.path())),
            ..options()
        },
    ] {
        let tree = reference_image();
        let plan = generalize(&tree, &options);
        assert_eq!(
            dword(
                &software(&tree),
                r"Microsoft\Windows NT\CurrentVersion\SoftwareProtectionPlatform",
                "SkipRearm"
            ),
            Some(1)
        );
        let answer = std::fs::read_to_string(tree.path("Windows/Panther/unattend.xml")).unwrap();
        assert!(!answer.contains("slmgr"), "{answer}");
        assert!(plan
            .notes
            .iter()
            .any(|n| n.provider == "activation" && n.message.contains("SkipRearm")));
    }
}

#[test]
fn the_cached_answer_file_is_written_once_never_deleted_then_written() {
    let tree = reference_image();
    let plan = plan_on(&tree, &options()).unwrap();
    let touching: Vec<&Action> = plan
        .changes
        .iter()
        .map(|c| &c.action)
        .filter(|a| {
            a.location()
                .eq_ignore_ascii_case(r"Windows\Panther\unattend.xml")
        })
        .collect();
    assert_eq!(touching.len(), 1, "{touching:?}");
    assert!(matches!(
        touching[0],
        Action::WriteFile { existed: true, .. }
    ));

    // A reseal without settings and without --unattend writes no answer file: the stale one goes.
    let plan = plan_on(
        &tree,
        &GeneralizeOptions {
            generalize: false,
            ..options()
        },
    )
    .unwrap();
    let touching: Vec<&Action> = plan
        .changes
        .iter()
        .map(|c| &c.action)
        .filter(|a| {
            a.location()
                .eq_ignore_ascii_case(r"Windows\Panther\unattend.xml")
        })
        .collect();
    assert!(
        matches!(touching.as_slice(), [Action::DeleteFile { .. }]),
        "{touching:?}"
    );
}

#[test]
fn the_users_answer_file_is_merged_kept_and_its_passwords_hidden() {
    let host = tempfile::tempdir().unwrap();
    let unattend = host.path().join("unattend.xml");
    let user_xml = format!(
        r#"<?xml version="1.0" encoding="utf-8"?>
<unattend xmlns="urn:schemas-microsoft-com:unattend">
    <settings pass="generalize">
        <component name="Microsoft-Windows-PnpSysprep" processorArchitecture="amd64" publicKeyToken="31bf3856ad364e35" language="neutral" versionScope="nonSxS">
            <PersistAllDeviceInstalls>true</PersistAllDeviceInstalls>
        </component>
    </settings>
    <settings pass="oobeSystem">
        <component name="Microsoft-Windows-Shell-Setup" processorArchitecture="amd64" publicKeyToken="31bf3856ad364e35" language="neutral" versionScope="nonSxS">
            <UserAccounts>
                <AdministratorPassword><Value>{PASSWORD}</Value><PlainText>true</PlainText></AdministratorPassword>
            </UserAccounts>
            <TimeZone>W. Europe Standard Time</TimeZone>
        </component>
    </settings>
</unattend>
"#
    );
    std::fs::write(&unattend, &user_xml).unwrap();
    let tree = reference_image();
    let options = GeneralizeOptions {
        unattend: Some(unattend),
        ..options()
    };
    let plan = plan_on(&tree, &options).unwrap();

    let write = plan
        .changes
        .iter()
        .find_map(|c| match &c.action {
            Action::WriteFile {
                path,
                sensitive,
                contents,
                ..
            } if path == r"Windows\Panther\unattend.xml" => Some((*sensitive, contents.clone())),
            _ => None,
        })
        .expect("the answer file is written");
    assert!(write.0, "a file with a password is sensitive");
    for shown in [plan.to_string(), serde_json::to_string(&plan).unwrap()] {
        assert!(!shown.contains(PASSWORD), "password shown: {shown}");
    }
    assert!(plan
        .notes
        .iter()
        .any(|n| n.provider == "devices" && n.message.contains("PersistAllDeviceInstalls")));

    generalize(&tree, &options);
    let written = std::fs::read_to_string(tree.path("Windows/Panther/unattend.xml")).unwrap();
    assert_eq!(written.as_bytes(), write.1.as_slice());
    let merged = reseal::answer_file::AnswerFile::parse(&written).unwrap();
    let original = reseal::answer_file::AnswerFile::parse(&user_xml).unwrap();
    for (pass, component, path) in [
        (
            "generalize",
            "Microsoft-Windows-PnpSysprep",
            &["PersistAllDeviceInstalls"][..],
        ),
        (
            "oobeSystem",
            "Microsoft-Windows-Shell-Setup",
            &["UserAccounts", "AdministratorPassword", "Value"][..],
        ),
        (
            "oobeSystem",
            "Microsoft-Windows-Shell-Setup",
            &["TimeZone"][..],
        ),
    ] {
        assert_eq!(
            merged.setting(pass, component, path),
            original.setting(pass, component, path)
        );
    }
    assert_eq!(
        merged
            .setting(
                "specialize",
                "Microsoft-Windows-Shell-Setup",
                &["ComputerName"]
            )
            .as_deref(),
        Some("*")
    );
}
