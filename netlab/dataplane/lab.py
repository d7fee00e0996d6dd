"""Bring a lab up (a reconcile: only the difference is applied), inspect it, and take it down.

`down` works from what the kernel shows (the lab's named namespaces and the processes inside them),
so it succeeds even if the scenario file and the state file are gone.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from ..errors import NetlabError, NotFound, UsageError
from .. import names
from ..model.build import build, endpoints_for
from ..model.objects import Cluster, Pod
from ..model.preflight import check_commands, check_host_commands
from ..spec.parse import load_text
from ..spec.types import PROXY_MODES, Scenario
from . import conntrack, iptables, layout, nsenter, nsfs, procs, proxy, state
from .host import require_root, require_tools  # noqa: F401 (labmod.require_root is used by the CLI)
from .changes import Change, Changes
from .fabric import Fabric, node_fabric_drift, node_links, pod_link_problem, uts_path

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


def repair_command(lab: str) -> str:
    """The command that reconciles lab `lab` from the scenario it was built from."""
    return f"sudo netlab up --lab {lab}"


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
        elif old.get("fingerprint") != pod.fingerprint() or old.get("uid") != pod.uid:
            out.append(f"pod {key} (recreated)")
    return out


def resolve_lab(name: str | None) -> str:
    existing = labs()
    if name:
        if name not in existing:
            hint = f" (labs up: {', '.join(existing)})" if existing else ""
            raise NotFound(f"lab '{name}' is not up{hint}; bring it up with: sudo netlab up SCENARIO")
        return name
    if not existing:
        raise NotFound("no lab is up; bring one up with: sudo netlab up [SCENARIO]")
    if len(existing) > 1:
        raise UsageError(f"several labs are up ({', '.join(existing)}); choose one with --lab NAME")
    return existing[0]


def load_cluster(lab: str) -> tuple[Cluster, dict[str, Any]]:
    """The cluster as the last `up` decided it, rebuilt from the state file."""
    st = state.load(lab)
    if st is None or not st.get("scenario"):
        raise NetlabError(f"lab '{lab}' has no readable state ({layout.state_file(lab)}); "
                          f"remove it with: sudo netlab down {lab}")
    scenario = load_text(st["scenario"], st.get("source") or "<state>")
    scenario.name = lab
    if st.get("proxyMode") in PROXY_MODES:  # `up --proxy-mode` overrides the scenario
        scenario.networking.proxy_mode = st["proxyMode"]
    cluster = build(scenario, st)
    if {p.key for p in cluster.pods} != set(st.get("pods", {})):
        raise NetlabError(f"lab '{lab}' was built by another version of netlab (its pods would be named "
                          f"differently now); reconcile it with: {repair_command(lab)}")
    if st.get("phase") != "ready":
        sys.stderr.write(f"warning: the last 'netlab up' of lab '{lab}' did not finish; what is shown may be "
                         f"incomplete (finish it with: {repair_command(lab)})\n")
    return cluster, st


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
    require_tools("nsenter")
    check_commands(cluster)  # shared with `validate`: the same refusals, the same messages
    check_host_commands(cluster)


def up(scenario: Scenario, scenario_text: str, progress: Progress | None = None,
       proxy_mode: str | None = None, replace: bool = True) -> UpResult:
    """Build or reconcile lab `scenario.name`. `replace=False` (the CLI without --replace): refuse, before
    any change, to remove or recreate nodes or pods of a lab that was built from another source."""
    t0 = time.monotonic()
    lab = scenario.name
    if proxy_mode:
        scenario.networking.proxy_mode = proxy_mode
    prev = state.load(lab) or {}
    cluster = build(scenario, prev)
    if not replace and prev:
        _refuse_replacing(cluster, prev)
    preflight(cluster)
    flavour, restore_cmd, save_cmd = iptables.flavour_commands(cluster.networking.iptables_flavour)
    proxy.backend(cluster.networking.proxy_mode).preflight(cluster)
    state.ensure_dirs(lab)
    changes = Changes()
    prev_pods: dict[str, dict] = prev.get("pods", {})
    desired = {p.key: p for p in cluster.pods}
    existing = set(lab_namespaces(lab))
    created = not prev and not existing

    # ---- what goes away: pods and nodes no longer wanted, pods whose spec changed
    doomed_ns = []
    for name in sorted(existing):
        parsed = names.parse_netns(name, lab)
        if parsed is not None and parsed.kind == "pod":
            key = parsed.pod_key
            pod = desired.get(key)
            old = prev_pods.get(key, {})
            if pod is None or old.get("fingerprint") != pod.fingerprint() or old.get("uid") != pod.uid:
                doomed_ns.append(name)
        elif parsed is not None and parsed.kind == "node":
            if name not in {n.netns for n in cluster.nodes}:
                doomed_ns.append(name)
    pods_extra = {k: {kk: v for kk, v in prev_pods.get(k, {}).items() if kk in ("procs", "restarts", "created", "ready")}
                  for k in desired}
    servers = dict(prev.get("servers", {}))
    # intent first: if we die from here on, the next up (or down) knows what was meant
    state.save(lab, layout.state_doc(cluster, scenario_text, source_identity(cluster.source), prev, "applying", pods_extra, servers, flavour))
    if doomed_ns:
        _remove_namespaces(lab, doomed_ns, prev, changes)
        existing -= set(doomed_ns)
        for name in doomed_ns:
            parsed = names.parse_netns(name, lab)
            if parsed is not None and parsed.kind == "node":
                servers.pop(parsed.node, None)

    create = [p for p in cluster.pods if p.netns not in existing]
    check = [p for p in cluster.pods if p.netns in existing]
    fabric = Fabric(cluster, changes, progress)
    # nodes without a running built-in server get one as soon as their namespaces exist, serving no pod
    # yet: its interpreter starts while the pods are built; it is given its pods (SIGHUP) below
    started = {}
    broken = fabric.apply(create, check, before_pods=lambda: started.update(
        _start_idle_servers(cluster, servers, changes)))
    fresh = {p.key for p in create}
    if broken:
        for key, problem in broken.items():
            changes.add(Change("pod", key, "rebuild", f"rebuilt ({problem})", desired[key].netns, f"pod {key}"))
        again = [desired[k] for k in broken]
        _remove_namespaces(lab, [p.netns for p in again], prev, changes, quiet=True)
        Fabric(cluster, changes, progress).apply(again, [])
        fresh |= set(broken)
    for key in fresh:
        pods_extra.setdefault(key, {})["created"] = time.time()
        if key in prev_pods and key in broken:
            pods_extra[key]["restarts"] = int(pods_extra[key].get("restarts", 0)) + 1
        pods_extra[key].pop("procs", None)

    # ---- processes and netfilter. The built-in servers only listen, so they start first and get
    # ready while the rules are written; containers with commands start once the Services work.
    # The first sync takes readiness as last observed; a pod made now whose command declares ports is
    # not ready (not an endpoint) until it listens.
    for pod in cluster.pods:
        if pod.key in fresh:
            pod.ready = not any((c.command or c.args) and c.ports for c in pod.containers)
    _refresh_endpoints(cluster)
    strays = _unrecorded_containers(cluster, pods_extra, fresh)
    waits = _ensure_servers(cluster, fresh, servers, changes, started)
    # flannel's chains and the proxy mode's state, one restore per node
    proxy.sync(cluster, restore_cmd, save_cmd, changes, previous_mode=prev.get("proxyMode"),
               fresh={n.name for n in cluster.nodes if n.netns not in existing})
    begun = _ensure_containers(cluster, pods_extra, fresh, strays, changes)
    procs.wait_pidfiles(waits)
    # ---- readiness as observed now: the endpoints (and so the rules) follow it
    _wait_listening(cluster, pods_extra, begun)
    seen = observed_readiness(cluster, {"pods": pods_extra, "servers": servers})
    flipped = [p for p in cluster.pods if p.ready != seen[p.key]]
    for pod in cluster.pods:
        pods_extra.setdefault(pod.key, {})["ready"] = seen[pod.key]
    if flipped:
        for pod in flipped:
            pod.ready = seen[pod.key]
            changes.add(Change("readiness", pod.key, "ready" if pod.ready else "not-ready",
                               "ready" if pod.ready else "not ready (see netlab get pods)", pod.netns,
                               f"pod {pod.key}"))
        before = _endpoint_view(cluster)
        _refresh_endpoints(cluster)
        if _endpoint_view(cluster) != before:
            proxy.sync(cluster, restore_cmd, save_cmd, changes, previous_mode=cluster.networking.proxy_mode)
    # UDP flows still translated to a removed endpoint (or made while a Service had none), as kube-proxy;
    # after the readiness resync, so an endpoint that turned unready loses its flows too
    conntrack.clean_stale_udp(cluster, changes, fresh={n.name for n in cluster.nodes if n.netns not in existing})
    state.save(lab, layout.state_doc(cluster, scenario_text, source_identity(cluster.source), prev, "ready", pods_extra, servers, flavour))
    return UpResult(cluster, changes.items, flavour, time.monotonic() - t0, created, changes.records)


def _refuse_replacing(cluster: Cluster, prev: dict[str, Any]) -> None:
    """A lab built from one source, brought up from another that would destroy what the first built:
    say so, and what to run to do it anyway."""
    old = prev.get("sourcePath") or source_identity(prev.get("source"))
    if old == source_identity(cluster.source):
        return
    lost = destroyed(cluster, prev)
    if not lost:
        return
    shown = ", ".join(lost[:6]) + (f" and {len(lost) - 6} more" if len(lost) > 6 else "")
    raise UsageError(f"lab {cluster.name} was built from {prev.get('source') or 'another scenario'}; "
                     f"{cluster.source} would remove {shown}. To reconcile the lab from its own scenario run: "
                     f"{repair_command(cluster.name)}; to replace it, add --replace")


READY_WAIT = float(os.environ.get("NETLAB_READY_TIMEOUT", "5"))


def _refresh_endpoints(cluster: Cluster) -> None:
    for svc in cluster.services:
        svc.endpoints = endpoints_for(svc, cluster.pods)


def _endpoint_view(cluster: Cluster) -> list:
    return [(s.key, {k: [(str(e.ip), e.port) for e in v] for k, v in s.endpoints.items()}) for s in cluster.services]


def _wait_listening(cluster: Cluster, pods_extra: dict[str, dict], begun: list[tuple[Pod, str]],
                    timeout: float = READY_WAIT) -> None:
    """Give containers just started `timeout` seconds to listen on the ports they declare (or to end),
    so that a server that needs a moment is an endpoint after this `up`, not after the next one."""
    pending = []
    for pod, cname in begun:
        c = next(x for x in pod.containers if x.name == cname)
        wanted = {(p.protocol, p.port) for p in c.ports if p.protocol in ("TCP", "UDP")}
        if wanted:
            pending.append((pod, cname, wanted))
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        left = []
        for pod, cname, wanted in pending:
            rec = (pods_extra.get(pod.key, {}).get("procs") or {}).get(cname)
            if _container_alive(cluster.name, pod, cname, rec) and not wanted <= procs.listening(int(rec["pid"])):
                left.append((pod, cname, wanted))
        pending = left
        if pending:
            time.sleep(0.02)


def _server_paths(lab: str, node: str) -> tuple[str, str, str]:
    """(config, pidfile, log) of a node's built-in server."""
    return layout.server_config(lab, node), layout.server_pidfile(lab, node), layout.server_log(lab, node)


