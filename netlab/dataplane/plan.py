"""What `up` decides, as pure functions of the desired cluster and what was observed: no kernel, no
files, no processes. `lab.up` observes (namespaces, state, processes), asks these functions what to do,
and does it; tests/unit/test_reconcile_plan.py checks the decisions without root.

The decisions come in the order `up` needs them, because some observations are only possible after
earlier steps (a pod's namespace is checked by the fabric, which may find it broken):

1. `plan_namespaces`: which of the lab's namespaces to keep, remove (pods no longer wanted or whose
   spec changed, nodes no longer wanted), which pods to create and which to check, which nodes are new.
2. `plan_idle_servers` / `plan_servers`: which nodes' built-in servers to start (idle, before the pods
   exist), stop (unrecorded ones), reload or leave alone.
3. `plan_containers`: which containers to keep, adopt (started by an interrupted `up`), start, and
   which starts count as restarts.
4. `initial_readiness` / `readiness_changes`: what the endpoints assume before and after the containers
   run.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..lb import healthcheck
from ..model.objects import Cluster, Pod
from ..names import parse_netns


# ------------------------------------------------------------------ namespaces

@dataclass
class NamespacePlan:
    remove: list[str] = field(default_factory=list)      # namespace names, pods before nodes
    create: list[str] = field(default_factory=list)      # pod keys whose namespace is made
    check: list[str] = field(default_factory=list)       # pod keys whose namespace exists and is kept
    fresh_nodes: list[str] = field(default_factory=list)  # node names whose namespace is made

    @property
    def removed_nodes(self) -> list[str]:
        return [p.node for p in map(parse_netns, self.remove) if p is not None and p.kind == "node"]


def pod_changed(pod: Pod, old: dict[str, Any] | None) -> bool:
    """Whether an existing pod must be made again: its spec (fingerprint) or UID is not what the
    previous `up` recorded (no record: it is not known to be this pod)."""
    old = old or {}
    return old.get("fingerprint") != pod.fingerprint() or old.get("uid") != pod.uid


def plan_namespaces(cluster: Cluster, prev_pods: dict[str, dict], existing: set[str]) -> NamespacePlan:
    """`existing`: the lab's namespaces as the kernel shows them; `prev_pods`: the previous state's pods."""
    desired = {p.key: p for p in cluster.pods}
    node_ns = {n.netns for n in cluster.nodes}
    hosts = cluster.networking.hosts
    fabric_ns = {cluster.underlay_netns} if hosts is None else \
        {cluster.segment_netns, *(cluster.host_netns(h.name) for h in hosts.hosts)}
    plan = NamespacePlan()
    for name in sorted(existing):
        parsed = parse_netns(name, cluster.name)
        if parsed is None:
            continue
        if parsed.kind == "pod":
            pod = desired.get(parsed.pod_key)
            if pod is None or pod_changed(pod, prev_pods.get(parsed.pod_key)):
                plan.remove.append(name)
        elif parsed.kind == "node" and name not in node_ns:
            plan.remove.append(name)
        elif parsed.kind in ("host", "segment", "underlay") and name not in fabric_ns:
            plan.remove.append(name)   # a host no longer listed; the lab moved onto hosts or off them
    left = existing - set(plan.remove)
    own = [p for p in cluster.pods if not p.host_network]   # a hostNetwork pod has no namespace to make
    plan.create = [p.key for p in own if p.netns not in left]
    plan.check = [p.key for p in own if p.netns in left]
    plan.fresh_nodes = [n.name for n in cluster.nodes if n.netns not in existing]
    return plan


def host_pods_fresh(cluster: Cluster, prev_pods: dict[str, dict]) -> list[str]:
    """hostNetwork pods that start now: new, or whose spec or UID is not what the previous `up` recorded."""
    return [p.key for p in cluster.pods if p.host_network and pod_changed(p, prev_pods.get(p.key))]


def host_pods_gone(cluster: Cluster, prev_pods: dict[str, dict]) -> list[str]:
    """Pods the previous `up` ran in a node's namespace (hostNetwork: their recorded netns is a node's)
    that are no longer wanted as they were (removed, changed, or no longer hostNetwork): their processes
    are stopped, the node's namespace stays."""
    desired = {p.key: p for p in cluster.pods}
    out = []
    for key, rec in sorted(prev_pods.items()):
        parsed = parse_netns(rec.get("netns"), cluster.name) if isinstance(rec, dict) and \
            isinstance(rec.get("netns"), str) else None
        if parsed is None or parsed.kind != "node":
            continue
        pod = desired.get(key)
        if pod is None or not pod.host_network or pod_changed(pod, rec):
            out.append(key)
    return out


def vanished_pods(prev_pods: dict[str, dict], existing: set[str]) -> list[str]:
    """Pod keys the previous `up` made whose namespace is gone (deleted by hand): what ran in them
    survives in the orphaned namespace and must be stopped, whether the pod is made again or not."""
    return sorted(k for k, rec in prev_pods.items()
                  if isinstance(rec, dict) and isinstance(rec.get("netns"), str) and rec["netns"] not in existing)


def destroyed(cluster: Cluster, prev: dict[str, Any]) -> list[str]:
    """What an `up` of `cluster` would remove or recreate of what the previous `up` built (`prev`, its
    state): nodes no longer wanted, pods no longer wanted or whose spec changed."""
    out = []
    wanted_nodes = {n.name for n in cluster.nodes}
    out += [f"node {n}" for n in sorted(prev.get("nodes", {})) if n not in wanted_nodes]
    desired = {p.key: p for p in cluster.pods}
    for key, old in sorted(prev.get("pods", {}).items()):
        pod = desired.get(key)
        if pod is None:
            out.append(f"pod {key}")
        elif pod_changed(pod, old):
            out.append(f"pod {key} (recreated)")
    return out


