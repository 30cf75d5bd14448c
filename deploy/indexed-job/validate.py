#!/usr/bin/env python3
"""Checks the rendered fleet Jobs (Indexed Jobs) beyond what the OpenAPI schema can say.

Usage: validate.py KUBERNETES_VERSION LABEL MANIFESTS.yaml
       validate.py --self-test MANIFESTS.yaml   (a good render: each known breakage must be caught)

kubernetes-validate checks each field's type against the Kubernetes OpenAPI schema, but the
schema cannot say how the fields of an Indexed Job depend on each other: the API server checks
that in code (kubernetes/kubernetes pkg/apis/batch/validation/validation.go, validateJobSpec and
validatePodFailurePolicy), and a Job that breaks one of these rules is refused at `kubectl apply`
or `helm install`. This script checks the rules a fleet Job relies on:
  - backoffLimitPerIndex needs completionMode: Indexed and restartPolicy: Never; with it,
    completions and parallelism are at most 10^5;
  - maxFailedIndexes needs backoffLimitPerIndex and is at most completions;
  - the FailIndex action needs backoffLimitPerIndex;
  - podFailurePolicy: at most 20 rules; onExitCodes values unique, in increasing order, at most
    255 of them, no 0 under `In`; containerName names a container; podReplacementPolicy, when
    set, is Failed;
  - the feature itself: FailIndex and backoffLimitPerIndex are alpha (off by default) in 1.28,
    beta (on by default) from 1.29, GA in 1.33; older versions are refused;
and how crdb-migrate is wired into it:
  - MIGRATE_SHARDS equals completions (index I runs the targets that hash to I mod SHARDS);
  - MIGRATE_PARALLELISM is a positive integer;
  - exactly one of MIGRATE_TARGETS_FILE and MIGRATE_TARGETS_QUERY; a file lies in a mounted
    ConfigMap volume, and a ConfigMap rendered alongside holds its key;
  - no other Job beside the fleet's (the single-database Job is replaced, not joined);
  - no backoffLimit (it would cap the retries of all indexes together) and no FailJob (one
    shard's permanent failure must not stop the others); permanent exit codes under FailIndex,
    transient ones under Count, disjoint; DisruptionTarget ignored.
Exits non-zero, naming each broken rule, when any fails or when no Indexed Job is found.
"""
import sys

import yaml

FAIL_INDEX_BETA = (1, 29)
LIMIT = 100_000


def env_of(container):
    return {e["name"]: e.get("value") for e in container.get("env", [])}


def check_policy(job, containers, errors):
    spec = job["spec"]
    policy = spec.get("podFailurePolicy")
    if policy is None:
        errors.append("no podFailurePolicy")
        return
    rules = policy.get("rules", [])
    if len(rules) > 20:
        errors.append(f"podFailurePolicy: {len(rules)} rules, at most 20")
    codes = {}
    ignores_disruption = False
    for i, rule in enumerate(rules):
        action = rule["action"]
        if action == "FailIndex" and spec.get("backoffLimitPerIndex") is None:
            errors.append(f"rules[{i}]: FailIndex requires backoffLimitPerIndex")
        if action == "FailJob":
            errors.append(f"rules[{i}]: FailJob would stop every shard; use FailIndex")
        for cond in rule.get("onPodConditions", []):
            if cond.get("type") == "DisruptionTarget" and action == "Ignore":
                ignores_disruption = True
        exits = rule.get("onExitCodes")
        if exits is None:
            continue
        values = exits.get("values", [])
        if values != sorted(set(values)):
            errors.append(f"rules[{i}].onExitCodes.values {values}: must be unique and increasing")
        if len(values) > 255:
            errors.append(f"rules[{i}].onExitCodes: {len(values)} values, at most 255")
        if exits.get("operator") == "In" and 0 in values:
            errors.append(f"rules[{i}].onExitCodes: 0 is not allowed under In")
        name = exits.get("containerName")
        if name is not None and name not in containers:
            errors.append(f"rules[{i}].onExitCodes.containerName {name!r} names no container")
        codes.setdefault(action, set()).update(values)
    if not ignores_disruption:
        errors.append("no Ignore rule for the DisruptionTarget pod condition")
    permanent, transient = codes.get("FailIndex", set()), codes.get("Count", set())
    if not permanent or not transient or permanent & transient:
        errors.append(f"FailIndex {sorted(permanent)} and Count {sorted(transient)} must be non-empty and disjoint")
    if spec.get("podReplacementPolicy", "Failed") != "Failed":
        errors.append("podReplacementPolicy must be Failed with a podFailurePolicy")


