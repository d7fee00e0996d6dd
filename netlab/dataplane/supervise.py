"""The lab's processes, done: each node's built-in server and every container with a command are
started, reloaded, adopted or stopped as `plan` decides from what this module observes (which
recorded processes are alive, which unrecorded ones carry the lab's owner tags, which servers'
configs are current). How processes are started and recognised is `procs`' business.
"""
from __future__ import annotations

import json
import os
import signal
import threading
import time
from typing import Any

from .. import names
from ..lb import healthcheck
from ..model.objects import Cluster, Pod
from ..workload.podconf import config_digest
from . import layout, nsfs, plan, podfiles, procs, sandbox, state, volumes
from .changes import Change, Changes
from .fabric import uts_path

READY_WAIT = float(os.environ.get("NETLAB_READY_TIMEOUT", "5"))


# ------------------------------------------------------------------ recognising netlab's processes

def server_owner(lab: str, node: str) -> str:
    return names.server_owner(lab, node)


def container_owner(lab: str, pod: Pod, container: str) -> str:
    return names.container_owner(lab, pod.namespace, pod.name, container)


def server_netns(cluster: Cluster, node) -> str:
    """The namespace a node's built-in server process runs in. Every socket it serves is made in its pod's
    (or, for kube-proxy's health checks, its node's) namespace by name, so the process's own namespace
    serves nothing. On one machine's underlay it is the lab's underlay namespace, one for every node's
    server, not one each: a tool that visits every namespace holding a process (this sandbox's init,
    docs/design.md) then visits one, not a hundred. On a lab spread over hosts it stays the node's own: a
    host's agent may run inside its host's namespace, and netlab never signals a process that shares its
    caller's namespace (procs.terminate)."""
    return names.underlay_netns(cluster.name) if node.host is None else node.netns


def server_alive(cluster: Cluster, node, rec: Any) -> bool:
    """Whether a node's recorded built-in server runs: the same process, with its tag, where it is started."""
    return procs.alive(rec, server_owner(cluster.name, node.name), nsfs.netns_path(server_netns(cluster, node)))


def container_alive(lab: str, pod: Pod, container: str, rec: Any) -> bool:
    """Whether a recorded container runs: the same process, with its tag, in the pod."""
    return procs.alive(rec, container_owner(lab, pod, container), nsfs.netns_path(pod.netns))


def exit_pending(rec: Any) -> bool:
    """Whether a container's process has ended but its supervisor (recorded under "sup") has not yet
    written its exit status: for that moment the status is unknown, so it is neither a failure nor a
    reason to restart it. The supervisor exits right after writing, so once it is gone the file is whole."""
    return isinstance(rec, dict) and procs.alive(rec.get("sup"))


def container_running(lab: str, pod: Pod, container: str, rec: Any) -> bool:
    """`container_alive`, or ended so recently that its exit status is not written yet (`exit_pending`)."""
    return container_alive(lab, pod, container, rec) or exit_pending(rec)


def server_pods(lab: str, node: str, rec: Any) -> dict[str, dict]:
    """What node `node`'s running built-in server (`rec`, its record) says of its pods' containers, from
    the status file it rewrites whenever one starts, exits (agnhost's /exit) or is restarted: pod key
    -> {state: running | exited, exitCode, restarts}. {} if the file is not that server's."""
    return _pods_in(_server_status(lab, node, rec))


def _pods_in(doc: dict) -> dict[str, dict]:
    pods = doc.get("pods")
    return {k: v for k, v in pods.items() if isinstance(v, dict)} if isinstance(pods, dict) else {}


def _server_status(lab: str, node: str, rec: Any) -> dict:
    """The status file of node `node`'s running built-in server (`rec`); {} if it is not that server's."""
    try:
        with open(layout.server_status(lab, node)) as f:
            doc = json.load(f)
    except (OSError, ValueError):
        return {}
    if not isinstance(doc, dict) or not isinstance(rec, dict) or doc.get("pid") != rec.get("pid"):
        return {}
    return doc


def exited_code(entry: dict | None) -> tuple[bool, int | None]:
    """(exited, exit code) of a pod's entry in its server's status file."""
    if not entry or entry.get("state") != "exited":
        return False, None
    code = entry.get("exitCode")
    return True, code if isinstance(code, int) else None


