# Feltkontor: `make run` and `make test` install what is missing, build, and run.
SHELL := /bin/bash
.DEFAULT_GOAL := help

DEMO_DIR ?= target/demo/profile
DEMO_PASSPHRASE ?= demo-kodeord-feltkontor
export FELTKONTOR_DEMO_PASSPHRASE := $(DEMO_PASSPHRASE)

.PHONY: help deps ui build run test test-rust test-ui test-e2e check check-deps fmt bench bench-app bindings demo clean

help:
	@echo "make run    install what is missing, build, open the app on demo data"
	@echo "make test   install what is missing and run every test"
	@echo "make check  formatting, clippy -D warnings, UI type check"
	@echo "make bench  benchmarks on the bench-size data set (writes target/bench/store.md)"
	@echo "make bench-app  the app in the real window on the bench-size data set (target/bench/app.md)"

deps:
	@scripts/install-deps.sh

ui: deps
	cd ui && npm run build

build: ui
	cargo build --workspace --bins

demo: build
	./target/debug/feltkontor-demo --dir $(DEMO_DIR) --if-missing

run: demo
	@echo "Demo data: $(DEMO_DIR) (passphrase: $(DEMO_PASSPHRASE))"
	scripts/run-app.sh $(DEMO_DIR)

test: ui
	$(MAKE) test-rust test-ui test-e2e

test-rust:
	cargo build --workspace --bins
	cargo nextest run --workspace --no-fail-fast

test-ui:
	cd ui && npm run check && npm test

test-e2e:
	scripts/e2e.sh

check: deps
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings
	cd ui && npm run check

check-deps:
	cargo nextest run -p feltkontor-tests --test workspace

fmt:
	cargo fmt --all

# Rewrites ui/src/lib/bindings.ts from the Rust types (a test fails while they differ).
bindings: ui
	FELTKONTOR_WRITE_BINDINGS=1 cargo nextest run -p feltkontor-desktop committed_typescript_bindings

bench: deps
	cargo bench -p feltkontor-demo --bench store
	@echo "results: target/bench/store.md"

# The desktop app in the real window on the bench-size data set (release build).
bench-app: deps
	scripts/bench-app.sh
	@echo "results: target/bench/app.md"

clean:
	cargo clean
	rm -rf ui/dist ui/node_modules
