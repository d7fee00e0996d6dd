"""kube-proxy IPVS mode: golden renders, endpoint choice, ipsets, iptables chains, the ipvsadm and ipset
text both ways, and the diffs; as root, the ipsets and iptables payloads load for real in a throwaway
network namespace (ipset is per namespace; this kernel has no ip_vs, so IPVS itself is not loaded here).

Goldens live in tests/unit/golden/ipvs_*.txt; after an intended change regenerate them with
    NETLAB_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/unit/test_kubeproxy_ipvs.py
and review the diff.
"""
from __future__ import annotations

import copy
import ipaddress
import os
import random
import shutil
import subprocess
from pathlib import Path

import pytest

from netlab.dataplane.iptables import parse_save, plan_restore
from netlab.model.objects import Endpoint
from netlab.render import kubeproxy_ipvs as ki
from netlab.render.ipvs_objects import natural
from netlab.render.iptables import node_rules, to_restore
from netlab.render.trace import parse_rule

from .test_kubeproxy_iptables import SCENARIOS
from .test_kubeproxy_iptables import cluster_of as _cluster_of

from . import golden  # noqa: E402


def cluster_of(name: str, scheduler: str | None = None, backend: str | None = None):
    c = _cluster_of(name)
    c.networking.proxy_mode = "ipvs"
    if scheduler:
        c.networking.ipvs_scheduler = scheduler
    if backend:
        c.networking.backend = backend
    return c


def describe(c, node) -> str:
    """Everything IPVS mode programs on `node`: its IPVS state, then the node's iptables payload."""
    return ki.describe_ipvs(c, node) + "## iptables-restore --noflush\n" + to_restore(node_rules(c, node))


def golden_text(name: str) -> str:
    c = cluster_of(name)
    return "".join(describe(c, n) for n in c.nodes)


def states(name: str, **kw):
    c = cluster_of(name, **kw)
    return c, {n.name: ki.ipvs_state(c, n) for n in c.nodes}


def vs_of(st: ki.IpvsState, proto: str, addr: str, port: int) -> ki.VirtualServer:
    return next(v for v in st.virtual_servers if v.key == (proto, addr, port))


def reals(vs: ki.VirtualServer) -> set[str]:
    return {rs.key for rs in vs.real_servers}


def svc_eps(c, key: str, port: str = "") -> set[str]:
    svc = next(s for s in c.services if s.key == key)
    return {f"{e.ip}:{e.port}" for e in svc.endpoints[port]}


# ---------------------------------------------------------------- golden files

@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_golden(name):
    golden.check(f"ipvs_{name}", golden_text(name), "state differs")


def test_render_is_deterministic():
    for name in SCENARIOS:
        assert golden_text(name) == golden_text(name)


# ---------------------------------------------------------------- addresses and virtual servers

def test_every_service_vip_is_on_the_dummy_device():
    c, st = states("external")
    proxied = [s for s in c.services if ki.is_proxied(s)]
    want = {str(s.cluster_ip) for s in proxied} | {ip for s in proxied for ip in s.spec.external_ips} \
        | {s.spec.load_balancer_ip for s in proxied if s.spec.load_balancer_ip}
    for node in c.nodes:
        s = st[node.name]
        assert s.dummy_device == "kube-ipvs0"
        assert s.addresses == [f"{ip}/32" for ip in sorted(want, key=lambda a: ipaddress.ip_address(a))]
        assert s.ipsets["KUBE-IPVS-IPS"].entries == [a[:-3] for a in s.addresses]
        # ignored Services get nothing: no address, no virtual server
        assert "10.96.0.127/32" not in s.addresses and "10.96.0.128/32" not in s.addresses
        assert not any(v.address in ("10.96.0.127", "10.96.0.128") for v in s.virtual_servers)


def test_external_ip_that_is_a_node_address_is_not_bound():
    c = cluster_of("external")
    node = c.nodes[0]
    ext = next(s for s in c.services if s.key == "apps/ext")
    ext.spec.external_ips = [str(node.ip)]
    st = ki.ipvs_state(c, node)
    assert f"{node.ip}/32" not in st.addresses and str(node.ip) not in st.ipsets["KUBE-IPVS-IPS"].entries
    assert vs_of(st, "TCP", str(node.ip), 80).real_servers                 # the virtual server is still there
    other = ki.ipvs_state(c, c.nodes[1])                                     # not that node's address
    assert f"{node.ip}/32" in other.addresses


