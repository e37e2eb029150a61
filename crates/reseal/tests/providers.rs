//! The providers on a reference image built here (hives written with reseal-hive, every result
//! read back with hivex and the `evtx` crate): generalize to OOBE and to audit, the reseals
//! without generalize, idempotence, the SID request, names, activation, answer files, passwords.

mod common;

use std::path::Path;

use common::{edit_hive, hivex_key, hivex_value, hivex_value_at, new_hive, Tree};
use reseal::image::{Image, DEFAULT, SAM, SECURITY, SOFTWARE, SYSTEM};
use reseal::providers::accounts::is_account_disabled;
use reseal::providers::machine_sid::machine_sid_bytes;
use reseal::{Action, DirectoryTarget, ErrorKind, GeneralizeOptions, Mode, Plan, Sid, ValueType};
use reseal_hive::data::{decode_multi_sz, decode_sz, encode_dword, encode_multi_sz, encode_sz};
use reseal_testutil::{hivex_tree, HivexKey};

const CS: &str = "ControlSet001";
const NTUSER: &str = "Users/Administrator/NTUSER.DAT";
const MACHINE_SID: &str = "S-1-5-21-4270870110-1275511114-212320121";
const OLD_NAME: &str = "REF-PC01";
const PASSWORD: &str = "Sup3rSecret";
const INTERFACE: &str = "{3f6a1c2e-0b1d-4c59-9c41-7a0e5d2b8f10}";

/// One hive's content: keys (created even when empty) and values.
struct HiveSpec {
    keys: Vec<String>,
    values: Vec<(String, String, ValueType, Vec<u8>)>,
}

impl HiveSpec {
    fn new() -> HiveSpec {
        HiveSpec {
            keys: Vec::new(),
            values: Vec::new(),
        }
    }
    fn key(mut self, key: &str) -> HiveSpec {
        self.keys.push(key.to_string());
        self
    }
    fn value(mut self, key: &str, name: &str, value_type: ValueType, data: Vec<u8>) -> HiveSpec {
        self.values
            .push((key.to_string(), name.to_string(), value_type, data));
        self
    }
    fn sz(self, key: &str, name: &str, text: &str) -> HiveSpec {
        self.value(key, name, ValueType::SZ, encode_sz(text))
    }
    fn dword(self, key: &str, name: &str, number: u32) -> HiveSpec {
        self.value(key, name, ValueType::DWORD, encode_dword(number))
    }
    /// Writes the hive at `relative`.
    fn write(self, tree: &Tree, relative: &str) {
        let values: Vec<(&str, &str, ValueType, Vec<u8>)> = self
            .values
            .iter()
            .map(|(key, name, value_type, data)| {
                (key.as_str(), name.as_str(), *value_type, data.clone())
            })
            .collect();
        new_hive(tree, relative, &values);
        edit_hive(tree, relative, |hive| {
            for key in &self.keys {
                hive.create_key(key).unwrap();
            }
        });
    }
}

fn sid_bytes() -> Vec<u8> {
    Sid::parse(MACHINE_SID).unwrap().to_bytes()
}

/// The built-in Administrator's `F`: 80 bytes, enabled (normal account 0x0010, password never
/// expires 0x0200), with recognisable bytes around the control word.
fn administrator_f() -> Vec<u8> {
    let mut f: Vec<u8> = (0..80u8).map(|i| i.wrapping_mul(7)).collect();
    f[0x38..0x3A].copy_from_slice(&0x0210u16.to_le_bytes());
    f
}