def exit_path(lab: str, pod: Pod, container: str) -> str:
    """Where a container's supervisor writes its exit status."""
    return layout.container_exit(lab, pod.namespace, pod.name, container)


def log_path(lab: str, pod: Pod, container: str) -> str:
    return layout.container_log(lab, pod.namespace, pod.name, container)


def make_builtin_logs(cluster: Cluster, keys: set[str]) -> None:
    """Create the log file (empty, 0600, as the server opens it: workload/podconf.PodLog) of each pod of
    `keys` that the built-in server serves. `up` makes them on a thread of its own while the fabric builds
    the pods, so that each server, given its pods, opens files that exist: creating 10,000 files was most
    of what 100 servers did before they listened (a server still makes a log that is missing)."""
    made = False
    for pod in cluster.pods:
        if pod.key not in keys or not pod.builtin_ports:
            continue
        if not made:
            os.makedirs(layout.logs_dir(cluster.name), mode=0o700, exist_ok=True)
            made = True
        fd = os.open(log_path(cluster.name, pod, layout.BUILTIN), os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC,
                     0o600)
        try:
            os.fchmod(fd, 0o600)
        finally:
            os.close(fd)


# ------------------------------------------------------------------ built-in servers

def _spawn_server(cluster: Cluster, node, cfg_text: str, servers: dict[str, Any], changes: Changes,
                  forks: procs.ServerForks | None = None) -> dict:
    lab = cluster.name
    cfg_path, pidfile = layout.server_config(lab, node.name), layout.server_pidfile(lab, node.name)
    state.write_private(cfg_path, cfg_text)
    try:
        os.unlink(pidfile)
    except FileNotFoundError:
        pass
    where = server_netns(cluster, node)
    argv = procs.netexec_argv(cfg_path, pidfile)
    log, owner = layout.server_log(lab, node.name), server_owner(lab, node.name)
    rec = forks.spawn(argv, nsfs.netns_path(where), log, owner) if forks is not None else None
    if rec is None:   # (one server, or no fork server)
        rec = procs.spawn(argv, nsfs.netns_path(where), log, env=procs.netexec_env(), owner=owner)
    servers[node.name] = rec
    changes.add(Change("server", node.name, "start", f"built-in server started (pid {rec['pid']})", where,
                       f"node {node.name}"))
    return rec