def test_one_virtual_server_per_vip_port_and_per_node_address_and_node_port():
    c, st = states("external")
    for node in c.nodes:
        s = st[node.name]
        keys = [v.key for v in s.virtual_servers]
        assert len(keys) == len(set(keys))
        node_ips = [str(node.ip), str(node.gateway), str(node.vtep_ip)]
        assert ki.node_addresses(c, node) == node_ips
        for svc in (x for x in c.services if ki.is_proxied(x)):
            for p in svc.ports:
                assert (p.protocol, str(svc.cluster_ip), p.port) in keys
                for eip in svc.spec.external_ips:
                    assert (p.protocol, eip, p.port) in keys
                if svc.spec.load_balancer_ip:
                    assert (p.protocol, svc.spec.load_balancer_ip, p.port) in keys
                if p.node_port:
                    assert {ip for (pr, ip, port) in keys if (pr, port) == (p.protocol, p.node_port)} == set(node_ips)
        assert all(v.scheduler == "rr" and v.persistent is None and v.flags == () for v in s.virtual_servers)
        assert all(rs.weight == 1 and rs.forwarding == "masq" for v in s.virtual_servers for rs in v.real_servers)
        assert [v.sort_key for v in s.virtual_servers] == sorted(v.sort_key for v in s.virtual_servers)


def test_host_gw_nodes_have_no_flannel_address_for_node_ports():
    c, st = states("basic", backend="host-gw")
    node = c.nodes[0]
    ips = {v.address for v in st[node.name].virtual_servers if v.port == 30080}
    assert ips == {str(node.ip), str(node.gateway)}


def test_no_node_port_virtual_servers_without_node_ports():
    c2 = cluster_of("policies")
    for svc in c2.services:
        svc.spec.type = "ClusterIP"
    for node in c2.nodes:
        s = ki.ipvs_state(c2, node)
        assert not any(v.port == 30110 for v in s.virtual_servers)
        assert s.ipsets["KUBE-NODE-PORT-TCP"].entries == []
        assert not any("KUBE-NODE-PORT-TCP" in r for r in s.iptables["nat"].chains["KUBE-NODE-PORT"])


def test_endpoints_and_traffic_policies():
    c, st = states("policies")
    cp, worker = "kp-control-plane", "kp-worker"
    all_echo = svc_eps(c, "default/etp-local", "http")
    assert len(all_echo) == 2                                               # both on the worker
    # externalTrafficPolicy Local: local endpoints when there are some, else every endpoint (kubernetes#97081)
    for node in (cp, worker):
        for ip in ki.node_addresses(c, c.node(node)):
            assert reals(vs_of(st[node], "TCP", ip, 30110)) == all_echo
        assert reals(vs_of(st[node], "TCP", "10.96.0.110", 80)) == all_echo   # ClusterIP: Cluster policy
    # internalTrafficPolicy Local, ClusterIP only: local endpoints, or none at all
    assert reals(vs_of(st[worker], "TCP", "10.96.0.111", 80)) == all_echo
    assert vs_of(st[cp], "TCP", "10.96.0.111", 80).real_servers == []
    # ClientIP affinity: persistence with the affinity timeout, on every virtual server of the Service
    sticky = vs_of(st[cp], "TCP", "10.96.0.112", 80)
    assert sticky.persistent == 600 and reals(sticky) == all_echo
    assert ki.ipvsadm_save_text([sticky]).splitlines()[0] == "-A -t 10.96.0.112:80 -s rr -p 600"
    # ETP Local NodePort: in both NodePort sets, so the local one RETURNs before the masquerade mark
    for node in (cp, worker):
        assert st[node].ipsets["KUBE-NODE-PORT-LOCAL-TCP"].entries == ["30110"]
        assert st[node].ipsets["KUBE-NODE-PORT-TCP"].entries == ["30110"]
        np_rules = st[node].iptables["nat"].chains["KUBE-NODE-PORT"]
        assert ["KUBE-NODE-PORT-LOCAL-TCP" in np_rules[0], "KUBE-NODE-PORT-TCP dst" in np_rules[1]] == [True, True]


