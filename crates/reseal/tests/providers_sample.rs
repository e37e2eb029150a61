//! The providers on a copy of the sample image (fixtures/sample: the reference machine REF-PC01,
//! Windows 10 22H2 left in audit mode): the result read with hivex and the `evtx` crate, every
//! difference in the image accounted for by a planned change, and a second run planning nothing.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

use common::{hivex_key, hivex_value, sample_tree, Tree};
use reseal::answer_file::AnswerFile;
use reseal::image::SOFTWARE;
use reseal::providers::accounts::is_account_disabled;
use reseal::{
    Action, DirectoryTarget, GeneralizeOptions, Mode, Plan, PlanContext, Provider, ValueType,
};
use reseal_hive::data::{decode_multi_sz, decode_sz};
use reseal_testutil::{hivex_tree, HivexKey};

const CS: &str = "ControlSet001";
const SAMPLE_SID: &str = "S-1-5-21-2718281828-3141592653-1618033988";

/// The hives of the sample, by image path, and where they are below the root.
const HIVES: [&str; 7] = [
    r"Windows\System32\config\SYSTEM",
    r"Windows\System32\config\SOFTWARE",
    r"Windows\System32\config\SAM",
    r"Windows\System32\config\SECURITY",
    r"Windows\System32\config\DEFAULT",
    r"Users\Administrator\NTUSER.DAT",
    r"Users\Default\NTUSER.DAT",
];

fn host(root: &Path, image_path: &str) -> std::path::PathBuf {
    root.join(image_path.replace('\\', "/"))
}

fn hive(root: &Path, image_path: &str) -> HivexKey {
    hivex_tree(&host(root, image_path))
}

fn run(root: &Path, options: &GeneralizeOptions) -> Plan {
    let mut target = DirectoryTarget::open(root).unwrap();
    reseal::generalize(&mut target, options, &[]).unwrap().0
}

fn dword(root: &HivexKey, key: &str, name: &str) -> Option<u32> {
    hivex_value(root, key, name).map(|(_, data)| u32::from_le_bytes(data[..4].try_into().unwrap()))
}

fn string(root: &HivexKey, key: &str, name: &str) -> Option<String> {
    hivex_value(root, key, name).map(|(_, data)| decode_sz(&data))
}

/// Every value of a hive as `key path (lower case) -> name (lower case) -> (type, data)`, keys
/// without values included.
fn flatten(root: &HivexKey) -> BTreeMap<String, BTreeMap<String, (u32, Vec<u8>)>> {
    fn walk(
        key: &HivexKey,
        path: &str,
        out: &mut BTreeMap<String, BTreeMap<String, (u32, Vec<u8>)>>,
    ) {
        let values = key
            .values
            .iter()
            .map(|v| (v.name.to_lowercase(), (v.value_type, v.data.clone())))
            .collect();
        out.insert(path.to_lowercase(), values);
        for child in &key.children {
            let child_path = if path.is_empty() {
                child.name.clone()
            } else {
                format!(r"{path}\{}", child.name)
            };
            walk(child, &child_path, out);
        }
    }
    let mut out = BTreeMap::new();
    walk(root, "", &mut out);
    out
}

