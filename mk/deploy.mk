# Deployment targets, included by the top-level Makefile: `include mk/deploy.mk`.
#   make image         build the container image (needs a reachable Docker engine)
#   make deploy-check  hadolint, kustomize + kubernetes-validate, helm lint/template, the Argo
#                      Rollouts examples against the Rollouts CRD schemas, actionlint/zizmor (see
#                      scripts/deploy-check.sh); tools go into .cache/tools; then the release
#                      scripts and the chart with the published image (scripts/release-check.sh)

IMAGE ?= crdb-migrate
IMAGE_TAG ?= dev
DOCKER ?= docker

.PHONY: image deploy-check

image:
	@$(DOCKER) info >/dev/null 2>&1 || { \
	  echo "make image: no Docker engine reachable through '$(DOCKER)'; build where one runs (CI does)" >&2; \
	  exit 1; }
	$(DOCKER) build --tag $(IMAGE):$(IMAGE_TAG) .

deploy-check:
	bash scripts/deploy-check.sh
	bash scripts/release-check.sh
