"""kubectl's verbs on a StatefulSet, against a simulated cluster behind the CLI: apply, get sts (and
-o wide), scale sts, rollout status/restart sts, and delete pod of a StatefulSet (it comes back with
the same name: delete waits for the object it deleted, by uid, as kubectl does)."""
from __future__ import annotations

import threading
import time

from .test_kubectl_cli import lines, world  # noqa: F401 - the fixture

STS = """apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  clusterIP: None
  selector: {app: web}
  ports: [{port: 8080}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: web}
spec:
  serviceName: web
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 2
      containers: [{name: app, image: v1, ports: [{containerPort: 8080}]}]
"""


def with_loop(world, fn):
    """fn() while a thread does what the lab's control loop does."""
    done = threading.Event()

    def loop():
        while not done.is_set():
            world.sim.tick(1)
            time.sleep(0.02)
    t = threading.Thread(target=loop)
    t.start()
    try:
        return fn()
    finally:
        done.set()
        t.join()


def up(world):
    r = world.run("apply", "-f", world.file(STS))
    assert r.exit_code == 0, r.output
    assert lines(r) == ["service/web created", "statefulset.apps/web created"]
    for _ in range(10):
        world.sim.tick(1)


def test_get_scale_and_rollout_of_a_statefulset(world):  # noqa: F811
    up(world)
    r = world.run("get", "sts", settle=False)
    assert [x.split()[:2] for x in lines(r)] == [["NAME", "READY"], ["web", "3/3"]]
    r = world.run("get", "statefulsets", "-o", "wide", settle=False)
    assert lines(r)[0].split() == ["NAME", "READY", "AGE", "CONTAINERS", "IMAGES"]
    assert lines(r)[1].split()[-2:] == ["app", "v1"]
    r = with_loop(world, lambda: world.run("rollout", "status", "sts/web", "--timeout", "20s", settle=False))
    assert r.exit_code == 0 and lines(r)[-1].startswith("statefulset rolling update complete 3 pods at revision web-")
    assert lines(world.run("rollout", "restart", "sts/web")) == ["statefulset.apps/web restarted"]
    r = with_loop(world, lambda: world.run("rollout", "status", "statefulset/web", "--timeout", "60s", settle=False))
    assert r.exit_code == 0, r.output
    assert any("waiting for statefulset rolling update to complete" in x or "Waiting for" in x for x in lines(r))
    assert lines(world.run("scale", "sts/web", "--replicas", "1")) == ["statefulset.apps/web scaled"]
    for _ in range(30):
        world.sim.tick(1)
    assert [p["metadata"]["name"] for p in world.store.list("Pod")] == ["web-0"]


def test_delete_pod_of_a_statefulset_returns_when_that_pod_is_gone(world):  # noqa: F811
    up(world)
    uid = world.store.get("Pod", "default", "web-1")["metadata"]["uid"]
    r = with_loop(world, lambda: world.run("delete", "pod", "web-1", "--timeout", "20s", settle=False))
    assert r.exit_code == 0 and lines(r) == ['pod "web-1" deleted'], r.output
    for _ in range(5):
        world.sim.tick(1)
    again = world.store.get("Pod", "default", "web-1")
    assert again["metadata"]["uid"] != uid
