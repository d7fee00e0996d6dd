"""The kernel side of netlab/spec/capacity.py: read what this machine holds (/proc, no root needed), once
per command. Nothing here changes the host."""
from __future__ import annotations

import os

from ..spec.capacity import MachineLimits, Readings

NETNS_DIR = "/run/netns"


def _int(path: str) -> int | None:
    try:
        with open(path) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _meminfo(key: str) -> int | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def _tasks() -> int:
    try:
        with open("/proc/loadavg") as f:
            return int(f.read().split()[3].split("/")[1])
    except (OSError, ValueError, IndexError):
        return 0


def _count(path: str) -> int:
    try:
        with open(path) as f:
            return sum(1 for _ in f)
    except OSError:
        return 0


def _labs(names: list[str]) -> tuple[tuple[str, int, int], ...]:
    """(lab, pod namespaces, node namespaces) of every lab up, from the names in /run/netns."""
    from ..names import parse_netns
    count: dict[str, list[int]] = {}
    for name in names:
        parsed = parse_netns(name)
        if parsed is None:
            continue
        c = count.setdefault(parsed.lab, [0, 0])
        if parsed.kind == "pod":
            c[0] += 1
        elif parsed.kind == "node":
            c[1] += 1
    return tuple((lab, pods, nodes) for lab, (pods, nodes) in sorted(count.items()))


def read() -> Readings:
    """This machine's readings, now."""
    try:
        names = os.listdir(NETNS_DIR)
    except OSError:
        names = []
    return Readings(
        mem_available_kib=_meminfo("MemAvailable"),
        pid_max=_int("/proc/sys/kernel/pid_max"),
        threads_max=_int("/proc/sys/kernel/threads-max"),
        tasks=_tasks(),
        max_net_namespaces=_int("/proc/sys/user/max_net_namespaces"),
        max_uts_namespaces=_int("/proc/sys/user/max_uts_namespaces"),
        net_namespaces=len(names),
        mount_max=_int("/proc/sys/fs/mount-max"),
        mounts=_count("/proc/self/mountinfo"),
        labs=_labs(names),
    )


def limits() -> MachineLimits:
    """This machine's limits, as of now (a few reads of /proc and one listing of /run/netns)."""
    return MachineLimits(read())


def gc_thresh3() -> int | None:
    """The host's neighbour table limit (told to the user, never changed)."""
    return _int("/proc/sys/net/ipv4/neigh/default/gc_thresh3")
