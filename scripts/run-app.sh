#!/usr/bin/env bash
# Opens the desktop app on the local data in $1, with the central service running locally on
# the demo database (target/demo/central.db). Without a display, runs under Xvfb.
set -euo pipefail
dir=$(realpath "$1")
export FELTKONTOR_DATA_DIR="$dir"
export FELTKONTOR_SERVER_URL="http://127.0.0.1:8443"
./target/debug/feltkontor-server --database-url sqlite:target/demo/central.db serve --listen 127.0.0.1:8443 \
  2> target/demo/central.log &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
echo "run-app: central service on $FELTKONTOR_SERVER_URL (log: target/demo/central.log; accounts: target/demo/accounts.tsv)"
app=./target/debug/feltkontor
if [ -z "${DISPLAY:-}" ] && [ -z "${WAYLAND_DISPLAY:-}" ]; then
  echo "run-app: no display found; starting the app under Xvfb (headless)"
  xvfb-run -a "$app"
else
  "$app"
fi
