#!/usr/bin/env python3
"""A small in-memory stand-in for a Kubernetes API server, for driving `pipeline apply`, `plan` and
`destroy` end to end where no cluster can run (tests/apply_kube_fake.rs).

It keeps objects by (resource, namespace, name) and implements what pipeline uses: server-side apply
(PATCH application/apply-patch+yaml: the object is stored as sent, with server fields added), get, list
with label and field selectors, delete, create and update with resourceVersion preconditions (Leases),
and merge patches. Controllers are instantaneous: a Deployment or StatefulSet is ready and a Job complete
as soon as it is applied. Requests are recorded; test-only endpoints under /fake/ show them and change
objects behind pipeline's back.

Usage: fake_kube.py PORT_FILE   (listens on an ephemeral 127.0.0.1 port and writes it to PORT_FILE)
"""

import datetime
import json
import re
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

LOCK = threading.Lock()
OBJECTS = {}  # (resource, namespace, name) -> object
REQUESTS = []
VERSION = [100]

PATH = re.compile(
    r"^/(?:api/v1|apis/(?P<group>[^/]+)/(?P<version>[^/]+))"
    r"(?:/namespaces/(?P<ns>[^/]+))?(?:/(?P<resource>[^/]+))?(?:/(?P<name>[^/]+))?(?:/(?P<sub>[^/]+))?$"
)


def next_version():
    VERSION[0] += 1
    return str(VERSION[0])


def matches(obj, label_selector, field_selector):
    labels = obj.get("metadata", {}).get("labels") or {}
    for term in filter(None, (label_selector or "").split(",")):
        k, _, v = term.partition("=")
        if labels.get(k) != v:
            return False
    for term in filter(None, (field_selector or "").split(",")):
        k, _, v = term.partition("=")
        cur = obj
        for part in k.split("."):
            cur = cur.get(part) if isinstance(cur, dict) else None
        if cur != v:
            return False
    return True


def settle(resource, obj):
    """What the controllers would do, at once."""
    spec = obj.get("spec") or {}
    gen = obj["metadata"].get("generation", 1)
    want = spec.get("replicas", 1)
    if resource == "deployments":
        obj["status"] = {"observedGeneration": gen, "replicas": want, "updatedReplicas": want,
                         "readyReplicas": want, "availableReplicas": want}
    elif resource == "statefulsets":
        obj["status"] = {"observedGeneration": gen, "replicas": want, "updatedReplicas": want,
                         "readyReplicas": want, "currentRevision": "r1", "updateRevision": "r1"}
    elif resource == "jobs":
        obj["status"] = {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]}


