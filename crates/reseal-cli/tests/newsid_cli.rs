//! `reseal newsid` on the sample image as a directory, a WIM and a disk: `--dry-run` lists
//! every change and writes nothing, a run gives the image the new SID (a second one then plans
//! nothing), `--json` prints the plan, and mistakes and refusals get their exit codes.

mod common;

use std::fs;
use std::path::Path;

use common::{code, reseal, text};
use reseal_testutil::ntfs_image::{sample_disk, Container};

const NEW_SID: &str = "S-1-5-21-1111111111-2222222222-3333333333";
/// The sample image's machine SID (fixtures/spec).
const SAMPLE_SID: &str = "S-1-5-21-2718281828-3141592653-1618033988";

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Runs newsid twice on `image` with `extra` arguments: the first run changes the SID in
/// SAM, SECURITY and the profile list, the second finds nothing to do.
fn new_sid_twice(image: &Path, extra: &[&str]) {
    let mut args = vec!["newsid", s(image), "--sid", NEW_SID];
    args.extend(extra);
    let first = reseal(&args);
    assert_eq!(code(&first), 0, "{}", text(&first));
    let shown = text(&first);
    for place in [
        r"SAM\SAM\Domains\Account",
        r"SECURITY\Policy\PolAcDmS",
        &format!(r"ProfileList\{SAMPLE_SID}-500"),
    ] {
        assert!(shown.contains(place), "{place} missing in:\n{shown}");
    }
    let second = reseal(&args);
    assert_eq!(code(&second), 0, "{}", text(&second));
    assert!(text(&second).contains("No changes"), "{}", text(&second));
}

#[test]
fn newsid_on_the_sample_directory() {
    let Some(dir) = reseal_testutil::sample_dir_copy() else {
        return;
    };
    let before = fs::read(dir.path().join("Windows/System32/config/SAM")).unwrap();
    let dry = reseal(&["newsid", s(dir.path()), "--sid", NEW_SID, "--dry-run"]);
    assert_eq!(code(&dry), 0, "{}", text(&dry));
    assert!(text(&dry).contains("dry run: nothing was written"));
    assert!(
        text(&dry).contains(&format!("-> {NEW_SID}-500")),
        "{}",
        text(&dry)
    );
    assert_eq!(
        fs::read(dir.path().join("Windows/System32/config/SAM")).unwrap(),
        before
    );

    let json = reseal(&[
        "--json",
        "newsid",
        s(dir.path()),
        "--sid",
        NEW_SID,
        "--dry-run",
    ]);
    assert_eq!(code(&json), 0, "{}", text(&json));
    let document: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let changes = document["plan"]["changes"].as_array().unwrap();
    assert!(!changes.is_empty());
    let (record, swaps) = changes.split_last().unwrap();
    assert!(swaps.iter().all(|c| c["provider"] == "newsid"));
    assert_eq!(record["provider"], "run-record");

    new_sid_twice(dir.path(), &[]);
}

#[test]
fn newsid_on_the_sample_wim() {
    let Some((_dir, wim)) = reseal_testutil::sample_wim_copy() else {
        return;
    };
    new_sid_twice(&wim, &["--index", "1"]);
}

#[test]
fn newsid_on_a_sample_disk() {
    let dir = tempfile::tempdir().unwrap();
    let disk = sample_disk(dir.path(), Container::Vhdx);
    new_sid_twice(&disk, &[]);
}

#[test]
fn a_bad_sid_is_a_usage_error() {
    let Some(dir) = reseal_testutil::sample_dir_copy() else {
        return;
    };
    let run = reseal(&["newsid", s(dir.path()), "--sid", "S-1-5-21-1-2"]);
    assert_eq!(code(&run), 2, "{}", text(&run));
}

fn json(output: &std::process::Output) -> serde_json::Value {
    assert_eq!(code(output), 0, "{}", text(output));
    serde_json::from_slice(&output.stdout).unwrap()
}

/// `inspect --json` of the image (an array of `{target, inspection}` for `--index all`).
fn inspection(image: &Path, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["inspect", s(image), "--json"];
    args.extend(extra);
    json(&reseal(&args))
}