def test_local_policy_with_local_endpoints_uses_only_those():
    c, st = states("external")
    # lb-local (ETP Local) selects tier=backend: api-b on the worker only
    want = svc_eps(c, "default/lb-local", "http")
    assert len(want) == 1
    w = st["kp-worker"]
    for addr, port in (("192.0.2.61", 80), (str(c.node("kp-worker").ip), 30444), ("10.96.0.123", 80)):
        assert reals(vs_of(w, "TCP", addr, port)) == want
    assert w.ipsets["KUBE-LOAD-BALANCER-LOCAL"].entries == ["192.0.2.61,tcp:80"]
    assert "192.0.2.61,tcp:80" in w.ipsets["KUBE-LOAD-BALANCER"].entries


def test_services_without_endpoints_keep_empty_virtual_servers_and_no_reject_rules():
    c, st = states("external")
    for s in st.values():
        for addr, port, proto in (("10.96.0.124", 80, "TCP"), ("10.96.0.124", 53, "UDP"), ("192.0.2.70", 80, "TCP"),
                                  ("10.96.0.125", 80, "TCP"), ("192.0.2.80", 80, "TCP"), ("10.96.0.126", 80, "TCP")):
            assert vs_of(s, proto, addr, port).real_servers == []
        rules = [r for ts in s.iptables.values() for rs in ts.chains.values() for r in rs]
        assert [r for r in rules if "REJECT" in r] == [
            "-A KUBE-IPVS-FILTER -m conntrack --ctstate NEW -m set --match-set KUBE-IPVS-IPS dst "
            "-j REJECT --reject-with icmp-port-unreachable"]
        assert "10.96.0.124,udp:53" in s.ipsets["KUBE-CLUSTER-IP"].entries
        assert "30201" in s.ipsets["KUBE-NODE-PORT-UDP"].entries


def test_schedulers_and_mh_flag():
    for sched in ("lc", "sh", "wrr"):
        _, st = states("basic", scheduler=sched)
        assert {v.scheduler for s in st.values() for v in s.virtual_servers} == {sched}
        assert {v.flags for s in st.values() for v in s.virtual_servers} == {()}
    _, st = states("basic", scheduler="mh")
    vs = st["kp-worker"].virtual_servers[0]
    assert vs.flags == ("mh-port",)
    assert ki.ipvsadm_save_text([vs]).splitlines()[0].endswith(" -s mh -b mh-port")


# ---------------------------------------------------------------- ipsets

def test_every_kube_proxy_set_exists_even_empty():
    _, st = states("basic")
    s = st["kp-control-plane"]
    assert list(s.ipsets) == list(ki.IPSET_NAMES) and len(ki.IPSET_NAMES) == 17
    types = {n: st.type for n, st in s.ipsets.items()}
    assert types["KUBE-CLUSTER-IP"] == "hash:ip,port" and types["KUBE-LOOP-BACK"] == "hash:ip,port,ip"
    assert types["KUBE-NODE-PORT-TCP"] == types["KUBE-NODE-PORT-UDP"] == "bitmap:port"
    assert types["KUBE-LOAD-BALANCER-SOURCE-CIDR"] == "hash:ip,port,net" and types["KUBE-IPVS-IPS"] == "hash:ip"
    assert s.ipsets["KUBE-LOAD-BALANCER"].entries == [] and s.ipsets["KUBE-EXTERNAL-IP"].entries == []
    text = ki.ipset_restore_text(s)
    for name in ki.IPSET_NAMES:
        assert f"\ncreate {name} " in "\n" + text
    assert "create KUBE-NODE-PORT-TCP bitmap:port range 0-65535 -exist\n" in text
    assert "create KUBE-CLUSTER-IP hash:ip,port family inet hashsize 1024 maxelem 65536 -exist\n" in text


def test_entries_as_ipset_prints_them():
    c, st = states("basic")
    cp = st["kp-control-plane"]
    assert cp.ipsets["KUBE-CLUSTER-IP"].entries == [   # the add-ons' kubernetes (.1) and kube-dns (.10), then the file's
        "10.96.0.1,tcp:443", "10.96.0.10,tcp:53", "10.96.0.10,tcp:9153", "10.96.0.10,udp:53",
        "10.96.0.100,tcp:80", "10.96.0.100,udp:53", "10.96.0.101,tcp:8080"]
    web_a = next(p for p in c.pods if p.name == "web-a")
    assert web_a.node == "kp-control-plane"
    # hairpin: this node's endpoints only, "ip,proto:port,ip"
    assert cp.ipsets["KUBE-LOOP-BACK"].entries == [f"{web_a.ip},tcp:8080,{web_a.ip}", f"{web_a.ip},udp:8053,{web_a.ip}"]
    assert cp.ipsets["KUBE-NODE-PORT-TCP"].entries == ["30080"] and cp.ipsets["KUBE-NODE-PORT-UDP"].entries == []
    # numbers sort as numbers
    assert natural("10.244.1.9") < natural("10.244.1.10") and natural("8080") < natural("30080")


