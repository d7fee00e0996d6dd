"""kube-proxy's IPVS mode: kube-ipvs0, IPVS virtual servers, ipsets, and a few iptables chains that match
the sets (render.kubeproxy_ipvs)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from . import ProxyMode

if TYPE_CHECKING:
    from ..dataplane.proxy.base import ProxyBackend
    from ..model.objects import Cluster, Node
    from ..render.tables import Desired


def _iptables(cluster: Cluster, node: Node) -> Desired:
    # IPVS mode's few set-matching chains (they need kube-proxy's ipsets to exist first)
    from ..render.kubeproxy_ipvs import node_ipvs_tables
    return node_ipvs_tables(cluster, node)


def _render(cluster: Cluster, node: Node) -> str:
    from ..render.kubeproxy_ipvs import describe_ipvs
    return ("# IPVS mode: sysctls, kube-ipvs0 addresses, ipset restore, ipvsadm-restore\n"
            + describe_ipvs(cluster, node))


def _backend() -> ProxyBackend:
    from ..dataplane.proxy.ipvs import IpvsProxy
    return IpvsProxy()


MODE = ProxyMode("ipvs", order=2, backend=_backend, iptables=_iptables, render=_render)
