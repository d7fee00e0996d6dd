"""ReplicaSet (apps/v1) on its own, without a Deployment: its replicas of a pod template, selected by
matchLabels. The lab's ReplicaSet controller (netlab/controllers/replicaset.py) makes its pods, as it
does for a Deployment's ReplicaSets; `scale rs/NAME` changes its replicas."""
from __future__ import annotations

from ...errors import SpecError
from ..fields import Fields, shown
from ..limits import MAX_REPLICAS
from ..types import DeploymentSpec
from . import Context, ObjectDoc, Reported, attempt, object_meta, register
from .deployment import selected_template


@register("ReplicaSet", "apps/v1", order=4)
def parse_replicaset(doc: ObjectDoc, ctx: Context) -> None:
    top, meta, name, namespace = object_meta(doc, ctx)
    meta.strmap("labels")
    meta.done()
    got = attempt(ctx.problems, _parse_replicaset, top.map("spec"), namespace, name)
    top.done()
    if got is None:
        raise Reported()
    ctx.replicasets.append(got)


def _parse_replicaset(spec: Fields, namespace: str, name: str) -> DeploymentSpec:
    if len(name) > 57:  # name + '-' + 5-character suffix <= 63
        raise SpecError(spec.where, f"metadata.name {shown(name)} is longer than 57 characters",
                        "shorten it: pod names (name-suffix) must fit in 63")
    replicas = spec.int("replicas", 1, lo=0, hi=MAX_REPLICAS)
    spec.int("minReadySeconds", 0, lo=0)
    match, template = selected_template(spec)
    spec.done()
    if template is None:
        raise Reported()
    if template.restart_policy != "Always":
        raise spec.error("template.spec.restartPolicy", f"'{template.restart_policy}' is not supported by a "
                         "ReplicaSet", "use Always (or leave it out), or a Pod for a container that should end")
    return DeploymentSpec(namespace, name, replicas, match, template)
