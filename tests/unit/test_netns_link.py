"""Netns.link: one link by name without a dump, and what its callers see when the link is missing."""
from __future__ import annotations

import errno

import pytest
from pyroute2.netlink.exceptions import NetlinkError

from netlab.dataplane.netns import Netns
from netlab.errors import KernelError


class FakeIPR:
    """Answers RTM_GETLINK by name: `cni0` exists, anything else is ENODEV; counts the requests."""

    def __init__(self):
        self.asked = []

    def link(self, cmd, ifname):
        assert cmd == "get"
        self.asked.append(ifname)
        if ifname != "cni0":
            raise NetlinkError(errno.ENODEV, "No such device")
        return [{"index": 7, "flags": 1, "attrs": []}]

    def get_links(self):
        raise AssertionError("no dump when single links are asked for")


class Msg(dict):
    def get(self, key, default=None):
        if key in ("index", "flags"):
            return self[key]
        return {"IFLA_IFNAME": "cni0", "IFLA_MTU": 1500}.get(key, default)


def netns() -> Netns:
    ns = Netns.__new__(Netns)
    ns.name, ns.ipr, ns._links, ns._one = "nl.t.node.n1", FakeIPR(), None, {}
    ns.ipr.link = (lambda real: lambda cmd, ifname: [Msg(m) for m in real(cmd, ifname)])(ns.ipr.link)
    return ns


def test_a_link_is_asked_for_once_by_name_and_a_missing_one_is_none():
    ns = netns()
    assert ns.link("cni0")["index"] == 7 and ns.link("cni0")["mtu"] == 1500
    assert ns.link("eth0") is None and ns.link("eth0") is None
    assert ns.ipr.asked == ["cni0", "eth0"]   # each asked once, no dump


def test_ensure_up_of_a_missing_link_is_a_key_error_naming_it():
    """node_fabric_drift's read-only reconcile reports a missing link from this KeyError."""
    with pytest.raises(KeyError) as e:
        netns().ensure_up("cni1", changes=None)
    assert e.value.args == ("cni1",)


def test_index_of_a_missing_link_names_it_and_the_namespace(monkeypatch):
    ns = netns()
    monkeypatch.setattr(ns, "links", lambda refresh=False: {})
    with pytest.raises(KernelError, match="link eth0 is missing in network namespace nl.t.node.n1"):
        ns.index("eth0")


def test_route_exceptions_are_not_routes():
    """A dump without strict checking lists the kernel's route exceptions (RTM_F_CLONED: a PMTU that tunl0
    learnt for an inner destination) beside the routes: they are not routes, and deleting one fails (ESRCH)."""
    class Route(dict):
        def get(self, key, default=None):
            return dict.get(self, key, default)

    class IPR:
        def get_routes(self, family, table):
            return [Route(RTA_DST="10.244.2.0", dst_len=24, RTA_GATEWAY="172.19.0.2", RTA_OIF=5, flags=4, proto=4),
                    Route(RTA_DST="10.244.2.0", dst_len=32, RTA_GATEWAY="172.19.0.2", RTA_OIF=5, flags=0x200,
                          proto=4)]
    ns = Netns.__new__(Netns)
    ns.name, ns.ipr = "nl.t.node.n1", IPR()
    assert list(ns.routes()) == ["10.244.2.0/24"] and ns.routes()["10.244.2.0/24"]["onlink"]
