"""Checks of the machine netlab runs on, cheap enough to come first (no netlink, no pyroute2 import):
`up` says "run as root" before it reads the scenario, and refuses bad input without loading the
kernel layer at all."""
from __future__ import annotations

import os
import shutil
import sys

from ..errors import UsageError


def require_root(action: str = "this") -> None:
    if os.geteuid() != 0:
        raise UsageError(f"netlab must run as root to {action} (it creates network namespaces): "
                         f"try sudo {os.path.basename(sys.argv[0]) or 'netlab'} ...")


def require_tools(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        raise UsageError(f"missing tool(s): {', '.join(missing)}; run scripts/setup "
                         f"(or apt-get install iproute2 util-linux iptables)")


SANDBOX_KERNEL = (5, 12)   # mount_setattr: the containers' recursive read-only view of the host


def require_sandbox_kernel(release: str | None = None) -> None:
    """Containers with a command run in a sandbox whose read-only view of the host needs mount_setattr
    (Linux 5.12+; Debian 12 has 6.1, Ubuntu 22.04 5.15): an older kernel is an error before anything is
    built, not a container that fails in its log."""
    release = release or os.uname().release
    try:
        got = tuple(int(x) for x in release.split("-")[0].split(".")[:2])
    except ValueError:
        return   # a release string netlab cannot read: let the sandbox say what fails
    if got < SANDBOX_KERNEL:
        raise UsageError(f"this kernel ({release}) is older than Linux 5.12: containers with a command run in a "
                         "sandbox that needs mount_setattr; use Debian 12 / Ubuntu 22.04 or newer (or drop the "
                         "containers' commands to get the built-in test server)")


def arp_limit() -> str:
    """The host's neighbour-table limit (net.ipv4.neigh.default.gc_thresh3), "?" if unreadable. Here, not
    with the probes (probe/run.py), so that `up`'s closing note does not import scapy (0.15 s)."""
    try:
        with open("/proc/sys/net/ipv4/neigh/default/gc_thresh3") as f:
            return f.read().strip()
    except OSError:
        return "?"
