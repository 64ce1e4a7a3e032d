#!/usr/bin/env bash
# `make bench-app`: the app's performance on the bench-size data set, release build, real window.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
# A driver or app left over from an interrupted run holds WebKitWebDriver's only session.
stop_leftovers() { pkill -f "WebKitWebDriver|tauri-driver" 2>/dev/null || true; }
stop_leftovers
trap stop_leftovers EXIT
(cd ui && npm run build >/dev/null)
cargo build --release -p feltkontor-desktop -p feltkontor-demo --bins
work=target/bench-app
mkdir -p "$work"
export FELTKONTOR_E2E_PASSPHRASE="bench-kodeord-feltkontor"
if [ ! -f "$work/profile/feltkontor.key" ] || [ ! -s "$work/long-case.txt" ]; then
  ./target/release/feltkontor-demo --dir "$work/profile" --bench --seed 42 --passphrase "$FELTKONTOR_E2E_PASSPHRASE" --force \
    | tee /dev/stderr | sed -n 's/^long case: //p' > "$work/long-case.txt"
fi
export FELTKONTOR_LONG_CASE="$(cat "$work/long-case.txt")"
export FELTKONTOR_DATA_DIR="$PWD/$work/profile"
export FELTKONTOR_APP="$PWD/target/release/feltkontor"
export FELTKONTOR_BENCH_OUT="$PWD/target/bench/app.md"
xvfb-run -a -s "-screen 0 1280x900x24" node tests/e2e/bench/app.mjs
