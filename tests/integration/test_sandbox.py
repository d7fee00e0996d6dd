"""Containers are sandboxed as a container runtime sandboxes them (issue 12): their own mount and PID
namespaces, the host's filesystem read-only with a private /tmp, the runtime's default capabilities,
securityContext honoured; `netlab exec` with the container's privileges, `netlab debug` with a profile's.

Real namespaces, the real control loop; what a container did is read from its log (`netlab logs`), from
the host's filesystem and from the kernel (/proc/PID/status of its process)."""
from __future__ import annotations

import os
import shutil
import tempfile

from netlab.dataplane import state

from .conftest import kubectl, netlab_cli, pods_table, until

CLUSTER = """apiVersion: netlab.dev/v1alpha1
kind: Cluster
name: sbx
nodes: [{name: n1, role: control-plane}, {name: n2}]
"""

# Docker's and containerd's default effective set, as /proc/PID/status prints it
DEFAULT_CAPEFF = "00000000a80425fb"


def pod(name: str, command: str, security: str = "", pod_security: str = "", restart: str = "Always") -> str:
    return f"""---
apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  nodeName: n2
  restartPolicy: {restart}
  {f"securityContext: {pod_security}" if pod_security else ""}
  containers:
  - name: app
    image: busybox
    command: {command}
    {f"securityContext: {security}" if security else ""}
"""


def logs(lab, name: str) -> str:
    return kubectl(lab, "logs", name, check=False).stdout


def status_of(lab, name: str) -> dict[str, str]:
    rec = ((state.load(lab.name) or {})["pods"][f"default/{name}"]["procs"])["app"]
    with open(f"/proc/{int(rec['pid'])}/status") as f:
        return {k: v.strip() for k, _, v in (line.partition(":") for line in f.read().splitlines())}


def host_capbnd() -> str:
    with open("/proc/self/status") as f:
        return next(line.split(":")[1].strip() for line in f if line.startswith("CapBnd:"))


def test_a_container_is_sandboxed_and_its_security_context_honoured(lab):
    victim = tempfile.mkdtemp(prefix="netlab-sbx-victim-", dir="/var/tmp")
    host_out = tempfile.mkdtemp(prefix="netlab-sbx-priv-", dir="/var/tmp")
    with open(os.path.join(victim, "precious"), "w") as f:
        f.write("keep me\n")
    tag = lab.name
    try:
        box = ("[sh, -c, 'touch /srv/x-TAG; echo srv=$?; touch /root/x-TAG; echo root=$?; "
               "echo mine > /tmp/x-TAG; echo tmp=$?; echo procs=$(ls /proc | grep -c \"^[0-9]\"); "
               "exec sleep 3600']").replace("TAG", tag)
        text = CLUSTER + pod("box", box) + \
            pod("user", "[sh, -c, 'echo uid=$(id -u) gid=$(id -g); exec sleep 3600']",
                "{runAsGroup: 3000}", "{runAsUser: 1000}") + \
            pod("netadm", "[sleep, '3600']", "{capabilities: {add: [NET_ADMIN]}}") + \
            pod("dropall", "[sh, -c, 'grep CapEff /proc/self/status; exec sleep 3600']",
                "{capabilities: {drop: [ALL]}}") + \
            pod("rofs", "[sh, -c, 'touch /tmp/y; echo tmp=$?; exec sleep 3600']", "{readOnlyRootFilesystem: true}") + \
            pod("priv", f"[sh, -c, 'echo hi > {host_out}/written; exec sleep 3600']", "{privileged: true}") + \
            pod("nonroot", "[sleep, '3600']", "{runAsNonRoot: true}") + \
            pod("rmrf", f"[rm, -rf, {victim}]", restart="Never")
        lab.up(text)

        # the filesystem: the host's read-only, a private /tmp; its own processes only
        until("box's log", lambda: "procs=" in logs(lab, "box"), timeout=30)
        out = logs(lab, "box")
        assert "srv=1" in out and "root=1" in out and "tmp=0" in out, out
        assert "Read-only file system" in out, out
        assert not os.path.exists(f"/srv/x-{tag}") and not os.path.exists(f"/root/x-{tag}")
        assert not os.path.exists(f"/tmp/x-{tag}"), "the container's /tmp is the host's"
        # sh (PID 1), the $(...) subshell, ls and grep: not the host's hundreds
        assert int(out.split("procs=")[1].split()[0]) <= 4 < len([p for p in os.listdir("/proc") if p.isdigit()]), out
        st = status_of(lab, "box")
        assert st["NSpid"].split()[-1] == "1", st["NSpid"]       # PID 1 of its own PID namespace
        assert st["CapEff"] == DEFAULT_CAPEFF and st["CapBnd"] == DEFAULT_CAPEFF, st
        assert st["NoNewPrivs"] == "1"
        # exec: in its mount and PID namespaces, with its privileges
        r = lab.pod_exec("box", ["cat", f"/tmp/x-{tag}"])
        assert r.returncode == 0 and r.stdout.strip() == "mine", r
        r = lab.pod_exec("box", ["ps", "-e", "-o", "comm="])
        assert sorted(r.stdout.split()) == ["ps", "sleep"], r.stdout
        r = lab.pod_exec("box", ["grep", "CapEff", "/proc/self/status"])
        assert r.stdout.split()[-1] == DEFAULT_CAPEFF, r.stdout
        r = netlab_cli("exec", "--lab", lab.name, "box", "--", "ip", "link", "set", "eth0", "down")
        assert r.returncode != 0 and "Operation not permitted" in r.stderr, r
        assert ",UP" in lab.pod_exec("box", ["ip", "-o", "link", "show", "eth0"]).stdout

        # runAsUser (pod) and runAsGroup (container)
        until("user's log", lambda: "uid=" in logs(lab, "user"), timeout=30)
        assert "uid=1000 gid=3000" in logs(lab, "user"), logs(lab, "user")
        assert lab.pod_exec("user", ["id", "-u"]).stdout.strip() == "1000"
        assert status_of(lab, "user")["CapEff"] == "0000000000000000"

        # capabilities add NET_ADMIN: the container may change its pod's link
        r = lab.pod_exec("netadm", ["sh", "-c", "ip link set eth0 down && ip -o link show eth0"])
        assert r.returncode == 0 and ",UP" not in r.stdout.split(">")[0], r
        until("dropall's log", lambda: "CapEff" in logs(lab, "dropall"), timeout=30)
        assert "0000000000000000" in logs(lab, "dropall"), logs(lab, "dropall")

        # readOnlyRootFilesystem: not even /tmp
        until("rofs's log", lambda: "tmp=" in logs(lab, "rofs"), timeout=30)
        assert "tmp=1" in logs(lab, "rofs"), logs(lab, "rofs")

        # privileged: every capability, the host's filesystem writable
        until("the privileged container's file", lambda: os.path.exists(f"{host_out}/written"), timeout=30)
        assert status_of(lab, "priv")["CapEff"] == host_capbnd()

        # runAsNonRoot without a user: not started
        until("nonroot's CreateContainerConfigError",
              lambda: pods_table(lab.name).get("nonroot", [""] * 3)[2] == "CreateContainerConfigError", timeout=30)
        assert not ((state.load(lab.name) or {})["pods"]["default/nonroot"].get("procs") or {}).get("app", {}).get("pid")
        desc = kubectl(lab, "get", "pod", "nonroot", "-o", "json").stdout
        assert "runAsNonRoot and image will run as root" in desc, desc
        r = netlab_cli("exec", "--lab", lab.name, "nonroot", "--", "id")
        assert r.returncode != 0 and "CreateContainerConfigError" in r.stderr, r

        # rm -rf of a host directory: refused, the directory is intact
        until("rmrf ended", lambda: pods_table(lab.name).get("rmrf", [""] * 3)[2] in ("Error", "Completed"),
              timeout=30)
        assert "Read-only file system" in logs(lab, "rmrf"), logs(lab, "rmrf")
        with open(os.path.join(victim, "precious")) as f:
            assert f.read() == "keep me\n"

        # netlab debug --profile=netadmin: NET_ADMIN in the pod's network namespace
        r = netlab_cli("debug", "--lab", lab.name, "box", "--profile=netadmin", "--",
                       "sh", "-c", "ip link set eth0 down && ip -o link show eth0")
        assert r.returncode == 0 and ",UP" not in r.stdout.split(">")[0], r
    finally:
        shutil.rmtree(victim, ignore_errors=True)
        shutil.rmtree(host_out, ignore_errors=True)
        for p in (f"/srv/x-{tag}", f"/root/x-{tag}", f"/tmp/x-{tag}"):
            if os.path.exists(p):
                os.unlink(p)


