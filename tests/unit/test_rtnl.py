"""netlab.dataplane.rtnl builds its few requests by hand: decode each with pyroute2's parsers and check
every field, so a packing mistake cannot hide. (tests/integration/test_fabric.py checks what the kernel
made of them.)"""
from __future__ import annotations

import struct

import pytest
from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
from pyroute2.netlink.rtnl.rtmsg import rtmsg

from netlab.dataplane import rtnl


def decode(parser, request):
    kind, flags, body = request
    data = struct.pack("=IHHII", 16 + len(body), kind, rtnl.NLM_F_REQUEST | rtnl.NLM_F_ACK | flags, 7, 0) + body
    msg = parser(data)
    msg.decode()
    assert msg["header"]["length"] == len(data)
    return msg


def test_veth_create():
    m = decode(ifinfmsg, rtnl.veth_create("veth1234abcd", "eth0", 1450, 5, 4321))
    assert m["header"]["type"] == rtnl.RTM_NEWLINK
    assert m["header"]["flags"] & (rtnl.NLM_F_CREATE | rtnl.NLM_F_EXCL) == rtnl.NLM_F_CREATE | rtnl.NLM_F_EXCL
    assert (m["index"], m["flags"], m["change"]) == (0, 1, 1)  # up
    assert m.get("IFLA_IFNAME") == "veth1234abcd"
    assert m.get("IFLA_MTU") == 1450 and m.get("IFLA_MASTER") == 5
    info = m.get("IFLA_LINKINFO")
    assert info.get("IFLA_INFO_KIND") == "veth"
    peer = info.get("IFLA_INFO_DATA").get("VETH_INFO_PEER")
    assert peer.get("IFLA_IFNAME") == "eth0" and peer.get("IFLA_MTU") == 1450
    assert peer.get("IFLA_NET_NS_PID") == 4321 and peer["index"] == 0


@pytest.mark.parametrize("name", ["a", "ab", "abc", "abcd", "veth0123456789a"])  # every padding
def test_names_are_nul_terminated_and_padded(name):
    m = decode(ifinfmsg, rtnl.link_up(name))
    assert m.get("IFLA_IFNAME") == name and (m["flags"], m["change"]) == (1, 1)
    assert len(rtnl.strz(rtnl.IFLA_IFNAME, name)) % 4 == 0


def test_hairpin():
    m = decode(ifinfmsg, rtnl.hairpin_on("veth1"))
    assert m["header"]["flags"] & rtnl.NLM_F_CREATE == 0  # a change, never a creation
    assert m.get("IFLA_IFNAME") == "veth1" and m["flags"] == 0 and m["change"] == 0
    info = m.get("IFLA_LINKINFO")
    assert info.get("IFLA_INFO_SLAVE_KIND") == "bridge"
    assert info.get("IFLA_INFO_SLAVE_DATA").get("IFLA_BRPORT_MODE") == 1


def test_get_link():
    m = decode(ifinfmsg, rtnl.get_link("eth0"))
    assert m["header"]["type"] == rtnl.RTM_GETLINK and m.get("IFLA_IFNAME") == "eth0"


def test_address():
    m = decode(ifaddrmsg, rtnl.address_add(3, "10.244.1.5/24"))
    assert m["header"]["type"] == rtnl.RTM_NEWADDR
    assert (m["family"], m["prefixlen"], m["scope"], m["index"]) == (2, 24, 0, 3)
    assert m.get("IFA_LOCAL") == "10.244.1.5" and m.get("IFA_ADDRESS") == "10.244.1.5"


def test_default_route():
    m = decode(rtmsg, rtnl.default_route_add("10.244.1.1"))
    assert m["header"]["type"] == rtnl.RTM_NEWROUTE
    assert (m["family"], m["dst_len"], m["table"], m["proto"], m["scope"], m["type"]) == (2, 0, 254, 4, 0, 1)
    assert m.get("RTA_GATEWAY") == "10.244.1.1" and m.get("RTA_DST") is None


def test_link_index_from_a_reply():
    body = struct.pack("=BxHiII", 0, 1, 42, 0, 0)
    assert rtnl.link_index(body) == 42


