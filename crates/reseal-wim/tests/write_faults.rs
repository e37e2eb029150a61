//! Failures and crashes at every write of an update: the file always verifies and holds
//! exactly the old image (up to the header write) or exactly the new one (after it).
//!
//! Writes go through a writer that stops at a chosen operation, the way a crash does (nothing
//! more reaches the file) or an I/O error does (the update sees the error and cleans up), and
//! can let part of that write through first (a torn write).

mod common;

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use common::{capture, extract_to_stdout, oracle_tree, small_windows_tree, verify, OracleEntry};
use reseal_wim::writer::WimWriter;
use reseal_wim::WimImage;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Write { offset: u64, len: usize },
    Sync,
    SetLen(u64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// The failing operation and every later one fail: nothing more reaches the file.
    Crash,
    /// Only the failing operation fails: the update sees an error and cleans up.
    Error,
}

#[derive(Debug, Clone, Copy)]
struct Fault {
    /// Index of the operation that fails.
    at: usize,
    /// Bytes of a failing write that reach the file before it fails.
    torn_bytes: usize,
    stop: Stop,
}

/// Writes to the WIM file like the update's own writer, records each operation and fails the
/// one `fault` names.
struct FaultyWriter {
    file: File,
    done: Arc<Mutex<Vec<Op>>>,
    fault: Option<Fault>,
    failed: bool,
}

impl FaultyWriter {
    fn new(wim: &Path, fault: Option<Fault>) -> (Self, Arc<Mutex<Vec<Op>>>) {
        let done = Arc::new(Mutex::new(Vec::new()));
        let file = OpenOptions::new().write(true).open(wim).unwrap();
        let writer = Self {
            file,
            done: done.clone(),
            fault,
            failed: false,
        };
        (writer, done)
    }

    /// Records `op`; `Err` with the bytes to let through when it must fail.
    fn admit(&mut self, op: Op) -> Result<(), usize> {
        let index = {
            let mut done = self.done.lock().unwrap();
            done.push(op);
            done.len() - 1
        };
        match self.fault {
            Some(fault) if fault.at == index => {
                self.failed = true;
                Err(fault.torn_bytes)
            }
            Some(Fault {
                stop: Stop::Crash, ..
            }) if self.failed => Err(0),
            _ => Ok(()),
        }
    }
}

fn injected() -> io::Error {
    io::Error::other("injected failure")
}

impl WimWriter for FaultyWriter {
    fn write_all_at(&mut self, offset: u64, bytes: &[u8]) -> io::Result<()> {
        match self.admit(Op::Write {
            offset,
            len: bytes.len(),
        }) {
            Ok(()) => self.file.write_all_at(offset, bytes),
            Err(torn) => {
                self.file
                    .write_all_at(offset, &bytes[..torn.min(bytes.len())])?;
                Err(injected())
            }
        }
    }

    fn sync_all(&mut self) -> io::Result<()> {
        match self.admit(Op::Sync) {
            Ok(()) => WimWriter::sync_all(&mut self.file),
            Err(_) => Err(injected()),
        }
    }

    fn set_len(&mut self, len: u64) -> io::Result<()> {
        match self.admit(Op::SetLen(len)) {
            Ok(()) => WimWriter::set_len(&mut self.file, len),
            Err(_) => Err(injected()),
        }
    }
}

const REPLACED: &str = "/Windows/Panther/unattend.xml";
const CREATED: &str = "/Windows/Setup/Scripts/SetupComplete.cmd";

/// Paths whose times an update sets to now.
const FRESH: [&str; 3] = [REPLACED, "/Windows/Setup", "/Windows/Setup/Scripts"];

/// The update every case makes: two new blobs, a delete, new directories. With `batch`, all
/// of it is written by one commit; otherwise each edit is written when it is made.
fn update(image: &mut WimImage, batch: bool) -> reseal_wim::Result<()> {
    image.set_batch(batch);
    image.replace_file(r"Windows\Panther\unattend.xml", &vec![b'u'; 90_000])?;
    image.delete(r"Windows\Temp")?;
    image.create_file(&CREATED[1..], b"@echo off\r\n")?;
    image.commit()
}

