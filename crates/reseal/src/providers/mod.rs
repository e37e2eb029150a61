//! Providers: each one reproduces one part of what Sysprep does, by planning changes.
//!
//! The [`Provider`] trait and [`PlanContext`] are the interface between the core and the providers
//! (see docs/library-contract.md).

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
pub fn builtin_providers(options: &GeneralizeOptions) -> Vec<Box<dyn Provider>> {
    let _ = options;
    // The provider modules are added here as they are written, in Sysprep's order.
    Vec::new()
}
