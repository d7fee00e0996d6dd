"""The BGP backend's speakers, done: one BIRD per node in the node's network namespace and one in the
external host (the data centre's router), each with the configuration `netlab.bgp.bird` renders, its
own control socket and pid file under the lab's run directory, and the lab's owner tag, so `down` ends
them with the rest of the lab (by namespace membership and by tag). The host's own bird service is
never used (scripts/setup leaves it stopped and disabled).

MetalLB's BGP mode (netlab/lb/bgpmode.py) adds its sessions and LoadBalancer prefixes: the control loop
publishes them in `<lab dir>/lb/bgp.json` (netlab/live/lbannounce.py) and calls `ensure`, which renders
every configuration from the model and that file. With a backend other than bgp, only the nodes MetalLB
gives a session run BIRD (and the router, when any does).

`ensure` starts what is missing, reloads (SIGHUP, what `birdc configure` does: BIRD re-reads its file and
restarts only the protocols that changed; a changed static protocol only re-announces) what runs with
another configuration, and stops the speakers no longer wanted (the backend is no longer bgp, no
BGPPeer selects the node). `sessions` reads a speaker's protocols through its socket (`birdc -s`).
"""
from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import time
from dataclasses import dataclass

from .. import names
import json

from ..bgp import PACKAGES, TOOLS, bird
from ..lb.bgpmode import Plan, parse_document
from ..errors import KernelError, UsageError
from ..model.objects import Cluster
from . import layout, nsfs, procs, state
from .changes import Change, Changes

SOCKET_MAX = 107          # sun_path holds 108 bytes with its NUL
START_WAIT = 5.0          # seconds for a started BIRD to open its control socket
SESSION_WAIT = float(os.environ.get("NETLAB_BGP_WAIT", "10"))   # for the sessions after a start


@dataclass(frozen=True)
class Speaker:
    node: str | None       # None: the external router
    netns: str
    config: str            # bird.conf's text
    conf: str              # where it is written
    socket: str
    pidfile: str
    log: str
    owner: str

    @property
    def label(self) -> str:
        return f"node {self.node}" if self.node else "the external router"


def bird_dir(lab: str) -> str:
    return os.path.join(layout.run_dir(lab), "bird")


def _base(lab: str, node: str | None) -> str:
    """The files' common path: bird/node-NAME (bird/node-HASH when a long name would make the socket's
    path longer than a Unix socket's), bird/external for the router."""
    d = bird_dir(lab)
    if node is None:
        return os.path.join(d, "external")
    base = os.path.join(d, f"node-{node}")
    if len(base) + len(".ctl") > SOCKET_MAX:
        base = os.path.join(d, "node-" + hashlib.sha256(node.encode()).hexdigest()[:12])
    return base


def socket_path(lab: str, node: str | None) -> str:
    """A speaker's control socket: what `birdc -s` takes."""
    return _base(lab, node) + ".ctl"


def lb_path(lab: str) -> str:
    """MetalLB's BGP mode's published sessions and routes (netlab/live/lbannounce.py writes it)."""
    return os.path.join(layout.lb_dir(lab), "bgp.json")


def lb_plan(lab: str) -> Plan | None:
    """The published file's Plan; None when the lab has none (no BGPPeer, or not written yet)."""
    try:
        with open(lb_path(lab), encoding="utf-8") as f:
            return parse_document(json.load(f))
    except (OSError, ValueError):
        return None


def speakers(cluster: Cluster, lb: Plan | None = None, every: bool = False, own: set[str] | None = None,
             router: bool = True) -> list[Speaker]:
    """The speakers the lab runs (`every`: one per node and the router, wanted or not: what to stop). A host's
    agent runs those of its nodes (`own`) and the router only if it is the one that runs it (`router`); their
    configurations are the whole lab's either way (every node a peer, wherever it runs)."""
    lab = cluster.name
    out = []
    for node in cluster.nodes:
        if own is not None and node.name not in own:
            continue
        if not every and not bird.has_speaker(cluster, node, lb):
            continue
        b = _base(lab, node.name)
        out.append(Speaker(node.name, node.netns, bird.node_config(cluster, node, lb), b + ".conf", b + ".ctl",
                           b + ".pid", os.path.join(layout.logs_dir(lab), f"bird-{node.name}.log"),
                           names.bgp_owner(lab, node.name)))
    if router and (every or bird.router_runs(cluster, lb)):
        b = _base(lab, None)
        out.append(Speaker(None, cluster.external_netns, bird.router_config(cluster, lb), b + ".conf", b + ".ctl",
                           b + ".pid", os.path.join(layout.logs_dir(lab), "bird-external.log"),
                           names.bgp_owner(lab, None)))
    return out


