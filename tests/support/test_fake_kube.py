"""The stand-in API server's own tests (tests/support/fake_kube.py): each checks one behaviour of a real API
server that pipeline relies on, over HTTP, as a client sees it. Run by tests/apply_kube_fake.rs, or with
`python3 -m unittest tests/support/test_fake_kube.py` (with kubernetes-validate importable)."""

import http.client
import json
import os
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
NS = "t"


def read(path):
    with open(path) as f:
        return f.read().strip()


class Server:
    def __init__(self):
        self.dir = tempfile.TemporaryDirectory()
        port_file = os.path.join(self.dir.name, "port")
        self.proc = subprocess.Popen([sys.executable, os.path.join(HERE, "fake_kube.py"), port_file])
        for _ in range(400):
            if os.path.exists(port_file) and read(port_file):
                break
            if self.proc.poll() is not None:
                raise RuntimeError("fake_kube.py exited")
            time.sleep(0.025)
        self.port = int(read(port_file))

    def close(self):
        self.proc.kill()
        self.proc.wait()
        self.dir.cleanup()

    def call(self, method, path, body=None, ctype="application/json"):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=20)
        data = json.dumps(body).encode() if body is not None else None
        c.request(method, path, body=data, headers={"Content-Type": ctype, "User-Agent": "tests/1"})
        r = c.getresponse()
        raw = r.read()
        c.close()
        try:
            return r.status, json.loads(raw)
        except ValueError:
            return r.status, raw.decode()

    def apply(self, path, obj, manager="pipeline", force=False):
        q = f"?fieldManager={manager}" + ("&force=true" if force else "")
        return self.call("PATCH", path + q, obj, "application/apply-patch+yaml")

    def wait_for(self, path, pred, seconds=10):
        deadline = time.time() + seconds
        while time.time() < deadline:
            code, obj = self.call("GET", path)
            if code == 200 and pred(obj):
                return obj
            time.sleep(0.05)
        raise AssertionError(f"{path} did not get there: {obj}")


def deployment(replicas=2, image="example/api:1", labels=None):
    sel = {"app": "api"}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "api", "namespace": NS, "labels": labels or {"app": "api"}},
            "spec": {"replicas": replicas, "selector": {"matchLabels": sel},
                     "template": {"metadata": {"labels": sel},
                                  "spec": {"containers": [{"name": "api", "image": image,
                                                           "resources": {"limits": {"cpu": "0.5",
                                                                                    "memory": "1024Mi"}}}]}}}}


DEPLOY = f"/apis/apps/v1/namespaces/{NS}/deployments"


