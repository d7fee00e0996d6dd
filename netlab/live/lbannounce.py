"""MetalLB's layer-2 announcements, published by the control loop: `<lab dir>/lb/announce.json` (dir
0700, file 0600), what the speaker pods read (netlab/lb/speaker.py follows it within a fraction of a
second).

Every pass of a lab (`up`'s and the control loop's, netlab/live/sync.py) calls
`AnnouncementPublisher.publish` when the lab has MetalLB (an IPAddressPool in the store): when the
Services, pools, advertisements, Nodes, Pods or EndpointSlices moved in the store (or the LB IPs the
model gives the Services), the election is run again (netlab/lb/announce.py `decide`, pure) and the
file written only if its content changed. A Service whose announcing node is new or changed gets
MetalLB's `nodeAssigned` event ("announcing from node "N" with protocol "layer2"", from
metallb-speaker; a Warning `announceFailed` when the L2Advertisement's `interfaces` leave out the
node's eth0, the one interface a netlab node announces on), decided against the file as it was
before the write: `up`'s passes and the control
loop's publish one at a time (the lab's lock), and a restarted loop repeats no event.

MetalLB's BGP mode the same way (`BgpPublisher`): when the lab has a BGPPeer (or had one), its sessions and
routes (netlab/lb/bgpmode.py `decide`, pure) are written to `<lab dir>/lb/bgp.json` when they change, and
the BGP speakers are brought in line with them at once (netlab/dataplane/bgp.py `ensure`: BIRD's
configurations rendered again, the changed ones reloaded, speakers started or stopped): a Service, an
endpoint, a pool, a BGPPeer or a BGPAdvertisement that changes is announced or withdrawn within the pass.
A Service whose announcing nodes change gets MetalLB's `nodeAssigned` event (protocol "bgp").
"""
from __future__ import annotations

import json
import os

from ..lb.announce import KINDS, assigned_events, by_service, decide, document, failed_events, parse_document

COMPONENT = "metallb-speaker"


def announce_path(lab: str) -> str:
    from ..dataplane import layout
    return os.path.join(layout.lb_dir(lab), "announce.json")


def lb_ips_of(cluster) -> dict[str, list[str]]:
    """The LB IPs of a model's Services ("ns/name" -> IPs), as kube-proxy programs them."""
    from ..render.services import lb_status
    return {s.key: [ip for ip, _ in lb_status(s.spec)] for s in cluster.services}


def bgp_path(lab: str) -> str:
    from ..dataplane import bgp
    return bgp.lb_path(lab)


class BgpPublisher:
    def __init__(self, lab: str):
        self.lab = lab
        self.path = bgp_path(lab)
        self.seen: tuple | None = None

    def publish(self, store, lb_ips: dict[str, list[str]], cluster, now: float | None = None, tell: bool = True,
                own: set[str] | None = None, host: str | None = None) -> bool:
        """Decide MetalLB's BGP announcements if their inputs moved; write them and bring the speakers in
        line if they changed (True then). `cluster`: the model the speakers' configurations are rendered
        with (the pass's, or the last pass's between passes). `own`, `host`: an agent of a real host brings
        its own nodes' speakers in line (and the external router's on its home host), not the others';
        `tell`: MetalLB's events too (where the controllers run)."""
        from ..lb import bgpmode
        revs = (store.kind_revisions(bgpmode.KINDS), tuple(sorted((k, tuple(v)) for k, v in lb_ips.items())))
        if revs == self.seen and os.path.exists(self.path):
            return False
        if not store.snapshot(("BGPPeer",))[0].get("BGPPeer") and not os.path.exists(self.path):
            self.seen = revs
            return False   # no MetalLB BGP mode in this lab
        objs, _ = store.snapshot(bgpmode.KINDS)
        sessions, routes, _why = bgpmode.decide(objs, lb_ips)
        text = json.dumps(bgpmode.document(sessions, routes, bgpmode.accepted(objs)), indent=1, sort_keys=True) + "\n"
        from ..dataplane.state import private_dir, write_private
        private_dir(os.path.dirname(self.path))
        try:
            with open(self.path, encoding="utf-8") as f:
                old = f.read()
        except OSError:
            old = ""
        if old == text:
            self.seen = revs
            return False
        if not sessions and not objs.get("BGPPeer"):
            os.unlink(self.path)   # the last BGPPeer is gone: the speakers MetalLB needed go with the file
        else:
            write_private(self.path, text)
        from ..dataplane import bgp
        from ..dataplane.changes import Changes
        # rendered again from the file; what changed reloaded
        bgp.ensure(cluster, Changes(), own=own, router=bgp.router_here(cluster, own, host))
        self.seen = revs
        if not tell:
            return True
        try:
            before = bgpmode.parse_document(json.loads(old)) if old else bgpmode.Plan()
        except ValueError:
            before = bgpmode.Plan()
        events = bgp_assigned_events(before.routes, routes)
        if events:
            service_events(store, objs, [("Normal", *e) for e in events], now)
        return True