fn system_hive() -> HiveSpec {
    let tcpip = format!(r"{CS}\Services\Tcpip\Parameters");
    let interface = format!(r"{tcpip}\Interfaces\{INTERFACE}");
    let tpm = format!(r"{CS}\Services\TPM");
    HiveSpec::new()
        .dword("Select", "Current", 1)
        .dword("Select", "Default", 1)
        .sz("Setup", "CmdLine", "")
        .dword("Setup", "SetupType", 0)
        .dword("Setup", "SystemSetupInProgress", 0)
        .dword("Setup", "OOBEInProgress", 0)
        .dword("Setup", "SetupPhase", 0)
        .sz(
            &format!(r"{CS}\Control\ComputerName\ComputerName"),
            "ComputerName",
            OLD_NAME,
        )
        .sz(&tcpip, "Hostname", OLD_NAME)
        .sz(&tcpip, "NV Hostname", OLD_NAME)
        .dword(&interface, "EnableDHCP", 1)
        .sz(&interface, "DhcpIPAddress", "192.168.1.23")
        .sz(&interface, "DhcpServer", "192.168.1.1")
        .dword(&interface, "Lease", 86400)
        .dword(&interface, "T1", 43200)
        .value(
            &format!(r"{CS}\Services\Tcpip6\Parameters"),
            "Dhcpv6DUID",
            ValueType::BINARY,
            vec![0, 1, 0, 1, 0x2a, 0x3b, 0x4c, 0x5d],
        )
        .value(
            &format!(r"{CS}\Control\Session Manager"),
            "SetupExecute",
            ValueType::MULTI_SZ,
            encode_multi_sz(&["existing-setup-program.exe"]),
        )
        .sz(
            &format!(r"{CS}\Control\Session Manager\Environment"),
            "PROCESSOR_ARCHITECTURE",
            "AMD64",
        )
        .sz(&format!(r"{tpm}\WMI"), "WindowsAIKHash", "aik")
        .dword(&format!(r"{tpm}\WMI"), "NoPPIClear", 1)
        .dword(&format!(r"{tpm}\WMI"), "KeepMe", 7)
        .key(&format!(r"{tpm}\WMI\Admin"))
        .key(&format!(r"{tpm}\WMI\Endorsement"))
        .key(&format!(r"{tpm}\ODUID"))
        .key(&format!(r"{tpm}\PlatformQuoteKeys"))
        .value(
            &format!(r"{CS}\Services\spaceport\Parameters"),
            "ControlId",
            ValueType::BINARY,
            vec![1; 16],
        )
        .value(
            &format!(r"{CS}\Services\spaceport\Parameters"),
            "PrimordialId",
            ValueType::BINARY,
            vec![2; 16],
        )
        .dword(&format!(r"{CS}\Control"), "PortableOperatingSystem", 0)
        .dword(
            &format!(r"{CS}\Control\PriorityControl"),
            "ConvertibleSlateMode",
            0,
        )
        .dword(
            &format!(r"{CS}\Control\PriorityControl"),
            "Win32PrioritySeparation",
            2,
        )
        .key(&format!(r"{CS}\Enum\PCI\VEN_8086"))
}

fn software_hive() -> HiveSpec {
    let current_version = r"Microsoft\Windows NT\CurrentVersion";
    let network_list = format!(r"{current_version}\NetworkList");
    HiveSpec::new()
        .sz(current_version, "CurrentBuildNumber", "19045")
        .sz(current_version, "InstallationType", "Client")
        .sz(
            r"Microsoft\Windows\CurrentVersion\Setup\State",
            "ImageState",
            "IMAGE_STATE_COMPLETE",
        )
        .sz(
            r"Microsoft\Windows\CurrentVersion\WindowsUpdate",
            "SusClientId",
            "6d4c5f2a-1111-2222-3333-444455556666",
        )
        .value(
            r"Microsoft\Windows\CurrentVersion\WindowsUpdate",
            "SusClientIdValidation",
            ValueType::BINARY,
            vec![6, 2, 0],
        )
        .sz(
            r"Microsoft\SQMClient",
            "MachineId",
            "{0F1E2D3C-4B5A-6978-8796-A5B4C3D2E1F0}",
        )
        .sz(
            r"Microsoft\Cryptography",
            "MachineGuid",
            "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0",
        )
        .sz(
            &format!(r"{network_list}\Profiles\{{6A1C}}"),
            "ProfileName",
            "Network",
        )
        .sz(
            &format!(r"{network_list}\Signatures\Unmanaged\0102ABCD"),
            "ProfileGuid",
            "{6A1C}",
        )
        .key(&format!(r"{network_list}\Signatures\Managed"))
        .value(
            &format!(r"{current_version}\ProfileList\{MACHINE_SID}-500"),
            "ProfileImagePath",
            ValueType::EXPAND_SZ,
            encode_sz(r"C:\Users\Administrator"),
        )
        .sz(
            r"Microsoft\Windows\CurrentVersion\Authentication\LogonUI",
            "LastLoggedOnUser",
            r".\Administrator",
        )
        .sz(
            r"Microsoft\Windows\CurrentVersion\Authentication\LogonUI",
            "LastLoggedOnSAMUser",
            r".\Administrator",
        )
        .sz(
            r"Microsoft\Windows\CurrentVersion\Authentication\LogonUI",
            "LastLoggedOnUserSID",
            &format!("{MACHINE_SID}-500"),
        )
        .sz(
            r"Microsoft\Windows\CurrentVersion\Authentication\LogonUI",
            "LastLoggedOnDisplayName",
            "Administrator",
        )
        .sz(
            r"Microsoft\Windows\CurrentVersion\Authentication\LogonUI",
            "SelectedUserSID",
            &format!("{MACHINE_SID}-500"),
        )
        .sz(
            &format!(r"{current_version}\Winlogon"),
            "DefaultUserName",
            "Administrator",
        )
        .sz(
            &format!(r"{current_version}\Winlogon"),
            "Shell",
            "explorer.exe",
        )
        .sz(
            r"Microsoft\Provisioning\AutopilotPolicy\Cache",
            "Policy",
            "x",
        )
        .value(
            &format!(r"{current_version}\Notifications\Data"),
            "41871D20A3BC1475",
            ValueType::BINARY,
            vec![9; 4],
        )
        .dword(
            &format!(r"{current_version}\Schedule"),
            "HashingCompleted",
            1,
        )
        .dword(
            &format!(r"{current_version}\Schedule"),
            "DomainJoinDetected",
            0,
        )
        .sz(
            r"Microsoft\Windows Advanced Threat Protection",
            "senseGuid",
            "guid",
        )
}

