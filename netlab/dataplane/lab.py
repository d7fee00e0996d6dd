"""Bring a lab up (a reconcile: only the difference is applied) and take it down: the kernel side.

`up` observes (the lab's namespaces, its state, its processes), asks `plan` what to do, and does it
through `fabric` (links, addresses, routes), `supervise` (processes) and `proxy` (netfilter). What
`get` shows is `status`' business. `down` works from what the kernel shows (the lab's named namespaces
and the processes inside them), so it succeeds even if the scenario file and the state file are gone.
"""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from .. import names
from ..errors import NotFound, UsageError
from ..model.build import refresh_endpoints
from ..model.objects import Cluster, Pod
from ..model.preflight import check_commands, check_host_commands, check_proxy_mode
from ..names import repair_command
from ..spec.types import PROXY_MODES
from . import bgp, conntrack, hostnet, iptables, layout, nsenter, nsfs, plan, podfiles, procs, proxy, state, supervise
from .changes import Change, Changes
from .fabric import Fabric, uts_path
from .fabric import preflight as fabric_preflight
from .host import require_root, require_sandbox_kernel, require_tools  # noqa: F401 (labmod.require_root is used by the CLI)
from .status import ContainerStatus, PodStatus, node_problems, observed_readiness, pod_statuses  # noqa: F401

Progress = Callable[[str, int, int], None]


# ------------------------------------------------------------------ discovery

def lab_namespaces(lab: str) -> list[str]:
    """The namespaces netlab makes for `lab` (and only those: a namespace someone else named
    `nl.<lab>` or `nl.<lab>.mine` is not ours, so `down` leaves it alone)."""
    return [n for n in nsfs.list_netns() if names.is_lab_netns(n, lab)]


def labs() -> list[str]:
    """Labs that exist: by their namespaces (nl.<lab>.underlay) or their state directory."""
    found = {parsed.lab for parsed in map(names.parse_netns, nsfs.list_netns()) if parsed is not None}
    # a state directory alone is a lab too: an `up` killed before it wrote state.json leaves one
    found.update(state.labs_on_disk())
    return sorted(found)


def stored_scenario(lab: str) -> tuple[str, str, str | None] | None:
    """(scenario text, source, proxy mode) that lab `lab` was last built from, or None if its state
    does not record them."""
    st = state.load(lab)
    if st is None or not st.get("scenario"):
        return None
    mode = st.get("proxyMode")
    return st["scenario"], st.get("source") or "<state>", mode if mode in PROXY_MODES else None


def source_identity(source: str | None) -> str | None:
    """What tells two scenario sources apart: a file's real path (the same file given by another path
    is the same source), else the source as given (`<default>`, `<stdin>`...)."""
    if source and not source.startswith("<") and os.path.isfile(source):
        return os.path.realpath(source)
    return source


def mark_last_up(lab: str) -> None:
    """Record that `up` of `lab` finished now (resolve_lab picks the lab last brought up)."""
    state.write_private(layout.last_up_file(lab), f"{time.time():.6f}\n")


def last_up(lab: str) -> float | None:
    try:
        with open(layout.last_up_file(lab)) as f:
            return float(f.read().strip())
    except (OSError, ValueError):
        return None


def resolve_lab(name: str | None, pick_last: bool = True, say=None) -> str:
    """The lab a command acts on: `name`; else the only lab up; else (like kubectl's current context)
    the lab that was last brought up, saying so through `say` (a line for stderr) since that is a
    choice. `pick_last=False` (for `down`): several labs and no name is an error."""
    existing = labs()
    if name:
        if name not in existing:
            hint = f" (labs up: {', '.join(existing)})" if existing else ""
            raise NotFound(f"lab '{name}' is not up{hint}; bring it up with: sudo netlab up SCENARIO")
        return name
    if not existing:
        raise NotFound("no lab is up; bring one up with: sudo netlab up [SCENARIO]")
    if len(existing) == 1:
        return existing[0]
    stamped = [(t, n) for n in existing if (t := last_up(n)) is not None] if pick_last else []
    if not stamped:
        raise UsageError(f"several labs are up ({', '.join(existing)}); choose one with --lab NAME")
    chosen = max(stamped)[1]
    if say is None:
        import sys
        say = lambda line: sys.stderr.write(line + "\n")  # noqa: E731
    say(f"using lab {chosen} (last brought up); choose another with --lab NAME")
    return chosen


