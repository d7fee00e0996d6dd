"""dataplane/forked.py: a fork with Ctrl-C held back while the interpreter's fork hooks run."""
import logging
import os
import signal
import threading

import pytest

from netlab.dataplane.forked import fork, interrupted


def _fork_and_reap() -> bool:
    pid, stop = fork()
    if pid == 0:
        os._exit(0 if signal.getsignal(signal.SIGINT) == signal.SIG_DFL else 3)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0   # the child has SIGINT's default action
    return stop


def test_a_quiet_fork_reports_no_interruption():
    assert _fork_and_reap() is False
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_ctrl_c_during_the_fork_is_acted_on_after_it_and_leaves_no_lock_taken():
    """A SIGINT while os.fork runs its hooks (logging's takes the logging module's lock before the fork and
    releases it after): held back until the hooks have run, then raised as KeyboardInterrupt, and logging still
    works (a KeyboardInterrupt inside the hook left its lock taken, and `up` hung)."""
    armed: list[int] = []
    # before-fork hooks run last registered first: this one runs before logging's
    os.register_at_fork(before=lambda: armed and os.kill(os.getpid(), signal.SIGINT))
    armed.append(1)
    try:
        stop = _fork_and_reap()
    finally:
        armed.clear()
    assert stop is True
    with pytest.raises(KeyboardInterrupt):
        interrupted()
    t = threading.Thread(target=lambda: logging.getLogger("netlab.test").debug("after the fork"), daemon=True)
    t.start()
    t.join(5)
    assert not t.is_alive(), "logging's lock was left taken by the interrupted fork"
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler   # the handler put back


def test_a_fork_from_another_thread_is_plain():
    out = []
    t = threading.Thread(target=lambda: out.append(_fork_and_reap()))
    t.start()
    t.join(10)
    assert out == [False]
