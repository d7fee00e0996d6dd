"""Per-node iptables state, rendered as data (chains and jumps) and as iptables-restore text. Pure."""
from __future__ import annotations

from .. import proxymodes
from ..model.objects import Cluster, Node
from ..netpol import renderers
from .fabric import FLANNEL_JUMPS, iptables_flannel
from .hostport import hostport_tables
from .kubelet import kubelet_chains
from .tables import Desired, TableState


def node_rules(cluster: Cluster, node: Node, proxy: Desired | None = None) -> Desired:
    """Everything netlab owns in a node's netfilter tables: flannel's chains, then the proxy's
    (kube-proxy's iptables-mode chains, or its IPVS-mode chains; nftables mode has none here), CNI
    portmap's hostPort chains (`render.hostport`), the NetworkPolicy renderer's (`netpol.renderers`; its
    jump comes first in FORWARD), then the kubelet's (`render.kubelet`).

    In the built-in chains the proxy's jumps come first, as on a real node (kube-proxy prepends its
    jumps, flannel appends): FORWARD must reach KUBE-SERVICES' REJECT of a Service without endpoints
    before FLANNEL-FWD accepts all pod traffic.

    `proxy`: the proxy mode's chains when the caller rendered them already (an incremental sync renders
    them from its per-Service memo); None renders them here.
    """
    out: Desired = {}
    for table, rules in iptables_flannel(cluster, node).items():
        ts = out.setdefault(table, TableState())
        for r in rules:
            ts.chains.setdefault(r.split()[1], []).append(r)
    if proxy is None:
        chains = proxymodes.get(cluster.networking.proxy_mode).iptables
        proxy = chains(cluster, node) if chains else {}
    for table in sorted(set(FLANNEL_JUMPS) | set(proxy)):
        ts = out.setdefault(table, TableState())
        if table in proxy:
            ts.jumps.extend(proxy[table].jumps)
            _add_chains(ts, table, proxy[table].chains)
        ts.jumps.extend(FLANNEL_JUMPS.get(table, []))
    # CNI portmap's hostPort chains (render/hostport.py), in every mode, on nodes with hostPort pods
    for table, hp in hostport_tables(cluster, node).items():
        ts = out.setdefault(table, TableState())
        ts.jumps.extend(hp.jumps)
        _add_chains(ts, table, hp.chains)
    # NetworkPolicy (netlab/netpol/renderers/), in every mode; its FORWARD jump before every other
    for table, np in renderers.of(cluster).tables(cluster, node).items():
        ts = out.setdefault(table, TableState())
        ts.jumps[:0] = np.jumps
        _add_chains(ts, table, np.chains)
    # the kubelet's chains (KUBE-IPTABLES-HINT), in every mode
    for table, chains in kubelet_chains().items():
        out.setdefault(table, TableState()).chains.update(chains)
    return out


def _add_chains(ts: TableState, table: str, chains: dict[str, list[str]]) -> None:
    """One renderer's chains added to a table's; a chain two renderers both write is a bug."""
    for chain, rules in chains.items():
        if chain in ts.chains:
            raise ValueError(f"chain {table}/{chain} is rendered twice")
        ts.chains[chain] = list(rules)


def to_restore(desired: Desired) -> str:
    """The full iptables-restore --noflush payload of a node (what `netlab render` prints)."""
    lines = []
    for table in sorted(desired):
        ts = desired[table]
        lines.append(f"*{table}")
        lines.extend(f":{chain} - [0:0]" for chain in ts.chains)
        for chain, spec in ts.jumps:
            lines.append(f"-A {chain} {spec}")
        for rules in ts.chains.values():
            lines.extend(rules)
        lines.append("COMMIT")
    return "\n".join(lines) + "\n"
