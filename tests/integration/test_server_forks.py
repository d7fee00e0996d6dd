"""The nodes' built-in servers forked from one interpreter (procs.ServerForks, workload/zygote.py), on real
namespaces: each looks to the kernel as an exec'd server does (its own owner tag in /proc/PID/environ,
netexec's command line), answers curl from a pod, and the fork server is gone once `up` returns. When the
fork server cannot fork a server, that server is started as before."""
from __future__ import annotations

import os
import subprocess

from netlab.dataplane import layout, nsfs, procs, supervise
from netlab import names

SCENARIO = """
apiVersion: netlab.dev/v1alpha1
kind: Cluster
nodes: [{role: worker, name: a}, {role: worker, name: b}, {role: worker, name: c}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      topologySpreadConstraints: [{maxSkew: 1, topologyKey: kubernetes.io/hostname,
                                   whenUnsatisfiable: DoNotSchedule, labelSelector: {matchLabels: {app: web}}}]
      containers: [{name: web, ports: [{containerPort: 8080}]}]
"""


def _environ(pid: int) -> dict[str, str]:
    with open(f"/proc/{pid}/environ", "rb") as f:
        items = [i.decode() for i in f.read().split(b"\0") if i]
    return dict(i.split("=", 1) for i in items)


def _cmdline(pid: int) -> list[str]:
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return [a.decode() for a in f.read().split(b"\0") if a]


def _lab_processes(lab: str) -> dict[int, str]:
    return procs.tagged([f"{lab}/"], host=True)


def test_servers_are_forked_with_their_own_tag_and_command_line_and_serve(lab):
    lab.up(SCENARIO)
    assert supervise.FORK_FROM <= 3
    servers = {}
    for node in ("a", "b", "c"):
        pid = procs.read_pidfile(layout.server_pidfile(lab.name, node))[0]
        env = _environ(pid)
        assert env[procs.OWNER_VAR] == names.server_owner(lab.name, node)
        assert "NETLAB_ENV_ROOM" not in env   # (the fork server's padding is dropped)
        argv = _cmdline(pid)
        assert argv[1:4] == ["-S", "-m", "netlab.workload.netexec"]
        assert argv[4:] == ["--config", layout.server_config(lab.name, node),
                            "--pidfile", layout.server_pidfile(lab.name, node)]
        assert procs.in_host_netns(pid) is False
        with open(f"/proc/{pid}/environ", "rb") as f:   # forked: written over the fork server's longer block
            assert f.read().endswith(b"\0\0"), "not forked: an exec'd process's environment ends with one NUL"
        servers[node] = pid
    assert len(set(servers.values())) == 3
    # the fork server has ended: no process of the lab carries its tag
    assert names.server_forks_owner(lab.name) not in _lab_processes(lab.name).values()
    # each server answers for its pod, from another pod, with curl
    webs = sorted(lab.pods("web-"), key=lambda p: p.node)
    assert [p.node for p in webs] == ["a", "b", "c"]
    for target in webs:
        client = webs[0] if target is not webs[0] else webs[1]
        body = lab.http(("pod", client.name), target.ip, 8080, "/hostname")
        assert body == target.name
    # `down` finds and ends them by their tags
    lab.down()
    for pid in servers.values():
        assert procs.start_time(pid) is None


def test_a_server_the_fork_server_cannot_fork_is_started_as_an_interpreter_of_its_own(lab, tmp_path):
    lab.up(SCENARIO)
    node = lab.node("a")
    where = nsfs.netns_path(supervise.server_netns(lab.cluster, node))
    log = str(tmp_path / "forks.log")
    forks = procs.ServerForks(where, log, names.server_forks_owner(lab.name))
    argv = procs.netexec_argv("/nonexistent.json", str(tmp_path / "x.pid"))
    try:
        # a namespace that does not exist: refused before any fork, the fork server still answers
        assert forks.spawn(argv, "/run/netns/no-such-namespace", log, "x/y") is None
        assert forks.p is not None and forks.p.poll() is None
        # a tag too long for the room its environment has: refused, nothing forked
        assert forks.spawn(argv, where, log, "x" * 4096) is None
        # a command line that is not a built-in server's: refused, nothing forked
        assert forks.spawn(["/bin/sh", "-c", "true"], where, log, "x/y") is None
        assert forks.p is not None and forks.p.poll() is None
        kids = subprocess.run(["ps", "--ppid", str(forks.p.pid), "-o", "pid="], capture_output=True,
                              text=True).stdout.split()
        assert kids == []
    finally:
        forks.close()
    assert forks.p is None
    # and the lab's pass starts it all the same: its server is stopped, the next pass starts it again
    old = procs.read_pidfile(layout.server_pidfile(lab.name, "a"))[0]
    os.kill(old, 9)
    lab.up(SCENARIO)
    new = procs.read_pidfile(layout.server_pidfile(lab.name, "a"))[0]
    assert new != old and _environ(new)[procs.OWNER_VAR] == names.server_owner(lab.name, "a")
    with open(f"/proc/{new}/environ", "rb") as f:   # one server to start: exec'd, as before
        assert not f.read().endswith(b"\0\0")
    web = next(p for p in lab.pods("web-") if p.node == "a")
    other = next(p for p in lab.pods("web-") if p.node == "b")
    assert lab.http(("pod", other.name), web.ip, 8080, "/hostname") == web.name
    assert _cmdline(new)[3] == "netlab.workload.netexec"
