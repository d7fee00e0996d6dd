"""Processes of a lab: the containers' commands and the per-node built-in test server.

Every process is started through `nsenter` into the pod's (or node's) namespaces, in its own session,
with its output in a root-only log. netlab records the PID *and* its start time, so a recycled PID is
never mistaken for a container, and `down` ends processes by those records and by namespace
membership (the kernel's answer to "who is in this namespace"), never by name.
"""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from typing import Any, Iterable

from ..errors import KernelError
from . import nsenter, nsfs, sandbox
from .sandbox import Sandbox

OWNER_VAR = "NETLAB_OWNER"


def start_time(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except OSError:
        return None
    # the command name may contain spaces and parentheses: split after the last ')'
    fields = data[data.rindex(")") + 2:].split()
    if fields[0] == "Z":
        return None  # a zombie is dead
    return fields[19]


def alive(rec: dict[str, Any] | None, owner: str | None = None, netns: str | None = None) -> bool:
    """Whether a recorded process still runs (the same one: its start time matches) and, with `owner`
    and `netns`, carries that NETLAB_OWNER tag and lives in that network namespace. A record read from a
    torn or edited state file may hold anything: that is simply not alive, and never a process netlab
    would signal."""
    if not isinstance(rec, dict):
        return False
    try:
        pid = int(rec.get("pid") or 0)
    except (TypeError, ValueError):
        return False
    if pid <= 0 or start_time(pid) != rec.get("start"):
        return False
    if netns is not None and _netns_of(pid) != nsfs.ns_inode(netns):
        return False
    return owner is None or owner_of(pid) == owner


def _netns_of(pid: int) -> tuple[int, int] | None:
    return nsfs.ns_inode(f"/proc/{pid}/ns/net")


def record(pid: int) -> dict[str, Any]:
    return {"pid": pid, "start": start_time(pid)}


def which(argv0: str) -> str | None:
    if "/" in argv0:
        return argv0 if os.access(argv0, os.X_OK) else None
    return shutil.which(argv0)


def _open_log(path: str):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.fchmod(fd, 0o600)
    return fd


def spawn(argv: list[str], netns_path: str, log_path: str, uts_path: str | None = None,
          env: dict[str, str] | None = None, cwd: str = "/", owner: str | None = None) -> dict[str, Any]:
    """Start argv inside a namespace; returns its record. nsenter execs argv, so the PID is argv's.
    It may not be inside the namespace yet when this returns: see `wait_entered`.

    `owner` is put in the process's environment as NETLAB_OWNER: if this netlab is killed before it
    records the PID, the next `up` finds the process by it (see `owned`) instead of starting another.
    """
    if owner is not None:
        env = dict(os.environ if env is None else env, **{OWNER_VAR: owner})
    cmd = nsenter.command(netns_path, argv, uts_path)
    log = _open_log(log_path)
    try:
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
                             close_fds=True, env=env, cwd=cwd if os.path.isdir(cwd) else "/")
    except OSError as e:
        raise KernelError(f"cannot start {argv[0]} in {netns_path}: {e.strerror}") from None
    finally:
        os.close(log)
    # Popen keeps a handle that would reap the child; the lab outlives this process, so let it go.
    p.returncode = 0
    return {"pid": p.pid, "start": start_time(p.pid) or ""}


class ServerForks:
    """Built-in servers forked from one interpreter that has imported them (workload/zygote.py), for a
    pass that starts many: each costs a fork instead of an interpreter's start (about 80 ms of CPU).
    Started in `netns_path` (a namespace of the lab's) with the owner tag `owner`; `spawn` returns None when
    it cannot (the caller then uses `spawn`, as for one server). Ends with `close`."""

    def __init__(self, netns_path: str, log_path: str, owner: str):
        self.p: subprocess.Popen | None = None
        # (room in its environment and command line for its servers': see zygote.Identity)
        env = dict(netexec_env(), **{OWNER_VAR: owner, "NETLAB_ENV_ROOM": "x" * 256})
        log = _open_log(log_path)
        try:
            self.p = subprocess.Popen(
                nsenter.command(netns_path, [sys.executable, "-S", "-m", "netlab.workload.zygote",
                                             str(os.getpid()), "--room=" + "x" * 512]),
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, start_new_session=True,
                close_fds=True, env=env, cwd="/", text=True, bufsize=1)
        except OSError:
            self.p = None
        finally:
            os.close(log)

    def spawn(self, argv: list[str], netns_path: str, log_path: str, owner: str) -> dict[str, Any] | None:
        """Fork a built-in server (argv: its command line, `netexec_argv`'s)."""
        if self.p is None:
            return None
        try:
            self.p.stdin.write(json.dumps({"netns": netns_path, "log": log_path, "owner": owner,
                                           "argv": argv}) + "\n")
            answer = self.p.stdout.readline().strip()
        except OSError:
            answer = ""
        if not answer:   # it ended (it could not start, or was killed): no more forks
            self.close()
            return None
        if not answer.isdigit():   # "error: ...": nothing forked, this one is started as before
            return None
        pid = int(answer)
        return {"pid": pid, "start": start_time(pid) or ""}

    def close(self) -> None:
        if self.p is None:
            return
        p, self.p = self.p, None
        try:
            p.stdin.close()
        except OSError:
            pass
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        p.stdout.close()


