//! qcow2 images made by qemu-img with every layout option, read and written, against qemu.

mod common;

use common::*;
use reseal_disk::qcow2::Qcow2;
use reseal_disk::{open, open_file, open_writable, BlockDevice, Error, Format};
use std::path::{Path, PathBuf};
use std::process::Command;

/// `qemu-img convert -o` options that change the layout, and a name for each.
const RECIPES: [(&str, &str); 11] = [
    ("compat=0.10", "v2"),
    ("compat=1.1", "v3"),
    ("cluster_size=512", "cluster-512"),
    ("cluster_size=2M", "cluster-2m"),
    ("lazy_refcounts=on", "lazy-refcounts"),
    ("extended_l2=on", "extended-l2"),
    ("extended_l2=on,cluster_size=16K", "extended-l2-16k"),
    ("refcount_bits=1", "refcount-1"),
    ("refcount_bits=64", "refcount-64"),
    ("preallocation=metadata", "prealloc-metadata"),
    ("compat=0.10,cluster_size=4K,refcount_bits=16", "v2-4k"),
];

fn make_qcow2(dir: &Path, raw: &Path, options: &str, name: &str) -> PathBuf {
    let image = dir.join(format!("{name}.qcow2"));
    qemu_convert(raw, "raw", &image, "qcow2", options);
    image
}

fn compressed_qcow2(dir: &Path, raw: &Path, options: &str, name: &str) -> PathBuf {
    let image = dir.join(format!("{name}.qcow2"));
    run(
        "qemu-img",
        &[
            "convert",
            "-c",
            "-f",
            "raw",
            "-O",
            "qcow2",
            "-o",
            options,
            path_str(raw),
            path_str(&image),
        ],
    );
    image
}

/// `qemu-img check`'s verdict: `Ok(leaks)` without corruption, `Err(report)` with it.
fn qemu_check(image: &Path) -> Result<bool, String> {
    let output = Command::new("qemu-img")
        .args(["check", "-f", "qcow2", path_str(image)])
        .output()
        .expect("qemu-img runs");
    let report = String::from_utf8_lossy(&output.stdout).to_string()
        + &String::from_utf8_lossy(&output.stderr);
    match output.status.code() {
        Some(0) => Ok(false),
        // 3: leaked clusters only, which qemu's own crash rule allows.
        Some(3) => Ok(true),
        _ => Err(report),
    }
}

fn assert_check_clean(image: &Path, what: &str) {
    match qemu_check(image) {
        Ok(false) => {}
        Ok(true) => panic!("{what}: qemu-img check reports leaked clusters"),
        Err(report) => panic!("{what}: qemu-img check reports corruption:\n{report}"),
    }
}

fn qemu_compare(image: &Path, raw: &Path) -> bool {
    Command::new("qemu-img")
        .args([
            "compare",
            "-f",
            "qcow2",
            "-F",
            "raw",
            path_str(image),
            path_str(raw),
        ])
        .status()
        .expect("qemu-img runs")
        .success()
}

/// The writes every test makes: into allocated data, into the unallocated zeros after the
/// partition's data, across a cluster boundary, and at the very end of the disk.
fn writes(len: u64) -> Vec<(u64, Vec<u8>)> {
    vec![
        ((1 << 20) + 100, pseudo_random(5000, 1)),
        ((7 << 20) + 4096, pseudo_random(4096, 2)),
        ((11 << 20) - 700, pseudo_random(70_000, 3)),
        (len - 512, pseudo_random(512, 4)),
    ]
}

fn apply(expected: &mut [u8], writes: &[(u64, Vec<u8>)]) {
    for (offset, data) in writes {
        expected[*offset as usize..*offset as usize + data.len()].copy_from_slice(data);
    }
}

