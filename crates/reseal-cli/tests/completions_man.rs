//! `reseal completions SHELL` and `reseal man [--out-dir DIR]` through the built binary: what a
//! release bundle runs to ship shell completions and man pages, with no image anywhere.

mod common;

use std::collections::BTreeSet;
use std::fs::File;
use std::path::Path;
use std::process::{Command, Stdio};

use common::{code, reseal, text};

/// Runs `reseal args...`, expects success with nothing on stderr, and returns stdout.
fn stdout_of(args: &[&str]) -> String {
    let output = reseal(args);
    assert_eq!(code(&output), 0, "reseal {args:?}: {}", text(&output));
    assert!(
        output.stderr.is_empty(),
        "reseal {args:?}: {}",
        text(&output)
    );
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

/// The subcommands that `reseal PARENT... --help` lists under "Commands:", without clap's own
/// `help` subcommand.
fn subcommands_of(parent: &[&str]) -> Vec<String> {
    let mut args = parent.to_vec();
    args.push("--help");
    let help = stdout_of(&args);
    help.lines()
        .skip_while(|line| *line != "Commands:")
        .skip(1)
        .take_while(|line| line.starts_with("  "))
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_owned)
        .collect()
}

/// Every subcommand below the top level as its path of names (["hive", "ls"]), as the built
/// binary's `--help` reports them.
fn subcommand_paths() -> Vec<Vec<String>> {
    fn walk(parent: &[String], paths: &mut Vec<Vec<String>>) {
        let args: Vec<&str> = parent.iter().map(String::as_str).collect();
        for name in subcommands_of(&args) {
            let mut path = parent.to_vec();
            path.push(name);
            paths.push(path.clone());
            walk(&path, paths);
        }
    }
    let mut paths = Vec::new();
    walk(&[], &mut paths);
    paths
}

/// The `.TH` line of a man page, checked to be its first macro: clap_mangen puts only the two
/// lines that define the apostrophe string (`.ie \n(.g .ds Aq ...` / `.el .ds Aq '`) before it.
fn title_line(page: &str) -> &str {
    let mut lines = page.lines();
    let title = lines
        .by_ref()
        .find(|line| !line.starts_with(".ie ") && !line.starts_with(".el "))
        .unwrap_or_default();
    assert!(
        title.starts_with(".TH "),
        "the page does not start with .TH:\n{page}"
    );
    title
}

#[test]
fn the_top_level_subcommands_are_found() {
    let top: Vec<Vec<String>> = subcommand_paths()
        .into_iter()
        .filter(|path| path.len() == 1)
        .collect();
    for name in [
        "inspect",
        "generalize",
        "reseal",
        "recover",
        "hive",
        "completions",
        "man",
    ] {
        assert!(top.contains(&vec![name.to_owned()]), "{name} in {top:?}");
    }
}

#[test]
fn bash_script_defines_a_completion_function_for_every_subcommand() {
    let script = stdout_of(&["completions", "bash"]);
    assert!(script.contains("_reseal() {"), "{script}");
    assert!(script.contains("complete -F _reseal"), "{script}");
    for name in ["generalize", "inspect", "recover"] {
        assert!(
            script.contains(&format!("reseal,{name})")),
            "{name}:\n{script}"
        );
    }
    for path in subcommand_paths().iter().filter(|path| path.len() == 1) {
        assert!(script.contains(&format!("reseal,{})", path[0])), "{path:?}");
    }
}

#[test]
fn zsh_script_starts_with_compdef() {
    let script = stdout_of(&["completions", "zsh"]);
    assert!(script.starts_with("#compdef reseal\n"), "{script}");
}

#[test]
fn fish_script_completes_reseal() {
    let script = stdout_of(&["completions", "fish"]);
    assert!(script.contains("complete -c reseal "), "{script}");
    assert!(script.contains("generalize"), "{script}");
}

#[test]
fn every_shell_clap_offers_gets_a_script() {
    // `reseal completions --help` lists the shells clap_complete offers.
    let help = stdout_of(&["completions", "--help"]);
    let shells = help
        .split("[possible values: ")
        .nth(1)
        .and_then(|rest| rest.split(']').next())
        .expect("the possible shells in the help");
    let shells: Vec<&str> = shells.split(", ").collect();
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        assert!(shells.contains(&shell), "{shell} in {shells:?}");
    }
    for shell in shells {
        let script = stdout_of(&["completions", shell]);
        assert!(script.contains("reseal"), "{shell}:\n{script}");
    }
}

#[test]
fn an_unknown_or_missing_shell_is_a_usage_error() {
    for args in [&["completions", "tcsh"][..], &["completions"]] {
        let output = reseal(args);
        assert_eq!(code(&output), 2, "reseal {args:?}: {}", text(&output));
        assert!(
            output.stdout.is_empty(),
            "reseal {args:?}: {}",
            text(&output)
        );
    }
    let output = reseal(&["completions", "tcsh"]);
    assert!(text(&output).contains("tcsh"), "{}", text(&output));
}

