"""Pods that end (netlab/live/podexit.py): what the kubelet reports of containers that exited, as the
pod's restartPolicy decides."""
from __future__ import annotations

import pytest

from netlab.live.podexit import Seen, phase, statuses, terminal_conditions

T = 1_800_000_000.0


def report(policy, *seen):
    names = [f"c{i}" for i in range(len(seen))]
    cs = statuses(names, dict(zip(names, seen)), policy, 0, True, {}, T)
    return cs, phase(cs, policy)


@pytest.mark.parametrize("policy,code,want_phase,state", [
    ("Never", 0, "Succeeded", "terminated"),
    ("Never", 3, "Failed", "terminated"),
    ("OnFailure", 0, "Succeeded", "terminated"),
    ("OnFailure", 1, "Running", "waiting"),      # restarted in place after its back-off
    ("Always", 0, "Running", "waiting"),
])
def test_one_container_that_exited(policy, code, want_phase, state):
    [c], got = report(policy, Seen(False, code, T - 1))
    assert got == want_phase and state in c["state"] and not c["ready"]
    if state == "terminated":
        t = c["state"]["terminated"]
        assert t["exitCode"] == code and t["reason"] == ("Completed" if code == 0 else "Error")
    else:
        assert c["state"]["waiting"]["reason"] == "CrashLoopBackOff"
        assert c["lastState"]["terminated"]["exitCode"] == code


def test_a_pod_ends_only_when_every_container_has_and_an_unknown_status_is_a_failure():
    _, got = report("Never", Seen(False, 0, T), Seen(True))
    assert got == "Running"
    cs, got = report("Never", Seen(False, 0, T), Seen(False, None, T))
    assert got == "Failed" and cs[1]["state"]["terminated"]["exitCode"] == 1


def test_a_pod_that_ended_is_not_ready():
    conds = [{"type": "Ready", "status": "True", "lastTransitionTime": "x"}, {"type": "PodScheduled", "status": "True"}]
    out = {c["type"]: c for c in terminal_conditions(conds, T)}
    assert out["Ready"]["status"] == "False" and out["Ready"]["reason"] == "PodCompleted"
    assert out["PodScheduled"]["status"] == "True"


def test_a_container_whose_supervisor_has_not_yet_written_its_exit_status_still_runs(tmp_path, monkeypatch):
    """The container's process is gone but its supervisor (a real process here) has not written the exit
    status: not a failure yet (a Job once counted such a pod failed and made another); once the supervisor
    is gone, what it wrote decides."""
    import subprocess
    from types import SimpleNamespace

    from netlab.dataplane import procs, supervise
    from netlab.live.podexit import observe
    exit_file = tmp_path / "exit"
    monkeypatch.setattr(supervise, "exit_path", lambda lab, pod, c: str(exit_file))
    pod = SimpleNamespace(commands=[("c", ["true"])], namespace="default", name="p", netns="lab-p")
    sup = subprocess.Popen(["sleep", "30"])
    try:
        rec = {"procs": {"c": {"pid": 0, "start": None, "sup": procs.record(sup.pid)}}}
        assert supervise.exit_pending(rec["procs"]["c"])
        assert observe("lab", pod, rec)["c"] == Seen(True)
    finally:
        sup.kill()
        sup.wait()
    assert not supervise.exit_pending(rec["procs"]["c"])
    assert observe("lab", pod, rec)["c"].code is None          # nothing written: unknown (a failure)
    exit_file.write_text("0\n")
    got = observe("lab", pod, rec)["c"]
    assert not got.running and got.code == 0
