//! `reseal inspect`, `reseal generalize` and `reseal reseal`: the image commands.
//!
//! Each runs the library's [`reseal::run`] calls on the target (a directory, one image of a WIM
//! file chosen with `--index`, or the Windows partition of a disk image ([`disk_formats`]), found
//! or chosen with `--partition`): an interrupted run is finished or rolled back first, `--index
//! all` runs on every image of a WIM (all written by one commit), `--output NEW.wim` edits a
//! copy, `--output-diff CHILD.vhdx` writes a disk image's changes into a new differencing disk.
//! Text goes to stdout for people; `--json` prints one JSON document instead.

use std::path::PathBuf;

use clap::Args;
use reseal::inspect::Inspection;
use reseal::{
    ApplyReport, GeneralizeOptions, Mode, OpenOptions, RecoveryOutcome, Rename, RunEvent,
    RunOptions, Sid,
};
use serde_json::json;

use crate::progress_bar::TerminalProgress;
use crate::run_log::{self, LoggedProgress, Verbosity};
use crate::CliError;

/// The disk image formats reseal reads and edits as a phrase: `raw, VHD, VHDX, VMDK or qcow2`.
pub fn disk_formats() -> String {
    let names: Vec<&str> = reseal::DiskFormat::ALL.iter().map(|f| f.name()).collect();
    match names.split_last() {
        Some((last, [])) => last.to_string(),
        Some((last, others)) => format!("{} or {last}", others.join(", ")),
        None => String::new(),
    }
}

/// The help of an IMAGE argument.
fn image_help() -> String {
    format!(
        "The image: a directory holding an offline Windows installation (the folder with \
         Windows\\System32\\config), a WIM file, or a disk image ({})",
        disk_formats()
    )
}

/// The image an image command works on: the path, and which image of a WIM or which partition
/// of a disk image. Declared once, flattened into each command.
#[derive(Args, Debug)]
pub struct ImageArgs {
    #[arg(help = image_help())]
    pub(crate) target: PathBuf,
    /// The image of a WIM file: its 1-based index, its name, or `all` (required when the WIM holds
    /// more than one image; not used for directories).
    #[arg(long, value_name = "N|NAME|all")]
    pub(crate) index: Option<String>,
    /// The partition of a disk image that holds Windows, 1-based (default: the only NTFS
    /// partition with Windows\System32\config\SYSTEM; not used for directories and WIM files).
    #[arg(long, value_name = "N")]
    pub(crate) partition: Option<u32>,
}

/// What a command does when another reseal run holds the image (a writer, for inspect and
/// verify, which only read). Declared once, flattened into every command that opens an image.
#[derive(Args, Debug)]
pub struct WaitArgs {
    /// When another reseal run holds the image, wait until it is done instead of exiting at once
    /// (exit code 6).
    #[arg(long)]
    pub(crate) wait: bool,
}

/// How generalize, reseal, set and newsid write: not at all, or somewhere else.
#[derive(Args, Debug)]
pub struct WriteArgs {
    #[command(flatten)]
    wait: WaitArgs,
    /// Print the plan and write nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Copy the WIM to this new file and edit the copy; the input is left untouched.
    #[arg(long, value_name = "NEW.wim")]
    output: Option<PathBuf>,
    /// Write the changes to a disk image into this new differencing disk (.vhdx for a VHDX, .vhd
    /// for a VHD, .vmdk for a VMDK, .qcow2 for a qcow2 overlay of any disk image) whose parent is
    /// the image; the image is left untouched.
    #[arg(long, value_name = "CHILD.vhdx", conflicts_with = "output")]
    output_diff: Option<PathBuf>,
}

/// The validation checks generalize and reseal run first. Declared once, flattened into both.
#[derive(Args, Debug)]
pub struct CheckArgs {
    /// Go on although the named validation check fails (repeatable). The check still runs and
    /// its failure is shown; a check left out with --operations -NAME is not run at all.
    #[arg(
        long = "ignore-check",
        value_name = "NAME",
        value_parser = clap::builder::PossibleValuesParser::new(reseal::validate::CHECKS)
    )]
    ignore_checks: Vec<String>,
    /// The providers and checks to run, as virt-sysprep takes them: NAME,NAME... runs only
    /// those, -NAME leaves one out (a list starting with -NAME starts from the defaults),
    /// `defaults` is the default set. `reseal list-operations` names them; setup-state and
    /// answer-file cannot be left out.
    #[arg(long, value_name = "NAME,-NAME,...", allow_hyphen_values = true)]
    operations: Vec<String>,
}

