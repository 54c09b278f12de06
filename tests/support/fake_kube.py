#!/usr/bin/env python3
"""A stand-in for a Kubernetes API server, for driving `pipeline apply`, `plan` and `destroy` end to end
where no cluster can run (tests/apply_kube_fake.rs). It is written from the Kubernetes documentation, for
what pipeline relies on, so that it can disagree with pipeline the way a real cluster would; the page behind
each behaviour is cited beside it. Its own tests are tests/support/test_fake_kube.py.

- Server-side apply with field ownership: managedFields per manager and operation, 409 with
  FieldManagerConflict causes naming manager and field unless force=true, fields an applier drops are
  removed, an update (merge patch, PUT, the scale subresource) takes ownership of what it changes.
- Defaulting of what a server fills in for the kinds pipeline creates, quantities in canonical form.
- Validation against the Kubernetes 1.33 OpenAPI schemas that the kubernetes-validate package ships
  (strict: unknown fields are refused), plus the semantic checks pipeline's objects can trip (immutable
  fields, selectors, names); 400 for unknown fields, 422 for invalid objects.
- resourceVersion preconditions on every write (409), generation bumped on spec changes only.
- Controllers that take time: pods become ready one by one (Deployments, StatefulSets), Jobs run their
  pod; an image or command can be made to fail (`/fake/config`), which stalls a rollout with the pods'
  reasons and events, or fails a Job. status.observedGeneration follows.
- Watches that stream real events (ADDED, MODIFIED, DELETED, BOOKMARK), expire old resourceVersions
  (410) and end after timeoutSeconds or when the test says so.
- Deletion with propagation policies (Background, Foreground, Orphan), finalizers and graceful pod
  termination: objects linger with a deletionTimestamp. 404 for a namespace that does not exist, 403 for
  one that is terminating.

Simplifications (said so as not to be mistaken for the real thing): no ReplicaSets (a Deployment owns its
pods directly), one container state per pod, no authentication, no admission webhooks, no CronJob
schedules run, times are seconds of this process (`/fake/config` sets how long things take).

Deterministic: names, uids and the order of every event follow from the requests alone; only timestamps
are wall-clock time (Leases need them).

Usage: fake_kube.py PORT_FILE   (listens on an ephemeral 127.0.0.1 port and writes it to PORT_FILE)
Test-only endpoints under /fake/: requests, objects, config (POST a JSON object to merge into CONFIG),
compact (forget watch history: older resourceVersions answer 410), close-watches.
"""

import copy
import datetime
import fractions
import hashlib
import json
import re
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

LOCK = threading.RLock()
CHANGED = threading.Condition(LOCK)
OBJECTS = {}  # (resource, namespace, name) -> object
REQUESTS = []
VERSION = [100]
HISTORY = []  # (resourceVersion, resource, namespace, type, object) for watches
OLDEST = [0]  # the oldest resourceVersion a watch may start from
WATCH_EPOCH = [0]  # bumped by /fake/close-watches
UIDS = [0]
CONFIG = {
    "podReadySeconds": 0.2,  # from creation to Ready, per pod
    "jobRunSeconds": 0.3,  # how long a Job's pod runs
    "podGraceSeconds": 0.3,  # a deleted pod lingers this long (terminationGracePeriodSeconds, scaled)
    "bookmarkSeconds": 1.0,
    "watchMaxSeconds": None,  # the server ends every watch after this long (None: timeoutSeconds)
    # [{"match": "substring of image or command", "pull": "fail"} | {"match": ..., "exit": 3, "log": "..."}]
    "behaviour": [],
    # {"resource/name": seconds}: a finalizer held that long after deletion starts (a controller's cleanup)
    "holdFinalizer": {},
}

# Kinds served: resource -> (group/version, kind, namespaced, has generation)
KINDS = {
    "namespaces": ("v1", "Namespace", False, False),
    "configmaps": ("v1", "ConfigMap", True, False),
    "secrets": ("v1", "Secret", True, False),
    "services": ("v1", "Service", True, False),
    "pods": ("v1", "Pod", True, False),
    "events": ("v1", "Event", True, False),
    "persistentvolumeclaims": ("v1", "PersistentVolumeClaim", True, False),
    "deployments": ("apps/v1", "Deployment", True, True),
    "statefulsets": ("apps/v1", "StatefulSet", True, True),
    "jobs": ("batch/v1", "Job", True, True),
    "cronjobs": ("batch/v1", "CronJob", True, True),
    "leases": ("coordination.k8s.io/v1", "Lease", True, False),
    "ingresses": ("networking.k8s.io/v1", "Ingress", True, True),
}
GROUP = {"apps/v1": "apps", "batch/v1": "batch", "coordination.k8s.io/v1": "coordination.k8s.io",
         "networking.k8s.io/v1": "networking.k8s.io", "v1": ""}

PATH = re.compile(
    r"^/(?:api/(?P<core>v1)|apis/(?P<group>[^/]+)/(?P<version>[^/]+))"
    r"(?:/namespaces/(?P<ns>[^/]+))?(?:/(?P<resource>[^/]+))?(?:/(?P<name>[^/]+))?(?:/(?P<sub>[^/]+))?$"
)


class ApiError(Exception):
    """A Status answer: https://kubernetes.io/docs/reference/using-api/api-concepts/#response-status-kind"""

    def __init__(self, code, reason, message, causes=None, details=None):
        super().__init__(message)
        self.code, self.reason, self.message, self.causes, self.details = code, reason, message, causes, details

    def status(self):
        out = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": self.message, "reason": self.reason, "code": self.code}
        details = dict(self.details or {})
        if self.causes:
            details["causes"] = self.causes
        if details:
            out["details"] = details
        return out


def now_time():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_micro():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def next_version():
    VERSION[0] += 1
    return str(VERSION[0])


def next_uid():
    UIDS[0] += 1
    return f"00000000-0000-4000-8000-{UIDS[0]:012d}"


def qualified(resource):
    group = GROUP[KINDS[resource][0]]
    return f"{resource}.{group}" if group else resource


def kind_of(resource):
    group = GROUP[KINDS[resource][0]]
    kind = KINDS[resource][1]
    return f"{kind}.{group}" if group else kind


def short_hash(value, n=10):
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:n]


# ---------------------------------------------------------------------------------------------------------
# Schemas: the OpenAPI v3 schemas of Kubernetes 1.33, as kubernetes-validate ships them (standalone, strict).

SCHEMAS = {}
DEFS = {}


def schema_dir():
    import importlib.resources

    root = importlib.resources.files("kubernetes_validate").joinpath("kubernetes-json-schema")
    return root.joinpath("v1.33.0-local-strict")


def load_schemas():
    """Fails loudly when kubernetes-validate is missing: a stand-in that validates nothing proves little."""
    d = schema_dir()
    DEFS.update(json.loads(d.joinpath("_definitions.json").read_text())["$defs"])
    for resource, (gv, kind, _, _) in KINDS.items():
        api = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", gv)
        SCHEMAS[resource] = json.loads(d.joinpath(f"{kind.lower()}-{api}.json").read_text())


def resolve(schema):
    while isinstance(schema, dict) and "$ref" in schema:
        schema = DEFS[schema["$ref"].rsplit("/", 1)[1]]
    if isinstance(schema, dict) and "allOf" in schema and len(schema["allOf"]) == 1:
        return resolve(schema["allOf"][0])
    return schema


def schema_at(resource, path):
    """The schema of the field at `path` (dict keys only; list items are implied)."""
    s = resolve(SCHEMAS[resource])
    for key in path:
        if not isinstance(s, dict):
            return None
        if s.get("type") in ("array", ["array", "null"]) or "items" in s:
            s = resolve(s.get("items"))
        props = (s or {}).get("properties")
        if props and key in props:
            s = resolve(props[key])
        elif isinstance((s or {}).get("additionalProperties"), dict):
            s = resolve(s["additionalProperties"])
        else:
            return None
    return s


def list_keys(resource, path):
    """The key fields of an associative list (x-kubernetes-list-type: map), or None for an atomic list.
    https://kubernetes.io/docs/reference/using-api/server-side-apply/#merge-strategy"""
    s = schema_at(resource, path) or {}
    if s.get("x-kubernetes-list-type") == "map":
        return s.get("x-kubernetes-list-map-keys")
    if s.get("x-kubernetes-patch-merge-key"):
        return [s["x-kubernetes-patch-merge-key"]]
    return None


VALIDATORS = {}


def schema_errors(resource, obj):
    import jsonschema
    from referencing import Registry, Resource

    if resource not in VALIDATORS:
        registry = Resource.from_contents({"$id": "https://kubernetes.io/api/_definitions.json",
                                           "$schema": "https://json-schema.org/draft/2020-12/schema",
                                           "$defs": DEFS}) @ Registry()
        VALIDATORS[resource] = jsonschema.validators.Draft202012Validator(SCHEMAS[resource], registry=registry)
    return sorted(VALIDATORS[resource].iter_errors(public(obj)), key=lambda e: list(map(str, e.path)))


# ---------------------------------------------------------------------------------------------------------
# Field sets, as server-side apply tracks them (a simplified FieldsV1: leaves and associative-list items).
# https://kubernetes.io/docs/reference/using-api/server-side-apply/#field-management

def item_key(item, keys):
    return json.dumps({k: item.get(k) for k in keys if k in item}, sort_keys=True, separators=(",", ":"))