def check_spec(job, version, errors):
    spec = job["spec"]
    pod = spec["template"]["spec"]
    completions, parallelism = spec.get("completions"), spec.get("parallelism", 1)
    per_index = spec.get("backoffLimitPerIndex")
    if completions is None:
        errors.append("completionMode: Indexed requires completions")
        completions = 0
    if per_index is None:
        errors.append("no backoffLimitPerIndex: a failing index would use up the retries of all")
    else:
        if spec.get("completionMode") != "Indexed":
            errors.append("backoffLimitPerIndex requires completionMode: Indexed")
        if pod.get("restartPolicy") != "Never":
            errors.append("backoffLimitPerIndex requires restartPolicy: Never")
        if completions > LIMIT or parallelism > LIMIT:
            errors.append(f"with backoffLimitPerIndex, completions and parallelism are at most {LIMIT}")
        if version < FAIL_INDEX_BETA:
            errors.append("backoffLimitPerIndex and FailIndex need Kubernetes 1.29 or newer (beta, on by default)")
    max_failed = spec.get("maxFailedIndexes")
    if max_failed is not None:
        if per_index is None:
            errors.append("maxFailedIndexes requires backoffLimitPerIndex")
        if not 0 <= max_failed <= completions:
            errors.append(f"maxFailedIndexes {max_failed} must be between 0 and completions ({completions})")
    if "backoffLimit" in spec:
        errors.append("backoffLimit is set: it caps the retries of all indexes together; leave it unset")


def check_wiring(job, docs, errors):
    spec = job["spec"]
    pod = spec["template"]["spec"]
    container = next((c for c in pod["containers"] if c["name"] == "migrate"), None)
    if container is None:
        errors.append("no container named migrate")
        return
    env = env_of(container)
    if env.get("MIGRATE_SHARDS") != str(spec.get("completions")):
        errors.append(f"MIGRATE_SHARDS {env.get('MIGRATE_SHARDS')!r} differs from completions {spec.get('completions')}")
    if not (env.get("MIGRATE_PARALLELISM") or "").isdigit() or int(env["MIGRATE_PARALLELISM"]) < 1:
        errors.append(f"MIGRATE_PARALLELISM {env.get('MIGRATE_PARALLELISM')!r} is not a positive integer")
    sources = [k for k in ("MIGRATE_TARGETS_FILE", "MIGRATE_TARGETS_QUERY") if env.get(k)]
    if len(sources) != 1:
        errors.append(f"exactly one of MIGRATE_TARGETS_FILE and MIGRATE_TARGETS_QUERY, found {sources}")
        return
    if sources[0] == "MIGRATE_TARGETS_QUERY":
        return
    path = env["MIGRATE_TARGETS_FILE"]
    directory, key = path.rsplit("/", 1)
    mount = next((m for m in container.get("volumeMounts", []) if m["mountPath"] == directory), None)
    volume = mount and next((v for v in pod.get("volumes", []) if v["name"] == mount["name"]), None)
    if not volume or "configMap" not in volume:
        errors.append(f"MIGRATE_TARGETS_FILE {path}: no ConfigMap volume mounted at {directory}")
        return
    name = volume["configMap"]["name"]
    rendered = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == name]
    if rendered and key not in rendered[0].get("data", {}):
        errors.append(f"ConfigMap {name} has no key {key}")
    if rendered and not [line for line in rendered[0]["data"].get(key, "").splitlines()
                         if line.strip() and not line.strip().startswith("#")]:
        errors.append(f"ConfigMap {name}: {key} names no target")


