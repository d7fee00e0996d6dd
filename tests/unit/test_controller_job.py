"""The Job and CronJob controllers with a fake clock (netlab/controllers/job.py, cronjob.py, cron.py):
pods kept active, counted, back-off, deadline, Indexed, TTL; schedules and concurrency policies."""
from __future__ import annotations

import pytest

from netlab.controllers import cron, cronjob, job as jobctl
from netlab.controllers.base import Snapshot
from netlab.controllers.kubelet import container_status
from netlab.live.objects import with_defaults
from netlab.store.meta import controller_ref, get_condition

from .ctrl_sim import T0, Sim


def job(name="pi", **spec):
    obj = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "namespace": "default"},
           "spec": {"template": {"spec": {"restartPolicy": spec.pop("restartPolicy", "Never"),
                                          "containers": [{"name": "c", "image": "busybox",
                                                          "command": ["true"]}]}}, **spec}}
    return with_defaults(obj)


def cj(name="tick", schedule="* * * * *", **spec):
    obj = {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": name, "namespace": "default"},
           "spec": {"schedule": schedule, **spec,
                    "jobTemplate": {"spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [
                        {"name": "c", "image": "busybox", "command": ["true"]}]}}}}}}
    return with_defaults(obj)


def pods_of(sim, name, phase=None):
    j = sim.get("Job", name)
    out = [p for p in sim.store.list("Pod") if (controller_ref(p) or {}).get("uid") == j["metadata"]["uid"]]
    return [p for p in out if phase is None or (p.get("status") or {}).get("phase") == phase]


def end(sim, pod, code=0):
    """The kubelet's report of a pod whose only container exited with `code` (restartPolicy Never)."""
    p = sim.store.get("Pod", "default", pod["metadata"]["name"])
    cs = container_status("c", "terminated", started_at=sim.now - 1, finished_at=sim.now, exit_code=code)
    p["status"] = dict(p.get("status") or {}, phase="Succeeded" if code == 0 else "Failed", containerStatuses=[cs])
    sim.store.update_status(p)
    sim.settle()


def active(sim, name):
    return [p for p in pods_of(sim, name) if (p.get("status") or {}).get("phase") in ("Pending", "Running")
            and not p["metadata"].get("deletionTimestamp")]


def condition(sim, name, ctype):
    c = get_condition(sim.get("Job", name), ctype)
    return c and c.get("status") == "True" and c.get("reason")


