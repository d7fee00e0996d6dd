"""Deployment (apps/v1): its replicas of a pod template, selected by matchLabels."""
from __future__ import annotations

from ...errors import SpecError
from ..fields import Fields, shown
from ..limits import MAX_REPLICAS
from ..types import DeploymentSpec
from ...controllers.validation import api_error, default_deployment, validate_deployment
from . import Context, ObjectDoc, Reported, attempt, object_meta, register
from .pod import parse_pod_spec


@register("Deployment", "apps/v1", order=3)
def parse_deployment(doc: ObjectDoc, ctx: Context) -> None:
    top, meta, name, namespace = object_meta(doc, ctx)
    meta.strmap("labels")
    meta.done()
    spec = top.map("spec")
    spec.data_root = doc.data
    got = attempt(ctx.problems, _parse_deployment, spec, namespace, name)
    top.done()
    if got is None:
        raise Reported()
    ctx.deployments.append(got)


def selected_template(spec: Fields, claims: tuple[str, ...] = ()):
    """`selector.matchLabels` and `template` of a Deployment's or a ReplicaSet's spec: (matchLabels, the
    parsed pod template, or None when its problems were reported). The selector must match the
    template's labels."""
    sel = spec.map("selector")
    match = sel.strmap("matchLabels")
    if sel.list("matchExpressions"):
        raise sel.error("matchExpressions", "is not supported", "use matchLabels")
    if not match:  # before sel.done(): a misspelt matchLabels is reported once, as the unknown field
        raise sel.missing("matchLabels", "is required", "select the template's labels, e.g. app: web")
    sel.done()
    return match, matching_template(spec, match, claims)


def matching_template(spec: Fields, match: dict[str, str], claims: tuple[str, ...] = ()):
    """A workload's `template` whose labels the selector `match` must match: the parsed pod template,
    or None when its problems were reported (every workload kind's, a Job's included)."""
    tmpl = spec.map("template")
    tmeta = tmpl.map("metadata")
    tlabels = tmeta.strmap("labels")
    tmeta.skip("annotations", "name", "creationTimestamp")
    tmeta.done()
    for k, v in match.items():
        if tlabels.get(k) != v:
            raise spec.error("selector.matchLabels", f"{k}={v} does not match spec.template.metadata.labels",
                             "the selector must match the template's labels")
    template = attempt(spec.problems, parse_pod_spec, tmpl.map("spec"), tlabels, claims)
    tmpl.done()
    return template


def _parse_deployment(spec: Fields, namespace: str, name: str) -> DeploymentSpec:
    if len(name) > 46:  # name + '-' + 10-character template hash + '-' + 5-character suffix <= 63
        raise SpecError(spec.where, f"metadata.name {shown(name)} is longer than 46 characters",
                        "shorten it: pod names (name-hash-suffix) must fit in 63")
    replicas = spec.int("replicas", 1, lo=0, hi=MAX_REPLICAS)
    match, template = selected_template(spec)
    # the control loop runs these as Kubernetes does (netlab/controllers/deployment.py); their values
    # are checked as the API server checks them (controllers/validation.py)
    spec.bool("paused")
    spec.int("minReadySeconds", 0, lo=0)
    spec.int("revisionHistoryLimit", 10, lo=0)
    spec.int("progressDeadlineSeconds", 600, lo=1)
    strategy = spec.map("strategy")
    strategy.choice("type", ("RollingUpdate", "Recreate"), "RollingUpdate")
    ru = strategy.map("rollingUpdate")
    for field in ("maxSurge", "maxUnavailable"):
        v = ru.raw(field)
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, str))):
            raise ru.error(field, f"must be a number or a percentage, not {shown(v)}", "write e.g. 1 or 25%")
    ru.done()
    strategy.done()
    if template is not None:  # the rest as the API server checks it (the types are right by now)
        for line in validate_deployment(default_deployment(spec.data_root)):
            if "Probe" not in line:  # the pod template's own checks said it already
                spec.problems.append(api_error(spec.where, line))
    spec.done()
    if template is None:
        raise Reported()
    if template.restart_policy != "Always":  # as the API server says
        raise spec.error("template.spec.restartPolicy", f"'{template.restart_policy}' is not supported by a "
                         "Deployment", "use Always (or leave it out), or a Pod for a container that should end")
    return DeploymentSpec(namespace, name, replicas, match, template)

