//! Operations: the providers and checks a run carries out, chosen by name. A provider or check
//! left out does not run (the plan names the set that ran), a required provider cannot be left
//! out, and a provider that never runs without generalizing cannot be chosen for reseal.

mod common;

use common::{fixed_options, sample_tree};
use reseal::operations::{self, OperationKind, Runs};
use reseal::{DirectoryTarget, ErrorKind, GeneralizeOptions, Input};

fn defaults_without(generalize: bool, left_out: &[&str]) -> Option<Vec<String>> {
    Some(
        operations::defaults(generalize)
            .into_iter()
            .filter(|name| !left_out.contains(name))
            .map(str::to_string)
            .collect(),
    )
}

#[test]
fn the_operations_are_the_providers_then_the_checks_each_named_once() {
    let all = operations::all();
    let providers: Vec<&str> = all
        .iter()
        .filter(|o| o.kind == OperationKind::Provider)
        .map(|o| o.name)
        .collect();
    let checks: Vec<&str> = all
        .iter()
        .filter(|o| o.kind == OperationKind::Check)
        .map(|o| o.name)
        .collect();
    assert_eq!(checks, reseal::validate::CHECKS);
    assert_eq!(providers.first(), Some(&"setup-state"));
    assert_eq!(providers.last(), Some(&"answer-file"));
    let mut names: Vec<&str> = all.iter().map(|o| o.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), all.len(), "a name is used twice");
    let required: Vec<&str> = all
        .iter()
        .filter(|o| o.required.is_some())
        .map(|o| o.name)
        .collect();
    assert_eq!(required, ["setup-state", "answer-file"]);
    assert!(all.iter().all(|o| !o.description.is_empty()));
    // Generalize.xml's providers never run on a reseal; everything runs when generalizing.
    let machine_sid = all.iter().find(|o| o.name == "machine-sid").unwrap();
    assert_eq!(
        (machine_sid.generalize, machine_sid.reseal),
        (Runs::ByDefault, Runs::Never)
    );
    // The in-place rename is reseal's, when it is given a name; generalize leaves the name to
    // specialize.
    let rename = all.iter().find(|o| o.name == "rename").unwrap();
    assert_eq!(
        (rename.generalize, rename.reseal),
        (Runs::Never, Runs::WithComputerName)
    );
    assert_eq!(providers.iter().position(|p| *p == "rename"), Some(1));
    assert_eq!(operations::defaults(true).len(), all.len() - 1);
    assert!(!operations::defaults(true).contains(&"rename"));
    assert!(!operations::defaults(false).contains(&"machine-sid"));
    assert!(operations::defaults(false).contains(&"event-logs"));
    assert!(operations::defaults(false).contains(&"rename"));
}

#[test]
fn the_rename_runs_on_a_reseal_given_a_name_and_can_be_left_out_only_without_one() {
    let Some(tree) = sample_tree() else {
        return;
    };
    let before = tree.snapshot();
    let mut target = DirectoryTarget::open(tree.root()).unwrap();
    let reseal_named = |operations: Option<Vec<String>>| GeneralizeOptions {
        generalize: false,
        computer_name: Some("KIOSK-3".into()),
        operations,
        dry_run: true,
        ..GeneralizeOptions::default()
    };
    let (plan, _) = reseal::generalize(&mut target, &reseal_named(None), &[]).unwrap();
    assert_eq!(
        plan.operations.iter().filter(|o| **o == "rename").count(),
        1
    );
    assert!(plan.changes.iter().any(|c| c.provider == "rename"));

    let error = reseal::generalize(
        &mut target,
        &reseal_named(defaults_without(false, &["rename"])),
        &[],
    )
    .unwrap_err();
    assert_eq!(error.kind, ErrorKind::Usage, "{error}");
    assert_eq!(error.value.as_deref(), Some("rename"));

    // Without a name it has nothing to do: left out or not, it does not run.
    let unnamed = GeneralizeOptions {
        computer_name: None,
        ..reseal_named(defaults_without(false, &["rename"]))
    };
    let (plan, _) = reseal::generalize(&mut target, &unnamed, &[]).unwrap();
    assert!(!plan.operations.contains(&"rename"));

    // A generalize cannot run it: specialize names the machine.
    let mut names = defaults_without(true, &[]).unwrap();
    names.push("rename".into());
    let options = GeneralizeOptions {
        operations: Some(names),
        dry_run: true,
        ..fixed_options()
    };
    let error = reseal::generalize(&mut target, &options, &[]).unwrap_err();
    assert_eq!(error.kind, ErrorKind::Usage);
    assert_eq!(error.value.as_deref(), Some("rename"));
    assert!(error.message.contains("without generalizing"), "{error}");
    drop(target);
    assert!(tree.snapshot() == before, "the image changed");
}

