"""What `get pods` and `get nodes` show, read from the kernel: each container's state and readiness,
each pod's network, each node's difference from what netlab built. Read only."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Collection

from ..model.objects import Cluster, Pod
from ..names import repair_command
from . import bgp, iptables, nsfs, plan, procs, proxy, supervise
from .fabric import node_fabric_drift, node_links, pod_link_problem


@dataclass
class ContainerStatus:
    """A container as kubectl shows it: state running, terminated (exit code known or not) or waiting
    (CrashLoopBackOff: it ended after a restart; the next `up` restarts it), and whether it is ready."""
    name: str
    state: str                   # running | terminated | waiting
    ready: bool
    reason: str = ""             # terminated: Completed | Error; waiting: CrashLoopBackOff
    exit_code: int | None = None
    message: str = ""
    last_exit: int | None = None    # waiting: the exit code of the run that ended
    last_reason: str = ""


@dataclass
class PodStatus:
    pod: Pod
    phase: str          # Running | Completed | Error | CrashLoopBackOff | NetworkBroken | Unknown
    ready: int
    total: int
    restarts: int
    created: float | None
    problem: str = ""
    containers: list[ContainerStatus] = field(default_factory=list)

    @property
    def is_ready(self) -> bool:
        return self.phase != "Unknown" and self.ready == self.total


WAITING = ("CreateContainerConfigError", "ContainerCreating")   # a container not started: why (podsetup)


def _exited(code: int | None) -> tuple[str, str]:
    """(reason, message) of a container that ended with exit status `code` (None: not recorded)."""
    if code is None:
        return "Error", "its exit status was not recorded"
    if code == 0:
        return "Completed", "exit code 0"
    if code > 128:
        return "Error", f"exit code {code} (killed by signal {code - 128})"
    return "Error", f"exit code {code}"


@dataclass
class Builtin:
    """What a pod's containers without a command (served by its node's built-in server) look like now:
    whether the node's server runs, what its status file says of the pod, and the ports listening in
    the pod's namespace (None: not looked at)."""
    server: bool = False
    said: dict = field(default_factory=dict)
    heard: set | None = None
    look: bool = True      # whether its ports were looked at (else a running container counts as listening)


def _missing_ports(c, heard: set) -> str:
    """The declared TCP/UDP ports of container `c` that nothing listens on (or binds) in `heard`, as text."""
    wanted = {(p.protocol, p.port) for p in c.ports if p.protocol in ("TCP", "UDP")}
    return ", ".join(f"{proto} {port}" for proto, port in sorted(wanted - heard))