/// Gives `image` the new SID and the name `Clone-7` in one run, after a dry run that lists both
/// and writes nothing; a second run plans nothing.
fn new_sid_and_name(image: &Path) {
    let before = fs::read(image).ok();
    let args = [
        "newsid",
        s(image),
        "--sid",
        NEW_SID,
        "--computer-name",
        "Clone-7",
    ];
    let dry = json(&reseal(&[&args[..], &["--dry-run", "--json"]].concat()));
    assert_eq!(dry["dry_run"], true);
    assert!(dry["applied"].is_null());
    let changes = dry["plan"]["changes"].as_array().unwrap();
    let by = |provider: &str| changes.iter().filter(|c| c["provider"] == provider).count();
    assert!(by("newsid") > 0 && by("rename") >= 3, "{dry:#}");
    // And the run's record in Windows\Panther\reseal.log, planned last.
    assert_eq!(by("run-record"), 1, "{dry:#}");
    assert_eq!(changes.last().unwrap()["provider"], "run-record");
    assert_eq!(by("newsid") + by("rename") + 1, changes.len());
    let shown = text(&reseal(&[&args[..], &["--dry-run"]].concat()));
    for expected in ["CLONE-7", "Clone-7", &format!("-> {NEW_SID}-500")] {
        assert!(shown.contains(expected), "{expected} missing in:\n{shown}");
    }
    assert!(fs::read(image).ok() == before, "a dry run wrote");

    let done = json(&reseal(&[&args[..], &["--json"]].concat()));
    // The same plan, but for the run record's text (it names the run's options and time).
    let without_record = |plan: &serde_json::Value| {
        let mut plan = plan.clone();
        plan["changes"]
            .as_array_mut()
            .unwrap()
            .retain(|c| c["provider"] != "run-record");
        plan
    };
    assert_eq!(without_record(&done["plan"]), without_record(&dry["plan"]));
    assert!(!done["applied"].is_null());
    let after = inspection(image, &[]);
    assert_eq!(after["computer_name"], "CLONE-7");
    assert_eq!(after["machine_sid"], NEW_SID);
    let again = reseal(&args);
    assert_eq!(code(&again), 0, "{}", text(&again));
    assert!(text(&again).contains("No changes"), "{}", text(&again));
}

#[test]
fn newsid_with_a_computer_name_on_a_directory_a_wim_and_a_vhdx() {
    let dir = tempfile::tempdir().unwrap();
    let disk = sample_disk(dir.path(), Container::Vhdx);
    new_sid_and_name(&disk);
    reseal_testutil::ntfs_image::assert_qemu_img_check_clean(&disk);

    let Some((_wim_dir, wim)) = reseal_testutil::sample_wim_copy() else {
        return;
    };
    new_sid_and_name(&wim);
    let Some(tree) = reseal_testutil::sample_dir_copy() else {
        return;
    };
    new_sid_and_name(tree.path());
}

#[test]
fn a_bad_computer_name_is_a_usage_error_and_writes_nothing() {
    let Some((_dir, wim)) = reseal_testutil::sample_wim_copy() else {
        return;
    };
    let before = fs::read(&wim).unwrap();
    for (name, rule) in [
        ("--computer-name=1234", "all digits"),
        ("--computer-name=lab_1", "DNS host label"),
        ("--computer-name=ABCDEFGHIJKLMNOP", "longer than 15"),
    ] {
        let refused = reseal(&["newsid", s(&wim), "--sid", NEW_SID, name]);
        assert_eq!(code(&refused), 2, "{name}: {}", text(&refused));
        assert!(text(&refused).contains(rule), "{name}: {}", text(&refused));
    }
    assert!(fs::read(&wim).unwrap() == before, "a refused run wrote");
}

/// A copy of the sample WIM holding the sample image three times (exported twice more, as an
/// install.wim holds editions), in `dir`.
fn three_image_wim(dir: &Path) -> Option<std::path::PathBuf> {
    let (_copy_dir, sample) = reseal_testutil::sample_wim_copy()?;
    let wim = dir.join("install.wim");
    fs::copy(&sample, &wim).unwrap();
    for name in ["Second", "Third"] {
        reseal_testutil::ntfs_image::run("wimlib-imagex", &[&"export", &sample, &"1", &wim, &name]);
    }
    Some(wim)
}

