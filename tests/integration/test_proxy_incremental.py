"""Incremental proxy syncs on a real lab: a SyncState kept across syncs (as a control loop keeps it) renders
and sends only the changed Service, traffic follows at once, and a foreign change to the node's rules is
repaired by the next sync (or by the periodic full sync)."""
from __future__ import annotations


import pytest

from netlab.dataplane import iptables as ipt
from netlab.dataplane import proxy
from netlab.dataplane.changes import Changes
from netlab.dataplane.proxy.syncstate import SyncState
from netlab.render import kubeproxy_iptables as kp
from netlab.render import kubeproxy_nftables as kn
from netlab.render.iptables import node_rules

from ..builders import cluster, container, deployment, pod, service, text, workers
from .test_services import many

CASES = [("iptables", "nft"), ("iptables", "legacy"), ("nftables", "auto")]


def scenario(mode: str, flavour: str) -> str:
    return text(
        cluster("inc", workers("n1", "n2"), kubeProxyMode=mode, iptablesFlavour=flavour),
        deployment("web", 3, containers=[container("web", [(8080, "http")])]),
        service("web", [{"name": "http", "port": 80, "targetPort": "http"}]),
        service("other", [{"name": "http", "port": 80, "targetPort": "http"}], {"app": "web"}),
        pod("client", containers=[container("c", [8080])], nodeName="n2"))


def kernel_matches_full_render(lab, save: str) -> None:
    """Every node's rules read back from the kernel are what a full render wants (nothing to send), apart
    from chains a partial nftables sync flushed and leaves for a later sync to delete."""
    c = lab.cluster
    for node in c.nodes:
        current = ipt.parse_save(lab.node_exec(node.name, [save]).stdout)
        assert ipt.plan_restore(node_rules(c, node), current)[0] == "", node.name
        if c.networking.proxy_mode == "nftables":
            listing = lab.node_exec(node.name, ["nft", "-j", "list", "table", "ip", "kube-proxy"]).stdout
            live = kn.parse_nft_json(listing)
            rest = kn.diff_script(kn.desired_objects(c, node, choice=c.networking.nft_choice), live)
            assert all(x.startswith("delete chain") for x in rest.splitlines()), rest


def answers(lab) -> set[str]:
    ip = next(s.cluster_ip for s in lab.cluster.services if s.name == "web")
    got = many(lab, ("pod", "client"), ip, 80, n=30)
    assert not [a for a in got if a.startswith("ERR")], got
    return set(got)


@pytest.mark.parametrize("mode,flavour", CASES, ids=[f"{m}-{f}" for m, f in CASES])
def test_incremental_sync_follows_endpoints_and_repairs_tampering(lab, mode, flavour):
    lab.control_loop = False  # this test drives the proxy syncs itself: no control loop syncing meanwhile
    lab.up(scenario(mode, flavour))
    _, restore, save = ipt.flavour_commands(lab.result.flavour)
    c = lab.cluster
    clock = [0.0]
    state = SyncState(full_sync_period=60, write_records=False, clock=lambda: clock[0])

    def sync(changed=None) -> None:
        proxy.sync(c, restore, save, Changes(), state=state, changed=changed)

    def counts(what: str) -> tuple[int, int]:
        return (sum(n.full_syncs.get(what, 0) for n in state.nodes.values()),
                sum(n.partial_syncs.get(what, 0) for n in state.nodes.values()))

    what = "nftables" if mode == "nftables" else "iptables"
    # every flavour has a foreign-change detector now (legacy: the tables' shapes, see xtables_info)
    sync()                                                             # the state's first sync: a full one
    assert counts(what) == (2, 0)
    web = sorted(p.name for p in lab.pods("web-"))
    assert answers(lab) == set(web)

    # one endpoint leaves the Service: only that Service is rendered again, the traffic follows at once
    svc = next(s for s in c.services if s.name == "web")
    gone = next(e for e in svc.endpoints["http"] if e.pod == web[0])
    svc.endpoints["http"].remove(gone)
    sync()
    if what == "iptables":
        assert all(n.ipt_memo.rendered == 1 for n in state.nodes.values())
    assert counts(what) == (2, 2)
    assert answers(lab) == set(web[1:])
    kernel_matches_full_render(lab, save)

    # and comes back, told by a hint (what a control loop fed by the store's events knows)
    svc.endpoints["http"].append(gone)
    sync(changed={svc.key})
    assert answers(lab) == set(web)
    kernel_matches_full_render(lab, save)

    # somebody else breaks the Service on every node: the next sync notices and repairs it, model unchanged
    for node in c.nodes:
        if what == "nftables":
            chain = "service-" + kn.service_chain_base("default", "web", "tcp", "http")
            argv = ["nft", "flush", "chain", "ip", "kube-proxy", chain]
        else:
            argv = [f"iptables-{lab.result.flavour}", "-t", "nat", "-F", kp.svc_chain("default/web:http", "TCP")]
        r = lab.node_exec(node.name, argv)
        assert r.returncode == 0, r.stderr
    ip = next(s.cluster_ip for s in c.services if s.name == "web")
    r = lab.pod_exec("client", ["curl", "-sS", "--max-time", "2", f"http://{ip}/hostname"])
    assert r.returncode != 0, "the tampering should have broken the Service"
    full_before = counts(what)[0]
    sync()
    assert counts(what)[0] == full_before + 2                          # a full sync on both nodes
    assert answers(lab) == set(web)
    kernel_matches_full_render(lab, save)

    # the periodic full sync: nothing changed, but the period is over
    sync()
    assert counts(what)[0] == full_before + 2
    clock[0] += 61
    sync()
    assert counts(what)[0] == full_before + 4
