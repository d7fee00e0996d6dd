"""Which node lives on which host: the placement of a lab spread over several hosts. Pure.

The Cluster document's `hosts` lists the hosts; a node names its host (`nodes[].host`) or is spread:
by count when the hosts say how many nodes each takes (`hosts[].nodes`), else round-robin (each unplaced
node, in document order, to the host with the fewest nodes so far, the first of those in the list).
The result is recorded on each node as the label `netlab.dev/host=<host>` (HOST_LABEL): a host's agent
finds its nodes by it (`nodes_of_host`).
"""
from __future__ import annotations

HOST_LABEL = "netlab.dev/host"


class PlacementError(ValueError):
    """A placement that cannot be made: (path, problem, fix) for the parser's one-line error."""

    def __init__(self, path: str, problem: str, fix: str):
        super().__init__(f"{path} {problem}; {fix}")
        self.path, self.problem, self.fix = path, problem, fix


def place(nodes: list[tuple[str, str | None]], hosts: list[tuple[str, int | None]]) -> dict[str, str]:
    """node name -> host name. `nodes`: (name, the host it names or None), in document order; `hosts`:
    (name, how many nodes it takes or None), in document order. Every named host must be in `hosts`."""
    names = [h for h, _ in hosts]
    for i, (node, host) in enumerate(nodes):
        if host is not None and host not in names:
            raise PlacementError(f"nodes[{i}].host", f"'{host}' is not a host of the lab (hosts: {', '.join(names)})",
                                 "place the node on one of them, or add the host to hosts")
    placed = {node: host for node, host in nodes if host is not None}
    load = {h: 0 for h in names}
    for host in placed.values():
        load[host] += 1
    counts = {h: n for h, n in hosts if n is not None}
    if counts:
        missing = [h for h in names if h not in counts]
        if missing:
            raise PlacementError(f"hosts[{names.index(missing[0])}].nodes", "is not set but other hosts set theirs",
                                 "give every host its node count (spread by count), or none (round-robin)")
        total = sum(counts.values())
        if total != len(nodes):
            raise PlacementError("hosts[].nodes", f"add up to {total} but the cluster has {len(nodes)} nodes",
                                 "make the hosts' node counts add up to the number of nodes")
        for h in names:
            if load[h] > counts[h]:
                raise PlacementError(f"hosts[{names.index(h)}].nodes", f"is {counts[h]} but {load[h]} nodes name "
                                     f"host '{h}'", "raise the host's count or place those nodes elsewhere")
        free = iter([h for h in names for _ in range(counts[h] - load[h])])
        for node, host in nodes:
            if host is None:
                placed[node] = next(free)
    else:
        for node, host in nodes:
            if host is None:
                best = min(names, key=lambda h: (load[h], names.index(h)))
                placed[node] = best
                load[best] += 1
    return {node: placed[node] for node, _ in nodes}


def nodes_of_host(node_labels: dict[str, dict[str, str]], host: str) -> list[str]:
    """The nodes placed on `host`, from the Node objects' labels (node name -> labels): what a host's agent
    builds and reconciles."""
    return sorted(n for n, labels in node_labels.items() if (labels or {}).get(HOST_LABEL) == host)


def segment_conflict(lab: str, hosts, others: dict, where: str) -> str | None:
    """The one line refusing lab `lab`'s hosts (a spec.types.HostsConfig) when another lab (`others`: lab
    name -> its HostsConfig) claims the same VXLAN port and VNI on the same hosts' segment: their underlays'
    traffic would mix on the wire. Emulated hosts have a segment of their own per lab: they never clash."""
    if hosts.mode != "real":
        return None
    for other in sorted(others):
        o = others[other]
        if other != lab and o.mode == "real" and o.segment.overlaps(hosts.segment) and \
                (o.port, o.vni) == (hosts.port, hosts.vni):
            return (f"{where}: hostNetwork port {hosts.port} and vni {hosts.vni} on segment {hosts.segment} are "
                    f"claimed by lab {other} (segment {o.segment}); give this lab another hostNetwork.vni or port")
    return None
