#!/usr/bin/env bash
# Opens the desktop app on the local data in $1. Without a display, runs under Xvfb.
set -euo pipefail
dir=$(realpath "$1")
export FELTKONTOR_DATA_DIR="$dir"
app=./target/debug/feltkontor
if [ -z "${DISPLAY:-}" ] && [ -z "${WAYLAND_DISPLAY:-}" ]; then
  echo "run-app: no display found; starting the app under Xvfb (headless)"
  exec xvfb-run -a "$app"
fi
exec "$app"
