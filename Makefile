# SecretSync. `make run` brings up the local test bed and the controller; `make test` runs every test.
# Both install what they need (Debian packages, Go modules, Python packages, Rust components) by themselves.
SHELL := /bin/bash
CARGO ?= cargo
export GOTOOLCHAIN := local
# Supply-chain checks (deny.toml). The advisories check needs the RustSec database, cloned from GitHub: run it with
# DENY_ADVISORIES=1 where GitHub is reachable; licences, bans and sources need nothing but the lock file.
CARGO_DENY_VERSION := 0.20.2
DENY_CHECKS := $(if $(DENY_ADVISORIES),advisories )licenses bans sources

.PHONY: all deps rust-deps cargo-deny mdbook build crds docs book lint unit integration test testbed testbed-down run e2e image bench clean-testbed

all: build

rust-deps:
	@command -v rustup >/dev/null && rustup component add rustfmt clippy >/dev/null 2>&1 || true

# Installed once per machine (a few minutes on 2 cores); an installed cargo-deny of any version is kept.
cargo-deny:
	@$(CARGO) deny --version >/dev/null 2>&1 || $(CARGO) install --locked cargo-deny@$(CARGO_DENY_VERSION)

# The book's builder, installed once per machine (about 4 minutes on 2 cores; only the static HTML output with its
# search, no `mdbook serve`); an installed mdbook of any version is kept.
MDBOOK_VERSION := 0.5.4
MDBOOK := $(shell command -v mdbook 2>/dev/null || echo $${CARGO_HOME:-$$HOME/.cargo}/bin/mdbook)
mdbook:
	@$(MDBOOK) --version >/dev/null 2>&1 || $(CARGO) install --locked mdbook --version $(MDBOOK_VERSION) \
	  --no-default-features --features search

deps: rust-deps
	bash tests/testbed/install.sh

build:
	$(CARGO) build --workspace

# Regenerates the committed CRDs from the Rust types, and the Helm chart's copy (tests/helm.rs checks they match).
crds:
	$(CARGO) run --quiet --bin secretsync -- crd --out-dir crds
	cp crds/*.yaml deploy/helm/secretsync/crds/

# Regenerates the book's reference pages from the code (the unit tests check they match), then builds the book into
# target/book and checks its internal links and anchors.
docs: mdbook
	$(CARGO) run --quiet --bin secretsync -- docs --out-dir docs/src/reference
	$(MAKE) --no-print-directory book

book: mdbook
	$(MDBOOK) build docs
	python3 docs/check-links.py target/book

lint: rust-deps cargo-deny
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) deny check $(DENY_CHECKS)

unit:
	$(CARGO) test --workspace --lib --bins --test pipeline --test pipeline_remotes

# Brings the test bed up, runs the Rust and Python integration tests, and takes it down again (also on failure).
integration:
	bash tests/run-integration.sh

test: lint unit book integration

# The real node (tests/testbed/node/) is part of `make testbed` and `make test`; TESTBED_NODE=0 leaves it out.
testbed:
	TESTBED_NODE=$${TESTBED_NODE:-1} bash tests/testbed/up.sh

testbed-down:
	bash tests/testbed/down.sh

run:
	bash tests/testbed/run.sh

e2e:
	$(CARGO) test --test e2e -- --nocapture

image:
	bash deploy/image/build.sh

# Speed, cost and memory with many SecretSyncs on the test bed (bench/README.md), e.g.
# `make bench N=1000 DIALECT=ServiceFabricMesh REFRESH=60s RATE=200` (DIALECT=all: every dialect of the test bed).
bench:
	N='$(N)' KEYS='$(KEYS)' DIALECT='$(DIALECT)' REFRESH='$(REFRESH)' RATE='$(RATE)' CONCURRENCY='$(CONCURRENCY)' \
	  CHANGES='$(CHANGES)' PHASES='$(PHASES)' HEAP_PROFILE='$(HEAP_PROFILE)' bash bench/run.sh
