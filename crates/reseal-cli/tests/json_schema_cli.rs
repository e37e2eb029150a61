//! The `--json` output of every image command, as the real binary prints it on the sample
//! images, validates against its JSON Schema in docs/schema (docs/json-output.md); and the
//! schemas reject documents that are wrong, so the check can fail.

mod common;

use std::path::Path;
use std::sync::OnceLock;

use common::{code, reseal, text};
use jsonschema::{Registry, Validator};
use reseal_testutil::ntfs_image::{sample_disk, Container};
use reseal_testutil::{sample_dir_copy, sample_wim_copy, workspace_root};
use serde_json::{json, Value};

const SCHEMAS: [&str; 6] = [
    "inspect",
    "plan",
    "apply",
    "verify",
    "recover",
    "operations",
];

fn schema(name: &str) -> Value {
    let path = workspace_root().join(format!("docs/schema/{name}.schema.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every schema, registered under its `$id`, so `apply`'s reference to `plan` resolves
/// without the network or the file system.
fn registry() -> &'static Registry<'static> {
    static REGISTRY: OnceLock<Registry<'static>> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let mut registry = Registry::new();
        for name in SCHEMAS {
            let schema = schema(name);
            let id = schema["$id"].as_str().unwrap().to_string();
            registry = registry.add(id, schema).unwrap();
        }
        registry.prepare().unwrap()
    })
}

fn validator(name: &str) -> Validator {
    jsonschema::options()
        .with_registry(registry())
        .build(&schema(name))
        .unwrap_or_else(|e| panic!("{name}.schema.json: {e}"))
}

/// Panics with every error when `document` does not validate against `name`.
fn assert_valid(name: &str, document: &Value) {
    let validator = validator(name);
    let errors: Vec<String> = validator
        .iter_errors(document)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{name}: {errors:#?}\n{}",
        serde_json::to_string_pretty(document).unwrap()
    );
}

/// Runs reseal with `--json` and returns its document; `expected` is the exit code.
fn json_of(args: &[&str], expected: i32) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let output = reseal(&all);
    assert_eq!(code(&output), expected, "{args:?}: {}", text(&output));
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {}", text(&output)))
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn every_schema_is_a_valid_2020_12_schema() {
    for name in SCHEMAS {
        let schema = schema(name);
        assert_eq!(
            schema["$schema"], "https://json-schema.org/draft/2020-12/schema",
            "{name}"
        );
        if let Err(error) = jsonschema::meta::validate(&schema) {
            panic!("{name}.schema.json is not a valid schema: {error}");
        }
    }
}

#[test]
fn directory_output_matches_the_schemas() {
    let image = sample_dir_copy().expect("fixtures/sample is in the repository");
    let dir = s(image.path());

    assert_valid("inspect", &json_of(&["inspect", dir], 0));
    let before = json_of(&["verify", dir], 5);
    assert_valid("verify", &before);
    assert_eq!(before["verdict"], "not-armed");

    let dry = json_of(&["generalize", dir, "--dry-run"], 0);
    assert_valid("apply", &dry);
    assert_valid("plan", &dry["plan"]);
    assert!(dry["applied"].is_null());
    assert!(!dry["plan"]["changes"].as_array().unwrap().is_empty());

    let run = json_of(&["generalize", dir], 0);
    assert_valid("apply", &run);
    assert!(run["applied"]["hives_written"].as_array().unwrap().len() > 1);

    let newsid = json_of(&["newsid", dir, "--sid", "S-1-5-21-1-2-3", "--dry-run"], 0);
    assert_valid("apply", &newsid);
    assert_valid("plan", &newsid["plan"]);

    let after = json_of(&["verify", dir], 0);
    assert_valid("verify", &after);
    assert_eq!(after["verdict"], "armed");
    assert_valid("inspect", &json_of(&["inspect", dir], 0));
    assert_valid("recover", &json_of(&["recover", dir], 0));
    let operations = json_of(&["list-operations"], 0);
    assert_valid("operations", &operations);
    let mut wrong = operations.clone();
    wrong[0]["generalize"] = json!("sometimes");
    assert!(
        !validator("operations").is_valid(&wrong),
        "operations accepted an unknown 'generalize'"
    );
}

#[test]
fn wim_output_matches_the_schemas() {
    let (dir, wim) = sample_wim_copy().expect("fixtures/sample.wim is in the repository");
    let all = json_of(&["inspect", s(&wim), "--index", "all"], 0);
    assert!(all.is_array(), "--index all prints an array");
    assert_valid("inspect", &all);
    assert_valid(
        "inspect",
        &json_of(&["inspect", s(&wim), "--index", "1"], 0),
    );

    let copy = dir.path().join("generalized.wim");
    let run = json_of(
        &[
            "generalize",
            s(&wim),
            "--index",
            "all",
            "--output",
            s(&copy),
        ],
        0,
    );
    assert!(run.is_array());
    assert_valid("apply", &run);
    assert_valid("verify", &json_of(&["verify", s(&copy), "--index", "1"], 0));
    // Every image at once: an array, armed after generalize --index all, not armed before.
    let every = json_of(&["verify", s(&copy), "--index", "all"], 0);
    assert_valid("verify", &every);
    assert_eq!(
        every.as_array().unwrap().len(),
        run.as_array().unwrap().len()
    );
    for image in every.as_array().unwrap() {
        assert_eq!(image["report"]["verdict"], "armed", "{image}");
    }
    let before = json_of(&["verify", s(&wim), "--index", "all"], 5);
    assert_valid("verify", &before);
    assert_eq!(
        before.as_array().unwrap().len(),
        every.as_array().unwrap().len()
    );
    assert_valid("recover", &json_of(&["recover", s(&wim)], 0));
}

#[test]
fn disk_output_matches_the_schemas() {
    let dir = tempfile::tempdir().unwrap();
    let disk = sample_disk(dir.path(), Container::Vhdx);
    let inspection = json_of(&["inspect", s(&disk)], 0);
    assert_valid("inspect", &inspection);
    assert_eq!(inspection["disk"]["format"], "VHDX");
    assert_eq!(inspection["disk"]["chain"][0]["file"], s(&disk));
    let mut wrong = inspection.clone();
    wrong["disk"]["chain"] = json!([]);
    assert!(
        !validator("inspect").is_valid(&wrong),
        "inspect accepted a disk without a chain"
    );
    let run = json_of(&["generalize", s(&disk)], 0);
    assert_valid("apply", &run);
    assert_valid("verify", &json_of(&["verify", s(&disk)], 0));
}

/// newsid's file-security change, as the library serializes it (the sample images' descriptors
/// name no local account, so no real run plans one).
#[test]
fn a_file_security_swap_matches_the_plan_schema() {
    let sid = |text| reseal::Sid::parse_machine_sid(text).unwrap();
    let mut plan = reseal::Plan::new();
    let origin = reseal::Origin {
        provider: "newsid",
        source: "docs/newsid.md: file security",
    };
    let found = reseal::FileSecuritySwap {
        descriptors: 2,
        files: 3,
    };
    plan.swap_file_security(
        origin,
        &sid("S-1-5-21-1-2-3"),
        &sid("S-1-5-21-4-5-6"),
        found,
    );
    let document = serde_json::to_value(&plan).unwrap();
    assert_eq!(document["changes"][0]["action"], "swap-file-security");
    assert_valid("plan", &document);
}

#[test]
fn a_key_security_swap_matches_the_plan_schema() {
    let mut plan = reseal::Plan::new();
    plan.changes.push(reseal::Change {
        provider: "newsid",
        source: "docs/newsid.md: key security",
        action: reseal::Action::SwapKeySecurity {
            hive: r"Windows\System32\config\SYSTEM".to_string(),
            old_domain: "S-1-5-21-1-2-3".to_string(),
            new_domain: "S-1-5-21-4-5-6".to_string(),
            descriptors: 7,
        },
    });
    let mut document = serde_json::to_value(&plan).unwrap();
    assert_eq!(document["changes"][0]["action"], "swap-key-security");
    assert_eq!(document["changes"][0]["descriptors"], 7);
    assert_valid("plan", &document);
    document["changes"][0]
        .as_object_mut()
        .unwrap()
        .remove("hive");
    assert!(
        !validator("plan").is_valid(&document),
        "a key security swap without its hive"
    );
}

#[test]
fn the_schemas_reject_wrong_documents() {
    let image = sample_dir_copy().expect("fixtures/sample is in the repository");
    let dir = s(image.path());
    let inspection = json_of(&["inspect", dir], 0);
    let run = json_of(&["generalize", dir, "--dry-run"], 0);

    let rejected = |name: &str, document: Value, why: &str| {
        assert!(
            !validator(name).is_valid(&document),
            "{name} accepted a document where {why}"
        );
    };
    assert_eq!(inspection["disk"], Value::Null, "a directory is no disk");
    let mut wrong = inspection.clone();
    wrong["domain_joined"] = json!("no");
    rejected("inspect", wrong, "domain_joined is a string");
    let mut wrong = inspection.clone();
    wrong.as_object_mut().unwrap().remove("machine_sid");
    rejected("inspect", wrong, "machine_sid is missing");
    let mut wrong = inspection.clone();
    wrong["machine_sid"] = json!("S-1-5-18");
    rejected("inspect", wrong, "machine_sid is no machine SID");

    let mut wrong = run.clone();
    wrong.as_object_mut().unwrap().remove("target");
    rejected("apply", wrong, "target is missing");
    let mut wrong = run.clone();
    wrong["applied"] = json!({"hives_written": []});
    rejected("apply", wrong, "a dry run has an incomplete report");

    let changes = run["plan"]["changes"].as_array().unwrap();
    let set_value = changes
        .iter()
        .position(|c| c["action"] == "set-value")
        .expect("the plan sets a value");
    let mut wrong = run["plan"].clone();
    wrong["changes"][set_value]["action"] = json!("set-valu");
    rejected("plan", wrong, "an action is unknown");
    let mut wrong = run["plan"].clone();
    wrong["operations"] = json!(["Setup State"]);
    rejected(
        "plan",
        wrong,
        "an operation is not named as list-operations names it",
    );
    let mut wrong = run["plan"].clone();
    wrong["checks"][0]
        .as_object_mut()
        .unwrap()
        .remove("ignored_failure");
    rejected("plan", wrong, "a check has no result");
    let mut wrong = run["plan"].clone();
    wrong["changes"][set_value]["value"]["hex"] = json!("xyz");
    rejected("plan", wrong, "hex data is not hex");
    let mut wrong = run["plan"].clone();
    wrong["answer_settings"] = json!([{
        "provider": "accounts", "pass": "oobeSystem", "component": "Microsoft-Windows-Shell-Setup",
        "path": ["UserAccounts", "AdministratorPassword", "Value"], "value": "secret", "sensitive": true
    }]);
    rejected("plan", wrong, "a sensitive value is shown");
    let mut wrong = run["plan"].clone();
    wrong["changes"] = json!([{
        "provider": "answer_file", "source": "x", "action": "write-file",
        "path": "Windows\\Panther\\unattend.xml", "size": 6, "existed": false,
        "sensitive": true, "contents": {"text": "secret"}
    }]);
    rejected("plan", wrong, "a sensitive file's contents are shown");

    rejected(
        "verify",
        json!({"mode": "oobe", "generalized": true, "verdict": "armed?", "checks": []}),
        "the verdict is unknown",
    );
    rejected(
        "recover",
        json!({"recovered": {"outcome": "rolled-sideways"}}),
        "the outcome is unknown",
    );
}
