"""A minimal rtnetlink client for the one hot path of a bring-up: creating a pod's network.

Why not pyroute2 here (it does all other netlink work in netlab): building one pod takes eight fixed
requests, and pyroute2 0.9 spends ~0.4 ms of Python per request on top of the kernel's own work (its
synchronous API runs an asyncio loop per call and encodes messages field by field), about 3 ms a pod -
more than the kernel needs for the whole pod (see the bring-up benchmark in README.md). Here each
request is a few `struct.pack` calls, the pod-side requests go to the kernel in one `send`, and the
replies are read in one pass. Only what the pod path needs is here: no dumps, no decoding beyond the
error code, a link's index and its MAC. The messages are the ones `ip link add ... type veth peer ...
netns`, `ip link set ... type bridge_slave hairpin on`, `ip addr add`, `ip route add default via`,
`ip link set ... address` and `ip neigh change` send;
tests/unit/test_rtnl.py decodes every one with pyroute2's parsers and checks it field by field.
"""
from __future__ import annotations

import ipaddress
import os
import socket
import struct

# netlink / rtnetlink constants (linux/netlink.h, linux/rtnetlink.h, linux/if_link.h)
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLM_F_REQUEST = 0x1
NLM_F_ACK = 0x4
NLM_F_EXCL = 0x200
NLM_F_CREATE = 0x400
RTM_NEWLINK = 16
RTM_DELLINK = 17
RTM_GETLINK = 18
RTM_NEWADDR = 20
RTM_NEWROUTE = 24
RTM_NEWNEIGH = 28
NLM_F_REPLACE = 0x100
NLM_F_APPEND = 0x800
AF_BRIDGE = 7
NTF_SELF = 0x02
NUD_PERMANENT = 0x80
RTA_DST = 1
RTA_OIF = 4
RTNH_F_ONLINK = 4
NDA_DST = 1
NDA_LLADDR = 2
NUD_STALE = 0x04
IFLA_ADDRESS = 1
IFLA_IFNAME = 3
IFLA_MTU = 4
IFLA_MASTER = 10
IFLA_LINKINFO = 18
IFLA_NET_NS_PID = 19
IFLA_INFO_KIND = 1
IFLA_INFO_DATA = 2
IFLA_INFO_SLAVE_KIND = 4
IFLA_INFO_SLAVE_DATA = 5
IFLA_BRPORT_MODE = 4  # hairpin
VETH_INFO_PEER = 1
IFA_ADDRESS = 1
IFA_LOCAL = 2
RTA_GATEWAY = 5
IFF_UP = 0x1
RT_TABLE_MAIN = 254
RTPROT_STATIC = 4  # what pyroute2 sets for a route it adds, so pods look the same either way
RT_SCOPE_UNIVERSE = 0
RTN_UNICAST = 1
NLA_F_NESTED = 0x8000

_HDR = struct.Struct("=IHHII")  # nlmsghdr: len, type, flags, seq, pid
_IFI = struct.Struct("=BxHiII")  # ifinfomsg: family, type, index, flags, change
_IFA = struct.Struct("=BBBBI")  # ifaddrmsg: family, prefixlen, flags, scope, index
_RTM = struct.Struct("=BBBBBBBBI")  # rtmsg
_NDM = struct.Struct("=BxxxiHBB")  # ndmsg: family, ifindex, state, flags, type
_ATTR = struct.Struct("=HH")


def attr(kind: int, payload: bytes) -> bytes:
    n = _ATTR.size + len(payload)
    return _ATTR.pack(n, kind) + payload + b"\0" * (-n % 4)


def nested(kind: int, *attrs: bytes) -> bytes:
    return attr(kind | NLA_F_NESTED, b"".join(attrs))


def strz(kind: int, s: str) -> bytes:
    return attr(kind, s.encode() + b"\0")


def u32(kind: int, v: int) -> bytes:
    return attr(kind, struct.pack("=I", v))


def u8(kind: int, v: int) -> bytes:
    return attr(kind, struct.pack("=B", v))


def ifinfo(index: int = 0, flags: int = 0, change: int = 0) -> bytes:
    return _IFI.pack(socket.AF_UNSPEC, 0, index, flags, change)


# ---- the requests (bodies without the netlink header; `Rtnl.call` adds it)

def veth_create(name: str, peer: str, mtu: int, master: int, peer_netns_pid: int) -> tuple[int, int, bytes]:
    """`ip link add NAME mtu M master BR up type veth peer name PEER mtu M netns PID` in one request."""
    peer_body = ifinfo() + strz(IFLA_IFNAME, peer) + u32(IFLA_MTU, mtu) + u32(IFLA_NET_NS_PID, peer_netns_pid)
    body = (ifinfo(flags=IFF_UP, change=IFF_UP) + strz(IFLA_IFNAME, name) + u32(IFLA_MTU, mtu)
            + u32(IFLA_MASTER, master)
            + nested(IFLA_LINKINFO, strz(IFLA_INFO_KIND, "veth"),
                     nested(IFLA_INFO_DATA, attr(VETH_INFO_PEER, peer_body))))
    return RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, body


