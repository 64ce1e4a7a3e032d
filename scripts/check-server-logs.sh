#!/usr/bin/env bash
# After the test run: the central service's own logs (target/server-logs/, written by every
# server the tests started) must hold no CPR number, note text or address.
set -euo pipefail
cd "$(dirname "$0")/.."
logs=(target/server-logs/*.log)
if [ ! -e "${logs[0]}" ]; then
  echo "check-server-logs: no server logs found; run the server tests first" >&2
  exit 1
fi
# The test fixtures' personal data (crates/feltkontor-server/tests/common/world.rs) and any
# CPR-shaped number (DDMMYY-SSSS) not inside an id.
fixed=(010118-9999 0101189999 Hemmeligvej Kendtvej ALFA-sentinel BRAVO-sentinel CHARLIE-sentinel DELTA-sentinel korrekt-hest)
bad=0
for s in "${fixed[@]}"; do
  if grep -l -F -- "$s" "${logs[@]}"; then echo "check-server-logs: found personal data ($s) in the logs above" >&2; bad=1; fi
done
if grep -l -E '(^|[^0-9a-fA-F-])[0-3][0-9][01][0-9]{3}-?[0-9]{4}([^0-9a-fA-F-]|$)' "${logs[@]}"; then
  echo "check-server-logs: a CPR-shaped number is in the logs above" >&2; bad=1
fi
lines=$(cat "${logs[@]}" | wc -l)
[ "$bad" = 0 ] && echo "check-server-logs: ${#logs[@]} server logs, $lines lines, no personal data"
exit $bad
