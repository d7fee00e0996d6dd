"""`netlab cordon|uncordon|drain NODE`: kubectl's node verbs on a live lab's store (the decisions and
messages are netlab/controllers/verbs.py and nodelifecycle.py; evicted pods stop gracefully and
their controllers make them again on other nodes, which is the control loop's doing)."""
from __future__ import annotations

import click

from ..controllers import verbs
from . import kubeutil
from .kubectl import pod_grace
from .kubeutil import Clock, KubeError, duration, get_obj, kubectl_errors, lab_option, out, wait_change


def _set_schedulable(node_names: tuple[str, ...], lab: str | None, unschedulable: bool) -> None:
    from ..controllers.nodelifecycle import cordon as cordon_node
    t = kubeutil.open_target(lab)
    word = "cordoned" if unschedulable else "uncordoned"
    for name in node_names:
        with t.store.transaction():
            node = get_obj(t.store, "Node", "", name)
            if bool((node.get("spec") or {}).get("unschedulable")) == unschedulable:
                out(f"node/{name} already {word}")
                continue
            t.store.update(cordon_node(node, unschedulable))
        t.wrote()
        out(f"node/{name} {word}")


@click.command()
@click.argument("nodes", nargs=-1, required=True)
@lab_option
@kubectl_errors
def cordon(nodes: tuple[str, ...], lab: str | None) -> None:
    """Mark nodes unschedulable (new pods go elsewhere; running pods stay)."""
    _set_schedulable(nodes, lab, True)


@click.command()
@click.argument("nodes", nargs=-1, required=True)
@lab_option
@kubectl_errors
def uncordon(nodes: tuple[str, ...], lab: str | None) -> None:
    """Mark nodes schedulable again."""
    _set_schedulable(nodes, lab, False)


@click.command()
@click.argument("node")
@click.option("--ignore-daemonsets", is_flag=True, help="Leave DaemonSet pods alone instead of refusing.")
@click.option("--force", is_flag=True, help="Also delete pods that no controller manages.")
@click.option("--delete-emptydir-data", is_flag=True, help="Also delete pods with emptyDir volumes.")
@click.option("--grace-period", type=int, default=-1, show_default=True,
              help="Seconds each pod has to stop; -1: its terminationGracePeriodSeconds.")
@click.option("--timeout", default="0s", help="How long to wait for the pods to go (0: no limit).")
@lab_option
@kubectl_errors
def drain(node: str, ignore_daemonsets: bool, force: bool, delete_emptydir_data: bool, grace_period: int,
          timeout: str, lab: str | None) -> None:
    """Cordon a node and evict its pods (gracefully; their controllers make them again elsewhere)."""
    limit = duration(timeout)
    t = kubeutil.open_target(lab)
    store = t.store
    with store.transaction():
        obj = get_obj(store, "Node", "", node)
        cordoned, evict, lines = verbs.drain(obj, store.list("Pod"), force=force, ignore_daemonsets=ignore_daemonsets,
                                             delete_emptydir_data=delete_emptydir_data)
        if cordoned != obj:
            store.update(cordoned)
        for p in evict:
            ns, name = p["metadata"].get("namespace", "default"), p["metadata"]["name"]
            store.delete("Pod", ns, name, grace_seconds=pod_grace(p, grace_period, False, False),
                         uid=p["metadata"].get("uid"))
    t.wrote()
    head = [x for x in lines if x.startswith(("node/", "evicting")) and not x.endswith(" drained")]
    for line in head:
        out(line if cordoned != obj or not line.endswith("cordoned") else f"node/{node} already cordoned")
    clock = Clock(limit)
    pending = {(p["metadata"].get("namespace", "default"), p["metadata"]["name"], p["metadata"].get("uid")) for p in evict}
    rev = store.revision()
    while pending:
        for ns, name, uid in sorted(pending):
            cur = store.try_get("Pod", ns, name)
            if cur is None or cur["metadata"].get("uid") != uid:
                pending.discard((ns, name, uid))
                out(f"pod/{name} evicted")
        if not pending:
            break
        if clock.over():
            left = ", ".join(f"{ns}/{name}" for ns, name, _ in sorted(pending))
            raise KubeError(f"error: unable to drain node \"{node}\" due to error: global timeout reached: "
                            f"{timeout}; pods still terminating: {left}")
        rev = wait_change(store, rev, clock)
    out(f"node/{node} drained")


@click.command()
@click.argument("items", nargs=-1, required=True, metavar="node NAME... KEY[=VALUE]:EFFECT... KEY[:EFFECT]-...")
@click.option("--overwrite", is_flag=True, help="Replace the value of a taint the node has with the same key and "
                                                "effect (without it: an error, nothing changed).")
@click.option("--all", "select_all", is_flag=True, help="Every node.")
@click.option("-l", "--selector", help="The nodes with these labels (zone=a).")
@lab_option
@kubectl_errors
def taint(items: tuple[str, ...], overwrite: bool, select_all: bool, selector: str | None, lab: str | None) -> None:
    """Add or remove taints of nodes, like kubectl taint: taint node n1 dedicated=db:NoSchedule, taint nodes
    n1 n2 maintenance:NoExecute, taint node n1 dedicated:NoSchedule- (or dedicated-: every effect).

    \b
    EFFECT: NoSchedule (the scheduler puts no new pod there that does not tolerate it), PreferNoSchedule,
    NoExecute (also the pods there that do not tolerate it are evicted, gracefully, and their controllers
    make them again on other nodes; a toleration's tolerationSeconds counts from the taint's timeAdded).
    Prints node/NAME tainted, untainted or modified. A taint the node has with the same key and effect is
    changed only with --overwrite (kubectl's error, exit 1, nothing changed); removing one it does not have
    is an error too. A malformed taint: one line, exit 2, nothing changed.
    """
    from ..controllers import taints as taintmod
    from ..store.meta import fmt_time
    from .label import _targets
    specs = [a for a in items if taintmod.is_taint(a)]
    resources = [a for a in items if not taintmod.is_taint(a)]
    first = next((i for i, a in enumerate(items) if taintmod.is_taint(a)), len(items))
    if any(not taintmod.is_taint(a) for a in items[first:]):
        raise KubeError(f"error: all resources must be specified before taint changes: "
                        f"{next(a for a in items[first:] if not taintmod.is_taint(a))}")
    if not specs:
        raise KubeError("error: at least one taint update is required; write KEY=VALUE:EFFECT or KEY:EFFECT-")
    add, remove = taintmod.parse(specs)
    t = kubeutil.open_target(lab)
    store = t.store
    kind, targets = _targets(store, resources, "default", False, select_all, selector, verb="taint")
    if any(k != "Node" for k, _, _ in targets) or (kind and kind != "Node"):
        raise KubeError("error: taint applies to nodes only; give node NAME... (e.g. netlab taint node n1 "
                        "dedicated=db:NoSchedule)")
    if not targets:   # --all or -l matched nothing
        click.echo("No resources found", err=True)
        return
    lines = []
    with store.transaction():   # every node checked before any is written: all or nothing
        writes = []
        for _, _, name in targets:
            node = get_obj(store, "Node", "", name)
            new, word = taintmod.retaint(node, add, remove, overwrite, fmt_time(store.clock()))
            spec = dict(node.get("spec") or {}, taints=new)
            if not new:
                spec.pop("taints")
            writes.append(dict(node, spec=spec))
            lines.append(f"node/{name} {word}")
        for node in writes:
            store.update(node)
    t.wrote()
    for line in lines:
        out(line)


COMMANDS = (cordon, uncordon, drain, taint)
