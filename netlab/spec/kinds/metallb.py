"""MetalLB's IPAddressPool and L2Advertisement (metallb.io/v1beta1): real kinds, checked as MetalLB's
webhook checks them (netlab/lb/pools.py), stored by `up` and `apply`, read by the IPAM controller
(netlab/controllers/lbipam.py) and the layer-2 announcer. Their namespace, metallb-system, is created
with them (as installing MetalLB does). A pool may not overlap the pod or service subnets, the gateway
or the external host (model/build.py checks the nodes' addresses once they are allocated).
BGPPeer (metallb.io/v1beta2) and BGPAdvertisement (v1beta1): MetalLB's BGP mode (netlab/lb/bgpmode.py),
a peer checked against the lab's one BGP router. MetalLB's other kinds (BFDProfile, Community) stay
inert (kinds/inert.py)."""
from __future__ import annotations

from ...lb import METALLB_API, METALLB_NAMESPACE
from ...lb.bgpmode import PEER_API, PEER_IGNORED, parse_bgpadvertisement, parse_bgppeer
from ...lb.pools import check_namespace, parse_l2advertisement, parse_pool
from ..known import KNOWN
from . import Context, ObjectDoc, object_meta, register

_SEL = "MetalLBLabelSelector"   # metav1.LabelSelector, expressions read too
KNOWN.update({
    "IPAddressPool": {"apiVersion": None, "kind": None, "status": None, "metadata": "ObjectMeta",
                      "spec": "IPAddressPoolSpec"},
    "IPAddressPoolSpec": {"addresses": None, "autoAssign": None, "avoidBuggyIPs": None,
                          "serviceAllocation": "ServiceAllocation"},
    "ServiceAllocation": {"priority": None, "namespaces": None, "namespaceSelectors": _SEL, "serviceSelectors": _SEL},
    "L2Advertisement": {"apiVersion": None, "kind": None, "status": None, "metadata": "ObjectMeta",
                        "spec": "L2AdvertisementSpec"},
    "L2AdvertisementSpec": {"ipAddressPools": None, "ipAddressPoolSelectors": _SEL, "nodeSelectors": _SEL,
                            "interfaces": None, "serviceSelectors": _SEL,
                            "preferredNodeSelectors": "PreferredNodeSelector"},
    "PreferredNodeSelector": {"weight": None, "preference": _SEL},
    "LabelSelectorRequirement": {"key": None, "operator": None, "values": None},
    "BGPPeer": {"apiVersion": None, "kind": None, "status": None, "metadata": "ObjectMeta", "spec": "BGPPeerSpec"},
    "BGPPeerSpec": {"myASN": None, "peerASN": None, "dynamicASN": None, "peerAddress": None, "interface": None,
                    "peerPort": None, "holdTime": None, "keepaliveTime": None, "nodeSelectors": _SEL,
                    **{k: None for k in PEER_IGNORED}},
    "BGPAdvertisement": {"apiVersion": None, "kind": None, "status": None, "metadata": "ObjectMeta",
                         "spec": "BGPAdvertisementSpec"},
    "BGPAdvertisementSpec": {"aggregationLength": None, "aggregationLengthV6": None, "localPref": None,
                             "communities": None, "ipAddressPools": None, "ipAddressPoolSelectors": _SEL,
                             "nodeSelectors": _SEL, "peers": None},
})
KNOWN[_SEL] = {"matchLabels": None, "matchExpressions": "LabelSelectorRequirement"}


def _meta(doc: ObjectDoc, ctx: Context, kind: str):
    top, meta, name, ns = object_meta(doc, ctx)
    labels = meta.strmap("labels")
    meta.skip("finalizers", "generateName", "deletionTimestamp")
    meta.done()
    check_namespace(ns, top, kind)
    if METALLB_NAMESPACE not in ctx.namespaces:
        ctx.namespaces.append(METALLB_NAMESPACE)
    return top, name, labels


def reserved(ctx: Context) -> list[tuple[str, int, int]]:
    """The ranges no pool may touch: the pod and service subnets, the gateway, the external host."""
    net = ctx.networking
    if net is None:
        return []
    gateway = next(net.node_subnet.hosts())
    external = net.node_subnet.broadcast_address - 1
    return [(f"networking.podSubnet {net.pod_subnet}", int(net.pod_subnet.network_address),
             int(net.pod_subnet.broadcast_address)),
            (f"networking.serviceSubnet {net.service_subnet}", int(net.service_subnet.network_address),
             int(net.service_subnet.broadcast_address)),
            (f"the gateway's address {gateway}", int(gateway), int(gateway)),
            (f"the external host's addresses {external - 1}-{external}", int(external) - 1, int(external))]


@register("IPAddressPool", METALLB_API, order=60)
def parse_ipaddresspool(doc: ObjectDoc, ctx: Context) -> None:
    top, name, labels = _meta(doc, ctx, "IPAddressPool")
    pool = parse_pool(top, name, labels, ctx.lb_pools, reserved(ctx))
    top.done()
    ctx.lb_pools.append(pool)


@register("L2Advertisement", METALLB_API, order=61)
def parse_l2advertisement_doc(doc: ObjectDoc, ctx: Context) -> None:
    top, _, _ = _meta(doc, ctx, "L2Advertisement")
    parse_l2advertisement(top)
    top.done()


@register("BGPPeer", PEER_API, order=62)
def parse_bgppeer_doc(doc: ObjectDoc, ctx: Context) -> None:
    top, _, _ = _meta(doc, ctx, "BGPPeer")
    parse_bgppeer(top, ctx.networking)
    top.done()


@register("BGPAdvertisement", METALLB_API, order=63)
def parse_bgpadvertisement_doc(doc: ObjectDoc, ctx: Context) -> None:
    top, _, _ = _meta(doc, ctx, "BGPAdvertisement")
    parse_bgpadvertisement(top, ctx.lb_pools)
    top.done()


__all__ = ["parse_bgpadvertisement_doc", "parse_bgppeer_doc", "parse_ipaddresspool", "parse_l2advertisement_doc",
           "reserved"]