/// The image without the times an update sets to now.
fn comparable(wim: &Path) -> BTreeMap<String, OracleEntry> {
    let mut tree = oracle_tree(wim, 1);
    for path in FRESH.iter().chain([&CREATED]) {
        if let Some(entry) = tree.get_mut(*path) {
            entry.last_write_time.clear();
            entry.creation_time.clear();
            entry.last_access_time.clear();
        }
    }
    tree
}

struct Case {
    original: Vec<u8>,
    old: BTreeMap<String, OracleEntry>,
    new: BTreeMap<String, OracleEntry>,
    /// Every operation of an update that succeeds.
    ops: Vec<Op>,
}

fn prepare(dir: &Path, capture_options: &[&str], batch: bool) -> Case {
    let tree = dir.join("tree");
    if !tree.exists() {
        small_windows_tree(&tree);
    }
    let wim = dir.join("original.wim");
    let _ = std::fs::remove_file(&wim);
    capture(&tree, &wim, capture_options);
    let original = std::fs::read(&wim).unwrap();
    let old = comparable(&wim);

    let updated = dir.join("updated.wim");
    std::fs::write(&updated, &original).unwrap();
    let mut image = WimImage::open(&updated, "1", true).unwrap();
    let (writer, done) = FaultyWriter::new(&updated, None);
    image.set_writer(Box::new(writer));
    update(&mut image, batch).unwrap();
    drop(image);
    verify(&updated);
    let new = comparable(&updated);
    assert_ne!(new, old);
    assert_eq!(extract_to_stdout(&updated, 1, CREATED), b"@echo off\r\n");
    let ops = done.lock().unwrap().clone();
    Case {
        original,
        old,
        new,
        ops,
    }
}

/// Runs the update with `fault` on a fresh copy; returns the copy and the error.
fn run_with(dir: &Path, case: &Case, batch: bool, fault: Fault) -> (PathBuf, reseal_wim::Error) {
    let wim = dir.join("faulty.wim");
    std::fs::write(&wim, &case.original).unwrap();
    let mut image = WimImage::open(&wim, "1", true).unwrap();
    let (writer, _) = FaultyWriter::new(&wim, Some(fault));
    image.set_writer(Box::new(writer));
    let err = update(&mut image, batch).expect_err("the injected fault must surface");
    // What a caller does after a failed update (the WIM target's abort): drop what is staged.
    let _ = image.discard_staged();
    drop(image);
    (wim, err)
}

fn the_file_is_old_or_new_after_each_fault(capture_options: &[&str], batch: bool) {
    let dir = tempfile::tempdir().unwrap();
    let case = prepare(dir.path(), capture_options, batch);
    let header = case
        .ops
        .iter()
        .position(|op| matches!(op, Op::Write { offset: 0, .. }))
        .expect("the header is written");
    assert_eq!(
        case.ops[header],
        Op::Write {
            offset: 0,
            len: 208
        }
    );
    assert_eq!(
        case.ops
            .iter()
            .filter(|op| matches!(op, Op::Write { offset: 0, .. }))
            .count(),
        if batch { 1 } else { 5 }
    );
    let last_header = case
        .ops
        .iter()
        .rposition(|op| matches!(op, Op::Write { offset: 0, .. }))
        .unwrap();
    let mut checked = 0;
    for at in 0..case.ops.len() {
        let mut faults = Vec::new();
        for stop in [Stop::Crash, Stop::Error] {
            faults.push(Fault {
                at,
                torn_bytes: 0,
                stop,
            });
            // A torn write: part of it reaches the file. The header is one write inside the
            // first sector, which storage writes whole, so it is only stopped before it.
            if let Op::Write { offset, len } = case.ops[at] {
                if offset != 0 && len > 1 {
                    faults.push(Fault {
                        at,
                        torn_bytes: len / 2,
                        stop,
                    });
                }
            }
        }
        for fault in faults {
            let (wim, err) = run_with(dir.path(), &case, batch, fault);
            let shown = format!("{fault:?} at {:?}", case.ops[at]);
            assert!(
                err.to_string().contains(&wim.display().to_string()),
                "{shown}: the error {err} does not name the file"
            );
            verify(&wim);
            let now = comparable(&wim);
            // One by one, each edit is its own update: after the first header write the file
            // holds the first edits, which is neither the old nor the final image.
            if at <= header {
                assert_eq!(now, case.old, "{shown}: expected the old image");
                let bytes = std::fs::read(&wim).unwrap();
                assert_eq!(
                    bytes[..case.original.len()],
                    case.original[..],
                    "{shown}: original bytes changed"
                );
                if fault.stop == Stop::Error && !batch && at < header {
                    assert_eq!(bytes.len(), case.original.len(), "{shown}: not cut back");
                }
                let mut reopened = WimImage::open(&wim, "1", false).unwrap();
                assert_eq!(
                    reopened.read_file(&REPLACED[1..]).unwrap().unwrap(),
                    b"<unattend/>"
                );
            } else if at > last_header {
                assert_eq!(now, case.new, "{shown}: expected the new image");
                assert_eq!(extract_to_stdout(&wim, 1, CREATED), b"@echo off\r\n");
            }
            checked += 1;
        }
    }
    assert!(checked > case.ops.len());
}

