//! `reseal newsid`: gives the image a new machine SID in place, without generalize or OOBE
//! (the library's [`reseal::newsid_images`]), and optionally a new computer name in the same
//! commit. An interrupted earlier run is finished or rolled back first; `--dry-run` prints the
//! plan and writes nothing; `--index all` gives every image of a WIM its own SID by one commit.

use clap::Args;
use reseal::NewSidOptions;

use crate::image_cmd::{parse_sid, run, source_date_epoch, ImageArgs, SeedArgs, WriteArgs};
use crate::run_log;
use crate::CliError;

#[derive(Args, Debug)]
pub struct NewSidArgs {
    #[command(flatten)]
    image: ImageArgs,
    /// The new machine SID (S-1-5-21-A-B-C), given to every selected image. Default: a random
    /// one for each image (with --index all, each image its own), or drawn from --seed.
    #[arg(long, value_name = "SID", conflicts_with = "seed")]
    sid: Option<String>,
    /// Also rename the machine, in the same plan and commit as the new SID (as `reseal set`
    /// does): 1 to 15 letters, digits or '-', not starting or ending with '-', not all digits.
    #[arg(long, value_name = "NAME")]
    computer_name: Option<String>,
    #[command(flatten)]
    seed: SeedArgs,
    #[command(flatten)]
    write: WriteArgs,
}

pub fn newsid(args: NewSidArgs, as_json: bool) -> Result<(), CliError> {
    let sid = parse_sid(args.sid.as_deref())?;
    let options = NewSidOptions {
        sid,
        dry_run: args.write.dry_run,
        seed: args.seed.seed,
        source_date_epoch: source_date_epoch()?,
        computer_name: args.computer_name,
    };
    run_log::record(reseal::run_record::options_line(&options));
    run(
        &args.image,
        &args.write,
        as_json,
        &mut |path, run, progress, each| reseal::newsid_images(path, run, &options, progress, each),
    )
}
