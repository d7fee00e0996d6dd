"""The kubelet's decisions: probe thresholds and gating, restart back-off, statuses, termination."""

import pytest

from netlab.controllers.kubelet import (BackOff, Prober, container_status, killing_event, pod_conditions,
                                        pod_phase, probe_event, should_restart, termination_times)
from netlab.controllers.printers import pod_status


def run(prober, results, start=0.0):
    """Feed results at each due time; return the settled result after each."""
    out, t = [], start
    for ok in results:
        t = max(t, prober.next_at)
        assert prober.due(t)
        prober.record(ok, t)
        out.append(prober.result)
    return out


def test_readiness_thresholds_and_period():
    p = Prober("readiness", {"periodSeconds": 2, "successThreshold": 2, "failureThreshold": 3,
                             "initialDelaySeconds": 5}, started_at=100.0)
    assert p.result is False and not p.due(104.9) and p.due(105)
    assert run(p, [True, True, False, False, True, False, False, False]) == [
        False, True, True, True, True, True, True, False]
    assert p.next_at == 105 + 8 * 2


def test_liveness_failure_holds_the_worker_until_a_new_container():
    p = Prober("liveness", {"failureThreshold": 2}, started_at=0.0)
    assert p.result is True
    assert run(p, [False, True, False, False]) == [True, True, True, False]
    assert p.on_hold and not p.due(1000)
    assert killing_event("app", "liveness") == ("Normal", "Killing", "Container app failed liveness probe, will be restarted")
    assert probe_event("liveness", "app", "HTTP probe failed with statuscode: 500") == (
        "Warning", "Unhealthy", "Liveness probe failed: HTTP probe failed with statuscode: 500")


def test_startup_probe_gates_the_others():
    s = Prober("startup", {"periodSeconds": 1, "failureThreshold": 30}, started_at=0.0)
    r = Prober("readiness", {"periodSeconds": 1}, started_at=0.0)
    assert s.result is None
    assert s.due(0, started=False) and not r.due(0, started=False)
    s.record(True, 0)
    assert s.result is True and s.on_hold
    assert r.due(1, started=True) and not s.due(1, started=True)


def test_terminating_pod_keeps_readiness_probing():
    live, ready = Prober("liveness", {}, 0.0), Prober("readiness", {}, 0.0)
    live.terminating()
    ready.terminating()
    assert live.result is True and live.on_hold
    assert ready.due(10) and not ready.on_hold


def test_backoff_sequence_cap_and_reset():
    b = BackOff()
    finished, waits = 0.0, []
    for _ in range(9):
        at = b.restart_at(finished)
        waits.append(at - finished)
        b.restarted(finished, at)
        finished = at + 1  # crashes one second after each start
    assert waits == [0, 10, 20, 40, 80, 160, 300, 300, 300]
    assert b.waiting_message("app", "web-1", "default", "u1") == (
        "back-off 300s restarting failed container=app pod=web-1_default(u1)")
    # a container that ran for more than 10 minutes since its last restart starts over
    finished = b.last_update + 601
    assert b.restart_at(finished) == finished
    b.restarted(finished, finished)
    assert b.restart_at(finished + 5) == finished + 15


@pytest.mark.parametrize("policy,code,want", [("Always", 0, True), ("Always", 1, True), ("OnFailure", 0, False),
                                              ("OnFailure", 2, True), ("Never", 1, False), ("", 0, True)])
def test_restart_policy(policy, code, want):
    assert should_restart(policy, code) is want


def test_termination_times():
    assert termination_times(100, 30) == (100, 130)
    assert termination_times(100, 30, prestop_seconds=5) == (105, 130)
    assert termination_times(100, 30, prestop_seconds=40) == (130, 132)  # preStop overran: 2 s more
    assert termination_times(100, 0) == (100, 100)


def test_statuses_phases_and_conditions():
    crash = container_status("app", "waiting", waiting_reason="CrashLoopBackOff", restart_count=3,
                             last_terminated={"exitCode": 1, "reason": "Error", "finishedAt": "1970-01-01T00:01:40Z"})
    pod = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "app"}]},
           "status": {"phase": pod_phase([crash], "Always"), "containerStatuses": [crash]}}
    assert pod["status"]["phase"] == "Running"
    assert pod_status(pod)[:3] == ("CrashLoopBackOff", 0, 3)
    running = container_status("app", "running", started_at=10, ready=True, started=True)
    assert pod_phase([container_status("app", "waiting")], "Always") == "Pending"
    assert pod_phase([running], "Always") == "Running"
    done = container_status("app", "terminated", started_at=1, finished_at=2, exit_code=0)
    failed = container_status("app", "terminated", started_at=1, finished_at=2, exit_code=1)
    assert pod_phase([done], "Never") == "Succeeded" and pod_phase([failed], "Never") == "Failed"
    assert pod_phase([failed], "OnFailure") == "Running" and pod_phase([done], "OnFailure") == "Succeeded"
    conds = pod_conditions([running], 50)
    assert [(c["type"], c["status"]) for c in conds] == [("Initialized", "True"), ("ContainersReady", "True"),
                                                        ("Ready", "True")]
    later = pod_conditions([dict(running, ready=False)], 60, conds)
    ready = [c for c in later if c["type"] == "Ready"][0]
    assert ready["status"] == "False" and ready["lastTransitionTime"] == "1970-01-01T00:01:00Z"
    assert ready["message"] == "containers with unready status: [app]"
    assert [c for c in later if c["type"] == "Initialized"][0]["lastTransitionTime"] == "1970-01-01T00:00:50Z"
