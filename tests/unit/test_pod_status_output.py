"""get pods -o json from container statuses, without root: kubectl's containerStatuses[].state,
lastState and the Ready/ContainersReady conditions."""
from __future__ import annotations

from netlab import output
from netlab.dataplane.status import ContainerStatus, PodStatus

from .scenarios import cluster, cluster_of, container, pod


def one(*containers: ContainerStatus, phase: str = "Running", restarts: int = 0) -> dict:
    c = cluster_of(cluster("t", nodes=[{"role": "worker", "name": "a"}]),
                   pod("p", containers=[container(x.name, command=["sleep", "1"]) for x in containers]))
    ready = sum(x.ready for x in containers)
    st = PodStatus(c.pods[0], phase, ready, len(containers), restarts, 1.0, "", list(containers))
    return output.pod_objects([st], c)[0]


def cond(obj: dict, kind: str) -> dict:
    return next(x for x in obj["status"]["conditions"] if x["type"] == kind)


def test_a_running_ready_pod():
    obj = one(ContainerStatus("c", "running", True))
    cs = obj["status"]["containerStatuses"][0]
    assert cs["ready"] is True and "running" in cs["state"] and cs["lastState"] == {}
    assert cond(obj, "Ready")["status"] == "True" and cond(obj, "ContainersReady")["status"] == "True"
    assert obj["status"]["phase"] == "Running"


def test_a_running_container_that_does_not_listen_is_not_ready():
    obj = one(ContainerStatus("c", "running", False, message="container c is not ready: nothing listens"))
    assert obj["status"]["containerStatuses"][0]["ready"] is False
    for kind in ("Ready", "ContainersReady"):
        assert cond(obj, kind) == {"type": kind, "status": "False", "reason": "ContainersNotReady",
                                   "message": "containers with unready status: [c]"}


def test_an_exited_container_is_terminated_with_its_exit_code():
    obj = one(ContainerStatus("c", "terminated", False, "Error", 3, "container c is not running (exit code 3)"),
              phase="Error")
    assert obj["status"]["containerStatuses"][0]["state"] == {
        "terminated": {"reason": "Error", "exitCode": 3, "message": "container c is not running (exit code 3)"}}
    assert obj["status"]["phase"] == "Failed" and obj["status"]["reason"] == "Error"


def test_an_unknown_exit_status_has_no_exit_code():
    obj = one(ContainerStatus("c", "terminated", False, "Error", None, "gone"), phase="Error")
    assert "exitCode" not in obj["status"]["containerStatuses"][0]["state"]["terminated"]


def test_a_completed_pod_succeeded():
    obj = one(ContainerStatus("c", "terminated", False, "Completed", 0, "exit code 0"), phase="Completed")
    assert obj["status"]["phase"] == "Succeeded"


def test_crash_loop_is_waiting_with_the_last_termination():
    obj = one(ContainerStatus("c", "waiting", False, "CrashLoopBackOff", None, "ended again", 3, "Error"),
              phase="CrashLoopBackOff", restarts=2)
    cs = obj["status"]["containerStatuses"][0]
    assert cs["state"] == {"waiting": {"reason": "CrashLoopBackOff", "message": "ended again"}}
    assert cs["lastState"] == {"terminated": {"reason": "Error", "exitCode": 3}}
    assert cs["restartCount"] == 2 and obj["status"]["phase"] == "Running"


def test_the_table_shows_ready_count_status_and_restarts():
    c = cluster_of(cluster("t", nodes=[{"role": "worker", "name": "a"}]),
                   pod("p", containers=[container("c", command=["sleep", "1"])]))
    table = output.pod_table([PodStatus(c.pods[0], "CrashLoopBackOff", 0, 1, 2, None)], False, False)
    assert table.splitlines()[1].split()[:4] == ["p", "0/1", "CrashLoopBackOff", "2"]
