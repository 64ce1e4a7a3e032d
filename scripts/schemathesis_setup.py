"""Prepares the schemathesis run on the demo municipality: a coordinator's device (the token
the run uses), a second device of theirs for the retire operation, one of their cases, and a
note waiting in quarantine for them (written by a colleague removed from the team after they
had the case). Prints shell assignments."""

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid

base, binary, db, password, accounts = sys.argv[1:6]


def call(path, body=None, token=None, method=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method or ("POST" if data else "GET"))
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", "Bearer " + token)
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.load(r)


def admin(*args):
    return subprocess.run(
        [binary, "--database-url", db, "admin", *args], check=True, capture_output=True, text=True
    ).stdout.strip()


def enroll(user):
    code = admin("enrollment-code", "--username", user)
    return call("/v1/enroll", {"code": code, "username": user, "password": password, "device_name": "schemathesis"})


rows = [l.rstrip("\n").split("\t") for l in open(accounts) if l.strip()]
for user, _name, _profession, team in rows:
    me = enroll(user)
    mine = [c for c in call("/v1/cases", token=me["access_token"])["cases"] if c["my_role"] == "coordinator"]
    colleagues = [r[0] for r in rows if r[3] == team and r[0] != user]
    if mine and colleagues:
        break
else:
    sys.exit("schemathesis_setup: no coordinator with a colleague in the demo data")
case = mine[0]["id"]
retire = enroll(user)

# A colleague has the case, is removed from the team while offline (and so loses the case: not
# one of its participants), and writes a note there.
def loses_the_case(name):
    c = enroll(name)
    call("/v1/sync/pull", {"cursors": {}, "limit": 5000}, token=c["access_token"])
    admin("remove-member", "--username", name, "--team", team)
    try:
        call("/v1/cases/" + case, token=c["access_token"])
    except urllib.error.HTTPError as e:
        if e.code == 404:
            return c
        raise
    admin("add-member", "--username", name, "--team", team)
    return None


for name in colleagues:
    colleague = loses_the_case(name)
    if colleague:
        break
else:
    sys.exit("schemathesis_setup: every colleague keeps the case as a participant")
hlc = "%016x.%08x.%s" % (int(time.time() * 1000), 0, colleague["device_id"])
note = {
    "case_id": case,
    "author_id": colleague["staff_id"],
    "kind": "home_visit",
    "occurred_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 3600)),
    "body": "Skrevet uden net, før medarbejderen forlod teamet.",
    "child_words": "",
    "family_perspective": "",
    "statutory": True,
    "audience": "case_team",
    "status": "draft",
    "signed_at": None,
    "content_hash": None,
    "addendum_to": None,
}
note_id = str(uuid.uuid4())
pushed = call(
    "/v1/sync/push",
    {"entries": [{"op_id": str(uuid.uuid4()), "seq": 1, "device": colleague["device_id"], "entity": "note",
                  "entity_id": note_id, "fields": {k: {"value": v, "hlc": hlc} for k, v in note.items()}}]},
    token=colleague["access_token"],
)
assert [r["code"] for r in pushed["rejected"]] == ["forbidden"], pushed
waiting = call("/v1/quarantine", token=me["access_token"])["notes"]
assert any(n["note_id"] == note_id for n in waiting), waiting
print(f"token={me['access_token']}")
print(f"retire_token={retire['access_token']}")
print(f"device={me['device_id']}")
print(f"staff={me['staff_id']}")
print(f"case={case}")
print(f"note={note_id}")