fn sam_hive(sid: &[u8]) -> HiveSpec {
    let mut v = vec![0x5Au8; 200];
    v.extend_from_slice(sid);
    HiveSpec::new()
        .value(r"SAM\Domains\Account", "V", ValueType::BINARY, v)
        .value(
            r"SAM\Domains\Account\Users\000001F4",
            "F",
            ValueType::BINARY,
            administrator_f(),
        )
}

fn security_hive() -> HiveSpec {
    HiveSpec::new().value(r"Policy\PolAcDmS", "", ValueType::NONE, sid_bytes())
}

fn default_hive() -> HiveSpec {
    HiveSpec::new()
        .sz(r"Software\Microsoft\IdentityCRL\Immersive", "Value", "x")
        .sz(
            r"Software\Microsoft\Windows\CurrentVersion\Run",
            "Keep",
            "me",
        )
}

fn ntuser_hive() -> HiveSpec {
    HiveSpec::new()
        .sz(
            r"Software\Microsoft\Windows\CurrentVersion\CloudStore\Store\Cache",
            "Value",
            "x",
        )
        .sz(
            r"SOFTWARE\Microsoft\Windows\CurrentVersion\MultiModeScenarios\LastKnownLocation",
            "Where",
            "home",
        )
        .sz(
            r"Software\Microsoft\Windows\CurrentVersion\Explorer",
            "Keep",
            "me",
        )
}

fn state_ini_utf16(state: &str) -> Vec<u8> {
    let mut bytes = vec![0xFF, 0xFE];
    let text = format!("[State]\r\nImageState=\"{state}\"\r\n");
    bytes.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
    bytes
}

const EVENT_LOGS: [&str; 3] = [
    "Application.evtx",
    "System.evtx",
    "Microsoft-Windows-TaskScheduler%4Operational.evtx",
];

/// A reference machine left in audit mode: the values and files every provider touches.
fn reference_image() -> Tree {
    reference_image_with_sam(&sid_bytes())
}