def _spawn_server(cluster: Cluster, node, cfg_text: str, servers: dict[str, Any], changes: Changes) -> dict:
    cfg_path, pidfile, log = _server_paths(cluster.name, node.name)
    state.write_private(cfg_path, cfg_text)
    try:
        os.unlink(pidfile)
    except FileNotFoundError:
        pass
    rec = procs.spawn(procs.netexec_argv(cfg_path, pidfile), nsfs.netns_path(node.netns), log,
                      env=procs.netexec_env(), owner=_server_owner(cluster.name, node.name))
    servers[node.name] = rec
    changes.add(Change("server", node.name, "start", f"built-in server started (pid {rec['pid']})", node.netns,
                       f"node {node.name}"))
    return rec


def _start_idle_servers(cluster: Cluster, servers: dict[str, Any], changes: Changes) -> dict[str, int]:
    """For every node without a running recorded server: stop an unrecorded one (started by an `up`
    killed before recording it), and if the node will need a server, start one with no pod yet.
    Returns node -> pid of those started."""
    started = {}
    missing = [n for n in cluster.nodes if not _server_alive(cluster.name, n, servers.get(n.name))]
    if not missing:
        return started
    strays = procs.owned([nsfs.netns_path(n.netns) for n in missing])
    for node in missing:
        found = strays.get(_server_owner(cluster.name, node.name))
        if found:
            procs.terminate([], found)
            changes.add(Change("server", node.name, "stop", "stopped an unrecorded built-in server", node.netns,
                               f"node {node.name}"))
        if any(p.builtin_ports for p in cluster.pods_on(node.name)):
            rec = _spawn_server(cluster, node, json.dumps({"pods": []}), servers, changes)
            started[node.name] = int(rec["pid"])
    return started


