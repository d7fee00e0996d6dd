"""Processes of a lab: the containers' commands and the per-node built-in test server.

Every process is started through `nsenter` into the pod's (or node's) namespaces, in its own session,
with its output in a root-only log. netlab records the PID *and* its start time, so a recycled PID is
never mistaken for a container, and `down` ends processes by those records and by namespace
membership (the kernel's answer to "who is in this namespace"), never by name.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from typing import Any, Iterable

from ..errors import KernelError


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


def alive(rec: dict[str, Any] | None) -> bool:
    if not rec or not rec.get("pid"):
        return False
    return start_time(int(rec["pid"])) == rec.get("start")


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
          env: dict[str, str] | None = None, cwd: str = "/") -> dict[str, Any]:
    """Start argv inside a namespace; returns its record. nsenter execs argv, so the PID is argv's."""
    cmd = ["nsenter", f"--net={netns_path}"]
    if uts_path:
        cmd.append(f"--uts={uts_path}")
    cmd += ["--", *argv]
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


def netexec_argv(config: str, pidfile: str) -> list[str]:
    return [sys.executable, "-m", "netlab.workload.netexec", "--config", config, "--pidfile", pidfile]


def read_pidfile(path: str) -> tuple[int, int] | None:
    try:
        with open(path) as f:
            parts = f.read().split()
        return int(parts[0]), int(parts[1]) if len(parts) > 1 else 0
    except (OSError, ValueError, IndexError):
        return None


def wait_pidfiles(waits: list[tuple[str, int, int | None]], timeout: float = 15.0) -> None:
    """Wait until each (pidfile, pid or 0, generation or None) shows that pid at a newer generation."""
    deadline = time.monotonic() + timeout
    pending = list(waits)
    while pending:
        left = []
        for path, pid, gen in pending:
            got = read_pidfile(path)
            if got and (not pid or got[0] == pid) and (gen is None or got[1] > gen):
                continue
            if pid and start_time(pid) is None:
                raise KernelError(f"the built-in server (pid {pid}) died while starting; see {path[:-4]}.log")
            left.append((path, pid, gen))
        pending = left
        if pending:
            if time.monotonic() > deadline:
                raise KernelError(f"the built-in server did not get ready in {timeout:.0f} s ({pending[0][0]})")
            time.sleep(0.005)


def netns_members(paths: Iterable[str]) -> dict[int, str]:
    """PIDs whose network namespace is one of `paths` (the kernel's `ip netns pids`), pid -> path."""
    wanted = {}
    for p in paths:
        try:
            st = os.stat(p)
            wanted[(st.st_dev, st.st_ino)] = p
        except OSError:
            pass
    found: dict[int, str] = {}
    if not wanted:
        return found
    me = os.getpid()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            st = os.stat(f"/proc/{entry.name}/ns/net")
        except OSError:
            continue
        key = (st.st_dev, st.st_ino)
        if key in wanted:
            found[int(entry.name)] = wanted[key]
    return found


def terminate(records: Iterable[dict[str, Any]], pids: Iterable[int] = (), grace: float = 1.0) -> int:
    """SIGTERM, then SIGKILL after `grace` seconds: recorded processes (if still the same) and `pids`."""
    targets: dict[int, str | None] = {}
    for rec in records:
        if alive(rec):
            targets[int(rec["pid"])] = rec.get("start")
    for pid in pids:
        targets.setdefault(pid, start_time(pid))
    targets = {p: s for p, s in targets.items() if s is not None}
    count = len(targets)
    for pid in targets:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace
    while targets and time.monotonic() < deadline:
        targets = {p: s for p, s in targets.items() if start_time(p) == s}
        if targets:
            time.sleep(0.01)
    for pid, s in targets.items():
        if start_time(pid) == s:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    # reap children of ours, if any (processes started by this very process)
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            break
    return count
