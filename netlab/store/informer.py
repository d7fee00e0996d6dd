"""List, then watch: what a Kubernetes informer does, over the store interface.

``Informer(store, kinds)`` keeps a local copy of the objects of `kinds`. ``poll()`` returns the
changes since the previous call as WatchEvents in revision order (the first call lists everything
as ADDED). When the store's bounded history no longer reaches back (TooOld), it lists again and
reports the difference (ADDED / MODIFIED / DELETED), so a slow consumer (``kubectl get -w``, a
kubelet, a proxy sync) never misses the final state of an object, only intermediate ones, as with
a Kubernetes relist. ``wait_and_poll(timeout)`` blocks cheaply until something changed.
"""

from __future__ import annotations

from netlab.store.api import TooOld, WatchEvent
from netlab.store.meta import key_of


class Informer:
    def __init__(self, store, kinds):
        self.store = store
        self.kinds = tuple(kinds)
        self.objects: dict[tuple[str, str, str], dict] = {}
        self.revision: int | None = None
        self.relists = 0

    def _relist(self) -> list[WatchEvent]:
        lists, rev = self.store.list_with_revision(self.kinds)
        fresh = {key_of(o): o for objs in lists.values() for o in objs}
        events = []
        for k, o in fresh.items():
            old = self.objects.get(k)
            if old is None:
                events.append(WatchEvent("ADDED", o, int(o["metadata"]["resourceVersion"])))
            elif old["metadata"].get("resourceVersion") != o["metadata"].get("resourceVersion"):
                events.append(WatchEvent("MODIFIED", o, int(o["metadata"]["resourceVersion"])))
        for k, o in self.objects.items():
            if k not in fresh:
                events.append(WatchEvent("DELETED", o, rev))
        self.objects, self.revision = fresh, rev
        events.sort(key=lambda e: e.revision)
        return events

    def poll(self) -> list[WatchEvent]:
        if self.revision is None:
            return self._relist()
        try:
            evs = self.store.watch(self.revision)
        except TooOld:
            self.relists += 1
            return self._relist()
        out = []
        for e in evs:
            self.revision = e.revision
            if e.object.get("kind") not in self.kinds:
                continue
            k = key_of(e.object)
            if e.type == "DELETED":
                self.objects.pop(k, None)
            else:
                self.objects[k] = e.object
            out.append(e)
        return out

    def wait_and_poll(self, timeout: float) -> list[WatchEvent]:
        if self.revision is not None:
            self.store.wait(self.revision, timeout)
        return self.poll()

    def list(self, kind: str) -> list[dict]:
        return [o for k, o in sorted(self.objects.items()) if k[0] == kind]
