//! Deployment tests: the files under `deploy/` and the `Dockerfile` agree with the binary.
//!
//! - The Job `podFailurePolicy` exit codes, in the Helm chart and in every kustomize Job, equal
//!   the sets derived from `crdb_migrate::Exit::ALL` by `pod_failure_action()`, so the
//!   manifests and the exit-code table cannot drift apart.
//! - The fleet's Indexed Job (chart `fleet-job.yaml`, kustomize `overlays/fleet`) maps the same
//!   exit codes with `FailIndex` in place of `FailJob`, and replaces the single-database Job.
//! - The Dockerfile keeps the runtime contract the manifests rely on.
//! - The bare-root run: the binary, copied into an otherwise empty root directory holding only
//!   what the runtime image provides, runs as uid/gid 65532 with that root mounted read-only.
//!
//! - The `rollback --to-image` integrations (Helm pre-rollback hook, Argo CD hooks, Argo Rollouts
//!   analysis wiring): `deploy/rollback_integrations.rs`.
//!
//! The YAML is read line by line (no YAML dependency): the policy is written in a fixed shape in
//! this repository, and the parser fails loudly on anything it does not recognise.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crdb_migrate::Exit;
use crdb_migrate::parts::PodFailureAction;

mod support;

#[path = "deploy/rollback_integrations.rs"]
mod rollback_integrations;

#[path = "deploy/fleet.rs"]
mod fleet;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// The exit codes whose `pod_failure_action()` is `action`, from the binary's table.
fn codes_for(action: PodFailureAction) -> BTreeSet<u8> {
    Exit::ALL
        .iter()
        .filter(|e| e.pod_failure_action() == action)
        .map(|e| e.code())
        .collect()
}

/// The rules of one `podFailurePolicy`, as found in a manifest or template.
#[derive(Debug, Default)]
struct Policy {
    fail_job: BTreeSet<u8>,
    fail_index: BTreeSet<u8>,
    count: BTreeSet<u8>,
    ignore_disruption: bool,
}

/// Parses `values: [1, 2]` (flow) or `values:` followed by `- 1` lines (block).
fn parse_values(lines: &[&str], i: usize, file: &Path) -> BTreeSet<u8> {
    let line = lines[i].trim();
    let rest = line["values:".len()..].trim();
    let parse = |s: &str| -> u8 {
        s.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{}:{}: bad exit code {s:?}", file.display(), i + 1))
    };
    if let Some(inner) = rest.strip_prefix('[') {
        let inner = inner
            .strip_suffix(']')
            .unwrap_or_else(|| panic!("{}:{}: unclosed [", file.display(), i + 1));
        return inner.split(',').map(parse).collect();
    }
    assert!(
        rest.is_empty(),
        "{}:{}: unexpected {rest:?}",
        file.display(),
        i + 1
    );
    lines[i + 1..]
        .iter()
        .map(|l| l.trim())
        .take_while(|l| l.starts_with("- ") && !l.starts_with("- action:"))
        .map(|l| parse(&l[2..]))
        .collect()
}

/// Every `podFailurePolicy` in `text`, in order.
fn policies(text: &str, file: &Path) -> Vec<Policy> {
    let lines: Vec<&str> = text.lines().collect();
    let mut found = Vec::new();
    let mut current: Option<(Policy, Option<String>)> = None;
    for (i, raw) in lines.iter().enumerate() {
        let line = raw.trim();
        if line.starts_with("#") {
            continue;
        }
        if line.starts_with("podFailurePolicy:")
            || line.contains("define \"crdb-migrate.podFailurePolicy\"")
        {
            if let Some((p, _)) = current.take() {
                found.push(p);
            }
            current = Some((Policy::default(), None));
            continue;
        }
        let Some((policy, action)) = current.as_mut() else {
            continue;
        };
        if let Some(a) = line.strip_prefix("- action:") {
            *action = Some(a.trim().to_string());
        } else if line == "- type: DisruptionTarget" || line == "type: DisruptionTarget" {
            assert_eq!(
                action.as_deref(),
                Some("Ignore"),
                "{}:{}: DisruptionTarget must be ignored",
                file.display(),
                i + 1
            );
            policy.ignore_disruption = true;
        } else if line.starts_with("operator:") {
            assert_eq!(line, "operator: In", "{}:{}", file.display(), i + 1);
        } else if line.starts_with("values:") {
            let codes = parse_values(&lines, i, file);
            match action.as_deref() {
                Some("FailJob") => policy.fail_job.extend(codes),
                Some("FailIndex") => policy.fail_index.extend(codes),
                Some("Count") => policy.count.extend(codes),
                other => panic!(
                    "{}:{}: exit codes under action {other:?}",
                    file.display(),
                    i + 1
                ),
            }
        } else if line.starts_with("template:") || line.starts_with("{{- end") {
            found.push(current.take().map(|(p, _)| p).unwrap_or_default());
        }
    }
    found.extend(current.map(|(p, _)| p));
    found
}