def hairpin_on(name: str) -> tuple[int, int, bytes]:
    """`ip link set dev NAME type bridge_slave hairpin on` (the port is named, so no index is needed)."""
    body = (ifinfo() + strz(IFLA_IFNAME, name)
            + nested(IFLA_LINKINFO, strz(IFLA_INFO_SLAVE_KIND, "bridge"),
                     nested(IFLA_INFO_SLAVE_DATA, u8(IFLA_BRPORT_MODE, 1))))
    return RTM_NEWLINK, 0, body


def link_up(name: str) -> tuple[int, int, bytes]:
    return RTM_NEWLINK, 0, ifinfo(flags=IFF_UP, change=IFF_UP) + strz(IFLA_IFNAME, name)


def link_del(index: int) -> tuple[int, int, bytes]:
    """`ip link del dev INDEX` (a veth: both ends go)."""
    return RTM_DELLINK, 0, ifinfo(index)


def get_link(name: str) -> tuple[int, int, bytes]:
    return RTM_GETLINK, 0, ifinfo() + strz(IFLA_IFNAME, name)


def set_address(index: int, mac: bytes) -> tuple[int, int, bytes]:
    """`ip link set dev INDEX address MAC`. Given the MAC the link already has, nothing changes but the
    kernel's NETDEV_CHANGEADDR event, on which a device with arp_notify=1 announces its IPv4 addresses
    (a gratuitous ARP): what a pod's eth0 does once its address is configured."""
    return RTM_NEWLINK, 0, ifinfo(index) + attr(IFLA_ADDRESS, mac)


def address_add(index: int, cidr: str) -> tuple[int, int, bytes]:
    iface = ipaddress.IPv4Interface(cidr)
    raw = iface.ip.packed
    body = (_IFA.pack(socket.AF_INET, iface.network.prefixlen, 0, RT_SCOPE_UNIVERSE, index)
            + attr(IFA_LOCAL, raw) + attr(IFA_ADDRESS, raw))
    return RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, body


def default_route_add(gateway: str) -> tuple[int, int, bytes]:
    body = (_RTM.pack(socket.AF_INET, 0, 0, 0, RT_TABLE_MAIN, RTPROT_STATIC, RT_SCOPE_UNIVERSE, RTN_UNICAST, 0)
            + attr(RTA_GATEWAY, ipaddress.IPv4Address(gateway).packed))
    return RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, body


class RtnlError(OSError):
    """A request the kernel refused: errno and the request's position in its batch."""

    def __init__(self, err: int, position: int):
        super().__init__(err, os.strerror(err))
        self.position = position


class Rtnl:
    """A netlink socket (rtnetlink unless told otherwise) bound to the namespace of the thread that
    opens it, like any socket."""

    def __init__(self, protocol: int = socket.NETLINK_ROUTE) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, protocol)
        self.sock.bind((0, 0))
        self.seq = 0

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> "Rtnl":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def call(self, *requests: tuple[int, int, bytes]) -> list[bytes | None]:
        """Send the requests in one write, each asking for an acknowledgement, and wait for all of them.

        The kernel handles them in order. Returns, per request, the body of its reply message (RTM_GETLINK)
        or None. Raises RtnlError for the first request the kernel refused (the others were still tried).
        """
        out = []
        first = self.seq + 1
        for kind, flags, body in requests:
            self.seq += 1
            out.append(_HDR.pack(_HDR.size + len(body), kind, NLM_F_REQUEST | NLM_F_ACK | flags, self.seq, 0) + body)
        self.sock.send(b"".join(out))
        replies: list[bytes | None] = [None] * len(requests)
        errors: dict[int, int] = {}
        pending = len(requests)
        while pending:
            data = self.sock.recv(65536)
            off = 0
            while off + _HDR.size <= len(data):
                length, kind, _flags, seq, _pid = _HDR.unpack_from(data, off)
                if length < _HDR.size:
                    break
                pos = seq - first
                if 0 <= pos < len(requests):
                    if kind == NLMSG_ERROR:
                        err = -struct.unpack_from("=i", data, off + _HDR.size)[0]
                        if err:
                            errors[pos] = err
                        pending -= 1
                    elif kind != NLMSG_DONE:
                        replies[pos] = data[off + _HDR.size:off + length]
                off += (length + 3) & ~3
        if errors:
            pos = min(errors)
            raise RtnlError(errors[pos], pos)
        return replies


def neigh_refresh(index: int, ip: str, mac: bytes) -> tuple[int, int, bytes]:
    """`ip neigh change IP lladdr MAC nud stale dev INDEX`: an existing entry takes the new MAC (whatever
    its state), to be confirmed on its next use; with no entry the kernel answers ENOENT and makes none."""
    body = (_NDM.pack(socket.AF_INET, index, NUD_STALE, 0, 0) + attr(NDA_DST, ipaddress.IPv4Address(ip).packed)
            + attr(NDA_LLADDR, mac))
    return RTM_NEWNEIGH, NLM_F_REPLACE, body


