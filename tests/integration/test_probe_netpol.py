"""`netlab probe` on a lab with a real NetworkPolicy manifest: the default matrix's expectations come from
the policy (denied, reachable-or-denied for a Service with one allowed and one denied endpoint, the
NodePort from outside denied), -v names the policy and -o json carries it in `denied_by`. Where the lab
enforces policies (the KUBE-ROUTER-FORWARD chain of the policy renderer is in the nodes' filter table),
the probes on the wire must then agree with every expectation; without the renderer that part skips."""
from __future__ import annotations

import json

import pytest

from netlab.dataplane import iptables as ipt

from ..builders import cluster, container, pod, service, text, workers
from .conftest import netlab_cli

POLICY = """\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: web-from-client
spec:
  podSelector:
    matchLabels: {app: web}
  ingress:
  - from:
    - podSelector:
        matchLabels: {role: client}
    ports:
    - port: 8080
"""
WEB = [container("c", [8080])]
SCENARIO = text(
    cluster("npol", workers("n1", "n2")),
    pod("client", {"role": "client"}, [container("c", [8080])], nodeName="n1"),
    pod("intruder", {"role": "intruder"}, [container("c", [8080])], nodeName="n2"),
    pod("web1", {"app": "web"}, WEB, nodeName="n1"),
    pod("web2", {"app": "web"}, WEB, nodeName="n2"),
    service("web", [{"port": 80, "targetPort": 8080}], {"app": "web"}, type="NodePort"),
    POLICY)
POLICY_KEY = "default/web-from-client"


def enforced(lab) -> bool:
    tool = f"iptables-{ipt.flavour_commands(lab.cluster.networking.iptables_flavour)[0]}-save"
    out = lab.node_exec("n2", [tool, "-t", "filter"]).stdout
    return ":KUBE-ROUTER-FORWARD" in out


def test_default_matrix_expects_what_the_policy_says(lab):
    lab.up(SCENARIO)
    r = netlab_cli("probe", "--lab", lab.name, "-o", "json")
    assert r.returncode in (0, 1), r.stderr
    checks = json.loads(r.stdout)["checks"]
    by = {(c["source"], c["target"]): c for c in checks}
    # pod -> service: the client is allowed, the intruder denied by web's ingress on both endpoints,
    # web1 reaches itself (a pod to itself is always allowed) but web2 denies it
    assert by[("pod/client", "svc/web:80")]["expect"] == "reachable"
    den = by[("pod/intruder", "svc/web:80")]
    assert den["expect"] == "denied"
    assert sorted((d["endpoint"], d["direction"], d["policies"][0]) for d in den["denied_by"]) == [
        ("default/web1", "ingress", POLICY_KEY), ("default/web2", "ingress", POLICY_KEY)]
    mixed = by[("pod/web1", "svc/web:80")]
    assert mixed["expect"] == "reachable-or-denied"
    assert [d["endpoint"] for d in mixed["denied_by"]] == ["default/web2"]
    # from outside every NodePort is denied (the external host, or the entry node's flannel.1 address)
    ext = [c for c in checks if c["group"] == "external -> nodeport"]
    assert ext and all(c["expect"] == "denied" and c["denied_by"] for c in ext)
    # the policy's rule has ports: ICMP to a web pod is denied, except from its own node
    assert all(c["expect"] == "denied" for c in checks if c["target"] in ("pod/web1", "pod/web2")
               and not (c["source"] == "node/n1" and c["target"] == "pod/web1")
               and not (c["source"] == "node/n2" and c["target"] == "pod/web2")
               and c["source"] not in ("pod/web1", "pod/web2"))
    # -v names it under the denied check
    r = netlab_cli("probe", "--lab", lab.name, "--from", "pod/intruder", "svc/web", "-v")
    assert r.returncode in (0, 1), r.stderr
    assert f"  -> denied by ingress of default/web1: {POLICY_KEY} (endpoint default/web1)" in r.stdout, r.stdout

    if not enforced(lab):
        pytest.skip("the lab does not enforce NetworkPolicy yet (no KUBE-ROUTER-FORWARD chain): expectations "
                    "checked, the wire not")
    bad = [c for c in checks if not c["ok"]]
    assert not bad, json.dumps(bad, indent=1)
    assert den["outcome"] == "denied" and all(p["outcome"] == "denied" for p in den["probes"])
    assert by[("pod/client", "svc/web:80")]["outcome"] == "reachable"


BLOCK_POLICY = """\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: web-from-n1
spec:
  podSelector:
    matchLabels: {app: web}
  ingress:
  - from:
    - ipBlock: {cidr: 10.244.0.0/32}
    - ipBlock: {cidr: 172.18.0.2/32}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: client-to-n2
spec:
  podSelector:
    matchLabels: {role: client}
  egress:
  - to:
    - ipBlock: {cidr: 172.18.0.3/32}
"""


