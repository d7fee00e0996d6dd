"""live/attachable.py: the pod `logs deploy/web`, `exec svc/web` and `debug sts/db` act on, chosen among the
object's pods as kubectl chooses for its logs (podutils.ByLogging), and the lines when there is none."""
from __future__ import annotations

import pytest

from netlab.live.attachable import NoPod, pods_for
from netlab.store import MemoryStore


def pod(name, labels=None, node="n1", phase="Running", ready=True, since="2026-01-01T00:00:10Z", restarts=0,
        created="2026-01-01T00:00:00Z"):
    md = {"name": name, "namespace": "default", "labels": labels if labels is not None else {"app": "web"},
          "creationTimestamp": created}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": md, "spec": {"nodeName": node} if node else {},
            "status": {"phase": phase, "containerStatuses": [{"name": "c", "restartCount": restarts}],
                       "conditions": [{"type": "Ready", "status": "True" if ready else "False",
                                       "lastTransitionTime": since}]}}


def store_with(*pods, service_selector=None):
    s = MemoryStore()
    s.create({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "default"},
              "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {}}})
    s.create({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "default"},
              "spec": {"selector": service_selector} if service_selector is not None else {}})
    for p in pods:
        s.create(p)
    return s


def names(store, kind="Deployment"):
    return [p["metadata"]["name"] for p in pods_for(store, kind, "default", "web")]


def test_kubectls_logging_order():
    s = store_with(pod("pending", phase="Pending", ready=False), pod("unbound", node=None, phase="Pending", ready=False),
                   pod("unready", ready=False), pod("young", since="2026-01-01T00:00:30Z"),
                   pod("old", since="2026-01-01T00:00:05Z"),
                   pod("restarted", since="2026-01-01T00:00:30Z", restarts=2),
                   pod("other", labels={"app": "db"}), pod("going", since="2026-01-01T00:00:01Z"))
    s.delete("Pod", "default", "going", grace_seconds=30)   # terminating: not picked
    assert names(s) == ["old", "restarted", "young", "unready", "pending", "unbound"]


def test_a_services_selector_picks_too():
    s = store_with(pod("a", ready=False), pod("b"), service_selector={"app": "web"})
    assert names(s, "Service") == ["b", "a"]


@pytest.mark.parametrize("kind,name,says", [
    ("Deployment", "nope", 'deployments.apps "nope" not found in namespace default'),
    ("Service", "web", "cannot attach to service/web: it has no selector"),
    ("ConfigMap", "web", "cannot attach to configmap/web: give a pod, or a Deployment"),
    ("Deployment", "web", "no pod found for deployment.apps/web in namespace default"),
])
def test_no_pod_says_why(kind, name, says):
    s = store_with(pod("x", labels={"app": "db"}))
    with pytest.raises(NoPod, match=says.replace("(", r"\(").replace(".", r"\.")):
        pods_for(s, kind, "default", name)
