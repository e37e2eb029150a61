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

/// A built-in provider as the operations list shows it.
pub struct BuiltinProvider {
    /// What it does, in one line.
    pub description: &'static str,
    /// It is Generalize.xml's work and runs only when generalizing; otherwise on every run.
    pub generalize_only: bool,
    /// Why it cannot be left out, when other providers depend on it.
    pub required: Option<&'static str>,
    make: fn() -> Box<dyn Provider>,
}

impl BuiltinProvider {
    /// The provider itself.
    pub fn provider(&self) -> Box<dyn Provider> {
        (self.make)()
    }

    /// Its name ([`Provider::name`]), the one name the operations list and the plan use.
    pub fn name(&self) -> &'static str {
        self.provider().name()
    }
}

/// Every built-in provider, in the order they run (the answer-file provider last).
///
/// Cleanup.xml's work (event logs, the action files' cleanup rows, leftovers) runs on every run,
/// as Sysprep runs Cleanup.xml every time; the Generalize.xml providers only with `generalize`.
/// The computer name and activation providers come before the answer file's readers
/// (leftovers, answer file), because they add answer settings.
pub const BUILTIN_PROVIDERS: [BuiltinProvider; 15] = [
    BuiltinProvider {
        description: "arms the next boot: setup state, SetupType and CmdLine, as Sysprep leaves them",
        generalize_only: false,
        required: Some(
            "it arms the next boot; without it the image is not sealed and the other changes \
             are not applied by setup",
        ),
        make: || Box::new(setup_state::SetupState),
    },
    BuiltinProvider {
        description: "asks setupcl.exe for a new machine SID at the next boot",
        generalize_only: true,
        required: None,
        make: || Box::new(machine_sid::MachineSid),
    },
    BuiltinProvider {
        description: "moves the computer name to the answer file's specialize pass",
        generalize_only: true,
        required: None,
        make: || Box::new(computer_name::ComputerName),
    },
    BuiltinProvider {
        description: "schedules the licensing rearm for first boot, or keeps the state (SkipRearm)",
        generalize_only: true,
        required: None,
        make: || Box::new(activation::Activation),
    },
    BuiltinProvider {
        description: "removes the per-machine identifiers the Generalize.xml DLLs remove (WSUS, telemetry...)",
        generalize_only: true,
        required: None,
        make: || Box::new(identity::Identity),
    },
    BuiltinProvider {
        description: "carries out the registry and file rows of Generalize.xml and Cleanup.xml",
        generalize_only: false,
        required: None,
        make: || Box::new(action_files::ActionFiles),
    },
    BuiltinProvider {
        description: "notes the registered Sysprep DLLs an offline run cannot call",
        generalize_only: false,
        required: None,
        make: || Box::new(external::ExternalProviders),
    },
    BuiltinProvider {
        description: "disables the built-in Administrator and forgets the last logged-on user",
        generalize_only: true,
        required: None,
        make: || Box::new(accounts::Accounts),
    },
    BuiltinProvider {
        description: "keeps installed devices and enables the storage controllers a clone may boot from",
        generalize_only: true,
        required: None,
        make: || Box::new(devices::Devices),
    },
    BuiltinProvider {
        description: "makes Cloudbase-Init's plugins run again on the first boot",
        generalize_only: true,
        required: None,
        make: || Box::new(cloud_agents::cloudbase_init::CloudbaseInit),
    },
    BuiltinProvider {
        description: "resets AWS EC2Launch v2 as `ec2launch reset --clean` does; reports v1 and EC2Config",
        generalize_only: true,
        required: None,
        make: || Box::new(cloud_agents::ec2launch::Ec2Launch),
    },
    BuiltinProvider {
        description: "reports the Azure guest agent (changed by nothing offline)",
        generalize_only: true,
        required: None,
        make: || Box::new(cloud_agents::azure_guest_agent::AzureGuestAgent),
    },
    BuiltinProvider {
        description: "empties every event log channel file",
        generalize_only: false,
        required: None,
        make: || Box::new(event_logs::EventLogs),
    },
    BuiltinProvider {
        description: "deletes setup logs, cached answer files, prefetch traces, error reports, dumps",
        generalize_only: false,
        required: None,
        make: || Box::new(leftovers::Leftovers),
    },
    BuiltinProvider {
        description: "writes Windows\\Panther\\unattend.xml: the given answer file with the settings \
                      the other providers ask for",
        generalize_only: false,
        required: Some(
            "it writes the answer-file settings other providers plan (the computer name, the \
             rearm), and leftovers keeps the cached answer file for it to replace",
        ),
        make: || Box::new(answer_file::AnswerFileProvider),
    },
];

/// The built-in providers a run with `options` runs (by `options.generalize`) and `selection`
/// keeps, in the order they run.
pub fn builtin_providers(
    options: &GeneralizeOptions,
    selection: &Selection,
) -> Vec<Box<dyn Provider>> {
    let mut providers = BUILTIN_PROVIDERS
        .iter()
        .filter(|builtin| options.generalize || !builtin.generalize_only)
        .map(BuiltinProvider::provider)
        .filter(|provider| selection.runs(provider.name()))
        .collect::<Vec<_>>();
    if let (false, Some(name)) = (options.generalize, &options.computer_name) {
        // Without specialize to name the machine, the new name goes straight into place, right
        // after the setup state, where generalize's computer-name provider runs.
        let after_setup_state = providers.len().min(1);
        providers.insert(
            after_setup_state,
            Box::new(computer_name::SetComputerName {
                name: name.clone(),
                description: options.description.clone(),
            }),
        );
    }
    providers
}