def container_statuses(cluster: Cluster, pod: Pod, rec: dict[str, Any], builtin: Builtin) -> list[ContainerStatus]:
    """Each container of `pod` from what the kernel shows. A container with a command is running while
    its recorded process is (the same process, in the pod); it is ready when it also listens on every
    TCP containerPort (and has every UDP one bound) it declares, in the pod's namespace. A container with
    no command but ports is served by the node's built-in server: running while the server runs and its
    status file does not say the pod exited (agnhost's /exit: terminated with that code), ready when its
    ports listen, as for a command container. One with no command and no port (a plain client image)
    runs no process of its own: it is running, and ready, while its pod exists (`up` starts no server
    for it: `plan.needs_server`)."""
    out = []
    procs_rec = rec.get("procs") or {}
    restarted = int(rec.get("restarts", 0)) > 0
    for c in pod.containers:
        if not (c.command or c.args):
            if not any(p.protocol in ("TCP", "UDP") for p in c.ports):
                # nothing for the built-in server to serve, so no process: a plain client image,
                # running (and ready) while its pod exists, like the pause container that holds it
                out.append(ContainerStatus(c.name, "running", True))
                continue
            if not builtin.server:
                out.append(ContainerStatus(c.name, "terminated", False, "Error", None,
                                           f"container {c.name} is not running (the node's built-in server is not)"))
                continue
            gone, code = supervise.exited_code(builtin.said)
            if gone:
                reason, how = _exited(code)
                out.append(_ended(cluster, c.name, f"container {c.name} is not running ({how}, asked by its "
                                  "/exit)", reason, code, restarted))
                continue
            missing = _missing_ports(c, builtin.heard) if builtin.heard is not None else ""
            out.append(ContainerStatus(c.name, "running", not missing, message=f"container {c.name} is not "
                                       f"ready: nothing listens on its containerPort {missing}" if missing else ""))
            continue
        why = plan.config_error(pod, c.name)
        if why:
            out.append(ContainerStatus(c.name, "waiting", False, "CreateContainerConfigError", None, why))
            continue
        crec = procs_rec.get(c.name)
        if supervise.container_alive(cluster.name, pod, c.name, crec):
            missing = _missing_ports(c, procs.listening(int(crec["pid"]))) if builtin.look else ""
            out.append(ContainerStatus(c.name, "running", not missing, message=f"container {c.name} is not "
                                       f"ready: nothing listens on its containerPort {missing}" if missing else ""))
            continue
        if supervise.exit_pending(crec):   # ended a moment ago: its exit status is not written yet
            out.append(ContainerStatus(c.name, "running", False, message=f"container {c.name} is ending"))
            continue
        waits = (rec.get("waiting") or {}).get(c.name)
        if crec is None and waits:   # never started: its env or a volume is missing (live/podsetup.py)
            out.append(ContainerStatus(c.name, "waiting", False, waits[0], None, waits[1]))
            continue
        code = procs.exit_status(supervise.exit_path(cluster.name, pod, c.name)) if crec is not None else None
        reason, how = _exited(code)
        out.append(_ended(cluster, c.name, f"container {c.name} is not running ({how})", reason, code, restarted))
    return out


def _ended(cluster: Cluster, name: str, msg: str, reason: str, code: int | None, restarted: bool) -> ContainerStatus:
    """A container that is not running: terminated, or CrashLoopBackOff if it failed again after a restart."""
    if restarted and reason == "Error":
        return ContainerStatus(name, "waiting", False, "CrashLoopBackOff", None,
                               f"{msg}; it ended again after a restart; the next "
                               f"`{repair_command(cluster.name)}` restarts it", code, reason)
    return ContainerStatus(name, "terminated", False, reason, code, msg)


def builtin_views(cluster: Cluster, st: dict[str, Any], listen: Collection[str] | None = None) -> dict[str, Builtin]:
    """pod key -> `Builtin` for every pod: the node's server alive (one check per node), its status
    file (one read per node) and, for pods it serves that have not exited, the ports listening in the
    pod's namespace (one thread hopping through them). `listen`: the pods whose ports are looked at
    (None: all); the others' running containers count as listening (a live lab's kubelet looks only at
    pods that were not ready yet: entering every pod's namespace costs about 10 ms a pod)."""
    servers = st.get("servers", {})
    alive = {n.name: supervise.server_alive(cluster, n, servers.get(n.name)) for n in cluster.nodes}
    said = {n: supervise.server_pods(cluster.name, n, servers.get(n)) if ok else {} for n, ok in alive.items()}
    out = {}
    look = {}
    for pod in cluster.pods:
        view = out[pod.key] = Builtin(alive.get(pod.node, False), said.get(pod.node, {}).get(pod.key) or {},
                                      look=listen is None or pod.key in listen)
        if pod.builtin_ports and view.server and view.look and not supervise.exited_code(view.said)[0]:
            path = nsfs.netns_path(pod.netns)
            told = _told_listening(view.said, path) if not pod.host_network else None
            if told is not None:
                view.heard = told
            else:
                look.setdefault(path, []).append(view)   # hostNetwork pods share one
    for path, heard in procs.listening_in(look).items():
        for view in look[path]:
            view.heard = heard or set()
    return out