fn reference_image_with_sam(sam_sid: &[u8]) -> Tree {
    let tree = Tree::empty();
    system_hive().write(&tree, "Windows/System32/config/SYSTEM");
    software_hive().write(&tree, "Windows/System32/config/SOFTWARE");
    sam_hive(sam_sid).write(&tree, "Windows/System32/config/SAM");
    security_hive().write(&tree, "Windows/System32/config/SECURITY");
    default_hive().write(&tree, "Windows/System32/config/DEFAULT");
    ntuser_hive().write(&tree, NTUSER);
    tree.write(
        "Windows/Setup/State/State.ini",
        &state_ini_utf16("IMAGE_STATE_COMPLETE"),
    );
    for log in EVENT_LOGS {
        tree.write(
            &format!("Windows/System32/winevt/Logs/{log}"),
            &records_log(),
        );
    }
    tree.write("Windows/System32/winevt/Logs/readme.txt", b"not a log");
    for (path, contents) in [
        ("Windows/Panther/setupact.log", &b"setup log"[..]),
        ("Windows/Panther/setuperr.log", b""),
        ("Windows/Panther/diagerr.xml", b"<diag/>"),
        ("Windows/Panther/MigLog.xml", b"<keep/>"),
        ("Windows/Panther/unattend.xml", b"<unattend>stale</unattend>"),
        ("Windows/Panther/UnattendGC/setupact.log", b"gc"),
        ("Windows/Panther/Unattend/unattend.xml", b"old"),
        ("Windows/System32/Sysprep/unattend.xml", b"old"),
        ("Windows/System32/Sysprep/sysprep.exe", b"MZ"),
        ("Windows/Prefetch/CMD.EXE-0BD30981.pf", b"pf"),
        ("Windows/Prefetch/Layout.ini", b"ini"),
        ("Windows/Prefetch/AgAppLaunch.db", b"db"),
        ("Windows/Prefetch/ReadyBoot/Trace1.fx", b"keep"),
        ("ProgramData/Microsoft/Windows/WER/ReportQueue/AppCrash_x/Report.wer", b"wer"),
        ("ProgramData/Microsoft/Windows/WER/ReportArchive/AppCrash_y/Report.wer", b"wer"),
        ("ProgramData/Microsoft/Windows/WER/Temp/x.tmp", b"tmp"),
        ("Windows/MEMORY.DMP", b"dump"),
        ("Windows/Minidump/112426-01.dmp", b"dump"),
        ("Windows/LiveKernelReports/WATCHDOG/x.dmp", b"dump"),
        ("Windows/ServiceProfiles/LocalService/AppData/Local/ConnectedDevicesPlatform/L.x.cdp", b"cdp"),
        ("Windows/ServiceProfiles/LocalService/AppData/Local/ConnectedDevicesPlatform/ActivitiesCache.sst", b"sst"),
        ("Windows/ServiceProfiles/LocalService/AppData/Local/ConnectedDevicesPlatform/keep.dat", b"keep"),
        ("Windows/Resources/Themes/aero/VSCache/Aero.msstyles_1_0.NMW", b"cache"),
        ("Windows/ServiceState/Autopilot/Cache/x.json", b"{}"),
    ] {
        tree.write(path, contents);
    }
    tree
}

/// An event log holding records, made with the evtx module's writer.
fn records_log() -> Vec<u8> {
    use reseal::evtx;
    // BinXml of an empty fragment: header (0x0F 01 01 00) and end of stream (0x00).
    let binxml = [0x0F, 0x01, 0x01, 0x00, 0x00];
    let mut chunk = evtx::ChunkBuilder::new();
    chunk
        .push_record(&evtx::event_record(1, 0, &binxml))
        .unwrap();
    chunk
        .push_record(&evtx::event_record(2, 0, &binxml))
        .unwrap();
    evtx::log_file(&[chunk.finish()], 3)
}

fn options() -> GeneralizeOptions {
    GeneralizeOptions::default()
}

fn plan_on(tree: &Tree, options: &GeneralizeOptions) -> reseal::Result<Plan> {
    let mut target = DirectoryTarget::open(tree.root()).unwrap();
    reseal::plan(&mut target, options, &[])
}

fn generalize(tree: &Tree, options: &GeneralizeOptions) -> Plan {
    let mut target = DirectoryTarget::open(tree.root()).unwrap();
    let (plan, report) = reseal::generalize(&mut target, options, &[]).unwrap();
    assert!(report.is_some());
    plan
}

fn hivex(tree: &Tree, relative: &str) -> HivexKey {
    hivex_tree(&tree.path(relative))
}

fn system(tree: &Tree) -> HivexKey {
    hivex(tree, "Windows/System32/config/SYSTEM")
}

fn software(tree: &Tree) -> HivexKey {
    hivex(tree, "Windows/System32/config/SOFTWARE")
}

