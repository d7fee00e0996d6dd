"""kube-proxy's iptables mode (the default): everything is in iptables chains (render.kubeproxy_iptables)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from . import ProxyMode

if TYPE_CHECKING:
    from ..dataplane.proxy.base import ProxyBackend
    from ..model.objects import Cluster, Node
    from ..render.tables import Desired


def _iptables(cluster: Cluster, node: Node) -> Desired:
    from ..render.kubeproxy_iptables import kube_proxy_tables
    return kube_proxy_tables(cluster, node)


def _backend() -> ProxyBackend:
    from ..dataplane.proxy.iptables import IptablesProxy
    return IptablesProxy()


MODE = ProxyMode("iptables", order=0, backend=_backend, iptables=_iptables)
