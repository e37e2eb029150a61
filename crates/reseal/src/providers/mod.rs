//! Providers: each one reproduces one part of what Sysprep does, by planning changes.
//!
//! The [`Provider`] trait and [`PlanContext`] are the interface between the core and the providers
//! (docs/ARCHITECTURE.md, "Extending"; docs/providers.md lists what each provider changes).

pub mod accounts;
pub mod action_files;
pub mod activation;
pub mod answer_file;
pub mod cloud_agents;
pub mod computer_name;
pub mod devices;
pub mod event_logs;
pub mod external;
pub mod identity;
pub mod leftovers;
pub mod machine_sid;
pub mod setup_state;
mod support;

use reseal_hive::ValueType;

use crate::answer_file::AnswerFile;
use crate::error::Result;
use crate::image::Image;
use crate::operations::Selection;
use crate::options::GeneralizeOptions;
use crate::plan::{AnswerSetting, Origin, Plan};

/// One part of Sysprep's work: it reads the image and adds changes to the plan.
///
/// A provider names the source of each group of changes with [`PlanContext::source`]; the core
/// adds the provider's [`name`](Provider::name) to each change and note itself.
///
/// ```
/// use reseal::image::SOFTWARE;
/// use reseal::{PlanContext, Provider, Result, ValueType};
///
/// /// Records in the image that it was generalized by our build farm.
/// struct BuildStamp;
///
/// impl Provider for BuildStamp {
///     fn name(&self) -> &'static str {
///         "build-stamp"
///     }
///
///     fn plan(&self, ctx: &mut PlanContext<'_, '_>) -> Result<()> {
///         let mut changes = ctx.source("our build farm's image record");
///         changes.set_value(
///             SOFTWARE,
///             r"Contoso\Build",
///             "Generalized",
///             ValueType::DWORD,
///             &1u32.to_le_bytes(),
///         )?;
///         ctx.note("the image is stamped as generalized");
///         Ok(())
///     }
/// }
/// // Passed in the `extra` argument: reseal::generalize(target, &options, &[Box::new(BuildStamp)])
/// ```
pub trait Provider {
    /// A short name for the plan and notes (`"machine-sid"`).
    fn name(&self) -> &'static str;
    /// Reads the image through `ctx.image` and adds the changes it needs through `ctx`.
    fn plan(&self, ctx: &mut PlanContext<'_, '_>) -> Result<()>;
}

/// What a provider gets while planning: the image, the options, and the plan, which it changes
/// only through these methods so every change and note names the provider running.
pub struct PlanContext<'i, 't> {
    /// The image, with the changes planned by earlier providers overlaid.
    pub image: &'i mut Image<'t>,
    /// The caller's options.
    pub options: &'i GeneralizeOptions,
    /// The answer file the caller gave, parsed.
    pub answer: Option<&'i AnswerFile>,
    /// The run's one source of random values (see [`GeneralizeOptions::seed`]).
    pub entropy: &'i reseal_nt::Entropy,
    plan: &'i mut Plan,
    provider: &'static str,
}

impl<'i, 't> PlanContext<'i, 't> {
    /// The context in which `provider` (its [`Provider::name`]) plans.
    pub(crate) fn new(
        image: &'i mut Image<'t>,
        options: &'i GeneralizeOptions,
        answer: Option<&'i AnswerFile>,
        entropy: &'i reseal_nt::Entropy,
        plan: &'i mut Plan,
        provider: &'static str,
    ) -> PlanContext<'i, 't> {
        PlanContext {
            image,
            options,
            answer,
            entropy,
            plan,
            provider,
        }
    }

    /// The name of the provider planning.
    pub fn provider(&self) -> &'static str {
        self.provider
    }

    /// The plan so far, read-only (the answer settings earlier providers asked for...).
    pub fn plan(&self) -> &Plan {
        self.plan
    }

    /// Plans changes whose source is `source` (a section of sysprep-effects.md or an action-file
    /// row, with its confidence tag): every change made through the returned [`Planner`] carries
    /// it. Changes can only be planned through a `Planner`, so none lacks a source.
    pub fn source(&mut self, source: &'static str) -> Planner<'_, 't> {
        debug_assert!(!source.is_empty(), "{}: an empty source", self.provider);
        Planner {
            image: &mut *self.image,
            plan: &mut *self.plan,
            origin: Origin {
                provider: self.provider,
                source,
            },
        }
    }

    /// Adds a note for the user.
    pub fn note(&mut self, message: impl Into<String>) {
        self.plan.note(self.provider, message);
    }

    /// Asks for `value` at `path` (elements below `component`) in pass `pass` of the answer file.
    pub fn answer_setting(
        &mut self,
        pass: &str,
        component: &str,
        path: &[&str],
        value: impl Into<String>,
    ) {
        self.plan.answer_setting(AnswerSetting {
            provider: self.provider,
            pass: pass.into(),
            component: component.into(),
            path: path.iter().map(|element| element.to_string()).collect(),
            value: value.into(),
        });
    }
}