fn assert_policy_matches_exit_table(policy: &Policy, file: &Path) {
    assert!(
        policy.fail_index.is_empty(),
        "{}: FailIndex outside an Indexed Job",
        file.display()
    );
    assert_eq!(
        policy.fail_job,
        codes_for(PodFailureAction::FailJob),
        "{}: FailJob exit codes differ from src/exit.rs",
        file.display()
    );
    assert_eq!(
        policy.count,
        codes_for(PodFailureAction::Count),
        "{}: Count exit codes differ from src/exit.rs",
        file.display()
    );
    assert!(
        policy.ignore_disruption,
        "{}: no Ignore rule for DisruptionTarget",
        file.display()
    );
}

/// The policy of an Indexed Job with backoffLimitPerIndex: the permanent codes fail the index
/// (that shard's targets), never the whole Job; the rest as in every Job.
fn assert_indexed_policy_matches_exit_table(policy: &Policy, file: &Path) {
    assert!(
        policy.fail_job.is_empty(),
        "{}: FailJob in an Indexed Job would stop every shard",
        file.display()
    );
    let as_job = Policy {
        fail_job: policy.fail_index.clone(),
        fail_index: BTreeSet::new(),
        count: policy.count.clone(),
        ignore_disruption: policy.ignore_disruption,
    };
    assert_policy_matches_exit_table(&as_job, file);
}

/// All `*.yaml` files under `dir`, recursively, sorted.
fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).unwrap_or_else(|e| panic!("read {}: {e}", d.display())) {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|x| x == "yaml") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn exit_table_partitions_every_failure_code() {
    // Sanity of the source of truth itself: every non-zero code has exactly one action.
    let count = codes_for(PodFailureAction::Count);
    let fail = codes_for(PodFailureAction::FailJob);
    assert!(count.is_disjoint(&fail));
    let all: BTreeSet<u8> = Exit::ALL
        .iter()
        .map(|e| e.code())
        .filter(|&c| c != 0)
        .collect();
    assert_eq!(&count | &fail, all);
    assert_eq!(codes_for(PodFailureAction::None), BTreeSet::from([0]));
}

#[test]
fn helm_pod_failure_policy_matches_exit_codes() {
    // The chart keeps the policy in ONE named template; the Job must use it.
    let helpers = repo().join("deploy/helm/crdb-migrate/templates/_helpers.tpl");
    let found = policies(&read(&helpers), &helpers);
    assert_eq!(
        found.len(),
        1,
        "{}: expected one podFailurePolicy",
        helpers.display()
    );
    assert_policy_matches_exit_table(&found[0], &helpers);
    assert!(
        read(&helpers).contains("secretKeyRef:"),
        "DATABASE_URL must come from a Secret"
    );

    let job = repo().join("deploy/helm/crdb-migrate/templates/migrate-job.yaml");
    let text = read(&job);
    assert!(
        text.contains("include \"crdb-migrate.podFailurePolicy\""),
        "{}: must include the shared policy",
        job.display()
    );
    assert!(
        !text.contains("onExitCodes"),
        "{}: exit codes belong in _helpers.tpl only",
        job.display()
    );
    for needle in [
        "restartPolicy: Never",
        "terminationMessagePolicy: FallbackToLogsOnError",
        "helm.sh/hook: pre-install,pre-upgrade",
        "helm.sh/hook-delete-policy: before-hook-creation,hook-succeeded",
        "helm.sh/hook-weight:",
        "backoffLimit:",
        "activeDeadlineSeconds:",
        "fieldPath: metadata.name",
        "include \"crdb-migrate.databaseEnv\"",
    ] {
        assert!(
            text.contains(needle),
            "{}: missing {needle:?}",
            job.display()
        );
    }
}