def _save_text(state: ki.IpvsState, shuffle: bool = False) -> str:
    """What `ipset save` (7.x) would print for `state`'s sets: hash sets carry bucketsize/initval."""
    rnd = random.Random(1)
    out = []
    for s in state.ipsets.values():
        head = s.create_line(exist=False)
        if s.type != ki.BITMAP_PORT:
            head += " bucketsize 12 initval 0x1234abcd"
        out.append(head)
        entries = list(s.entries)
        if shuffle:
            rnd.shuffle(entries)
        out += [f"add {s.name} {e}" for e in entries]
    return "".join(line + "\n" for line in out)


def test_ipset_save_parses_back_and_equal_sets_give_no_diff():
    for name in SCENARIOS:
        _, st = states(name)
        for s in st.values():
            parsed = ki.parse_ipset_save(_save_text(s, shuffle=True))
            assert parsed == s.ipsets
            assert ki.ipset_diff(s, _save_text(s, shuffle=True)) == ""


def test_ipset_diff_of_one_endpoint_change():
    c = cluster_of("basic")
    node = c.node("kp-control-plane")
    before = ki.ipvs_state(c, node)
    web = next(s for s in c.services if s.key == "default/web")
    # (the dns port: web-a's tcp:8080 entry also stands for web-np, which does not change)
    i, ep = next((i, e) for i, e in enumerate(web.endpoints["dns"]) if e.node == node.name)
    web.endpoints["dns"][i] = Endpoint(ipaddress.ip_address("10.244.0.99"), ep.port, ep.node, "web-x", "default")
    after = ki.ipvs_state(c, node)
    diff = ki.ipset_diff(after, _save_text(before))
    assert diff.splitlines() == ["add KUBE-LOOP-BACK 10.244.0.99,udp:8053,10.244.0.99 -exist",
                                 f"del KUBE-LOOP-BACK {ep.ip},udp:8053,{ep.ip} -exist"]


def test_ipset_diff_creates_missing_and_retypes_wrong_sets():
    _, st = states("basic")
    s = st["kp-control-plane"]
    assert ki.ipset_diff(s, "") == "".join(
        line + "\n" for x in s.ipsets.values() for line in [x.create_line()] + [f"add {x.name} {e}" for e in x.entries])
    live = _save_text(s).replace("create KUBE-IPVS-IPS hash:ip ", "create KUBE-IPVS-IPS hash:net ")
    live += "create SOMEONE-ELSES hash:ip family inet\nadd SOMEONE-ELSES 1.2.3.4\n"
    diff = ki.ipset_diff(s, live).splitlines()
    assert diff[:3] == ["flush KUBE-IPVS-IPS", "destroy KUBE-IPVS-IPS", s.ipsets["KUBE-IPVS-IPS"].create_line()]
    assert diff[3:] == [f"add KUBE-IPVS-IPS {e}" for e in s.ipsets["KUBE-IPVS-IPS"].entries]
    destroy = ki.ipset_destroy_text(live)
    assert "destroy KUBE-CLUSTER-IP\n" in destroy and "SOMEONE-ELSES" not in destroy
    assert destroy.count("destroy ") == len(ki.IPSET_NAMES)


# ---------------------------------------------------------------- iptables