def preflight(cluster: Cluster, metallb_bgp: bool = False) -> None:
    """The BGP backend (and MetalLB's BGP mode: `metallb_bgp`, the lab has a BGPPeer) needs BIRD: an error
    before anything is built when it is not installed."""
    if cluster.networking.backend != "bgp" and not metallb_bgp:
        return
    missing = [t for t in TOOLS if procs.which(t) is None]
    if missing:
        what = "networking.backend bgp runs BIRD 2 on every node" if cluster.networking.backend == "bgp" else \
            "MetalLB's BGP mode (a BGPPeer) runs BIRD 2 on the nodes"
        raise UsageError(f"{what} but {' and '.join(missing)} "
                         f"{'is' if len(missing) == 1 else 'are'} not installed; run scripts/setup "
                         f"(or apt-get install {PACKAGES})")


def running(sp: Speaker) -> int | None:
    """The pid of the speaker's BIRD if it runs (its pid file's process, with its tag, in its namespace)."""
    try:
        with open(sp.pidfile) as f:
            pid = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    rec = procs.record(pid)
    return pid if procs.alive(rec, sp.owner, nsfs.netns_path(sp.netns)) else None


def _current(sp: Speaker) -> bool:
    try:
        with open(sp.conf) as f:
            return f.read() == sp.config
    except OSError:
        return False


def _stop_tagged(paths: list[str], tags: set[str]) -> int:
    found = procs.owned(paths)
    pids = [pid for tag, ps in found.items() if tag in tags for pid in ps]
    return procs.terminate([], pids, grace=2.0) if pids else 0


def _tail(path: str, n: int = 3) -> str:
    try:
        with open(path, errors="replace") as f:
            lines = [ln.strip() for ln in f.read().splitlines() if ln.strip()]
    except OSError:
        return ""
    return " | ".join(lines[-n:])


def router_here(cluster: Cluster, own: set[str] | None, host: str | None) -> bool:
    """Whether this pass runs the external router's speaker: always but in a host's agent (`own`), where the
    agent of the host the external host lives on does (its emulated hosts' home; with one underlay, the
    host of the lab's first node)."""
    if own is None:
        return True
    hosts = cluster.networking.hosts
    if hosts is not None:
        return host == hosts.home.name
    return bool(cluster.nodes) and cluster.nodes[0].name in own


def ensure(cluster: Cluster, changes: Changes, own: set[str] | None = None, router: bool = True) -> None:
    """Every speaker the lab wants (`speakers`) running with its current configuration; the others stopped.
    `cluster` is the whole lab; a host's agent passes its nodes (`own`) and whether it runs the router."""
    lab = cluster.name
    lb = lb_plan(lab)
    if router and own is not None and not nsfs.is_ns_file(nsfs.netns_path(cluster.external_netns)):
        router = False   # another host's agent has not made the external host yet: the next pass starts it
    wanted = speakers(cluster, lb, own=own, router=router)
    if not wanted:
        if os.path.isdir(bird_dir(lab)):   # the lab was bgp (or had BGPPeers): its speakers go, their routes too
            mine = [n for n in cluster.nodes if own is None or n.name in own]
            paths = [nsfs.netns_path(n.netns) for n in mine] + \
                ([nsfs.netns_path(cluster.external_netns)] if router else [])
            tags = {names.bgp_owner(lab, n.name) for n in mine} | ({names.bgp_owner(lab, None)} if router else set())
            if _stop_tagged(paths, tags):
                changes.add(Change("server", "bird", "stop", "BGP speakers stopped (no BGP backend, no BGPPeer)"))
            import shutil
            shutil.rmtree(bird_dir(lab), ignore_errors=True)
        return
    preflight(cluster, metallb_bgp=True)   # BIRD installed
    os.makedirs(bird_dir(lab), mode=0o700, exist_ok=True)
    keep = {sp.owner for sp in wanted}
    for sp in speakers(cluster, lb, every=True, own=own, router=router):
        if sp.owner not in keep and running(sp) is not None:   # a node no BGPPeer selects any more
            _stop_tagged([nsfs.netns_path(sp.netns)], {sp.owner})
            changes.add(Change("server", "bird", "stop", f"BGP speaker of {sp.label} stopped (no session)", sp.netns))
    started = []
    for sp in wanted:
        pid = running(sp)
        if pid is not None and _current(sp) and not state.reload_pending(sp.conf):
            continue
        # (marked until BIRD has its SIGHUP: a pass killed in between leaves the mark, the next reloads it)
        state.begin_reload(sp.conf, sp.config)
        if pid is not None:
            os.kill(pid, signal.SIGHUP)
            state.end_reload(sp.conf)
            changes.add(Change("server", "bird", "reload", f"BGP speaker of {sp.label} reloaded", sp.netns))
            continue
        _stop_tagged([nsfs.netns_path(sp.netns)], {sp.owner})   # one left unrecorded by an interrupted up
        for path in (sp.socket, sp.pidfile):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
        rec = procs.spawn(["bird", "-f", "-c", sp.conf, "-s", sp.socket, "-P", sp.pidfile],
                          nsfs.netns_path(sp.netns), sp.log, owner=sp.owner)
        started.append((sp, rec))
        changes.add(Change("server", "bird", "start", f"BGP speaker of {sp.label} started (pid {rec['pid']})",
                           sp.netns))
    deadline = time.monotonic() + START_WAIT
    for sp, rec in started:
        while not (os.path.exists(sp.socket) and os.path.exists(sp.pidfile)):
            if not procs.alive(rec):
                raise KernelError(f"BIRD of {sp.label} ended while starting: {_tail(sp.log) or 'no output'} "
                                  f"(log {sp.log})")
            if time.monotonic() > deadline:
                raise KernelError(f"BIRD of {sp.label} did not open its socket {sp.socket} within {START_WAIT:.0f} s "
                                  f"(log {sp.log})")
            time.sleep(0.02)
        state.end_reload(sp.conf)   # it read the file when it started
    if started:
        wait_established(cluster, SESSION_WAIT, lb, own=own, router=router)


