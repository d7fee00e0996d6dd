"""kube-proxy nftables mode: golden scripts, chain names, structure, packet fates (against iptables mode),
incremental updates and scoped diffs, and - as root - the real nft: every golden passes `nft -c`, a loaded
table reads back equal to the desired state, and a delta applied to it yields the new desired state.

Goldens live in tests/unit/golden/nft_*.txt; after an intended change regenerate them with
    NETLAB_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/unit/test_kubeproxy_nftables.py
and review the diff.
"""
from __future__ import annotations

import base64
import copy
import hashlib
import ipaddress
import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from netlab.model.objects import Endpoint
from netlab.render import kubeproxy_nftables as kn
from netlab.render import services
from netlab.render.fabric import node_local_ips
from netlab.render.iptables import node_rules
from netlab.render.trace import Tracer

from .test_kubeproxy_iptables import SCENARIOS, cluster_of

from . import golden  # noqa: E402
from .golden import GOLDEN  # noqa: E402


def golden_text(name: str, **options) -> str:
    c = cluster_of(name)
    return "".join(f"# node {n.name}\n" + kn.nft_script(c, n, **options) for n in c.nodes)


GOLDENS = {f"nft_{name}": (name, {}) for name in SCENARIOS} | {"nft_basic_vmap": ("basic", {"choice": "vmap"})}


# ---------------------------------------------------------------- golden files

@pytest.mark.parametrize("key", sorted(GOLDENS))
def test_golden(key):
    name, options = GOLDENS[key]
    golden.check(key, golden_text(name, **options), "script differs")


def test_render_is_deterministic():
    for name, options in GOLDENS.values():
        assert golden_text(name, **options) == golden_text(name, **options)


# ---------------------------------------------------------------- names

def independent_base(name: str) -> str:
    return base64.b32encode(hashlib.sha256(name.encode()).digest()).decode()[:8] + "-" + name


def test_chain_names_against_kube_proxy():
    # Expected values from kubernetes/kubernetes pkg/proxy/nftables/proxier_test.go (TestOverallNFTablesRules).
    assert kn.service_chain_base("ns1", "svc1", "TCP", "p80") == "ULMVA6XW-ns1/svc1/tcp/p80"
    assert kn.endpoint_chain_base("ns1", "svc1", "tcp", "p80", "10.180.0.1", 80) == \
        "5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80"
    assert kn.service_chain_base("ns2", "svc2", "tcp", "p80") == "42NFTM6N-ns2/svc2/tcp/p80"


def test_chain_names_against_independent_derivation():
    assert kn.service_chain_base("default", "web", "udp", "dns") == independent_base("default/web/udp/dns")
    # an unnamed port leaves the last part empty
    assert kn.service_chain_base("default", "manual", "tcp", None) == independent_base("default/manual/tcp/")
    assert kn.endpoint_chain_base("a", "b", "sctp", "", "fd00::1", 9) == independent_base("a/b/sctp/__fd00..1/9")


def test_long_names_are_truncated_like_kube_proxy():
    # Real Kubernetes names stay below the limit (63/63/15 + an IPv6 endpoint: 203 characters) ...
    ns, name, port = "n" * 63, "s" * 63, "p" * 15
    real = kn.endpoint_chain_base(ns, name, "tcp", port, "fd00:1234:5678:9abc:def0:1234:5678:9abc", 65535)
    assert real == independent_base(f"{ns}/{name}/tcp/{port}__fd00.1234.5678.9abc.def0.1234.5678.9abc/65535")
    # ... longer ones are cut to 240 characters ending in "...", the hash still of the whole name
    long = "x" * 300
    cut = kn.hash_and_truncate(long)
    assert len(cut) == kn.CHAIN_NAME_BASE_MAX and cut.endswith("...") and cut[:9] == independent_base(long)[:9]
    for prefix in (kn.SERVICE_PREFIX, kn.LOCAL_PREFIX, kn.EXTERNAL_PREFIX, kn.ENDPOINT_PREFIX, kn.AFFINITY_PREFIX,
                   kn.FIREWALL_PREFIX):
        assert len(prefix) <= kn.CHAIN_NAME_PREFIX_MAX
        assert len(prefix + cut) < kn.NAME_LENGTH_MAX          # the kernel's limit counts the NUL too


# ---------------------------------------------------------------- structure

TARGET = re.compile(r"\b(?:jump|goto) ([^\s,}]+)")
SETREF = re.compile(r"@([^\s,}]+)")