#[test]
fn helm_contract_job_runs_the_contract_phase_after_the_rollout_and_is_off_by_default() {
    let dir = repo().join("deploy/helm/crdb-migrate");
    let job = dir.join("templates/contract-job.yaml");
    let text = read(&job);
    let trimmed: Vec<&str> = text.lines().map(str::trim).collect();
    // Disabled unless asked for: the whole Job is inside the switch.
    let pos = |needle: &str| trimmed.iter().position(|l| *l == needle);
    let switch = pos("{{- if and .Values.contractJob.enabled (not .Values.fleet.enabled) }}");
    let api = pos("apiVersion: batch/v1");
    assert!(
        switch.is_some() && switch < api,
        "{}: the Job must be inside `if .Values.contractJob.enabled`",
        job.display()
    );
    assert_eq!(
        trimmed.iter().rev().find(|l| !l.is_empty()).copied(),
        Some("{{- end }}")
    );
    for needle in [
        "helm.sh/hook: post-install,post-upgrade",
        "helm.sh/hook-delete-policy: before-hook-creation,hook-succeeded",
        "helm.sh/hook-weight: {{ .Values.contractJob.hookWeight | quote }}",
        "include \"crdb-migrate.podFailurePolicy\"",
        "include \"crdb-migrate.databaseEnv\"",
        "include \"crdb-migrate.runEnv\"",
        "restartPolicy: Never",
        "terminationMessagePolicy: FallbackToLogsOnError",
        "fieldPath: metadata.name",
        "-contract",
    ] {
        assert!(
            text.contains(needle),
            "{}: missing {needle:?}",
            job.display()
        );
    }
    assert!(
        !text.contains("onExitCodes"),
        "exit codes belong in _helpers.tpl only"
    );
    let phase: Vec<&&str> = trimmed
        .iter()
        .skip_while(|l| **l != "- name: MIGRATE_PHASE")
        .take(2)
        .collect();
    assert_eq!(
        phase,
        [&"- name: MIGRATE_PHASE", &"value: contract"],
        "{}",
        job.display()
    );

    // The main hook Job takes MIGRATE_PHASE from `phase`; the values default to "all" and off.
    let main = read(&dir.join("templates/migrate-job.yaml"));
    assert!(
        main.contains("include \"crdb-migrate.phase\""),
        "migrate-job.yaml sets MIGRATE_PHASE"
    );
    assert!(main.contains("- name: MIGRATE_PHASE"));
    let helpers = read(&dir.join("templates/_helpers.tpl"));
    assert!(helpers.contains("define \"crdb-migrate.phase\"") && helpers.contains("fail"));
    let values = read(&dir.join("values.yaml"));
    assert!(
        values.lines().any(|l| l == "phase: \"\""),
        "phase defaults to all"
    );
    let enabled: Vec<&str> = values
        .lines()
        .skip_while(|l| *l != "contractJob:")
        .take(3)
        .map(str::trim)
        .collect();
    assert!(
        enabled.contains(&"enabled: false"),
        "contractJob is off by default: {enabled:?}"
    );
}

/// The `value:` following `- name: NAME` in a manifest, when there is one.
fn env_value(text: &str, name: &str) -> Option<String> {
    let mut lines = text.lines().map(str::trim);
    lines.find(|l| *l == format!("- name: {name}"))?;
    lines
        .next()
        .and_then(|l| l.strip_prefix("value:"))
        .map(|v| v.trim().trim_matches('"').to_string())
}

#[test]
fn kustomize_overlays_run_the_phases() {
    let k = repo().join("deploy/kustomize/overlays");
    let expand = [
        k.join("canary/migrate-job-expand.yaml"),
        k.join("blue-green/migrate-job-green.yaml"),
    ];
    for f in &expand {
        assert_eq!(
            env_value(&read(f), "MIGRATE_PHASE").as_deref(),
            Some("expand"),
            "{}",
            f.display()
        );
    }
    let canary = read(&k.join("canary/migrate-job-expand.yaml"));
    assert!(
        env_value(&canary, "MIGRATE_TARGET_VERSION").is_none(),
        "the phase, not a pinned target, decides where expand stops"
    );
    let contract = k.join("contract/migrate-job-contract.yaml");
    assert_eq!(
        env_value(&read(&contract), "MIGRATE_PHASE").as_deref(),
        Some("contract")
    );
    let kust = read(&k.join("contract/kustomization.yaml"));
    for needle in [
        "../../base",
        "nameSuffix: -contract",
        "$patch: delete",
        "kind: Deployment",
    ] {
        assert!(
            kust.contains(needle),
            "overlays/contract: missing {needle:?}"
        );
    }
    let green = read(&k.join("blue-green-contract/kustomization.yaml"));
    assert!(green.contains("../contract") && green.contains("nameSuffix: -green"));
    assert!(
        read(&k.join("blue-green-contract/migrate-job-green.yaml"))
            .contains("crdb-migrate-database-green")
    );
    // deploy-check renders and validates both contract overlays.
    let check = read(&repo().join("scripts/deploy-check.sh"));
    for dir in ["overlays/contract", "overlays/blue-green-contract"] {
        assert!(
            check.contains(dir),
            "scripts/deploy-check.sh does not render {dir}"
        );
    }
    assert!(
        check.contains("phase=expand,contractJob.enabled=true"),
        "the chart is linted with the contract Job on"
    );
}

