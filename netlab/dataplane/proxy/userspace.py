"""kube-proxy's userspace mode: a proxy process per node (netlab.workload.userspace_proxy), fed a config
file rendered by render.kubeproxy_userspace; its iptables chains (KUBE-PORTALS-*, KUBE-NODEPORT-*) go
through the iptables sync every mode runs.

A sync writes each node's config where it differs and starts the node's proxy if none runs, or sends the
running one SIGHUP (it applies the new listeners and endpoints in place: established relays go on),
then waits for the pidfile to show the new generation. The process carries the lab's owner tag and
lives in the node's namespace, so `down` ends it with the node; switching to another mode ends it too.
"""
from __future__ import annotations

import json
import os
import signal
import time

from ... import names
from ...errors import KernelError
from ...model.objects import Cluster
from ...render.kubeproxy_userspace import config_text
from .. import layout, nsfs, procs
from .. import state as statefile
from ..changes import Change, Changes
from .base import ProxyBackend

READY_TIMEOUT = 15.0


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def proxy_argv(config: str, pidfile: str) -> list[str]:
    import sys
    return [sys.executable, "-S", "-m", "netlab.workload.userspace_proxy", "--config", config, "--pidfile", pidfile]


def running(lab: str, node) -> tuple[int, int] | None:
    """(pid, generation) of the node's proxy from its pidfile, if that process is the node's proxy (its
    owner tag, in the node's namespace); None if none is running and ready."""
    got = procs.read_pidfile(layout.userspace_pidfile(lab, node.name))
    if got is None:
        return None
    rec = procs.record(got[0])
    if not procs.alive(rec, names.userspace_proxy_owner(lab, node.name), nsfs.netns_path(node.netns)):
        return None
    return got


def _strays(lab: str, node) -> list[int]:
    """Processes tagged as the node's proxy in its namespace (one started by a sync that was killed
    before its proxy was ready, or whose pidfile is gone)."""
    path = nsfs.netns_path(node.netns)
    if not os.path.exists(path):
        return []
    return procs.owned([path]).get(names.userspace_proxy_owner(lab, node.name), [])


def _wait(lab: str, waits: list[tuple[str, str, int, int | None]], timeout: float = READY_TIMEOUT) -> None:
    """Until each (node, pidfile, pid, generation before) shows that pid at a newer generation."""
    deadline = time.monotonic() + timeout
    pending = list(waits)
    while pending:
        left = []
        for node, path, pid, gen in pending:
            got = procs.read_pidfile(path)
            if got and got[0] == pid and (gen is None or got[1] > gen):
                continue
            if procs.start_time(pid) is None:
                raise KernelError(f"node {node}: the userspace proxy (pid {pid}) ended while starting; "
                                  f"see {layout.userspace_log(lab, node)}")
            left.append((node, path, pid, gen))
        pending = left
        if pending:
            if time.monotonic() > deadline:
                raise KernelError(f"node {pending[0][0]}: the userspace proxy did not apply its config in "
                                  f"{timeout:.0f} s")
            time.sleep(0.005)


class UserspaceProxy(ProxyBackend):
    """kube-proxy's userspace mode (see the module docstring)."""

    name = "userspace"
    # leftovers are looked for cheaply (a config file in the lab's run directory), so always
    always_remove = True

    def sync(self, cluster: Cluster, changes: Changes, force: bool = False, state=None, changed=None,
             full: bool = False) -> None:
        lab = cluster.name
        waits = []
        for node in cluster.nodes:
            cfg, pidfile = layout.userspace_config(lab, node.name), layout.userspace_pidfile(lab, node.name)
            text = config_text(cluster, node)
            # (a pass killed between writing the file and the proxy's SIGHUP left it marked: reloaded now)
            differs = force or _read(cfg) != text or statefile.reload_pending(cfg)
            if differs:
                statefile.begin_reload(cfg, text)
            now = running(lab, node)
            if now is None:
                strays = _strays(lab, node)
                if strays:
                    procs.terminate([], strays)
                try:
                    os.unlink(pidfile)
                except FileNotFoundError:
                    pass
                rec = procs.spawn(proxy_argv(cfg, pidfile), nsfs.netns_path(node.netns),
                                  layout.userspace_log(lab, node.name), env=procs.netexec_env(),
                                  owner=names.userspace_proxy_owner(lab, node.name))
                waits.append((node.name, pidfile, int(rec["pid"]), None))
                changes.add(Change("proxy", node.name, "start", f"userspace proxy started (pid {rec['pid']})",
                                   node.netns, f"node {node.name}"))
            elif differs:
                pid, gen = now
                os.kill(pid, signal.SIGHUP)
                waits.append((node.name, pidfile, pid, gen))
                changes.add(Change("proxy", node.name, "reload", "userspace proxy reloaded its listeners",
                                   node.netns, f"node {node.name}"))
        _wait(lab, waits)
        for node_name, *_ in waits:
            statefile.end_reload(layout.userspace_config(lab, node_name))   # applied: its pidfile says so
        for node_name, *_ in waits:
            problems = self._errors(lab, node_name)
            if problems:
                raise KernelError(f"node {node_name}: the userspace proxy {problems[0]}")

    def _errors(self, lab: str, node: str) -> list[str]:
        try:
            with open(layout.userspace_status(lab, node)) as f:
                doc = json.load(f)
            return sorted((doc.get("errors") or {}).values())
        except (OSError, ValueError, AttributeError):
            return []

    def drift(self, cluster: Cluster, node) -> list[str]:
        out = []
        if running(cluster.name, node) is None:
            out.append("the userspace proxy is not running")
        if _read(layout.userspace_config(cluster.name, node.name)) != config_text(cluster, node):
            out.append("the userspace proxy's config differs")
        return out + [f"the userspace proxy {e}" for e in self._errors(cluster.name, node.name)]

    def remove(self, cluster: Cluster, changes: Changes) -> None:
        lab = cluster.name
        for node in cluster.nodes:
            cfg = layout.userspace_config(lab, node.name)
            if not os.path.exists(cfg):
                continue
            now = running(lab, node)
            pids = ([now[0]] if now else []) + _strays(lab, node)
            if pids:
                procs.terminate([], sorted(set(pids)))
                changes.add(Change("proxy", node.name, "stop", "stopped the userspace proxy", node.netns,
                                   f"node {node.name}"))
            for path in (cfg, layout.userspace_pidfile(lab, node.name), layout.userspace_status(lab, node.name)):
                try:
                    os.unlink(path)
                except FileNotFoundError:
                    pass
