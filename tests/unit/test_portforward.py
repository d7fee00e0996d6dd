"""netlab port-forward's pure parts: kubectl's port syntax, the pod a Service or Deployment forwards to, a
Service port translated to its targetPort (the forwarding itself: tests/integration/test_port_forward.py)."""
from __future__ import annotations

import pytest

from netlab.cli.kubeutil import KubeError
from netlab.cli.portforward import choose_pod, parse_ports, remote_port
from netlab.store.memory import MemoryStore


def test_ports_as_kubectl_takes_them():
    assert parse_ports(("8080:80", "5000", ":53", "0:http")) == [(8080, "80"), (5000, "5000"), (0, "53"), (0, "http")]
    for bad in ("x:80", "8080:", "70000:80", "8080:0"):
        with pytest.raises(KubeError, match="invalid port format"):
            parse_ports((bad,))


def pod(name: str, labels: dict, phase: str = "Running", ready: bool = True, ports=None) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default", "labels": labels},
            "spec": {"containers": [{"name": "c", "ports": ports or []}]},
            "status": {"phase": phase, "conditions": [{"type": "Ready", "status": str(ready)}]}}


@pytest.fixture
def store():
    s = MemoryStore()
    s.create(pod("web-b", {"app": "web"}, ports=[{"name": "http", "containerPort": 8080}]))
    s.create(pod("web-a", {"app": "web"}, ready=False, ports=[{"name": "http", "containerPort": 8080}]))
    s.create(pod("web-c", {"app": "web"}, phase="Pending"))
    s.create(pod("db", {"app": "db"}, phase="Pending"))
    s.create({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "default"},
              "spec": {"selector": {"app": "web"}, "ports": [{"name": "web", "port": 80, "targetPort": "http"},
                                                             {"port": 81, "targetPort": 9090},
                                                             {"port": 53, "protocol": "UDP"}]}})
    s.create({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "nothing", "namespace": "default"},
              "spec": {"selector": {"app": "none"}, "ports": [{"port": 80}]}})
    s.create({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "default"},
              "spec": {"selector": {"matchLabels": {"app": "web"}}}})
    return s


def test_a_service_or_deployment_forwards_to_a_running_pod_ready_first(store):
    p, svc = choose_pod(store, "Service", "default", "web")
    assert p["metadata"]["name"] == "web-b" and svc["metadata"]["name"] == "web"
    p, svc = choose_pod(store, "Deployment", "default", "web")
    assert p["metadata"]["name"] == "web-b" and svc is None
    assert choose_pod(store, "Pod", "default", "db")[0]["metadata"]["name"] == "db"   # (its phase: the command's)
    with pytest.raises(KubeError, match="no running pod for service/nothing"):
        choose_pod(store, "Service", "default", "nothing")
    with pytest.raises(KubeError, match='services "gone" not found'):
        choose_pod(store, "Service", "default", "gone")


def test_a_service_port_is_its_target_port_on_the_pod(store):
    p, svc = choose_pod(store, "Service", "default", "web")
    assert remote_port(p, svc, "80") == 8080 and remote_port(p, svc, "web") == 8080   # named targetPort
    assert remote_port(p, svc, "81") == 9090
    for missing in ("8080", "53"):   # not a service port; a UDP one cannot be forwarded
        with pytest.raises(KubeError, match="does not have a service port"):
            remote_port(p, svc, missing)
    assert remote_port(p, None, "9000") == 9000 and remote_port(p, None, "http") == 8080
    with pytest.raises(KubeError, match="no container port named 'x'"):
        remote_port(p, None, "x")


def test_a_workloads_whole_label_selector_picks_its_pod(store):
    """matchExpressions too, not only matchLabels (the store's selector matching)."""
    store.create({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db", "namespace": "default"},
                  "spec": {"selector": {"matchExpressions": [{"key": "app", "operator": "In", "values": ["web"]}]}}})
    assert choose_pod(store, "StatefulSet", "default", "db")[0]["metadata"]["name"] == "web-b"
