//! The progress bar on stderr: drawn only when stderr is a terminal, so scripts, CI logs and
//! `--json` output see nothing of it.

use std::cell::RefCell;
use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A bar (phases with known steps) or a spinner (the others) for each phase the library reports.
pub struct TerminalProgress {
    current: RefCell<Option<ProgressBar>>,
}

impl TerminalProgress {
    /// A progress display when stderr is a terminal, `None` otherwise.
    pub fn for_stderr() -> Option<TerminalProgress> {
        std::io::stderr().is_terminal().then(|| TerminalProgress {
            current: RefCell::new(None),
        })
    }
}

impl reseal::Progress for TerminalProgress {
    fn start(&self, phase: &str, total: Option<u64>) {
        let bar = match total {
            Some(total) => ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr())
                .with_style(
                    ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} ({elapsed})")
                        .unwrap_or_else(|_| ProgressStyle::default_bar())
                        .progress_chars("=> "),
                ),
            None => {
                let spinner = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr())
                    .with_style(
                        ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
                            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                    );
                spinner.enable_steady_tick(Duration::from_millis(120));
                spinner
            }
        };
        bar.set_message(phase.to_string());
        if let Some(previous) = self.current.replace(Some(bar)) {
            previous.finish_and_clear();
        }
    }

    fn advance(&self, done: u64) {
        if let Some(bar) = self.current.borrow().as_ref() {
            bar.set_position(done);
        }
    }

    fn finish(&self) {
        if let Some(bar) = self.current.take() {
            bar.finish_and_clear();
        }
    }
}
