//! `newsid`: gives an installed image its own machine SID offline, without generalize, specialize
//! or OOBE. The account-domain SID is replaced wherever the image keeps it (docs/newsid.md): in
//! every hive (machine hives and the users' hives found through the profile list: values, value
//! names and key names) and in the file system's security descriptors (through the target).
//! One [`Plan`], applied all-or-nothing as generalize's is; the setup state is not touched.
//! Given a computer name, the same plan renames the machine as [`crate::rename`] does, so the
//! new SID and the new name reach the image by one commit.

mod files;
mod hives;
mod refusals;

use std::collections::BTreeMap;

use reseal_hive::Hive;
use reseal_nt::domain_swap::DomainSwap;
use reseal_nt::Sid;

pub use files::{swapped_text_file, TASKS_DIR};
pub use hives::swapped_data;
pub use refusals::{EFS_CURRENT_KEYS, POLICY_ACCOUNT_DOMAIN, SAM_ACCOUNT_DOMAIN};

use crate::apply::{apply_with_hives, ApplyReport};
use crate::error::{Error, Input, Result};
use crate::image::{join_path, Image, MACHINE_HIVES};
use crate::options::Rename;
use crate::plan::{Origin, Plan};
use crate::progress::{in_phase, NoProgress, Progress};
use crate::providers::computer_name::{validate_concrete_computer_name, SetComputerName};
use crate::providers::{PlanContext, Provider};
use crate::targets::{split_parent, Target};

/// The provider name every newsid change carries.
pub const PROVIDER: &str = "newsid";
/// Sources: the sections of docs/newsid.md that give each kind of change its evidence.
const SOURCE_VALUE_DATA: &str = "docs/newsid.md: value data";
const SOURCE_VALUE_NAMES: &str = "docs/newsid.md: value names";
const SOURCE_KEY_NAMES: &str = "docs/newsid.md: key names";
const SOURCE_KEY_SECURITY: &str = "docs/newsid.md: key security";
const SOURCE_FILE_SECURITY: &str = "docs/newsid.md: file security";
const SOURCE_FILES: &str = "docs/newsid.md: files";
/// A user's class hive, below the profile folder.
const USER_CLASSES: &str = r"AppData\Local\Microsoft\Windows\UsrClass.dat";

/// What `newsid` does.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct NewSidOptions {
    /// The new machine SID (`S-1-5-21-A-B-C`); a random one when `None`.
    pub sid: Option<Sid>,
    /// Plan only; write nothing.
    pub dry_run: bool,
    /// Draw the random SID from this seed instead of the operating system, so the same input
    /// and options give the same output (docs/reproducible.md).
    pub seed: Option<u64>,
    /// Stamp every time the run writes with this many seconds after the Unix epoch instead of
    /// the clock's, as `SOURCE_DATE_EPOCH` asks.
    pub source_date_epoch: Option<u64>,
    /// Also rename the machine to this computer name, in the same plan
    /// (`providers::computer_name::SetComputerName`, as [`crate::rename`]).
    pub computer_name: Option<String>,
}

/// Plans the new machine SID and, unless `options.dry_run`, applies the plan.
pub fn newsid(
    target: &mut dyn Target,
    options: &NewSidOptions,
) -> Result<(Plan, Option<ApplyReport>)> {
    newsid_with_progress(target, options, &NoProgress)
}

/// [`newsid`], reporting its phases to `progress`.
pub fn newsid_with_progress(
    target: &mut dyn Target,
    options: &NewSidOptions,
    progress: &dyn Progress,
) -> Result<(Plan, Option<ApplyReport>)> {
    newsid_drawing_from(target, options, None, progress)
}

/// [`newsid_with_progress`], drawing the random SID (when `options.sid` is `None`) from
/// `sids` when given instead of the run's own source: [`crate::run::newsid_images`] gives
/// every image of a WIM a SID of its own from one seeded source.
pub(crate) fn newsid_drawing_from(
    target: &mut dyn Target,
    options: &NewSidOptions,
    sids: Option<&reseal_nt::Entropy>,
    progress: &dyn Progress,
) -> Result<(Plan, Option<ApplyReport>)> {
    let image = target.describe();
    let (plan, hives) = in_phase(progress, "reading the image and planning", || {
        plan_keeping_hives(target, options, sids)
    })
    .map_err(|e| e.naming_image(&image, None))?;
    if options.dry_run {
        return Ok((plan, None));
    }
    let report = apply_with_hives(target, &plan, Some(hives), progress)
        .map_err(|e| e.naming_image(&image, None))?;
    Ok((plan, Some(report)))
}

/// The plan [`newsid`] would apply. Never writes.
pub fn plan_newsid(target: &mut dyn Target, options: &NewSidOptions) -> Result<Plan> {
    plan_keeping_hives(target, options, None).map(|(plan, _)| plan)
}