#[test]
fn man_prints_the_top_level_page() {
    let page = stdout_of(&["man"]);
    let title = title_line(&page);
    assert!(title.starts_with(".TH reseal 1 "), "{title}");
    assert!(page.contains("\n.SH SYNOPSIS\n"), "{page}");
    for path in subcommand_paths().iter().filter(|path| path.len() == 1) {
        // Listed under SUBCOMMANDS as a reference to its own page; roff escapes every hyphen.
        let reference = format!("reseal\\-{}(1)", path[0].replace('-', "\\-"));
        assert!(page.contains(&reference), "{reference} in:\n{page}");
    }
}

#[test]
fn man_out_dir_writes_one_page_per_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("share/man/man1");
    let output = reseal(&["man", "--out-dir", out_dir.to_str().unwrap()]);
    assert_eq!(code(&output), 0, "{}", text(&output));
    assert!(
        output.stdout.is_empty() && output.stderr.is_empty(),
        "{}",
        text(&output)
    );

    let mut expected: BTreeSet<String> = subcommand_paths()
        .iter()
        .map(|path| format!("reseal-{}.1", path.join("-")))
        .collect();
    expected.insert("reseal.1".to_owned());
    for name in [
        "reseal-generalize.1",
        "reseal-hive.1",
        "reseal-hive-ls.1",
        "reseal-man.1",
    ] {
        assert!(expected.contains(name), "{name} in {expected:?}");
    }
    let written: BTreeSet<String> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(written, expected);

    for name in &written {
        let page = std::fs::read_to_string(out_dir.join(name)).unwrap();
        let page_name = name.trim_end_matches(".1");
        assert!(
            title_line(&page).starts_with(&format!(".TH {page_name} 1 ")),
            "{name}:\n{page}"
        );
    }
    // The top-level page is the one `reseal man` prints.
    let top = std::fs::read_to_string(out_dir.join("reseal.1")).unwrap();
    assert_eq!(top, stdout_of(&["man"]));
    // A hive subcommand's synopsis names the hive file that comes before it.
    let ls = std::fs::read_to_string(out_dir.join("reseal-hive-ls.1")).unwrap();
    assert!(ls.contains("reseal hive <FILE> ls"), "{ls}");

    // Running again over the existing pages replaces them.
    let again = reseal(&["man", "--out-dir", out_dir.to_str().unwrap()]);
    assert_eq!(code(&again), 0, "{}", text(&again));
}

#[test]
fn man_out_dir_that_cannot_be_created_fails_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"").unwrap();
    let out_dir = file.join("man1");
    let output = reseal(&["man", "--out-dir", out_dir.to_str().unwrap()]);
    assert_eq!(code(&output), 1, "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.starts_with("reseal: "), "{stderr}");
    assert!(stderr.contains("man1"), "{stderr}");
}

#[test]
fn a_full_stdout_is_an_error_and_a_closed_one_is_not() {
    // /dev/full refuses every write: exit code 1 with a message, no panic.
    if Path::new("/dev/full").exists() {
        let output = Command::new(env!("CARGO_BIN_EXE_reseal"))
            .args(["completions", "bash"])
            .stdout(File::create("/dev/full").unwrap())
            .output()
            .unwrap();
        assert_eq!(code(&output), 1, "{}", text(&output));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.starts_with("reseal: writing to stdout"), "{stderr}");
    }

    // A reader that went away (`reseal man | head -0`): the output just ends.
    for args in [&["man"][..], &["completions", "zsh"]] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_reseal"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let output = child.wait_with_output().unwrap();
        assert_eq!(code(&output), 0, "reseal {args:?}: {}", text(&output));
        assert!(
            output.stderr.is_empty(),
            "reseal {args:?}: {}",
            text(&output)
        );
    }
}

/// Renders every page with the machine's man (groff) when there is one: no warnings, and the
/// text shows the page's name. Skipped on machines without man.
#[test]
fn pages_render_with_man_when_it_is_installed() {
    let dir = tempfile::tempdir().unwrap();
    let output = reseal(&["man", "--out-dir", dir.path().to_str().unwrap()]);
    assert_eq!(code(&output), 0, "{}", text(&output));
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        let rendered = Command::new("man")
            .arg("--warnings")
            .arg("-l")
            .arg(&path)
            .env("MANPAGER", "cat")
            .env("MANWIDTH", "80")
            .output();
        let Ok(rendered) = rendered else {
            eprintln!("man is not installed: the pages are not rendered");
            return;
        };
        let shown = String::from_utf8_lossy(&rendered.stdout);
        let warnings = String::from_utf8_lossy(&rendered.stderr);
        assert!(rendered.status.success(), "{}: {warnings}", path.display());
        assert!(warnings.is_empty(), "{}: {warnings}", path.display());
        let name = path.file_stem().unwrap().to_str().unwrap();
        assert!(shown.contains(&format!("{name}(1)")), "{shown}");
    }
}
