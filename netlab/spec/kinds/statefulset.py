"""StatefulSet (apps/v1): replicas of a pod template with stable names <name>-<ordinal>, made and
replaced by the lab's StatefulSet controller (netlab/controllers/statefulset.py): OrderedReady or
Parallel, RollingUpdate (with a partition) or OnDelete, `scale sts/NAME`.

serviceName is required (the headless Service that names each pod: the pods' spec.subdomain).
netlab has no storage: volumeClaimTemplates and persistentVolumeClaimRetentionPolicy are reported
once as ignored (no PersistentVolumeClaim is made); updateStrategy.rollingUpdate.maxUnavailable
(alpha in Kubernetes) is reported as ignored unless it is 1 (pods are replaced one at a time)."""
from __future__ import annotations

from ...errors import SpecError
from ..fields import Fields, shown
from ..limits import MAX_REPLICAS
from ..types import StatefulSetSpec
from . import Context, ObjectDoc, Reported, attempt, object_meta, register
from .deployment import selected_template

# the pods' controller-revision-hash label is <name>-<10-character hash>, at most 63 characters
MAX_NAME = 52


@register("StatefulSet", "apps/v1", order=7)
def parse_statefulset(doc: ObjectDoc, ctx: Context) -> None:
    top, meta, name, namespace = object_meta(doc, ctx)
    meta.strmap("labels")
    meta.done()
    got = attempt(ctx.problems, _parse_statefulset, top.map("spec"), namespace, name)
    top.done()
    if got is None:
        raise Reported()
    ctx.statefulsets.append(got)


def _parse_statefulset(spec: Fields, namespace: str, name: str) -> StatefulSetSpec:
    if len(name) > MAX_NAME:
        raise SpecError(spec.where, f"metadata.name {shown(name)} is longer than {MAX_NAME} characters",
                        "shorten it: the pods' controller-revision-hash label (name-hash) must fit in 63")
    if "." in name:
        raise SpecError(spec.where, f"metadata.name {shown(name)} has a '.'",
                        "use a DNS label (letters, digits, '-'): each pod's hostname is <name>-<ordinal>")
    service = spec.str("serviceName")
    if not service:
        raise spec.missing("serviceName", "is required",
                           "name the headless Service (clusterIP: None) that governs the pods, e.g. "
                           f"serviceName: {name}")
    replicas = spec.int("replicas", 1, lo=0, hi=MAX_REPLICAS)
    spec.choice("podManagementPolicy", ("OrderedReady", "Parallel"), "OrderedReady")
    spec.int("minReadySeconds", 0, lo=0)
    spec.int("revisionHistoryLimit", 10, lo=0)
    ordinals = spec.map("ordinals")
    start = ordinals.int("start", 0, lo=0)
    ordinals.done()
    strategy = spec.map("updateStrategy")
    stype = strategy.choice("type", ("RollingUpdate", "OnDelete"), "RollingUpdate")
    if strategy.has("rollingUpdate"):
        if stype != "RollingUpdate":
            raise strategy.error("rollingUpdate", "is only allowed for type RollingUpdate",
                                 "remove rollingUpdate, or set type: RollingUpdate")
        ru = strategy.map("rollingUpdate")
        ru.int("partition", 0, lo=0)
        mu = ru.raw("maxUnavailable")
        if mu is not None and mu != 1:  # alpha (MaxUnavailableStatefulSet): netlab replaces one pod at a time
            ru.ignored.append(f"{ru.where}: {ru.at('maxUnavailable')} (pods are replaced one at a time)")
        ru.done()
    strategy.done()
    # no storage in netlab: reported once, never silently dropped; each claim is a volume of every pod
    # (an empty directory), so the template's volumeMounts may name it, as on a cluster
    claims: list = []
    if spec.has("volumeClaimTemplates"):
        spec.raw("volumeClaimTemplates")
        claims = [c.get("metadata", {}).get("name", "?") for c in spec.data["volumeClaimTemplates"]
                  if isinstance(c, dict) and isinstance(c.get("metadata"), dict)]
        spec.ignored.append(f"{spec.where}: {spec.at('volumeClaimTemplates')} "
                            f"({', '.join(map(str, claims)) or 'none named'}: netlab has no storage, "
                            "no PersistentVolumeClaim is made: each pod mounts an empty directory)")
    if spec.has("persistentVolumeClaimRetentionPolicy"):
        spec.raw("persistentVolumeClaimRetentionPolicy")
        spec.ignored.append(f"{spec.where}: {spec.at('persistentVolumeClaimRetentionPolicy')}")
    match, template = selected_template(spec, tuple(c for c in claims if isinstance(c, str) and c != "?"))
    spec.done()
    if template is None:
        raise Reported()
    if template.restart_policy != "Always":  # as the API server says
        raise spec.error("template.spec.restartPolicy", f"'{template.restart_policy}' is not supported by a "
                         "StatefulSet", "use Always (or leave it out), or a Pod for a container that should end")
    return StatefulSetSpec(namespace, name, replicas, match, template, service_name=service, start=start)
