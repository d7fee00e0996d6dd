"""securityContext, pod- and container-level, read into what the container's sandbox honours
(netlab/dataplane/sandbox.py): the container's fields win over the pod's, as the kubelet merges them.

Honoured: runAsUser, runAsGroup, runAsNonRoot, supplementalGroups (pod), readOnlyRootFilesystem,
allowPrivilegeEscalation, privileged, capabilities.add/drop. Reported as ignored: seccompProfile (unless
Unconfined: no profile is applied anyway), appArmorProfile, seLinuxOptions, fsGroup, sysctls and the
other fields netlab does not apply.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .fields import Fields, shown

MAX_ID = 2147483647

# the Linux capabilities, as a manifest names them (with or without CAP_, any case), in the kernel's
# numbering order (dataplane/sandbox.py reads capability bit masks with it)
LINUX_CAPS = ("CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "SETPCAP",
              "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER",
              "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE",
              "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP",
              "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF",
              "CHECKPOINT_RESTORE")


@dataclass
class SecurityContext:
    """The merged securityContext of one container (None: not set anywhere)."""
    run_as_user: int | None = None
    run_as_group: int | None = None
    run_as_non_root: bool | None = None
    supplemental_groups: list[int] = field(default_factory=list)
    read_only_root_filesystem: bool = False
    allow_privilege_escalation: bool | None = None
    privileged: bool = False
    cap_add: list[str] = field(default_factory=list)
    cap_drop: list[str] = field(default_factory=list)

    def config_error(self, pod: str, namespace: str, container: str) -> str | None:
        """The kubelet's CreateContainerConfigError message, if the container must not be started:
        runAsNonRoot with no user or user 0 (netlab has no image whose USER could say otherwise)."""
        if not self.run_as_non_root:
            return None
        if self.run_as_user is None:
            return (f"container has runAsNonRoot and image will run as root (pod: \"{pod}_{namespace}\", "
                    f"container: {container})")
        if self.run_as_user == 0:
            return "container's runAsUser breaks non-root policy " \
                   f"(pod: \"{pod}_{namespace}\", container: {container})"
        return None


def _ids(f: Fields, pod_level: bool) -> dict:
    out = {}
    for key, attr in (("runAsUser", "run_as_user"), ("runAsGroup", "run_as_group")):
        if f.has(key):
            out[attr] = f.int(key, lo=0, hi=MAX_ID)
    if f.has("runAsNonRoot"):
        out["run_as_non_root"] = f.bool("runAsNonRoot")
    sp = f.raw("seccompProfile")
    if isinstance(sp, dict) and sp.get("type") == "Unconfined":
        pass   # no profile is applied: what Unconfined asks
    elif sp is not None:
        f.ignored.append(f"{f.where}: {f.at('seccompProfile')} (netlab applies no seccomp profile)")
    return out


def _caps(f: Fields, key: str) -> list[str]:
    out = []
    for i, name in enumerate(f.strlist(key)):
        n = name.upper()
        n = n[4:] if n.startswith("CAP_") else n
        if n != "ALL" and n not in LINUX_CAPS:
            raise f.error(f"{key}[{i}]", f"{shown(name)} is not a Linux capability",
                          "use a name such as NET_ADMIN or NET_RAW (with or without CAP_), or ALL")
        out.append(n)
    return out


def parse_pod_security(spec: Fields) -> dict:
    """The pod's securityContext: the defaults of its containers' (a dict of SecurityContext fields)."""
    if not spec.has("securityContext"):
        spec.skip("securityContext")
        return {}
    f = spec.map("securityContext")
    out = _ids(f, True)
    groups = f.list("supplementalGroups")
    for i, g in enumerate(groups):
        if not isinstance(g, int) or isinstance(g, bool) or not 0 <= g <= MAX_ID:
            raise f.error(f"supplementalGroups[{i}]", f"{shown(g)} is not a group id", "use numbers from 0")
    out["supplemental_groups"] = list(groups)
    f.done()   # fsGroup, sysctls, seLinuxOptions...: reported as ignored
    return out


def parse_container_security(c: Fields, pod: dict) -> SecurityContext:
    if not c.has("securityContext"):
        c.skip("securityContext")
        return SecurityContext(**pod)
    f = c.map("securityContext")
    merged = dict(pod, **_ids(f, False))
    sc = SecurityContext(**merged)
    sc.read_only_root_filesystem = f.bool("readOnlyRootFilesystem")
    sc.privileged = f.bool("privileged")
    if f.has("allowPrivilegeEscalation"):
        sc.allow_privilege_escalation = f.bool("allowPrivilegeEscalation")
    if f.has("capabilities"):
        caps = f.map("capabilities")
        sc.cap_add = _caps(caps, "add")
        sc.cap_drop = _caps(caps, "drop")
        caps.done()
    if sc.allow_privilege_escalation is False and sc.privileged:
        raise f.error("allowPrivilegeEscalation", "cannot be false when privileged is true",
                      "remove one of them (a privileged container can always escalate)")
    if sc.allow_privilege_escalation is False and "SYS_ADMIN" in sc.cap_add:
        raise f.error("allowPrivilegeEscalation", "cannot be false when capabilities.add has CAP_SYS_ADMIN",
                      "remove one of them")
    f.ignore_unless("procMount", "Default")
    f.done()   # seLinuxOptions, appArmorProfile, windowsOptions: reported as ignored
    return sc
