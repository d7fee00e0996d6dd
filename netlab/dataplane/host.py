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
