//! `reseal newsid`: gives the image a new machine SID in place, without generalize or OOBE
//! (the library's [`reseal::newsid`]). An interrupted earlier run is finished or rolled back
//! first; `--dry-run` prints the plan and writes nothing.

use clap::Args;
use reseal::{NewSidOptions, OpenOptions};
use serde_json::json;

use crate::image_cmd::{
    apply_text, log_plan, parse_sid, recovery_text, source_date_epoch, ImageArgs, SeedArgs,
    WaitArgs,
};
use crate::progress_bar::TerminalProgress;
use crate::run_log::{self, LoggedProgress, Verbosity};
use crate::CliError;

#[derive(Args, Debug)]
pub struct NewSidArgs {
    #[command(flatten)]
    image: ImageArgs,
    /// The new machine SID (S-1-5-21-A-B-C; default: random, or drawn from --seed).
    #[arg(long, value_name = "SID", conflicts_with = "seed")]
    sid: Option<String>,
    #[command(flatten)]
    seed: SeedArgs,
    /// Print the plan and write nothing.
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    wait: WaitArgs,
}

pub fn newsid(args: NewSidArgs, as_json: bool) -> Result<(), CliError> {
    let sid = parse_sid(args.sid.as_deref())?;
    let options = NewSidOptions {
        sid,
        dry_run: args.dry_run,
        seed: args.seed.seed,
        source_date_epoch: source_date_epoch()?,
    };
    run_log::record(format!("image: {}", args.image.target.display()));
    run_log::record(reseal::run_record::options_line(&options));
    let open = OpenOptions {
        index: args.image.index.as_deref(),
        partition: args.image.partition,
        wait: args.wait.wait,
        ..OpenOptions::default()
    };
    let mut target = reseal::open_target_with(&args.image.target, &open)?;
    if let Some(outcome) = reseal::recover(target.as_mut())? {
        let text = recovery_text(&outcome);
        if run_log::verbosity() == Verbosity::Normal {
            eprintln!("reseal: {text}");
        }
        run_log::record(text);
    }
    let bar = TerminalProgress::for_stderr().filter(|_| run_log::verbosity() != Verbosity::Quiet);
    let progress = LoggedProgress::new(match &bar {
        Some(bar) => bar,
        None => &reseal::NoProgress,
    });
    let (plan, applied) =
        reseal::newsid::newsid_with_progress(target.as_mut(), &options, &progress)?;
    log_plan(&target.describe(), &plan, applied.as_ref());
    if as_json {
        let document = json!({
            "target": target.describe(),
            "dry_run": options.dry_run,
            "plan": plan,
            "applied": applied,
        });
        outln!(
            "{}",
            serde_json::to_string_pretty(&document).unwrap_or_default()
        );
    } else if run_log::verbosity() != Verbosity::Quiet {
        let outcome = match &applied {
            Some(report) => apply_text(report),
            None => "dry run: nothing was written".to_string(),
        };
        out!("{plan}\n{outcome}\n");
    }
    Ok(())
}
