"""What the running kernel can do, found out without changing the host.

Each feature is looked up, in this order, in what the kernel shows (nothing is loaded or created):

1. the feature is in use: /proc/net/ip_vs, /sys/module/<module> (a module that is loaded, or a
   built-in one with parameters);
2. the kernel's build configuration: /proc/config.gz, else /boot/config-<release> — `=y` built in,
   `=m` a module (usable if the module file is there), unset means the kernel does not have it;
3. the modules directory /lib/modules/<release>: modules.builtin, then the module file itself
   (`.ko`, `.ko.xz`, `.ko.zst`, `.ko.gz`), which `modprobe` (or the kernel's own autoloading) can load.

Only when none of these tells (no config, no modules directory) and the kernel cannot load modules
at all (no /proc/modules, so nothing can be autoloaded) is the feature tried: a dummy link or a netem
qdisc is created in a throwaway network namespace (`unshare --net`, in a subprocess) that disappears
with it. The host's root namespace and its loaded modules are never touched.

`missing_for_ipvs()` turns the answers into the messages a user needs: what is missing and how to get
it (a stock distribution kernel, e.g. in the VM of scripts/vm-run); `ipvs_refusal()` is the one line
`up` and `validate` refuse the IPVS mode with (the way to get it said once).

Reading needs no root: /proc, /sys/module, /boot and /lib/modules are world-readable. Only the last
resort (trying in a throwaway namespace) needs root; without it the answer stays "cannot tell".
"""
from __future__ import annotations

import gzip
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from typing import Callable

# A feature's state.
BUILTIN = "built-in"    # compiled into the kernel: usable
LOADED = "loaded"       # a module that is loaded: usable
MODULE = "module"       # a module that is installed but not loaded: usable after modprobe (or autoload)
ABSENT = "absent"       # the kernel does not have it
UNKNOWN = "unknown"     # nothing says (no config, no modules directory) and it was not tried

USABLE = (BUILTIN, LOADED, MODULE)

VM_HINT = "e.g. in a VM: sudo scripts/vm-setup once, then sudo scripts/vm-run -- CMD"
KERNEL_HINT = "use a stock distribution kernel (Debian's linux-image-amd64 ships it)"


@dataclass(frozen=True)
class Feature:
    name: str                 # what users call it
    module: str               # the module's name
    config: str               # the Kconfig symbol
    modpath: str              # the module's path below /lib/modules/<release>/, without .ko
    proc: tuple[str, ...] = ()  # files that exist when it is in use
    try_argv: tuple[str, ...] = ()  # a command that works only with it, run in a throwaway netns


IPVS = Feature("IPVS", "ip_vs", "CONFIG_IP_VS", "kernel/net/netfilter/ipvs/ip_vs", proc=("/proc/net/ip_vs",))
IPVS_RR = Feature("the IPVS round-robin scheduler", "ip_vs_rr", "CONFIG_IP_VS_RR",
                  "kernel/net/netfilter/ipvs/ip_vs_rr")
DUMMY = Feature("dummy network devices", "dummy", "CONFIG_DUMMY", "kernel/drivers/net/dummy",
                try_argv=("ip", "link", "add", "nlprobe0", "type", "dummy"))
NETEM = Feature("the netem qdisc", "sch_netem", "CONFIG_NET_SCH_NETEM", "kernel/net/sched/sch_netem",
                try_argv=("tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms"))
IPIP = Feature("IPIP tunnels", "ipip", "CONFIG_NET_IPIP", "kernel/net/ipv4/ipip",
               try_argv=("ip", "link", "add", "nlprobe0", "type", "ipip", "remote", "192.0.2.1"))
VXLAN = Feature("VXLAN", "vxlan", "CONFIG_VXLAN", "kernel/drivers/net/vxlan/vxlan",
                try_argv=("ip", "link", "add", "nlprobe0", "type", "vxlan", "id", "1", "dstport", "4789"))
IPSET = Feature("ipset", "ip_set", "CONFIG_IP_SET", "kernel/net/netfilter/ipset/ip_set")

MODULE_SUFFIXES = (".ko", ".ko.xz", ".ko.zst", ".ko.gz")


