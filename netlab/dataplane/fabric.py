"""The kernel side of the fabric: make the namespaces, links, addresses, routes, neighbours and FDB
entries of a lab match what `netlab.render.fabric` asks for, changing only what differs.

Netlink work goes through pyroute2, except the few fixed requests that create a pod's network, which
`rtnl` sends itself (pyroute2's per-request cost was most of a pod's bring-up; see rtnl.py). Everything
runs on one dedicated thread (`Fabric.apply`) that hops between the lab's namespaces; a netlink socket
stays bound to the namespace it was opened in, so the thread opens one socket per node once and keeps
using it while it builds that node's pods.

The pieces: `netns` holds `Netns` (one namespace's netlink socket and its idempotent operations) and the
sysctl writer; `podnet` creates and checks pods (mixed into `Fabric`); this module builds the underlay,
the nodes and the external host, and reads a node's drift. The names other modules import from here are
re-exported (see __all__).
"""
from __future__ import annotations

import os
import threading
import time
from typing import Callable

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from ..errors import KernelError, UsageError
from ..model.objects import Cluster, Pod
from ..render.fabric import (BRIDGE, IPIP_DEV, NO_IPV6, POD_SYSCTLS, SEGMENT_BRIDGE, UNDERLAY_BRIDGE, HostFabric,
                             NodeFabric, Route, host_fabric, node_fabric)
from . import nsfs
from .changes import Change, Changes
from .netns import Netns, ignore_missing, kernel_error, pod_sysctls, raw_call, write_sysctls
from .podnet import FabricPods, PodHealth, pod_link_problem, uts_path
from .procsys import PROC_SYS

POD_THREADS = 2   # threads creating pods (see Fabric._create_pods)
ANNOUNCE_WAIT = 3.0   # seconds a moved node's announcement waits for its new bridge port (Fabric._announce)
BR_FORWARDING = 3     # a bridge port's state (IFLA_BRPORT_STATE) when it forwards


def bridge_mac(node_netns: str) -> str:
    """cni0's own MAC on a node (stable, locally administered, unicast): see Netns.ensure_bridge."""
    import hashlib
    b = bytearray(hashlib.sha256(f"{node_netns}/cni0".encode()).digest()[:6])
    b[0] = (b[0] & 0xFE) | 0x02
    return ":".join(f"{x:02x}" for x in b)


def preflight(cluster: Cluster) -> None:
    """Before any change: the backend's kernel feature (ipip: the ipip module, loaded here as Calico's node
    agent loads it; loading it gives every namespace, the host's too, the fallback device tunl0)."""
    from . import kernelcheck
    problem = kernelcheck.backend_refusal(cluster.networking.backend)
    if problem:
        raise UsageError(problem)
    hosts_preflight(cluster)
    if cluster.networking.backend == "ipip" and not os.path.isdir("/sys/module/ipip"):
        import subprocess
        subprocess.run(["modprobe", "-q", "ipip"], capture_output=True)


def hosts_preflight(cluster: Cluster) -> None:
    """A lab spread over hosts: the kernel has VXLAN (the underlay between the hosts); real hosts, in the
    agent of one of them: its NIC is on this machine. (Another lab's claim of the same VXLAN port and VNI:
    lab_spec.hosts_problem, before this.)"""
    hc = cluster.networking.hosts
    if hc is None:
        return
    from . import kernelcheck
    where = f"{cluster.source or '<scenario>'}: Cluster {cluster.name}"
    problem = kernelcheck.hosts_refusal(where)
    if problem:
        raise UsageError(problem)
    if hc.mode == "real":
        from . import layout
        if layout.host() is not None:   # the agent of a real host: its NIC is in this machine's own namespace
            problem = real_host_problem(where, hc, layout.host())
            if problem:
                raise UsageError(problem)


def real_host_problem(where: str, hc, host: str) -> str | None:
    """The one line refusing to build real host `host` (of `hc`, the lab's spec.types.HostsConfig) on this
    machine (None: nothing to refuse): its `interface` must exist in this process's network namespace (the
    machine's root namespace, where the VXLAN between the hosts sends its packets)."""
    import socket
    spec = hc.host(host)
    try:
        socket.if_nametoindex(spec.interface)
    except OSError:
        return (f"{where}: host {host}'s interface {spec.interface} "
                f"is not on this machine; run this host's agent on the machine whose NIC {spec.interface} has "
                f"{spec.address}, or fix hosts[{host}].interface")
    return None


