"""The container sandbox's pure parts: securityContext read and merged (pod, container), the Sandbox it
gives, and the command lines that launch a container in it, join it (`netlab exec`) or debug its pod."""
from __future__ import annotations

import json

import pytest

from netlab.dataplane import sandbox
from netlab.dataplane.sandbox import DEFAULT_CAPS, Mount, Sandbox, for_container, join_argv, launch_argv
from netlab.errors import SpecError

from .scenarios import cluster, container, load, pod


def security_of(pod_sc=None, c_sc=None):
    extra = {"securityContext": c_sc} if c_sc is not None else {}
    spec = {"securityContext": pod_sc} if pod_sc is not None else {}
    s = load(cluster(), pod("p", containers=[container("app", command=["sleep", "1"], **extra)], **spec))
    return s.pods[0].template.containers[0].security


def split(argv):
    """(unshare part, init config, setpriv part up to --, the command)."""
    i = argv.index(sandbox.INIT_SCRIPT)
    cfg = json.loads(argv[i + 1])
    rest = argv[i + 3:]
    j = rest.index("--")
    return argv[:i], cfg, rest[:j], rest[j + 1:]



@pytest.fixture(autouse=True)
def _no_runtime_mounts(request, monkeypatch):
    """The command lines as they are wherever the checkout lives: netlab's own python is mounted only
    when it is under /tmp (tested on its own below)."""
    if "own_python" not in request.node.name:
        monkeypatch.setattr(sandbox, "runtime_mounts", lambda: [])


def test_the_default_sandbox_has_its_own_namespaces_the_default_caps_and_no_new_privs():
    ns, cfg, priv, cmd = split(launch_argv(Sandbox(), ["sleep", "10"], python="/usr/bin/python3"))
    assert ns[:6] == ["unshare", "--mount", "--pid", "--fork", "--kill-child", "--propagation=private"]
    assert ns[-2:] == ["/usr/bin/python3", "-S"]
    assert cfg == {"mounts": [], "host_fs": False, "tmp": True, "sys_rw": False, "workdir": "/"}
    assert priv[:5] == ["setpriv", "--reuid=0", "--regid=0", "--clear-groups",
                        "--bounding-set=-all,+chown,+dac_override,+fowner,+fsetid,+kill,+setgid,+setuid,+setpcap,"
                        "+net_bind_service,+net_raw,+sys_chroot,+mknod,+audit_write,+setfcap"]
    assert priv[5:] == ["--inh-caps=-all", "--no-new-privs"]
    assert cmd == ["sleep", "10"]      # never through a shell


def test_the_default_set_is_containerds():
    assert sorted(DEFAULT_CAPS) == sorted(["CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID",
                                           "SETUID", "SETFCAP", "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL",
                                           "AUDIT_WRITE"])
    assert not {"SYS_ADMIN", "NET_ADMIN", "SYS_MODULE"} & set(Sandbox().capabilities())


def test_mounts_user_groups_and_read_only_root_reach_the_command_line():
    sb = Sandbox(mounts=[Mount("/var/lib/x", "/data"), Mount("/etc/cfg", "/etc/config", True)], run_as_user=1000,
                 run_as_group=3000, supplemental_groups=[4, 5], read_only_root_filesystem=True, workdir="/data")
    _, cfg, priv, _ = split(launch_argv(sb, ["id"]))
    assert cfg["mounts"] == [["/var/lib/x", "/data", False], ["/etc/cfg", "/etc/config", True]]
    assert cfg["tmp"] is False and cfg["workdir"] == "/data"
    assert priv[:4] == ["setpriv", "--reuid=1000", "--regid=3000", "--groups=4,5"]


@pytest.mark.parametrize("add, drop, has, lacks", [
    (["NET_ADMIN"], [], {"NET_ADMIN", "CHOWN"}, {"SYS_ADMIN"}),
    (["cap_net_admin"], ["CAP_NET_RAW"], {"NET_ADMIN"}, {"NET_RAW"}),
    ([], ["ALL"], set(), set(DEFAULT_CAPS)),
    (["NET_BIND_SERVICE"], ["ALL"], {"NET_BIND_SERVICE"}, {"CHOWN"}),
    (["ALL"], [], {"SYS_ADMIN", "SYS_MODULE", "NET_ADMIN"}, set()),
])
def test_capabilities_add_and_drop(add, drop, has, lacks):
    caps = set(Sandbox(cap_add=add, cap_drop=drop).capabilities())
    assert has <= caps and not (lacks & caps)


def test_privileged_keeps_every_capability_and_the_hosts_tree():
    _, cfg, priv, _ = split(launch_argv(Sandbox(privileged=True), ["sh"]))
    assert cfg["host_fs"] is True and cfg["sys_rw"] is True
    assert not any(a.startswith(("--bounding-set", "--no-new-privs")) for a in priv)


def test_allow_privilege_escalation_true_drops_no_new_privs():
    assert "--no-new-privs" not in split(launch_argv(Sandbox(allow_privilege_escalation=True), ["sh"]))[2]
    assert "--no-new-privs" in split(launch_argv(Sandbox(allow_privilege_escalation=False), ["sh"]))[2]


