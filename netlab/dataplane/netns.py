"""One network namespace seen through netlink: `Netns` (a pyroute2 socket bound to the namespace, with
the idempotent link, address, route, neighbour and FDB operations the fabric needs), the fast-path
request helper over `rtnl`, the errors that name the namespace, and sysctls written inside a namespace.
"""
from __future__ import annotations

import errno
import functools
import ipaddress
import os
from typing import Callable

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from ..errors import KernelError
from ..render.fabric import POD_ETH0_SYSCTLS, POD_SYSCTLS
from . import rtnl
from .rtnl import AF_BRIDGE, NTF_SELF, NUD_PERMANENT, RTNH_F_ONLINK
from .changes import Change, Changes
from .procsys import PROC_SYS

IFF_UP = 1
RTM_F_CLONED = 0x200   # a route exception (a PMTU learnt, e.g. by tunl0 for the inner destinations), not a route
RTPROT_BIRD = 12     # rtnetlink.h: routes a BIRD daemon installed


def kernel_error(e: Exception, what: str, netns: str) -> KernelError:
    if isinstance(e, NetlinkError):
        reason = os.strerror(e.code) if e.code > 0 else str(e)
    elif isinstance(e, OSError):
        reason = e.strerror or str(e)
    else:
        reason = str(e)
    return KernelError(f"{what} in network namespace {netns}: {reason}")


