"""Per-node iptables state, rendered as data (chains and jumps) and as iptables-restore text. Pure."""
from __future__ import annotations

from dataclasses import dataclass, field

from ..model.objects import Cluster, Node
from .fabric import FLANNEL_JUMPS, iptables_flannel


@dataclass
class TableState:
    """Chains (name -> rule lines, each starting with '-A NAME') and jumps from built-in chains."""
    chains: dict[str, list[str]] = field(default_factory=dict)
    jumps: list[tuple[str, str]] = field(default_factory=list)   # (builtin chain, rule spec after '-A CHAIN ')


Desired = dict[str, TableState]   # table -> state


def node_rules(cluster: Cluster, node: Node) -> Desired:
    """Everything netlab owns in a node's netfilter tables: flannel's chains, then the proxy's."""
    out: Desired = {}
    for table, rules in iptables_flannel(cluster, node).items():
        ts = out.setdefault(table, TableState())
        for r in rules:
            ts.chains.setdefault(r.split()[1], []).append(r)
    for table, jumps in FLANNEL_JUMPS.items():
        out.setdefault(table, TableState()).jumps.extend(jumps)
    return out


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