def test_security_context_merges_pod_and_container_fields():
    sc = security_of({"runAsUser": 1000, "runAsGroup": 2000, "supplementalGroups": [7]},
                     {"runAsGroup": 3000, "readOnlyRootFilesystem": True,
                      "capabilities": {"add": ["NET_ADMIN"], "drop": ["CAP_MKNOD"]}})
    sb = for_container(sc)
    assert (sb.run_as_user, sb.run_as_group, sb.supplemental_groups) == (1000, 3000, [7])
    assert sb.read_only_root_filesystem and "NET_ADMIN" in sb.capabilities() and "MKNOD" not in sb.capabilities()
    assert for_container(security_of()) == Sandbox()


def test_run_as_non_root_without_a_user_is_a_config_error():
    assert security_of({"runAsNonRoot": True}).config_error("p", "default", "app").startswith(
        "container has runAsNonRoot and image will run as root")
    assert security_of(None, {"runAsNonRoot": True, "runAsUser": 0}).config_error("p", "default", "app")
    assert security_of({"runAsNonRoot": True}, {"runAsUser": 1000}).config_error("p", "default", "app") is None


def test_an_unknown_capability_is_refused_with_the_field_and_the_fix():
    with pytest.raises(SpecError) as e:
        security_of(None, {"capabilities": {"add": ["NET_ADMN"]}})
    assert "spec.containers[0].securityContext.capabilities.add[0] 'NET_ADMN' is not a Linux capability" in str(e.value)
    assert e.value.exit_code == 2


def test_privileged_with_allow_privilege_escalation_false_is_refused():
    with pytest.raises(SpecError) as e:
        security_of(None, {"privileged": True, "allowPrivilegeEscalation": False})
    assert "allowPrivilegeEscalation cannot be false when privileged is true" in str(e.value)


def test_seccomp_profile_is_reported_as_ignored_unless_unconfined():
    s = load(cluster(), pod("p", containers=[container("app", command=["sleep", "1"])],
                            securityContext={"seccompProfile": {"type": "RuntimeDefault"}}))
    assert any("securityContext.seccompProfile" in i for i in s.ignored), s.ignored
    s = load(cluster(), pod("p", containers=[container("app", command=["sleep", "1"])],
                            securityContext={"seccompProfile": {"type": "Unconfined"}}))
    assert not any("seccompProfile" in i for i in s.ignored), s.ignored


def test_exec_joins_the_running_container_with_its_credentials():
    status = {"Uid": "1000\t1000\t1000\t1000", "Gid": "3000\t3000\t3000\t3000", "Groups": "7 8",
              "CapBnd": "00000000a80425fb", "NoNewPrivs": "1"}
    argv = join_argv(4242, status, ["id"])
    assert argv[:7] == ["nsenter", "--target=4242", "--mount", "--pid", "--net", "--uts", "--"]
    assert argv[7:11] == ["setpriv", "--reuid=1000", "--regid=3000", "--groups=7,8"]
    assert argv[11] == "--bounding-set=-all," + ",".join(f"+{c.lower()}" for c in sandbox.ALL_CAPS
                                                          if c in DEFAULT_CAPS)
    assert argv[-4:] == ["--inh-caps=-all", "--no-new-privs", "--", "id"]


def test_debug_profiles():
    assert "NET_ADMIN" in sandbox.debug_sandbox("netadmin").capabilities()
    assert "NET_ADMIN" not in sandbox.debug_sandbox("general").capabilities()
    assert sandbox.debug_sandbox("sysadmin").privileged
    with pytest.raises(ValueError):
        sandbox.debug_sandbox("root")


def test_a_containers_supervisor_is_outside_the_pid_namespace_and_its_first_child_is_pid_1():
    outer, inner = sandbox.container_argv(Sandbox(), ["sleep", "1"], python="py")
    assert outer == ["unshare", "--pid", "--"]          # no --fork: the supervisor stays in the host's
    assert inner[:5] == ["unshare", "--mount", "--propagation=private", "--", "py"]
    assert inner[-3:] == ["--", "sleep", "1"] and sandbox.WRAPPER_DEPTH == 0


def test_netlabs_own_python_is_mounted_when_the_sandbox_would_cover_it(monkeypatch):
    # a clone and its venv under /tmp (a CI checkout): the container's private /tmp would hide the
    # python that agnhost connect or a test's helper runs, so it is bound read-only at its own path
    import os
    import sys

    import netlab
    from netlab.dataplane import sandbox
    monkeypatch.setattr(sys, "prefix", "/tmp/ci/.venv")
    monkeypatch.setattr(netlab, "__file__", "/tmp/ci/netlab/__init__.py")
    cfg = sandbox.init_config(sandbox.Sandbox(mounts=[sandbox.Mount("/srv/data", "/data", False)]))
    assert cfg["mounts"] == [["/tmp/ci", "/tmp/ci", True], ["/srv/data", "/data", False]]   # the venv is in it
    monkeypatch.setattr(sys, "prefix", "/opt/netlab/.venv")
    monkeypatch.setattr(netlab, "__file__", "/opt/netlab/netlab/__init__.py")
    assert sandbox.init_config(sandbox.Sandbox())["mounts"] == []
    assert os.path.isabs(sandbox.INIT_SCRIPT)
