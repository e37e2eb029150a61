//! The disk target: the repository's sample image applied into an NTFS volume (wimlib's NTFS-3G
//! mode) inside raw, VHD and VHDX disks with GPT or MBR tables (sgdisk, qemu-img), generalized
//! in place or into a differencing child, and checked with tools we did not write: qemu-img
//! (check, convert to raw), ntfsfix, ntfssecaudit, the `ntfs` crate and hivex. Also: finding the
//! Windows partition, the refusals, the redo log's recovery, and the real Windows-made disks.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::sample_tree;
use reseal::{DirectoryTarget, ErrorKind, GeneralizeOptions, OpenOptions, Sid, Target};
use reseal_disk::redo_log;
use reseal_disk::staged::Change;
use reseal_testutil::ntfs_image::{
    self, apply_wim, assert_ntfsfix_clean, assert_qemu_img_check_clean, build_disk, convert_to_raw,
    extract_range, make_volume, ntfssecaudit_descriptor, read_with_ntfs_crate, run, Container,
    Scheme, FIRST_PARTITION_START,
};
use reseal_testutil::{hivex_tree_of_bytes, real_fixture, workspace_root};

const VOLUME_SIZE: u64 = 64 << 20;
const SYSTEM: &str = r"Windows\System32\config\SYSTEM";
const SAM: &str = r"Windows\System32\config\SAM";
/// A file no provider touches.
const UNTOUCHED: &str = r"Windows\System32\setupcl.exe";

/// Options whose every generated value is fixed, so two runs plan the same bytes.
fn fixed_options() -> GeneralizeOptions {
    GeneralizeOptions {
        computer_name: Some("NEW-PC".into()),
        sid: Some(Sid::parse_machine_sid("S-1-5-21-1111111111-2222222222-3333333333").unwrap()),
        // The record of the run in the image names its time.
        source_date_epoch: Some(1_700_000_000),
        ..Default::default()
    }
}

/// A 64 MiB NTFS volume file holding the sample image, applied from `fixtures/sample.wim`.
fn windows_volume(dir: &Path, name: &str) -> PathBuf {
    let volume = dir.join(name);
    make_volume(&volume, VOLUME_SIZE);
    apply_wim(&workspace_root().join("fixtures/sample.wim"), &volume);
    volume
}

/// A 64 MiB NTFS volume with one file and no Windows.
fn data_volume(dir: &Path, name: &str) -> PathBuf {
    let volume = dir.join(name);
    make_volume(&volume, VOLUME_SIZE);
    let file = dir.join("data.txt");
    fs::write(&file, b"data").unwrap();
    run("ntfscp", &[&volume, &file, &"data.txt"]);
    volume
}

/// The NTFS volume at `start` of a disk image, copied into `<dir>/<name>` through qemu-img.
fn volume_of(dir: &Path, disk: &Path, start: u64, name: &str) -> PathBuf {
    let raw = dir.join(format!("{name}.raw"));
    convert_to_raw(disk, &raw);
    let volume = dir.join(name);
    extract_range(&raw, start, VOLUME_SIZE, &volume);
    fs::remove_file(raw).unwrap();
    volume
}

fn open(disk: &Path, partition: Option<u32>) -> reseal::Result<Box<dyn Target>> {
    reseal::open_target_with(
        disk,
        &OpenOptions {
            partition,
            ..OpenOptions::default()
        },
    )
}

/// Opens `disk` with its changes going into a new differencing disk `child`.
fn open_with_child(disk: &Path, child: &Path) -> reseal::Result<Box<dyn Target>> {
    reseal::open_target_with(
        disk,
        &OpenOptions {
            output_diff: Some(child),
            ..OpenOptions::default()
        },
    )
}