def bgp_assigned_events(before, after) -> list[tuple[str, str, str]]:
    """MetalLB's `nodeAssigned` events in BGP mode: (Service key, reason, message) for the Services whose
    set of announcing nodes changed (one event per newly announcing node)."""
    def nodes(routes):
        out: dict[str, set[str]] = {}
        for r in routes:
            for svc in r.services:
                out.setdefault(svc, set()).add(r.node)
        return out
    old, new = nodes(before), nodes(after)
    return [(svc, "nodeAssigned", f'announcing from node "{node}" with protocol "bgp"')
            for svc in sorted(new) for node in sorted(new[svc] - old.get(svc, set()))]


class AnnouncementPublisher:
    def __init__(self, lab: str):
        self.lab = lab
        self.path = announce_path(lab)
        self.seen: tuple | None = None

    def publish(self, store, lb_ips: dict[str, list[str]], now: float | None = None, tell: bool = True) -> bool:
        """Decide and write the announcements if what they are made of moved; True if written.
        `lb_ips`: each Service's LB IPs as the pass's model has them (`lb_ips_of`). `tell`: the events too
        (where the controllers run; another agent writes its machine's file only)."""
        revs = (store.kind_revisions(KINDS), tuple(sorted((k, tuple(v)) for k, v in lb_ips.items())))
        if revs == self.seen and os.path.exists(self.path):
            return False
        if not store.snapshot(("IPAddressPool",))[0].get("IPAddressPool") and not os.path.exists(self.path):
            self.seen = revs
            return False   # no MetalLB in this lab
        objs, _ = store.snapshot(KINDS)   # shared, read only
        announcements, _why = decide(objs, lb_ips)
        text = json.dumps(document(announcements), indent=1, sort_keys=True) + "\n"
        from ..dataplane.state import private_dir, write_private
        private_dir(os.path.dirname(self.path))   # the lab's state: root's only
        try:
            with open(self.path, encoding="utf-8") as f:
                old = f.read()   # the events are decided against it (below)
        except OSError:
            old = ""
        changed = old != text
        if changed:
            write_private(self.path, text)
        self.seen = revs
        now_map = by_service(announcements)
        # against what the file held (not this process's memory): `up`'s passes and the control loop's
        # both publish, one at a time under the lab's lock, and each change is told once
        try:
            before = parse_document(json.loads(old)) if old else []
        except ValueError:
            before = []
        events = [("Normal", *e) for e in assigned_events(by_service(before), now_map)]
        events += [("Warning", *e) for e in failed_events(before, announcements)]
        if events and tell:
            service_events(store, objs, events, now)
        return changed


def service_events(store, objs, events, now) -> None:
    """MetalLB's speaker's events on the Services: (type, Service key, reason, message)."""
    import time
    from ..controllers.base import event
    from ..controllers.runner import apply_actions
    svcs = {f"{(s['metadata'].get('namespace') or 'default')}/{s['metadata']['name']}": s
            for s in objs.get("Service") or []}
    actions = [event(svcs[key], etype, reason, message, COMPONENT)
               for etype, key, reason, message in events if key in svcs]
    if actions:
        apply_actions(store, actions, time.time() if now is None else now)
