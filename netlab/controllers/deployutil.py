"""The Deployment controller's arithmetic and bookkeeping, as pure functions over dicts, following
Kubernetes' pkg/controller/deployment/util/deployment_util.go (read for facts, written anew):
surge/unavailable fenceposts, the new ReplicaSet's next size, proportional scaling, the
pod-template hash, revisions and the replica annotations, status and the Available/Progressing
conditions."""

from __future__ import annotations

import json
import struct

from netlab.controllers.base import NAME_ALPHABET, scaled_value
from netlab.store.meta import annotations_of, fmt_time, parse_time

HASH_LABEL = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
_SKIP_COPY = {LAST_APPLIED, REVISION, REVISION_HISTORY, DESIRED_REPLICAS, MAX_REPLICAS,
              "deprecated.deployment.rollback.to"}

# Condition reasons (as Kubernetes names them)
RS_UPDATED = "ReplicaSetUpdated"
NEW_RS_CREATED = "NewReplicaSetCreated"
FOUND_NEW_RS = "FoundNewReplicaSet"
NEW_RS_AVAILABLE = "NewReplicaSetAvailable"
TIMED_OUT = "ProgressDeadlineExceeded"
PAUSED = "DeploymentPaused"
RESUMED = "DeploymentResumed"
MIN_AVAILABLE = "MinimumReplicasAvailable"
MIN_UNAVAILABLE = "MinimumReplicasUnavailable"

# API defaults (apps/v1)
DEFAULT_REVISION_HISTORY_LIMIT = 10
DEFAULT_PROGRESS_DEADLINE = 600
DEFAULT_SURGE = DEFAULT_UNAVAILABLE = "25%"
MAX_INT32 = 2**31 - 1


# ---------------------------------------------------------------- spec accessors with defaults

def replicas(obj: dict) -> int:
    r = (obj.get("spec") or {}).get("replicas")
    return 1 if r is None else int(r)


def strategy_type(d: dict) -> str:
    return ((d.get("spec") or {}).get("strategy") or {}).get("type") or "RollingUpdate"


def is_rolling(d: dict) -> bool:
    return strategy_type(d) == "RollingUpdate"


def rolling_params(d: dict) -> tuple:
    ru = (((d.get("spec") or {}).get("strategy") or {}).get("rollingUpdate")) or {}
    return ru.get("maxSurge", DEFAULT_SURGE), ru.get("maxUnavailable", DEFAULT_UNAVAILABLE)


def progress_deadline(d: dict) -> int | None:
    spec = d.get("spec") or {}
    v = spec.get("progressDeadlineSeconds", DEFAULT_PROGRESS_DEADLINE)
    return None if v is None or v == MAX_INT32 else int(v)


def history_limit(d: dict) -> int | None:
    v = (d.get("spec") or {}).get("revisionHistoryLimit", DEFAULT_REVISION_HISTORY_LIMIT)
    return None if v is None or v == MAX_INT32 else int(v)


def min_ready_seconds(obj: dict) -> int:
    return int((obj.get("spec") or {}).get("minReadySeconds") or 0)


def rs_status(rs: dict | None, field: str) -> int:
    return int(((rs or {}).get("status") or {}).get(field) or 0)


# ---------------------------------------------------------------- fenceposts