# A container runs under a small sh that waits for it and writes its exit status (the lab outlives the
# `up` that started it, so nobody else would learn it). The sh carries its own owner tag (with this
# suffix) and drops the suffix for the command, so only the command is "the container".
SUPERVISOR_TAG = "#supervisor"
_SUPERVISOR = ('NETLAB_OWNER="${NETLAB_OWNER%' + SUPERVISOR_TAG + '}"; export NETLAB_OWNER; '
               '"$@"; echo $? > "$0"')


def spawn_container(argv: list[str], netns_path: str, log_path: str, exit_path: str, uts_path: str | None = None,
                    env: dict[str, str] | None = None, cwd: str = "/", owner: str | None = None,
                    box: "Sandbox | None" = None) -> dict[str, Any]:
    """Start a container's argv in its sandbox (`box`, default: a default Sandbox; see sandbox.py) under
    its supervisor; returns the supervisor's record. The container's own record comes from
    `container_records` once the supervisor has started it; its exit status is written to `exit_path`
    (removed here first) when it ends. `cwd` is the container's working directory (inside its root)."""
    try:
        os.unlink(exit_path)
    except FileNotFoundError:
        pass
    outer, inner = sandbox.container_argv(dataclasses.replace(box or Sandbox(), workdir=cwd or "/"), argv)
    return spawn([*outer, "sh", "-c", _SUPERVISOR, exit_path, *inner], netns_path, log_path,
                 uts_path, env, "/", None if owner is None else owner + SUPERVISOR_TAG)


def container_records(supervisors: list[dict[str, Any]], owners: list[str],
                      timeout: float = 10.0) -> list[dict[str, Any] | None]:
    """For each supervisor record: its container's record (its only child, once it runs the container's
    command: it carries the container's owner tag, which the supervisor's fork does not until it has
    exec'd), or None if the container has already ended (its exit status is then in its exit file)."""
    out: list[dict[str, Any] | None] = [None] * len(supervisors)
    pending = list(range(len(supervisors)))
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        left = []
        for i in pending:
            sup = supervisors[i]
            pid = int(sup["pid"])
            kid: int | None = pid
            for _ in range(1 + sandbox.WRAPPER_DEPTH):
                kid = _only_child(kid) if kid is not None else None
            rec = record(kid) if kid is not None else None
            if rec is not None and rec["start"] is not None and owner_of(rec["pid"]) == owners[i]:
                out[i] = rec
            elif start_time(pid) == sup.get("start"):
                left.append(i)
        pending = left
        if pending:
            time.sleep(0.002)
    return out