#[test]
fn reads_equal_the_raw_disk_for_every_layout() {
    let dir = tempfile::tempdir().unwrap();
    let raw = gpt_raw_disk(dir.path(), 24, 20, 31);
    let raw_bytes = std::fs::read(&raw).unwrap();
    let mut images: Vec<(PathBuf, &str)> = RECIPES
        .iter()
        .map(|(options, name)| (make_qcow2(dir.path(), &raw, options, name), *name))
        .collect();
    images.push((
        compressed_qcow2(dir.path(), &raw, "compat=1.1", "compressed"),
        "compressed",
    ));
    images.push((
        compressed_qcow2(dir.path(), &raw, "cluster_size=4K", "compressed-4k"),
        "compressed-4k",
    ));
    images.push((
        compressed_qcow2(dir.path(), &raw, "compat=0.10", "compressed-v2"),
        "compressed-v2",
    ));
    for (image, name) in images {
        let opened = reseal_disk::open_image(&image).unwrap();
        assert_eq!(opened.format, Format::Qcow2, "{name}");
        let mut disk = opened.device;
        assert_eq!(disk.len(), raw_bytes.len() as u64, "{name}");
        assert!(
            read_all(&mut *disk) == raw_bytes,
            "{name}: reads equal the raw disk"
        );
        assert!(
            qemu_read_raw(&image, "qcow2") == raw_bytes,
            "{name}: qemu agrees"
        );
    }
}

#[test]
fn zero_clusters_and_subclusters_read_as_qemu_reads_them() {
    let dir = tempfile::tempdir().unwrap();
    let raw = gpt_raw_disk(dir.path(), 24, 20, 32);
    for (options, name) in [
        ("compat=1.1", "zero"),
        ("extended_l2=on", "zero-subclusters"),
    ] {
        let base = make_qcow2(dir.path(), &raw, options, &format!("{name}-base"));
        let child = dir.path().join(format!("{name}.qcow2"));
        run(
            "qemu-img",
            &[
                "create",
                "-f",
                "qcow2",
                "-o",
                options,
                "-b",
                path_str(&base),
                "-F",
                "qcow2",
                path_str(&child),
            ],
        );
        // Zeroed whole clusters, a zeroed subcluster range and a small write over the backing data.
        for command in [
            "write -z 1M 128k",
            "write -z 3080k 8k",
            "write -P 0x5a 5124k 2k",
            "write -z 9M 64k",
        ] {
            run("qemu-io", &["-f", "qcow2", "-c", command, path_str(&child)]);
        }
        let expected = qemu_read_raw(&child, "qcow2");
        assert!(
            read_all(&mut *open(&child).unwrap()) == expected,
            "{name}: reads equal qemu's"
        );
    }
}

#[test]
fn writes_in_place_and_into_new_clusters_pass_qemu_check() {
    let dir = tempfile::tempdir().unwrap();
    let raw = gpt_raw_disk(dir.path(), 24, 20, 33);
    let raw_bytes = std::fs::read(&raw).unwrap();
    let mut images: Vec<(PathBuf, &str)> = RECIPES
        .iter()
        .map(|(options, name)| (make_qcow2(dir.path(), &raw, options, name), *name))
        .collect();
    images.push((
        compressed_qcow2(dir.path(), &raw, "compat=1.1", "compressed"),
        "compressed",
    ));
    let writes = writes(raw_bytes.len() as u64);
    let mut expected = raw_bytes.clone();
    apply(&mut expected, &writes);
    let expected_raw = dir.path().join("expected.raw");
    std::fs::write(&expected_raw, &expected).unwrap();
    for (image, name) in images {
        {
            let mut disk = open_writable(&image).unwrap();
            for (offset, data) in &writes {
                disk.write_at(*offset, data).unwrap();
            }
            disk.flush().unwrap();
            assert!(
                read_all(&mut *disk) == expected,
                "{name}: our reads see the writes"
            );
        }
        assert_check_clean(&image, name);
        assert!(
            qemu_compare(&image, &expected_raw),
            "{name}: qemu-img compare"
        );
    }
}