/// Generalizes each kind of disk and checks the result with independent readers, and against
/// what the directory target makes of the same tree.
#[test]
fn generalizing_raw_vhd_and_vhdx_disks_gives_the_directory_result() {
    let Some(tree) = sample_tree() else { return };
    let mut directory = DirectoryTarget::open(tree.root()).unwrap();
    let directory_before = reseal::inspect(&mut directory).unwrap();
    let (directory_plan, directory_report) =
        reseal::generalize(&mut directory, &fixed_options(), &[]).unwrap();
    let directory_report = directory_report.unwrap();
    let directory_after = reseal::inspect(&mut directory).unwrap();

    for (scheme, container) in [
        (Scheme::Gpt, Container::Vhdx),
        (Scheme::Gpt, Container::Vhd),
        (Scheme::Mbr, Container::Raw),
        (Scheme::Gpt, Container::Vmdk),
    ] {
        let case = format!("{scheme:?} {container:?}");
        let dir = tempfile::tempdir().unwrap();
        let volume = windows_volume(dir.path(), "windows.img");
        let disk = build_disk(dir.path(), &[&volume], scheme, container);
        let raw_before = dir.path().join("before.raw");
        convert_to_raw(&disk, &raw_before);
        let volume_before = volume_of(dir.path(), &disk, FIRST_PARTITION_START, "v0.img");

        let mut target = open(&disk, None).unwrap();
        assert!(target.describe().contains("partition 1"), "{case}");
        let mut inspection = reseal::inspect(target.as_mut()).unwrap();
        let found = inspection.disk.take().expect("a disk has a container");
        let format = match container {
            Container::Vhdx => "VHDX",
            Container::Vhd => "VHD",
            Container::Raw => "raw",
            Container::Qcow2 => "qcow2",
            Container::Vmdk => "VMDK",
        };
        assert_eq!(found.format, format, "{case}");
        assert_eq!(found.chain.len(), 1, "{case}");
        assert_eq!(found.chain[0].file, disk.display().to_string());
        let size = fs::metadata(&raw_before).unwrap().len();
        assert_eq!(found.chain[0].virtual_size, size, "{case}");
        assert_eq!(inspection, directory_before, "{case}");
        let (plan, report) = reseal::generalize(target.as_mut(), &fixed_options(), &[]).unwrap();
        assert_eq!(
            serde_json::to_value(&plan).unwrap(),
            serde_json::to_value(&directory_plan).unwrap(),
            "{case}"
        );
        assert_eq!(report.as_ref(), Some(&directory_report), "{case}");
        drop(target);
        assert!(!redo_log::is_pending(&disk), "{case}: the redo log is gone");

        let mut reopened = open(&disk, None).unwrap();
        let mut inspection = reseal::inspect(reopened.as_mut()).unwrap();
        assert!(inspection.disk.take().is_some(), "{case}");
        assert_eq!(inspection, directory_after, "{case}");

        // The container and the volume, as other programs see them.
        if container == Container::Vhdx {
            assert_qemu_img_check_clean(&disk);
        }
        let raw_after = dir.path().join("after.raw");
        convert_to_raw(&disk, &raw_after);
        let (before, after) = (
            fs::read(&raw_before).unwrap(),
            fs::read(&raw_after).unwrap(),
        );
        assert_eq!(before.len(), after.len(), "{case}");
        let volume_range =
            FIRST_PARTITION_START as usize..(FIRST_PARTITION_START + VOLUME_SIZE) as usize;
        assert!(
            before[..volume_range.start] == after[..volume_range.start]
                && before[volume_range.end..] == after[volume_range.end..],
            "{case}: bytes outside the Windows volume changed"
        );
        let volume_after = volume_of(dir.path(), &disk, FIRST_PARTITION_START, "v1.img");
        assert_ntfsfix_clean(&volume_after);

        // Hives read back with the `ntfs` crate hold what the directory target wrote (value for
        // value: their headers carry the commit time), other files byte for byte.
        for path in &directory_report.hives_written {
            let from_disk = read_with_ntfs_crate(&volume_after, path).unwrap();
            let from_directory = directory.read_file(path).unwrap().unwrap();
            assert_eq!(
                hivex_tree_of_bytes(&from_disk),
                hivex_tree_of_bytes(&from_directory),
                "{case}: {path}"
            );
        }
        for path in &directory_report.files_written {
            let from_disk = read_with_ntfs_crate(&volume_after, path);
            let from_directory = directory.read_file(path).unwrap();
            assert!(
                from_disk == from_directory,
                "{case}: {path} differs: {:?} bytes on the disk, {:?} in the directory",
                from_disk.map(|b| b.len()),
                from_directory.map(|b| b.len())
            );
        }
        for path in &directory_report.files_deleted {
            assert_eq!(
                read_with_ntfs_crate(&volume_after, path),
                None,
                "{case}: {path}"
            );
        }
        // Replaced hives keep their security descriptor; untouched files keep everything.
        for path in [SYSTEM, SAM, UNTOUCHED] {
            assert_eq!(
                ntfssecaudit_descriptor(&volume_before, path),
                ntfssecaudit_descriptor(&volume_after, path),
                "{case}: the security descriptor of {path}"
            );
        }
        assert!(
            read_with_ntfs_crate(&volume_before, UNTOUCHED)
                == read_with_ntfs_crate(&volume_after, UNTOUCHED),
            "{case}: {UNTOUCHED} changed"
        );
    }
}

