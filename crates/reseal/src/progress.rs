//! [`Progress`]: how a long run tells a user interface what it is doing, for a progress bar.
//!
//! The library reports phases (planning, writing the changes, committing) and, where it knows
//! them, steps within a phase. It never prints anything itself: the command line draws a bar on
//! stderr when stderr is a terminal and stays quiet otherwise.

/// Receives the phases of a run. Calls come from the thread running it, in order: `start`,
/// any number of `advance`, `finish`.
pub trait Progress {
    /// A phase begins; `total` is its number of steps when known.
    fn start(&self, phase: &str, total: Option<u64>);
    /// `done` steps of the current phase are complete.
    fn advance(&self, done: u64);
    /// The current phase is over.
    fn finish(&self);
}

/// A [`Progress`] that ignores everything: what the functions without `_with_progress` use.
pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&self, _phase: &str, _total: Option<u64>) {}
    fn advance(&self, _done: u64) {}
    fn finish(&self) {}
}

/// Runs `work` as the phase `phase` (without known steps), finishing the phase either way.
pub(crate) fn in_phase<T>(progress: &dyn Progress, phase: &str, work: impl FnOnce() -> T) -> T {
    progress.start(phase, None);
    let result = work();
    progress.finish();
    result
}
