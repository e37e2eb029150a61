//! `Windows\Panther\reseal.log`: the record a run leaves in the image, beside Sysprep's own
//! Panther logs, so whoever looks into a clone later finds what prepared it: which reseal
//! version, when, which run with which options, and each change with its provider (sensitive
//! contents hidden, as in the plan). docs/operations-and-logs.md describes it.
//!
//! Each run that changes something appends one section (UTF-8, CRLF line ends, as Windows' own
//! text logs have them). A run that changes nothing writes nothing, so a second run on the same
//! image still plans nothing. The record is one more change of the plan, planned last: a dry run
//! shows it and apply writes exactly what was planned; a new file gets, through the target's
//! `create_file`, the security a new file in `Windows\Panther` inherits, as any file reseal
//! creates.

use crate::error::Result;
use crate::image::Image;
use crate::limits;
use crate::plan::{Origin, Plan};

/// Where the record lives in the image.
pub const PATH: &str = r"Windows\Panther\reseal.log";
/// The provider name the record's change carries. It is no operation: it cannot be selected or
/// left out, and it writes only when the run changes something else.
pub const PROVIDER: &str = "run-record";
const SOURCE: &str = "reseal's record of its runs, beside Sysprep's Panther logs \
                      (docs/operations-and-logs.md)";

/// What the record says of a run besides its plan.
#[derive(Debug, Clone)]
pub struct RunRecord {
    /// The library call: `generalize`, `reseal` (no generalize), `rename` or `newsid`.
    pub run: &'static str,
    /// The options the call was given, as [`options_line`] shows them.
    pub options: String,
}

impl RunRecord {
    /// The record of a `run` given `options`.
    pub fn new(run: &'static str, options: &impl serde::Serialize) -> RunRecord {
        RunRecord {
            run,
            options: options_line(options),
        }
    }
}

/// A run's options as a log shows them: one line of JSON, as the library's structures
/// serialize (they hold no secrets: an answer file is named by its path), keys sorted, without
/// `dry_run`, so that a dry run plans the same record as the run it previews (a log says
/// whether anything was written on a line of its own).
pub fn options_text(options: &impl serde::Serialize) -> String {
    let fields = match serde_json::to_value(options) {
        Ok(serde_json::Value::Object(fields)) => fields,
        Ok(other) => return other.to_string(),
        Err(e) => return format!("(not shown: {e})"),
    };
    // Sorted here, whatever order serde_json's map keeps with the features a build enables.
    let sorted: std::collections::BTreeMap<String, serde_json::Value> = fields
        .into_iter()
        .filter(|(name, _)| name != "dry_run")
        .collect();
    serde_json::to_string(&sorted).unwrap_or_else(|e| format!("(not shown: {e})"))
}

/// The options line of a log (`options: JSON`); the run's log and the record in the image both
/// write it.
pub fn options_line(options: &impl serde::Serialize) -> String {
    format!("options: {}", options_text(options))
}

/// Plans the section of `record` for `plan` at the end of the run's changes, when it has any:
/// the file's present contents with the section appended, or a new file.
pub(crate) fn plan_record(
    image: &mut Image,
    plan: &mut Plan,
    record: &RunRecord,
    time: reseal_nt::FileTime,
) -> Result<()> {
    if plan.is_empty() {
        return Ok(());
    }
    let mut contents = image
        .read_file(PATH, limits::RUN_RECORD)?
        .unwrap_or_default();
    if !contents.is_empty() && !contents.ends_with(b"\n") {
        contents.extend_from_slice(b"\r\n");
    }
    contents.extend_from_slice(section(plan, record, time).as_bytes());
    let origin = Origin {
        provider: PROVIDER,
        source: SOURCE,
    };
    plan.write_file(image, origin, PATH, &contents, false)
}

/// The text one run appends, with CRLF line ends and a blank line after it.
pub fn section(plan: &Plan, record: &RunRecord, time: reseal_nt::FileTime) -> String {
    let mut lines = vec![
        format!(
            "== reseal {} {} at {time} ==",
            env!("CARGO_PKG_VERSION"),
            record.run
        ),
        record.options.clone(),
    ];
    if !plan.operations.is_empty() {
        lines.push(format!("operations run: {}", plan.operations.join(", ")));
    }
    for outcome in &plan.checks {
        if let Some(reason) = &outcome.ignored_failure {
            lines.push(format!(
                "check {}: failed, ignored: {reason}",
                outcome.check
            ));
        }
    }
    lines.extend(plan.changes.iter().map(|change| change.log_line()));
    lines.extend(plan.notes.iter().map(|note| note.log_line()));
    lines.push(format!("{} changes", plan.changes.len()));
    let mut text = String::new();
    for line in lines {
        // A line break inside a message would start a line the reader cannot place.
        text.push_str(&line.replace(['\r', '\n'], " "));
        text.push_str("\r\n");
    }
    text.push_str("\r\n");
    text
}
