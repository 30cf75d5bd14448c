//! The fleet on Kubernetes: the chart's Indexed Job (`fleet.enabled`) and kustomize's
//! `overlays/fleet`. Each test reads the files as written; `scripts/deploy-check.sh` renders
//! them, validates the result for the Kubernetes versions named here, and checks the rules the
//! API server applies in code with `deploy/indexed-job/validate.py`.

use std::collections::BTreeSet;

use super::{assert_indexed_policy_matches_exit_table, env_value, policies, read, repo};

/// Lines of `text`, trimmed, in order.
fn trimmed(text: &str) -> Vec<&str> {
    text.lines().map(str::trim).collect()
}

fn position(lines: &[&str], line: &str, file: &str) -> usize {
    lines
        .iter()
        .position(|l| *l == line)
        .unwrap_or_else(|| panic!("{file}: no line {line:?}"))
}

/// What `fleet-job.yaml` pipes the shared policy through, applied here to the shared policy.
const TO_FAIL_INDEX: &str = "replace \"action: FailJob\" \"action: FailIndex\"";

#[test]
fn helm_fleet_job_fails_only_its_index_on_a_permanent_exit() {
    let dir = repo().join("deploy/helm/crdb-migrate");
    let file = "templates/fleet-job.yaml";
    let text = read(&dir.join(file));
    let lines = trimmed(&text);
    assert!(
        position(&lines, "{{- if .Values.fleet.enabled }}", file)
            < position(&lines, "apiVersion: batch/v1", file),
        "{file}: the Job must be inside `if .Values.fleet.enabled`"
    );
    let include =
        format!("include \"crdb-migrate.podFailurePolicy\" \"migrate\" | {TO_FAIL_INDEX}");
    assert!(
        text.contains(&include),
        "{file}: must derive its policy from the shared one"
    );
    assert!(
        !text.contains("onExitCodes"),
        "{file}: exit codes belong in _helpers.tpl only"
    );
    for needle in [
        "completionMode: Indexed",
        "completions: {{ $fleet.shards }}",
        "backoffLimitPerIndex: {{ $fleet.backoffLimitPerIndex }}",
        "maxFailedIndexes: {{ $fleet.maxFailedIndexes }}",
        "- name: MIGRATE_SHARDS",
        "value: {{ $fleet.shards | quote }}",
        "- name: MIGRATE_PARALLELISM",
        "- name: MIGRATE_TARGETS_FILE",
        "- name: MIGRATE_TARGETS_QUERY",
        "restartPolicy: Never",
        "terminationMessagePolicy: FallbackToLogsOnError",
        "fieldPath: metadata.name",
        "include \"crdb-migrate.databaseEnv\"",
        "include \"crdb-migrate.runEnv\"",
        "helm.sh/hook-delete-policy: before-hook-creation,hook-succeeded",
    ] {
        assert!(text.contains(needle), "{file}: missing {needle:?}");
    }
    assert!(
        !lines.iter().any(|l| l.starts_with("backoffLimit:")),
        "{file}: backoffLimit would cap the retries of all indexes together"
    );

    // The shared policy, with the same replacement, gives FailIndex exactly the permanent codes.
    let helpers = dir.join("templates/_helpers.tpl");
    let shared = read(&helpers);
    assert!(
        shared.contains("- action: FailJob"),
        "the replacement must find FailJob"
    );
    let indexed = shared.replace("action: FailJob", "action: FailIndex");
    let found = policies(&indexed, &helpers);
    assert_eq!(found.len(), 1);
    assert_indexed_policy_matches_exit_table(&found[0], &helpers);
}

