"""Offline validation of the Argo Rollouts examples against the Rollouts CRD schemas.

kubernetes-validate knows only Kubernetes' own kinds: it skips a Rollout or an
AnalysisTemplate with a warning. This checks them against the excerpts of the upstream CRD
schemas beside this file (see their headers for the upstream commit), the way the API server
would, and more strictly:

- a field the CRD schema does not list is an ERROR here (the API server prunes it silently);
- the embedded PodTemplateSpec / JobSpec are validated with kubernetes-validate --strict,
  wrapped in a Deployment / Job, against the Kubernetes version deploy-check targets;
- the migration wiring is asserted: expand before promotion, contract after it, the phase each
  Job runs, the contract metric in dry-run mode.

Usage: validate.py K8S_VERSION RENDERED.yaml...   (each file: one rendered example)
Run by scripts/deploy-check.sh with the Python of its tool venv (PyYAML, jsonschema and
kubernetes-validate come with kubernetes-validate).
"""

import copy
import os
import sys

import jsonschema
import kubernetes_validate
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
MARK_VALIDATE_AS = "x-crdb-migrate-validate-as"
MARK_OMITTED = "x-crdb-migrate-omitted"


def load_schema(name):
    """The excerpt as a JSON schema: closed objects, embedded specs left to kubernetes-validate."""
    with open(os.path.join(HERE, name)) as f:
        raw = yaml.safe_load(f)["openAPIV3Schema"]
    embedded = []

    def convert(node, path):
        if not isinstance(node, dict):
            return node
        if MARK_VALIDATE_AS in node:
            embedded.append((path, node[MARK_VALIDATE_AS]))
            return {"type": "object"}
        out = {}
        for key, value in node.items():
            if key == "properties":
                out[key] = {k: convert(v, path + [k]) for k, v in value.items()}
            elif key == "items":
                out[key] = convert(value, path + ["[]"])
            elif key == "additionalProperties" and isinstance(value, dict):
                out[key] = convert(value, path + ["*"])
            elif key == "anyOf":
                out[key] = [convert(v, path) for v in value]
            elif not key.startswith("x-"):
                out[key] = value
        closed = "additionalProperties" not in node and not node.get(
            "x-kubernetes-preserve-unknown-fields"
        )
        if "properties" in node and closed:
            out["additionalProperties"] = False
        return out

    return raw, convert(raw, []), embedded


SCHEMAS = {
    ("argoproj.io/v1alpha1", "Rollout"): load_schema("rollout-crd.excerpt.yaml"),
    ("argoproj.io/v1alpha1", "AnalysisTemplate"): load_schema("analysis-template-crd.excerpt.yaml"),
}


def omitted_at(raw, path):
    """The x-crdb-migrate-omitted list of the raw schema node at a document path."""
    node = raw
    for part in path:
        if isinstance(part, int):
            node = node.get("items", {})
        else:
            node = node.get("properties", {}).get(part, {})
    return node.get(MARK_OMITTED, [])


def schema_errors(doc):
    """Messages for every way `doc` breaks its kind's CRD schema excerpt."""
    raw, schema, _ = SCHEMAS[(doc["apiVersion"], doc["kind"])]
    messages = []
    for err in jsonschema.Draft7Validator(schema).iter_errors(doc):
        where = "/".join(str(p) for p in err.absolute_path) or "(root)"
        msg = err.message
        if err.validator == "additionalProperties":
            extra = sorted(set(err.instance) - set(err.schema.get("properties", {})))
            omitted = [f for f in extra if f in omitted_at(raw, list(err.absolute_path))]
            if omitted:
                msg += f" ({', '.join(omitted)}: in upstream, not copied into the excerpt yet)"
            else:
                msg += " (not in the CRD schema: the API server would prune it)"
        messages.append(f"{where}: {msg}")
    return messages


def embedded_objects(doc):
    """The Kubernetes objects wrapped around the specs the CRD embeds, for kubernetes-validate."""
    name = doc["metadata"]["name"]
    if doc["kind"] == "Rollout":
        yield f"{name}: spec.template", {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name},
            "spec": {"selector": doc["spec"]["selector"], "template": doc["spec"]["template"]},
        }
    else:
        for metric in doc["spec"]["metrics"]:
            job = metric["provider"].get("job")
            if job:
                yield f"{name}: metric {metric['name']} job spec", {
                    "apiVersion": "batch/v1",
                    "kind": "Job",
                    "metadata": {"name": name, **job.get("metadata", {})},
                    "spec": job["spec"],
                }


def env(container, name):
    return next((e.get("value") for e in container.get("env", []) if e["name"] == name), None)


