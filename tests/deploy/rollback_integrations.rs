//! The deployment integrations of `rollback --to-image`: the Helm pre-rollback hook, the
//! kustomize Job and Argo CD hooks, the Argo Rollouts examples. Each test reads the files as
//! written; `scripts/deploy-check.sh` renders them, validates the result and asserts the same
//! wiring on the rendered manifests, and the last test checks that it still does.

use std::collections::BTreeSet;

use super::{PodFailureAction, codes_for, env_value, policies, read, repo};

/// The lines of `text` without comments and surrounding blanks, in order.
fn code_lines(text: &str) -> Vec<&str> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
}

/// Position of the first line equal to `line`, panicking with the file's name when absent.
fn line_at(lines: &[&str], line: &str, file: &str) -> usize {
    lines
        .iter()
        .position(|l| *l == line)
        .unwrap_or_else(|| panic!("{file}: no line {line:?}"))
}

fn assert_contains(text: &str, needles: &[&str], file: &str) {
    for needle in needles {
        assert!(text.contains(needle), "{file}: missing {needle:?}");
    }
}

#[test]
fn exit_32_refused_rollback_fails_the_job_at_once() {
    // The refusal of `rollback --to-image` (no stored undo, irreversible) must not be retried.
    assert!(codes_for(PodFailureAction::FailJob).contains(&32));
    assert!(!codes_for(PodFailureAction::Count).contains(&32));
}

