"""A container's sandbox, described (pure: no root, no kernel), and the command line that launches it.

What a container started from a manifest's `command` gets, as a container runtime (containerd, Docker)
gives it:
- its own mount namespace and PID namespace: it is PID 1 of its namespace and sees only its own
  processes, in a fresh /proc; a fresh sysfs (read-only) shows its pod's interfaces;
- the host's filesystem, read-only (recursively: every mount under /), as its root: netlab has no
  images, so the host's files are the "image"; a private writable tmpfs on /tmp (unless
  readOnlyRootFilesystem, then /tmp is an empty read-only directory) and on /dev/shm;
- the `mounts` given (the pod's volumes), writable unless read_only; a mount point that does not exist
  on the host is made in the container's root (a tmpfs holding the host's top-level entries);
- the capabilities containerd and Docker grant by default (DEFAULT_CAPS) as bounding set, and as
  effective and permitted set for uid 0 (a non-root user gets none effective: the kernel clears them on
  the uid change, and no_new_privs keeps a setuid binary from regaining them); no_new_privs;
- the user, group and supplementary groups of its securityContext (default: uid 0, gid 0, none).
- the pod's /etc/resolv.conf and /etc/hosts (`files`, written by the kubelet: dataplane/podfiles.py)
  bound over the host's, in every sandbox;
- `privileged: True`, the explicit way out: every capability, no no_new_privs, and the host's filesystem
  shared as it is (writable, the host's /tmp, /sys writable): what netlab gave every container before
  sandboxing. It keeps its own mount and PID namespaces (its own /proc), where the pod's `files` are
  bound over the host's (the host's own files are untouched).
Not applied: seccomp and AppArmor/SELinux profiles (netlab has no profile to load); the pod's
securityContext.seccompProfile is reported as ignored unless it is Unconfined.

How: util-linux's `unshare` (in scripts/setup's package list, as nsenter is) makes the namespaces and
forks the container's PID 1, passing its exit status (or the signal that ended it) on to the supervisor;
a small stdlib-only Python step (sandbox_init.py, run by the same interpreter as netlab) builds the root
with the kernel's mount API (open_tree/move_mount/mount_setattr: a recursive read-only remount has no
util-linux 2.38 command); util-linux's `setpriv` then sets uid, gids, the bounding set and no_new_privs
and execs the command, so the container's PID is the command's own. Tools rather than raw syscalls for
the namespaces and credentials: their order (bounding set before setuid, keep-caps) is easy to get wrong,
and these tools are the ones every Linux has. A container's supervisor starts in the new PID namespace's
parent side (container_argv), so the container is the supervisor's own child, PID 1 of its namespace.
"""
from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field

from ..spec.security import LINUX_CAPS

# containerd's and Docker's default capability set (oci defaults)
DEFAULT_CAPS = ("CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID", "SETUID", "SETFCAP",
                "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL", "AUDIT_WRITE")

# every capability Linux knows, by number (one list: the spec layer checks manifests' names against it)
ALL_CAPS = LINUX_CAPS

# processes between a container's supervisor and the container's command (container_argv: none)
WRAPPER_DEPTH = 0

INIT_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sandbox_init.py")


@dataclass(frozen=True)
class Mount:
    """A host path (directory or file) shown at `target` inside the container."""
    source: str
    target: str
    read_only: bool = False


@dataclass
class Sandbox:
    mounts: list[Mount] = field(default_factory=list)
    run_as_user: int = 0
    run_as_group: int = 0
    supplemental_groups: list[int] = field(default_factory=list)
    cap_add: list[str] = field(default_factory=list)     # names as in a manifest: NET_ADMIN, CAP_NET_ADMIN, ALL
    cap_drop: list[str] = field(default_factory=list)
    privileged: bool = False
    read_only_root_filesystem: bool = False
    allow_privilege_escalation: bool | None = None       # None: not set (netlab sets no_new_privs)
    workdir: str = "/"
    files: list[Mount] = field(default_factory=list)     # the pod's /etc/resolv.conf, /etc/hosts (all modes)

    def capabilities(self) -> list[str]:
        """The bounding (and, for uid 0, effective) set: the defaults, minus drop, plus add."""
        if self.privileged:
            return list(ALL_CAPS)
        add = {cap_name(c) for c in self.cap_add}
        drop = {cap_name(c) for c in self.cap_drop}
        caps = set() if "ALL" in drop else set(DEFAULT_CAPS) - drop
        caps |= set(ALL_CAPS) if "ALL" in add else add
        return [c for c in ALL_CAPS if c in caps]

    def no_new_privs(self) -> bool:
        return not self.privileged and self.allow_privilege_escalation is not True