@pytest.mark.parametrize("name", sorted(SCENARIOS))
@pytest.mark.parametrize("choice", kn.CHOICES)
def test_every_reference_resolves_and_every_chain_is_used(name, choice):
    c = cluster_of(name)
    for node in c.nodes:
        t = kn.desired_objects(c, node, choice=choice)
        texts = [r for rs in t.chains.values() for r in rs]
        texts += [v for s in t.sets.values() for v, _ in s.elements.values() if v]
        targets = {m for x in texts for m in TARGET.findall(x)}
        refs = {m for x in texts for m in SETREF.findall(x)}
        assert targets <= set(t.chains), targets - set(t.chains)
        assert refs <= set(t.sets), refs - set(t.sets)
        assert not targets & set(t.hooks)                            # nothing jumps to a base chain
        unused = set(t.chains) - targets - set(t.hooks)
        assert unused <= {kn.REJECT_CHAIN}, unused                   # kube-proxy keeps it even when unused
        assert refs == set(t.sets)                                   # every set and map is looked up
        for chain, rules in t.chains.items():
            if "/" in chain:                                         # service chains are never empty
                assert rules, chain


def test_ignored_services_render_nothing():
    c = cluster_of("external")
    for node in c.nodes:
        text = kn.nft_script(c, node)
        for name in ("headless", "extname", "other-proxy", "headless-label"):
            assert f"/{name}/" not in text and f"default/{name}:" not in text and f'"default/{name}"' not in text
        assert "10.96.0.127" not in text and "10.96.0.128" not in text


def test_no_endpoints_go_to_the_reject_chain():
    c = cluster_of("external")
    t = kn.desired_objects(c, c.nodes[0])
    nes = t.sets[kn.NO_ENDPOINT_SERVICES].elements
    assert nes["10.96.0.124 . tcp . 80"] == ("goto reject-chain", "default/empty:http")
    assert nes["10.96.0.124 . udp . 53"] == ("goto reject-chain", "default/empty:dns")
    assert nes["192.0.2.70 . tcp . 80"] == ("goto reject-chain", "default/empty:http")
    assert nes["192.0.2.80 . tcp . 80"] == ("goto reject-chain", "default/lb-empty")
    assert nes["10.96.0.126 . tcp . 80"] == ("goto reject-chain", "default/manual")
    nep = t.sets[kn.NO_ENDPOINT_NODEPORTS].elements
    assert nep["tcp . 30200"] == ("goto reject-chain", "default/empty:http")
    assert nep["udp . 30201"] == ("goto reject-chain", "default/empty:dns")
    assert not any("empty" in ch or "manual" in ch for ch in t.chains)
    # ClusterIPs are "active" whether they have endpoints or not
    assert {"10.96.0.124", "10.96.0.126", "10.96.0.120"} <= set(t.sets[kn.CLUSTER_IPS].elements)


def test_local_policies_drop_where_no_local_endpoint():
    c = cluster_of("policies")
    cp = kn.desired_objects(c, c.node("kp-control-plane"))
    assert cp.sets[kn.NO_ENDPOINT_SERVICES].elements["10.96.0.111 . tcp . 80"] == ("drop", "default/itp-local:http")
    assert cp.sets[kn.NO_ENDPOINT_NODEPORTS].elements["tcp . 30110"] == ("drop", "default/etp-local:http")
    ext = cp.chains["external-" + kn.service_chain_base("default", "etp-local", "tcp", "http")]
    assert len(ext) == 3 and not any(r.startswith("goto local-") for r in ext)   # short-circuits only
    worker = kn.desired_objects(c, c.node("kp-worker"))
    assert kn.NO_ENDPOINT_NODEPORTS not in {n for n, s in worker.sets.items() if s.elements}


def test_ladder_is_uniform_and_vmap_is_kube_proxys():
    c = cluster_of("basic")
    node = c.nodes[0]
    chain = "service-" + kn.service_chain_base("default", "web", "tcp", "http")
    ladder = kn.desired_objects(c, node).chains[chain][1:]
    # P(first) = 1/3, P(second) = 2/3 * 1/2, P(third) = 2/3 * 1/2: uniform
    assert [r.split("goto ")[0] for r in ladder] == ["numgen random mod 3 0 ", "numgen random mod 2 0 ", ""]
    vmap = kn.desired_objects(c, node, choice="vmap").chains[chain][1:]
    assert len(vmap) == 1 and vmap[0].startswith("numgen random mod 3 vmap { 0 : goto endpoint-")
    assert [x.split("goto ")[1] for x in ladder] == re.findall(r"goto (\S+?)(?:,| })", vmap[0])