def test_selector_and_labels_are_generated_as_the_api_server_does():
    sim = Sim()
    sim.store.create(job())
    sim.tick()
    j = sim.get("Job", "pi")
    uid = j["metadata"]["uid"]
    assert j["spec"]["selector"] == {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
    [p] = pods_of(sim, "pi")
    labels = p["metadata"]["labels"]
    assert labels["batch.kubernetes.io/job-name"] == "pi" and labels["job-name"] == "pi"
    assert labels["controller-uid"] == uid and p["metadata"]["name"].startswith("pi-")


def test_parallelism_and_completions_keep_min_of_them_active_until_done():
    sim = Sim()
    sim.store.create(job(completions=5, parallelism=2))
    sim.tick()
    assert len(active(sim, "pi")) == 2
    for _ in range(2):
        for p in active(sim, "pi"):
            end(sim, p)
        sim.tick()
    # 4 succeeded: one left to run (never more than the remaining completions)
    assert len(active(sim, "pi")) == 1 and sim.get("Job", "pi")["status"]["succeeded"] == 4
    end(sim, active(sim, "pi")[0])
    sim.tick()
    st = sim.get("Job", "pi")["status"]
    assert condition(sim, "pi", "Complete") == "CompletionsReached"
    assert condition(sim, "pi", "SuccessCriteriaMet") and st["succeeded"] == 5 and st["completionTime"]
    assert not active(sim, "pi") and len(pods_of(sim, "pi")) == 5   # finished pods are kept
    assert [e["reason"] for e in sim.events("Completed")] == ["Completed"]


def test_backoff_limit_fails_the_job_after_backoff_with_a_delay_between_attempts():
    sim = Sim()
    sim.store.create(job(backoffLimit=1))
    sim.tick()
    end(sim, active(sim, "pi")[0], code=1)
    sim.tick(5)
    assert not active(sim, "pi")          # the controller's back-off: 10 s after the first failure
    wake = jobctl.next_deadline(Snapshot.from_store(sim.store, jobctl.KINDS), sim.now)
    assert wake == pytest.approx(sim.now + 5, abs=1)
    sim.tick(6)
    assert len(active(sim, "pi")) == 1
    end(sim, active(sim, "pi")[0], code=2)
    sim.tick()
    assert condition(sim, "pi", "Failed") == "BackoffLimitExceeded"
    assert condition(sim, "pi", "FailureTarget") == "BackoffLimitExceeded"
    assert sim.get("Job", "pi")["status"]["failed"] == 2
    sim.tick(60)
    assert not active(sim, "pi")


def test_on_failure_restarts_count_toward_the_backoff_limit():
    sim = Sim()
    sim.store.create(job(backoffLimit=2, restartPolicy="OnFailure"))
    sim.tick(3)   # running and ready
    [p] = active(sim, "pi")
    p = sim.store.get("Pod", "default", p["metadata"]["name"])
    p["status"]["containerStatuses"] = [container_status("c", "running", started_at=sim.now, restart_count=1)]
    sim.store.update_status(p)
    sim.tick()
    assert not condition(sim, "pi", "FailureTarget")   # one restart: below the limit of 2
    p = sim.store.get("Pod", "default", p["metadata"]["name"])
    p["status"]["containerStatuses"] = [container_status("c", "running", started_at=sim.now, restart_count=2)]
    sim.store.update_status(p)
    sim.tick()
    assert condition(sim, "pi", "FailureTarget") == "BackoffLimitExceeded"
    assert sim.get("Pod", p["metadata"]["name"])["metadata"].get("deletionTimestamp")   # its pod goes


def test_active_deadline_fails_the_job_and_deletes_its_pods():
    sim = Sim()
    sim.store.create(job(activeDeadlineSeconds=30, parallelism=2, completions=4))
    sim.tick()
    assert len(active(sim, "pi")) == 2
    sim.tick(29)
    assert not condition(sim, "pi", "FailureTarget")
    sim.tick(2)
    assert condition(sim, "pi", "FailureTarget") == "DeadlineExceeded"
    assert all(p["metadata"].get("deletionTimestamp") for p in pods_of(sim, "pi"))


def test_indexed_job_runs_every_index_once_with_its_annotation_and_env():
    sim = Sim()
    sim.store.create(job(completions=3, parallelism=3, completionMode="Indexed"))
    sim.tick()
    pods = active(sim, "pi")
    idx = sorted(int(p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]) for p in pods)
    assert idx == [0, 1, 2]
    for p in pods:
        i = p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]
        assert p["metadata"]["name"].startswith(f"pi-{i}-")
        assert {"name": "JOB_COMPLETION_INDEX", "value": i} in p["spec"]["containers"][0]["env"]
    by = {p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]: p for p in pods}
    end(sim, by["0"])
    end(sim, by["2"])
    end(sim, by["1"], code=1)
    sim.tick(11)
    assert sim.get("Job", "pi")["status"]["completedIndexes"] == "0,2"
    [again] = active(sim, "pi")
    assert again["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"] == "1"
    end(sim, again)
    sim.tick()
    assert condition(sim, "pi", "Complete") and sim.get("Job", "pi")["status"]["completedIndexes"] == "0-2"


def test_suspend_deletes_active_pods_and_resume_starts_them_again():
    sim = Sim()
    sim.store.create(job())
    sim.tick()
    j = sim.get("Job", "pi")
    j["spec"]["suspend"] = True
    sim.store.update(j)
    sim.tick()
    assert not active(sim, "pi") and condition(sim, "pi", "Suspended") == "JobSuspended"
    j = sim.get("Job", "pi")
    j["spec"]["suspend"] = False
    sim.store.update(j)
    sim.tick()
    assert len(active(sim, "pi")) == 1 and not condition(sim, "pi", "Suspended")


