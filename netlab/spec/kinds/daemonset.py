"""DaemonSet (apps/v1): one pod of its template on every eligible node. The lab's DaemonSet
controller (netlab/controllers/daemonset.py) makes and rolls the pods; here the document is checked
as the API server checks it: the selector must match the template's labels; updateStrategy
RollingUpdate (maxUnavailable default 1, maxSurge default 0, each a number or a percentage, not both 0)
or OnDelete; minReadySeconds and revisionHistoryLimit not negative; restartPolicy Always."""
from __future__ import annotations

from ...errors import SpecError
from ...controllers.base import scaled_value
from ..fields import Fields, shown
from . import Context, ObjectDoc, Reported, attempt, object_meta, register
from .deployment import selected_template


@register("DaemonSet", "apps/v1", order=8)
def parse_daemonset(doc: ObjectDoc, ctx: Context) -> None:
    top, meta, name, namespace = object_meta(doc, ctx)
    meta.strmap("labels")
    meta.done()
    got = attempt(ctx.problems, _parse_daemonset, top.map("spec"), name)
    if got is not None:   # its pods come from the control loop: `validate` and `up` check its commands
        ctx.templates.append((f"DaemonSet {namespace}/{name}", "spec.template.spec", got))
    top.done()
    if got is None:
        raise Reported()


def _int_or_percent(ru: Fields, field: str, default):
    v = ru.raw(field, default)
    ok = not isinstance(v, bool) and isinstance(v, (int, str))
    if ok:
        try:
            ok = scaled_value(v, 100, True) >= 0
        except ValueError:
            ok = False
    if not ok:
        raise ru.error(field, f"must be a non-negative number or a percentage, not {shown(v)}", "write e.g. 1 or 10%")
    if isinstance(v, str) and scaled_value(v, 100, True) > 100:
        raise ru.error(field, f"{shown(v)} is more than 100%", "use a percentage up to 100%")
    return v


def _parse_daemonset(spec: Fields, name: str):
    """The DaemonSet's spec, checked: its pod template."""
    if len(name) > 57:  # name + '-' + 5-character suffix <= 63
        raise SpecError(spec.where, f"metadata.name {shown(name)} is longer than 57 characters",
                        "shorten it: pod names (name-suffix) must fit in 63")
    _, template = selected_template(spec)
    spec.int("minReadySeconds", 0, lo=0)
    spec.int("revisionHistoryLimit", 10, lo=0)
    strategy = spec.map("updateStrategy")
    kind = strategy.choice("type", ("RollingUpdate", "OnDelete"), "RollingUpdate")
    ru = strategy.map("rollingUpdate")
    if kind == "OnDelete" and strategy.has("rollingUpdate"):
        raise strategy.error("rollingUpdate", "may not be given when type is OnDelete",
                             "remove spec.updateStrategy.rollingUpdate or use type RollingUpdate")
    unavailable = _int_or_percent(ru, "maxUnavailable", 1)
    surge = _int_or_percent(ru, "maxSurge", 0)
    if scaled_value(unavailable, 100, True) == 0 and scaled_value(surge, 100, True) == 0:
        raise ru.error("maxUnavailable", "may not be 0 when maxSurge is 0",
                       "set maxUnavailable or maxSurge to at least 1")
    ru.done()
    strategy.done()
    spec.done()
    if template is None:
        raise Reported()
    if template.restart_policy != "Always":  # as the API server says
        raise spec.error("template.spec.restartPolicy", f"'{template.restart_policy}' is not supported by a "
                         "DaemonSet", "use Always (or leave it out)")
    return template