#[test]
fn a_batch_leaves_the_old_or_the_new_image_after_a_fault_at_any_step() {
    the_file_is_old_or_new_after_each_fault(&["--compress=LZX"], true);
}

#[test]
fn a_batch_with_an_integrity_table_leaves_the_old_or_the_new_image() {
    the_file_is_old_or_new_after_each_fault(&["--check", "--compress=XPRESS"], true);
}

#[test]
fn edits_written_one_by_one_leave_a_valid_image_after_a_fault_at_any_step() {
    the_file_is_old_or_new_after_each_fault(&["--compress=LZX"], false);
}

/// After a failed commit the edits stay staged: a second commit with a working writer
/// writes them.
#[test]
fn a_failed_commit_can_be_retried() {
    let dir = tempfile::tempdir().unwrap();
    let case = prepare(dir.path(), &["--compress=LZX"], true);
    let header = case
        .ops
        .iter()
        .position(|op| matches!(op, Op::Write { offset: 0, .. }))
        .unwrap();
    let blobs = 2;
    for at in blobs..=header {
        let wim = dir.path().join("retried.wim");
        std::fs::write(&wim, &case.original).unwrap();
        let mut image = WimImage::open(&wim, "1", true).unwrap();
        let fault = Fault {
            at,
            torn_bytes: 0,
            stop: Stop::Error,
        };
        let (writer, _) = FaultyWriter::new(&wim, Some(fault));
        image.set_writer(Box::new(writer));
        let err = update(&mut image, true).expect_err("the commit fails");
        assert!(err.to_string().contains("injected failure"), "{err}");
        assert!(image.wim().has_pending_changes());
        if at == header {
            // The header write may have happened: the handle writes nothing more.
            assert!(image.commit().is_err());
            drop(image);
            verify(&wim);
            assert_eq!(comparable(&wim), case.old);
            continue;
        }
        let (writer, _) = FaultyWriter::new(&wim, None);
        image.set_writer(Box::new(writer));
        image.commit().unwrap();
        drop(image);
        verify(&wim);
        assert_eq!(comparable(&wim), case.new, "retry after a fault at {at}");
    }
}

const HIVE: &str = "/Windows/System32/config/SOFTWARE";
const CHUNK: usize = 32768;
const HIVE_CHUNKS: usize = 128;
/// Chunks of the generated hive filled with noise, which compression does not shrink.
const NOISE_EVERY: usize = 16;
/// The chunks [`edited_hive`] changes (one edit crosses from chunk 5 into 6).
const CHANGED_CHUNKS: [usize; 4] = [5, 6, 90, HIVE_CHUNKS - 1];