#[test]
fn the_single_database_jobs_step_aside_for_the_fleet() {
    let dir = repo().join("deploy/helm/crdb-migrate");
    let main = read(&dir.join("templates/migrate-job.yaml"));
    let lines = trimmed(&main);
    assert!(
        position(
            &lines,
            "{{- if not .Values.fleet.enabled }}",
            "migrate-job.yaml"
        ) < position(&lines, "apiVersion: batch/v1", "migrate-job.yaml")
    );
    assert_eq!(
        lines.iter().rev().find(|l| !l.is_empty()),
        Some(&"{{- end }}")
    );
    let contract = read(&dir.join("templates/contract-job.yaml"));
    assert!(
        contract.contains("{{- if and .Values.contractJob.enabled (not .Values.fleet.enabled) }}")
    );

    // Off by default, with every knob named in the docs.
    let values = read(&dir.join("values.yaml"));
    let fleet: Vec<&str> = values
        .lines()
        .skip_while(|l| *l != "fleet:")
        .take_while(|l| *l == "fleet:" || l.starts_with(' ') || l.is_empty())
        .map(str::trim)
        .collect();
    assert!(
        fleet.contains(&"enabled: false"),
        "fleet is off by default: {fleet:?}"
    );
    for key in [
        "shards:",
        "parallelism:",
        "targetsParallelism:",
        "backoffLimitPerIndex:",
        "maxFailedIndexes:",
        "canaryTargets:",
        "maxFailures:",
        "activeDeadlineSeconds:",
        "list: []",
        "configMap:",
        "query: \"\"",
    ] {
        assert!(
            fleet.iter().any(|l| l.starts_with(key)),
            "values.yaml: fleet has no {key:?}"
        );
    }
}

#[test]
fn kustomize_fleet_overlay_is_an_indexed_job_over_its_target_list() {
    let dir = repo().join("deploy/kustomize/overlays/fleet");
    let patch = dir.join("migrate-job-fleet.yaml");
    let text = read(&patch);
    let found = policies(&text, &patch);
    assert_eq!(found.len(), 1, "one podFailurePolicy in the patch");
    assert_indexed_policy_matches_exit_table(&found[0], &patch);
    let lines = trimmed(&text);
    for line in [
        "completionMode: Indexed",
        "backoffLimit: null",
        "readOnly: true",
    ] {
        position(&lines, line, "migrate-job-fleet.yaml");
    }
    let completions = lines
        .iter()
        .find_map(|l| l.strip_prefix("completions:"))
        .map(str::trim)
        .expect("completions");
    assert_eq!(
        env_value(&text, "MIGRATE_SHARDS").as_deref(),
        Some(completions)
    );
    let file = env_value(&text, "MIGRATE_TARGETS_FILE").expect("MIGRATE_TARGETS_FILE");
    let (mount, key) = file.rsplit_once('/').expect("a path");
    assert!(lines.contains(&format!("mountPath: {mount}").as_str()));
    assert!(
        text.contains("crdb-migrate-fleet-database"),
        "the URL with {{target}} has its own Secret"
    );

    let kust = read(&dir.join("kustomization.yaml"));
    for needle in [
        "../../base",
        "configMapGenerator:",
        &format!("- {key}"),
        "$patch: delete",
    ] {
        assert!(kust.contains(needle), "overlays/fleet: missing {needle:?}");
    }
    // The example list: valid names, no duplicates.
    let list = read(&dir.join(key));
    let names: Vec<&str> = list
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert!(!names.is_empty());
    let unique: BTreeSet<&&str> = names.iter().collect();
    assert_eq!(unique.len(), names.len(), "duplicate targets in {key}");
    for name in &names {
        let ok = name.len() <= 63
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            && !name.starts_with('-');
        assert!(ok, "{key}: {name:?} is not a target name");
    }
}

#[test]
fn deploy_check_validates_the_fleet_for_the_versions_the_docs_name() {
    let check = read(&repo().join("scripts/deploy-check.sh"));
    let versions = check
        .lines()
        .find_map(|l| l.strip_prefix("FLEET_K8S_VERSIONS=("))
        .expect("FLEET_K8S_VERSIONS in scripts/deploy-check.sh");
    let docs = read(&repo().join("docs/kubernetes.md"));
    let section = docs
        .split("## Fleets on an Indexed Job")
        .nth(1)
        .expect("docs/kubernetes.md: a section on fleets");
    // Beta (on by default) and GA: both validated, both named in the docs.
    for version in ["1.29", "1.33"] {
        assert!(
            versions.contains(version),
            "deploy-check does not validate {version}"
        );
        assert!(
            section.contains(version),
            "docs do not name Kubernetes {version}"
        );
    }
    for needle in [
        "overlays/fleet",
        "deploy/indexed-job/validate.py",
        "validate.py\" --self-test",
        "fleet.enabled=true,fleet.shards=3,fleet.targets.list[0]",
        "fleet.targets.query=",
        "fleet.targets.configMap.name=",
    ] {
        assert!(
            check.contains(needle),
            "scripts/deploy-check.sh: missing {needle:?}"
        );
    }
}
