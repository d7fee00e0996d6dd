"""The control loop of one lab: a process, started by `up` (and by any command that finds it gone),
stopped by `down`. Run as ``python -m netlab.live.loop LAB``; as one host's agent (a lab whose nodes are
placed on hosts: netlab/live/agent.py) as ``python -m netlab.live.loop LAB --host HOST``.

It is owned like everything netlab starts: its environment carries the owner tag ``<lab>/control-loop``
and its PID and start time are recorded in ``<lab dir>/run/control-loop.pid``. It keeps nothing of
its own that matters: every pass starts from the store and the kernel (`sync.LiveLab`), so a loop
killed at any moment (SIGKILL included) is started again by the next netlab command and carries on.

Idle, it sleeps on the store (`store.wait`, a cheap poll of SQLite's data_version) until another
process writes or a timer comes (a controller's deadline, a kubelet's heartbeat, a drain, the
periodic resync). Probes due wake it too, but only the probe workers run then (no lock, no store
read) unless a result changed something. The dataplane is reconciled by a scoped pass (sync.LiveLab.scope:
new pods built, readiness, incremental proxy sync) when pods, Services, EndpointSlices, Namespaces or
Nodes changed or a probe changed a pod's readiness; the periodic resync (every RESYNC_SECONDS) first
looks whether anything moved under the lab (audit.py: namespaces, processes, the nodes' nf_tables
generations) and runs a pass only if so; a deep pass (every pod's network read back, proxy rules synced
in full) comes first in a loop's life and then every sync.FULL_RESYNC seconds, counted from the last
whole reconcile the lab's state records (`up`'s own pass, just before it starts the loop: reading back
10,000 pods' networks again right after `up` built them took minutes).
"""
from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import traceback

from .. import names
from . import audit
from .sync import DATAPLANE_KINDS, FULL_RESYNC, heartbeat_period

RESYNC_SECONDS = 10.0         # a look at the kernel at least this often (audit.py), a pass if anything moved
TAG = "control-loop"
LEASE_CHECK = 10.0            # s: how often a loop on an etcd store looks at its nodes' flannel leases
POLL = 0.05                   # how often an idle loop polls the store for other processes' writes (SQLite's
                              # data_version: ~0.1 ms a poll; at 20 ms it was most of an idle loop's CPU)


def owner(lab: str) -> str:
    return names.lab_owner_prefix(lab) + TAG


def pidfile(lab: str) -> str:
    from ..dataplane import layout
    return layout.loop_pidfile(lab)


def logfile(lab: str) -> str:
    from ..dataplane import layout
    return os.path.join(layout.logs_dir(lab), f"{TAG}.log")


def record(lab: str) -> dict | None:
    try:
        with open(pidfile(lab)) as f:
            rec = json.load(f)
    except (OSError, ValueError):
        return None
    return rec if isinstance(rec, dict) else None


def running(lab: str) -> dict | None:
    """The lab's loop process record, if that process runs (the same one, with the lab's tag)."""
    from ..dataplane import procs
    rec = record(lab)
    return rec if procs.alive(rec, owner=owner(lab)) else None


def frozen_marker(lab: str) -> str:
    from ..dataplane import layout
    return os.path.join(layout.run_dir(lab), "no-control-loop")


def set_frozen(lab: str, frozen: bool) -> None:
    """`up --no-control-loop`: the lab stays a still picture (no loop is started for it, by `up` or by
    any other command) until an `up` without it."""
    from ..dataplane import state
    if frozen:
        state.write_private(frozen_marker(lab), "")
    else:
        try:
            os.unlink(frozen_marker(lab))
        except OSError:
            pass


_starting: dict[str, subprocess.Popen] = {}   # lab -> a loop this process started, maybe not recorded yet