def test_affinity_sets_and_rules():
    c = cluster_of("policies")
    t = kn.desired_objects(c, c.node("kp-worker"))
    aff = {n: s for n, s in t.sets.items() if n.startswith(kn.AFFINITY_PREFIX)}
    assert len(aff) == 2 and all(s.timeout == 600 and s.dynamic and "timeout" in s.flags for s in aff.values())
    chain = t.chains["service-" + kn.service_chain_base("default", "sticky", "tcp", "http")]
    assert [r.startswith("ip saddr @affinity-") for r in chain] == [False, True, True, False, False]
    for n in aff:
        ep = kn.ENDPOINT_PREFIX + n[len(kn.AFFINITY_PREFIX):]
        assert f"ip saddr @{n} goto {ep}" in chain
        assert t.chains[ep][1] == f"update @{n} {{ ip saddr }}"


def test_nodeport_addresses_all():
    c = cluster_of("basic")
    t = kn.desired_objects(c, c.nodes[0], nodeport_addresses="all")
    assert kn.NODEPORT_IPS not in t.sets
    assert t.chains[kn.SERVICES][1].startswith("fib daddr type local ip daddr != 127.0.0.0/8 ")
    primary = kn.desired_objects(c, c.nodes[0])
    assert primary.sets[kn.NODEPORT_IPS].elements == {str(c.nodes[0].ip): (None, None)}


# ---------------------------------------------------------------- packet fates, against iptables mode

@dataclass(frozen=True)
class Pkt:
    src: ipaddress.IPv4Address
    dst: ipaddress.IPv4Address
    proto: str
    dport: int
    mark: bool = False
    dnat: str | None = None
    masq: bool = False


