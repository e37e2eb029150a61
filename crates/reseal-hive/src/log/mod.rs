//! Transaction logs (`.LOG1`, `.LOG2`, NT 3.x `.LOG`): replay with Windows' rules.
//!
//! A hive is dirty when its sequence numbers differ or its base block checksum is wrong; Windows
//! then replays the logs into it before use. Every log starts with a 512-byte copy of the hive's
//! base block (its file type says the format; both its sequence numbers are equal when the log is
//! complete). Two formats follow it:
//! - new format (Windows 8.1+, base block file type 6): `HvLE` log entries, each carrying a sequence
//!   number, the hive bins data size, dirty page references and pages, and two Marvin32 hashes
//!   ([`new_format`]);
//! - old format (file type 1, and 2 for NT 3.x `.LOG`): a `DIRT` vector (one bit per 512-byte page)
//!   followed by the dirty pages ([`old_format`]).
//!
//! Rules (as yarp implements them, checked against Windows by the regf specification's author):
//! - new-format logs come first; old-format logs are used only when no new-format entry applies;
//! - new format, hive checksum right: a log is eligible only if its base-block sequence number is
//!   at least the hive's secondary sequence number; the eligible log with the lowest base-block
//!   sequence number starts; entries apply in order from the log's base-block sequence number while their
//!   sequence numbers are consecutive and their hashes verify (a bad hash, a gap or a stale entry
//!   ends that log); a further log continues only if its base-block sequence number is the last
//!   applied entry's + 1;
//! - new format, hive checksum wrong: only the log with the highest base-block sequence number is
//!   applied, and the base block is rebuilt from its copy (file type set back to 0);
//! - old format: a log applies as a whole when its base block's last written timestamp equals the
//!   hive's (the first hive bin's timestamp when the hive's base block is invalid); among several,
//!   the one with the highest sequence number is tried first.
//!
//! After a replay the base block gets both sequence numbers set to the last applied sequence
//! number + 1 (what Windows 10 writes when it recovers a hive: the recovery is a new write), the
//! last entry's hive bins data size and flag bit 0, and a fresh checksum.
//!
//! Not done: Windows also checks and heals each dirty hive bin while replaying; here the hive bins
//! chain is only checked once, after the replay (a broken chain makes `recovered` false).

mod marvin32;
mod new_format;
mod old_format;

use crate::base_block::{self, BaseBlock, BASE_BLOCK_SIZE};
use crate::{Error, Result};
use new_format::LogEntry;
use old_format::DirtyVector;

/// The base block copy at the start of every log is one 512-byte sector.
const LOG_BASE_BLOCK_SIZE: usize = 512;
/// Bit 0 of the base block flags is the only one a log entry carries.
const FLAG_FROM_LOG_ENTRY: u32 = 1;

/// The format of one transaction log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Windows 8.1+: `HvLE` entries.
    New,
    /// Windows XP to 8 (file type 1) and NT 3.x/4 (file type 2): `DIRT` vector and pages.
    Old,
}

/// What one log contributed to a replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedLog {
    /// The name the caller gave the log (usually its file name), for messages.
    pub name: String,
    pub format: LogFormat,
    /// Number of entries applied (old format: 1 when its pages were applied).
    pub entries: u32,
    /// Sequence numbers of the first and last applied entry (old format: the log's base block's).
    pub first_sequence: u32,
    pub last_sequence: u32,
    /// Number of dirty pages written into the hive.
    pub pages: u32,
}

/// The outcome of [`replay`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayReport {
    /// The hive was dirty before replay (sequence numbers differ or bad checksum).
    pub was_dirty: bool,
    /// The logs that were applied, in order.
    pub applied: Vec<AppliedLog>,
    /// Why each log that was given but not (fully) applied was skipped or stopped, one line each,
    /// e.g. `"SYSTEM.LOG2: base sequence 562 < hive secondary 566: stale"`.
    pub notes: Vec<String>,
    /// The highest sequence number found in any log (base blocks and entries, applied or not).
    /// A commit must write sequence numbers above it so that no stale entry can ever be replayed.
    pub max_log_sequence: Option<u32>,
    /// `true` when the result is a consistent hive (clean, or dirty and fully recovered).
    pub recovered: bool,
}

