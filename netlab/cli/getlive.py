"""`netlab get` of what only a live lab's store has (deployments, replicasets, events) and `get -w`
(watch): kubectl's columns (netlab/controllers/printers.py), -l SELECTOR, --show-labels, -o
wide|json|yaml|name, events in time order. `get pods`, `nodes`, `services`, `endpoints` without -w
stay in get.py (they are checked against the kernel)."""
from __future__ import annotations

import signal
import time

import click

from . import kubeutil
from .kubeutil import CLUSTER_SCOPED, SINGULAR

STORE_KINDS = {"deployments": "Deployment", "replicasets": "ReplicaSet", "statefulsets": "StatefulSet",
               "daemonsets": "DaemonSet", "events": "Event",
               "pods": "Pod", "nodes": "Node", "endpointslices": "EndpointSlice", "configmaps": "ConfigMap",
               "secrets": "Secret", "serviceaccounts": "ServiceAccount", "leases": "Lease", "jobs": "Job", "cronjobs": "CronJob",
               "ipaddresspools": "IPAddressPool", "l2advertisements": "L2Advertisement",
               "bgppeers": "BGPPeer", "bgpadvertisements": "BGPAdvertisement",
               "ingresses": "Ingress", "ingressclasses": "IngressClass", "networkpolicies": "NetworkPolicy",
               "namespaces": "Namespace"}


def _wide(kind: str, obj: dict) -> list[str]:
    """kubectl's -o wide columns of deployments, replicasets, daemonsets, jobs and cronjobs: CONTAINERS, IMAGES,
    SELECTOR."""
    spec = obj.get("spec") or {}
    if kind == "CronJob":
        spec = ((spec.get("jobTemplate") or {}).get("spec")) or {}
    cs = ((spec.get("template") or {}).get("spec") or {}).get("containers") or []
    sel = (spec.get("selector") or {}).get("matchLabels") or {}
    return [",".join(c.get("name", "") for c in cs) or "<none>", ",".join(c.get("image", "") for c in cs) or "<none>",
            ",".join(f"{k}={v}" for k, v in sorted(sel.items())) or "<none>"]


def rows_of(kind: str, objs: list[dict], now: float, show_labels: bool, wide: bool, all_ns: bool) -> list[list[str]]:
    """Header and rows as kubectl prints them (objects in kubectl's order: events by time)."""
    from ..controllers import printers
    from ..store.meta import parse_time
    if kind == "Event":
        objs = sorted(objs, key=lambda e: (parse_time(e.get("lastTimestamp")) or 0,
                                           int(e["metadata"].get("resourceVersion") or 0)))
    else:
        objs = sorted(objs, key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))
    if kind in ("NetworkPolicy", "Namespace"):
        from ..controllers import printnetpol
        rows = (printnetpol.table(objs, now, show_labels) if kind == "NetworkPolicy"
                else printnetpol.namespace_table(objs, now, show_labels))
    else:
        rows = printers.table(kind, objs, now, show_labels=show_labels, wide=wide)
    if wide and kind in ("Deployment", "ReplicaSet", "DaemonSet", "Job", "CronJob"):
        at = len(printers.COLUMNS[kind][0])
        rows[0][at:at] = ["CONTAINERS", "IMAGES", "SELECTOR"]
        for r, o in zip(rows[1:], objs):
            r[at:at] = _wide(kind, o)
    if wide and kind == "StatefulSet":  # kubectl: CONTAINERS, IMAGES (no SELECTOR)
        at = len(printers.COLUMNS[kind][0])
        rows[0][at:at] = ["CONTAINERS", "IMAGES"]
        for r, o in zip(rows[1:], objs):
            r[at:at] = _wide(kind, o)[:2]
    if wide and kind in ("L2Advertisement", "BGPAdvertisement"):   # MetalLB's priority-10 column
        from ..lb.printing import L2_WIDE, l2_wide
        rows[0] += L2_WIDE
        for r, o in zip(rows[1:], objs):
            r += l2_wide(o)
    if all_ns and kind not in CLUSTER_SCOPED:
        rows[0].insert(0, "NAMESPACE")
        for r, o in zip(rows[1:], objs):
            r.insert(0, o["metadata"].get("namespace", ""))
    return rows


def _select(store, kind: str, names, namespace: str, all_ns: bool, selector: str | None,
            missing: list[str] | None = None) -> list[dict]:
    """The objects to show, in the order of `names` when given. A name not found is kubectl's NotFound line:
    raised when nothing was found (or `missing` is None), else added to `missing` (kubectl prints what it
    found, then the NotFound lines, and exits 1)."""
    ns = None if all_ns or kind in CLUSTER_SCOPED else namespace
    if kind == "Namespace":   # as the API server shows them (netlab/controllers/labeling.py)
        from ..controllers.labeling import namespaces_view
        objs = namespaces_view(store.list(kind), selector)
    else:
        objs = store.list(kind, ns, label_selector=selector or None)
    if names:
        by = {o["metadata"]["name"]: o for o in objs}
        kubeutil.not_found_names(kind, names, by, missing)
        objs = [by[n] for n in names if n in by]
    return objs


