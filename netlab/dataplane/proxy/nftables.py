"""kube-proxy's nftables mode: table `ip kube-proxy` in every node, synced by diff (render.kubeproxy_nftables)."""
from __future__ import annotations

import os
import shutil
import subprocess
from typing import Any, Collection

from ...errors import KernelError, UsageError
from ...gcpause import gc_paused
from ...model.objects import Cluster
from ...render import kubeproxy_nftables as knft
from .. import layout, nsenter, nsfs
from ..changes import Changes
from .base import ProxyBackend, per_node
from .record import node_identity, read_record, unlink, write_record
from .syncstate import SyncState


_TABLE = "ip kube-proxy"
_FLUSH = f"flush chain {_TABLE} "
STALE_CHAIN_DELAY = 1.0   # seconds a partial sync leaves a flushed stale chain before deleting it (kube-proxy: 1 s)


class NftablesProxy(ProxyBackend):
    """kube-proxy's nftables mode: table `ip kube-proxy` in every node, synced by diff in one transaction.

    Only the difference is sent: a one-endpoint change is a handful of commands. The difference is taken
    against the live table, read back with `nft -j list table` (seconds at 10,000 Services), unless the
    node's record of its last sync can be trusted: the table netlab applied, kept with the namespace's
    cookie and its nf_tables generation right after that commit. The kernel adds one to the generation
    on every nftables commit in the namespace (nft, iptables-nft, anyone's), so an unchanged generation
    means nothing was changed since, and a hand-made change (a different generation) makes the next sync
    read the table back and repair it. kube-proxy also diffs against its own last sync, not the kernel.
    """

    name = "nftables"
    always_remove = True             # its table is cheap to look for
    TABLE = ("ip", "kube-proxy")
    RECORD_VERSION = 2

    def preflight(self, cluster: Cluster) -> None:
        if shutil.which("nft") is None:
            raise UsageError("nftables mode needs the nft command: run scripts/setup (or apt-get install nftables)")

    def _nft(self, netns: str, args: list[str], stdin: str | None = None) -> subprocess.CompletedProcess:
        try:
            return subprocess.run(nsenter.command(nsfs.netns_path(netns), ["nft", *args]), input=stdin,
                                  capture_output=True, text=True, timeout=600)
        except OSError as e:
            raise KernelError(f"nft in network namespace {netns}: {e.strerror}") from None

    @staticmethod
    def record_path(lab: str, node: str) -> str:
        return layout.nft_record(lab, node)

    def _live(self, netns: str):
        r = self._nft(netns, ["-j", "list", "table", *self.TABLE])
        return knft.parse_nft_json(r.stdout) if r.returncode == 0 else None

    def _recorded(self, path: str | None, ident: tuple[int, int] | None):
        data = read_record(path, ident, self.RECORD_VERSION)
        try:
            return None if data is None else knft.table_from_data(data)
        except (ValueError, KeyError, TypeError, IndexError):
            return None  # torn or foreign: read the live table instead

    def _record(self, path: str | None, ident: tuple[int, int] | None, table) -> None:
        write_record(path, ident, self.RECORD_VERSION, lambda: knft.table_to_data(table))

    def _current(self, node, record: str | None) -> tuple[tuple[int, int] | None, Any, bool]:
        """(identity, the node's table, whether it came from the record): the record while it can be
        trusted (nothing committed since it was written), else the live table."""
        ident = node_identity(node.netns)
        live = self._recorded(record, ident)
        if live is not None:
            return ident, live, True
        return ident, self._live(node.netns), False

    def sync(self, cluster: Cluster, changes: Changes, force: bool = False, state: SyncState | None = None,
             changed: Collection[str] | None = None, full: bool = False) -> None:
        for node in cluster.nodes:
            n = self.sync_node(cluster, node, self.record_path(cluster.name, node.name), force, state, changed,
                               full=full)
            if n:
                changes.add(f"{node.netns}: nftables table ip kube-proxy ({n} commands)")

    @gc_paused
    def sync_node(self, cluster: Cluster, node, record: str | None, force: bool = False,
                  state: SyncState | None = None, changed: Collection[str] | None = None,
                  full: bool = False) -> int:
        """Sync one node's table; returns the number of commands sent (0: it was right already).

        `record`: the file that keeps this node's last sync (None: always read the live table).
        `state`: a SyncState the caller keeps across syncs. While the node's identity is the one it
        recorded after its last sync here (and no periodic full sync is due), only the Services whose
        content changed are rendered again (`update_objects`) and only their objects are diffed
        (`diff_script(..., only=...)`) - kube-proxy's partial sync; else the whole table is rendered and
        diffed against the record file or the live table, which repairs any foreign change. `changed`:
        the keys of the Services that may have changed (the others are not compared). `full`: read the
        live table back and diff the whole table (kube-proxy's periodic full sync; what
        SyncState.full_sync_period does on a timer), without `force`'s rewriting of the table."""
        keep = state is not None             # else nothing is kept: skip the memo's content keys
        if state is None:
            state = SyncState()
        ns = state.node(node.name)
        choice = cluster.networking.nft_choice
        context = (node.name, str(node.ip), str(cluster.networking.pod_subnet),
                   str(cluster.networking.service_subnet), choice)
        ident = node_identity(node.netns)
        partial = (not force and not full and ns.nft_table is not None and ident is not None and ident == ns.nft_ident
                   and ns.nft_context == context and not state.full_due(ns, "nftables"))
        try:
            if partial:
                keys = ns.nft_memo.changed(cluster.services, changed)
                state.counted(ns, "nftables", full=False)
                if not keys:
                    return 0              # nothing changed, and nothing else committed to the node since
                # the table is the state's own: updated in place (no copy of its 40,000 chains at 10,000
                # Services), diffed against what the changed Services owned before
                live, trusted = knft.owned_part(ns.nft_table, keys), True
                desired = knft.update_objects(ns.nft_table, cluster, node, keys, in_place=True)
                # stale chains are flushed now and deleted by a later sync: `delete chain` would make nft
                # fetch every chain of the table (~0.1 s at 10,000 Services), and so would `add rule` and
                # `add element`, hence without_cache's chain and map blocks
                script = knft.diff_script(desired, live, only=keys, delete_stale=False)
                now = state.clock()
                for line in script.splitlines():
                    if line.startswith(_FLUSH) and line[len(_FLUSH):] not in desired.chains:
                        ns.nft_stale[line[len(_FLUSH):]] = now
                for name in [n for n in ns.nft_stale if n in desired.chains and desired.chains[n]]:
                    del ns.nft_stale[name]                  # made again (the endpoint came back)
                due = sorted(n for n, t in ns.nft_stale.items() if now - t >= STALE_CHAIN_DELAY)
                script = knft.without_cache(script, desired) + "".join(f"delete chain {_TABLE} {n}\n" for n in due)
                for name in ns.nft_stale:
                    desired.chains.setdefault(name, [])     # flushed, still there: the record says so
                for name in due:
                    del ns.nft_stale[name]
                    desired.chains.pop(name, None)
            else:
                ns.forget_nftables()
                if keep:
                    ns.nft_memo.changed(cluster.services)      # remembers every Service as it is now
                state.counted(ns, "nftables", full=True)
                desired = knft.desired_objects(cluster, node, choice=choice)
                if force:
                    live, trusted = None, False
                else:
                    ident, live, trusted = self._current(node, None if full else record)
                script = knft.diff_script(desired, live)
                if force and script:
                    script = f"add table ip kube-proxy\ndelete table ip kube-proxy\n{script}"
            ns.nft_table = ns.nft_ident = None
            if script:
                r = self._nft(node.netns, ["-f", "-"], script)
                if r.returncode != 0 and trusted:
                    # the record did not match the kernel after all: read the table back and try once more
                    script = knft.diff_script(desired, self._live(node.netns))
                    r = self._nft(node.netns, ["-f", "-"], script)
                if r.returncode != 0:
                    unlink(record)
                    raise KernelError(f"nft -f in network namespace {node.netns} failed: {r.stderr.strip()[:500]}")
            if trusted and not script:
                ns.nft_table, ns.nft_ident, ns.nft_context = desired, ident, context
                return 0  # the record stands as it is
            after = node_identity(node.netns)
            # trust the record next time only if our own commit (if any) was the only one in between
            expected = None if ident is None else (ident[0], ident[1] + (1 if script else 0))
            good = after is not None and after == expected
            if good:
                ns.nft_table, ns.nft_ident, ns.nft_context = desired, after, context
            if state.write_records or not good:
                self._record(record, after if good else None, desired)
            return _commands(script)
        except BaseException:
            ns.forget_nftables()
            raise

    def drift(self, cluster: Cluster, node) -> list[str]:
        desired = knft.desired_objects(cluster, node, choice=cluster.networking.nft_choice)
        _, live, _ = self._current(node, self.record_path(cluster.name, node.name))
        n = _commands(knft.diff_script(desired, live))
        return [f"nftables table ip kube-proxy differs ({n} commands to apply)"] if n else []

    def remove(self, cluster: Cluster, changes: Changes) -> None:
        nodes = [n for n in cluster.nodes if os.path.exists(nsfs.netns_path(n.netns))]
        if not nodes or shutil.which("nft") is None:
            return
        # called on every iptables-mode up
        found = per_node(lambda n: self._nft(n.netns, ["list", "table", *self.TABLE]).returncode == 0, nodes)
        for node in cluster.nodes:
            unlink(self.record_path(cluster.name, node.name))
        for node, present in zip(nodes, found):
            if present:
                d = self._nft(node.netns, ["delete", "table", *self.TABLE])
                if d.returncode != 0:
                    raise KernelError(f"nft delete table ip kube-proxy in {node.netns}: {d.stderr.strip()}")
                changes.add(f"{node.netns}: removed nftables table ip kube-proxy")


def _commands(script: str) -> int:
    return sum(1 for line in script.splitlines() if line.strip())
