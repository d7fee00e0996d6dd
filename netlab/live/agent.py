"""A lab's agents: one control loop per host (`python -m netlab.live.loop LAB --host H`, `netlab agent`).

A lab whose Node objects carry the label `netlab.dev/host=<host>` (the Cluster document's
`nodes[].labels`) is run by one agent per host instead of one control loop: each builds, reconciles and
heartbeats only its host's nodes and their pods (netlab/live/hostscope.py), and the controllers run in
the one agent that holds the Lease `kube-system/netlab-controllers` (netlab/live/leader.py).

An agent is owned like everything netlab starts: its environment carries the owner tag
`<lab>/host/<host>/agent` (names.agent_owner) and the host it keeps the state of (layout.HOST_VAR); its
PID and start time are in `<lab dir>/run/agent-<host>.pid`, its messages in `logs/agent-<host>.log`;
`netlab down` ends every process tagged as one of the lab's agents (dataplane/lab.py stop_control_loop).

`launch(lab, host)` is the one place that says how an agent is started (its argv, environment and log):
where the lab's hosts are emulated in network namespaces of their own, it is where the agent is put
inside its host's.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass

from .. import names


@dataclass
class Launch:
    """How the agent of one host is started."""
    argv: list[str]
    env: dict[str, str]
    log: str
    cwd: str = "/"


def owner(lab: str, host: str) -> str:
    return names.agent_owner(lab, host)


def launch(lab: str, host: str) -> Launch:
    """The agent of `host` in lab `lab`: `python -m netlab.live.loop LAB --host HOST`, tagged
    NETLAB_OWNER=<lab>/host/<host>/agent, NETLAB_AGENT_HOST=<host> (its per-host state: layout.set_host),
    its output appended to <lab dir>/logs/agent-<host>.log. In a lab whose emulated hosts run their own etcd
    members (hostNetwork.store: etcd, dataplane/hoststore.py) it runs inside its host's namespace."""
    from ..dataplane import hoststore, layout, nsenter, procs
    from . import store_config
    env = dict(os.environ, **{procs.OWNER_VAR: owner(lab, host), layout.HOST_VAR: host})
    argv = [sys.executable, "-m", "netlab.live.loop", lab, "--host", host]
    netns = hoststore.host_netns(store_config(lab), host)
    if netns is not None:   # an emulated host with its own etcd member: the agent runs on that host's network
        argv = nsenter.enter(netns, argv)
    return Launch(argv, env, layout.agent_log(lab, host))


def record(lab: str, host: str) -> dict | None:
    from ..dataplane import layout
    try:
        with open(layout.agent_pidfile(lab, host)) as f:
            rec = json.load(f)
    except (OSError, ValueError):
        return None
    return rec if isinstance(rec, dict) else None


def running(lab: str, host: str) -> dict | None:
    """The agent's process record, if that process runs (the same one, with its tag)."""
    from ..dataplane import procs
    rec = record(lab, host)
    return rec if procs.alive(rec, owner=owner(lab, host)) else None


def hosts(lab: str) -> dict[str, list[str]]:
    """host -> its nodes, as the lab's Node objects place them (empty: the lab is run by one control loop)."""
    from . import store_for
    from .hostscope import hosts_of
    return hosts_of(store_for(lab).list("Node"))


def start(lab: str, host: str) -> int:
    """Start the agent of `host` (whether one runs is the caller's question); returns its PID."""
    from ..dataplane import state
    state.ensure_dirs(lab)
    how = launch(lab, host)
    log = os.open(how.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        p = subprocess.Popen(how.argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
                             close_fds=True, env=how.env, cwd=how.cwd)
    finally:
        os.close(log)
    p.returncode = 0  # the agent outlives this process: do not reap it (it records itself)
    return p.pid


def real_marker(lab: str) -> str:
    from ..dataplane import layout
    return os.path.join(layout.run_dir(lab), "real-hosts")


def set_real(lab: str, real: bool) -> None:
    """Record whether the lab's hosts are real machines (hostNetwork.mode real): each machine then runs the
    agent of its own host (`netlab agent LAB --host H --etcd ...`), and no netlab command starts agents."""
    from ..dataplane import state
    if real:
        state.ensure_dirs(lab)
        state.write_private(real_marker(lab), "")
    else:
        try:
            os.unlink(real_marker(lab))
        except OSError:
            pass


def is_real(lab: str) -> bool:
    return os.path.exists(real_marker(lab))


def away_hosts(lab: str, cluster) -> set[str]:
    """A lab on real hosts: its hosts that are other machines' (the host's namespace is not on this one)."""
    from ..dataplane import nsfs
    from . import has_store
    hc = cluster.networking.hosts
    if hc is None or not is_real(lab) or not has_store(lab):
        return set()
    return {h.name for h in hc.hosts if not nsfs.is_ns_file(nsfs.netns_path(names.host_netns(lab, h.name)))}


def away_nodes(lab: str, cluster) -> set[str]:
    """A lab on real hosts: the nodes of hosts that are other machines' (away_hosts), which this machine's
    kernel cannot check (`get`) nor probe from."""
    away = away_hosts(lab, cluster)
    return {n.name for n in cluster.nodes if n.host in away}


def ensure(lab: str, placed: dict[str, list[str]] | None = None) -> list[str]:
    """Start the agent of every host of the lab that has none running; the hosts whose agent was started.
    On real hosts none (each machine runs its own)."""
    if is_real(lab):
        return []
    placed = hosts(lab) if placed is None else placed
    out = []
    for host in placed:
        if not running(lab, host):
            start(lab, host)
            out.append(host)
    return out


def recorded_hosts(lab: str) -> list[str]:
    """The hosts whose agent recorded itself in the lab's directory (run/agent-<host>.pid)."""
    from ..dataplane import layout
    try:
        names_ = os.listdir(layout.run_dir(lab))
    except OSError:
        return []
    return sorted(n[len("agent-"):-len(".pid")] for n in names_ if n.startswith("agent-") and n.endswith(".pid"))


def stop(lab: str, host: str, grace: float = 5.0) -> bool:
    """End the agent of `host` (SIGTERM, SIGKILL after `grace`); True if one ran."""
    from ..dataplane import layout, procs
    tag = owner(lab, host)
    pids = [pid for pid, t in procs.tagged([tag], host=True).items() if t == tag]
    if pids:
        procs.terminate([], pids, grace=grace, owner=None)
    try:
        os.unlink(layout.agent_pidfile(lab, host))
    except OSError:
        pass
    return bool(pids)