class FakeKube(unittest.TestCase):
    def setUp(self):
        self.s = Server()
        self.s.call("POST", "/fake/config", {"podReadySeconds": 0.1, "jobRunSeconds": 0.1, "podGraceSeconds": 0.1})
        code, _ = self.s.apply(f"/api/v1/namespaces/{NS}", {"apiVersion": "v1", "kind": "Namespace",
                                                             "metadata": {"name": NS}})
        self.assertEqual(code, 201)

    def tearDown(self):
        self.s.close()

    def test_missing_namespace_is_404(self):
        obj = deployment()
        obj["metadata"]["namespace"] = "nowhere"
        code, st = self.s.apply("/apis/apps/v1/namespaces/nowhere/deployments/api", obj)
        self.assertEqual((code, st["reason"], st["message"]), (404, "NotFound", 'namespaces "nowhere" not found'))

    def test_apply_defaults_and_canonical_quantities(self):
        code, d = self.s.apply(f"{DEPLOY}/api", deployment())
        self.assertEqual(code, 201)
        self.assertEqual(d["spec"]["revisionHistoryLimit"], 10)
        self.assertEqual(d["spec"]["progressDeadlineSeconds"], 600)
        c = d["spec"]["template"]["spec"]["containers"][0]
        self.assertEqual(c["terminationMessagePolicy"], "File")
        self.assertEqual(c["imagePullPolicy"], "IfNotPresent")
        self.assertEqual(c["resources"]["limits"], {"cpu": "500m", "memory": "1Gi"})
        self.assertEqual(c["resources"]["requests"], {"cpu": "500m", "memory": "1Gi"}, "requests default to limits")
        self.assertEqual(d["metadata"]["generation"], 1)
        self.assertEqual([(m["manager"], m["operation"]) for m in d["metadata"]["managedFields"]],
                         [("pipeline", "Apply")])
        self.assertIn("f:replicas", d["metadata"]["managedFields"][0]["fieldsV1"]["f:spec"])
        # The same apply again changes nothing, not even the resourceVersion (a ConfigMap: no controller).
        cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"A": "1"}}
        _, first = self.s.apply(f"/api/v1/namespaces/{NS}/configmaps/c", cm)
        _, again = self.s.apply(f"/api/v1/namespaces/{NS}/configmaps/c", cm)
        self.assertEqual(again["metadata"]["resourceVersion"], first["metadata"]["resourceVersion"])

    def test_another_manager_is_a_conflict_unless_forced(self):
        self.s.apply(f"{DEPLOY}/api", deployment())
        code, scale = self.s.call("PATCH", f"{DEPLOY}/api/scale?fieldManager=kubectl-scale",
                                  {"spec": {"replicas": 5}}, "application/merge-patch+json")
        self.assertEqual((code, scale["spec"]["replicas"]), (200, 5))
        code, st = self.s.apply(f"{DEPLOY}/api", deployment(replicas=2))
        self.assertEqual(code, 409)
        self.assertEqual(st["details"]["causes"], [{"reason": "FieldManagerConflict", "field": ".spec.replicas",
                                                    "message": 'conflict with "kubectl-scale" using autoscaling/v1'}])
        # The same value is no conflict: both own it.
        code, _ = self.s.apply(f"{DEPLOY}/api", deployment(replicas=5))
        self.assertEqual(code, 200)
        code, d = self.s.apply(f"{DEPLOY}/api", deployment(replicas=2), force=True)
        self.assertEqual((code, d["spec"]["replicas"]), (200, 2))
        owners = {m["manager"]: m for m in d["metadata"]["managedFields"]}
        self.assertNotIn("kubectl-scale", owners, "force takes the field; an empty entry goes")
        self.assertEqual(d["metadata"]["generation"], 3)

    def test_dropped_fields_are_removed_and_defaulted_again(self):
        obj = deployment()
        obj["metadata"]["annotations"] = {"a": "1"}
        self.s.apply(f"{DEPLOY}/api", obj)
        obj = deployment(replicas=3)
        code, d = self.s.apply(f"{DEPLOY}/api", obj)
        self.assertEqual(code, 200)
        self.assertNotIn("a", d["metadata"].get("annotations", {}))
        del obj["spec"]["replicas"]
        _, d = self.s.apply(f"{DEPLOY}/api", obj)
        self.assertEqual(d["spec"]["replicas"], 1, "no one owns replicas: the default again")

    def test_schema_and_semantic_validation(self):
        obj = deployment()
        obj["spec"]["replicas"] = "two"
        code, st = self.s.apply(f"{DEPLOY}/api", obj)
        self.assertEqual((code, st["reason"]), (422, "Invalid"), st)
        self.assertIn("spec.replicas", st["message"])
        obj = deployment()
        obj["spec"]["replicaz"] = 2
        code, st = self.s.apply(f"{DEPLOY}/api", obj)
        self.assertEqual(code, 400, st)
        self.assertIn("field not declared in schema", st["message"])
        obj = deployment()
        obj["spec"]["template"]["metadata"]["labels"] = {"app": "other"}
        code, st = self.s.apply(f"{DEPLOY}/api", obj)
        self.assertEqual(code, 422)
        self.assertIn("`selector` does not match template `labels`", st["message"])

    def test_immutable_fields(self):
        self.s.apply(f"{DEPLOY}/api", deployment())
        obj = deployment()
        obj["spec"]["selector"]["matchLabels"]["tier"] = "x"
        obj["spec"]["template"]["metadata"]["labels"]["tier"] = "x"
        code, st = self.s.apply(f"{DEPLOY}/api", obj)
        self.assertEqual(code, 422)
        self.assertIn("spec.selector", st["message"])
        self.assertIn("field is immutable", st["message"])
        svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "db"},
               "spec": {"clusterIP": "None", "ports": [{"port": 5432}], "selector": {"app": "db"}}}
        self.assertEqual(self.s.apply(f"/api/v1/namespaces/{NS}/services/db", svc)[0], 201)
        svc["spec"]["clusterIP"] = "10.96.0.99"
        code, st = self.s.apply(f"/api/v1/namespaces/{NS}/services/db", svc)
        self.assertEqual(code, 422)
        self.assertIn("spec.clusterIP", st["message"])

    def test_resource_version_conflicts(self):
        _, d = self.s.apply(f"{DEPLOY}/api", deployment())
        stale = d["metadata"]["resourceVersion"]
        self.s.apply(f"{DEPLOY}/api", deployment(replicas=3))
        d["metadata"]["resourceVersion"] = stale
        code, st = self.s.call("PUT", f"{DEPLOY}/api", d)
        self.assertEqual((code, st["reason"]), (409, "Conflict"))
        code, st = self.s.call("PATCH", f"{DEPLOY}/api", {"metadata": {"resourceVersion": stale}},
                               "application/merge-patch+json")
        self.assertEqual(code, 409)
        code, st = self.s.call("DELETE", f"{DEPLOY}/api", {"preconditions": {"resourceVersion": stale}})
        self.assertEqual(code, 409)

    def test_rollout_takes_time_and_reports_generation(self):
        _, d = self.s.apply(f"{DEPLOY}/api", deployment(replicas=2))
        self.assertNotIn("readyReplicas", d.get("status") or {}, "not ready at once")
        d = self.s.wait_for(f"{DEPLOY}/api", lambda o: (o.get("status") or {}).get("readyReplicas") == 2)
        self.assertEqual(d["status"]["observedGeneration"], 1)
        _, pods = self.s.call("GET", f"/api/v1/namespaces/{NS}/pods?labelSelector=app%3Dapi")
        self.assertEqual(len(pods["items"]), 2)

    def test_a_bad_image_stalls_the_rollout_with_the_pods_reason(self):
        self.s.call("POST", "/fake/config", {"behaviour": [{"match": "missing/image", "pull": "fail"}]})
        self.s.apply(f"{DEPLOY}/api", deployment(replicas=1, image="missing/image:1"))
        time.sleep(0.6)
        _, d = self.s.call("GET", f"{DEPLOY}/api")
        self.assertEqual(d["status"].get("readyReplicas", 0), 0)
        _, pods = self.s.call("GET", f"/api/v1/namespaces/{NS}/pods?labelSelector=app%3Dapi")
        state = pods["items"][0]["status"]["containerStatuses"][0]["state"]["waiting"]
        self.assertEqual(state["reason"], "ImagePullBackOff")

    def test_a_failing_job_fails_with_backoff_limit_exceeded_and_keeps_its_log(self):
        self.s.call("POST", "/fake/config", {"behaviour": [{"match": "/bin/fail", "exit": 3, "log": "boom"}]})
        job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "m"},
               "spec": {"backoffLimit": 0, "template": {"spec": {"restartPolicy": "Never", "containers": [
                   {"name": "m", "image": "x:1", "command": ["/bin/fail"]}]}}}}
        self.assertEqual(self.s.apply(f"/apis/batch/v1/namespaces/{NS}/jobs/m", job)[0], 201)
        j = self.s.wait_for(f"/apis/batch/v1/namespaces/{NS}/jobs/m",
                            lambda o: any(c["type"] == "Failed" for c in (o.get("status") or {}).get("conditions", [])))
        self.assertEqual([c["reason"] for c in j["status"]["conditions"] if c["type"] == "Failed"],
                         ["BackoffLimitExceeded"])
        _, pods = self.s.call("GET", f"/api/v1/namespaces/{NS}/pods?labelSelector=job-name%3Dm")
        pod = pods["items"][0]
        self.assertEqual(pod["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"], 3)
        code, log = self.s.call("GET", f"/api/v1/namespaces/{NS}/pods/{pod['metadata']['name']}/log?tailLines=10")
        self.assertEqual((code, log), (200, "boom\n"))
        # The template of a Job cannot change.
        job["spec"]["template"]["spec"]["containers"][0]["image"] = "x:2"
        self.assertEqual(self.s.apply(f"/apis/batch/v1/namespaces/{NS}/jobs/m", job)[0], 422)

    def test_watch_streams_events_bookmarks_and_ends(self):
        self.s.call("POST", "/fake/config", {"bookmarkSeconds": 0.2})
        _, lst = self.s.call("GET", DEPLOY)
        rv = lst["metadata"]["resourceVersion"]
        self.s.apply(f"{DEPLOY}/api", deployment(replicas=1))
        c = http.client.HTTPConnection("127.0.0.1", self.s.port, timeout=10)
        c.request("GET", f"{DEPLOY}?watch=true&resourceVersion={rv}&allowWatchBookmarks=true&timeoutSeconds=1"
                  "&fieldSelector=metadata.name%3Dapi")
        started = time.time()
        events = [json.loads(line) for line in c.getresponse().read().decode().splitlines()]
        c.close()
        self.assertLess(time.time() - started, 5, "the server ends the watch after timeoutSeconds")
        kinds = [e["type"] for e in events]
        self.assertEqual(kinds[0], "ADDED")
        self.assertIn("MODIFIED", kinds)
        self.assertIn("BOOKMARK", kinds)
        self.s.call("POST", "/fake/compact")
        c = http.client.HTTPConnection("127.0.0.1", self.s.port, timeout=10)
        c.request("GET", f"{DEPLOY}?watch=true&resourceVersion={rv}")
        events = [json.loads(line) for line in c.getresponse().read().decode().splitlines()]
        c.close()
        self.assertEqual((events[0]["type"], events[0]["object"]["code"]), ("ERROR", 410))

    def test_deletion_propagates_and_lingers(self):
        self.s.call("POST", "/fake/config", {"holdFinalizer": {"deployments/api": 0.5}})
        self.s.apply(f"{DEPLOY}/api", deployment(replicas=1))
        self.s.wait_for(f"{DEPLOY}/api", lambda o: (o.get("status") or {}).get("readyReplicas") == 1)
        code, d = self.s.call("DELETE", f"{DEPLOY}/api", {"propagationPolicy": "Foreground"})
        self.assertEqual(code, 202)
        self.assertIn("deletionTimestamp", d["metadata"])
        self.assertIn("foregroundDeletion", d["metadata"]["finalizers"])
        code, st = self.s.apply(f"{DEPLOY}/api", deployment())
        code, st = self.s.call("POST", DEPLOY, deployment())
        self.assertEqual(code, 409)
        self.assertIn("object is being deleted", st["message"])
        deadline = time.time() + 10
        while self.s.call("GET", f"{DEPLOY}/api")[0] == 200:
            self.assertLess(time.time(), deadline)
            time.sleep(0.05)
        _, pods = self.s.call("GET", f"/api/v1/namespaces/{NS}/pods")
        self.assertEqual(pods["items"], [], "foreground: the pods went first")

    def test_lease_updates_need_the_current_resource_version(self):
        lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "l"},
                 "spec": {"holderIdentity": "a", "leaseDurationSeconds": 10}}
        path = f"/apis/coordination.k8s.io/v1/namespaces/{NS}/leases"
        code, l1 = self.s.call("POST", path, lease)
        self.assertEqual(code, 201)
        self.assertEqual(self.s.call("POST", path, lease)[0], 409)
        l1["spec"]["holderIdentity"] = "b"
        self.assertEqual(self.s.call("PUT", f"{path}/l", l1)[0], 200)
        l1["spec"]["holderIdentity"] = "c"
        self.assertEqual(self.s.call("PUT", f"{path}/l", l1)[0], 409, "a stale resourceVersion loses")

    def test_ingress_is_served_validated_and_keeps_its_paths(self):
        path = f"/apis/networking.k8s.io/v1/namespaces/{NS}/ingresses"

        def ingress(host, path_="/api", number=8080):
            return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "api"},
                    "spec": {"ingressClassName": "nginx",
                             "rules": [{"host": host, "http": {"paths": [
                                 {"path": path_, "pathType": "Prefix",
                                  "backend": {"service": {"name": "api", "port": {"number": number}}}}]}}],
                             "tls": [{"hosts": [host], "secretName": "api-tls"}]}}

        code, i = self.s.apply(f"{path}/api", ingress("shop.example.com"))
        self.assertEqual(code, 201, i)
        self.assertEqual(i["status"], {"loadBalancer": {}})
        self.assertEqual(i["metadata"]["generation"], 1)
        self.assertEqual(i["spec"]["rules"][0]["http"]["paths"][0]["pathType"], "Prefix")
        code, again = self.s.apply(f"{path}/api", ingress("shop.example.com"))
        self.assertEqual((code, again["metadata"]["resourceVersion"]), (200, i["metadata"]["resourceVersion"]))
        code, i = self.s.apply(f"{path}/api", ingress("*.shop.example.com"))
        self.assertEqual((code, i["metadata"]["generation"]), (200, 2))
        code, st = self.s.apply(f"{path}/api", ingress("10.0.0.1"))
        self.assertEqual(code, 422)
        self.assertIn("not an IP address", st["message"])
        code, st = self.s.apply(f"{path}/api", ingress("shop.example.com", path_="api"))
        self.assertEqual(code, 422)
        self.assertIn("absolute path", st["message"])
        no_type = ingress("shop.example.com")
        del no_type["spec"]["rules"][0]["http"]["paths"][0]["pathType"]
        self.assertEqual(self.s.apply(f"{path}/api", no_type)[0], 422, "pathType is required in v1")
        code, _ = self.s.call("DELETE", f"{path}/api")
        self.assertEqual(code, 200)
        self.assertEqual(self.s.call("GET", f"{path}/api")[0], 404)


if __name__ == "__main__":
    unittest.main()
