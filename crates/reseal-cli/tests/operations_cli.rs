//! `reseal list-operations` and `--operations` through the binary: the list in text and JSON
//! names every provider and check, `--operations` in virt-sysprep's syntax leaves operations
//! out and the plan names the set that ran, bad lists are usage errors that write nothing; and
//! the help texts name every kind of image.

mod common;

use std::fs;
use std::path::Path;

use common::{code, reseal, text};

const USAGE: i32 = 2;

fn sample_in(dir: &Path) -> Option<String> {
    reseal_testutil::sample_copy_in(dir).map(|image| image.to_str().unwrap().to_string())
}

#[test]
fn list_operations_names_every_provider_and_check() {
    let output = reseal(&["list-operations"]);
    assert_eq!(code(&output), 0, "{}", text(&output));
    let listing = String::from_utf8(output.stdout).unwrap();
    for operation in reseal::operations::all() {
        let line = listing
            .lines()
            .find(|line| line.split_whitespace().next() == Some(operation.name))
            .unwrap_or_else(|| panic!("{} is not listed:\n{listing}", operation.name));
        assert!(line.contains(operation.description), "{line}");
    }
    let machine_sid = listing
        .lines()
        .find(|l| l.starts_with("machine-sid "))
        .unwrap();
    let columns: Vec<&str> = machine_sid.split_whitespace().take(4).collect();
    assert_eq!(columns, ["machine-sid", "provider", "on", "-"]);
    assert!(listing.contains("setup-state") && listing.contains("(required)"));
    let rename = listing.lines().find(|l| l.starts_with("rename ")).unwrap();
    let columns: Vec<&str> = rename.split_whitespace().take(4).collect();
    assert_eq!(columns, ["rename", "provider", "-", "named"]);
    assert!(rename.contains("set"), "{rename}");
    assert!(listing.contains("`named`: runs when --computer-name is given"));

    let output = reseal(&["list-operations", "--json"]);
    assert_eq!(code(&output), 0, "{}", text(&output));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let rows = json.as_array().unwrap();
    assert_eq!(rows.len(), reseal::operations::all().len());
    let dirty = rows.iter().find(|r| r["name"] == "dirty-hive").unwrap();
    assert_eq!(dirty["kind"], "check");
    assert_eq!(dirty["generalize"], "by-default");
    assert_eq!(dirty["reseal"], "by-default");
    let answer = rows.iter().find(|r| r["name"] == "answer-file").unwrap();
    assert!(answer["required"].as_str().is_some_and(|r| !r.is_empty()));
    let accounts = rows.iter().find(|r| r["name"] == "accounts").unwrap();
    assert_eq!(accounts["reseal"], "never");
    assert!(accounts["required"].is_null());
    let rename = rows.iter().find(|r| r["name"] == "rename").unwrap();
    assert_eq!(rename["kind"], "provider");
    assert_eq!(rename["generalize"], "never");
    assert_eq!(rename["reseal"], "with-computer-name");
}

#[test]
fn the_rename_is_chosen_like_any_operation() {
    let dir = tempfile::tempdir().unwrap();
    let Some(image) = sample_in(dir.path()) else {
        return;
    };
    let reseal_named = |operations: &str| {
        reseal(&[
            "reseal",
            &image,
            "--oobe",
            "--computer-name",
            "Kiosk-3",
            "--dry-run",
            "--json",
            "--operations",
            operations,
        ])
    };
    let left_out = reseal_named("-rename");
    assert_eq!(code(&left_out), USAGE, "{}", text(&left_out));
    assert!(text(&left_out).contains("rename"), "{}", text(&left_out));
    let kept = reseal_named("-event-logs");
    assert_eq!(code(&kept), 0, "{}", text(&kept));
    let plan: serde_json::Value = serde_json::from_slice(&kept.stdout).unwrap();
    let ran = plan["plan"]["operations"].as_array().unwrap();
    assert!(ran.iter().any(|o| o == "rename"), "{ran:?}");
    assert!(!ran.iter().any(|o| o == "event-logs"), "{ran:?}");
    let on_generalize = reseal(&[
        "generalize",
        &image,
        "--dry-run",
        "--operations",
        "defaults,rename",
    ]);
    assert_eq!(code(&on_generalize), USAGE, "{}", text(&on_generalize));
}