# ------------------------------------------------------------------ up

@dataclass
class UpResult:
    cluster: Cluster
    changes: list[str] = field(default_factory=list)    # as text, for people
    flavour: str = ""
    elapsed: float = 0.0
    created: bool = False    # the lab did not exist before this up
    records: list[Change] = field(default_factory=list)   # the changes as data


def preflight(cluster: Cluster) -> None:
    """Everything that can be checked before the kernel is touched."""
    require_root("build a lab")
    require_tools("nsenter", "unshare", "setpriv")   # setpriv, unshare: the containers' sandbox
    if any(p.commands for p in cluster.pods) or any(c.command or c.args for _, _, t in cluster.templates
                                                    for c in t.containers):
        require_sandbox_kernel()
    check_commands(cluster)  # shared with `validate`: the same refusals, the same messages
    check_host_commands(cluster)
    check_proxy_mode(cluster)
    proxy.backend(cluster.networking.proxy_mode).preflight(cluster)
    bgp.preflight(cluster)   # backend bgp: BIRD installed
    fabric_preflight(cluster)   # backend ipip: the kernel's ipip module


@dataclass
class LivePass:
    """How much of the lab a control loop's pass looks at (`apply(live=...)`); None everywhere is a
    whole reconcile, like `up`'s.

    check: pods whose namespace, veth, addresses and routes are read back and repaired (None: all; new
        pods and pods whose namespace is gone are built whatever this says; the nodes are always checked)
    listen: pods whose ports are looked at to decide readiness (None: all; see status.builtin_views)
    proxy_state: the loop's proxy SyncState (incremental proxy syncs; see dataplane/proxy/syncstate.py)
    nodes: the nodes this pass builds and reconciles, with their pods (None: all; an agent's: its host's,
        netlab/live/agent.py). The other nodes and their pods are only modelled (routes, FDB, neighbours
        towards them; their endpoints in the rules): their namespaces and processes are not looked at.
    first_probes: the kubelet's first readiness probes (`up` of a lab no control loop runs for yet,
        live/sync.py), called once the pass's containers run and before readiness is observed, with the
        pods' records as this pass left them: verdicts by pod key, taken as the kubelet's (decided_ready),
        so the endpoints this pass writes follow them (None: the pods' readiness as the model says).
    prebuilt: a new lab's underlay and nodes, built while the controllers ran (dataplane/prebuild.Prebuilt):
        its namespaces count as made by this pass (fresh), its changes as this pass's.
    """
    check: set[str] | None = None
    listen: set[str] | None = None
    proxy_state: proxy.SyncState | None = None
    nodes: set[str] | None = None
    first_probes: Callable[[Cluster, dict[str, dict]], dict[str, bool]] | None = None
    prebuilt: Any = None


def host_views(cluster: Cluster, own: set[str] | None) -> tuple[Cluster, Cluster]:
    """(the cluster with only the nodes `own`, the same with only their pods too): what a pass scoped to
    some nodes works on. The first keeps every pod (the proxy rules and policies of a node need them all),
    the second is what is built and supervised. They share the model's objects (services, pods) with
    `cluster`: readiness decided on one is seen by the others."""
    if own is None:
        return cluster, cluster
    nodes = dataclasses.replace(cluster, nodes=[n for n in cluster.nodes if n.name in own])
    return nodes, dataclasses.replace(nodes, pods=[p for p in cluster.pods if p.node in own])


def own_namespaces(lab: str, existing: set[str], own: set[str] | None, desired: dict[str, Pod],
                   prev_pods: dict[str, dict]) -> set[str]:
    """Of the lab's namespaces, those a pass scoped to nodes `own` may look at and remove: its nodes', and
    its pods' (desired on its nodes, or recorded by it); the lab's others (underlay, external host) too.
    Another host's nodes and pods are never looked at (on one machine every host sees all of /run/netns)."""
    if own is None:
        return existing
    out = set()
    for name in existing:
        parsed = names.parse_netns(name, lab)
        if parsed is None:
            continue
        if parsed.kind == "node":
            if parsed.node in own:
                out.add(name)
        elif parsed.kind == "pod":
            pod, rec = desired.get(parsed.pod_key), prev_pods.get(parsed.pod_key) or {}
            if (pod.node if pod is not None else rec.get("node")) in own:
                out.add(name)
        else:
            out.add(name)
    return out