def check_wiring(docs, label):
    """The migration wiring the examples exist for; returns failure messages."""
    fails = []
    templates = {d["metadata"]["name"]: d for d in docs if d["kind"] == "AnalysisTemplate"}
    rollouts = [d for d in docs if d["kind"] == "Rollout"]
    if len(rollouts) != 1:
        return [f"{label}: expected one Rollout, found {len(rollouts)}"]
    strategy = rollouts[0]["spec"]["strategy"]

    def names(analysis):
        return [t["templateName"] for t in (analysis or {}).get("templates", [])]

    if "canary" in strategy:
        steps = strategy["canary"]["steps"]
        before, after = names(steps[0].get("analysis")), names(steps[-1].get("analysis"))
        if before != ["crdb-migrate-expand"]:
            fails.append(f"{label}: the first canary step must be the expand analysis")
        if after != ["crdb-migrate-contract"]:
            fails.append(f"{label}: the last canary step must be the contract analysis")
        if steps[-2].get("setWeight") != 100:
            fails.append(f"{label}: the contract analysis must follow setWeight: 100")
    else:
        blue_green = strategy["blueGreen"]
        if names(blue_green.get("prePromotionAnalysis")) != ["crdb-migrate-expand"]:
            fails.append(f"{label}: prePromotionAnalysis must be the expand analysis")
        if names(blue_green.get("postPromotionAnalysis")) != ["crdb-migrate-contract"]:
            fails.append(f"{label}: postPromotionAnalysis must be the contract analysis")
        if "scaleDownDelaySeconds" in blue_green:
            fails.append(f"{label}: scaleDownDelaySeconds would cancel the contract analysis")
    # One image: the migrations of the release being rolled out, in the Jobs and the init
    # container alike.
    pod = rollouts[0]["spec"]["template"]["spec"]
    images = {c["image"] for c in pod.get("initContainers", [])}
    for template in templates.values():
        for metric in template["spec"]["metrics"]:
            job_pod = metric["provider"]["job"]["spec"]["template"]["spec"]
            images |= {c["image"] for c in job_pod["containers"]}
    if len(images) != 1:
        fails.append(f"{label}: the migration Jobs and init container run {sorted(images)}")
    for name, phase in (("crdb-migrate-expand", "expand"), ("crdb-migrate-contract", "contract")):
        template = templates.get(name)
        if template is None:
            fails.append(f"{label}: no AnalysisTemplate {name}")
            continue
        for metric in template["spec"]["metrics"]:
            pod = metric["provider"]["job"]["spec"]["template"]["spec"]
            container = pod["containers"][0]
            if container.get("args") != ["migrate"] or env(container, "MIGRATE_PHASE") != phase:
                fails.append(f"{label}: {name} must run `migrate` with MIGRATE_PHASE={phase}")
        dry = [d["metricName"] for d in template["spec"].get("dryRun", [])]
        if phase == "contract" and dry != [m["name"] for m in template["spec"]["metrics"]]:
            fails.append(f"{label}: the contract metric must run in dry-run mode")
        if phase == "expand" and dry:
            fails.append(f"{label}: a failed expand must abort the rollout (no dry run)")
    return fails


def validate_docs(docs, version, label):
    fails = []
    for doc in docs:
        key = (doc.get("apiVersion"), doc.get("kind"))
        name = f"{label}: {doc['kind']}/{doc['metadata']['name']}"
        if key in SCHEMAS:
            fails += [f"{name}: {m}" for m in schema_errors(doc)]
            wrapped = list(embedded_objects(doc))
        else:
            wrapped = [(name, doc)]
        for what, obj in wrapped:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.ValidationError as e:
                fails.append(f"{label}: {what}: {e.message} at {'/'.join(map(str, e.path))}")
    return fails


def self_test(docs, version):
    """The checker must catch a misspelt field and a field the CRD would prune."""
    rollout = copy.deepcopy(next(d for d in docs if d["kind"] == "Rollout"))
    rollout["spec"]["strategy"]["typoStrategy"] = {}
    template = copy.deepcopy(next(d for d in docs if d["kind"] == "AnalysisTemplate"))
    template["spec"]["metrics"][0]["provider"]["job"]["spec"]["podFailurePolicy"] = {"rules": []}
    for bad in (rollout, template):
        if not validate_docs([bad], version, "self-test"):
            return [f"self-test: a broken {bad['kind']} passed the schema check"]
    return []


def main():
    version, files = sys.argv[1], sys.argv[2:]
    failures = 0
    for path in files:
        with open(path) as f:
            docs = [d for d in yaml.safe_load_all(f) if d]
        label = os.path.basename(path)
        fails = validate_docs(docs, version, label) + check_wiring(docs, label)
        fails += self_test(docs, version)
        for message in fails:
            print(f"FAIL: {message}")
        if not fails:
            kinds = ", ".join(sorted({d["kind"] for d in docs}))
            print(f"ok: {label}: {len(docs)} objects ({kinds}) valid against the Rollouts CRD "
                  f"schema excerpts and Kubernetes {version} (strict); migration wiring in place")
        failures += len(fails)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
