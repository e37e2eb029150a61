//! Wall time, peak memory and bytes written of one child process.
//!
//! The child runs under a small python3 wrapper (xtask links no libc): the wrapper's
//! `RUSAGE_CHILDREN` peak resident set is its one child's, and Linux adds a reaped child's I/O
//! counters to its parent's `/proc/self/io`, so the wrapper's counters before and after are the
//! child's. `write_bytes` counts the bytes the child dirtied for storage (page-cache writes
//! included, writes undone by truncation not), which is what "bytes written" means in the tables.

use std::ops::Add;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

const WRAPPER: &str = r#"
import json, resource, subprocess, sys, time
def io():
    fields = dict(line.split(": ") for line in open("/proc/self/io").read().splitlines())
    return int(fields["read_bytes"]), int(fields["write_bytes"])
read_before, written_before = io()
start = time.monotonic()
code = subprocess.run(sys.argv[2:]).returncode
seconds = time.monotonic() - start
read_after, written_after = io()
with open(sys.argv[1], "w") as out:
    json.dump({"seconds": seconds,
               "peak_rss_kib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
               "read_bytes": read_after - read_before,
               "written_bytes": written_after - written_before}, out)
sys.exit(code)
"#;

/// What one measured step (or several added up) cost.
#[derive(Clone, Copy, Debug, Default)]
pub struct Cost {
    pub seconds: f64,
    pub peak_rss_kib: u64,
    pub written_bytes: u64,
    pub read_bytes: u64,
}

/// Steps run one after the other: times and bytes add up, the peak is the larger one.
impl Add for Cost {
    type Output = Cost;
    fn add(self, other: Cost) -> Cost {
        Cost {
            seconds: self.seconds + other.seconds,
            peak_rss_kib: self.peak_rss_kib.max(other.peak_rss_kib),
            written_bytes: self.written_bytes + other.written_bytes,
            read_bytes: self.read_bytes + other.read_bytes,
        }
    }
}

/// Runs `program args` under the wrapper with `stdin` (or nothing) as its standard input; its
/// output is kept only to be shown when it fails.
pub fn measure(
    program: &Path,
    args: &[&dyn AsRef<std::ffi::OsStr>],
    stdin: Option<&Path>,
    scratch: &Path,
) -> Result<Cost, String> {
    let report = scratch.join("measure.json");
    crate::remove_if_present(&report)?;
    let mut command = Command::new(crate::HIVEX_PYTHON);
    command.args(["-c", WRAPPER]).arg(&report).arg(program);
    for arg in args {
        command.arg(arg);
    }
    let shown = format!(
        "{} {}",
        program.display(),
        args.iter()
            .map(|a| a.as_ref().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    );
    eprintln!("bench: measuring {shown}");
    match stdin {
        Some(file) => command
            .stdin(std::fs::File::open(file).map_err(|e| format!("{}: {e}", file.display()))?),
        None => command.stdin(Stdio::null()),
    };
    let out = command
        .output()
        .map_err(|e| format!("cannot run {shown}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{shown} failed ({}):\n{}{}",
            out.status,
            tail(&out.stdout),
            tail(&out.stderr)
        ));
    }
    let text =
        std::fs::read_to_string(&report).map_err(|e| format!("{}: {e}", report.display()))?;
    let json: Value = serde_json::from_str(&text).map_err(|e| format!("{text:?}: {e}"))?;
    let number = |field: &str| json[field].as_f64().unwrap_or(0.0);
    Ok(Cost {
        seconds: number("seconds"),
        peak_rss_kib: number("peak_rss_kib") as u64,
        written_bytes: number("written_bytes") as u64,
        read_bytes: number("read_bytes") as u64,
    })
}

/// The last lines of a captured output (enough to see why a step failed).
fn tail(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(20);
    let mut shown = lines[start..].join("\n");
    if !shown.is_empty() {
        shown.push('\n');
    }
    shown
}