def job_errors(job, docs, version):
    """Every broken rule of one Indexed Job, as messages."""
    errors = []
    containers = {c["name"] for c in job["spec"]["template"]["spec"]["containers"]}
    check_spec(job, version, errors)
    check_policy(job, containers, errors)
    check_wiring(job, docs, errors)
    return errors


def errors_of(docs, version):
    jobs = [d for d in docs if d["kind"] == "Job" and d["spec"].get("completionMode") == "Indexed"]
    return [e for job in jobs for e in job_errors(job, docs, version)]


def container_env(job):
    return job["spec"]["template"]["spec"]["containers"][0]["env"]


# Breakages the checker must catch, each applied to a copy of a good Indexed Job.
BREAKAGES = {
    "FailIndex without backoffLimitPerIndex": lambda j: j["spec"].pop("backoffLimitPerIndex"),
    "maxFailedIndexes above completions": lambda j: j["spec"].update(maxFailedIndexes=j["spec"]["completions"] + 1),
    "backoffLimit set": lambda j: j["spec"].update(backoffLimit=4),
    "restartPolicy OnFailure": lambda j: j["spec"]["template"]["spec"].update(restartPolicy="OnFailure"),
    "FailJob in place of FailIndex": lambda j: [r.update(action="FailJob") for r in j["spec"]["podFailurePolicy"]["rules"]
                                                if r["action"] == "FailIndex"],
    "exit codes out of order": lambda j: [r["onExitCodes"]["values"].reverse() for r in j["spec"]["podFailurePolicy"]["rules"]
                                          if "onExitCodes" in r],
    "MIGRATE_SHARDS differs from completions": lambda j: j["spec"].update(completions=j["spec"]["completions"] + 1),
    "no source of targets": lambda j: j["spec"]["template"]["spec"]["containers"][0].update(
        env=[e for e in container_env(j) if not e["name"].startswith("MIGRATE_TARGETS_")]),
    "parallelism above 10^5": lambda j: j["spec"].update(parallelism=LIMIT + 1),
}


def self_test(path):
    import copy
    with open(path) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    if errors_of(docs, (1, 33)):
        print(f"FAIL: self-test: the good render is refused: {errors_of(docs, (1, 33))}")
        return 1
    missed = []
    for name, breakage in BREAKAGES.items():
        broken = copy.deepcopy(docs)
        breakage(next(d for d in broken if d["kind"] == "Job" and d["spec"].get("completionMode") == "Indexed"))
        if not errors_of(broken, (1, 33)):
            missed.append(name)
    if not errors_of(docs, (1, 28)):
        missed.append("Kubernetes 1.28")
    for name in missed:
        print(f"FAIL: self-test: not caught: {name}")
    if not missed:
        print(f"ok: deploy/indexed-job/validate.py catches each of {len(BREAKAGES) + 1} known breakages")
    return 1 if missed else 0


def main():
    if sys.argv[1] == "--self-test":
        return self_test(sys.argv[2])
    version = tuple(int(x) for x in sys.argv[1].split(".")[:2])
    label, path = sys.argv[2], sys.argv[3]
    with open(path) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    jobs = [d for d in docs if d["kind"] == "Job" and d["spec"].get("completionMode") == "Indexed"]
    if not jobs:
        print(f"FAIL: {label}: no Indexed Job rendered")
        return 1
    failed = False
    single = [d["metadata"]["name"] for d in docs if d["kind"] == "Job" and d not in jobs]
    if single:
        print(f"FAIL: {label}: Job(s) {single} beside the fleet: a run without {{target}} resolved would fail")
        failed = True
    for job in jobs:
        errors = job_errors(job, docs, version)
        for message in errors:
            print(f"FAIL: {label}: Job {job['metadata']['name']}: {message}")
        failed |= bool(errors)
    if not failed:
        names = ", ".join(j["metadata"]["name"] for j in jobs)
        print(f"ok: {label}: Indexed Job(s) {names} keep the rules of Kubernetes {sys.argv[1]} and the fleet wiring")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