class NftWalker:
    """Follows a first packet through the rendered table: the hooks in priority order, jump/goto, maps.

    Knows exactly the rule shapes the renderer writes (anything else raises). Random choices and
    affinity lookups take every branch; returns every possible (verdict, dnat, marked).
    """

    def __init__(self, t: kn.NftTable, local_ips):
        self.t = t
        self.local = {ipaddress.ip_address(i) for i in local_ips}

    def _in(self, ip, value: str) -> bool:
        if value.startswith("@"):
            return str(ip) in self.t.sets[value[1:]].elements
        if value.startswith("{"):                         # an anonymous set: "{ a, b/n }"
            return any(self._in(ip, v) for v in value.strip("{} ").split(", "))
        return ip in ipaddress.ip_network(value, strict=False)

    def _verdict(self, text: str, p: Pkt):
        """A map value / statement: ('jump'|'goto', chain) or (verdict,)."""
        w = text.split()
        return (w[0], w[1]) if w[0] in ("jump", "goto") else (w[0],)

    def chain(self, name: str, p: Pkt, depth=0) -> list[tuple[str, Pkt]]:
        """Outcomes of running chain `name`: ('continue'|'accept'|'drop'|'reject', packet)."""
        assert depth < 32
        states = [p]
        done: list[tuple[str, Pkt]] = []
        for rule in self.t.chains[name]:
            rule = re.sub(r' comment "[^"]*"$', "", rule)
            nxt = []
            for st in states:
                for verdict, st2 in self.rule(rule, st, depth):
                    if verdict == "continue":
                        nxt.append(st2)
                    else:
                        done.append((verdict, st2))
            states = nxt
        return done + [("continue", st) for st in states]

    def _follow(self, v, p: Pkt, depth) -> list[tuple[str, Pkt]]:
        if v[0] == "jump":
            return [("continue" if r in ("continue", "return") else r, s) for r, s in self.chain(v[1], p, depth + 1)]
        if v[0] == "goto":
            return [("return" if r == "continue" else r, s) for r, s in self.chain(v[1], p, depth + 1)]
        return [(v[0], p)]

    def rule(self, rule: str, p: Pkt, depth) -> list[tuple[str, Pkt]]:
        w = rule.split()
        i = 0
        alternatives = False
        while i < len(w):
            if w[i:i + 3] == ["meta", "mark", "&"]:                                      # masquerading
                return [("return" if not p.mark else "continue", p)]
            elif w[i:i + 3] == ["meta", "mark", "set"]:
                return [("continue", replace(p, mark=w[i + 6] == "|"))]
            elif w[i] == "masquerade":
                return [("accept", replace(p, masq=True))]
            elif w[i:i + 3] == ["ct", "state", "new"]:
                i += 3
            elif w[i:i + 7] == ["ip", "daddr", ".", "meta", "l4proto", ".", "th"]:         # vmap by dst.proto.port
                m = self.t.sets[w[i + 9][1:]].elements.get(f"{p.dst} . {p.proto} . {p.dport}")
                return self._follow(self._verdict(m[0], p), p, depth) if m else [("continue", p)]
            elif w[i:i + 4] == ["meta", "l4proto", ".", "th"]:                            # vmap by proto.port
                m = self.t.sets[w[i + 6][1:]].elements.get(f"{p.proto} . {p.dport}")
                return self._follow(self._verdict(m[0], p), p, depth) if m else [("continue", p)]
            elif w[i] == "ip" and w[i + 1] in ("saddr", "daddr"):
                addr = p.src if w[i + 1] == "saddr" else p.dst
                if w[i + 2] == "!=" and w[i + 3] == "{":
                    end = w.index("}", i + 3)
                    ok, i = not self._in(addr, " ".join(w[i + 3:end + 1])), end + 1
                elif w[i + 2] == "!=":
                    ok, i = not self._in(addr, w[i + 3]), i + 4
                else:
                    if w[i + 2].startswith("@affinity-"):
                        alternatives, i = True, i + 3                   # may or may not be remembered
                        continue
                    ok, i = self._in(addr, w[i + 2]), i + 3
                if not ok:
                    return [("continue", p)]
            elif w[i] in ("tcp", "udp", "sctp") and w[i + 1] == "dport":
                if p.proto != w[i] or p.dport != int(w[i + 2]):
                    return [("continue", p)]
                i += 3
            elif w[i:i + 2] == ["fib", "saddr"] or w[i:i + 2] == ["fib", "daddr"]:
                addr = p.src if w[i + 1] == "saddr" else p.dst
                if addr not in self.local:
                    return [("continue", p)]
                i += 4
            elif w[i:i + 2] == ["meta", "l4proto"] and w[i + 3] == "dnat":
                assert w[i + 2] == p.proto
                return [("accept", replace(p, dnat=w[i + 5]))]
            elif w[i] == "numgen":
                if w[i + 4] == "vmap":
                    targets = re.findall(r"goto (\S+?)(?:,| })", rule)
                    return [o for tgt in targets for o in self._follow(("goto", tgt), p, depth)]
                alternatives, i = True, i + 5
            elif w[i] in ("jump", "goto"):
                if w[i + 1] == kn.MARK_MASQ:
                    return [("continue", replace(p, mark=True))]
                taken = self._follow((w[i], w[i + 1]), p, depth)
                return taken + ([("continue", p)] if alternatives else [])
            elif w[i] in ("reject", "drop", "accept", "return"):
                return [(w[i], p)]
            elif w[i] == "update":
                return [("continue", p)]
            else:
                raise ValueError(f"unknown rule shape: {rule}")
        raise ValueError(f"rule without a statement: {rule}")

    def hook(self, hook: str, p: Pkt) -> list[tuple[str, Pkt]]:
        """All base chains on `hook`, by priority; NAT chains see and change the packet in turn."""
        states = [("accept", p)]
        for name, (_, h, _prio) in sorted(self.t.hooks.items(), key=lambda kv: kv[1][2]):
            if h != hook:
                continue
            nxt = []
            for verdict, st in states:
                if verdict != "accept":
                    nxt.append((verdict, st))
                    continue
                for r, st2 in self.chain(name, st):
                    if st2.dnat:                                  # later chains see the new destination
                        st2 = replace(st2, dst=ipaddress.ip_address(st2.dnat.split(":")[0]))
                    nxt.append(("accept" if r in ("continue", "return") else r, st2))
            states = nxt
        return states

    def trace(self, src, dst, proto, dport, from_host=False) -> set[tuple[str, str | None, bool, bool]]:
        """(verdict, dnat, marked, masqueraded) of every possible path."""
        p = Pkt(ipaddress.ip_address(src), ipaddress.ip_address(dst), proto, dport)
        out = set()
        for v, st in self.hook("output" if from_host else "prerouting", p):
            marked, cur, masq = st.mark, st, False
            if v == "accept" and not from_host:
                [(v, cur)] = self.hook("input" if cur.dst in self.local else "forward", cur)
            if v == "accept" and (from_host or cur.dst not in self.local):
                [(v, after)] = self.hook("postrouting", cur)
                masq = after.masq
            if v == "accept" and from_host and cur.dst in self.local:      # looped back: input as well
                [(v, cur)] = self.hook("input", cur)
            out.add((v.upper(), st.dnat, marked, masq))
        return out


def iptables_fates(c, node, *case) -> set[tuple[str, str | None, bool]]:
    """(verdict, dnat, marked); iptables' `masquerade` also counts flannel's own rules, so it is left out."""
    paths = Tracer(node_rules(c, node), node_local_ips(c, node)).trace(*case[:4], from_host=case[4])
    return {(p.verdict, p.dnat, p.marked) for p in paths}


