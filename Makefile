# Feltkontor: `make run` and `make test` install what is missing, build, and run.
SHELL := /bin/bash
.DEFAULT_GOAL := help

DEMO_DIR ?= target/demo/profile
DEMO_PASSPHRASE ?= demo-kodeord-feltkontor
export FELTKONTOR_DEMO_PASSPHRASE := $(DEMO_PASSPHRASE)

.PHONY: help deps ui build run test test-rust test-server test-ui test-e2e check check-deps fmt bench bench-app bench-server bench-sync bench-quarantine bench-scale bench-fleet bindings openapi demo clean test-sync-long run-connected

help:
	@echo "make run    install what is missing, build, open the app on demo data"
	@echo "make run-connected  the app as a new computer connecting to the local central service"
	@echo "make test   install what is missing and run every test"
	@echo "make check  formatting, clippy -D warnings, licences and duplicate crates (cargo-deny), UI type check"
	@echo "make bench  benchmarks on the bench-size data set (writes target/bench/store.md)"
	@echo "make bench-app  the app in the real window on the bench-size data set (target/bench/app.md)"
	@echo "make bench-server  200 concurrent clients against the central service, SQLite and PostgreSQL"
	@echo "make bench-sync  first sync (with PouchDB replication of the same records), resume, incremental, drain, live propagation, 200 syncing devices (target/bench/sync.md)"
	@echo "make bench-scale  the service at Aarhus size and 5x on PostgreSQL (and SQLite): bulk seed, a 1,000-case worker's first sync, empty and incremental pulls (target/bench/scale.md)"
	@echo "make bench-fleet  2,000 devices online at Aarhus size against three instances on PostgreSQL: CPU per device-minute, propagation across instances (target/bench/fleet.md)"
	@echo "make bench-quarantine  incremental pulls with 4,000 quarantined notes waiting (target/bench/quarantine.md)"
	@echo "make test-sync-long  the multi-device sync property test, 1,000 schedules per engine"

deps:
	@scripts/install-deps.sh

# The UI is rebuilt only when its sources changed (a rebuilt ui/dist makes cargo re-embed it
# and relink the app): `make run` with nothing changed builds nothing.
UI_SOURCES := $(shell find ui/src ui/public -type f 2>/dev/null) ui/index.html ui/package.json ui/package-lock.json $(wildcard ui/vite.config.*) $(wildcard ui/svelte.config.*)

ui: deps ui/dist/index.html

ui/dist/index.html: $(UI_SOURCES)
	cd ui && npm run build
	@touch $@

build: ui
	cargo build --workspace --bins

demo: build
	./target/debug/feltkontor-demo --dir $(DEMO_DIR) --if-missing
	@test -f target/demo/central.db || echo "$(DEMO_PASSPHRASE)" | \
	  ./target/debug/feltkontor-server --database-url sqlite:target/demo/central.db admin demo > target/demo/accounts.tsv

run: demo
	@echo "Demo data: $(DEMO_DIR) (passphrase: $(DEMO_PASSPHRASE))"
	scripts/run-app.sh $(DEMO_DIR)

# A new computer connecting to the local central service: first run, enrollment, first sync.
# The profile is kept between runs (the app opens it at the unlock screen); FRESH=1 starts over.
run-connected: demo
	scripts/run-app.sh --connect $(if $(FRESH),--fresh) target/demo/connected

test: ui
	$(MAKE) test-rust test-server test-ui test-e2e

# PostgreSQL on 127.0.0.1:5432 must be up (.ci/run starts it): the central service's tests
# run on SQLite and on PostgreSQL.
test-rust:
	cargo build --workspace --bins
	rm -rf target/server-logs
	cargo nextest run --workspace --no-fail-fast

# The API against its OpenAPI document (schemathesis), then no personal data in any server log.
test-server:
	scripts/schemathesis.sh
	scripts/check-server-logs.sh

test-ui:
	cd ui && npm run check && npm test

test-e2e:
	scripts/e2e.sh

# The multi-device sync property test with 1,000 schedules per engine (make test runs 100).
test-sync-long:
	FELTKONTOR_SYNC_SCHEDULES=1000 cargo nextest run -p feltkontor-server --test sync_property --no-capture

check: deps
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings
	cargo deny check licenses bans
	cd ui && npm run check

check-deps:
	cargo nextest run -p feltkontor-tests --test workspace

fmt:
	cargo fmt --all

# Rewrites ui/src/lib/bindings.ts from the Rust types (a test fails while they differ).
bindings: ui
	FELTKONTOR_WRITE_BINDINGS=1 cargo nextest run -p feltkontor-desktop committed_

# Rewrites crates/feltkontor-server/openapi.json from the served document (a test fails while they differ).
openapi:
	FELTKONTOR_WRITE_OPENAPI=1 cargo nextest run -p feltkontor-server openapi_document

bench-sync: deps
	cargo bench -p feltkontor-server --bench sync
	cd tests/bench/pouchdb && npm ci --no-audit --no-fund --loglevel=error && node replicate.mjs ../../../target/bench
	@echo "results: target/bench/sync.md"

# Incremental pulls with 4,000 quarantined notes waiting, against an empty quarantine.
bench-quarantine: deps
	cargo bench -p feltkontor-server --bench quarantine
	@echo "results: target/bench/quarantine.md"

bench-scale: deps
	cargo bench -p feltkontor-server --bench scale
	@echo "results: target/bench/scale.md"

# FELTKONTOR_FLEET_MINUTES sets the measured minutes (3).
bench-fleet: deps
	cargo bench -p feltkontor-server --bench fleet
	@echo "results: target/bench/fleet.md"

bench-server: deps
	cargo bench -p feltkontor-server --bench load
	@echo "results: target/bench/server.md"

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
