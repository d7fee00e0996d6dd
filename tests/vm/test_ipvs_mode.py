"""netlab's IPVS proxy mode on a kernel that has IPVS (inside the VM of scripts/vm-run).

One lab, brought up once (Python is ~15x slower in the emulated VM), checked through the same probe
engine `netlab probe` uses: every backend reached round-robin, NodePort from the external host,
hairpin, session affinity, refusal without endpoints, the VIP on kube-ipvs0, and an in-place switch
to iptables mode and back. tests/integration/test_vm.py runs this from the host.
"""
from __future__ import annotations

import os
import secrets
import subprocess
from collections import Counter

import pytest

if os.environ.get("NETLAB_IN_VM") != "1":
    pytest.skip("runs inside the IPVS test VM only (tests/integration/test_vm.py starts it)", allow_module_level=True)

from netlab.dataplane import lab as labmod  # noqa: E402
from netlab import lab_spec  # noqa: E402
from netlab.dataplane import nsfs  # noqa: E402
from netlab.probe import plan  # noqa: E402
from netlab.probe.engine import ProbeSpec, run_probes  # noqa: E402
from netlab.spec.parse import load_text  # noqa: E402

SCENARIO = """
apiVersion: netlab.dev/v1alpha1
kind: Cluster
nodes: [{role: worker, name: n1}, {role: worker, name: n2}]
networking: {kubeProxyMode: MODE, backend: vxlan}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 3
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
  type: NodePort
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080, nodePort: 30080}]
---
apiVersion: v1
kind: Service
metadata: {name: sticky}
spec:
  selector: {app: web}
  sessionAffinity: ClientIP
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: empty}
spec:
  selector: {app: none}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Pod
metadata: {name: client}
spec:
  nodeName: n2
  containers: [{name: c, ports: [{containerPort: 8080}]}]
"""


@pytest.fixture(scope="module")
def ipvs_lab():
    name = f"t-{secrets.token_hex(3)}"
    text = SCENARIO.replace("MODE", "ipvs")
    sc = load_text(text)
    sc.name = name
    try:
        cluster = lab_spec.up(sc, text, control_loop=False).cluster  # each `up`'s changes are checked
        yield name, text, cluster
    finally:
        labmod.down(name)