def cases(c, node):
    """(src, dst, proto, port, from_host) for every Service address a packet can be sent to."""
    pod = next(p for p in c.pods if p.node == node.name)
    other = next((p for p in c.pods if p.node != node.name), pod)
    out = []
    for svc in c.services:
        if svc.cluster_ip is None:
            continue
        for port in svc.ports:
            proto = port.protocol.lower()
            for src, host in ((pod.ip, False), (other.ip, False), (c.external_ip, False), (node.ip, True)):
                out.append((str(src), str(svc.cluster_ip), proto, port.port, host))
            for vip in svc.spec.external_ips + ([svc.spec.load_balancer_ip] if svc.spec.load_balancer_ip else []):
                for src, host in ((c.external_ip, False), (pod.ip, False), (node.ip, True)):
                    out.append((str(src), vip, proto, port.port, host))
                for cidr in svc.spec.source_ranges:   # a client inside each loadBalancerSourceRange
                    out.append((str(ipaddress.ip_network(cidr)[-1]), vip, proto, port.port, False))
            for eps in svc.endpoints.values():                   # hairpin: an endpoint calls its own Service
                for ep in eps:
                    if ep.node == node.name:
                        out.append((str(ep.ip), str(svc.cluster_ip), proto, port.port, False))
            if port.node_port:
                for src, host in ((c.external_ip, False), (pod.ip, False), (node.ip, True)):
                    out.append((str(src), str(node.ip), proto, port.node_port, host))
    return out


@pytest.mark.parametrize("name", sorted(SCENARIOS))
@pytest.mark.parametrize("choice", kn.CHOICES)
def test_packet_fates_match_iptables_mode(name, choice):
    """Every packet to every Service address meets the same fate in both modes: same verdict, same set of
    possible endpoints, same masquerade mark - but for two documented differences (below)."""
    c = cluster_of(name)
    dead_external = {ip for svc in c.services if not any(svc.endpoints.values())
                     for ip in svc.spec.external_ips + [svc.spec.load_balancer_ip or ""]}
    ignored = {str(svc.cluster_ip) for svc in c.services if svc.cluster_ip and not services.is_proxied(svc)}
    for node in c.nodes:
        walker = NftWalker(kn.desired_objects(c, node, choice=choice), node_local_ips(c, node))
        for case in cases(c, node):
            fates = walker.trace(*case[:4], from_host=case[4])
            # masquerading (nat-postrouting) masquerades exactly what was marked
            assert all(masq == marked for v, dnat, marked, masq in fates if v == "ACCEPT" and dnat), fates
            nft = {f[:3] for f in fates}
            ipt = iptables_fates(c, node, *case)
            fenced = next((svc for svc in c.services if svc.spec.source_ranges
                           and case[1] == svc.spec.load_balancer_ip and not any(svc.endpoints.values())), None)
            inside = fenced is not None and any(ipaddress.ip_address(case[0]) in ipaddress.ip_network(r)
                                                for r in fenced.spec.source_ranges)
            if case[4] and case[1] in dead_external:
                # iptables mode checks "no endpoints" for external IPs only on INPUT and FORWARD
                # (KUBE-EXTERNAL-SERVICES), so the node's own packet leaves unchanged; nftables mode checks
                # service-endpoints-check on output too and rejects it (its firewall-check, on output as
                # well, drops it first when the node is outside the Service's loadBalancerSourceRanges).
                want = "DROP" if fenced is not None and not inside else "REJECT"
                assert ipt == {("ACCEPT", None, False)} and nft == {(want, None, False)}, (case, nft, ipt)
                continue
            if fenced is not None and not case[4]:
                # loadBalancerSourceRanges on a Service without endpoints: iptables mode has no KUBE-FW chain
                # then (KUBE-EXTERNAL-SERVICES rejects every source); nftables mode's firewall-check runs
                # before the no-endpoint check, so a source outside the ranges is dropped, not rejected.
                assert ipt == {("REJECT", None, False)}, (case, ipt)
                assert nft == {("REJECT" if inside else "DROP", None, False)}, (case, nft)
                continue
            if case[1] in ignored:
                # A ClusterIP kube-proxy does not know (a Service of another proxy) is, to nftables mode, an
                # unallocated address of the service CIDR: cluster-ips-check drops it. iptables mode ignores it.
                assert ipt == {("ACCEPT", None, False)} and nft == {("DROP", None, False)}, (case, nft, ipt)
                continue
            assert nft == ipt, (node.name, case, nft, ipt)


def test_cluster_ip_port_without_service_is_rejected():
    # cluster-ips-check: unlike iptables mode, a port the Service does not have is refused at once
    c = cluster_of("basic")
    node = c.nodes[0]
    pod = c.pods_on(node.name)[0]
    walker = NftWalker(kn.desired_objects(c, node), node_local_ips(c, node))
    assert walker.trace(str(pod.ip), "10.96.0.100", "tcp", 81) == {("REJECT", None, False, False)}
    assert walker.trace(str(pod.ip), "10.96.200.1", "tcp", 80) == {("DROP", None, False, False)}  # unallocated
    assert walker.trace(str(node.ip), "10.96.0.100", "tcp", 81, from_host=True) == {("REJECT", None, False, False)}


