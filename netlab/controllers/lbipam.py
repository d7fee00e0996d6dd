"""MetalLB's controller as a pure decision: LoadBalancer Services get addresses from the
IPAddressPools in metallb-system (MetalLB's controller/service.go and internal/allocator, read for
facts, written anew).

For each Service of type LoadBalancer without a spec.loadBalancerClass (MetalLB without --lb-class
leaves Services of a class to their own controller):
- the address it holds (status.loadBalancer.ingress) is kept while the configuration allows it
  (in a pool, the pool still compatible with the Service, sharing rules met, the same address and
  pool still asked for); otherwise it is cleared ("ClearAssignment") and allocated anew;
- an address is asked for with spec.loadBalancerIP or the metallb.io/loadBalancerIPs annotation
  (both refused), a pool with metallb.io/address-pool; without either the pools pinned to the
  Service by serviceAllocation (namespaces, namespaceSelectors, serviceSelectors; lowest priority
  number first, pools without a priority last) are tried, then every autoAssign pool without a
  serviceAllocation; a pool's first free address is taken (avoidBuggyIPs skips .0 and .255);
- an address is shared only between Services with the same allow-shared-ip key, no common port
  (protocol and port), and with externalTrafficPolicy Local the same selector;
- the Service gets status.loadBalancer.ingress [{ip, ipMode: VIP}] and the annotation
  metallb.universe.tf/ip-allocated-from-pool, and the event MetalLB records: IPAllocated
  'Assigned IP ["X"]', or AllocationFailed 'Failed to allocate IP for "ns/name": <why>' (the Service
  stays <pending>); a Service that is no longer a LoadBalancer loses both (its address is free);
- without any IPAddressPool MetalLB is not installed (lb.installed): nothing is done;
- an ingress entry is rewritten only when its addresses change (MetalLB rewrites [{ip}] and the API
  server defaults ipMode to VIP; an ipMode Proxy set by another writer is kept here);
- each IPAddressPool's status counts its addresses assigned and available (assignedIPv4...).
Annotations are read under MetalLB's current prefix (metallb.io/) and its older one
(metallb.universe.tf/), the current first, as MetalLB does.

MetalLB keeps its allocations in memory and rebuilds them from the Services' status when it starts;
here they are rebuilt on every decision the same way: Services holding an address first (oldest
first), then those waiting (oldest first), so assignments are stable. A failure event is not
repeated while it is the Service's latest event from this controller.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from netlab.controllers.base import Action, Snapshot, event, update, update_status
from netlab.lb import ANN_ALLOCATED_FROM, ANN_LB_IPS, METALLB_NAMESPACE
from netlab.lb.pools import Pool, ip_text, pools_of
from netlab.store.meta import is_deleting, matcher

KINDS = ("Service", "IPAddressPool", "Namespace", "Event")
LAZY = ("Event",)   # its own events (not to repeat one) are read only where MetalLB is installed
COMPONENT = "metallb-controller"
PREFIX, OLD_PREFIX = "metallb.io/", "metallb.universe.tf/"


def annotation(svc: dict, name: str) -> str:
    ann = svc["metadata"].get("annotations") or {}
    for prefix in (PREFIX, OLD_PREFIX):
        if prefix + name in ann:
            return ann[prefix + name] or ""
    return ""


def svc_key(svc: dict) -> str:
    return f"{svc['metadata'].get('namespace', 'default')}/{svc['metadata']['name']}"


def quoted(ips) -> str:
    """Go's %q of a []net.IP: ["192.0.2.1" "192.0.2.2"]."""
    return "[" + " ".join(f'"{ip_text(i)}"' for i in ips) + "]"


def ours(svc: dict) -> bool:
    spec = svc.get("spec") or {}
    return not spec.get("loadBalancerClass")


@dataclass
class Alloc:
    pool: str
    ips: tuple[int, ...]
    ports: frozenset
    sharing: str
    backend: str


class AllocError(Exception):
    pass


