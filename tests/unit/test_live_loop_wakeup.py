"""The control loop's sleep (netlab/live/loop.py Loop.run): a write another process makes while a
pass runs must not be taken for the loop's own, or a verb's change (scale, apply ...) waits for the
next timer (a heartbeat, the 30 s resync) instead of being acted on at once."""
from __future__ import annotations

import threading
import time

from netlab.live.loop import Loop
from netlab.store import MemoryStore


class FakeLoop(Loop):
    """Loop.run with a pass that only records when it ran; the first pass sees a foreign write land
    in its middle (as `netlab scale` committing while the loop's controllers run)."""

    def __init__(self):
        self.lab = "unit"
        self.store = MemoryStore()
        self.stop = threading.Event()
        self.passes_at: list[float] = []

    def log(self, msg: str) -> None:
        pass

    def once(self) -> None:
        self.passes_at.append(time.monotonic())
        if len(self.passes_at) == 2:  # the loop's own write (a heartbeat)
            self.store.create({"apiVersion": "v1", "kind": "Lease", "metadata": {"name": "own"}})
        if len(self.passes_at) == 1:
            self.store.create({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}})

    def next_wakeup(self) -> float:
        return 5.0  # the next timer is far


def test_a_write_during_a_pass_is_acted_on_at_once_not_at_the_next_timer():
    loop = FakeLoop()
    t = threading.Thread(target=loop.run)
    t.start()
    try:
        deadline = time.monotonic() + 3
        while len(loop.passes_at) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(loop.passes_at) >= 2, "the write made during the first pass waited for the next timer"
        assert loop.passes_at[1] - loop.passes_at[0] < 1.0
        time.sleep(1.0)  # and the loop settles: a pass that writes nothing is followed by a sleep
        assert len(loop.passes_at) == 3, len(loop.passes_at)
    finally:
        loop.stop.set()
        t.join(10)
