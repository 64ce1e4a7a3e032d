"""Schemathesis hooks: some generated bodies and path parameters are replaced by ones that reach
the handlers' logic (a real case, a valid change of this device, a note waiting in quarantine),
so every authenticated operation is exercised with valid input as well as with generated input.
Set by scripts/schemathesis.sh: FK_BASE, FK_TOKEN, FK_DEVICE, FK_CASE, FK_NOTE."""

import json
import os
import random
import threading
import time
import urllib.request
import uuid

import schemathesis

_lock = threading.Lock()
# Our own generator: Hypothesis seeds the global one the same way for every example.
_rng = random.Random(20261201)


def _env(name):
    return os.environ[name]


def _acked():
    """How far the service has this device's change log (an empty push answers it)."""
    req = urllib.request.Request(
        _env("FK_BASE") + "/v1/sync/push",
        data=json.dumps({"entries": []}).encode(),
        headers={"Authorization": "Bearer " + _env("FK_TOKEN"), "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)["acked_seq"]


def _hlc():
    device = _env("FK_DEVICE")
    return "%016x.%08x.%s" % (int(time.time() * 1000), _rng.randrange(1 << 16), device)


def _push_body():
    person = {
        "case_id": _env("FK_CASE"),
        "name": "Schemathesis %d" % _rng.randrange(1_000_000),
        "relation": "grandparent",
        "custody": False,
        "email": None,
        "address": None,
        "protected_address": False,
        "language": None,
        "interpreter_needed": False,
        "do_not_contact": False,
        "do_not_contact_reason": None,
    }
    hlc = _hlc()
    with _lock:
        seq = _acked() + 1
    return {
        "entries": [
            {
                "op_id": str(uuid.uuid4()),
                "seq": seq,
                "device": _env("FK_DEVICE"),
                "entity": "person",
                "entity_id": str(uuid.uuid4()),
                "fields": {k: {"value": v, "hlc": hlc} for k, v in person.items()},
            }
        ]
    }


@schemathesis.hook
def map_body(ctx, body):
    op = ctx.operation
    if op.method.upper() != "POST" or _rng.random() > 0.3:
        return body
    if op.path == "/v1/sync/push":
        return _push_body()
    if op.path == "/v1/quarantine/resolve":
        return {"note_id": _env("FK_NOTE"), "accept": _rng.random() < 0.5}
    if op.path in ("/v1/sync/pull", "/v1/sync/pull/stream"):
        return {"cursors": {}, "limit": _rng.randrange(1, 500)}
    if op.path == "/v1/sync/access":
        return {
            "entries": [
                {
                    "id": str(uuid.uuid4()),
                    "at_ms": int(time.time() * 1000),
                    "worker": _env("FK_STAFF"),
                    "device": _env("FK_DEVICE"),
                    "action": "open_case",
                    "case_id": _env("FK_CASE"),
                }
            ]
        }
    return body


@schemathesis.hook
def map_path_parameters(ctx, path_parameters):
    if path_parameters and "case_id" in path_parameters and _rng.random() < 0.3:
        path_parameters["case_id"] = _env("FK_CASE")
    return path_parameters