#[test]
fn snapshots_keep_their_data_when_the_active_layer_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let raw = gpt_raw_disk(dir.path(), 24, 20, 34);
    let raw_bytes = std::fs::read(&raw).unwrap();
    for (options, name) in [
        ("compat=1.1", "snap"),
        ("extended_l2=on", "snap-extended"),
        ("compat=0.10", "snap-v2"),
    ] {
        let image = make_qcow2(dir.path(), &raw, options, name);
        run("qemu-img", &["snapshot", "-c", "before", path_str(&image)]);
        let writes = writes(raw_bytes.len() as u64);
        let mut expected = raw_bytes.clone();
        apply(&mut expected, &writes);
        {
            let mut disk = Qcow2::open(&image, true).unwrap();
            assert_eq!(disk.snapshots().unwrap()[0].name, "before", "{name}");
            for (offset, data) in &writes {
                disk.write_at(*offset, data).unwrap();
            }
            disk.flush().unwrap();
        }
        assert_check_clean(&image, name);
        assert!(
            qemu_read_raw(&image, "qcow2") == expected,
            "{name}: the active layer changed"
        );
        run("qemu-img", &["snapshot", "-a", "before", path_str(&image)]);
        assert_check_clean(&image, name);
        assert!(
            qemu_read_raw(&image, "qcow2") == raw_bytes,
            "{name}: the snapshot kept its data"
        );
    }
}

#[test]
fn backing_chains_of_every_parent_format_read_and_write_the_top_only() {
    let dir = tempfile::tempdir().unwrap();
    let raw = gpt_raw_disk(dir.path(), 24, 20, 35);
    let vhdx = dir.path().join("base.vhdx");
    qemu_convert(&raw, "raw", &vhdx, "vhdx", "subformat=dynamic");
    let vhd = dir.path().join("base.vhd");
    qemu_convert(&raw, "raw", &vhd, "vpc", "subformat=dynamic,force_size=on");
    let sub = dir.path().join("sub");
    std::fs::create_dir(&sub).unwrap();
    for (base, format, name) in [
        (&raw, "raw", "raw"),
        (&vhdx, "vhdx", "vhdx"),
        (&vhd, "vpc", "vhd"),
    ] {
        // base <- middle (absolute name) <- top (relative name, in another directory)
        let middle = dir.path().join(format!("{name}-middle.qcow2"));
        run(
            "qemu-img",
            &[
                "create",
                "-f",
                "qcow2",
                "-b",
                path_str(base),
                "-F",
                format,
                path_str(&middle),
            ],
        );
        run(
            "qemu-io",
            &[
                "-f",
                "qcow2",
                "-c",
                "write -P 0x33 2M 64k",
                path_str(&middle),
            ],
        );
        let top = sub.join(format!("{name}-top.qcow2"));
        run(
            "qemu-img",
            &[
                "create",
                "-f",
                "qcow2",
                "-b",
                &format!("../{name}-middle.qcow2"),
                "-F",
                "qcow2",
                path_str(&top),
            ],
        );
        let base_before = std::fs::read(base).unwrap();
        let middle_before = std::fs::read(&middle).unwrap();
        let expected_before = qemu_read_raw(&top, "qcow2");
        assert!(
            read_all(&mut *open(&top).unwrap()) == expected_before,
            "{name}: chain reads"
        );
        let writes = writes(expected_before.len() as u64);
        let mut expected = expected_before.clone();
        apply(&mut expected, &writes);
        {
            let mut disk = open_writable(&top).unwrap();
            for (offset, data) in &writes {
                disk.write_at(*offset, data).unwrap();
            }
            disk.flush().unwrap();
        }
        assert_check_clean(&top, name);
        assert!(
            qemu_read_raw(&top, "qcow2") == expected,
            "{name}: qemu reads the writes"
        );
        assert!(
            std::fs::read(base).unwrap() == base_before,
            "{name}: base untouched"
        );
        assert!(
            std::fs::read(&middle).unwrap() == middle_before,
            "{name}: middle untouched"
        );
        let chain = run("qemu-img", &["info", "--backing-chain", path_str(&top)]);
        assert!(
            chain.contains(&format!("{name}-middle.qcow2")),
            "{name}: {chain}"
        );
    }
}

