"""How large a lab this machine can hold: limits derived from what the machine and its kernel can hold,
not constants. Pure: the machine's readings come in as data (`Readings`; `netlab/dataplane/machine.py`
reads them from /proc once per command), so the parser's checks are unit tested with fixed readings.

Each limit says what it is, its value, where that value comes from and how to raise it:

- memory: MemAvailable (/proc/meminfo), less a reserve kept for the rest of the machine, over the memory
  a node and a pod cost (`NODE_KIB`, `POD_KIB`: measured by the benchmark part `scale`, see
  docs/bench/summary.md: MemAvailable before and after a 100 x 100 lab, kernel and netlab processes);
- namespaces: user.max_net_namespaces and user.max_uts_namespaces (a pod is one of each, a node one
  network namespace), less those in use;
- mounts: fs.mount-max, less the mounts of netlab's mount namespace (every pod's network and UTS
  namespace files are bind mounts, as `ip netns add` makes them);
- processes: kernel.pid_max and kernel.threads-max, less the tasks running (a node runs `PROCS_PER_NODE`
  processes; a pod with a container that runs a program of the host one more);
- bridge ports: the kernel's BR_MAX_PORTS (1024, net/bridge/br_private.h; a compile-time constant): the
  underlay bridge holds every node and the external host, a node's cni0 its pods (with a node's podCIDR,
  which `model.build` checks per node after scheduling, `pods_per_node`).

The host's own limits are never changed: an error names the host setting to raise (as `netlab up` and
`netlab probe` do for the neighbour table, net.ipv4.neigh.default.gc_thresh3, which is not a limit on
the size of a lab: only on how many of its pods may talk at once, see `neighbour_note`).
"""
from __future__ import annotations

from dataclasses import dataclass

BR_MAX_PORTS = 1024        # the kernel's ports per bridge (net/bridge/br_private.h, BR_MAX_PORTS)
# Measured by the benchmark part `scale` (docs/bench/summary.md; 2026-12-01: 467 KiB a pod, 1.0 MiB a node):
# what a 100-node lab holds with 10,000 pods and with none (MemAvailable on up and down), rounded up.
POD_KIB = 512              # a pod: net + UTS namespaces, veth pair, bridge port, addresses, routes, sysctls,
#                            state, and its share of its node's built-in server (a Python process per node)
NODE_KIB = 2 * 1024        # a node: its namespace, eth0, cni0, VXLAN with its peers' entries, rules
RESERVE_KIB = 256 * 1024   # kept available for everything else on the machine (a small VM's 1 GiB must still
                           # hold a few-node lab: the stock-kernel VM lane has 0.7 GiB available)
PROCS_PER_NODE = 4         # processes a node may run: its built-in server, the lab's loop and DNS shares, BIRD
UNDERLAY_EXTRA_PORTS = 2   # the external host (and the BGP router's port) on the underlay bridge
MOUNTS_PER_POD = 2         # the pod's network and UTS namespace files
MOUNTS_PER_NODE = 1


@dataclass(frozen=True)
class Readings:
    """What the machine holds, as read by netlab/dataplane/machine.py (or given by a test). A reading
    that could not be taken is None and its limit is left out."""
    mem_available_kib: int | None = None     # /proc/meminfo MemAvailable
    pid_max: int | None = None               # /proc/sys/kernel/pid_max
    threads_max: int | None = None           # /proc/sys/kernel/threads-max
    tasks: int = 0                           # tasks running now (/proc/loadavg's 4th field)
    max_net_namespaces: int | None = None    # /proc/sys/user/max_net_namespaces
    max_uts_namespaces: int | None = None    # /proc/sys/user/max_uts_namespaces
    net_namespaces: int = 0                  # network namespaces in use (named ones, /run/netns)
    mount_max: int | None = None             # /proc/sys/fs/mount-max
    mounts: int = 0                          # mounts of this mount namespace (/proc/self/mountinfo)
    labs: tuple[tuple[str, int, int], ...] = ()   # (lab, its pod namespaces, its node namespaces) up now

    def without(self, lab: str) -> "Readings":
        """The readings as if lab `lab` were not up: `netlab up` of a lab that exists reconciles it, so
        what it holds already is counted back (its namespaces, mounts and measured memory)."""
        for name, pods, nodes in self.labs:
            if name == lab:
                mem = None if self.mem_available_kib is None else \
                    self.mem_available_kib + pods * POD_KIB + nodes * NODE_KIB
                return Readings(mem, self.pid_max, self.threads_max, max(0, self.tasks - nodes * PROCS_PER_NODE),
                                self.max_net_namespaces, self.max_uts_namespaces,
                                max(0, self.net_namespaces - pods - nodes),
                                self.mount_max, max(0, self.mounts - pods * MOUNTS_PER_POD - nodes * MOUNTS_PER_NODE),
                                tuple(x for x in self.labs if x[0] != lab))
        return self


