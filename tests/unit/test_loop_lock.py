"""The control loop's one-per-lab lock (live/loop.py _take_lock): a loop started while another runs leaves; one
started while a killed loop's last thread still holds the lock waits for it instead of leaving the lab without
a loop (seen in CI: a loop SIGKILLed mid-rollout, `get pods` started one that left at once)."""
from __future__ import annotations

import fcntl
import os
import threading
import time

from netlab.live.loop import _take_lock


def _fds(tmp_path):
    path = str(tmp_path / "control-loop.lock")
    return (os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600),
            os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600))


def test_a_free_lock_is_taken(tmp_path):
    a, _ = _fds(tmp_path)
    assert _take_lock(a, lambda: False, wait=0)


def test_a_loop_that_runs_keeps_it_and_the_new_one_leaves_at_once(tmp_path):
    a, b = _fds(tmp_path)
    fcntl.flock(a, fcntl.LOCK_EX)
    t0 = time.monotonic()
    assert not _take_lock(b, lambda: True, wait=5)
    assert time.monotonic() - t0 < 1


def test_a_lock_held_by_no_running_loop_is_waited_for(tmp_path):
    a, b = _fds(tmp_path)
    fcntl.flock(a, fcntl.LOCK_EX)
    threading.Timer(0.3, os.close, (a,)).start()   # the killed loop's last thread ends
    t0 = time.monotonic()
    assert _take_lock(b, lambda: False, wait=5)
    assert 0.25 < time.monotonic() - t0 < 3


def test_it_gives_up_after_its_wait(tmp_path):
    a, b = _fds(tmp_path)
    fcntl.flock(a, fcntl.LOCK_EX)
    t0 = time.monotonic()
    assert not _take_lock(b, lambda: False, wait=0.3)
    assert time.monotonic() - t0 >= 0.3
