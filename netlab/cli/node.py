"""`netlab node stop|start NODE`: partition a node and bring it back, as a node fails on a real cluster.

`stop`: the node's underlay link goes down (it can reach nothing and nothing reaches it) and its
kubelet stops reporting; its pods keep running, as on a partitioned node. The control loop's node
lifecycle controller marks it NotReady after `controlPlane.nodeMonitorGracePeriod`, taints it, and
evicts its pods after their toleration seconds; their controllers recreate them elsewhere; a
LoadBalancer IP it announced (MetalLB layer 2) moves to the next node of the election, which sends
gratuitous ARP. `start`
brings the link up and the kubelet back: the node turns Ready again and its evicted pods are let go.
"""
from __future__ import annotations

import click


@click.group()
def node() -> None:
    """Stop (partition) or start a node of a running lab."""


def _set(lab: str | None, name: str, stopped: bool) -> None:
    from ..dataplane import lab as labmod
    from ..errors import NotFound
    from ..live import loop, store_for
    from ..live.objects import STOPPED
    labmod.require_root("stop or start a node")
    lab = labmod.resolve_lab(lab)
    store = store_for(lab)
    with store.transaction():
        obj = store.try_get("Node", None, name)
        if obj is None:
            names = ", ".join(n["metadata"]["name"] for n in store.list("Node"))
            raise NotFound(f'Error from server (NotFound): nodes "{name}" not found (nodes of lab {lab}: {names})')
        ann = dict(obj["metadata"].get("annotations") or {})
        if (ann.get(STOPPED) == "true") == stopped:
            click.echo(f"node/{name} already {'stopped' if stopped else 'running'}")
            return
        if stopped:
            ann[STOPPED] = "true"
        else:
            ann.pop(STOPPED, None)
        store.update(dict(obj, metadata=dict(obj["metadata"], annotations=ann)))
    loop.ensure(lab)
    click.echo(f"node/{name} {'stopped' if stopped else 'started'}")


@node.command("stop")
@click.argument("name")
@click.option("--lab", metavar="NAME", help="The lab (default: the only one up).")
def stop(name: str, lab: str | None) -> None:
    """Partition node NAME: its link goes down, its kubelet stops reporting; its pods keep running.

    After the node monitor grace period it is NotReady: its pods are evicted after their toleration,
    and the LoadBalancer IPs it announced (MetalLB layer 2) move to another node."""
    _set(lab, name, True)


@node.command("start")
@click.argument("name")
@click.option("--lab", metavar="NAME", help="The lab (default: the only one up).")
def start(name: str, lab: str | None) -> None:
    """Bring node NAME back: its link up, its kubelet reporting again."""
    _set(lab, name, False)
