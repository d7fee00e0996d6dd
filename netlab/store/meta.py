"""Object helpers shared by the store and the controllers: keys, timestamps, label selectors,
owner references and conditions of Kubernetes-like objects held as plain dicts.

Objects look like what the Kubernetes API returns: ``{"apiVersion", "kind", "metadata": {...},
"spec": {...}, "status": {...}}``. Timestamps are RFC 3339 strings in UTC, whole seconds as
Kubernetes prints them (``2026-11-30T11:03:31Z``) or with microseconds when the time has a
fraction (Kubernetes' MicroTime, used for leases and the lab's sub-second clock)."""

from __future__ import annotations

import datetime as _dt
import functools
import re

# Kinds without a namespace (everything else is namespaced, "default" when none is given).
CLUSTER_SCOPED = frozenset({"Node", "Namespace", "PersistentVolume", "ClusterRole", "ClusterRoleBinding",
                            "IngressClass"})

_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)


def key_of(obj: dict) -> tuple[str, str, str]:
    """(kind, namespace, name) of an object; namespace "" for cluster-scoped kinds."""
    md = obj.get("metadata") or {}
    kind = obj.get("kind", "")
    ns = "" if kind in CLUSTER_SCOPED else (md.get("namespace") or "default")
    return kind, ns, md.get("name", "")


@functools.lru_cache(maxsize=1024)
def fmt_time(t: float) -> str:
    """RFC 3339 UTC text of a POSIX time: whole seconds without a fraction, else microseconds (remembered:
    a pass stamps thousands of objects with the same few times; and the date and time of a second are
    formatted once: the store stamps each object it creates with the clock's time of that moment)."""
    seconds, micro = divmod(round(t * 1_000_000), 1_000_000)
    whole = _fmt_second(seconds)
    return f"{whole}Z" if micro == 0 else f"{whole}.{micro:06d}Z"


@functools.lru_cache(maxsize=64)
def _fmt_second(seconds: int) -> str:
    return (_EPOCH + _dt.timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S")


_TS = re.compile(r"^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?Z$")


def parse_time(s: str | None) -> float | None:
    """POSIX time of an RFC 3339 UTC text written by fmt_time (or by Kubernetes); None stays None."""
    if not s:
        return None
    m = _TS.match(s)
    if not m:
        raise ValueError(f"not an RFC 3339 UTC time: {s!r}")
    y, mo, d, h, mi, se, frac = m.groups()
    base = _dt.datetime(int(y), int(mo), int(d), int(h), int(mi), int(se), tzinfo=_dt.timezone.utc)
    secs = (base - _EPOCH).total_seconds()
    if frac:
        secs += int(frac) / 10 ** len(frac)
    return secs


# ---------------------------------------------------------------- label selectors

_REQ = re.compile(
    r"^\s*(?:(?P<not>!)\s*(?P<nkey>[^\s=!,()]+)"
    r"|(?P<key>[^\s=!,()]+)\s*(?:(?P<op>==|=|!=)\s*(?P<val>[^\s,()]*)"
    r"|\s+(?P<setop>in|notin)\s*\((?P<vals>[^)]*)\))?)\s*$"
)


def _split_selector(text: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    for c in text:
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        if c == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += c
    if cur.strip():
        parts.append(cur)
    return parts


def parse_selector(sel) -> list[tuple[str, str, tuple[str, ...]]]:
    """Requirements (key, operator, values) of a selector given as kubectl's text
    ("app=web,tier!=db,env in (a,b),!legacy"), as a LabelSelector dict (matchLabels and
    matchExpressions with In/NotIn/Exists/DoesNotExist) or as a plain {key: value} map."""
    if sel is None:
        return []
    reqs: list[tuple[str, str, tuple[str, ...]]] = []
    if isinstance(sel, str):
        for part in _split_selector(sel):
            m = _REQ.match(part)
            if not m:
                raise ValueError(f"invalid label selector {sel!r}: cannot parse {part.strip()!r}")
            if m.group("not"):
                reqs.append((m.group("nkey"), "DoesNotExist", ()))
            elif m.group("op"):
                op = "NotIn" if m.group("op") == "!=" else "In"
                reqs.append((m.group("key"), op, (m.group("val"),)))
            elif m.group("setop"):
                vals = tuple(v.strip() for v in m.group("vals").split(",") if v.strip())
                reqs.append((m.group("key"), "In" if m.group("setop") == "in" else "NotIn", vals))
            else:
                reqs.append((m.group("key"), "Exists", ()))
        return reqs
    if "matchLabels" in sel or "matchExpressions" in sel:
        for k, v in sorted((sel.get("matchLabels") or {}).items()):
            reqs.append((k, "In", (str(v),)))
        for e in sel.get("matchExpressions") or []:
            op = e.get("operator")
            if op not in ("In", "NotIn", "Exists", "DoesNotExist"):
                raise ValueError(f"invalid label selector operator {op!r}; use In, NotIn, Exists or DoesNotExist")
            reqs.append((e["key"], op, tuple(str(v) for v in e.get("values") or ())))
        return reqs
    return [(k, "In", (str(v),)) for k, v in sorted(sel.items())]


def selector_matches(sel, labels: dict | None) -> bool:
    """True when `labels` satisfy every requirement of `sel` (an empty selector matches all)."""
    return matcher(sel)(labels)


def matcher(sel):
    """A function labels -> bool for `sel`, parsed once (for matching many objects). A selector of matchLabels
    alone (the workloads' usual one) compares its pairs directly: the ReplicaSet controller matches each of
    10,000 pods several times a round."""
    reqs = parse_selector(sel)
    if all(op == "In" and len(vals) == 1 for _, op, vals in reqs):
        pairs = tuple((key, vals[0]) for key, _, vals in reqs)

        def equal(labels: dict | None) -> bool:
            if not labels:
                return not pairs
            for key, value in pairs:
                if labels.get(key) != value:
                    return False
            return True
        return equal
    return lambda labels: _matches(reqs, labels)


def _matches(reqs, labels: dict | None) -> bool:
    labels = labels or {}
    for key, op, vals in reqs:
        if op == "In" and labels.get(key) not in vals:
            return False
        if op == "NotIn" and key in labels and labels[key] in vals:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def selector_is_empty(sel) -> bool:
    return not parse_selector(sel)


# ---------------------------------------------------------------- owners, conditions


def controller_ref(obj: dict) -> dict | None:
    """The ownerReference with controller: true, if any."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return ref
    return None


def owner_reference(owner: dict) -> dict:
    """A controller ownerReference pointing at `owner`, as Kubernetes' controllers set it."""
    md = owner["metadata"]
    return {
        "apiVersion": owner.get("apiVersion", "v1"),
        "kind": owner["kind"],
        "name": md["name"],
        "uid": md.get("uid", ""),
        "controller": True,
        "blockOwnerDeletion": True,
    }


def get_condition(obj: dict, ctype: str) -> dict | None:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == ctype:
            return c
    return None


def name_of(obj: dict) -> str:
    return (obj.get("metadata") or {}).get("name", "")


def ns_of(obj: dict) -> str:
    return key_of(obj)[1]


def labels_of(obj: dict) -> dict:
    return (obj.get("metadata") or {}).get("labels") or {}


def annotations_of(obj: dict) -> dict:
    return (obj.get("metadata") or {}).get("annotations") or {}


def is_deleting(obj: dict) -> bool:
    return bool((obj.get("metadata") or {}).get("deletionTimestamp"))
