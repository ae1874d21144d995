# SecretSync. `make run` brings up the local test bed and the controller; `make test` runs every test.
# Both install what they need (Debian packages, Go modules, Python packages, Rust components) by themselves.
SHELL := /bin/bash
CARGO ?= cargo
export GOTOOLCHAIN := local

.PHONY: all deps rust-deps build crds lint unit integration test testbed testbed-down run e2e image bench clean-testbed

all: build

rust-deps:
	@command -v rustup >/dev/null && rustup component add rustfmt clippy >/dev/null 2>&1 || true

deps: rust-deps
	bash tests/testbed/install.sh

build:
	$(CARGO) build --workspace

# Regenerates the committed CRD from the Rust types.
crds:
	$(CARGO) run --quiet --bin secretsync -- crd > crds/secretsync.io_secretsyncs.yaml

lint: rust-deps
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

unit:
	$(CARGO) test --workspace --lib --bins

# Brings the test bed up, runs the Rust and Python integration tests, and takes it down again (also on failure).
integration:
	bash tests/run-integration.sh

test: lint unit integration

testbed:
	bash tests/testbed/up.sh

testbed-down:
	bash tests/testbed/down.sh

run:
	bash tests/testbed/run.sh

e2e:
	$(CARGO) test --test e2e -- --nocapture

image:
	bash deploy/image/build.sh

# Speed and memory with many SecretSyncs on the test bed (figures in README.md). N=500 by default.
bench:
	bash bench/controller.sh $(N)
