"""kube-proxy's nftables mode: table `ip kube-proxy` (render.kubeproxy_nftables); no iptables chains."""
from __future__ import annotations

from typing import TYPE_CHECKING

from . import ProxyMode

if TYPE_CHECKING:
    from ..dataplane.proxy.base import ProxyBackend
    from ..model.objects import Cluster, Node


def _render(cluster: Cluster, node: Node) -> str:
    from ..render.kubeproxy_nftables import nft_script
    choice = cluster.networking.nft_choice
    return (f"# nft -f - (kube-proxy nftables mode, endpoint choice {choice})\n"
            + nft_script(cluster, node, choice=choice))


def _backend() -> ProxyBackend:
    from ..dataplane.proxy.nftables import NftablesProxy
    return NftablesProxy()


MODE = ProxyMode("nftables", order=1, backend=_backend, render=_render)