def show(kind: str, names, namespace: str, all_ns: bool, output: str | None, selector: str | None,
         show_labels: bool, lab: str | None, missing: list[str] | None = None, sink=None) -> None:
    """`get` of one store kind (see the module's docstring); `missing` as _select takes it; `sink`: where it goes
    (cli/getsink.py: one kind of several), else printed as the only kind."""
    from .. import output as out
    from ..controllers import printers
    from .getsink import Sink
    sink = sink or Sink(output, False, namespace, all_ns)
    t = kubeutil.open_target(lab)
    objs = _select(t.store, kind, names, namespace, all_ns, selector, missing)
    if output in ("json", "yaml"):
        sink.objects(objs, len(names) == 1)
    elif output == "name":
        click.echo("".join(f"{SINGULAR[kind]}/{o['metadata']['name']}\n" for o in objs), nl=False)
    elif not objs:
        sink.empty("No resources found" + ("" if all_ns or kind in CLUSTER_SCOPED else f" in {namespace} namespace")
                   + ".")
    else:
        rows = rows_of(kind, objs, time.time(), show_labels, output == "wide", all_ns)
        sink.table(printers.render([rows[0], *out.kind_named(rows[0], rows[1:])]))


class _Stop(Exception):
    pass


def watch(kinds: list[str], names, namespace: str, all_ns: bool, output: str | None, selector: str | None,
          show_labels: bool, lab: str | None, stop_after: float | None = None) -> None:
    """`get -w`: the table, then a row for every change of a listed object as the store changes
    (a deleted object's last row too), until Ctrl-C or SIGTERM (or `stop_after` seconds, for tests).
    Rows of later changes are padded to the first table's columns."""
    from .. import output as out
    from ..store import Informer
    from ..store.meta import selector_matches
    t = kubeutil.open_target(lab)
    store = t.store
    for kind in kinds:  # names that do not exist: kubectl's NotFound before watching
        _select(store, kind, names, namespace, all_ns, selector)

    def wanted(o: dict) -> bool:
        md = o.get("metadata") or {}
        return ((all_ns or o.get("kind") in CLUSTER_SCOPED or md.get("namespace", "default") == namespace)
                and (not names or md.get("name") in names)
                and (not selector or selector_matches(selector, md.get("labels"))))

    def emit(kind: str, objs: list[dict], widths: list[int] | None, header: bool) -> list[int] | None:
        if not objs and not header:
            return widths
        if output in ("json", "yaml"):
            for o in objs:
                click.echo(out.dump(o, output), nl=False)
            return widths
        if output == "name":
            for o in objs:
                click.echo(f"{SINGULAR[kind]}/{o['metadata']['name']}")
            return widths
        rows = rows_of(kind, objs, time.time(), show_labels, output == "wide", all_ns)
        if widths is None:
            n = len(rows[0])
            widths = [max(6, max(len(r[i]) for r in rows) + 3) for i in range(n - 1)]
        shown = rows if header else rows[1:]
        for r in shown:
            click.echo("".join(c.ljust(widths[i]) if i < len(widths) else c for i, c in enumerate(r)).rstrip())
        return widths

    def on_term(*_):
        raise _Stop()
    old = signal.signal(signal.SIGTERM, on_term)
    end = None if stop_after is None else time.monotonic() + stop_after
    informer = Informer(store, kinds)
    widths: dict[str, list[int] | None] = {}
    try:
        first = informer.poll()
        for kind in kinds:
            objs = [e.object for e in first if e.object.get("kind") == kind and wanted(e.object)]
            if not objs and output not in ("json", "yaml", "name"):
                click.echo("No resources found" + ("" if all_ns or kind in CLUSTER_SCOPED else f" in {namespace} namespace")
                           + ".", err=True)
                widths[kind] = None
                continue
            widths[kind] = emit(kind, objs, None, True)
        while end is None or time.monotonic() < end:
            left = 1.0 if end is None else max(0.0, min(1.0, end - time.monotonic()))
            for e in informer.wait_and_poll(left):
                o, kind = e.object, e.object.get("kind")
                if kind not in kinds or not wanted(o):
                    continue
                widths[kind] = emit(kind, [o], widths.get(kind), widths.get(kind) is None)
    except (KeyboardInterrupt, _Stop):
        pass
    finally:
        signal.signal(signal.SIGTERM, old)
