//! `cargo xtask bench wim`: `reseal generalize` on a WIM, side by side with the two ways there
//! are without it, each on its own fresh copy of the generated WIM ([`super::windows_tree`]):
//!
//! 1. `reseal generalize copy.wim`: edits the image in place;
//! 2. `wimlib-imagex update copy.wim 1` with `add` and `delete` commands that make exactly the
//!    changes reseal made (found by comparing `wimlib-imagex dir --detailed` before and after
//!    reseal; the new contents are extracted from reseal's result beforehand, outside the
//!    measured time): the floor for an engine that edits a WIM in place;
//! 3. `wimlib-imagex apply` to a directory, `reseal generalize` on the directory and
//!    `wimlib-imagex capture --compress=LZX` to a new WIM: what users do today
//!    (`BENCH_WIM_ROUND_TRIP=0` leaves it out);
//! 4. `reseal newsid copy.wim`, the other edit of the whole image, against generalize.
//!
//! Sides 1, 2 and 4 run `BENCH_WIM_RUNS` times (default 3), alternating, and the fastest run of
//! each is reported; the round trip runs once. The WIM's growth is held against two budgets:
//! every new blob whole (what a WIM can hold: a blob's resource is one run of bytes) and only
//! the chunks that changed (what the issue aims at). Sizes: see [`super::windows_tree`].

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use super::measure::{measure, Cost};
use super::windows_tree::{self, TreeSize, IMAGE_NAME};
use super::{file_size, fresh_copy, load_average, mib, output_of, MAX_NEWSID_RATIO};
use crate::remove_if_present;

/// The aims of issues #5, #17 and #18.
const MAX_RATIO_TO_UPDATE: f64 = 0.35;
const MIN_SPEEDUP_OVER_ROUND_TRIP: f64 = 30.0;

/// One measured side: what it cost, how much the WIM grew, and the load when it finished;
/// for reseal's runs, also what that run's changes let the WIM grow by (its new hives differ
/// from run to run by a few compressed bytes).
pub(super) struct Side {
    pub cost: Cost,
    pub grown: i64,
    pub load: String,
    budget: Option<Budget>,
}

impl Side {
    /// A side measured without a growth budget, with the load average now.
    pub fn new(cost: Cost, grown: i64) -> Side {
        Side {
            cost,
            grown,
            load: load_average(),
            budget: None,
        }
    }
}