def fieldset(resource, obj, path=(), schema_path=()):
    out = set()
    for k, v in obj.items():
        if path == () and k in ("apiVersion", "kind", "status"):
            continue
        if path == (("f", "metadata"),) and k in ("name", "namespace", "uid", "resourceVersion", "generation",
                                           "creationTimestamp", "managedFields", "deletionTimestamp",
                                           "deletionGracePeriodSeconds"):
            continue
        p, sp = path + (("f", k),), schema_path + (k,)
        if isinstance(v, dict) and v:
            out |= fieldset(resource, v, p, sp)
        elif isinstance(v, list) and v and (keys := list_keys(resource, sp)) and all(isinstance(i, dict) for i in v):
            for item in v:
                ip = p + (("k", item_key(item, keys)),)
                out.add(ip + ((".", ""),))
                out |= fieldset(resource, item, ip, sp)
        else:
            out.add(p)
    return out


def to_fields_v1(fields):
    root = {}
    for f in sorted(fields):
        node = root
        for kind, name in f:
            node = node.setdefault("." if kind == "." else f"{kind}:{name}", {})
    return root


def from_fields_v1(tree, path=()):
    out = set()
    for k, v in tree.items():
        if k == ".":
            out.add(path + ((".", ""),))
            continue
        kind, _, name = k.partition(":")
        p = path + ((kind, name),)
        out |= from_fields_v1(v, p) if v else {p}
    return out


def field_name(f):
    """`.spec.replicas`, `.spec.template.spec.containers[name="api"].image`, as conflicts name them."""
    out = ""
    for kind, name in f:
        if kind == "f":
            out += f".{name}"
        elif kind == "k":
            out += "[" + ",".join(f"{k}={json.dumps(v)}" for k, v in json.loads(name).items()) + "]"
    return out


def value_at(obj, f):
    cur = obj
    for kind, name in f:
        if kind == ".":
            return cur
        if kind == "f":
            if not isinstance(cur, dict) or name not in cur:
                return None
            cur = cur[name]
        elif kind == "k":
            want = json.loads(name)
            if not isinstance(cur, list):
                return None
            cur = next((i for i in cur if isinstance(i, dict) and all(i.get(a) == b for a, b in want.items())), None)
            if cur is None:
                return None
    return cur


def remove_at(obj, f):
    """Remove a field (or, for `.`, the list item) from an object."""
    parent, cur = None, obj
    for i, (kind, name) in enumerate(f):
        last = i == len(f) - 1
        if kind == ".":
            if isinstance(parent, list):
                parent.remove(cur)
            return
        if kind == "f":
            if not isinstance(cur, dict) or name not in cur:
                return
            if last:
                del cur[name]
                return
            parent, cur = cur, cur[name]
        elif kind == "k":
            want = json.loads(name)
            item = next((x for x in cur if isinstance(x, dict) and all(x.get(a) == b for a, b in want.items())), None)
            if item is None:
                return
            parent, cur = cur, item


def prune_empty(obj, path=()):
    for k in list(obj):
        v = obj[k]
        if isinstance(v, dict):
            prune_empty(v, path + (k,))
            if not v and path and path[-1] != "metadata":
                del obj[k]


def merge_applied(resource, live, cfg, schema_path=()):
    """Merge an applied configuration into the live object: maps by key, associative lists by their keys
    (applied items first), everything else replaced."""
    for k, v in cfg.items():
        sp = schema_path + (k,)
        cur = live.get(k)
        if isinstance(v, dict) and isinstance(cur, dict):
            merge_applied(resource, cur, v, sp)
        elif isinstance(v, list) and isinstance(cur, list) and (keys := list_keys(resource, sp)):
            merged = []
            for item in v:
                old = next((o for o in cur if isinstance(o, dict) and item_key(o, keys) == item_key(item, keys)), None)
                if old is not None and isinstance(item, dict):
                    merge_applied(resource, old, item, sp)
                    merged.append(old)
                else:
                    merged.append(copy.deepcopy(item))
            merged += [o for o in cur if all(item_key(o, keys) != item_key(i, keys) for i in v)]
            live[k] = merged
        else:
            live[k] = copy.deepcopy(v)


def json_merge_patch(target, patch):
    """RFC 7386. https://kubernetes.io/docs/tasks/manage-kubernetes-objects/update-api-object-kubectl-patch/"""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = json_merge_patch(out.get(k), v)
    return out


def managers(obj):
    return obj.setdefault("metadata", {}).setdefault("managedFields", [])


def owned(entry):
    return from_fields_v1(entry.get("fieldsV1") or {})


def set_owned(obj, manager, operation, fields, api_version, subresource=None):
    entries = managers(obj)
    entry = next((e for e in entries if e["manager"] == manager and e["operation"] == operation
                  and e.get("subresource") == subresource), None)
    if not fields:
        if entry is not None:
            entries.remove(entry)
        return
    if entry is None:
        entry = {"manager": manager, "operation": operation, "apiVersion": api_version, "fieldsType": "FieldsV1"}
        if subresource:
            entry["subresource"] = subresource
        entries.append(entry)
    entry["time"] = now_time()
    entry["fieldsV1"] = to_fields_v1(fields)


def take_changed(obj, before, manager, api_version, subresource=None):
    """An update owns what it changed, taken from every other manager.
    https://kubernetes.io/docs/reference/using-api/server-side-apply/#conflicts ("If you change a field
    with an Update ... the field's ownership moves to the updater")."""
    resource = resource_of(obj)
    changed = {f for f in fieldset(resource, obj) if value_at(obj, f) != value_at(before, f)}
    if not changed:
        return
    for e in list(managers(obj)):
        if e["manager"] == manager and e["operation"] == "Update" and e.get("subresource") == subresource:
            continue
        rest = owned(e) - changed
        if rest != owned(e):
            set_owned(obj, e["manager"], e["operation"], rest, e["apiVersion"], e.get("subresource"))
    mine = next((e for e in managers(obj) if e["manager"] == manager and e["operation"] == "Update"
                 and e.get("subresource") == subresource), None)
    set_owned(obj, manager, "Update", (owned(mine) if mine else set()) | changed, api_version, subresource)


def resource_of(obj):
    for r, (gv, kind, _, _) in KINDS.items():
        if obj.get("kind") == kind and obj.get("apiVersion") == gv:
            return r
    return None


# ---------------------------------------------------------------------------------------------------------
# Defaulting: what `kubectl get -o yaml` shows after applying pipeline's manifests.
# https://kubernetes.io/docs/reference/kubernetes-api/ (each kind's page gives its defaults)

BINARY = [("Ei", 2 ** 60), ("Pi", 2 ** 50), ("Ti", 2 ** 40), ("Gi", 2 ** 30), ("Mi", 2 ** 20), ("Ki", 2 ** 10)]
DECIMAL = [("E", 18), ("P", 15), ("T", 12), ("G", 9), ("M", 6), ("k", 3), ("", 0), ("m", -3), ("u", -6), ("n", -9)]


def canonical_quantity(q):
    """A quantity in the form the server stores: `0.5` -> `500m`, `1024Mi` -> `1Gi`, `2000` -> `2k`.
    https://kubernetes.io/docs/reference/kubernetes-api/common-definitions/quantity/"""
    if not isinstance(q, str):
        q = str(q)
    m = re.fullmatch(r"([+-]?[0-9.]+)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?", q.strip())
    if not m:
        return q
    number, suffix = fractions.Fraction(m.group(1)), m.group(2) or ""
    binary = dict(BINARY)
    if suffix in binary:
        value = number * binary[suffix]
        if value.denominator == 1:
            for s, f in BINARY:
                if value % f == 0:
                    return f"{value // f}{s}"
            return str(value)
    else:
        value = number * fractions.Fraction(10) ** dict(DECIMAL)[suffix]
    for s, e in DECIMAL:
        mantissa = value / fractions.Fraction(10) ** e
        if mantissa.denominator == 1:
            return f"{mantissa.numerator}{s}"
    return q


def default_probe(p):
    if not p:
        return
    p.setdefault("timeoutSeconds", 1)
    p.setdefault("periodSeconds", 10)
    p.setdefault("successThreshold", 1)
    p.setdefault("failureThreshold", 3)
    if "httpGet" in p:
        p["httpGet"].setdefault("scheme", "HTTP")


def default_pod_spec(spec):
    """https://kubernetes.io/docs/reference/kubernetes-api/workload-resources/pod-v1/"""
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    for c in spec.get("containers") or []:
        c.setdefault("terminationMessagePath", "/dev/termination-log")
        c.setdefault("terminationMessagePolicy", "File")
        image = c.get("image") or ""
        # https://kubernetes.io/docs/concepts/containers/images/#imagepullpolicy-defaulting
        latest = ":" not in image.rsplit("/", 1)[-1] or image.endswith(":latest")
        c.setdefault("imagePullPolicy", "Always" if latest and "@" not in image else "IfNotPresent")
        c.setdefault("resources", {})
        for p in c.get("ports") or []:
            p.setdefault("protocol", "TCP")
        for r in ("limits", "requests"):
            for k, v in (c["resources"].get(r) or {}).items():
                c["resources"][r][k] = canonical_quantity(v)
        # https://kubernetes.io/docs/concepts/configuration/manage-resources-containers/#requests-and-limits
        if c["resources"].get("limits") and not c["resources"].get("requests"):
            c["resources"]["requests"] = dict(c["resources"]["limits"])
        for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
            default_probe(c.get(probe))


def default_template(template):
    template.setdefault("metadata", {})
    default_pod_spec(template.setdefault("spec", {}))


def default_job_spec(spec, restart="Never"):
    """https://kubernetes.io/docs/reference/kubernetes-api/workload-resources/job-v1/"""
    spec.setdefault("parallelism", 1)
    spec.setdefault("completions", 1)
    spec.setdefault("backoffLimit", 6)
    spec.setdefault("completionMode", "NonIndexed")
    spec.setdefault("suspend", False)
    spec.setdefault("manualSelector", None)
    if spec.get("manualSelector") is None:
        spec.pop("manualSelector")
    spec.setdefault("podReplacementPolicy", "TerminatingOrFailed")
    default_template(spec.setdefault("template", {}))