# ------------------------------------------------------------------ built-in servers

@dataclass
class IdleServerPlan:
    stop: list[str] = field(default_factory=list)    # nodes whose unrecorded server is stopped
    start: list[str] = field(default_factory=list)   # nodes that get a server serving no pod yet


def needs_server(cluster: Cluster, node: str) -> bool:
    """A node's built-in server serves its pods' built-in ports and kube-proxy's health checks."""
    return any(p.builtin_ports for p in cluster.pods_on(node)) or bool(healthcheck.proxied_health_checks(cluster))


def plan_idle_servers(cluster: Cluster, alive: dict[str, bool], strays: set[str]) -> IdleServerPlan:
    """For nodes whose recorded server is not running (`alive`: node -> bool): stop an unrecorded one
    (`strays`: nodes where one was found), start an idle one where the node needs a server."""
    plan = IdleServerPlan()
    for node in cluster.nodes:
        if alive.get(node.name):
            continue
        if node.name in strays:
            plan.stop.append(node.name)
        if needs_server(cluster, node.name):
            plan.start.append(node.name)
    return plan


def plan_servers(cluster: Cluster, fresh: set[str], alive: dict[str, bool], config_same: dict[str, bool],
                 started: set[str], exited: set[str] = frozenset()) -> dict[str, str]:
    """node -> "keep" | "reload" | "start" | "none" for each node's built-in server, after the idle start:
    `alive` (running now), `config_same` (its config file already says what it should serve), `fresh`
    (pods made by this run), `started` (idle servers just started, which must be given their pods),
    `exited` (nodes whose server says one of its pods has exited: a reload restarts it)."""
    out = {}
    for node in cluster.nodes:
        pods = [p for p in cluster.pods_on(node.name) if p.builtin_ports]
        running = alive.get(node.name, False)
        touched = any(p.key in fresh for p in pods)
        if (running and config_same.get(node.name, False) and not touched and node.name not in started
                and node.name not in exited):
            out[node.name] = "keep"
        elif not pods and not running and not needs_server(cluster, node.name):
            out[node.name] = "none"
        elif running:
            out[node.name] = "reload"
        else:
            out[node.name] = "start"
    return out


# ------------------------------------------------------------------ containers

@dataclass
class ContainerAction:
    pod: str                 # pod key
    container: str
    action: str              # keep | adopt | start
    restart: bool = False    # counts as a restart of the pod
    pid: int = 0             # adopt: the process kept
    end: list[int] = field(default_factory=list)   # adopt: duplicates to end


def plan_containers(cluster: Cluster, recorded: dict[tuple[str, str], bool], fresh: set[str],
                    strays: dict[tuple[str, str], list[int]],
                    exits: dict[tuple[str, str], int | None] | None = None) -> list[ContainerAction]:
    """For every container with a command: `recorded` maps (pod key, container) to whether its recorded
    process is alive (absent: no record); `strays` to the PIDs (oldest first) of unrecorded processes
    with its owner tag; `exits` to the exit status of a recorded process that ended (None: unknown);
    `fresh`: pods made by this run. A dead container is restarted (a restart unless its pod is new) as
    its pod's restartPolicy says: Always, OnFailure after a non-zero (or unknown) exit status, Never not
    at all (it is kept ended); an unrecorded one started by an interrupted `up` is adopted (the
    oldest), the others ended."""
    out = []
    exits = exits or {}
    for pod in cluster.pods:
        for cname, _ in pod.commands:
            k = (pod.key, cname)
            if config_error(pod, cname):   # the kubelet's CreateContainerConfigError: never started
                out.append(ContainerAction(pod.key, cname, "keep"))
                continue
            if recorded.get(k) or (k in recorded and pod.key not in fresh
                                   and (pod.restart_held or not restarts(pod.restart_policy, exits.get(k)))):
                out.append(ContainerAction(pod.key, cname, "keep"))
                continue
            restart = k in recorded and pod.key not in fresh
            found = strays.get(k)
            if found:
                out.append(ContainerAction(pod.key, cname, "adopt", restart, found[0], list(found[1:])))
            else:
                out.append(ContainerAction(pod.key, cname, "start", restart))
    return out


def config_error(pod, cname: str) -> str | None:
    """Why the kubelet would not start container `cname` of `pod` (CreateContainerConfigError), or None:
    its securityContext asks for a non-root user and gives none (netlab/spec/security.py)."""
    c = next((x for x in pod.containers if x.name == cname), None)
    sec = getattr(c, "security", None)
    return sec.config_error(pod.name, pod.namespace, cname) if sec is not None else None


def restarts(policy: str, exit_status: int | None) -> bool:
    """Whether the kubelet restarts a container that ended with `exit_status` under `policy`."""
    if policy == "Never":
        return False
    if policy == "OnFailure":
        return exit_status != 0
    return True


# ------------------------------------------------------------------ readiness

def initial_readiness(cluster: Cluster, fresh: set[str]) -> dict[str, bool]:
    """Readiness the first proxy sync assumes: as last observed (the model's) for pods that exist; a
    pod made now is ready at once if it only runs the built-in server (which is listening when `up`
    returns) or commands that declare no port, and not before it listens otherwise."""
    return {p.key: p.decided_ready is not False and (
                (not any((c.command or c.args) and c.ports for c in p.containers)) if p.key in fresh else p.ready)
            for p in cluster.pods}


def readiness_changes(cluster: Cluster, seen: dict[str, bool]) -> list[str]:
    """Pod keys whose observed readiness differs from what the model (and so the rules) assumed."""
    return [p.key for p in cluster.pods if p.ready != seen.get(p.key, p.ready)]