@pytest.mark.parametrize("mode", ["iptables", "nftables"])
def test_the_address_model_agrees_with_the_kernel(lab, mode):
    """The plan's view of which address each endpoint's node sees, checked on the wire with the policy's
    rules written by hand (ingress only on each web pod's own node, in FORWARD, REJECT with
    icmp-admin-prohibited, as the enforcement contract says): only n1's flannel.1 address (10.244.0.0) may
    reach the web pods. From outside through n1's NodePort, web1 (local to n1) sees the external host (the
    masquerade comes after FORWARD) and denies, web2 sees n1's flannel.1 address and answers; through n2's,
    both deny; node n1 reaches web2 directly from that address, node n2 does not reach web1; through the
    ClusterIP, node n2 reaches its own web2 only, node n1 both. The client's egress (to n2's address only)
    checks a pod's way to another node's NodePort (egress sees that node, the endpoint sees the client's
    node after flannel's masquerade) and to its own node's (egress sees the endpoints)."""
    lab.control_loop = False
    lab.up(text(cluster("npol", workers("n1", "n2"), kubeProxyMode=mode), *SCENARIO.split("---\n")[1:-1],
                BLOCK_POLICY))
    n1, n2 = lab.node("n1"), lab.node("n2")
    assert (str(n1.pod_cidr.network_address), str(n1.ip), str(n2.ip)) == ("10.244.0.0", "172.18.0.2", "172.18.0.3"), \
        "the scenario's ipBlocks assume these addresses"
    tool = f"iptables-{ipt.flavour_commands(lab.cluster.networking.iptables_flavour)[0]}"
    client = str(lab.pod("client").ip)
    rules = [("n1", ["-s", client, "-j", "REJECT", "--reject-with", "icmp-admin-prohibited"]),   # client's egress
             ("n1", ["-s", client, "-d", "172.18.0.3/32", "-j", "ACCEPT"])]
    for name, node in (("web1", "n1"), ("web2", "n2")):                                          # web's ingress
        ip = str(lab.pod(name).ip)
        rules += [(node, ["-d", ip, "-j", "REJECT", "--reject-with", "icmp-admin-prohibited"]),
                  (node, ["-d", ip, "-s", "10.244.0.0/32", "-j", "ACCEPT"]),
                  (node, ["-d", ip, "-s", "172.18.0.2/32", "-j", "ACCEPT"])]
    rules += [(n, ["-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT"]) for n in ("n1", "n2")]
    for node, rule in rules:   # each inserted first: the last ones end up on top
        r = lab.node_exec(node, [tool, "-w", "5", "-I", "FORWARD", "1", *rule])
        assert r.returncode == 0, r.stderr

    def probe(*args):
        r = netlab_cli("probe", "--lab", lab.name, "-o", "json", *args)
        assert r.returncode in (0, 1), r.stderr
        return {c["target"]: c for c in json.loads(r.stdout)["checks"]}

    via_n1 = probe("--from", "external", "--count", "30", "nodeport/web@n1")["nodeport/web:80@n1"]
    assert via_n1["expect"] == "reachable-or-denied" and via_n1["ok"], via_n1
    assert set(via_n1["answered_by"]) == {"web2"}
    assert {p["outcome"] for p in via_n1["probes"]} == {"reachable", "denied"}, via_n1
    assert via_n1["outcome"] == "reachable-or-denied"
    via_n2 = probe("--from", "external", "nodeport/web@n2")["nodeport/web:80@n2"]
    assert via_n2["expect"] == "denied" and via_n2["outcome"] == "denied" and via_n2["ok"], via_n2
    n1 = probe("--from", "node/n1", "pod/web2")
    assert all(c["expect"] == "reachable" and c["ok"] for c in n1.values()), n1
    n2 = probe("--from", "node/n2", "pod/web1")
    assert all(c["expect"] == "denied" and c["outcome"] == "denied" and c["ok"] for c in n2.values()), n2
    # a node's own traffic to a ClusterIP: masqueraded to its flannel.1 address toward another node's
    # endpoint (n2's 10.244.1.0: denied by web1), its own pods always reach
    from_n2 = probe("--from", "node/n2", "--count", "30", "svc/web")["svc/web:80"]
    assert from_n2["expect"] == "reachable-or-denied" and from_n2["ok"], from_n2
    assert set(from_n2["answered_by"]) == {"web2"} and from_n2["outcome"] == "reachable-or-denied", from_n2
    from_n1 = probe("--from", "node/n1", "--count", "10", "svc/web")["svc/web:80"]
    assert from_n1["expect"] == "reachable" and from_n1["ok"], from_n1
    # the client's egress allows n2's address only. To n2's NodePort: its egress sees n2 (allowed), the packet
    # leaves n1 masqueraded to n1's address, which web2 (local to n2) admits; web1 sees n2's flannel.1 address
    via_far = probe("--from", "pod/client", "--count", "30", "nodeport/web@n2")["nodeport/web:80@n2"]
    assert via_far["expect"] == "reachable-or-denied" and via_far["ok"], via_far
    assert set(via_far["answered_by"]) == {"web2"} and via_far["outcome"] == "reachable-or-denied", via_far
    # to its own node's NodePort the DNAT is made on n1: its egress sees the endpoints, denied
    via_own = probe("--from", "pod/client", "nodeport/web@n1")["nodeport/web:80@n1"]
    assert via_own["expect"] == "denied" and via_own["outcome"] == "denied" and via_own["ok"], via_own
    assert {d["direction"] for d in via_own["denied_by"]} == {"egress"}