def _ensure_servers(cluster: Cluster, fresh: set[str], servers: dict[str, Any], changes: Changes,
                    started: dict[str, int] | None = None) -> list[tuple[str, int, int | None]]:
    """Start (or reload) each node's built-in server; returns what `procs.wait_pidfiles` should wait for.

    Runs after `_start_idle_servers` (which also stopped unrecorded servers). `started`: the servers it
    just started (node -> pid); they are given their pods by a reload once they are listening (a SIGHUP
    before their handler is in place would end them)."""
    started = started or {}
    if started:
        procs.wait_pidfiles([(_server_paths(cluster.name, n)[1], pid, None) for n, pid in started.items()])
    waits = []
    for node in cluster.nodes:
        pods = [p for p in cluster.pods_on(node.name) if p.builtin_ports]
        cfg_path, pidfile, _ = _server_paths(cluster.name, node.name)
        cfg = {"pods": [{"key": p.key, "name": p.name, "netns": nsfs.netns_path(p.netns),
                         "ports": [{"port": port, "protocol": proto} for port, proto in p.builtin_ports],
                         "log": _log_path(cluster.name, p, layout.BUILTIN)} for p in pods]}
        text = json.dumps(cfg, indent=1, sort_keys=True)
        try:
            with open(cfg_path) as f:
                same = f.read() == text
        except OSError:
            same = False
        rec = servers.get(node.name)
        running = _server_alive(cluster.name, node, rec)
        touched = any(p.key in fresh for p in pods)
        if running and same and not touched:
            continue
        if not pods and not running:
            continue
        if running:
            state.write_private(cfg_path, text)
            got = procs.read_pidfile(pidfile)
            os.kill(int(rec["pid"]), signal.SIGHUP)
            waits.append((pidfile, int(rec["pid"]), got[1] if got else -1))
            if node.name not in started:
                changes.add(Change("server", node.name, "reload", "built-in server reloaded", node.netns,
                                   f"node {node.name}"))
        else:
            rec = _spawn_server(cluster, node, text, servers, changes)
            waits.append((pidfile, int(rec["pid"]), None))
    return waits


