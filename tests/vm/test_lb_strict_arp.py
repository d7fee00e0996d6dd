"""MetalLB layer 2 with kube-proxy's IPVS mode: the strictARP trap (inside the VM of scripts/vm-run: IPVS
and the dummy device kube-ipvs0 need a kernel that has them).

In IPVS mode kube-proxy puts every LB IP on kube-ipvs0 on every node. With strictARP off (kube-proxy's
default) the kernel of every node answers ARP for those addresses on eth0 (arp_ignore 0: any local
address, on any interface), beside the one speaker MetalLB elected: the external host sees several MACs
for one IP, as MetalLB's docs warn. With networking.ipvsStrictARP: true (arp_ignore 1, arp_announce 2)
only the elected node's speaker answers. tests/integration/test_vm.py runs tests/vm from the host.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import time

import pytest

if os.environ.get("NETLAB_IN_VM") != "1":
    pytest.skip("runs inside the IPVS test VM only (tests/integration/test_vm.py starts it)", allow_module_level=True)

from netlab.dataplane import lab as labmod  # noqa: E402
from netlab.dataplane import layout, nsfs  # noqa: E402
from netlab import lab_spec  # noqa: E402
from netlab.spec.parse import load_text  # noqa: E402

LB_IP = "172.18.200.10"
SCENARIO = """
apiVersion: netlab.dev/v1alpha1
kind: Cluster
nodes: [{role: worker, name: n1}, {role: worker, name: n2}]
networking: {kubeProxyMode: ipvs, backend: vxlan, ipvsStrictARP: STRICT}
dns: {replicas: 0}            # fewer Python processes in the slow VM: the test resolves no name
---
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: lab-pool, namespace: metallb-system}
spec: {addresses: [172.18.200.0/28]}
---
apiVersion: metallb.io/v1beta1
kind: L2Advertisement
metadata: {name: lab-l2, namespace: metallb-system}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, ports: [{containerPort: 8080}]}]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  type: LoadBalancer
  loadBalancerIP: 172.18.200.10
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
"""


def ns_run(netns: str, *argv: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(["nsenter", f"--net={nsfs.netns_path(netns)}", "--", *argv],
                          capture_output=True, text=True, timeout=timeout)


def announced(name: str) -> dict[str, str]:
    try:
        with open(os.path.join(layout.lb_dir(name), "announce.json")) as f:
            return {a["ip"]: a["node"] for a in json.load(f)["announcements"]}
    except (OSError, ValueError, KeyError):
        return {}


def until(what, check, timeout=300.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        got = check()
        if got:
            return got
        time.sleep(1.0)
    raise AssertionError(f"timed out waiting for {what}")


def arp_macs(cluster) -> set[str]:
    """The MACs answering the external host's broadcast ARP requests for LB_IP (arping -b: every reply)."""
    r = ns_run(cluster.external_netns, "arping", "-b", "-c", "3", "-w", "6", "-I", "eth0", LB_IP)
    return {m.lower() for m in re.findall(r"reply from \S+ \[([0-9A-Fa-f:]{17})\]", r.stdout)}


def test_strict_arp_off_every_node_answers_on_only_the_elected_one():
    name = f"t-{secrets.token_hex(3)}"
    try:
        text = SCENARIO.replace("STRICT", "false")
        sc = load_text(text)
        sc.name = name
        cluster = lab_spec.up(sc, text).cluster
        macs = {n.name: json.loads(ns_run(n.netns, "ip", "-j", "link", "show", "eth0").stdout)[0]["address"].lower()
                for n in cluster.nodes}
        winner = until("the LB IP announced", lambda: announced(name).get(LB_IP))
        for n in cluster.nodes:   # kube-proxy's VIP on kube-ipvs0, everywhere
            assert f"inet {LB_IP}/32" in ns_run(n.netns, "ip", "addr", "show", "kube-ipvs0").stdout
        # the trap: both nodes' kernels answer (and the speaker, with the winner's MAC)
        until("both nodes answering ARP", lambda: arp_macs(cluster) == set(macs.values()), timeout=240)

        text = SCENARIO.replace("STRICT", "true")
        sc = load_text(text)
        sc.name = name
        cluster = lab_spec.up(sc, text).cluster
        for n in cluster.nodes:
            assert ns_run(n.netns, "sysctl", "-n", "net.ipv4.conf.all.arp_ignore").stdout.strip() == "1"
            assert ns_run(n.netns, "sysctl", "-n", "net.ipv4.conf.all.arp_announce").stdout.strip() == "2"
        winner = until("the LB IP announced", lambda: announced(name).get(LB_IP))
        until("only the elected node answering ARP", lambda: arp_macs(cluster) == {macs[winner]}, timeout=240)
        r = ns_run(cluster.external_netns, "curl", "-sS", "--max-time", "5", f"http://{LB_IP}/hostname")
        assert r.returncode == 0 and r.stdout.startswith("web-"), r.stderr
    finally:
        labmod.down(name)
