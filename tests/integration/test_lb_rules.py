"""kube-proxy's side of LoadBalancer Services (issue 14), on real namespaces, iptables and nftables modes.

- loadBalancerSourceRanges: the external host has two addresses (cluster.external_ip, its primary, and
  cluster.external_ip2); the Service allows only the second. curl from the second reaches
  EXTERNAL-IP:port, curl from the first gets no answer at all (dropped: a timeout, not a refusal).
- healthCheckNodePort (externalTrafficPolicy Local): every node answers it, 200 with the count of its
  ready local endpoints, 503 elsewhere, following `kubectl scale` of the Deployment.
- allocateLoadBalancerNodePorts: false: no node port in `get svc -o yaml`, the LB IP still answers.

The LB IPs come from spec.loadBalancerIP inside a MetalLB IPAddressPool (with its L2Advertisement), so the
test works before and after the IPAM controller and the L2 announcer are merged; the external host
reaches them through a /32 route via a node's underlay IP, which works either way.
"""
from __future__ import annotations

import json

import pytest
import yaml

from .conftest import kubectl, until

FENCED_IP, LOCAL_IP, NONP_IP = "172.18.0.240", "172.18.0.241", "172.18.0.242"

SCENARIO = """apiVersion: netlab.dev/v1alpha1
kind: Cluster
name: lbr
networking: {kubeProxyMode: MODE}
nodes: [{name: cp, role: control-plane}, {name: n1}, {name: n2}]
---
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: lab-pool, namespace: metallb-system}
spec: {addresses: [172.18.0.240/29]}
---
apiVersion: metallb.io/v1beta1
kind: L2Advertisement
metadata: {name: lab-l2, namespace: metallb-system}
spec: {ipAddressPools: [lab-pool]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - {name: app, image: registry.k8s.io/e2e-test-images/agnhost:2.39, args: [netexec, --http-port=8080],
         ports: [{containerPort: 8080}]}
---
apiVersion: v1
kind: Service
metadata: {name: fenced}
spec:
  type: LoadBalancer
  loadBalancerIP: FENCED_IP
  loadBalancerSourceRanges: [ALLOWED/32]
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: local}
spec:
  type: LoadBalancer
  externalTrafficPolicy: Local
  loadBalancerIP: LOCAL_IP
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: nonp}
spec:
  type: LoadBalancer
  allocateLoadBalancerNodePorts: false
  loadBalancerIP: NONP_IP
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
"""


def up(lab, mode: str):
    # the external host's second address is the allowed source; its first (primary) one is not
    text = SCENARIO.replace("MODE", mode).replace("FENCED_IP", FENCED_IP).replace("LOCAL_IP", LOCAL_IP) \
        .replace("NONP_IP", NONP_IP).replace("ALLOWED", "172.18.255.253")
    lab.up(text)
    c = lab.cluster
    assert str(c.external_ip2) == "172.18.255.253" and str(c.external_ip) == "172.18.255.254"
    # how the external host reaches the LB IPs: a /32 route via a node (L2 announcement, once merged, or not)
    for ip in (FENCED_IP, LOCAL_IP, NONP_IP):
        r = lab.ext_exec(["ip", "route", "replace", f"{ip}/32", "via", str(lab.node("n1").ip)])
        assert r.returncode == 0, r.stderr


def curl(lab, ip: str, port: int, path: str = "/hostname", source: str | None = None, timeout: int = 3):
    argv = ["curl", "-sS", "--max-time", str(timeout), "-w", "\\n%{http_code}"]
    if source:
        argv += ["--interface", source]
    return lab.ext_exec(argv + [f"http://{ip}:{port}{path}"], timeout=timeout + 10)


def svc_doc(lab, name: str) -> dict:
    return json.loads(kubectl(lab, "get", "svc", name, "-o", "json").stdout)


def web_nodes(lab) -> dict[str, int]:
    """node -> ready web pods on it, from `get pods -o json`."""
    out: dict[str, int] = {}
    for p in json.loads(kubectl(lab, "get", "pods", "-o", "json").stdout)["items"]:
        if not p["metadata"]["name"].startswith("web-") or p["metadata"].get("deletionTimestamp"):
            continue
        ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                    for c in (p.get("status") or {}).get("conditions") or [])
        if ready:
            out[p["spec"]["nodeName"]] = out.get(p["spec"]["nodeName"], 0) + 1
    return out


