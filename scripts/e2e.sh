#!/usr/bin/env bash
# End-to-end tests against the real app binary in a real window (Xvfb), driven over WebDriver
# by tauri-driver and WebKitWebDriver. Screenshots go to target/e2e-screenshots/.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
# A driver or app left over from an interrupted run holds WebKitWebDriver's only session. An app
# whose driver died keeps running with the test's output pipe open (seen once in CI: the runner
# then waited for it after all tests had passed); only the app started from this tree's absolute
# path is stopped, never one opened by `make run`.
stop_leftovers() {
  pkill -f "WebKitWebDriver|tauri-driver" 2>/dev/null || true
  pkill -f "^$PWD/target/debug/feltkontor( |$)" 2>/dev/null || true
}
stop_leftovers
trap stop_leftovers EXIT
for tool in tauri-driver WebKitWebDriver xvfb-run; do
  command -v "$tool" >/dev/null || { echo "e2e: $tool is missing; run scripts/install-deps.sh" >&2; exit 1; }
done
# The same build as `make test-rust`, so nothing is compiled twice.
cargo build --workspace --bins
work=target/e2e
rm -rf "$work"
mkdir -p "$work" target/e2e-screenshots
export FELTKONTOR_E2E_PASSPHRASE="e2e-kodeord-feltkontor"
./target/debug/feltkontor-demo --dir "$work/profile" --cases 40 --passphrase "$FELTKONTOR_E2E_PASSPHRASE" >/dev/null 2>&1
export FELTKONTOR_DATA_DIR="$PWD/$work/profile"
export FELTKONTOR_APP="$PWD/target/debug/feltkontor"
export FELTKONTOR_SCREENSHOTS="$PWD/target/e2e-screenshots"
export FELTKONTOR_WORK="$PWD/$work"
# The app turns WebKit's GPU compositing off by default (memory). Without compositing,
# WebKitWebDriver's screenshot command can wait forever for a snapshot under Xvfb, so the
# screenshot-taking tests run with compositing on; the keyboard test runs the app's default.
export WEBKIT_DISABLE_COMPOSITING_MODE=0
xvfb-run -a -s "-screen 0 1366x768x24" node --test --test-concurrency=1 --test-force-exit ${FELTKONTOR_E2E_ONLY:-tests/e2e/}
