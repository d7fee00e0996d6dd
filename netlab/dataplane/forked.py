"""Forking `up`'s process safely: os.fork with Ctrl-C held back while the interpreter's fork hooks run.

os.fork runs the interpreter's fork hooks, among them logging's, which takes the logging module's lock before the
fork and releases it after. A KeyboardInterrupt raised inside the releasing hook is ignored by the interpreter,
and the lock stays taken: the next thread that logs (pyroute2 logs every netlink message it builds) waits for
ever. An `up` interrupted at that moment hangs instead of ending. Seen on 2026-12-06 with a fork tried right
after `up` writes its state file, where test_reliability's Ctrl-C test sends SIGINT: 4 hangs in 6 runs (that fork
was not kept); the fork of the nodes' child (prebuild.py), earlier in `up`, has the same window, narrower. A
Python signal handler runs in the main thread only, so only a fork there needs this; the child gets SIGINT's
default action either way (it dies with `up`'s process group on Ctrl-C, and with the thread that forked it
through PR_SET_PDEATHSIG, which its code sets).
"""
from __future__ import annotations

import os
import signal
import threading


def fork() -> tuple[int, bool]:
    """os.fork(), returning (pid, whether a SIGINT came while it ran). The caller makes its record of the child
    (so that it can end it), then acts on the interruption (`interrupted`)."""
    if threading.current_thread() is not threading.main_thread():
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGINT, signal.SIG_DFL)   # (the forking thread is the child's main thread)
        return pid, False
    held: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: held.append(signum))
    try:
        pid = os.fork()
    except BaseException:
        signal.signal(signal.SIGINT, previous)
        raise
    if pid == 0:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        return 0, False
    signal.signal(signal.SIGINT, previous)
    return pid, bool(held)


def interrupted() -> None:
    """Act on a SIGINT that `fork` held back, as this process's handler would have (KeyboardInterrupt by
    default)."""
    handler = signal.getsignal(signal.SIGINT)
    if handler is signal.default_int_handler:
        raise KeyboardInterrupt
    if callable(handler):
        handler(signal.SIGINT, None)
    elif handler == signal.SIG_DFL:
        os.kill(os.getpid(), signal.SIGINT)