# ---------------------------------------------------------------- diffs and incremental updates

def mutations():
    """(description, function changing a cluster in place, keys of the Services it touches)."""
    def move_endpoint(c):
        svc = next(s for s in c.services if s.key == "default/web")
        ep = svc.endpoints["http"][0]
        svc.endpoints["http"][0] = Endpoint(ep.ip + 100, ep.port, ep.node, ep.pod, ep.namespace)
        return {svc.key}

    def drop_all_endpoints(c):
        svc = next(s for s in c.services if s.key == "default/web-np")
        svc.endpoints = {}
        return {svc.key}

    def sticky_on(c):
        svc = next(s for s in c.services if s.key == "default/web")
        svc.spec = replace(svc.spec, session_affinity="ClientIP", affinity_timeout=30)
        return {svc.key}

    def delete_service(c):
        svc = next(s for s in c.services if s.key == "default/web-np")
        c.services.remove(svc)
        return {svc.key}

    def etp_local(c):
        svc = next(s for s in c.services if s.key == "default/web-np")
        svc.spec = replace(svc.spec, external_traffic_policy="Local")
        return {svc.key}

    def add_service(c):
        svc = copy.deepcopy(next(s for s in c.services if s.key == "default/web"))
        svc.spec = replace(svc.spec, name="web2", external_ips=["192.0.2.99"])
        svc.cluster_ip = ipaddress.ip_address("10.96.0.150")
        c.services.append(svc)
        return {svc.key}

    return [("move an endpoint", move_endpoint), ("no endpoints left", drop_all_endpoints),
            ("affinity on", sticky_on), ("delete a Service", delete_service),
            ("externalTrafficPolicy Local", etp_local), ("add a Service", add_service)]


@pytest.mark.parametrize("what,mutate", mutations())
def test_update_objects_equals_a_full_render(what, mutate):
    c = cluster_of("basic")
    for node in c.nodes:
        before = kn.desired_objects(c, node)
        c2 = copy.deepcopy(c)
        keys = mutate(c2)
        assert kn.changed_services(c, c2) == keys
        updated = kn.update_objects(before, c2, node, keys)
        full = kn.desired_objects(c2, node)
        assert updated.content() == full.content(), what
        assert before.content() == kn.desired_objects(c, node).content()        # the input is untouched
        scoped = kn.diff_script(updated, before, only=keys)
        unscoped = kn.diff_script(full, before)
        assert scoped and sorted(scoped.splitlines()) == sorted(unscoped.splitlines()), what


def test_diff_of_equal_tables_is_empty():
    c = cluster_of("external")
    for node in c.nodes:
        assert kn.diff_script(kn.desired_objects(c, node), kn.desired_objects(c, node)) == ""


@pytest.mark.parametrize("name", sorted(SCENARIOS))
@pytest.mark.parametrize("choice", kn.CHOICES)
def test_a_table_survives_its_record(name, choice):
    """The record NftablesProxy keeps of its last sync (JSON) gives back a table that diffs as equal."""
    c = cluster_of(name)
    for node in c.nodes:
        t = kn.desired_objects(c, node, choice=choice)
        back = kn.table_from_data(json.loads(json.dumps(kn.table_to_data(t))))
        assert back.content() == t.content() and back.hooks == t.hooks and back.chain_comments == t.chain_comments
        assert kn.diff_script(t, back) == "" and kn.diff_script(back, t) == ""
        assert kn.diff_script(t, back) == kn.diff_script(t, t)


def test_one_endpoint_change_is_a_small_transaction():
    c = cluster_of("basic")
    node = c.nodes[0]
    before = kn.desired_objects(c, node)
    svc = next(s for s in c.services if s.key == "default/web")
    old = svc.endpoints["http"][0]
    svc.endpoints["http"][0] = Endpoint(old.ip + 100, old.port, old.node, old.pod, old.namespace)
    script = kn.diff_script(kn.desired_objects(c, node), before)
    old_chain = kn.ENDPOINT_PREFIX + kn.endpoint_chain_base("default", "web", "tcp", "http", str(old.ip), old.port)
    lines = script.splitlines()
    assert lines[:3] == [f"flush chain ip kube-proxy service-{kn.service_chain_base('default', 'web', 'tcp', 'http')}",
                         f"flush chain ip kube-proxy {old_chain}", f"delete chain ip kube-proxy {old_chain}"]
    assert len(lines) == 10 and sum(x.startswith("add chain") for x in lines) == 1
    assert not any("element" in x for x in lines)
    kept = kn.diff_script(kn.desired_objects(c, node), before, delete_stale=False)
    assert f"delete chain ip kube-proxy {old_chain}" not in kept and f"flush chain ip kube-proxy {old_chain}" in kept