def test_set_address():
    m = decode(ifinfmsg, rtnl.set_address(7, bytes.fromhex("0a58c0a80102")))
    assert m["header"]["type"] == rtnl.RTM_NEWLINK and m["header"]["flags"] == rtnl.NLM_F_REQUEST | rtnl.NLM_F_ACK
    assert m["index"] == 7 and m.get("IFLA_ADDRESS") == "0a:58:c0:a8:01:02"


def test_neigh_refresh_changes_only_an_existing_entry():
    from pyroute2.netlink.rtnl.ndmsg import ndmsg
    m = decode(ndmsg, rtnl.neigh_refresh(4, "10.244.1.5", bytes.fromhex("0a58c0a80102")))
    assert m["header"]["type"] == rtnl.RTM_NEWNEIGH
    # replace, never create
    assert m["header"]["flags"] == rtnl.NLM_F_REQUEST | rtnl.NLM_F_ACK | rtnl.NLM_F_REPLACE
    assert (m["family"], m["ifindex"], m["state"], m["flags"], m["ndm_type"]) == (2, 4, rtnl.NUD_STALE, 0, 0)
    assert m.get("NDA_DST") == "10.244.1.5" and m.get("NDA_LLADDR") == "0a:58:c0:a8:01:02"


def test_link_address_from_a_reply():
    mac = bytes.fromhex("0a58c0a80102")
    body = (struct.pack("=BxHiII", 0, 1, 42, 0, 0) + rtnl.strz(rtnl.IFLA_IFNAME, "eth0")
            + rtnl.attr(rtnl.IFLA_ADDRESS, mac))
    assert rtnl.link_address(body) == mac
    assert rtnl.link_address(struct.pack("=BxHiII", 0, 1, 42, 0, 0)) is None


def test_neigh_replace_is_a_permanent_entry():
    from pyroute2.netlink.rtnl.ndmsg import ndmsg
    m = decode(ndmsg, rtnl.neigh_replace(9, "10.244.3.0", "0a:58:0a:f4:03:00"))
    assert m["header"]["type"] == rtnl.RTM_NEWNEIGH
    assert m["header"]["flags"] == rtnl.NLM_F_REQUEST | rtnl.NLM_F_ACK | rtnl.NLM_F_CREATE | rtnl.NLM_F_REPLACE
    assert (m["family"], m["ifindex"], m["state"], m["flags"], m["ndm_type"]) == (2, 9, 0x80, 0, 0)
    assert m.get("NDA_DST") == "10.244.3.0" and m.get("NDA_LLADDR") == "0a:58:0a:f4:03:00"


def test_fdb_append_is_a_vxlan_remote():
    from pyroute2.netlink.rtnl.ndmsg import ndmsg
    m = decode(ndmsg, rtnl.fdb_append(9, "0a:58:0a:f4:03:00", "172.18.0.5"))
    assert m["header"]["type"] == rtnl.RTM_NEWNEIGH
    assert m["header"]["flags"] == rtnl.NLM_F_REQUEST | rtnl.NLM_F_ACK | rtnl.NLM_F_CREATE | rtnl.NLM_F_APPEND
    assert (m["family"], m["ifindex"], m["state"], m["flags"], m["ndm_type"]) == (7, 9, 0x80, 0x02, 0)
    assert m.get("NDA_LLADDR") == "0a:58:0a:f4:03:00" and m.get("NDA_DST") == "172.18.0.5"


@pytest.mark.parametrize("oif,onlink", [(6, True), (None, False)])
def test_route_replace(oif, onlink):
    m = decode(rtmsg, rtnl.route_replace("10.244.3.0/24", "10.244.3.0", oif, onlink))
    assert m["header"]["type"] == rtnl.RTM_NEWROUTE
    assert m["header"]["flags"] == rtnl.NLM_F_REQUEST | rtnl.NLM_F_ACK | rtnl.NLM_F_CREATE | rtnl.NLM_F_REPLACE
    assert (m["family"], m["dst_len"], m["table"], m["proto"], m["scope"], m["type"]) == (2, 24, 254, 4, 0, 1)
    assert m["flags"] == (4 if onlink else 0)
    assert m.get("RTA_DST") == "10.244.3.0" and m.get("RTA_GATEWAY") == "10.244.3.0"
    assert m.get("RTA_OIF") == oif
