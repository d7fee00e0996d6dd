"""The kernel side of the fabric: make the namespaces, links, addresses, routes, neighbours and FDB
entries of a lab match what `netlab.render.fabric` asks for, changing only what differs.

Netlink work goes through pyroute2, except the few fixed requests that create a pod's network, which
`rtnl` sends itself (pyroute2's per-request cost was most of a pod's bring-up; see rtnl.py). Everything
runs on one dedicated thread (`Fabric.apply`) that hops between the lab's namespaces; a netlink socket
stays bound to the namespace it was opened in, so the thread opens one socket per node once and keeps
using it while it builds that node's pods.
"""
from __future__ import annotations

import errno
import functools
import ipaddress
import os
import threading
from dataclasses import dataclass
from typing import Callable

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from ..errors import KernelError
from ..model.objects import Cluster, Pod
from ..render.fabric import BRIDGE, POD_ETH0_SYSCTLS, POD_SYSCTLS, UNDERLAY_BRIDGE, NodeFabric, Route, node_fabric, pod_fabric
from . import nsfs, rtnl
from .changes import Change, Changes

IFF_UP = 1
NUD_PERMANENT = 0x80
NTF_SELF = 0x02
RTNH_F_ONLINK = 4
AF_BRIDGE = 7




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

    def refresh_neighbour(self, index: int, ip: str, mac: bytes) -> None:
        """Give an existing neighbour entry for `ip` on link `index` the MAC `mac` (no entry: nothing)."""
        assert self._raw is not None, "open_raw() first"
        try:
            self._raw.call(rtnl.neigh_refresh(index, ip, mac))
        except rtnl.RtnlError as e:
            if e.errno != errno.ENOENT:
                raise kernel_error(e, f"set the neighbour entry of {ip}", self.name) from None

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
        if self._links is None or refresh:
            self._links = {}
            for msg in self._read("list links", self.ipr.get_links):
                info = msg.get("IFLA_LINKINFO")
                slave = info.get("IFLA_INFO_SLAVE_DATA") if info else None
                data = info.get("IFLA_INFO_DATA") if info else None
                self._links[msg.get("IFLA_IFNAME")] = {
                    "index": msg["index"], "up": bool(msg["flags"] & IFF_UP), "mtu": msg.get("IFLA_MTU"),
                    "master": msg.get("IFLA_MASTER"), "mac": msg.get("IFLA_ADDRESS"),
                    "kind": info.get("IFLA_INFO_KIND") if info else None,
                    "hairpin": slave.get("IFLA_BRPORT_MODE") if slave else None,
                    "vxlan": {"id": data.get("IFLA_VXLAN_ID"), "port": data.get("IFLA_VXLAN_PORT"),
                              "local": data.get("IFLA_VXLAN_LOCAL"), "learning": data.get("IFLA_VXLAN_LEARNING")}
                    if data is not None and info.get("IFLA_INFO_KIND") == "vxlan" else None,
                }
        return self._links

    def index(self, ifname: str) -> int:
        link = self.links().get(ifname) or self.links(refresh=True).get(ifname)
        if link is None:
            raise KernelError(f"link {ifname} is missing in network namespace {self.name}")
        return link["index"]

    def ensure_up(self, ifname: str, changes: Changes, mtu: int | None = None) -> None:
        link = self.links()[ifname]
        if mtu is not None and link["mtu"] != mtu:
            self._do(f"set mtu {mtu} on {ifname}", self.ipr.link, "set", index=link["index"], mtu=mtu)
            changes.add(Change("link", ifname, "update", f"mtu {mtu} on {ifname}", self.name))
        if not link["up"]:
            self._do(f"set {ifname} up", self.ipr.link, "set", index=link["index"], state="up")
            changes.add(Change("link", ifname, "update", f"{ifname} up", self.name))

    def ensure_bridge(self, ifname: str, changes: Changes, mtu: int | None = None) -> int:
        link = self.links().get(ifname)
        if link is not None and link["kind"] != "bridge":
            self._do(f"delete incompatible {ifname} ({link['kind']})", self.ipr.link, "del", index=link["index"])
            changes.add(Change("link", ifname, "remove", f"removed {ifname}, a {link['kind']} where a bridge "
                               "belongs", self.name))
            link = None
        if link is None:
            kw = {"mtu": mtu} if mtu else {}
            self._do(f"create bridge {ifname}", self.ipr.link, "add", ifname=ifname, kind="bridge", **kw)
            changes.add(Change("link", ifname, "create", f"bridge {ifname}", self.name))
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
        for dst, r in want.items():
            oif = self.index(r.dev) if r.dev else None
            cur = have.get(dst)
            if cur and cur["gateway"] == r.gateway and (oif is None or cur["oif"] == oif) and \
                    cur["onlink"] == r.onlink:
                continue
            kw = {"dst": "0.0.0.0/0" if dst == "default" else dst}
            if r.gateway:
                kw["gateway"] = r.gateway
            if oif:
                kw["oif"] = oif
            if r.onlink:
                kw["flags"] = RTNH_F_ONLINK
            self._do(f"set route {dst}", self.ipr.route, "replace", **kw)
            changes.add(Change("route", dst, "create", f"route {dst}" + (f" via {r.gateway}" if r.gateway else ""),
                               self.name))
        for dst, cur in have.items():
            if dst in want or dst == "default" or cur["proto"] == 2:  # 2: kernel (connected) routes
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
        for dst, mac in want.items():
            if have.get(dst) != mac:
                self._do(f"set neighbour {dst} on {dev}", self.ipr.neigh, "replace", dst=dst, lladdr=mac,
                         ifindex=idx, state=NUD_PERMANENT)
                changes.add(Change("neighbour", dst, "create", f"neighbour {dst} -> {mac} on {dev}", self.name))
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
        for mac, dst in sorted(want - have):
            self._do(f"add fdb {mac} dst {dst} on {dev}", self.ipr.fdb, "append", ifindex=idx, lladdr=mac,
                     dst=dst, state=NUD_PERMANENT, flags=NTF_SELF)
            changes.add(Change("fdb", f"{mac} {dst}", "create", f"fdb {mac} dst {dst} on {dev}", self.name))
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
def pod_sysctls() -> dict[str, str]:
    """A pod's sysctls, its eth0's included. On a kernel without IPv6 (ipv6.disable=1, the same in every
    namespace) there is no IPv6 sysctl to set."""
    out = dict(POD_SYSCTLS, **POD_ETH0_SYSCTLS)
    if not os.path.isdir("/proc/sys/net/ipv6"):
        out = {k: v for k, v in out.items() if not k.startswith("net/ipv6/")}
    return out