/// The machine SID of each image of the WIM, by `inspect --index all`.
fn sids_of_every_image(wim: &Path) -> Vec<String> {
    let every = inspection(wim, &["--index", "all"]);
    every
        .as_array()
        .unwrap()
        .iter()
        .map(|image| {
            image["inspection"]["machine_sid"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

#[test]
fn index_all_gives_each_image_its_own_sid_or_the_one_given() {
    let dir = tempfile::tempdir().unwrap();
    let Some(wim) = three_image_wim(dir.path()) else {
        return;
    };
    assert_eq!(sids_of_every_image(&wim), vec![SAMPLE_SID; 3]);
    let input = fs::read(&wim).unwrap();

    // A dry run plans each image and writes nothing.
    let dry = json(&reseal(&[
        "--json",
        "newsid",
        s(&wim),
        "--index",
        "all",
        "--dry-run",
    ]));
    assert_eq!(dry.as_array().unwrap().len(), 3);
    assert_eq!(fs::read(&wim).unwrap(), input);

    // Seeded: each image its own SID, the same for the same seed and time.
    let seeded = |wim: &Path, seed: &str| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_reseal"))
            .args(["newsid", s(wim), "--index", "all", "--seed", seed])
            .env("SOURCE_DATE_EPOCH", "1700000000")
            .output()
            .unwrap();
        assert_eq!(code(&output), 0, "{}", text(&output));
    };
    let twin = dir.path().join("twin.wim");
    fs::copy(&wim, &twin).unwrap();
    let first_only = dir.path().join("first.wim");
    fs::copy(&wim, &first_only).unwrap();
    seeded(&wim, "7");
    seeded(&twin, "7");
    assert!(
        fs::read(&wim).unwrap() == fs::read(&twin).unwrap(),
        "same seed, same bytes"
    );
    let sids = sids_of_every_image(&wim);
    let mut distinct = sids.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 3, "{sids:?}");
    assert!(!sids.contains(&SAMPLE_SID.to_string()), "{sids:?}");
    // Each drawn SID's numbers have as many digits as the old one's, so its text replaces the
    // old among binary data too (docs/newsid.md).
    let digits = |sid: &str| sid.split('-').map(str::len).collect::<Vec<_>>();
    for sid in &sids {
        assert_eq!(
            digits(sid),
            digits(SAMPLE_SID),
            "{sid} against {SAMPLE_SID}"
        );
    }
    // Image 1 gets the SID a run on image 1 alone draws from the same seed.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_reseal"))
        .args(["newsid", s(&first_only), "--index", "1", "--seed", "7"])
        .output()
        .unwrap();
    assert_eq!(code(&output), 0, "{}", text(&output));
    assert_eq!(sids_of_every_image(&first_only)[0], sids[0]);
    let one = reseal(&[
        "newsid",
        s(&wim),
        "--index",
        "1",
        "--sid",
        NEW_SID,
        "--dry-run",
    ]);
    assert!(text(&one).contains(&sids[0]), "{}", text(&one));
    let verify = reseal_testutil::ntfs_image::try_run("wimlib-imagex", &[&"verify", &wim]);
    assert!(verify.status.success(), "{verify:?}");

    // With --sid every image gets that SID; a second run plans nothing.
    let given = reseal(&["newsid", s(&wim), "--index", "all", "--sid", NEW_SID]);
    assert_eq!(code(&given), 0, "{}", text(&given));
    assert_eq!(sids_of_every_image(&wim), vec![NEW_SID; 3]);
    let again = reseal(&["newsid", s(&wim), "--index", "all", "--sid", NEW_SID]);
    assert_eq!(code(&again), 0, "{}", text(&again));
    assert_eq!(
        text(&again).matches("No changes").count(),
        3,
        "{}",
        text(&again)
    );
}

/// An ntfs-3g (FUSE) mount, unmounted when dropped (also when the test fails).
struct Mounted {
    point: std::path::PathBuf,
}

impl Mounted {
    /// Mounts `volume` on `point`; `None`, said on stderr, when this machine cannot mount FUSE
    /// file systems.
    fn mount(volume: &Path, point: &Path) -> Option<Mounted> {
        let output =
            std::process::Command::new(reseal_testutil::ntfs_image::find_program("ntfs-3g"))
                .arg(volume)
                .arg(point)
                .output()
                .unwrap();
        if !output.status.success() {
            eprintln!(
                "skipping: ntfs-3g cannot mount here: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
            return None;
        }
        Some(Mounted {
            point: point.to_path_buf(),
        })
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        for (program, args) in [("umount", &[][..]), ("fusermount3", &["-u"][..])] {
            let status = std::process::Command::new(program)
                .args(args)
                .arg(&self.point)
                .status();
            if matches!(status, Ok(status) if status.success()) {
                return;
            }
        }
        eprintln!("could not unmount {}", self.point.display());
    }
}

const NTFS_ACL: &str = "system.ntfs_acl";

/// Every file and directory under `root`, relative, sorted (the root itself as "").
fn every_path(root: &Path) -> Vec<std::path::PathBuf> {
    let mut paths = vec![std::path::PathBuf::new()];
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_dir() {
                pending.push(entry.path());
            }
            paths.push(entry.path().strip_prefix(root).unwrap().to_owned());
        }
    }
    paths.sort();
    paths
}

/// Each path's `system.ntfs_acl`; `None` where ntfs-3g gives none (it answers EIO for the root
/// of a volume wimlib applied, whose descriptor it cannot read either).
fn acls(root: &Path, paths: &[std::path::PathBuf]) -> Vec<Option<Vec<u8>>> {
    paths
        .iter()
        .map(|path| xattr::get(root.join(path), NTFS_ACL).ok().flatten())
        .collect()
}

/// `true` when the bytes hold the binary form of `domain`'s three numbers.
fn names_domain(bytes: &[u8], domain: &str) -> bool {
    let needle = reseal_nt::Sid::parse_machine_sid(domain)
        .unwrap()
        .to_bytes()[12..]
        .to_vec();
    bytes.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn newsid_on_an_ntfs3g_mount_swaps_every_descriptor() {
    use reseal_nt::security_descriptor::SecurityDescriptor;

    let dir = tempfile::tempdir().unwrap();
    let volume = dir.path().join("windows.img");
    reseal_testutil::ntfs_image::make_volume(&volume, 64 << 20);
    reseal_testutil::ntfs_image::apply_wim(
        &reseal_testutil::workspace_root().join("fixtures/sample.wim"),
        &volume,
    );
    let point = dir.path().join("mnt");
    fs::create_dir(&point).unwrap();
    let Some(mounted) = Mounted::mount(&volume, &point) else {
        return;
    };
    let root = mounted.point.clone();
    // Files owned by local accounts, as a used machine has them.
    for (path, rid) in [
        ("Windows/System32/config/SAM", 1001),
        ("Windows/System32/config/SECURITY", 1001),
        ("Windows/System32/config", 1002),
    ] {
        let host = root.join(path);
        let mut descriptor =
            SecurityDescriptor::parse(&xattr::get(&host, NTFS_ACL).unwrap().unwrap()).unwrap();
        descriptor.owner = Some(reseal_nt::Sid::parse(&format!("{SAMPLE_SID}-{rid}")).unwrap());
        xattr::set(&host, NTFS_ACL, &descriptor.to_bytes().unwrap()).unwrap();
    }
    let paths = every_path(&root);
    let before = acls(&root, &paths);
    let readable = before.iter().flatten().count();
    assert!(
        readable + 1 >= paths.len(),
        "{readable} of {} readable",
        paths.len()
    );
    let naming_old = before
        .iter()
        .flatten()
        .filter(|d| names_domain(d, SAMPLE_SID))
        .count();
    assert!(naming_old >= 3, "{naming_old}");

    // The dry run plans the swap the run then does, and writes nothing.
    let dry = json(&reseal(&[
        "--json",
        "newsid",
        s(&root),
        "--sid",
        NEW_SID,
        "--dry-run",
    ]));
    let swaps: Vec<&serde_json::Value> = dry["plan"]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["action"] == "swap-file-security")
        .collect();
    assert_eq!(swaps.len(), 1, "{dry:#}");
    assert_eq!(swaps[0]["files"], naming_old as u64);
    assert_eq!(acls(&root, &paths), before);

    let run = reseal(&["newsid", s(&root), "--sid", NEW_SID]);
    assert_eq!(code(&run), 0, "{}", text(&run));
    // The one file added is the run's record (docs/operations-and-logs.md).
    let mut expected = paths.clone();
    expected.push(std::path::PathBuf::from("Windows/Panther/reseal.log"));
    expected.sort();
    let mut found = every_path(&root);
    found.sort();
    assert_eq!(found, expected, "no other file added or left behind");
    let after = acls(&root, &paths);
    let swap = reseal_nt::domain_swap::DomainSwap::new(
        &reseal_nt::Sid::parse_machine_sid(SAMPLE_SID).unwrap(),
        &reseal_nt::Sid::parse_machine_sid(NEW_SID).unwrap(),
    )
    .unwrap();
    for ((path, old), new) in paths.iter().zip(&before).zip(&after) {
        let mut expected = old.clone();
        if let Some(expected) = &mut expected {
            swap.swap_in_bytes(expected);
        }
        assert_eq!(new, &expected, "the descriptor of {}", path.display());
        assert!(
            !new.as_ref()
                .is_some_and(|new| names_domain(new, SAMPLE_SID)),
            "{}",
            path.display()
        );
    }
    let again = reseal(&["newsid", s(&root), "--sid", NEW_SID]);
    assert_eq!(code(&again), 0, "{}", text(&again));
    assert!(text(&again).contains("No changes"), "{}", text(&again));
    drop(mounted);

    reseal_testutil::ntfs_image::assert_ntfsfix_clean(&volume);
    // ntfssecaudit (libntfs-3g's own auditor, reading the volume file) reads each file's new
    // descriptor, and finds $Secure's indexes consistent.
    // (ntfs-3g hands a descriptor back laid out otherwise than it stores it, so the two are
    // compared for what they say.)
    for (path, new) in paths.iter().zip(&after) {
        let Some(new) = new else { continue };
        let windows = path.to_string_lossy().replace('/', "\\");
        let audited = reseal_testutil::ntfs_image::ntfssecaudit_descriptor(&volume, &windows);
        assert_eq!(
            SecurityDescriptor::parse(&audited).unwrap(),
            SecurityDescriptor::parse(new).unwrap(),
            "ntfssecaudit on {windows}"
        );
        assert!(!names_domain(&audited, SAMPLE_SID), "{windows}");
    }
    let audit = reseal_testutil::ntfs_image::try_run("ntfssecaudit", &[&"-a", &volume]);
    let report = String::from_utf8_lossy(&audit.stdout).to_string();
    assert!(
        report.contains("All keys are present in all lists")
            && report.contains("No errors were found"),
        "ntfssecaudit -a:\n{report}"
    );
}

#[test]
fn refusals_and_errors_name_the_image_the_file_and_the_reason() {
    let Some(dir) = reseal_testutil::sample_dir_copy() else {
        return;
    };
    let image = format!("directory {}", dir.path().display());
    let config = dir.path().join("Windows/System32/config");
    let set_policy_sid = |hex: &str| {
        let security = config.join("SECURITY");
        let set = reseal(&[
            "hive",
            s(&security),
            "set",
            r"Policy\PolAcDmS",
            "@",
            "--type",
            "none",
            hex,
        ]);
        assert_eq!(code(&set), 0, "{}", text(&set));
    };
    let sam = fs::read(config.join("SAM")).unwrap();

    // SECURITY of another machine: refused (3), naming the image, both hives and the reason.
    let other = reseal_nt::Sid::parse_machine_sid("S-1-5-21-5-6-7").unwrap();
    set_policy_sid(&reseal_nt::hex::encode(&other.to_bytes()));
    let refused = reseal(&["newsid", s(dir.path()), "--sid", NEW_SID]);
    assert_eq!(code(&refused), 3, "{}", text(&refused));
    let shown = text(&refused);
    for expected in [
        &image[..],
        "SECURITY",
        "PolAcDmS",
        "SAM",
        "do not belong together",
    ] {
        assert!(shown.contains(expected), "{expected} missing in: {shown}");
    }

    // A damaged SID: corrupt input (4), naming the image, the hive and the value.
    set_policy_sid("0102");
    let damaged = reseal(&[
        "newsid",
        s(dir.path()),
        "--sid",
        NEW_SID,
        "--computer-name",
        "lab-1",
    ]);
    assert_eq!(code(&damaged), 4, "{}", text(&damaged));
    let shown = text(&damaged);
    for expected in [&image[..], "SECURITY", "PolAcDmS"] {
        assert!(shown.contains(expected), "{expected} missing in: {shown}");
    }
    assert!(
        fs::read(config.join("SAM")).unwrap() == sam,
        "a refused run wrote"
    );
    assert!(!dir.path().join("reseal-journal").exists());
}

#[test]
fn help_documents_every_flag() {
    let help = reseal(&["newsid", "--help"]);
    assert_eq!(code(&help), 0, "{}", text(&help));
    let shown = text(&help);
    for flag in [
        "--sid",
        "--seed",
        "--computer-name",
        "--index",
        "--partition",
        "--dry-run",
        "--output",
        "--output-diff",
        "--wait",
        "--json",
        "--log",
        "--quiet",
        "--verbose",
    ] {
        assert!(shown.contains(flag), "{flag} missing in:\n{shown}");
    }
}