def start(lab: str) -> bool:
    """`ensure`'s first half: start the lab's control loop unless it runs (or the lab is frozen, or a loop this
    process started is still starting), without waiting for it to record itself; True if it was started now.
    `up` starts it this way before its last steps, under the lab's lock, so that the loop's Python start-up
    (about half a second) runs beside them; the loop waits for the lock before its first pass. A lab whose
    nodes are placed on hosts gets one agent per host instead (netlab/live/agent.py): those that do not run
    are started."""
    from ..dataplane import procs, state
    if os.path.exists(frozen_marker(lab)):
        return False
    from . import agent
    placed = agent.hosts(lab)
    if placed:
        if running(lab):   # the lab's nodes were placed on hosts since: the agents take over from the loop
            stop(lab)
        return bool(agent.ensure(lab, placed))
    for host in agent.recorded_hosts(lab):   # no longer placed on hosts: the one loop takes over
        agent.stop(lab, host)
    from ..dataplane import layout
    if os.path.isdir(layout.hosts_dir(lab)):   # (the lab's state.json holds what they built: `up` merged it in)
        import shutil
        shutil.rmtree(layout.hosts_dir(lab), ignore_errors=True)
    pending = _starting.get(lab)
    if running(lab) or (pending is not None and procs.start_time(pending.pid) is not None):
        return False
    state.ensure_dirs(lab)
    log = os.open(logfile(lab), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    env = dict(os.environ, **{procs.OWNER_VAR: owner(lab)})
    try:
        p = subprocess.Popen([sys.executable, "-m", "netlab.live.loop", lab], stdin=subprocess.DEVNULL, stdout=log,
                             stderr=log, start_new_session=True, close_fds=True, env=env, cwd="/")
    finally:
        os.close(log)
    p.returncode = 0  # the loop outlives this process: do not reap it (it records itself: `main`)
    _starting[lab] = p
    return True


def ensure(lab: str) -> bool:
    """Start the lab's control loop unless it runs (or the lab is frozen: `start`), and wait until it has
    recorded itself; True if this process started it (now, or before with `start`)."""
    started = start(lab)
    p = _starting.pop(lab, None)
    if p is None:
        return started
    # until it has recorded itself (its pidfile, then its SIGTERM handler): `running` says so once this
    # returns, and a `down` right after finds it by its record as well as by its tag (a loop still starting
    # could be missed and go on to start the lab's servers). A second's Python start-up at most, usually less.
    from ..dataplane import procs
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline and procs.start_time(p.pid) is not None:
        if (record(lab) or {}).get("pid") == p.pid:
            break
        time.sleep(0.01)
    return True


def abandon(lab: str) -> None:
    """A loop this process started with `start` is killed again (the `up` that started it failed, holding
    the lab's lock): it has done nothing yet (its first pass waits for that lock), so it goes as if it had
    never been started, whether or not it has recorded itself."""
    p = _starting.pop(lab, None)
    if p is None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(p.pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(p.pid, 0)


def stop(lab: str, grace: float = 5.0) -> bool:
    """End the lab's control loop (SIGTERM, then SIGKILL after `grace`); True if one ran."""
    from ..dataplane.lab import stop_control_loop
    return stop_control_loop(lab, grace)


class Loop:
    host: str | None = None
    elector = None
    keeper = None               # its nodes' flannel leases (a store in etcd): flannel.leases.Keeper
    lease_due = 0.0             # monotonic time of the next look at them
    lease_error = ""

    def __init__(self, lab: str, host: str | None = None):
        """`host`: one host's agent (its nodes only; the controllers while it holds their Lease)."""
        from .sync import LiveLab
        self.lab = lab
        self.host = host
        self.live = LiveLab(lab, kubelet=True, host=host)
        self.store = self.live.store
        self.elector = None
        if host is not None:
            import uuid
            from .leader import Elector
            # a new candidate every start (client-go: hostname + a UUID): one started again waits for the
            # Lease its previous life held to expire, as any other candidate
            self.elector = Elector(self.store, f"{host}_{uuid.uuid4().hex[:8]}")
            self.live.leader = False   # until it holds the Lease
        from ..dataplane import state
        at = (state.load(lab) or {}).get("wholePassAt")
        ago = time.time() - at if isinstance(at, (int, float)) else None
        if ago is not None and 0 <= ago < FULL_RESYNC:   # a whole reconcile (`up`'s) counts as the loop's deep pass
            self.live.last_deep = time.monotonic() - ago
        self.stop = threading.Event()
        # an agent of a real host looks for the requests of `netlab down` and `netlab probe` on other machines
        # whenever a ConfigMap changed
        from . import agent as agentmod
        self.real = host is not None and agentmod.is_real(lab)
        self.live.separate = self.real   # its machine's add-on pods read the files it writes
        self.cm_rev = -1
        self.probing: dict = {}     # remote probe requests being run: request name -> its process
        self.seen: tuple | None = None
        self.passes = 0
        self.ctl_rev = -1           # the store's revision when the controllers last ran
        self.ctl_due = 0.0          # when they must run again without a write (timers, heartbeats)
        self.marks: dict = {}       # the built-in servers' status files after the last pass (audit.py)
        self.audits = 0             # periodic looks that found nothing to do
        self.last_why = ""

    def log(self, msg: str) -> None:
        sys.stderr.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {msg}\n")
        sys.stderr.flush()

    def once(self) -> None:
        """Probes always (collect results, start those due: cheap, no lock); the controllers and
        heartbeats when the store moved or one of their timers came; the dataplane when what it reads
        changed, a probe changed a pod's readiness, a drain is on, or the periodic resync is due."""
        from ..dataplane import state
        from . import has_store, locked
        if not has_store(self.lab):
            self.log("the lab is gone (netlab down): stopping")
            self.stop.set()
            return
        if self.real and self.requests():
            return
        now = time.time()
        if self.elector is not None:
            self.elect()
        if self.live._runner is not None:
            self.live.probe_tick(now)
            if (self.store.revision() == self.ctl_rev and not self.live.dirty and not self.live.pending()
                    and now < self.ctl_due and time.monotonic() - self.live.last_full < RESYNC_SECONDS):
                return  # only probes were due, and none of them changed anything
        st = state.load(self.lab) if self.host is None else self.live.load_state()
        if not st or not st.get("scenario") and not self.store.list("Node"):
            return
        with locked(self.lab):
            runner = self.live.runner(st.get("scenario") or "")
            self.live.heartbeats(self.live._periods[0], time.time())
            self.live.run_controllers(runner)
            self.live.probe_tick(time.time())
            view = self.store.kind_revisions(DATAPLANE_KINDS)
            due = time.monotonic() - self.live.last_full >= RESYNC_SECONDS
            why = ""
            if due and not (view != self.seen or self.live.pending() or self.live.dirty):
                # the periodic resync: a pass only if something moved under the lab (audit.py)
                deep = time.monotonic() - self.live.last_deep >= FULL_RESYNC
                mine = st if self.host is None else state.load(self.lab) or {}   # an agent: its host's records
                why = "deep resync" if deep else audit.look(self.lab, mine, self.live.proxy_state, self.marks)
                if not why:
                    self.live.last_full = time.monotonic()
                    self.audits += 1
                elif why != self.last_why:   # once, not every resync (a legacy lab's reason never changes)
                    self.log(f"resync: {why}")
                self.last_why = why
            synced = bool(view != self.seen or self.live.pending() or self.live.dirty or why)
            if synced:
                self.live.sync(scoped=True)
                self.passes += 1
                # what the pass read (not what the store holds now: the pass's own controllers may
                # have written since, e.g. a replacement pod once a deleted one was let go)
                self.seen = self.live.seen
                self.marks = audit.status_marks(self.lab, state.load(self.lab) or {})
            # MetalLB's pools and advertisements, Ingresses, IngressClasses and Secrets are no dataplane
            # kinds: their changes reach the speakers and nginx without a pass (netlab/live/addonfiles.py)
            if self.live.writes_files():
                self.live.files().between_passes(synced)
        # a pass whose own controllers wrote what the dataplane reads (a replacement pod) leaves work for
        # the next look: no probe-only shortcut until it is done
        self.ctl_rev = self.store.revision() if self.store.kind_revisions(DATAPLANE_KINDS) == self.seen else -1
        self.ctl_due = self.controller_wakeup()
        for e in self.live.errors:
            self.log(f"controller error: {e}")
        self.live.errors.clear()

    def keep_leases(self) -> None:
        """A lab whose store is etcd: its nodes' flannel leases (podCIDR, underlay IP, flannel.1's MAC) are kept
        there as each node's flanneld keeps its own: written again when missing or changed, renewed before
        they end (`up` publishes them first and releases those of nodes gone). An agent keeps those of its
        host's nodes. Every LEASE_CHECK s; etcd not answering is logged once and tried again."""
        from . import store_config
        if time.monotonic() < self.lease_due:
            return
        self.lease_due = time.monotonic() + LEASE_CHECK
        from ..etcd.client import EtcdClient, EtcdError
        from ..flannel import lab_prefix
        from ..flannel.leases import Keeper, cluster_leases
        try:
            if self.keeper is None:
                conf = store_config(self.lab)
                if not conf:
                    self.lease_due = float("inf")   # a SQLite store: no leases
                    return
                self.keeper = Keeper(EtcdClient(list(conf["endpoints"]), netns=conf.get("netns")),
                                     lab_prefix(conf["prefix"]))
            cluster = self.live.last_cluster
            if cluster is None:   # no pass yet in this loop's life: the model as the last one built it
                from ..dataplane import state
                st = state.load(self.lab) if self.host is None else self.live.load_state()
                if not st or not st.get("scenario"):
                    return
                cluster = self.live.last_cluster = self.live.desired(st)[0]
            for did in self.keeper.keep(cluster_leases(cluster, self.live.own)):
                self.log(f"flannel lease: {did}")
            self.lease_error = ""
        except EtcdError as e:
            if str(e) != self.lease_error:
                self.log(f"flannel leases: etcd did not answer, trying again in {LEASE_CHECK:.0f} s: {e}")
            self.lease_error = str(e)

    def elect(self) -> None:
        """An agent: renew or take the controllers' Lease when due (leader.py); the controllers run here
        only while it holds it."""
        was = self.live.leader
        self.live.leader = self.elector.tick()
        if self.live.leader != was:
            self.log(f"{'leading' if self.live.leader else 'not leading'}: the controllers run "
                     f"{'here' if self.live.leader else 'in another agent'} (this candidate: {self.elector.identity})")
            self.ctl_rev = -1   # the controllers look at once

    def requests(self) -> bool:
        """A lab on real hosts: what `netlab probe` and `netlab down` on other machines ask of this host's
        agent, through ConfigMaps in kube-system (live/remoteprobe.py, live/teardown.py). True when the lab
        is to be removed: this agent has removed its part, answered and stops."""
        from . import remoteprobe
        remoteprobe.reap(self.probing)
        rev = self.store.kind_revisions(("ConfigMap",))[0]
        if rev == self.cm_rev:
            return False
        self.cm_rev = rev
        if self.removal_requested():
            return True
        for did in remoteprobe.take(self.store, self.lab, self.host, self.probing):
            self.log(did)
        return False

    def removal_requested(self) -> bool:
        """`netlab down` on any machine asked every host's agent to remove its part (live/teardown.py); when
        it has, this agent does so, answers and stops."""
        from . import teardown
        if teardown.requested(self.store) is None:
            return False
        self.log(f"netlab down: removing host {self.host}'s part of lab {self.lab} on this machine")
        got = teardown.remove_host(self.lab, self.host, self.store)["data"]
        self.log(f"removed {got['namespaces']} namespaces, {got['processes']} processes "
                 f"({'the whole lab on this machine' if got['scope'] == 'machine' else 'this host only'})")
        self.stop.set()
        return True

    def controller_wakeup(self) -> float:
        """When the controllers or the kubelets' heartbeats must look again without a store write."""
        now = time.time()
        t = [now + heartbeat_period(self.live._periods[0]) if self.live._periods is not None else now]
        if self.elector is not None:
            t.append(self.elector.next_tick())
        if self.live._runner is not None:
            w = self.live._runner.next_wakeup(now)
            if w is not None:
                t.append(w + 0.01)
        restart = self.live.next_restart()
        if restart is not None:
            t.append(restart + 0.05)
        return min(t)

    def next_wakeup(self) -> float:
        now = time.time()
        t = [now + RESYNC_SECONDS - (time.monotonic() - self.live.last_full), self.ctl_due,
             now + self.lease_due - time.monotonic()]
        if self.live.pending():
            t.append(now + 0.2)
        term = self.live.terminator.next_wakeup()   # a pod terminating: its hooks, SIGTERM, SIGKILL
        if term is not None:
            t.append(term)
        due = self.live.probes.next_due()
        if due is not None:
            t.append(due)
        if self.live.probes.busy():
            t.append(now + 0.02)   # a probe in flight: collect its result as soon as it comes
        return max(0.0, min(t) - now)

    def run(self) -> None:
        from ..store import StoreError
        what = f"agent of host {self.host}" if self.host else "control loop"
        self.log(f"{what} of lab {self.lab} started (pid {os.getpid()})")
        down = False   # the store did not answer (an agent on a host cut off from etcd's quorum)
        while not self.stop.is_set():
            try:
                rev = self.store.revision()
                if down:
                    self.log("the lab's store answers again")
                    down = False
                try:
                    self.once()
                    if not self.stop.is_set():
                        self.keep_leases()
                except StoreError:
                    raise
                except Exception:  # noqa: BLE001 - logged; the next pass starts again from the store
                    self.log("pass failed:\n" + traceback.format_exc())
                    self.stop.wait(1.0)
                if self.store.revision() != rev:
                    continue  # written meanwhile (by this pass or anyone else): look again at once; a look
                    # that finds nothing to do writes nothing, so this ends
                timeout = self.next_wakeup()
                end = time.monotonic() + timeout
                while not self.stop.is_set():
                    left = end - time.monotonic()
                    if left <= 0 or self.store.wait(rev, min(0.2, left), interval=POLL) > rev:
                        break
            except StoreError as e:
                # no heartbeat, no pass: what a kubelet cut off from its API server does; the nodes' Leases
                # lapse and the controllers elsewhere see them NotReady. Said once, retried every second.
                if not down:
                    self.log(f"the lab's store does not answer, retrying: {e}")
                    down = True
                self.stop.wait(1.0)
        if self.elector is not None:
            with contextlib.suppress(StoreError):
                self.elector.release()   # a clean stop: another agent takes the controllers over at once
        self.log(f"{what} stopped")


USAGE = "usage: python -m netlab.live.loop LAB [--host HOST]\n"


def parse_args(argv: list[str]) -> tuple[str, str | None] | None:
    """(lab, host) of `LAB` or `LAB --host HOST`; None if argv is neither."""
    from ..dataplane.state import LAB_NAME
    if len(argv) == 1:
        lab, host = argv[0], None
    elif len(argv) == 3 and argv[1] == "--host":
        lab, host = argv[0], argv[2]
    else:
        return None
    if not LAB_NAME.match(lab) or (host is not None and not LAB_NAME.match(host)):
        return None
    return lab, host


LOCK_WAIT = 30.0   # seconds a loop waits for the lock of one that no longer runs (see _take_lock)


def _agent_running(lab: str, host: str) -> bool:
    from . import agent
    return agent.running(lab, host) is not None


def _take_lock(fd: int, other_runs, wait: float = LOCK_WAIT) -> bool:
    """The loop's lock (flock on `fd`), or False when another loop holds it and runs (`other_runs()`). A loop
    killed a moment ago may still hold it although it no longer runs: its first thread is a zombie while
    another finishes a system call (a namespace's or a netlink request's, slow on a loaded machine), and the
    kernel lets the lock go with the last thread. A loop started meanwhile (any netlab command starts one)
    waits for it, up to `wait` seconds, instead of leaving the lab without one."""
    import fcntl
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError:
            if other_runs() or time.monotonic() >= deadline:
                return False
            time.sleep(0.05)


def main(argv: list[str]) -> int:
    import faulthandler
    try:
        faulthandler.enable()   # a crash of the interpreter itself prints every thread's stack to the log
    except (OSError, ValueError, AttributeError):
        pass   # a stderr without a file descriptor (called in-process)
    parsed = parse_args(argv)
    if parsed is None:
        sys.stderr.write(USAGE)
        return 2
    lab, host = parsed
    from ..dataplane import layout
    if host is not None:
        layout.set_host(host)   # this process keeps its host's state (layout.state_file, terminations...)
    # one loop per lab (per host for an agent): the first holds this lock for its whole life; one started
    # alongside (two commands found none running at the same moment) leaves once the other has recorded itself
    import fcntl
    from ..dataplane import procs, state
    lock = layout.agent_lockfile(lab, host) if host else os.path.join(layout.run_dir(lab), f"{TAG}.lock")
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError:
        return 0
    if not _take_lock(fd, lambda: running(lab) if host is None else _agent_running(lab, host)):
        return 0
    state.write_private(layout.agent_pidfile(lab, host) if host else pidfile(lab),
                        json.dumps({"pid": os.getpid(), "start": procs.start_time(os.getpid()) or ""}))
    loop = Loop(lab, host)
    signal.signal(signal.SIGTERM, lambda *_: loop.stop.set())
    signal.signal(signal.SIGINT, lambda *_: loop.stop.set())
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
