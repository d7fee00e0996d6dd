"""The table types every iptables renderer fills and the apply layer and the packet tracer read. Pure.

A node's iptables state is `Desired`: table name ("nat", "filter") -> `TableState`, the chains netlab
owns in that table and the jumps to them from the built-in chains. flannel's renderer
(`render.fabric`), kube-proxy's iptables and IPVS modes (`render.kubeproxy_iptables`,
`render.kubeproxy_ipvs`) produce it, `render.iptables.node_rules` merges them, `dataplane.iptables`
diffs it against iptables-save and `render.trace` walks packets through it.
"""
from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from functools import lru_cache


@dataclass
class TableState:
    """Chains (name -> rule lines, each starting with '-A NAME') and jumps from built-in chains."""
    chains: dict[str, list[str]] = field(default_factory=dict)
    jumps: list[tuple[str, str]] = field(default_factory=list)   # (builtin chain, rule spec after '-A CHAIN ')


Desired = dict[str, TableState]   # table -> state


@lru_cache(maxsize=1 << 17)
def hash16(text: str) -> str:
    """First 16 characters of base32 (standard alphabet, upper case) of sha256(text): the hash in kube-proxy's
    chain names (KUBE-SVC-..., KUBE-SEP-...) and kube-router's (KUBE-POD-FW-..., KUBE-NWPLCY-...).

    16 base32 characters are exactly the first 10 bytes of the digest, so only those are encoded.
    """
    return base64.b32encode(hashlib.sha256(text.encode()).digest()[:10]).decode()