#[test]
fn output_diff_writes_a_child_and_leaves_the_parent_byte_identical() {
    let Some(_) = sample_tree() else { return };
    for (container, child_name) in [
        (Container::Vhdx, "child.vhdx"),
        (Container::Vhd, "child.vhd"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let volume = windows_volume(dir.path(), "windows.img");
        let disk = build_disk(dir.path(), &[&volume], Scheme::Gpt, container);
        let parent_bytes = fs::read(&disk).unwrap();
        let child = dir.path().join(child_name);

        let mut target = open_with_child(&disk, &child).unwrap();
        reseal::generalize(target.as_mut(), &fixed_options(), &[]).unwrap();
        drop(target);
        assert!(
            fs::read(&disk).unwrap() == parent_bytes,
            "{container:?}: parent changed"
        );
        assert!(!dir
            .path()
            .join(format!("{child_name}.reseal-partial"))
            .exists());

        // The child reads as the generalized image; the parent still as the original.
        let mut from_child = open(&child, None).unwrap();
        let inspection = reseal::inspect(from_child.as_mut()).unwrap();
        assert_eq!(
            inspection.computer_name.as_deref(),
            Some("NEW-PC"),
            "{container:?}"
        );
        let mut from_parent = open(&disk, None).unwrap();
        let original = reseal::inspect(from_parent.as_mut()).unwrap();
        assert_eq!(original.computer_name.as_deref(), Some("REF-PC01"));

        // The child's whole disk, read through its parent, is a clean NTFS volume whose
        // SYSTEM hive hivex reads.
        let mut device = reseal_disk::open(&child).unwrap();
        let mut bytes = vec![0u8; VOLUME_SIZE as usize];
        device.read_at(FIRST_PARTITION_START, &mut bytes).unwrap();
        let volume_after = dir.path().join("child-volume.img");
        fs::write(&volume_after, &bytes).unwrap();
        assert_ntfsfix_clean(&volume_after);
        hivex_tree_of_bytes(&read_with_ntfs_crate(&volume_after, SYSTEM).unwrap());

        // Without its parent the child is refused as unusable input, naming the parent.
        drop((from_child, from_parent));
        let moved = dir.path().join("moved-parent");
        fs::rename(&disk, &moved).unwrap();
        let orphan = open(&child, None).err().unwrap();
        assert_eq!(orphan.kind, ErrorKind::CorruptInput, "{orphan}");
        assert!(orphan.message.contains("parent"), "{orphan}");
        fs::rename(&moved, &disk).unwrap();

        // A second run must not overwrite the child.
        let again = open_with_child(&disk, &child);
        assert_eq!(again.err().map(|e| e.kind), Some(ErrorKind::Usage));
    }
}

/// A run whose plan is empty (the image is already generalized with the same options) writes
/// nothing into the image and still gives `--output-diff` its child. The first run is on the
/// bare NTFS volume file (a partition copied out of a disk, no partition table).
#[test]
fn a_run_with_nothing_to_change_writes_nothing_but_the_asked_for_child() {
    let Some(_) = sample_tree() else { return };
    let dir = tempfile::tempdir().unwrap();
    let volume = windows_volume(dir.path(), "windows.img");
    let options = GeneralizeOptions {
        ignore_checks: vec!["already-generalized".into()],
        ..fixed_options()
    };
    let mut target = open(&volume, None).unwrap();
    reseal::generalize(target.as_mut(), &options, &[]).unwrap();
    drop(target);
    let disk = build_disk(dir.path(), &[&volume], Scheme::Gpt, Container::Vhdx);
    let generalized = fs::read(&disk).unwrap();

    let mut target = open(&disk, None).unwrap();
    let (plan, _) = reseal::generalize(target.as_mut(), &options, &[]).unwrap();
    drop(target);
    assert!(plan.changes.is_empty(), "{:?}", plan.changes);
    assert!(
        fs::read(&disk).unwrap() == generalized,
        "a run with nothing to change wrote into the image"
    );

    let child = dir.path().join("child.vhdx");
    let mut target = open_with_child(&disk, &child).unwrap();
    reseal::generalize(target.as_mut(), &options, &[]).unwrap();
    drop(target);
    assert!(
        fs::read(&disk).unwrap() == generalized,
        "the parent changed"
    );
    let (mut from_child, mut from_parent) = (
        reseal_disk::open(&child).unwrap(),
        reseal_disk::open(&disk).unwrap(),
    );
    let mut child_bytes = vec![0u8; VOLUME_SIZE as usize];
    let mut parent_bytes = vec![0u8; VOLUME_SIZE as usize];
    from_child
        .read_at(FIRST_PARTITION_START, &mut child_bytes)
        .unwrap();
    from_parent
        .read_at(FIRST_PARTITION_START, &mut parent_bytes)
        .unwrap();
    assert!(child_bytes == parent_bytes, "the child holds changes");
}

/// A run opens the image once: the image here is a differencing disk whose parent is moved
/// away right after `open`, so any second open of the image (which follows the chain) fails.
/// Still the run reads the volume, remounts it for writing, edits it and commits into an
/// output child, all through the first open; with the parent back, the child reads as the
/// generalized image and the chain below it is unchanged.
#[test]
fn a_run_opens_the_image_once() {
    let Some(_) = sample_tree() else { return };
    for (container, extension) in [(Container::Vhdx, "vhdx"), (Container::Vhd, "vhd")] {
        let dir = tempfile::tempdir().unwrap();
        let volume = windows_volume(dir.path(), "windows.img");
        let base = build_disk(dir.path(), &[&volume], Scheme::Gpt, container);
        let image = dir.path().join(format!("image.{extension}"));
        match container {
            Container::Vhd => reseal_disk::vhd::create_differencing(&base, &image).unwrap(),
            _ => reseal_disk::vhdx::create_differencing(&base, &image).unwrap(),
        }
        let (base_bytes, image_bytes) = (fs::read(&base).unwrap(), fs::read(&image).unwrap());
        let child = dir.path().join(format!("child.{extension}"));

        let mut target = open_with_child(&image, &child).unwrap();
        let moved = dir.path().join("moved-base");
        fs::rename(&base, &moved).unwrap();
        let reopened = reseal_disk::open(&image).err().unwrap();
        assert!(
            matches!(reopened, reseal_disk::Error::MissingParent { .. }),
            "{reopened}"
        );
        let (_, report) = reseal::generalize(target.as_mut(), &fixed_options(), &[])
            .unwrap_or_else(|e| panic!("{extension}: {e}"));
        assert!(report.is_some());
        drop(target);
        fs::rename(&moved, &base).unwrap();

        assert!(fs::read(&base).unwrap() == base_bytes, "{extension}: base");
        assert!(
            fs::read(&image).unwrap() == image_bytes,
            "{extension}: image"
        );
        let mut from_child = open(&child, None).unwrap();
        assert_eq!(
            reseal::inspect(from_child.as_mut())
                .unwrap()
                .computer_name
                .as_deref(),
            Some("NEW-PC"),
            "{extension}"
        );
        let mut from_image = open(&image, None).unwrap();
        assert_eq!(
            reseal::inspect(from_image.as_mut())
                .unwrap()
                .computer_name
                .as_deref(),
            Some("REF-PC01"),
            "{extension}"
        );
    }
}

#[test]
fn output_diff_needs_a_parent_of_the_same_format() {
    let Some(_) = sample_tree() else { return };
    let dir = tempfile::tempdir().unwrap();
    let volume = windows_volume(dir.path(), "windows.img");
    let raw = build_disk(dir.path(), &[&volume], Scheme::Gpt, Container::Raw);
    for child in ["child.vhdx", "child.vhd", "child.img"] {
        let error = open_with_child(&raw, &dir.path().join(child))
            .err()
            .unwrap();
        assert_eq!(error.kind, ErrorKind::Usage, "{child}: {error}");
    }
}

#[test]
fn the_windows_partition_is_found_and_several_are_refused() {
    let Some(_) = sample_tree() else { return };
    let dir = tempfile::tempdir().unwrap();
    let data = data_volume(dir.path(), "data.img");
    let windows = windows_volume(dir.path(), "windows.img");
    let disk = build_disk(dir.path(), &[&data, &windows], Scheme::Gpt, Container::Vhdx);
    let target = open(&disk, None).unwrap();
    assert!(
        target.describe().starts_with("partition 2 "),
        "{}",
        target.describe()
    );
    // One target at a time holds the image.
    drop(target);
    assert!(open(&disk, Some(2)).is_ok());
    let not_windows = open(&disk, Some(1)).err().unwrap();
    assert_eq!(not_windows.kind, ErrorKind::Usage);
    assert!(
        not_windows.message.contains("holds no Windows"),
        "{not_windows}"
    );
    let missing = open(&disk, Some(3)).err().unwrap();
    assert_eq!(missing.kind, ErrorKind::Usage);
    assert!(missing.message.contains("no such partition"), "{missing}");

    let dir = tempfile::tempdir().unwrap();
    let first = windows_volume(dir.path(), "first.img");
    let second = windows_volume(dir.path(), "second.img");
    let disk = build_disk(dir.path(), &[&first, &second], Scheme::Mbr, Container::Raw);
    let before = fs::read(&disk).unwrap();
    let several = open(&disk, None).err().unwrap();
    assert_eq!(several.kind, ErrorKind::Usage);
    for expected in ["partition 1", "partition 2"] {
        assert!(several.message.contains(expected), "{several}");
    }
    assert_eq!(several.remedy, Some(reseal::Remedy::ChoosePartition));
    let mut chosen = open(&disk, Some(2)).unwrap();
    reseal::generalize(chosen.as_mut(), &fixed_options(), &[]).unwrap();
    let after = fs::read(&disk).unwrap();
    let first_volume =
        FIRST_PARTITION_START as usize..(FIRST_PARTITION_START + VOLUME_SIZE) as usize;
    assert!(
        before[first_volume.clone()] == after[first_volume],
        "generalizing partition 2 changed partition 1"
    );
    assert_ne!(before, after);
}

/// Refusals come before anything is written, with the reason, and leave every byte.
#[test]
fn hibernated_and_bitlocker_volumes_are_refused_untouched() {
    let Some(_) = sample_tree() else { return };
    let dir = tempfile::tempdir().unwrap();
    let volume = windows_volume(dir.path(), "windows.img");
    let mut hiberfil = b"HIBR".to_vec();
    hiberfil.extend(vec![0x5Au8; 16_384]);
    let hiberfil_file = dir.path().join("hiberfil.sys");
    fs::write(&hiberfil_file, &hiberfil).unwrap();
    run("ntfscp", &[&volume, &hiberfil_file, &"hiberfil.sys"]);
    let disk = build_disk(dir.path(), &[&volume], Scheme::Gpt, Container::Vhdx);
    let before = fs::read(&disk).unwrap();
    // Inspect reads a hibernated image; generalize (and its dry run) refuse it.
    let mut target = open(&disk, None).unwrap();
    reseal::inspect(target.as_mut()).unwrap();
    for dry_run in [true, false] {
        let options = GeneralizeOptions {
            dry_run,
            ..fixed_options()
        };
        let error = reseal::generalize(target.as_mut(), &options, &[])
            .err()
            .unwrap();
        assert_eq!(error.kind, ErrorKind::Refused, "{error}");
        assert!(error.message.contains("hibernated"), "{error}");
        assert!(
            error.message.contains(&disk.display().to_string()),
            "{error}"
        );
    }
    drop(target);
    assert!(
        fs::read(&disk).unwrap() == before,
        "the refused run changed the image"
    );

    let dir = tempfile::tempdir().unwrap();
    let volume = windows_volume(dir.path(), "windows.img");
    let disk = build_disk(dir.path(), &[&volume], Scheme::Gpt, Container::Raw);
    ntfs_image::write_at(&disk, FIRST_PARTITION_START + 3, b"-FVE-FS-");
    let before = fs::read(&disk).unwrap();
    let error = open(&disk, None).err().unwrap();
    assert_eq!(error.kind, ErrorKind::Refused, "{error}");
    assert!(error.message.contains("BitLocker"), "{error}");
    assert!(fs::read(&disk).unwrap() == before);
}

/// The commit's redo log, interrupted after it was written, is finished by `recover`; a torn
/// one is discarded and the image stays as it was.
#[test]
fn an_interrupted_commit_is_finished_or_discarded_by_recover() {
    let Some(_) = sample_tree() else { return };
    let dir = tempfile::tempdir().unwrap();
    let volume = windows_volume(dir.path(), "windows.img");
    let disk = build_disk(dir.path(), &[&volume], Scheme::Gpt, Container::Raw);
    let original = fs::read(&disk).unwrap();
    let mut target = open(&disk, None).unwrap();
    reseal::generalize(target.as_mut(), &fixed_options(), &[]).unwrap();
    drop(target);
    let generalized = fs::read(&disk).unwrap();

    // What the commit wrote, as 4 KiB changes.
    let changes: Vec<Change> = original
        .chunks(4096)
        .zip(generalized.chunks(4096))
        .enumerate()
        .filter(|(_, (old, new))| old != new)
        .map(|(index, (_, new))| Change {
            offset: index as u64 * 4096,
            data: new.to_vec(),
        })
        .collect();
    assert!(!changes.is_empty());

    fs::write(&disk, &original).unwrap();
    redo_log::write_log(
        &disk,
        original.len() as u64,
        &changes,
        &["replaced SYSTEM".into()],
    )
    .unwrap();
    let mut pending = open(&disk, None).unwrap();
    let refused = pending.read_file(SYSTEM).err().unwrap();
    assert_eq!(refused.remedy, Some(reseal::Remedy::Recover), "{refused}");
    let outcome = reseal::recover(pending.as_mut()).unwrap();
    assert_eq!(
        outcome,
        Some(reseal::RecoveryOutcome::RolledForward {
            files: vec!["replaced SYSTEM".into()]
        })
    );
    assert!(
        fs::read(&disk).unwrap() == generalized,
        "rolled forward to the new image"
    );
    assert_eq!(
        reseal::inspect(pending.as_mut())
            .unwrap()
            .computer_name
            .as_deref(),
        Some("NEW-PC")
    );

    fs::write(&disk, &original).unwrap();
    redo_log::write_log(&disk, original.len() as u64, &changes, &[]).unwrap();
    let log = redo_log::redo_log_path(&disk);
    let complete = fs::read(&log).unwrap();
    fs::write(&log, &complete[..complete.len() - 10]).unwrap();
    drop(pending);
    let mut torn = open(&disk, None).unwrap();
    assert_eq!(
        reseal::recover(torn.as_mut()).unwrap(),
        Some(reseal::RecoveryOutcome::RolledBack)
    );
    assert!(
        fs::read(&disk).unwrap() == original,
        "rolled back to the old image"
    );
    assert!(!log.exists());
}

/// The Windows-made VHDX with a pending log: read-only it replays in memory, shows its two
/// partitions, has no Windows to generalize, and stays byte-identical.
#[test]
fn a_real_windows_made_vhdx_is_read_and_left_alone() {
    let Some(source) = real_fixture("images/discutils/vhdx-log-replay.vhdx") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let disk = dir.path().join("vhdx-log-replay.vhdx");
    fs::copy(&source, &disk).unwrap();
    let before = fs::read(&disk).unwrap();
    let error = open(&disk, None).err().unwrap();
    assert_eq!(error.kind, ErrorKind::Usage, "{error}");
    assert!(
        error.message.contains("partition 1") && error.message.contains("partition 2"),
        "{error}"
    );
    assert!(fs::read(&disk).unwrap() == before);
}

/// Real Windows hives in a VHDX and in a WIM: a Windows 10 SYSTEM left dirty with its two logs,
/// and a Server 2022 SAM/SECURITY pair, in place of the sample's. The plan and the hives written
/// equal what the directory target makes of the same files, read back by the `ntfs` crate from
/// the disk and by wimlib-imagex from the WIM, then by hivex.
#[test]
fn real_windows_hives_in_a_vhdx_and_a_wim_are_generalized_like_in_a_directory() {
    let Some(tree) = sample_tree() else { return };
    if tree.copy_real_hives().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let wim = dir.path().join("real.wim");
    run("wimlib-imagex", &[&"capture", &tree.root(), &wim]);
    let volume = dir.path().join("windows.img");
    make_volume(&volume, VOLUME_SIZE);
    apply_wim(&wim, &volume);
    let disk = build_disk(dir.path(), &[&volume], Scheme::Gpt, Container::Vhdx);

    // The server pair is domain-joined and SYSTEM_B has pending file renames: validation would
    // refuse both, which is not what this test is about.
    let options = GeneralizeOptions {
        ignore_checks: vec!["domain-joined".into(), "pending-servicing".into()],
        ..fixed_options()
    };
    let mut directory = DirectoryTarget::open(tree.root()).unwrap();
    let (directory_plan, directory_report) =
        reseal::generalize(&mut directory, &options, &[]).unwrap();
    let mut target = open(&disk, None).unwrap();
    let (plan, report) = reseal::generalize(target.as_mut(), &options, &[]).unwrap();
    assert_eq!(
        serde_json::to_value(&plan).unwrap(),
        serde_json::to_value(&directory_plan).unwrap()
    );
    assert_eq!(report, directory_report);
    drop(target);
    let mut wim_target = reseal::open_target(&wim).unwrap();
    let (wim_plan, wim_report) = reseal::generalize(wim_target.as_mut(), &options, &[]).unwrap();
    drop(wim_target);
    assert_eq!(
        serde_json::to_value(&wim_plan).unwrap(),
        serde_json::to_value(&directory_plan).unwrap()
    );
    assert_eq!(wim_report, directory_report);
    run("wimlib-imagex", &[&"verify", &wim]);
    assert_qemu_img_check_clean(&disk);
    let volume_after = volume_of(dir.path(), &disk, FIRST_PARTITION_START, "after.img");
    assert_ntfsfix_clean(&volume_after);
    let written = directory_report.unwrap().hives_written;
    assert!(written.iter().any(|path| path.ends_with("SYSTEM")));
    for path in &written {
        let from_disk = read_with_ntfs_crate(&volume_after, path).unwrap();
        let from_directory = directory.read_file(path).unwrap().unwrap();
        assert!(
            hivex_tree_of_bytes(&from_disk) == hivex_tree_of_bytes(&from_directory),
            "{path} differs"
        );
        let extracted = dir.path().join("extracted");
        let in_wim = format!("/{}", path.replace('\\', "/"));
        run(
            "wimlib-imagex",
            &[
                &"extract",
                &wim,
                &"1",
                &in_wim,
                &format!("--dest-dir={}", extracted.display()),
            ],
        );
        let name = path.rsplit('\\').next().unwrap();
        let from_wim = fs::read(extracted.join(name)).unwrap();
        assert!(
            hivex_tree_of_bytes(&from_wim) == hivex_tree_of_bytes(&from_directory),
            "{path} differs in the WIM"
        );
    }
}

/// A hive compressed by NTFS is read but cannot be rewritten safely: the run stops while
/// applying, naming the file and the reason, as unsupported input (exit code 4), and not one
/// byte of the disk changes (what was applied before it was only staged).
#[test]
fn an_ntfs_compressed_hive_stops_the_run_and_leaves_the_disk_untouched() {
    let Some(tree) = sample_tree() else { return };
    let dir = tempfile::tempdir().unwrap();
    let volume = windows_volume(dir.path(), "windows.img");
    // SAM written again, compressed by NTFS.
    let sam = fs::read(tree.path("Windows/System32/config/SAM")).unwrap();
    {
        let device = reseal_disk::open_writable(&volume).unwrap();
        let mut mount = reseal_ntfs_sys::Mount::open(device, 0).unwrap();
        let name: Vec<u16> = "SAM".encode_utf16().collect();
        mount
            .delete(
                mount.open_path(SAM).unwrap(),
                mount.open_path(r"Windows\System32\config").unwrap(),
                &name,
                "/Windows/System32/config/SAM",
            )
            .unwrap();
        mount
            .create_compressed_file(r"Windows\System32\config", "SAM", &sam)
            .unwrap();
        let (result, _) = mount.unmount();
        result.unwrap();
    }
    // ntfsinfo shows the data attribute compressed (flag 0x0001). The 12 KiB hive is shorter
    // than one 64 KiB compression unit, so its clusters hold the plain bytes: Windows, too,
    // stores a unit that would not shrink as it is.
    let info = run(
        "ntfsinfo",
        &[&"-F", &"/Windows/System32/config/SAM", &volume],
    );
    let info = String::from_utf8_lossy(&info.stdout);
    let data = &info[info.find("$DATA").expect("SAM has a $DATA attribute")..];
    assert!(
        data.contains("Attribute flags:\t 0x0001"),
        "SAM's data is not compressed:\n{info}"
    );
    let disk = build_disk(dir.path(), &[&volume], Scheme::Gpt, Container::Vhdx);
    let before = fs::read(&disk).unwrap();

    let mut target = open(&disk, None).unwrap();
    let error = reseal::generalize(target.as_mut(), &fixed_options(), &[])
        .err()
        .unwrap();
    drop(target);
    assert_eq!(error.kind, ErrorKind::CorruptInput, "{error}");
    assert_eq!(error.kind, ErrorKind::CorruptInput);
    for part in [disk.display().to_string(), SAM.into(), "compressed".into()] {
        assert!(error.to_string().contains(&part), "{part} not in: {error}");
    }
    assert!(!redo_log::is_pending(&disk));
    assert!(
        fs::read(&disk).unwrap() == before,
        "the stopped run changed the disk"
    );
}