#[test]
fn a_missing_backing_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let raw = gpt_raw_disk(dir.path(), 8, 4, 36);
    let child = dir.path().join("child.qcow2");
    run(
        "qemu-img",
        &[
            "create",
            "-f",
            "qcow2",
            "-b",
            "disk.raw",
            "-F",
            "raw",
            path_str(&child),
        ],
    );
    std::fs::remove_file(&raw).unwrap();
    match open(&child) {
        Err(Error::MissingParent { parent_name, .. }) => assert_eq!(parent_name, "disk.raw"),
        other => panic!("expected a missing parent, got {:?}", other.err()),
    }
}

fn set_header_u64(image: &Path, offset: u64, value: u64) {
    reseal_testutil::ntfs_image::write_at(image, offset, &value.to_be_bytes());
}

fn header_u64(image: &Path, offset: usize) -> u64 {
    let bytes = std::fs::read(image).unwrap();
    u64::from_be_bytes(bytes[offset..offset + 8].try_into().unwrap())
}

#[test]
fn refusals_name_the_feature() {
    let dir = tempfile::tempdir().unwrap();
    let raw = gpt_raw_disk(dir.path(), 8, 4, 37);
    let message = |image: &Path| match open(image) {
        Ok(_) => panic!("{} opened", image.display()),
        Err(error) => error.to_string(),
    };

    let corrupt = make_qcow2(dir.path(), &raw, "compat=1.1", "corrupt");
    set_header_u64(&corrupt, 72, header_u64(&corrupt, 72) | 2);
    assert!(
        message(&corrupt).contains("marked corrupt"),
        "{}",
        message(&corrupt)
    );

    let unknown = make_qcow2(dir.path(), &raw, "compat=1.1", "unknown");
    set_header_u64(&unknown, 72, header_u64(&unknown, 72) | 1 << 40);
    assert!(
        message(&unknown).contains("incompatible feature bit 40"),
        "{}",
        message(&unknown)
    );

    let zstd = compressed_qcow2(dir.path(), &raw, "compression_type=zstd", "zstd");
    assert!(message(&zstd).contains("zstd"), "{}", message(&zstd));

    let external = dir.path().join("external.qcow2");
    let data = dir.path().join("external.data");
    run(
        "qemu-img",
        &[
            "create",
            "-f",
            "qcow2",
            "-o",
            &format!("data_file={}", path_str(&data)),
            path_str(&external),
            "8M",
        ],
    );
    assert!(
        message(&external).contains("external data file"),
        "{}",
        message(&external)
    );

    let named = dir.path().join("not.qcow2");
    std::fs::write(&named, vec![0u8; 4096]).unwrap();
    assert!(matches!(open(&named), Err(Error::Corrupt { .. })));
}

const COPIED: u64 = 1 << 63;
const ZERO: u64 = 1;

/// The offset of L2 entry 0 (guest cluster 0) of a 64 KiB-cluster image, and of L1 entry 0.
fn first_entries(image: &Path) -> (u64, u64) {
    let l1 = header_u64(image, 40);
    let l2 = header_u64(image, l1 as usize) & 0x00ff_ffff_ffff_fe00;
    assert!(l2 != 0, "guest cluster 0 has an L2 table");
    (l2, l1)
}