class Netns:
    """A netlink socket bound to one namespace, with the few idempotent operations netlab needs."""

    def __init__(self, name: str, ipr: IPRoute):
        self.name, self.ipr = name, ipr
        self._links: dict[str, dict] | None = None
        self._one: dict[str, dict | None] = {}     # links asked for by name (`link`) while there is no dump
        self._raw: rtnl.Rtnl | None = None

    def close(self) -> None:
        self.ipr.close()
        if self._raw is not None:
            self._raw.close()

    def open_raw(self) -> None:
        """Open the fast-path socket too; call it on a thread that is inside this namespace."""
        if self._raw is None:
            self._raw = rtnl.Rtnl()

    def raw(self, *steps: tuple[str, tuple[int, int, bytes]]) -> list[bytes | None]:
        """Send (what, request) steps in one write through the fast path; errors name the failed step."""
        assert self._raw is not None, "open_raw() first"
        return raw_call(self._raw, self.name, steps)

    def raw_index(self, ifname: str) -> int | None:
        """One link's index by name through the fast path, None if there is none (a pod's veth looked for
        before it is made: through pyroute2 that look was about a millisecond, a tenth of a pod)."""
        assert self._raw is not None, "open_raw() first"
        try:
            reply = self._raw.call(rtnl.get_link(ifname))[0]
        except rtnl.RtnlError as e:
            if e.errno == errno.ENODEV:
                return None
            raise kernel_error(e, f"read link {ifname}", self.name) from None
        return rtnl.link_index(reply) if reply else None

    def refresh_neighbour(self, index: int, ip: str, mac: bytes) -> None:
        """Give an existing neighbour entry for `ip` on link `index` the MAC `mac` (no entry: nothing)."""
        assert self._raw is not None, "open_raw() first"
        try:
            self._raw.call(rtnl.neigh_refresh(index, ip, mac))
        except rtnl.RtnlError as e:
            if e.errno != errno.ENOENT:
                raise kernel_error(e, f"set the neighbour entry of {ip}", self.name) from None

    BATCH = 64   # requests a write: their acknowledgements must fit in the socket's receive buffer

    def _do_many(self, steps: list[tuple[str, tuple[int, int, bytes], Callable[[], object]]]) -> None:
        """Many changes: (what, fast-path request, the same through pyroute2). Sent in batches through the
        fast path when it is open (this thread is in the namespace), else one by one through pyroute2."""
        if self._raw is None:
            for what, _, slow in steps:
                self._do(what, slow)
            return
        for i in range(0, len(steps), self.BATCH):
            self.raw(*((what, req) for what, req, _ in steps[i:i + self.BATCH]))

    def _do(self, what: str, fn: Callable, *args, **kwargs):
        """A netlink request that changes the namespace (errors name `what` and the namespace)."""
        try:
            return fn(*args, **kwargs)
        except (NetlinkError, OSError) as e:
            raise kernel_error(e, what, self.name) from None

    def _read(self, what: str, fn: Callable, *args, **kwargs):
        """A netlink request that only reads (a dump); the same error handling as `_do`."""
        return Netns._do(self, what, fn, *args, **kwargs)

    # ---- links
    def links(self, refresh: bool = False) -> dict[str, dict]:
        """Every link of the namespace (one dump, kept until `refresh`)."""
        if self._links is None or refresh:
            self._links = {}
            self._one = {}
            for msg in self._read("list links", self.ipr.get_links):
                self._links[msg.get("IFLA_IFNAME")] = _link_view(msg)
        return self._links

    def link(self, ifname: str) -> dict | None:
        """One link by name, or None: from the dump if one was made, else one request for it alone (a
        node's namespace holds a veth per pod: decoding a dump of them costs about 1 ms a link, so a
        control loop's pass that needs only cni0, eth0 and lo asks for those)."""
        if self._links is not None:
            return self._links.get(ifname)
        if ifname not in self._one:
            self._one[ifname] = self.fetch(ifname)
        return self._one[ifname]

    def fetch(self, ifname: str) -> dict | None:
        """One request for one link as it is now, not cached (None: there is none)."""
        try:
            msgs = self.ipr.link("get", ifname=ifname)
        except NetlinkError as e:
            if e.code != errno.ENODEV:
                raise kernel_error(e, f"read link {ifname}", self.name) from None
            msgs = []
        return _link_view(msgs[0]) if msgs else None

    def reload(self, ifname: str) -> dict | None:
        """Read one link again (just made or changed), keeping the rest of the dump: an underlay with a
        veth per node dumped again after each new node was seconds at 100 nodes."""
        view = self.fetch(ifname)
        if self._links is None:
            self._one[ifname] = view
        elif view is None:
            self._links.pop(ifname, None)
        else:
            self._links[ifname] = view
        return view

    def _must(self, ifname: str) -> dict:
        """The link, or KeyError(ifname) (a read-only check, fabric.node_fabric_drift, reports that the
        link is missing)."""
        link = self.link(ifname)
        if link is None:
            raise KeyError(ifname)
        return link

    def index(self, ifname: str) -> int:
        link = self.link(ifname) or self.links(refresh=True).get(ifname)
        if link is None:
            raise KernelError(f"link {ifname} is missing in network namespace {self.name}")
        return link["index"]

    def ensure_up(self, ifname: str, changes: Changes, mtu: int | None = None) -> None:
        link = self._must(ifname)
        if mtu is not None and link["mtu"] != mtu:
            self._do(f"set mtu {mtu} on {ifname}", self.ipr.link, "set", index=link["index"], mtu=mtu)
            changes.add(Change("link", ifname, "update", f"mtu {mtu} on {ifname}", self.name))
        if not link["up"]:
            self._do(f"set {ifname} up", self.ipr.link, "set", index=link["index"], state="up")
            changes.add(Change("link", ifname, "update", f"{ifname} up", self.name))

    def ensure_down(self, ifname: str, changes: Changes) -> None:
        link = self._must(ifname)
        if link["up"]:
            self._do(f"set {ifname} down", self.ipr.link, "set", index=link["index"], state="down")
            changes.add(Change("link", ifname, "update", f"{ifname} down", self.name))

    def ensure_bridge(self, ifname: str, changes: Changes, mtu: int | None = None, mac: str | None = None) -> int:
        """`mac`: the bridge's own address, set once: a bridge without one takes the lowest MAC of its
        ports and changes it when that port goes, which strands the gateway neighbour entries its pods
        hold (their traffic to other nodes is lost until they resolve the gateway again)."""
        link = self.link(ifname)
        if link is not None and link["kind"] != "bridge":
            self._do(f"delete incompatible {ifname} ({link['kind']})", self.ipr.link, "del", index=link["index"])
            changes.add(Change("link", ifname, "remove", f"removed {ifname}, a {link['kind']} where a bridge "
                               "belongs", self.name))
            link = None
        if link is None:
            kw = {"mtu": mtu} if mtu else {}
            if mac:
                kw["address"] = mac
            self._do(f"create bridge {ifname}", self.ipr.link, "add", ifname=ifname, kind="bridge", **kw)
            changes.add(Change("link", ifname, "create", f"bridge {ifname}", self.name))
            self.links(refresh=True)
        elif mac and (link.get("mac") or "").lower() != mac.lower():
            self._do(f"set {ifname} address {mac}", self.ipr.link, "set", index=link["index"], address=mac)
            changes.add(Change("link", ifname, "update", f"{ifname} address {mac}", self.name))
            self.links(refresh=True)
        self.ensure_up(ifname, changes)
        return self.index(ifname)

    def ensure_addresses(self, ifname: str, cidrs: list[str], changes: Changes, exclusive: bool = True) -> None:
        idx = self.index(ifname)
        have = set()
        for msg in self._read(f"list addresses of {ifname}", self.ipr.get_addr, index=idx, family=2):
            have.add(f"{msg.get('IFA_ADDRESS')}/{msg['prefixlen']}")
        want = set(cidrs)
        for cidr in sorted(want - have):
            ip, plen = cidr.split("/")
            self._do(f"add address {cidr} to {ifname}", self.ipr.addr, "add", index=idx, address=ip,
                     prefixlen=int(plen))
            changes.add(Change("address", cidr, "create", f"address {cidr} on {ifname}", self.name))
        if exclusive:
            for cidr in sorted(have - want):
                ip, plen = cidr.split("/")
                self._do(f"delete address {cidr} from {ifname}", self.ipr.addr, "del", index=idx, address=ip,
                         prefixlen=int(plen))
                changes.add(Change("address", cidr, "remove", f"removed stray address {cidr} from {ifname}",
                                   self.name))

    # ---- routes, neighbours, fdb
    def routes(self) -> dict[str, dict]:
        out = {}
        for msg in self._read("list routes", self.ipr.get_routes, family=2, table=254):
            if msg["flags"] & RTM_F_CLONED:   # (a dump without strict checking has them too; not deletable)
                continue
            dst = msg.get("RTA_DST")
            key = f"{dst}/{msg['dst_len']}" if dst else "default"
            out[key] = {"gateway": msg.get("RTA_GATEWAY"), "oif": msg.get("RTA_OIF"),
                        "onlink": bool(msg["flags"] & RTNH_F_ONLINK), "proto": msg["proto"]}
        return out

    def ensure_routes(self, routes: list, changes: Changes, owned: list[ipaddress.IPv4Network]) -> None:
        """Add or fix every desired route; delete routes inside `owned` networks that are not desired."""
        have = self.routes()
        want = {}
        for r in routes:
            want[r.dst] = r
        batch: list = []
        for dst, r in want.items():
            oif = self.index(r.dev) if r.dev else None
            cur = have.get(dst)
            # a route BIRD installed is BIRD's to take away (when its speaker stops): never the desired one
            if cur and cur["gateway"] == r.gateway and (oif is None or cur["oif"] == oif) and \
                    cur["onlink"] == r.onlink and cur["proto"] != RTPROT_BIRD:
                continue
            kw = {"dst": "0.0.0.0/0" if dst == "default" else dst}
            if r.gateway:
                kw["gateway"] = r.gateway
            if oif:
                kw["oif"] = oif
            if r.onlink:
                kw["flags"] = RTNH_F_ONLINK
            if r.gateway and dst != "default":
                batch.append((f"set route {dst}", rtnl.route_replace(dst, r.gateway, oif, r.onlink),
                              functools.partial(self.ipr.route, "replace", **kw)))
            else:
                self._do(f"set route {dst}", self.ipr.route, "replace", **kw)
            changes.add(Change("route", dst, "create", f"route {dst}" + (f" via {r.gateway}" if r.gateway else ""),
                               self.name))
        self._do_many(batch)
        for dst, cur in have.items():
            # 2: kernel (connected) routes; 12: BIRD's (the BGP backend's speaker owns them: netlab/bgp/)
            if dst in want or dst == "default" or cur["proto"] in (2, RTPROT_BIRD):
                continue
            net = ipaddress.ip_network(dst)
            if any(net.subnet_of(o) for o in owned):
                self._do(f"delete route {dst}", self.ipr.route, "del", dst=dst)
                changes.add(Change("route", dst, "remove", f"removed stale route {dst}", self.name))

    def ensure_neighbours(self, neighbours: list, dev: str, changes: Changes) -> None:
        idx = self.index(dev)
        have = {}
        for msg in self._read(f"list neighbours on {dev}", self.ipr.get_neighbours, ifindex=idx, family=2):
            if msg["state"] & NUD_PERMANENT:
                have[msg.get("NDA_DST")] = msg.get("NDA_LLADDR")
        want = {n.dst: n.lladdr for n in neighbours if n.dev == dev}
        batch = []
        for dst, mac in want.items():
            if have.get(dst) != mac:
                batch.append((f"set neighbour {dst} on {dev}", rtnl.neigh_replace(idx, dst, mac),
                              functools.partial(self.ipr.neigh, "replace", dst=dst, lladdr=mac, ifindex=idx,
                                                state=NUD_PERMANENT)))
                changes.add(Change("neighbour", dst, "create", f"neighbour {dst} -> {mac} on {dev}", self.name))
        self._do_many(batch)
        for dst in set(have) - set(want):
            self._do(f"delete neighbour {dst} on {dev}", self.ipr.neigh, "del", dst=dst, ifindex=idx)
            changes.add(Change("neighbour", dst, "remove", f"removed stale neighbour {dst} on {dev}", self.name))

    def ensure_fdb(self, entries: list, dev: str, changes: Changes) -> None:
        idx = self.index(dev)
        have = set()
        for msg in self._read(f"list fdb of {dev}", self.ipr.fdb, "dump", ifindex=idx):
            if msg.get("NDA_DST") and msg["state"] & NUD_PERMANENT and msg["ifindex"] == idx:
                have.add((msg.get("NDA_LLADDR"), msg.get("NDA_DST")))
        want = {(f.lladdr, f.dst) for f in entries if f.dev == dev}
        batch = []
        for mac, dst in sorted(want - have):
            batch.append((f"add fdb {mac} dst {dst} on {dev}", rtnl.fdb_append(idx, mac, dst),
                          functools.partial(self.ipr.fdb, "append", ifindex=idx, lladdr=mac, dst=dst,
                                            state=NUD_PERMANENT, flags=NTF_SELF)))
            changes.add(Change("fdb", f"{mac} {dst}", "create", f"fdb {mac} dst {dst} on {dev}", self.name))
        self._do_many(batch)
        for mac, dst in sorted(have - want):
            self._do(f"delete fdb {mac} dst {dst} on {dev}", self.ipr.fdb, "del", ifindex=idx, lladdr=mac,
                     dst=dst, flags=NTF_SELF)
            changes.add(Change("fdb", f"{mac} {dst}", "remove", f"removed stale fdb {mac} dst {dst} on {dev}",
                               self.name))