# ---- the VXLAN peers of a node (flannel.1's neighbour and FDB entries, the routes through it): 3 per peer,
# 30,000 at 100 nodes, where one pyroute2 request each was 14 s of a 10,000-pod bring-up. `Netns` sends them
# in batches through `Rtnl.call`; they are what `ip neigh replace ... nud permanent`, `bridge fdb append
# ... self permanent` and `ip route replace ... via ... dev ... onlink` send (as pyroute2 sends them).

def mac_bytes(mac: str) -> bytes:
    return bytes.fromhex(mac.replace(":", ""))


def neigh_replace(index: int, ip: str, mac: str) -> tuple[int, int, bytes]:
    """`ip neigh replace IP lladdr MAC nud permanent dev INDEX`."""
    body = (_NDM.pack(socket.AF_INET, index, NUD_PERMANENT, 0, 0) + attr(NDA_DST, ipaddress.IPv4Address(ip).packed)
            + attr(NDA_LLADDR, mac_bytes(mac)))
    return RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_REPLACE, body


def fdb_append(index: int, mac: str, dst: str) -> tuple[int, int, bytes]:
    """`bridge fdb append MAC dev INDEX dst DST self permanent` (a VXLAN device's remote for MAC)."""
    body = (_NDM.pack(AF_BRIDGE, index, NUD_PERMANENT, NTF_SELF, 0) + attr(NDA_LLADDR, mac_bytes(mac))
            + attr(NDA_DST, ipaddress.IPv4Address(dst).packed))
    return RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_APPEND, body


def route_replace(dst: str, gateway: str, oif: int | None, onlink: bool) -> tuple[int, int, bytes]:
    """`ip route replace DST via GATEWAY [dev OIF] [onlink]` in the main table, proto static."""
    net = ipaddress.IPv4Network(dst)
    body = (_RTM.pack(socket.AF_INET, net.prefixlen, 0, 0, RT_TABLE_MAIN, RTPROT_STATIC, RT_SCOPE_UNIVERSE,
                      RTN_UNICAST, RTNH_F_ONLINK if onlink else 0)
            + attr(RTA_DST, net.network_address.packed) + attr(RTA_GATEWAY, ipaddress.IPv4Address(gateway).packed)
            + (u32(RTA_OIF, oif) if oif else b""))
    return RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, body


def link_index(reply: bytes) -> int:
    """The ifindex from the body of an RTM_NEWLINK reply."""
    return _IFI.unpack_from(reply)[2]


def link_address(reply: bytes) -> bytes | None:
    """The hardware address (IFLA_ADDRESS) from the body of an RTM_NEWLINK reply, if it has one."""
    off = _IFI.size
    while off + _ATTR.size <= len(reply):
        length, kind = _ATTR.unpack_from(reply, off)
        if length < _ATTR.size:
            break
        if kind & 0x3FFF == IFLA_ADDRESS:
            return reply[off + _ATTR.size:off + length]
        off += (length + 3) & ~3
    return None


# ---- where a cached view of nftables state may be trusted (netlab.dataplane.proxy.nftables.NftablesProxy)

NETLINK_NETFILTER = 12
NFNL_SUBSYS_NFTABLES = 10
NFT_MSG_GETGEN = 16
NFTA_GEN_ID = 1
SO_NETNS_COOKIE = 71  # Linux 5.14


def nft_generation() -> int:
    """The nf_tables ruleset generation of the caller's network namespace.

    The kernel adds one on every committed nftables transaction in the namespace (nft, iptables-nft,
    anyone's), and never otherwise: equal numbers mean nothing in nftables changed in between.
    """
    with Rtnl(NETLINK_NETFILTER) as nl:
        got = nl.call(((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETGEN, 0, struct.pack("=BBH", socket.AF_UNSPEC, 0, 0)))
    reply = got[0]
    if reply is None:
        raise OSError(0, "no reply to NFT_MSG_GETGEN")
    off = 4  # nfgenmsg
    while off + 4 <= len(reply):
        length, kind = _ATTR.unpack_from(reply, off)
        if length < 4:
            break
        if kind & 0x3FFF == NFTA_GEN_ID:
            return struct.unpack_from("!I", reply, off + 4)[0]
        off += (length + 3) & ~3
    raise OSError(0, "NFT_MSG_GETGEN reply without a generation")


def netns_cookie() -> int | None:
    """The caller's network namespace's cookie: unique for the whole boot, never reused (unlike an inode
    number). None on kernels before 5.14."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            return struct.unpack("=Q", s.getsockopt(socket.SOL_SOCKET, SO_NETNS_COOKIE, 8))[0]
        except OSError:
            return None
