"""NetworkPolicy rendered into iptables (netlab/netpol/renderers/iptables.py): the renderer registry, a golden
payload, and the rendered rules walked with the packet tracer (render.trace) over every node's whole tables
(flannel's, kube-proxy's, the policies'), checked against the policies' meaning (netpol.evaluate) for every
(source, destination, port, protocol) of random policy sets.

    NETLAB_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/unit/test_netpol_render.py   # accept a change
"""
from __future__ import annotations

import ipaddress
import random

import pytest

from netlab.errors import SpecError, UsageError
from netlab.model.build import build
from netlab.netpol import evaluate, renderers
from netlab.netpol.policy import (IPBlock, LabelSelector, NetworkPolicy, Peer, PolicyPort, Requirement, Rule,
                                  default_types)
from netlab.netpol.renderers import iptables as rip
from netlab.render.fabric import node_local_ips
from netlab.render.iptables import node_rules, to_restore
from netlab.render.trace import Tracer
from netlab.spec.parse import load_text

from . import golden

NET = ipaddress.ip_network

CLUSTER = """\
apiVersion: netlab.dev/v1alpha1
kind: Cluster
name: np
nodes:
- role: control-plane
- role: worker
- role: worker
"""


def _pod(ns: str, name: str, node: str) -> str:
    return f"""\
---
apiVersion: v1
kind: Pod
metadata: {{name: {name}, namespace: {ns}, labels: {{pod: {name}}}}}
spec:
  nodeName: {node}
  containers:
  - name: app
    image: busybox
    ports:
    - {{name: serve-80-tcp, containerPort: 80}}
    - {{name: serve-81-tcp, containerPort: 81}}
    - {{name: serve-80-udp, containerPort: 80, protocol: UDP}}
    - {{name: serve-81-udp, containerPort: 81, protocol: UDP}}
"""


def scenario_text() -> str:
    """Namespaces x, y, z with pods a, b, c (the upstream e2e model), spread over two workers and the
    control plane; a Service in front of x/a."""
    nodes = ["np-worker", "np-worker2", "np-control-plane"]
    docs = [CLUSTER]
    for ns in "xyz":
        docs.append(f"---\napiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}, labels: {{ns: {ns}}}}}\n")
    for i, ns in enumerate("xyz"):
        for j, name in enumerate("abc"):
            docs.append(_pod(ns, name, nodes[(i + j) % 3]))
    docs.append("""\
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: x}
spec:
  clusterIP: 10.96.0.80
  selector: {pod: a}
  ports:
  - {port: 80, targetPort: serve-80-tcp}
""")
    return "".join(docs)


def cluster(*policies, mode: str = "iptables"):
    c = build(load_text(scenario_text(), "<netpol>"))
    c.networking.proxy_mode = mode
    c.policies = list(policies)
    c.namespace_labels = {ns: {"ns": ns} for ns in "xyz"}
    return c


def sel(**kv) -> LabelSelector:
    return LabelSelector(tuple(sorted(kv.items())))


def pol(name, ns="x", selector=None, ingress=None, egress=None, types=None) -> NetworkPolicy:
    return NetworkPolicy(ns, name, selector or LabelSelector(), types or default_types(egress is not None),
                         tuple(ingress or ()), tuple(egress or ()))


def pod_ip(c, key) -> str:
    return str(next(p.ip for p in c.pods if p.key == key))


# ---------------------------------------------------------------- the registry and the setting

def test_registry_lists_iptables_and_refuses_unknown_names():
    assert renderers.names()[0] == "iptables"
    assert renderers.get("iptables").tables is rip.policy_tables
    with pytest.raises(UsageError, match="available: iptables"):
        renderers.get("ipsets")


def test_cluster_setting_is_validated_against_the_registry():
    c = build(load_text(CLUSTER.replace("nodes:", "networking: {networkPolicyRenderer: iptables}\nnodes:"), "<c>"))
    assert c.networking.policy_renderer == "iptables"
    assert build(load_text(CLUSTER, "<c>")).networking.policy_renderer == "iptables"
    with pytest.raises(SpecError, match="networkPolicyRenderer.*use one of: iptables"):
        load_text(CLUSTER.replace("nodes:", "networking: {networkPolicyRenderer: calico}\nnodes:"), "<c>")


# ---------------------------------------------------------------- layout

def test_no_policy_leaves_an_empty_chain_jumped_to_first():
    c = cluster()
    for node in c.nodes:
        f = node_rules(c, node)["filter"]
        assert f.chains[rip.ROUTER_CHAIN] == []
        assert f.jumps[0] == rip.FORWARD_JUMP
        assert not [ch for ch in f.chains if ch.startswith(("KUBE-POD-FW-", "KUBE-NWPLCY-"))]