def default_object(resource, obj):
    spec = obj.get("spec")
    meta = obj["metadata"]
    if resource == "namespaces":
        # https://kubernetes.io/docs/concepts/overview/working-with-objects/namespaces/#automatic-labelling
        meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = meta["name"]
        obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
        obj.setdefault("status", {}).setdefault("phase", "Active")
    elif resource == "secrets":
        obj.setdefault("type", "Opaque")
    elif resource == "services":
        # https://kubernetes.io/docs/reference/kubernetes-api/service-resources/service-v1/
        spec = obj.setdefault("spec", {})
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        spec.setdefault("internalTrafficPolicy", "Cluster")
        if "clusterIP" not in spec:
            n = UIDS[0] % 250 + 2
            spec["clusterIP"] = f"10.96.{UIDS[0] // 250 % 250}.{n}"
        spec.setdefault("clusterIPs", [spec["clusterIP"]])
        spec.setdefault("ipFamilies", ["IPv4"])
        spec.setdefault("ipFamilyPolicy", "SingleStack")
        for p in spec.get("ports") or []:
            p.setdefault("protocol", "TCP")
            p.setdefault("targetPort", p.get("port"))
        obj.setdefault("status", {"loadBalancer": {}})
    elif resource == "deployments":
        # https://kubernetes.io/docs/concepts/workloads/controllers/deployment/#writing-a-deployment-spec
        spec.setdefault("replicas", 1)
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("progressDeadlineSeconds", 600)
        strategy = spec.setdefault("strategy", {})
        strategy.setdefault("type", "RollingUpdate")
        if strategy["type"] == "RollingUpdate":
            ru = strategy.setdefault("rollingUpdate", {})
            ru.setdefault("maxSurge", "25%")
            ru.setdefault("maxUnavailable", "25%")
        default_template(spec.setdefault("template", {}))
    elif resource == "statefulsets":
        # https://kubernetes.io/docs/concepts/workloads/controllers/statefulset/
        spec.setdefault("replicas", 1)
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("podManagementPolicy", "OrderedReady")
        us = spec.setdefault("updateStrategy", {"type": "RollingUpdate"})
        if us.get("type") == "RollingUpdate":
            us.setdefault("rollingUpdate", {}).setdefault("partition", 0)
        spec.setdefault("persistentVolumeClaimRetentionPolicy", {"whenDeleted": "Retain", "whenScaled": "Retain"})
        for claim in spec.get("volumeClaimTemplates") or []:
            claim.setdefault("apiVersion", "v1")
            claim.setdefault("kind", "PersistentVolumeClaim")
            claim.setdefault("spec", {}).setdefault("volumeMode", "Filesystem")
            for k, v in ((claim["spec"].get("resources") or {}).get("requests") or {}).items():
                claim["spec"]["resources"]["requests"][k] = canonical_quantity(v)
            claim.setdefault("status", {"phase": "Pending"})
        default_template(spec.setdefault("template", {}))
    elif resource == "jobs":
        default_job_spec(spec)
        # https://kubernetes.io/docs/concepts/workloads/controllers/job/#specifying-your-own-pod-selector
        uid = meta["uid"]
        labels = {"batch.kubernetes.io/controller-uid": uid, "batch.kubernetes.io/job-name": meta["name"],
                  "controller-uid": uid, "job-name": meta["name"]}
        spec.setdefault("selector", {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}})
        spec["template"].setdefault("metadata", {}).setdefault("labels", {}).update(labels)
    elif resource == "cronjobs":
        # https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/
        spec.setdefault("concurrencyPolicy", "Allow")
        spec.setdefault("suspend", False)
        spec.setdefault("successfulJobsHistoryLimit", 3)
        spec.setdefault("failedJobsHistoryLimit", 1)
        jt = spec.setdefault("jobTemplate", {})
        jt.setdefault("metadata", {})
        default_job_spec(jt.setdefault("spec", {}))
        obj.setdefault("status", {})
    elif resource == "pods":
        default_pod_spec(spec)
    elif resource == "persistentvolumeclaims":
        spec.setdefault("volumeMode", "Filesystem")
    elif resource == "ingresses":
        # https://kubernetes.io/docs/reference/kubernetes-api/service-resources/ingress-v1/: nothing in the
        # spec is defaulted (pathType is required in v1); the status starts with an empty load balancer,
        # which the ingress controller fills in. The DefaultIngressClass admission plugin, which sets
        # ingressClassName from an IngressClass marked default, is not run (no IngressClasses are served):
        # https://kubernetes.io/docs/concepts/services-networking/ingress/#default-ingress-class
        obj.setdefault("status", {"loadBalancer": {}})


# ---------------------------------------------------------------------------------------------------------
# Validation beyond the schema: names, selectors, immutable fields.
# https://kubernetes.io/docs/concepts/overview/working-with-objects/names/

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def invalid(resource, name, causes):
    """422 Invalid, as the API server words it: `Deployment.apps "api" is invalid: spec.x: ...`."""
    text = "; ".join(f"{c['field']}: {c['message']}" for c in causes)
    return ApiError(422, "Invalid", f'{kind_of(resource)} "{name}" is invalid: {text}', causes,
                    {"name": name, "group": GROUP[KINDS[resource][0]], "kind": KINDS[resource][1]})


def cause(field, kind, message):
    reason = {"Invalid value": "FieldValueInvalid", "Required value": "FieldValueRequired",
              "Forbidden": "FieldValueForbidden", "Unsupported value": "FieldValueNotSupported"}[kind]
    return {"reason": reason, "message": f"{kind}: {message}", "field": field}


def validate(resource, obj, old):
    meta = obj["metadata"]
    name = meta.get("name", "")
    causes = []
    pattern = DNS_LABEL if resource in ("namespaces", "services") else DNS_SUBDOMAIN
    if not pattern.match(name) or len(name) > (63 if pattern is DNS_LABEL else 253):
        causes.append(cause("metadata.name", "Invalid value", f'"{name}": a lowercase RFC 1123 name must consist '
                            "of lower case alphanumeric characters or '-'"))
    for k, v in (meta.get("labels") or {}).items():
        if not isinstance(v, str) or len(v) > 63 or not LABEL_VALUE.match(v):
            causes.append(cause(f"metadata.labels", "Invalid value", f'"{v}": a valid label must be an empty '
                                "string or consist of alphanumeric characters, '-', '_' or '.'"))
    spec = obj.get("spec") or {}
    templates = []
    if resource in ("deployments", "statefulsets"):
        templates.append(("spec.template", spec.get("template") or {}))
        sel = (spec.get("selector") or {}).get("matchLabels") or {}
        labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
        if not sel:
            causes.append(cause("spec.selector", "Required value", ""))
        elif any(labels.get(k) != v for k, v in sel.items()):
            causes.append(cause("spec.template.metadata.labels", "Invalid value",
                                f"{json.dumps(labels)}: `selector` does not match template `labels`"))
        policy = (spec.get("template") or {}).get("spec", {}).get("restartPolicy")
        if policy not in (None, "Always"):
            causes.append(cause("spec.template.spec.restartPolicy", "Unsupported value",
                                f'"{policy}": supported values: "Always"'))
    if resource == "jobs":
        templates.append(("spec.template", spec.get("template") or {}))
        policy = (spec.get("template") or {}).get("spec", {}).get("restartPolicy")
        if policy not in ("Never", "OnFailure"):
            causes.append(cause("spec.template.spec.restartPolicy", "Required value" if policy is None
                                else "Unsupported value", 'supported values: "OnFailure", "Never"'))
    if resource == "cronjobs":
        templates.append(("spec.jobTemplate.spec.template", ((spec.get("jobTemplate") or {}).get("spec") or {})
                          .get("template") or {}))
        if len((spec.get("schedule") or "").split()) not in (5, 6) and not (spec.get("schedule") or "").startswith("@"):
            causes.append(cause("spec.schedule", "Invalid value", f'"{spec.get("schedule")}": not a cron schedule'))
    for where, t in templates:
        for i, c in enumerate(((t.get("spec") or {}).get("containers")) or []):
            at = f"{where}.spec.containers[{i}]"
            if not DNS_LABEL.match(c.get("name") or ""):
                causes.append(cause(f"{at}.name", "Invalid value", f'"{c.get("name")}": a lowercase RFC 1123 label'))
            if not c.get("image"):
                causes.append(cause(f"{at}.image", "Required value", ""))
            res = c.get("resources") or {}
            for k, v in (res.get("requests") or {}).items():
                limit = (res.get("limits") or {}).get(k)
                if limit is not None and quantity_amount(v) > quantity_amount(limit):
                    causes.append(cause(f"{at}.resources.requests", "Invalid value",
                                        f'"{v}": must be less than or equal to {k} limit of {limit}'))
            for p in c.get("ports") or []:
                if not 0 < p.get("containerPort", 0) < 65536:
                    causes.append(cause(f"{at}.ports", "Invalid value", "must be between 1 and 65535"))
    if resource == "ingresses":
        # https://kubernetes.io/docs/concepts/services-networking/ingress/#ingress-rules and the API's
        # ValidateIngressSpec: a host is a DNS name (a leading `*.` allowed), not an IP address; a Prefix
        # or Exact path is absolute; a backend port is a number in range.
        for i, rule in enumerate(spec.get("rules") or []):
            host = rule.get("host")
            if host is not None:
                name = host[2:] if host.startswith("*.") else host
                if re.fullmatch(r"[0-9.]+|[0-9a-fA-F:]*:[0-9a-fA-F:.]*", host):
                    causes.append(cause(f"spec.rules[{i}].host", "Invalid value",
                                        f'"{host}": must be a DNS name, not an IP address'))
                elif not DNS_SUBDOMAIN.match(name) or len(host) > 253:
                    causes.append(cause(f"spec.rules[{i}].host", "Invalid value",
                                        f'"{host}": a lowercase RFC 1123 subdomain'))
            for j, path in enumerate(((rule.get("http") or {}).get("paths")) or []):
                at = f"spec.rules[{i}].http.paths[{j}]"
                if path.get("pathType") in ("Prefix", "Exact") and not (path.get("path") or "").startswith("/"):
                    causes.append(cause(f"{at}.path", "Invalid value", f'"{path.get("path")}": must be an '
                                        "absolute path"))
                port = (((path.get("backend") or {}).get("service") or {}).get("port") or {})
                if "number" in port and not 0 < port["number"] < 65536:
                    causes.append(cause(f"{at}.backend.service.port.number", "Invalid value",
                                        "must be between 1 and 65535"))
    if resource == "services":
        for i, p in enumerate(spec.get("ports") or []):
            if not 0 < p.get("port", 0) < 65536:
                causes.append(cause(f"spec.ports[{i}].port", "Invalid value", "must be between 1 and 65535"))
    if old is not None:
        causes += immutable(resource, obj, old)
    if causes:
        raise invalid(resource, name, causes)


