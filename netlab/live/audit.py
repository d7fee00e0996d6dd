"""The control loop's periodic look at an idle lab: is the kernel still as the last pass left it?

A pass costs about a millisecond a pod (the model built from the store, the state written back); an
idle lab of 1,000 pods resynced by a whole pass every 10 seconds would keep a tenth of a core busy
doing nothing. So the loop's periodic resync (loop.RESYNC_SECONDS) first asks `look`, which reads only
what tells whether anything moved under the lab since its last pass, and runs a pass when it did:

- namespaces: every pod's and node's namespace the state records is still there (one listing of
  /run/netns);
- processes: every recorded process (the nodes' built-in servers, the containers with commands) is
  the same process (its start time), and no built-in server rewrote its status file (a pod's /exit)
  since the pass (kubelet's PLEG relists containers the same way, by a cheap periodic look);
- proxy rules: every node's nf_tables generation is the one the loop's proxy sync recorded after its
  last commit there (the kernel adds one on every nftables commit in the namespace, by nft, by
  iptables-nft, by anyone), so a rule added or deleted by hand is seen; iptables-legacy tables have
  no generation: their shapes (entry count, size, hooks: dataplane/xtables_info.py) stand for one.
  IPVS state cannot be looked at this cheaply: an IPVS lab gets a pass every time.

What this does not see (a route or an address changed by hand in a pod) the loop's deep pass repairs
(sync.FULL_RESYNC), as does any `netlab up`.
"""
from __future__ import annotations

import os
from typing import Any

from .. import names
from ..dataplane import layout, nsfs, procs
from ..dataplane.proxy.record import legacy_identity, node_identity


def status_marks(lab: str, st: dict[str, Any]) -> dict[str, float]:
    """node -> mtime of its built-in server's status file (taken after a pass, compared by `look`)."""
    out = {}
    for node in (st.get("servers") or {}):
        try:
            out[node] = os.stat(layout.server_status(lab, node)).st_mtime_ns
        except OSError:
            out[node] = -1
    return out


def look(lab: str, st: dict[str, Any], proxy_state, marks: dict[str, float]) -> str:
    """'' if nothing moved under the lab since its last pass, else what did (for the loop's log)."""
    mode = st.get("proxyMode") or "iptables"
    legacy = (st.get("iptables") or {}).get("flavour") == "legacy"
    if mode == "ipvs":
        return "IPVS state has no generation to compare"
    have = set(nsfs.list_netns())
    for name, rec in (st.get("nodes") or {}).items():
        if rec.get("netns") not in have:
            return f"node {name}'s namespace is gone"
    for key, rec in (st.get("pods") or {}).items():
        if rec.get("netns") not in have:
            return f"pod {key}'s namespace is gone"
        for cname, prec in (rec.get("procs") or {}).items():
            if not procs.alive(prec):
                return f"container {cname} of pod {key} is not running"
    for node, rec in (st.get("servers") or {}).items():
        if rec and not procs.alive(rec):
            return f"node {node}'s built-in server is not running"
    if status_marks(lab, st) != marks:
        return "a built-in server's pods changed (a container exited)"
    if mode == "userspace":
        for name, rec in (st.get("nodes") or {}).items():
            got = procs.read_pidfile(layout.userspace_pidfile(lab, name))
            if got is None or procs.owner_of(got[0]) != names.userspace_proxy_owner(lab, name):
                return f"node {name}'s userspace proxy is not running"
    if proxy_state is None:
        return "no proxy sync recorded yet"
    for name, rec in (st.get("nodes") or {}).items():
        ns = proxy_state.nodes.get(name)
        netns = rec.get("netns") or ""
        if legacy:  # the legacy tables' shapes stand for a generation (dataplane/xtables_info.py)
            if ns is None or ns.ipt_ident is None or legacy_identity(netns) != ns.ipt_ident:
                return f"node {name}'s rules were changed by another process"
            recorded = [ns.nft_ident] if mode == "nftables" else []
        else:
            recorded = [i for i in ((ns.ipt_ident, ns.nft_ident) if ns else ()) if i is not None]
            if not recorded:
                return f"node {name}'s rules were changed by another process"
        if recorded:
            now = node_identity(netns)
            if None in recorded or now is None or now[0] != recorded[0][0] or now[1] != max(i[1] for i in recorded):
                return f"node {name}'s rules were changed by another process"
    return ""