def _ensure_containers(cluster: Cluster, pods_extra: dict[str, dict], fresh: set[str], strays: dict[str, list[int]],
                       changes: Changes) -> list[tuple[Pod, str]]:
    """Start every container with a command that is not running (restarts counted, strays adopted).
    Returns once every container started is inside its pod's namespaces (or has already exited), with
    the (pod, container) started."""
    started = []
    for pod in cluster.pods:
        extra = pods_extra.setdefault(pod.key, {})
        recs = extra.setdefault("procs", {})
        for cname, argv in pod.commands:
            rec = recs.get(cname)
            if _container_alive(cluster.name, pod, cname, rec):
                continue
            if rec is not None and pod.key not in fresh:
                extra["restarts"] = int(extra.get("restarts", 0)) + 1
            found = strays.get(_container_owner(cluster.name, pod, cname))
            if found:
                # started by an `up` that was killed before recording it: keep the oldest, end the others
                procs.terminate([], found[1:])
                recs[cname] = procs.record(found[0])
                changes.add(Change("container", f"{pod.key}/{cname}", "adopt", f"container {cname} adopted "
                                   f"(pid {found[0]}, started by an interrupted up)", pod.netns, f"pod {pod.key}"))
                continue
            container = next(c for c in pod.containers if c.name == cname)
            sup = procs.spawn_container(argv, nsfs.netns_path(pod.netns), _log_path(cluster.name, pod, cname),
                                        _exit_path(cluster.name, pod, cname), uts_path(cluster.name, pod),
                                        env={**_container_env(pod), **container.env},
                                        cwd=container.working_dir or "/",
                                        owner=_container_owner(cluster.name, pod, cname))
            started.append((pod, cname, sup))
    procs.wait_entered([(sup, nsfs.netns_path(pod.netns)) for pod, _, sup in started])
    for (pod, cname, sup), rec in zip(started, procs.container_records(
            [sup for _, _, sup in started], [_container_owner(cluster.name, pod, c) for pod, c, _ in started])):
        recs = pods_extra[pod.key]["procs"]
        recs[cname] = rec or {"pid": 0, "start": None}  # already ended: its exit status tells how
        changes.add(Change("container", f"{pod.key}/{cname}", "start", f"container {cname} started" +
                           (f" (pid {rec['pid']})" if rec else " (and has exited)"), pod.netns, f"pod {pod.key}"))
    return [(pod, cname) for pod, cname, _ in started]