/// Plans changes for one provider from one source (see [`PlanContext::source`]). Each method
/// adds a change only when the image differs from the wanted state.
pub struct Planner<'c, 't> {
    image: &'c mut Image<'t>,
    plan: &'c mut Plan,
    origin: Origin,
}

impl<'t> Planner<'_, 't> {
    /// The image, for reads between changes (it shows the changes planned so far).
    pub fn image(&mut self) -> &mut Image<'t> {
        self.image
    }

    /// The provider and source the changes get.
    pub fn origin(&self) -> Origin {
        self.origin
    }

    /// Sets value `name` of `key` in `hive` unless it already has that type and data; creates the
    /// key first when missing.
    pub fn set_value(
        &mut self,
        hive: &str,
        key: &str,
        name: &str,
        value_type: ValueType,
        data: &[u8],
    ) -> Result<()> {
        self.plan
            .set_value(self.image, self.origin, hive, key, name, value_type, data)
    }

    /// Deletes value `name` of `key` in `hive` when it exists.
    pub fn delete_value(&mut self, hive: &str, key: &str, name: &str) -> Result<()> {
        self.plan
            .delete_value(self.image, self.origin, hive, key, name)
    }

    /// Creates `key` (and missing keys above it) in `hive` when it is missing.
    pub fn create_key(&mut self, hive: &str, key: &str) -> Result<()> {
        self.plan.create_key(self.image, self.origin, hive, key)
    }

    /// Deletes `key` in `hive` with its subkeys and values when it exists.
    pub fn delete_key(&mut self, hive: &str, key: &str) -> Result<()> {
        self.plan.delete_key(self.image, self.origin, hive, key)
    }

    /// Renames `key` in `hive` to `new_name` when it exists and is not already named exactly so.
    pub fn rename_key(&mut self, hive: &str, key: &str, new_name: &str) -> Result<()> {
        self.plan
            .rename_key(self.image, self.origin, hive, key, new_name)
    }

    /// Writes `contents` to the file at `path` unless it already holds exactly that;
    /// `sensitive` contents are never printed.
    pub fn write_file(&mut self, path: &str, contents: &[u8], sensitive: bool) -> Result<()> {
        self.plan
            .write_file(self.image, self.origin, path, contents, sensitive)
    }

    /// Deletes the file at `path` when it exists.
    pub fn delete_file(&mut self, path: &str) -> Result<()> {
        self.plan.delete_file(self.image, self.origin, path)
    }

    /// Deletes the files in `dir` whose names match `pattern` (`*` and `?` wildcards,
    /// case-insensitive, like `*.pf`). Subdirectories are left alone.
    pub fn delete_files_matching(&mut self, dir: &str, pattern: &str) -> Result<()> {
        self.plan
            .delete_files_matching(self.image, self.origin, dir, pattern)
    }

    /// Deletes the directory at `path` with its contents when it exists.
    pub fn delete_directory(&mut self, path: &str) -> Result<()> {
        self.plan.delete_directory(self.image, self.origin, path)
    }
}

/// When a built-in provider runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunsIn {
    /// On every run (Cleanup.xml's work, the setup state, the answer file).
    EveryRun,
    /// Only when generalizing: Generalize.xml's work.
    Generalize,
    /// Only when resealing without generalizing and a computer name is given: no specialize
    /// follows to set it, so it is set in place now.
    ResealWithComputerName,
}

/// A built-in provider as the operations list shows it.
pub struct BuiltinProvider {
    /// What it does, in one line.
    pub description: &'static str,
    /// When it runs.
    pub runs_in: RunsIn,
    /// Why it cannot be left out, when other providers depend on it.
    pub required: Option<&'static str>,
    make: fn(&GeneralizeOptions) -> Box<dyn Provider>,
}

impl BuiltinProvider {
    /// The provider itself, for a run with `options`.
    pub fn provider(&self, options: &GeneralizeOptions) -> Box<dyn Provider> {
        (self.make)(options)
    }

    /// Its name ([`Provider::name`]), the one name the operations list and the plan use.
    pub fn name(&self) -> &'static str {
        self.provider(&GeneralizeOptions::default()).name()
    }

    /// Whether it runs in a run with `options` (before the selection of operations).
    pub fn runs_with(&self, options: &GeneralizeOptions) -> bool {
        match self.runs_in {
            RunsIn::EveryRun => true,
            RunsIn::Generalize => options.generalize,
            RunsIn::ResealWithComputerName => {
                !options.generalize && options.computer_name.is_some()
            }
        }
    }
}