#[test]
fn a_provider_and_a_check_left_out_do_not_run_and_the_plan_names_what_ran() {
    let Some(tree) = sample_tree() else {
        return;
    };
    let mut target = DirectoryTarget::open(tree.root()).unwrap();
    let options = GeneralizeOptions {
        dry_run: true,
        ..fixed_options()
    };
    let (full, _) = reseal::generalize(&mut target, &options, &[]).unwrap();
    assert!(
        full.changes.iter().any(|c| c.provider == "event-logs"),
        "the sample has event logs to empty"
    );
    // The checks, then the providers, each in the order it runs.
    let mut expected: Vec<&str> = reseal::validate::CHECKS.to_vec();
    expected.extend(
        operations::all()
            .iter()
            .filter(|o| o.kind == OperationKind::Provider && o.runs_by_default(true))
            .map(|o| o.name),
    );
    assert_eq!(full.operations, expected);
    assert!(full.checks.iter().any(|c| c.check == "dirty-hive"));

    let options = GeneralizeOptions {
        operations: defaults_without(true, &["event-logs", "dirty-hive"]),
        ..options
    };
    let (plan, _) = reseal::generalize(&mut target, &options, &[]).unwrap();
    assert!(plan.changes.iter().all(|c| c.provider != "event-logs"));
    assert!(!plan.operations.contains(&"event-logs"));
    assert!(!plan.operations.contains(&"dirty-hive"));
    assert!(plan.checks.iter().all(|c| c.check != "dirty-hive"));
    assert_eq!(plan.operations.len(), full.operations.len() - 2);
    // Everything else is planned as before (the record of the run names what ran).
    let without_record = |changes: &[reseal::Change]| -> Vec<reseal::Change> {
        changes
            .iter()
            .filter(|c| c.provider != "event-logs" && c.provider != "run-record")
            .cloned()
            .collect()
    };
    assert_eq!(without_record(&plan.changes), without_record(&full.changes));
    assert_eq!(plan.changes.last().unwrap().provider, "run-record");
    assert!(plan.to_string().contains("Operations run: domain-joined"));
}

#[test]
fn a_required_provider_cannot_be_left_out_and_nothing_is_written() {
    let Some(tree) = sample_tree() else {
        return;
    };
    let before = tree.snapshot();
    for required in ["setup-state", "answer-file"] {
        let mut target = DirectoryTarget::open(tree.root()).unwrap();
        let options = GeneralizeOptions {
            operations: defaults_without(true, &[required]),
            ..fixed_options()
        };
        let error = reseal::generalize(&mut target, &options, &[]).unwrap_err();
        assert_eq!(error.kind, ErrorKind::Usage, "{error}");
        assert_eq!(error.input, Some(Input::Operations));
        assert_eq!(error.value.as_deref(), Some(required));
        assert!(error.message.contains("cannot be left out"), "{error}");
    }
    assert!(tree.snapshot() == before, "the image changed");
}

#[test]
fn a_computer_name_with_its_provider_left_out_is_a_usage_error() {
    let Some(tree) = sample_tree() else {
        return;
    };
    let before = tree.snapshot();
    let mut target = DirectoryTarget::open(tree.root()).unwrap();
    let options = GeneralizeOptions {
        operations: defaults_without(true, &["computer-name"]),
        ..fixed_options()
    };
    let error = reseal::generalize(&mut target, &options, &[]).unwrap_err();
    assert_eq!(error.kind, ErrorKind::Usage, "{error}");
    assert_eq!(error.value.as_deref(), Some("computer-name"));
    // Without a name to write, leaving it out is fine. (`fixed_options` names the machine.)
    let options = GeneralizeOptions {
        operations: defaults_without(true, &["computer-name"]),
        computer_name: None,
        dry_run: true,
        ..fixed_options()
    };
    reseal::generalize(&mut target, &options, &[]).unwrap();
    drop(target);
    assert!(tree.snapshot() == before, "the image changed");
}

#[test]
fn unknown_names_and_generalize_providers_on_a_reseal_are_usage_errors() {
    let Some(tree) = sample_tree() else {
        return;
    };
    let mut target = DirectoryTarget::open(tree.root()).unwrap();
    let mut names = defaults_without(true, &[]).unwrap();
    names.push("no-such-thing".into());
    let options = GeneralizeOptions {
        operations: Some(names),
        dry_run: true,
        ..fixed_options()
    };
    let error = reseal::generalize(&mut target, &options, &[]).unwrap_err();
    assert_eq!(error.kind, ErrorKind::Usage);
    assert_eq!(error.value.as_deref(), Some("no-such-thing"));
    assert!(
        error.message.contains("machine-sid"),
        "lists the valid names: {error}"
    );

    let mut names = defaults_without(false, &[]).unwrap();
    names.push("machine-sid".into());
    let options = GeneralizeOptions {
        generalize: false,
        operations: Some(names),
        dry_run: true,
        ..GeneralizeOptions::default()
    };
    let error = reseal::generalize(&mut target, &options, &[]).unwrap_err();
    assert_eq!(error.kind, ErrorKind::Usage);
    assert_eq!(error.value.as_deref(), Some("machine-sid"));
}

#[test]
fn an_ignored_check_runs_and_is_recorded_a_check_left_out_does_not_run() {
    let Some(tree) = sample_tree() else {
        return;
    };
    tree.write("Windows/WinSxS/pending.xml", b"<PendingTransaction/>");
    let mut target = DirectoryTarget::open(tree.root()).unwrap();
    let options = GeneralizeOptions {
        dry_run: true,
        ..fixed_options()
    };
    let error = reseal::generalize(&mut target, &options, &[]).unwrap_err();
    assert_eq!(error.kind, ErrorKind::Refused);
    assert!(error.message.contains("pending-servicing"));

    let ignoring = GeneralizeOptions {
        ignore_checks: vec!["pending-servicing".into()],
        ..options.clone()
    };
    let (plan, _) = reseal::generalize(&mut target, &ignoring, &[]).unwrap();
    let outcome = plan
        .checks
        .iter()
        .find(|c| c.check == "pending-servicing")
        .expect("an ignored check still runs");
    assert!(outcome
        .ignored_failure
        .as_deref()
        .is_some_and(|reason| reason.contains("pending.xml")));
    assert!(plan
        .to_string()
        .contains("Ignored failed check pending-servicing"));

    let leaving_out = GeneralizeOptions {
        operations: defaults_without(true, &["pending-servicing"]),
        ..options
    };
    let (plan, _) = reseal::generalize(&mut target, &leaving_out, &[]).unwrap();
    assert!(plan.checks.iter().all(|c| c.check != "pending-servicing"));
    assert!(plan.checks.iter().all(|c| c.ignored_failure.is_none()));
}