#[test]
fn helm_deadline_is_below_helm_default_timeout() {
    let values = repo().join("deploy/helm/crdb-migrate/values.yaml");
    let text = read(&values);
    let deadline: u32 = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("activeDeadlineSeconds:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{}: no job.activeDeadlineSeconds", values.display()));
    assert!(
        deadline < 300,
        "activeDeadlineSeconds {deadline} must stay below helm's default --timeout of 300s"
    );
}

#[test]
fn kustomize_pod_failure_policies_match_exit_codes() {
    let dir = repo().join("deploy/kustomize");
    let mut jobs_with_policy = 0;
    for file in yaml_files(&dir) {
        let text = read(&file);
        // Whole Jobs, and patches that bring their own policy: any other strategic-merge patch
        // (no image) inherits the base's policy.
        let whole = text.contains("image:");
        if !text.contains("kind: Job") || !(whole || text.contains("podFailurePolicy:")) {
            continue;
        }
        let found = policies(&text, &file);
        if found.is_empty() {
            // A Job without a policy must not retry at all (the run-once rollback Job).
            assert!(
                text.contains("backoffLimit: 0"),
                "{}: a Job without podFailurePolicy must have backoffLimit: 0",
                file.display()
            );
            continue;
        }
        assert!(
            !whole || text.contains("restartPolicy: Never"),
            "{}: podFailurePolicy requires restartPolicy: Never",
            file.display()
        );
        let indexed = text.contains("completionMode: Indexed");
        for policy in &found {
            if indexed {
                assert_indexed_policy_matches_exit_table(policy, &file);
            } else {
                assert_policy_matches_exit_table(policy, &file);
            }
        }
        jobs_with_policy += found.len();
    }
    assert!(
        jobs_with_policy >= 1,
        "no kustomize Job with a podFailurePolicy under {}",
        dir.display()
    );
}

#[test]
fn policy_parser_rejects_drift() {
    // The checker itself: a policy missing 143 or listing 20 as Count is caught.
    let file = Path::new("inline.yaml");
    let drifted = "podFailurePolicy:\n  rules:\n    - action: Ignore\n      onPodConditions:\n        - type: DisruptionTarget\n          status: \"True\"\n    - action: FailJob\n      onExitCodes:\n        operator: In\n        values: [21, 30, 31, 32]\n    - action: Count\n      onExitCodes:\n        operator: In\n        values:\n          - 10\n          - 11\n          - 12\n          - 13\n          - 20\ntemplate:\n";
    let found = policies(drifted, file);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].fail_job, BTreeSet::from([21, 30, 31, 32]));
    assert_eq!(found[0].count, BTreeSet::from([10, 11, 12, 13, 20]));
    assert!(found[0].ignore_disruption);
    let caught = std::panic::catch_unwind(|| assert_policy_matches_exit_table(&found[0], file));
    assert!(caught.is_err());
}

#[test]
fn dockerfile_keeps_the_runtime_contract() {
    let path = repo().join("Dockerfile");
    let text = read(&path);
    let runtime: Vec<&str> = text
        .lines()
        .skip_while(|l| !(l.starts_with("FROM ") && l.contains(" AS runtime")))
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert!(
        !runtime.is_empty(),
        "Dockerfile: no `FROM ... AS runtime` stage"
    );
    assert!(text.contains("cargo build --release --locked"));
    assert!(runtime.contains(&"ENV MIGRATIONS_DIR=/migrations"));
    assert!(runtime.contains(&"USER 65532:65532"));
    assert!(runtime.contains(&"ENTRYPOINT [\"/usr/local/bin/crdb-migrate\"]"));
    let copies: Vec<&&str> = runtime.iter().filter(|l| l.starts_with("COPY")).collect();
    assert_eq!(
        copies.len(),
        2,
        "runtime stage copies exactly the binary and /migrations: {copies:?}"
    );
    assert!(
        copies
            .iter()
            .any(|l| l.ends_with("/usr/local/bin/crdb-migrate"))
    );
    assert!(copies.iter().any(|l| l.ends_with("migrations /migrations")));
}