def cap_name(name: str) -> str:
    """NET_ADMIN, CAP_NET_ADMIN, net_admin -> NET_ADMIN; ALL stays ALL. ValueError for an unknown one."""
    n = name.strip().upper()
    if n.startswith("CAP_"):
        n = n[4:]
    if n != "ALL" and n not in ALL_CAPS:
        raise ValueError(f"unknown capability {name!r}")
    return n


def setpriv_argv(sb: Sandbox, argv: list[str]) -> list[str]:
    """setpriv: uid, gid, groups, bounding set, inheritable set cleared, no_new_privs; then argv."""
    out = ["setpriv", f"--reuid={sb.run_as_user}", f"--regid={sb.run_as_group}"]
    if sb.supplemental_groups:
        out.append("--groups=" + ",".join(str(g) for g in sb.supplemental_groups))
    else:
        out.append("--clear-groups")
    if not sb.privileged:
        keep = sb.capabilities()
        out.append("--bounding-set=" + ",".join(["-all", *(f"+{c.lower()}" for c in keep)]))
        out.append("--inh-caps=-all")
    if sb.no_new_privs():
        out.append("--no-new-privs")
    return [*out, "--", *argv]


# where the sandbox puts a tmpfs over the host's files (sandbox_init.py: /tmp, /dev/shm; /run/netlab is hidden)
_COVERED = ("/tmp/", "/dev/shm/", "/run/netlab/")


def runtime_mounts() -> list[Mount]:
    """netlab's own Python, read-only at its own path, when it lives where the sandbox covers the host's
    files (a checkout or venv under /tmp, as a CI clone often is): the containers netlab runs itself
    (agnhost connect, a test's helper started with sys.executable) need it there."""
    import netlab
    paths = {os.path.abspath(sys.prefix), os.path.dirname(os.path.dirname(os.path.abspath(netlab.__file__)))}
    covered = sorted(p for p in paths if p.startswith(_COVERED))
    return [Mount(p, p, True) for p in covered if not any(p.startswith(q + "/") for q in covered)]


def init_config(sb: Sandbox) -> dict:
    """What sandbox_init.py builds (a JSON argument)."""
    mounts = ([] if sb.privileged else runtime_mounts() + list(sb.files)) + list(sb.mounts)
    out = {"mounts": [[m.source, m.target, m.read_only] for m in mounts],
            "host_fs": sb.privileged, "tmp": not sb.read_only_root_filesystem, "sys_rw": sb.privileged,
           "workdir": sb.workdir or "/"}
    if sb.privileged and sb.files:   # bound over the host's tree (sandbox_init.py)
        out["files"] = [[m.source, m.target, m.read_only] for m in sb.files]
    return out


def _inner(sb: Sandbox, argv: list[str], python: str | None) -> list[str]:
    return [python or sys.executable, "-S", INIT_SCRIPT, json.dumps(init_config(sb), separators=(",", ":")),
            "--", *setpriv_argv(sb, argv)]


def launch_argv(sb: Sandbox, argv: list[str], python: str | None = None) -> list[str]:
    """The command line that starts argv in its sandbox (to be run as root, inside the pod's network
    namespace: nsenter's argv), on its own: `netlab exec` into a container that does not run, `netlab
    debug`, an exec probe. Pure: the same Sandbox and argv give the same line."""
    return ["unshare", "--mount", "--pid", "--fork", "--kill-child", "--propagation=private", "--",
            *_inner(sb, argv, python)]