def raw_call(sock: rtnl.Rtnl, netns: str, steps) -> list[bytes | None]:
    try:
        return sock.call(*(req for _, req in steps))
    except rtnl.RtnlError as e:
        raise kernel_error(e, steps[e.position][0], netns) from None
    except OSError as e:
        raise kernel_error(e, " + ".join(what for what, _ in steps), netns) from None


@functools.lru_cache(maxsize=1)
def has_ipv6() -> bool:
    """False on a kernel booted with ipv6.disable=1 (the same in every namespace): no IPv6 sysctl exists."""
    return os.path.isdir("/proc/sys/net/ipv6")


def pod_sysctls() -> dict[str, str]:
    """A pod's sysctls, its eth0's included."""
    return dict(POD_SYSCTLS, **POD_ETH0_SYSCTLS)


def write_sysctls(netns: str, sysctls: dict[str, str], changes: Changes | None) -> None:
    """Called on a thread that is inside `netns`: /proc/sys/net resolves to the caller's namespace.

    An IPv6 sysctl is skipped on a kernel without IPv6. `changes` None: the namespace is new, so every value is
    written without being read first, and not reported as a change. Through `procsys.PROC_SYS` (netlab's own
    procfs instance: /proc/sys's lookups grow with the number of namespaces on the machine)."""
    for key, value in sysctls.items():
        if key.startswith("net/ipv6/") and not has_ipv6():
            continue
        try:
            if changes is not None and PROC_SYS.read(key).strip() == value:
                continue
            PROC_SYS.write(key, value)
        except OSError as e:
            raise KernelError(f"sysctl {key.replace('/', '.')}={value} in network namespace {netns}: "
                              f"{e.strerror}" + (" (is br_netfilter available?)" if "bridge" in key else "")) from None
        if changes is not None:
            changes.add(Change("sysctl", key.replace('/', '.'), "update", f"sysctl {key.replace('/', '.')}={value}",
                               netns))