#[test]
fn a_copied_entry_over_metadata_or_a_shared_cluster_is_refused_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let pristine = dir.path().join("pristine.qcow2");
    run(
        "qemu-img",
        &["create", "-f", "qcow2", path_str(&pristine), "8M"],
    );
    run(
        "qemu-io",
        &[
            "-f",
            "qcow2",
            "-c",
            "write -P 0x5a 0 128k",
            path_str(&pristine),
        ],
    );
    let (l2, l1) = first_entries(&pristine);
    let refcount_table = header_u64(&pristine, 48);
    let entry = header_u64(&pristine, l2 as usize);
    assert!(entry & COPIED != 0, "qemu marked guest cluster 0 COPIED");
    // 16 clusters past the last one: the zero flag hides the host from every read.
    let clusters = std::fs::metadata(&pristine)
        .unwrap()
        .len()
        .div_ceil(1 << 16);
    let past_end = (clusters + 16) << 16;

    // A snapshot shares guest cluster 0 (refcount 2); COPIED set again on the L1 and L2
    // entries claims it is the active image's alone.
    let shared = dir.path().join("shared.qcow2");
    std::fs::copy(&pristine, &shared).unwrap();
    run("qemu-img", &["snapshot", "-c", "s", path_str(&shared)]);
    let (shared_l2, shared_l1) = first_entries(&shared);
    set_header_u64(
        &shared,
        shared_l1,
        header_u64(&shared, shared_l1 as usize) | COPIED,
    );
    set_header_u64(
        &shared,
        shared_l2,
        header_u64(&shared, shared_l2 as usize) | COPIED,
    );

    let cases: [(&str, Option<u64>, &Path, &str); 6] = [
        (
            "refcount table",
            Some(refcount_table | COPIED),
            &pristine,
            "refcount table",
        ),
        ("its own L2 table", Some(l2 | COPIED), &pristine, "L2 table"),
        (
            "the L1 table",
            Some(l1 | COPIED),
            &pristine,
            "active L1 table",
        ),
        (
            "zero flag over the refcount table",
            Some(refcount_table | COPIED | ZERO),
            &pristine,
            "refcount table",
        ),
        (
            "zero flag past the end",
            Some(past_end | COPIED | ZERO),
            &pristine,
            "past the end of the file",
        ),
        (
            "a snapshot's cluster",
            None,
            &shared,
            "refcount of 2; expected 1",
        ),
    ];
    for (name, patched_entry, source, expected) in cases {
        let image = dir.path().join("patched.qcow2");
        std::fs::copy(source, &image).unwrap();
        if let Some(patched_entry) = patched_entry {
            set_header_u64(&image, l2, patched_entry);
        }
        let before = std::fs::read(&image).unwrap();
        let check_before = qemu_check_report(&image, "qcow2");
        let error = {
            let mut disk = open_writable(&image).unwrap();
            disk.write_at(4096, &[0xEE; 8192])
                .expect_err("the write is refused")
        };
        match &error {
            Error::Corrupt {
                structure, reason, ..
            } => {
                assert_eq!(*structure, "qcow2 L2 table", "{name}");
                assert!(
                    reason.contains("guest cluster 0") && reason.contains(expected),
                    "{name}: {reason}"
                );
            }
            other => panic!("{name}: expected a corrupt L2 table, got {other}"),
        }
        assert!(error.to_string().contains("patched.qcow2"), "{error}");
        assert!(
            std::fs::read(&image).unwrap() == before,
            "{name}: the file is unchanged"
        );
        assert_eq!(qemu_check_report(&image, "qcow2"), check_before, "{name}");
    }

    // The image as qemu left it is written in place, and stays clean.
    {
        let mut disk = open_writable(&pristine).unwrap();
        disk.write_at(4096, &[0xEE; 8192]).unwrap();
        disk.flush().unwrap();
    }
    assert_eq!(
        header_u64(&pristine, l2 as usize),
        entry,
        "written in place"
    );
    assert_check_clean(&pristine, "written in place");
    let mut expected = vec![0u8; 8 << 20];
    expected[..128 << 10].fill(0x5a);
    expected[4096..4096 + 8192].fill(0xEE);
    assert!(qemu_read_raw(&pristine, "qcow2") == expected);
}

#[test]
fn a_dirty_image_opens_only_when_its_refcounts_are_consistent() {
    let dir = tempfile::tempdir().unwrap();
    let raw = gpt_raw_disk(dir.path(), 8, 4, 38);
    let image = make_qcow2(dir.path(), &raw, "lazy_refcounts=on", "dirty");
    set_header_u64(&image, 72, header_u64(&image, 72) | 1);
    let expected = std::fs::read(&raw).unwrap();
    assert!(
        read_all(&mut *open(&image).unwrap()) == expected,
        "consistent: opens"
    );

    // One refcount too many on the header cluster: the counts no longer agree.
    let refcount_table = header_u64(&image, 48);
    let first_block = header_u64(&image, refcount_table as usize);
    reseal_testutil::ntfs_image::write_at(&image, first_block, &2u16.to_be_bytes());
    let error = open(&image).err().expect("refused");
    let text = error.to_string();
    assert!(
        text.contains("dirty") && text.contains("host cluster 0"),
        "{text}"
    );
}