def test_node_rules_follow_the_proxy_mode():
    c = cluster_of("basic")
    node = c.nodes[0]
    ipvs = node_rules(c, node)
    assert set(ki.NAT_CHAINS) | {"FLANNEL-POSTRTG"} == set(ipvs["nat"].chains)
    assert set(ki.FILTER_CHAINS) | {"FLANNEL-FWD", "KUBE-ROUTER-FORWARD"} == set(ipvs["filter"].chains)
    assert not any(ch.startswith(("KUBE-SVC-", "KUBE-SEP-", "KUBE-EXT-")) or ch == "KUBE-NODEPORTS"
                   for ts in ipvs.values() for ch in ts.chains)
    # the proxy's jumps come before flannel's, as kube-proxy prepends and flannel appends (NetworkPolicy's first)
    assert [spec.split()[-1] for ch, spec in ipvs["filter"].jumps if ch == "FORWARD"] == \
        ["KUBE-ROUTER-FORWARD", "KUBE-PROXY-FIREWALL", "KUBE-FORWARD", "FLANNEL-FWD"]
    c.networking.proxy_mode = "iptables"
    assert "KUBE-IPVS-FILTER" not in node_rules(c, node)["filter"].chains


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_every_jump_has_a_chain_and_every_set_exists(name):
    builtin = {"ACCEPT", "DROP", "REJECT", "RETURN", "MARK", "MASQUERADE"}
    _, st = states(name)
    for s in st.values():
        for table, ts in s.iptables.items():
            rules = [f"-A {b} {spec}" for b, spec in ts.jumps] + [r for rs in ts.chains.values() for r in rs]
            for chain, rs in ts.chains.items():
                assert all(r.startswith(f"-A {chain} ") for r in rs)
            targets = {r.split(" -j ")[1].split()[0] for r in rules}
            assert targets - builtin <= set(ts.chains)
            for r in rules:
                if "--match-set" in r:
                    assert r.split("--match-set ")[1].split()[0] in s.ipsets
            # declared always, jumped to only when their set has entries (as kube-proxy does)
            unused = set(ts.chains) - targets
            assert unused <= {"KUBE-LOAD-BALANCER", "KUBE-SOURCE-RANGES-FIREWALL"}, unused
            assert ("KUBE-LOAD-BALANCER" in unused) == (table == "nat" and not s.ipsets["KUBE-LOAD-BALANCER"].entries)
            assert ("KUBE-SOURCE-RANGES-FIREWALL" in unused) == (
                table == "filter" and not s.ipsets["KUBE-LOAD-BALANCER-FW"].entries)    # no source ranges


def test_set_rules_only_for_sets_with_entries():
    _, st = states("basic")                                    # no LB, no externalIPs
    nat = st["kp-worker"].iptables["nat"]
    assert nat.chains["KUBE-SERVICES"] == [
        "-A KUBE-SERVICES -s 127.0.0.0/8 -j RETURN",
        '-A KUBE-SERVICES ! -s 10.244.0.0/16 -m comment --comment "Kubernetes service cluster ip + port for '
        'masquerade purpose" -m set --match-set KUBE-CLUSTER-IP dst,dst -j KUBE-MARK-MASQ',
        "-A KUBE-SERVICES -m addrtype --dst-type LOCAL -j KUBE-NODE-PORT",
        "-A KUBE-SERVICES -m set --match-set KUBE-CLUSTER-IP dst,dst -j ACCEPT",
    ]
    assert nat.chains["KUBE-LOAD-BALANCER"] == ["-A KUBE-LOAD-BALANCER -j KUBE-MARK-MASQ"]
    assert nat.chains["KUBE-POSTROUTING"][0].endswith("--match-set KUBE-LOOP-BACK dst,dst,src -j MASQUERADE")
    # the rules parse as the packet tracer understands iptables rules
    for ts in st["kp-worker"].iptables.values():
        for rs in ts.chains.values():
            for r in rs:
                if "-m set" not in r and "physdev" not in r:
                    parse_rule(r)


# ---------------------------------------------------------------- sysctls

def test_sysctls():
    c = cluster_of("basic")
    node = c.nodes[0]
    base = ki.ipvs_state(c, node).sysctls
    assert base == {"net/ipv4/vs/conntrack": "1", "net/ipv4/vs/expire_nodest_conn": "1",
                    "net/ipv4/vs/expire_quiescent_template": "1", "net/ipv4/ip_forward": "1"}
    assert ki.ipvs_state(c, node, kernel=(5, 4)).sysctls["net/ipv4/vs/conn_reuse_mode"] == "0"
    assert "net/ipv4/vs/conn_reuse_mode" not in ki.ipvs_state(c, node, kernel=(6, 18)).sysctls
    assert "net/ipv4/vs/conn_reuse_mode" not in ki.ipvs_state(c, node, kernel=(3, 10)).sysctls
    strict = ki.ipvs_state(c, node, strict_arp=True).sysctls
    assert strict["net/ipv4/conf/all/arp_ignore"] == "1" and strict["net/ipv4/conf/all/arp_announce"] == "2"


