//! [`GeneralizeOptions`]: what the caller asks `generalize` (and `reseal`) to do.

use std::path::PathBuf;

use crate::sid::Sid;

/// Where the next boot goes after specialize.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Out-of-box experience (`sysprep /oobe`).
    #[default]
    Oobe,
    /// Audit mode (`sysprep /audit`).
    Audit,
}

/// The options of one run.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct GeneralizeOptions {
    /// `true` for `sysprep /generalize`; `false` re-seals without the Generalize.xml providers.
    pub generalize: bool,
    /// OOBE or audit mode on the next boot.
    pub mode: Mode,
    /// An unattend.xml to place into the image (host path).
    pub unattend: Option<PathBuf>,
    /// The computer name specialize sets; `None` or `"*"` = a random name at specialize. Without
    /// `generalize` (no specialize follows), a concrete name is set in place now.
    pub computer_name: Option<String>,
    /// The computer description (the Server service's comment); `None` leaves it as it is.
    pub description: Option<String>,
    /// The machine SID setupcl gives the image; `None` = random.
    pub sid: Option<Sid>,
    /// Do not rearm the licensing state (`SkipRearm`).
    pub skip_rearm: bool,
    /// Keep device drivers and their state (`PersistAllDeviceInstalls`).
    pub persist_devices: bool,
    /// Also give the image a new `MachineGuid`.
    pub new_machine_guid: bool,
    /// Plan only; write nothing.
    pub dry_run: bool,
    /// Names of validation checks to skip (see [`crate::validate::CHECKS`]).
    pub ignore_checks: Vec<String>,
    /// The providers and checks to run, by name (see [`crate::operations`]); `None` runs every
    /// one that runs by default. A check left out does not run at all, where one in
    /// `ignore_checks` runs and its failure is only recorded.
    pub operations: Option<Vec<String>>,
    /// Draw every random value of the run (GUIDs) from this seed instead of the operating
    /// system, so the same input and options give the same output (docs/reproducible.md).
    pub seed: Option<u64>,
    /// Stamp every time the run writes (hive key and header times, WIM file and XML times)
    /// with this many seconds after the Unix epoch instead of the clock's, as
    /// `SOURCE_DATE_EPOCH` asks (<https://reproducible-builds.org/specs/source-date-epoch/>).
    pub source_date_epoch: Option<u64>,
}

impl Default for GeneralizeOptions {
    fn default() -> GeneralizeOptions {
        GeneralizeOptions {
            generalize: true,
            mode: Mode::Oobe,
            unattend: None,
            computer_name: None,
            description: None,
            sid: None,
            skip_rearm: false,
            persist_devices: false,
            new_machine_guid: false,
            dry_run: false,
            ignore_checks: Vec::new(),
            operations: None,
            seed: None,
            source_date_epoch: None,
        }
    }
}

/// A new name for a machine, set in place without generalizing (see [`crate::rename`]).
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct Rename {
    /// The computer name: the NetBIOS name and DNS host label (1 to 15 letters, digits, `-`).
    pub computer_name: String,
    /// The computer description (the Server service's comment); `None` leaves it as it is.
    pub description: Option<String>,
    /// Plan only; write nothing.
    pub dry_run: bool,
    /// Stamp every time the run writes with this many seconds after the Unix epoch instead of
    /// the clock's (see [`GeneralizeOptions::source_date_epoch`]).
    pub source_date_epoch: Option<u64>,
}

impl GeneralizeOptions {
    /// The time the run stamps, when fixed.
    pub fn fixed_time(&self) -> Option<reseal_nt::FileTime> {
        self.source_date_epoch
            .map(|seconds| reseal_nt::FileTime::from_unix(seconds, 0))
    }

    /// The run's one source of random values and time.
    pub fn entropy(&self) -> reseal_nt::Entropy {
        reseal_nt::Entropy::new(self.seed, self.fixed_time())
    }
}

impl Rename {
    /// The run options a rename plans with: nothing generalized, the name set in place.
    pub(crate) fn as_options(&self) -> GeneralizeOptions {
        GeneralizeOptions {
            generalize: false,
            computer_name: Some(self.computer_name.clone()),
            description: self.description.clone(),
            dry_run: self.dry_run,
            source_date_epoch: self.source_date_epoch,
            ..GeneralizeOptions::default()
        }
    }
}