def resolve_fenceposts(max_surge, max_unavailable, desired: int) -> tuple[int, int]:
    """(surge, unavailable): surge rounds up, unavailable rounds down; both 0 -> unavailable 1."""
    surge = scaled_value(0 if max_surge is None else max_surge, desired, True)
    unavailable = scaled_value(0 if max_unavailable is None else max_unavailable, desired, False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def max_unavailable(d: dict) -> int:
    n = replicas(d)
    if not is_rolling(d) or n == 0:
        return 0
    _, unavailable = resolve_fenceposts(*rolling_params(d), n)
    return min(unavailable, n)


def max_surge(d: dict) -> int:
    if not is_rolling(d):
        return 0
    return resolve_fenceposts(*rolling_params(d), replicas(d))[0]


def new_rs_new_replicas(d: dict, all_rss: list[dict], new_rs: dict) -> int:
    """How many replicas the new ReplicaSet may have now (Kubernetes' NewRSNewReplicas)."""
    if strategy_type(d) == "Recreate":
        return replicas(d)
    if strategy_type(d) != "RollingUpdate":
        raise ValueError(f"deployment type {strategy_type(d)} isn't supported")
    surge = scaled_value(rolling_params(d)[0], replicas(d), True)
    current = sum(replicas(rs) for rs in all_rss)
    max_total = replicas(d) + surge
    if current >= max_total:
        return replicas(new_rs)
    scale_up = min(max_total - current, replicas(d) - replicas(new_rs))
    return replicas(new_rs) + scale_up


# ---------------------------------------------------------------- pod-template hash

def _fnv32a(data: bytes) -> int:
    h = 0x811C9DC5
    for b in data:
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return h


def _safe_encode(s: str) -> str:
    return "".join(NAME_ALPHABET[ord(c) % len(NAME_ALPHABET)] for c in s)


def compute_hash(template: dict, collision_count: int | None = None) -> str:
    """The pod-template-hash: FNV-32a, then the decimal digits mapped onto Kubernetes' alphabet, as
    Kubernetes' ComputeHash does. Kubernetes hashes Go's printed form of the template struct; this
    hashes its canonical JSON, so the value is deterministic and has the same shape (e.g.
    "7c5ddbdf54") but is not byte-identical to the one Kubernetes computes for the same template."""
    data = json.dumps(template or {}, sort_keys=True, separators=(",", ":")).encode()
    if collision_count is not None:
        data += struct.pack("<I", collision_count & 0xFFFFFFFF) + b"\0\0\0\0"
    return _safe_encode(str(_fnv32a(data)))


def _without_hash(template: dict) -> dict:
    t = json.loads(json.dumps(template or {}))
    md = t.setdefault("metadata", {})
    labels = dict(md.get("labels") or {})
    labels.pop(HASH_LABEL, None)
    if labels:
        md["labels"] = labels
    else:
        md.pop("labels", None)
    for k in [k for k, v in md.items() if v in ({}, [], None, "")]:
        md.pop(k)
    if not md:
        t.pop("metadata")
    return t


def equal_ignore_hash(t1: dict, t2: dict) -> bool:
    return _without_hash(t1) == _without_hash(t2)


# ---------------------------------------------------------------- revisions and annotations

def revision(rs: dict) -> int:
    try:
        return int(annotations_of(rs).get(REVISION, "0"))
    except ValueError:
        return 0


def max_revision(rss) -> int:
    return max((revision(rs) for rs in rss), default=0)


def last_revision(rss) -> int:
    """The second highest revision (the one `rollout undo` goes back to)."""
    revs = sorted({revision(rs) for rs in rss}, reverse=True)
    return revs[1] if len(revs) > 1 else 0


def set_replicas_annotations(rs: dict, desired: int, maximum: int) -> bool:
    ann = rs["metadata"].setdefault("annotations", {})
    changed = False
    for k, v in ((DESIRED_REPLICAS, str(desired)), (MAX_REPLICAS, str(maximum))):
        if ann.get(k) != v:
            ann[k] = v
            changed = True
    return changed


def replicas_annotations_need_update(rs: dict, desired: int, maximum: int) -> bool:
    ann = annotations_of(rs)
    return ann.get(DESIRED_REPLICAS) != str(desired) or ann.get(MAX_REPLICAS) != str(maximum)


def set_new_rs_annotations(d: dict, rs: dict, new_revision: int, exists: bool) -> bool:
    """Copy the Deployment's annotations, raise the revision (keeping the history of a rollback),
    and on creation set the replica annotations. Returns whether anything changed."""
    ann = rs["metadata"].setdefault("annotations", {})
    changed = False
    for k, v in annotations_of(d).items():
        if k not in _SKIP_COPY and ann.get(k) != v:
            ann[k] = v
            changed = True
    old = ann.get(REVISION)
    old_int = int(old) if old and old.isdigit() else 0
    if old_int < new_revision:
        ann[REVISION] = str(new_revision)
        changed = True
        if old:
            hist = ann.get(REVISION_HISTORY)
            ann[REVISION_HISTORY] = f"{hist},{old}" if hist else old
    if not exists and set_replicas_annotations(rs, replicas(d), replicas(d) + max_surge(d)):
        changed = True
    return changed


# ---------------------------------------------------------------- ReplicaSet sets

def by_creation(rss):
    return sorted(rss, key=lambda r: (r["metadata"].get("creationTimestamp", ""), r["metadata"]["name"]))


def active(rss):
    return [rs for rs in rss if rs is not None and replicas(rs) > 0]


def find_active_or_latest(new_rs, old_rss):
    if new_rs is None and not old_rss:
        return None
    olds = list(reversed(by_creation(old_rss)))
    alive = active(olds + [new_rs])
    if not alive:
        return new_rs if new_rs is not None else olds[0]
    return alive[0] if len(alive) == 1 else None


def is_saturated(d: dict, rs) -> bool:
    if rs is None:
        return False
    desired = annotations_of(rs).get(DESIRED_REPLICAS)
    if desired is None or not desired.lstrip("-").isdigit():
        return False
    n = replicas(d)
    return replicas(rs) == n and int(desired) == n and rs_status(rs, "availableReplicas") == n


def _round_half_away(x: float) -> int:
    return int(x + 0.5) if x >= 0 else -int(-x + 0.5)


def rs_fraction(rs: dict, d: dict) -> int:
    if replicas(d) == 0:
        return -replicas(rs)
    deployment_replicas = replicas(d) + max_surge(d)
    ann = annotations_of(rs).get(MAX_REPLICAS)
    annotated = int(ann) if ann and ann.isdigit() else rs_status(d, "replicas")
    return _round_half_away(replicas(rs) * deployment_replicas / annotated) - replicas(rs)


def get_proportion(rs, d: dict, to_add: int, added: int) -> int:
    if rs is None or replicas(rs) == 0 or to_add == 0 or to_add == added:
        return 0
    fraction = rs_fraction(rs, d)
    allowed = to_add - added
    return min(fraction, allowed) if to_add > 0 else max(fraction, allowed)


# ---------------------------------------------------------------- conditions and status

def condition(ctype: str, status: str, reason: str, message: str, now: float) -> dict:
    t = fmt_time(now)
    return {"type": ctype, "status": status, "lastUpdateTime": t, "lastTransitionTime": t,
            "reason": reason, "message": message}


def get_cond(status: dict, ctype: str) -> dict | None:
    for c in status.get("conditions") or []:
        if c.get("type") == ctype:
            return c
    return None


def set_cond(status: dict, cond: dict) -> None:
    """Kubernetes' SetDeploymentCondition: same status and reason -> unchanged; same status ->
    keep lastTransitionTime; the condition moves to the end of the list."""
    cur = get_cond(status, cond["type"])
    if cur and cur["status"] == cond["status"] and cur.get("reason") == cond.get("reason"):
        return
    if cur and cur["status"] == cond["status"]:
        cond = dict(cond, lastTransitionTime=cur["lastTransitionTime"])
    status["conditions"] = [c for c in status.get("conditions") or [] if c["type"] != cond["type"]] + [cond]


def remove_cond(status: dict, ctype: str) -> None:
    conds = [c for c in status.get("conditions") or [] if c["type"] != ctype]
    if conds:
        status["conditions"] = conds
    else:
        status.pop("conditions", None)


def calculate_status(all_rss, new_rs, d: dict, now: float) -> dict:
    rss = [rs for rs in all_rss if rs is not None]
    available = sum(rs_status(rs, "availableReplicas") for rs in rss)
    total = sum(replicas(rs) for rs in rss)
    status = {
        "observedGeneration": d["metadata"].get("generation", 1),
        "replicas": sum(rs_status(rs, "replicas") for rs in rss),
        "updatedReplicas": rs_status(new_rs, "replicas"),
        "readyReplicas": sum(rs_status(rs, "readyReplicas") for rs in rss),
        "availableReplicas": available,
        "unavailableReplicas": max(0, total - available),
    }
    old = d.get("status") or {}
    if old.get("collisionCount") is not None:
        status["collisionCount"] = old["collisionCount"]
    if old.get("conditions"):
        status["conditions"] = json.loads(json.dumps(old["conditions"]))
    if available >= replicas(d) - max_unavailable(d):
        set_cond(status, condition("Available", "True", MIN_AVAILABLE, "Deployment has minimum availability.", now))
    else:
        set_cond(status, condition("Available", "False", MIN_UNAVAILABLE,
                                   "Deployment does not have minimum availability.", now))
    return status


def deployment_complete(d: dict, status: dict) -> bool:
    n = replicas(d)
    return (status.get("updatedReplicas", 0) == n and status.get("replicas", 0) == n
            and status.get("availableReplicas", 0) == n
            and status.get("observedGeneration", 0) >= d["metadata"].get("generation", 1))


def deployment_progressing(d: dict, new: dict) -> bool:
    old = d.get("status") or {}
    g = lambda s, f: int(s.get(f) or 0)  # noqa: E731
    return (g(new, "updatedReplicas") > g(old, "updatedReplicas")
            or g(new, "replicas") - g(new, "updatedReplicas") < g(old, "replicas") - g(old, "updatedReplicas")
            or g(new, "readyReplicas") > g(old, "readyReplicas")
            or g(new, "availableReplicas") > g(old, "availableReplicas"))


def deployment_timed_out(d: dict, status: dict, now: float) -> bool:
    deadline = progress_deadline(d)
    if deadline is None:
        return False
    cond = get_cond(status, "Progressing")
    if cond is None or cond.get("reason") == NEW_RS_AVAILABLE:
        return False
    if cond.get("reason") == TIMED_OUT:
        return True
    return parse_time(cond["lastUpdateTime"]) + deadline < now