/// Every built-in provider, in the order they run (the answer-file provider last).
///
/// Cleanup.xml's work (event logs, the action files' cleanup rows, leftovers) runs on every run,
/// as Sysprep runs Cleanup.xml every time; the Generalize.xml providers only with `generalize`.
/// The computer name and activation providers come before the answer file's readers
/// (leftovers, answer file), because they add answer settings. The in-place rename runs where
/// generalize's computer-name provider would, right after the setup state.
pub const BUILTIN_PROVIDERS: [BuiltinProvider; 16] = [
    BuiltinProvider {
        description: "arms the next boot: setup state, SetupType and CmdLine, as Sysprep leaves them",
        runs_in: RunsIn::EveryRun,
        required: Some(
            "it arms the next boot; without it the image is not sealed and the other changes \
             are not applied by setup",
        ),
        make: |_| Box::new(setup_state::SetupState),
    },
    BuiltinProvider {
        description: "sets the computer name (and description) in place, where the name lives \
                      in the registry; reseal with a computer name, and set",
        runs_in: RunsIn::ResealWithComputerName,
        required: None,
        make: |options| {
            Box::new(computer_name::SetComputerName {
                name: options.computer_name.clone().unwrap_or_default(),
                description: options.description.clone(),
            })
        },
    },
    BuiltinProvider {
        description: "asks setupcl.exe for a new machine SID at the next boot",
        runs_in: RunsIn::Generalize,
        required: None,
        make: |_| Box::new(machine_sid::MachineSid),
    },
    BuiltinProvider {
        description: "moves the computer name to the answer file's specialize pass",
        runs_in: RunsIn::Generalize,
        required: None,
        make: |_| Box::new(computer_name::ComputerName),
    },
    BuiltinProvider {
        description: "schedules the licensing rearm for first boot, or keeps the state (SkipRearm)",
        runs_in: RunsIn::Generalize,
        required: None,
        make: |_| Box::new(activation::Activation),
    },
    BuiltinProvider {
        description: "removes the per-machine identifiers the Generalize.xml DLLs remove (WSUS, telemetry...)",
        runs_in: RunsIn::Generalize,
        required: None,
        make: |_| Box::new(identity::Identity),
    },
    BuiltinProvider {
        description: "carries out the registry and file rows of Generalize.xml and Cleanup.xml",
        runs_in: RunsIn::EveryRun,
        required: None,
        make: |_| Box::new(action_files::ActionFiles),
    },
    BuiltinProvider {
        description: "notes the registered Sysprep DLLs an offline run cannot call",
        runs_in: RunsIn::EveryRun,
        required: None,
        make: |_| Box::new(external::ExternalProviders),
    },
    BuiltinProvider {
        description: "disables the built-in Administrator and forgets the last logged-on user",
        runs_in: RunsIn::Generalize,
        required: None,
        make: |_| Box::new(accounts::Accounts),
    },
    BuiltinProvider {
        description: "keeps installed devices and enables the storage controllers a clone may boot from",
        runs_in: RunsIn::Generalize,
        required: None,
        make: |_| Box::new(devices::Devices),
    },
    BuiltinProvider {
        description: "makes Cloudbase-Init's plugins run again on the first boot",
        runs_in: RunsIn::Generalize,
        required: None,
        make: |_| Box::new(cloud_agents::cloudbase_init::CloudbaseInit),
    },
    BuiltinProvider {
        description: "resets AWS EC2Launch v2 as `ec2launch reset --clean` does; reports v1 and EC2Config",
        runs_in: RunsIn::Generalize,
        required: None,
        make: |_| Box::new(cloud_agents::ec2launch::Ec2Launch),
    },
    BuiltinProvider {
        description: "reports the Azure guest agent (changed by nothing offline)",
        runs_in: RunsIn::Generalize,
        required: None,
        make: |_| Box::new(cloud_agents::azure_guest_agent::AzureGuestAgent),
    },
    BuiltinProvider {
        description: "empties every event log channel file",
        runs_in: RunsIn::EveryRun,
        required: None,
        make: |_| Box::new(event_logs::EventLogs),
    },
    BuiltinProvider {
        description: "deletes setup logs, cached answer files, prefetch traces, error reports, dumps",
        runs_in: RunsIn::EveryRun,
        required: None,
        make: |_| Box::new(leftovers::Leftovers),
    },
    BuiltinProvider {
        description: "writes Windows\\Panther\\unattend.xml: the given answer file with the settings \
                      the other providers ask for",
        runs_in: RunsIn::EveryRun,
        required: Some(
            "it writes the answer-file settings other providers plan (the computer name, the \
             rearm), and leftovers keeps the cached answer file for it to replace",
        ),
        make: |_| Box::new(answer_file::AnswerFileProvider),
    },
];

/// The built-in providers a run with `options` runs (by `options.generalize` and the computer
/// name) and `selection` keeps, in the order they run.
pub fn builtin_providers(
    options: &GeneralizeOptions,
    selection: &Selection,
) -> Vec<Box<dyn Provider>> {
    BUILTIN_PROVIDERS
        .iter()
        .filter(|builtin| builtin.runs_with(options))
        .map(|builtin| builtin.provider(options))
        .filter(|provider| selection.runs(provider.name()))
        .collect()
}
