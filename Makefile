# crdb-migrate: `make demo` and `make test` do all the set-up a fresh machine needs.
.PHONY: all build release test unit lint demo bench clean

all: build

build:
	cargo build --locked

release:
	cargo build --release --locked

# The whole suite: unit, property, doc and integration tests against a real throwaway
# database (PostgreSQL here, CockroachDB when `cockroach` is on PATH), plus the deploy checks.
test:
	cargo test --locked
	$(MAKE) deploy-check

unit:
	cargo test --locked --lib

lint:
	cargo fmt --all -- --check
	cargo clippy --all-targets --locked -- -D warnings

demo:
	scripts/demo.sh

bench: release
	python3 scripts/bench.py

clean:
	cargo clean

-include mk/deploy.mk

# Until the deploy fragment lands, deploy-check has nothing to do.
ifeq ($(wildcard mk/deploy.mk),)
deploy-check:
	@echo "deploy-check: no deploy/ checks yet"
endif