/// Four MiB shaped like a hive: records with counters, and a chunk of noise now and then.
fn hive_like() -> Vec<u8> {
    let mut hive = Vec::with_capacity(HIVE_CHUNKS * CHUNK);
    let mut state = 17u32;
    for chunk in 0..HIVE_CHUNKS {
        for i in 0..CHUNK / 64 {
            if chunk % NOISE_EVERY == NOISE_EVERY - 1 {
                for _ in 0..64 {
                    state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                    hive.push((state >> 16) as u8);
                }
            } else {
                let record = format!(
                    "nk{:08x}ThreadingModel=Both;InprocServer32={:024}",
                    chunk * 4096 + i,
                    i
                );
                hive.extend_from_slice(&record.as_bytes()[..64]);
            }
        }
    }
    hive
}

/// The hive with a few cells edited, in the chunks [`CHANGED_CHUNKS`] names.
fn edited_hive(hive: &[u8]) -> Vec<u8> {
    let mut edited = hive.to_vec();
    edited[6 * CHUNK - 3..6 * CHUNK + 3].copy_from_slice(b"EDITED");
    edited[90 * CHUNK + 100] ^= 0xff;
    let end = edited.len();
    edited[end - 1] = b'!';
    edited
}

/// Stored length of each chunk of a non-solid compressed resource under 4 GiB.
fn stored_chunk_lens(wim: &Path, reshdr: &reseal_wim::header::ResourceHeader) -> Vec<u64> {
    let bytes = std::fs::read(wim).unwrap();
    let resource = &bytes[reshdr.offset as usize..(reshdr.offset + reshdr.size_in_wim) as usize];
    let count = reshdr.uncompressed_size.div_ceil(CHUNK as u64) as usize;
    let table_len = (count - 1) * 4;
    let mut starts = vec![0u64];
    for entry in resource[..table_len].chunks_exact(4) {
        starts.push(u64::from(u32::from_le_bytes(entry.try_into().unwrap())));
    }
    starts.push((resource.len() - table_len) as u64);
    starts.windows(2).map(|w| w[1] - w[0]).collect()
}

/// A WIM holding [`hive_like`] at [`HIVE`], LZX in 32 KiB chunks; returns its bytes.
fn wim_with_hive(dir: &Path) -> Vec<u8> {
    let tree = dir.join("tree");
    small_windows_tree(&tree);
    std::fs::create_dir_all(tree.join("Windows/System32/config")).unwrap();
    std::fs::write(tree.join(&HIVE[1..]), hive_like()).unwrap();
    let wim = dir.join("hive.wim");
    capture(&tree, &wim, &["--compress=LZX", "--chunk-size=32768"]);
    std::fs::read(&wim).unwrap()
}

fn replace_hive(image: &mut WimImage, contents: &[u8]) -> reseal_wim::Result<()> {
    image.set_batch(true);
    image.replace_file(&HIVE[1..], contents)?;
    image.commit()
}