def test_mounts_are_shown_writable_or_read_only_and_missing_mount_points_never_touch_the_host(tmp_path):
    """The interface the pod's volumes use (sandbox.Mount), on the real kernel without a lab: a directory
    at a top-level path that does not exist, a file under a host directory that has no such subdirectory
    (an overlay of it, in the container only), read-only honoured; the host's directories unchanged."""
    import subprocess
    from netlab.dataplane.sandbox import Mount, Sandbox, launch_argv
    vol = tmp_path / "vol"
    vol.mkdir()
    (vol / "f").write_text("hi\n")
    target_dir = f"/netlab-sbx-{os.getpid()}"
    sb = Sandbox(mounts=[Mount(str(vol), target_dir), Mount(str(vol / "f"), f"/etc/netlab-sbx-{os.getpid()}/f", True)])
    script = (f"cat {target_dir}/f; echo new > {target_dir}/g; echo w=$?; "
              f"echo no > /etc/netlab-sbx-{os.getpid()}/f; echo ro=$?; ls /tmp | wc -l")
    r = subprocess.run(launch_argv(sb, ["sh", "-c", script]), capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    from netlab.dataplane.sandbox import runtime_mounts   # netlab's own python, when the checkout is under /tmp
    own = len({m.target.split("/")[2] for m in runtime_mounts() if m.target.startswith("/tmp/")})
    assert r.stdout.split() == ["hi", "w=0", "ro=2", str(own)], r
    assert (vol / "g").read_text() == "new\n" and (vol / "f").read_text() == "hi\n"
    assert not os.path.exists(target_dir) and not os.path.exists(f"/etc/netlab-sbx-{os.getpid()}")


def test_a_volume_mounted_under_tmp_is_on_the_containers_private_tmp(tmp_path):
    """A mount point under /tmp (an emptyDir at /tmp/cache, a common manifest line; netlab's own python
    when the checkout lives under /tmp): it is made on the private /tmp, which stays writable, and the
    volume's writes reach the volume, never the host's /tmp."""
    import subprocess
    from netlab.dataplane.sandbox import Mount, Sandbox, launch_argv
    vol = tmp_path / "cache"
    vol.mkdir()
    target = f"/tmp/netlab-sbx-cache-{os.getpid()}"
    sb = Sandbox(mounts=[Mount(str(vol), target)])
    script = f"echo v > {target}/h; echo w=$?; echo t > /tmp/own; echo tmp=$?"
    r = subprocess.run(launch_argv(sb, ["sh", "-c", script]), capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["w=0", "tmp=0"], r
    assert (vol / "h").read_text() == "v\n"
    assert not os.path.exists(target) and not os.path.exists("/tmp/own")
