"""The pod a kubectl verb that takes one pod acts on when it is given another object (`logs deploy/web`,
`exec svc/web -- ...`, `debug sts/db`): one of the pods that object's selector picks, chosen as kubectl
chooses for its logs (podutils.ByLogging: a pod bound to a node before one that is not; Running before
Unknown before Pending; ready before not ready, the one ready for longer first; more restarts first; the
older first). Pure: it reads the lab's store."""
from __future__ import annotations

from ..kindnames import PLURAL, SINGULAR
from ..store.meta import get_condition, matcher, parse_time

# the kinds whose pods are picked by a label selector (spec.selector): a LabelSelector, or a Service's map
SELECTING = ("Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job", "Service")
_PHASE = {"Running": 0, "Unknown": 1, "Pending": 2}


class NoPod(Exception):
    """No pod for the object (it is missing, has no selector, or selects no pod): the line says which."""


def _restarts(pod: dict) -> int:
    return max((int(c.get("restartCount") or 0) for c in (pod.get("status") or {}).get("containerStatuses") or []),
               default=0)


def logging_order(pod: dict) -> tuple:
    """The sort key of kubectl's ByLogging (the first is the one it uses)."""
    status = pod.get("status") or {}
    ready = get_condition(pod, "Ready") or {}
    is_ready = ready.get("status") == "True"
    since = parse_time(ready.get("lastTransitionTime")) if is_ready else None
    created = parse_time(pod["metadata"].get("creationTimestamp"))
    return (not (pod.get("spec") or {}).get("nodeName"), _PHASE.get(status.get("phase"), 3), not is_ready,
            since if since is not None else float("inf"), -_restarts(pod),
            created if created is not None else float("inf"), pod["metadata"]["name"])


def pods_for(store, kind: str, namespace: str, name: str) -> list[dict]:
    """The pods `kind`/`name` selects in `namespace`, in kubectl's logging order; raises NoPod."""
    if kind not in SELECTING:
        raise NoPod(f"cannot attach to {SINGULAR.get(kind, kind.lower())}/{name}: give a pod, or a "
                    f"Deployment, ReplicaSet, StatefulSet, DaemonSet, Job or Service")
    obj = store.try_get(kind, namespace, name)
    if obj is None:
        raise NoPod(f'{PLURAL.get(kind, kind.lower())} "{name}" not found in namespace {namespace}')
    selector = (obj.get("spec") or {}).get("selector")
    if not selector:
        raise NoPod(f"cannot attach to {SINGULAR.get(kind, kind.lower())}/{name}: it has no selector")
    match = matcher(selector)
    pods = [p for p in store.list("Pod", namespace)
            if match(p["metadata"].get("labels")) and not p["metadata"].get("deletionTimestamp")]
    if not pods:
        raise NoPod(f"no pod found for {SINGULAR.get(kind, kind.lower())}/{name} in namespace {namespace}")
    return sorted(pods, key=logging_order)
