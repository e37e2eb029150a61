//! The recipes of docs/pipelines.md and docs/kubernetes, run as a pipeline would run them: the
//! shell scripts by bash with the built reseal on PATH, the Kubernetes Task's and Job's command
//! lines and the container image's entry command directly (no cluster or container engine
//! here), on copies of the sample images. The Job and the Task are validated against JSON
//! Schemas of their API objects (tests/schemas/, every field of each object listed, so a
//! misspelt or misplaced one is refused, as the API server refuses it), and the Containerfile
//! against the Dockerfile syntax and what `cargo xtask dist` puts in the bundle.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{code, text};
use reseal_testutil::ntfs_image::{sample_disk, Container};
use reseal_testutil::{sample_dir_copy, sample_wim_copy, workspace_root};
use serde_json::Value;
use serde_yaml::Value as Yaml;

const RESEAL_IN_IMAGE: &str = "/usr/local/bin/reseal";

/// Runs a script of docs/ with bash, the built reseal first on PATH.
fn run_script(script: &str, args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    let binary = PathBuf::from(env!("CARGO_BIN_EXE_reseal"));
    let path = format!(
        "{}:{}",
        binary.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    Command::new("bash")
        .arg(workspace_root().join(script))
        .args(args)
        .env("PATH", path)
        .current_dir(workspace_root())
        .output()
        .expect("bash runs")
}

fn read_json(path: &Path) -> Value {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn read_yaml(relative: &str) -> Yaml {
    let path = workspace_root().join(relative);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{relative}: {e}"));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{relative}: {e}"))
}

fn strings(value: &Yaml) -> Vec<String> {
    value
        .as_sequence()
        .unwrap_or_else(|| panic!("not a list: {value:?}"))
        .iter()
        .map(|item| item.as_str().expect("a string").to_string())
        .collect()
}

