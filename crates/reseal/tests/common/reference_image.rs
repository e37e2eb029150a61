//! The reference image of the provider tests: a machine left in audit mode, its hives written
//! with reseal-hive and holding every value and file a provider touches, and the hivex lookups
//! the tests read the results with.

use std::path::Path;

use reseal::{DirectoryTarget, GeneralizeOptions, Plan, Sid, ValueType};
use reseal_hive::data::{decode_multi_sz, decode_sz, encode_dword, encode_multi_sz, encode_sz};
use reseal_testutil::{hivex_tree, HivexKey};

use super::{edit_hive, hivex_key, hivex_value, new_hive, Tree};

pub const CS: &str = "ControlSet001";
pub const NTUSER: &str = "Users/Administrator/NTUSER.DAT";
pub const MACHINE_SID: &str = "S-1-5-21-4270870110-1275511114-212320121";
pub const OLD_NAME: &str = "REF-PC01";
pub const PASSWORD: &str = "Sup3rSecret";
pub const INTERFACE: &str = "{3f6a1c2e-0b1d-4c59-9c41-7a0e5d2b8f10}";

/// One hive's content: keys (created even when empty) and values.
pub struct HiveSpec {
    keys: Vec<String>,
    values: Vec<(String, String, ValueType, Vec<u8>)>,
}