// ---------------------------------------------------------------------------------------------
// The bare-root, non-root, read-only run
// ---------------------------------------------------------------------------------------------

/// The runtime image's user and group (distroless "nonroot").
const RUNTIME_UID: u32 = 65532;

/// Used when the repository has no `migrations/` directory yet.
const FIXTURE_MIGRATIONS: &[(&str, &str)] = &[
    (
        "20240101000000_create_widgets.sql",
        "CREATE TABLE widgets (id INT8 PRIMARY KEY, name TEXT NOT NULL);\n-- @UNDO\nDROP TABLE widgets;\n",
    ),
    (
        "20240102000000_add_widget_colour.sql",
        "ALTER TABLE widgets ADD COLUMN colour TEXT;\n-- @UNDO\nALTER TABLE widgets DROP COLUMN colour;\n",
    ),
];

/// The binary under test: the release build when `CRDB_MIGRATE_RELEASE_BIN` names one (what the
/// image ships), else the one cargo built for this test run.
fn binary() -> PathBuf {
    std::env::var_os("CRDB_MIGRATE_RELEASE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_crdb-migrate")))
}

/// Shared libraries `ldd` lists for `bin` (none for a static binary).
fn shared_libraries(bin: &Path) -> Vec<PathBuf> {
    let out = Command::new("ldd").arg(bin).output().expect("run ldd");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" or "/lib64/ld-linux... (0x...)"
            let path = l.split("=>").last()?.split_whitespace().next()?;
            path.starts_with('/').then(|| PathBuf::from(path))
        })
        .collect()
}

fn copy_into(root: &Path, src: &Path, dest_in_root: &str, mode: u32) {
    let dest = root.join(dest_in_root.trim_start_matches('/'));
    fs::create_dir_all(dest.parent().expect("parent")).expect("create dirs");
    // fs::copy follows symlinks, so ld-linux's symlink becomes the file it points to.
    fs::copy(src, &dest)
        .unwrap_or_else(|e| panic!("copy {} -> {}: {e}", src.display(), dest.display()));
    fs::set_permissions(&dest, fs::Permissions::from_mode(mode)).expect("chmod");
}

/// Builds what the runtime stage provides: the binary at /usr/local/bin, the migrations at
/// /migrations, and, for a dynamically linked binary, the libraries distroless/cc ships (glibc,
/// libgcc_s, the loader) plus its /etc/passwd and /etc/group. Nothing else: no shell, no /tmp
/// that can be written.
fn runtime_root() -> tempfile::TempDir {
    let root = tempfile::Builder::new()
        .prefix("crdb-migrate-root-")
        .tempdir()
        .expect("tempdir");
    fs::set_permissions(root.path(), fs::Permissions::from_mode(0o755)).expect("chmod root");
    let bin = binary();
    copy_into(root.path(), &bin, "/usr/local/bin/crdb-migrate", 0o755);
    for lib in shared_libraries(&bin) {
        copy_into(root.path(), &lib, lib.to_str().expect("utf-8 path"), 0o755);
    }
    let etc = root.path().join("etc");
    fs::create_dir_all(&etc).expect("mkdir etc");
    fs::write(etc.join("passwd"), "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n").expect("passwd");
    fs::write(etc.join("group"), "root:x:0:\nnonroot:x:65532:\n").expect("group");
    for dir in ["proc", "dev", "tmp"] {
        fs::create_dir_all(root.path().join(dir)).expect("mkdir");
    }
    fs::write(root.path().join("dev/null"), "").expect("dev/null mount point");

    let dest = root.path().join("migrations");
    fs::create_dir_all(&dest).expect("mkdir migrations");
    let examples = repo().join("migrations");
    if examples.is_dir() {
        copy_tree(&examples, &dest);
    } else {
        eprintln!("note: no migrations/ in the repository yet; using the test's fixture set");
        for (name, body) in FIXTURE_MIGRATIONS {
            fs::write(dest.join(name), body).expect("write fixture");
        }
    }
    root
}

