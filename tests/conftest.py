"""Suite-wide checks: privileged tests leave nothing behind, and the host's root namespace is untouched.

At session start we snapshot the root network namespace (links, addresses, routes, rules, permanent
neighbours, iptables in both flavours, nft ruleset, the sysctls netlab writes: tests/footprint.py) and
the list of namespaces; at the end any namespace, state directory or rule
that a test created and did not remove fails the run.
"""
from __future__ import annotations

import os
import signal
import tempfile

import pytest

from . import figures, footprint

ROOT = os.geteuid() == 0

# A shell starts a background job (`nohup ... &`) with SIGINT ignored, and an ignored signal stays ignored
# across exec: every `netlab` a test starts would then ignore the Ctrl-C the Ctrl-C tests send it (and finish
# its work, exit 0). Catching SIGINT here (as an interactive run does) makes it default again in children.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def _run(argv: list[str]) -> str:
    return footprint.run(argv)


def root_snapshot() -> dict[str, str]:
    """The host's root netns as text (see tests/footprint.py for what is in it)."""
    return footprint.root_snapshot()


def netlab_namespaces() -> set[str]:
    try:
        return {n for n in os.listdir("/run/netns") if n.startswith("nl.")}
    except FileNotFoundError:
        return set()


def test_lab_processes() -> set[str]:
    """Processes netlab started for test labs (t-*, ptest-*): by owner tag or state directory."""
    out = set()
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read()
            with open(f"/proc/{pid}/environ", "rb") as f:
                env = f.read()
        except OSError:
            continue
        if b"NETLAB_OWNER=t-" in env or b"NETLAB_OWNER=ptest-" in env or b"/run/netlab/t-" in cmd \
                or b"/run/netlab/ptest-" in cmd:
            out.add(pid + " " + cmd.replace(b"\0", b" ").decode(errors="replace").strip())
    return out


def _is_worker(config) -> bool:
    return hasattr(config, "workerinput")


def pytest_configure(config):
    # one file for the figures of every process of this run (xdist workers inherit the variable)
    if not _is_worker(config) and figures.ENV not in os.environ:
        fd, path = tempfile.mkstemp(prefix="netlab-figures-", suffix=".jsonl")
        os.close(fd)
        os.environ[figures.ENV] = path
        config._netlab_figures = path


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    path = getattr(config, "_netlab_figures", None)
    if path is None:
        return
    figures.flush()
    totals = figures.totals(path)
    os.unlink(path)
    if totals:
        terminalreporter.write_sep("-", "reliability figures")
        for key in sorted(totals):
            value = totals[key]
            terminalreporter.write_line(f"  {key}: {value:g}")


def pytest_sessionstart(session):
    if ROOT and not _is_worker(session.config):
        session.config._netlab_before = (root_snapshot(), netlab_namespaces(),
                                         set(os.listdir("/run/netlab")) if os.path.isdir("/run/netlab") else set(),
                                         set(footprint.mounts()), test_lab_processes())


def pytest_sessionfinish(session, exitstatus):
    if _is_worker(session.config):
        figures.flush()
    before = getattr(session.config, "_netlab_before", None)
    if before is None:
        return
    snap0, ns0, dirs0, mounts0, procs0 = before
    problems = []
    leaked = sorted(netlab_namespaces() - ns0)
    if leaked:
        problems.append(f"{len(leaked)} netlab namespaces left behind: {', '.join(leaked[:10])}")
        # nothing is deleted here: another test session may own them; `netlab down --all` cleans up
    dirs = set(os.listdir("/run/netlab")) if os.path.isdir("/run/netlab") else set()
    if dirs - dirs0:
        problems.append(f"state directories left behind in /run/netlab: {', '.join(sorted(dirs - dirs0))}")
    snap1 = root_snapshot()
    for change in footprint.diff_snapshots(snap0, snap1):
        problems.append(f"the host's root network namespace changed: {change}")
    # (/run/netns bound on itself once is iproute2's way, made by the first `ip netns add` on a fresh machine and
    # kept: not a leak; more than once is, checked below)
    new_mounts = sorted(m for m in set(footprint.mounts()) - mounts0 if m[0] != footprint.RUN_NETNS)
    if new_mounts:
        problems.append(f"{len(new_mounts)} mounts left under /run/netns or /run/netlab: "
                        f"{', '.join(m[0] for m in new_mounts[:5])}")
    if len([m for m in footprint.mounts() if m[0] == footprint.RUN_NETNS]) > 1:
        problems.append("/run/netns is mounted more than once (netlab stacked bind mounts)")
    left = sorted(test_lab_processes() - procs0)
    if left:
        problems.append(f"{len(left)} processes of test labs left running: {'; '.join(left[:5])}")
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if problems:
        if reporter:
            reporter.write_line("LEAK CHECK FAILED:", red=True, bold=True)
            for p in problems:
                reporter.write_line(f"  {p}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    elif reporter:
        reporter.write_line("leak check: no namespace, state directory, process or root-namespace change left behind")