@pytest.mark.parametrize("mode", ["iptables", "nftables", "ipvs"])
def test_forward_jump_comes_before_the_proxy_and_flannel(mode):
    c = cluster(pol("deny"), mode=mode)
    for node in c.nodes:
        f = node_rules(c, node)["filter"]
        forward = [spec for chain, spec in f.jumps if chain == "FORWARD"]
        assert forward[0] == rip.FORWARD_JUMP[1]
        assert forward[-1].endswith("-j FLANNEL-FWD")
        # IPVS sends a Service's connection to its endpoint from LOCAL_OUT: OUTPUT must judge it as well
        output = [spec for chain, spec in f.jumps if chain == "OUTPUT"]
        assert (output[:1] == [rip.OUTPUT_JUMP[1]]) == (mode == "ipvs")
        assert rip.OUTPUT_JUMP[1] not in output[1:]


def test_chain_names_are_owned_and_short_and_rejects_are_admin_prohibited():
    from netlab.dataplane.iptables import OWNED_CHAIN, SERVICE_CHAIN_PREFIXES
    c = cluster(pol("deny"), pol("ipb", egress=[Rule(peers=(Peer(ip_block=IPBlock(NET("10.244.0.0/16"),
                                                                                  (NET("10.244.1.0/24"),))),))]))
    seen = set()
    for node in c.nodes:
        f = rip.policy_tables(c, node)["filter"]
        for chain, rules in f.chains.items():
            assert len(chain) <= 28 and OWNED_CHAIN.match(chain) and not chain.startswith(SERVICE_CHAIN_PREFIXES)
            for r in rules:
                if "-j REJECT" in r:
                    assert r.endswith("-j REJECT --reject-with icmp-admin-prohibited")
                assert "0x4000" not in r and "0x8000" not in r
            seen.add(chain)
    assert any(ch.startswith("KUBE-POD-FW-") for ch in seen) and any(ch.startswith("KUBE-NWPLCY-") for ch in seen)


def test_allowed_traffic_goes_on_to_kube_proxy_and_flannel():
    """A policy never ACCEPTs: the walk of an allowed packet reaches KUBE-FORWARD and FLANNEL-FWD."""
    c = cluster(pol("allow", ingress=[Rule()]))
    a = next(p for p in c.pods if p.key == "x/a")
    node = c.node(a.node)
    paths = Tracer(node_rules(c, node), node_local_ips(c, node)).trace(pod_ip(c, "y/b"), str(a.ip), "tcp", 80)
    assert [p.verdict for p in paths] == ["ACCEPT"]
    trail = paths[0].trail
    assert "filter/KUBE-ROUTER-FORWARD" in trail and "filter/KUBE-FORWARD" in trail and "filter/FLANNEL-FWD" in trail
    assert trail.index("filter/KUBE-ROUTER-FORWARD") < trail.index("filter/KUBE-FORWARD")


def test_named_port_resolves_per_destination_pod():
    c = cluster(pol("named", ingress=[Rule(ports=(PolicyPort("TCP", "serve-81-tcp"),))]))
    a = next(p for p in c.pods if p.key == "x/a")
    rules = [r for ch, rs in rip.policy_tables(c, c.node(a.node))["filter"].chains.items()
             if ch.startswith("KUBE-NWPLCY-") for r in rs]
    assert rules == [f'-A {rip.policy_chain(c.policies[0], "ingress")} -d {a.ip}/32 -p tcp -m tcp --dport 81 '
                     f'-m comment --comment "x/named ingress rule 0" -j MARK --set-xmark 0x10000/0x10000']


def test_basis_follows_what_the_chains_read():
    c = cluster(pol("p", ingress=[Rule(peers=(Peer(namespace_selector=sel(ns="y")),))]))
    node = c.nodes[0]
    before = rip.basis(c, node)
    c.namespace_labels["z"] = {"ns": "y"}
    assert rip.basis(c, node) != before
    after_ns = rip.basis(c, node)
    c.pods[0].labels = {"pod": "other"}
    assert rip.basis(c, node) != after_ns
    assert rip.basis(cluster(), node) == ()


# ---------------------------------------------------------------- golden

GOLDEN_POLICIES = (
    pol("default-deny-ingress"),
    pol("allow-from-y", selector=sel(pod="a"), ingress=[Rule(
        ports=(PolicyPort("TCP", 80), PolicyPort("UDP", "serve-81-udp")),
        peers=(Peer(namespace_selector=sel(ns="y")),
               Peer(pod_selector=sel(pod="c"), namespace_selector=LabelSelector((), (Requirement("ns", "In", ("z",)),)))))]),
    pol("egress-range", ns="y", selector=sel(pod="b"), types=("Egress",), egress=[
        Rule(ports=(PolicyPort("TCP", 80, 81),),
             peers=(Peer(ip_block=IPBlock(NET("10.244.0.0/16"), (NET("10.244.1.0/24"),))),)),
        Rule(ports=(PolicyPort("UDP", 53),))]),
)