#[test]
fn a_replaced_blob_copies_the_chunks_that_did_not_change() {
    let dir = tempfile::tempdir().unwrap();
    let original = wim_with_hive(dir.path());
    let wim = dir.path().join("edited.wim");
    std::fs::write(&wim, &original).unwrap();
    let hive = hive_like();
    let edited = edited_hive(&hive);

    let mut image = WimImage::open(&wim, "1", true).unwrap();
    let old_hash = image.lookup(&HIVE[1..]).unwrap().data_hash();
    replace_hive(&mut image, &edited).unwrap();
    let written = image.wim().written_chunks();
    assert_eq!(
        written.blobs,
        reseal_wim::ChunkCounts {
            reused: (HIVE_CHUNKS - CHANGED_CHUNKS.len()) as u64,
            compressed: CHANGED_CHUNKS.len() as u64,
        }
    );
    let new_hash = image.lookup(&HIVE[1..]).unwrap().data_hash();
    let table = image.wim().blob_table();
    let reshdr_of = |hash| table.entries[table.find(hash).unwrap()].reshdr;
    let (old_reshdr, new_reshdr) = (reshdr_of(&old_hash), reshdr_of(&new_hash));
    drop(image);

    verify(&wim);
    assert!(extract_to_stdout(&wim, 1, HIVE) == edited);
    // The unchanged chunks are stored exactly as before, noise raw, and the old ones stay.
    let old_lens = stored_chunk_lens(&wim, &old_reshdr);
    let new_lens = stored_chunk_lens(&wim, &new_reshdr);
    for chunk in 0..HIVE_CHUNKS {
        if chunk % NOISE_EVERY == NOISE_EVERY - 1 {
            assert_eq!(
                new_lens[chunk], CHUNK as u64,
                "noise chunk {chunk} is stored raw"
            );
        } else {
            assert!(
                new_lens[chunk] < CHUNK as u64,
                "chunk {chunk} is compressed"
            );
        }
        if !CHANGED_CHUNKS.contains(&chunk) {
            assert_eq!(new_lens[chunk], old_lens[chunk], "chunk {chunk}");
        }
    }
    let bytes = std::fs::read(&wim).unwrap();
    assert_eq!(bytes[208..original.len()], original[208..]);

    // The same blob as a WIM written from scratch holds.
    let rewritten = dir.path().join("rewritten.wim");
    std::fs::write(&rewritten, &original).unwrap();
    let mut image = WimImage::open(&rewritten, "1", true).unwrap();
    image.set_batch(true);
    image.delete(&HIVE[1..]).unwrap();
    image.create_file(&HIVE[1..], &edited).unwrap();
    image.commit().unwrap();
    assert_eq!(image.lookup(&HIVE[1..]).unwrap().data_hash(), new_hash);
}

#[test]
fn a_crash_while_chunks_are_copied_leaves_the_old_or_the_new_image() {
    let dir = tempfile::tempdir().unwrap();
    let original = wim_with_hive(dir.path());
    let hive = hive_like();
    let edited = edited_hive(&hive);

    let wim = dir.path().join("edited.wim");
    std::fs::write(&wim, &original).unwrap();
    let mut image = WimImage::open(&wim, "1", true).unwrap();
    let (writer, done) = FaultyWriter::new(&wim, None);
    image.set_writer(Box::new(writer));
    replace_hive(&mut image, &edited).unwrap();
    drop(image);
    let ops = done.lock().unwrap().clone();
    let header = ops
        .iter()
        .position(|op| matches!(op, Op::Write { offset: 0, .. }))
        .unwrap();
    // The hive is written in several pieces: copied runs between the compressed chunks.
    let writes_before_header = ops[..header]
        .iter()
        .filter(|op| matches!(op, Op::Write { .. }))
        .count();
    assert!(writes_before_header > 2 * CHANGED_CHUNKS.len(), "{ops:?}");

    for (at, op) in ops.iter().enumerate() {
        let mut faults = vec![Fault {
            at,
            torn_bytes: 0,
            stop: Stop::Crash,
        }];
        if let Op::Write { offset, len } = *op {
            if offset != 0 && len > 1 {
                faults.push(Fault {
                    at,
                    torn_bytes: len / 2,
                    stop: Stop::Crash,
                });
            }
        }
        for fault in faults {
            let copy = dir.path().join("crashed.wim");
            std::fs::write(&copy, &original).unwrap();
            let mut image = WimImage::open(&copy, "1", true).unwrap();
            let (writer, _) = FaultyWriter::new(&copy, Some(fault));
            image.set_writer(Box::new(writer));
            assert!(replace_hive(&mut image, &edited).is_err());
            drop(image);
            verify(&copy);
            let now = extract_to_stdout(&copy, 1, HIVE);
            let expected = if at <= header { &hive } else { &edited };
            assert!(now == *expected, "{fault:?} at {op:?}");
            if at <= header {
                let bytes = std::fs::read(&copy).unwrap();
                assert!(bytes[..original.len()] == original[..], "{fault:?}");
            }
        }
    }
}