class Allocator:
    """MetalLB's allocator over `pools`; `namespaces`: name -> labels (for namespaceSelectors)."""

    def __init__(self, pools: list[Pool], namespaces: dict[str, dict]):
        self.pools = {p.name: p for p in pools}
        self.order = [p.name for p in pools]
        self.allocated: dict[str, Alloc] = {}
        self.on_ip: dict[int, set[str]] = {}
        self.pool_ns: dict[str, set[str]] = {}
        for p in pools:   # MetalLB: the namespaces listed, and those the namespaceSelectors match now
            ns = set(p.namespaces)
            for sel in p.namespace_selectors:
                m = matcher(sel)
                ns.update(n for n, labels in namespaces.items() if m(labels))
            self.pool_ns[p.name] = ns

    # ---- the Service's keys
    @staticmethod
    def ports(svc: dict) -> frozenset:
        return frozenset((p.get("protocol") or "TCP", p.get("port")) for p in (svc.get("spec") or {}).get("ports") or [])

    @staticmethod
    def backend(svc: dict) -> str:
        spec = svc.get("spec") or {}
        if spec.get("externalTrafficPolicy") == "Local":
            return ",".join(f"{k}={v}" for k, v in sorted((spec.get("selector") or {}).items()))
        return ""

    # ---- MetalLB's rules
    def compatible(self, p: Pool, svc: dict) -> bool:
        if not p.allocation:
            return True
        ns = self.pool_ns[p.name]
        if ns and svc["metadata"].get("namespace", "default") not in ns:
            return False
        selectors = p.service_selectors
        if not ns and not p.namespace_selectors and not selectors:
            return True   # a serviceAllocation naming nothing matches every Service
        if selectors:
            labels = svc["metadata"].get("labels") or {}
            return any(matcher(s)(labels) for s in selectors)
        return True

    def pool_for(self, ips) -> Pool | None:
        for name in self.order:
            p = self.pools[name]
            if all(p.contains(ip) for ip in ips):
                return p
        return None

    def check_sharing(self, key: str, ip: int, ports, sharing: str, backend: str) -> None:
        users = [k for k in self.on_ip.get(ip, ()) if k != key]
        if not users:
            return
        existing = self.allocated[users[0]]
        why = None
        if existing.sharing == "":
            why = "existing service does not allow sharing"
        elif sharing == "":
            why = "new service does not allow sharing"
        elif existing.sharing != sharing:
            why = f'sharing key "{sharing}" does not match existing sharing key "{existing.sharing}"'
        elif existing.backend != backend:
            why = f'backend key "{backend}" does not match existing sharing key "{existing.backend}"'
        if why is not None:
            raise AllocError(f"can't change sharing key for \"{key}\", address also in use by {','.join(sorted(users))}")
        for other in users:
            common = ports & self.allocated[other].ports
            if common:
                proto, port = sorted(common)[0]
                raise AllocError(f'port {proto}/{port} is already in use on "{ip_text(ip)}"')

    def assign(self, key: str, svc: dict, ips) -> Pool:
        pool = self.pool_for(ips)
        if pool is None:
            raise AllocError(f"{quoted(ips)} is not allowed in config")
        if not self.compatible(pool, svc):
            raise AllocError(f"pool {pool.name} not compatible for ip assignment")
        if len(ips) > 1:
            raise AllocError(f"{quoted(ips)} has the same family" if len(ips) == 2 else
                             f"more than two addresses {quoted(ips)}")
        ports, sharing, backend = self.ports(svc), annotation(svc, "allow-shared-ip"), self.backend(svc)
        for ip in ips:
            self.check_sharing(key, ip, ports, sharing, backend)
        self.unassign(key)
        self.allocated[key] = Alloc(pool.name, tuple(ips), ports, sharing, backend)
        for ip in ips:
            self.on_ip.setdefault(ip, set()).add(key)
        return pool

    def unassign(self, key: str) -> None:
        old = self.allocated.pop(key, None)
        if old is not None:
            for ip in old.ips:
                self.on_ip.get(ip, set()).discard(key)

    def first_free(self, p: Pool, key: str, svc: dict) -> int | None:
        ports, sharing, backend = self.ports(svc), annotation(svc, "allow-shared-ip"), self.backend(svc)
        for ip in p.addresses():
            try:
                self.check_sharing(key, ip, ports, sharing, backend)
            except AllocError:
                continue
            return ip
        return None

    def pinned(self, svc: dict) -> list[Pool]:
        ns = svc["metadata"].get("namespace", "default")
        out = [p for n, p in sorted(self.pools.items()) if p.allocation and ns in self.pool_ns[n]]
        out += [p for n, p in sorted(self.pools.items()) if p.allocation and (p.service_selectors or not (
            p.namespaces or p.namespace_selectors))]
        out = [p for p in out if p.auto_assign and self.compatible(p, svc)]
        # lower priority number first; pools without a priority (0) after those with one
        return sorted(out, key=lambda p: (p.priority == 0, p.priority))

    def from_pools(self, pools: list[Pool], key: str, svc: dict) -> tuple[int, ...] | None:
        for p in pools:
            ip = self.first_free(p, key, svc)
            if ip is not None:
                try:
                    self.assign(key, svc, (ip,))
                except AllocError:
                    return None
                return (ip,)
        return None

    def allocate(self, key: str, svc: dict) -> tuple[int, ...]:
        ips = self.from_pools(self.pinned(svc), key, svc)
        if ips is None:
            ips = self.from_pools([p for n, p in sorted(self.pools.items()) if p.auto_assign and not p.allocation],
                                  key, svc)
        if ips is None:
            raise AllocError("no available IPs")
        return ips

    def allocate_from_pool(self, key: str, svc: dict, name: str) -> tuple[int, ...]:
        p = self.pools.get(name)
        if p is None:
            raise AllocError(f'unknown pool "{name}"')
        ip = self.first_free(p, key, svc)
        if ip is None:
            raise AllocError(f"no available IPs in pool {name}")
        self.assign(key, svc, (ip,))
        return (ip,)