fn same_path(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

fn is_at_or_below(path: &str, ancestor: &str) -> bool {
    let path = path.to_lowercase();
    let ancestor = ancestor.to_lowercase();
    path == ancestor || path.starts_with(&format!(r"{ancestor}\"))
}

/// Whether the plan explains a change of value `name` (`None`: the key itself) of `key` in `hive`.
fn planned(plan: &Plan, hive_path: &str, key: &str, name: Option<&str>) -> bool {
    plan.changes.iter().any(|change| match &change.action {
        Action::SetValue {
            hive,
            key: k,
            name: n,
            ..
        }
        | Action::DeleteValue {
            hive,
            key: k,
            name: n,
            ..
        } => {
            same_path(hive, hive_path)
                && match name {
                    Some(name) => same_path(k, key) && n.eq_ignore_ascii_case(name),
                    // A value set in a new key creates it.
                    None => is_at_or_below(k, key),
                }
        }
        Action::CreateKey { hive, key: k } => same_path(hive, hive_path) && is_at_or_below(k, key),
        Action::DeleteKey { hive, key: k } => same_path(hive, hive_path) && is_at_or_below(key, k),
        _ => false,
    })
}

fn planned_file(plan: &Plan, path: &str) -> bool {
    plan.changes.iter().any(|change| match &change.action {
        Action::WriteFile { path: p, .. } | Action::DeleteFile { path: p } => same_path(p, path),
        Action::DeleteDirectory { path: p } => is_at_or_below(path, p),
        _ => false,
    })
}

/// Every file of the image by image path (backslashes), with its bytes.
fn files(tree: &Tree) -> BTreeMap<String, Vec<u8>> {
    tree.snapshot()
        .into_iter()
        .map(|(path, bytes)| (path.replace('/', "\\"), bytes))
        .collect()
}

fn is_hive_file(path: &str) -> bool {
    HIVES.iter().any(|hive| {
        let lower = path.to_lowercase();
        let hive = hive.to_lowercase();
        lower == hive || lower.starts_with(&format!("{hive}.log"))
    })
}

#[test]
fn every_difference_in_the_sample_is_a_planned_change() {
    for mode in [Mode::Oobe, Mode::Audit] {
        for generalize in [true, false] {
            let options = GeneralizeOptions {
                mode,
                generalize,
                ..GeneralizeOptions::default()
            };
            only_planned_differences(&options);
        }
    }
}

/// Runs `options` on a copy of the sample and checks every hive value, key and file that differs
/// afterwards against the plan.
fn only_planned_differences(options: &GeneralizeOptions) {
    let Some(image) = sample_tree() else { return };
    let root = image.root();
    let hives_before: Vec<_> = HIVES.iter().map(|h| flatten(&hive(root, h))).collect();
    let files_before = files(&image);

    let plan = run(root, options);
    assert!(!plan.changes.is_empty());

    for (hive_path, before) in HIVES.iter().zip(&hives_before) {
        let after = flatten(&hive(root, hive_path));
        let keys: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
        for key in keys {
            match (before.get(key), after.get(key)) {
                (Some(old), Some(new)) => {
                    let names: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
                    for name in names {
                        if old.get(name) != new.get(name) {
                            assert!(
                                planned(&plan, hive_path, key, Some(name)),
                                "{hive_path} {key}\\{name} changed without a planned change"
                            );
                        }
                    }
                }
                _ => assert!(
                    planned(&plan, hive_path, key, None),
                    "{hive_path} key {key} appeared or vanished without a planned change"
                ),
            }
        }
    }

    let files_after = files(&image);
    let paths: BTreeSet<&String> = files_before.keys().chain(files_after.keys()).collect();
    for path in paths {
        if is_hive_file(path) || files_before.get(path) == files_after.get(path) {
            continue;
        }
        assert!(
            planned_file(&plan, path),
            "{path} changed without a planned change"
        );
    }
}

#[test]
fn the_sample_generalizes_to_oobe_as_sysprep_leaves_it() {
    let Some(image) = sample_tree() else { return };
    let root = image.root();
    let security = hive(root, r"Windows\System32\config\SECURITY");
    let (_, polacdms) = hivex_value(&security, r"Policy\PolAcDmS", "").unwrap();
    let logs = root.join("Windows/System32/winevt/Logs");
    let log_names: Vec<String> = fs::read_dir(&logs)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(log_names.len(), 5);
    let records = |name: &str| {
        evtx::EvtxParser::from_path(logs.join(name))
            .unwrap()
            .records()
            .count()
    };
    assert!(
        log_names.iter().all(|name| records(name) > 0),
        "the sample's logs hold records"
    );

    let plan = run(root, &GeneralizeOptions::default());

    let system = hive(root, r"Windows\System32\config\SYSTEM");
    assert_eq!(
        string(&system, "Setup", "CmdLine").as_deref(),
        Some(r"oobe\windeploy.exe")
    );
    // sysprep-effects §1.7: SetupType 2, OOBEInProgress 1 as the real Sysprep run left them
    // (COFOUNDRY); SystemSetupInProgress 1 and SetupPhase 4 as in an applied image (USOS).
    assert_eq!(dword(&system, "Setup", "SetupType"), Some(2));
    assert_eq!(dword(&system, "Setup", "SystemSetupInProgress"), Some(1));
    assert_eq!(dword(&system, "Setup", "OOBEInProgress"), Some(1));
    assert_eq!(dword(&system, "Setup", "SetupPhase"), Some(4));
    let (old_type, old_sid) = hivex_value(
        &system,
        r"Setup\SetupCl\PendingRequest",
        "SidAccountDomainOld",
    )
    .unwrap();
    assert_eq!((old_type, old_sid), (0x5D6C_70BA, polacdms.clone()));
    assert_eq!(
        reseal::Sid::from_bytes(&polacdms).unwrap().to_string(),
        SAMPLE_SID
    );
    let (_, execute) = hivex_value(
        &system,
        &format!(r"{CS}\Control\Session Manager"),
        "SetupExecute",
    )
    .unwrap();
    let execute = decode_multi_sz(&execute);
    assert_eq!(
        execute
            .iter()
            .filter(|e| e.eq_ignore_ascii_case("setupcl.exe"))
            .count(),
        1
    );
    let name = string(
        &system,
        &format!(r"{CS}\Control\ComputerName\ComputerName"),
        "ComputerName",
    )
    .unwrap();
    assert_ne!(name, "REF-PC01");
    let winlogon = r"Microsoft\Windows NT\CurrentVersion\Winlogon";

    let software = hive(root, r"Windows\System32\config\SOFTWARE");
    assert_eq!(
        string(
            &software,
            r"Microsoft\Windows\CurrentVersion\Setup\State",
            "ImageState"
        )
        .as_deref(),
        Some("IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE")
    );
    let ini = fs::read(root.join("Windows/Setup/State/State.ini")).unwrap();
    assert_eq!(&ini[..2], &[0xFF, 0xFE], "State.ini keeps its encoding");
    let units: Vec<u16> = ini[2..]
        .chunks_exact(2)
        .map(|p| u16::from_le_bytes([p[0], p[1]]))
        .collect();
    let ini = String::from_utf16(&units).unwrap();
    assert!(
        ini.contains("\r\nImageState=IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE\r\n"),
        "{ini}"
    );
    assert!(!ini.contains("IMAGE_STATE_COMPLETE"), "{ini}");
    for (key, name) in [
        (
            r"Microsoft\Windows\CurrentVersion\WindowsUpdate",
            "SusClientId",
        ),
        (r"Microsoft\SQMClient", "MachineId"),
        (
            r"Microsoft\Windows\CurrentVersion\Authentication\LogonUI",
            "LastLoggedOnUser",
        ),
    ] {
        assert!(hivex_value(&software, key, name).is_none(), "{key}\\{name}");
    }
    assert!(hivex_key(&software, r"Microsoft\Provisioning\AutopilotPolicy").is_none());
    assert_eq!(
        string(&software, winlogon, "DefaultDomainName"),
        Some(name.clone())
    );
    assert!(hivex_value(
        &system,
        &format!(r"{CS}\Services\Tcpip6\Parameters"),
        "Dhcpv6DUID"
    )
    .is_none());
    assert!(hivex_value(
        &system,
        &format!(r"{CS}\Services\spaceport\Parameters"),
        "ControlId"
    )
    .is_none());
    assert_eq!(
        dword(
            &system,
            &format!(r"{CS}\Control\SecureBoot"),
            "AvailableUpdates"
        ),
        Some(0x8002)
    );

    let sam = hive(root, r"Windows\System32\config\SAM");
    let (_, f) = hivex_value(&sam, r"SAM\Domains\Account\Users\000001F4", "F").unwrap();
    assert_eq!(is_account_disabled(&f), Some(true));

    let user = hive(root, r"Users\Administrator\NTUSER.DAT");
    assert_eq!(
        dword(
            &user,
            r"Software\Microsoft\Windows\CurrentVersion\CloudStore",
            "IsSysPrepGeneralized"
        ),
        Some(1)
    );

    for name in &log_names {
        assert_eq!(records(name), 0, "{name}");
    }
    let answer = fs::read_to_string(root.join("Windows/Panther/unattend.xml")).unwrap();
    let answer = AnswerFile::parse(&answer).unwrap();
    assert_eq!(
        answer
            .setting(
                "specialize",
                "Microsoft-Windows-Shell-Setup",
                &["ComputerName"]
            )
            .as_deref(),
        Some("*")
    );
    assert!(
        !answer.to_xml().contains("REF-PC01"),
        "the stale cached file is replaced"
    );
    for gone in [
        "Windows/Panther/setupact.log",
        "Windows/Panther/UnattendGC",
        "Windows/Prefetch/CMD.EXE-0BD30981.pf",
        "Windows/MEMORY.DMP",
        "Windows/ServiceState/Autopilot",
    ] {
        assert!(!root.join(gone).exists(), "{gone}");
    }
    assert!(root
        .join("ProgramData/Microsoft/Windows/WER/ReportQueue")
        .exists());
    assert!(
        fs::read_dir(root.join("ProgramData/Microsoft/Windows/WER/ReportQueue"))
            .unwrap()
            .next()
            .is_none()
    );
    assert!(plan.notes.iter().any(|n| n.provider == "devices"));
    assert!(plan.notes.iter().any(|n| n.provider == "activation"));
}

#[test]
fn a_second_run_over_the_sample_plans_nothing() {
    for mode in [Mode::Oobe, Mode::Audit] {
        for generalize in [true, false] {
            let Some(image) = sample_tree() else { return };
            let options = GeneralizeOptions {
                mode,
                generalize,
                ..GeneralizeOptions::default()
            };
            run(image.root(), &options);
            let again = GeneralizeOptions {
                ignore_checks: vec!["already-generalized".to_string()],
                ..options
            };
            let mut target = DirectoryTarget::open(image.root()).unwrap();
            let plan = reseal::plan(&mut target, &again, &[]).unwrap();
            assert!(
                plan.changes.is_empty(),
                "mode {mode:?} generalize {generalize}:\n{plan}"
            );
        }
    }
}

/// A caller's provider (the `extra` argument): its changes and notes carry its own name and the
/// source it gave each group.
struct BuildStamp;

const STAMP_SOURCE: &str = "build farm: image record";
const CLEANUP_SOURCE: &str = "build farm: cleanup";

impl Provider for BuildStamp {
    fn name(&self) -> &'static str {
        "build-stamp"
    }

    fn plan(&self, ctx: &mut PlanContext<'_, '_>) -> reseal::Result<()> {
        let mut stamp = ctx.source(STAMP_SOURCE);
        stamp.set_value(
            SOFTWARE,
            r"Contoso\Build",
            "Generalized",
            ValueType::DWORD,
            &1u32.to_le_bytes(),
        )?;
        ctx.source(CLEANUP_SOURCE)
            .delete_file(r"Windows\build-farm.log")?;
        ctx.note(format!("stamped by {}", ctx.provider()));
        Ok(())
    }
}

/// A caller's provider that fails.
struct Failing;

impl Provider for Failing {
    fn name(&self) -> &'static str {
        "failing"
    }

    fn plan(&self, ctx: &mut PlanContext<'_, '_>) -> reseal::Result<()> {
        ctx.source("nowhere")
            .delete_directory(r"Windows\System32\config\SYSTEM")
    }
}

#[test]
fn an_external_provider_plans_under_its_own_name_and_sources() {
    let Some(image) = sample_tree() else { return };
    fs::write(image.root().join("Windows/build-farm.log"), b"log").unwrap();
    let mut target = DirectoryTarget::open(image.root()).unwrap();
    let options = GeneralizeOptions::default();
    let extra: Vec<Box<dyn Provider>> = vec![Box::new(BuildStamp)];
    let plan = reseal::plan(&mut target, &options, &extra).unwrap();

    let first = plan
        .changes
        .iter()
        .position(|c| c.provider == "build-stamp")
        .unwrap();
    // After them comes only the record of the run in the image.
    let (record, changes) = plan.changes.split_last().unwrap();
    assert_eq!(record.provider, reseal::run_record::PROVIDER);
    let ours: Vec<(&str, &str, &str)> = changes[first..]
        .iter()
        .map(|c| (c.provider, c.source, c.action.verb()))
        .collect();
    assert_eq!(
        ours,
        vec![
            ("build-stamp", STAMP_SOURCE, "create key"),
            ("build-stamp", STAMP_SOURCE, "add value"),
            ("build-stamp", CLEANUP_SOURCE, "delete file"),
        ]
    );
    assert!(plan
        .notes
        .iter()
        .any(|n| n.provider == "build-stamp" && n.message == "stamped by build-stamp"));

    let extra: Vec<Box<dyn Provider>> = vec![Box::new(Failing)];
    let err = reseal::plan(&mut target, &options, &extra).unwrap_err();
    assert!(err.message.starts_with("failing: "), "{err}");
}
