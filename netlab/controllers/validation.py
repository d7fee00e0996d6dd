"""Pure checks of the objects the controllers act on: one-line messages naming the object, the field
and the fix (the client-side verbs are in verbs.py).

Messages follow the shape of the Kubernetes API server's field errors
(``spec.replicas: Invalid value: -1: must be greater than or equal to 0``) followed by the fix.
Exit status: kubectl exits 1 for every error (invalid objects and missing revisions alike), so
these errors carry exit_code 1 (the CLI may map them as it maps its other bad input).
"""

from __future__ import annotations

import json

from netlab.controllers import deployutil as du
from netlab.controllers.base import scaled_value
from netlab.errors import NetlabError, one_line
from netlab.store.meta import key_of, selector_matches

PROBE_HANDLERS = ("exec", "httpGet", "tcpSocket", "grpc")
PROBE_FIELDS = set(PROBE_HANDLERS) | {"initialDelaySeconds", "periodSeconds", "timeoutSeconds",
                                      "successThreshold", "failureThreshold", "terminationGracePeriodSeconds"}


class ControllerError(NetlabError):
    """Bad input to a controller verb or object; nothing was changed. kubectl exits 1."""

    exit_code = 1

    def __init__(self, message: str):
        super().__init__(one_line(message))


def _who(obj: dict) -> str:
    kind, ns, name = key_of(obj)
    return f'{kind} "{name}"' + (f' in namespace "{ns}"' if ns else "")


def _int_or_percent_ok(v) -> bool:
    try:
        scaled_value(v, 100, True)
        return not isinstance(v, int) or v >= 0
    except ValueError:
        return False


def validate_deployment(d: dict) -> list[str]:
    """One line per problem; empty when the Deployment is valid."""
    who = _who(d)
    spec = d.get("spec") or {}
    errs = []
    r = spec.get("replicas")
    if r is not None and (not isinstance(r, int) or isinstance(r, bool) or r < 0):
        errs.append(f"{who}: spec.replicas: Invalid value: {r!r}: must be greater than or equal to 0; "
                    "set a whole number of replicas, 0 or more")
    if not (spec.get("selector") or {}).get("matchLabels") and not (spec.get("selector") or {}).get("matchExpressions"):
        errs.append(f"{who}: spec.selector: Required value; set spec.selector.matchLabels to the template's labels")
    strategy = spec.get("strategy") or {}
    stype = strategy.get("type") or "RollingUpdate"
    if stype not in ("RollingUpdate", "Recreate"):
        errs.append(f'{who}: spec.strategy.type: Unsupported value: "{stype}": supported values: '
                    '"Recreate", "RollingUpdate"')
    ru = strategy.get("rollingUpdate")
    if stype == "Recreate" and ru:
        errs.append(f"{who}: spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy "
                    "`type` is 'Recreate'; remove spec.strategy.rollingUpdate")
    if stype == "RollingUpdate":
        surge, unavail = du.rolling_params(d)
        for field, v in (("maxSurge", surge), ("maxUnavailable", unavail)):
            if not _int_or_percent_ok(v):
                errs.append(f"{who}: spec.strategy.rollingUpdate.{field}: Invalid value: {v!r}: must be a "
                            "non-negative number or a percentage like 25%")
        if _int_or_percent_ok(surge) and _int_or_percent_ok(unavail):
            if scaled_value(surge, 100, True) == 0 and scaled_value(unavail, 100, False) == 0:
                errs.append(f"{who}: spec.strategy.rollingUpdate.maxUnavailable: Invalid value: {unavail!r}: "
                            "may not be 0 when `maxSurge` is 0; set maxSurge or maxUnavailable to at least 1")
            if isinstance(unavail, str) and unavail.endswith("%") and scaled_value(unavail, 100, False) > 100:
                errs.append(f"{who}: spec.strategy.rollingUpdate.maxUnavailable: Invalid value: {unavail!r}: "
                            "must not be greater than 100%")
    for field in ("minReadySeconds", "progressDeadlineSeconds", "revisionHistoryLimit"):
        v = spec.get(field)
        if v is not None and (not isinstance(v, int) or v < 0):
            errs.append(f"{who}: spec.{field}: Invalid value: {v!r}: must be greater than or equal to 0")
    pds, mrs = spec.get("progressDeadlineSeconds"), spec.get("minReadySeconds") or 0
    if isinstance(pds, int) and isinstance(mrs, int) and pds <= mrs:
        errs.append(f"{who}: spec.progressDeadlineSeconds: Invalid value: {pds}: must be greater than "
                    "minReadySeconds; raise progressDeadlineSeconds")
    template = spec.get("template") or {}
    tlabels = (template.get("metadata") or {}).get("labels") or {}
    if spec.get("selector") and not selector_matches(spec["selector"], tlabels):
        errs.append(f"{who}: spec.template.metadata.labels: Invalid value: {tlabels!r}: `selector` does not "
                    "match template `labels`; give the template the selector's labels")
    errs += validate_pod_spec(template.get("spec") or {}, who, "spec.template.spec")
    return errs