def desired_ips(svc: dict) -> tuple[int, ...]:
    """The addresses a Service asks for (spec.loadBalancerIP or the loadBalancerIPs annotation)."""
    text = annotation(svc, "loadBalancerIPs")
    ann = next((p + "loadBalancerIPs" for p in (PREFIX, OLD_PREFIX)
                if p + "loadBalancerIPs" in (svc["metadata"].get("annotations") or {})), ANN_LB_IPS)
    spec_ip = (svc.get("spec") or {}).get("loadBalancerIP") or ""
    if text and spec_ip:
        raise AllocError(f"service can not have both {ann} and svc.Spec.LoadBalancerIP")
    out = []
    if text:
        for part in text.split(","):
            try:
                out.append(int(ipaddress.IPv4Address(part.strip())))
            except ValueError:
                raise AllocError(f'invalid {ann}: "{text}"') from None
    elif spec_ip:
        try:
            out.append(int(ipaddress.IPv4Address(spec_ip)))
        except ValueError:
            raise AllocError(f'invalid spec.loadBalancerIP "{spec_ip}"') from None
    return tuple(out)


def status_ips(svc: dict) -> tuple[int, ...]:
    out = []
    for e in ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []:
        try:
            out.append(int(ipaddress.IPv4Address(e.get("ip"))))
        except (ValueError, TypeError):
            pass
    return tuple(out)


def _created(svc: dict):
    md = svc["metadata"]
    return (md.get("creationTimestamp") or "", md.get("namespace", "default"), md["name"])


def _last_events(snap: Snapshot) -> dict[str, tuple[str, str]]:
    """service uid -> (reason, message) of its latest event from this controller."""
    out: dict[str, tuple] = {}
    for e in snap.list("Event"):
        if (e.get("source") or {}).get("component") != COMPONENT:
            continue
        uid = (e.get("involvedObject") or {}).get("uid")
        order = (e.get("lastTimestamp") or "", int(e["metadata"].get("resourceVersion") or 0))
        if uid not in out or order > out[uid][0]:
            out[uid] = (order, (e.get("reason"), e.get("message")))
    return {k: v[1] for k, v in out.items()}


