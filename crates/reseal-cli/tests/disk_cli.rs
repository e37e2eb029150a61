//! The `reseal` binary on disk images: the same inspect/generalize JSON as for a directory,
//! `--partition`, `--output-diff`, `recover`, and the exit codes of mistakes and refusals.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::{code, reseal, text};
use reseal_testutil::ntfs_image::{
    apply_wim, build_disk, extract_range, make_volume, ntfscat, run, sample_disk, Container,
    Scheme, FIRST_PARTITION_START,
};
use reseal_testutil::workspace_root;

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn json(output: &std::process::Output) -> serde_json::Value {
    assert_eq!(code(output), 0, "{}", text(output));
    serde_json::from_slice(&output.stdout).unwrap()
}

/// `reseal inspect --json` of `image`, without the disk container (which a directory and a
/// raw form of the same disk do not share).
fn inspected_volume(image: &Path) -> serde_json::Value {
    let mut document = json(&reseal(&["inspect", s(image), "--json"]));
    document.as_object_mut().unwrap().remove("disk");
    document
}

/// The fields of a generalize document that do not depend on the kind of target.
fn plan_and_report(document: &serde_json::Value) -> serde_json::Value {
    serde_json::json!({
        "dry_run": document["dry_run"],
        "plan": common::untimed(&document["plan"]),
        "applied": document["applied"],
    })
}

#[test]
fn a_disk_gives_the_same_json_as_the_directory_it_holds() {
    let dir = tempfile::tempdir().unwrap();
    let disk = sample_disk(dir.path(), Container::Vhdx);
    let tree = dir.path().join("tree");
    run(
        "wimlib-imagex",
        &[
            &"apply",
            &workspace_root().join("fixtures/sample.wim"),
            &"1",
            &tree,
        ],
    );
    let fixed = [
        "--computer-name",
        "NEW-PC",
        "--sid",
        "S-1-5-21-1111111111-2222222222-3333333333",
        "--json",
    ];

    let inspect_disk = inspected_volume(&disk);
    let inspect_tree = inspected_volume(&tree);
    assert_eq!(inspect_disk, inspect_tree);

    let mut disk_args = vec!["generalize", s(&disk)];
    disk_args.extend(fixed);
    let mut tree_args = vec!["generalize", s(&tree)];
    tree_args.extend(fixed);
    let on_disk = json(&reseal(&disk_args));
    let on_tree = json(&reseal(&tree_args));
    assert_eq!(plan_and_report(&on_disk), plan_and_report(&on_tree));
    let target = on_disk["target"].as_str().unwrap();
    assert!(target.starts_with("partition 1 "), "{target}");

    assert_eq!(inspected_volume(&disk), inspected_volume(&tree));
    let nothing = reseal(&["recover", s(&disk)]);
    assert_eq!(code(&nothing), 0, "{}", text(&nothing));
    assert!(
        text(&nothing).contains("nothing to recover"),
        "{}",
        text(&nothing)
    );
}

#[test]
fn a_qcow2_disk_is_generalized_as_its_raw_form_is() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("q")).unwrap();
    fs::create_dir(dir.path().join("r")).unwrap();
    let qcow2 = sample_disk(&dir.path().join("q"), Container::Qcow2);
    let raw = sample_disk(&dir.path().join("r"), Container::Raw);
    let fixed = [
        "--computer-name",
        "NEW-PC",
        "--sid",
        "S-1-5-21-1111111111-2222222222-3333333333",
        "--json",
    ];
    assert_eq!(inspected_volume(&qcow2), inspected_volume(&raw));
    let mut qcow2_args = vec!["generalize", s(&qcow2)];
    qcow2_args.extend(fixed);
    let mut raw_args = vec!["generalize", s(&raw)];
    raw_args.extend(fixed);
    let on_qcow2 = json(&reseal(&qcow2_args));
    let on_raw = json(&reseal(&raw_args));
    assert_eq!(plan_and_report(&on_qcow2), plan_and_report(&on_raw));
    reseal_testutil::ntfs_image::assert_qemu_img_check_clean(&qcow2);

    // qemu's reading of the result holds what reseal reads, and what the raw disk holds.
    let converted = dir.path().join("converted.raw");
    reseal_testutil::ntfs_image::convert_to_raw(&qcow2, &converted);
    let after = inspected_volume(&qcow2);
    assert_eq!(after, inspected_volume(&converted));
    assert_eq!(after, inspected_volume(&raw));
    assert_eq!(
        after["image_state"],
        "IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE"
    );
}

