"""lifecycle hooks in a pod's containers: preStop (exec, httpGet, sleep) is run by the control loop's
kubelet; postStart is reported once as ignored; anything else is refused in one line naming the pod,
the container and the field."""
from __future__ import annotations

import pytest

from netlab.errors import SpecError

from .scenarios import cluster, container, deployment, load, pod


def with_lifecycle(lc):
    return pod("p", containers=[container("app", [(8080, "http")], lifecycle=lc)])


@pytest.mark.parametrize("pre", [
    {"exec": {"command": ["sh", "-c", "echo bye"]}},
    {"httpGet": {"path": "/shutdown", "port": 8080}},
    {"httpGet": {"path": "/x", "port": "http", "scheme": "HTTP"}},
    {"sleep": {"seconds": 5}},
])
def test_pre_stop_handlers_are_accepted_without_a_word(pre):
    assert load(cluster(), with_lifecycle({"preStop": pre})).ignored == []


def test_post_start_is_reported_once_as_ignored():
    s = load(cluster(), with_lifecycle({"postStart": {"exec": {"command": ["true"]}},
                                        "preStop": {"sleep": {"seconds": 1}}}))
    assert len(s.ignored) == 1
    assert s.ignored[0].startswith("Pod default/p: spec.containers[0].lifecycle.postStart")


@pytest.mark.parametrize("lc, expected", [
    ({"preStop": {"grpc": {"port": 80}}}, "lifecycle.preStop.grpc is not a handler netlab's kubelet runs (container app)"),
    ({"preStop": {}}, "lifecycle.preStop names no handler (container app)"),
    ({"preStop": {"tcpSocket": {"port": 80}}}, "lifecycle.preStop.tcpSocket is not run by any kubelet"),
    ({"preStop": {"exec": {"command": ["true"]}, "sleep": {"seconds": 1}}}, "lifecycle.preStop.sleep is a second handler"),
    ({"preStop": {"exec": {}}}, "lifecycle.preStop.exec.command is empty"),
    ({"preStop": {"httpGet": {"path": "/"}}}, "lifecycle.preStop.httpGet.port is required"),
    ({"preStop": {"sleep": {"seconds": -1}}}, "lifecycle.preStop.sleep.seconds"),
    ({"preStop": {"sleep": {}}}, "lifecycle.preStop.sleep.seconds"),
    ({"postStart": {"bogus": {}}}, "lifecycle.postStart.bogus is not a handler"),
    ({"preStopp": {"sleep": {"seconds": 1}}}, "unknown field spec.containers[0].lifecycle.preStopp"),
])
def test_bad_hooks_are_refused_in_one_line(lc, expected):
    with pytest.raises(SpecError) as e:
        load(cluster(), with_lifecycle(lc))
    msg = str(e.value)
    assert expected in msg and "Pod default/p" in msg and "\n" not in msg, msg


def test_a_deployment_template_hook_is_checked_too():
    d = deployment("web", 2)
    d["spec"]["template"]["spec"]["containers"][0]["lifecycle"] = {"preStop": {"sleeep": {"seconds": 1}}}
    with pytest.raises(SpecError) as e:
        load(cluster(), d)
    assert "Deployment default/web" in str(e.value) and "lifecycle.preStop.sleeep" in str(e.value)