def health(lab, port: int) -> dict[str, tuple[int, dict | None]]:
    """node -> (HTTP status, JSON body) of its healthCheckNodePort, asked from the external host."""
    out = {}
    for node in lab.cluster.nodes:
        r = curl(lab, str(node.ip), port, "/healthz")
        body, _, code = r.stdout.rpartition("\n")
        out[node.name] = (int(code) if code.isdigit() else 0, json.loads(body) if body.startswith("{") else None)
    return out


@pytest.mark.parametrize("mode", ["iptables", "nftables"])
def test_source_ranges_health_checks_and_no_node_ports(lab, mode):
    up(lab, mode)
    c = lab.cluster
    allowed, other = str(c.external_ip2), str(c.external_ip)

    # ---- loadBalancerSourceRanges: the allowed source reaches the LB IP, the other one is dropped
    def allowed_reaches():
        r = curl(lab, FENCED_IP, 80, source=allowed)
        return r.returncode == 0 and r.stdout.endswith("\n200") and r.stdout.startswith("web-")
    until("the allowed source to reach fenced's LB IP", allowed_reaches, timeout=60)
    denied = curl(lab, FENCED_IP, 80, source=other)
    assert denied.returncode == 28, (denied.returncode, denied.stdout, denied.stderr)   # 28: timed out
    denied = curl(lab, FENCED_IP, 80)                       # the host's default source is its first address
    assert denied.returncode == 28, (denied.returncode, denied.stdout, denied.stderr)
    # the same port without source ranges answers both sources (the drop is the firewall's, not routing's)
    for src in (allowed, other):
        r = curl(lab, NONP_IP, 80, source=src)
        assert r.returncode == 0 and r.stdout.endswith("\n200"), (src, r.stdout, r.stderr)

    # ---- allocateLoadBalancerNodePorts: false -> no node port; healthCheckNodePort allocated for Local
    nonp = svc_doc(lab, "nonp")
    assert nonp["spec"]["allocateLoadBalancerNodePorts"] is False
    assert all("nodePort" not in p for p in nonp["spec"]["ports"]), nonp["spec"]
    fenced = svc_doc(lab, "fenced")
    assert fenced["spec"]["loadBalancerSourceRanges"] == [f"{allowed}/32"]
    assert all("nodePort" in p for p in fenced["spec"]["ports"]) and "healthCheckNodePort" not in fenced["spec"]
    local = svc_doc(lab, "local")
    hc = local["spec"]["healthCheckNodePort"]
    lo, hi = c.networking.nodeport_range
    assert lo <= hc <= hi and hc not in {p["nodePort"] for p in local["spec"]["ports"]}
    y = yaml.safe_load(kubectl(lab, "get", "svc", "local", "-o", "yaml").stdout)
    assert y["spec"]["healthCheckNodePort"] == hc

    # ---- healthCheckNodePort: 200 + count where web has a ready pod, 503 elsewhere; follows scaling
    def matches(want: dict[str, int]):
        got = health(lab, hc)
        for node in c.nodes:
            code, body = got[node.name]
            n = want.get(node.name, 0)
            if code != (200 if n else 503) or body is None or body["localEndpoints"] != n:
                return False
            assert body["service"] == {"namespace": "default", "name": "local"} and body["serviceProxyHealthy"]
        return got

    def settled(replicas: int):
        nodes = web_nodes(lab)
        return nodes if sum(nodes.values()) == replicas else None

    for replicas in (1, 3, 0):     # 3 pods on two workers: one node has two local endpoints
        if replicas != 1:
            kubectl(lab, "scale", "deployment", "web", f"--replicas={replicas}")
        if replicas:
            where = until(f"{replicas} ready web pods", lambda: settled(replicas), timeout=90)
        else:
            until("no ready web pod", lambda: not web_nodes(lab), timeout=90)
            where = {}
        until(f"health checks saying {where or 'no local endpoint anywhere'}", lambda: matches(where), timeout=30)
    # with no endpoint at all, every node answers 503
    final = health(lab, hc)
    assert {n: code for n, (code, _) in final.items()} == {n.name: 503 for n in c.nodes}
