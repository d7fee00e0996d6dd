"""What every probe kind has in common: its place in the results, its deadline on the engine's heap,
and how it finishes; plus the small text helpers the kinds share.

A kind is a class with start(group), on_deadline(group) and close(group); raw kinds also receive the
replies their group matched (on_tcp, on_udp, on_echo_reply, on_icmp_error), socket kinds the
selector events of their own socket (on_event). netlab.probe.kinds.PROBE_CLASSES maps kind names to
classes.
"""
from __future__ import annotations

import heapq
import ipaddress
import itertools
import time
from typing import TYPE_CHECKING

from ..spec import ProbeResult, ProbeSpec

if TYPE_CHECKING:
    from ..group import Group

_heap_seq = itertools.count()


def ms(seconds: float) -> float:
    return round(seconds * 1000.0, 3)


def short_text(b: bytes, limit: int = 200) -> str:
    t = b.decode("utf-8", "replace").strip()
    return t if len(t) <= limit else t[:limit] + "..."


def ip_only(s: str) -> str | None:
    host = s.strip().rsplit(":", 1)[0].strip("[]")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return None
    return host


class Probe:
    __slots__ = ("idx", "spec", "deadline", "done", "group")

    def __init__(self, idx: int, spec: ProbeSpec):
        self.idx, self.spec = idx, spec
        self.deadline = 0.0
        self.done = False
        self.group: Group | None = None

    def start(self, g: "Group") -> None:
        raise NotImplementedError

    def set_deadline(self, g: "Group", seconds: float) -> None:
        self.deadline = time.monotonic() + seconds
        heapq.heappush(g.engine.heap, (self.deadline, next(_heap_seq), self, g))

    def on_deadline(self, g: "Group") -> None:
        raise NotImplementedError

    def close(self, g: "Group") -> None:
        pass

    def finish(self, g: "Group", outcome: str, detail: str, rtt_ms: float | None = None, **kw) -> None:
        if self.done:
            return
        self.done = True
        g.results[self.idx] = ProbeResult(self.spec, outcome, rtt_ms, detail, **kw)
        self.close(g)
        g.active.discard(self)


class Retry(Exception):
    """The send socket is full: try this probe again on the next loop turn."""