def ignore_missing(fn: Callable, *args, **kwargs) -> None:
    try:
        fn(*args, **kwargs)
    except NetlinkError as e:
        if e.code not in (errno.ENODEV, errno.ENOENT, errno.ESRCH):
            raise


def _link_view(msg) -> dict:
    """What netlab reads of a link (RTM_NEWLINK message, as pyroute2 decodes it)."""
    info = msg.get("IFLA_LINKINFO")
    slave = info.get("IFLA_INFO_SLAVE_DATA") if info else None
    data = info.get("IFLA_INFO_DATA") if info else None
    return {
        "index": msg["index"], "up": bool(msg["flags"] & IFF_UP), "mtu": msg.get("IFLA_MTU"),
        "master": msg.get("IFLA_MASTER"), "mac": msg.get("IFLA_ADDRESS"),
        "kind": info.get("IFLA_INFO_KIND") if info else None,
        "hairpin": slave.get("IFLA_BRPORT_MODE") if slave else None,
        "port_state": slave.get("IFLA_BRPORT_STATE") if slave else None,   # a bridge port's: 3 forwarding
        "operstate": msg.get("IFLA_OPERSTATE"),
        "vxlan": {"id": data.get("IFLA_VXLAN_ID"), "port": data.get("IFLA_VXLAN_PORT"),
                  "local": data.get("IFLA_VXLAN_LOCAL"), "learning": data.get("IFLA_VXLAN_LEARNING")}
        if data is not None and info.get("IFLA_INFO_KIND") == "vxlan" else None,
    }