def write_sysctls(netns: str, sysctls: dict[str, str], changes: Changes | None) -> None:
    """Called on a thread that is inside `netns`: /proc/sys/net resolves to the caller's namespace.

    `changes` None: the namespace is new, so every value is written without being read first, and not
    reported as a change."""
    for key, value in sysctls.items():
        path = f"/proc/sys/{key}"
        try:
            if changes is not None:
                with open(path) as f:
                    if f.read().strip() == value:
                        continue
            with open(path, "w") as f:
                f.write(value)
        except OSError as e:
            raise KernelError(f"sysctl {key.replace('/', '.')}={value} in network namespace {netns}: "
                              f"{e.strerror}" + (" (is br_netfilter available?)" if "bridge" in key else "")) from None
        if changes is not None:
            changes.add(Change("sysctl", key.replace('/', '.'), "update", f"sysctl {key.replace('/', '.')}={value}",
                               netns))


@dataclass
class PodHealth:
    ok: bool
    problem: str = ""


class Fabric:
    """Applies a cluster's fabric. Construct, then call `apply()` (which runs on its own thread)."""

    def __init__(self, cluster: Cluster, changes: Changes, progress: Callable[[str, int, int], None] | None = None):
        self.cluster = cluster
        self.changes = changes
        self.progress = progress or (lambda *a: None)
        self.nodes: dict[str, Netns] = {}
        self._opened: list[Netns] = []  # every socket _open made, closed when apply ends
        self.broken_pods: dict[str, str] = {}

    # entry point ------------------------------------------------------------
    def apply(self, create_pods: list[Pod], check_pods: list[Pod],
              before_pods: Callable[[], None] | None = None) -> dict[str, str]:
        """Build the underlay, the nodes, then create `create_pods` and verify `check_pods`.

        `before_pods` is called (on the fabric's thread) once every node's namespace is ready, before
        the first pod is created: work that needs the nodes but not the pods can overlap with them.
        Returns the pods found broken among `check_pods` (key -> problem); the caller recreates them.
        """
        return nsfs.run_in_thread(lambda: self._apply(create_pods, check_pods, before_pods))

    def _apply(self, create_pods: list[Pod], check_pods: list[Pod],
               before_pods: Callable[[], None] | None = None) -> dict[str, str]:
        nsfs.ensure_run_dir()
        c = self.cluster
        try:
            underlay = self._open(c.underlay_netns)
            mtu = c.networking.mtu
            underlay.ensure_bridge(UNDERLAY_BRIDGE, self.changes, mtu=mtu)
            underlay.ensure_addresses(UNDERLAY_BRIDGE, [f"{c.gateway_ip}/{c.networking.node_subnet.prefixlen}"],
                                      self.changes)
            write_sysctls(c.underlay_netns, {"net/ipv4/ip_forward": "0", "net/ipv4/icmp_ratelimit": "0"},
                          self.changes)
            total = len(c.nodes)
            for i, node in enumerate(c.nodes):
                self.progress("nodes", i, total)
                nf = node_fabric(c, node)
                ns = self._open(node.netns)
                ns.open_raw()  # pods are created through it
                write_sysctls(node.netns, nf.sysctls, self.changes)
                self.nodes[node.name] = ns
                self._ensure_uplink(underlay, ns, node.underlay_veth, node.netns, mtu)
                self._ensure_node(ns, nf)
            self.progress("nodes", total, total)
            ext = self._open(c.external_netns)
            write_sysctls(c.external_netns, POD_SYSCTLS, self.changes)
            self._ensure_uplink(underlay, ext, "external", c.external_netns, mtu)
            ext.ensure_addresses("eth0", [f"{c.external_ip}/{c.networking.node_subnet.prefixlen}"], self.changes)
            ext.ensure_up("lo", self.changes)
            # like an on-prem router that sends the service range to a node, so ClusterIPs can be tried
            # from outside (kube-proxy masquerades such traffic: it does not come from the pod network)
            ext.ensure_routes([Route(str(c.networking.service_subnet), str(c.nodes[0].ip), "eth0")], self.changes,
                              owned=[c.networking.service_subnet])
            if check_pods:  # their veths are checked against a fresh view of each node
                for ns in self.nodes.values():
                    ns.links(refresh=True)
            broken = {}
            for i, pod in enumerate(check_pods):
                h = self._check_pod(pod)
                if not h.ok:
                    broken[pod.key] = h.problem
            if before_pods is not None:
                before_pods()
            total = len(create_pods)
            for i, pod in enumerate(create_pods):
                if i % 10 == 0:
                    self.progress("pods", i, total)
                self._create_pod(pod)
            self.progress("pods", total, total)
            return broken
        finally:
            # all of them, the underlay's and the external host's too: an open netlink socket keeps its
            # namespace alive after `down` (until the garbage collector finds it)
            for ns in self._opened:
                ns.close()
            self._opened.clear()

    # namespaces -------------------------------------------------------------
    def _open(self, name: str) -> Netns:
        """Enter namespace `name` (creating it if missing) and open a netlink socket in it."""
        path = nsfs.netns_path(name)
        try:
            if os.path.lexists(path) and not nsfs.is_ns_file(path):
                # the empty placeholder of a netlab killed between creating and mounting it
                nsfs.delete_ns_file(path)
                self.changes.add(Change("namespace", name, "remove", f"removed stale namespace file {path}"))
            if os.path.exists(path):
                nsfs.enter_netns_here(path)
            else:
                nsfs.new_netns_here(name)
                self.changes.add(Change("namespace", name, "create", f"namespace {name}"))
        except OSError as e:
            raise KernelError(f"cannot create or enter network namespace {name}: {e.strerror}") from None
        ns = Netns(name, IPRoute())
        self._opened.append(ns)
        ns.ensure_up("lo", self.changes) if "lo" in ns.links() else None
        return ns

    def _ensure_uplink(self, underlay: Netns, inner: Netns, outer_name: str, inner_ns: str, mtu: int) -> None:
        """A veth from the underlay bridge to `eth0` in a node (or the external host)."""
        bridge = underlay.index(UNDERLAY_BRIDGE)
        outer = underlay.links().get(outer_name)
        inner_eth = inner.links().get("eth0")
        if outer is not None and inner_eth is None:  # half of a pair: start again
            underlay._do(f"delete {outer_name}", underlay.ipr.link, "del", index=outer["index"])
            outer = None
        if outer is None:
            if inner_eth is not None:
                inner._do("delete eth0", inner.ipr.link, "del", index=inner_eth["index"])
            with nsfs.opened(nsfs.netns_path(inner_ns)) as fd:
                underlay._do(f"create veth {outer_name} <-> {inner_ns}:eth0", underlay.ipr.link, "add",
                             ifname=outer_name, kind="veth", mtu=mtu, master=bridge, state="up",
                             peer={"ifname": "eth0", "net_ns_fd": fd, "mtu": mtu})
            self.changes.add(Change("link", outer_name, "create", f"veth {outer_name} to {inner_ns}", underlay.name))
            underlay.links(refresh=True)
            inner.links(refresh=True)
        else:
            if outer["master"] != bridge:
                underlay._do(f"attach {outer_name} to {UNDERLAY_BRIDGE}", underlay.ipr.link, "set",
                             index=outer["index"], master=bridge)
                self.changes.add(Change("link", outer_name, "update", f"{outer_name} on {UNDERLAY_BRIDGE}",
                                        underlay.name))
            underlay.ensure_up(outer_name, self.changes)
        inner.ensure_up("eth0", self.changes, mtu=mtu)

    def _ensure_node(self, ns: Netns, nf: NodeFabric) -> None:
        ns.ensure_addresses("eth0", [nf.eth0_address], self.changes)
        ns.ensure_bridge(BRIDGE, self.changes)
        ns.ensure_addresses(BRIDGE, [nf.bridge_address], self.changes)
        vx = nf.vxlan
        link = ns.links().get(vx.name) if vx else None
        stale_vxlan = [name for name, l in ns.links().items() if l["kind"] == "vxlan" and (vx is None or name != vx.name)]
        for name in stale_vxlan:  # backend switched away from vxlan
            ns._do(f"delete {name}", ns.ipr.link, "del", index=ns.links()[name]["index"])
            self.changes.add(Change("link", name, "remove", f"removed {name}", ns.name))
            ns.links(refresh=True)
        if vx:
            if link is not None:
                info = link["vxlan"] or {}
                differs = []
                if link["kind"] != "vxlan":
                    differs.append(f"kind {link['kind']}")
                elif info.get("id") != vx.vni or info.get("port") != vx.port or info.get("local") != vx.local:
                    differs.append(f"vni {info.get('id')} port {info.get('port')} local {info.get('local')}")
                if differs:
                    ns._do(f"delete incompatible {vx.name}", ns.ipr.link, "del", index=link["index"])
                    self.changes.add(Change("link", vx.name, "rebuild",
                                            f"recreate {vx.name} ({', '.join(differs)} differed)", ns.name))
                    link = None
            if link is None:
                ns._do(f"create {vx.name}", ns.ipr.link, "add", ifname=vx.name, kind="vxlan", vxlan_id=vx.vni,
                       vxlan_local=vx.local, vxlan_link=ns.index(vx.dev), vxlan_port=vx.port, vxlan_learning=0,
                       address=vx.mac, mtu=vx.mtu)
                self.changes.add(Change("link", vx.name, "create", f"vxlan {vx.name} vni {vx.vni} port {vx.port}",
                                        ns.name))
                ns.links(refresh=True)
            elif link["mac"] != vx.mac:
                ns._do(f"set address of {vx.name}", ns.ipr.link, "set", index=link["index"], address=vx.mac)
                self.changes.add(Change("link", vx.name, "update", f"{vx.name} address {vx.mac}", ns.name))
            ns.ensure_up(vx.name, self.changes, mtu=vx.mtu)
            ns.ensure_addresses(vx.name, [vx.address], self.changes)
            ns.ensure_neighbours(nf.neighbours, vx.name, self.changes)
            ns.ensure_fdb(nf.fdb, vx.name, self.changes)
        ns.ensure_routes(nf.routes, self.changes, owned=[self.cluster.networking.pod_subnet])

    # pods -------------------------------------------------------------------
    def _create_pod(self, pod: Pod) -> None:
        pf = pod_fabric(self.cluster, pod)
        node = self.nodes[pod.node]
        uts = uts_path(self.cluster.name, pod)
        try:
            nsfs.new_netns_here(pf.netns, uts, pf.hostname)
        except OSError as e:
            raise KernelError(f"cannot create network namespace {pf.netns} for pod {pod.key}: {e.strerror}") from None
        bridge = node.index(BRIDGE)
        stale = node.links().get(pf.host_veth)
        if stale is not None:
            # the veth of the pod's previous namespace: the kernel destroys a deleted namespace (and
            # the veths in it) later, asynchronously, or never while something still holds it open
            try:
                node.ipr.link("del", index=stale["index"])
            except NetlinkError as e:
                if e.code != errno.ENODEV:
                    raise kernel_error(e, f"delete stale {pf.host_veth}", node.name) from None
        # This thread is in the pod's new namespace now: the veth's peer goes there by our thread id.
        node.raw((f"create veth {pf.host_veth} for pod {pod.key}",
                  rtnl.veth_create(pf.host_veth, "eth0", pf.mtu, bridge, threading.get_native_id())),
                 (f"set hairpin on {pf.host_veth}", rtnl.hairpin_on(pf.host_veth)))
        write_sysctls(pf.netns, pod_sysctls(), None)  # this thread is in the new namespace
        # in the CNI bridge plugin's order: eth0 up, then its address and route, then a gratuitous ARP
        # (a pod made again with the same IP has a new MAC, which its node and the pods next to it may
        # not know): eth0 has arp_notify=1, so setting its own MAC again makes the kernel send it
        with rtnl.Rtnl() as inner:
            got = raw_call(inner, pf.netns, (("set lo up", rtnl.link_up("lo")),
                                             ("set eth0 up", rtnl.link_up("eth0")),
                                             ("look up eth0", rtnl.get_link("eth0"))))
            index, mac = rtnl.link_index(got[2]), rtnl.link_address(got[2])
            raw_call(inner, pf.netns, ((f"add address {pf.address} to eth0", rtnl.address_add(index, pf.address)),
                                       (f"add default route via {pf.gateway}", rtnl.default_route_add(pf.gateway)),
                                       *([("announce eth0's address (gratuitous ARP)", rtnl.set_address(index, mac))]
                                         if mac else [])))
        if mac:
            # The announcement can reach cni0 before the new bridge port forwards (the kernel enables
            # the port a moment after eth0's carrier comes on), so the node's own entry for this IP,
            # if it has one, is also given the new MAC directly.
            node.refresh_neighbour(bridge, pf.address.split("/")[0], mac)
        self.changes.add(Change("pod", pod.key, "create", f"namespace, {pf.host_veth} <-> eth0 {pf.address}",
                                pod.netns, f"pod {pod.key}"))

    def _check_pod(self, pod: Pod) -> PodHealth:
        pf = pod_fabric(self.cluster, pod)
        node = self.nodes.get(pod.node)
        path = nsfs.netns_path(pf.netns)
        if not nsfs.is_ns_file(path):
            return PodHealth(False, "its network namespace is missing")
        if not nsfs.is_ns_file(uts_path(self.cluster.name, pod)):
            return PodHealth(False, "its UTS namespace is missing")
        link = node.links().get(pf.host_veth) if node else None
        if link is None:
            return PodHealth(False, f"its veth {pf.host_veth} is missing on node {pod.node}")
        if link["master"] != node.index(BRIDGE):  # e.g. cni0 was deleted and made again: attach it again
            node._do(f"attach {pf.host_veth} to {BRIDGE}", node.ipr.link, "set", index=link["index"],
                     master=node.index(BRIDGE))
            self.changes.add(Change("link", pf.host_veth, "update", f"{pf.host_veth} on {BRIDGE}", pod.netns,
                                    f"pod {pod.key}"))
            link = dict(link, hairpin=None)  # a new bridge port: hairpin is off again
        if not link["up"] or link["hairpin"] != 1:
            # repairable in place
            if not link["up"]:
                node._do(f"set {pf.host_veth} up", node.ipr.link, "set", index=link["index"], state="up")
                self.changes.add(Change("link", pf.host_veth, "update", f"{pf.host_veth} up", pod.netns,
                                        f"pod {pod.key}"))
            if link["hairpin"] != 1:
                node._do(f"set hairpin on {pf.host_veth}", node.ipr.brport, "set", index=link["index"], mode=1)
                self.changes.add(Change("link", pf.host_veth, "update", f"hairpin on {pf.host_veth}", pod.netns,
                                        f"pod {pod.key}"))
        try:
            nsfs.enter_netns_here(path)
        except OSError as e:
            return PodHealth(False, f"cannot enter its namespace: {e.strerror}")
        write_sysctls(pf.netns, POD_SYSCTLS, self.changes)
        inner = Netns(pf.netns, IPRoute())
        try:
            links = inner.links()
            eth0 = links.get("eth0")
            if eth0 is None:
                return PodHealth(False, "its eth0 is missing")
            write_sysctls(pf.netns, pod_sysctls(), self.changes)
            if not links.get("lo", {}).get("up"):
                inner.ensure_up("lo", self.changes)
            inner.ensure_up("eth0", self.changes, mtu=pf.mtu)
            inner.ensure_addresses("eth0", [pf.address], self.changes)
            routes = inner.routes()
            d = routes.get("default")
            if d is None or d["gateway"] != pf.gateway:
                inner.ensure_routes([_default(pf.gateway)], self.changes, owned=[])
        finally:
            inner.close()
        return PodHealth(True)