#[test]
fn a_vmdk_disk_is_generalized_as_its_raw_form_is() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("v")).unwrap();
    fs::create_dir(dir.path().join("r")).unwrap();
    let vmdk = sample_disk(&dir.path().join("v"), Container::Vmdk);
    let raw = sample_disk(&dir.path().join("r"), Container::Raw);
    let fixed = [
        "--computer-name",
        "NEW-PC",
        "--sid",
        "S-1-5-21-1111111111-2222222222-3333333333",
        "--json",
    ];
    let inspected = json(&reseal(&["inspect", s(&vmdk), "--json"]));
    assert_eq!(inspected["disk"]["format"], "VMDK");
    assert_eq!(inspected["disk"]["chain"][0]["file"], s(&vmdk));
    assert_eq!(inspected_volume(&vmdk), inspected_volume(&raw));
    let mut vmdk_args = vec!["generalize", s(&vmdk)];
    vmdk_args.extend(fixed);
    let mut raw_args = vec!["generalize", s(&raw)];
    raw_args.extend(fixed);
    let on_vmdk = json(&reseal(&vmdk_args));
    let on_raw = json(&reseal(&raw_args));
    assert_eq!(plan_and_report(&on_vmdk), plan_and_report(&on_raw));
    reseal_testutil::ntfs_image::assert_qemu_img_check_clean(&vmdk);

    // qemu's reading of the result holds what reseal reads, and what the raw disk holds.
    let converted = dir.path().join("converted.raw");
    reseal_testutil::ntfs_image::convert_to_raw(&vmdk, &converted);
    let after = inspected_volume(&vmdk);
    assert_eq!(after, inspected_volume(&converted));
    assert_eq!(after, inspected_volume(&raw));
    assert_eq!(
        after["image_state"],
        "IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE"
    );
}

#[test]
fn a_stream_optimized_vmdk_is_refused_in_place_and_generalized_into_a_vmdk_child() {
    let dir = tempfile::tempdir().unwrap();
    let sparse = sample_disk(dir.path(), Container::Vmdk);
    let stream = dir.path().join("stream.vmdk");
    let converted = std::process::Command::new("qemu-img")
        .args(["convert", "-O", "vmdk", "-o", "subformat=streamOptimized"])
        .args([&sparse, &stream])
        .status()
        .unwrap();
    assert!(converted.success());
    let before = fs::read(&stream).unwrap();

    let refused = reseal(&["generalize", s(&stream)]);
    assert_eq!(code(&refused), 4, "{}", text(&refused));
    assert!(
        text(&refused).contains("streamOptimized"),
        "{}",
        text(&refused)
    );
    assert!(fs::read(&stream).unwrap() == before, "the image changed");

    let child = dir.path().join("child.vmdk");
    let generalized = reseal(&["generalize", s(&stream), "--output-diff", s(&child)]);
    assert_eq!(code(&generalized), 0, "{}", text(&generalized));
    assert!(fs::read(&stream).unwrap() == before, "the parent changed");
    reseal_testutil::ntfs_image::assert_qemu_img_check_clean(&child);
    let state = |path: &Path| json(&reseal(&["inspect", s(path), "--json"]))["image_state"].clone();
    assert_eq!(state(&child), "IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE");
    assert_eq!(state(&stream), "IMAGE_STATE_COMPLETE");
    // qemu reads the child over its parent as reseal does.
    let raw = dir.path().join("child.raw");
    reseal_testutil::ntfs_image::convert_to_raw(&child, &raw);
    assert_eq!(state(&raw), "IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE");

    // A child of another format's name is a usage error.
    let wrong = reseal(&["generalize", s(&stream), "--output-diff", "other.vhdx"]);
    assert_eq!(code(&wrong), 2, "{}", text(&wrong));
}

