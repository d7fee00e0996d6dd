"""live/remoteprobe.py: `netlab probe` of a lab on real hosts sends the checks that start on another machine's
host to that host's agent through the store, and judges what comes back with its own checks."""
import json
import random
import threading
from collections import Counter
from types import SimpleNamespace

import pytest

from netlab.errors import UsageError
from netlab.live import probeserve
from netlab.live import remoteprobe as rp
from netlab.probe.plan import Check, Source
from netlab.probe.spec import ProbeResult, ProbeSpec
from netlab.store import MemoryStore


def _spec(netns="nl.lab.pod.default.web-1", dst="10.244.1.5", port=8080, kind="http"):
    return ProbeSpec(netns, kind, dst, port, label="x")


def test_a_request_carries_its_probes_packed_and_refuses_what_one_etcd_write_cannot_hold():
    specs = [_spec(dst=f"10.244.1.{i}") for i in range(1, 200)]
    obj = rp.request_object("ab12", "b", specs, "m1", "2026-12-02T00:00:00Z")
    assert obj["metadata"] == {"name": "netlab-probe-ab12-to-b", "namespace": "kube-system",
                               "labels": {"netlab.dev/probe": "true"}}
    data = obj["data"]
    assert (data["host"], data["probes"], data["requestedBy"]) == ("b", "199", "m1")
    assert rp.specs_of("lab", data) == specs
    assert len(data["specs"]) < 200 * 20   # compressed: far less than the JSON of 199 probes
    rnd = random.Random(7)
    many = [_spec(netns=f"nl.lab.pod.default.p{rnd.getrandbits(64):x}", dst=f"10.{i % 250}.{i // 250 % 250}.1")
            for i in range(100000)]
    with pytest.raises(UsageError, match=r"the 100000 probes that start on host b take \d+ bytes packed, more than"):
        rp.request_object("ab12", "b", many, "m1", "now")


@pytest.mark.parametrize("bad", [
    {"source_netns": "", "kind": "icmp", "dst": "10.0.0.1"},                     # the agent's own namespace
    {"source_netns": "nl.other.pod.default.x", "kind": "icmp", "dst": "10.0.0.1"},   # another lab's
    {"source_netns": "web", "kind": "icmp", "dst": "10.0.0.1"},                   # someone else's
    {"source_netns": "nl.lab.node.w1", "kind": "icmp", "dst": "10.0.0.1", "argv": ["sh"]},  # not a probe's field
    ["nl.lab.node.w1", "icmp", "10.0.0.1"],
])
def test_an_agent_sends_probes_only_from_its_labs_namespaces(bad):
    with pytest.raises(ValueError, match="does not start in one of lab lab's namespaces"):
        rp.specs_of("lab", {"specs": rp.pack([bad])})


def test_an_answer_gives_back_each_probes_result_in_the_requests_order():
    specs = [_spec(dst="10.244.1.5"), _spec(kind="icmp", dst="10.244.2.6", port=None)]
    results = [ProbeResult(specs[0], "reachable", 1.5, "", "web-1", "10.244.0.3", "10.244.1.5"),
               ProbeResult(specs[1], "timeout", None, "no answer in 1s")]
    data = rp.answer_object("ab12", "b", "done", "m2", results, 2.25, ["w"])["data"]
    assert (data["state"], data["machine"], data["elapsed"], data["warnings"]) == ("done", "m2", "2.250", '["w"]')
    assert rp.results_of(specs, data) == results
    with pytest.raises(ValueError, match="2 results for 3 probes"):
        rp.results_of(specs + specs[:1], data)


def _cm(name):
    return {"metadata": {"name": name, "namespace": "kube-system"}}


def test_an_agent_takes_the_requests_to_its_host_not_answered_yet_and_finds_answers_left_behind():
    cms = [_cm(n) for n in ("netlab-config", "netlab-probe-aa-to-b", "netlab-probe-aa-to-c", "netlab-probe-bb-to-b",
                            "netlab-probe-bb-from-b", "netlab-probe-cc-from-b", "netlab-probe-cc-from-c",
                            "netlab-down", "netlab-probe-dd-to-bb")]
    assert rp.pending(cms, "b") == (["netlab-probe-aa-to-b"], ["netlab-probe-cc-from-b"])
    assert rp.pending(cms, "c") == (["netlab-probe-aa-to-c"], ["netlab-probe-cc-from-c"])
    assert rp.pending(cms, "bb") == (["netlab-probe-dd-to-bb"], [])


class FakeProcess:
    def __init__(self, argv, **kw):
        self.argv, self.env, self.done = argv, kw["env"], False

    def poll(self):
        return 0 if self.done else None