def _only_child(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            kids = f.read().split()
    except OSError:
        return None
    return int(kids[0]) if kids else None


def container_supervisor(pid: int) -> list[int]:
    """The processes above a container's process that netlab started for it (its supervisor, and any
    sandbox.WRAPPER_DEPTH wrappers between), nearest first."""
    out = []
    for _ in range(1 + sandbox.WRAPPER_DEPTH):
        p = parent(pid)
        if not p or p == 1:
            break
        out.append(p)
        pid = p
    return out


def exit_status(path: str) -> int | None:
    """The exit status a container's supervisor wrote (128+N: killed by signal N), or None."""
    try:
        with open(path) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def listening(pid: int) -> set[tuple[str, int]]:
    """(protocol, port) of the TCP sockets listening and the UDP sockets bound in the network namespace
    of process `pid` (read from /proc/PID/net: no need to enter the namespace)."""
    return _sockets(f"/proc/{pid}/net")


def listening_in(paths: Iterable[str]) -> dict[str, set[tuple[str, int]] | None]:
    """`listening` for namespaces no process of ours lives in (a pod served by its node's built-in
    server): one throwaway thread hops from namespace to namespace and reads /proc/thread-self/net.
    path -> (protocol, port) set, None for a namespace that is gone."""
    paths = list(paths)

    def hop() -> dict[str, set[tuple[str, int]] | None]:
        out: dict[str, set[tuple[str, int]] | None] = {}
        for path in paths:
            try:
                nsfs.enter_netns_here(path)
            except OSError:
                out[path] = None
                continue
            out[path] = _sockets("/proc/thread-self/net")
        return out
    return nsfs.run_in_thread(hop) if paths else {}


def _sockets(base: str) -> set[tuple[str, int]]:
    found: set[tuple[str, int]] = set()
    for proto, files in (("TCP", ("tcp", "tcp6")), ("UDP", ("udp", "udp6"))):
        for name in files:
            try:
                with open(f"{base}/{name}") as f:
                    lines = f.read().splitlines()[1:]
            except OSError:
                continue
            for line in lines:
                fields = line.split()
                if len(fields) < 4 or (proto == "TCP" and fields[3] != "0A"):
                    continue
                found.add((proto, int(fields[1].rsplit(":", 1)[1], 16)))
    return found


def wait_entered(started: Iterable[tuple[dict[str, Any], str]], timeout: float = 10.0) -> None:
    """Wait until every (record, netns path) started by `spawn` is inside its namespace, or dead.

    Popen returns once nsenter runs, before nsenter has joined the namespace; a check made in that
    window (a second `up`, `get pods`) would take the new container for one that is not running.
    A process that exits instead (its command failed) ends the wait for it: it is reported as dead.
    """
    pending = [(int(rec["pid"]), rec.get("start"), nsfs.ns_inode(path)) for rec, path in started]
    deadline = time.monotonic() + timeout
    delay = 0.0005
    while pending and time.monotonic() < deadline:
        pending = [(pid, st, ino) for pid, st, ino in pending
                   if start_time(pid) == st and _netns_of(pid) != ino]
        if pending:
            time.sleep(delay)
            delay = min(delay * 2, 0.02)


def owner_of(pid: int) -> str | None:
    """The NETLAB_OWNER a process was started with (from /proc/PID/environ), if any."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            data = f.read()
    except OSError:
        return None
    tag = OWNER_VAR.encode() + b"="
    for item in data.split(b"\0"):
        if item.startswith(tag):
            return item[len(tag):].decode(errors="replace")
    return None


def tagged(prefixes: Iterable[str], host: bool = False) -> dict[int, str]:
    """Processes whose NETLAB_OWNER starts with one of `prefixes` (a lab's "<lab>/", a pod's
    "<lab>/pod/<ns>/<pod>/"), in any network namespace but this process's own (the host's, where netlab
    never starts anything: a tagged process there is not netlab's), pid -> tag. The tag is netlab's own,
    put in the environment of every process it starts (and inherited by their children), so a process
    found this way is the lab's even outside the lab's named namespaces (in a pod namespace someone
    deleted by hand, which lives on, nameless, while a process is in it). `host`: those in the host's
    namespace too (a lab's control loop runs there)."""
    prefixes = tuple(prefixes)
    found: dict[int, str] = {}
    if not prefixes:
        return found
    me = os.getpid()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        tag = owner_of(int(entry.name))
        if tag is not None and tag.startswith(prefixes) and start_time(int(entry.name)) is not None \
                and (host or not in_host_netns(int(entry.name))):
            found[int(entry.name)] = tag
    return found


def in_host_netns(pid: int) -> bool:
    """Whether process `pid` shares this process's network namespace (or cannot be looked at)."""
    theirs = _netns_of(pid)
    return theirs is None or theirs == _netns_of(os.getpid())


def parent(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
        return int(data[data.rindex(")") + 2:].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def owned(paths: Iterable[str]) -> dict[str, list[int]]:
    """Processes inside the namespaces `paths` that netlab started, by owner tag (oldest PID first)."""
    out: dict[str, list[int]] = {}
    for pid in sorted(netns_members(paths)):
        tag = owner_of(pid)
        if tag is not None and start_time(pid) is not None:
            out.setdefault(tag, []).append(pid)
    return out


def netexec_argv(config: str, pidfile: str) -> list[str]:
    # -S: no site initialisation (the server needs only the standard library and this package, which
    # netexec_env puts on the path); it starts ~10 ms sooner, once per node on every bring-up
    return [sys.executable, "-S", "-m", "netlab.workload.netexec", "--config", config, "--pidfile", pidfile]


def netexec_env() -> dict[str, str]:
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    root = os.path.dirname(package)  # the directory that holds netlab/
    return dict(os.environ, PYTHONPATH=root)


def read_pidfile(path: str) -> tuple[int, int] | None:
    try:
        with open(path) as f:
            parts = f.read().split()
        return int(parts[0]), int(parts[1]) if len(parts) > 1 else 0
    except (OSError, ValueError, IndexError):
        return None


def server_log(pidfile: str) -> str:
    """A built-in server's log from its pidfile."""
    from .layout import server_log_of
    return server_log_of(pidfile)


def pidfile_current(path: str, pid: int, gen: int | None) -> bool:
    """Whether the pidfile shows `pid` (or any, if 0) at a generation newer than `gen` (any, if None); a
    server that died instead is an error."""
    got = read_pidfile(path)
    if got and (not pid or got[0] == pid) and (gen is None or got[1] > gen):
        return True
    if pid and start_time(pid) is None:
        raise KernelError(f"the built-in server (pid {pid}) died while starting; see {server_log(path)}")
    return False


def wait_pidfiles(waits: list[tuple[str, int, int | None]], timeout: float = 60.0) -> None:
    """Wait until each (pidfile, pid or 0, generation or None) shows that pid at a newer generation. A
    server that dies is reported at once; one still starting is waited for up to `timeout` s (15 s was too
    little for a Python server in the suite's emulated VM while the host ran the rest of the suite)."""
    deadline = time.monotonic() + timeout
    pending = list(waits)
    while pending:
        pending = [w for w in pending if not pidfile_current(*w)]
        if pending:
            if time.monotonic() > deadline:
                raise KernelError(f"the built-in server did not get ready in {timeout:.0f} s ({pending[0][0]})")
            time.sleep(0.005)


def netns_members(paths: Iterable[str]) -> dict[int, str]:
    """PIDs whose network namespace is one of `paths` (the kernel's `ip netns pids`), pid -> path."""
    wanted = {}
    for p in paths:
        key = nsfs.ns_inode(p)
        if key is not None:
            wanted[key] = p
    found: dict[int, str] = {}
    if not wanted:
        return found
    me = os.getpid()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        key = _netns_of(int(entry.name))
        if key is not None and key in wanted:
            found[int(entry.name)] = wanted[key]
    return found


KILL_WAIT = 5.0  # seconds terminate() waits for SIGKILLed processes to be gone


def _still_running(targets: dict[int, str], seconds: float) -> dict[int, str]:
    """Of `targets` (pid -> start time), those still the same running process after up to `seconds`
    (a zombie counts as gone)."""
    deadline = time.monotonic() + seconds
    while True:
        targets = {p: s for p, s in targets.items() if start_time(p) == s}
        if not targets or time.monotonic() >= deadline:
            return targets
        time.sleep(0.01)


def terminate(records: Iterable[dict[str, Any]], pids: Iterable[int] = (), grace: float = 1.0,
              owner: str | None = None) -> int:
    """SIGTERM, then SIGKILL after `grace` seconds: recorded processes (if still the same) and `pids`.
    Returns once they are gone (up to KILL_WAIT seconds after the SIGKILL).

    With `owner` (a NETLAB_OWNER prefix such as "lab/"), a recorded process is ended only if it carries
    that tag and lives outside this process's network namespace (the host's, where netlab never starts
    anything): a state file that was edited or mixed up can never make netlab kill a process it did not
    start. (`pids` are the members of the lab's own namespaces and need no tag.)
    """
    targets: dict[int, str | None] = {}
    here = _netns_of(os.getpid())
    for rec in records:
        if alive(rec):
            pid = int(rec["pid"])  # type: ignore[index]
            if owner is None or ((owner_of(pid) or "").startswith(owner) and _netns_of(pid) != here):
                targets[pid] = rec.get("start")  # type: ignore[union-attr]
    for pid in pids:
        targets.setdefault(pid, start_time(pid))
    running = {p: s for p, s in targets.items() if s is not None}
    count = len(running)
    for pid in running:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    stubborn = _still_running(running, grace)
    for pid in stubborn:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    # SIGKILL is delivered at once but the exit is not: a process with much memory to unmap (etcd) can
    # still show as running for a moment. Return only when every target is gone (or a zombie), so that a
    # caller (netlab down) never reports ended what still runs
    _still_running(stubborn, KILL_WAIT)
    # reap children of ours, if any (processes started by this very process)
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            break
    return count
