"""The kubelet's termination sequence (netlab/live/terminate.py) on a fake clock, with the process side
replaced by records of what would be signalled: preStop first, SIGTERM after it (never before the
lab's drain), SIGKILL at the end of the grace period (at least 2 s after a hook), the pod removed from
the store once every container is done, and a Terminator made anew (a loop restarted) resuming from
the files without repeating a hook or a signal."""
from __future__ import annotations

import signal

import pytest

from netlab.live import terminate as tm

T0 = 1_000_000.0


class FakeStore:
    def __init__(self):
        self.deleted = []

    def delete(self, kind, ns, name, grace_seconds=None, uid=None):
        self.deleted.append((kind, ns, name, grace_seconds, uid))


def info(grace=10.0, hook=None, containers=("app",)):
    specs = {c: {"name": c, **({"lifecycle": {"preStop": hook}} if hook else {})} for c in containers}
    return tm.PodInfo("uid-1", "default/web-1", {"metadata": {"name": "web-1", "namespace": "default"}}, "10.244.1.5",
                      "nl.l.pod.default.web-1", "n1", "nl.l.node.n1", None, T0, T0 + grace,
                      {c: {"pid": 1, "start": "1"} for c in containers}, [], None, specs)


@pytest.fixture
def term(tmp_path, monkeypatch):
    sent, alive = [], {"app": True}

    def make():
        t = tm.Terminator("l", str(tmp_path / "terminating"))
        monkeypatch.setattr(t, "_running", lambda i, name, builtin: alive[name])

        def signal_(i, name, sig):
            sent.append((name, sig))
            if sig == signal.SIGKILL:
                alive[name] = False
        monkeypatch.setattr(t, "_signal", signal_)
        monkeypatch.setattr(t, "_kill_rest", lambda i: None)
        return t
    return make, sent, alive


def run(t, store, start, end, step=0.1):
    now = start
    while now <= end:
        t.tick(now, store)
        now = round(now + step, 6)


def test_no_hook_sigterm_after_the_drain_and_sigkill_at_the_grace_period(term):
    make, sent, alive = term
    t, store = make(), FakeStore()
    t.update([info(grace=5)], T0 + 0.2)
    assert [e[1:] for e in t.events] == [("Normal", "Killing", "Stopping container app")]
    run(t, store, T0 + 0.2, T0 + 1.1)
    assert sent == []                                   # the drain: not before 1 s after the rules changed
    run(t, store, T0 + 1.2, T0 + 4.9)
    assert sent == [("app", signal.SIGTERM)]
    run(t, store, T0 + 5.0, T0 + 5.1)
    assert sent == [("app", signal.SIGTERM), ("app", signal.SIGKILL)]
    assert store.deleted == [("Pod", "default", "web-1", 0, "uid-1")]
    assert not t.active()


def test_a_container_that_exits_on_sigterm_ends_the_termination_early(term):
    make, sent, alive = term
    t, store = make(), FakeStore()
    t.update([info(grace=30)], T0)
    run(t, store, T0, T0 + 1.5)
    assert sent == [("app", signal.SIGTERM)]
    alive["app"] = False
    t.tick(T0 + 1.6, store)
    assert store.deleted and sent == [("app", signal.SIGTERM)]


def test_sleep_hook_then_sigterm_then_at_least_two_seconds(term):
    make, sent, alive = term
    t, store = make(), FakeStore()
    t.update([info(grace=4, hook={"sleep": {"seconds": 3.5}})], T0)
    run(t, store, T0, T0 + 3.4)
    assert sent == []                                   # the hook runs first
    run(t, store, T0 + 3.5, T0 + 3.7)
    assert sent == [("app", signal.SIGTERM)]
    run(t, store, T0 + 3.8, T0 + 5.4)                   # the grace period is over, but a hook gets 2 s more
    assert sent == [("app", signal.SIGTERM)]
    run(t, store, T0 + 5.5, T0 + 5.7)
    assert sent[-1] == ("app", signal.SIGKILL)


def test_a_failing_exec_hook_is_an_event_and_termination_goes_on(term, monkeypatch):
    make, sent, alive = term
    t, store = make(), FakeStore()
    monkeypatch.setattr(t, "_start_hook", lambda i, name, hook, now: t.hooks.__setitem__((i.uid, name),
                                                                                        (False, "exit status 3")))
    t.update([info(grace=10, hook={"exec": {"command": ["false"]}})], T0)
    run(t, store, T0, T0 + 1.2)
    assert ("Warning", "FailedPreStopHook") in [e[1:3] for e in t.events]
    assert sent == [("app", signal.SIGTERM)]


def test_a_loop_restarted_mid_termination_resumes_from_its_files(term):
    make, sent, alive = term
    t, store = make(), FakeStore()
    t.update([info(grace=6, hook={"sleep": {"seconds": 0.5}})], T0)
    run(t, store, T0, T0 + 1.5)
    assert sent == [("app", signal.SIGTERM)]
    again = make()                                      # the loop was killed and started again
    again.update([info(grace=6, hook={"sleep": {"seconds": 0.5}})], T0 + 3)
    assert again.events == []                           # no second Killing event
    run(again, store, T0 + 3, T0 + 5.9)
    assert sent == [("app", signal.SIGTERM)]            # no second hook, no second SIGTERM
    run(again, store, T0 + 6.0, T0 + 6.2)
    assert sent[-1] == ("app", signal.SIGKILL) and store.deleted


def test_a_shorter_grace_period_brings_sigkill_forward(term):
    make, sent, alive = term
    t, store = make(), FakeStore()
    t.update([info(grace=30)], T0)
    run(t, store, T0, T0 + 2)
    assert sent == [("app", signal.SIGTERM)]
    shorter = info(grace=30)
    shorter.deadline = T0 + 3                           # delete --grace-period=1 at T0 + 2
    t.update([shorter], T0 + 2)
    run(t, store, T0 + 2.1, T0 + 3.1)
    assert sent[-1] == ("app", signal.SIGKILL)


def test_a_pod_gone_from_the_store_is_forgotten(term, tmp_path):
    make, sent, alive = term
    t = make()
    t.update([info()], T0)
    assert list((tmp_path / "terminating").iterdir())
    t.update([], T0 + 1)
    assert not t.active() and not list((tmp_path / "terminating").iterdir())