/// What makes generalize and reseal reproducible. Declared once, flattened into both; the time
/// comes from the `SOURCE_DATE_EPOCH` environment variable ([`source_date_epoch`]).
#[derive(Args, Debug)]
pub struct SeedArgs {
    /// Draw every random value (GUIDs) from this seed, so the same input and options give the
    /// same output bytes; with SOURCE_DATE_EPOCH in the environment every written time is that
    /// time (see docs/reproducible.md).
    #[arg(long, value_name = "N")]
    pub(crate) seed: Option<u64>,
}

/// The `SOURCE_DATE_EPOCH` environment variable, as reproducible-builds.org specifies it: whole
/// seconds since the Unix epoch, decimal digits only; unset or empty means none, and anything
/// else is refused rather than guessed.
pub fn source_date_epoch() -> Result<Option<u64>, CliError> {
    let Some(value) = std::env::var_os("SOURCE_DATE_EPOCH") else {
        return Ok(None);
    };
    let text = value.to_string_lossy();
    if text.is_empty() {
        return Ok(None);
    }
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(CliError::usage(format!(
            "SOURCE_DATE_EPOCH={text:?}: not a number of seconds since 1970-01-01 (decimal digits only)"
        )));
    }
    // The last second of the year 9999: later times are no build's, and Windows shows none.
    const LATEST: u64 = 253_402_300_799;
    match text.parse::<u64>() {
        Ok(seconds) if seconds <= LATEST => Ok(Some(seconds)),
        _ => Err(CliError::usage(format!(
            "SOURCE_DATE_EPOCH={text:?}: too large (after the year 9999)"
        ))),
    }
}

/// The computer description, declared once for generalize, reseal and set.
#[derive(Args, Debug)]
pub struct DescriptionArgs {
    /// The computer description (the Server service's comment, srvcomment), at most 48
    /// characters.
    #[arg(long, value_name = "TEXT")]
    description: Option<String>,
}

/// Where the next boot goes: OOBE (the default) or audit mode. Declared once, flattened into
/// generalize and verify (reseal declares its own pair, since it requires one of them).
#[derive(Args, Debug)]
pub struct ModeArgs {
    /// The next boot goes to OOBE (the default).
    #[arg(long, conflicts_with = "audit")]
    oobe: bool,
    /// The next boot goes to audit mode.
    #[arg(long)]
    audit: bool,
}

impl ModeArgs {
    /// The mode the flags choose.
    pub fn mode(&self) -> Mode {
        if self.audit {
            Mode::Audit
        } else {
            Mode::Oobe
        }
    }
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    #[command(flatten)]
    image: ImageArgs,
    #[command(flatten)]
    wait: WaitArgs,
}

#[derive(Args, Debug)]
pub struct GeneralizeArgs {
    #[command(flatten)]
    image: ImageArgs,
    #[command(flatten)]
    mode: ModeArgs,
    /// An answer file (unattend.xml) to merge into the one reseal writes for the next boot.
    #[arg(long, value_name = "FILE")]
    unattend: Option<PathBuf>,
    /// The computer name specialize gives the machine ("*" = random, the default).
    #[arg(long, value_name = "NAME", allow_hyphen_values = true)]
    computer_name: Option<String>,
    /// The new machine SID setupcl assigns at first boot (S-1-5-21-A-B-C; default: random).
    #[arg(long, value_name = "SID")]
    sid: Option<String>,
    /// Leave the licensing state alone (SkipRearm=1) instead of scheduling a rearm for first boot.
    #[arg(long)]
    skip_rearm: bool,
    /// Keep device installs (PersistAllDeviceInstalls).
    #[arg(long)]
    persist_devices: bool,
    /// Also give the image a new Cryptography MachineGuid.
    #[arg(long)]
    new_machine_guid: bool,
    #[command(flatten)]
    description: DescriptionArgs,
    #[command(flatten)]
    checks: CheckArgs,
    #[command(flatten)]
    seed: SeedArgs,
    #[command(flatten)]
    write: WriteArgs,
}