fn dword(root: &HivexKey, key: &str, name: &str) -> Option<u32> {
    let (value_type, data) = hivex_value(root, key, name)?;
    assert_eq!(value_type, 4, "{key}\\{name} is not a REG_DWORD");
    Some(u32::from_le_bytes(data[..4].try_into().unwrap()))
}

fn string(root: &HivexKey, key: &str, name: &str) -> Option<String> {
    let (value_type, data) = hivex_value(root, key, name)?;
    assert!(matches!(value_type, 1 | 2), "{key}\\{name} is not a string");
    Some(decode_sz(&data))
}

fn has_value(root: &HivexKey, key: &str, name: &str) -> bool {
    hivex_value(root, key, name).is_some()
}

fn has_key(root: &HivexKey, key: &str) -> bool {
    hivex_key(root, key).is_some()
}

/// The `HKLM\SYSTEM\Setup` set: CmdLine, SetupType, SystemSetupInProgress, OOBEInProgress,
/// SetupPhase.
fn setup_values(system: &HivexKey) -> (String, u32, u32, u32, u32) {
    (
        string(system, "Setup", "CmdLine").unwrap(),
        dword(system, "Setup", "SetupType").unwrap(),
        dword(system, "Setup", "SystemSetupInProgress").unwrap(),
        dword(system, "Setup", "OOBEInProgress").unwrap(),
        dword(system, "Setup", "SetupPhase").unwrap(),
    )
}

fn image_state(tree: &Tree) -> (String, String) {
    let registry = string(
        &software(tree),
        r"Microsoft\Windows\CurrentVersion\Setup\State",
        "ImageState",
    )
    .unwrap();
    let ini = std::fs::read(tree.path("Windows/Setup/State/State.ini")).unwrap();
    assert_eq!(
        &ini[..2],
        &[0xFF, 0xFE],
        "State.ini stays UTF-16LE with its BOM"
    );
    let units: Vec<u16> = ini[2..]
        .chunks_exact(2)
        .map(|pair| u16::from_le_bytes([pair[0], pair[1]]))
        .collect();
    (registry, String::from_utf16(&units).unwrap())
}

fn evtx_records(path: &Path) -> usize {
    let mut parser = evtx::EvtxParser::from_path(path).unwrap();
    parser.records().count()
}

fn pending_request(root: &HivexKey) -> &HivexKey {
    hivex_key(root, r"Setup\SetupCl\PendingRequest").expect("PendingRequest exists")
}

fn setup_execute(root: &HivexKey) -> Vec<String> {
    let (value_type, data) = hivex_value(
        root,
        &format!(r"{CS}\Control\Session Manager"),
        "SetupExecute",
    )
    .unwrap();
    assert_eq!(value_type, 7, "SetupExecute stays REG_MULTI_SZ");
    decode_multi_sz(&data)
}

fn exists(tree: &Tree, relative: &str) -> bool {
    tree.path(relative).exists()
}

