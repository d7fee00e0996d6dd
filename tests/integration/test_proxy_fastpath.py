"""The incremental proxy sync's fast path on real nodes, in iptables-legacy and nftables mode: with a
SyncState kept across syncs, a one-endpoint change is sent without reading the node back and reaches the
kernel; a rule added or removed by hand is noticed by the very next sync (the legacy tables' shapes, the
nf_tables generation), which reads the node back and repairs it, without waiting for the periodic full
sync; and `full=True` asks for that full sync at once."""
from __future__ import annotations

import re

import pytest

from netlab.dataplane import iptables as ipt
from netlab.dataplane import proxy
from netlab.dataplane.changes import Changes
from netlab.dataplane.proxy.syncstate import SyncState
from netlab.render import kubeproxy_iptables as kp
from netlab.render import kubeproxy_nftables as kn

from ..builders import cluster, container, deployment, service, text, workers

CASES = [("iptables", "legacy"), ("nftables", "legacy")]


def scenario(mode: str, flavour: str) -> str:
    return text(
        cluster("fast", workers("n1", "n2"), kubeProxyMode=mode, iptablesFlavour=flavour),
        deployment("web", 3, containers=[container("web", [(8080, "http")])]),
        service("web", [{"name": "http", "port": 80, "targetPort": "http"}]))


@pytest.mark.parametrize("mode,flavour", CASES, ids=[m for m, _ in CASES])
def test_fast_path_sends_changes_and_notices_hand_made_rules(lab, mode, flavour):
    lab.control_loop = False     # this test drives the proxy syncs itself: no control loop syncing meanwhile
    lab.up(scenario(mode, flavour))
    assert lab.result.flavour == "legacy"
    _, restore, save = ipt.flavour_commands("legacy")
    c = lab.cluster
    clock = [0.0]                # the periodic full sync never comes by itself here
    state = SyncState(full_sync_period=3600, write_records=False, clock=lambda: clock[0])
    what = "nftables" if mode == "nftables" else "iptables"

    def sync(**kw) -> None:
        proxy.sync(c, restore, save, Changes(), state=state, **kw)

    def counts() -> tuple[int, int]:
        return (sum(n.full_syncs.get(what, 0) for n in state.nodes.values()),
                sum(n.partial_syncs.get(what, 0) for n in state.nodes.values()))

    def rules(node: str) -> str:
        if what == "nftables":
            r = lab.node_exec(node, ["nft", "list", "table", "ip", "kube-proxy"])
        else:
            r = lab.node_exec(node, ["iptables-legacy-save", "-t", "nat"])
        assert r.returncode == 0, r.stderr
        return r.stdout

    def dnat(ep) -> str:
        return f"dnat to {ep.ip}:{ep.port}" if what == "nftables" else f"--to-destination {ep.ip}:{ep.port}"

    sync()
    assert counts() == (2, 0)                                   # the state's first sync: a full one
    sync()
    assert counts() == (2, 2)                                   # nothing changed, nobody else wrote: trusted

    # (a) one endpoint leaves: sent on the fast path, and the kernel shows it at once
    svc = next(s for s in c.services if s.name == "web")
    gone = svc.endpoints["http"][0]
    kept = svc.endpoints["http"][1:]
    svc.endpoints["http"].remove(gone)
    sync(changed={svc.key})
    assert counts() == (2, 4)
    for node in c.nodes:
        now = rules(node.name)
        assert dnat(gone) not in now, node.name
        assert all(dnat(ep) in now for ep in kept), node.name

    if what == "nftables":
        chain = "service-" + kn.service_chain_base("default", "web", "tcp", "http")

        def add_rule(node: str) -> list[str]:
            return ["nft", "insert", "rule", "ip", "kube-proxy", chain, "drop"]

        def remove_rule(node: str) -> list[str]:
            listing = lab.node_exec(node, ["nft", "-a", "list", "chain", "ip", "kube-proxy", chain]).stdout
            handle = re.findall(r"goto .*# handle (\d+)", listing)[0]
            return ["nft", "delete", "rule", "ip", "kube-proxy", chain, "handle", handle]

        def tampered(node: str, now: str) -> bool:
            return "drop" in chain_rules(now)

        def chain_rules(now: str) -> list[str]:
            body = now.split(f"chain {chain} {{", 1)[1].split("}", 1)[0]
            return [line.strip() for line in body.splitlines() if line.strip()]
    else:
        chain = kp.svc_chain("default/web:http", "TCP")

        def add_rule(node: str) -> list[str]:
            return ["iptables-legacy", "-t", "nat", "-I", chain, "1", "-j", "RETURN"]

        def remove_rule(node: str) -> list[str]:
            return ["iptables-legacy", "-t", "nat", "-D", chain, "1"]

        def tampered(node: str, now: str) -> bool:
            return f"-A {chain} -j RETURN" in now

        def chain_rules(now: str) -> list[str]:
            return [line for line in now.splitlines() if line.startswith(f"-A {chain} ")]

    # (b) a rule added by hand, then a rule removed by hand: the next sync notices (a full sync on every
    # node, though the period is far from over and the model did not change) and puts the rules back
    for change, broken in ((add_rule, True), (remove_rule, False)):
        before = {node.name: rules(node.name) for node in c.nodes}
        for node in c.nodes:
            r = lab.node_exec(node.name, change(node.name))
            assert r.returncode == 0, r.stderr
            now = rules(node.name)
            assert now != before[node.name]
            assert tampered(node.name, now) == broken
        full, partial = counts()
        sync(changed=set())                                     # told that nothing changed in the model
        assert counts() == (full + 2, partial), change.__name__
        for node in c.nodes:
            now = rules(node.name)
            assert not tampered(node.name, now)
            assert all(dnat(ep) in now for ep in kept) and dnat(gone) not in now
            assert chain_rules(now) == chain_rules(before[node.name]), node.name
        sync(changed=set())
        assert counts() == (full + 2, partial + 2)              # repaired: trusted again

    # the caller asks for the periodic full sync itself
    full, partial = counts()
    sync(full=True)
    assert counts() == (full + 2, partial)

    # a full sync does not take the caller's hint at its word: an endpoint that came back while the
    # caller said nothing changed is missed by the partial sync, and sent by the next full one
    svc.endpoints["http"].insert(0, gone)
    sync(changed=set())
    assert all(dnat(gone) not in rules(node.name) for node in c.nodes)
    sync(changed=set(), full=True)
    assert all(dnat(gone) in rules(node.name) for node in c.nodes)
