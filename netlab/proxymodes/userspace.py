"""kube-proxy's userspace mode, the historical one (removed from kube-proxy in 1.26): a proxy process per
node relays each Service port's connections to an endpoint, and iptables REDIRECT/DNAT rules send the
Service's traffic to it (render.kubeproxy_userspace, dataplane.proxy.userspace)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from . import ProxyMode

if TYPE_CHECKING:
    from ..dataplane.proxy.base import ProxyBackend
    from ..model.objects import Cluster, Node
    from ..render.tables import Desired


def _iptables(cluster: Cluster, node: Node) -> Desired:
    from ..render.kubeproxy_userspace import userspace_tables
    return userspace_tables(cluster, node)


def _render(cluster: Cluster, node: Node) -> str:
    from ..render.kubeproxy_userspace import describe
    return describe(cluster, node)


def _backend() -> ProxyBackend:
    from ..dataplane.proxy.userspace import UserspaceProxy
    return UserspaceProxy()


# The proxy connects to the endpoint from the node, and a node's traffic to its pods is always allowed
# (the kubelet's probes): a NetworkPolicy would not hold for Service traffic. Its rules only redirect to the
# proxy, with no firewall chain: loadBalancerSourceRanges would let every source in.
MODE = ProxyMode("userspace", order=3, backend=_backend, iptables=_iptables, render=_render,
                 unenforced=("NetworkPolicy", "loadBalancerSourceRanges"))