def decide(snap: Snapshot, now: float) -> list[Action]:
    pools = pools_of(snap.list("IPAddressPool", METALLB_NAMESPACE))
    if not pools:   # MetalLB is not installed (lb.installed): nothing here is its business
        return []
    namespaces = {n["metadata"]["name"]: n["metadata"].get("labels") or {} for n in snap.list("Namespace")}
    alloc = Allocator(pools, namespaces)
    last: dict | None = None
    actions: list[Action] = []
    results: dict[str, tuple] = {}          # key -> (ips, pool name) or None (cleared / failed)
    events: dict[str, list] = {}

    def note(svc, etype, reason, message):
        events.setdefault(svc_key(svc), []).append((etype, reason, message))

    services = [s for s in snap.list("Service") if not is_deleting(s) and ours(s)]
    lbs = sorted((s for s in services if (s.get("spec") or {}).get("type") == "LoadBalancer"), key=_created)
    waiting = []
    for svc in lbs:   # the addresses held: kept while the configuration allows them
        key, held = svc_key(svc), status_ips(svc)
        if not held:
            waiting.append(svc)
            continue
        if not pools:
            results[key] = None
            continue
        try:
            pool = alloc.assign(key, svc, held)
        except AllocError as e:
            note(svc, "Normal", "ClearAssignment", f'current IP for "{key}" not allowed by config, will attempt '
                 f"for new IP assignment: {e}")
            waiting.append(svc)
            continue
        wanted_pool = annotation(svc, "address-pool")
        try:
            wanted = desired_ips(svc)
        except AllocError as e:
            note(svc, "Warning", "LoadBalancerFailed", f"invalid requested loadbalancer IPs: {e}")
            results[key] = (held, pool.name)
            continue
        if (wanted_pool and pool.name != wanted_pool) or (wanted and sorted(wanted) != sorted(held)):
            alloc.unassign(key)
            waiting.append(svc)
            continue
        results[key] = (held, pool.name)
    for svc in sorted(waiting, key=_created):   # the rest, oldest first
        key = svc_key(svc)
        if not pools:
            results[key] = None
            continue
        try:
            wanted, wanted_pool = desired_ips(svc), annotation(svc, "address-pool")
            if wanted:
                pool = alloc.assign(key, svc, wanted)
                if wanted_pool and pool.name != wanted_pool:
                    alloc.unassign(key)
                    raise AllocError(f"requested loadBalancer IP(s) {quoted(wanted)} is not compatible with "
                                     f"requested address pool {wanted_pool}")
                ips = wanted
            elif wanted_pool:
                ips = alloc.allocate_from_pool(key, svc, wanted_pool)
            else:
                ips = alloc.allocate(key, svc)
        except AllocError as e:
            note(svc, "Warning", "AllocationFailed", f'Failed to allocate IP for "{key}": {e}')
            results[key] = None
            continue
        note(svc, "Normal", "IPAllocated", f"Assigned IP {quoted(ips)}")
        results[key] = (ips, alloc.allocated[key].pool)

    for svc in services:
        key = svc_key(svc)
        is_lb = (svc.get("spec") or {}).get("type") == "LoadBalancer"
        old_status = svc.get("status") or {}
        cur_ingress = (old_status.get("loadBalancer") or {}).get("ingress") or []
        if not is_lb and not cur_ingress and not annotation(svc, "ip-allocated-from-pool"):
            continue   # (most Services: nothing of MetalLB's on them)
        got = results.get(key) if is_lb else None
        ingress = [{"ip": ip_text(ip), "ipMode": "VIP"} for ip in got[0]] if got else []
        anns = dict(svc["metadata"].get("annotations") or {})
        for prefix in (PREFIX, OLD_PREFIX):   # MetalLB's own annotation, under whichever prefix it was
            if prefix + "ip-allocated-from-pool" != ANN_ALLOCATED_FROM:
                anns.pop(prefix + "ip-allocated-from-pool", None)
        if got:
            anns[ANN_ALLOCATED_FROM] = got[1]
        else:
            anns.pop(ANN_ALLOCATED_FROM, None)
        if anns != (svc["metadata"].get("annotations") or {}):
            md = dict(svc["metadata"], annotations=anns)
            if not anns:
                md.pop("annotations")
            actions.append(update(dict(svc, metadata=md)))
        # the addresses decide; an entry's other fields (an ipMode Proxy written by someone else) are kept
        if [e.get("ip") for e in cur_ingress] != [e["ip"] for e in ingress]:
            lb = {"ingress": ingress} if ingress else {}
            actions.append(update_status(dict(svc, status=dict(old_status, loadBalancer=lb))))
        for etype, reason, message in events.get(key, []) if is_lb else []:
            if reason in ("AllocationFailed", "LoadBalancerFailed"):
                last = _last_events(snap) if last is None else last
                if last.get(svc["metadata"].get("uid")) == (reason, message):
                    continue   # said already, and nothing since
            actions.append(event(svc, etype, reason, message, COMPONENT))
    # each pool's status: addresses assigned and available (MetalLB 0.15's IPAddressPoolStatus)
    used: dict[str, set] = {}
    for got in results.values():
        if got:
            used.setdefault(got[1], set()).update(got[0])
    by_name = {p.name: p for p in pools}
    for obj in snap.list("IPAddressPool", METALLB_NAMESPACE):
        p = by_name.get(obj["metadata"]["name"])
        if p is None:
            continue
        n = len(used.get(p.name, ()))
        status = {"assignedIPv4": n, "assignedIPv6": 0, "availableIPv4": p.size() - n, "availableIPv6": 0}
        if obj.get("status") != status:
            actions.append(update_status(dict(obj, status=status)))
    return actions
