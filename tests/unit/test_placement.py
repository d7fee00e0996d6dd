"""The still picture's scheduling (model/build.py): each pod on the least loaded node that fits it, the first
in the nodes' order on a tie. `_Placer` (a heap per kind of pod) must place every pod exactly where the plain
scan of every node (`_pick_node`) places it, whatever the mix of nodeSelectors, nodeNames, tolerations and
pods the previous state already placed."""
from __future__ import annotations

import random

import pytest

from netlab.model import build as buildmod
from netlab.model.build import _pick_node, build

from .scenarios import cluster, container, deployment, load, pod


def scan_placement(monkeypatch, scenario, prev=None) -> dict[str, str]:
    """The placement as the scan decides it: _Placer replaced by one that scans every node for every pod."""
    class Scan:
        def __init__(self, nodes, load):
            self.nodes, self.load = nodes, load

        def pick(self, p):
            return _pick_node(p, self.nodes, self.load)
    with monkeypatch.context() as m:
        m.setattr(buildmod, "_Placer", Scan)
        return {p.key: p.node for p in build(scenario, prev).pods}


@pytest.mark.parametrize("seed", range(12))
def test_the_heap_places_every_pod_where_the_scan_does(monkeypatch, seed):
    rng = random.Random(seed)
    zones = ["a", "b", "c"]
    nodes = [{"role": "control-plane", "name": "cp", "labels": {"zone": "a"}}] + [
        {"role": "worker", "name": f"w{i}", "labels": {"zone": rng.choice(zones), **({"ssd": "yes"} if rng.random() < 0.4 else {})}}
        for i in range(rng.randint(2, 9))]
    docs = [cluster(nodes=nodes)]
    for d in range(rng.randint(1, 4)):
        spec = {}
        roll = rng.random()
        if roll < 0.3:
            spec["nodeSelector"] = {"zone": rng.choice([n["labels"]["zone"] for n in nodes[1:]])}
        elif roll < 0.45:
            spec["nodeSelector"] = {"ssd": "yes"} if any("ssd" in n["labels"] for n in nodes) else {}
        if rng.random() < 0.3:
            spec["tolerations"] = [{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists",
                                    "effect": "NoSchedule"}]
        docs.append(deployment(f"d{d}", replicas=rng.randint(1, 40), **spec))
    for i in range(rng.randint(0, 5)):   # pods pinned by nodeName in between
        docs.append(pod(f"pinned{i}", nodeName=rng.choice(nodes)["name"], containers=[container()]))
    scenario = load(*docs)
    first = build(scenario)
    assert {p.key: p.node for p in first.pods} == scan_placement(monkeypatch, scenario)
    # again with part of the pods where an earlier run put them (the previous state)
    prev = {"pods": {p.key: {"node": p.node} for p in first.pods if rng.random() < 0.5}}
    again = build(load(*docs), prev)
    assert {p.key: p.node for p in again.pods} == scan_placement(monkeypatch, load(*docs), prev)


def test_spread_and_refusals_are_as_before():
    c = build(load(cluster(nodes=["control-plane", "worker", "worker", "worker"]), deployment("web", replicas=7)))
    per = {}
    for p in c.pods:
        per[p.node] = per.get(p.node, 0) + 1
    assert sorted(per.values()) == [2, 2, 3] and "cp" not in "".join(per)   # spread, control plane left out
    with pytest.raises(Exception, match="matches no node"):
        build(load(cluster(nodes=["control-plane", "worker"]), deployment("web", replicas=2, nodeSelector={"x": "y"})))
