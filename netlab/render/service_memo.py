"""Per-Service memo for incremental proxy syncs: what kube-proxy's change tracking gives it. Pure.

kube-proxy's service and endpoints change trackers record which Services changed since the last sync,
and a partial sync writes only those Services' chains. Here the same effect comes from memoising: a
Service's rendered piece (its chains, rules or elements on one node) is a pure function of the Service,
its endpoints and a few node/cluster settings (the `context`), so it is kept under a content key of
exactly those inputs and reused while the key is unchanged. `ServiceMemo.changed` tells which Services
differ from the last call (to scope a diff to them), without any hint from the caller; a caller that
already knows (a control loop fed by the store's events, like kube-proxy's informers) can pass the keys
it knows changed and skip comparing the others.

The memo is an object the caller keeps (one per node and renderer, e.g. in a dataplane SyncState): a
fresh one renders everything, exactly like a render without a memo.
"""
from __future__ import annotations

from operator import attrgetter
from typing import Callable, Generic, Hashable, Iterable, Sized, TypeVar

from ..model.objects import Service

V = TypeVar("V")


_SPEC = attrgetter("namespace", "name", "type", "cluster_ip", "load_balancer_ip", "session_affinity",
                   "affinity_timeout", "external_traffic_policy", "internal_traffic_policy", "external_name")
_PORT = attrgetter("name", "port", "protocol", "node_port")
_ENDPOINT = attrgetter("ip", "port", "node", "ready", "serving", "terminating", "pod", "namespace")


def service_content(svc: Service) -> tuple:
    """Everything of a Service that a proxy renderer reads (render.services.port_info and
    categorize_endpoints, the renderers' names and hashes), as a hashable, comparable value. Built fresh on
    every call, so a Service changed in place (an endpoint turned unready) gets a different key."""
    sp = svc.spec
    return (_SPEC(sp), tuple(sp.external_ips), tuple(sorted(sp.labels.items())) if sp.labels else (),
            tuple(tuple(sorted(e.items())) for e in sp.lb_ingress), tuple(sp.source_ranges),
            sp.health_check_node_port, sp.allocate_lb_node_ports, sp.lb_class,
            svc.cluster_ip, svc.health_check_node_port, tuple(map(_PORT, svc.ports)),
            tuple((name, tuple(map(_ENDPOINT, eps))) for name, eps in svc.endpoints.items()))


class ServiceMemo(Generic[V]):
    """Service key ("ns/name") -> (content key, rendered piece) for one node and one set of settings.

    `context`: the node and cluster settings every piece depends on; when it differs from the memo's,
    everything is rendered again."""

    def __init__(self) -> None:
        self.context: Hashable = None
        self.entries: dict[str, tuple[tuple, V]] = {}
        self.rendered = 0                      # pieces rendered by the last `pieces` call (for tests, benchmarks)
        self.order: list[str] | None = None    # the keys `pieces` was last given, in order
        self.total = 0                         # for the renderer: a figure over all its Services (see users)
        self.seen_services = -1                # for the renderer: how many Services the model had then

    def reset(self, context: Hashable) -> None:
        if context != self.context:
            self.context = context
            self.entries = {}
            self.order = None

    def pieces(self, services: Iterable[Service], render: Callable[[Service], V],
               changed: Iterable[str] | None = None) -> list[V]:
        """The piece of each Service, in order: reused while its content is the same, else rendered.

        `changed`: the keys that may have changed since the last call (the others are trusted to be
        unchanged, without building their content keys; a Service added or removed belongs in it too);
        None compares every Service."""
        only = None if changed is None else set(changed)
        out, seen, self.rendered = [], set(), 0
        entries = self.entries
        order: list[str] = []
        self.order = None
        for svc in services:
            key = svc.key
            seen.add(key)
            order.append(key)
            old = entries.get(key)
            if old is not None and only is not None and key not in only:
                out.append(old[1])
                continue
            content = service_content(svc)
            if old is not None and old[0] == content:
                out.append(old[1])
                continue
            piece = render(svc)
            entries[key] = (content, piece)
            self.rendered += 1
            out.append(piece)
        if len(seen) != len(entries):
            for key in [k for k in entries if k not in seen]:
                del entries[key]
        self.order = order
        return out

    def changed(self, services: Iterable[Service], hint: Iterable[str] | None = None) -> set[str]:
        """Keys of the Services added, removed or changed since the last call, and remember them as they
        are now (no rendering: for renderers that update their own output, like nftables mode's).
        `hint` as in `pieces`; an empty hint with as many Services as remembered is taken at its word
        (a Service that came or went belongs in the hint too)."""
        only = None if hint is None else set(hint)
        out: set[str] = set()
        if only is not None and isinstance(services, Sized) and len(services) == len(self.entries):
            # none came or went: only the hinted ones are looked at (found by name first: cheaper than
            # every Service's key, ~10 ms at 10,000 Services)
            names = {k.rsplit("/", 1)[-1] for k in only}
            for svc in services:
                if svc.spec.name not in names:
                    continue
                key = svc.key
                if key not in only:
                    continue
                content = service_content(svc)
                old = self.entries.get(key)
                if old is None or old[0] != content:
                    self.entries[key] = (content, None)
                    out.add(key)
            if len(self.entries) == len(services):
                return out
            # a hinted key that is new (so another one is gone): compare everything below
        seen: set[str] = set()
        entries = self.entries
        for svc in services:
            key = svc.key
            seen.add(key)
            old = entries.get(key)
            if old is not None and only is not None and key not in only:
                continue
            content = service_content(svc)
            if old is None or old[0] != content:
                entries[key] = (content, None)
                out.add(key)
        for key in [k for k in entries if k not in seen]:
            del entries[key]
            out.add(key)
        return out
