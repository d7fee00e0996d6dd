"""Proxy backends (kube-proxy's modes) behind a small registry.

Every backend syncs one thing per node: the netfilter state that mode needs. flannel's chains are
iptables chains in every mode, so the iptables sync always runs; what it contains depends on the mode
(`netlab.render.iptables.node_rules`). A backend also removes what the *other* modes left, so switching
mode on a running lab (`up --proxy-mode`) leaves no stale rules.
"""
from __future__ import annotations

import os
import shutil
import subprocess

from ..errors import KernelError, UsageError
from ..model.objects import Cluster
from ..render.iptables import node_rules
from . import iptables, nsfs
from .fabric import Changes


class ProxyBackend:
    """One kube-proxy mode. Its iptables chains (if any) come from `node_rules`, which every sync applies;
    `sync` programs whatever else the mode needs (an nftables table, IPVS services...), and `remove`
    deletes those things when the lab switches to another mode."""

    name = ""

    def preflight(self, cluster: Cluster) -> None:
        """Fail before any change if this machine cannot run the mode (a missing tool or kernel feature)."""

    def sync(self, cluster: Cluster, changes: Changes, force: bool = False) -> None:
        """Program the mode's non-iptables state on every node."""

    def remove(self, cluster: Cluster, changes: Changes) -> None:
        """Remove the mode's non-iptables state from every node (idempotent)."""


class IptablesProxy(ProxyBackend):
    """kube-proxy's iptables mode: everything is in the iptables chains that `node_rules` renders."""

    name = "iptables"


class NftablesProxy(ProxyBackend):
    """kube-proxy's nftables mode: table `ip kube-proxy` in every node, synced by diff in one transaction.

    The live table is read back (`nft -j list table`) on every sync, so hand-made changes are repaired,
    and only the difference is sent: a one-endpoint change is a handful of commands.
    """

    name = "nftables"
    TABLE = ("ip", "kube-proxy")

    def preflight(self, cluster: Cluster) -> None:
        if shutil.which("nft") is None:
            raise UsageError("nftables mode needs the nft command: run scripts/setup (or apt-get install nftables)")

    def _nft(self, netns: str, args: list[str], stdin: str | None = None) -> subprocess.CompletedProcess:
        try:
            return subprocess.run(["nsenter", f"--net={nsfs.netns_path(netns)}", "--", "nft", *args], input=stdin,
                                  capture_output=True, text=True, timeout=600)
        except OSError as e:
            raise KernelError(f"nft in network namespace {netns}: {e.strerror}") from None

    def sync(self, cluster: Cluster, changes: Changes, force: bool = False) -> None:
        from ..render import kubeproxy_nftables as knft
        for node in cluster.nodes:
            desired = knft.desired_objects(cluster, node, choice=cluster.networking.nft_choice)
            live = None
            if not force:
                r = self._nft(node.netns, ["-j", "list", "table", *self.TABLE])
                live = knft.parse_nft_json(r.stdout) if r.returncode == 0 else None
            script = knft.diff_script(desired, live)
            if force and script:
                script = f"add table ip kube-proxy\ndelete table ip kube-proxy\n{script}"
            if not script:
                continue
            r = self._nft(node.netns, ["-f", "-"], script)
            if r.returncode != 0:
                raise KernelError(f"nft -f in network namespace {node.netns} failed: {r.stderr.strip()[:500]}")
            n = sum(1 for line in script.splitlines() if line.strip())
            changes.add(f"{node.netns}: nftables table ip kube-proxy ({n} commands)")

    def remove(self, cluster: Cluster, changes: Changes) -> None:
        for node in cluster.nodes:
            if not os.path.exists(nsfs.netns_path(node.netns)):
                continue
            r = self._nft(node.netns, ["list", "table", *self.TABLE])
            if r.returncode == 0:
                d = self._nft(node.netns, ["delete", "table", *self.TABLE])
                if d.returncode != 0:
                    raise KernelError(f"nft delete table ip kube-proxy in {node.netns}: {d.stderr.strip()}")
                changes.add(f"{node.netns}: removed nftables table ip kube-proxy")


PROXIES: dict[str, ProxyBackend] = {"iptables": IptablesProxy(), "nftables": NftablesProxy()}


def backend(mode: str) -> ProxyBackend:
    b = PROXIES.get(mode)
    if b is None:
        raise UsageError(f"kube-proxy mode {mode!r} is not available in this version of netlab; "
                         f"available: {', '.join(sorted(PROXIES))}")
    return b


def sync(cluster: Cluster, restore_cmd: str, save_cmd: str, changes: Changes, force: bool = False) -> None:
    """Program the cluster's proxy mode on every node and remove what other modes left behind."""
    mode = backend(cluster.networking.proxy_mode)
    sync_iptables(cluster, restore_cmd, save_cmd, changes, force)
    mode.sync(cluster, changes, force)
    for other in PROXIES.values():
        if other is not mode:
            other.remove(cluster, changes)


def sync_iptables(cluster: Cluster, restore_cmd: str, save_cmd: str, changes: Changes, force: bool = False) -> None:
    """One iptables-save and (if anything differs) one iptables-restore --noflush per node, nodes in parallel."""
    pending = []
    for node in cluster.nodes:
        path = nsfs.netns_path(node.netns)
        current = iptables.parse_save(iptables.save(path, save_cmd))
        payload, what = iptables.plan_restore(node_rules(cluster, node), current, force=force)
        if payload:
            pending.append((node, iptables.restore_async(path, restore_cmd, payload), payload, what))
    for node, proc, payload, what in pending:
        iptables.finish_restore(proc, payload, node.netns)
        for w in what:
            changes.add(f"{node.netns}: iptables {w}")