#[derive(Args, Debug)]
pub struct RecoverArgs {
    #[arg(help = image_help())]
    target: PathBuf,
    /// The partition that holds Windows, for a disk image with several (an interrupted run's
    /// redo log is finished whatever the partition).
    #[arg(long, value_name = "N")]
    partition: Option<u32>,
    #[command(flatten)]
    wait: WaitArgs,
}

#[derive(Args, Debug)]
pub struct ResealArgs {
    #[command(flatten)]
    image: ImageArgs,
    /// The next boot goes to OOBE.
    #[arg(long, conflicts_with = "audit", required_unless_present = "audit")]
    oobe: bool,
    /// The next boot goes to audit mode.
    #[arg(long)]
    audit: bool,
    /// Rename the machine now (no specialize follows a reseal): the computer name in every
    /// registry value that holds it, as `reseal set` does.
    #[arg(long, value_name = "NAME", allow_hyphen_values = true)]
    computer_name: Option<String>,
    #[command(flatten)]
    description: DescriptionArgs,
    #[command(flatten)]
    checks: CheckArgs,
    #[command(flatten)]
    seed: SeedArgs,
    #[command(flatten)]
    write: WriteArgs,
}

#[derive(Args, Debug)]
pub struct SetArgs {
    #[command(flatten)]
    image: ImageArgs,
    /// The new computer name: 1 to 15 letters, digits or '-', not starting or ending with '-',
    /// not all digits (the NetBIOS name and DNS host label at once).
    #[arg(long, value_name = "NAME", required = true, allow_hyphen_values = true)]
    computer_name: String,
    #[command(flatten)]
    description: DescriptionArgs,
    #[command(flatten)]
    write: WriteArgs,
    #[command(flatten)]
    seed: SeedArgs,
}

pub(crate) fn recovery_text(outcome: &RecoveryOutcome) -> String {
    match outcome {
        RecoveryOutcome::RolledForward { files } => format!(
            "an interrupted run was finished ({} files written or deleted from its journal)",
            files.len()
        ),
        RecoveryOutcome::RolledBack => {
            "an interrupted run had not started changing the image; its journal was discarded"
                .to_string()
        }
        RecoveryOutcome::LeftoverRemoved => {
            "an interrupted run left an empty journal behind; it was removed".to_string()
        }
    }
}

/// `reseal recover TARGET`: finish or roll back an interrupted run, and nothing else.
pub fn recover(args: RecoverArgs, as_json: bool) -> Result<(), CliError> {
    if reseal::is_wim_file(&args.target) {
        // Opening it checks it is a WIM reseal can read.
        reseal::WimTarget::list_images(&args.target)?;
        let why = "a WIM is committed by rewriting its header last, so an interrupted run leaves \
                   it as it was";
        if as_json {
            outln!(
                "{}",
                serde_json::to_string_pretty(&json!({ "recovered": null, "reason": why }))
                    .unwrap_or_default()
            );
        } else {
            outln!("nothing to recover in {}: {why}", args.target.display());
        }
        return Ok(());
    }
    let options = OpenOptions {
        partition: args.partition,
        wait: args.wait.wait,
        ..OpenOptions::default()
    };
    let mut target = reseal::open_target_with(&args.target, &options)?;
    let outcome = reseal::recover(target.as_mut())?;
    run_log::record(match &outcome {
        Some(outcome) => recovery_text(outcome),
        None => "nothing to recover".to_string(),
    });
    if as_json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&json!({ "recovered": outcome })).unwrap_or_default()
        );
    } else {
        match &outcome {
            Some(outcome) => outln!("{}", recovery_text(outcome)),
            None => outln!(
                "nothing to recover: no interrupted run in {}",
                args.target.display()
            ),
        }
    }
    Ok(())
}