#[test]
fn a_crash_at_any_write_of_an_allocation_leaves_old_or_new_data() {
    let dir = tempfile::tempdir().unwrap();
    let raw = gpt_raw_disk(dir.path(), 12, 10, 39);
    let raw_bytes = std::fs::read(&raw).unwrap();
    // Into shared data (a snapshot holds it), across a cluster boundary, and into a cluster
    // the image does not have yet.
    let writes = vec![
        ((1 << 20) + 100, pseudo_random(3000, 5)),
        ((7 << 20) - 300, pseudo_random(1000, 6)),
    ];
    for (options, name) in [
        ("compat=1.1", "v3"),
        ("cluster_size=512", "cluster-512"),
        ("extended_l2=on", "extended-l2"),
    ] {
        let pristine = make_qcow2(dir.path(), &raw, options, name);
        run("qemu-img", &["snapshot", "-c", "s", path_str(&pristine)]);
        let mut allowed = 0;
        loop {
            let image = dir.path().join(format!("{name}-crash.qcow2"));
            std::fs::copy(&pristine, &image).unwrap();
            let file = FailingFile::new(&image, allowed, true);
            let mut disk = open_file(Box::new(file)).unwrap();
            let mut completed = 0;
            let mut crashed = false;
            for (offset, data) in &writes {
                match disk.write_at(*offset, data) {
                    Ok(()) => completed += 1,
                    Err(_) => {
                        crashed = true;
                        break;
                    }
                }
            }
            drop(disk);
            if let Err(report) = qemu_check(&image) {
                panic!("{name}: crash after {allowed} writes: corruption:\n{report}");
            }
            let after = read_all(&mut *open(&image).unwrap());
            assert!(
                qemu_read_raw(&image, "qcow2") == after,
                "{name}: qemu and we agree"
            );
            let mut old = raw_bytes.clone();
            apply(&mut old, &writes[..completed]);
            if crashed {
                let mut new = old.clone();
                apply(&mut new, &writes[completed..completed + 1]);
                let (offset, data) = &writes[completed];
                let range = *offset as usize..*offset as usize + data.len();
                // Each cluster of the interrupted write holds its old or its new bytes.
                let cluster = 1usize << Qcow2::open(&image, false).unwrap().header().cluster_bits;
                let mut position = range.start;
                while position < range.end {
                    let end = ((position / cluster + 1) * cluster).min(range.end);
                    let piece = &after[position..end];
                    assert!(
                        piece == &old[position..end] || piece == &new[position..end],
                        "{name}: crash after {allowed} writes: bytes {position}..{end} are neither old nor new"
                    );
                    position = end;
                }
                assert!(
                    after[..range.start] == old[..range.start],
                    "{name}: before the write"
                );
                assert!(
                    after[range.end..] == old[range.end..],
                    "{name}: after the write"
                );
            } else {
                assert!(after == old, "{name}: every write done");
                break;
            }
            allowed += 1;
        }
        assert!(
            allowed > 10,
            "{name}: the writes allocated ({allowed} file writes)"
        );
    }
}