# ---------------------------------------------------------------- ipvsadm text and diff

def test_ipvsadm_text_round_trips():
    for name in SCENARIOS:
        for kw in ({}, {"scheduler": "mh"}):
            _, st = states(name, **kw)
            for s in st.values():
                text = ki.ipvsadm_save_text(s.virtual_servers)
                assert ki.parse_ipvsadm_save(text) == s.virtual_servers
                # whatever order the kernel lists them in
                lines = text.splitlines()
                random.Random(2).shuffle(lines)
                shuffled = "\n".join(sorted(lines, key=lambda x: not x.startswith("-A"))) + "\n"
                assert ki.parse_ipvsadm_save(shuffled) == s.virtual_servers


def test_parse_real_ipvsadm_output():
    text = """\
-A -t 10.96.0.1:443 -s rr
-a -t 10.96.0.1:443 -r 172.18.0.2:6443 -m -w 1
-A -u 10.96.0.10:53 -s rr -p 10800
-a -u 10.96.0.10:53 -r 10.244.0.3:53 -m -w 1 -x 100 -y 10
-a -u 10.96.0.10:53 -r 10.244.0.2:53 -m -w 0
-A -f 7 -s wlc
-a -f 7 -r 10.0.0.1:0 -g -w 1
-A --sctp-service 10.96.0.20:9 -s sh -b sh-fallback,sh-port
"""
    vss = ki.parse_ipvsadm_save(text)
    assert [v.key for v in vss] == [("TCP", "10.96.0.1", 443), ("UDP", "10.96.0.10", 53), ("SCTP", "10.96.0.20", 9)]
    assert vss[0].real_servers == [ki.RealServer("172.18.0.2", 6443)]
    assert vss[1].persistent == 10800
    assert vss[1].real_servers == [ki.RealServer("10.244.0.2", 53, 0), ki.RealServer("10.244.0.3", 53)]
    assert vss[2].flags == ("sh-fallback", "sh-port") and vss[2].scheduler == "sh"
    assert ki.parse_ipvsadm_save("") == []


def apply_ops(live: list[ki.VirtualServer], ops) -> list[ki.VirtualServer]:
    """A model of the kernel: what IPVS holds after the ops (errors where the kernel would refuse)."""
    have = {v.key: copy.deepcopy(v) for v in live}
    for op in ops:
        k = op.vs.key
        if isinstance(op, ki.AddService):
            assert k not in have
            have[k] = copy.deepcopy(op.vs)
        elif isinstance(op, ki.EditService):
            have[k] = ki.VirtualServer(*op.vs.key, op.vs.scheduler, op.vs.persistent, op.vs.flags,
                                       have[k].real_servers)
        elif isinstance(op, ki.DelService):
            del have[k]
        else:
            rs = {r.key: r for r in have[k].real_servers}
            if isinstance(op, ki.AddReal):
                assert op.rs.key not in rs
                rs[op.rs.key] = op.rs
            elif isinstance(op, ki.EditReal):
                assert op.rs.key in rs
                rs[op.rs.key] = op.rs
            else:
                del rs[op.rs.key]
            have[k].real_servers = sorted(rs.values(), key=lambda r: r.key)
    return sorted(have.values(), key=lambda v: v.sort_key)


def test_diff_of_equal_states_is_empty_and_from_nothing_adds_everything():
    for name in SCENARIOS:
        _, st = states(name)
        for s in st.values():
            assert ki.ipvs_diff(s.virtual_servers, copy.deepcopy(s.virtual_servers)) == []
            ops = ki.ipvs_diff(s.virtual_servers, [])
            assert len(ops) == len(s.virtual_servers) + sum(len(v.real_servers) for v in s.virtual_servers)
            assert apply_ops([], ops) == s.virtual_servers
            assert ki.ipvsadm_restore_text(ops) == ki.ipvsadm_save_text(s.virtual_servers)
            gone = ki.ipvs_diff([], s.virtual_servers)
            assert all(isinstance(op, ki.DelService) for op in gone) and len(gone) == len(s.virtual_servers)


