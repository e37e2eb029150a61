//! `newsid` and files that hold the SID as text: a scheduled task run as a local account (its
//! XML file, UTF-16 LE with a byte-order mark, names the account in `<UserId>`) is rewritten with
//! the new SID on a directory, a WIM image and a disk image, keeping its encoding and metadata;
//! a task that does not name the old SID is not written; a second run plans nothing.

mod common;

use std::path::Path;

use reseal::newsid::{newsid, plan_newsid, NewSidOptions};
use reseal::{Action, DirectoryTarget, Plan, Sid, Target, WimTarget};
use reseal_testutil::ntfs_image::run;

const NEW_SID: &str = "S-1-5-21-1111111111-2222222222-3333333333";
/// Task Scheduler's folder, and the two tasks the tests put in it.
const TASK_AS_USER: &str = "Windows/System32/Tasks/Backup/Nightly";
const TASK_AS_SYSTEM: &str = "Windows/System32/Tasks/Cleanup";

fn options() -> NewSidOptions {
    NewSidOptions {
        sid: Some(Sid::parse_machine_sid(NEW_SID).unwrap()),
        ..Default::default()
    }
}

/// A task file as Task Scheduler writes it: UTF-16 LE with a byte-order mark.
fn task_xml(user_id: &str) -> Vec<u8> {
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-16\"?>\r\n<Task version=\"1.4\" \
         xmlns=\"http://schemas.microsoft.com/windows/2004/02/mit/task\">\r\n  <Principals>\r\n    \
         <Principal id=\"Author\">\r\n      <UserId>{user_id}</UserId>\r\n      \
         <LogonType>Password</LogonType>\r\n    </Principal>\r\n  </Principals>\r\n  <Actions \
         Context=\"Author\">\r\n    <Exec>\r\n      <Command>backup.cmd</Command>\r\n    \
         </Exec>\r\n  </Actions>\r\n</Task>\r\n"
    );
    let mut bytes = vec![0xFF, 0xFE];
    bytes.extend(xml.encode_utf16().flat_map(u16::to_le_bytes));
    bytes
}

/// The sample image's machine SID, as newsid's plan names it.
fn old_domain(target: &mut dyn Target) -> String {
    plan_newsid(target, &options())
        .unwrap()
        .notes
        .iter()
        .find_map(|n| {
            n.message
                .strip_prefix("the machine SID changes from ")
                .map(|rest| rest.split(' ').next().unwrap().to_string())
        })
        .unwrap()
}

/// The task files the plan rewrites.
fn task_writes(plan: &Plan) -> Vec<String> {
    plan.changes
        .iter()
        .filter_map(|c| match &c.action {
            Action::WriteFile { path, existed, .. } if path.contains("Tasks") => {
                assert!(existed, "{path}");
                Some(path.replace('\\', "/"))
            }
            _ => None,
        })
        .collect()
}

/// The sample image's domain, read from the sample folder (the WIM and the disk hold the same
/// image).
fn sample_domain() -> Option<String> {
    let tree = common::sample_tree()?;
    Some(old_domain(&mut DirectoryTarget::open(tree.root()).unwrap()))
}

#[test]
fn a_directory_task_naming_a_local_account_is_rewritten() {
    let Some(tree) = common::sample_tree() else {
        return;
    };
    let mut target = DirectoryTarget::open(tree.root()).unwrap();
    let old = old_domain(&mut target);
    tree.write(TASK_AS_USER, &task_xml(&format!("{old}-1001")));
    tree.write(TASK_AS_SYSTEM, &task_xml("S-1-5-18"));
    let before = tree.snapshot();

    let (plan, _) = newsid(&mut target, &options()).unwrap();
    assert_eq!(task_writes(&plan), [TASK_AS_USER]);
    assert_eq!(
        std::fs::read(tree.path(TASK_AS_USER)).unwrap(),
        task_xml(&format!("{NEW_SID}-1001"))
    );
    assert_eq!(
        tree.snapshot()[TASK_AS_SYSTEM],
        before[TASK_AS_SYSTEM],
        "a task without the old SID is not written"
    );
    let mut target = DirectoryTarget::open(tree.root()).unwrap();
    assert!(plan_newsid(&mut target, &options()).unwrap().is_empty());
}