#[test]
fn output_diff_and_partition_options() {
    let dir = tempfile::tempdir().unwrap();
    let disk = sample_disk(dir.path(), Container::Vhd);
    let parent = fs::read(&disk).unwrap();
    let child = dir.path().join("child.vhd");

    let generalized = reseal(&[
        "generalize",
        s(&disk),
        "--partition",
        "1",
        "--output-diff",
        s(&child),
    ]);
    assert_eq!(code(&generalized), 0, "{}", text(&generalized));
    assert!(fs::read(&disk).unwrap() == parent, "the parent changed");
    let state = |path: &Path| json(&reseal(&["inspect", s(path), "--json"]))["image_state"].clone();
    assert_eq!(state(&child), "IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE");
    assert_eq!(state(&disk), "IMAGE_STATE_COMPLETE");

    // Mistakes are usage errors (exit code 2) that write nothing.
    for args in [
        vec!["generalize", s(&disk), "--output-diff", s(&child)],
        vec!["generalize", s(&disk), "--output-diff", "child.vhdx"],
        vec!["generalize", s(&disk), "--partition", "7"],
        vec!["generalize", s(&disk), "--index", "1"],
        vec!["inspect", s(&disk), "--partition", "0"],
    ] {
        let refused = reseal(&args);
        assert_eq!(code(&refused), 2, "{args:?}: {}", text(&refused));
    }
    let wim = workspace_root().join("fixtures/sample.wim");
    let refused = reseal(&["inspect", s(&wim), "--partition", "1"]);
    assert_eq!(code(&refused), 2, "{}", text(&refused));
    assert!(fs::read(&disk).unwrap() == parent, "the parent changed");
}

#[test]
fn refusals_and_damage_have_their_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let disk = sample_disk(dir.path(), Container::Raw);
    // BitLocker: exit code 3, the image untouched.
    let mut bytes = fs::read(&disk).unwrap();
    bytes[(1 << 20) + 3..(1 << 20) + 11].copy_from_slice(b"-FVE-FS-");
    fs::write(&disk, &bytes).unwrap();
    let refused = reseal(&["generalize", s(&disk)]);
    assert_eq!(code(&refused), 3, "{}", text(&refused));
    assert!(text(&refused).contains("BitLocker"), "{}", text(&refused));
    assert!(fs::read(&disk).unwrap() == bytes);

    // A VHD whose footer checksums (the copy at the start too) are wrong: exit code 4, naming
    // the file.
    let vhd_dir = dir.path().join("vhd");
    fs::create_dir(&vhd_dir).unwrap();
    let vhd = sample_disk(&vhd_dir, Container::Vhd);
    let mut vhd_bytes = fs::read(&vhd).unwrap();
    let footer = vhd_bytes.len() - 512;
    vhd_bytes[footer + 64] ^= 0xFF;
    vhd_bytes[64] ^= 0xFF;
    fs::write(&vhd, &vhd_bytes).unwrap();
    let damaged = reseal(&["inspect", s(&vhd)]);
    assert_eq!(code(&damaged), 4, "{}", text(&damaged));
    assert!(text(&damaged).contains("disk.vhd"), "{}", text(&damaged));
    assert!(fs::read(&vhd).unwrap() == vhd_bytes);
}

