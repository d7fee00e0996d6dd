"""The kubelet's KUBE-IPTABLES-HINT chain: in every node, in the node's iptables flavour, in every mode."""
from __future__ import annotations

import time

import pytest

from netlab.dataplane.iptables import flavour_commands
from netlab.dataplane.lab import stop_control_loop

SCENARIO = """
apiVersion: netlab.dev/v1alpha1
kind: Cluster
name: hint
nodes: [{role: control-plane, name: cp}, {role: worker, name: w}]
networking: {kubeProxyMode: MODE}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Pod
metadata: {name: web, labels: {app: web}}
spec:
  containers: [{name: c, ports: [{containerPort: 8080}]}]
"""


def mangle(lab, node: str) -> str:
    _, _, save = flavour_commands("auto")
    r = lab.node_exec(node, [save, "-t", "mangle"])
    assert r.returncode == 0, r.stderr
    return r.stdout


@pytest.mark.parametrize("mode", ["iptables", "nftables"])
def test_hint_chain_exists_and_comes_back(lab, mode):
    text = SCENARIO.replace("MODE", mode)
    lab.up(text)
    for node in ("cp", "w"):
        assert ":KUBE-IPTABLES-HINT " in mangle(lab, node), node
    # the control loop `up` started repairs drift too (its resync every 10 s): stopped, so that what is
    # deleted by hand below is repaired by the next `up`, whose changes then say so
    assert stop_control_loop(lab.name)
    # everything flushed and deleted by hand, in every table
    ipt = flavour_commands("auto")[1].replace("-restore", "")
    for table in ("filter", "nat", "mangle"):
        for op in ("-F", "-X"):
            r = lab.node_exec("w", [ipt, "-t", table, op])
            assert r.returncode == 0, r.stderr
    assert "KUBE-" not in mangle(lab, "w")
    changes = lab.up(text).changes
    assert ":KUBE-IPTABLES-HINT " in mangle(lab, "w")
    assert any("mangle/KUBE-IPTABLES-HINT" in c for c in changes), changes
    # and the loop (running again after that `up`) brings the chain back by itself when it alone is deleted
    assert lab.node_exec("cp", [ipt, "-t", "mangle", "-X", "KUBE-IPTABLES-HINT"]).returncode == 0
    deadline = time.monotonic() + 60
    while ":KUBE-IPTABLES-HINT " not in mangle(lab, "cp"):
        assert time.monotonic() < deadline, "the control loop did not bring KUBE-IPTABLES-HINT back in 60 s"
        time.sleep(0.5)