def test_take_answers_running_starts_one_process_per_request_owned_by_the_lab_and_removes_stale_answers(monkeypatch):
    import subprocess
    started = []
    monkeypatch.setattr(subprocess, "Popen", lambda argv, **kw: started.append(FakeProcess(argv, **kw)) or started[-1])
    store = MemoryStore()
    store.create(rp.request_object("aa", "b", [_spec()], "m1", "now"))
    store.create(rp.request_object("aa", "c", [_spec()], "m1", "now"))
    store.create(rp.answer_object("zz", "b", "done", "m2"))   # its request is gone: removed
    running = {}
    did = rp.take(store, "lab", "b", running)
    assert did == ["netlab probe: running 1 probes asked by m1 (netlab-probe-aa-to-b)"]
    assert [p.argv[1:] for p in started] == [["-m", "netlab.live.probeserve", "lab", "b", "netlab-probe-aa-to-b"]]
    assert started[0].env["NETLAB_OWNER"] == "lab/host/b/probe"
    assert store.get("ConfigMap", "kube-system", "netlab-probe-aa-from-b")["data"]["state"] == "running"
    assert store.try_get("ConfigMap", "kube-system", "netlab-probe-zz-from-b") is None
    assert list(running) == ["netlab-probe-aa-to-b"]
    # taken once: a second look starts nothing; the process is reaped once it ended
    assert rp.take(store, "lab", "b", running) == [] and len(started) == 1
    started[0].done = True
    rp.reap(running)
    assert running == {}


def test_serve_runs_the_probes_and_writes_them_into_the_answer(monkeypatch):
    from netlab import live
    from netlab.probe import scheduler
    store = MemoryStore()
    monkeypatch.setattr(live, "store_for", lambda lab: store)
    specs = [_spec(), _spec(netns="nl.lab.node.w1", kind="icmp", port=None)]
    monkeypatch.setattr(scheduler, "run_probes",
                        lambda got: [ProbeResult(s, "reachable", 0.5, "", "web-1" if s.port else None) for s in got])
    store.create(rp.request_object("aa", "b", specs, "m1", "now"))
    store.create(rp.answer_object("aa", "b", "running", "m2"))
    assert probeserve.serve("lab", "b", "netlab-probe-aa-to-b") == 0
    data = store.get("ConfigMap", "kube-system", "netlab-probe-aa-from-b")["data"]
    assert data["state"] == "done"
    assert [(r.outcome, r.answered_by) for r in rp.results_of(specs, data)] == [("reachable", "web-1"),
                                                                               ("reachable", None)]
    # a request naming a namespace that is not the lab's: nothing sent, the answer says why
    store.create(rp.request_object("bb", "b", [_spec(netns="nl.other.node.w1")], "m1", "now"))
    assert probeserve.serve("lab", "b", "netlab-probe-bb-to-b") == 1
    data = store.get("ConfigMap", "kube-system", "netlab-probe-bb-from-b")["data"]
    assert data["state"] == "failed" and "does not start in one of lab lab's namespaces" in data["why"]
    # the request removed while the probes ran (probe gave up): the answer goes too, none is left behind
    store.create(rp.request_object("cc", "b", specs, "m1", "now"))
    store.create(rp.answer_object("cc", "b", "running", "m2"))

    def gave_up(got):
        store.delete("ConfigMap", "kube-system", "netlab-probe-cc-to-b")
        return [ProbeResult(s, "timeout", None, "") for s in got]
    monkeypatch.setattr(scheduler, "run_probes", gave_up)
    assert probeserve.serve("lab", "b", "netlab-probe-cc-to-b") == 0
    assert store.try_get("ConfigMap", "kube-system", "netlab-probe-cc-from-b") is None


def _check(node, dst, expect="reachable", backends=None):
    src = Source("pod", f"default/c-{node}", f"nl.lab.pod.default.c-{node}", node, "10.244.0.2")
    return Check("pod-pod", src, f"pod/{dst}", [_spec(netns=src.netns, dst="10.244.9.9")], expect, backends)


def _cluster(home):
    hosts = SimpleNamespace(home=SimpleNamespace(name=home))
    return SimpleNamespace(name="lab", networking=SimpleNamespace(hosts=hosts),
                           nodes=[SimpleNamespace(name="cp", host="a"), SimpleNamespace(name="w1", host="b"),
                                  SimpleNamespace(name="w2", host="c")])