@dataclass
class Kernel:
    """Where the kernel's facts are read from; the defaults are the running kernel's. Tests point
    them at a fake tree."""
    release: str = field(default_factory=lambda: os.uname().release)
    proc: str = "/proc"
    sys: str = "/sys"
    modules_root: str = "/lib/modules"
    boot: str = "/boot"
    allow_try: bool = True
    runner: Callable[[list[str]], int] | None = None  # runs a command; returns its exit status
    _config: dict[str, str] | None = field(default=None, repr=False)
    _config_read: bool = field(default=False, repr=False)

    # ---- sources
    def config(self) -> dict[str, str] | None:
        """CONFIG_X -> 'y'/'m' (unset symbols are left out); None if the configuration is unknown."""
        if not self._config_read:
            self._config_read = True
            text = None
            try:
                with gzip.open(os.path.join(self.proc, "config.gz"), "rt", errors="replace") as f:
                    text = f.read()
            except OSError:
                try:
                    with open(os.path.join(self.boot, f"config-{self.release}"), errors="replace") as f:
                        text = f.read()
                except OSError:
                    pass
            if text is not None:
                self._config = dict(line.split("=", 1) for line in map(str.strip, text.splitlines())
                                    if line.startswith("CONFIG_") and "=" in line)
        return self._config

    def moddir(self) -> str | None:
        d = os.path.join(self.modules_root, self.release)
        return d if os.path.isdir(d) else None

    def module_file(self, f: Feature) -> str | None:
        d = self.moddir()
        if d is None:
            return None
        for suffix in MODULE_SUFFIXES:
            p = os.path.join(d, f.modpath + suffix)
            if os.path.exists(p):
                return p
        return None

    def in_builtin_list(self, f: Feature) -> bool:
        d = self.moddir()
        if d is None:
            return False
        try:
            with open(os.path.join(d, "modules.builtin")) as fh:
                return any(line.strip() == f.modpath + ".ko" for line in fh)
        except OSError:
            return False

    def modules_supported(self) -> bool | None:
        """Whether the kernel can load modules at all (None: unknown)."""
        if os.path.exists(os.path.join(self.proc, "modules")):
            return True
        cfg = self.config()
        if cfg is not None:
            return cfg.get("CONFIG_MODULES") == "y"
        return None

    # ---- the answer
    def state(self, f: Feature) -> str:
        if any(os.path.exists(os.path.join(self.proc, p[len("/proc/"):])) for p in f.proc):
            return LOADED
        if os.path.isdir(os.path.join(self.sys, "module", f.module)):
            # loaded modules have an initstate; built-in ones with parameters only appear here
            if os.path.exists(os.path.join(self.sys, "module", f.module, "initstate")):
                return LOADED
            return BUILTIN
        cfg = self.config()
        if cfg is not None:
            v = cfg.get(f.config)
            if v == "y":
                return BUILTIN
            if v == "m":
                if self.modules_supported() is False:
                    return ABSENT
                return MODULE if self.module_file(f) else ABSENT
            return ABSENT
        if self.in_builtin_list(f):
            return BUILTIN
        if self.module_file(f):
            return MODULE
        if self.moddir() is not None:
            # a modules directory that has neither the module nor a built-in entry for it
            return ABSENT
        return self._try(f)

    def _try(self, f: Feature) -> str:
        """Last resort: try the feature in a throwaway network namespace (in a subprocess)."""
        if not f.try_argv or not self.allow_try:
            return UNKNOWN
        if os.path.exists(os.path.join(self.proc, "modules")):
            # The kernel loads modules: trying could make it autoload one (its modprobe helper runs in
            # the host's own filesystem, which a container does not see), so don't.
            return UNKNOWN
        argv = ["unshare", "--net", "--", *f.try_argv]
        if self.runner is not None:
            return BUILTIN if self.runner(argv) == 0 else ABSENT
        if os.geteuid() != 0 or shutil.which("unshare") is None or shutil.which(f.try_argv[0]) is None:
            return UNKNOWN
        return BUILTIN if _run_quiet(argv) == 0 else ABSENT


def _run_quiet(argv: list[str]) -> int:
    try:
        return subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=10).returncode
    except (OSError, subprocess.TimeoutExpired):
        return 1


_default: Kernel | None = None


def running_kernel() -> Kernel:
    global _default
    if _default is None:
        _default = Kernel()
    return _default