pub fn run(work: &Path) -> Result<(), String> {
    let size = TreeSize::from_env()?;
    let runs = super::env_number("BENCH_WIM_RUNS", 3)?.max(1);
    let reseal = super::release_reseal()?;
    let source = windows_tree::tree_wim(work, size)?;
    let source_size = file_size(&source)?;
    let scratch = work.join("wim-run");
    remove_if_present(&scratch)?;
    std::fs::create_dir_all(&scratch).map_err(|e| format!("{}: {e}", scratch.display()))?;
    let before = Listing::of(&source)?;
    let source_blobs: BTreeSet<String> = blobs(&source)?.into_iter().map(|b| b.hash).collect();
    let described = describe(&source)?;
    eprintln!("bench: WIM {}: {described}", source.display());

    let reseal_copy = scratch.join("reseal.wim");
    let update_copy = scratch.join("update.wim");
    let newsid_copy = scratch.join("newsid.wim");
    let commands = scratch.join("update-commands.txt");
    let mut fastest_reseal: Option<Side> = None;
    let mut fastest_update: Option<Side> = None;
    let mut fastest_newsid: Option<Side> = None;
    let mut same_result = None;
    let mut largest_changed = 0;
    for run in 0..runs {
        fresh_copy(&source, &reseal_copy)?;
        let cost = measure(&reseal, &[&"generalize", &reseal_copy], None, &scratch)?;
        let load = load_average();
        let after = Listing::of(&reseal_copy)?;
        let budget = Budget::of(&source, &before, &source_blobs, &reseal_copy, &after)?;
        largest_changed = largest_changed.max(budget.largest_changed);
        let side = Side {
            cost,
            grown: file_size(&reseal_copy)? as i64 - source_size as i64,
            load,
            budget: Some(budget),
        };
        if run == 0 {
            super::check_generalized(&reseal, &reseal_copy)?;
            prepare_update(&before, &after, &reseal_copy, &scratch, &commands)?;
        }
        keep_fastest(&mut fastest_reseal, side);

        fresh_copy(&source, &update_copy)?;
        let cost = measure(
            Path::new("wimlib-imagex"),
            &[&"update", &update_copy, &"1"],
            Some(&commands),
            &scratch,
        )?;
        let side = Side::new(cost, file_size(&update_copy)? as i64 - source_size as i64);
        if run == 0 {
            // The update must give the image reseal gave, or it is not the same work.
            same_result = Some(after.differences(&Listing::of(&update_copy)?));
        }
        keep_fastest(&mut fastest_update, side);

        fresh_copy(&source, &newsid_copy)?;
        let old_sid = super::machine_sid(&reseal, &newsid_copy, None)?;
        let cost = measure(&reseal, &[&"newsid", &newsid_copy], None, &scratch)?;
        let side = Side::new(cost, file_size(&newsid_copy)? as i64 - source_size as i64);
        super::check_new_sid(&reseal, &newsid_copy, None, &old_sid)?;
        keep_fastest(&mut fastest_newsid, side);
    }
    let reseal_listing = Listing::of(&reseal_copy)?;
    remove_if_present(&update_copy)?;
    remove_if_present(&newsid_copy)?;
    remove_if_present(&scratch.join("staging"))?;

    let round_trip = if super::env_number("BENCH_WIM_ROUND_TRIP", 1)? == 0 {
        None
    } else {
        let (side, paths) = round_trip(&reseal, &source, &scratch, source_size)?;
        Some((side, reseal_listing.path_differences(&paths)))
    };
    remove_if_present(&reseal_copy)?;

    let (Some(ours), Some(update), Some(newsid)) = (fastest_reseal, fastest_update, fastest_newsid)
    else {
        return Err("no WIM benchmark run".to_string());
    };
    let Some(budget) = &ours.budget else {
        return Err("reseal's run has no growth budget".to_string());
    };
    println!("\n== WIM (load average {})", load_average());
    println!("\n{described}; {}\n", source.display());
    println!(
        "Fastest of {runs} alternating runs for reseal generalize, update and reseal newsid, one round trip; warm page cache.\n"
    );
    println!(
        "| side | wall time | WIM grew by | peak memory | bytes written | load (1/5/15 min) |"
    );
    println!("|---|---|---|---|---|---|");
    let mut rows = vec![
        ("reseal generalize", &ours),
        ("wimlib-imagex update (same changes)", &update),
        ("reseal newsid", &newsid),
    ];
    if let Some((side, _)) = &round_trip {
        rows.push(("apply + reseal + capture round trip", side));
    }
    for (label, side) in rows {
        println!(
            "| {label} | {:.2} s | {} | {:.0} MiB | {} | {} |",
            side.cost.seconds,
            mib(side.grown as f64),
            side.cost.peak_rss_kib as f64 / 1024.0,
            mib(side.cost.written_bytes as f64),
            side.load
        );
    }
    println!(
        "\nChanges reseal made (and the update replays): {}",
        budget.summary
    );
    println!("Chunks: {}", budget.chunk_summary);
    println!(
        "update gives the image reseal gives: {}",
        match same_result.as_deref() {
            Some([]) => "yes (same paths, same contents)".to_string(),
            Some(list) => format!("NO: {}", list.join("; ")),
            None => "not checked".to_string(),
        }
    );
    match &round_trip {
        Some((_, differences)) => println!(
            "round trip gives the same paths: {}",
            if differences.is_empty() {
                "yes".to_string()
            } else {
                format!("NO: {}", differences.join("; "))
            }
        ),
        None => println!("round trip: not run (BENCH_WIM_ROUND_TRIP=0)"),
    }
    let ratio = ours.cost.seconds / update.cost.seconds;
    println!("\nAgainst the aims:\n");
    println!(
        "- at most {MAX_RATIO_TO_UPDATE}x the update floor: {ratio:.2}x ({})",
        verdict(ratio <= MAX_RATIO_TO_UPDATE)
    );
    if let Some((side, _)) = &round_trip {
        let speedup = side.cost.seconds / ours.cost.seconds;
        println!(
            "- at least {MIN_SPEEDUP_OVER_ROUND_TRIP}x faster than the round trip: {speedup:.1}x ({})",
            verdict(speedup >= MIN_SPEEDUP_OVER_ROUND_TRIP)
        );
    }
    println!(
        "- growth within the changed chunks, the new metadata, blob table and XML: grew {} bytes against {} ({})",
        ours.grown,
        budget.changed_chunk_bytes,
        verdict(ours.grown <= budget.changed_chunk_bytes as i64)
    );
    println!(
        "- growth within the changed blobs whole, the new metadata, blob table and XML: grew {} bytes against {} ({})",
        ours.grown,
        budget.bytes,
        verdict(ours.grown <= budget.bytes as i64)
    );
    if let Some(note) = &budget.compression_note {
        println!("  {note}");
    }
    let newsid_ratio = newsid.cost.seconds / ours.cost.seconds;
    println!(
        "- newsid within {MAX_NEWSID_RATIO}x generalize: {newsid_ratio:.2}x ({})",
        verdict(newsid_ratio <= MAX_NEWSID_RATIO)
    );
    for (label, side) in [("reseal generalize", &ours), ("reseal newsid", &newsid)] {
        println!(
            "{}",
            super::memory_aim_line(
                label,
                side.cost.peak_rss_kib,
                ("the largest changed file", largest_changed)
            )
        );
    }
    Ok(())
}