/// Replays `logs` (name, bytes) into the hive file bytes `hive` and returns the recovered hive file
/// bytes (clean: sequence numbers equal, checksum right) with a report.
///
/// - A clean hive comes back unchanged (`was_dirty == false`, nothing applied, `recovered`); its
///   logs still count for `max_log_sequence`.
/// - A dirty hive that some log applies to comes back recovered; the notes say which logs or
///   entries were skipped and why.
/// - A dirty hive that no log applies to, whose checksum is right (only the sequence numbers
///   differ) and whose hive bins chain is intact, comes back **unchanged** with `recovered == false`
///   and a note: nothing is invented, and the caller decides whether to use it (for example
///   read-only, or written only when the user overrides).
/// - A dirty hive that no log applies to is an error otherwise: [`Error::BadChecksum`] when its
///   base block checksum is wrong, [`Error::BadLog`] when its hive bins are not intact.
///
/// Unusable logs (empty, truncated, foreign, bad base block) are never an error by themselves: they
/// are skipped with a note, as Windows skips them. Memory use is bounded by the input sizes: the
/// hive never grows beyond its size plus the total size of the logs.
pub fn replay(hive: &[u8], logs: &[(&str, &[u8])]) -> Result<(Vec<u8>, ReplayReport)> {
    replay_owned(hive.to_vec(), logs)
}

/// [`replay`] of hive bytes the caller gives up: a hive that comes back unchanged (clean, or
/// dirty with no log that applies) is the same buffer, not a copy of it.
pub fn replay_owned(hive: Vec<u8>, logs: &[(&str, &[u8])]) -> Result<(Vec<u8>, ReplayReport)> {
    let base = BaseBlock::parse(&hive)?;
    if base.file_type() != base_block::FILE_TYPE_PRIMARY {
        return Err(Error::Unsupported(format!(
            "base block file type {} is not a primary hive file",
            base.file_type()
        )));
    }
    let mut report = ReplayReport {
        max_log_sequence: logs.iter().filter_map(|(_, log)| max_sequence(log)).max(),
        was_dirty: base.is_dirty(),
        ..ReplayReport::default()
    };
    if !report.was_dirty {
        report.recovered = true;
        return Ok((hive, report));
    }

    let mut usable = Vec::new();
    for &(name, bytes) in logs {
        match LogFile::open(name, bytes) {
            Ok(log) => usable.push(log),
            Err(reason) => report.notes.push(format!("{name}: {reason}: not used")),
        }
    }

    let growth_limit = logs.iter().fold(hive.len(), |total, (_, log)| {
        total.saturating_add(log.len())
    });
    let mut replay = Replay {
        image: hive.clone(),
        report,
        growth_limit,
        last: None,
    };
    replay.apply_new_format(&base, &usable);
    if replay.last.is_none() {
        replay.apply_old_format(&base, &usable);
    }

    let Replay {
        mut image,
        mut report,
        last,
        ..
    } = replay;
    match last {
        Some(last) => {
            seal_recovered(&mut image, &base, &last, &mut report);
            match hive_bins_problem(&image) {
                None => report.recovered = true,
                Some(problem) => report.notes.push(format!(
                    "after replay the hive bins are not intact ({problem})"
                )),
            }
            Ok((image, report))
        }
        None if !base.checksum_ok() => Err(Error::BadChecksum {
            stored: base.stored_checksum(),
            computed: base_block::checksum(base.bytes()),
        }),
        None => match hive_bins_problem(&hive) {
            None => {
                report.notes.push(format!(
                    "no transaction log applies: the hive is returned unchanged, still dirty \
                     (primary sequence {}, secondary {})",
                    base.primary_sequence(),
                    base.secondary_sequence()
                ));
                Ok((hive, report))
            }
            Some(problem) => Err(Error::BadLog {
                log: log_names(logs),
                reason: format!(
                    "no log applies to the dirty hive and its hive bins are not intact ({problem}){}",
                    report
                        .notes
                        .iter()
                        .map(|note| format!("; {note}"))
                        .collect::<String>()
                ),
            }),
        },
    }
}

/// The highest sequence number in one log file (its base block and every entry header that parses),
/// or `None` for an empty or unreadable log.
///
/// New-format logs are scanned at every 512-byte boundary, so old entries left behind after a bad
/// one count too: a commit that writes sequence numbers above this value cannot be confused with
/// any of them.
pub fn max_sequence(log: &[u8]) -> Option<u32> {
    let header = padded_base_block(log)?;
    let base = BaseBlock::parse(&header).ok()?;
    let mut max = base.primary_sequence().max(base.secondary_sequence());
    if base.file_type() == base_block::FILE_TYPE_LOG_NEW {
        for offset in
            (new_format::FIRST_ENTRY_OFFSET..log.len()).step_by(new_format::ENTRY_ALIGNMENT)
        {
            if let Some(sequence) = new_format::unverified_sequence_at(log, offset) {
                max = max.max(sequence);
            }
        }
    }
    Some(max)
}