def _usable(f: Feature, k: Kernel | None) -> bool:
    return (k or running_kernel()).state(f) in USABLE


def has_ipvs(k: Kernel | None = None) -> bool:
    """IPVS is in the kernel: loaded, built in, or an installed module (then `modprobe ip_vs` loads
    it, as kube-proxy does when the IPVS mode is asked for)."""
    return _usable(IPVS, k)


def has_dummy(k: Kernel | None = None) -> bool:
    return _usable(DUMMY, k)


def has_netem(k: Kernel | None = None) -> bool:
    return _usable(NETEM, k)


def has_ipip(k: Kernel | None = None) -> bool:
    return _usable(IPIP, k)


def _problem(f: Feature, state: str, why: str) -> str:
    if state == UNKNOWN:
        return (f"cannot tell whether the kernel ({os.uname().release}) has {f.name} ({f.module} module, "
                f"{why}): it shows no build configuration and no modules directory")
    return f"the kernel has no {f.name} ({f.module} module, {why})"


def _ipvs_problems(k: Kernel) -> list[str]:
    problems = []
    s = k.state(IPVS)
    if s not in USABLE:
        problems.append(_problem(IPVS, s, "where the IPVS proxy mode programs the Services"))
    elif (rr := k.state(IPVS_RR)) not in USABLE:
        problems.append(_problem(IPVS_RR, rr, "the IPVS proxy mode's default scheduler"))
    s = k.state(DUMMY)
    if s not in USABLE:
        problems.append(_problem(DUMMY, s, "for kube-ipvs0, the device that holds the Service IPs"))
    return problems


def missing_for_ipvs(k: Kernel | None = None) -> list[str]:
    """What the IPVS proxy mode needs and this kernel lacks, one message each with how to get it; [] if
    nothing."""
    return [f"{p}: {KERNEL_HINT}, {VM_HINT}" for p in _ipvs_problems(k or running_kernel())]


def ipvs_refusal(k: Kernel | None = None) -> str | None:
    """The one line that refuses the IPVS mode on this kernel (None: it has what the mode needs):
    every missing feature, then how to get them, once."""
    problems = _ipvs_problems(k or running_kernel())
    if not problems:
        return None
    return (f"kube-proxy mode ipvs cannot run on this kernel: {'; '.join(problems)}; {KERNEL_HINT}, {VM_HINT} "
            "(netlab does not fall back to another mode)")


def backend_refusal(backend: str, k: Kernel | None = None) -> str | None:
    """The one line that refuses a pod network backend this kernel cannot build (None: it can). Only
    `ipip` needs a feature of its own: the ipip module, whose fallback device tunl0 carries the tunnel."""
    if backend != "ipip":
        return None
    s = (k or running_kernel()).state(IPIP)
    if s in USABLE:
        return None
    why = _problem(IPIP, s, "whose device tunl0 carries the tunnel")
    return (f"networking.backend ipip cannot run on this kernel: {why}; "
            f"{KERNEL_HINT}, {VM_HINT}; or use networking.backend vxlan (netlab does not fall back to another backend)")


def hosts_refusal(where: str, k: Kernel | None = None) -> str | None:
    """The one line that refuses a lab spread over hosts (the Cluster document `where`'s `hosts`) on a kernel
    without VXLAN, which carries the underlay between the hosts (None: the kernel has it)."""
    s = (k or running_kernel()).state(VXLAN)
    if s in USABLE:
        return None
    why = _problem(VXLAN, s, "which carries the node underlay between the hosts")
    return f"{where}: hosts cannot be joined on this kernel: {why}; {KERNEL_HINT}, {VM_HINT}; or remove hosts"


def report(k: Kernel | None = None) -> dict[str, str]:
    """Feature name -> state, for people and logs."""
    k = k or running_kernel()
    return {f.module: k.state(f) for f in (IPVS, IPVS_RR, DUMMY, NETEM, IPIP, IPSET, VXLAN)}


def main() -> int:
    k = running_kernel()
    print(f"kernel {k.release}")
    for mod, state in report(k).items():
        print(f"  {mod:10} {state}")
    problems = missing_for_ipvs(k)
    for p in problems:
        print(f"IPVS mode: {p}")
    if not problems:
        print("IPVS mode: the kernel has what it needs")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
