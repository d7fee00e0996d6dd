"""Namespace (v1): a name that Pods, Deployments and Services may live in."""
from __future__ import annotations

from . import Context, ObjectDoc, object_meta, register


@register("Namespace", "v1", order=1)
def parse_namespace(doc: ObjectDoc, ctx: Context) -> None:
    top, meta, name, _ = object_meta(doc, ctx, namespaced=False)
    labels = meta.strmap("labels")
    meta.done()
    top.skip("spec")
    top.done()
    ctx.namespaces.append(name)
    if labels:   # what NetworkPolicies' namespaceSelectors match (netpol.evaluate.namespace_labels)
        ctx.namespace_labels[name] = labels