def quantity_amount(q):
    c = canonical_quantity(q)
    m = re.fullmatch(r"([+-]?[0-9]+)(.*)", c)
    if not m:
        return 0
    suffix = m.group(2)
    n = fractions.Fraction(int(m.group(1)))
    return n * dict(BINARY)[suffix] if suffix in dict(BINARY) else n * fractions.Fraction(10) ** dict(DECIMAL)[suffix]


def immutable(resource, obj, old):
    spec, before = obj.get("spec") or {}, old.get("spec") or {}

    def same(field):
        return spec.get(field) == before.get(field)

    def frozen(field, value):
        return cause(field, "Invalid value", f"{json.dumps(value)}: field is immutable")

    out = []
    if resource == "deployments" and not same("selector"):
        # https://kubernetes.io/docs/concepts/workloads/controllers/deployment/#label-selector-updates
        out.append(frozen("spec.selector", spec.get("selector")))
    if resource == "statefulsets":
        # https://kubernetes.io/docs/concepts/workloads/controllers/statefulset/#limitations and the API's
        # ValidateStatefulSetUpdate: only these spec fields may change.
        allowed = {"replicas", "ordinals", "template", "updateStrategy", "persistentVolumeClaimRetentionPolicy",
                   "minReadySeconds"}
        if {k: v for k, v in spec.items() if k not in allowed} != {k: v for k, v in before.items() if k not in allowed}:
            out.append(cause("spec", "Forbidden", "updates to statefulset spec for fields other than 'replicas', "
                             "'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and "
                             "'minReadySeconds' are forbidden"))
    if resource == "jobs":
        # https://kubernetes.io/docs/concepts/workloads/controllers/job/#mutable-scheduling-directives
        for field in ("template", "selector", "completions", "completionMode"):
            if not same(field):
                out.append(frozen(f"spec.{field}", spec.get(field)))
    if resource == "services" and before.get("clusterIP") and not same("clusterIP"):
        # https://kubernetes.io/docs/reference/kubernetes-api/service-resources/service-v1/#ServiceSpec
        out.append(frozen("spec.clusterIP", spec.get("clusterIP")))
    if resource in ("configmaps", "secrets") and old.get("immutable"):
        # https://kubernetes.io/docs/concepts/configuration/secret/#secret-immutable
        if obj.get("data") != old.get("data") or not obj.get("immutable"):
            out.append(cause("data", "Forbidden", "field is immutable when `immutable` is set"))
    if resource == "persistentvolumeclaims":
        if {k: v for k, v in spec.items() if k != "resources"} != {k: v for k, v in before.items() if k != "resources"}:
            out.append(cause("spec", "Forbidden", "spec is immutable after creation except resources.requests"))
    return out


def check_schema(resource, obj):
    errors = schema_errors(resource, obj)
    if not errors:
        return
    name = obj.get("metadata", {}).get("name", "")
    unknown = [e for e in errors if e.validator == "additionalProperties"]
    if unknown:
        # https://kubernetes.io/docs/reference/using-api/api-concepts/#field-validation (Strict: 400)
        e = unknown[0]
        field = ".".join(str(p) for p in e.path)
        extra = re.findall(r"'([^']+)' was unexpected", e.message) or [e.message]
        raise ApiError(400, "BadRequest", f".{field + '.' if field else ''}{extra[0]}: field not declared in schema")
    raise invalid(resource, name, [cause(".".join(str(p) for p in e.path), "Invalid value", e.message)
                                    for e in errors[:5]])


# ---------------------------------------------------------------------------------------------------------
# Storage and watch history.

def record(resource, ns, kind, obj):
    HISTORY.append((VERSION[0], resource, ns, kind, copy.deepcopy(obj)))
    if len(HISTORY) > 5000:
        OLDEST[0] = HISTORY.pop(0)[0]
    CHANGED.notify_all()


def store(resource, ns, obj, created=False):
    obj["metadata"]["resourceVersion"] = next_version()
    OBJECTS[(resource, ns, obj["metadata"]["name"])] = obj
    record(resource, ns, "ADDED" if created else "MODIFIED", obj)


def drop(resource, ns, name):
    obj = OBJECTS.pop((resource, ns, name), None)
    if obj is not None:
        obj["metadata"]["resourceVersion"] = next_version()
        record(resource, ns, "DELETED", obj)
    return obj


def namespace_ok(resource, ns, creating):
    """https://kubernetes.io/docs/concepts/overview/working-with-objects/namespaces/ : objects live in an
    existing namespace; a terminating one takes no new objects."""
    if not KINDS[resource][2]:
        return
    nsobj = OBJECTS.get(("namespaces", "", ns))
    if nsobj is None:
        raise ApiError(404, "NotFound", f'namespaces "{ns}" not found',
                       details={"name": ns, "kind": "namespaces"})
    if creating and nsobj["metadata"].get("deletionTimestamp"):
        raise ApiError(403, "Forbidden", f"{KINDS[resource][1].lower()} \"x\" is forbidden: unable to create new "
                       f"content in namespace {ns} because it is being terminated")


def not_found(resource, name):
    return ApiError(404, "NotFound", f'{qualified(resource)} "{name}" not found',
                    details={"name": name, "group": GROUP[KINDS[resource][0]], "kind": resource})


def precondition(resource, old, rv):
    """https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions (optimistic concurrency)"""
    if rv and old["metadata"]["resourceVersion"] != rv:
        name = old["metadata"]["name"]
        raise ApiError(409, "Conflict", f'Operation cannot be fulfilled on {qualified(resource)} "{name}": the object '
                       "has been modified; please apply your changes to the latest version and try again")


def finish_write(resource, ns, obj, old, manager_entries_changed=False):
    """Default, validate and store a write; bump generation when the spec changed. The unchanged object is
    not written again (a no-op apply keeps its resourceVersion)."""
    default_object(resource, obj)
    check_schema(resource, obj)
    validate(resource, obj, old)
    if old is not None:
        strip = lambda o: {k: v for k, v in o.items() if k != "status"} | {  # noqa: E731
            "metadata": {k: v for k, v in o["metadata"].items() if k not in ("managedFields", "resourceVersion")}}
        if strip(obj) == strip(old) and not manager_entries_changed:
            return old, 200
        # https://kubernetes.io/docs/reference/kubernetes-api/common-definitions/object-meta/#ObjectMeta
        # (generation: a sequence number of the desired state, bumped on spec changes)
        if KINDS[resource][3]:
            meta_gen = old["metadata"].get("generation", 1)
            spec_changed = obj.get("spec") != old.get("spec")
            obj["metadata"]["generation"] = meta_gen + 1 if spec_changed else meta_gen
        store(resource, ns, obj)
        return obj, 200
    if KINDS[resource][3]:
        obj["metadata"]["generation"] = 1
    store(resource, ns, obj, created=True)
    return obj, 201


def new_meta(obj, ns, resource):
    meta = obj.setdefault("metadata", {})
    meta["uid"] = next_uid()
    meta["creationTimestamp"] = now_time()
    if KINDS[resource][2]:
        meta["namespace"] = ns
    for r, seconds in CONFIG["holdFinalizer"].items():
        if r == f"{resource}/{meta.get('name')}":
            meta.setdefault("finalizers", []).append("fake.pipeline.dev/hold")


def check_type(resource, body):
    gv, kind, _, _ = KINDS[resource]
    if body.get("apiVersion") != gv or body.get("kind") != kind:
        raise ApiError(400, "BadRequest", f"the body of the request was in an unknown format: expected {gv} {kind}, "
                       f"got {body.get('apiVersion')} {body.get('kind')}")