def test_diff_recreates_what_changed_shape():
    c = cluster_of("policies")
    node = c.node("kp-worker")
    desired = kn.desired_objects(c, node)
    live = copy.deepcopy(desired)
    live.hooks["nat-output"] = ("nat", "output", -150)                 # priority changed
    aff = next(n for n in live.sets if n.startswith(kn.AFFINITY_PREFIX))
    live.sets[aff] = replace(live.sets[aff], timeout=10)                 # affinity timeout changed
    live.sets["stale-set"] = kn.NftSet("ipv4_addr")
    live.chains["service-XXXXXXXX-gone/svc/tcp/"] = ["goto endpoint-XXXXXXXX-gone/svc/tcp/__1.2.3.4/80"]
    live.chains["endpoint-XXXXXXXX-gone/svc/tcp/__1.2.3.4/80"] = ["meta l4proto tcp dnat to 1.2.3.4:80"]
    live.sets[kn.SERVICE_IPS].elements["10.96.9.9 . tcp . 80"] = ("goto service-XXXXXXXX-gone/svc/tcp/", None)
    script = kn.diff_script(desired, live).splitlines()
    users = [n for n, rs in desired.chains.items() if any("@" + aff in r for r in rs)]
    assert len(users) == 2
    order = {x: i for i, x in enumerate(script)}
    for u in users:                                                      # references dropped before the delete
        assert order[f"flush chain ip kube-proxy {u}"] < order[f"delete set ip kube-proxy {aff}"]
    assert order["delete element ip kube-proxy service-ips { 10.96.9.9 . tcp . 80 }"] < \
        order["delete chain ip kube-proxy service-XXXXXXXX-gone/svc/tcp/"]
    assert "delete set ip kube-proxy stale-set" in order
    assert order["delete chain ip kube-proxy nat-output"] < order[
        "add chain ip kube-proxy nat-output { type nat hook output priority -100 ; }"]
    assert order[f"delete set ip kube-proxy {aff}"] < order[
        f"add set ip kube-proxy {aff} {{ type ipv4_addr ; flags dynamic,timeout ; timeout 600s ; }}"]


def test_parse_nft_json():
    assert kn.parse_nft_json('{"nftables": [{"metainfo": {"version": "1.0.6"}}]}') is None
    listing = {"nftables": [
        {"table": {"family": "ip", "name": "kube-proxy", "handle": 1}},
        {"table": {"family": "ip", "name": "other", "handle": 2}},
        {"chain": {"family": "ip", "table": "other", "name": "x", "handle": 1}},
        {"chain": {"family": "ip", "table": "kube-proxy", "name": "nat-output", "handle": 1, "type": "nat",
                   "hook": "output", "prio": -100, "policy": "accept"}},
        {"chain": {"family": "ip", "table": "kube-proxy", "name": "services", "handle": 2}},
        {"set": {"family": "ip", "name": "affinity-A", "table": "kube-proxy", "type": "ipv4_addr", "handle": 3,
                 "size": 65535, "flags": ["timeout"], "timeout": 10800,
                 "elem": [{"elem": {"val": "10.0.0.1", "timeout": 10800, "expires": 10000}}]}},
        {"map": {"family": "ip", "name": "service-nodeports", "table": "kube-proxy",
                 "type": ["inet_proto", "inet_service"], "handle": 4, "map": "verdict",
                 "elem": [[{"elem": {"val": {"concat": ["tcp", 30080]}, "comment": "a/b"}}, {"drop": None}],
                          [{"concat": ["udp", 30081]}, {"goto": {"target": "services"}}]]}},
        {"rule": {"family": "ip", "table": "kube-proxy", "chain": "nat-output", "handle": 5,
                  "expr": [{"jump": {"target": "services"}}]}},
        {"rule": {"family": "ip", "table": "kube-proxy", "chain": "services", "handle": 6, "comment": "c",
                  "expr": [{"match": {"op": "==", "left": {"ct": {"key": "mark"}}, "right": 7}},
                           {"counter": {"packets": 1, "bytes": 2}}, {"log": None}]}},
    ]}
    t = kn.parse_nft_json(json.dumps(listing))
    assert t is not None and set(t.chains) == {"nat-output", "services"}
    assert t.hooks == {"nat-output": ("nat", "output", -100)}
    assert t.chains["nat-output"] == ["jump services"]
    assert t.chains["services"] == ['ct mark 0x00000007 counter packets 1 bytes 2 ?{"log": null} comment "c"']
    assert t.sets["affinity-A"].spec() == ("ipv4_addr", None, ("timeout",), 10800)
    assert t.sets["service-nodeports"].elements == {"tcp . 30080": ("drop", "a/b"),
                                                    "udp . 30081": ("goto services", None)}