def _server_owner(lab: str, node: str) -> str:
    return names.server_owner(lab, node)


def _container_owner(lab: str, pod: Pod, container: str) -> str:
    return names.container_owner(lab, pod.namespace, pod.name, container)


def _server_alive(lab: str, node, rec: Any) -> bool:
    """Whether a node's recorded built-in server runs: the same process, with its tag, in the node."""
    return procs.alive(rec, _server_owner(lab, node.name), nsfs.netns_path(node.netns))


def _container_alive(lab: str, pod: Pod, container: str, rec: Any) -> bool:
    """Whether a recorded container runs: the same process, with its tag, in the pod."""
    return procs.alive(rec, _container_owner(lab, pod, container), nsfs.netns_path(pod.netns))


def _unrecorded_containers(cluster: Cluster, pods_extra: dict[str, dict], fresh: set[str]) -> dict[str, list[int]]:
    """Containers netlab started in this lab's pods that the state does not record (an `up` killed
    between starting them and saving the state), by owner tag. One /proc scan, and only when some
    record is missing or dead in a pod that existed before this run. (Unrecorded built-in servers are
    `_start_idle_servers`' business.)"""
    lab = cluster.name
    paths = []
    for pod in cluster.pods:
        if pod.key in fresh or not pod.commands:
            continue
        recs = pods_extra.get(pod.key, {}).get("procs") or {}
        if any(not _container_alive(lab, pod, cname, recs.get(cname)) for cname, _ in pod.commands):
            paths.append(nsfs.netns_path(pod.netns))
    return procs.owned(paths) if paths else {}


def _container_env(pod: Pod) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"),
            "HOSTNAME": pod.name, "POD_NAME": pod.name, "POD_NAMESPACE": pod.namespace, "POD_IP": str(pod.ip),
            "NODE_NAME": pod.node, "HOME": "/root", "LANG": "C.UTF-8"}