def node_links(netns: str) -> dict[str, dict] | None:
    """The links of a namespace (one netlink dump, on a throwaway thread), or None if it is gone."""
    if not nsfs.is_ns_file(nsfs.netns_path(netns)):
        return None

    def dump() -> dict[str, dict]:
        ns = Netns(netns, IPRoute())
        try:
            return ns.links()
        finally:
            ns.close()
    return nsfs.in_netns(netns, dump)


class _DryNetns(Netns):
    """A Netns that reads but does not write: each write it would make is what `up` would repair."""

    def _do(self, what: str, fn: Callable, *args, **kwargs):
        return None


def node_fabric_drift(cluster: Cluster, node) -> list[str]:
    """What `up` would change in a node's own fabric (eth0, cni0, flannel.1 with its neighbours and
    FDB, routes), found by running the same reconcile without writing. Empty: the node is as built."""
    if not nsfs.is_ns_file(nsfs.netns_path(node.netns)):
        return ["its network namespace is missing"]

    def check() -> list[str]:
        changes = Changes()
        nf = node_fabric(cluster, node)
        for key, value in nf.sysctls.items():
            try:
                with open(f"/proc/sys/{key}") as f:
                    have = f.read().strip()
            except OSError:
                have = "unreadable"
            if have != value:
                changes.add(Change("sysctl", key.replace('/', '.'), "update",
                                   f"sysctl {key.replace('/', '.')} is {have} (wants {value})"))
        ns = _DryNetns(node.netns, IPRoute())
        try:
            if "eth0" not in ns.links():
                raise KeyError("eth0")
            ns.ensure_up("eth0", changes, mtu=cluster.networking.mtu)
            Fabric(cluster, changes)._ensure_node(ns, nf)
        except KeyError as e:
            # a link the reconcile would create is missing: what depends on it cannot be compared
            name = e.args[0]
            changes.records = [c for c in changes.records
                               if not (c.kind == "link" and c.object == name and c.action == "create")]
            changes.add(Change("link", name, "create", f"link {name} is missing"))
        except KernelError as e:
            changes.add(Change("other", "", "update", str(e).replace(f" in network namespace {node.netns}", "")))
        finally:
            ns.close()
        return [c.detail if c.namespace == node.netns and not c.subject else str(c) for c in changes.records]
    return nsfs.in_netns(node.netns, check)


def pod_link_problem(pod: Pod, links: dict[str, dict] | None) -> str:
    """What is wrong with a pod's node-side veth, given its node's links ('' if nothing)."""
    if links is None:
        return f"node {pod.node} has no network namespace"
    veth = links.get(pod.host_veth)
    if veth is None:
        return f"its veth {pod.host_veth} is missing on node {pod.node}"
    bridge = links.get(BRIDGE)
    if bridge is None or veth["master"] != bridge["index"]:
        return f"its veth {pod.host_veth} is not on {BRIDGE} on node {pod.node}"
    if not veth["up"]:
        return f"its veth {pod.host_veth} is down on node {pod.node}"
    return ""


def _default(gw: str) -> Route:
    return Route("default", gw, "eth0")


def uts_path(lab: str, pod: Pod) -> str:
    from .layout import uts_file
    return uts_file(lab, pod.namespace, pod.name)


def ignore_missing(fn: Callable, *args, **kwargs) -> None:
    try:
        fn(*args, **kwargs)
    except NetlinkError as e:
        if e.code not in (errno.ENODEV, errno.ENOENT, errno.ESRCH):
            raise
