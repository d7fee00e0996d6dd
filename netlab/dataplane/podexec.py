"""`netlab exec` and `netlab debug`: the command lines that run a command in a pod with a container's
privileges (as `kubectl exec` does) or with a debugging profile's (as `kubectl debug` does).

exec into a container whose process runs: nsenter joins that process's mount, PID, network and UTS
namespaces and setpriv takes on its uid, gids, bounding set and no_new_privs (read from /proc/PID/status:
what it has now, not what netlab meant to give it). A container that does not run (one served by the
node's built-in server, one that has exited): the command gets a fresh sandbox of that container
(sandbox.for_container) in the pod's network and UTS namespaces.

debug: a fresh sandbox of the profile (sandbox.debug_sandbox: general, netadmin = + NET_ADMIN and
NET_RAW, sysadmin = privileged) in the pod's network and UTS namespaces, as an ephemeral container.

Either way the command sees the pod's /etc/resolv.conf and /etc/hosts (podfiles.py): a running
container has them bound in its mount namespace; a fresh sandbox gets them bound. Joining a running
container, the command gets that container's environment (its /proc/PID/environ: the kubelet's
variables, service variables included), as kubectl exec runs a command with the container's env.
"""
from __future__ import annotations

from ..errors import KernelError
from ..model.objects import Pod
from ..workload import podenv
from . import nsenter, podfiles, procs, sandbox, state, supervise
from .fabric import uts_path


def _missing(pod: Pod) -> str:
    return f"pod {pod.key} has no network namespace ({pod.netns})"


def running_pid(lab: str, pod: Pod, container: str) -> int | None:
    """The PID of container `container` of `pod` if it runs (its record, still the same process)."""
    rec = ((((state.load(lab) or {}).get("pods") or {}).get(pod.key) or {}).get("procs") or {}).get(container)
    if supervise.container_alive(lab, pod, container, rec):
        return int(rec["pid"])
    return None


def exec_argv(lab: str, pod: Pod, argv: list[str], container: str | None = None,
              mounts: list[sandbox.Mount] | None = None, services: list[dict] | None = None) -> list[str]:
    """The command line of `netlab exec`. A container that runs: its own environment. One that does not
    (served by the node's built-in server, or exited): the environment the kubelet would give it (the
    pod's variables, the container's `env` values, the service variables of `services`, the store-shaped
    Services of the lab), never the caller's."""
    c = next((x for x in pod.containers if x.name == container), pod.containers[0]) if pod.containers else None
    if c is not None and (c.command or c.args):
        pid = running_pid(lab, pod, c.name)
        status = sandbox.read_status(pid) if pid else None
        if pid and status:
            env = sandbox.read_environ(pid)
            if env is not None:   # not the container's owner tag: `up` would take the command for the container
                env.pop(procs.OWNER_VAR, None)
            return sandbox.join_argv(pid, status, argv if env is None else sandbox.env_argv(env, argv))
    why = c.security.config_error(pod.name, pod.namespace, c.name) if c is not None else None
    if why:   # never started: there is no container to run in (kubectl exec fails the same way)
        raise KernelError(f"container {c.name} of pod {pod.key} is not running (CreateContainerConfigError: {why})")
    files = podfiles.mounts(lab, pod, bool(c is not None and c.security.read_only_root_filesystem))
    box = sandbox.for_container(c.security, mounts, files) if c is not None else \
        sandbox.Sandbox(mounts=list(mounts or []), files=files)
    env = container_env(pod, c, services)
    return nsenter.enter(pod.netns, sandbox.launch_argv(box, sandbox.env_argv(env, argv)), uts_path(lab, pod),
                         missing=_missing(pod))


def container_env(pod: Pod, c, services: list[dict] | None) -> dict[str, str]:
    """The environment of container `c` of `pod` as the kubelet starts it (no process to read it from)."""
    launch = pod.launch.get(c.name) if c is not None and pod.launch else None
    own = dict(launch.env) if launch is not None and not launch.error else dict(c.env if c is not None else {})
    links = podenv.service_env(pod.namespace, pod.dns.service_links, services) if services is not None else {}
    return {**supervise.container_env(pod), **links, **own}


def debug_argv(lab: str, pod: Pod, argv: list[str], profile: str = "general") -> list[str]:
    box = sandbox.debug_sandbox(profile)
    box.files = podfiles.mounts(lab, pod)
    return nsenter.enter(pod.netns, sandbox.launch_argv(box, argv), uts_path(lab, pod), missing=_missing(pod))