def test_diff_between_any_two_states_reaches_the_target():
    every = [s for name in SCENARIOS for s in states(name)[1].values()]
    every += [s for s in states("policies", scheduler="mh")[1].values()]
    for a in every:
        for b in every:
            ops = ki.ipvs_diff(b.virtual_servers, a.virtual_servers)
            assert apply_ops(a.virtual_servers, ops) == b.virtual_servers
            first_del = next((i for i, op in enumerate(ops) if isinstance(op, (ki.DelReal, ki.DelService))), len(ops))
            assert all(isinstance(op, (ki.DelReal, ki.DelService)) for op in ops[first_del:])


def test_one_endpoint_change_is_one_add_and_one_delete():
    c = cluster_of("basic")
    node = c.node("kp-worker")
    before = ki.ipvs_state(c, node).virtual_servers
    web = next(s for s in c.services if s.key == "default/web")
    old = web.endpoints["http"][0]
    web.endpoints["http"][0] = Endpoint(ipaddress.ip_address("10.244.1.77"), old.port, old.node, "web-x", "default")
    after = ki.ipvs_state(c, node).virtual_servers
    ops = ki.ipvs_diff(after, ki.parse_ipvsadm_save(ki.ipvsadm_save_text(before)))
    assert [type(op) for op in ops] == [ki.AddReal, ki.DelReal]
    assert ki.ipvsadm_restore_text(ops) == (
        "-a -t 10.96.0.100:80 -r 10.244.1.77:8080 -m -w 1\n"
        f"-d -t 10.96.0.100:80 -r {old.ip}:8080\n")


def test_edits():
    _, st = states("policies")
    want = st["kp-worker"].virtual_servers
    live = copy.deepcopy(want)
    sticky = next(v for v in live if v.address == "10.96.0.112")
    sticky.persistent = None
    sticky.scheduler = "lc"
    sticky.real_servers[0] = ki.RealServer(sticky.real_servers[0].address, sticky.real_servers[0].port, weight=0)
    ops = ki.ipvs_diff(want, live)
    assert [type(op) for op in ops] == [ki.EditService, ki.EditReal]
    assert ops[0].restore_line() == "-E -t 10.96.0.112:80 -s rr -p 600"
    assert ops[1].restore_line().startswith("-e -t 10.96.0.112:80 -r ") and ops[1].restore_line().endswith(" -m -w 1")
    assert ki.DelService(sticky.header()).restore_line() == "-D -t 10.96.0.112:80"


def test_address_diff():
    _, st = states("basic")
    s = st["kp-worker"]
    assert ki.address_diff(s, s.addresses) == ([], [])
    assert ki.address_diff(s, [a.split("/")[0] for a in s.addresses]) == ([], [])
    add, remove = ki.address_diff(s, s.addresses[1:] + ["10.96.9.9/32"])
    assert add == s.addresses[:1] and remove == ["10.96.9.9/32"]


# ---------------------------------------------------------------- the real ipset and iptables (root)

IPT_FLAVOURS = [f for f in ("legacy", "nft")
                if shutil.which(f"iptables-{f}-restore") and shutil.which(f"iptables-{f}-save")]
needs_ipset = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None or shutil.which("ipset") is None,
                                 reason="needs root, unshare and ipset")