# what a pod's record in state.json keeps from one pass to the next (the kernel layer's knowledge)
POD_RECORD_KEYS = ("procs", "restarts", "created", "ready", "listening")


def apply(cluster: Cluster, scenario_text: str, prev: dict[str, Any], progress: Progress | None = None,
          replace: bool = True, live: LivePass | None = None) -> UpResult:
    """Build or reconcile lab `cluster.name`: make the kernel hold `cluster` (built by `lab_spec` against
    `prev`, the lab's state as loaded). `replace=False` (the CLI without --replace): refuse, before any
    change, to remove or recreate nodes or pods of a lab that was built from another source. `live`: a
    control loop's pass, scoped as it says (`LivePass`)."""
    t0 = time.monotonic()
    lab = cluster.name
    if not replace and prev:
        _refuse_replacing(cluster, prev)
    preflight(cluster)
    flavour, restore_cmd, save_cmd = iptables.flavour_commands(cluster.networking.iptables_flavour)
    state.ensure_dirs(lab)
    changes = Changes()
    live = live or LivePass()
    own = live.nodes
    prev_pods: dict[str, dict] = prev.get("pods", {})
    if own is not None:   # a host's agent: its own records only (the others' are its model's, not its kernel's)
        prev_pods = {k: v for k, v in prev_pods.items() if v.get("node") in own}
    desired = {p.key: p for p in cluster.pods}
    existing = own_namespaces(lab, set(lab_namespaces(lab)), own, desired, prev_pods)
    if live.prebuilt is not None:   # made for this pass (dataplane/prebuild.py): as new as if it made them
        existing -= set(live.prebuilt.made)
        changes.records.extend(live.prebuilt.changes)
    created = not prev and not existing
    whole = cluster
    nodes_view, cluster = host_views(cluster, own)   # from here on `cluster`: what this pass builds
    source = source_identity(cluster.source)

    # ---- what goes away: pods and nodes no longer wanted, pods whose spec changed
    todo = plan.plan_namespaces(cluster, prev_pods, existing)
    pods_extra = {k: {kk: v for kk, v in prev_pods.get(k, {}).items() if kk in POD_RECORD_KEYS}
                  for k in desired}
    servers = dict(prev.get("servers", {}))
    # intent first: if we die from here on, the next up (or down) knows what was meant (a loop's scoped
    # pass that makes and removes nothing has no intent to record)
    if live is None or live.check is None or todo.remove or todo.create:
        state.save(lab, layout.state_doc(cluster, scenario_text, source, prev, "applying", pods_extra, servers,
                                         flavour))
    # pods whose namespace someone deleted: what ran in them lives on in the orphaned namespace
    orphans = plan.vanished_pods(prev_pods, existing)
    if orphans:
        supervise.stop_orphans(lab, orphans, prev_pods, changes)
    gone_host = plan.host_pods_gone(cluster, prev_pods)   # hostNetwork pods: no namespace to remove
    if gone_host:
        hostnet.stop_pods(lab, gone_host, prev_pods, changes)
    if todo.remove:
        supervise.remove_namespaces(lab, todo.remove, prev, changes)
        for node in todo.removed_nodes:
            servers.pop(node, None)

    create = [desired[k] for k in todo.create]
    check = [desired[k] for k in todo.check if live.check is None or k in live.check]
    # a host's agent builds its host (an emulated host's namespace, its nodes) or, with one underlay, its nodes
    fhost = layout.host() if own is not None and whole.networking.hosts is not None else None
    fabric = Fabric(whole, changes, progress, nodes=live.check is None, host=fhost, only=own)
    if live.prebuilt is not None:
        fabric.built = live.prebuilt.fabrics
    # nodes without a running built-in server get one as soon as their namespaces exist, serving no pod
    # yet: started from a thread of their own while the fabric's builds the pods (spawning 100 servers
    # held 100 nodes' pods back by 2 s), their interpreters start meanwhile; given their pods (SIGHUP) below
    built = threading.Event()   # (until it is set, the servers start one after the other: start_idle_servers)
    idle = nsfs.Background(lambda: supervise.start_idle_servers(cluster, servers, changes, built),
                           "netlab-servers")
    # every pod's /etc/resolv.conf and /etc/hosts (the kubelet's files: they depend on the model only), and the
    # new pods' built-in server logs, written on a thread of their own while the fabric's builds the pods
    # (30,000 files at 10,000 pods)
    files = nsfs.Background(lambda: (podfiles.write_all(cluster),
                                     supervise.make_builtin_logs(cluster, set(todo.create))), "netlab-podfiles")
    files.start()
    # the first sync of the rules (flannel's chains, the proxy mode's): they need the nodes, not the pods, so
    # with no pod to check (none can be found broken and rebuilt: a new lab's `up`) its endpoints' readiness is
    # known before the pods are built, and it runs on a thread of its own while they are (iptables-restore in
    # 100 nodes is 0.3-0.9 s of a 10,000-pod `up`); else it runs once they are, as it did
    early = not check
    rule_changes = Changes()
    rules = nsfs.Background(lambda: proxy.sync(nodes_view, restore_cmd, save_cmd, rule_changes,
                                               previous_mode=prev.get("proxyMode"), fresh=set(todo.fresh_nodes),
                                               state=live.proxy_state), "netlab-rules")
    if early:
        _first_readiness(cluster, whole, desired, set(todo.create) | set(plan.host_pods_fresh(cluster, prev_pods)))

    def before_pods() -> None:
        idle.start()
        if early:
            rules.start()
    try:
        broken = fabric.apply(create, check, before_pods=before_pods)
    finally:
        rules.join()
        built.set()
        started = idle.result() or {}
        files.join()
    files.result()   # (its error, if it had one, once the fabric's own has gone through)
    fresh = set(todo.create) | set(plan.host_pods_fresh(cluster, prev_pods))
    hostnet.ensure_uts(cluster, changes)
    # backend bgp: the nodes' and the external router's BGP speakers (configured from the whole lab: an agent's
    # nodes peer with every other host's too)
    bgp.ensure(whole, changes, own=own, router=bgp.router_here(whole, own, fhost))
    if broken:
        for key, problem in broken.items():
            changes.add(Change("pod", key, "rebuild", f"rebuilt ({problem})", desired[key].netns, f"pod {key}"))
        again = [desired[k] for k in broken]
        supervise.remove_namespaces(lab, [p.netns for p in again], prev, changes, quiet=True)
        Fabric(whole, changes, progress, host=fhost, only=own).apply(again, [])
        fresh |= set(broken)
    for key in fresh:
        pods_extra.setdefault(key, {})["created"] = time.time()
        if key in prev_pods and key in broken:
            pods_extra[key]["restarts"] = int(pods_extra[key].get("restarts", 0)) + 1
        pods_extra[key].pop("procs", None)

    # ---- processes and netfilter. The built-in servers only listen, so they start first and get
    # ready while the rules are written; containers with commands start once the Services work.
    # The first sync takes readiness as `plan.initial_readiness` says.
    if not early:
        _first_readiness(cluster, whole, desired, fresh)
    strays = supervise.unrecorded_containers(cluster, pods_extra, fresh)
    waits = supervise.ensure_servers(cluster, fresh, servers, changes, started, pods_extra)
    # flannel's chains and the proxy mode's state, one restore per node (made while the pods were, if early)
    if not early:
        rules.start()
    rules.result()
    changes.records.extend(rule_changes.records)
    begun = supervise.ensure_containers(cluster, pods_extra, fresh, strays, changes, files_written=True)
    procs.wait_pidfiles(waits)
    # ---- readiness as observed now: the endpoints (and so the rules) follow it
    supervise.wait_listening(cluster, pods_extra, begun)
    if live.first_probes is not None:   # the kubelet's first probes: their verdicts decide, as a loop's would
        for key, verdict in live.first_probes(cluster, pods_extra).items():
            desired[key].decided_ready = verdict
    listen = None
    if live.listen is not None:  # and every container instance started by this pass
        listen = live.listen | fresh | {p.key for p, _ in begun} | {
            k for k in desired if int(pods_extra.get(k, {}).get("restarts", 0)) !=
            int((prev_pods.get(k) or {}).get("restarts", 0))}
    seen = observed_readiness(cluster, {"pods": pods_extra, "servers": servers}, listen)
    for pod in cluster.pods:
        # what was seen before the kubelet's verdict: the readiness the next pass's first sync assumes
        # once a probe says ready (live/sync.py desired), so that a probe's verdict costs one sync, not two
        pods_extra.setdefault(pod.key, {})["listening"] = seen[pod.key]
        if pod.decided_ready is not None:  # a live lab's kubelet decides (probes, termination)
            seen[pod.key] = seen[pod.key] and pod.decided_ready
    flipped = plan.readiness_changes(cluster, seen)
    for pod in cluster.pods:
        pods_extra.setdefault(pod.key, {})["ready"] = seen[pod.key]
    if flipped:
        for key in flipped:
            pod = desired[key]
            pod.ready = seen[key]
            changes.add(Change("readiness", key, "ready" if pod.ready else "not-ready",
                               "ready" if pod.ready else "not ready (see netlab get pods)", pod.netns, f"pod {key}"))
        before = _endpoint_view(whole)
        refresh_endpoints(whole)
        if _endpoint_view(whole) != before:
            proxy.sync(nodes_view, restore_cmd, save_cmd, changes, previous_mode=cluster.networking.proxy_mode,
                       state=live.proxy_state)
    # UDP flows still translated to a removed endpoint (or made while a Service had none), as kube-proxy;
    # after the readiness resync, so an endpoint that turned unready loses its flows too
    conntrack.clean_stale_udp(nodes_view, changes, fresh={n.name for n in cluster.nodes if n.netns not in existing})
    # kube-proxy's health check counts, as the endpoints now stand (each node's built-in server answers them)
    supervise.publish_health_checks(cluster)
    doc = layout.state_doc(cluster, scenario_text, source, prev, "ready", pods_extra, servers, flavour)
    # when every pod's network was last read back (a control loop starting now need not do it again)
    doc["wholePassAt"] = time.time() if live is None or live.check is None else prev.get("wholePassAt")
    state.save(lab, doc)
    return UpResult(whole, changes.items, flavour, time.monotonic() - t0, created, changes.records)


