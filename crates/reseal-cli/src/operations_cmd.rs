//! `reseal list-operations` and the `--operations` list of generalize and reseal, in
//! virt-sysprep's syntax. The names come from the library's tables ([`reseal::operations`]).

use std::collections::BTreeSet;

use reseal::operations::{self, Operation, OperationKind, Runs};

use crate::CliError;

/// The word for "every operation that runs by default".
const DEFAULTS: &str = "defaults";
/// The word for "every operation that can run in this kind of run".
const ALL: &str = "all";

/// `reseal list-operations`: every provider and check, what it does, and when it runs.
pub fn list(as_json: bool) -> Result<(), CliError> {
    let all = operations::all();
    if as_json {
        outln!("{}", serde_json::to_string_pretty(&all).unwrap_or_default());
        return Ok(());
    }
    let width = all.iter().map(|o| o.name.len()).max().unwrap_or(0);
    outln!(
        "{:width$}  {:8}  {:10}  {:6}  DESCRIPTION",
        "NAME",
        "KIND",
        "GENERALIZE",
        "RESEAL"
    );
    for operation in &all {
        let kind = match operation.kind {
            OperationKind::Provider => "provider",
            OperationKind::Check => "check",
        };
        let mut description = operation.description.to_string();
        if operation.required.is_some() {
            description.push_str(" (required)");
        }
        outln!(
            "{:width$}  {kind:8}  {:10}  {:6}  {description}",
            operation.name,
            when(operation.generalize),
            when(operation.reseal),
        );
    }
    outln!(
        "\n--operations NAME,-NAME,... selects them: a list to run, `-NAME` leaves one out, \
         `{DEFAULTS}` the default set (a list starting with `-NAME` starts from it).\n\
         `named`: runs when --computer-name is given; `reseal set` runs it alone."
    );
    Ok(())
}

fn when(runs: Runs) -> &'static str {
    match runs {
        Runs::ByDefault => "on",
        Runs::WithComputerName => "named",
        Runs::Never => "-",
    }
}

/// The operations `lists` (the `--operations` values, in order) select for a run that
/// generalizes (or only reseals), as virt-sysprep reads them: items separated by commas, applied
/// left to right; `NAME` adds one, `-NAME` removes one, `defaults` (`-defaults`) adds (removes)
/// the default set, `all` every operation this kind of run has. A list that begins with `-NAME`
/// starts from the default set, otherwise from nothing. Whether the result leaves out a required
/// provider is the library's to say.
pub fn parse(lists: &[String], generalize: bool) -> Result<Option<Vec<String>>, CliError> {
    if lists.is_empty() {
        return Ok(None);
    }
    let all = operations::all();
    let items: Vec<&str> = lists
        .iter()
        .flat_map(|list| list.split(','))
        .map(str::trim)
        .collect();
    let mut chosen: BTreeSet<&'static str> = BTreeSet::new();
    if items.first().is_some_and(|item| item.starts_with('-')) {
        chosen.extend(operations::defaults(generalize));
    }
    for item in items {
        let (remove, name) = match item.strip_prefix('-') {
            Some(name) => (true, name),
            None => (false, item),
        };
        let names: Vec<&'static str> = match name {
            "" => return Err(CliError::usage("--operations: an empty name in the list")),
            DEFAULTS => operations::defaults(generalize),
            ALL => all
                .iter()
                .filter(|o| o.runs_by_default(generalize))
                .map(|o| o.name)
                .collect(),
            name => match all.iter().find(|o| o.name == name) {
                Some(operation) => vec![operation.name],
                None => return Err(unknown(name, &all)),
            },
        };
        for name in names {
            if remove {
                chosen.remove(name);
            } else {
                chosen.insert(name);
            }
        }
    }
    Ok(Some(chosen.into_iter().map(str::to_string).collect()))
}

fn unknown(name: &str, all: &[Operation]) -> CliError {
    let valid: Vec<&str> = all.iter().map(|o| o.name).collect();
    CliError::usage(format!(
        "--operations {name}: no such operation; the operations are {}, {DEFAULTS} and {ALL} \
         (`reseal list-operations` describes them)",
        valid.join(", ")
    ))
}