def _in_throwaway_netns(script: str, files: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess:
    """Run `script` in a new anonymous network namespace: its ipsets and rules die with it."""
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    return subprocess.run(["unshare", "--net", "sh", "-ec", script], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)


@pytest.mark.root
@needs_ipset
def test_ipset_payloads_load_and_diff_for_real(tmp_path):
    c = cluster_of("external")
    node = c.node("kp-worker")
    before = ki.ipvs_state(c, node)
    c.services = [s for s in c.services if s.key != "apps/ext"]      # a Service with a local endpoint goes away
    after = ki.ipvs_state(c, node)
    p = _in_throwaway_netns("ipset restore < full; ipset save", {"full": ki.ipset_restore_text(before)}, tmp_path)
    assert p.returncode == 0, p.stderr
    assert ki.parse_ipset_save(p.stdout) == before.ipsets
    assert ki.ipset_diff(before, p.stdout) == ""
    diff = ki.ipset_diff(after, p.stdout)
    assert {line.split()[1] for line in diff.splitlines()} == {"KUBE-LOOP-BACK", "KUBE-CLUSTER-IP", "KUBE-EXTERNAL-IP",
                                                            "KUBE-IPVS-IPS"}
    assert all(line.startswith("del ") for line in diff.splitlines())
    p = _in_throwaway_netns("ipset restore < full; ipset restore < diff; ipset save; ipset restore < full;"
                            "ipset restore < destroy; echo ===; ipset save",
                            {"full": ki.ipset_restore_text(before), "diff": diff,
                             "destroy": ki.ipset_destroy_text(p.stdout)}, tmp_path)
    assert p.returncode == 0, p.stderr
    applied, destroyed = p.stdout.split("===\n")
    assert ki.parse_ipset_save(applied) == after.ipsets and ki.ipset_diff(after, applied) == ""
    assert destroyed.strip() == ""


def _kernel_has_xt_ipvs() -> bool:
    """Whether this kernel can load the `ipvs` iptables match (no IPVS modules on some test machines)."""
    try:
        if "ipvs" in Path("/proc/net/ip_tables_matches").read_text().split():
            return True
    except OSError:
        pass
    return subprocess.run(["modprobe", "-q", "xt_ipvs"], capture_output=True).returncode == 0 \
        if shutil.which("modprobe") else False


@pytest.mark.root
@needs_ipset
@pytest.mark.skipif(not IPT_FLAVOURS, reason="needs iptables-{legacy,nft}-restore")
@pytest.mark.parametrize("flavour", IPT_FLAVOURS)
def test_iptables_payloads_round_trip_with_the_sets(flavour, tmp_path):
    """The set-matching rules load once kube-proxy's sets exist, and iptables-save prints them exactly as
    rendered: the next sync changes nothing."""
    for name in sorted(SCENARIOS):
        c = cluster_of(name)
        for node in c.nodes:
            st = ki.ipvs_state(c, node)
            desired = node_rules(c, node)
            if not _kernel_has_xt_ipvs():
                # KUBE-IPVS-OUT-FILTER's `-m ipvs` rules need the kernel's xt_ipvs (the VM lane has it)
                out = desired["filter"].chains["KUBE-IPVS-OUT-FILTER"]
                out[:] = [r for r in out if " -m ipvs " not in r]
            script = f"ipset restore < sets; iptables-{flavour}-restore < rules; iptables-{flavour}-save"
            p = _in_throwaway_netns(script, {"sets": ki.ipset_restore_text(st), "rules": to_restore(desired)}, tmp_path)
            where = f"{name}/{node.name}"
            assert p.returncode == 0, f"{where}: {p.stderr}"
            saved = parse_save(p.stdout)
            for table, ts in desired.items():
                for chain, rules in ts.chains.items():
                    assert saved[table][chain] == rules, f"{where}: {table}/{chain} reads back differently"
                for builtin in {b for b, _ in ts.jumps}:
                    assert saved[table][builtin] == [f"-A {b} {s}" for b, s in ts.jumps if b == builtin]
            assert plan_restore(desired, saved) == ("", [])


def test_strict_arp_from_the_cluster_document():
    """networking.ipvsStrictARP (kube-proxy's ipvs.strictARP) reaches the node's sysctls; the LB IPs stay
    on kube-ipvs0 either way (what makes every node answer ARP for them without it)."""
    from netlab.model.build import build
    from netlab.spec.parse import load_text

    from ..builders import lb_granted
    text = """apiVersion: netlab.dev/v1alpha1
kind: Cluster
name: t
networking: {kubeProxyMode: ipvs, ipvsStrictARP: STRICT}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec: {type: LoadBalancer, loadBalancerIP: 172.18.200.10, selector: {app: web}, ports: [{port: 80}]}
"""
    for strict in (True, False):
        sc = load_text(text.replace("STRICT", str(strict).lower()), "<t>")
        assert sc.networking.ipvs_strict_arp is strict
        c = build(lb_granted(sc), {})
        for node in c.nodes:
            st = ki.ipvs_state(c, node)
            assert ("net/ipv4/conf/all/arp_ignore" in st.sysctls) is strict
            assert st.sysctls.get("net/ipv4/conf/all/arp_announce") == ("2" if strict else None)
            assert "172.18.200.10/32" in st.addresses
            assert ki.ipvs_state(c, node, strict_arp=not strict).sysctls.get("net/ipv4/conf/all/arp_ignore") == \
                ("1" if not strict else None)
    assert load_text(text.replace("ipvsStrictARP: STRICT", ""), "<t>").networking.ipvs_strict_arp is False
    from netlab.errors import SpecError
    with pytest.raises(SpecError, match="ipvsStrictARP"):
        load_text(text.replace("STRICT", "yes-please"), "<t>")