def apply(resource, ns, name, body, manager, force):
    """Server-side apply. https://kubernetes.io/docs/reference/using-api/server-side-apply/"""
    if not manager:
        raise ApiError(400, "BadRequest", "PATCH: fieldManager is required for apply requests")
    check_type(resource, body)
    if body.get("metadata", {}).get("name") != name:
        raise ApiError(400, "BadRequest", "the name of the object does not match the name on the URL")
    if KINDS[resource][2] and body["metadata"].get("namespace", ns) != ns:
        raise ApiError(400, "BadRequest", "the namespace of the object does not match the namespace on the URL")
    namespace_ok(resource, ns, False)
    old = OBJECTS.get((resource, ns, name))
    gv = KINDS[resource][0]
    applied = fieldset(resource, body)
    if old is None:
        namespace_ok(resource, ns, True)
        obj = copy.deepcopy(body)
        new_meta(obj, ns, resource)
        obj["metadata"]["managedFields"] = []
        set_owned(obj, manager, "Apply", applied, gv)
        return finish_write(resource, ns, obj, None)
    precondition(resource, old, body.get("metadata", {}).get("resourceVersion"))
    # Conflicts: a field another manager owns, applied with a different value.
    # https://kubernetes.io/docs/reference/using-api/server-side-apply/#conflicts
    conflicts = []
    for e in managers(old):
        if e["manager"] == manager and e["operation"] == "Apply":
            continue
        for f in sorted(owned(e) & applied):
            if f[-1][0] != "." and value_at(old, f) != value_at(body, f):
                conflicts.append((e, f))
    if conflicts and not force:
        causes = [{"reason": "FieldManagerConflict", "message": f'conflict with "{e["manager"]}"'
                   + (f' using {e["apiVersion"]}' if e["operation"] == "Update" else ""), "field": field_name(f)}
                  for e, f in conflicts]
        text = "\n".join(f"- {c['message']}: {c['field']}" for c in causes)
        n = len(causes)
        raise ApiError(409, "Conflict", f"Apply failed with {n} conflict{'s' if n > 1 else ''}: {text}", causes,
                       {"name": name, "group": GROUP[gv], "kind": resource})
    obj = copy.deepcopy(old)
    before_entries = copy.deepcopy(managers(old))
    # https://kubernetes.io/docs/reference/using-api/server-side-apply/#using-server-side-apply-in-a-controller
    # (force: the applier takes the conflicting fields; they leave the other managers' sets)
    for e, f in conflicts:
        entry = next(x for x in managers(obj) if x["manager"] == e["manager"] and x["operation"] == e["operation"]
                     and x.get("subresource") == e.get("subresource"))
        set_owned(obj, e["manager"], e["operation"], owned(entry) - {f}, entry["apiVersion"], entry.get("subresource"))
    # Fields this manager applied before and no longer applies are removed, unless someone else owns them.
    # https://kubernetes.io/docs/reference/using-api/server-side-apply/#field-management ("removing fields")
    mine = next((e for e in managers(obj) if e["manager"] == manager and e["operation"] == "Apply"), None)
    dropped = (owned(mine) if mine else set()) - applied
    others = set().union(*[owned(e) for e in managers(obj) if e is not mine]) if managers(obj) else set()
    for f in sorted(dropped - others, key=len, reverse=True):
        if f[-1][0] != "." and not any(o[: len(f)] == f for o in others):
            remove_at(obj, f)
    for f in sorted(dropped - others, key=len):
        if f[-1][0] == "." and not any(o[: len(f) - 1] == f[:-1] for o in others | applied):
            remove_at(obj, f)
    content = {k: v for k, v in body.items() if k != "status"}
    content["metadata"] = {k: v for k, v in body.get("metadata", {}).items()
                           if k not in ("resourceVersion", "managedFields", "uid", "creationTimestamp", "generation")}
    merge_applied(resource, obj, content)
    prune_empty(obj)
    set_owned(obj, manager, "Apply", applied, gv)
    changed_owners = [(e["manager"], e["operation"], e.get("fieldsV1")) for e in managers(obj)] != \
        [(e["manager"], e["operation"], e.get("fieldsV1")) for e in before_entries]
    return finish_write(resource, ns, obj, old, changed_owners)


def update(resource, ns, name, new, manager, sub=None):
    """A non-apply write (PUT, merge patch, scale): the changed fields move to `manager`."""
    old = OBJECTS.get((resource, ns, name))
    if old is None:
        raise not_found(resource, name)
    precondition(resource, old, new.get("metadata", {}).get("resourceVersion"))
    obj = new
    meta = obj.setdefault("metadata", {})
    for k in ("uid", "creationTimestamp", "namespace", "deletionTimestamp", "finalizers", "generation"):
        if k in old["metadata"] and (k != "finalizers" or "finalizers" not in meta):
            meta[k] = old["metadata"][k]
    meta.update({k: v for k, v in old["metadata"].items() if k.startswith("_")})
    meta["name"] = name
    meta["managedFields"] = copy.deepcopy(managers(old))
    obj.setdefault("apiVersion", old["apiVersion"])
    obj.setdefault("kind", old["kind"])
    if "status" in old:
        obj["status"] = old["status"]  # status is written through its subresource only
    take_changed(obj, old, manager or "unknown", KINDS[resource][0] if sub is None else "autoscaling/v1", sub)
    out = finish_write(resource, ns, obj, old)
    if meta.get("deletionTimestamp") and not meta.get("finalizers"):
        drop(resource, ns, name)
    return out


def create(resource, ns, body, manager):
    check_type(resource, body)
    namespace_ok(resource, ns, True)
    name = body.get("metadata", {}).get("name")
    if not name:
        raise invalid(resource, "", [cause("metadata.name", "Required value", "name or generateName is required")])
    old = OBJECTS.get((resource, ns, name))
    if old is not None:
        # https://kubernetes.io/docs/concepts/architecture/garbage-collection/ : a terminating object keeps its name
        being = "object is being deleted: " if old["metadata"].get("deletionTimestamp") else ""
        raise ApiError(409, "AlreadyExists", f'{being}{qualified(resource)} "{name}" already exists',
                       details={"name": name, "kind": resource})
    obj = copy.deepcopy(body)
    for k in ("resourceVersion", "uid", "managedFields", "creationTimestamp", "generation"):
        obj["metadata"].pop(k, None)
    obj.pop("status", None) if resource not in ("events", "pods") else None
    new_meta(obj, ns, resource)
    obj["metadata"]["managedFields"] = []
    set_owned(obj, manager or "unknown", "Update", fieldset(resource, obj), KINDS[resource][0])
    return finish_write(resource, ns, obj, None)


def delete(resource, ns, name, options):
    """https://kubernetes.io/docs/concepts/architecture/garbage-collection/#cascading-deletion"""
    old = OBJECTS.get((resource, ns, name))
    if old is None:
        raise not_found(resource, name)
    pre = options.get("preconditions") or {}
    if pre.get("uid") and pre["uid"] != old["metadata"]["uid"]:
        raise ApiError(409, "Conflict", f'Precondition failed: UID in precondition: {pre["uid"]}, UID in object '
                       f'meta: {old["metadata"]["uid"]}')
    precondition(resource, old, pre.get("resourceVersion"))
    # Jobs default to orphaning their pods (batch/v1 keeps the old behaviour); the rest to Background.
    policy = options.get("propagationPolicy") or ("Orphan" if resource == "jobs" else "Background")
    meta = old["metadata"]
    if meta.get("deletionTimestamp"):
        return old, 202
    finalizers = list(meta.get("finalizers") or [])
    if policy == "Foreground":
        finalizers.append("foregroundDeletion")
    elif policy == "Orphan":
        for o in OBJECTS.values():
            refs = o["metadata"].get("ownerReferences") or []
            if any(r.get("uid") == meta["uid"] for r in refs):
                o["metadata"]["ownerReferences"] = [r for r in refs if r.get("uid") != meta["uid"]]
    grace = resource == "pods" or resource == "namespaces"
    if not finalizers and not grace:
        drop(resource, ns, name)
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                "details": {"name": name, "group": GROUP[KINDS[resource][0]], "kind": resource,
                            "uid": meta["uid"]}}, 200
    meta["finalizers"] = finalizers
    meta["deletionTimestamp"] = now_time()
    meta["deletionGracePeriodSeconds"] = 30 if resource == "pods" else 0
    meta["_deleting"] = time.monotonic()
    if resource == "namespaces":
        old["status"] = {"phase": "Terminating"}
    store(resource, ns, old)
    return old, 200 if policy != "Foreground" else 202


# ---------------------------------------------------------------------------------------------------------
# Controllers: a loop that moves the cluster one step at a time, as the real controllers would.

def behaviour_for(pod_spec):
    c = (pod_spec.get("containers") or [{}])[0]
    text = " ".join([c.get("image") or ""] + (c.get("command") or []) + (c.get("args") or []))
    for b in CONFIG["behaviour"]:
        if b.get("match") and b["match"] in text:
            return b
    return {}


def event(ns, involved, reason, message, type_="Normal"):
    """https://kubernetes.io/docs/reference/kubernetes-api/cluster-resources/event-v1/"""
    key = ("events", ns, f"{involved['metadata']['name']}.{reason.lower()}")
    existing = OBJECTS.get(key)
    if existing is not None:
        existing["count"] = existing.get("count", 1) + 1
        existing["lastTimestamp"] = now_time()
        existing["message"] = message
        store("events", ns, existing)
        return
    obj = {"apiVersion": "v1", "kind": "Event",
           "metadata": {"name": key[2], "namespace": ns, "uid": next_uid(), "creationTimestamp": now_time()},
           "involvedObject": {"kind": involved["kind"], "name": involved["metadata"]["name"], "namespace": ns,
                              "uid": involved["metadata"]["uid"], "apiVersion": involved["apiVersion"]},
           "reason": reason, "message": message, "type": type_, "count": 1,
           "firstTimestamp": now_time(), "lastTimestamp": now_time(), "source": {"component": "fake-kube"},
           "reportingComponent": "fake-kube", "reportingInstance": ""}
    store("events", ns, obj, created=True)


def make_pod(owner, resource, ns, name, template, extra_labels):
    labels = dict((template.get("metadata") or {}).get("labels") or {}) | extra_labels
    spec = copy.deepcopy(template.get("spec") or {})
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": name, "namespace": ns, "uid": next_uid(), "creationTimestamp": now_time(),
                        "labels": labels, "annotations": dict((template.get("metadata") or {}).get("annotations") or {}),
                        "ownerReferences": [{"apiVersion": owner["apiVersion"], "kind": owner["kind"],
                                             "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"],
                                             "controller": True, "blockOwnerDeletion": True}],
                        "_born": time.monotonic()},
           "spec": spec, "status": {"phase": "Pending", "conditions": [
               {"type": "PodScheduled", "status": "True", "lastTransitionTime": now_time()}]}}
    spec["nodeName"] = "fake-node"
    store("pods", ns, pod, created=True)
    event(ns, pod, "Scheduled", f"Successfully assigned {ns}/{name} to fake-node")
    return pod