__all__ = ["Change", "Changes", "Fabric", "Netns", "PodHealth", "ignore_missing", "kernel_error", "node_fabric_drift",
           "node_links", "pod_link_problem", "pod_sysctls", "raw_call", "uts_path", "write_sysctls"]


class Fabric(FabricPods):
    """Applies a cluster's fabric. Construct, then call `apply()` (which runs on its own thread)."""

    def __init__(self, cluster: Cluster, changes: Changes, progress: Callable[[str, int, int], None] | None = None,
                 nodes: bool = True, host: str | None = None, only: set[str] | None = None):
        """`nodes=False` (a control loop's scoped pass): the nodes' own network (sysctls, addresses, cni0,
        VXLAN, neighbours, FDB, routes) is not read back; their uplinks still follow `partitioned`.
        `host` (a lab spread over hosts; a host's agent): only that host is built, the nodes placed on it
        (`Cluster.nodes_on_host`), and the gateway and the external host if it is the first host; the
        emulated segment's bridge is ensured by every host (each plugs its NIC into it).
        `only` (a host's agent in a lab whose nodes are placed by label alone, with one underlay): the nodes
        built here; routes, neighbours and FDB entries towards the others are still made from the whole
        cluster, and the shared underlay and external host by whichever agent gets the fabric lock."""
        if host is not None and (cluster.networking.hosts is None or
                                 host not in [h.name for h in cluster.networking.hosts.hosts]):
            raise ValueError(f"lab {cluster.name} has no host {host!r}")
        # real hosts: this machine's own namespace (the agent's, where the hosts' NICs are), for the VXLAN
        # between the hosts, made before any thread of this process enters a lab namespace
        self._root_fd: int | None = None
        if host is not None and cluster.networking.hosts.mode == "real":
            self._root_fd = os.open(f"/proc/{os.getpid()}/task/{threading.get_native_id()}/ns/net",
                                    os.O_RDONLY | os.O_CLOEXEC)
        self.host = host
        self.check_nodes = nodes
        # nodes a child process built for this pass (dataplane/prebuild.py): netns -> the NodeFabric it built
        # from; a node whose NodeFabric this pass's model still gives is as wanted, and is not read back
        self.built: dict[str, NodeFabric] = {}
        self.only = only
        self._lock_fd: int | None = None
        self.cluster = cluster
        self.changes = changes
        self.progress = progress or (lambda *a: None)
        self.nodes: dict[str, Netns] = {}
        # nodes whose namespace this pass made (or the child that built them for it): no pod was ever made
        # in them, so a pod made there has no stale veth to look for and no neighbour entry to refresh
        self.new_nodes: set[str] = set()
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

    def _shared(self) -> bool:
        """Whether this pass makes the lab's shared namespaces (the underlay, the external host) as well as
        its nodes: always, except in a host's agent (`only`), which does it when it gets the lab's fabric
        lock at once (on one machine the hosts' agents share those namespaces; one that holds the lock and
        is stopped must not hold the others up). One that does not get it goes on with its nodes if the
        underlay exists, else its pass fails and the next one tries again."""
        if self.only is None:
            return True
        import fcntl
        from . import layout
        fd = os.open(os.path.join(layout.lab_dir(self.cluster.name), "fabric.lock"),
                     os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            if not nsfs.is_ns_file(nsfs.netns_path(self.cluster.underlay_netns)):
                raise KernelError("the lab's underlay is being made by another host's agent; the next pass "
                                  "tries again") from None
            return False
        self._lock_fd = fd   # released when apply ends (_close_lock)
        return True

    def _close_lock(self) -> None:
        fd = self._lock_fd
        if fd is not None:
            os.close(fd)
            self._lock_fd = None

    def _apply(self, create_pods: list[Pod], check_pods: list[Pod],
               before_pods: Callable[[], None] | None = None) -> dict[str, str]:
        nsfs.ensure_run_dir()
        c = self.cluster
        try:
            mtu = c.networking.mtu
            subnets = c.extra_subnets()   # nodes[].subnet: the underlay routes between them and nodeSubnet
            if c.networking.hosts is not None:
                hosts = self._ensure_hosts()
                # the gateway and the external host: on the first host's underlay bridge
                home = c.networking.hosts.home.name
                underlay = hosts[home] if self.host is None or self.host == home else None
                shared = underlay is not None
                nodes = c.nodes if self.host is None else c.nodes_on_host(self.host)
            else:
                hosts = {}
                shared = self._shared()
                underlay = self._open(c.underlay_netns)
                nodes = [n for n in c.nodes if self.only is None or n.name in self.only]
            if shared:
                self._ensure_gateway(underlay, subnets, mtu)
            self._ensure_nodes(nodes, hosts, underlay, mtu)
            if shared:
                self._ensure_external(underlay, subnets, mtu)
            self._close_lock()   # (the pods are the host's own)
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
            self._create_pods(create_pods)
            return broken
        finally:
            self._close_lock()
            if self._root_fd is not None:
                os.close(self._root_fd)
                self._root_fd = None
            # all of them, the underlay's and the external host's too: an open netlink socket keeps its
            # namespace alive after `down` (until the garbage collector finds it)
            for ns in self._opened:
                ns.close()
            self._opened.clear()

    def _create_pods(self, pods: list[Pod]) -> None:
        """The pods, on up to POD_THREADS threads, each with the pods of its own nodes (a node's netlink
        socket is used by one thread only): while one thread waits in the kernel (which makes namespaces
        one at a time), another prepares its next pod's requests, so the Python half of a pod's cost
        hides behind the kernel's half. The first failure stops the others and is raised."""
        total = len(pods)
        by_node: dict[str, list[Pod]] = {}
        for pod in pods:
            by_node.setdefault(pod.node, []).append(pod)
        for name in by_node:
            # cni0's index asked here, on the fabric's thread: the pods' threads then find it in the node's
            # cache and never ask through pyroute2, whose socket answers in the calling thread's namespace
            # (a pod's, on those threads)
            self.nodes[name].index(BRIDGE)
        shares: list[list[Pod]] = [[] for _ in range(max(1, min(POD_THREADS, len(by_node))))]
        for name in sorted(by_node, key=lambda n: -len(by_node[n])):   # the busiest nodes first
            min(shares, key=len).extend(by_node[name])
        done = [0]
        lock = threading.Lock()
        failed: list[BaseException] = []

        def work(share: list[Pod]) -> None:
            for pod in share:
                if failed:
                    return
                self._create_pod(pod)
                with lock:
                    done[0] += 1
                    if done[0] % 10 == 0:
                        self.progress("pods", done[0], total)

        def guarded(share: list[Pod]) -> None:
            try:
                work(share)
            except BaseException as e:  # noqa: BLE001 - raised on the fabric's thread below
                failed.append(e)

        if len(shares) == 1:
            work(shares[0])   # this thread: nothing to gain from another
        else:
            threads = [threading.Thread(target=guarded, args=(share,), name=f"netlab-pods-{i}", daemon=True)
                       for i, share in enumerate(shares[1:])]
            for t in threads:
                t.start()
            guarded(shares[0])
            for t in threads:
                t.join()
            if failed:
                raise failed[0]
        self.progress("pods", total, total)

    def _ensure_nodes(self, nodes: list, hosts: dict[str, Netns], underlay: Netns | None, mtu: int) -> None:
        c = self.cluster
        total = len(nodes)
        for i, node in enumerate(nodes):
            self.progress("nodes", i, total)
            fresh = not nsfs.is_ns_file(nsfs.netns_path(node.netns))
            if fresh or node.netns in self.built:
                self.new_nodes.add(node.name)
            ns = self._open(node.netns)
            ns.open_raw()  # pods are created through it
            nf = node_fabric(c, node) if self.check_nodes or fresh else None
            if nf is not None and not fresh and self.built.get(node.netns) == nf and not node.partitioned:
                self.nodes[node.name] = ns   # just built from this very NodeFabric: nothing to read back
                continue
            if nf is not None:
                write_sysctls(node.netns, nf.sysctls, self.changes)
            self.nodes[node.name] = ns
            below = hosts[node.host] if node.host else underlay
            made = self._ensure_uplink(below, ns, node.underlay_veth, node.netns, mtu, cut=node.partitioned)
            if nf is not None:
                self._ensure_node(ns, nf)
                if made and not fresh and node.host is not None:
                    self._announce(ns, node.netns, below, node.underlay_veth)
        self.progress("nodes", total, total)

    def _announce(self, ns: Netns, netns: str, below: Netns, outer: str) -> None:
        """A node whose uplink was made again (it moved to another host): its eth0 is new, with a new MAC, which
        the other nodes' neighbour entries and the hosts' bridges do not know yet; a gratuitous ARP tells them
        at once (eth0 with arp_notify=1, its own MAC set again: the kernel announces its address). Sent once
        both ends of the new veth have carrier and the bridge forwards on its port: the kernel turns a new
        port on a moment after the link comes up (its link watcher runs up to a second later), and an
        announcement sent before that is dropped at the bridge; the other nodes then kept the old MAC until
        their entries went stale (seconds of a node unreachable, seen in test_multihost)."""
        write_sysctls(netns, {"net/ipv4/conf/eth0/arp_notify": "1"}, self.changes)
        deadline = time.monotonic() + ANNOUNCE_WAIT
        while time.monotonic() < deadline:
            port, eth0 = below.fetch(outer), ns.fetch("eth0")
            if port and eth0 and port.get("port_state") == BR_FORWARDING and eth0.get("operstate") == "UP":
                break
            time.sleep(0.02)
        link = ns.link("eth0")
        ns._do("announce eth0's address (gratuitous ARP)", ns.ipr.link, "set", index=link["index"],
               address=link["mac"])

    def _ensure_gateway(self, underlay: Netns, subnets: list, mtu: int) -> None:
        """The underlay's bridge with the gateway address (and each extra subnet's, routed between them)."""
        c = self.cluster
        underlay.ensure_bridge(UNDERLAY_BRIDGE, self.changes, mtu=mtu)
        underlay.ensure_addresses(UNDERLAY_BRIDGE, [f"{c.gateway_ip}/{c.networking.node_subnet.prefixlen}"] +
                                  [f"{s.network_address + 1}/{s.prefixlen}" for s in subnets], self.changes)
        write_sysctls(c.underlay_netns, {"net/ipv4/ip_forward": "1" if subnets else "0",
                                         "net/ipv4/icmp_ratelimit": "0",
                                         # a router on one segment: no ICMP redirects that would shortcut it
                                         "net/ipv4/conf/all/send_redirects": "0",
                                         f"net/ipv4/conf/{UNDERLAY_BRIDGE}/send_redirects": "0"},
                      self.changes)

    def _ensure_external(self, underlay: Netns, subnets: list, mtu: int) -> None:
        """The external host on the underlay: two client addresses, the service range routed to a node."""
        c = self.cluster
        ext = self._open(c.external_netns)
        write_sysctls(c.external_netns, POD_SYSCTLS, self.changes)
        # an ECMP route (the BGP router's, MetalLB's BGP mode) spreads flows by their ports too, as a data
        # centre router hashes them: without it every connection from this host to one IP takes one path
        write_sysctls(c.external_netns, {"net/ipv4/fib_multipath_hash_policy": "1"}, self.changes)
        self._ensure_uplink(underlay, ext, "external", c.external_netns, mtu)
        # two client addresses (the second one e.g. for loadBalancerSourceRanges tests), the first primary
        # (added in that order: the kernel makes the first address of a subnet the primary one)
        plen = c.networking.node_subnet.prefixlen
        ext.ensure_addresses("eth0", [f"{c.external_ip}/{plen}"], self.changes, exclusive=False)
        extra = [f"{c.networking.bgp.external_address}/{plen}"] \
            if c.networking.bgp is not None and c.networking.bgp.external_address else []   # the BGP router's own
        ext.ensure_addresses("eth0", [f"{c.external_ip}/{plen}", f"{c.external_ip2}/{plen}", *extra], self.changes)
        ext.ensure_up("lo", self.changes)
        # like an on-prem router that sends the service range to a node, so ClusterIPs can be tried
        # from outside (kube-proxy masquerades such traffic: it does not come from the pod network)
        first = next(n for n in c.nodes if n.subnet is None)
        ext.ensure_routes([Route(str(c.networking.service_subnet), str(first.ip), "eth0")] +
                          [Route(str(s), str(c.gateway_ip), "eth0") for s in subnets], self.changes,
                          owned=[c.networking.service_subnet, *subnets])

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
                write_sysctls(name, NO_IPV6, None)   # before any interface is made in it
                self.changes.add(Change("namespace", name, "create", f"namespace {name}"))
        except OSError as e:
            raise KernelError(f"cannot create or enter network namespace {name}: {e.strerror}") from None
        ns = Netns(name, IPRoute())
        self._opened.append(ns)
        ns.ensure_up("lo", self.changes) if ns.link("lo") is not None else None
        return ns

    def ensure_hosts(self, segment_address: str | None = None) -> None:
        """Only the emulated hosts (the segment and every host's namespace, NIC, underlay bridge and VXLAN),
        nothing of the nodes: what must exist before the processes that run inside the hosts (their etcd
        members and agents: dataplane/hoststore.py). `segment_address` (CIDR): an address of the segment's
        bridge itself, an admin station on the hosts' LAN for clients on this machine."""
        def work() -> None:
            nsfs.ensure_run_dir()
            try:
                self._ensure_hosts()
                if segment_address is not None:
                    seg = self._open(self.cluster.segment_netns)
                    seg.ensure_addresses(SEGMENT_BRIDGE, [segment_address], self.changes, exclusive=False)
                    seg.ensure_up(SEGMENT_BRIDGE, self.changes)
            finally:
                for ns in self._opened:
                    ns.close()
                self._opened.clear()
        nsfs.run_in_thread(work)

    def _ensure_hosts(self) -> dict[str, Netns]:
        """The emulated hosts: the segment's bridge, and per host its NIC (eth0, a veth to the segment) with
        its address, its underlay bridge and the underlay's VXLAN to the other hosts (flooding to each by an
        all-zero FDB entry; MACs learnt as a switch learns them). Returns host name -> its namespace."""
        c = self.cluster
        hc = c.networking.hosts
        if hc.mode == "real":
            if self.host is None:
                raise KernelError(f"lab {c.name} is on real hosts: the agent of each host builds that host's part")
            return self._ensure_real_host()
        seg = self._open(c.segment_netns)
        seg.ensure_bridge(SEGMENT_BRIDGE, self.changes, mtu=hc.mtu)
        out = {}
        for h in hc.hosts if self.host is None else [hc.host(self.host)]:
            hf = host_fabric(c, h.name)
            ns = self._open(hf.netns)
            self._ensure_uplink(seg, ns, hf.segment_veth, hf.netns, hf.nic_mtu, cut=None, bridge=SEGMENT_BRIDGE)
            ns.ensure_addresses(hf.nic, [hf.nic_address], self.changes)
            ns.ensure_bridge(UNDERLAY_BRIDGE, self.changes, mtu=hf.underlay_mtu,
                             mac=bridge_mac(f"{hf.netns}/{UNDERLAY_BRIDGE}"))
            self._ensure_host_vxlan(ns, hf)
            out[h.name] = ns
        return out

    def _ensure_real_host(self) -> dict[str, Netns]:
        """A real host (this machine, the agent's `host`): the lab's namespace `nl.<lab>.host.<host>` with its
        underlay bridge and the VXLAN to the other hosts over the machine's NIC. The NIC stays in the
        machine's own (root) namespace, where netlab adds no device, address or route: the VXLAN device is
        created from there with `dev <interface>` and put in the lab's namespace by the same request (its
        UDP socket stays in the root namespace, bound to the port: the one trace of the lab there)."""
        hf = host_fabric(self.cluster, self.host)
        ns = self._open(hf.netns)
        ns.ensure_bridge(UNDERLAY_BRIDGE, self.changes, mtu=hf.underlay_mtu,
                         mac=bridge_mac(f"{hf.netns}/{UNDERLAY_BRIDGE}"))
        self._ensure_host_vxlan(ns, hf, real=True)
        return {self.host: ns}

    def _real_vxlan(self, ns: Netns, hf: HostFabric) -> None:
        """Create the host's VXLAN device in this machine's root namespace over its NIC, placed at once in
        the host's namespace `ns` (IFLA_NET_NS_FD: the device never shows in the root namespace)."""
        vx = hf.vxlan
        nsfs.setns(self._root_fd, nsfs.CLONE_NEWNET)
        root = IPRoute()
        try:
            found = root.link_lookup(ifname=vx.dev)
            if not found:
                c = self.cluster
                raise UsageError(real_host_problem(f"{c.source or '<scenario>'}: Cluster {c.name}",
                                                   c.networking.hosts, self.host) or f"interface {vx.dev} is missing")
            with nsfs.opened(nsfs.netns_path(ns.name)) as fd:
                try:
                    root.link("add", ifname=vx.name, kind="vxlan", vxlan_id=vx.vni, vxlan_local=vx.local,
                              vxlan_link=found[0], vxlan_port=vx.port, address=vx.mac, mtu=vx.mtu, net_ns_fd=fd)
                except Exception as e:  # noqa: BLE001 - pyroute2's NetlinkError: said as one line
                    raise kernel_error(e, f"create {vx.name} over {vx.dev} (port {vx.port})", "the root namespace")
        finally:
            root.close()
            nsfs.enter_netns_here(nsfs.netns_path(ns.name))

    def _ensure_host_vxlan(self, ns: Netns, hf: HostFabric, real: bool = False) -> None:
        vx = hf.vxlan
        link = ns.link(vx.name)
        if link is not None:
            info = link["vxlan"] or {}
            if link["kind"] != "vxlan" or info.get("id") != vx.vni or info.get("port") != vx.port or \
                    info.get("local") != vx.local:
                ns._do(f"delete incompatible {vx.name}", ns.ipr.link, "del", index=link["index"])
                self.changes.add(Change("link", vx.name, "rebuild", f"recreate {vx.name}", ns.name))
                ns.links(refresh=True)
                link = None
        bridge = ns.index(UNDERLAY_BRIDGE)
        if link is None and real:
            self._real_vxlan(ns, hf)
            self.changes.add(Change("link", vx.name, "create", f"vxlan {vx.name} vni {vx.vni} port {vx.port} over "
                                    f"{vx.dev} of this machine, on {UNDERLAY_BRIDGE}", ns.name))
            link = ns.links(refresh=True)[vx.name]
        if link is None:
            ns._do(f"create {vx.name}", ns.ipr.link, "add", ifname=vx.name, kind="vxlan", vxlan_id=vx.vni,
                   vxlan_local=vx.local, vxlan_link=ns.index(vx.dev), vxlan_port=vx.port, address=vx.mac,
                   mtu=vx.mtu, master=bridge)
            self.changes.add(Change("link", vx.name, "create", f"vxlan {vx.name} vni {vx.vni} port {vx.port} "
                                    f"on {UNDERLAY_BRIDGE}", ns.name))
            ns.links(refresh=True)
        elif link["master"] != bridge:
            ns._do(f"attach {vx.name} to {UNDERLAY_BRIDGE}", ns.ipr.link, "set", index=link["index"], master=bridge)
            self.changes.add(Change("link", vx.name, "update", f"{vx.name} on {UNDERLAY_BRIDGE}", ns.name))
        ns.ensure_up(vx.name, self.changes, mtu=vx.mtu)
        ns.ensure_fdb(hf.fdb, vx.name, self.changes)

    def _ensure_uplink(self, underlay: Netns, inner: Netns, outer_name: str, inner_ns: str, mtu: int,
                       cut: bool | None = False, bridge: str = UNDERLAY_BRIDGE) -> bool:
        """A veth from the underlay bridge to `eth0` in a node (or the external host; or from the segment's
        bridge to an emulated host's NIC); `cut`: its underlay end is down (a partitioned node, `netlab node
        stop`); None (an emulated host's NIC, a cable): made up, its state then left as it is found (a host cut
        off by `ip link set eth0 down` stays cut until someone sets it up). Returns whether the veth was made."""
        made = False
        bridge_name = bridge
        bridge = underlay.index(bridge_name)
        outer = underlay.link(outer_name)
        inner_eth = inner.link("eth0")
        if outer is not None and inner_eth is None:  # half of a pair: start again
            underlay._do(f"delete {outer_name}", underlay.ipr.link, "del", index=outer["index"])
            outer = None
        if outer is None:
            if inner_eth is not None:
                # (gone meanwhile is as good: a host namespace removed by this pass takes its veths with it,
                # and the kernel frees the peer in the node asynchronously)
                try:
                    ignore_missing(inner.ipr.link, "del", index=inner_eth["index"])
                except NetlinkError as e:
                    raise kernel_error(e, "delete eth0", inner.name) from None
            with nsfs.opened(nsfs.netns_path(inner_ns)) as fd:
                underlay._do(f"create veth {outer_name} <-> {inner_ns}:eth0", underlay.ipr.link, "add",
                             ifname=outer_name, kind="veth", mtu=mtu, master=bridge, state="up",
                             peer={"ifname": "eth0", "net_ns_fd": fd, "mtu": mtu})
            self.changes.add(Change("link", outer_name, "create", f"veth {outer_name} to {inner_ns}", underlay.name))
            underlay.reload(outer_name)
            inner.links(refresh=True)
            made = True
        else:
            if outer["master"] != bridge:
                underlay._do(f"attach {outer_name} to {bridge_name}", underlay.ipr.link, "set",
                             index=outer["index"], master=bridge)
                self.changes.add(Change("link", outer_name, "update", f"{outer_name} on {bridge_name}",
                                        underlay.name))
            if cut is False:
                underlay.ensure_up(outer_name, self.changes)
        if cut:
            underlay.ensure_down(outer_name, self.changes)
        if made or cut is not None:
            inner.ensure_up("eth0", self.changes, mtu=mtu)
        elif inner.link("eth0")["mtu"] != mtu:
            inner._do(f"set mtu {mtu} on eth0", inner.ipr.link, "set", index=inner.index("eth0"), mtu=mtu)
            self.changes.add(Change("link", "eth0", "update", f"mtu {mtu} on eth0", inner.name))
        return made

    def _ensure_node(self, ns: Netns, nf: NodeFabric) -> None:
        ns.ensure_addresses("eth0", [nf.eth0_address], self.changes)
        ns.ensure_bridge(BRIDGE, self.changes, mac=bridge_mac(nf.netns))
        ns.ensure_addresses(BRIDGE, [nf.bridge_address], self.changes)
        vx = nf.vxlan
        link = ns.link(vx.name) if vx else None
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
        self._ensure_ipip(ns, nf)
        ns.ensure_routes(nf.routes, self.changes, owned=[self.cluster.networking.pod_subnet])

    def _ensure_ipip(self, ns: Netns, nf: NodeFabric) -> None:
        """tunl0 (backend ipip): the ipip module's fallback device, which each namespace gets when the module
        is loaded (unless net.core.fb_tunnels_only_for_init_net says otherwise: then it is made, as Calico
        does, with no local or remote address). Another backend: a tunl0 left up is taken down."""
        t, link = nf.ipip, ns.link(IPIP_DEV)
        if t is None:
            if link is not None and link["up"]:   # switched away from ipip (the device itself cannot go)
                ns.ensure_addresses(IPIP_DEV, [], self.changes)
                ns.ensure_down(IPIP_DEV, self.changes)
            return
        if link is None:
            ns._do(f"create {IPIP_DEV}", ns.ipr.link, "add", ifname=IPIP_DEV, kind="ipip")
            self.changes.add(Change("link", IPIP_DEV, "create", f"ipip {IPIP_DEV}", ns.name))
            ns.links(refresh=True)
        ns.ensure_up(IPIP_DEV, self.changes, mtu=t.mtu)
        ns.ensure_addresses(IPIP_DEV, [t.address], self.changes)


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

    def _do_many(self, steps) -> None:
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
                have = PROC_SYS.read(key).strip()
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