def test_golden():
    c = cluster(*GOLDEN_POLICIES)
    text = "".join(f"# node {n.name}\n" + to_restore(rip.policy_tables(c, n)) for n in c.nodes)
    golden.check("netpol_iptables", text, "rules differ")


# ---------------------------------------------------------------- rendered rules == evaluate.verdict

def _selector(rng: random.Random, key: str, values: str) -> LabelSelector:
    kind = rng.randrange(4)
    if kind == 0:
        return LabelSelector()
    if kind == 1:
        return LabelSelector(((key, rng.choice(values)),))
    op = rng.choice(["In", "NotIn", "Exists", "DoesNotExist"])
    vals = tuple(sorted(rng.sample(values, 2))) if op in ("In", "NotIn") else ()
    return LabelSelector((), (Requirement(key if rng.random() < 0.8 else "tier", op, vals),))


def _port(rng: random.Random) -> PolicyPort:
    proto = rng.choice(["TCP", "UDP"])
    kind = rng.randrange(4)
    if kind == 0:
        return PolicyPort(proto)
    if kind == 1:
        return PolicyPort(proto, rng.choice([80, 81]))
    if kind == 2:
        return PolicyPort(proto, 79, rng.choice([80, 81]))
    return PolicyPort(proto, f"serve-{rng.choice(['80', '81'])}-{rng.choice(['tcp', 'udp'])}")


def _peer(rng: random.Random) -> Peer:
    kind = rng.randrange(4)
    if kind == 0:
        return Peer(pod_selector=_selector(rng, "pod", "abc"))
    if kind == 1:
        return Peer(namespace_selector=_selector(rng, "ns", "xyz"))
    if kind == 2:
        return Peer(pod_selector=_selector(rng, "pod", "abc"), namespace_selector=_selector(rng, "ns", "xyz"))
    cidr = rng.choice(["10.244.0.0/16", "10.244.1.0/24", "10.244.2.0/24", "172.18.0.0/16", "0.0.0.0/0"])
    net = NET(cidr)
    subs = [s for s in (list(net.subnets(new_prefix=min(32, net.prefixlen + 8)))[:3]
                        if net.prefixlen < 16 else list(net.subnets(new_prefix=min(32, net.prefixlen + 1))))]
    exc = tuple(rng.sample(subs, rng.randrange(0, 3))) if subs else ()
    return Peer(ip_block=IPBlock(net, tuple(sorted(exc))))


def _rule(rng: random.Random) -> Rule:
    ports = tuple(_port(rng) for _ in range(rng.choice([0, 0, 1, 2])))
    peers = tuple(_peer(rng) for _ in range(rng.choice([0, 1, 1, 2])))
    return Rule(ports, peers)


def random_policies(rng: random.Random) -> list[NetworkPolicy]:
    out = []
    for i in range(rng.randrange(1, 5)):
        types = rng.choice([("Ingress",), ("Egress",), ("Ingress", "Egress")])
        ingress = tuple(_rule(rng) for _ in range(rng.choice([0, 1, 2]))) if "Ingress" in types else ()
        egress = tuple(_rule(rng) for _ in range(rng.choice([0, 1, 2]))) if "Egress" in types else ()
        out.append(NetworkPolicy(rng.choice("xyz"), f"p{i}", _selector(rng, "pod", "abc"), types, ingress, egress))
    return out


def walk(c, tracers, src: str, dst: str, proto: str, port: int) -> bool:
    """Whether the rendered rules let a new connection src -> dst:port through: the source pod's node's
    FORWARD, then the destination pod's node's (each node's whole tables)."""
    by_ip = {str(p.ip): p for p in c.pods}
    nodes = []
    for ip in (src, dst):
        if ip in by_ip and by_ip[ip].node not in nodes:
            nodes.append(by_ip[ip].node)
    verdicts = set()
    for n in nodes:
        paths = tracers[n].trace(src, dst, proto.lower(), port)
        assert len({p.verdict for p in paths}) == 1, paths
        verdicts.add(paths[0].verdict)
    assert verdicts <= {"ACCEPT", "REJECT"}
    return verdicts == {"ACCEPT"}