# Built-in servers starting at once while the pods are built (each an interpreter importing its modules,
# about 80 ms of CPU, or a fork of one that has: FORK_FROM). `up` starts them while its threads build the
# pods, which keep about one core busy in the kernel. 100 of them spawned at once (before 2026-12-04) were
# 100 runnable processes on the machine's 2 cores: the pods' threads, and whichever thread held the
# interpreter lock they wait for, got a fair share of 1/50 of a core each, and no pod was made for 3 to 5 s
# of a 10,000-pod `up`. Started one after the other, each once the one before listens, they take the core
# the pods leave idle (docs/design.md, "Scale"); once the pods are built (or with no pod to build), all the
# others at once.
STARTING_AT_ONCE = max(1, (os.cpu_count() or 2) // 2)
# From this many servers to start, they are forked from one interpreter that has imported the server
# (procs.ServerForks: a fork each, not an interpreter's start: 100 of them took 8 s of CPU from the pods)
FORK_FROM = 3


def start_idle_servers(cluster: Cluster, servers: dict[str, Any], changes: Changes,
                       pods_built: threading.Event | None = None) -> dict[str, int]:
    """For every node without a running recorded server: stop an unrecorded one (started by an `up`
    killed before recording it), and if the node will need a server, start one with no pod yet.
    `pods_built`: set when the pass's pods are built; until then, at most STARTING_AT_ONCE servers are
    starting at a time. Returns node -> pid of those started."""
    alive = {n.name: server_alive(cluster, n, servers.get(n.name)) for n in cluster.nodes}
    missing = [n for n in cluster.nodes if not alive[n.name]]
    if not missing:
        return {}
    # (in the node's own namespace too: where netlab before 2026-12-04 started them)
    found = procs.owned(sorted({nsfs.netns_path(p) for n in missing for p in (server_netns(cluster, n), n.netns)}))
    strays = {n.name: found[server_owner(cluster.name, n.name)] for n in missing
              if server_owner(cluster.name, n.name) in found}
    todo = plan.plan_idle_servers(cluster, alive, set(strays))
    for name in todo.stop:
        node = cluster.node(name)
        procs.terminate([], strays[name])
        changes.add(Change("server", name, "stop", "stopped an unrecorded built-in server", node.netns,
                           f"node {name}"))
    started: dict[str, int] = {}
    starting: list[tuple[str, int, None]] = []   # (pidfile, pid, None): spawned, not yet listening
    forks = None
    if len(todo.start) >= FORK_FROM:
        first = cluster.node(todo.start[0])
        forks = procs.ServerForks(nsfs.netns_path(server_netns(cluster, first)),
                                  os.path.join(layout.logs_dir(cluster.name), "server-forks.log"),
                                  names.server_forks_owner(cluster.name))
    try:
        for name in todo.start:
            while len(starting) >= STARTING_AT_ONCE and pods_built is not None and not pods_built.is_set():
                if procs.pidfile_current(*starting[0]):
                    starting.pop(0)
                else:
                    pods_built.wait(0.005)
            rec = _spawn_server(cluster, cluster.node(name), json.dumps({"pods": []}), servers, changes, forks)
            started[name] = int(rec["pid"])
            starting.append((layout.server_pidfile(cluster.name, name), int(rec["pid"]), None))
    finally:
        if forks is not None:
            forks.close()
    return started   # (the last ones are waited for by ensure_servers)


_CONFIGS: dict[tuple[str, str], tuple[tuple, str]] = {}   # (lab, node) -> (what it was made of, the text)


def _delay_shutdown(p: Pod) -> int:
    """agnhost netexec's --delay-shutdown of the pod's built-in server containers."""
    return max((c.delay_shutdown for c in p.containers if not c.command and not c.args), default=0)


def health_state_path(lab: str, node: str) -> str:
    """The node's kube-proxy health check counts, read by its built-in server (netlab/lb/healthcheck.py)."""
    return os.path.join(layout.run_dir(lab), f"healthz-{node}.json")


_HEALTH: dict[str, str] = {}   # path -> the text last written there


def publish_health_checks(cluster: Cluster) -> None:
    """Write each node's health check counts (its ready local endpoints per Service with a
    healthCheckNodePort) where its built-in server reads them; only files whose text changed."""
    for node in cluster.nodes:
        path = health_state_path(cluster.name, node.name)
        text = healthcheck.state_text(cluster, node.name)
        if _HEALTH.get(path) == text and os.path.exists(path):
            continue
        state.write_private(path, text)
        _HEALTH[path] = text


def _server_config(cluster: Cluster, node) -> str:
    pods = [p for p in cluster.pods_on(node.name) if p.builtin_ports]
    health = healthcheck.server_entry(cluster, node.name, nsfs.netns_path(node.netns),
                                      health_state_path(cluster.name, node.name))
    made_of = tuple((p.namespace, p.name, p.uts_hostname, p.netns, repr(p.builtin_apps), p.stopping,
                     _delay_shutdown(p) if p.stopping else 0, p.killed) for p in pods) + (repr(health),)
    memo = _CONFIGS.get((cluster.name, node.name))
    if memo is not None and memo[0] == made_of:   # a control loop's pass: usually the same pods
        return memo[1]
    cfg = {"pods": [{"key": p.key, "name": p.uts_hostname, "netns": nsfs.netns_path(p.netns),
                     "ports": [dict({"port": port, "protocol": proto}, **({"app": app} if app["app"] != "netexec" else {}))
                               for (port, proto), app in p.builtin_apps.items()],
                     "log": log_path(cluster.name, p, layout.BUILTIN)} for p in pods]}
    for entry, p in zip(cfg["pods"], pods):
        if p.stopping:   # the kubelet sent the pod SIGTERM (a live lab's graceful deletion)
            entry["sigterm"] = True
            entry["delayShutdown"] = _delay_shutdown(p)
        elif p.killed:   # the kubelet killed its container (a failed liveness probe)
            entry["kill"] = True
    if health is not None:   # kube-proxy's service health server, in the node's own namespace
        cfg["pods"].append(health)
    text = state.dump(cfg)
    _CONFIGS[(cluster.name, node.name)] = (made_of, text)
    return text


def ensure_servers(cluster: Cluster, fresh: set[str], servers: dict[str, Any], changes: Changes,
                   started: dict[str, int] | None = None,
                   pods_extra: dict[str, dict] | None = None) -> list[tuple[str, int, int | None]]:
    """Start (or reload) each node's built-in server; returns what `procs.wait_pidfiles` should wait for.

    Runs after `start_idle_servers` (which also stopped unrecorded servers). `started`: the servers it
    just started (node -> pid); they are given their pods by a reload once they are listening (a SIGHUP
    before their handler is in place would end them). A server one of whose pods has exited (agnhost's
    /exit) is reloaded, which starts that pod again: a restart, counted in `pods_extra` as a
    container's."""
    lab = cluster.name
    started = started or {}
    if started:
        procs.wait_pidfiles([(layout.server_pidfile(lab, n), pid, None) for n, pid in started.items()])
    texts, same, alive, said = {}, {}, {}, {}
    for node in cluster.nodes:
        texts[node.name] = _server_config(cluster, node)
        try:
            with open(layout.server_config(lab, node.name)) as f:
                same[node.name] = f.read() == texts[node.name]
        except OSError:
            same[node.name] = False
        alive[node.name] = server_alive(cluster, node, servers.get(node.name))
        if alive[node.name] and node.name not in started:
            doc = _server_status(lab, node.name, servers.get(node.name))   # (read once a pass)
            said[node.name] = _pods_in(doc)
            if same[node.name]:
                # the file holds this text, but was it applied? A process killed between writing the file
                # and its SIGHUP leaves the server on the config before (a pod it never serves)
                got = doc.get("config")
                same[node.name] = not isinstance(got, str) or got == config_digest(texts[node.name])
    exited: dict[str, list[tuple[Pod, int | None]]] = {}
    for node in cluster.nodes:
        if node.name not in said:   # (not alive, or started by this pass)
            continue
        for pod in cluster.pods_on(node.name):
            gone, code = exited_code(said[node.name].get(pod.key))
            if gone and pod.builtin_ports and pod.key not in fresh and not pod.terminating \
                    and plan.restarts(pod.restart_policy, code):
                exited.setdefault(node.name, []).append((pod, code))
    for name, gone in exited.items():
        for pod, code in gone:
            if pods_extra is not None:
                extra = pods_extra.setdefault(pod.key, {})
                extra["restarts"] = int(extra.get("restarts", 0)) + 1
            changes.add(Change("container", pod.key, "restart", f"built-in server restarts pod {pod.key} "
                               f"(it had exited with code {code})", pod.netns, f"pod {pod.key}"))
    waits = []
    for name, action in plan.plan_servers(cluster, fresh, alive, same, set(started), set(exited)).items():
        node = cluster.node(name)
        pidfile = layout.server_pidfile(lab, name)
        if action == "reload":
            rec = servers[name]
            state.write_private(layout.server_config(lab, name), texts[name])
            got = procs.read_pidfile(pidfile)
            os.kill(int(rec["pid"]), signal.SIGHUP)
            waits.append((pidfile, int(rec["pid"]), got[1] if got else -1))
            if name not in started:
                changes.add(Change("server", name, "reload", "built-in server reloaded", server_netns(cluster, node),
                                   f"node {name}"))
        elif action == "start":
            rec = _spawn_server(cluster, node, texts[name], servers, changes)
            waits.append((pidfile, int(rec["pid"]), None))
    return waits


# ------------------------------------------------------------------ containers

def unrecorded_containers(cluster: Cluster, pods_extra: dict[str, dict], fresh: set[str]) -> dict[str, list[int]]:
    """Containers netlab started in this lab's pods that the state does not record (an `up` killed
    between starting them and saving the state), by owner tag. One /proc scan, and only when some
    record is missing or dead in a pod that existed before this run. (Unrecorded built-in servers are
    `start_idle_servers`' business.)"""
    lab = cluster.name
    paths = []
    for pod in cluster.pods:
        if pod.key in fresh or not pod.commands:
            continue
        recs = pods_extra.get(pod.key, {}).get("procs") or {}
        if any(not container_running(lab, pod, cname, recs.get(cname)) for cname, _ in pod.commands):
            paths.append(nsfs.netns_path(pod.netns))
    return procs.owned(paths) if paths else {}


def container_env(pod: Pod) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"),
            "HOSTNAME": pod.name, "POD_NAME": pod.name, "POD_NAMESPACE": pod.namespace, "POD_IP": str(pod.ip),
            "NODE_NAME": pod.node, "HOME": "/root", "LANG": "C.UTF-8"}


