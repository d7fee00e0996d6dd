"""The control loop's idle look (netlab/live/audit.py) and the scope of its passes (LiveLab.scope):
what makes an idle lab cost nothing, and what still makes the loop act."""
from __future__ import annotations

import ipaddress
from types import SimpleNamespace

import pytest

from netlab.dataplane.lab import LivePass
from netlab.dataplane.proxy import SyncState
from netlab.live import audit
from netlab.live.sync import LiveLab


def state() -> dict:
    return {
        "proxyMode": "iptables", "iptables": {"flavour": "nft"},
        "nodes": {"n1": {"netns": "nl.x.n1"}, "n2": {"netns": "nl.x.n2"}},
        "pods": {"default/web-1": {"netns": "nl.x.p.web-1", "procs": {}},
                 "default/job-1": {"netns": "nl.x.p.job-1", "procs": {"main": {"pid": 41, "start": "9"}}}},
        "servers": {"n1": {"pid": 40, "start": "7"}, "n2": None},
    }


@pytest.fixture
def kernel(monkeypatch):
    """A kernel as the last pass left it; tests move parts of it."""
    k = SimpleNamespace(netns={"nl.x.n1", "nl.x.n2", "nl.x.p.web-1", "nl.x.p.job-1", "nl.x.underlay"},
                        alive={40, 41}, gen={"nl.x.n1": (5, 100), "nl.x.n2": (6, 200)}, marks={"n1": 1, "n2": -1})
    monkeypatch.setattr(audit.nsfs, "list_netns", lambda: sorted(k.netns))
    monkeypatch.setattr(audit.procs, "alive", lambda rec: rec["pid"] in k.alive)
    monkeypatch.setattr(audit, "node_identity", lambda netns: k.gen.get(netns))
    monkeypatch.setattr(audit, "status_marks", lambda lab, st: dict(k.marks))
    return k


def synced() -> SyncState:
    ps = SyncState()
    ps.node("n1").ipt_ident = (5, 99)        # iptables-nft committed first,
    ps.node("n1").nft_ident = (5, 100)       # then the nftables sync: the generation it left
    ps.node("n2").ipt_ident = (6, 200)
    return ps


def test_nothing_moved_is_nothing_to_do(kernel):
    assert audit.look("x", state(), synced(), {"n1": 1, "n2": -1}) == ""


@pytest.mark.parametrize("move, said", [
    (lambda k: k.netns.discard("nl.x.p.web-1"), "pod default/web-1's namespace is gone"),
    (lambda k: k.netns.discard("nl.x.n2"), "node n2's namespace is gone"),
    (lambda k: k.alive.discard(41), "container main of pod default/job-1 is not running"),
    (lambda k: k.alive.discard(40), "node n1's built-in server is not running"),
    (lambda k: k.marks.update(n1=2), "a built-in server's pods changed (a container exited)"),
    (lambda k: k.gen.update({"nl.x.n1": (5, 101)}), "node n1's rules were changed by another process"),
    (lambda k: k.gen.update({"nl.x.n2": (7, 200)}), "node n2's rules were changed by another process"),
])
def test_what_moved_is_said(kernel, move, said):
    move(kernel)
    assert audit.look("x", state(), synced(), {"n1": 1, "n2": -1}) == said


def test_legacy_tables_are_looked_at_by_their_shapes_and_ipvs_always_gets_a_pass(kernel, monkeypatch):
    st = state()
    st["iptables"]["flavour"] = "legacy"
    shapes = {"nl.x.n1": (5, (("nat", 40, 9000),)), "nl.x.n2": (6, (("nat", 12, 3000),))}
    monkeypatch.setattr(audit, "legacy_identity", lambda netns: shapes.get(netns))
    ps = SyncState()
    ps.node("n1").ipt_ident, ps.node("n2").ipt_ident = shapes["nl.x.n1"], shapes["nl.x.n2"]
    assert audit.look("x", st, ps, {"n1": 1, "n2": -1}) == ""
    shapes["nl.x.n2"] = (6, (("nat", 13, 3100),))     # a rule added by hand
    assert audit.look("x", st, ps, {"n1": 1, "n2": -1}) == "node n2's rules were changed by another process"
    st = dict(state(), proxyMode="ipvs")
    assert "IPVS" in audit.look("x", st, synced(), {"n1": 1, "n2": -1})


def test_a_node_never_synced_by_this_loop_gets_a_pass(kernel):
    ps = synced()
    del ps.nodes["n2"]
    assert audit.look("x", state(), ps, {"n1": 1, "n2": -1}) == "node n2's rules were changed by another process"
    assert audit.look("x", state(), None, {"n1": 1, "n2": -1}) == "no proxy sync recorded yet"


def pod(key: str, uid: str, decided, terminating: bool = False):
    ns, name = key.split("/")
    return SimpleNamespace(key=key, uid=uid, decided_ready=decided, ip=ipaddress.ip_address("10.0.0.1"),
                           terminating=terminating)


def test_a_scoped_pass_listens_only_to_pods_without_a_probe_verdict_that_were_not_ready():
    live = LiveLab.__new__(LiveLab)
    live.proxy_state = None
    cluster = SimpleNamespace(pods=[pod("d/ready", "u1", None), pod("d/unready", "u2", None),
                                    pod("d/probed", "u3", False), pod("d/new-instance", "u5", None),
                                    pod("d/unrecorded", "u6", None)])
    st = {"pods": {"d/ready": {"uid": "u1", "ready": True}, "d/unready": {"uid": "u2", "ready": False},
                   "d/probed": {"uid": "u3", "ready": False}, "d/new-instance": {"uid": "old", "ready": True}}}
    scoped = live.scope(cluster, st, deep=False)
    assert scoped.check == set()
    assert scoped.listen == {"d/unready", "d/new-instance", "d/unrecorded"}
    assert isinstance(scoped.proxy_state, SyncState)
    deep = live.scope(cluster, st, deep=True)
    assert deep == LivePass(proxy_state=scoped.proxy_state)   # everything looked at; the same SyncState
    # a terminating pod is looked at on every pass, ready or not: whether it still serves decides
    # whether kube-proxy's fallback may choose it
    cluster.pods.append(pod("d/leaving", "u7", None, terminating=True))
    st["pods"]["d/leaving"] = {"uid": "u7", "ready": True}
    assert "d/leaving" in live.scope(cluster, st, deep=False).listen