pub(super) fn verdict(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "MISSED"
    }
}

pub(super) fn keep_fastest(fastest: &mut Option<Side>, side: Side) {
    if fastest
        .as_ref()
        .is_none_or(|best| side.cost.seconds < best.cost.seconds)
    {
        *fastest = Some(side);
    }
}

/// The (one) image's file count, total bytes and the WIM's size, from `wimlib-imagex info`.
pub(super) fn describe(wim: &Path) -> Result<String, String> {
    let info = String::from_utf8_lossy(&output_of(
        Command::new("wimlib-imagex").arg("info").arg(wim),
    )?)
    .into_owned();
    let field = |name: &str| {
        info.lines()
            .find_map(|line| line.strip_prefix(name))
            .map(|rest| rest.trim_start_matches([' ', ':']).trim().to_string())
            .unwrap_or_default()
    };
    let total: f64 = field("Total Bytes").parse().unwrap_or(0.0);
    Ok(format!(
        "{} files in {} directories, {} of data, WIM of {} ({} compression)",
        field("File Count"),
        field("Directory Count"),
        mib(total),
        mib(file_size(wim)? as f64),
        field("Compression")
    ))
}

/// One image's entries from `wimlib-imagex dir --detailed`: path -> (is a directory, hash of
/// the unnamed data stream).
pub(super) struct Listing(BTreeMap<String, (bool, String)>);

impl Listing {
    pub(super) fn of(wim: &Path) -> Result<Listing, String> {
        let text = String::from_utf8_lossy(&output_of(
            Command::new("wimlib-imagex")
                .arg("dir")
                .arg(wim)
                .arg("1")
                .arg("--detailed"),
        )?)
        .into_owned();
        let mut entries = BTreeMap::new();
        for block in text.split("\n----------------------------------------") {
            let mut path = None;
            let mut is_dir = false;
            let mut hash = String::new();
            for line in block.lines() {
                let Some((name, value)) = line.split_once(" = ") else {
                    continue;
                };
                match name.trim() {
                    "Full Path" => path = Some(value.trim().trim_matches('"').to_string()),
                    "Attributes" => {
                        let bits = u32::from_str_radix(value.trim().trim_start_matches("0x"), 16)
                            .unwrap_or(0);
                        is_dir = bits & 0x10 != 0;
                    }
                    "Hash" if hash.is_empty() => hash = value.trim().to_string(),
                    _ => {}
                }
            }
            if let Some(path) = path {
                entries.insert(path, (is_dir, hash));
            }
        }
        Ok(Listing(entries))
    }