@pytest.mark.parametrize("seed", range(24))
def test_rendered_rules_agree_with_evaluate(seed):
    rng = random.Random(seed)
    c = cluster(*random_policies(rng), mode=rng.choice(["iptables", "nftables"]))
    if rng.random() < 0.3:       # namespace labels that more than one selector value matches
        c.namespace_labels["z"] = {"ns": "y"}
    tracers = {n.name: Tracer(node_rules(c, n), node_local_ips(c, n)) for n in c.nodes}
    pods = [str(p.ip) for p in c.pods]
    others = [str(c.nodes[1].ip), str(c.external_ip)]     # another node's address, an outside client
    pairs = [(s, d) for s in pods for d in pods] + [(o, d) for o in others for d in pods] \
        + [(s, o) for s in pods for o in others]
    denied = 0
    for src, dst in pairs:
        for proto in ("TCP", "UDP"):
            for port in (80, 81):
                want = evaluate.verdict(c, src, dst, port, proto)
                got = walk(c, tracers, src, dst, proto, port)
                assert got == want.allowed, (src, dst, proto, port, want, c.policies)
                denied += not got
    assert 0 <= denied < len(pairs) * 4


def test_walk_sees_denials_and_stateful_replies():
    """The property test above is not vacuous: default deny rejects, and replies still pass."""
    c = cluster(pol("deny", ns="y"))
    tracers = {n.name: Tracer(node_rules(c, n), node_local_ips(c, n)) for n in c.nodes}
    assert not walk(c, tracers, pod_ip(c, "x/a"), pod_ip(c, "y/b"), "TCP", 80)
    assert walk(c, tracers, pod_ip(c, "y/b"), pod_ip(c, "x/a"), "TCP", 80)
    assert walk(c, tracers, pod_ip(c, "y/b"), pod_ip(c, "y/b"), "TCP", 80)     # itself
    yb = next(p for p in c.pods if p.key == "y/b")
    t = tracers[yb.node]
    done, _ = t.run("filter", "FORWARD", _state(pod_ip(c, "x/a"), str(yb.ip)), {"ESTABLISHED"})
    assert all(v != "REJECT" for _, v in done)


def _state(src, dst):
    from netlab.render.trace import State
    return State(ipaddress.IPv4Address(src), ipaddress.IPv4Address(dst), "tcp", 80)


def test_the_scoped_diff_of_an_incremental_sync_keeps_the_policy_chains():
    """An incremental sync compares only the Services that changed and every chain that is not a Service's:
    the policy chains are always compared."""
    from netlab.dataplane.iptables import scoped
    c = cluster(*GOLDEN_POLICIES)
    for node in c.nodes:
        d = node_rules(c, node)
        mine = {ch for ch in d["filter"].chains if ch.startswith(("KUBE-ROUTER-", "KUBE-POD-FW-", "KUBE-NWPLCY-"))}
        assert len(mine) > 1
        assert mine <= set(scoped(d, set())["filter"].chains)


def test_host_network_pods_are_neither_selected_nor_peers():
    text = scenario_text() + """\
---
apiVersion: v1
kind: Pod
metadata: {name: h, namespace: x, labels: {pod: a}}
spec:
  nodeName: np-worker
  hostNetwork: true
  containers:
  - {name: app, image: busybox, ports: [{containerPort: 9000}]}
"""
    c = build(load_text(text, "<netpol>"))
    c.namespace_labels = {ns: {"ns": ns} for ns in "xyz"}
    c.policies = [pol("p", selector=sel(pod="a"), ingress=[Rule(peers=(Peer(pod_selector=sel(pod="a")),))])]
    h = next(p for p in c.pods if p.key == "x/h")
    assert h.host_network
    node = c.node("np-worker")
    text = to_restore(rip.policy_tables(c, node))
    assert "x/h" not in text and f"-s {h.ip}/32" not in text
    assert "ingress of pod x/a" in text


def test_comments_fit_xt_comment_even_for_the_longest_names():
    """A 253-character policy name in a 63-character namespace: every comment stays within xt_comment's 255
    bytes (iptables cuts a longer one, so the rendered rule would differ from iptables-save's at every sync)."""
    ns, name = "y" * 63, "p" * 253
    c = cluster(pol(name, ns=ns, egress=[Rule(peers=(Peer(ip_block=IPBlock(NET("10.0.0.0/8"), (NET("10.1.0.0/16"),))),))],
                    types=("Egress",)))
    for p in c.pods:
        p.namespace = ns
    import shlex
    comments = [tok[i + 1] for node in c.nodes for rules in rip.policy_tables(c, node)["filter"].chains.values()
                for r in rules for tok in [shlex.split(r)] for i, t in enumerate(tok) if t == "--comment"]
    assert comments and max(len(x) for x in comments) == rip.COMMENT_MAX
