"""Large labs: a lab beyond the old fixed caps (64 nodes, 5,000 pods) is accepted and comes up; a scenario
beyond what this machine holds is refused by the limit derived from the machine, in one line naming the
limit, with exit 2 and no namespace made. (The sizes here are modest: 10,000 pods is the benchmark's,
`scripts/bench --only scale`.)"""
from __future__ import annotations

import os
import re
import socket

from netlab.dataplane import machine, nsfs

from .conftest import netlab_cli

NODES = 70   # more than the old cap of 64


def _scenario(name: str, nodes: int, replicas: int) -> str:
    return (f"apiVersion: netlab.dev/v1alpha1\nkind: Cluster\nname: {name}\n"
            f"nodes: [{', '.join(['{role: worker}'] * nodes)}]\ndns: {{replicas: 0}}\n"
            # a node grace period far shorter than the bring-up: the kubelets' heartbeats go on meanwhile
            "controlPlane: {nodeMonitorGracePeriod: 1, defaultTolerationSeconds: 300}\n"
            "---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n"
            f"  replicas: {replicas}\n  selector: {{matchLabels: {{app: web}}}}\n  template:\n"
            "    metadata: {labels: {app: web}}\n    spec:\n"
            "      containers: [{name: web, ports: [{containerPort: 8080}]}]\n")


def _namespaces(lab: str) -> list[str]:
    try:
        return sorted(n for n in os.listdir("/run/netns") if n.startswith(f"nl.{lab}."))
    except FileNotFoundError:
        return []


def _hostname(netns: str, ip: str) -> str:
    def get() -> bytes:
        with socket.create_connection((ip, 8080), timeout=5) as s:
            s.sendall(b"GET /hostname HTTP/1.0\r\n\r\n")
            data = b""
            while chunk := s.recv(4096):
                data += chunk
        return data
    return nsfs.in_netns(netns, get).decode(errors="replace").rsplit("\r\n\r\n", 1)[-1]


def test_a_lab_beyond_the_old_caps_comes_up(lab):
    """70 nodes, two pods each, built as `netlab up` builds them (checked against the machine): every node is
    Ready, every pod Running, and pods on the first and the last node answer across the lab."""
    lab.up(_scenario(lab.name, NODES, 2 * NODES))
    c = lab.cluster
    assert len(c.nodes) == NODES and len(c.pods) == 2 * NODES
    assert {len(c.pods_on(n.name)) for n in c.nodes} == {2}
    first, last = c.pods_on(c.nodes[0].name)[0], c.pods_on(c.nodes[-1].name)[0]
    # from a pod on the first node to a pod on the last one, over VXLAN, and back
    assert _hostname(first.netns, str(last.ip)) == last.name
    assert _hostname(last.netns, str(first.ip)) == first.name
    got = netlab_cli("get", "nodes", "--lab", lab.name, check=True).stdout.splitlines()
    assert len(got) == NODES + 1 and all(" Ready " in line for line in got[1:]), got[:3]


def test_nodes_stay_ready_through_a_pass_longer_than_their_grace_period(lab):
    """3,000 pods with a node grace period of 1 s: writing the pods' statuses alone takes longer than that.
    The kubelets' heartbeats go on meanwhile (a thread of their own), so no node is taken for lost and no
    pod is marked not ready by the node lifecycle controller."""
    lab.up(_scenario(lab.name, 30, 3000))
    events = netlab_cli("get", "events", "--lab", lab.name, check=True).stdout
    assert "NodeNotReady" not in events, [e for e in events.splitlines() if "NodeNotReady" in e][:3]
    got = netlab_cli("get", "nodes", "--lab", lab.name, check=True).stdout.splitlines()
    assert len(got) == 31 and all(" Ready " in line for line in got[1:]), got[:3]


def test_beyond_what_the_machine_holds_is_refused_in_one_line(tmp_path):
    """A million replicas: more than this machine's memory holds. One line naming the document, the field,
    the binding limit with its value and its source, and the fix; exit 2; nothing built."""
    name = "t-scale-refused"
    path = tmp_path / "huge.yaml"
    path.write_text(_scenario(name, 3, 1_000_000))
    most = machine.limits().readings.mem_available_kib
    r = netlab_cli("up", str(path))
    assert r.returncode == 2, r
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, r.stderr
    line = lines[0]
    assert line.startswith("error: Deployment default/web: spec.replicas 1000000 brings the scenario to 1000000 "
                           "pods, but this machine holds at most "), line
    assert "pods (memory: MemAvailable " in line and "in /proc/meminfo" in line, line
    assert line.endswith("; use fewer replicas, or free memory on this machine"), line
    assert most is not None and "Traceback" not in r.stderr
    assert _namespaces(name) == [] and not os.path.exists(f"/run/netlab/{name}")
    # `validate` says the same, without root's privileges being needed for the readings
    v = netlab_cli("validate", str(path))
    assert v.returncode == 2 and "spec.replicas 1000000 brings the scenario to 1000000 pods" in v.stderr


def test_too_many_nodes_for_the_underlay_bridge_is_refused(tmp_path):
    name = "t-scale-bridge"
    path = tmp_path / "nodes.yaml"
    path.write_text(_scenario(name, 1100, 0))
    r = netlab_cli("up", str(path))
    assert r.returncode == 2, r
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, r.stderr
    # the underlay bridge's 1022 ports bind, unless this machine's memory holds fewer nodes than that
    assert re.match(r"error: Cluster \(document 1\): nodes lists 1100 nodes, but this machine holds at most \d+ nodes "
                    r"\((underlay bridge ports: the kernel's BR_MAX_PORTS 1024 ports per bridge|memory: MemAvailable)",
                    lines[0]), lines[0]
    assert _namespaces(name) == [] and not os.path.exists(f"/run/netlab/{name}")