/// The hive WIM exported into a new file three times: three images sharing every blob.
fn three_images(dir: &Path) -> Vec<u8> {
    let single = dir.join("hive.wim");
    std::fs::write(&single, wim_with_hive(dir)).unwrap();
    let multi = dir.join("three.wim");
    for name in ["One", "Two", "Three"] {
        common::wimlib_imagex(&[
            "export",
            single.to_str().unwrap(),
            "1",
            multi.to_str().unwrap(),
            name,
        ]);
    }
    std::fs::read(&multi).unwrap()
}

/// The three-image WIM written to `edited.wim` in `dir`, and the hives the tests put in it.
struct ThreeImages {
    wim: PathBuf,
    original: Vec<u8>,
    /// The hive every image holds.
    hive: Vec<u8>,
    edited: Vec<u8>,
    /// `edited` with one more byte changed, in chunk 0.
    second: Vec<u8>,
}

fn three_images_to_edit(dir: &Path) -> ThreeImages {
    let original = three_images(dir);
    let hive = hive_like();
    let edited = edited_hive(&hive);
    let mut second = edited.clone();
    second[7] ^= 1;
    let wim = dir.join("edited.wim");
    std::fs::write(&wim, &original).unwrap();
    ThreeImages {
        wim,
        original,
        hive,
        edited,
        second,
    }
}

/// Every image's hive replaced (image 2's differently), all written by one commit.
fn edit_three(image: &mut WimImage, edited: &[u8], second: &[u8]) -> reseal_wim::Result<()> {
    image.set_batch(true);
    for (index, contents) in [("1", edited), ("2", second), ("3", edited)] {
        image.select_image(index)?;
        image.replace_file(&HIVE[1..], contents)?;
    }
    image.commit()
}

#[test]
fn an_image_set_aside_and_selected_again_resumes_its_staged_edits() {
    let dir = tempfile::tempdir().unwrap();
    let ThreeImages {
        wim,
        hive,
        edited,
        second,
        ..
    } = three_images_to_edit(dir.path());
    let mut image = WimImage::open(&wim, "1", true).unwrap();
    image.set_batch(true);
    image.replace_file(&HIVE[1..], &edited).unwrap();
    image.select_image("2").unwrap();
    image.replace_file(&HIVE[1..], &second).unwrap();
    image.select_image("1").unwrap();
    assert!(image.read_file(&HIVE[1..]).unwrap().unwrap() == edited);
    image.replace_file(&HIVE[1..], &second).unwrap();
    image.select_image("3").unwrap();
    assert!(image.read_file(&HIVE[1..]).unwrap().unwrap() == hive);
    image.select_image("2").unwrap();
    assert!(image.read_file(&HIVE[1..]).unwrap().unwrap() == second);
    image.commit().unwrap();
    drop(image);

    verify(&wim);
    for (index, contents) in (1..=3).zip([&second, &second, &hive]) {
        assert!(
            extract_to_stdout(&wim, index, HIVE) == *contents,
            "image {index}"
        );
    }
}

#[test]
fn an_image_moved_to_and_left_unedited_keeps_its_metadata_and_xml() {
    let dir = tempfile::tempdir().unwrap();
    let ThreeImages { wim, edited, .. } = three_images_to_edit(dir.path());
    let info = |index: &str| common::wimlib_imagex(&["info", wim.to_str().unwrap(), index]);
    let second_before = info("2");
    // The XML's modification times count in seconds.
    std::thread::sleep(std::time::Duration::from_millis(1100));

    let mut image = WimImage::open(&wim, "1", true).unwrap();
    image.set_batch(true);
    image.replace_file(&HIVE[1..], &edited).unwrap();
    // Image 2 is passed through unedited, image 3 edited, then image 1 resumed and left
    // unedited for image 2 again: neither image 2 nor image 1's appended resource is written
    // again.
    image.select_image("2").unwrap();
    image.select_image("3").unwrap();
    image.replace_file(&HIVE[1..], &edited).unwrap();
    image.select_image("1").unwrap();
    let len_before_leaving_1 = std::fs::metadata(&wim).unwrap().len();
    image.select_image("2").unwrap();
    assert_eq!(std::fs::metadata(&wim).unwrap().len(), len_before_leaving_1);
    image.commit().unwrap();
    drop(image);

    verify(&wim);
    assert!(extract_to_stdout(&wim, 1, HIVE) == edited);
    assert!(extract_to_stdout(&wim, 3, HIVE) == edited);
    assert_eq!(
        String::from_utf8_lossy(&info("2")),
        String::from_utf8_lossy(&second_before)
    );
}