def step_pod(pod, ns, run_to_end):
    """Pending -> Running/Ready (or stuck pulling), and for run-to-completion pods Succeeded/Failed.
    https://kubernetes.io/docs/concepts/workloads/pods/pod-lifecycle/"""
    meta, st = pod["metadata"], pod["status"]
    if meta.get("deletionTimestamp") or st["phase"] in ("Succeeded", "Failed"):
        return
    age = time.monotonic() - meta["_born"]
    b = behaviour_for(pod["spec"])
    c = pod["spec"]["containers"][0]
    if b.get("pull") == "fail":
        reason = "ImagePullBackOff" if age > CONFIG["podReadySeconds"] else "ErrImagePull"
        msg = f'Back-off pulling image "{c.get("image")}"' if reason == "ImagePullBackOff" else \
            f'failed to pull and unpack image "{c.get("image")}": not found'
        state = {"waiting": {"reason": reason, "message": msg}}
        if [s.get("state") for s in st.get("containerStatuses", [])] != [state]:
            st["containerStatuses"] = [{"name": c["name"], "image": c.get("image"), "imageID": "", "ready": False,
                                        "restartCount": 0, "started": False, "state": state}]
            st["conditions"] = [{"type": "PodScheduled", "status": "True"},
                                {"type": "Ready", "status": "False", "reason": "ContainersNotReady",
                                 "message": f"containers with unready status: [{c['name']}]"}]
            store("pods", ns, pod)
            event(ns, pod, "Failed", f"Error: {reason}", "Warning")
        return
    if run_to_end and age >= CONFIG["jobRunSeconds"]:
        code = b.get("exit", 0)
        st["phase"] = "Succeeded" if code == 0 else "Failed"
        term = {"exitCode": code, "reason": "Completed" if code == 0 else "Error",
                "startedAt": now_time(), "finishedAt": now_time()}
        st["containerStatuses"] = [{"name": c["name"], "image": c.get("image"), "imageID": "", "ready": False,
                                    "restartCount": 0, "started": False, "state": {"terminated": term}}]
        st["conditions"] = [{"type": "Ready", "status": "False", "reason": "PodCompleted"}]
        meta["_log"] = b.get("log", "")
        store("pods", ns, pod)
        return
    if not run_to_end and st["phase"] == "Pending" and age >= CONFIG["podReadySeconds"]:
        st["phase"] = "Running"
        st["containerStatuses"] = [{"name": c["name"], "image": c.get("image"), "imageID": "", "ready": True,
                                    "restartCount": 0, "started": True, "state": {"running": {"startedAt": now_time()}}}]
        st["conditions"] = [{"type": "PodScheduled", "status": "True"}, {"type": "Ready", "status": "True"}]
        # What a running container has written so far (the behaviour's `log`), stamped as it started.
        meta["_log"] = b.get("log", "")
        meta["_log_time"] = time.time()
        store("pods", ns, pod)
        event(ns, pod, "Started", f"Started container {c['name']}")


def pods_of(owner, ns):
    uid = owner["metadata"]["uid"]
    return sorted((p for (r, n, _), p in OBJECTS.items() if r == "pods" and n == ns
                   and any(ref.get("uid") == uid for ref in p["metadata"].get("ownerReferences") or [])),
                  key=lambda p: p["metadata"]["name"])


def is_ready(pod):
    return not pod["metadata"].get("deletionTimestamp") and \
        any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions") or [])


def set_status(resource, ns, obj, status):
    if obj.get("status") != status:
        obj["status"] = status
        store(resource, ns, obj)


def condition(type_, status, reason, message):
    return {"type": type_, "status": status, "reason": reason, "message": message,
            "lastUpdateTime": now_time(), "lastTransitionTime": now_time()}


def step_deployment(d, ns):
    """https://kubernetes.io/docs/concepts/workloads/controllers/deployment/#deployment-status"""
    meta, spec = d["metadata"], d["spec"]
    if meta.get("deletionTimestamp"):
        return
    name, want = meta["name"], spec.get("replicas", 1)
    revision = short_hash(spec["template"])
    pods = [p for p in pods_of(d, ns) if not p["metadata"].get("deletionTimestamp")]
    new = [p for p in pods if p["metadata"]["labels"].get("pod-template-hash") == revision]
    old = [p for p in pods if p not in new]
    ru = (spec.get("strategy") or {}).get("rollingUpdate") or {}
    surge = ru.get("maxSurge", 1) if isinstance(ru.get("maxSurge", 1), int) else 1
    for p in pods:
        step_pod(p, ns, False)
    ready_new = [p for p in new if is_ready(p)]
    if len(new) < want and len(pods) < want + max(surge, 0 if old else 1) and all(is_ready(p) for p in new):
        index = meta.setdefault("_pods", 0)
        meta["_pods"] = index + 1
        make_pod(d, "deployments", ns, f"{name}-{revision[:8]}-{index:05d}", spec["template"],
                 {"pod-template-hash": revision})
    elif len(new) > want:
        delete("pods", ns, new[-1]["metadata"]["name"], {})
    elif old and ready_new:
        delete("pods", ns, old[0]["metadata"]["name"], {})
    pods = [p for p in pods_of(d, ns) if not p["metadata"].get("deletionTimestamp")]
    ready = [p for p in pods if is_ready(p)]
    updated = [p for p in pods if p["metadata"]["labels"].get("pod-template-hash") == revision]
    done = len(updated) == want and len(pods) == want and len(ready) == want
    progress = (len(updated), len([p for p in updated if is_ready(p)]))
    if meta.get("_progress") != progress or meta.get("_since") is None:
        meta["_progress"], meta["_since"] = progress, time.monotonic()
    conditions = [condition("Available", "True" if len(ready) >= want else "False",
                            "MinimumReplicasAvailable" if len(ready) >= want else "MinimumReplicasUnavailable",
                            "Deployment has minimum availability." if len(ready) >= want
                            else "Deployment does not have minimum availability.")]
    if done:
        conditions.append(condition("Progressing", "True", "NewReplicaSetAvailable",
                                    f'ReplicaSet "{name}-{revision[:8]}" has successfully progressed.'))
    elif time.monotonic() - meta["_since"] > spec.get("progressDeadlineSeconds", 600):
        conditions.append(condition("Progressing", "False", "ProgressDeadlineExceeded",
                                    f'ReplicaSet "{name}-{revision[:8]}" has timed out progressing.'))
    else:
        conditions.append(condition("Progressing", "True", "ReplicaSetUpdated",
                                    f'ReplicaSet "{name}-{revision[:8]}" is progressing.'))
    prev = {c["type"]: c for c in (d.get("status") or {}).get("conditions") or []}
    for c in conditions:  # times change only with the condition
        p = prev.get(c["type"])
        if p and (p["status"], p["reason"], p["message"]) == (c["status"], c["reason"], c["message"]):
            c["lastUpdateTime"], c["lastTransitionTime"] = p["lastUpdateTime"], p["lastTransitionTime"]
    status = {"observedGeneration": meta["generation"], "replicas": len(pods), "updatedReplicas": len(updated),
              "readyReplicas": len(ready), "availableReplicas": len(ready),
              "unavailableReplicas": max(want - len(ready), 0), "conditions": conditions}
    status = {k: v for k, v in status.items() if v != 0 or k == "observedGeneration"}
    set_status("deployments", ns, d, status)
    ann = meta.setdefault("annotations", {})
    if ann.get("deployment.kubernetes.io/revision") is None or meta.get("_revision") != revision:
        meta["_revision"] = revision
        meta["_revisions"] = meta.get("_revisions", 0) + 1
        ann["deployment.kubernetes.io/revision"] = str(meta["_revisions"])
        store("deployments", ns, d)


def step_statefulset(s, ns):
    """https://kubernetes.io/docs/concepts/workloads/controllers/statefulset/#deployment-and-scaling-guarantees"""
    meta, spec = s["metadata"], s["spec"]
    if meta.get("deletionTimestamp"):
        return
    name, want = meta["name"], spec.get("replicas", 1)
    revision = f"{name}-{short_hash(spec['template'])}"
    pods = {p["metadata"]["name"]: p for (r, n, _), p in OBJECTS.items() if r == "pods" and n == ns
            and p["metadata"]["name"].rsplit("-", 1)[0] == name
            and (p["metadata"].get("labels") or {}).get("statefulset.kubernetes.io/pod-name")}
    for p in pods.values():
        step_pod(p, ns, False)
    for i in range(want):  # OrderedReady: one at a time, in order
        pname = f"{name}-{i}"
        p = pods.get(pname)
        if p is None:
            for claim in spec.get("volumeClaimTemplates") or []:
                cname = f"{claim['metadata']['name']}-{pname}"
                if ("persistentvolumeclaims", ns, cname) not in OBJECTS:
                    pvc = {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                           "metadata": {"name": cname, "namespace": ns, "uid": next_uid(), "creationTimestamp":
                                        now_time(), "labels": dict(claim["metadata"].get("labels") or {}),
                                        "finalizers": ["kubernetes.io/pvc-protection"]},
                           "spec": copy.deepcopy(claim["spec"]), "status": {"phase": "Bound"}}
                    store("persistentvolumeclaims", ns, pvc, created=True)
            make_pod(s, "statefulsets", ns, pname, spec["template"],
                     {"controller-revision-hash": revision, "statefulset.kubernetes.io/pod-name": pname})
            break
        if p["metadata"].get("deletionTimestamp") or not is_ready(p):
            break
    else:
        # Rolling update: the highest ordinal of an old revision goes first, once all are ready.
        for i in reversed(range(want)):
            p = pods.get(f"{name}-{i}")
            if p and p["metadata"]["labels"].get("controller-revision-hash") != revision:
                delete("pods", ns, p["metadata"]["name"], {})
                break
    for pname, p in pods.items():
        if int(pname.rsplit("-", 1)[1]) >= want and not p["metadata"].get("deletionTimestamp"):
            delete("pods", ns, pname, {})
    live = [p for p in pods.values() if not p["metadata"].get("deletionTimestamp")]
    ready = [p for p in live if is_ready(p)]
    updated = [p for p in live if p["metadata"]["labels"].get("controller-revision-hash") == revision]
    current = revision if len(updated) == want and len(live) == want else (s.get("status") or {}).get(
        "currentRevision", revision if not live else None) or revision
    status = {"observedGeneration": meta["generation"], "replicas": len(live), "readyReplicas": len(ready),
              "availableReplicas": len(ready), "currentReplicas": len(updated) if current == revision else
              len(live) - len(updated), "updatedReplicas": len(updated), "currentRevision": current,
              "updateRevision": revision, "collisionCount": 0}
    status = {k: v for k, v in status.items() if v != 0 or k in ("observedGeneration", "replicas", "collisionCount")}
    set_status("statefulsets", ns, s, status)


