//! The log of a run: `--log FILE` writes it, `--verbose` shows it on stderr as it goes.
//!
//! Lines are recorded as the run goes (UTC time, then the text) and the file is written once at
//! the end, whatever the outcome, so a refusal or a usage error found after the arguments were
//! parsed is logged with its exit code like a success.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Instant;

use reseal_nt::filetime::FileTime;

/// How much the run tells on stderr beside its errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verbosity {
    /// Errors only (`--quiet`).
    Quiet,
    /// Errors and notices (the default).
    Normal,
    /// Also every line the log gets (`--verbose`).
    Verbose,
}

struct RunLog {
    file: Option<PathBuf>,
    verbosity: Verbosity,
    lines: Vec<String>,
}

static LOG: Mutex<RunLog> = Mutex::new(RunLog {
    file: None,
    verbosity: Verbosity::Normal,
    lines: Vec::new(),
});

fn with_log<T>(f: impl FnOnce(&mut RunLog) -> T) -> T {
    let mut log = LOG.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    f(&mut log)
}

/// Starts the log of this run: written to `file` at the end, shown on stderr when `verbosity`
/// is [`Verbosity::Verbose`]. The file is created now, so that a log that cannot be written
/// stops the run before it changes anything (a finished run whose log failed would look like a
/// failed one to a pipeline, which might run it again).
pub fn start(file: Option<PathBuf>, verbosity: Verbosity) -> Result<(), String> {
    if let Some(file) = &file {
        std::fs::File::create(file)
            .map_err(|e| format!("cannot write the log {}: {e}", file.display()))?;
    }
    with_log(|log| {
        log.file = file;
        log.verbosity = verbosity;
    });
    Ok(())
}

/// How much the run tells on stderr.
pub fn verbosity() -> Verbosity {
    with_log(|log| log.verbosity)
}

/// Records one line (several for a text with line breaks), with the time.
pub fn record(text: impl AsRef<str>) {
    let time = FileTime::now();
    with_log(|log| {
        for line in text.as_ref().lines() {
            if log.verbosity == Verbosity::Verbose {
                eprintln!("reseal: {line}");
            }
            log.lines.push(format!("{time} {line}"));
        }
    });
}

/// Writes the log file, when one was asked for; a failure to write it is told on stderr and
/// returned, so the exit code can say it.
pub fn finish() -> Result<(), String> {
    with_log(|log| {
        let Some(file) = &log.file else {
            return Ok(());
        };
        let mut text = log.lines.join("\n");
        text.push('\n');
        std::fs::write(file, text)
            .map_err(|e| format!("cannot write the log {}: {e}", file.display()))
    })
}

/// A [`reseal::Progress`] that records each phase with its duration in the log and passes
/// everything on to `inner` (the progress bar, or nothing).
pub struct LoggedProgress<'a> {
    pub inner: &'a dyn reseal::Progress,
    current: Mutex<Option<(String, Instant)>>,
}

impl<'a> LoggedProgress<'a> {
    pub fn new(inner: &'a dyn reseal::Progress) -> LoggedProgress<'a> {
        LoggedProgress {
            inner,
            current: Mutex::new(None),
        }
    }

    fn end_phase(&self) {
        let ended = self
            .current
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        if let Some((phase, started)) = ended {
            record(format!(
                "phase done: {phase} ({:.3} s)",
                started.elapsed().as_secs_f64()
            ));
        }
    }
}

impl reseal::Progress for LoggedProgress<'_> {
    fn start(&self, phase: &str, total: Option<u64>) {
        self.end_phase();
        match total {
            Some(total) => record(format!("phase: {phase} ({total} steps)")),
            None => record(format!("phase: {phase}")),
        }
        *self
            .current
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) =
            Some((phase.to_string(), Instant::now()));
        self.inner.start(phase, total);
    }

    fn advance(&self, done: u64) {
        self.inner.advance(done);
    }

    fn finish(&self) {
        self.end_phase();
        self.inner.finish();
    }
}
