"""What netlab may leave on a host, measured: used by the suite's leak check (tests/conftest.py) and the
reliability tests (tests/integration/test_reliability.py).

Two kinds of measurement:

* `root_snapshot()`: the host's root network namespace as text (links, addresses, routes, rules,
  permanent neighbours and FDB entries, iptables/ip6tables/arptables/ebtables in every flavour, the
  nft ruleset, and every sysctl netlab writes anywhere, read in the root namespace). No test changes
  the root namespace, so it can be compared byte for byte even while other tests run in parallel.
* `lab_footprint(lab)`: everything one lab has on the host: its named namespaces, the mounts under
  /run/netns and /run/netlab that belong to it, its state directory, the processes netlab started for it
  (by NETLAB_OWNER tag, by command line naming its state directory, or living in one of its
  namespaces). After `down` all of it must be empty. Scoped to one lab, so it is safe in parallel.

Decision on /run/netns (documented here because it is the one thing netlab may create on the host that
is not named after a lab): like `ip netns add`, netlab makes /run/netns a shared bind mount of itself
the first time a namespace is named there (so the namespace files show in every mount namespace), and
leaves that mount point in place on `down`, as iproute2 does (removing it would hide other tools'
namespaces). The invariant the tests assert: netlab adds no mount except that single /run/netns mount
point, never stacks a second one, and after `down` nothing of a lab is mounted under /run/netns or
/run/netlab. Kernel modules loaded on demand (veth, vxlan, bridge, br_netfilter) are not counted: the
kernel loads them the same way for `ip link add`.
"""
from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess

RUN_NETNS = "/run/netns"
RUN_NETLAB = "/run/netlab"

# every sysctl netlab writes in some namespace (netlab/render/fabric.py, netlab/dataplane/fabric.py);
# read here in the root namespace, where none of them may change
SYSCTL_GLOBS = [
    "/proc/sys/net/ipv4/ip_forward",
    "/proc/sys/net/ipv4/icmp_ratelimit",
    "/proc/sys/net/ipv4/conf/*/rp_filter",
    "/proc/sys/net/ipv4/conf/*/route_localnet",
    "/proc/sys/net/ipv4/conf/*/forwarding",
    "/proc/sys/net/bridge/*",
    "/proc/sys/net/ipv6/conf/all/forwarding",
    "/proc/sys/net/ipv4/neigh/default/gc_thresh*",
]

SAVE_COMMANDS = ["iptables-legacy-save", "iptables-nft-save", "ip6tables-legacy-save", "ip6tables-nft-save",
                 "arptables-save", "ebtables-save"]


def run(argv: list[str]) -> str:
    if shutil.which(argv[0]) is None:
        return f"<{argv[0]} not installed>"
    p = subprocess.run(argv, capture_output=True, text=True)
    return p.stdout + p.stderr


def _sysctls() -> str:
    lines = []
    for pattern in SYSCTL_GLOBS:
        for path in sorted(glob.glob(pattern)):
            try:
                with open(path) as f:
                    lines.append(f"{path[len('/proc/sys/'):]} = {f.read().strip()}")
            except OSError as e:
                lines.append(f"{path}: {e.strerror}")
    return "\n".join(lines) + "\n"


def root_snapshot() -> dict[str, str]:
    """The host's root netns as text, with counters, timestamps and lifetimes removed."""
    snap = {
        "links": run(["ip", "-o", "link", "show"]),
        "addrs": run(["ip", "-o", "addr", "show"]),
        "routes": run(["ip", "route", "show", "table", "all"]),
        "routes6": run(["ip", "-6", "route", "show", "table", "all"]),
        "rules": run(["ip", "rule", "show"]),
        "rules6": run(["ip", "-6", "rule", "show"]),
        # neighbours the host learns come and go on their own; what anyone *configured* does not
        "neigh": run(["ip", "neigh", "show", "nud", "permanent"]) + run(["ip", "neigh", "show", "proxy"]),
        "fdb": "\n".join(l for l in run(["bridge", "fdb", "show"]).splitlines() if "permanent" in l or "static" in l),
        "sysctls": _sysctls(),
        "nft": run(["nft", "list", "ruleset"]),
    }
    for cmd in SAVE_COMMANDS:
        snap[cmd] = run([cmd])
    for k, v in snap.items():
        v = re.sub(r"^#.*$", "", v, flags=re.M)                    # iptables-save timestamps
        v = re.sub(r"\[\d+:\d+\]", "[0:0]", v)                     # counters
        v = re.sub(r"valid_lft \S+ preferred_lft \S+", "", v)      # address lifetimes
        v = re.sub(r"expires \d+sec", "", v)                       # RA routes
        v = re.sub(r"-c \d+ \d+", "", v)                           # ebtables/arptables counters
        snap[k] = v
    return snap


