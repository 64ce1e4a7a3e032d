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
user=$(head -1 "$work/accounts.tsv" | cut -f1)
code=$("$bin" admin enrollment-code --username "$user")
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p target/server-logs
"$bin" serve --listen "127.0.0.1:$port" --device-rate 100000 --account-rate 100000 --address-rate 100000 \
  2> target/server-logs/schemathesis.log &
server_pid=$!
base="http://127.0.0.1:$port"
for _ in $(seq 100); do curl -sf "$base/health" >/dev/null && break; sleep 0.1; done
token=$(curl -sS --fail-with-body "$base/v1/enroll" -H 'content-type: application/json' \
  -d "{\"code\":\"$code\",\"username\":\"$user\",\"password\":\"$password\",\"device_name\":\"schemathesis\"}" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
report=target/schemathesis
rm -rf "$report"
"$venv/bin/schemathesis" run "$base/v1/openapi.json" \
  -H "Authorization: Bearer $token" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance \
  --max-examples 250 --seed 20261123 --no-color --workers 2 \
  --report ndjson --report-dir "$report" --generation-database none
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
