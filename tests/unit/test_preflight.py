"""The checks `up` and `validate` share (netlab.model.preflight): the containers' commands."""
from __future__ import annotations

import pytest

from netlab.errors import SpecError
from netlab.model.preflight import check_commands, check_host_commands

from .scenarios import cluster, cluster_of, container, deployment, pod


def _error(fn, *docs) -> str:
    with pytest.raises(SpecError) as e:
        fn(cluster_of(cluster(), *docs))
    assert e.value.exit_code == 2
    return str(e.value)


def test_a_command_that_is_not_on_the_host():
    msg = _error(check_host_commands, pod("p", containers=[container(command=["no-such-program-xyz", "-v"])]))
    assert msg == ("Pod default/p: container c runs 'no-such-program-xyz', which is not installed on this machine "
                   "(netlab runs commands from the host's filesystem); install it or drop command and args to get "
                   "the built-in test server")


def test_args_with_no_command_run_as_the_command_and_must_be_on_the_host():
    msg = _error(check_host_commands, deployment("web", 3, containers=[container("app", args=["serve-hostname"])]))
    assert msg == ("Deployment default/web: container app has args but no command, so netlab runs its args: "
                   "'serve-hostname' is not installed on this machine (netlab runs no image entrypoint); set "
                   "spec.template.spec.containers[0].command to a program installed on this machine, or drop "
                   "command and args to get the built-in test server")  # once, not once per replica


def test_args_that_start_with_a_flag_have_no_entrypoint_to_go_to():
    msg = _error(check_commands, pod("p", containers=[container(args=["--port", "80"])]))
    assert msg.startswith("Pod default/p: spec.containers[0].args has no command to pass '--port' to")


def test_every_container_is_reported():
    msg = _error(check_host_commands, pod("a", containers=[container(command=["nope-1"])]),
                 pod("b", containers=[container(command=["/nonexistent/nope-2"])]))
    assert [line.split(":")[0] for line in msg.splitlines()] == ["Pod default/a", "Pod default/b"]


def test_commands_on_the_host_and_the_builtin_server_pass():
    c = cluster_of(cluster(), pod("a", containers=[container(command=["sh", "-c", "sleep 1"])]),
                   pod("b", containers=[container(args=["sleep", "1"])]), pod("c"),
                   pod("d", containers=[container(args=["netexec", "--http-port=80"])]))
    check_commands(c)
    check_host_commands(c)


@pytest.mark.parametrize("kind, api, wrap, where", [
    ("DaemonSet", "apps/v1", lambda t: {"selector": {"matchLabels": {"a": "b"}}, "template": t},
     "DaemonSet default/w: container c runs"),
    ("Job", "batch/v1", lambda t: {"template": dict(t, spec=dict(t["spec"], restartPolicy="Never"))},
     "Job default/w: container c runs"),
    ("CronJob", "batch/v1", lambda t: {"schedule": "* * * * *", "jobTemplate": {
        "spec": {"template": dict(t, spec=dict(t["spec"], restartPolicy="Never"))}}},
     "CronJob default/w: container c runs"),
])
def test_workloads_whose_pods_the_control_loop_makes_are_checked_too(kind, api, wrap, where):
    # their pods are not in the still model (controllers make them): a missing program would otherwise
    # pass `validate` and `up` and fail in the lab's control loop
    template = {"metadata": {"labels": {"a": "b"}},
                "spec": {"containers": [{"name": "c", "image": "busybox", "command": ["no-such-program-xyz"]}]}}
    doc = {"apiVersion": api, "kind": kind, "metadata": {"name": "w"}, "spec": wrap(template)}
    assert _error(check_host_commands, doc).startswith(where + " 'no-such-program-xyz', which is not installed")


def test_the_sandbox_needs_linux_5_12():
    from netlab.dataplane.host import require_sandbox_kernel
    from netlab.errors import UsageError
    require_sandbox_kernel("6.1.0-13-amd64")
    require_sandbox_kernel("5.15.0-91-generic")
    with pytest.raises(UsageError) as e:
        require_sandbox_kernel("5.10.0-26-amd64")
    assert "older than Linux 5.12" in str(e.value) and "\n" not in str(e.value)
