"""What `netlab down` and `netlab probe` of a lab on real hosts share when they ask the other machines'
agents through the lab's store (live/teardown.py, live/remoteprobe.py): waiting for their answers."""
from __future__ import annotations

import time
from typing import Callable


def await_answers(hosts, settled: Callable[[str], bool], deadline: float | None = None, progress=None,
                  waiting_text: Callable[[list[str]], str] | None = None, interval: float = 0.2,
                  first: float = 5.0) -> list[str]:
    """Look at each host's answer (`settled(host)`: True once there is nothing more to wait for from it) until
    every host settled or `deadline` (time.monotonic()) passed; returns the hosts that did not settle. Says
    `waiting_text(hosts left)` through `progress` after `first` s, then every 5 s. An exception from `settled`
    ends the wait, raised."""
    waiting = sorted(hosts)
    said = time.monotonic() - 5 + first
    while waiting:
        waiting = [h for h in waiting if not settled(h)]
        if not waiting or deadline is not None and time.monotonic() >= deadline:
            break
        if progress and waiting_text and time.monotonic() - said >= 5:
            progress(waiting_text(waiting))
            said = time.monotonic()
        time.sleep(interval)
    return waiting


def hosts_text(waiting: list[str]) -> str:
    return f"host{'s' if len(waiting) > 1 else ''} {', '.join(waiting)}"
