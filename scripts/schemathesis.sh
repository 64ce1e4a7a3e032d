#!/usr/bin/env bash
# Property-based API tests: schemathesis (from PyPI) generates requests from the served OpenAPI
# document and checks every response: no 5xx, every status and body as documented. Runs against
# the real server binary on loopback, SQLite, with an enrolled device's token.
set -euo pipefail
# A failing step names itself: `set -e` alone would end the script without a word.
trap 'echo "schemathesis.sh: line $LINENO failed: $BASH_COMMAND" >&2' ERR
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
SCHEMATHESIS_VERSION=4.32.5
venv=target/venv-schemathesis
if [ ! -x "$venv/bin/schemathesis" ] || ! "$venv/bin/schemathesis" --version | grep -q "$SCHEMATHESIS_VERSION"; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "schemathesis==$SCHEMATHESIS_VERSION"
fi
bin=target/debug/feltkontor-server
[ -x "$bin" ] || cargo build -p feltkontor-server
work=$(mktemp -d)
server_pid=
cleanup() { [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
export FELTKONTOR_DATABASE_URL="sqlite:$work/central.db"
password="schemathesis-kodeord"
# The whole account list goes to a file first: piping it into `head -1` would close the pipe
# while the server still writes, and the write error fails the step at random.
echo "$password" | "$bin" admin demo --cases 30 > "$work/accounts.tsv" 2> "$work/demo.log" \
  || { cat "$work/demo.log" >&2; exit 1; }
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p target/server-logs
"$bin" serve --listen "127.0.0.1:$port" --device-rate 100000 --account-rate 100000 --address-rate 100000 --credential-rate 100000 \
  2> target/server-logs/schemathesis.log &
server_pid=$!
base="http://127.0.0.1:$port"
for _ in $(seq 100); do curl -sf "$base/health" >/dev/null && break; sleep 0.1; done
# A coordinator's device (its token is the run's), a second one for the retire operation, one
# of their cases, and a note waiting in quarantine for them.
eval "$(python3 scripts/schemathesis_setup.py "$base" "$bin" "$FELTKONTOR_DATABASE_URL" "$password" "$work/accounts.tsv")"
report=target/schemathesis
rm -rf "$report"
export PYTHONPATH="$PWD/scripts${PYTHONPATH:+:$PYTHONPATH}" SCHEMATHESIS_HOOKS=schemathesis_hooks
export FK_BASE="$base" FK_TOKEN="$token" FK_DEVICE="$device" FK_STAFF="$staff" FK_CASE="$case" FK_NOTE="$note"
checks=not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance
# Every operation but retiring, with a live token throughout (retiring would end it). One
# worker: with two, Hypothesis parses its lambdas' source on two threads at once, which this
# machine's CPython 3.11 (before 3.11.8, gh-106905) can fail with "AST constructor recursion
# depth mismatch" — an error of the test tool, not of the service.
"$venv/bin/schemathesis" run "$base/v1/openapi.json" \
  -H "Authorization: Bearer $token" --exclude-path /v1/device/retire \
  --checks "$checks" --max-examples 250 --seed 20261123 --no-color --workers 1 \
  --report ndjson --report-dir "$report" --generation-database none
# Retiring, on a device of its own.
"$venv/bin/schemathesis" run "$base/v1/openapi.json" \
  -H "Authorization: Bearer $retire_token" --include-path /v1/device/retire \
  --checks "$checks" --max-examples 20 --seed 20261123 --no-color \
  --report ndjson --report-dir "$report" --generation-database none
# Every authenticated operation reached its handler's logic: at least one 2xx answer each.
python3 - "$report" "$base/v1/openapi.json" <<'PY'
import collections, glob, json, re, sys, urllib.request
doc = json.load(urllib.request.urlopen(sys.argv[2]))
authenticated = {f"{m.upper()} {p}" for p, ops in doc["paths"].items() for m, op in ops.items() if op.get("security")}
ok = collections.Counter()
for path in glob.glob(sys.argv[1] + "/*.ndjson"):
    for line in open(path):
        event = json.loads(line).get("ScenarioFinished")
        if not event:
            continue
        for i in event["recorder"].get("interactions", {}).values():
            r = i.get("response") or {}
            if 200 <= (r.get("status_code") or 0) < 300:
                req = i["request"]
                for op in authenticated:
                    method, route = op.split(" ", 1)
                    # A path parameter is one path segment: /v1/cases/{case_id} is not its history.
                    pattern = re.escape(route).replace(re.escape("{case_id}"), "[^/]+") + "$"
                    url = req["uri"].split("?")[0]
                    if req["method"] == method and re.search(pattern, url):
                        ok[op] += 1
missing = sorted(op for op in authenticated if ok[op] == 0)
for op in sorted(authenticated):
    print(f"schemathesis: {op}: {ok[op]} answers 2xx")
if missing:
    sys.exit(f"schemathesis: no 2xx answer for {', '.join(missing)}")
PY
# At least 1,000 generated requests.
calls=$(python3 - "$report" <<'PY'
import json, sys, glob
n = 0
for path in glob.glob(sys.argv[1] + "/*.ndjson"):
    for line in open(path):
        n += line.count('"request":')
print(n)
PY
)
echo "schemathesis: $calls requests sent"
if [ "$calls" -lt 1000 ]; then
  echo "schemathesis: fewer than 1,000 requests were generated" >&2
  exit 1
fi
