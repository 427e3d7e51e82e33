"""A client of Sekoia's HTTPS intake, written as Sekoia's documentation
shows it, pointed at a local flowgate intake instead.

Usage: sekoia_client.py BASE CA_FILE|- KEY1 KEY2 TAG

It sends to every endpoint, giving the key each way Sekoia takes it, and
prints one JSON line per request: what it sent ({"key", "events"}), the
status and the answer. Events are tagged with TAG so that runs differ.
"""
import gzip
import json
import sys

import requests

base, ca, key1, key2, tag = sys.argv[1:6]
verify = ca if ca != "-" else True
session = requests.Session()


def ev(name):
    return f"{tag} {name} <13>Dec  4 09:00:00 host app: message \"quoted\" é"


def send(name, path, sent, **kw):
    r = session.post(base + path, verify=verify, timeout=60, **kw)
    try:
        answer = r.json()
    except ValueError:
        answer = r.text
    print(json.dumps({"name": name, "status": r.status_code, "answer": answer, "sent": sent}), flush=True)


hdr = lambda k: {"X-SEKOIAIO-INTAKE-KEY": k}

# /plain: one raw event; the key in the header, as Basic password, in the query.
e = ev("plain-header")
send("plain-header", "/plain", [[key1, e]], data=e.encode(), headers=hdr(key1))
e = ev("plain-basic")
send("plain-basic", "/plain", [[key2, e]], data=e.encode(), auth=("user", key2))
e = ev("plain-query")
send("plain-query", "/plain", [[key1, e]], data=e.encode(), params={"intake_key": key1})
e = ev("plain-timestamp")
send("plain-timestamp", "/plain", [[key2, e]], data=e.encode(),
     headers={**hdr(key2), "X-SEKOIAIO-EVENT-TIMESTAMP": "2026-12-04T09:00:00+01:00"})

# /plain/batch: events separated by newlines.
es = [ev(f"plain-batch-{i}") for i in range(5)]
send("plain-batch", "/plain/batch", [[key1, x] for x in es], data="\n".join(es).encode(), headers=hdr(key1))

# /jsons: a JSON array of events, strings or objects.
es = [ev(f"jsons-{i}") for i in range(5)]
send("jsons", "/jsons", [[key2, x] for x in es], json=es, headers=hdr(key2))
obj = {"message": f"{tag} jsons-object", "n": 1}
send("jsons-object", "/jsons", [[key1, json.dumps(obj, separators=(",", ":"))]], json=[obj], auth=("", key1))

# gzip-compressed, on the regional hosts' path.
es = [ev(f"jsons-gzip-{i}") for i in range(5)]
send("jsons-gzip", "/api/v1/intake-http/jsons", [[key1, x] for x in es],
     data=gzip.compress(json.dumps(es).encode()),
     headers={**hdr(key1), "Content-Type": "application/json", "Content-Encoding": "gzip"})

# /batch: the key in the body.
es = [ev(f"batch-{i}") for i in range(5)]
send("batch", "/batch", [[key2, x] for x in es], json={"intake_key": key2, "jsons": es})

# /array: a key and a timestamp per event, two keys in one request.
items = [{"intake_key": [key1, key2][i % 2], "json": ev(f"array-{i}"), "timestamp": "2026-12-04T08:00:00Z"} for i in range(6)]
send("array", "/array", [[x["intake_key"], x["json"]] for x in items], json=items)

# /: one event with its key and @timestamp.
e = ev("root")
send("root", "/", [[key1, e]], json={"intake_key": key1, "json": e, "@timestamp": "2026-12-04T08:00:00Z"})