def _first_readiness(cluster: Cluster, whole: Cluster, desired: dict[str, Pod], fresh: set[str]) -> None:
    """The readiness the pass's first sync of the rules takes (`plan.initial_readiness`, `fresh`: the pods this
    pass makes), and the endpoints that follow from it."""
    for key, ready in plan.initial_readiness(cluster, fresh).items():
        desired[key].ready = ready
    refresh_endpoints(whole)


def _refuse_replacing(cluster: Cluster, prev: dict[str, Any]) -> None:
    """A lab built from one source, brought up from another that would destroy what the first built:
    say so, and what to run to do it anyway."""
    old = prev.get("sourcePath") or source_identity(prev.get("source"))
    if old == source_identity(cluster.source):
        return
    lost = plan.destroyed(cluster, prev)
    if not lost:
        return
    shown = ", ".join(lost[:6]) + (f" and {len(lost) - 6} more" if len(lost) > 6 else "")
    raise UsageError(f"lab {cluster.name} was built from {prev.get('source') or 'another scenario'}; "
                     f"{cluster.source} would remove {shown}. To reconcile the lab from its own scenario run: "
                     f"{repair_command(cluster.name)}; to replace it, add --replace")


def _endpoint_view(cluster: Cluster) -> list:
    return [(s.key, {k: [(str(e.ip), e.port, e.ready, e.serving, e.terminating) for e in v]
                     for k, v in s.endpoints.items()}) for s in cluster.services]


