"""`up` of a new lab builds its nodes in a child process while the controllers run (netlab/dataplane/
prebuild.py): the lab it leaves is the one a single pass builds, and a failure on either side leaves the
kernel as it was (no namespace of the lab, nothing running)."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from netlab.dataplane import lab as labmod
from netlab.dataplane import prebuild
from netlab.dataplane.fabric import Fabric, node_fabric_drift
from netlab.errors import KernelError
from netlab.live import sync

from .conftest import until

SCENARIO = (Path(__file__).resolve().parents[2] / "scenarios" / "default.yaml").read_text()   # 2 nodes


def test_nodes_built_by_the_child_are_the_pass_s_and_not_read_back(lab, monkeypatch):
    """The child built every node, the pass took them as built from the same model (no node read back in
    up's own process), and they are exactly what a reconcile wants: no drift, a second `up` changes
    nothing, and a pod on one node reaches a pod on another."""
    builders = []
    build = Fabric._ensure_node

    def built(self, ns, nf):
        builders.append(nf.node)   # (in the child, a list of the child's own)
        return build(self, ns, nf)
    monkeypatch.setattr(Fabric, "_ensure_node", built)
    lab.up(SCENARIO)
    assert builders == [], builders   # up's own process neither built nor read back any node
    cluster = lab.cluster
    assert len(cluster.nodes) == 2
    for node in cluster.nodes:
        assert node_fabric_drift(cluster, node) == [], node.name
    again = lab.up(SCENARIO)
    assert [c for c in again.records if c.kind in ("namespace", "link", "address", "route", "neighbour", "fdb")] == []
    client = lab.pod("client")
    other = next(p for p in cluster.pods if p.key.startswith("default/web-") and p.node != client.node)
    out = lab.pod_exec("client", ["curl", "-s", "--max-time", "5", f"http://{other.ip}:8080/hostname"], timeout=20)
    assert out.stdout.strip() == other.name, out


def test_a_failure_in_the_child_leaves_nothing(lab, monkeypatch):
    """The child fails half way (its first node made, then an error): up raises the child's error, naming
    it, and the lab has no namespace left."""
    real = Fabric._ensure_node

    def fails(self, ns, nf):
        real(self, ns, nf)
        raise KernelError(f"cannot add route on node {nf.node} (test)")
    monkeypatch.setattr(Fabric, "_ensure_node", fails)
    with pytest.raises(KernelError, match="cannot add route on node .* \\(test\\)"):
        lab.up(SCENARIO)
    assert labmod.lab_namespaces(lab.name) == []


def test_a_failure_while_the_controllers_run_removes_what_the_child_built(lab, monkeypatch):
    """The parent fails after the child started (in the controllers): what the child built is removed."""
    started = []
    real = prebuild.NodeBuild.__init__

    def record(self, cluster):
        real(self, cluster)
        started.append(self.pid)
    monkeypatch.setattr(prebuild.NodeBuild, "__init__", record)

    def boom(self, runner):
        raise RuntimeError("controllers failed (test)")
    monkeypatch.setattr(sync.LiveLab, "run_controllers", boom)
    with pytest.raises(RuntimeError, match="controllers failed"):
        lab.up(SCENARIO)
    assert started, "no child was started"
    assert labmod.lab_namespaces(lab.name) == []


def _children(pid: int) -> list[int]:
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        out.append(int(d))
            except (OSError, ValueError, IndexError):
                pass
    return out


def test_up_killed_while_the_child_builds_takes_the_child_with_it(lab, tmp_path):
    """`netlab up` SIGKILLed while its child builds the nodes: the child ends too (it would otherwise go
    on making namespaces under a `down` run next), and `down` then leaves nothing."""
    nodes = ", ".join(["{role: worker}"] * 48)
    path = tmp_path / "scenario.yaml"
    path.write_text(f"apiVersion: netlab.dev/v1alpha1\nkind: Cluster\nname: {lab.name}\nnodes: [{nodes}]\n")
    exe = os.path.join(os.path.dirname(sys.executable), "netlab")
    up = subprocess.Popen([exe, "up", str(path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        child = until("up's child building the nodes",
                      lambda: next((c for c in _children(up.pid) if b"netlab" in open(f"/proc/{c}/cmdline", "rb").read()
                                    and labmod.lab_namespaces(lab.name)), None), timeout=60, every=0.01)
        up.kill()
        up.wait(timeout=30)
        until("the child gone with up", lambda: not os.path.exists(f"/proc/{child}") or
              open(f"/proc/{child}/stat").read().rsplit(")", 1)[1].split()[0] == "Z", timeout=1, every=0.02)
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()
    labmod.down(lab.name)
    time.sleep(2)   # (a child left building would have made more by now)
    assert labmod.lab_namespaces(lab.name) == []