def merge(into, patch):
    for k, v in patch.items():
        if v is None:
            into.pop(k, None)
        elif isinstance(v, dict) and isinstance(into.get(k), dict):
            merge(into[k], v)
        else:
            into[k] = v


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def status(self, code, reason, message):
        self.reply(code, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                          "message": message, "reason": reason, "code": code})

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        return json.loads(raw) if raw else None

    def handle_any(self, method):
        url = urlparse(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        body = self.body()
        with LOCK:
            if url.path.startswith("/fake/"):
                return self.fake(method, url.path, query, body)
            REQUESTS.append({"method": method, "path": url.path, "query": query,
                             "contentType": self.headers.get("Content-Type")})
            m = PATH.match(url.path)
            if not m:
                return self.status(404, "NotFound", f"no route {url.path}")
            ns, resource, name, sub = m.group("ns"), m.group("resource"), m.group("name"), m.group("sub")
            if resource is None and ns is not None:  # /api/v1/namespaces/NAME
                resource, name, ns = "namespaces", ns, ""
            ns = ns or ""
            key = (resource, ns, name)
            if sub == "log":
                return self.reply(200, "")
            if method == "GET" and name is None:
                if query.get("watch") == "true":
                    return self.reply(200, {})
                items = [o for (r, n, _), o in sorted(OBJECTS.items()) if r == resource and n == ns
                         and matches(o, query.get("labelSelector"), query.get("fieldSelector"))]
                return self.reply(200, {"kind": "List", "apiVersion": "v1",
                                        "metadata": {"resourceVersion": str(VERSION[0])}, "items": items})
            if method == "GET":
                if key not in OBJECTS:
                    return self.status(404, "NotFound", f'{resource} "{name}" not found')
                return self.reply(200, OBJECTS[key])
            if method == "PATCH" and self.headers.get("Content-Type") == "application/apply-patch+yaml":
                old = OBJECTS.get(key)
                obj = body
                meta = obj.setdefault("metadata", {})
                meta["uid"] = (old or {}).get("metadata", {}).get("uid", f"uid-{next_version()}")
                meta["resourceVersion"] = next_version()
                gen = (old or {}).get("metadata", {}).get("generation", 0)
                changed = old is None or old.get("spec") != obj.get("spec")
                meta["generation"] = gen + 1 if changed else gen
                meta["managedFields"] = [{"manager": query.get("fieldManager"), "operation": "Apply"}]
                settle(resource, obj)
                OBJECTS[key] = obj
                return self.reply(201 if old is None else 200, obj)
            if method == "PATCH":
                if key not in OBJECTS:
                    return self.status(404, "NotFound", f'{resource} "{name}" not found')
                merge(OBJECTS[key], body or {})
                OBJECTS[key]["metadata"]["resourceVersion"] = next_version()
                return self.reply(200, OBJECTS[key])
            if method == "POST":
                name = body["metadata"]["name"]
                key = (resource, ns, name)
                if key in OBJECTS:
                    return self.status(409, "AlreadyExists", f'{resource} "{name}" already exists')
                body["metadata"]["resourceVersion"] = next_version()
                OBJECTS[key] = body
                return self.reply(201, body)
            if method == "PUT":
                old = OBJECTS.get(key)
                if old is None:
                    return self.status(404, "NotFound", f'{resource} "{name}" not found')
                if body["metadata"].get("resourceVersion") != old["metadata"]["resourceVersion"]:
                    return self.status(409, "Conflict", "the object has been modified")
                body["metadata"]["resourceVersion"] = next_version()
                OBJECTS[key] = body
                return self.reply(200, body)
            if method == "DELETE":
                old = OBJECTS.pop(key, None)
                if old is None:
                    return self.status(404, "NotFound", f'{resource} "{name}" not found')
                return self.reply(200, old)
            return self.status(405, "MethodNotAllowed", method)

    def fake(self, method, path, query, body):
        if path == "/fake/requests":
            return self.reply(200, REQUESTS)
        if path == "/fake/objects":
            return self.reply(200, [{"resource": r, "namespace": n, "name": k, "object": o}
                                    for (r, n, k), o in sorted(OBJECTS.items())])
        if path == "/fake/scale":  # kubectl scale, behind pipeline's back
            obj = OBJECTS[("deployments", query["namespace"], query["name"])]
            obj["spec"]["replicas"] = int(query["replicas"])
            obj["metadata"]["generation"] += 1
            settle("deployments", obj)
            return self.reply(200, obj)
        if path == "/fake/lease":  # another apply holds the environment's lease, renewed just now
            now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                     "metadata": {"name": query["name"], "namespace": query["namespace"],
                                  "resourceVersion": next_version()},
                     "spec": {"holderIdentity": query["holder"], "leaseDurationSeconds": 60, "renewTime": now}}
            OBJECTS[("leases", query["namespace"], query["name"])] = lease
            return self.reply(200, lease)
        return self.status(404, "NotFound", path)

    def do_GET(self):
        self.handle_any("GET")

    def do_POST(self):
        self.handle_any("POST")

    def do_PUT(self):
        self.handle_any("PUT")

    def do_PATCH(self):
        self.handle_any("PATCH")

    def do_DELETE(self):
        self.handle_any("DELETE")


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    with open(sys.argv[1], "w") as f:
        f.write(str(server.server_address[1]))
    server.serve_forever()