pub fn inspect(args: InspectArgs, as_json: bool) -> Result<(), CliError> {
    let wait = args.wait.wait;
    let args = args.image;
    let options = OpenOptions {
        index: args.index.as_deref(),
        partition: args.partition,
        wait,
        ..OpenOptions::default()
    };
    let several = is_all(args.index.as_deref());
    let mut output = Output::new(as_json, several);
    // A hive that could not be read leaves the report incomplete: it is printed, then the run
    // fails with that hive's error (exit 4 for a damaged one).
    let mut unreadable: Option<(String, reseal::Error)> = None;
    reseal::inspect_images(&args.target, &options, &mut |event| match event {
        RunEvent::Inspected { target, inspection } => {
            if unreadable.is_none() {
                unreadable = inspection.unreadable().map(|e| (target.clone(), e));
            }
            let document = if several {
                json!({ "target": target, "inspection": inspection })
            } else {
                serde_json::to_value(&inspection).unwrap_or_default()
            };
            output.image(&target, document, || inspection_text(&inspection))
        }
        other => output.event(other),
    })?;
    output.finish();
    match unreadable {
        Some((target, error)) => {
            let mut error = CliError::from(error);
            error.message = format!("{target}: {}", error.message);
            Err(error)
        }
        None => Ok(()),
    }
}

/// `true` when `--index all` asks for every image.
pub(crate) fn is_all(index: Option<&str>) -> bool {
    index.is_some_and(|index| index.eq_ignore_ascii_case(reseal::run::ALL_IMAGES))
}

/// Prints each image's result as it comes: text at once, or one JSON document at the end (an
/// array when every image was asked for).
pub(crate) struct Output {
    as_json: bool,
    several: bool,
    images: usize,
    documents: Vec<serde_json::Value>,
}

impl Output {
    pub(crate) fn new(as_json: bool, several: bool) -> Output {
        Output {
            as_json,
            several,
            images: 0,
            documents: Vec::new(),
        }
    }

    /// One image's result: `document` for JSON (`{target, ...}` when several), `text` else.
    pub(crate) fn image(
        &mut self,
        target: &str,
        document: serde_json::Value,
        text: impl FnOnce() -> String,
    ) {
        if self.as_json {
            self.documents.push(document);
        } else {
            if self.several {
                if self.images > 0 {
                    outln!();
                }
                outln!("== {target} ==");
            }
            out!("{}", text());
        }
        self.images += 1;
    }

    /// An event that is not an image's result: recovery is told on stderr.
    fn event(&mut self, event: RunEvent) {
        if let RunEvent::Recovered { outcome, .. } = event {
            let text = recovery_text(&outcome);
            if run_log::verbosity() == Verbosity::Normal {
                eprintln!("reseal: {text}");
            }
            run_log::record(text);
        }
    }

    /// Prints the JSON document of a run that succeeded.
    pub(crate) fn finish(&mut self) {
        if !self.as_json {
            return;
        }
        let document = if self.several {
            serde_json::Value::Array(std::mem::take(&mut self.documents))
        } else {
            self.documents.pop().unwrap_or_default()
        };
        outln!(
            "{}",
            serde_json::to_string_pretty(&document).unwrap_or_default()
        );
    }
}

/// The `--sid` value: a machine SID `S-1-5-21-A-B-C`, or a usage error naming it.
pub(crate) fn parse_sid(text: Option<&str>) -> Result<Option<Sid>, CliError> {
    text.map(|text| {
        Sid::parse_machine_sid(text).map_err(|e| CliError::usage(format!("--sid {text}: {e}")))
    })
    .transpose()
}

pub fn generalize(args: GeneralizeArgs, as_json: bool) -> Result<(), CliError> {
    let sid = parse_sid(args.sid.as_deref())?;
    let options = GeneralizeOptions {
        generalize: true,
        mode: args.mode.mode(),
        unattend: args.unattend,
        computer_name: args.computer_name,
        sid,
        skip_rearm: args.skip_rearm,
        persist_devices: args.persist_devices,
        new_machine_guid: args.new_machine_guid,
        description: args.description.description,
        dry_run: args.write.dry_run,
        ignore_checks: args.checks.ignore_checks,
        operations: crate::operations_cmd::parse(&args.checks.operations, true)?,
        seed: args.seed.seed,
        source_date_epoch: source_date_epoch()?,
    };
    run_log::record(reseal::run_record::options_line(&options));
    generalize_run(&args.image, &args.write, as_json, &options)
}