def _exit_path(lab: str, pod: Pod, container: str) -> str:
    """Where a container's supervisor writes its exit status."""
    return layout.container_exit(lab, pod.namespace, pod.name, container)


def _log_path(lab: str, pod: Pod, container: str) -> str:
    return layout.container_log(lab, pod.namespace, pod.name, container)


def _remove_namespaces(lab: str, doomed: list[str], prev: dict[str, Any], changes: Changes, quiet: bool = False) -> None:
    """Kill what runs in these namespaces (by membership and by record), then delete them."""
    paths = [nsfs.netns_path(n) for n in doomed]
    records = []
    for key, pod in prev.get("pods", {}).items():
        if pod.get("netns") in doomed:
            records.extend((pod.get("procs") or {}).values())
    procs.terminate(records, procs.netns_members(paths), owner=names.lab_owner_prefix(lab))
    for name in doomed:
        nsfs.delete_ns_file(nsfs.netns_path(name))
        parsed = names.parse_netns(name, lab)
        if parsed is not None and parsed.kind == "pod":
            nsfs.delete_ns_file(layout.uts_file(lab, parsed.namespace, parsed.pod))
        if not quiet:
            changes.add(Change("namespace", name, "remove", f"removed namespace {name}"))


# ------------------------------------------------------------------ down

@dataclass
class DownResult:
    lab: str
    namespaces: int = 0
    processes: int = 0
    elapsed: float = 0.0


def down(lab: str) -> DownResult:
    t0 = time.monotonic()
    require_root("remove a lab")
    netns = lab_namespaces(lab)
    st = state.load(lab) or {}
    paths = [nsfs.netns_path(n) for n in netns]
    records = [r for p in st.get("pods", {}).values() for r in (p.get("procs") or {}).values()]
    records += list(st.get("servers", {}).values())
    killed = procs.terminate(records, procs.netns_members(paths), grace=1.0, owner=names.lab_owner_prefix(lab))
    # pods first, then nodes, the external host and the underlay
    rank = {"pod": 0, "node": 1}
    order = sorted(netns, key=lambda n: (rank.get(getattr(names.parse_netns(n, lab), "kind", ""), 2), n))
    for n in order:
        nsfs.delete_ns_file(nsfs.netns_path(n))
    base = layout.lab_dir(lab)
    uts_dir = layout.uts_dir(lab)
    if os.path.isdir(uts_dir):
        for f in os.listdir(uts_dir):
            nsfs.delete_ns_file(os.path.join(uts_dir, f))
    if os.path.isdir(base):
        shutil.rmtree(base, ignore_errors=True)
    try:
        os.rmdir(layout.RUN_DIR)  # only if no other lab is left
    except OSError:
        pass
    return DownResult(lab, len(netns), killed, time.monotonic() - t0)


# ------------------------------------------------------------------ status

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


def _exited(code: int | None) -> tuple[str, str]:
    """(reason, message) of a container that ended with exit status `code` (None: not recorded)."""
    if code is None:
        return "Error", "its exit status was not recorded"
    if code == 0:
        return "Completed", "exit code 0"
    if code > 128:
        return "Error", f"exit code {code} (killed by signal {code - 128})"
    return "Error", f"exit code {code}"