/// The log's 512-byte base block copy, padded with zeros to a full base block so that
/// [`BaseBlock`] can read it (its fields and checksum all lie in the first 512 bytes).
fn padded_base_block(log: &[u8]) -> Option<[u8; BASE_BLOCK_SIZE]> {
    let sector = log.get(..LOG_BASE_BLOCK_SIZE)?;
    let mut block = [0u8; BASE_BLOCK_SIZE];
    block[..LOG_BASE_BLOCK_SIZE].copy_from_slice(sector);
    Some(block)
}

fn log_names(logs: &[(&str, &[u8])]) -> String {
    if logs.is_empty() {
        "(no log given)".into()
    } else {
        logs.iter()
            .map(|(name, _)| *name)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A log whose base block copy is valid: `regf`, right checksum, equal sequence numbers, a log file
/// type.
struct LogFile<'a> {
    name: &'a str,
    bytes: &'a [u8],
    format: LogFormat,
    /// The base block's sequence number (primary == secondary).
    sequence: u32,
    last_written: u64,
    hive_bins_data_size: u32,
}

impl<'a> LogFile<'a> {
    /// The log, or why it cannot be used.
    fn open(name: &'a str, bytes: &'a [u8]) -> Result<LogFile<'a>, String> {
        if bytes.is_empty() {
            return Err("empty file".into());
        }
        let header = padded_base_block(bytes).ok_or_else(|| {
            format!(
                "{} bytes, shorter than its 512-byte base block",
                bytes.len()
            )
        })?;
        let base = BaseBlock::parse(&header).map_err(|e| e.to_string())?;
        if !base.checksum_ok() {
            return Err(format!(
                "base block checksum mismatch (stored {:#010x}, computed {:#010x})",
                base.stored_checksum(),
                base_block::checksum(base.bytes())
            ));
        }
        if base.primary_sequence() != base.secondary_sequence() {
            // Windows stopped while writing this log: its contents are incomplete.
            return Err(format!(
                "base block sequence numbers differ ({} != {}): incomplete log",
                base.primary_sequence(),
                base.secondary_sequence()
            ));
        }
        if base.major_version() != 1 {
            return Err(format!("major version {} is not 1", base.major_version()));
        }
        let format = match base.file_type() {
            base_block::FILE_TYPE_LOG_NEW => LogFormat::New,
            base_block::FILE_TYPE_LOG_OLD | base_block::FILE_TYPE_LOG_NT3 => LogFormat::Old,
            other => return Err(format!("base block file type {other} is not a log type")),
        };
        Ok(LogFile {
            name,
            bytes,
            format,
            sequence: base.primary_sequence(),
            last_written: base.last_written(),
            hive_bins_data_size: base.hive_bins_data_size(),
        })
    }
}

/// The last thing applied: it decides the recovered base block.
struct LastApplied<'a> {
    log: &'a LogFile<'a>,
    sequence: u32,
    hive_bins_data_size: u32,
    /// Flags of the last new-format entry (old-format logs carry none).
    entry_flags: Option<u32>,
}

/// A replay in progress over a copy of the hive file.
struct Replay<'a> {
    image: Vec<u8>,
    report: ReplayReport,
    /// The hive may not grow beyond this many bytes (hive size + total log size): every byte beyond
    /// the hive's own must come from a log.
    growth_limit: usize,
    last: Option<LastApplied<'a>>,
}

impl<'a> Replay<'a> {
    fn note(&mut self, note: String) {
        self.report.notes.push(note);
    }