pub fn reseal(args: ResealArgs, as_json: bool) -> Result<(), CliError> {
    // Without generalize, the description is written by the rename, which needs the name.
    if args.description.description.is_some() && args.computer_name.is_none() {
        return Err(CliError::usage(
            "--description on reseal goes with --computer-name (the rename writes both); \
             to change only the description, give the current name too",
        ));
    }
    let options = GeneralizeOptions {
        generalize: false,
        mode: if args.audit { Mode::Audit } else { Mode::Oobe },
        computer_name: args.computer_name,
        description: args.description.description,
        dry_run: args.write.dry_run,
        ignore_checks: args.checks.ignore_checks,
        operations: crate::operations_cmd::parse(&args.checks.operations, false)?,
        seed: args.seed.seed,
        source_date_epoch: source_date_epoch()?,
        ..GeneralizeOptions::default()
    };
    run_log::record(reseal::run_record::options_line(&options));
    generalize_run(&args.image, &args.write, as_json, &options)
}

/// `reseal set IMAGE --computer-name NAME`: rename the machine in place, nothing else.
pub fn set(args: SetArgs, as_json: bool) -> Result<(), CliError> {
    let rename = Rename {
        computer_name: args.computer_name,
        description: args.description.description,
        dry_run: args.write.dry_run,
        seed: args.seed.seed,
        source_date_epoch: source_date_epoch()?,
    };
    run_log::record(reseal::run_record::options_line(&rename));
    run(
        &args.image,
        &args.write,
        as_json,
        &mut |path, run, progress, each| reseal::rename_images(path, run, &rename, progress, each),
    )
}

/// Runs generalize or reseal (by `options`) through [`run`].
fn generalize_run(
    image: &ImageArgs,
    write: &WriteArgs,
    as_json: bool,
    options: &GeneralizeOptions,
) -> Result<(), CliError> {
    run(image, write, as_json, &mut |path, run, progress, each| {
        reseal::generalize_images(path, run, options, &[], progress, each)
    })
}

/// A library run over every selected image of an image file, reporting each image.
type ImageRun<'a> = dyn FnMut(
        &std::path::Path,
        &RunOptions,
        &dyn reseal::Progress,
        &mut dyn FnMut(RunEvent),
    ) -> reseal::Result<()>
    + 'a;

/// Runs generalize, reseal, set or newsid on the target, or on a copy of it at `--output`,
/// printing each image's plan and outcome.
pub(crate) fn run(
    image: &ImageArgs,
    write: &WriteArgs,
    as_json: bool,
    library_run: &mut ImageRun,
) -> Result<(), CliError> {
    let run = RunOptions {
        open: OpenOptions {
            index: image.index.as_deref(),
            partition: image.partition,
            output_diff: write.output_diff.as_deref(),
            wait: write.wait.wait,
            ..OpenOptions::default()
        },
        output: write.output.as_deref(),
    };
    run_log::record(format!("image: {}", image.target.display()));
    let bar = TerminalProgress::for_stderr().filter(|_| run_log::verbosity() != Verbosity::Quiet);
    let progress = LoggedProgress::new(match &bar {
        Some(bar) => bar,
        None => &reseal::NoProgress,
    });
    let several = is_all(image.index.as_deref());
    let mut output = Output::new(as_json, several);
    let dry_run = write.dry_run;
    library_run(&image.target, &run, &progress, &mut |event| match event {
        RunEvent::Generalized {
            target,
            plan,
            applied,
        } => {
            log_plan(&target, &plan, applied.as_ref());
            let document = json!({
                "target": target,
                "dry_run": dry_run,
                "plan": plan,
                "applied": applied,
            });
            output.image(&target, document, || {
                let outcome = match &applied {
                    Some(report) => apply_text(report),
                    None => "dry run: nothing was written".to_string(),
                };
                format!("{plan}\n{outcome}\n")
            })
        }
        other => output.event(other),
    })?;
    output.finish();
    Ok(())
}

