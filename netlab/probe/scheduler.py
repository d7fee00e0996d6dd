"""The probe engine's scheduler: one event loop on the caller's thread, which never changes namespace,
drives every probe of every source namespace with non-blocking sockets and epoll. So all groups are
in flight together and a run with timeouts lasts about one timeout, not one per wave of groups.
Limits: `concurrency` probes in flight per source namespace, `max_groups` namespaces with open
sockets at once, `max_in_flight` probes in flight overall.
"""
from __future__ import annotations

import errno
import heapq
import logging
import os
import resource
import selectors
import time
from collections import deque

from netlab.dataplane import nsfs

from .group import Group
from .spec import ProbeResult, ProbeSpec, validate

log = logging.getLogger(__name__)

START_BATCH = 32        # probes started per event-loop turn before replies are read again
ADMIT_BATCH = 16        # source namespaces set up per event-loop turn


class Engine:
    def __init__(self, groups: dict[str, list[tuple[int, ProbeSpec]]], results: list, concurrency: int,
                 max_groups: int, max_in_flight: int, filter_mode: str, groups_out: list | None):
        self.results = results
        self.concurrency = max(1, concurrency)
        self.max_groups = max(1, max_groups)
        self.max_in_flight = max(1, max_in_flight)
        self.filter_mode = filter_mode
        self.groups_out = groups_out
        self.waiting = deque(groups.items())
        self.live: list[Group] = []
        self.heap: list = []
        self.sel: selectors.BaseSelector = selectors.DefaultSelector()

    @property
    def in_flight(self) -> int:
        return sum(len(g.active) for g in self.live)

    def _can_admit(self) -> bool:
        return bool(self.waiting) and len(self.live) < self.max_groups

    def _admit(self) -> None:
        for _ in range(ADMIT_BATCH):  # a few per turn: the groups already admitted start meanwhile
            if not self._can_admit():
                return
            netns, items = self.waiting.popleft()
            g = Group(self, netns, items)
            try:
                g.setup()
            except Exception as e:  # noqa: BLE001 - every probe of the group gets the error
                g.teardown()
                why = f"{type(e).__name__}: {e}"
                if isinstance(e, OSError) and e.errno == errno.ENOENT and not os.path.exists(
                        netns if netns.startswith("/") else nsfs.netns_path(netns)):
                    why = f"no network namespace {netns!r}"
                for idx, spec in items:
                    self.results[idx] = ProbeResult(spec, "error", None, why)
                continue
            if self.groups_out is not None:
                self.groups_out.append(g)
            self.live.append(g)

    def run(self) -> None:
        try:
            rr = 0
            while self.waiting or self.live:
                self._admit()
                # Start probes round-robin over the groups, a bounded number per turn, so that
                # replies are read (and connections moved on) while a big matrix is being sent.
                budget, n = START_BATCH, len(self.live)
                for k in range(n):
                    budget -= self.live[(rr + k) % n].start_more(budget)
                    if budget <= 0:
                        rr = (rr + k + 1) % n
                        break
                blocked = any(g.blocked for g in self.live)
                more = self._can_admit() or (self.in_flight < self.max_in_flight
                                             and any(g.can_start() for g in self.live))
                self._retire()
                if not self.live:
                    continue
                now = time.monotonic()
                wait = self.heap[0][0] - now if self.heap else 0.05
                if more:
                    wait = 0.0
                elif blocked:
                    wait = min(wait, 0.001)
                for key, mask in self.sel.select(max(0.0, wait)):
                    data = key.data
                    if isinstance(data, tuple):
                        data[0].drain(key.fileobj, data[1])
                    elif not data.done:
                        try:
                            data.on_event(data.group, mask)
                        except Exception as e:  # noqa: BLE001 - a bug must only cost this probe
                            log.exception("probe %s failed", data.spec)
                            data.finish(data.group, "error", f"internal error: {type(e).__name__}: {e}")
                now = time.monotonic()
                while self.heap and self.heap[0][0] <= now:
                    t, _, p, g = heapq.heappop(self.heap)
                    if not p.done and p.deadline == t and p in g.active:
                        p.on_deadline(g)
                self._retire()
        finally:
            for g in self.live:
                g.teardown()
            self.live.clear()
            self.sel.close()

    def _retire(self) -> None:
        if any(g.finished for g in self.live):
            for g in [g for g in self.live if g.finished]:
                g.teardown()
                self.live.remove(g)


def ensure_fd_limit(needed: int) -> None:
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft != resource.RLIM_INFINITY and soft < needed:
            new = needed if hard == resource.RLIM_INFINITY else min(hard, needed)
            if new > soft:
                resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
    except (ValueError, OSError):
        pass


def run_probes(specs: list[ProbeSpec], concurrency: int = 64, *, max_groups: int = 128,
               max_in_flight: int = 4096, filter_mode: str = "auto",
               _groups: list | None = None) -> list[ProbeResult]:
    """Run every probe and return the results in the same order.

    Probes are grouped by source namespace ("" = the caller's own namespace). Each group's sockets
    are created by a throwaway thread inside its namespace; one event loop on the calling thread
    (which never changes namespace) runs all groups at once. Limits: `concurrency` probes in flight
    per source namespace, `max_groups` namespaces with open sockets at once, `max_in_flight` probes
    in flight overall. filter_mode: "auto" | "pcap" | "handwritten" | "none" (the BPF filters of the
    raw receive sockets; matching in user space is the same whatever the filter).
    """
    if filter_mode not in ("auto", "pcap", "handwritten", "none"):
        raise ValueError(f"filter_mode must be auto, pcap, handwritten or none, not {filter_mode!r}")
    results: list[ProbeResult | None] = [None] * len(specs)
    groups: dict[str, list[tuple[int, ProbeSpec]]] = {}
    for idx, spec in enumerate(specs):
        why = validate(spec)
        if why:
            results[idx] = ProbeResult(spec, "error", None, why)
        else:
            groups.setdefault(spec.source_netns or "", []).append((idx, spec))
    if groups:
        live = min(max_groups, len(groups))
        # per live group: 4 raw sockets, a pool of up to `concurrency` sockets and the in-flight ones
        ensure_fd_limit(live * (8 + 2 * max(1, concurrency)) + 256)
        Engine(groups, results, concurrency, max_groups, max_in_flight, filter_mode, _groups).run()
    for idx, r in enumerate(results):
        if r is None:  # cannot happen unless the loop died in a way we did not foresee
            results[idx] = ProbeResult(specs[idx], "error", None, "probe did not complete")
    return results  # type: ignore[return-value]