#[test]
fn operations_leave_out_what_they_name_and_the_plan_says_what_ran() {
    let dir = tempfile::tempdir().unwrap();
    let Some(image) = sample_in(dir.path()) else {
        return;
    };
    let plan_of = |args: &[&str]| {
        let mut all = vec!["generalize", image.as_str(), "--dry-run", "--json"];
        all.extend(args);
        let output = reseal(&all);
        assert_eq!(code(&output), 0, "{}", text(&output));
        let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        json["plan"].clone()
    };
    let names = |plan: &serde_json::Value| -> Vec<String> {
        plan["operations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_str().unwrap().to_string())
            .collect()
    };
    let providers = |plan: &serde_json::Value| -> Vec<String> {
        plan["changes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["provider"].as_str().unwrap().to_string())
            .collect()
    };
    let full = plan_of(&[]);
    assert!(providers(&full).iter().any(|p| p == "event-logs"));
    assert!(names(&full).iter().any(|n| n == "dirty-hive"));

    // A list starting with -NAME starts from the defaults.
    let without = plan_of(&["--operations", "-event-logs,-dirty-hive"]);
    assert!(providers(&without).iter().all(|p| p != "event-logs"));
    let mut expected = names(&full);
    expected.retain(|n| n != "event-logs" && n != "dirty-hive");
    assert_eq!(names(&without), expected);
    // `defaults,-NAME` is the same; a list of names runs only those.
    let same = plan_of(&["--operations=defaults,-event-logs,-dirty-hive"]);
    assert_eq!(names(&same), expected);
    let only = plan_of(&["--operations", "setup-state,answer-file,domain-joined"]);
    assert_eq!(
        names(&only),
        ["domain-joined", "setup-state", "answer-file"]
    );
    assert!(providers(&only)
        .iter()
        .all(|p| p == "setup-state" || p == "answer-file" || p == "run-record"));

    let output = reseal(&[
        "generalize",
        &image,
        "--dry-run",
        "--operations",
        "-event-logs",
    ]);
    assert_eq!(code(&output), 0, "{}", text(&output));
    let shown = String::from_utf8(output.stdout).unwrap();
    let line = shown
        .lines()
        .find(|l| l.starts_with("Operations run: "))
        .unwrap();
    assert!(
        line.contains("setup-state") && !line.contains("event-logs"),
        "{line}"
    );
}

#[test]
fn bad_operation_lists_are_usage_errors_that_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let Some(image) = sample_in(dir.path()) else {
        return;
    };
    let system = Path::new(&image).join("Windows/System32/config/SYSTEM");
    let before = fs::read(&system).unwrap();
    let cases: [(&[&str], &[&str]); 5] = [
        (
            &["generalize", "--operations", "defaults,bogus"],
            &[
                "--operations bogus",
                "machine-sid",
                "dirty-hive",
                "defaults",
            ],
        ),
        (
            &["generalize", "--operations", "-answer-file"],
            &["--operations answer-file", "cannot be left out"],
        ),
        (
            &["generalize", "--operations", "machine-sid"],
            &["--operations setup-state", "cannot be left out"],
        ),
        (
            &["reseal", "--oobe", "--operations", "defaults,machine-sid"],
            &["--operations machine-sid", "only when generalizing"],
        ),
        (
            &["reseal", "--oobe", "--operations", "defaults,,"],
            &["empty name"],
        ),
    ];
    for (args, expected) in cases {
        let mut all = args.to_vec();
        all.push(&image);
        let output = reseal(&all);
        assert_eq!(code(&output), USAGE, "{args:?}: {}", text(&output));
        let message = String::from_utf8_lossy(&output.stderr);
        for words in expected {
            assert!(message.contains(words), "{args:?}: {message}");
        }
    }
    assert!(fs::read(&system).unwrap() == before, "the image changed");
}

#[test]
fn the_help_texts_name_disk_images_and_how_operations_differ_from_ignore_check() {
    let top = text(&reseal(&["--help"]));
    assert!(top.contains("list-operations"), "{top}");
    // Every command that takes an image names every kind of image, each disk format by name.
    let formats = "raw, VHD, VHDX, qcow2";
    let commands: [&[&str]; 8] = [
        &["--help"],
        &["generalize", "--help"],
        &["reseal", "--help"],
        &["set", "--help"],
        &["newsid", "--help"],
        &["inspect", "--help"],
        &["verify", "--help"],
        &["recover", "--help"],
    ];
    for args in commands {
        let help = text(&reseal(args));
        let words = help
            .split(|c: char| !c.is_ascii_alphanumeric())
            .collect::<Vec<_>>();
        for kind in ["directory", "WIM"].into_iter().chain(formats.split(", ")) {
            assert!(words.contains(&kind), "{args:?} lacks {kind}:\n{help}");
        }
    }
    for command in ["generalize", "reseal"] {
        let help = text(&reseal(&[command, "--help"]));
        assert!(help.contains("--operations"), "{help}");
        assert!(help.contains("not run at all"), "{help}");
    }
}