/// `recover` on a disk with two Windows partitions: with nothing to recover it wants
/// `--partition` like every command; an interrupted run's redo log is finished without it,
/// since the log is the whole disk's.
#[test]
fn recover_on_a_disk_with_two_windows_partitions() {
    let dir = tempfile::tempdir().unwrap();
    let volumes: Vec<PathBuf> = ["first.img", "second.img"]
        .iter()
        .map(|name| {
            let volume = dir.path().join(name);
            make_volume(&volume, 64 << 20);
            apply_wim(&workspace_root().join("fixtures/sample.wim"), &volume);
            volume
        })
        .collect();
    let disk = build_disk(
        dir.path(),
        &[&volumes[0], &volumes[1]],
        Scheme::Gpt,
        Container::Vhdx,
    );
    let refused = reseal(&["recover", s(&disk)]);
    assert_eq!(code(&refused), 2, "{}", text(&refused));
    assert!(text(&refused).contains("--partition"), "{}", text(&refused));
    let nothing = reseal(&["recover", s(&disk), "--partition", "2"]);
    assert_eq!(code(&nothing), 0, "{}", text(&nothing));
    assert!(
        text(&nothing).contains("nothing to recover"),
        "{}",
        text(&nothing)
    );

    // What a run leaves when it stops right after writing its redo log: a complete log (here
    // rewriting the first sector with its own bytes).
    let mut first_sector = vec![0u8; 512];
    reseal_disk::open(&disk)
        .unwrap()
        .read_at(0, &mut first_sector)
        .unwrap();
    let device_len = reseal_disk::open(&disk).unwrap().len();
    let change = reseal_disk::staged::Change {
        offset: 0,
        data: first_sector,
    };
    reseal_disk::redo_log::write_log(&disk, device_len, &[change], &["SAM".into()]).unwrap();
    let finished = reseal(&["recover", s(&disk)]);
    assert_eq!(code(&finished), 0, "{}", text(&finished));
    assert!(text(&finished).contains("finished"), "{}", text(&finished));
    assert!(!reseal_disk::redo_log::is_pending(&disk));
    let inspected = reseal(&["inspect", s(&disk), "--partition", "1"]);
    assert_eq!(code(&inspected), 0, "{}", text(&inspected));
}