#[test]
fn packer_post_processor_script_generalizes_and_verifies_every_disk_format() {
    let dir = tempfile::tempdir().unwrap();
    let disk = sample_disk(dir.path(), Container::Vhdx);
    let output = run_script("docs/pipelines/generalize-image.sh", &[&disk]);
    assert_eq!(code(&output), 0, "{}", text(&output));
    let document = read_json(&PathBuf::from(format!("{}.reseal.json", disk.display())));
    assert_eq!(document["dry_run"], false);
    assert!(
        document["applied"]["hives_written"].is_array(),
        "{document}"
    );
    assert!(text(&output).contains("armed"), "{}", text(&output));

    // A second run is refused (already generalized): the script fails with reseal's code.
    let result = dir.path().join("again.json");
    let again = run_script("docs/pipelines/generalize-image.sh", &[&disk, &result]);
    assert_eq!(code(&again), 3, "{}", text(&again));

    // Options after `--` reach reseal.
    let raw_dir = tempfile::tempdir().unwrap();
    let raw = sample_disk(raw_dir.path(), Container::Raw);
    let named = run_script(
        "docs/pipelines/generalize-image.sh",
        &[
            &raw,
            &raw_dir.path().join("raw.json"),
            &"--",
            &"--computer-name",
            &"LAB-07",
        ],
    );
    assert_eq!(code(&named), 0, "{}", text(&named));
    let document = read_json(&raw_dir.path().join("raw.json"));
    assert!(document.to_string().contains("LAB-07"), "{document}");

    // What the QEMU and Proxmox builders leave by default (qcow2), and vSphere's VMDK.
    for container in [Container::Qcow2, Container::Vmdk] {
        let dir = tempfile::tempdir().unwrap();
        let disk = sample_disk(dir.path(), container);
        let output = run_script("docs/pipelines/generalize-image.sh", &[&disk]);
        assert_eq!(code(&output), 0, "{container:?}: {}", text(&output));
        assert!(text(&output).contains("armed"), "{}", text(&output));
        reseal_testutil::ntfs_image::assert_qemu_img_check_clean(&disk);
    }

    let packer = std::fs::read_to_string(
        workspace_root().join("docs/pipelines/packer-post-processor.pkr.hcl"),
    )
    .unwrap();
    assert!(packer.contains(r#"post-processor "shell-local""#));
    assert!(packer.contains("docs/pipelines/generalize-image.sh"));
}

#[test]
fn factory_loop_collects_every_result_and_goes_on_after_a_failure() {
    let directory = sample_dir_copy().expect("fixtures/sample is in the repository");
    let (wim_dir, wim) = sample_wim_copy().expect("fixtures/sample.wim is in the repository");
    let broken = wim_dir.path().join("broken.vhdx");
    std::fs::write(&broken, b"not a disk image").unwrap();
    let results = tempfile::tempdir().unwrap();

    let output = run_script(
        "docs/pipelines/factory.sh",
        &[&results.path(), &directory.path(), &broken, &wim],
    );
    assert_eq!(code(&output), 1, "one image failed: {}", text(&output));

    let summary = read_json(&results.path().join("summary.json"));
    let entries = summary.as_array().expect("an array");
    let codes: Vec<i64> = entries
        .iter()
        .map(|entry| entry["exit_code"].as_i64().unwrap())
        .collect();
    assert_eq!(codes.len(), 3, "{summary}");
    assert_eq!((codes[0], codes[2]), (0, 0), "{summary}");
    assert!(codes[1] == 2 || codes[1] == 4, "{summary}");
    for entry in [&entries[0], &entries[2]] {
        let document = read_json(&results.path().join(entry["result"].as_str().unwrap()));
        assert_eq!(document["dry_run"], false, "{document}");
        assert!(document["applied"].is_object(), "{document}");
    }
    let log = std::fs::read_to_string(results.path().join("broken.vhdx.log")).unwrap();
    assert!(
        log.contains("broken.vhdx"),
        "the failure names the image: {log}"
    );
}

#[test]
fn github_actions_job_runs_the_factory_script() {
    let workflow = read_yaml("docs/pipelines/github-actions.yml");
    let steps = workflow["jobs"]["generalize"]["steps"]
        .as_sequence()
        .expect("the job has steps");
    let runs: Vec<&str> = steps.iter().filter_map(|s| s["run"].as_str()).collect();
    assert!(
        runs.iter().any(|r| r.contains("docs/pipelines/factory.sh")),
        "{runs:?}"
    );
    assert!(workspace_root().join("docs/pipelines/factory.sh").exists());
    for step in steps {
        assert!(
            step["uses"].is_string() || step["run"].is_string(),
            "a step without uses or run: {step:?}"
        );
    }
}

/// Checks the restricted security context every reseal container runs with.
fn assert_unprivileged(container: &Yaml, pod_non_root: bool, what: &str) {
    let security = &container["securityContext"];
    assert!(
        pod_non_root || security["runAsNonRoot"] == Yaml::Bool(true),
        "{what} runs as root"
    );
    assert_eq!(
        security["allowPrivilegeEscalation"],
        Yaml::Bool(false),
        "{what}"
    );
    assert_eq!(
        strings(&security["capabilities"]["drop"]),
        ["ALL"],
        "{what}"
    );
    assert!(
        security["capabilities"]["add"].is_null(),
        "{what} adds capabilities"
    );
    assert!(security["privileged"].is_null(), "{what}");
}

/// `command` and `args` of a container, with the image's reseal replaced by the built one and
/// the mount path by `mount`; `params` substitute Tekton's `$(params.NAME)`, an array param
/// expanding in place.
fn command_line(container: &Yaml, mount: &Path, params: &[(&str, Vec<&str>)]) -> Vec<String> {
    let mount_path = container["volumeMounts"][0]["mountPath"].as_str().unwrap();
    let mut line = strings(&container["command"]);
    assert_eq!(line, [RESEAL_IN_IMAGE], "the image's entry point");
    line[0] = env!("CARGO_BIN_EXE_reseal").to_string();
    for arg in strings(&container["args"]) {
        if let Some((_, values)) = params
            .iter()
            .find(|(name, _)| arg == format!("$(params.{name}[*])"))
        {
            line.extend(values.iter().map(|v| v.to_string()));
            continue;
        }
        let mut arg = arg.replace(mount_path, mount.to_str().unwrap());
        for (name, values) in params {
            arg = arg.replace(&format!("$(params.{name})"), values[0]);
        }
        assert!(!arg.contains("$("), "an unknown parameter in {arg}");
        line.push(arg);
    }
    line
}

fn run_line(line: &[String]) -> Output {
    Command::new(&line[0]).args(&line[1..]).output().unwrap()
}

/// A claim's contents as KubeVirt leaves them: the disk image as `disk.img`.
fn claim_with_sample_disk() -> tempfile::TempDir {
    let claim = tempfile::tempdir().unwrap();
    let build = tempfile::tempdir().unwrap();
    let disk = sample_disk(build.path(), Container::Vhdx);
    std::fs::rename(&disk, claim.path().join("disk.img")).unwrap();
    claim
}

#[test]
fn tekton_task_steps_run_on_a_claim() {
    let task = read_yaml("docs/kubernetes/task.yaml");
    assert_eq!(task["apiVersion"], Yaml::from("tekton.dev/v1"));
    assert_eq!(task["kind"], Yaml::from("Task"));
    assert!(task["metadata"]["name"].is_string());
    let params = task["spec"]["params"].as_sequence().unwrap();
    let param = |name: &str| {
        params
            .iter()
            .find(|p| p["name"].as_str() == Some(name))
            .unwrap_or_else(|| panic!("no param {name}"))
    };
    assert_eq!(param("pvc")["type"], Yaml::from("string"));
    assert_eq!(param("options")["type"], Yaml::from("array"));
    let disk_default = param("disk")["default"].as_str().unwrap().to_string();
    let volumes = task["spec"]["volumes"].as_sequence().unwrap();
    assert_eq!(
        volumes[0]["persistentVolumeClaim"]["claimName"],
        Yaml::from("$(params.pvc)")
    );

    let claim = claim_with_sample_disk();
    let steps = task["spec"]["steps"].as_sequence().unwrap();
    assert_eq!(steps.len(), 2);
    for step in steps {
        let name = step["name"].as_str().unwrap();
        assert!(step["image"].is_string(), "{name}");
        assert_eq!(
            step["volumeMounts"][0]["name"], volumes[0]["name"],
            "{name}"
        );
        assert_unprivileged(step, false, name);
        let line = command_line(
            step,
            claim.path(),
            &[
                ("disk", vec![disk_default.as_str()]),
                ("options", vec!["--computer-name", "LAB-01"]),
            ],
        );
        let output = run_line(&line);
        assert_eq!(code(&output), 0, "step {name}: {line:?}: {}", text(&output));
        if name == "generalize" {
            let document: Value = serde_json::from_slice(&output.stdout).unwrap();
            assert!(document.to_string().contains("LAB-01"), "{document}");
        }
    }
}

#[test]
fn kubernetes_job_runs_on_a_claim_and_the_containerfile_matches() {
    let job = read_yaml("docs/kubernetes/job.yaml");
    assert_eq!(job["apiVersion"], Yaml::from("batch/v1"));
    assert_eq!(job["kind"], Yaml::from("Job"));
    let pod = &job["spec"]["template"]["spec"];
    assert_eq!(pod["restartPolicy"], Yaml::from("Never"));
    assert_eq!(pod["securityContext"]["runAsNonRoot"], Yaml::Bool(true));
    let user = pod["securityContext"]["runAsUser"].as_u64().unwrap();
    assert_ne!(user, 0);
    assert!(pod["volumes"][0]["persistentVolumeClaim"]["claimName"].is_string());
    let containers = pod["containers"].as_sequence().unwrap();
    assert_eq!(containers.len(), 1);
    assert_unprivileged(&containers[0], true, "the job's container");

    let claim = claim_with_sample_disk();
    let line = command_line(&containers[0], claim.path(), &[]);
    let output = run_line(&line);
    assert_eq!(code(&output), 0, "{line:?}: {}", text(&output));
    let verify = Command::new(env!("CARGO_BIN_EXE_reseal"))
        .arg("verify")
        .arg(claim.path().join("disk.img"))
        .output()
        .unwrap();
    assert_eq!(code(&verify), 0, "{}", text(&verify));

    // The image's entry point is the command both examples run, and its user is the Job's.
    let containerfile =
        std::fs::read_to_string(workspace_root().join("docs/kubernetes/Containerfile")).unwrap();
    let instructions: Vec<&str> = containerfile
        .lines()
        .filter(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty())
        .collect();
    let last_stage = instructions
        .iter()
        .rposition(|l| l.starts_with("FROM "))
        .unwrap();
    let stage = &instructions[last_stage..];
    assert!(
        stage.contains(&format!(r#"ENTRYPOINT ["{RESEAL_IN_IMAGE}"]"#).as_str()),
        "{stage:?}"
    );
    assert!(
        stage.contains(&format!("USER {user}:{user}").as_str()),
        "the image runs as the Job's user: {stage:?}"
    );
    assert!(
        instructions
            .iter()
            .any(|l| l.contains("target/dist/reseal-")),
        "the image is made from the release bundle"
    );
}

/// The Job or Task at `relative` as JSON, and the validator of the schema `schema` in
/// tests/schemas.
fn kubernetes_document(relative: &str, schema: &str) -> (Value, jsonschema::Validator) {
    let document = serde_json::to_value(read_yaml(relative)).unwrap();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/schemas/{schema}"));
    let schema: Value = read_json(&path);
    jsonschema::meta::validate(&schema).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let validator = jsonschema::validator_for(&schema).unwrap();
    (document, validator)
}

fn assert_valid(validator: &jsonschema::Validator, document: &Value, what: &str) {
    let errors: Vec<String> = validator
        .iter_errors(document)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{what}: {errors:#?}");
}

#[test]
fn the_job_and_the_task_match_their_api_schemas() {
    let (job, job_schema) =
        kubernetes_document("docs/kubernetes/job.yaml", "kubernetes-job.schema.json");
    assert_valid(&job_schema, &job, "job.yaml");
    let (task, task_schema) =
        kubernetes_document("docs/kubernetes/task.yaml", "tekton-task.schema.json");
    assert_valid(&task_schema, &task, "task.yaml");

    // What the API server would refuse, the schemas refuse.
    let mut misspelt = job.clone();
    let container = &mut misspelt["spec"]["template"]["spec"]["containers"][0];
    let security = container["securityContext"].take();
    container.as_object_mut().unwrap().remove("securityContext");
    container["securityContex"] = security;
    assert!(!job_schema.is_valid(&misspelt), "a misspelt field");
    let mut misplaced = job.clone();
    misplaced["spec"]["restartPolicy"] = Value::from("Never");
    assert!(!job_schema.is_valid(&misplaced), "a pod field on the job");
    let mut bad_user = job.clone();
    bad_user["spec"]["template"]["spec"]["securityContext"]["runAsUser"] = Value::from("65532");
    assert!(!job_schema.is_valid(&bad_user), "a user id as text");
    let mut bad_default = task.clone();
    let options = bad_default["spec"]["params"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|param| param["name"] == "options")
        .unwrap();
    options["default"] = Value::from("--skip-rearm");
    assert!(
        !task_schema.is_valid(&bad_default),
        "an array param with a text default"
    );
    let mut old_api = task.clone();
    old_api["apiVersion"] = Value::from("tekton.dev/v1beta1");
    assert!(!task_schema.is_valid(&old_api));
}

/// The instructions of a Dockerfile, continuation lines joined, comments and blank lines left
/// out: (keyword, arguments).
fn instructions(containerfile: &str) -> Vec<(String, String)> {
    let mut logical = Vec::new();
    let mut current = String::new();
    for line in containerfile.lines() {
        let trimmed = line.trim();
        if current.is_empty() && (trimmed.is_empty() || trimmed.starts_with('#')) {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(part) => {
                current.push_str(part);
                current.push(' ');
            }
            None => {
                current.push_str(trimmed);
                logical.push(std::mem::take(&mut current));
            }
        }
    }
    assert!(
        current.is_empty(),
        "the Containerfile ends in a continuation"
    );
    logical
        .iter()
        .map(|line| {
            let (keyword, arguments) = line.split_once(' ').unwrap_or((line, ""));
            (keyword.to_string(), arguments.trim().to_string())
        })
        .collect()
}

/// `true` when `text` matches the shell pattern `pattern` (`*` only).
fn glob_match(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, rest)) => {
            text.starts_with(head)
                && (head.len()..=text.len())
                    .any(|at| text.is_char_boundary(at) && glob_match(rest, &text[at..]))
        }
    }
}

#[test]
fn the_containerfile_is_valid_and_its_entry_command_runs() {
    let containerfile =
        std::fs::read_to_string(workspace_root().join("docs/kubernetes/Containerfile")).unwrap();
    let instructions = instructions(&containerfile);
    // The instructions of the Dockerfile reference, written in upper case as it advises.
    const KEYWORDS: [&str; 17] = [
        "FROM",
        "RUN",
        "CMD",
        "LABEL",
        "EXPOSE",
        "ENV",
        "ADD",
        "COPY",
        "ENTRYPOINT",
        "VOLUME",
        "USER",
        "WORKDIR",
        "ARG",
        "ONBUILD",
        "STOPSIGNAL",
        "HEALTHCHECK",
        "SHELL",
    ];
    assert_eq!(instructions[0].0, "FROM", "a build starts FROM an image");
    let mut stages: Vec<String> = Vec::new();
    let mut entry = Vec::new();
    let mut cmd = Vec::new();
    for (keyword, arguments) in &instructions {
        assert!(
            KEYWORDS.contains(&keyword.as_str()),
            "unknown instruction {keyword}"
        );
        assert!(!arguments.is_empty(), "{keyword} without arguments");
        match keyword.as_str() {
            "FROM" => {
                let words: Vec<&str> = arguments.split_whitespace().collect();
                match words[..] {
                    [_image] => stages.push(String::new()),
                    [_image, as_word, name] if as_word.eq_ignore_ascii_case("AS") => {
                        stages.push(name.to_string())
                    }
                    _ => panic!("FROM {arguments}"),
                }
            }
            "COPY" => {
                if let Some(stage) = arguments
                    .strip_prefix("--from=")
                    .and_then(|rest| rest.split_whitespace().next())
                {
                    let earlier = &stages[..stages.len() - 1];
                    assert!(
                        earlier.iter().any(|s| s == stage),
                        "COPY --from={stage}: no such stage"
                    );
                }
            }
            "ENTRYPOINT" | "CMD" => {
                let exec_form: Vec<String> = serde_json::from_str(arguments)
                    .unwrap_or_else(|e| panic!("{keyword} {arguments}: not the exec form: {e}"));
                if keyword == "ENTRYPOINT" {
                    entry = exec_form;
                } else {
                    cmd = exec_form;
                }
            }
            "USER" => {
                let (user, group) = arguments.split_once(':').unwrap();
                assert!(user.parse::<u32>().unwrap() != 0 && group.parse::<u32>().is_ok());
            }
            _ => {}
        }
    }
    assert_eq!(entry, [RESEAL_IN_IMAGE]);

    // The bundle it is made from is the one `cargo xtask dist` writes, with the files it copies.
    let bundle = format!(
        "reseal-{}-{}-linux",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::ARCH
    );
    let add = instructions.iter().find(|(k, _)| k == "ADD").unwrap();
    let (source, _) = add.1.split_once(' ').unwrap();
    assert!(
        glob_match(source, &format!("target/dist/{bundle}.tar.gz")),
        "ADD {source}"
    );
    assert!(containerfile.contains("mv /opt/reseal-*-linux /opt/reseal"));
    assert!(glob_match("/opt/reseal-*-linux", &format!("/opt/{bundle}")));
    let dist = std::fs::read_to_string(workspace_root().join("xtask/src/dist.rs")).unwrap();
    for file in ["reseal", "LICENSE", "README.md"] {
        assert!(
            dist.contains(&format!("stage.join(\"{file}\")")),
            "the bundle lacks {file}"
        );
        assert!(
            containerfile.contains(&format!("/opt/reseal/{file}")),
            "{file} is not copied"
        );
    }

    // The image's own command, run as the container runs it.
    let mut line = entry.clone();
    line.extend(cmd);
    line[0] = env!("CARGO_BIN_EXE_reseal").to_string();
    let output = run_line(&line);
    assert_eq!(code(&output), 0, "{line:?}: {}", text(&output));
    assert!(String::from_utf8_lossy(&output.stdout).contains("Usage: reseal"));
}