#[test]
fn the_refcount_table_grows_when_the_file_outgrows_it_and_a_crash_only_leaks() {
    let dir = tempfile::tempdir().unwrap();
    // 512-byte clusters with 64-bit refcounts: one table cluster of 64 blocks of 64 entries
    // counts the first 2 MiB of the file; qemu-img fills 1.9 MiB of it.
    let raw = dir.path().join("disk.raw");
    let mut raw_bytes = pseudo_random(1_900_000, 21);
    raw_bytes.resize(4 << 20, 0);
    std::fs::write(&raw, &raw_bytes).unwrap();
    let image = make_qcow2(
        dir.path(),
        &raw,
        "cluster_size=512,refcount_bits=64",
        "tiny",
    );
    let table_offset = |image: &Path| header_u64(image, 48);
    let first_table = table_offset(&image);
    let covered = header_u64(&image, 56) >> 32 << 9 >> 3 << 6 << 9;
    assert_eq!(covered, 2 << 20, "the table counts 2 MiB");

    // Written cluster by cluster up to a few clusters short of what the table counts.
    let mut offset = 2 << 20;
    {
        let mut disk = open_writable(&image).unwrap();
        while std::fs::metadata(&image).unwrap().len() + 4 * 512 < covered {
            let data = pseudo_random(512, offset);
            disk.write_at(offset, &data).unwrap();
            raw_bytes[offset as usize..offset as usize + 512].copy_from_slice(&data);
            offset += 512;
        }
    }
    assert_eq!(table_offset(&image), first_table, "no growth yet");
    assert_check_clean(&image, "filled");
    let pristine = dir.path().join("pristine.qcow2");
    std::fs::rename(&image, &pristine).unwrap();

    let write = (offset, pseudo_random(8192, 22));
    let mut allowed = 0;
    loop {
        let image = dir.path().join("crash.qcow2");
        std::fs::copy(&pristine, &image).unwrap();
        let mut disk = open_file(Box::new(FailingFile::new(&image, allowed, true))).unwrap();
        let done = disk.write_at(write.0, &write.1).is_ok();
        drop(disk);
        if let Err(report) = qemu_check(&image) {
            panic!("crash after {allowed} writes: corruption:\n{report}");
        }
        let after = read_all(&mut *open(&image).unwrap());
        assert!(qemu_read_raw(&image, "qcow2") == after, "qemu and we agree");
        let mut new = raw_bytes.clone();
        apply(&mut new, std::slice::from_ref(&write));
        let range = write.0 as usize..write.0 as usize + write.1.len();
        assert!(after[..range.start] == raw_bytes[..range.start]);
        assert!(after[range.end..] == raw_bytes[range.end..]);
        for start in range.clone().step_by(512) {
            let piece = &after[start..start + 512];
            assert!(
                piece == &raw_bytes[start..start + 512] || piece == &new[start..start + 512],
                "crash after {allowed} writes: cluster at {start} is neither old nor new"
            );
        }
        if done {
            assert!(after == new);
            assert_ne!(table_offset(&image), first_table, "the table moved");
            assert!(header_u64(&image, 56) >> 32 > 1, "the table grew");
            assert_check_clean(&image, "grown");
            break;
        }
        allowed += 1;
    }
    assert!(allowed > 10, "the write allocated ({allowed} file writes)");
}

/// With extended L2 entries qemu writes only the subclusters a guest write touches, so the
/// file may end part-way through its last cluster; a write into another subcluster of that
/// cluster fills it in place and is no write past the end of the file.
#[test]
fn a_write_into_a_last_cluster_that_ends_part_way_is_written_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("partial.qcow2");
    run(
        "qemu-img",
        &[
            "create",
            "-f",
            "qcow2",
            "-o",
            "extended_l2=on",
            path_str(&image),
            "8M",
        ],
    );
    run(
        "qemu-io",
        &["-f", "qcow2", "-c", "write -P 0x5a 0 4k", path_str(&image)],
    );
    let file_len = std::fs::metadata(&image).unwrap().len();
    assert_ne!(
        file_len % (64 << 10),
        0,
        "the file ends inside a cluster ({file_len} bytes)"
    );
    let mut disk = reseal_disk::open_writable(&image).unwrap();
    disk.write_at(16 << 10, &[0xA5; 4096]).unwrap();
    drop(disk);
    assert_check_clean(&image, "after the write");
    let mut expected = vec![0u8; 8 << 20];
    expected[..4096].fill(0x5a);
    expected[16 << 10..20 << 10].fill(0xA5);
    assert!(
        qemu_read_raw(&image, "qcow2") == expected,
        "qemu reads both writes"
    );
}
