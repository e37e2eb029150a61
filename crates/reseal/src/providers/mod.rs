//! Providers: each one reproduces one part of what Sysprep does, by planning changes.
//!
//! The [`Provider`] trait and [`PlanContext`] are the interface between the core and the providers
//! (docs/ARCHITECTURE.md, "Extending"; docs/providers.md lists what each provider changes).

pub mod accounts;
pub mod action_files;
pub mod activation;
pub mod answer_file;
pub mod computer_name;
pub mod devices;
pub mod event_logs;
pub mod identity;
pub mod leftovers;
pub mod machine_sid;
pub mod setup_state;
mod support;

use crate::answer_file::AnswerFile;
use crate::error::Result;
use crate::image::Image;
use crate::options::GeneralizeOptions;
use crate::plan::Plan;

/// One part of Sysprep's work: it reads the image and adds changes to the plan.
pub trait Provider {
    /// A short name for the plan and notes (`"machine-sid"`).
    fn name(&self) -> &'static str;
    /// Reads the image through `ctx.image` and adds the changes it needs to `ctx.plan`.
    fn plan(&self, ctx: &mut PlanContext<'_, '_>) -> Result<()>;
}

/// What a provider gets while planning.
pub struct PlanContext<'i, 't> {
    /// The image, with the changes planned by earlier providers overlaid.
    pub image: &'i mut Image<'t>,
    /// The caller's options.
    pub options: &'i GeneralizeOptions,
    /// The answer file the caller gave, parsed.
    pub answer: Option<&'i AnswerFile>,
    /// The plan being built.
    pub plan: &'i mut Plan,
}

/// The built-in providers for `options`, in the order they run (the answer-file provider last).
///
/// Cleanup.xml's work (event logs, the action files' cleanup rows, leftovers) runs on every run,
/// as Sysprep runs Cleanup.xml every time; the Generalize.xml providers only with `generalize`.
/// The computer name and activation providers come before the answer file's readers
/// (leftovers, answer file), because they add answer settings.
pub fn builtin_providers(options: &GeneralizeOptions) -> Vec<Box<dyn Provider>> {
    let mut providers: Vec<Box<dyn Provider>> = vec![Box::new(setup_state::SetupState)];
    if options.generalize {
        providers.push(Box::new(machine_sid::MachineSid));
        providers.push(Box::new(computer_name::ComputerName));
        providers.push(Box::new(activation::Activation));
        providers.push(Box::new(identity::Identity));
    }
    providers.push(Box::new(action_files::ActionFiles));
    if options.generalize {
        providers.push(Box::new(accounts::Accounts));
        providers.push(Box::new(devices::Devices));
    }
    providers.push(Box::new(event_logs::EventLogs));
    providers.push(Box::new(leftovers::Leftovers));
    providers.push(Box::new(answer_file::AnswerFileProvider));
    providers
}
