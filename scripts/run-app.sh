#!/usr/bin/env bash
# Opens the desktop app on the local data in $1, with the central service running locally on
# the demo database (target/demo/central.db). Without a display, runs under Xvfb.
set -euo pipefail
# With --connect, $1 is the connected computer's profile: kept between runs (the app opens it at
# the unlock screen); when there is none (or with --fresh, which deletes it first) the app opens
# at first run with the local service filled in, and the account and one-time code to connect
# with are printed here.
connect=
if [ "${1:-}" = "--connect" ]; then
  shift
  if [ "${1:-}" = "--fresh" ]; then
    shift
    echo "run-app: starting over: deleting the connected profile $1"
    rm -rf "$1"
  fi
  if [ ! -e "$1/feltkontor.key" ]; then
    connect=1
    rm -rf "$1"
  else
    echo "run-app: opening the connected profile kept from the last run (make run-connected FRESH=1 starts over)"
  fi
  mkdir -p "$1"
fi
dir=$(realpath "$1")
export FELTKONTOR_DATA_DIR="$dir"
export FELTKONTOR_SERVER_URL="http://127.0.0.1:8443"
./target/debug/feltkontor-server --database-url sqlite:target/demo/central.db serve --listen 127.0.0.1:8443 \
  2> target/demo/central.log &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
echo "run-app: central service on $FELTKONTOR_SERVER_URL (log: target/demo/central.log; accounts: target/demo/accounts.tsv)"
if [ -n "$connect" ]; then
  user=$(head -1 target/demo/accounts.tsv | cut -f1)
  code=$(./target/debug/feltkontor-server --database-url sqlite:target/demo/central.db admin enrollment-code --username "$user")
  echo "run-app: connect with user name: $user  one-time code: $code  password: ${FELTKONTOR_DEMO_PASSPHRASE:-demo-kodeord-feltkontor}"
fi
app=./target/debug/feltkontor
echo "run-app: close the app's window (or press Ctrl+C here) to stop the app and the central service"
if [ -z "${DISPLAY:-}" ] && [ -z "${WAYLAND_DISPLAY:-}" ]; then
  echo "run-app: no display found: the app runs under Xvfb, a virtual screen nobody sees;"
  echo "run-app: run 'make run' on a desktop to see the window. Ctrl+C stops it."
  xvfb-run -a "$app"
else
  "$app"
fi