    /// Paths and file contents that differ, as short descriptions (empty when the same).
    fn differences(&self, other: &Listing) -> Vec<String> {
        let mut found = self.path_differences(&other.paths());
        for (path, (is_dir, hash)) in &self.0 {
            if let Some((_, other_hash)) = other.0.get(path) {
                if !is_dir && hash != other_hash {
                    found.push(format!("{path} has other contents"));
                }
            }
        }
        found
    }

    fn paths(&self) -> BTreeSet<String> {
        self.0.keys().cloned().collect()
    }

    fn path_differences(&self, other: &BTreeSet<String>) -> Vec<String> {
        let ours = self.paths();
        let mut found: Vec<String> = ours
            .difference(other)
            .map(|p| format!("{p} missing"))
            .collect();
        found.extend(other.difference(&ours).map(|p| format!("{p} extra")));
        found
    }
}

fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(slash) => &path[..slash],
    }
}

/// Writes the `wimlib-imagex update` commands that turn `before` into `after`, with the new
/// contents extracted from `generalized` into `scratch/staging`: a changed or new file is
/// added (replacing the old one), a new directory is added whole, a removed file or directory
/// is deleted (only the topmost of a removed tree).
fn prepare_update(
    before: &Listing,
    after: &Listing,
    generalized: &Path,
    scratch: &Path,
    commands: &Path,
) -> Result<(), String> {
    let staging = scratch.join("staging");
    remove_if_present(&staging)?;
    std::fs::create_dir_all(&staging).map_err(|e| format!("{}: {e}", staging.display()))?;
    let mut script = String::new();
    let mut extracted = Vec::new();
    for (path, (is_dir, hash)) in &after.0 {
        let added = match before.0.get(path) {
            None => before.0.contains_key(parent(path)),
            Some((was_dir, old_hash)) => !is_dir && !was_dir && hash != old_hash,
        };
        if added {
            extracted.push(path.clone());
            script.push_str(&format!("add \"{}{path}\" \"{path}\"\n", staging.display()));
        }
    }
    for (path, (is_dir, _)) in &before.0 {
        if !after.0.contains_key(path) && after.0.contains_key(parent(path)) {
            let recursive = if *is_dir { "--recursive " } else { "" };
            script.push_str(&format!("delete {recursive}\"{path}\"\n"));
        }
    }
    if !extracted.is_empty() {
        let list = scratch.join("extract-list.txt");
        std::fs::write(&list, extracted.join("\n") + "\n")
            .map_err(|e| format!("{}: {e}", list.display()))?;
        output_of(
            Command::new("wimlib-imagex")
                .arg("extract")
                .arg(generalized)
                .arg("1")
                .arg(format!("@{}", list.display()))
                .arg(format!("--dest-dir={}", staging.display()))
                .args(["--preserve-dir-structure", "--no-globs"]),
        )?;
    }
    std::fs::write(commands, &script).map_err(|e| format!("{}: {e}", commands.display()))
}

/// What the aims let the WIM grow by: the blobs reseal's run added (compressed as it wrote
/// them) or only their chunks that changed, its new metadata resource, and the blob table, XML
/// data and integrity table written after them.
struct Budget {
    bytes: u64,
    changed_chunk_bytes: u64,
    summary: String,
    chunk_summary: String,
    compression_note: Option<String>,
    /// The uncompressed size of the largest file the run changed or added.
    largest_changed: u64,
}

/// A blob table entry from `wimlib-imagex info --blobs`.
pub(super) struct Blob {
    pub hash: String,
    pub size: u64,
    pub compressed: u64,
    pub offset: u64,
    pub metadata: bool,
    pub is_compressed: bool,
}