def container_argv(sb: Sandbox, argv: list[str], python: str | None = None) -> tuple[list[str], list[str]]:
    """(outer, inner): a container's start as `outer + [supervisor...] + inner`. `outer` makes the new
    PID namespace for the supervisor's children (unshare --pid without --fork: the supervisor itself
    stays in the host's), so the first process the supervisor starts, `inner`, is PID 1 of it and the
    supervisor's own child: it waits for the container itself and gets its true exit status (137 for a
    SIGKILL; unshare --fork would pass some on as 1). `inner` makes the mount namespace and the root."""
    return (["unshare", "--pid", "--"],
            ["unshare", "--mount", "--propagation=private", "--", *_inner(sb, argv, python)])


def join_argv(pid: int, status: dict[str, str], argv: list[str]) -> list[str]:
    """`netlab exec` into a running container: nsenter joins the namespaces of its process `pid` (mount,
    PID, network, UTS) and setpriv takes on its credentials, read from its /proc/PID/status (`status`:
    field -> value, as `read_status` returns it): uid, gid, groups, bounding set, no_new_privs."""
    uid = status.get("Uid", "0").split()[0]
    gid = status.get("Gid", "0").split()[0]
    groups = status.get("Groups", "").split()
    bnd = int(status.get("CapBnd", "0"), 16)
    caps = [c for i, c in enumerate(ALL_CAPS) if bnd >> i & 1]
    out = ["nsenter", f"--target={pid}", "--mount", "--pid", "--net", "--uts", "--",
           "setpriv", f"--reuid={uid}", f"--regid={gid}",
           ("--groups=" + ",".join(groups)) if groups else "--clear-groups"]
    if len(caps) < len(ALL_CAPS):
        out += ["--bounding-set=" + ",".join(["-all", *(f"+{c.lower()}" for c in caps)]), "--inh-caps=-all"]
    if status.get("NoNewPrivs", "0").strip() == "1":
        out.append("--no-new-privs")
    return [*out, "--", *argv]


def read_environ(pid: int) -> dict[str, str] | None:
    """The environment process `pid` started with (/proc/PID/environ); None if it cannot be read."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    out = {}
    for item in raw.split(b"\0"):
        k, sep, v = item.decode(errors="replace").partition("=")
        if sep and k:
            out[k] = v
    return out


def env_argv(env: dict[str, str], argv: list[str]) -> list[str]:
    """argv run with exactly `env` (coreutils' `env -i NAME=VALUE... COMMAND`)."""
    return ["env", "-i", *(f"{k}={v}" for k, v in env.items()), *argv]


def read_status(pid: int) -> dict[str, str] | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    out = {}
    for line in lines:
        k, _, v = line.partition(":")
        out[k] = v.strip()
    return out


# kubectl debug's profiles, for `netlab debug`: a fresh sandbox in the pod's network namespace
DEBUG_PROFILES = ("general", "netadmin", "sysadmin")


def debug_sandbox(profile: str) -> Sandbox:
    if profile == "netadmin":
        return Sandbox(cap_add=["NET_ADMIN", "NET_RAW"])
    if profile == "sysadmin":
        return Sandbox(privileged=True)
    if profile == "general":
        return Sandbox(cap_add=["SYS_PTRACE"])
    raise ValueError(f"unknown profile {profile!r}: use one of {', '.join(DEBUG_PROFILES)}")


def for_container(security, mounts: list[Mount] | None = None, files: list[Mount] | None = None) -> Sandbox:
    """The Sandbox of a container from its merged securityContext (netlab/spec/security.py), the
    mounts of its pod's volumes and its pod's kubelet-written files (`files`). Without runAsUser the
    container runs as uid 0 (netlab has no image whose
    USER could say otherwise); without runAsGroup, as gid 0."""
    return Sandbox(mounts=list(mounts or []), files=list(files or []),
                   run_as_user=security.run_as_user or 0,
                   run_as_group=security.run_as_group or 0,
                   supplemental_groups=list(security.supplemental_groups),
                   cap_add=list(security.cap_add), cap_drop=list(security.cap_drop),
                   privileged=security.privileged,
                   read_only_root_filesystem=security.read_only_root_filesystem,
                   allow_privilege_escalation=security.allow_privilege_escalation)
