"""kubectl's tables for a live lab: columns, ages, statuses, layout."""

import pytest

from netlab.controllers.printers import human_duration, pod_status, render, table
from netlab.store.meta import fmt_time

from .ctrl_sim import Sim, deployment, service


@pytest.mark.parametrize("seconds,want", [
    (-3, "<invalid>"), (-1, "0s"), (0, "0s"), (1, "1s"), (70, "70s"), (119, "119s"), (120, "2m"),
    (190, "3m10s"), (600, "10m"), (70 * 60, "70m"), (3 * 3600, "3h"), (3 * 3600 + 600, "3h10m"),
    (47 * 3600, "47h"), (49 * 3600, "2d1h"), (48 * 3600, "2d"), ((8 * 24 + 2) * 3600, "8d"),
    (367 * 24 * 3600, "367d"), ((365 * 2 * 24 + 25) * 3600, "2y1d"), ((365 * 8 * 24 + 2) * 3600, "8y"),
])
def test_human_duration(seconds, want):
    assert human_duration(seconds) == want


def test_tables_of_a_rolled_out_deployment():
    sim = Sim(nodes=("n1", "n2"))
    sim.store.create(deployment(replicas=3))
    sim.store.create(service())
    for _ in range(4):
        sim.tick(1)
    sim.clock.t += 125
    now = sim.now
    out = render(table("Deployment", sim.store.list("Deployment"), now))
    assert out.splitlines() == ["NAME   READY   UP-TO-DATE   AVAILABLE   AGE",
                                "web    3/3     3            3           2m9s"]
    rs = sim.rss()[0]["metadata"]["name"]
    out = render(table("ReplicaSet", sim.rss(), now, show_labels=True))
    assert out.splitlines()[0].split() == ["NAME", "DESIRED", "CURRENT", "READY", "AGE", "LABELS"]
    assert out.splitlines()[1].split() == [rs, "3", "3", "3", "2m8s", f"app=web,pod-template-hash={rs[4:]}"]
    rows = table("Pod", sim.pods(), now, wide=True)
    assert rows[0] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE"]
    assert all(r[1:4] == ["0/1", "Running", "0"] or r[1:4] == ["1/1", "Running", "0"] for r in rows[1:])
    assert {r[6] for r in rows[1:]} == {"n1", "n2"}
    ev = table("Event", sim.store.list("Event"), now)
    assert ev[0] == ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    assert ev[1][2:] == ["ScalingReplicaSet", "deployment/web", f"Scaled up replica set {rs} from 0 to 3"]
    assert [r[2] for r in ev[1:]].index("SuccessfulCreate") < [r[2] for r in ev[1:]].index("Scheduled")
    nodes = table("Node", sim.store.list("Node"), now)
    assert [r[1] for r in nodes[1:]] == ["Ready", "Ready"]


def test_pod_statuses_like_kubectl():
    base = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c"}]}}
    crash = dict(base, status={"phase": "Running", "containerStatuses": [{
        "name": "c", "restartCount": 4, "ready": False, "state": {"waiting": {"reason": "CrashLoopBackOff"}},
        "lastState": {"terminated": {"exitCode": 1, "finishedAt": fmt_time(1000)}}}]})
    assert pod_status(crash) == ("CrashLoopBackOff", 0, 4, 1000)
    assert table("Pod", [crash], 1300)[1][1:4] == ["0/1", "CrashLoopBackOff", "4 (5m ago)"]
    term = dict(base, metadata={"name": "p", "deletionTimestamp": fmt_time(5)},
                status={"phase": "Running", "containerStatuses": [{"name": "c", "ready": True,
                                                                    "state": {"running": {}}}]})
    assert pod_status(term)[:2] == ("Terminating", 1)
    pending = dict(base, status={"phase": "Pending", "containerStatuses": [
        {"name": "c", "state": {"waiting": {"reason": "ContainerCreating"}}}]})
    assert pod_status(pending)[0] == "ContainerCreating"
    exited = dict(base, status={"phase": "Failed", "containerStatuses": [
        {"name": "c", "state": {"terminated": {"exitCode": 137}}}]})
    assert pod_status(exited)[0] == "ExitCode:137"


def test_describe_deployment_after_a_rollout():
    from netlab.controllers.printers import describe_deployment
    from netlab.store.events import events_for
    sim = Sim(nodes=("n1", "n2"))
    sim.store.create(deployment(replicas=2))
    for _ in range(4):
        sim.tick(1)
    sim.set_template("web", "v2")
    for _ in range(10):
        sim.tick(1)
    d = sim.get("Deployment", "web")
    out = describe_deployment(d, sim.rss(), events_for(sim.store, d), sim.now + 60).splitlines()
    old, new = sorted(sim.rss(), key=lambda r: r["metadata"]["annotations"]["deployment.kubernetes.io/revision"])
    assert out[0] == "Name:                   web"
    assert "Replicas:               2 desired | 2 updated | 2 total | 2 available | 0 unavailable" in out
    assert "RollingUpdateStrategy:  0 max unavailable, 1 max surge" in out
    assert "    Image:        v2" in out and "    Port:         8080/TCP" in out
    assert out[out.index("Conditions:") + 1].split() == ["Type", "Status", "Reason"]
    assert "  Available     True    MinimumReplicasAvailable" in out
    assert "OldReplicaSets:  <none>" in out
    assert f"NewReplicaSet:   {new['metadata']['name']} (2/2 replicas created)" in out
    ev = out[out.index("Events:") + 1:]
    assert ev[0].split() == ["Type", "Reason", "Age", "From", "Message"]
    assert ev[2].split()[:2] == ["Normal", "ScalingReplicaSet"] and "deployment-controller" in ev[2]
    assert ev[2].endswith(f"Scaled up replica set {old['metadata']['name']} from 0 to 2")
