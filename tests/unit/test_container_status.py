"""How a container's state is read from what was observed (netlab.dataplane.status), for containers
that run no command: the observation (`Builtin`: the node's server, its status file entry, the ports
listening) is given, so no root is needed."""
from __future__ import annotations

from netlab.dataplane.status import Builtin, container_statuses

from .scenarios import cluster, cluster_of, container, pod


def _statuses(c, name, view, rec=None):
    return container_statuses(c, c.pod("default", name), rec or {}, view)


def _lab():
    return cluster_of(cluster("t", nodes=[{"role": "worker", "name": "a"}]),
                      pod("plain", containers=[container("c")]), pod("web", containers=[container("w", [80])]))


def test_a_container_with_no_command_and_no_port_runs_with_its_pod_server_or_not():
    c = _lab()
    for view in (Builtin(server=False), Builtin(server=True)):
        (cs,) = _statuses(c, "plain", view)
        assert (cs.state, cs.ready) == ("running", True)


def test_a_served_container_follows_its_server_status_file_and_ports():
    c = _lab()
    (cs,) = _statuses(c, "web", Builtin(server=False))
    assert (cs.state, cs.ready, cs.reason) == ("terminated", False, "Error")
    (cs,) = _statuses(c, "web", Builtin(True, {"state": "exited", "exitCode": 4}))
    assert (cs.state, cs.ready, cs.reason, cs.exit_code) == ("terminated", False, "Error", 4)
    (cs,) = _statuses(c, "web", Builtin(True, {"state": "exited", "exitCode": 0}))
    assert (cs.state, cs.reason, cs.exit_code) == ("terminated", "Completed", 0)
    (cs,) = _statuses(c, "web", Builtin(True, {"state": "exited", "exitCode": 4}), {"restarts": 1})
    assert (cs.state, cs.reason, cs.last_exit) == ("waiting", "CrashLoopBackOff", 4)
    (cs,) = _statuses(c, "web", Builtin(True, {"state": "running"}, set()))
    assert (cs.state, cs.ready) == ("running", False) and "TCP 80" in cs.message
    (cs,) = _statuses(c, "web", Builtin(True, {"state": "running"}, {("TCP", 80)}))
    assert (cs.state, cs.ready) == ("running", True)