/// The sample WIM with the two tasks added by wimlib-imagex.
fn wim_with_tasks(dir: &Path, old: &str) -> std::path::PathBuf {
    let wim = dir.join("sample.wim");
    std::fs::copy(
        reseal_testutil::workspace_root().join("fixtures/sample.wim"),
        &wim,
    )
    .unwrap();
    let (user, system) = (dir.join("user.xml"), dir.join("system.xml"));
    std::fs::write(&user, task_xml(&format!("{old}-1001"))).unwrap();
    std::fs::write(&system, task_xml("S-1-5-18")).unwrap();
    for (host, image) in [(&user, TASK_AS_USER), (&system, TASK_AS_SYSTEM)] {
        let command = format!("add '{}' '/{image}'", host.display());
        run(
            "wimlib-imagex",
            &[&"update", &wim, &"1", &format!("--command={command}")],
        );
    }
    wim
}

/// A file of image 1 of `wim`, as wimlib-imagex extracts it.
fn wim_file(wim: &Path, path: &str) -> Vec<u8> {
    run(
        "wimlib-imagex",
        &[&"extract", &wim, &"1", &format!("/{path}"), &"--to-stdout"],
    )
    .stdout
}

/// The lines of wimlib's detailed listing of one path that are not about its contents.
fn wim_metadata(wim: &Path, path: &str) -> Vec<String> {
    let out = run(
        "wimlib-imagex",
        &[
            &"dir",
            &wim,
            &"1",
            &format!("--path=/{path}"),
            &"--detailed",
        ],
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|line| {
            [
                "Attributes",
                "Security ID",
                "Creation Time",
                "Owner",
                "Group",
                "DACL",
                "ACE",
            ]
            .iter()
            .any(|field| line.trim_start().starts_with(field))
        })
        .map(str::to_string)
        .collect()
}

#[test]
fn a_wim_task_naming_a_local_account_is_rewritten_keeping_its_metadata() {
    let Some(old) = sample_domain() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let wim = wim_with_tasks(dir.path(), &old);
    let metadata_before = wim_metadata(&wim, TASK_AS_USER);
    assert!(!metadata_before.is_empty());
    let system_before = wim_file(&wim, TASK_AS_SYSTEM);

    let mut target = WimTarget::open(&wim, "1").unwrap();
    let (plan, _) = newsid(&mut target, &options()).unwrap();
    drop(target);
    assert_eq!(task_writes(&plan), [TASK_AS_USER]);
    assert_eq!(
        wim_file(&wim, TASK_AS_USER),
        task_xml(&format!("{NEW_SID}-1001"))
    );
    assert_eq!(wim_file(&wim, TASK_AS_SYSTEM), system_before);
    assert_eq!(wim_metadata(&wim, TASK_AS_USER), metadata_before);
    run("wimlib-imagex", &[&"verify", &wim]);
}

#[test]
fn a_disk_task_naming_a_local_account_is_rewritten_keeping_its_descriptor() {
    use reseal::DiskTarget;
    use reseal_testutil::ntfs_image::{
        apply_wim, assert_ntfsfix_clean, build_disk, convert_to_raw, extract_range, make_volume,
        ntfscat, ntfssecaudit_descriptor, Container, Scheme, FIRST_PARTITION_START,
    };
    const VOLUME_SIZE: u64 = 64 << 20;
    let Some(old) = sample_domain() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let wim = wim_with_tasks(dir.path(), &old);
    let volume = dir.path().join("windows.img");
    make_volume(&volume, VOLUME_SIZE);
    apply_wim(&wim, &volume);
    let user_path = TASK_AS_USER.replace('/', "\\");
    let descriptor_before = ntfssecaudit_descriptor(&volume, &user_path);
    let disk = build_disk(dir.path(), &[&volume], Scheme::Gpt, Container::Vhdx);

    let mut target = DiskTarget::open(&disk, None).unwrap();
    let (plan, _) = newsid(&mut target, &options()).unwrap();
    drop(target);
    assert_eq!(task_writes(&plan), [TASK_AS_USER]);

    let raw = dir.path().join("after.raw");
    convert_to_raw(&disk, &raw);
    let after = dir.path().join("after.img");
    extract_range(&raw, FIRST_PARTITION_START, VOLUME_SIZE, &after);
    assert_eq!(
        ntfscat(&after, &user_path).unwrap(),
        task_xml(&format!("{NEW_SID}-1001"))
    );
    assert_eq!(
        ntfscat(&after, &TASK_AS_SYSTEM.replace('/', "\\")).unwrap(),
        task_xml("S-1-5-18")
    );
    assert_eq!(
        ntfssecaudit_descriptor(&after, &user_path),
        descriptor_before
    );
    assert_ntfsfix_clean(&after);
}