#[test]
fn generalize_to_oobe_leaves_the_sysprep_state() {
    let tree = reference_image();
    for log in EVENT_LOGS {
        assert_eq!(
            evtx_records(&tree.path(&format!("Windows/System32/winevt/Logs/{log}"))),
            2
        );
    }
    let plan = generalize(&tree, &options());

    // Setup state.
    assert_eq!(
        setup_values(&system(&tree)),
        (r"oobe\windeploy.exe".to_string(), 1, 1, 0, 4)
    );
    let (registry_state, ini) = image_state(&tree);
    assert_eq!(registry_state, "IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE");
    assert_eq!(
        ini,
        "[State]\r\nImageState=\"IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE\"\r\n"
    );
    let sys = system(&tree);
    assert_eq!(
        dword(&sys, r"Setup\Status\SysprepStatus", "GeneralizationState"),
        Some(7)
    );
    assert_eq!(
        dword(&sys, r"Setup\Status\SysprepStatus", "CleanupState"),
        Some(2)
    );
    assert!(exists(
        &tree,
        "Windows/System32/Sysprep/Sysprep_succeeded.tag"
    ));

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
    let sw = software(&tree);
    assert!(!has_value(
        &sw,
        r"Microsoft\Windows NT\CurrentVersion\SoftwareProtectionPlatform",
        "SkipRearm"
    ));

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

    // Generalize.xml rows (build 19045: the 18362 set) and Cleanup.xml rows.
    let tpm = format!(r"{CS}\Services\TPM");
    assert!(!has_value(&sys, &format!(r"{tpm}\WMI"), "WindowsAIKHash"));
    assert!(!has_value(&sys, &format!(r"{tpm}\WMI"), "NoPPIClear"));
    assert_eq!(dword(&sys, &format!(r"{tpm}\WMI"), "KeepMe"), Some(7));
    for key in [
        r"WMI\Admin",
        r"WMI\Endorsement",
        "ODUID",
        "PlatformQuoteKeys",
    ] {
        assert!(!has_key(&sys, &format!(r"{tpm}\{key}")), "{key}");
    }
    assert!(!has_value(
        &sys,
        &format!(r"{CS}\Services\spaceport\Parameters"),
        "ControlId"
    ));
    assert!(!has_value(
        &sys,
        &format!(r"{CS}\Services\spaceport\Parameters"),
        "PrimordialId"
    ));
    assert!(!has_value(
        &sys,
        &format!(r"{CS}\Control"),
        "PortableOperatingSystem"
    ));
    assert!(!has_value(
        &sys,
        &format!(r"{CS}\Control\PriorityControl"),
        "ConvertibleSlateMode"
    ));
    assert_eq!(
        dword(
            &sys,
            &format!(r"{CS}\Control\PriorityControl"),
            "Win32PrioritySeparation"
        ),
        Some(2)
    );
    assert_eq!(
        dword(
            &sys,
            &format!(r"{CS}\Control\SecureBoot"),
            "AvailableUpdates"
        ),
        Some(0x8002)
    );
    assert_eq!(
        dword(
            &sys,
            &format!(r"{CS}\Control\InitialMachineConfig"),
            "Sequence"
        ),
        Some(1)
    );
    assert!(
        has_key(&sys, &format!(r"{CS}\Enum\PCI\VEN_8086")),
        "devices are kept"
    );
    assert!(plan.notes.iter().any(|n| n.provider == "devices"));
    assert!(!has_key(&sw, r"Microsoft\Provisioning\AutopilotPolicy"));
    assert!(!has_value(
        &sw,
        r"Microsoft\Windows NT\CurrentVersion\Notifications\Data",
        "41871D20A3BC1475"
    ));
    assert!(!has_value(
        &sw,
        r"Microsoft\Windows Advanced Threat Protection",
        "senseGuid"
    ));
    assert!(!has_value(
        &sw,
        r"Microsoft\Windows NT\CurrentVersion\Schedule",
        "HashingCompleted"
    ));
    assert!(!has_value(
        &sw,
        r"Microsoft\Windows NT\CurrentVersion\Schedule",
        "DomainJoinDetected"
    ));
    let default = hivex(&tree, "Windows/System32/config/DEFAULT");
    assert!(!has_key(&default, r"Software\Microsoft\IdentityCRL"));
    assert!(has_value(
        &default,
        r"Software\Microsoft\Windows\CurrentVersion\Run",
        "Keep"
    ));
    let user = hivex(&tree, NTUSER);
    assert_eq!(
        dword(
            &user,
            r"Software\Microsoft\Windows\CurrentVersion\CloudStore",
            "IsSysPrepGeneralized"
        ),
        Some(1)
    );
    assert!(has_key(
        &user,
        r"Software\Microsoft\Windows\CurrentVersion\CloudStore\Store\Cache"
    ));
    assert!(!has_key(
        &user,
        r"SOFTWARE\Microsoft\Windows\CurrentVersion\MultiModeScenarios\LastKnownLocation"
    ));
    assert!(has_value(
        &user,
        r"Software\Microsoft\Windows\CurrentVersion\Explorer",
        "Keep"
    ));
    let cdp = "Windows/ServiceProfiles/LocalService/AppData/Local/ConnectedDevicesPlatform";
    assert!(!exists(&tree, &format!("{cdp}/L.x.cdp")));
    assert!(!exists(&tree, &format!("{cdp}/ActivitiesCache.sst")));
    assert!(exists(&tree, &format!("{cdp}/keep.dat")));
    assert!(!exists(
        &tree,
        "Windows/Resources/Themes/aero/VSCache/Aero.msstyles_1_0.NMW"
    ));
    assert!(exists(&tree, "Windows/Resources/Themes/aero/VSCache"));
    assert!(!exists(&tree, "Windows/ServiceState/Autopilot"));

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

    // Event logs: replaced by empty logs, names kept, other files alone.
    for log in EVENT_LOGS {
        let path = tree.path(&format!("Windows/System32/winevt/Logs/{log}"));
        assert_eq!(evtx_records(&path), 0, "{log}");
        assert_eq!(std::fs::read(&path).unwrap(), reseal::evtx::empty_log());
    }
    assert_eq!(
        std::fs::read(tree.path("Windows/System32/winevt/Logs/readme.txt")).unwrap(),
        b"not a log"
    );

    // Leftovers.
    for gone in [
        "Windows/Panther/setupact.log",
        "Windows/Panther/setuperr.log",
        "Windows/Panther/diagerr.xml",
        "Windows/Panther/UnattendGC",
        "Windows/Panther/Unattend",
        "Windows/System32/Sysprep/unattend.xml",
        "Windows/Prefetch/CMD.EXE-0BD30981.pf",
        "Windows/Prefetch/Layout.ini",
        "Windows/Prefetch/AgAppLaunch.db",
        "ProgramData/Microsoft/Windows/WER/ReportQueue/AppCrash_x",
        "ProgramData/Microsoft/Windows/WER/ReportArchive/AppCrash_y",
        "ProgramData/Microsoft/Windows/WER/Temp/x.tmp",
        "Windows/MEMORY.DMP",
        "Windows/Minidump/112426-01.dmp",
        "Windows/LiveKernelReports/WATCHDOG",
    ] {
        assert!(!exists(&tree, gone), "{gone} should be gone");
    }
    for kept in [
        "Windows/Panther/MigLog.xml",
        "Windows/Prefetch/ReadyBoot/Trace1.fx",
        "Windows/System32/Sysprep/sysprep.exe",
        "ProgramData/Microsoft/Windows/WER/ReportQueue",
        "Windows/Minidump",
        "Windows/LiveKernelReports",
    ] {
        assert!(exists(&tree, kept), "{kept} should stay");
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
    let cases = [
        (true, Mode::Oobe, "IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE", 1),
        (
            true,
            Mode::Audit,
            "IMAGE_STATE_GENERALIZE_RESEAL_TO_AUDIT",
            1,
        ),
        (
            false,
            Mode::Oobe,
            "IMAGE_STATE_SPECIALIZE_RESEAL_TO_OOBE",
            2,
        ),
        (
            false,
            Mode::Audit,
            "IMAGE_STATE_SPECIALIZE_RESEAL_TO_AUDIT",
            2,
        ),
    ];
    for (generalize_image, mode, state, setup_type) in cases {
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
            (r"oobe\windeploy.exe".to_string(), setup_type, 1, 0, 4),
            "{what}"
        );
        let (registry_state, ini) = image_state(&tree);
        assert_eq!(registry_state, state, "{what}");
        assert!(
            ini.contains(&format!("ImageState=\"{state}\"")),
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
    assert_eq!(error.kind, ErrorKind::CorruptInput);
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
    assert_eq!(error.kind, ErrorKind::CorruptInput);
    assert!(
        error.message.contains(SAM) && error.message.contains(SECURITY),
        "{error}"
    );
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

#[test]
fn older_builds_get_their_own_generalize_rows() {
    // 17134: CloudStore is deleted instead of marked; 14393: no Generalize.xml rows at all.
    for (build, cloud_store_kept, tpm_kept) in [("17134", false, false), ("14393", true, true)] {
        let tree = reference_image();
        edit_hive(&tree, "Windows/System32/config/SOFTWARE", |hive| {
            let key = r"Microsoft\Windows NT\CurrentVersion";
            hive.set_value(key, "CurrentBuildNumber", ValueType::SZ, &encode_sz(build))
                .unwrap();
        });
        let plan = generalize(&tree, &options());
        let user = hivex(&tree, NTUSER);
        let cloud_store = r"Software\Microsoft\Windows\CurrentVersion\CloudStore";
        assert_eq!(has_key(&user, cloud_store), cloud_store_kept, "{build}");
        assert!(
            !has_value(&user, cloud_store, "IsSysPrepGeneralized"),
            "{build}"
        );
        assert_eq!(
            has_value(
                &system(&tree),
                &format!(r"{CS}\Services\TPM\WMI"),
                "WindowsAIKHash"
            ),
            tpm_kept,
            "{build}"
        );
        if build == "14393" {
            assert!(plan
                .notes
                .iter()
                .any(|n| n.provider == "action-files" && n.message.contains("14393")));
        }
    }
}

#[test]
fn a_missing_hive_for_user_rows_is_a_note_not_a_failure() {
    let tree = reference_image();
    std::fs::remove_file(tree.path(NTUSER)).unwrap();
    let plan = generalize(&tree, &options());
    assert!(plan
        .notes
        .iter()
        .any(|n| n.provider == "action-files" && n.message.contains("NTUSER.DAT")));
    // The hives Windows keeps stay readable by hivex after the run.
    for hive in [SYSTEM, SOFTWARE, SAM, SECURITY, DEFAULT] {
        hivex_tree(&tree.path(&hive.replace('\\', "/")));
    }
}

/// One registry or file action, as comparable text: (kind, path, name, value).
type ActionRow = (String, String, String, u32);

/// The registry and file actions of an action file (commented-out blocks are comments, so
/// they are not read), without the amd64/wow64 duplicates.
fn action_file_rows(xml: &str) -> std::collections::BTreeSet<ActionRow> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut rows = std::collections::BTreeSet::new();
    loop {
        match reader.read_event().unwrap() {
            Event::Start(tag) | Event::Empty(tag) => {
                let kind = String::from_utf8(tag.name().as_ref().to_vec()).unwrap();
                if ![
                    "deleteValue",
                    "deleteKey",
                    "setValue",
                    "deleteFile",
                    "deleteDirectory",
                ]
                .contains(&kind.as_str())
                {
                    continue;
                }
                let attribute = |name: &str| {
                    tag.try_get_attribute(name)
                        .unwrap()
                        .map(|a| a.unescape_value().unwrap().into_owned())
                        .unwrap_or_default()
                };
                let value = attribute("value");
                let value = match value.strip_prefix("0x") {
                    Some(hex) => u32::from_str_radix(hex, 16).unwrap(),
                    None => value.parse().unwrap_or(0),
                };
                rows.insert((kind, attribute("path"), attribute("name"), value));
            }
            Event::Eof => break,
            _ => {}
        }
    }
    rows
}

fn our_rows(build: u32) -> std::collections::BTreeSet<ActionRow> {
    use reseal::providers::action_files::{RowAction, GENERALIZE_ROWS};
    GENERALIZE_ROWS
        .iter()
        .filter(|row| (row.first_build..=row.last_build).contains(&build))
        .map(|row| {
            let (kind, path, name, value) = match row.action {
                RowAction::DeleteValue { path, name } => ("deleteValue", path, name, 0),
                RowAction::DeleteKey { path } => ("deleteKey", path, "", 0),
                RowAction::SetDword { path, name, value } => ("setValue", path, name, value),
                RowAction::DeleteFiles { path } => ("deleteFile", path, "", 0),
                RowAction::DeleteDirectory { path } => ("deleteDirectory", path, "", 0),
            };
            (kind.to_string(), path.to_string(), name.to_string(), value)
        })
        .collect()
}

#[test]
fn the_generalize_rows_are_exactly_those_of_the_public_action_files() {
    let dir = reseal_testutil::shared_dir().join("reference/actionfiles");
    for build in [15063, 17134, 18362] {
        let path = dir.join(format!("Generalize-10.0.{build}.xml"));
        let Ok(xml) = std::fs::read_to_string(&path) else {
            assert!(
                std::env::var("CI").map_or(true, |ci| ci != "true"),
                "{} is missing",
                path.display()
            );
            eprintln!("skipping: {} is missing", path.display());
            return;
        };
        assert_eq!(our_rows(build), action_file_rows(&xml), "build {build}");
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
    for (name, expected) in [
        ("SetupType", 1),
        ("SystemSetupInProgress", 1),
        ("OOBEInProgress", 0),
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