@dataclass(frozen=True)
class Limit:
    """At most `value` nodes or pods, because of `what`: `source` says where the value comes from and
    `fix` how to raise it."""
    value: int
    what: str
    source: str
    fix: str

    def text(self, unit: str) -> str:
        return f"this machine holds at most {self.value} {unit} ({self.what}: {self.source})"


def _gib(kib: int) -> str:
    return f"{kib / 2**20:.1f} GiB"


def node_limits(r: Readings) -> list[Limit]:
    """What bounds the number of nodes, on its own (pods left aside)."""
    out = [Limit(BR_MAX_PORTS - UNDERLAY_EXTRA_PORTS, "underlay bridge ports",
                 f"the kernel's BR_MAX_PORTS {BR_MAX_PORTS} ports per bridge, {UNDERLAY_EXTRA_PORTS} of them for "
                 "the external host and the BGP router", "use fewer nodes")]
    if r.mem_available_kib is not None:
        free = max(0, r.mem_available_kib - RESERVE_KIB)
        out.append(Limit(free // NODE_KIB, "memory",
                         f"MemAvailable {_gib(r.mem_available_kib)} in /proc/meminfo, less {RESERVE_KIB // 1024} MiB kept "
                         f"free, at {NODE_KIB // 1024} MiB a node (measured, docs/bench/summary.md)",
                         "use fewer nodes, or free memory on this machine"))
    out += _processes(r, PROCS_PER_NODE, "a node")
    if r.max_net_namespaces is not None:
        out.append(Limit(max(0, r.max_net_namespaces - r.net_namespaces - 2), "network namespaces",
                         f"user.max_net_namespaces {r.max_net_namespaces}, {r.net_namespaces} in use",
                         "use fewer nodes, or raise it on the host: sysctl -w user.max_net_namespaces=N"))
    return out


def _processes(r: Readings, per: int, unit: str) -> list[Limit]:
    out = []
    for key, cap in (("kernel.pid_max", r.pid_max), ("kernel.threads-max", r.threads_max)):
        if cap is not None:
            out.append(Limit(max(0, cap - r.tasks - 1000) // per, "processes",
                             f"{key} {cap}, {r.tasks} tasks running, 1000 kept free, {per} per {unit.split()[-1]}",
                             f"use fewer {unit.split()[-1]}s, or raise it on the host: sysctl -w {key}=N"))
    return out


