"""Built-in servers forked from one interpreter that has already imported them (a fork server).

A built-in server is an interpreter that imports netexec: about 80 ms of CPU before it serves anything. A
10,000-pod `up` starts 100 of them while its threads build the pods, and those 8 s of CPU were taken from
the pods' threads on a 2-core machine. Started as forks of this process, each costs a fork (a few ms).

    python -S -m netlab.workload.zygote PARENT_PID --room=xxxx...

Reads one request per line on stdin (JSON: {"netns": PATH, "log": PATH, "owner": TAG, "argv": [...]}, argv
being the server's command line as procs.netexec_argv gives it), and for each forks a server: in its own
session, in the network namespace at PATH, with stdin on /dev/null and stdout and stderr appended to the
log, and NETLAB_OWNER=TAG in the environment the kernel shows for it (/proc/PID/environ, which is how
netlab knows its processes: see procs.owner_of). It answers each request with a line: the server's PID, or
"error: WHY" (the caller then starts that server the usual way). It ends at the end of its input, or with
the thread that started it (PR_SET_PDEATHSIG): its servers live on, as those started by exec do.
Single-threaded, so that forking it is safe.

The environment and the command line: a forked process's /proc/PID/environ and cmdline are the memory its
parent was exec'd with (the kernel's env_start to env_end, arg_start to arg_end), so the child writes its
own over those blocks, as setproctitle writes a title over argv's: its tag, and netexec's command line as
an exec'd server has it (`ps` shows the same). The blocks have room to spare (ROOM_VAR's and the --room
argument's padding, put there by procs.ServerForks, which the children drop). prctl(PR_SET_MM_ENV_START)
could point the kernel at new blocks instead, but it needs CAP_SYS_RESOURCE, which root in a container
often lacks.
"""
from __future__ import annotations

import ctypes
import functools
import json
import os
import signal
import sys

from . import netexec

OWNER_VAR = "NETLAB_OWNER"   # (dataplane.procs.OWNER_VAR: that package is not imported here)
ROOM_VAR = "NETLAB_ENV_ROOM"   # padding in this process's environment: room for a server's longer tag
SERVER = ["-m", "netlab.workload.netexec"]   # what a server's command line runs (after the interpreter, -S)
CLONE_NEWNET = 0x40000000
PR_SET_PDEATHSIG = 1

_libc = ctypes.CDLL(None, use_errno=True)
_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
_libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]


def _check(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


@functools.lru_cache(maxsize=None)
def _blocks() -> tuple[tuple[int, int], tuple[int, int]]:
    """(arg_start, arg_end), (env_start, env_end) of this process (proc(5): /proc/self/stat fields 48 to 51;
    set at its exec, so read once)."""
    with open("/proc/self/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()   # (fields[0] is field 3)
    return (int(fields[45]), int(fields[46])), (int(fields[47]), int(fields[48]))


def _overwrite(block: tuple[int, int], data: bytes) -> None:
    start, end = block
    ctypes.memmove(start, data + b"\0" * (end - start - len(data)), end - start)


def _packed(items: list[str]) -> bytes:
    return b"".join(i.encode() + b"\0" for i in items)


class Identity:
    """A server's command line and environment, checked to fit over this process's (see `set`)."""

    def __init__(self, argv: list[str], env: dict[str, str]):
        self.env = {k: v for k, v in env.items() if k != ROOM_VAR}
        self.args_data = _packed(argv)
        self.env_data = _packed([f"{k}={v}" for k, v in self.env.items()])
        (a0, a1), (e0, e1) = self.blocks = _blocks()
        if len(self.args_data) > a1 - a0 or len(self.env_data) > e1 - e0:
            raise OSError(f"no room for the server's command line or environment ({len(self.args_data)} and "
                          f"{len(self.env_data)} bytes; {a1 - a0} and {e1 - e0} here)")

    def set(self) -> None:
        """This (forked) process's command line and environment as the kernel shows them
        (/proc/self/cmdline and environ), written over the blocks the process was exec'd with, and its
        environment for itself (os.environ)."""
        os.environ.clear()   # (libc's copy, first: its pointers into the block go before the block changes)
        _overwrite(self.blocks[1], self.env_data)
        os.environ.update(self.env)
        _overwrite(self.blocks[0], self.args_data)


def _child(req: dict, netns: int, who: Identity, args: list[str]) -> int:
    """In the forked child: become the server `req` asks for (netexec with `args`), in the namespace `netns`
    (an fd); returns its exit code."""
    os.setsid()
    _check(_libc.setns(netns, CLONE_NEWNET), f"setns {req['netns']}")
    null = os.open(os.devnull, os.O_RDONLY)
    log = os.open(req["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.fchmod(log, 0o600)
    os.dup2(null, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    for name in os.listdir("/proc/self/fd"):   # (the zygote's pipes among them)
        if int(name) > 2:
            try:
                os.close(int(name))
            except OSError:
                pass
    os.chdir("/")
    who.set()
    signal.signal(signal.SIGINT, signal.default_int_handler)   # (as in an interpreter of its own)
    sys.argv = ["netexec", *args]
    return netexec.main(args)


def _fork(req: dict) -> int:
    """Fork the server `req` asks for; returns its PID. What can fail is tried before the fork (OSError:
    nothing forked)."""
    argv = req["argv"]
    at = 2   # (after the interpreter and -S)
    if argv[at:at + len(SERVER)] != SERVER:
        raise ValueError(f"not a built-in server's command line: {argv[:at + len(SERVER)]}")
    args = argv[at + len(SERVER):]
    who = Identity(argv, dict(os.environ, **{OWNER_VAR: req["owner"]}))
    netns = os.open(req["netns"], os.O_RDONLY | os.O_CLOEXEC)
    try:
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                code = _child(req, netns, who, args)
            except BaseException as e:  # noqa: BLE001 - the server's log says why it ended
                try:
                    os.write(2, f"netlab built-in server: cannot start: {e}\n".encode())
                except OSError:
                    pass
            finally:
                os._exit(code or 0)
        return pid
    finally:
        os.close(netns)


def serve(rfile, wfile) -> None:
    for line in rfile:
        try:
            answer = str(_fork(json.loads(line)))
        except (OSError, ValueError, KeyError, TypeError) as e:
            answer = f"error: {e}"
        wfile.write(answer + "\n")
        wfile.flush()
        try:   # (a server that ended at once: reaped here while this process lives)
            while os.waitpid(-1, os.WNOHANG)[0] > 0:
                pass
        except ChildProcessError:
            pass


def main() -> int:
    parent = int(sys.argv[1])
    if _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0 or os.getppid() != parent:
        return 1
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # (Ctrl-C is for `up`: it ends this by closing stdin)
    serve(sys.stdin, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