#[test]
fn no_image_is_set_aside_after_a_header_write_failed() {
    let dir = tempfile::tempdir().unwrap();
    let ThreeImages {
        wim,
        original,
        edited,
        ..
    } = three_images_to_edit(dir.path());
    let mut image = WimImage::open(&wim, "1", true).unwrap();
    image.set_batch(true);
    image.replace_file(&HIVE[1..], &edited).unwrap();
    let (writer, done) = FaultyWriter::new(&wim, None);
    image.set_writer(Box::new(writer));
    image.commit().unwrap();
    let header = done
        .lock()
        .unwrap()
        .iter()
        .position(|op| matches!(op, Op::Write { offset: 0, .. }))
        .unwrap();

    std::fs::write(&wim, &original).unwrap();
    let mut image = WimImage::open(&wim, "1", true).unwrap();
    image.set_batch(true);
    image.replace_file(&HIVE[1..], &edited).unwrap();
    let fault = Fault {
        at: header,
        torn_bytes: 0,
        stop: Stop::Error,
    };
    let (writer, _) = FaultyWriter::new(&wim, Some(fault));
    image.set_writer(Box::new(writer));
    assert!(image.commit().is_err());
    let len = std::fs::metadata(&wim).unwrap().len();
    let error = image.select_image("2").unwrap_err();
    assert!(error.to_string().contains("header write failed"), "{error}");
    assert_eq!(std::fs::metadata(&wim).unwrap().len(), len);
}

#[test]
fn images_edited_together_are_written_by_one_commit_all_or_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let ThreeImages {
        wim,
        original,
        hive,
        edited,
        second,
    } = three_images_to_edit(dir.path());
    let mut image = WimImage::open(&wim, "1", true).unwrap();
    let (writer, done) = FaultyWriter::new(&wim, None);
    image.set_writer(Box::new(writer));
    edit_three(&mut image, &edited, &second).unwrap();
    // Image 2's hive differs from image 1's in chunk 0 too; image 3's is image 1's, stored.
    let reused = (HIVE_CHUNKS - CHANGED_CHUNKS.len()) + (HIVE_CHUNKS - CHANGED_CHUNKS.len() - 1);
    assert_eq!(image.wim().written_chunks().blobs.reused, reused as u64);
    drop(image);
    verify(&wim);
    let expected = [&edited, &second, &edited];
    for (index, contents) in (1..=3).zip(expected) {
        assert!(
            extract_to_stdout(&wim, index, HIVE) == *contents,
            "image {index}"
        );
    }
    let ops = done.lock().unwrap().clone();
    let headers: Vec<usize> = (0..ops.len())
        .filter(|&i| matches!(ops[i], Op::Write { offset: 0, .. }))
        .collect();
    assert_eq!(headers.len(), 1, "{ops:?}");
    let header = headers[0];

    for (at, op) in ops.iter().enumerate() {
        let fault = Fault {
            at,
            torn_bytes: 0,
            stop: Stop::Crash,
        };
        let copy = dir.path().join("crashed.wim");
        std::fs::write(&copy, &original).unwrap();
        let mut image = WimImage::open(&copy, "1", true).unwrap();
        let (writer, _) = FaultyWriter::new(&copy, Some(fault));
        image.set_writer(Box::new(writer));
        assert!(edit_three(&mut image, &edited, &second).is_err());
        drop(image);
        verify(&copy);
        for index in 1..=3 {
            let now = extract_to_stdout(&copy, index, HIVE);
            let wanted = if at <= header {
                &hive
            } else {
                expected[index as usize - 1]
            };
            assert!(now == *wanted, "crash at {op:?}: image {index}");
        }
    }
}