def test_probe_runs_other_machines_checks_through_their_agents_and_judges_all_in_the_plans_order(monkeypatch):
    from netlab import live
    from netlab.live import agent
    from netlab.probe import run
    store = MemoryStore()
    monkeypatch.setattr(live, "store_for", lambda lab: store)
    monkeypatch.setattr(agent, "away_hosts", lambda lab, cluster: {"b", "c"})
    cluster = _cluster("b")
    ext = Check("external -> nodeport", Source("external", "external", "nl.lab.external", None, "192.168.0.2"),
                "nodeport/web", [_spec(netns="nl.lab.external")], "reachable")
    checks = [_check("w1", "x"), _check("cp", "y"), _check("w2", "z", backends={"web-1"}), _check("w1", "q"), ext]
    ran_here = []

    def local(cs):
        ran_here.extend(cs)
        return [run.judge(c, [ProbeResult(p, "reachable", 1.0, "", "web-9") for p in c.probes]) for c in cs], 0.1, []
    monkeypatch.setattr(run, "run_checks", local)

    def agents():   # b answers with its two checks' results; c's agent takes its own, and its run fails
        while store.try_get("ConfigMap", "kube-system", "netlab-probe-" + rid()[0] + "-to-b") is None:
            threading.Event().wait(0.01)
        r = rid()[0]
        specs = rp.specs_of("lab", store.get("ConfigMap", "kube-system", f"netlab-probe-{r}-to-b")["data"])
        assert len(specs) == 3 and specs[2].source_netns == "nl.lab.external"   # (the external host is on b)
        store.create(rp.answer_object(r, "b", "done", "m2", [ProbeResult(specs[0], "reachable", 2.0, "", "web-2"),
                                                             ProbeResult(specs[1], "refused", None, "RST"),
                                                             ProbeResult(specs[2], "reachable", 3.0, "", "web-3")]))
        store.create(rp.answer_object(r, "c", "failed", "m3", why="OSError: boom"))

    def rid():
        return [cm["data"]["id"] for cm in store.list("ConfigMap", "kube-system")] or ["?"]
    t = threading.Thread(target=agents)
    t.start()
    said = []
    results, _, warnings = rp.run_checks(cluster, checks, timeout=5, progress=said.append)
    t.join()
    assert ran_here == [checks[1]]
    assert [r.check for r in results] == checks
    assert [(r.outcome, r.ok, Counter(r.answered)) for r in results] == [
        ("reachable", True, Counter({"web-2": 1})), ("reachable", True, Counter({"web-9": 1})),
        ("error", False, Counter()), ("refused", False, Counter()), ("reachable", True, Counter({"web-3": 1}))]
    assert "host c's agent could not run its checks (OSError: boom)" in results[2].why
    assert warnings == ["host c's agent could not run its checks (OSError: boom)"]
    assert said[0] == "4 checks start on the hosts of other machines: their agents run them (b: 3, c: 1)"
    assert store.list("ConfigMap", "kube-system") == []   # the requests and answers are gone


def test_a_host_whose_agent_does_not_take_its_checks_has_them_failed_naming_it(monkeypatch):
    from netlab import live
    from netlab.live import agent
    from netlab.probe import run
    store = MemoryStore()
    monkeypatch.setattr(live, "store_for", lambda lab: store)
    monkeypatch.setattr(agent, "away_hosts", lambda lab, cluster: {"b"})
    monkeypatch.setattr(run, "run_checks", lambda cs: pytest.fail("nothing starts here"))
    cluster = _cluster("a")
    results, _, warnings = rp.run_checks(cluster, [_check("w1", "x")], timeout=0.3)
    why = "host b's agent did not take its checks within 0.3 s: run sudo netlab probe --lab lab on its machine"
    assert warnings == [why]
    assert results[0].outcome == "error" and not results[0].ok and why in results[0].why
    assert store.list("ConfigMap", "kube-system") == []
    # a lab not on real hosts: run here, as ever
    monkeypatch.setattr(agent, "away_hosts", lambda lab, cluster: set())
    monkeypatch.setattr(run, "run_checks", lambda cs: ("here", 0.0, []))
    assert rp.run_checks(cluster, [_check("w1", "x")]) == ("here", 0.0, [])