pub(super) fn blobs(wim: &Path) -> Result<Vec<Blob>, String> {
    let text = String::from_utf8_lossy(&output_of(
        Command::new("wimlib-imagex")
            .arg("info")
            .arg(wim)
            .arg("--blobs"),
    )?)
    .into_owned();
    let mut found = Vec::new();
    for block in text.split("\n\n") {
        let field = |name: &str| {
            block.lines().find_map(|line| {
                let (key, value) = line.split_once(" = ")?;
                (key.trim() == name).then(|| value.trim().to_string())
            })
        };
        let number = |name: &str| {
            field(name)
                .and_then(|v| v.trim_end_matches(" bytes").parse().ok())
                .unwrap_or(0)
        };
        if let Some(hash) = field("Hash") {
            let flags = field("Flags").unwrap_or_default();
            found.push(Blob {
                hash,
                size: number("Uncompressed size"),
                compressed: number("Compressed size"),
                offset: number("Offset in WIM"),
                metadata: flags.contains("METADATA"),
                is_compressed: flags.contains("COMPRESSED"),
            });
        }
    }
    Ok(found)
}

/// A numeric field of `wimlib-imagex info --header`.
pub(super) fn header_field(header: &str, name: &str) -> u64 {
    header
        .lines()
        .find_map(|line| {
            let (key, value) = line.split_once(" = ")?;
            (key.trim() == name).then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0)
}

fn header(wim: &Path) -> Result<String, String> {
    Ok(String::from_utf8_lossy(&output_of(
        Command::new("wimlib-imagex")
            .arg("info")
            .arg(wim)
            .arg("--header"),
    )?)
    .into_owned())
}

/// The contents of `path` in image 1 of `wim`.
pub(super) fn extract(wim: &Path, path: &str) -> Result<Vec<u8>, String> {
    output_of(
        Command::new("wimlib-imagex")
            .arg("extract")
            .arg(wim)
            .arg("1")
            .arg(path)
            .args(["--to-stdout", "--no-globs"]),
    )
}

/// The bytes each chunk of `blob` takes in `wim`, read from the resource's chunk table (a
/// resource stored uncompressed has none: its chunks take their own size).
fn stored_chunk_sizes(wim: &Path, blob: &Blob, chunk_size: u64) -> Result<Vec<u64>, String> {
    use std::io::{Read, Seek, SeekFrom};
    let chunks = blob.size.div_ceil(chunk_size);
    if !blob.is_compressed {
        return Ok((0..chunks)
            .map(|i| chunk_size.min(blob.size - i * chunk_size))
            .collect());
    }
    let entry = if blob.size > u32::MAX as u64 { 8 } else { 4 };
    let table_len = chunks.saturating_sub(1) * entry;
    let mut table = vec![0u8; table_len as usize];
    let mut file = std::fs::File::open(wim).map_err(|e| format!("{}: {e}", wim.display()))?;
    file.seek(SeekFrom::Start(blob.offset))
        .and_then(|_| file.read_exact(&mut table))
        .map_err(|e| format!("{}: chunk table at {}: {e}", wim.display(), blob.offset))?;
    let mut starts = vec![0u64];
    for raw in table.chunks(entry as usize) {
        let mut bytes = [0u8; 8];
        bytes[..raw.len()].copy_from_slice(raw);
        starts.push(u64::from_le_bytes(bytes));
    }
    starts.push(blob.compressed - table_len);
    Ok(starts
        .windows(2)
        .map(|w| w[1].saturating_sub(w[0]))
        .collect())
}

impl Budget {
    /// The budgets of `generalized` (listed as `after`), made from `source` (listed as
    /// `before`, whose blobs had the hashes `old`).
    fn of(
        source: &Path,
        before: &Listing,
        old: &BTreeSet<String>,
        generalized: &Path,
        after: &Listing,
    ) -> Result<Budget, String> {
        let new_blobs: Vec<Blob> = blobs(generalized)?
            .into_iter()
            .filter(|b| !old.contains(&b.hash))
            .collect();
        let (data, metadata): (Vec<&Blob>, Vec<&Blob>) =
            new_blobs.iter().partition(|blob| !blob.metadata);
        let data_bytes: u64 = data.iter().map(|b| b.compressed).sum();
        let data_size: u64 = data.iter().map(|b| b.size).sum();
        let metadata_bytes: u64 = metadata.iter().map(|b| b.compressed).sum();
        let header = header(generalized)?;
        let tables = header_field(&header, "Blob Table Size")
            + header_field(&header, "XML Data Size")
            + header_field(&header, "Integrity Size");
        let chunk_size = header_field(&header, "Chunk Size").max(1);

        // Each new blob's chunks that differ from the old file's at the same index (all of
        // them for a file that is new); a blob several paths share counts once.
        let mut changed_chunks = 0u64;
        let mut all_chunks = 0u64;
        let mut changed_stored = 0u64;
        let mut counted = BTreeSet::new();
        for (path, (is_dir, hash)) in &after.0 {
            let Some(blob) = data.iter().find(|b| &b.hash == hash) else {
                continue;
            };
            if *is_dir || !counted.insert(hash.clone()) {
                continue;
            }
            let stored = stored_chunk_sizes(generalized, blob, chunk_size)?;
            all_chunks += stored.len() as u64;
            let old_contents = match before.0.get(path) {
                Some((false, _)) => Some(extract(source, path)?),
                _ => None,
            };
            let new_contents = extract(generalized, path)?;
            for (index, size) in stored.iter().enumerate() {
                let range = |bytes: &[u8]| {
                    let start = (index as u64 * chunk_size) as usize;
                    let end = (start + chunk_size as usize).min(bytes.len());
                    bytes.get(start..end).map(<[u8]>::to_vec)
                };
                let same = old_contents
                    .as_deref()
                    .is_some_and(|old| range(old) == range(&new_contents));
                if !same {
                    changed_chunks += 1;
                    changed_stored += size;
                }
            }
        }
        let incompressible: Vec<&&Blob> = data
            .iter()
            .filter(|b| b.size > 64 << 10 && b.compressed >= b.size)
            .collect();
        Ok(Budget {
            bytes: data_bytes + metadata_bytes + tables,
            changed_chunk_bytes: changed_stored + metadata_bytes + tables,
            summary: format!(
                "{} new blobs of {} ({} compressed), metadata resource {}, blob table + XML + integrity {}",
                data.len(),
                mib(data_size as f64),
                mib(data_bytes as f64),
                mib(metadata_bytes as f64),
                mib(tables as f64)
            ),
            chunk_summary: format!(
                "{changed_chunks} of the new blobs' {all_chunks} chunks of {} KiB differ from the old file's at the same index ({} stored; {changed_stored} bytes)",
                chunk_size >> 10,
                mib(changed_stored as f64)
            ),
            compression_note: (!incompressible.is_empty()).then(|| {
                format!(
                    "{} new blobs above 64 KiB were stored uncompressed",
                    incompressible.len()
                )
            }),
            largest_changed: data.iter().map(|b| b.size).max().unwrap_or(0),
        })
    }
}

/// apply + reseal generalize + capture, each step measured; returns the summed cost and the
/// paths of the captured image.
fn round_trip(
    reseal: &Path,
    source: &Path,
    scratch: &Path,
    source_size: u64,
) -> Result<(Side, BTreeSet<String>), String> {
    let tree = scratch.join("applied");
    let captured = scratch.join("round-trip.wim");
    remove_if_present(&tree)?;
    remove_if_present(&captured)?;
    let apply = measure(
        Path::new("wimlib-imagex"),
        &[&"apply", &source, &"1", &tree],
        None,
        scratch,
    )?;
    let load_apply = load_average();
    let edit = measure(reseal, &[&"generalize", &tree], None, scratch)?;
    super::check_generalized(reseal, &tree)?;
    let load_edit = load_average();
    let capture = measure(
        Path::new("wimlib-imagex"),
        &[&"capture", &tree, &captured, &IMAGE_NAME, &"--compress=LZX"],
        None,
        scratch,
    )?;
    eprintln!(
        "bench: round trip: apply {:.1} s (load {load_apply}), generalize {:.1} s (load {load_edit}), capture {:.1} s (load {})",
        apply.seconds,
        edit.seconds,
        capture.seconds,
        load_average()
    );
    let side = Side {
        cost: apply + edit + capture,
        grown: file_size(&captured)? as i64 - source_size as i64,
        load: load_average(),
        budget: None,
    };
    let paths = Listing::of(&captured)?.paths();
    remove_if_present(&tree)?;
    remove_if_present(&captured)?;
    Ok((side, paths))
}
