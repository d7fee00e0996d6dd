"""The kubelet's own iptables chains in a node, as data. Pure.

The kubelet ensures, on every node and at every resync, an empty chain `KUBE-IPTABLES-HINT` in the
mangle table, in the iptables flavour (legacy or nft) it uses. Nothing jumps to it: its existence tells
other components and tools (kube-proxy's and CNI plugins' flavour detection, Kubernetes' e2e) which
flavour the node's Kubernetes rules are in. netlab writes it with the node's other chains, in the
node's flavour, in every proxy mode, so it is there after every `up` and comes back when deleted.

(The kubelet's anti-martian `KUBE-FIREWALL` chain is not here: kube-proxy's iptables mode keeps its own
copy, rendered with kube-proxy's chains.)
"""
from __future__ import annotations

IPTABLES_HINT_CHAIN = "KUBE-IPTABLES-HINT"


def kubelet_chains() -> dict[str, dict[str, list[str]]]:
    """table -> chain -> rule lines: what the kubelet keeps in every node."""
    return {"mangle": {IPTABLES_HINT_CHAIN: []}}
