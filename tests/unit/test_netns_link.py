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