#[test]
fn helm_pre_rollback_hook_runs_rollback_to_image_and_is_off_by_default() {
    let dir = repo().join("deploy/helm/crdb-migrate");
    let file = "templates/rollback-hook-job.yaml";
    let text = read(&dir.join(file));
    let lines = code_lines(&text);
    let switch = line_at(&lines, "{{- if .Values.rollbackHook.enabled }}", file);
    assert!(switch < line_at(&lines, "apiVersion: batch/v1", file));
    assert_eq!(lines.last().copied(), Some("{{- end }}"), "{file}");
    assert_contains(
        &text,
        &[
            "helm.sh/hook: pre-rollback\n",
            "helm.sh/hook-weight: {{ .Values.rollbackHook.hookWeight | quote }}",
            "helm.sh/hook-delete-policy: before-hook-creation,hook-succeeded",
            // The policy's containerName is the container's name.
            "include \"crdb-migrate.podFailurePolicy\" \"rollback\"",
            "- name: rollback\n",
            "args: [\"rollback\", \"--to-image\"]",
            "restartPolicy: Never",
            "terminationMessagePolicy: FallbackToLogsOnError",
            "fieldPath: metadata.name",
            "include \"crdb-migrate.databaseEnv\"",
            "image: {{ include \"crdb-migrate.image\" . }}",
        ],
        file,
    );
    assert!(
        !text.contains("onExitCodes"),
        "{file}: exit codes belong in _helpers.tpl only"
    );
    // The shared policy the hook includes maps 32 to FailJob.
    let helpers = dir.join("templates/_helpers.tpl");
    let found = policies(&read(&helpers), &helpers);
    assert_eq!(found.len(), 1);
    assert!(found[0].fail_job.contains(&32), "{found:?}");

    let values = read(&dir.join("values.yaml"));
    let hook: Vec<&str> = values
        .lines()
        .skip_while(|l| *l != "rollbackHook:")
        .take_while(|l| !l.is_empty())
        .map(str::trim)
        .collect();
    assert!(hook.contains(&"enabled: false"), "off by default: {hook:?}");
    let deadline: u32 = hook
        .iter()
        .find_map(|l| l.strip_prefix("activeDeadlineSeconds:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("rollbackHook.activeDeadlineSeconds");
    assert!(
        deadline < 300,
        "below helm rollback's default --timeout of 300s"
    );
}

#[test]
fn kustomize_rollback_to_image_job_retries_only_what_a_retry_can_fix() {
    let file = repo().join("deploy/kustomize/rollback-to-image/rollback-to-image-job.yaml");
    let text = read(&file);
    assert_eq!(
        code_lines(&text)
            .iter()
            .filter(|l| l.starts_with("args:"))
            .collect::<Vec<_>>(),
        [&"args: [\"rollback\", \"--to-image\"]"]
    );
    let found = policies(&text, &file);
    assert_eq!(found.len(), 1, "{}: one podFailurePolicy", file.display());
    assert_eq!(found[0].fail_job, codes_for(PodFailureAction::FailJob));
    assert_eq!(found[0].count, codes_for(PodFailureAction::Count));
    assert!(text.contains("containerName: rollback") && text.contains("- name: rollback\n"));
    assert!(!text.contains("backoffLimit: 0"), "a safe retry is allowed");
}

/// The annotations of the patch file `name` in overlays/argocd, as `key: value` lines.
fn argocd_annotations(name: &str) -> BTreeSet<String> {
    let text = read(&repo().join("deploy/kustomize/overlays/argocd").join(name));
    code_lines(&text)
        .into_iter()
        .filter(|l| l.starts_with("argocd.argoproj.io/"))
        .map(str::to_string)
        .collect()
}

#[test]
fn argocd_overlay_runs_rollback_then_expand_before_sync_and_contract_after() {
    let delete = "argocd.argoproj.io/hook-delete-policy: BeforeHookCreation,HookSucceeded";
    let expect = |hook: &str, wave: Option<&str>| -> BTreeSet<String> {
        let mut set = BTreeSet::from([format!("argocd.argoproj.io/hook: {hook}"), delete.into()]);
        set.extend(wave.map(|w| format!("argocd.argoproj.io/sync-wave: \"{w}\"")));
        set
    };
    assert_eq!(
        argocd_annotations("rollback-presync.yaml"),
        expect("PreSync", Some("-1"))
    );
    assert_eq!(
        argocd_annotations("migrate-presync.yaml"),
        expect("PreSync", Some("0"))
    );
    assert_eq!(
        argocd_annotations("contract-postsync.yaml"),
        expect("PostSync", None)
    );
    let dir = repo().join("deploy/kustomize/overlays/argocd");
    assert_eq!(
        env_value(&read(&dir.join("migrate-presync.yaml")), "MIGRATE_PHASE").as_deref(),
        Some("expand")
    );
    // Each patch reaches its Job by component label, and the three Jobs are there.
    let kust = read(&dir.join("kustomization.yaml"));
    for (patch, component) in [
        ("rollback-presync.yaml", "rollback"),
        ("migrate-presync.yaml", "migrate"),
        ("contract-postsync.yaml", "contract"),
    ] {
        let at = kust
            .find(&format!("- path: {patch}"))
            .unwrap_or_else(|| panic!("overlays/argocd does not apply {patch}"));
        let selector = format!("labelSelector: app.kubernetes.io/component={component}");
        assert!(
            kust[at..].lines().take(4).any(|l| l.trim() == selector),
            "{patch} must target {selector}"
        );
    }
    assert_contains(
        &kust,
        &["- ../../base", "- ../contract", "- ../../rollback-to-image"],
        "overlays/argocd",
    );
}

/// A Rollouts example file, read.
fn rollouts(path: &str) -> String {
    read(&repo().join("deploy/argo-rollouts").join(path))
}

#[test]
fn argo_rollouts_canary_expands_first_and_contracts_after_full_weight() {
    let file = "canary/rollout.yaml";
    let text = rollouts(file);
    let lines = code_lines(&text);
    let steps = line_at(&lines, "steps:", file);
    let expand = line_at(&lines, "- templateName: crdb-migrate-expand", file);
    let full = line_at(&lines, "- setWeight: 100", file);
    let contract = line_at(&lines, "- templateName: crdb-migrate-contract", file);
    assert_eq!(
        &lines[steps + 1..=expand],
        [
            "- analysis:",
            "templates:",
            "- templateName: crdb-migrate-expand"
        ],
        "{file}: the first step is the expand analysis"
    );
    let first_weight = lines.iter().position(|l| l.starts_with("- setWeight:"));
    assert!(
        first_weight.is_some_and(|w| expand < w),
        "expand before any canary pod"
    );
    assert_eq!(
        &lines[full..=contract],
        [
            "- setWeight: 100",
            "- analysis:",
            "templates:",
            "- templateName: crdb-migrate-contract"
        ],
        "{file}: contract is the last step, after full weight"
    );
    assert_eq!(
        env_value(&text, "MIGRATE_ALLOW_NEWER_SCHEMA").as_deref(),
        Some("true"),
        "old pods restarted mid-canary accept the expanded schema"
    );
}

#[test]
fn argo_rollouts_blue_green_expands_before_promotion_and_contracts_after() {
    let file = "blue-green/rollout.yaml";
    let text = rollouts(file);
    let lines = code_lines(&text);
    for (hook, template) in [
        ("prePromotionAnalysis:", "crdb-migrate-expand"),
        ("postPromotionAnalysis:", "crdb-migrate-contract"),
    ] {
        let at = line_at(&lines, hook, file);
        assert_eq!(
            &lines[at + 1..at + 3],
            ["templates:", &format!("- templateName: {template}")],
            "{file}: {hook}"
        );
    }
    assert!(
        !lines
            .iter()
            .any(|l| l.starts_with("scaleDownDelaySeconds:")),
        "{file}: a scale-down delay cancels the contract analysis"
    );
    assert!(
        !text.contains("initContainers:"),
        "{file}: green pods must become available before prePromotionAnalysis expands"
    );
}

#[test]
fn argo_rollouts_analysis_jobs_run_the_phases() {
    for (file, phase) in [
        ("analysis/expand-template.yaml", "expand"),
        ("analysis/contract-template.yaml", "contract"),
    ] {
        let text = rollouts(file);
        assert_eq!(
            env_value(&text, "MIGRATE_PHASE").as_deref(),
            Some(phase),
            "{file}"
        );
        assert_contains(
            &text,
            &[
                "kind: AnalysisTemplate",
                "job:",
                "args: [\"migrate\"]",
                "restartPolicy: Never",
                "fieldPath: metadata.name",
            ],
            file,
        );
        // The CRD's JobSpec schema has no podFailurePolicy: the API server would prune it.
        assert!(!code_lines(&text).contains(&"podFailurePolicy:"), "{file}");
        let dry_run = code_lines(&text).contains(&"- metricName: contract");
        assert_eq!(
            dry_run,
            phase == "contract",
            "{file}: only contract is a dry run"
        );
    }
}

#[test]
fn deploy_check_validates_every_integration() {
    let check = read(&repo().join("scripts/deploy-check.sh"));
    assert_contains(
        &check,
        &[
            "overlays/argocd",
            "rollback-to-image",
            "rollbackHook.enabled=true",
            "check_hooks",
            "check_argocd_hooks",
            "ROLLOUTS_DIRS=(canary blue-green)",
            "deploy/argo-rollouts/schema/validate.py",
        ],
        "scripts/deploy-check.sh",
    );
    let validator = rollouts("schema/validate.py");
    assert_contains(
        &validator,
        &[
            "additionalProperties",
            "kubernetes_validate.validate",
            "def self_test",
        ],
        "validate.py",
    );
    // The schema excerpts say where they come from.
    for (file, upstream) in [
        (
            "schema/rollout-crd.excerpt.yaml",
            "manifests/crds/rollout-crd.yaml at commit",
        ),
        (
            "schema/analysis-template-crd.excerpt.yaml",
            "manifests/crds/analysis-template-crd.yaml at commit",
        ),
    ] {
        let text = rollouts(file);
        assert!(
            text.contains("argoproj/argo-rollouts") && text.contains(upstream),
            "{file}"
        );
    }
}
