"""A pod's network: create it (the hot path of `up`: a new namespace, its veth on cni0, eth0's address,
route and gratuitous ARP, sent through `rtnl` in a few writes) and check an existing one (repairing what
can be repaired in place). The methods are the pod half of `fabric.Fabric`, which mixes them in.
"""
from __future__ import annotations

import errno
import threading
from dataclasses import dataclass

from pyroute2 import IPRoute

from ..errors import KernelError
from ..model.objects import Cluster, Pod
from ..render.fabric import BRIDGE, POD_NEW_ETH0_SYSCTLS, POD_SYSCTLS, Route, pod_fabric
from . import nsfs, rtnl
from .changes import Change, Changes
from .netns import Netns, kernel_error, pod_sysctls, raw_call, write_sysctls


@dataclass
class PodHealth:
    ok: bool
    problem: str = ""


class FabricPods:
    """The pod half of `fabric.Fabric`: its pods are created and checked on its thread, with the sockets
    it opened in their nodes."""

    cluster: Cluster
    changes: Changes
    nodes: dict[str, Netns]
    new_nodes: set[str]

    def _create_pod(self, pod: Pod) -> None:
        pf = pod_fabric(self.cluster, pod)
        node = self.nodes[pod.node]
        uts = uts_path(self.cluster.name, pod)
        try:
            nsfs.new_netns_here(pf.netns, uts, pf.hostname)
        except OSError as e:
            raise KernelError(f"cannot create network namespace {pf.netns} for pod {pod.key}: {e.strerror}") from None
        bridge = node.index(BRIDGE)
        new_node = pod.node in self.new_nodes   # (made by this pass: two netlink round trips fewer, below)
        stale = None if new_node else node.raw_index(pf.host_veth)
        if stale is not None:
            # the veth of the pod's previous namespace: the kernel destroys a deleted namespace (and
            # the veths in it) later, asynchronously, or never while something still holds it open
            # (through the node's fast-path socket: pods are made on several threads, and pyroute2's socket
            # answers in the namespace of the thread that calls it, here the pod's new one)
            try:
                node._raw.call(rtnl.link_del(stale))
            except rtnl.RtnlError as e:
                if e.errno != errno.ENODEV:
                    raise kernel_error(e, f"delete stale {pf.host_veth}", node.name) from None
        # This thread is in the pod's new namespace now: its sysctls first (NO_IPV6 in its default before eth0
        # exists), then the veth, whose peer goes there by our thread id.
        write_sysctls(pf.netns, POD_SYSCTLS, None)
        node.raw((f"create veth {pf.host_veth} for pod {pod.key}",
                  rtnl.veth_create(pf.host_veth, "eth0", pf.mtu, bridge, threading.get_native_id())),
                 (f"set hairpin on {pf.host_veth}", rtnl.hairpin_on(pf.host_veth)))
        write_sysctls(pf.netns, POD_NEW_ETH0_SYSCTLS, None)
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
        if mac and not new_node:
            # The announcement can reach cni0 before the new bridge port forwards (the kernel enables
            # the port a moment after eth0's carrier comes on), so the node's own entry for this IP,
            # if it has one, is also given the new MAC directly. (A node made by this pass has none: nothing
            # has sent to a pod of it yet, and an ARP announcement makes no entry where there was none.)
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
        if link["mtu"] != pf.mtu:   # the backend changed (VXLAN <-> host-gw): both ends of the veth follow
            node._do(f"set mtu {pf.mtu} on {pf.host_veth}", node.ipr.link, "set", index=link["index"], mtu=pf.mtu)
            self.changes.add(Change("link", pf.host_veth, "update", f"mtu {pf.mtu} on {pf.host_veth}", pod.netns,
                                    f"pod {pod.key}"))
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