def step_job(j, ns):
    """https://kubernetes.io/docs/concepts/workloads/controllers/job/#job-termination-and-cleanup"""
    meta, spec = j["metadata"], j["spec"]
    if meta.get("deletionTimestamp"):
        return
    status = copy.deepcopy(j.get("status") or {})
    if any(c["type"] in ("Complete", "Failed") and c["status"] == "True" for c in status.get("conditions") or []):
        return
    pods = pods_of(j, ns)
    for p in pods:
        step_pod(p, ns, True)
    failed = [p for p in pods if p["status"]["phase"] == "Failed"]
    succeeded = [p for p in pods if p["status"]["phase"] == "Succeeded"]
    active = [p for p in pods if p["status"]["phase"] in ("Pending", "Running")]
    status.setdefault("startTime", now_time())
    limit = spec.get("backoffLimit", 6)
    if succeeded:
        status["conditions"] = [condition("SuccessCriteriaMet", "True", "CompletionsReached",
                                          "Reached expected number of succeeded pods"),
                                condition("Complete", "True", "CompletionsReached",
                                          "Reached expected number of succeeded pods")]
        status["completionTime"] = now_time()
        event(ns, j, "Completed", "Job completed")
    elif len(failed) > limit:
        msg = "Job has reached the specified backoff limit"
        status["conditions"] = [condition("FailureTarget", "True", "BackoffLimitExceeded", msg),
                                condition("Failed", "True", "BackoffLimitExceeded", msg)]
        event(ns, j, "BackoffLimitExceeded", msg, "Warning")
    elif not active:
        index = len(pods)
        make_pod(j, "jobs", ns, f"{meta['name']}-{short_hash([meta['uid'], index], 5)}", spec["template"], {})
        event(ns, j, "SuccessfulCreate", f"Created pod: {meta['name']}")
        pods = pods_of(j, ns)
    for c in status.get("conditions") or []:
        c.pop("lastUpdateTime", None)
        c["lastProbeTime"] = c["lastTransitionTime"]
    status.update({"active": len([p for p in pods if p["status"]["phase"] in ("Pending", "Running")]),
                   "succeeded": len(succeeded), "failed": len(failed), "ready": 0, "terminating": 0,
                   "uncountedTerminatedPods": {}})
    if status.get("conditions"):
        status["active"] = 0
    status = {k: v for k, v in status.items() if v != 0 or k == "ready"}
    set_status("jobs", ns, j, status)


def step_deletions():
    """Graceful termination, finalizers, and the garbage collector.
    https://kubernetes.io/docs/concepts/overview/working-with-objects/finalizers/"""
    t = time.monotonic()
    uids = {o["metadata"]["uid"] for o in OBJECTS.values()}
    for (r, ns, name), o in list(OBJECTS.items()):
        meta = o["metadata"]
        refs = meta.get("ownerReferences") or []
        if refs and not any(ref.get("uid") in uids for ref in refs) and not meta.get("deletionTimestamp"):
            delete(r, ns, name, {"propagationPolicy": "Background"})
            continue
        if not meta.get("deletionTimestamp"):
            continue
        started = meta.get("_deleting", t)
        fins = meta.get("finalizers") or []
        if "fake.pipeline.dev/hold" in fins and t - started >= CONFIG["holdFinalizer"].get(f"{r}/{name}", 0):
            fins.remove("fake.pipeline.dev/hold")
            store(r, ns, o)
        if "foregroundDeletion" in fins:
            deps = [(dr, dn, dname) for (dr, dn, dname), d in OBJECTS.items()
                    if any(ref.get("uid") == meta["uid"] for ref in d["metadata"].get("ownerReferences") or [])]
            for dr, dn, dname in deps:
                if not OBJECTS[(dr, dn, dname)]["metadata"].get("deletionTimestamp"):
                    delete(dr, dn, dname, {"propagationPolicy": "Foreground"})
            if not deps:
                fins.remove("foregroundDeletion")
                store(r, ns, o)
        if r == "persistentvolumeclaims" and "kubernetes.io/pvc-protection" in fins:
            # https://kubernetes.io/docs/concepts/storage/persistent-volumes/#storage-object-in-use-protection
            in_use = any(name.endswith("-" + p["metadata"]["name"]) for (pr, pn, _), p in OBJECTS.items()
                         if pr == "pods" and pn == ns)
            if not in_use:
                fins.remove("kubernetes.io/pvc-protection")
        if r == "namespaces":
            content = [k for k in OBJECTS if k[1] == name]
            for k in content:
                if not OBJECTS[k]["metadata"].get("deletionTimestamp"):
                    delete(k[0], k[1], k[2], {"propagationPolicy": "Background"})
            if not content and "kubernetes" in (o.get("spec") or {}).get("finalizers", []):
                o["spec"]["finalizers"] = []
            if content or (o.get("spec") or {}).get("finalizers"):
                continue
        if r == "pods" and t - started < CONFIG["podGraceSeconds"]:
            continue
        if not fins:
            drop(r, ns, name)


def controllers():
    while True:
        time.sleep(0.05)
        with LOCK:
            for (r, ns, _), o in sorted(OBJECTS.items()):
                if (r, ns, o["metadata"]["name"]) not in OBJECTS:
                    continue
                if r == "deployments":
                    step_deployment(o, ns)
                elif r == "statefulsets":
                    step_statefulset(o, ns)
                elif r == "jobs":
                    step_job(o, ns)
            step_deletions()


# ---------------------------------------------------------------------------------------------------------
# HTTP.

def public(obj):
    """The object without the stand-in's private bookkeeping (keys starting with `_`)."""
    if isinstance(obj, dict):
        return {k: public(v) for k, v in obj.items() if not k.startswith("_")}
    if isinstance(obj, list):
        return [public(v) for v in obj]
    return obj