/// coreutils' SHA-256 of a file.
fn sha256sum(path: &Path) -> String {
    let output = run("sha256sum", &[&path]);
    String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// `reseal generalize` with a fixed seed and time, so two runs write the same bytes.
fn generalize_seeded(image: &Path, extra: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_reseal"))
        .args(["generalize", s(image), "--computer-name", "NEW-PC"])
        .args(["--seed", "7"])
        .args(extra)
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .output()
        .unwrap()
}

#[test]
fn a_qcow2_overlay_of_every_format_holds_what_generalizing_in_place_writes() {
    let dir = tempfile::tempdir().unwrap();
    let raw = sample_disk(dir.path(), Container::Raw);
    let expected = dir.path().join("expected.raw");
    fs::copy(&raw, &expected).unwrap();
    let in_place = generalize_seeded(&expected, &["--json"]);
    let applied = json(&in_place)["applied"].clone();
    let expected_volume = dir.path().join("expected.volume");
    extract_range(&expected, FIRST_PARTITION_START, 64 << 20, &expected_volume);
    // libntfs-3g stamps the MFT records it touches with the clock, so two runs differ there;
    // the files themselves are the same bytes.
    let files = |key: &str| -> Vec<String> {
        applied[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|path| path.as_str().unwrap().to_string())
            .collect()
    };
    let written: Vec<String> = [files("files_written"), files("hives_written")].concat();
    let deleted = files("files_deleted");
    assert!(!written.is_empty() && !deleted.is_empty());

    for (format, extension, options) in [
        ("raw", "raw", ""),
        ("vpc", "vhd", "subformat=dynamic,force_size=on"),
        ("vhdx", "vhdx", "subformat=dynamic"),
        ("qcow2", "qcow2", "compat=0.10"),
        ("vmdk", "vmdk", "subformat=monolithicSparse"),
    ] {
        let image = dir.path().join(format!("base-{format}.{extension}"));
        let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> =
            vec![&"convert", &"-f", &"raw", &"-O", &format];
        if !options.is_empty() {
            args.extend([&"-o" as &dyn AsRef<std::ffi::OsStr>, &options]);
        }
        args.extend([&raw as &dyn AsRef<std::ffi::OsStr>, &image]);
        run("qemu-img", &args);
        let before = sha256sum(&image);

        // Beside the image: the overlay names it by its file name.
        let child = dir.path().join(format!("child-{format}.qcow2"));
        let generalized = generalize_seeded(&image, &["--output-diff", s(&child)]);
        assert_eq!(code(&generalized), 0, "{format}: {}", text(&generalized));
        assert_eq!(sha256sum(&image), before, "{format}: the image changed");
        assert!(!dir
            .path()
            .join(format!("child-{format}.qcow2.reseal-partial"))
            .exists());
        reseal_testutil::ntfs_image::assert_qemu_img_check_clean(&child);
        let info = run(
            "qemu-img",
            &[&"info", &"--backing-chain", &"--output=json", &child],
        );
        let chain: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
        assert_eq!(chain[0]["format"], "qcow2", "{format}: {chain}");
        assert_eq!(
            chain[0]["backing-filename"],
            format!("base-{format}.{extension}")
        );
        assert_eq!(chain[0]["backing-filename-format"], format);
        assert_eq!(chain[1]["format"], format, "{format}: {chain}");
        assert_eq!(
            chain[1]["filename"].as_str().map(Path::new),
            Some(image.as_path())
        );

        let converted = dir.path().join(format!("child-{format}.raw"));
        reseal_testutil::ntfs_image::convert_to_raw(&child, &converted);
        let volume = dir.path().join(format!("child-{format}.volume"));
        extract_range(&converted, FIRST_PARTITION_START, 64 << 20, &volume);
        for path in &written {
            assert!(
                ntfscat(&volume, path) == ntfscat(&expected_volume, path),
                "{format}: {path} differs from the disk generalized in place"
            );
        }
        for path in &deleted {
            assert_eq!(ntfscat(&volume, path), None, "{format}: {path} is left");
        }
        assert_eq!(inspected_volume(&converted), inspected_volume(&expected));
        fs::remove_file(&volume).unwrap();
        let inspection = json(&reseal(&["inspect", s(&child), "--json"]));
        assert_eq!(
            inspection["image_state"], "IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE",
            "{format}"
        );
        let chain = &inspection["disk"]["chain"];
        assert_eq!(inspection["disk"]["format"], "qcow2");
        assert_eq!(chain[0]["file"], s(&child));
        assert_eq!(chain[1]["file"], s(&image));
        assert_eq!(chain[1]["virtual_size"], chain[0]["virtual_size"]);
        assert_eq!(chain.as_array().unwrap().len(), 2, "{format}: {chain}");
        let shown = text(&reseal(&["inspect", s(&child)]));
        assert!(
            shown.contains(&format!("qcow2 {}", child.display())),
            "{format}: {shown}"
        );
        fs::remove_file(&converted).unwrap();
    }

    // Elsewhere: the overlay names the image by its absolute path.
    let elsewhere = dir.path().join("elsewhere");
    fs::create_dir(&elsewhere).unwrap();
    let child = elsewhere.join("child.qcow2");
    let image = dir.path().join("base-vhdx.vhdx");
    let generalized = generalize_seeded(&image, &["--output-diff", s(&child)]);
    assert_eq!(code(&generalized), 0, "{}", text(&generalized));
    let info = run("qemu-img", &[&"info", &"--output=json", &child]);
    let info: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    assert_eq!(info["backing-filename"], s(&image));

    // A VHDX image takes a .vhdx child as before; a qcow2 image refuses a .vhdx one.
    let vhdx_child = dir.path().join("child.vhdx");
    let generalized = generalize_seeded(&image, &["--output-diff", s(&vhdx_child)]);
    assert_eq!(code(&generalized), 0, "{}", text(&generalized));
    let qcow2 = dir.path().join("base-qcow2.qcow2");
    let refused = generalize_seeded(
        &qcow2,
        &["--output-diff", s(&dir.path().join("other.vhdx"))],
    );
    assert_eq!(code(&refused), 2, "{}", text(&refused));
    assert!(
        text(&refused).contains(".qcow2 overlay"),
        "{}",
        text(&refused)
    );
}
