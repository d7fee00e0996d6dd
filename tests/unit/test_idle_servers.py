"""supervise.start_idle_servers: while `up` builds the pods, the nodes' built-in servers start one after the
other (each once the one before listens); once the pods are built, the others all at once. No root: the
spawning and the pidfiles are stood in for."""
from __future__ import annotations

import threading

import pytest

from netlab.dataplane import procs, supervise
from netlab.dataplane.changes import Changes
from netlab.dataplane.plan import needs_server
from netlab.errors import KernelError
from netlab.lab_spec import desired
from netlab.spec.parse import load_text


SCENARIO = """apiVersion: netlab.dev/v1alpha1
kind: Cluster
name: idle
nodes: [{role: control-plane}, {role: worker}, {role: worker}, {role: worker}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 8
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, ports: [{containerPort: 8080}]}]
"""


def _cluster():
    return desired(load_text(SCENARIO, "<test>"), {})


def _serving(cluster) -> list[str]:
    """The nodes that need a server (the control plane runs none of web's pods)."""
    return [n.name for n in cluster.nodes if needs_server(cluster, n.name)]


FORKS: list[tuple] = []   # what the fake fork server saw, in order


@pytest.fixture
def fake(monkeypatch):
    """Spawns recorded in order; a server "listens" once the test says so (its pid in `listening`)."""
    log: list[tuple[str, object]] = []
    FORKS.clear()
    listening: set[int] = set()
    dead: set[int] = set()
    pids = iter(range(1000, 2000))

    class Forks:   # the fork server, stood in for: opened and closed, recorded
        def __init__(self, netns_path, log_path, owner):
            FORKS.append(("open", owner))

        def close(self):
            FORKS.append(("close", None))

    def spawn(cluster, node, cfg_text, servers, changes, forks=None):
        pid = next(pids)
        log.append(("spawn", node.name))
        FORKS.append(("spawn", node.name, forks is not None))
        servers[node.name] = {"pid": pid, "start": "1"}
        return servers[node.name]

    def current(path, pid, gen):
        if pid in dead:
            raise KernelError(f"the built-in server (pid {pid}) died while starting")
        return pid in listening

    monkeypatch.setattr(supervise, "_spawn_server", spawn)
    monkeypatch.setattr(supervise.procs, "ServerForks", Forks)
    monkeypatch.setattr(supervise, "server_alive", lambda cluster, node, rec: False)
    monkeypatch.setattr(supervise.procs, "owned", lambda paths: {})
    monkeypatch.setattr(supervise.procs, "pidfile_current", current)
    monkeypatch.setattr(supervise, "STARTING_AT_ONCE", 1)
    return log, listening, dead


def _run(cluster, built):
    box = {}

    def target():
        try:
            box["started"] = supervise.start_idle_servers(cluster, {}, Changes(), built)
        except BaseException as e:  # noqa: BLE001 - looked at by the test
            box["error"] = e
    t = threading.Thread(target=target, daemon=True)
    t.start()
    return t, box


def _wait(cond, timeout=5.0):
    import time
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.001)


def test_while_the_pods_are_built_the_next_server_starts_once_the_one_before_listens(fake):
    log, listening, _ = fake
    cluster = _cluster()
    names = _serving(cluster)
    assert len(names) == 3
    built = threading.Event()
    t, box = _run(cluster, built)
    _wait(lambda: len(log) == 1)
    t.join(0.05)
    assert log == [("spawn", names[0])] and t.is_alive()   # the second waits for the first
    listening.add(1000)
    _wait(lambda: len(log) == 2)
    t.join(0.05)
    assert log[1] == ("spawn", names[1]) and t.is_alive()
    built.set()   # the pods are built: the rest at once, without waiting for the second to listen
    t.join(5)
    assert not t.is_alive() and "error" not in box
    assert [n for _, n in log] == names
    assert box["started"] == {name: 1000 + i for i, name in enumerate(names)}


