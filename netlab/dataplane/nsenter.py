"""The one place that builds `nsenter` command lines: every command netlab runs inside a lab's
namespaces (containers, the built-in servers, iptables-save/restore, `netlab exec`) starts this way.

nsenter joins the namespaces and then execs the command, so the PID is the command's own.
"""
from __future__ import annotations

import os

from .. import names
from ..errors import KernelError
from . import nsfs


def command(netns_path: str, argv: list[str], uts_path: str | None = None) -> list[str]:
    """nsenter into the network namespace at `netns_path` (and the UTS namespace at `uts_path`), then argv.
    Everything after `--` is argv as given: it never passes through a shell."""
    return ["nsenter", f"--net={netns_path}", *([f"--uts={uts_path}"] if uts_path else []), "--", *argv]


def enter(netns: str, argv: list[str], uts_path: str | None = None, missing: str | None = None) -> list[str]:
    """`command` for the named namespace `netns`, which must exist: if it does not, a KernelError says
    so (`missing`, default "network namespace NAME does not exist") and what repairs it."""
    path = nsfs.netns_path(netns)
    if not os.path.exists(path):
        parsed = names.parse_netns(netns)
        fix = names.repair_command(parsed.lab) if parsed is not None else "sudo netlab up"
        raise KernelError(f"{missing or f'network namespace {netns} does not exist'}; run: {fix}")
    return command(path, argv, uts_path)
