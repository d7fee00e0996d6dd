"""`get ipaddresspools`, `get l2advertisements`, `get bgppeers` and `get bgpadvertisements` as kubectl prints
MetalLB's CRDs: the CRDs'
additionalPrinterColumns (MetalLB's api/v1beta1 kubebuilder markers), NAME first and no AGE column
(a CRD with printer columns has AGE only when it declares one). A JSONPath column of a list is
printed as compact JSON, a boolean as true/false, an absent value as an empty cell.
L2Advertisement's and BGPAdvertisement's NODE SELECTORS column has priority 10: only with -o wide."""
from __future__ import annotations

import json

POOL_HEADER = ["NAME", "AUTO ASSIGN", "AVOID BUGGY IPS", "ADDRESSES"]
L2_HEADER = ["NAME", "IPADDRESSPOOLS", "IPADDRESSPOOL SELECTORS", "INTERFACES"]
L2_WIDE = ["NODE SELECTORS"]
PEER_HEADER = ["NAME", "ADDRESS", "ASN", "BFD PROFILE", "MULTI HOPS"]
BGP_AD_HEADER = ["NAME", "IPADDRESSPOOLS", "IPADDRESSPOOL SELECTORS", "PEERS"]


def cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def pool_row(obj: dict, now: float) -> list[str]:
    spec = obj.get("spec") or {}
    return [obj["metadata"]["name"], cell(spec.get("autoAssign")), cell(spec.get("avoidBuggyIPs")),
            cell(spec.get("addresses"))]


def l2_row(obj: dict, now: float) -> list[str]:
    spec = obj.get("spec") or {}
    return [obj["metadata"]["name"], cell(spec.get("ipAddressPools")), cell(spec.get("ipAddressPoolSelectors")),
            cell(spec.get("interfaces"))]


def peer_row(obj: dict, now: float) -> list[str]:
    spec = obj.get("spec") or {}
    return [obj["metadata"]["name"], cell(spec.get("peerAddress")), cell(spec.get("peerASN")),
            cell(spec.get("bfdProfile")), cell(spec.get("ebgpMultiHop"))]


def bgp_ad_row(obj: dict, now: float) -> list[str]:
    spec = obj.get("spec") or {}
    return [obj["metadata"]["name"], cell(spec.get("ipAddressPools")), cell(spec.get("ipAddressPoolSelectors")),
            cell(spec.get("peers"))]


def l2_wide(obj: dict) -> list[str]:
    return [cell((obj.get("spec") or {}).get("nodeSelectors"))]


def with_defaults(obj: dict) -> dict:
    """An IPAddressPool as the API server stores it: the CRD's defaults (autoAssign true,
    avoidBuggyIPs false) applied."""
    if obj.get("kind") != "IPAddressPool":
        return obj
    spec = dict(obj.get("spec") or {})
    spec.setdefault("autoAssign", True)
    spec.setdefault("avoidBuggyIPs", False)
    return dict(obj, spec=spec)