def node_sh(cluster, node: str, *argv: str) -> str:
    r = subprocess.run(["nsenter", f"--net={nsfs.netns_path(cluster.node(node).netns)}", "--", *argv],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout


def svc_ip(cluster, name: str) -> str:
    return str(next(s.cluster_ip for s in cluster.services if s.name == name))


def http(cluster, source: str, dst: str, port: int, n: int):
    src = plan.resolve_sources(cluster, source)[0]
    return run_probes([ProbeSpec(src.netns, "http", dst, port, 3.0) for _ in range(n)])


def test_kernel_objects(ipvs_lab):
    _, _, cluster = ipvs_lab
    cip = svc_ip(cluster, "web")
    out = node_sh(cluster, "n1", "ipvsadm", "-Ln")
    assert f"TCP  {cip}:80 rr" in out
    assert out.count("Masq") >= 3
    assert f"{cluster.node('n1').ip}:30080" in out            # NodePort on the node's address
    assert f"inet {cip}/32" in node_sh(cluster, "n1", "ip", "addr", "show", "kube-ipvs0")
    assert "KUBE-CLUSTER-IP" in node_sh(cluster, "n1", "ipset", "list", "-n")
    assert "KUBE-SVC-" not in node_sh(cluster, "n1", "iptables-save")  # iptables mode's chains are not here


def test_get_nodes_reports_a_lost_virtual_server_until_up_repairs_it(ipvs_lab):
    from netlab.dataplane import state
    name, text, cluster = ipvs_lab
    assert labmod.node_problems(cluster, state.load(name)) == {"n1": [], "n2": []}
    node_sh(cluster, "n1", "ipvsadm", "-D", "-t", f"{svc_ip(cluster, 'web')}:80")
    found = labmod.node_problems(cluster, state.load(name))
    assert found["n2"] == [] and any("IPVS virtual servers differ" in f for f in found["n1"]), found
    sc = load_text(text)
    sc.name = name
    assert any("ipvs" in c for c in lab_spec.up(sc, text, control_loop=False).changes)
    assert labmod.node_problems(cluster, state.load(name)) == {"n1": [], "n2": []}


def test_round_robin_reaches_every_backend(ipvs_lab):
    _, _, cluster = ipvs_lab
    web = sorted(p.name for p in cluster.pods if p.name.startswith("web-"))
    res = http(cluster, "pod/client", svc_ip(cluster, "web"), 80, 9)
    assert all(r.outcome == "reachable" for r in res), [r.detail for r in res]
    counts = Counter(r.answered_by for r in res)
    assert sorted(counts) == web and set(counts.values()) == {3}   # rr: exactly 3 each
    client = next(p for p in cluster.pods if p.name == "client")
    assert {r.client_ip for r in res} == {str(client.ip)}           # pod -> ClusterIP keeps the source


def test_nodeport_from_external(ipvs_lab):
    _, _, cluster = ipvs_lab
    for node in cluster.nodes:
        res = http(cluster, "external", str(node.ip), 30080, 3)
        assert all(r.outcome == "reachable" for r in res), (node.name, [r.detail for r in res])
        assert str(cluster.external_ip) not in {r.client_ip for r in res}   # masqueraded


def test_hairpin_and_affinity_and_no_endpoints(ipvs_lab):
    _, _, cluster = ipvs_lab
    pod = next(p for p in cluster.pods if p.name.startswith("web-"))
    res = http(cluster, f"pod/{pod.name}", svc_ip(cluster, "web"), 80, 6)
    assert all(r.outcome == "reachable" for r in res)
    # the other backends see the pod's own address; its own requests come back masqueraded to the
    # node's bridge address (KUBE-LOOP-BACK)
    gateway = str(cluster.node(pod.node).gateway)
    assert {r.client_ip for r in res} == {str(pod.ip), gateway}
    sticky = http(cluster, "pod/client", svc_ip(cluster, "sticky"), 80, 6)
    assert len({r.answered_by for r in sticky}) == 1
    empty = http(cluster, "pod/client", svc_ip(cluster, "empty"), 80, 1)
    assert empty[0].outcome == "refused", empty[0].detail


def test_clusterip_is_local_on_the_node_and_ping_is_rejected(ipvs_lab):
    """The VIP is a local address (kube-ipvs0); since Kubernetes 1.27 KUBE-IPVS-FILTER rejects anything
    but service ports to it, so ping gets an ICMP error at once (in iptables mode: no answer at all)."""
    _, _, cluster = ipvs_lab
    cip = svc_ip(cluster, "web")
    assert f"local {cip} dev kube-ipvs0" in node_sh(cluster, "n2", "ip", "route", "show", "table", "local")
    src = plan.resolve_sources(cluster, "pod/client")[0]
    r = run_probes([ProbeSpec(src.netns, "icmp", cip, None, 2.0)])[0]
    assert r.outcome in ("unreachable", "refused") and "ICMP" in r.detail, (r.outcome, r.detail)


def test_a_selectorless_service_uses_its_hand_written_endpointslice(ipvs_lab):
    """Issue 12: a Service without a selector and an EndpointSlice written by hand pointing outside the
    pod network (here node n1's address and the web Service's NodePort): IPVS's real servers are the
    slice's addresses, and curl-like probes from a pod through the ClusterIP reach the web pods."""
    name, text, cluster = ipvs_lab
    n1 = str(cluster.node("n1").ip)
    extra = f"""
---
apiVersion: v1
kind: Service
metadata: {{name: outside}}
spec:
  ports: [{{port: 80, targetPort: 30080}}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: outside-1
  labels: {{kubernetes.io/service-name: outside}}
addressType: IPv4
ports: [{{port: 30080, protocol: TCP}}]
endpoints:
- addresses: ["{n1}"]
"""
    sc = load_text(text + extra)
    sc.name = name
    cluster2 = lab_spec.up(sc, text + extra, control_loop=False).cluster
    cip = svc_ip(cluster2, "outside")
    assert f"{n1}:30080" in node_sh(cluster2, "n2", "ipvsadm", "-Ln", "-t", f"{cip}:80")
    res = http(cluster2, "pod/client", cip, 80, 3)
    assert all(r.outcome == "reachable" for r in res), [r.detail for r in res]
    assert {r.answered_by for r in res} <= {p.name for p in cluster2.pods if p.name.startswith("web-")}


LB_EXTRA = """
---
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: fenced, namespace: metallb-system}
spec: {addresses: [172.18.0.240-172.18.0.241]}
---
apiVersion: metallb.io/v1beta1
kind: L2Advertisement
metadata: {name: fenced, namespace: metallb-system}
spec: {ipAddressPools: [fenced]}
---
apiVersion: v1
kind: Service
metadata: {name: fenced}
spec:
  type: LoadBalancer
  loadBalancerIP: 172.18.0.240
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
  loadBalancerIP: 172.18.0.241
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
"""

CONNECT = r"""
import socket, sys
s = socket.socket(); s.settimeout(3)
if sys.argv[3] != "-":
    s.bind((sys.argv[3], 0))
try:
    s.connect((sys.argv[1], int(sys.argv[2]))); s.sendall(b"GET /hostname HTTP/1.0\r\n\r\n")
    data = b""
    while True:
        c = s.recv(4096)
        if not c: break
        data += c
    print(data.split(b" ", 2)[1].decode())
except socket.timeout:
    print("TIMEOUT")
"""


def ext_connect(cluster, ip: str, port: int, source: str | None = None) -> str:
    """From the external host (bound to `source` if given): the HTTP status, or TIMEOUT."""
    import sys
    r = subprocess.run(["nsenter", f"--net={nsfs.netns_path(cluster.external_netns)}", "--", sys.executable, "-c",
                        CONNECT, ip, str(port), source or "-"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def test_load_balancer_source_ranges_and_health_checks(ipvs_lab):
    """Issue 14 in IPVS mode: KUBE-LOAD-BALANCER-FW/-SOURCE-CIDR let the external host's second address
    in and drop its first; the node's own connections to the fenced LB IP are dropped by
    KUBE-IPVS-OUT-FILTER (the ipvs match loads on this kernel); every node answers the Local Service's
    healthCheckNodePort with 200 and its local endpoint count."""
    name, text, cluster = ipvs_lab
    extra = LB_EXTRA.replace("ALLOWED", str(cluster.external_ip2))
    sc = load_text(text + extra)
    sc.name = name
    c2 = lab_spec.up(sc, text + extra, control_loop=False).cluster
    n1 = str(c2.node("n1").ip)
    for ip in ("172.18.0.240", "172.18.0.241"):
        subprocess.run(["nsenter", f"--net={nsfs.netns_path(c2.external_netns)}", "--", "ip", "route", "replace",
                        f"{ip}/32", "via", n1], check=True, timeout=30)
    assert ext_connect(c2, "172.18.0.240", 80, str(c2.external_ip2)) == "200"
    assert ext_connect(c2, "172.18.0.240", 80, str(c2.external_ip)) == "TIMEOUT"
    assert "KUBE-LOAD-BALANCER-SOURCE-CIDR" in node_sh(c2, "n1", "ipset", "list", "-n")
    assert "-m ipvs" in node_sh(c2, "n1", "iptables-save", "-t", "filter")
    hc = next(s.health_check_node_port for s in c2.services if s.name == "local")
    for node in c2.nodes:
        assert ext_connect(c2, str(node.ip), hc) == "200", node.name    # 3 web pods on two nodes: both have one


def test_switch_to_iptables_and_back_in_place(ipvs_lab):
    name, text, cluster = ipvs_lab
    before = {p.key: nsfs.ns_inode(nsfs.netns_path(p.netns)) for p in cluster.pods}
    sc = load_text(text.replace("kubeProxyMode: ipvs", "kubeProxyMode: iptables"))
    sc.name = name
    res = lab_spec.up(sc, text.replace("kubeProxyMode: ipvs", "kubeProxyMode: iptables"), control_loop=False)
    assert any("removed the IPVS virtual servers" in c for c in res.changes), res.changes
    assert "kube-ipvs0" not in node_sh(cluster, "n1", "ip", "link")
    assert "KUBE-SVC-" in node_sh(cluster, "n1", "iptables-save")
    assert {p.key: nsfs.ns_inode(nsfs.netns_path(p.netns)) for p in res.cluster.pods} == before  # pods kept
    r = http(res.cluster, "pod/client", svc_ip(res.cluster, "web"), 80, 3)
    assert all(x.outcome == "reachable" for x in r)
    sc = load_text(text)
    sc.name = name
    res = lab_spec.up(sc, text, control_loop=False)
    assert "kube-ipvs0" in node_sh(cluster, "n1", "ip", "link")
    assert all(x.outcome == "reachable" for x in http(res.cluster, "pod/client", svc_ip(res.cluster, "web"), 80, 3))
