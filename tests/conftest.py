"""Suite-wide checks: privileged tests leave nothing behind, and the host's root namespace is untouched.

At session start we snapshot the root network namespace (links, addresses, routes, iptables in both
flavours, nft ruleset) and the list of namespaces; at the end any namespace, state directory or rule
that a test created and did not remove fails the run.
"""
from __future__ import annotations

import os
import shutil
import subprocess

import pytest

ROOT = os.geteuid() == 0


def _run(argv: list[str]) -> str:
    if shutil.which(argv[0]) is None:
        return f"<{argv[0]} not installed>"
    p = subprocess.run(argv, capture_output=True, text=True)
    return p.stdout + p.stderr


def root_snapshot() -> dict[str, str]:
    """The host's root netns as text, with counters and volatile fields removed."""
    import re
    snap = {
        "links": _run(["ip", "-o", "link", "show"]),
        "addrs": _run(["ip", "-o", "addr", "show"]),
        "routes": _run(["ip", "route", "show", "table", "all"]),
        "rules": _run(["ip", "rule", "show"]),
    }
    for cmd in ("iptables-legacy-save", "iptables-nft-save"):
        snap[cmd] = _run([cmd])
    snap["nft"] = _run(["nft", "list", "ruleset"])
    for k, v in snap.items():
        v = re.sub(r"^#.*$", "", v, flags=re.M)                 # iptables-save timestamps
        v = re.sub(r"\[\d+:\d+\]", "[0:0]", v)                  # counters
        v = re.sub(r"valid_lft \S+ preferred_lft \S+", "", v)   # address lifetimes
        snap[k] = v
    return snap


def netlab_namespaces() -> set[str]:
    try:
        return {n for n in os.listdir("/run/netns") if n.startswith("nl.")}
    except FileNotFoundError:
        return set()


def _is_worker(config) -> bool:
    return hasattr(config, "workerinput")


def pytest_sessionstart(session):
    if ROOT and not _is_worker(session.config):
        session.config._netlab_before = (root_snapshot(), netlab_namespaces(),
                                         set(os.listdir("/run/netlab")) if os.path.isdir("/run/netlab") else set())


def pytest_sessionfinish(session, exitstatus):
    before = getattr(session.config, "_netlab_before", None)
    if before is None:
        return
    snap0, ns0, dirs0 = before
    problems = []
    leaked = sorted(netlab_namespaces() - ns0)
    if leaked:
        problems.append(f"{len(leaked)} netlab namespaces left behind: {', '.join(leaked[:10])}")
        # nothing is deleted here: another test session may own them; `netlab down --all` cleans up
    dirs = set(os.listdir("/run/netlab")) if os.path.isdir("/run/netlab") else set()
    if dirs - dirs0:
        problems.append(f"state directories left behind in /run/netlab: {', '.join(sorted(dirs - dirs0))}")
    snap1 = root_snapshot()
    for key in snap0:
        if snap0[key] != snap1[key]:
            problems.append(f"the host's root network namespace changed: {key}")
    procs = _run(["pgrep", "-af", "netlab.workload.netexec"]).strip()
    if procs and not procs.startswith("<"):
        lines = [l for l in procs.splitlines() if "/run/netlab/t" in l]
        if lines:
            problems.append(f"{len(lines)} built-in server processes of test labs left running")
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if problems:
        if reporter:
            reporter.write_line("LEAK CHECK FAILED:", red=True, bold=True)
            for p in problems:
                reporter.write_line(f"  {p}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    elif reporter:
        reporter.write_line("leak check: no namespace, state directory, process or root-namespace change left behind")