impl HiveSpec {
    pub fn new() -> HiveSpec {
        HiveSpec {
            keys: Vec::new(),
            values: Vec::new(),
        }
    }
    pub fn key(mut self, key: &str) -> HiveSpec {
        self.keys.push(key.to_string());
        self
    }
    pub fn value(
        mut self,
        key: &str,
        name: &str,
        value_type: ValueType,
        data: Vec<u8>,
    ) -> HiveSpec {
        self.values
            .push((key.to_string(), name.to_string(), value_type, data));
        self
    }
    pub fn sz(self, key: &str, name: &str, text: &str) -> HiveSpec {
        self.value(key, name, ValueType::SZ, encode_sz(text))
    }
    pub fn dword(self, key: &str, name: &str, number: u32) -> HiveSpec {
        self.value(key, name, ValueType::DWORD, encode_dword(number))
    }
    /// Writes the hive at `relative`.
    pub fn write(self, tree: &Tree, relative: &str) {
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

pub fn sid_bytes() -> Vec<u8> {
    Sid::parse(MACHINE_SID).unwrap().to_bytes()
}

/// The built-in Administrator's `F`: 80 bytes, enabled (normal account 0x0010, password never
/// expires 0x0200), with recognisable bytes around the control word.
pub fn administrator_f() -> Vec<u8> {
    let mut f: Vec<u8> = (0..80u8).map(|i| i.wrapping_mul(7)).collect();
    f[0x38..0x3A].copy_from_slice(&0x0210u16.to_le_bytes());
    f
}

pub fn system_hive() -> HiveSpec {
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

pub fn software_hive() -> HiveSpec {
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

pub fn sam_hive(sid: &[u8]) -> HiveSpec {
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

pub fn security_hive() -> HiveSpec {
    HiveSpec::new().value(r"Policy\PolAcDmS", "", ValueType::NONE, sid_bytes())
}

pub fn default_hive() -> HiveSpec {
    HiveSpec::new()
        .sz(r"Software\Microsoft\IdentityCRL\Immersive", "Value", "x")
        .sz(
            r"Software\Microsoft\Windows\CurrentVersion\Run",
            "Keep",
            "me",
        )
}

pub fn ntuser_hive() -> HiveSpec {
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

pub fn state_ini_utf16(state: &str) -> Vec<u8> {
    let mut bytes = vec![0xFF, 0xFE];
    let text = format!("[State]\r\nImageState=\"{state}\"\r\n");
    bytes.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
    bytes
}

pub const EVENT_LOGS: [&str; 3] = [
    "Application.evtx",
    "System.evtx",
    "Microsoft-Windows-TaskScheduler%4Operational.evtx",
];

/// A reference machine left in audit mode: the values and files every provider touches.
pub fn reference_image() -> Tree {
    reference_image_with_sam(&sid_bytes())
}

pub fn reference_image_with_sam(sam_sid: &[u8]) -> Tree {
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
pub fn records_log() -> Vec<u8> {
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

pub fn options() -> GeneralizeOptions {
    GeneralizeOptions::default()
}

pub fn plan_on(tree: &Tree, options: &GeneralizeOptions) -> reseal::Result<Plan> {
    let mut target = DirectoryTarget::open(tree.root()).unwrap();
    reseal::plan(&mut target, options, &[])
}

pub fn generalize(tree: &Tree, options: &GeneralizeOptions) -> Plan {
    let mut target = DirectoryTarget::open(tree.root()).unwrap();
    let (plan, report) = reseal::generalize(&mut target, options, &[]).unwrap();
    assert!(report.is_some());
    plan
}

pub fn hivex(tree: &Tree, relative: &str) -> HivexKey {
    hivex_tree(&tree.path(relative))
}

pub fn system(tree: &Tree) -> HivexKey {
    hivex(tree, "Windows/System32/config/SYSTEM")
}

pub fn software(tree: &Tree) -> HivexKey {
    hivex(tree, "Windows/System32/config/SOFTWARE")
}

pub fn dword(root: &HivexKey, key: &str, name: &str) -> Option<u32> {
    let (value_type, data) = hivex_value(root, key, name)?;
    assert_eq!(value_type, 4, "{key}\\{name} is not a REG_DWORD");
    Some(u32::from_le_bytes(data[..4].try_into().unwrap()))
}

pub fn string(root: &HivexKey, key: &str, name: &str) -> Option<String> {
    let (value_type, data) = hivex_value(root, key, name)?;
    assert!(matches!(value_type, 1 | 2), "{key}\\{name} is not a string");
    Some(decode_sz(&data))
}

pub fn has_value(root: &HivexKey, key: &str, name: &str) -> bool {
    hivex_value(root, key, name).is_some()
}

pub fn has_key(root: &HivexKey, key: &str) -> bool {
    hivex_key(root, key).is_some()
}

/// The `HKLM\SYSTEM\Setup` set: CmdLine, SetupType, SystemSetupInProgress, OOBEInProgress,
/// SetupPhase.
pub fn setup_values(system: &HivexKey) -> (String, u32, u32, u32, u32) {
    (
        string(system, "Setup", "CmdLine").unwrap(),
        dword(system, "Setup", "SetupType").unwrap(),
        dword(system, "Setup", "SystemSetupInProgress").unwrap(),
        dword(system, "Setup", "OOBEInProgress").unwrap(),
        dword(system, "Setup", "SetupPhase").unwrap(),
    )
}

pub fn image_state(tree: &Tree) -> (String, String) {
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

pub fn evtx_records(path: &Path) -> usize {
    let mut parser = evtx::EvtxParser::from_path(path).unwrap();
    parser.records().count()
}

pub fn pending_request(root: &HivexKey) -> &HivexKey {
    hivex_key(root, r"Setup\SetupCl\PendingRequest").expect("PendingRequest exists")
}

pub fn setup_execute(root: &HivexKey) -> Vec<String> {
    let (value_type, data) = hivex_value(
        root,
        &format!(r"{CS}\Control\Session Manager"),
        "SetupExecute",
    )
    .unwrap();
    assert_eq!(value_type, 7, "SetupExecute stays REG_MULTI_SZ");
    decode_multi_sz(&data)
}

pub fn exists(tree: &Tree, relative: &str) -> bool {
    tree.path(relative).exists()
}

/// The reference image generalized to OOBE with the default options, and the plan applied.
pub fn generalized_reference_image() -> (Tree, Plan) {
    let tree = reference_image();
    let plan = generalize(&tree, &options());
    (tree, plan)
}