def pod_limits(r: Readings, nodes: int, processes_per_pod: float = 0.0) -> list[Limit]:
    """What bounds the number of pods of a lab of `nodes` nodes (their cost taken first).
    `processes_per_pod`: how many processes of the host's programs the pods run, on average."""
    out = []
    if r.mem_available_kib is not None:
        free = max(0, r.mem_available_kib - RESERVE_KIB - nodes * NODE_KIB)
        out.append(Limit(free // POD_KIB, "memory",
                         f"MemAvailable {_gib(r.mem_available_kib)} in /proc/meminfo, less {RESERVE_KIB // 1024} MiB kept "
                         f"free and {nodes} nodes at {NODE_KIB // 1024} MiB, at {POD_KIB} KiB a pod "
                         "(measured, docs/bench/summary.md)",
                         "use fewer replicas, or free memory on this machine"))
    for key, cap, in_use in (("user.max_net_namespaces", r.max_net_namespaces, r.net_namespaces + nodes + 2),
                             ("user.max_uts_namespaces", r.max_uts_namespaces, 0)):
        if cap is not None:
            out.append(Limit(max(0, cap - in_use), "namespaces",
                             f"{key} {cap}" + (f", {in_use} in use or taken by the nodes" if in_use else ""),
                             f"use fewer replicas, or raise it on the host: sysctl -w {key}=N"))
    if r.mount_max is not None:
        left = r.mount_max - r.mounts - nodes * MOUNTS_PER_NODE
        out.append(Limit(max(0, left) // MOUNTS_PER_POD, "mounts",
                         f"fs.mount-max {r.mount_max}, {r.mounts} mounts in use, {MOUNTS_PER_POD} a pod "
                         "(its network and UTS namespace files)",
                         "use fewer replicas, or raise it on the host: sysctl -w fs.mount-max=N"))
    if processes_per_pod > 0:
        for lim in _processes(r, 1, "a pod"):
            left = lim.value - nodes * PROCS_PER_NODE
            per = f"{processes_per_pod:g} per pod, {PROCS_PER_NODE} per node"
            out.append(Limit(int(max(0, left) / processes_per_pod), lim.what, lim.source.replace("1 per pod", per),
                             lim.fix.replace("use fewer pods", "use fewer replicas")))
    return out


def pods_per_node(cidr_addresses: int) -> Limit:
    """The pods one node holds: its podCIDR's addresses (less network, gateway and broadcast), and its
    cni0's ports (BR_MAX_PORTS). Kubernetes' kubelet defaults max-pods to 110; netlab is bound only by these."""
    by_cidr = cidr_addresses - 3
    if by_cidr <= BR_MAX_PORTS:
        return Limit(by_cidr, "podCIDR", f"a node's podCIDR holds {by_cidr} pod addresses",
                     "use more nodes or a shorter networking.nodeCIDRMaskSize")
    return Limit(BR_MAX_PORTS, "cni0 bridge ports", f"the kernel's BR_MAX_PORTS {BR_MAX_PORTS} ports per bridge",
                 "use more nodes")


def lowest(limits: list[Limit], count: int) -> Limit | None:
    """The binding limit `count` exceeds (the lowest of those it exceeds), or None."""
    over = [lim for lim in limits if count > lim.value]
    return min(over, key=lambda lim: lim.value) if over else None


@dataclass(frozen=True)
class MachineLimits:
    """The readings of one machine, asked by the parser (`parse_documents(..., limits=)`)."""
    readings: Readings

    def nodes_over(self, lab: str, nodes: int) -> Limit | None:
        return lowest(node_limits(self.readings.without(lab)), nodes)

    def pods_over(self, lab: str, pods: int, nodes: int, processes_per_pod: float = 0.0) -> Limit | None:
        return lowest(pod_limits(self.readings.without(lab), nodes, processes_per_pod), pods)


def neighbour_note(pods: int, gc_thresh3: int) -> str | None:
    """What `netlab up` tells the user about the host's neighbour table for a lab of `pods` pods (a pod
    and its node need an entry each for any pod that talks; the table is shared by every namespace and
    only the host's root namespace has its thresholds)."""
    if pods * 4 <= gc_thresh3:
        return None
    return (f"note: {pods} pods can need more neighbour (ARP) entries than the host allows "
            f"(net.ipv4.neigh.default.gc_thresh3={gc_thresh3}, shared by all namespaces); if probes time out, "
            f"raise it on the host (netlab never changes the host): sysctl -w net.ipv4.neigh.default.gc_thresh2="
            f"{_pow2(pods * 2)} net.ipv4.neigh.default.gc_thresh3={_pow2(pods * 4)}")


def _pow2(n: int) -> int:
    p = 1024
    while p < n:
        p *= 2
    return p