def container_statuses(cluster: Cluster, pod: Pod, rec: dict[str, Any], server_ok: bool) -> list[ContainerStatus]:
    """Each container of `pod` from what the kernel shows. A container with a command is running while
    its recorded process is (the same process, in the pod); it is ready when it also listens on every
    TCP containerPort (and has every UDP one bound) it declares, in the pod's namespace. A container with
    no command is the node's built-in server, which binds its ports before it reports ready."""
    out = []
    procs_rec = rec.get("procs") or {}
    for c in pod.containers:
        if not (c.command or c.args):
            out.append(ContainerStatus(c.name, "running", True) if server_ok else
                       ContainerStatus(c.name, "terminated", False, "Error", None,
                                       f"container {c.name} is not running (the node's built-in server is not)"))
            continue
        crec = procs_rec.get(c.name)
        if _container_alive(cluster.name, pod, c.name, crec):
            wanted = {(p.protocol, p.port) for p in c.ports if p.protocol in ("TCP", "UDP")}
            missing = sorted(wanted - procs.listening(int(crec["pid"]))) if wanted else []
            if missing:
                what = ", ".join(f"{proto} {port}" for proto, port in missing)
                out.append(ContainerStatus(c.name, "running", False, message=f"container {c.name} is not "
                                           f"ready: nothing listens on its containerPort {what}"))
            else:
                out.append(ContainerStatus(c.name, "running", True))
            continue
        code = procs.exit_status(_exit_path(cluster.name, pod, c.name)) if crec is not None else None
        reason, how = _exited(code)
        msg = f"container {c.name} is not running ({how})"
        if int(rec.get("restarts", 0)) > 0 and reason == "Error":
            out.append(ContainerStatus(c.name, "waiting", False, "CrashLoopBackOff", None,
                                       f"{msg}; it ended again after a restart; the next "
                                       f"`{repair_command(cluster.name)}` restarts it", code, reason))
        else:
            out.append(ContainerStatus(c.name, "terminated", False, reason, code, msg))
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
        return found + proxy.rules_drift(cluster, node, save_cmd)
    nodes = cluster.nodes if nodes is None else nodes
    return dict(zip((n.name for n in nodes), proxy.per_node(one, nodes)))


def pod_statuses(cluster: Cluster, st: dict[str, Any]) -> list[PodStatus]:
    """Each pod's containers (`container_statuses`) and network (namespace there, node-side veth
    present, up and on cni0: one link dump per node). STATUS is Unknown (no namespace), CrashLoopBackOff
    or Error or Completed (from its containers, as kubectl shows them), NetworkBroken (containers run
    but the pod is cut off) or Running (READY says how many containers are ready)."""
    out = []
    servers = st.get("servers", {})
    links = {n.name: node_links(n.netns) for n in cluster.nodes}
    server_ok = {n.name: _server_alive(cluster.name, n, servers.get(n.name)) for n in cluster.nodes}
    for pod in cluster.pods:
        rec = st.get("pods", {}).get(pod.key, {})
        total = len(pod.containers)
        ns_ok = nsfs.is_ns_file(nsfs.netns_path(pod.netns))
        cs = container_statuses(cluster, pod, rec, server_ok.get(pod.node, False))
        ready = sum(c.ready for c in cs)
        problems = [c.message for c in cs if c.message]
        net_problem = pod_link_problem(pod, links.get(pod.node)) if ns_ok else ""
        reasons = {c.reason for c in cs if c.state != "running"}
        if not ns_ok:
            phase, problems = "Unknown", ["network namespace missing"]
            ready = 0
        elif "CrashLoopBackOff" in reasons:
            phase = "CrashLoopBackOff"
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


def observed_readiness(cluster: Cluster, st: dict[str, Any]) -> dict[str, bool]:
    """pod key -> whether every container of the pod is ready (what the endpoints controller reads)."""
    servers = st.get("servers", {})
    server_ok = {n.name: _server_alive(cluster.name, n, servers.get(n.name)) for n in cluster.nodes}
    return {pod.key: all(c.ready for c in container_statuses(cluster, pod, st.get("pods", {}).get(pod.key, {}),
                                                             server_ok.get(pod.node, False)))
            for pod in cluster.pods}


def pod_exec_argv(lab: str, pod: Pod, argv: list[str]) -> list[str]:
    return nsenter.enter(pod.netns, argv, uts_path(lab, pod),
                         missing=f"pod {pod.key} has no network namespace ({pod.netns})")


def netns_exec_argv(netns: str, argv: list[str]) -> list[str]:
    return nsenter.enter(netns, argv)