def test_ttl_after_finished_deletes_the_job_and_its_pods():
    sim = Sim()
    sim.store.create(job(ttlSecondsAfterFinished=20))
    sim.tick()
    end(sim, active(sim, "pi")[0])
    sim.tick()
    assert condition(sim, "pi", "Complete")
    sim.tick(15)
    assert sim.store.try_get("Job", "default", "pi") is not None
    sim.tick(10)
    assert sim.store.try_get("Job", "default", "pi") is None
    sim.tick(40)
    assert not [p for p in sim.store.list("Pod") if p["metadata"]["name"].startswith("pi-")]


# ------------------------------------------------------------------ cron

def test_cron_schedules_descriptors_time_zones_and_refusals():
    t = 1_800_000_000.0   # 2027-01-15T08:00:00Z
    assert cron.next_after("*/5 * * * *", None, t) == t + 300
    assert cron.next_after("@hourly", None, t + 1) == t + 3600
    assert cron.next_after("0 9 * * *", "Europe/Paris", t - 60) == t   # 09:00 CET is 08:00 UTC
    assert cron.next_after("0 9 * * *", "Europe/Paris", t) == t + 86400   # strictly after
    with pytest.raises(ValueError, match="use timeZone field instead"):
        cron.check("CRON_TZ=UTC * * * * *", None)
    with pytest.raises(ValueError, match="unparseable schedule"):
        cron.check("61 * * * *", None)
    with pytest.raises(ValueError, match="unknown time zone"):
        cron.check("* * * * *", "Mars/Olympus")


def cjobs(sim):
    return sorted(j["metadata"]["name"] for j in sim.store.list("Job") if not j["metadata"].get("deletionTimestamp"))


def test_cronjob_creates_a_job_named_after_the_scheduled_minute_and_wakes_at_the_next():
    sim = Sim()
    sim.clock.t = T0 + 10   # T0 is on a minute boundary
    sim.store.create(cj())
    sim.settle()
    assert cjobs(sim) == []
    assert cronjob.next_deadline(Snapshot.from_store(sim.store, cronjob.KINDS), sim.now) == T0 + 60
    sim.tick(50)
    assert cjobs(sim) == [f"tick-{int((T0 + 60) // 60)}"]
    c = sim.get("CronJob", "tick")
    assert c["status"]["lastScheduleTime"] and len(c["status"]["active"]) == 1
    j = sim.get("Job", cjobs(sim)[0])
    assert j["metadata"]["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"]
    end(sim, active(sim, j["metadata"]["name"])[0])
    sim.tick()
    c = sim.get("CronJob", "tick")
    assert "active" not in c["status"] and c["status"]["lastSuccessfulTime"]


@pytest.mark.parametrize("policy,expect", [("Allow", 2), ("Forbid", 1), ("Replace", 1)])
def test_concurrency_policies(policy, expect):
    sim = Sim()
    sim.clock.t = T0 + 10
    sim.store.create(cj(concurrencyPolicy=policy))
    sim.tick(50)
    first = cjobs(sim)
    sim.tick(60)    # the first Job still runs
    now = cjobs(sim)
    assert len(now) == expect
    if policy == "Replace":
        assert now != first
    if policy == "Forbid":
        assert now == first


def test_history_limits_and_suspend():
    sim = Sim()
    sim.clock.t = T0 + 10
    sim.store.create(cj(successfulJobsHistoryLimit=2))
    for _ in range(4):
        sim.tick(60)
        for j in cjobs(sim):
            for p in active(sim, j):
                end(sim, p)
        sim.tick()
    assert len(cjobs(sim)) == 2
    c = sim.get("CronJob", "tick")
    c["spec"]["suspend"] = True
    sim.store.update(c)
    before = cjobs(sim)
    sim.tick(180)
    assert cjobs(sim) == before


def test_starting_deadline_misses_a_late_schedule():
    sim = Sim()
    sim.clock.t = T0 + 10
    sim.store.create(cj(startingDeadlineSeconds=5))
    sim.clock.t = T0 + 70     # the loop wakes 10 s after 60: too late
    sim.settle()
    assert cjobs(sim) == []
    sim.tick(50)              # the next one is on time
    assert cjobs(sim) == [f"tick-{int((T0 + 120) // 60)}"]