# ---------------------------------------------------------------- the real nft (root)

needs_nft = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None or shutil.which("nft") is None,
                               reason="needs root, unshare and nft")


def in_netns(*scripts: str, check: bool = False, listing: bool = True) -> str:
    """Apply `scripts` one after the other (one `nft -f` each) in a throwaway network namespace; return
    `nft -j list table ip kube-proxy` afterwards."""
    with tempfile.TemporaryDirectory(prefix="nfttest.") as d:
        cmds = []
        for i, s in enumerate(scripts):
            Path(d, f"{i}.nft").write_text(s)
            cmds.append(f"nft {'-c ' if check else ''}-f {d}/{i}.nft")
        if listing:
            cmds.append("nft -j list table ip kube-proxy")
        p = subprocess.run(["unshare", "--net", "sh", "-ec", " && ".join(cmds)], capture_output=True, text=True,
                           timeout=120)
    assert p.returncode == 0, p.stderr
    return p.stdout


@pytest.mark.root
@needs_nft
@pytest.mark.parametrize("golden", sorted(GOLDENS))
def test_goldens_pass_nft_check(golden):
    text = (GOLDEN / f"{golden}.txt").read_text()
    for part in text.split("# node ")[1:]:
        in_netns(part.split("\n", 1)[1], check=True, listing=False)


@pytest.mark.root
@needs_nft
@pytest.mark.parametrize("name", sorted(SCENARIOS))
@pytest.mark.parametrize("choice", kn.CHOICES)
def test_loaded_table_reads_back_as_desired(name, choice):
    """Round trip: load the script, list the table, parse it: nothing to change. A second load of the same
    script (the table now exists) works as well."""
    c = cluster_of(name)
    for node in c.nodes:
        desired = kn.desired_objects(c, node, choice=choice)
        script = kn.nft_script(c, node, choice=choice)
        live = kn.parse_nft_json(in_netns(script, script))
        assert live is not None
        assert kn.diff_script(desired, live) == "", node.name
        assert live.content() == desired.content()


@pytest.mark.root
@needs_nft
@pytest.mark.parametrize("what,mutate", mutations())
def test_deltas_applied_to_a_live_table_give_the_new_state(what, mutate):
    """Load, change, apply the scoped delta (computed from the cached state) and the unscoped one
    (computed from the parsed live table): both read back as the new desired state."""
    c = cluster_of("basic")
    node = c.nodes[1]
    before = kn.desired_objects(c, node)
    full = kn.nft_script(c, node)
    live_before = kn.parse_nft_json(in_netns(full))
    c2 = copy.deepcopy(c)
    keys = mutate(c2)
    after = kn.update_objects(before, c2, node, keys)
    for delta in (kn.diff_script(after, before, only=keys), kn.diff_script(after, live_before)):
        assert delta
        live = kn.parse_nft_json(in_netns(full, delta))
        assert kn.diff_script(after, live) == "", (what, delta)
    # kernels before 6.2: stale chains flushed now, deleted by a later sync
    first = kn.diff_script(after, before, only=keys, delete_stale=False)
    live = kn.parse_nft_json(in_netns(full, first))
    second = kn.diff_script(after, live)
    assert all(x.startswith("delete chain") for x in second.splitlines())
    assert kn.diff_script(after, kn.parse_nft_json(in_netns(full, first, second))) == ""


@pytest.mark.root
@needs_nft
def test_diff_repairs_a_tampered_table():
    c = cluster_of("policies")
    node = c.node("kp-worker")
    desired = kn.desired_objects(c, node)
    script = kn.nft_script(c, node)
    svc_chain = "service-" + kn.service_chain_base("default", "sticky", "tcp", "http")
    tamper = (f"add rule ip kube-proxy {svc_chain} counter drop\n"
              f"delete element ip kube-proxy service-ips {{ 10.96.0.111 . tcp . 80 }}\n"
              f"add element ip kube-proxy cluster-ips {{ 10.96.99.99 }}\n"
              "add chain ip kube-proxy service-ZZZZZZZZ-x/y/tcp/\n"
              "delete chain ip kube-proxy nat-postrouting\n"
              "add chain ip kube-proxy nat-postrouting { type nat hook postrouting priority 50 ; }\n")
    live = kn.parse_nft_json(in_netns(script, tamper))
    repair = kn.diff_script(desired, live)
    assert f"flush chain ip kube-proxy {svc_chain}" in repair
    assert kn.diff_script(desired, kn.parse_nft_json(in_netns(script, tamper, repair))) == ""
