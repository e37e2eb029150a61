//! `reseal verify`: whether an image is armed the way Sysprep leaves it, without changing it.
//!
//! Text: one line per check (`ok` or `FAIL`, its name, what was found), then the verdict. With
//! `--json`, the library's report (with `--index all`, an array of `{target, report}`). Exit
//! code 0 when every image is armed for the mode asked for, 5 when one is not.

use clap::Args;
use reseal::{Mode, OpenOptions, Verdict, VerifyReport};
use serde_json::json;

use crate::image_cmd::{is_all, ImageArgs, ModeArgs, Output, WaitArgs};
use crate::run_log;
use crate::CliError;

#[derive(Args, Debug)]
pub struct VerifyArgs {
    #[command(flatten)]
    image: ImageArgs,
    #[command(flatten)]
    mode: ModeArgs,
    #[command(flatten)]
    wait: WaitArgs,
}

pub fn verify(args: VerifyArgs, as_json: bool) -> Result<(), CliError> {
    let mode = args.mode.mode();
    let path = &args.image.target;
    let several = is_all(args.image.index.as_deref());
    let mut output = Output::new(as_json, several);
    let mut not_armed = Vec::new();
    // `all`: each image of the WIM in turn, as inspect reports them, listed and read under one
    // shared lock so that no writer changes the file between them (each open takes its own
    // shared lock beside it).
    let _held = reseal::ImageLock::acquire(path, reseal::LockMode::Shared, args.wait.wait)?;
    for index in reseal::run::selected_images(path, args.image.index.as_deref())? {
        let options = OpenOptions {
            index: index.as_deref(),
            partition: args.image.partition,
            // Verify only reads: other readers may hold the image too, never a writer.
            lock: reseal::LockMode::Shared,
            wait: args.wait.wait,
            ..OpenOptions::default()
        };
        let mut target = reseal::open_target_with(path, &options)?;
        let report = reseal::verify::verify(target.as_mut(), mode)?;
        let described = target.describe();
        run_log::record(report_text(&report));
        let document = if several {
            json!({ "target": described, "report": report })
        } else {
            serde_json::to_value(&report).unwrap_or_default()
        };
        output.image(&described, document, || report_text(&report));
        if !report.armed() {
            let image = if several {
                described
            } else {
                path.display().to_string()
            };
            not_armed.push(format!("{image}: {}", verdict_text(&report)));
        }
    }
    output.finish();
    if not_armed.is_empty() {
        Ok(())
    } else {
        Err(CliError::not_armed(not_armed.join("\n")))
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
