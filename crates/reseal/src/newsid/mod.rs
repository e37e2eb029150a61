//! `newsid`: gives an installed image its own machine SID offline, without generalize, specialize
//! or OOBE. The account-domain SID is replaced wherever the image keeps it (docs/newsid.md): in
//! every hive (machine hives and the users' hives found through the profile list: values, value
//! names and key names) and in the file system's security descriptors (through the target).
//! One [`Plan`], applied all-or-nothing as generalize's is; the setup state is not touched.

mod hives;
mod refusals;

use std::collections::BTreeMap;

use reseal_hive::Hive;
use reseal_nt::domain_swap::DomainSwap;
use reseal_nt::Sid;

pub use hives::swapped_data;
pub use refusals::{EFS_CURRENT_KEYS, POLICY_ACCOUNT_DOMAIN, SAM_ACCOUNT_DOMAIN};

use crate::apply::{apply_with_hives, ApplyReport};
use crate::error::{Error, Input, Result};
use crate::image::{join_path, Image, MACHINE_HIVES};
use crate::plan::{Origin, Plan};
use crate::progress::{in_phase, NoProgress, Progress};
use crate::targets::{split_parent, Target};

/// The provider name every newsid change carries.
pub const PROVIDER: &str = "newsid";
/// Sources: the sections of docs/newsid.md that give each kind of change its evidence.
const SOURCE_VALUE_DATA: &str = "docs/newsid.md: value data";
const SOURCE_VALUE_NAMES: &str = "docs/newsid.md: value names";
const SOURCE_KEY_NAMES: &str = "docs/newsid.md: key names";
const SOURCE_FILE_SECURITY: &str = "docs/newsid.md: file security";
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
    let (plan, hives) = in_phase(progress, "reading the image and planning", || {
        plan_keeping_hives(target, options)
    })?;
    if options.dry_run {
        return Ok((plan, None));
    }
    let report = apply_with_hives(target, &plan, Some(hives), progress)?;
    Ok((plan, Some(report)))
}

/// The plan [`newsid`] would apply. Never writes.
pub fn plan_newsid(target: &mut dyn Target, options: &NewSidOptions) -> Result<Plan> {
    plan_keeping_hives(target, options).map(|(plan, _)| plan)
}

/// The plan, with the hives it loaded and edited as planned (by canonical path).
fn plan_keeping_hives(
    target: &mut dyn Target,
    options: &NewSidOptions,
) -> Result<(Plan, BTreeMap<String, Hive>)> {
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
    target.set_fixed_time(fixed_time);
    let entropy = reseal_nt::Entropy::new(options.seed, fixed_time);
    let mut image = Image::new(target);
    image.set_fixed_time(fixed_time);
    let mut plan = Plan::new();
    let user_hives = image.user_hives()?;
    let old = refusals::account_domain_sid(&mut image, &user_hives)?;
    let new = match &options.sid {
        Some(sid) => sid.clone(),
        None => Sid::random_machine_sid_from(&entropy)
            .map_err(|e| Error::other(None, format!("cannot make a random machine SID: {e}")))?,
    };
    let swap = DomainSwap::new(&old, &new)
        .map_err(|e| Error::bad_value(Input::Sid, &new, e.to_string()))?;
    if swap.is_identity() {
        plan.note(PROVIDER, format!("the machine SID is already {new}"));
        return Ok((plan, image.into_hives()));
    }
    let origins = hives::Origins {
        data: origin(SOURCE_VALUE_DATA),
        names: origin(SOURCE_VALUE_NAMES),
        keys: origin(SOURCE_KEY_NAMES),
    };
    for hive in hives_to_scan(&mut image, &user_hives)? {
        hives::plan_hive(&mut image, &mut plan, &origins, &hive, &swap)?;
    }
    match image.target().scan_file_security(&swap) {
        Ok(found) => plan.swap_file_security(origin(SOURCE_FILE_SECURITY), &old, &new, found),
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
    let record = crate::run_record::RunRecord::new("newsid", options);
    crate::run_record::plan_record(&mut image, &mut plan, &record, entropy.now())?;
    Ok((plan, image.into_hives()))
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
