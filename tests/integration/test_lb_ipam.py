"""LoadBalancer Services get their EXTERNAL-IP from MetalLB's pools (the Cluster document's
`loadBalancer:` shorthand) as MetalLB's controller assigns them, on a real lab in iptables and
nftables modes: two Services share an address (allow-shared-ip, different ports), an exhausted pool
leaves a Service <pending> with MetalLB's event, deleting a Service frees its address for the one
waiting. The external host reaches EXTERNAL-IP:port with curl and `netlab probe lb/NAME` says which
pod answered. (The layer-2 announcement is not this test's: a /32 route in the external host's
namespace sends the address to a node, as an ARP answer from that node would.) A pool on a node's
address is refused by `up` with exit status 2 and nothing built."""
from __future__ import annotations

import os
import secrets
import tempfile

import pytest

from netlab.dataplane import lab as labmod

from .conftest import kubectl, netlab_cli, until

POOL_FIRST, POOL_LAST = "172.18.255.200", "172.18.255.201"

SCENARIO = f"""apiVersion: netlab.dev/v1alpha1
kind: Cluster
name: lbipam
networking: {{kubeProxyMode: MODE}}
nodes: [{{name: n1, role: control-plane}}, {{name: n2}}]
loadBalancer:
  pools:
  - name: default
    addresses: [{POOL_FIRST}-{POOL_LAST}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      containers:
      - name: web
        image: registry.k8s.io/e2e-test-images/agnhost:2.53
        args: [netexec, --http-port=8080]
---
apiVersion: v1
kind: Service
metadata:
  name: web
  annotations: {{metallb.universe.tf/allow-shared-ip: web}}
spec:
  type: LoadBalancer
  selector: {{app: web}}
  ports: [{{port: 80, targetPort: 8080}}]
---
apiVersion: v1
kind: Service
metadata:
  name: web-alt
  annotations: {{metallb.universe.tf/allow-shared-ip: web}}
spec:
  type: LoadBalancer
  selector: {{app: web}}
  ports: [{{port: 8080, targetPort: 8080}}]
---
apiVersion: v1
kind: Service
metadata: {{name: other}}
spec:
  type: LoadBalancer
  selector: {{app: web}}
  ports: [{{port: 80, targetPort: 8080}}]
"""

EXTRA = """apiVersion: v1
kind: Service
metadata: {name: extra}
spec:
  type: LoadBalancer
  selector: {app: web}
  ports: [{port: 81, targetPort: 8080}]
"""


def external_ips(lab) -> dict[str, str]:
    out = kubectl(lab, "get", "svc").stdout.splitlines()
    head = out[0].split()
    at = head.index("EXTERNAL-IP")
    return {line.split()[0]: line.split()[at] for line in out[1:]}


@pytest.mark.parametrize("mode", ["iptables", "nftables"])
def test_lb_ips_from_the_pool_shared_pending_freed_and_reachable(lab, mode):
    lab.up(SCENARIO.replace("MODE", mode))
    ips = until("EXTERNAL-IPs", lambda: (lambda e: e if "<pending>" not in (e["web"], e["web-alt"], e["other"])
                                         else None)(external_ips(lab)))
    assert ips["web"] == ips["web-alt"] == POOL_FIRST   # shared: same key, different ports
    assert ips["other"] == POOL_LAST
    # the external host reaches EXTERNAL-IP:port (the address routed to node n2, as its ARP answer would)
    node_ip = str(lab.node("n2").ip)
    for ip in (POOL_FIRST, POOL_LAST):
        r = lab.ext_exec(["ip", "route", "replace", f"{ip}/32", "via", node_ip])
        assert r.returncode == 0, r.stderr
    pods = {p.name for p in lab.pods("web-")}
    for port in (80, 8080):
        r = until(f"curl {POOL_FIRST}:{port}", lambda: (lambda r: r if r.returncode == 0 else None)(
            netlab_cli("exec", "--external", "--lab", lab.name, "--", "curl", "-sS", "--max-time", "3",
                       f"http://{POOL_FIRST}:{port}/hostname")), timeout=30)
        assert r.stdout.strip() in pods, r.stdout
    lab.up(SCENARIO.replace("MODE", mode))   # a second `up` (reconcile): the same addresses
    assert external_ips(lab) == ips
    r = kubectl(lab, "probe", "lb/web:80", "lb/other", check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"lb/web:80@{POOL_FIRST}" in r.stdout and f"lb/other:80@{POOL_LAST}" in r.stdout
    assert any(p in r.stdout for p in pods), r.stdout   # which pod answered
    # an exhausted pool: the next Service stays pending, and says why
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write(EXTRA)
    try:
        kubectl(lab, "apply", "-f", f.name)
    finally:
        os.unlink(f.name)
    until("extra's AllocationFailed event", lambda: 'Failed to allocate IP for "default/extra": no available IPs'
          in kubectl(lab, "describe", "svc", "extra").stdout)
    assert external_ips(lab)["extra"] == "<pending>"
    # deleting a Service frees its address for the one waiting, and the rules follow
    kubectl(lab, "delete", "svc", "other")
    until("extra gets the freed address", lambda: external_ips(lab).get("extra") == POOL_LAST)
    described = kubectl(lab, "describe", "svc", "extra").stdout
    assert "IPAllocated" in described and f"LoadBalancer Ingress:     {POOL_LAST} (VIP)" in described, described
    assert any(line.startswith("Endpoints:") and ":8080" in line for line in described.splitlines()), described
    until(f"curl {POOL_LAST}:81", lambda: netlab_cli(
        "exec", "--external", "--lab", lab.name, "--", "curl", "-sS", "--max-time", "3",
        f"http://{POOL_LAST}:81/hostname").stdout.strip() in pods, timeout=30)
    r = kubectl(lab, "get", "ipaddresspools", "-n", "metallb-system")
    assert r.stdout.splitlines()[1].split() == ["default", "true", "false", f'["{POOL_FIRST}-{POOL_LAST}"]']


def test_a_pool_on_a_node_address_is_refused_before_anything_is_built():
    name = f"t-{secrets.token_hex(4)}"
    text = SCENARIO.replace("MODE", "iptables").replace(f"{POOL_FIRST}-{POOL_LAST}", "172.18.0.2/31")
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write(text)
    try:
        r = netlab_cli("up", "-f", f.name, "--lab", name)
        assert r.returncode == 2, r.stdout + r.stderr
        assert r.stderr.strip().splitlines()[-1] == (
            "error: IPAddressPool default: spec.addresses holds 172.18.0.2, the address of node n1; take the "
            "pool's addresses from the node subnet away from the nodes' addresses (e.g. its upper end)"), r.stderr
        assert not labmod.lab_namespaces(name)
    finally:
        os.unlink(f.name)
        labmod.down(name)