/// Records what a run on `target` checked, planned and wrote.
pub(crate) fn log_plan(target: &str, plan: &reseal::Plan, applied: Option<&ApplyReport>) {
    run_log::record(format!("target: {target}"));
    for outcome in &plan.checks {
        match &outcome.ignored_failure {
            None => run_log::record(format!("check {}: passed", outcome.check)),
            Some(reason) => run_log::record(format!(
                "check {}: failed, ignored: {reason}",
                outcome.check
            )),
        }
    }
    run_log::record(format!("operations run: {}", plan.operations.join(", ")));
    for change in &plan.changes {
        run_log::record(change.log_line());
    }
    for note in &plan.notes {
        run_log::record(note.log_line());
    }
    match applied {
        Some(report) => run_log::record(apply_text(report)),
        None => run_log::record("dry run: nothing was written"),
    }
}

fn inspection_text(i: &Inspection) -> String {
    fn show<T: std::fmt::Display>(value: &Option<T>) -> String {
        value.as_ref().map_or_else(|| "-".to_string(), T::to_string)
    }
    let w = &i.windows;
    let mut lines = vec![
        ("product", show(&w.product_name)),
        ("edition", show(&w.edition_id)),
        ("build", show(&w.build)),
        ("version", show(&w.version)),
        ("architecture", show(&w.architecture)),
        ("computer name", show(&i.computer_name)),
        ("machine SID", show(&i.machine_sid)),
        ("image state", show(&i.image_state)),
        ("setup CmdLine", show(&i.setup.cmd_line)),
        ("setup SetupType", show(&i.setup.setup_type)),
        (
            "setup SystemSetupInProgress",
            show(&i.setup.system_setup_in_progress),
        ),
        ("setup OOBEInProgress", show(&i.setup.oobe_in_progress)),
        ("setup SetupPhase", show(&i.setup.setup_phase)),
        ("SID request pending", i.sid_request_pending.to_string()),
        ("SkipRearm", show(&i.skip_rearm)),
        ("domain joined", i.domain_joined.to_string()),
        ("last logged-on user", show(&i.last_logged_on_user)),
        ("event log records", show(&i.event_log_records)),
        ("interrupted run", i.interrupted_run.to_string()),
        (
            "cloud agents",
            if i.cloud_agents.is_empty() {
                "-".to_string()
            } else {
                i.cloud_agents.join(", ")
            },
        ),
    ];
    if let Some(disk) = &i.disk {
        lines.push(("disk format", disk.format.clone()));
        for layer in &disk.chain {
            lines.push((
                "disk file",
                format!(
                    "{} {} ({} bytes)",
                    layer.format, layer.file, layer.virtual_size
                ),
            ));
        }
    }
    for hive in &i.hives {
        let state = match (&hive.error, hive.present, hive.was_dirty, hive.recovered) {
            (Some(error), _, _, _) => format!("unreadable: {error}"),
            (None, false, _, _) => "absent".to_string(),
            (None, true, Some(true), Some(true)) => "dirty, recovered from its logs".to_string(),
            (None, true, Some(true), _) => "dirty, NOT recoverable from its logs".to_string(),
            _ => "clean".to_string(),
        };
        lines.push(("hive", format!("{}: {state}", hive.path)));
    }
    for provider in &i.external_providers {
        let call = match &provider.entry_point {
            Some(entry) => format!("{}!{entry}", provider.dll),
            None => provider.dll.clone(),
        };
        lines.push((
            "Sysprep provider",
            format!("{}: {call} (value {})", provider.pass, provider.value),
        ));
    }
    let width = lines.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let mut text: String = lines
        .iter()
        .map(|(k, v)| format!("{k:width$}  {v}\n"))
        .collect();
    text.push_str(&format!("\nactivation: {}\n", i.activation_note));
    text
}

pub(crate) fn apply_text(report: &ApplyReport) -> String {
    format!(
        "applied: {} hives committed, {} files written, {} files and {} directories deleted",
        report.hives_written.len(),
        report.files_written.len(),
        report.files_deleted.len(),
        report.directories_deleted.len()
    )
}
