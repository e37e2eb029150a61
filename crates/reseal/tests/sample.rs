//! The whole library on the repository's sample image: inspect, generalize, run again.

mod common;

use common::sample_tree;
use reseal::{DirectoryTarget, GeneralizeOptions};

#[test]
fn inspect_reads_the_sample_image() {
    let Some(tree) = sample_tree() else { return };
    let mut target = reseal::open_target(tree.root()).unwrap();
    let found = reseal::inspect(target.as_mut()).unwrap();
    assert_eq!(found.computer_name.as_deref(), Some("REF-PC01"));
    assert_eq!(found.windows.build, Some(19045));
    assert!(!found.domain_joined);
    assert!(found
        .machine_sid
        .as_deref()
        .unwrap()
        .starts_with("S-1-5-21-"));
    assert!(found.event_log_records.is_some());
    assert!(found
        .hives
        .iter()
        .filter(|h| h.path.contains("config"))
        .all(|h| h.present));
}

#[test]
fn generalize_then_generalize_again_changes_nothing_more() {
    let Some(tree) = sample_tree() else { return };
    let before = tree.snapshot();
    let mut target = DirectoryTarget::open(tree.root()).unwrap();
    let options = GeneralizeOptions::default();

    let (plan, report) = reseal::generalize(&mut target, &options, &[]).unwrap();
    assert!(!plan.is_empty());
    assert!(report.is_some());
    assert_ne!(tree.snapshot(), before);
    assert!(!tree.path("reseal-journal").exists());

    // The image is now generalized, which the check refuses; past it, nothing is left to do.
    let err = reseal::plan(&mut target, &options, &[]).unwrap_err();
    assert!(err.message.contains("already-generalized"), "{err}");
    let again = GeneralizeOptions {
        ignore_checks: vec!["already-generalized".into()],
        ..Default::default()
    };
    let second = reseal::plan(&mut target, &again, &[]).unwrap();
    assert!(second.is_empty(), "second plan:\n{second}");
}