def test_without_pods_to_wait_for_every_server_starts_at_once(fake):
    log, _, _ = fake
    cluster = _cluster()
    built = threading.Event()
    built.set()
    t, box = _run(cluster, built)
    t.join(5)
    assert [n for _, n in log] == _serving(cluster) and "error" not in box
    log.clear()
    t, box = _run(cluster, None)   # (a caller that builds no pods meanwhile)
    t.join(5)
    assert [n for _, n in log] == _serving(cluster) and "error" not in box


def test_a_server_that_dies_while_the_next_waits_for_it_is_an_error(fake):
    _, _, dead = fake
    dead.add(1000)
    t, box = _run(_cluster(), threading.Event())
    t.join(5)
    assert not t.is_alive()
    assert isinstance(box.get("error"), KernelError) and "died while starting" in str(box["error"])


def test_pidfile_current_reads_the_pid_and_generation(tmp_path, monkeypatch):
    path = str(tmp_path / "s.pid")
    monkeypatch.setattr(procs, "start_time", lambda pid: "1")
    assert not procs.pidfile_current(path, 42, None)       # not written yet, the process runs
    (tmp_path / "s.pid").write_text("42 3")
    assert procs.pidfile_current(path, 42, None) and procs.pidfile_current(path, 42, 2)
    assert not procs.pidfile_current(path, 42, 3)         # not newer than the generation given
    assert not procs.pidfile_current(path, 43, None)      # another process's
    monkeypatch.setattr(procs, "start_time", lambda pid: None)
    with pytest.raises(KernelError, match="died while starting"):
        procs.pidfile_current(path, 43, None)


def test_three_servers_or_more_are_forked_from_one_fork_server_closed_at_the_end(fake):
    cluster = _cluster()
    names = _serving(cluster)
    assert len(names) >= supervise.FORK_FROM
    t, box = _run(cluster, None)
    t.join(5)
    assert "error" not in box
    assert FORKS == [("open", "idle/netexec-forks"), *[("spawn", n, True) for n in names], ("close", None)]


def test_fewer_servers_are_started_as_interpreters_of_their_own(fake, monkeypatch):
    cluster = _cluster()
    names = _serving(cluster)
    monkeypatch.setattr(supervise, "FORK_FROM", len(names) + 1)
    t, box = _run(cluster, None)
    t.join(5)
    assert "error" not in box
    assert FORKS == [("spawn", n, False) for n in names]


def test_the_fork_server_is_closed_when_a_start_fails(fake, monkeypatch):
    cluster = _cluster()

    def broken(*a, **kw):
        FORKS.append(("spawn failed",))
        raise KernelError("cannot start")
    monkeypatch.setattr(supervise, "_spawn_server", broken)
    t, box = _run(cluster, None)
    t.join(5)
    assert isinstance(box.get("error"), KernelError)
    assert FORKS == [("open", "idle/netexec-forks"), ("spawn failed",), ("close", None)]


def test_builtin_logs_are_made_for_the_new_served_pods_only_and_kept(tmp_path, monkeypatch):
    """make_builtin_logs (up's podfiles thread): an empty 0600 log for each new pod the built-in server
    serves, where the server appends to it (workload/podconf.PodLog); an existing log keeps its lines."""
    import os
    from netlab.dataplane import layout
    monkeypatch.setattr(layout, "RUN_DIR", str(tmp_path))
    cluster = _cluster()
    keys = [p.key for p in cluster.pods]
    old = supervise.log_path(cluster.name, cluster.pods[0], layout.BUILTIN)
    os.makedirs(os.path.dirname(old))
    with open(old, "w") as f:
        f.write("listening on TCP 0.0.0.0:8080\n")
    supervise.make_builtin_logs(cluster, set(keys[:5]))
    made = sorted(os.listdir(layout.logs_dir(cluster.name)))
    assert made == sorted(os.path.basename(supervise.log_path(cluster.name, p, layout.BUILTIN))
                          for p in cluster.pods[:5])
    assert open(old).read() == "listening on TCP 0.0.0.0:8080\n"
    for p in cluster.pods[1:5]:
        path = supervise.log_path(cluster.name, p, layout.BUILTIN)
        assert os.path.getsize(path) == 0 and os.stat(path).st_mode & 0o777 == 0o600
