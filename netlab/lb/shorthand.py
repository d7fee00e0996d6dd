"""The Cluster document's `loadBalancer:` shorthand, made into the MetalLB documents it stands for:

    loadBalancer:
      pools:
      - name: default
        addresses: [172.18.255.200-172.18.255.250]
        autoAssign: true          # (default) also: avoidBuggyIPs

Each pool becomes an IPAddressPool and an L2Advertisement of the same name naming it (namespace
metallb-system), as MetalLB's documentation writes them for layer-2 mode; the parser checks them as
written documents are checked (first after the Cluster document) and appends them to the scenario's documents, so that everything
downstream (the store, the IPAM controller, the announcer) sees only real MetalLB objects.
"""
from __future__ import annotations

from ..spec.fields import Fields
from . import METALLB_API, METALLB_NAMESPACE


def load_balancer(lb: Fields) -> list[tuple[str, dict]]:
    """(where, document) of each object the map stands for (none when it is absent)."""
    out: list[tuple[str, dict]] = []
    if not lb.has("pools"):
        lb.done()
        return out
    names: list[str] = []
    for i, p in enumerate(lb.maps("pools")):
        name = p.name("name", subdomain=True)
        if name in names:
            raise p.error("name", f"'{name}' names two pools", "give each pool its own name")
        names.append(name)
        if not p.has("addresses"):
            raise p.missing("addresses", "is required", "list the pool's ranges, e.g. [172.18.255.200-172.18.255.250]")
        addresses = p.strlist("addresses")
        spec: dict = {"addresses": addresses}
        for key in ("autoAssign", "avoidBuggyIPs"):
            if p.has(key):
                spec[key] = p.bool(key)
        p.done()
        where = f"{lb.where}: loadBalancer.pools[{i}]"
        meta = {"name": name, "namespace": METALLB_NAMESPACE}
        out.append((f"{where} (IPAddressPool {name})",
                    {"apiVersion": METALLB_API, "kind": "IPAddressPool", "metadata": dict(meta), "spec": spec}))
        out.append((f"{where} (L2Advertisement {name})",
                    {"apiVersion": METALLB_API, "kind": "L2Advertisement", "metadata": dict(meta),
                     "spec": {"ipAddressPools": [name]}}))
    lb.done()
    return out


def documents_of(cluster_doc: dict | None) -> list[dict]:
    """The documents a stored (already checked) Cluster document's shorthand stands for."""
    if not isinstance(cluster_doc, dict) or not isinstance(cluster_doc.get("loadBalancer"), dict):
        return []
    try:
        return [d for _, d in load_balancer(Fields(cluster_doc["loadBalancer"], "Cluster", "loadBalancer", []))]
    except Exception:   # noqa: BLE001 - checked when it was stored; nothing to add otherwise
        return []