def test_dns_lookups_from_another_machines_pods_are_run_by_its_agent_in_the_sources_order(monkeypatch):
    from netlab import live
    from netlab.live import agent
    from netlab.probe import lookup
    store = MemoryStore()
    monkeypatch.setattr(live, "store_for", lambda lab: store)
    monkeypatch.setattr(agent, "away_hosts", lambda lab, cluster: {"b", "c"})
    srcs = [Source("pod", "default/c-w1", "nl.lab.pod.default.c-w1", "w1"),
            Source("pod", "default/c-cp", "nl.lab.pod.default.c-cp", "cp"),
            Source("pod", "kube-system/d", "nl.lab.pod.kube-system.d", "w2")]
    monkeypatch.setattr(lookup, "sources", lambda cluster, source: srcs)

    def here(cluster, got, names):
        assert got == [srcs[1]]
        return [{"source": s.label, "target": t, "ok": True, "where": "here"} for s in got for t in names]
    monkeypatch.setattr(lookup, "resolve_from", here)

    def agent_b():   # b answers; c's agent does not run
        while not store.list("ConfigMap", "kube-system"):
            threading.Event().wait(0.01)
        req = store.get("ConfigMap", "kube-system", [cm["metadata"]["name"] for cm in store.list("ConfigMap")
                                                     if cm["metadata"]["name"].endswith("-to-b")][0])
        asked = json.loads(req["data"]["lookups"])
        assert asked == {"names": ["dns/web", "dns/x.y"], "sources": ["pod/c-w1"]} and req["data"]["probes"] == "0"
        rows = [{"source": s, "target": t, "ok": True, "where": "b", "name": t[4:], "rcode": "NOERROR",
                 "answers": ["10.96.0.9"], "ms": 1.0} for s in asked["sources"] for t in asked["names"]]
        store.create(rp.answer_object(req["data"]["id"], "b", "done", "m2", [], rows=rows))
    t = threading.Thread(target=agent_b)
    t.start()
    said = []
    rows = rp.resolve_names(_cluster("a"), ["dns/web", "dns/x.y"], None, timeout=0.5, progress=said.append)
    t.join()
    assert [(r["source"], r["target"], r["ok"], r.get("where")) for r in rows] == [
        ("pod/c-w1", "dns/web", True, "b"), ("pod/c-w1", "dns/x.y", True, "b"),
        ("pod/c-cp", "dns/web", True, "here"), ("pod/c-cp", "dns/x.y", True, "here"),
        ("pod/kube-system/d", "dns/web", False, None), ("pod/kube-system/d", "dns/x.y", False, None)]
    assert rows[4]["rcode"] == ("ERROR (host c's agent did not take its checks within 0.5 s: run sudo netlab probe "
                                "--lab lab on its machine)")
    assert said[0] == "4 lookups start on the hosts of other machines: their agents run them (b: 2, c: 2)"
    assert store.list("ConfigMap", "kube-system") == []
    # a name that is no DNS name: refused before anything is asked
    from netlab.errors import SpecError
    with pytest.raises(SpecError):
        rp.resolve_names(None, ["dns/a b"], None)


def test_serve_runs_the_lookups_asked_from_its_machines_model_of_the_lab(monkeypatch):
    from netlab import lab_spec, live
    from netlab.probe import lookup
    store = MemoryStore()
    monkeypatch.setattr(live, "store_for", lambda lab: store)
    monkeypatch.setattr(lab_spec, "load_cluster", lambda lab: ("model", None))
    monkeypatch.setattr(lookup, "resolve_names", lambda cluster, names, src: [
        {"source": src, "target": n, "ok": cluster == "model"} for n in names])
    store.create(rp.request_object("aa", "b", [], "m1", "now", {"names": ["dns/web"], "sources": ["pod/c", "node/w"]}))
    assert probeserve.serve("lab", "b", "netlab-probe-aa-to-b") == 0
    data = store.get("ConfigMap", "kube-system", "netlab-probe-aa-from-b")["data"]
    assert json.loads(data["rows"]) == [{"source": "pod/c", "target": "dns/web", "ok": True},
                                        {"source": "node/w", "target": "dns/web", "ok": True}]
    assert rp.results_of([], data) == []


@pytest.mark.parametrize("value", ["0", "-1", "soon"])
def test_probe_refuses_an_agents_timeout_that_is_not_a_positive_number_before_anything_is_looked_at(value):
    import subprocess
    import sys
    r = subprocess.run([sys.executable, "-m", "netlab", "probe", "--lab", "nolab", "--agents-timeout", value],
                       capture_output=True, text=True)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "Invalid value for '--agents-timeout'" in r.stderr and "nolab" not in r.stderr, r.stderr


def test_an_answer_that_is_not_the_checks_results_fails_them_saying_so(monkeypatch):
    from netlab import live
    from netlab.live import agent
    store = MemoryStore()
    monkeypatch.setattr(live, "store_for", lambda lab: store)
    monkeypatch.setattr(agent, "away_hosts", lambda lab, cluster: {"b"})

    def agent_b():   # one result for two probes
        while not store.list("ConfigMap", "kube-system"):
            threading.Event().wait(0.01)
        rid = store.list("ConfigMap", "kube-system")[0]["data"]["id"]
        store.create(rp.answer_object(rid, "b", "done", "m2", [ProbeResult(_spec(), "reachable", 1.0, "", "w")]))
    t = threading.Thread(target=agent_b)
    t.start()
    results, _, warnings = rp.run_checks(_cluster("a"), [_check("w1", "x"), _check("w1", "y")], timeout=5)
    t.join()
    assert warnings == ["host b's agent answered what is not its checks' results (1 results for 2 probes)"]
    assert [r.outcome for r in results] == ["error", "error"] and warnings[0] in results[1].why