def diff_snapshots(a: dict[str, str], b: dict[str, str]) -> list[str]:
    """Keys that differ, each with the first differing lines."""
    out = []
    for key in sorted(set(a) | set(b)):
        if a.get(key) != b.get(key):
            la, lb = (a.get(key) or "").splitlines(), (b.get(key) or "").splitlines()
            gone = [l for l in la if l not in lb][:3]
            new = [l for l in lb if l not in la][:3]
            out.append(f"{key}: -{gone} +{new}")
    return out


# ------------------------------------------------------------------ one lab

def mounts() -> list[tuple[str, str, str]]:
    """(mount point, root, fs type) of every mount under /run/netns and /run/netlab, in order."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            sep = fields.index("-")
            point = fields[4].replace("\\040", " ")
            if point == RUN_NETNS or point.startswith(RUN_NETNS + "/") or point == RUN_NETLAB or \
                    point.startswith(RUN_NETLAB + "/"):
                out.append((point, fields[3], fields[sep + 1]))
    return out


def base_mounts() -> list[tuple[str, str, str]]:
    """The mount points /run/netns and /run/netlab themselves (not the namespace files inside)."""
    return [m for m in mounts() if m[0] in (RUN_NETNS, RUN_NETLAB)]


def lab_namespace_files(lab: str) -> list[str]:
    try:
        names = os.listdir(RUN_NETNS)
    except FileNotFoundError:
        return []
    return sorted(n for n in names if n.startswith(f"nl.{lab}."))


def _proc_text(pid: str, name: str) -> bytes:
    try:
        with open(f"/proc/{pid}/{name}", "rb") as f:
            return f.read()
    except OSError:
        return b""


def lab_processes(lab: str, netns_inodes: set[tuple[int, int]] | None = None) -> list[str]:
    """Processes that belong to `lab`: tagged NETLAB_OWNER=<lab>/..., or whose command line names its
    state directory, or (given their inodes) living in one of its namespaces. 'pid cmdline' each."""
    tag = f"NETLAB_OWNER={lab}/".encode()
    path = f"{RUN_NETLAB}/{lab}/".encode()
    me = str(os.getpid())
    # a namespace inode recorded for this lab, once its namespace is gone, may be the kernel's again for a
    # namespace someone else named (another lab's, made by a test running alongside): not this lab's
    others = set()
    if netns_inodes:
        for n in os.listdir(RUN_NETNS) if os.path.isdir(RUN_NETNS) else []:
            if not n.startswith(f"nl.{lab}."):
                try:
                    st = os.stat(os.path.join(RUN_NETNS, n))
                    others.add((st.st_dev, st.st_ino))
                except OSError:
                    pass
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or pid == me:
            continue
        cmd = _proc_text(pid, "cmdline")
        if not cmd:  # kernel thread or gone
            continue
        stat = _proc_text(pid, "stat")
        if stat and stat[stat.rindex(b")") + 2:][:1] == b"Z":
            continue  # a zombie holds nothing
        hit = path in cmd or tag in _proc_text(pid, "environ")
        if not hit and netns_inodes:
            try:
                st = os.stat(f"/proc/{pid}/ns/net")
                hit = (st.st_dev, st.st_ino) in netns_inodes - others
            except OSError:
                pass
        if hit:
            out.append(pid + " " + cmd.replace(b"\0", b" ").decode(errors="replace").strip())
    return sorted(out)


def lab_netns_inodes(lab: str) -> set[tuple[int, int]]:
    out = set()
    for n in lab_namespace_files(lab):
        try:
            st = os.stat(os.path.join(RUN_NETNS, n))
            out.add((st.st_dev, st.st_ino))
        except OSError:
            pass
    return out


def state_files(lab: str) -> list[str]:
    base = os.path.join(RUN_NETLAB, lab)
    out = []
    for root, dirs, files in os.walk(base):
        for name in dirs + files:
            out.append(os.path.relpath(os.path.join(root, name), base))
    return sorted(out)


def lab_footprint(lab: str, inodes: set[tuple[int, int]] | None = None) -> dict[str, list]:
    """Everything of `lab` on the host; all empty once it is down. `inodes`: the lab's namespace
    inodes recorded while it was up, so processes still inside a namespace whose file is gone count."""
    ns_mounts = [m for m in mounts() if m[0].startswith((f"{RUN_NETNS}/nl.{lab}.", f"{RUN_NETLAB}/{lab}/"))]
    return {
        "namespaces": lab_namespace_files(lab),
        "mounts": ns_mounts,
        "state": ([os.path.join(RUN_NETLAB, lab)] if os.path.lexists(os.path.join(RUN_NETLAB, lab)) else [])
        + state_files(lab),
        "processes": lab_processes(lab, (inodes or set()) | lab_netns_inodes(lab)),
    }


def leftovers(fp: dict[str, list]) -> dict[str, list]:
    return {k: v for k, v in fp.items() if v}


def run_listing() -> set[str]:
    """Top-level entries of /run (a new one there would be netlab's footprint)."""
    try:
        return set(os.listdir("/run"))
    except FileNotFoundError:
        return set()


def open_fds() -> list[str]:
    """This process's open file descriptors (what they point at)."""
    out = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            out.append(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            pass
    return sorted(out)
