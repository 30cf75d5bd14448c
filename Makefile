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
	cargo test --locked -- --skip migration_connection::at_ --skip lease_connection::at_
	@# One test per protocol message of a run (network_faults.rs): hundreds of short runs that
	@# mostly wait on the network, so they get more threads than there are cores.
	cargo test --locked --test network_faults -- --test-threads 6 migration_connection::at_ lease_connection::at_
	$(MAKE) deploy-check

unit:
	cargo test --locked --lib

lint:
	cargo fmt --all -- --check
	cargo clippy --all-targets --locked -- -D warnings

demo:
	scripts/demo.sh

# A report, not a gate: loopback ratios vs psql, peak RSS and size, the 20 ms RTT scenario through
# scripts/latency_proxy.py (round trips per migration, fixed round trips), and verify/plan at 1k vs
# 10k files, in one PASS/FAIL table. Exits 0 unless a step crashed. See scripts/bench.py for the
# BENCH_* overrides.
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