    fn apply_new_format(&mut self, base: &BaseBlock, logs: &'a [LogFile<'a>]) {
        let mut candidates: Vec<&LogFile> = logs
            .iter()
            .filter(|log| log.format == LogFormat::New)
            .collect();
        if base.checksum_ok() {
            let secondary = base.secondary_sequence();
            candidates.retain(|log| {
                let eligible = log.sequence >= secondary;
                if !eligible {
                    self.report.notes.push(format!(
                        "{}: base sequence {} < hive secondary {secondary}: stale",
                        log.name, log.sequence
                    ));
                }
                eligible
            });
            candidates.sort_by_key(|log| log.sequence);
        } else if let Some(latest) = candidates.iter().map(|log| log.sequence).max() {
            // Without a trustworthy base block the hive's sequence numbers mean nothing: Windows
            // rebuilds the base block from the latest log and applies that log alone.
            let position = candidates
                .iter()
                .position(|log| log.sequence == latest)
                .unwrap_or_default();
            let latest_log = candidates.swap_remove(position);
            for other in &candidates {
                self.note(format!(
                    "{}: not used: the hive's base block checksum is wrong, so only the latest log ({}) applies",
                    other.name, latest_log.name
                ));
            }
            candidates = vec![latest_log];
        }

        let Some((starting, rest)) = candidates.split_first() else {
            return;
        };
        self.apply_new_log(starting);
        for log in rest {
            match &self.last {
                Some(last) if log.sequence == last.sequence.wrapping_add(1) => {
                    self.apply_new_log(log)
                }
                Some(last) => {
                    let note = format!(
                        "{}: base sequence {} does not follow the last applied entry {}: not applied",
                        log.name, log.sequence, last.sequence
                    );
                    self.note(note);
                }
                None => {
                    let note = format!(
                        "{}: not applied: the starting log {} applied no entry",
                        log.name, starting.name
                    );
                    self.note(note);
                }
            }
        }
    }

    /// Applies the entries of one new-format log from its first one while they verify and follow
    /// each other.
    fn apply_new_log(&mut self, log: &'a LogFile<'a>) {
        let mut offset = new_format::FIRST_ENTRY_OFFSET;
        let mut expected = log.sequence;
        let mut applied = AppliedLog {
            name: log.name.to_string(),
            format: LogFormat::New,
            entries: 0,
            first_sequence: log.sequence,
            last_sequence: log.sequence,
            pages: 0,
        };
        // Each round moves `offset` forward by at least one 512-byte sector or stops.
        loop {
            let entry = match LogEntry::parse(log.bytes, offset) {
                Ok(Some(entry)) => entry,
                Ok(None) => break,
                Err(reason) => {
                    self.note(format!("{}: {reason}: replay of this log stops", log.name));
                    break;
                }
            };
            if entry.sequence() != expected {
                let kind = if entry.sequence() < expected {
                    "stale entry"
                } else {
                    "gap"
                };
                self.note(format!(
                    "{}: entry at offset {offset:#x} has sequence {}, expected {expected} ({kind}): replay of this log stops",
                    log.name,
                    entry.sequence()
                ));
                break;
            }
            let needed = BASE_BLOCK_SIZE + entry.hive_bins_data_size() as usize;
            if needed > self.growth_limit {
                self.note(format!(
                    "{}: entry {} wants a hive of {needed:#x} bytes, more than the hive and its logs hold ({:#x}): replay of this log stops",
                    log.name,
                    entry.sequence(),
                    self.growth_limit
                ));
                break;
            }
            applied.pages += entry.apply(&mut self.image);
            applied.entries += 1;
            applied.last_sequence = entry.sequence();
            self.last = Some(LastApplied {
                log,
                sequence: entry.sequence(),
                hive_bins_data_size: entry.hive_bins_data_size(),
                entry_flags: Some(entry.flags()),
            });
            offset += entry.size();
            expected = expected.wrapping_add(1);
        }
        if applied.entries == 0 {
            self.note(format!(
                "{}: no entry with sequence {} at offset {:#x}: nothing applied",
                log.name,
                log.sequence,
                new_format::FIRST_ENTRY_OFFSET
            ));
        } else {
            self.report.applied.push(applied);
        }
    }

    fn apply_old_format(&mut self, base: &BaseBlock, logs: &'a [LogFile<'a>]) {
        let hive_timestamp = if base.checksum_ok() {
            Some(base.last_written())
        } else {
            first_hive_bin_timestamp(&self.image)
        };
        let mut candidates: Vec<&LogFile> = Vec::new();
        for log in logs.iter().filter(|log| log.format == LogFormat::Old) {
            if Some(log.last_written) == hive_timestamp {
                candidates.push(log);
            } else {
                let note = format!(
                    "{}: last written timestamp {:#x} differs from the hive's ({}): not applicable",
                    log.name,
                    log.last_written,
                    hive_timestamp.map_or("unknown".into(), |t| format!("{t:#x}"))
                );
                self.note(note);
            }
        }
        // Highest sequence number first; another log is tried only when one cannot be read.
        candidates.sort_by_key(|log| std::cmp::Reverse(log.sequence));
        for log in candidates {
            let vector = match DirtyVector::parse(log.bytes, log.hive_bins_data_size) {
                Ok(vector) => vector,
                Err(reason) => {
                    self.note(format!("{}: {reason}: not applied", log.name));
                    continue;
                }
            };
            let needed = BASE_BLOCK_SIZE + log.hive_bins_data_size as usize;
            if needed > self.growth_limit {
                self.note(format!(
                    "{}: wants a hive of {needed:#x} bytes, more than the hive and its logs hold ({:#x}): not applied",
                    log.name, self.growth_limit
                ));
                continue;
            }
            let pages = vector.apply(&mut self.image);
            self.report.applied.push(AppliedLog {
                name: log.name.to_string(),
                format: LogFormat::Old,
                entries: 1,
                first_sequence: log.sequence,
                last_sequence: log.sequence,
                pages,
            });
            self.last = Some(LastApplied {
                log,
                sequence: log.sequence,
                hive_bins_data_size: log.hive_bins_data_size,
                entry_flags: None,
            });
            return;
        }
    }
}

