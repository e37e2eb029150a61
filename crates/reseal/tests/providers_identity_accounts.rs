//! The identity provider (update, telemetry and network identifiers, the MachineGuid on
//! request) and the accounts provider (the built-in Administrator, the last user).

mod common;

use common::reference_image::*;
use common::{hivex_key, hivex_value};
use reseal::providers::accounts::is_account_disabled;
use reseal::GeneralizeOptions;

#[test]
fn generalize_to_oobe_removes_the_machine_identity() {
    let (tree, _) = generalized_reference_image();
    let sys = system(&tree);
    let sw = software(&tree);
    // Identity.
    assert!(!has_value(
        &sw,
        r"Microsoft\Windows\CurrentVersion\WindowsUpdate",
        "SusClientId"
    ));
    assert!(!has_value(
        &sw,
        r"Microsoft\Windows\CurrentVersion\WindowsUpdate",
        "SusClientIdValidation"
    ));
    assert!(!has_value(&sw, r"Microsoft\SQMClient", "MachineId"));
    assert_eq!(
        string(&sw, r"Microsoft\Cryptography", "MachineGuid").as_deref(),
        Some("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"),
        "MachineGuid only changes on request"
    );
    assert!(!has_value(
        &sys,
        &format!(r"{CS}\Services\Tcpip6\Parameters"),
        "Dhcpv6DUID"
    ));
    let interface = format!(r"{CS}\Services\Tcpip\Parameters\Interfaces\{INTERFACE}");
    let interface_values: Vec<&str> = hivex_key(&sys, &interface)
        .unwrap()
        .values
        .iter()
        .map(|v| v.name.as_str())
        .collect();
    assert_eq!(interface_values, ["EnableDHCP"]);
    for container in ["Profiles", r"Signatures\Managed", r"Signatures\Unmanaged"] {
        let key = format!(r"Microsoft\Windows NT\CurrentVersion\NetworkList\{container}");
        assert!(hivex_key(&sw, &key).unwrap().children.is_empty(), "{key}");
    }
}

#[test]
fn generalize_to_oobe_disables_the_administrator_and_forgets_the_last_user() {
    let (tree, _) = generalized_reference_image();
    let sw = software(&tree);
    // Accounts: the built-in Administrator is disabled, nothing else in F changes.
    let sam = hivex(&tree, "Windows/System32/config/SAM");
    let (_, f) = hivex_value(&sam, r"SAM\Domains\Account\Users\000001F4", "F").unwrap();
    let mut expected = administrator_f();
    expected[0x38] |= 0x01;
    assert_eq!(f, expected);
    assert_eq!(is_account_disabled(&f), Some(true));
    for name in [
        "LastLoggedOnUser",
        "LastLoggedOnSAMUser",
        "LastLoggedOnUserSID",
        "LastLoggedOnDisplayName",
        "SelectedUserSID",
    ] {
        assert!(
            !has_value(
                &sw,
                r"Microsoft\Windows\CurrentVersion\Authentication\LogonUI",
                name
            ),
            "{name}"
        );
    }
    assert!(!has_value(
        &sw,
        r"Microsoft\Windows NT\CurrentVersion\Winlogon",
        "DefaultUserName"
    ));
    assert!(has_value(
        &sw,
        r"Microsoft\Windows NT\CurrentVersion\Winlogon",
        "Shell"
    ));
}

#[test]
fn a_new_machine_guid_only_on_request() {
    let tree = reference_image();
    generalize(
        &tree,
        &GeneralizeOptions {
            new_machine_guid: true,
            ..options()
        },
    );
    let guid = string(&software(&tree), r"Microsoft\Cryptography", "MachineGuid").unwrap();
    assert_ne!(guid, "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0");
    assert_eq!(guid.len(), 36);
    assert!(
        guid.chars()
            .all(|c| c == '-' || c.is_ascii_digit() || ('a'..='f').contains(&c)),
        "{guid}"
    );
    assert_eq!(guid.matches('-').count(), 4);
}