fn copy_tree(src: &Path, dest: &Path) {
    for entry in fs::read_dir(src).expect("read migrations") {
        let path = entry.expect("entry").path();
        let target = dest.join(path.file_name().expect("file name"));
        if path.is_dir() {
            fs::create_dir_all(&target).expect("mkdir");
            copy_tree(&path, &target);
        } else {
            fs::copy(&path, &target).expect("copy migration");
            fs::set_permissions(&target, fs::Permissions::from_mode(0o644)).expect("chmod");
        }
    }
}

/// Runs `crdb-migrate ARGS` inside `root`, as uid/gid 65532 with no supplementary groups, in a
/// private mount namespace where `root` is bind-mounted read-only (with /proc and /dev/null, as
/// the kubelet provides them). `chroot --userspec` drops to 65532 after chroot(2): dropping
/// first (setpriv) would lose the CAP_SYS_CHROOT the chroot needs. Before that, a write as
/// root into the view must fail, proving it read-only.
fn run_in_root(root: &Path, env: &[(&str, &str)], args: &[&str]) -> support::Output {
    let script = r#"
        set -e
        root="$1"; id="$2"; shift 2
        mount --bind "$root" "$root"
        mount -o remount,bind,ro "$root"
        mount -t proc proc "$root/proc"
        mount --bind /dev/null "$root/dev/null"
        if ( : > "$root/write-probe" ) 2>/dev/null; then echo "root view is writable" >&2; exit 97; fi
        exec chroot --userspec="$id:$id" --groups="$id" "$root" /usr/local/bin/crdb-migrate "$@"
    "#;
    let mut cmd = Command::new("unshare");
    cmd.args([
        "--mount",
        "--propagation",
        "private",
        "--",
        "sh",
        "-c",
        script,
        "sh",
    ])
    .arg(root)
    .arg(RUNTIME_UID.to_string())
    .args(args)
    .env_clear()
    .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
    .env("MIGRATIONS_DIR", "/migrations")
    .env("LOG_FORMAT", "json");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let run = support::run(&mut cmd);
    assert_ne!(run.code, 97, "the root view was writable: {}", run.stderr);
    run
}

#[test]
#[cfg_attr(
    not(crdb_test_bare_root),
    ignore = "needs root and `unshare --mount`, with chroot, mount and ldd"
)]
fn bare_root_nonroot_readonly_verify_and_missing_url() {
    let root = runtime_root();

    // verify needs no database: it reads /migrations and must not need to write anywhere.
    let run = run_in_root(root.path(), &[], &["verify"]);
    assert_eq!(
        run.code, 0,
        "verify in the bare root:\nstdout:\n{}\nstderr:\n{}",
        run.stdout, run.stderr
    );

    // The bare image's default command is migrate; without DATABASE_URL that is a
    // configuration error (exit 20) named in the output, not a crash on a missing file.
    let run = run_in_root(root.path(), &[], &[]);
    assert_eq!(
        run.code,
        i32::from(Exit::BadInput.code()),
        "no DATABASE_URL:\nstdout:\n{}\nstderr:\n{}",
        run.stdout,
        run.stderr
    );
    assert!(
        format!("{}{}", run.stdout, run.stderr).contains("DATABASE_URL"),
        "the error names DATABASE_URL:\n{}{}",
        run.stdout,
        run.stderr
    );
}

#[test]
#[cfg_attr(
    not(crdb_test_bare_root),
    ignore = "needs root and `unshare --mount`, with chroot, mount and ldd"
)]
fn bare_root_nonroot_readonly_migrate_applies_to_a_test_database() {
    // `DATABASE_URL=... MIGRATIONS_DIR=/migrations crdb-migrate migrate` exits 0 and records
    // one `_migrations` row per applied file.
    let root = runtime_root();
    let files = fs::read_dir(root.path().join("migrations"))
        .expect("read migrations")
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "sql"))
        })
        .count();
    assert!(files > 0, "no migrations to apply");

    let db = support::fresh_db("deploy_bare_root");
    let env = [
        ("DATABASE_URL", db.url.as_str()),
        ("MIGRATE_HOLDER", "bare-root-test"),
        ("MIGRATE_WAIT_TIMEOUT", "30s"),
    ];
    let run = run_in_root(root.path(), &env, &["migrate"]);
    run.expect_code(0);
    let rows = support::psql(&db.url, "SELECT count(*) FROM _migrations");
    assert_eq!(
        rows,
        files.to_string(),
        "one _migrations row per migration file"
    );

    // A second run is a no-op that still exits 0.
    run_in_root(root.path(), &env, &["migrate"]).expect_code(0);
}
