"""A new lab's nodes, built by a child process while `up`'s controllers make and schedule its pods.

The nodes (their namespaces, eth0 on the underlay, cni0, flannel.1 with its neighbours and FDB entries,
routes, sysctls) depend on the Cluster document alone, and the controllers' work (the pods, their
scheduling) on nothing the nodes hold: the two are independent, and on a machine with two cores they can
run side by side. Not on a thread: the node work is mostly pyroute2's Python, which shares the controllers'
interpreter lock, and a thread that built them meanwhile (tried) made the controllers as much slower as it
hid. A forked process has an interpreter of its own. At 100 nodes this takes the nodes' 3 to 5 s off a
bring-up's critical path.

Only for a lab that has no namespace yet (`up` of a new lab, on one underlay, not an agent): the child
builds what `Fabric.apply` builds before the pods, from the model as it stands before the controllers run
(the Cluster document's nodes). The parent's pass takes the child's namespaces as made by itself (fresh
nodes: empty tables, no conntrack to clean) and does not read back a node whose NodeFabric its own model
still gives (reading 100 nodes back through pyroute2 costs more than building them); a node its model
wants otherwise is reconciled as any existing node. The changes are the child's records, sent back through
a pipe with the namespaces it made. An error in the child is raised in the parent; the parent removes what
the child made when its own work fails before the pass starts (`undo`), so an `up` refused there leaves the
kernel as it was. The child dies with `up` (PR_SET_PDEATHSIG): an `up` killed leaves nothing building.
"""
from __future__ import annotations

import ctypes
import dataclasses
import os
import signal

import orjson

from ..errors import KernelError
from ..model.objects import Cluster
from .changes import Change, Changes
from .forked import fork, interrupted

PR_SET_PDEATHSIG = 1   # linux/prctl.h
_libc = ctypes.CDLL(None, use_errno=True)


@dataclasses.dataclass
class Prebuilt:
    """What the child made: the lab's namespaces it created, its changes, and each node's NodeFabric it built
    from (netns -> NodeFabric: the pass reads back only a node its own model would build otherwise)."""
    made: list[str]
    changes: list[Change]
    fabrics: dict = dataclasses.field(default_factory=dict)


class NodeBuild:
    """The child building `cluster`'s underlay and nodes (started at construction)."""

    def __init__(self, cluster: Cluster):
        from .fabric import Fabric   # imported here, not in the child: an import there could wait for ever
        from .lab import lab_namespaces  # on a lock another thread of this process held at the fork
        from ..render.fabric import node_fabric
        self.lab = cluster.name
        self.result: Prebuilt | None = None
        self.fabrics = {n.netns: node_fabric(cluster, n) for n in cluster.nodes}
        self.before = set(lab_namespaces(self.lab))
        r, w = os.pipe()
        parent = os.getpid()
        pid, stop = fork()
        if pid == 0:   # the child: build, answer, and end without running the parent's cleanup
            os.close(r)
            code = 0
            try:
                # it ends with `up`: killed (SIGKILL, Ctrl-C), `up` leaves no child building on after it (a
                # `down` run next would race with it)
                if _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0 or os.getppid() != parent:
                    os._exit(1)
                changes = Changes()
                Fabric(cluster, changes, None).apply([], [])
                out = {"made": self._gained(), "changes": [dataclasses.astuple(c) for c in changes.records]}
            except BaseException as e:  # noqa: BLE001 - sent to the parent, which raises it
                out = {"made": self._gained(), "error": str(e) or type(e).__name__}
                code = 1
            try:
                data = orjson.dumps(out)
                view = memoryview(data)
                while view:
                    view = view[os.write(w, view):]
            finally:
                os._exit(code)
        os.close(w)
        self.pid, self.fd = pid, r
        if stop:   # Ctrl-C during the fork (see forked.fork): the child ended, what it made is the lab's
            self._ended()
            self.fd = None
            os.close(r)
            interrupted()

    def wait(self) -> Prebuilt:
        """The child's answer once it has ended; raises its error (KernelError), having removed what it made."""
        if self.result is not None:
            return self.result
        chunks = []
        fd, self.fd = self.fd, None
        if fd is None:   # interrupted while reading before: the child is ended, its namespaces are looked up
            return self._ended()
        try:
            with os.fdopen(fd, "rb") as f:
                chunks.append(f.read())
        except BaseException:
            self._ended()
            raise
        _, status = os.waitpid(self.pid, 0)
        try:
            out = orjson.loads(b"".join(chunks))
        except orjson.JSONDecodeError:
            out = {"made": self._gained(),
                   "error": f"the process building the nodes ended without an answer ({status:#x})"}
        made = list(out.get("made") or [])
        self.result = Prebuilt(made, [Change(*c) for c in out.get("changes") or []],
                               {k: v for k, v in self.fabrics.items() if k in made})
        if "error" in out:
            self.undo()
            raise KernelError(out["error"])
        return self.result

    def _gained(self) -> list[str]:
        """The lab's namespaces that were not there when the child started: what it made."""
        from .lab import lab_namespaces
        return sorted(set(lab_namespaces(self.lab)) - self.before)

    def _ended(self) -> Prebuilt:
        """The child killed and reaped (its answer will not come): what it made is what the lab gained."""
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            os.waitpid(self.pid, 0)
        except ChildProcessError:
            pass
        self.result = Prebuilt(self._gained(), [])
        return self.result

    def undo(self) -> None:
        """Remove what the child made (after waiting for it): the parent's work failed before its pass."""
        from .supervise import remove_namespaces
        if self.result is None:
            try:
                self.wait()
            except KernelError:
                return   # wait removed them
        remove_namespaces(self.lab, self.result.made, {}, Changes(), quiet=True)
        self.result = Prebuilt([], [])