# ------------------------------------------------------------------ down

# called with the lab's name first thing in `down` (netlab.live closes its connection to the lab's store)
DOWN_HOOKS: list[Callable[[str], None]] = []


def stop_control_loop(lab: str, grace: float = 5.0) -> bool:
    """End the lab's control loop (netlab/live/loop.py: SIGTERM, SIGKILL after `grace`) or its agents (one
    loop per host): every process tagged as one (its pidfile may not be written yet, or name a loop that
    lost the race to another); True if one ran."""
    tag = names.lab_owner_prefix(lab) + "control-loop"
    found = procs.tagged([names.lab_owner_prefix(lab)], host=True).items()
    # and its agents (one control loop per host: netlab/live/agent.py), and nothing else of the lab's
    pids = [pid for pid, owner in found if owner == tag or names.is_agent_owner(lab, owner)]
    if not pids:
        return False
    procs.terminate([], pids, grace=grace, owner=None)
    try:
        os.unlink(layout.loop_pidfile(lab))
    except OSError:
        pass
    return True


@dataclass
class DownResult:
    lab: str
    namespaces: int = 0
    processes: int = 0
    elapsed: float = 0.0


def down(lab: str, keep_store: bool = False) -> DownResult:
    """Remove what lab `lab` has on this machine. `keep_store`: its keys in etcd stay (a real host's agent
    removing its machine's part when `netlab down` ran on another machine: live/teardown.py)."""
    t0 = time.monotonic()
    require_root("remove a lab")
    stop_control_loop(lab)  # first: it would make again what is removed below
    for hook in DOWN_HOOKS:
        hook(lab)
    store_conf = os.path.join(layout.lab_dir(lab), "store.json")
    if os.path.exists(store_conf) and not keep_store:   # the lab's store is in etcd: its keys go (before the
        from ..store.etcd import drop_store             # lab's own members)
        drop_store(store_conf)
    netns = lab_namespaces(lab)
    st = state.load(lab) or {}
    records = [r for p in st.get("pods", {}).values() for r in (p.get("procs") or {}).values()]
    records += list(st.get("servers", {}).values())
    # by namespace membership, by record, and by owner tag anywhere (a pod whose namespace was deleted
    # by hand leaves its processes in a namespace with no name)
    killed = _sweep(lab, netns, [names.lab_owner_prefix(lab)], records)
    base = layout.lab_dir(lab)
    uts_dir = layout.uts_dir(lab)
    if os.path.isdir(uts_dir):
        for f in os.listdir(uts_dir):
            nsfs.delete_ns_file(os.path.join(uts_dir, f))
    if os.path.isdir(base):
        shutil.rmtree(base, ignore_errors=True)
    # a control loop that was starting when `down` began (its `up` had just returned) can be missed by the
    # first look and start the lab's servers after the sweep: look again until none runs and nothing tagged
    # as the lab's runs outside the host's namespace (where netlab starts nothing but its loops)
    for _ in range(3):
        loops = stop_control_loop(lab, grace=1.0)
        again = procs.tagged([names.lab_owner_prefix(lab)])
        if not again and not loops:
            break
        killed += procs.terminate([], sorted(again), grace=1.0, owner=None)
    try:
        os.rmdir(layout.RUN_DIR)  # only if no other lab is left
    except OSError:
        pass
    return DownResult(lab, len(netns), killed, time.monotonic() - t0)