def validate_pod_spec(pspec: dict, who: str, path: str = "spec") -> list[str]:
    errs = []
    for i, c in enumerate(pspec.get("containers") or []):
        for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
            p = c.get(probe)
            if p is None:
                continue
            where = f"{path}.containers[{i}].{probe}"
            unknown = sorted(set(p) - PROBE_FIELDS)
            if unknown:
                errs.append(f'{who}: {where}.{unknown[0]}: Unsupported value: "{unknown[0]}": supported handlers: '
                            '"exec", "grpc", "httpGet", "tcpSocket"')
                continue
            handlers = [h for h in PROBE_HANDLERS if h in p]
            if not handlers:
                errs.append(f"{who}: {where}: Required value: must specify a handler type; "
                            "add one of exec, grpc, httpGet or tcpSocket")
            elif len(handlers) > 1:
                errs.append(f"{who}: {where}.{handlers[1]}: Forbidden: may not specify more than 1 handler type; "
                            "keep one of " + ", ".join(handlers))
            for f in ("successThreshold", "failureThreshold", "periodSeconds", "timeoutSeconds"):
                v = p.get(f)
                if v is not None and (not isinstance(v, int) or v < 1):
                    errs.append(f"{who}: {where}.{f}: Invalid value: {v!r}: must be greater than or equal to 1")
            if probe in ("livenessProbe", "startupProbe") and p.get("successThreshold", 1) != 1:
                errs.append(f"{who}: {where}.successThreshold: Invalid value: {p['successThreshold']}: "
                            "must be 1; remove successThreshold or set it to 1")
    return errs


def api_error(where: str, line: str):
    """A line of `validate_deployment` / `validate_pod_spec` as a SpecError of the document `where`
    (the object is named by the document; the fix after the last '; ')."""
    from netlab.errors import SpecError
    body = line.split(": ", 1)[1] if ": " in line else line
    what, sep, fix = body.rpartition("; ")
    return SpecError(where, what if sep else body, fix if sep else "see the Kubernetes API reference")


def check_deployment(d: dict) -> None:
    errs = validate_deployment(d)
    if errs:
        raise ControllerError(errs[0])


PROBE_DEFAULTS = {"timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3}


def default_pod_spec(pspec: dict) -> dict:
    """The API server's defaults of a pod spec that the controllers and a kubelet read (a copy)."""
    out = json.loads(json.dumps(pspec or {}))
    out.setdefault("restartPolicy", "Always")
    out.setdefault("terminationGracePeriodSeconds", 30)
    out.setdefault("dnsPolicy", "ClusterFirst")
    out.setdefault("schedulerName", "default-scheduler")
    for c in out.get("containers") or []:
        for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
            if isinstance(c.get(probe), dict):
                for k, v in PROBE_DEFAULTS.items():
                    c[probe].setdefault(k, v)
        for port in c.get("ports") or []:
            port.setdefault("protocol", "TCP")
            if out.get("hostNetwork") is True and isinstance(port, dict) and "containerPort" in port:
                port.setdefault("hostPort", port["containerPort"])   # the API server's default
    return out


def default_deployment(d: dict) -> dict:
    """A Deployment with apps/v1's defaults filled in, as the API server stores it (a copy).
    The CLI applies this before writing, so that the pod-template hash sees the same template
    whether a field was written or defaulted."""
    out = json.loads(json.dumps(d))
    spec = out.setdefault("spec", {})
    spec.setdefault("replicas", 1)
    strategy = spec.setdefault("strategy", {})
    strategy.setdefault("type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        ru = strategy.setdefault("rollingUpdate", {})
        ru.setdefault("maxSurge", du.DEFAULT_SURGE)
        ru.setdefault("maxUnavailable", du.DEFAULT_UNAVAILABLE)
    spec.setdefault("revisionHistoryLimit", du.DEFAULT_REVISION_HISTORY_LIMIT)
    spec.setdefault("progressDeadlineSeconds", du.DEFAULT_PROGRESS_DEADLINE)
    template = spec.setdefault("template", {})
    template["spec"] = default_pod_spec(template.get("spec") or {})
    return out