def ensure_containers(cluster: Cluster, pods_extra: dict[str, dict], fresh: set[str], strays: dict[str, list[int]],
                      changes: Changes, files_written: bool = False) -> list[tuple[Pod, str]]:
    """Start every container with a command that is not running (restarts counted, strays adopted).
    Returns once every container started is inside its pod's namespaces (or has already exited), with
    the (pod, container) started. `files_written`: the pods' /etc files are written already (else here)."""
    lab = cluster.name
    if not files_written:
        podfiles.write_all(cluster)   # every pod's /etc/resolv.conf and /etc/hosts (exec and debug bind them too)
    pods = {p.key: p for p in cluster.pods}
    recorded = {}
    for pod in cluster.pods:
        recs = pods_extra.setdefault(pod.key, {}).setdefault("procs", {})
        for cname, _ in pod.commands:
            if cname in recs:
                recorded[(pod.key, cname)] = container_running(lab, pod, cname, recs[cname])
    found = {(p.key, c): strays[container_owner(lab, p, c)] for p in cluster.pods for c, _ in p.commands
             if container_owner(lab, p, c) in strays}
    exits = {k: procs.exit_status(exit_path(lab, pods[k[0]], k[1])) for k, alive in recorded.items() if not alive}
    started = []
    for act in plan.plan_containers(cluster, recorded, fresh, found, exits):
        if act.action == "keep":
            continue
        pod = pods[act.pod]
        extra = pods_extra[pod.key]
        recs = extra["procs"]
        if act.restart:
            extra["restarts"] = int(extra.get("restarts", 0)) + 1
        if act.action == "adopt":
            # started by an `up` that was killed before recording it: keep the oldest, end the others
            procs.terminate([], act.end)
            recs[act.container] = procs.record(act.pid)
            changes.add(Change("container", f"{pod.key}/{act.container}", "adopt", f"container {act.container} "
                               f"adopted (pid {act.pid}, started by an interrupted up)", pod.netns, f"pod {pod.key}"))
            continue
        container = next(c for c in pod.containers if c.name == act.container)
        argv, env = container.command + container.args, {**container_env(pod), **container.env}
        mounts: list[sandbox.Mount] = []
        launch = pod.launch.get(act.container)   # the kubelet's env and volumes (netlab/live/podsetup.py)
        if launch is not None:
            if launch.error:   # it waits (CreateContainerConfigError, ContainerCreating): the status says why
                extra.setdefault("waiting", {})[act.container] = [launch.reason, launch.error]
                changes.add(Change("container", f"{pod.key}/{act.container}", "wait", f"container {act.container} "
                                   f"not started: {launch.error}", pod.netns, f"pod {pod.key}"))
                continue
            (extra.get("waiting") or {}).pop(act.container, None)
            argv, env = launch.argv, {**container_env(pod), **launch.env}
            if pod.volumes is not None:
                volumes.materialise(pod.volumes)
            # the pod's volumes, bound at their mountPaths in the container's sandbox
            mounts = [sandbox.Mount(m.source, m.target, m.read_only) for m in launch.mounts]
        sup = procs.spawn_container(argv, nsfs.netns_path(pod.netns),
                                    log_path(lab, pod, act.container), exit_path(lab, pod, act.container),
                                    uts_path(lab, pod), env=env,
                                    cwd=container.working_dir or "/", owner=container_owner(lab, pod, act.container),
                                    box=sandbox.for_container(container.security, mounts, podfiles.mounts(
                                        lab, pod, container.security.read_only_root_filesystem)))
        started.append((pod, act.container, sup))
    procs.wait_entered([(sup, nsfs.netns_path(pod.netns)) for pod, _, sup in started])
    for (pod, cname, sup), rec in zip(started, procs.container_records(
            [sup for _, _, sup in started], [container_owner(lab, pod, c) for pod, c, _ in started])):
        # ended: its exit status tells; "sup": its supervisor, which writes that status (exit_pending)
        pods_extra[pod.key]["procs"][cname] = {**(rec or {"pid": 0, "start": None}),
                                               "sup": {"pid": sup["pid"], "start": sup["start"]}}
        changes.add(Change("container", f"{pod.key}/{cname}", "start", f"container {cname} started" +
                           (f" (pid {rec['pid']})" if rec else " (and has exited)"), pod.netns, f"pod {pod.key}"))
    return [(pod, cname) for pod, cname, _ in started]