def down_part(lab: str, netns: list[str], owners: list[str]) -> DownResult:
    """Remove part of lab `lab` on this machine: the namespaces `netns` that exist, the processes in them and
    those whose owner tag starts with one of `owners` (one host's nodes and pods, where other hosts' agents
    run on the same machine: live/teardown.py). The lab's directory stays."""
    t0 = time.monotonic()
    have = set(lab_namespaces(lab))
    mine = [n for n in netns if n in have]
    killed = _sweep(lab, mine, owners, [])
    return DownResult(lab, len(mine), killed, time.monotonic() - t0)


def _sweep(lab: str, netns: list[str], owners: list[str], records: list[dict]) -> int:
    """End the processes in `netns`, those recorded and those tagged with one of `owners`; then remove the
    namespaces: pods first, then nodes, the external host and the underlay. Returns how many ended."""
    paths = [nsfs.netns_path(n) for n in netns]
    pids = set(procs.netns_members(paths)) | set(procs.tagged(owners))
    killed = procs.terminate(records, sorted(pids), grace=1.0, owner=names.lab_owner_prefix(lab))
    rank = {"pod": 0, "node": 1}
    order = sorted(netns, key=lambda n: (rank.get(getattr(names.parse_netns(n, lab), "kind", ""), 2), n))
    for n in order:
        nsfs.delete_ns_file(nsfs.netns_path(n))
    return killed


# ------------------------------------------------------------------ exec

def pod_exec_argv(lab: str, pod: Pod, argv: list[str], container: str | None = None,
                  services: list[dict] | None = None) -> list[str]:
    """argv in the pod with its container's privileges and environment (netlab exec, as kubectl exec):
    podexec.py; `services` (live.podsetup.service_objects of the lab's model) give a container that does
    not run its service variables."""
    from .podexec import exec_argv
    return exec_argv(lab, pod, argv, container, services=services)


def pod_debug_argv(lab: str, pod: Pod, argv: list[str], profile: str = "general") -> list[str]:
    """argv in a fresh sandbox of a kubectl-debug-like profile in the pod's network namespace."""
    from .podexec import debug_argv
    return debug_argv(lab, pod, argv, profile)


def netns_exec_argv(netns: str, argv: list[str]) -> list[str]:
    return nsenter.enter(netns, argv)
