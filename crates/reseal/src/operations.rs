//! The operations of a run: the built-in providers and the validation checks, under the names
//! their own tables give them ([`crate::providers::BUILTIN_PROVIDERS`],
//! [`crate::validate::CHECK_TABLE`]). [`GeneralizeOptions::operations`] selects the ones a run
//! carries out; [`Selection`] checks that choice against the tables.

use std::collections::BTreeSet;

use crate::error::{Error, Input, Result};
use crate::options::GeneralizeOptions;
use crate::providers::computer_name::SET_NAME;
use crate::providers::{RunsIn, BUILTIN_PROVIDERS};
use crate::validate::CHECK_TABLE;

/// A provider (plans changes) or a check (refuses an image).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OperationKind {
    /// A provider: plans changes.
    Provider,
    /// A validation check: refuses the image before anything is planned.
    Check,
}

/// Whether an operation runs in a kind of run (generalize, or reseal without generalizing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Runs {
    /// It runs unless the selection leaves it out.
    ByDefault,
    /// It runs when a computer name is given, unless the selection leaves it out.
    WithComputerName,
    /// It never runs in that kind of run, and cannot be selected for it.
    Never,
}

/// One operation as `list-operations` shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Operation {
    /// Its name, as the plan and the selection use it.
    pub name: &'static str,
    /// A provider or a check.
    pub kind: OperationKind,
    /// What it does, in one line.
    pub description: &'static str,
    /// Whether it runs when generalizing.
    pub generalize: Runs,
    /// Whether it runs when resealing without generalizing.
    pub reseal: Runs,
    /// Why it cannot be left out, when others depend on it.
    pub required: Option<&'static str>,
}

impl Operation {
    /// Whether it runs by default in a run that generalizes (`generalize`) or only reseals.
    pub fn runs_by_default(&self, generalize: bool) -> bool {
        let runs = if generalize {
            self.generalize
        } else {
            self.reseal
        };
        runs != Runs::Never
    }
}

/// Every operation: the providers in the order they run, then the checks.
pub fn all() -> Vec<Operation> {
    let providers = BUILTIN_PROVIDERS.iter().map(|provider| {
        let (generalize, reseal) = match provider.runs_in {
            RunsIn::EveryRun => (Runs::ByDefault, Runs::ByDefault),
            RunsIn::Generalize => (Runs::ByDefault, Runs::Never),
            RunsIn::ResealWithComputerName => (Runs::Never, Runs::WithComputerName),
        };
        Operation {
            name: provider.name(),
            kind: OperationKind::Provider,
            description: provider.description,
            generalize,
            reseal,
            required: provider.required,
        }
    });
    let checks = CHECK_TABLE.iter().map(|check| Operation {
        name: check.name,
        kind: OperationKind::Check,
        description: check.description,
        generalize: Runs::ByDefault,
        reseal: Runs::ByDefault,
        required: None,
    });
    providers.chain(checks).collect()
}

/// The names of the operations a run that generalizes (or only reseals) runs by default.
pub fn defaults(generalize: bool) -> Vec<&'static str> {
    all()
        .into_iter()
        .filter(|operation| operation.runs_by_default(generalize))
        .map(|operation| operation.name)
        .collect()
}

/// The operations one run carries out: every default one, or the caller's choice.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    chosen: Option<BTreeSet<String>>,
}

impl Selection {
    /// The selection `options.operations` makes. A name no table has, a provider that never runs
    /// in this kind of run, or a required provider left out is a usage error naming it.
    pub fn of(options: &GeneralizeOptions) -> Result<Selection> {
        let Some(names) = &options.operations else {
            return Ok(Selection::default());
        };
        let all = all();
        let chosen: BTreeSet<String> = names.iter().cloned().collect();
        for name in &chosen {
            let Some(operation) = all.iter().find(|operation| operation.name == name) else {
                let valid: Vec<&str> = all.iter().map(|operation| operation.name).collect();
                return Err(Error::bad_value(
                    Input::Operations,
                    name,
                    format!(
                        "no such operation (the operations are {})",
                        valid.join(", ")
                    ),
                ));
            };
            if !operation.runs_by_default(options.generalize) {
                let reason = if options.generalize {
                    "it runs only when resealing without generalizing (a generalize leaves the \
                     name to specialize, through computer-name)"
                } else {
                    "it runs only when generalizing, and this run only reseals"
                };
                return Err(Error::bad_value(Input::Operations, name, reason));
            }
        }
        for operation in &all {
            if let Some(reason) = operation.required {
                if !chosen.contains(operation.name) {
                    return Err(Error::bad_value(
                        Input::Operations,
                        operation.name,
                        format!("it cannot be left out: {reason}"),
                    ));
                }
            }
        }
        // The name and description given go into place only through that provider.
        let naming = options.computer_name.is_some() || options.description.is_some();
        let writer = if options.generalize {
            "computer-name"
        } else {
            SET_NAME
        };
        if naming && !chosen.contains(writer) {
            return Err(Error::bad_value(
                Input::Operations,
                writer,
                format!(
                    "a computer name or description was given, and the {writer} provider that \
                     writes it is left out"
                ),
            ));
        }
        Ok(Selection {
            chosen: Some(chosen),
        })
    }

    /// Whether the operation `name` runs.
    pub fn runs(&self, name: &str) -> bool {
        self.chosen
            .as_ref()
            .is_none_or(|chosen| chosen.contains(name))
    }
}