def _told_listening(said: dict, path: str) -> set[tuple[str, int]] | None:
    """The sockets the node's built-in server says it holds in the pod (its status file), if it says so
    for the pod's namespace as it is now (a pod made again has a new one, which the server has not
    entered until its next reload); None: look in the namespace. The server's own sockets are what
    would be seen there: entering 10,000 pods' namespaces to read them back took minutes."""
    got, where = said.get("listening"), said.get("netns")
    if not isinstance(got, list) or not isinstance(where, list) or nsfs.ns_inode(path) != tuple(where):
        return None
    out = set()
    for item in got:
        proto, _, port = str(item).partition("/")
        if proto in ("TCP", "UDP") and port.isdigit():
            out.add((proto, int(port)))
    return out


def node_problems(cluster: Cluster, st: dict[str, Any], nodes: list | None = None) -> dict[str, list[str]]:
    """For each node (`nodes`, default all), what `up` would change in it (its namespace, sysctls, links,
    addresses, routes, VXLAN neighbours and FDB, iptables rules and the proxy mode's own objects), found
    by the same reconcile as `up`'s, read only, against the whole `cluster` (a node's peers decide its
    routes and FDB). An empty list: the node is as netlab built it. Nodes in parallel."""
    flavour = (st.get("iptables") or {}).get("flavour") or cluster.networking.iptables_flavour
    save_cmd = iptables.flavour_commands(flavour)[2]

    def one(node) -> list[str]:
        found = node_fabric_drift(cluster, node)
        if not nsfs.is_ns_file(nsfs.netns_path(node.netns)):
            return found
        return found + bgp.drift(cluster, node) + proxy.rules_drift(cluster, node, save_cmd)
    nodes = cluster.nodes if nodes is None else nodes
    return dict(zip((n.name for n in nodes), proxy.per_node(one, nodes)))


def pod_statuses(cluster: Cluster, st: dict[str, Any]) -> list[PodStatus]:
    """Each pod's containers (`container_statuses`) and network (namespace there, node-side veth
    present, up and on cni0: one link dump per node). STATUS is Unknown (no namespace), CrashLoopBackOff
    or Error or Completed (from its containers, as kubectl shows them), NetworkBroken (containers run
    but the pod is cut off) or Running (READY says how many containers are ready)."""
    out = []
    links = {n.name: node_links(n.netns) for n in cluster.nodes}
    builtin = builtin_views(cluster, st)
    for pod in cluster.pods:
        rec = st.get("pods", {}).get(pod.key, {})
        total = len(pod.containers)
        ns_ok = nsfs.is_ns_file(nsfs.netns_path(pod.netns))
        cs = container_statuses(cluster, pod, rec, builtin[pod.key])
        ready = sum(c.ready for c in cs)
        problems = [c.message for c in cs if c.message]
        net_problem = pod_link_problem(pod, links.get(pod.node)) if ns_ok and not pod.host_network else ""
        reasons = {c.reason for c in cs if c.state != "running"}
        if not ns_ok:
            phase, problems = "Unknown", ["network namespace missing"]
            ready = 0
        elif "CreateContainerConfigError" in reasons:
            phase = "CreateContainerConfigError"
        elif "CrashLoopBackOff" in reasons:
            phase = "CrashLoopBackOff"
        elif reasons & set(WAITING):   # a container the kubelet could not start (its env, a volume)
            phase = next(r for r in WAITING if r in reasons)
        elif "Error" in reasons:
            phase = "Error"
        elif reasons == {"Completed"}:  # kubectl: NotReady while others still run
            phase = "NotReady" if any(c.state == "running" for c in cs) else "Completed"
        elif net_problem:
            phase = "NetworkBroken"
        else:
            phase = "Running"
        if net_problem:
            problems.append(net_problem)
        out.append(PodStatus(pod, phase, ready, total, int(rec.get("restarts", 0)), rec.get("created"),
                             "; ".join(problems), cs))
    return out


def observed_readiness(cluster: Cluster, st: dict[str, Any], listen: Collection[str] | None = None) -> dict[str, bool]:
    """pod key -> whether every container of the pod is ready (what the endpoints controller reads);
    `listen` as in `builtin_views`."""
    builtin = builtin_views(cluster, st, listen)
    return {pod.key: all(c.ready for c in container_statuses(cluster, pod, st.get("pods", {}).get(pod.key, {}),
                                                             builtin[pod.key]))
            for pod in cluster.pods}