/// The plan, with the hives it loaded and edited as planned (by canonical path). A random SID
/// is drawn from `sids`, or from the run's own source when `None`.
fn plan_keeping_hives(
    target: &mut dyn Target,
    options: &NewSidOptions,
    sids: Option<&reseal_nt::Entropy>,
) -> Result<(Plan, BTreeMap<String, Hive>)> {
    if let Some(name) = &options.computer_name {
        validate_concrete_computer_name(name.trim())?;
    }
    if let Some(sid) = &options.sid {
        if !sid.is_machine_domain_sid() {
            return Err(Error::bad_value(
                Input::Sid,
                sid,
                "not a machine SID: it must be S-1-5-21-A-B-C",
            ));
        }
    }
    if target.has_interrupted_run()? {
        return Err(Error::interrupted_run(&target.describe()));
    }
    target.prepare_for_writes()?;
    let fixed_time = options
        .source_date_epoch
        .map(|seconds| reseal_nt::FileTime::from_unix(seconds, 0));
    let entropy = reseal_nt::Entropy::new(options.seed, fixed_time);
    // The SID's source is split off first, as `run::newsid_images` splits it (`sid_source`):
    // image 1 of a WIM gets the SID a run on it alone draws.
    let own_sids = sid_source(&entropy);
    target.set_entropy(entropy.split());
    let mut image = Image::new(target);
    image.set_fixed_time(fixed_time);
    let mut plan = Plan::new();
    let user_hives = image.user_hives()?;
    let old = refusals::account_domain_sid(&mut image, &user_hives)?;
    let new = match &options.sid {
        Some(sid) => sid.clone(),
        None => random_sid_like(&old, sids.unwrap_or(&own_sids))?,
    };
    let swap = DomainSwap::new(&old, &new)
        .map_err(|e| Error::bad_value(Input::Sid, &new, e.to_string()))?;
    if swap.is_identity() {
        plan.note(PROVIDER, format!("the machine SID is already {new}"));
    } else {
        plan_swap(&mut image, &mut plan, &user_hives, &swap)?;
    }
    if let Some(name) = &options.computer_name {
        plan_rename(&mut image, &mut plan, &entropy, name)?;
    }
    let record = crate::run_record::RunRecord::new("newsid", options);
    crate::run_record::plan_record(&mut image, &mut plan, &record, entropy.now())?;
    Ok((plan, image.into_hives()))
}

/// Plans `swap` in every hive and in the file system's security descriptors.
fn plan_swap(
    image: &mut Image,
    plan: &mut Plan,
    user_hives: &[String],
    swap: &DomainSwap,
) -> Result<()> {
    let (old, new) = (swap.old(), swap.new_sid());
    let origins = hives::Origins {
        security: origin(SOURCE_KEY_SECURITY),
        data: origin(SOURCE_VALUE_DATA),
        names: origin(SOURCE_VALUE_NAMES),
        keys: origin(SOURCE_KEY_NAMES),
    };
    for hive in hives_to_scan(image, user_hives)? {
        hives::plan_hive(image, plan, &origins, &hive, swap)?;
    }
    files::plan_task_files(image, plan, origin(SOURCE_FILES), swap)?;
    match image.target().scan_file_security(swap) {
        Ok(found) => plan.swap_file_security(origin(SOURCE_FILE_SECURITY), old, new, found),
        Err(e) if e.is_unsupported() => plan.note(
            PROVIDER,
            format!(
                "the file security descriptors were left as they are ({}): files owned by or \
                 granted to a local account keep naming {old}",
                e.message
            ),
        ),
        Err(e) => return Err(e),
    }
    plan.note(
        PROVIDER,
        format!(
            "the machine SID changes from {old} to {new}; what local accounts protected with \
             DPAPI (saved credentials, browser passwords, certificates' private keys) can no \
             longer be read, as after NewSID"
        ),
    );
    Ok(())
}

/// Plans the rename to `name` as [`crate::rename`] does, after the SID's changes.
fn plan_rename(
    image: &mut Image,
    plan: &mut Plan,
    entropy: &reseal_nt::Entropy,
    name: &str,
) -> Result<()> {
    let rename = Rename {
        computer_name: name.to_string(),
        ..Rename::default()
    };
    let options = rename.as_options();
    let provider = SetComputerName {
        name: name.to_string(),
        description: None,
    };
    let mut ctx = PlanContext::new(image, &options, None, entropy, plan, provider.name());
    provider.plan(&mut ctx).map_err(|e| Error {
        message: format!("{}: {}", provider.name(), e.message),
        ..e
    })
}

/// Where a run's random machine SIDs are drawn from: the first split of the run's source, so
/// the SID does not depend on what else the run draws.
pub(crate) fn sid_source(run: &reseal_nt::Entropy) -> reseal_nt::Entropy {
    run.split()
}

/// How many random SIDs are drawn, at most, looking for one whose text is as long as the old.
const RANDOM_DRAWS: usize = 10_000;

/// A random machine SID whose numbers have as many digits as `old`'s, so that its text can
/// replace the old one's where it stands among binary data (docs/newsid.md: value data); the
/// last one drawn when none does within [`RANDOM_DRAWS`] (such values keep the old SID, which
/// the plan says in a note).
fn random_sid_like(old: &Sid, entropy: &reseal_nt::Entropy) -> Result<Sid> {
    let mut drawn = None;
    for _ in 0..RANDOM_DRAWS {
        let sid = Sid::random_machine_sid_from(entropy)
            .map_err(|e| Error::other(None, format!("cannot make a random machine SID: {e}")))?;
        let keeps_length = DomainSwap::new(old, &sid).is_ok_and(|swap| swap.text_keeps_length());
        drawn = Some(sid);
        if keeps_length {
            break;
        }
    }
    drawn.ok_or_else(|| Error::other(None, "cannot make a random machine SID"))
}

/// Every change of newsid carries this origin's provider.
fn origin(source: &'static str) -> Origin {
    Origin {
        provider: PROVIDER,
        source,
    }
}

/// The hives to scan: the machine hives, then each user's NTUSER.DAT and UsrClass.dat.
fn hives_to_scan(image: &mut Image, user_hives: &[String]) -> Result<Vec<String>> {
    let mut hives: Vec<String> = MACHINE_HIVES.iter().map(|h| h.to_string()).collect();
    for user_hive in user_hives {
        hives.push(user_hive.clone());
        let (profile, _) = split_parent(user_hive);
        let classes = join_path(&profile, USER_CLASSES);
        if image.exists(&classes)? {
            hives.push(classes);
        }
    }
    Ok(hives)
}
