"""The process a lab's agent starts for one request of `netlab probe` on another machine
(`python -m netlab.live.probeserve LAB HOST REQUEST`, owned by `<lab>/host/<host>/probe`): it sends the
request's probes and runs its lookups from this machine's namespaces, and writes the answer (see
live/remoteprobe.py). A module of its own: it loads the lab's model (lab_spec), which the agent's loop must
not import.
"""
from __future__ import annotations

import json
import socket
import sys
import time

from . import remoteprobe as rp


def serve(lab: str, host: str, name: str) -> int:
    """The process an agent starts for one request: the probes sent from this machine, the answer written."""
    from .. import lab_spec
    from ..probe import lookup
    from ..dataplane.host import arp_limit
    from ..probe.run import ARP_WARNING, neighbour_table_fulls
    from ..probe.scheduler import run_probes
    from . import store_for
    store = store_for(lab)
    req = store.try_get("ConfigMap", rp.CONFIG_NAMESPACE, name)
    if req is None:
        return 0   # `probe` gave up and removed it
    data = req.get("data") or {}
    rid = data.get("id", "")
    machine = socket.gethostname()
    try:
        specs = rp.specs_of(lab, data)
        asked = json.loads(data.get("lookups") or "{}")
        rows = None
        if asked:   # from sources as this machine's model of the lab resolves them (the lab's own namespaces)
            cluster, _ = lab_spec.load_cluster(lab)
            rows = [row for src in asked["sources"] for row in lookup.resolve_names(cluster, asked["names"], src)]
        fulls = neighbour_table_fulls()
        t0 = time.monotonic()
        results = run_probes(specs) if specs else []
        elapsed = time.monotonic() - t0
        overflow = neighbour_table_fulls() - fulls
        warnings = [f"machine {machine}: " + ARP_WARNING.format(n=overflow, limit=arp_limit())] if overflow > 0 else []
        answer = rp.answer_object(rid, host, "done", machine, results, elapsed, warnings, rows=rows)
    except Exception as e:  # noqa: BLE001 - whatever went wrong is the answer, for `probe` to show
        answer = rp.answer_object(rid, host, "failed", machine, why=f"{type(e).__name__}: {e}")
    cur = store.try_get("ConfigMap", rp.CONFIG_NAMESPACE, rp.answer_name(rid, host))
    if store.try_get("ConfigMap", rp.CONFIG_NAMESPACE, name) is None:   # `probe` gave up meanwhile
        if cur is not None:
            store.delete("ConfigMap", rp.CONFIG_NAMESPACE, rp.answer_name(rid, host))
        return 0
    if cur is None:
        store.create(answer)
    else:
        answer["metadata"]["resourceVersion"] = cur["metadata"]["resourceVersion"]
        store.update(answer)
    return 0 if answer["data"]["state"] == "done" else 1


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 3:
        sys.stderr.write("usage: python -m netlab.live.probeserve LAB HOST REQUEST (started by a lab's agent)\n")
        return 2
    return serve(*args)


if __name__ == "__main__":
    sys.exit(main())