/// Writes the recovered base block into `image`.
fn seal_recovered(
    image: &mut [u8],
    base: &BaseBlock,
    last: &LastApplied,
    report: &mut ReplayReport,
) {
    let block = &mut image[..BASE_BLOCK_SIZE];
    let mut floor = last.sequence;
    if base.checksum_ok() {
        floor = floor.max(base.primary_sequence());
    } else {
        // LogFile::open checked that the log holds its 512-byte base block copy.
        block[..LOG_BASE_BLOCK_SIZE].copy_from_slice(&last.log.bytes[..LOG_BASE_BLOCK_SIZE]);
        base_block::write::set_file_type(block, base_block::FILE_TYPE_PRIMARY);
        report.notes.push(format!(
            "the hive's base block checksum was wrong: base block rebuilt from {}",
            last.log.name
        ));
    }
    let sequence = floor.wrapping_add(1);
    base_block::write::set_primary_sequence(block, sequence);
    base_block::write::set_secondary_sequence(block, sequence);
    base_block::write::set_hive_bins_data_size(block, last.hive_bins_data_size);
    if let Some(entry_flags) = last.entry_flags {
        let flags = BaseBlock::parse(block).map_or(0, |b| b.flags());
        let flags = (flags & !FLAG_FROM_LOG_ENTRY) | (entry_flags & FLAG_FROM_LOG_ENTRY);
        base_block::write::set_flags(block, flags);
    }
    base_block::write::seal(block);
}

/// The timestamp in the first hive bin's header, a backup of the base block's last written time.
fn first_hive_bin_timestamp(hive: &[u8]) -> Option<u64> {
    let header = hive.get(BASE_BLOCK_SIZE..BASE_BLOCK_SIZE + 32)?;
    if &header[..4] != b"hbin" {
        return None;
    }
    let mut timestamp = [0u8; 8];
    timestamp.copy_from_slice(&header[20..28]);
    Some(u64::from_le_bytes(timestamp))
}

/// Why the chain of hive bins the base block announces is broken, or `None` when every bin has the
/// `hbin` signature, its own offset and a 4096-multiple size, and the bins cover exactly the hive
/// bins data size.
fn hive_bins_problem(hive: &[u8]) -> Option<String> {
    let base = match BaseBlock::parse(hive) {
        Ok(base) => base,
        Err(e) => return Some(e.to_string()),
    };
    let bins_size = base.hive_bins_data_size() as usize;
    if bins_size == 0 || bins_size % 4096 != 0 {
        return Some(format!(
            "hive bins data size {bins_size:#x} is not a positive multiple of 4096"
        ));
    }
    if hive.len() - BASE_BLOCK_SIZE < bins_size {
        return Some(format!(
            "hive bins data size {bins_size:#x} exceeds the {:#x} bytes after the base block",
            hive.len() - BASE_BLOCK_SIZE
        ));
    }
    let bins = &hive[BASE_BLOCK_SIZE..BASE_BLOCK_SIZE + bins_size];
    let mut offset = 0usize;
    // Each round moves forward by at least 4096 bytes.
    while offset < bins_size {
        let file_offset = BASE_BLOCK_SIZE + offset;
        let header = &bins[offset..offset + 32];
        let bin_offset = u32::from_le_bytes([header[4], header[5], header[6], header[7]]) as usize;
        let bin_size = u32::from_le_bytes([header[8], header[9], header[10], header[11]]) as usize;
        if &header[..4] != b"hbin" {
            return Some(format!("no hbin signature at file offset {file_offset:#x}"));
        }
        if bin_offset != offset {
            return Some(format!(
                "hive bin at file offset {file_offset:#x} says it is at {bin_offset:#x}"
            ));
        }
        if bin_size == 0 || bin_size % 4096 != 0 || bin_size > bins_size - offset {
            return Some(format!(
                "hive bin at file offset {file_offset:#x} has size {bin_size:#x}"
            ));
        }
        offset += bin_size;
    }
    None
}