def selector_matches(obj, label_selector, field_selector):
    """https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors and
    .../field-selectors/"""
    labels = obj.get("metadata", {}).get("labels") or {}
    for term in filter(None, (label_selector or "").split(",")):
        term = term.strip()
        if "!=" in term:
            k, v = term.split("!=", 1)
            if labels.get(k) == v:
                return False
        elif "=" in term:
            k, v = term.replace("==", "=").split("=", 1)
            if labels.get(k) != v:
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    for term in filter(None, (field_selector or "").split(",")):
        neg = "!=" in term
        k, v = term.split("!=" if neg else "=", 1)
        k = k.rstrip("=")
        cur = obj
        for part in k.split("."):
            cur = cur.get(part) if isinstance(cur, dict) else None
        if (cur == v) == neg:
            return False
    return True


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, code, body):
        data = json.dumps(public(body)).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            import yaml  # apply patches may be YAML; kube sends JSON, which is YAML too

            return yaml.safe_load(raw)

    def handle_any(self, method):
        url = urlparse(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        try:
            body = self.body()
        except Exception as e:  # noqa: BLE001
            return self.reply(400, ApiError(400, "BadRequest", f"cannot decode the body: {e}").status())
        if url.path.startswith("/fake/"):
            with LOCK:
                return self.fake(method, url.path, query, body)
        with LOCK:
            REQUESTS.append({"method": method, "path": url.path, "query": query,
                             "contentType": self.headers.get("Content-Type"), "body": body})
        if method == "GET" and query.get("watch") in ("true", "1"):
            return self.watch(url.path, query)
        with LOCK:
            try:
                code, out = self.route(method, url.path, query, body)
            except ApiError as e:
                code, out = e.code, e.status()
            if isinstance(out, str):
                data = out.encode()
                self.send_response(code)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                return
            return self.reply(code, out)

    def parse(self, path):
        m = PATH.match(path)
        if not m:
            raise ApiError(404, "NotFound", f"the server could not find the requested resource ({path})")
        ns, resource, name, sub = m.group("ns"), m.group("resource"), m.group("name"), m.group("sub")
        gv = m.group("core") or f"{m.group('group')}/{m.group('version')}"
        if resource is None and ns is not None:  # /api/v1/namespaces/NAME[/...]
            resource, name, ns = "namespaces", ns, ""
        if resource not in KINDS or KINDS[resource][0] != gv:
            raise ApiError(404, "NotFound", f"the server could not find the requested resource ({path})")
        if not KINDS[resource][2]:
            ns = ""
        return resource, ns or "", name, sub

    def route(self, method, path, query, body):
        resource, ns, name, sub = self.parse(path)
        key = (resource, ns, name)
        manager = query.get("fieldManager") or (self.headers.get("User-Agent") or "unknown").split("/")[0]
        if sub == "log":
            pod = OBJECTS.get(("pods", ns, name))
            if pod is None:
                raise not_found("pods", name)
            # https://kubernetes.io/docs/reference/kubernetes-api/workload-resources/pod-v1/#read-log-read-log-of-the-specified-pod
            # Line i was written i ms after the container started; `timestamps` prefixes each line with
            # that time (RFC 3339, nanoseconds), `sinceSeconds` keeps the lines of the last N seconds,
            # `tailLines` the last N of those. `follow` answers what there is and ends (the stand-in's
            # containers write nothing more).
            start = pod["metadata"].get("_log_time") or time.time()
            lines = [(start + i / 1000, l) for i, l in enumerate((pod["metadata"].get("_log") or "").splitlines())]
            if query.get("sinceSeconds"):
                lines = [(t, l) for t, l in lines if t >= time.time() - int(query["sinceSeconds"])]
            if query.get("tailLines"):
                lines = lines[-int(query["tailLines"]):] if int(query["tailLines"]) > 0 else []
            def stamp(t):
                d = datetime.datetime.fromtimestamp(t, datetime.timezone.utc)
                return d.strftime("%Y-%m-%dT%H:%M:%S.") + f"{d.microsecond:06d}000Z"
            timestamps = query.get("timestamps") == "true"
            text = "".join((f"{stamp(t)} {l}" if timestamps else l) + "\n" for t, l in lines)
            return 200, text
        if method == "GET" and name is None:
            # Items of a list carry no apiVersion and kind: the list says them.
            # https://kubernetes.io/docs/reference/using-api/api-concepts/#collections
            items = [{k: v for k, v in public(o).items() if k not in ("apiVersion", "kind")}
                     for (r, n, _), o in sorted(OBJECTS.items()) if r == resource and (n == ns or not ns)
                     and selector_matches(o, query.get("labelSelector"), query.get("fieldSelector"))]
            gv, kind, _, _ = KINDS[resource]
            return 200, {"kind": f"{kind}List", "apiVersion": gv,
                         "metadata": {"resourceVersion": str(VERSION[0])}, "items": items}
        if key not in OBJECTS and (method in ("GET", "PUT", "DELETE") or (method == "PATCH" and sub is not None)):
            raise not_found(resource, name)
        if sub == "scale" and resource in ("deployments", "statefulsets"):
            return self.scale(method, resource, ns, name, body, manager)
        if sub is not None:
            raise ApiError(404, "NotFound", f"the server could not find the requested resource ({path})")
        if method == "GET":
            return 200, OBJECTS[key]
        ctype = (self.headers.get("Content-Type") or "").split(";")[0]
        if method == "PATCH" and ctype == "application/apply-patch+yaml":
            obj, code = apply(resource, ns, name, body or {}, query.get("fieldManager"), query.get("force") == "true")
            return code, obj
        if method == "PATCH":
            if key not in OBJECTS:
                raise not_found(resource, name)
            if ctype not in ("application/merge-patch+json", "application/strategic-merge-patch+json"):
                raise ApiError(415, "UnsupportedMediaType", f"the stand-in does not serve {ctype} patches")
            merged = json_merge_patch(public(OBJECTS[key]), body or {})
            if "resourceVersion" not in ((body or {}).get("metadata") or {}):
                merged["metadata"].pop("resourceVersion", None)
            obj, code = update(resource, ns, name, merged, manager)
            return code, obj
        if method == "POST":
            obj, code = create(resource, ns, body or {}, manager)
            return code, obj
        if method == "PUT":
            check_type(resource, body or {})
            if (body or {}).get("metadata", {}).get("name") != name:
                raise ApiError(400, "BadRequest", "the name of the object does not match the name on the URL")
            obj, code = update(resource, ns, name, copy.deepcopy(body), manager)
            return code, obj
        if method == "DELETE":
            opts = dict(body or {})
            if query.get("propagationPolicy"):
                opts["propagationPolicy"] = query["propagationPolicy"]
            out, code = delete(resource, ns, name, opts)
            return code, out
        raise ApiError(405, "MethodNotAllowed", method)

    def scale(self, method, resource, ns, name, body, manager):
        """https://kubernetes.io/docs/reference/kubernetes-api/workload-resources/deployment-v1/#get-read-scale"""
        obj = OBJECTS[(resource, ns, name)]

        def as_scale(o):
            sel = ",".join(f"{k}={v}" for k, v in sorted(((o["spec"].get("selector") or {}).get("matchLabels") or
                                                           {}).items()))
            return {"kind": "Scale", "apiVersion": "autoscaling/v1",
                    "metadata": {"name": name, "namespace": ns, "uid": o["metadata"]["uid"],
                                 "resourceVersion": o["metadata"]["resourceVersion"],
                                 "creationTimestamp": o["metadata"]["creationTimestamp"]},
                    "spec": {"replicas": o["spec"].get("replicas", 1)},
                    "status": {"replicas": (o.get("status") or {}).get("replicas", 0), "selector": sel}}

        if method == "GET":
            return 200, as_scale(obj)
        if method == "PATCH":
            replicas = ((body or {}).get("spec") or {}).get("replicas")
            rv = ((body or {}).get("metadata") or {}).get("resourceVersion")
        elif method == "PUT":
            replicas, rv = body["spec"]["replicas"], body["metadata"].get("resourceVersion")
        else:
            raise ApiError(405, "MethodNotAllowed", method)
        new = copy.deepcopy(public(obj))
        new["spec"]["replicas"] = replicas
        new["metadata"]["resourceVersion"] = rv
        updated, _ = update(resource, ns, name, new, manager, "scale")
        return 200, as_scale(updated)

    def watch(self, path, query):
        """A watch: chunked JSON events from a resourceVersion, bookmarks, 410 for a compacted one, closed
        after timeoutSeconds. https://kubernetes.io/docs/reference/using-api/api-concepts/#efficient-detection-of-changes"""
        try:
            with LOCK:
                resource, ns, name, _ = self.parse(path)
        except ApiError as e:
            return self.reply(e.code, e.status())
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

        def send(kind, obj):
            data = json.dumps({"type": kind, "object": public(obj)}).encode() + b"\n"
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()

        def wanted(o):
            return selector_matches(o, query.get("labelSelector"), query.get("fieldSelector"))

        limit = float(query.get("timeoutSeconds") or 1800)
        if CONFIG["watchMaxSeconds"] is not None:
            limit = min(limit, CONFIG["watchMaxSeconds"])
        deadline = time.monotonic() + limit
        bookmarks = query.get("allowWatchBookmarks") == "true"
        try:
            with LOCK:
                epoch = WATCH_EPOCH[0]
                rv = query.get("resourceVersion")
                if rv in (None, "", "0"):  # "start at most recent": synthetic ADDED for what exists
                    pos = VERSION[0]
                    for (r, n, _), o in sorted(OBJECTS.items()):
                        if r == resource and (n == ns or not ns) and wanted(o):
                            send("ADDED", o)
                else:
                    pos = int(rv)
                    if pos < OLDEST[0]:
                        send("ERROR", ApiError(410, "Expired", f"too old resource version: {pos} "
                                               f"({OLDEST[0]})").status())
                        deadline = 0
            last_bookmark = time.monotonic()
            while time.monotonic() < deadline:
                with CHANGED:
                    if WATCH_EPOCH[0] != epoch:
                        break
                    events = [h for h in HISTORY if h[0] > pos and h[1] == resource and (h[2] == ns or not ns)]
                    if not events:
                        CHANGED.wait(timeout=min(0.2, max(deadline - time.monotonic(), 0)))
                        events = [h for h in HISTORY if h[0] > pos and h[1] == resource and (h[2] == ns or not ns)]
                    top = VERSION[0]
                for v, _, _, kind, obj in events:
                    pos = max(pos, v)
                    if wanted(obj):
                        send(kind, obj)
                pos = max(pos, top)
                if bookmarks and time.monotonic() - last_bookmark >= CONFIG["bookmarkSeconds"]:
                    gv, kind, _, _ = KINDS[resource]
                    send("BOOKMARK", {"kind": kind, "apiVersion": gv, "metadata": {"resourceVersion": str(pos)}})
                    last_bookmark = time.monotonic()
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def fake(self, method, path, query, body):
        if path == "/fake/requests":
            return self.reply(200, REQUESTS)
        if path == "/fake/objects":
            return self.reply(200, [{"resource": r, "namespace": n, "name": k, "object": o}
                                    for (r, n, k), o in sorted(OBJECTS.items())])
        if path == "/fake/config":
            CONFIG.update(body or {})
            return self.reply(200, CONFIG)
        if path == "/fake/compact":
            OLDEST[0] = VERSION[0]
            HISTORY.clear()
            return self.reply(200, {"oldest": OLDEST[0]})
        if path == "/fake/close-watches":
            WATCH_EPOCH[0] += 1
            CHANGED.notify_all()
            return self.reply(200, {})
        return self.reply(404, ApiError(404, "NotFound", path).status())

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


def serve(port_file):
    load_schemas()
    threading.Thread(target=controllers, daemon=True).start()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    with open(port_file, "w") as f:
        f.write(str(server.server_address[1]))
    server.serve_forever()


if __name__ == "__main__":
    try:
        import jsonschema  # noqa: F401
        import kubernetes_validate  # noqa: F401
    except ImportError as e:
        sys.exit(f"fake_kube.py needs kubernetes-validate (its schemas) and jsonschema: {e}; "
                 "scripts/install-test-deps installs them into ~/.cache/pipeline/kubernetes-validate")
    serve(sys.argv[1])