def expected_sessions(cluster: Cluster, node: str | None, lb: Plan | None = None) -> list[str]:
    """The BGP protocols a speaker should have Established (node None: the external router)."""
    if node is None:
        return [p.protocol for p in bird.router_peers(cluster, lb)]
    return [p.protocol for p in bird.node_peers(cluster, cluster.node(node), lb)]


def sessions(lab: str, node: str | None, timeout: float = 2.0) -> dict[str, bird.Protocol] | None:
    """A speaker's protocols (`birdc show protocols`), or None if it does not answer."""
    sock = socket_path(lab, node)
    if not os.path.exists(sock):
        return None
    try:
        out = subprocess.run(["birdc", "-s", sock, "show", "protocols"], capture_output=True, text=True,
                             timeout=timeout, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return bird.parse_protocols(out.stdout) if out.returncode == 0 else None


def summary(cluster: Cluster) -> dict[str, str]:
    """node -> `established/expected` (or `down` when its speaker does not answer): get nodes -o wide."""
    out = {}
    lb = lb_plan(cluster.name)
    for node in cluster.nodes:
        if not bird.has_speaker(cluster, node, lb):
            out[node.name] = "-"
            continue
        found = sessions(cluster.name, node.name)
        out[node.name] = "down" if found is None else \
            bird.bgp_summary(found, expected_sessions(cluster, node.name, lb))
    return out


def wait_established(cluster: Cluster, timeout: float, lb: Plan | None = None, own: set[str] | None = None,
                     router: bool = True) -> bool:
    """Wait until every speaker of a node that is not stopped has its sessions to the other running
    nodes and the router Established; False if `timeout` passed first. A host's agent (`own`, `router`):
    its own speakers' sessions with each other (and the router's, if it runs it); those with other hosts'
    speakers come up as their agents start them."""
    names_of = bird.protocol_names(cluster.nodes)
    stopped = {names_of[n.name] for n in cluster.nodes if n.partitioned}
    if own is not None:   # the sessions with speakers this pass does not run are not waited for
        stopped |= {names_of[n.name] for n in cluster.nodes if n.name not in own}
        if not router:
            stopped.add(bird.EXTERNAL_PROTOCOL)
    deadline = time.monotonic() + timeout
    running_nodes = [n for n in cluster.nodes if not n.partitioned and bird.has_speaker(cluster, n, lb)
                     and (own is None or n.name in own)]
    while True:
        ok = True
        for node in running_nodes + ([None] if router else []):
            who = None if node is None else node.name
            want = [p for p in expected_sessions(cluster, who, lb) if p not in stopped]
            found = sessions(cluster.name, who) or {}
            if not all(p in found and found[p].established for p in want):
                ok = False
                break
        if ok or time.monotonic() > deadline:
            return ok
        time.sleep(0.2)


def drift(cluster: Cluster, node) -> list[str]:
    """What `up` would change in a node's speaker: not running, or running another configuration."""
    lb = lb_plan(cluster.name)
    sp = next((s for s in speakers(cluster, lb) if s.node == node.name), None)
    if sp is None:
        return []
    if running(sp) is None:
        return ["its BGP speaker (bird) is not running"]
    if not _current(sp):
        return ["its BGP speaker's configuration is out of date"]
    return []
