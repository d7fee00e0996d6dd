"""proxy.sync looks for other proxy modes' leftovers (an nftables table, userspace proxies) in a node once a
process (kube-proxy cleans up other modes when it starts), again on a full sync, a forced one or a mode switch;
never in nodes this run created."""
from __future__ import annotations

import dataclasses

from netlab.dataplane import proxy
from netlab.model.build import build
from netlab.spec.parse import parse_documents


class Fake:
    def __init__(self, name, always_remove):
        self.name, self.always_remove, self.looked = name, always_remove, []

    def prepare(self, cluster, changes):
        pass

    def sync(self, cluster, changes, force, state=None, changed=None, full=False):
        pass

    def remove(self, cluster, changes):
        self.looked.append(sorted(n.name for n in cluster.nodes))


def test_leftovers_are_looked_for_once_a_process(monkeypatch):
    cluster = build(parse_documents([{"apiVersion": "netlab.dev/v1alpha1", "kind": "Cluster", "metadata": {"name": "u"},
                                      "nodes": [{"name": "a"}, {"name": "b"}, {"name": "c"}]}], "<t>"))
    fakes = {"iptables": Fake("iptables", False), "nftables": Fake("nftables", True), "ipvs": Fake("ipvs", False)}
    monkeypatch.setattr(proxy, "backend", lambda m: fakes[m])
    monkeypatch.setattr(proxy.proxymodes, "names", lambda: list(fakes))
    monkeypatch.setattr(proxy, "sync_iptables", lambda *a, **k: None)
    cluster = dataclasses.replace(cluster, networking=dataclasses.replace(cluster.networking, proxy_mode="iptables"))
    nft, ipvs = fakes["nftables"], fakes["ipvs"]

    def sync(**kw):
        proxy.sync(cluster, "iptables-restore", "iptables-save", None, **kw)

    sync()                                 # no state (a one-shot command): every node, every time
    sync()
    assert nft.looked == [["a", "b", "c"]] * 2 and ipvs.looked == []
    state = proxy.SyncState()
    nft.looked.clear()
    sync(state=state, fresh={"c"})         # c was made by this run: nothing to look for there, ever
    sync(state=state)
    sync(state=state)
    assert nft.looked == [["a", "b"]]
    sync(state=state, full=True)           # a full sync looks again
    sync(state=state, force=True)
    assert nft.looked == [["a", "b"], ["a", "b", "c"], ["a", "b", "c"]]
    assert ipvs.looked == [["a", "b", "c"]]      # forced: IPVS state too
    sync(state=state, previous_mode="ipvs")   # a mode switch: the previous mode's state goes
    assert ipvs.looked == [["a", "b", "c"]] * 2 and len(nft.looked) == 3