def wait_listening(cluster: Cluster, pods_extra: dict[str, dict], begun: list[tuple[Pod, str]],
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
            if container_alive(cluster.name, pod, cname, rec) and not wanted <= procs.listening(int(rec["pid"])):
                left.append((pod, cname, wanted))
        pending = left
        if pending:
            time.sleep(0.02)


# ------------------------------------------------------------------ removing

def stop_orphans(lab: str, keys: list[str], prev_pods: dict[str, dict], changes: Changes) -> int:
    """Stop what still runs of pods whose namespace was deleted by hand (`plan.vanished_pods`): their
    recorded containers, honoured only if the same process (start time) still carries the container's
    owner tag outside the host's network namespace (as `procs.terminate` honours records), with their supervisors (the parent, carrying the supervisor's tag), and whatever else
    carries one of those pods' owner tags (what the containers started). Runs before any container of
    those pods is started again. Returns how many processes were ended."""
    pids: set[int] = set()
    prefixes = []
    for key in keys:
        namespace, _, name = key.partition("/")
        prefixes.append(names.pod_owner_prefix(lab, namespace, name))
        for cname, rec in ((prev_pods.get(key) or {}).get("procs") or {}).items():
            owner = names.container_owner(lab, namespace, name, cname)
            if procs.alive(rec, owner) and not procs.in_host_netns(int(rec["pid"])):
                pid = int(rec["pid"])
                pids.add(pid)
                for up in procs.container_supervisor(pid):   # its supervisor
                    if procs.owner_of(up) in (owner, owner + procs.SUPERVISOR_TAG) and not procs.in_host_netns(up):
                        pids.add(up)
    pids |= set(procs.tagged(prefixes))
    if not pids:
        return 0
    ended = procs.terminate([], sorted(pids))
    for key in keys:
        changes.add(Change("pod", key, "stop", "stopped the processes left in its deleted namespace",
                           (prev_pods.get(key) or {}).get("netns") or "", f"pod {key}"))
    return ended


def remove_namespaces(lab: str, doomed: list[str], prev: dict[str, Any], changes: Changes,
                      quiet: bool = False) -> None:
    """Kill what runs in these namespaces (by membership and by record) and the built-in servers of the
    nodes among them (which run outside their node: `server_netns`), then delete them."""
    paths = [nsfs.netns_path(n) for n in doomed]
    records = []
    for pod in prev.get("pods", {}).values():
        if pod.get("netns") in doomed:
            records.extend((pod.get("procs") or {}).values())
    nodes = [p.node for p in (names.parse_netns(n, lab) for n in doomed) if p is not None and p.kind == "node"]
    records += [rec for n in nodes if isinstance(rec := (prev.get("servers") or {}).get(n), dict)]
    pids = set(procs.netns_members(paths)) | set(procs.tagged([server_owner(lab, n) for n in nodes]))
    procs.terminate(records, sorted(pids), owner=names.lab_owner_prefix(lab))
    for name in doomed:
        nsfs.delete_ns_file(nsfs.netns_path(name))
        parsed = names.parse_netns(name, lab)
        if parsed is not None and parsed.kind == "pod":
            nsfs.delete_ns_file(layout.uts_file(lab, parsed.namespace, parsed.pod))
        if not quiet:
            changes.add(Change("namespace", name, "remove", f"removed namespace {name}"))
