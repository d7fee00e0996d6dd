"""Delete the stale UDP conntrack entries of every node after a proxy sync (kube-proxy does it too).

Which entries are stale is decided by `netlab.render.conntrack` (pure); this module reads each node's
UDP entries and deletes them. It depends on no proxy mode: iptables, nftables and IPVS (with
net.ipv4.vs.conntrack=1, as kube-proxy sets it) all leave their translations in the same conntrack table.

Why the `conntrack` tool (Debian's conntrack package, installed by scripts/setup) and not netlink:
pyroute2's Conntrack (0.9) has no filtered delete: it dumps the whole table, filters in Python and
deletes entry by entry, and its socket would have to be opened on a thread moved into each node's
namespace. The tool runs in the node through nsenter like every other netfilter tool netlab uses
(iptables-restore, nft, ipvsadm), applies kube-proxy's filters as they are written (--orig-dst,
--orig-port-dst, --reply-src), and is what a user (and the tests) use to look at the table. Cost: one
`conntrack -L -p udp` per node (nodes in parallel; ~50 ms on a loaded 2-core machine), only when the UDP
Services' endpoints changed since the last cleanup and the node's table is not empty (its entry count is
read first, from a thread in the node: a lab that just came up has 100 empty tables), and one
`conntrack -D` per stale (frontend, endpoint) pair found.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Collection

from ..errors import KernelError
from ..model.objects import Cluster
from ..render import conntrack as decide
from . import nsenter, nsfs, state
from .changes import Change, Changes


def _run(netns: str, args: list[str]) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(nsenter.command(nsfs.netns_path(netns), ["conntrack", *args]),
                              capture_output=True, text=True, timeout=120)
    except OSError as e:
        raise KernelError(f"conntrack in network namespace {netns}: {e.strerror}") from None


def entry_count(netns: str) -> int | None:
    """How many entries the namespace's conntrack table holds (net.netfilter.nf_conntrack_count, read from
    a thread in it: no process), or None if that cannot be read (no conntrack there yet, say)."""
    from .procsys import PROC_SYS
    try:
        return int(nsfs.in_netns(netns, lambda: PROC_SYS.read("net/netfilter/nf_conntrack_count")))
    except (OSError, ValueError):
        return None


def clean_node(netns: str, frontends: decide.UdpFrontends) -> list[decide.Deletion]:
    """Delete a node's stale UDP entries; returns the filters that were applied."""
    if entry_count(netns) == 0:
        return []   # an empty table (most nodes of a lab that just came up): nothing to list
    listed = _run(netns, ["-L", "-p", "udp"])
    if listed.returncode != 0:
        raise KernelError(f"conntrack -L in network namespace {netns} failed: {listed.stderr.strip()[:300]}")
    deletions = decide.stale(frontends, decide.parse_list(listed.stdout))
    for d in deletions:
        r = _run(netns, ["-D", *d.args()])
        # exit status 1 with "0 flow entries": the entry timed out (or was deleted) since the listing
        if r.returncode != 0 and " 0 flow entries" not in r.stderr:
            raise KernelError(f"conntrack -D {' '.join(d.args())} in network namespace {netns} failed: "
                              f"{r.stderr.strip()[:300]}")
    return deletions


def clean_stale_udp(cluster: Cluster, changes: Changes, fresh: Collection[str] = ()) -> None:
    """Delete, in every node, the UDP conntrack entries that no longer lead to a serving endpoint.
    `fresh`: nodes whose namespaces this run created (they have no entries yet). Nothing is listed when
    the UDP frontends and their endpoints are those of the last cleanup (see `decide.needs_cleanup`)."""
    frontends = decide.udp_frontends(cluster)
    nodes = [n for n in cluster.nodes if n.name not in fresh]
    record = record_path(cluster.name)
    try:
        with open(record) as f:
            last: str | None = f.read()
    except OSError:
        last = None
    if not nodes or not decide.needs_cleanup(last, frontends):
        _keep(record, decide.frontends_record(frontends), last)
        return
    if shutil.which("conntrack") is None:
        # as kube-proxy, whose failed cleanup is logged and the sync goes on: the rules are right anyway
        sys.stderr.write("warning: the conntrack command is missing, so UDP flows to removed endpoints are not "
                         "cleared; run scripts/setup (or apt-get install conntrack)\n")
        return
    with ThreadPoolExecutor(max_workers=min(8, len(nodes))) as pool:
        done = list(pool.map(lambda n: clean_node(n.netns, frontends), nodes))
    for node, deletions in zip(nodes, done):
        for d in deletions:
            where = f"{d.orig_dst}:{d.orig_dport}" if d.orig_dst else f"NodePort {d.orig_dport}"
            changes.add(Change("conntrack", where, "remove", f"conntrack: deleted UDP flows to {where} answered by {d.reply_src}",
                               node.netns))
    _keep(record, decide.frontends_record(frontends), last)


def record_path(lab: str) -> str:
    """The UDP frontends of the lab's last cleanup (`decide.frontends_record`)."""
    from . import layout
    return layout.conntrack_record(lab)


def _keep(path: str, text: str, last: str | None) -> None:
    if text != last:
        try:
            state.write_private(path, text)
        except OSError:
            pass  # without a record the next up lists the tables again
