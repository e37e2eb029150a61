//! `reseal verify`: whether an image is armed the way Sysprep leaves it, without changing it.
//!
//! Text: one line per check (`ok` or `FAIL`, its name, what was found), then the verdict. With
//! `--json`, the library's report. Exit code 0 when armed for the mode asked for, 5 when not.

use clap::Args;
use reseal::{Mode, OpenOptions, Verdict, VerifyReport};

use crate::image_cmd::{ImageArgs, ModeArgs};
use crate::run_log;
use crate::CliError;

#[derive(Args, Debug)]
pub struct VerifyArgs {
    #[command(flatten)]
    image: ImageArgs,
    #[command(flatten)]
    mode: ModeArgs,
}

pub fn verify(args: VerifyArgs, as_json: bool) -> Result<(), CliError> {
    let mode = args.mode.mode();
    let options = OpenOptions {
        index: args.image.index.as_deref(),
        partition: args.image.partition,
        // Verify only reads: other readers may hold the image too, never a writer.
        lock: reseal::LockMode::Shared,
        ..OpenOptions::default()
    };
    let mut target = reseal::open_target_with(&args.image.target, &options)?;
    let report = reseal::verify::verify(target.as_mut(), mode)?;
    run_log::record(report_text(&report));
    if as_json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    } else {
        out!("{}", report_text(&report));
    }
    if report.armed() {
        Ok(())
    } else {
        Err(CliError::not_armed(format!(
            "{}: {}",
            args.image.target.display(),
            verdict_text(&report)
        )))
    }
}

fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Oobe => "OOBE",
        Mode::Audit => "audit mode",
    }
}

fn verdict_text(report: &VerifyReport) -> String {
    let failed = report.failures().count();
    let asked = mode_name(report.mode);
    match report.verdict {
        Verdict::Armed => format!("armed for {asked}"),
        Verdict::ArmedForOtherMode => format!("armed for the other mode, not {asked}"),
        Verdict::HalfArmed => format!("half-armed: {failed} check(s) failed"),
        Verdict::NotArmed => "not armed: the next boot is a normal boot".to_string(),
    }
}

fn report_text(report: &VerifyReport) -> String {
    let mut text = String::new();
    for check in &report.checks {
        let status = if check.passed { "ok  " } else { "FAIL" };
        text.push_str(&format!("{status} {}: {}\n", check.name, check.detail));
    }
    text.push_str(&format!("{}\n", verdict_text(report)));
    text
}
