"""Shared helpers of the benchmark suite: what machine this is, statistics, the host checks.

Nothing here measures anything; every figure the suite reports is a sample taken by one of the
benchmarks and kept in its JSON (raw samples and their medians).
"""
from __future__ import annotations

import contextlib
import datetime
import json
import math
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


# ---------------------------------------------------------------- the machine and the tools

def run_text(argv: list[str]) -> str:
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"unavailable ({e.__class__.__name__})"
    return (p.stdout or p.stderr).strip()


def tool_version(name: str, argv: list[str] | None = None) -> str | None:
    """First line of `NAME --version` (or argv), None if the tool is not installed."""
    if shutil.which(name) is None:
        return None
    text = run_text(argv or [name, "--version"])
    return text.splitlines()[0].strip() if text else ""


def deb_version(pkg: str) -> str | None:
    text = run_text(["dpkg-query", "-W", "-f=${Status} ${Version}", pkg])
    return text.split()[-1] if text.startswith("install ok installed") else None


def machine() -> dict:
    cpu_model = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    mem_kib = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    distro = ""
    if os.path.exists("/etc/os-release"):
        with open("/etc/os-release") as f:
            m = re.search(r'^PRETTY_NAME="?([^"\n]*)', f.read(), re.M)
            distro = m.group(1) if m else ""
    commit = run_text(["git", "--no-optional-locks", "-C", ROOT, "rev-parse", "--short", "HEAD"])   # read-only
    dirty = bool(run_text(["git", "--no-optional-locks", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"]).strip())
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpus": os.cpu_count(), "cpu_model": cpu_model, "mem_gib": round(mem_kib / 2**20, 1),
        "kernel": platform.release(), "distro": distro, "python": platform.python_version(),
        "netlab_commit": commit + ("+local changes" if dirty else ""),
        "loadavg_at_start": os.getloadavg(),
    }


# ---------------------------------------------------------------- statistics

def median(xs) -> float | None:
    xs = list(xs)
    return statistics.median(xs) if xs else None


def percentile(xs, p: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default), p in [0, 100]."""
    xs = sorted(xs)
    if not xs:
        return None
    k = (len(xs) - 1) * p / 100
    lo, hi = math.floor(k), math.ceil(k)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def fmt_s(x: float | None) -> str:
    if x is None:
        return "-"
    if x >= 10:
        return f"{x:.1f} s"
    if x >= 1:
        return f"{x:.2f} s"
    if x >= 0.001:
        return f"{x * 1000:.1f} ms"
    return f"{x * 1e6:.0f} us"


def dump(path: str | None, obj) -> None:
    if not path:
        return
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(obj, f, indent=1, default=str)
        f.write("\n")


def banner(title: str, extra: dict | None = None) -> dict:
    """Print what is being run on what, and return it for the JSON."""
    m = machine()
    print(f"== {title}")
    print(f"   {m['date']}, kernel {m['kernel']}, {m['distro']}, {m['cpus']} cpus ({m['cpu_model']}), "
          f"{m['mem_gib']} GiB, Python {m['python']}, netlab {m['netlab_commit']}, load {m['loadavg_at_start']}")
    for k, v in (extra or {}).items():
        print(f"   {k}: {v}")
    sys.stdout.flush()
    return {**m, **(extra or {})}


# ---------------------------------------------------------------- the host's neighbour table

ARP_STAT = "/proc/net/stat/arp_cache"


def arp_stat() -> dict:
    """Entries (one global count) and table_fulls (summed over CPUs) of the kernel's IPv4 neighbour table."""
    with open(ARP_STAT) as f:
        head = f.readline().split()
        rows = [[int(x, 16) for x in line.split()] for line in f if line.strip()]
    col = {name: i for i, name in enumerate(head)}
    return {"entries": rows[0][col["entries"]] if rows else 0,
            "table_fulls": sum(r[col["table_fulls"]] for r in rows) if "table_fulls" in col else 0}


NEIGH_LIMITS = {"net/ipv4/neigh/default/gc_thresh2": "32768", "net/ipv4/neigh/default/gc_thresh3": "65536"}


@contextlib.contextmanager
def neigh_limits(wanted: bool = True):
    """For the block, the host's neighbour-table limits raised as `up`'s note advises (`--neigh-limits` of the
    large benchmarks: shared by every namespace, the default 1024 drops probes of labs of a few thousand
    addresses); the old values are put back afterwards, whatever happens. Nothing when not `wanted`."""
    if not wanted:
        yield
        return
    import signal
    old = {}
    for k in NEIGH_LIMITS:
        with open(f"/proc/sys/{k}") as f:
            old[k] = f.read().strip()
    # a run ended by SIGTERM (kill, a CI's timeout) puts them back too: Python's default would end it at once
    before = signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        for k, v in NEIGH_LIMITS.items():
            with open(f"/proc/sys/{k}", "w") as f:
                f.write(v)
        yield
    finally:
        for k, v in old.items():
            with open(f"/proc/sys/{k}", "w") as f:
                f.write(v)
        signal.signal(signal.SIGTERM, before)


def gc_thresh3() -> int:
    with open("/proc/sys/net/ipv4/neigh/default/gc_thresh3") as f:
        return int(f.read())


# ---------------------------------------------------------------- the host's root network namespace

def root_netns_snapshot() -> dict[str, str]:
    """The root namespace as text (run from the host's root netns): links, addresses, routes, rules,
    neighbour-table limits. Compared before and after a run to show the benchmark changed nothing."""
    snap = {
        "links": run_text(["ip", "-o", "link", "show"]),
        "addresses": run_text(["ip", "-o", "addr", "show"]),
        "routes": run_text(["ip", "route", "show", "table", "all"]),
        "rules": run_text(["ip", "rule", "show"]),
    }
    for key in ("gc_thresh1", "gc_thresh2", "gc_thresh3"):
        with open(f"/proc/sys/net/ipv4/neigh/default/{key}") as f:
            snap[key] = f.read().strip()
    # link statistics change all the time: compare names, flags and addresses only
    snap["links"] = "\n".join(re.sub(r"\s+link/\S+ \S+( brd \S+)?", "", line).split(" qlen")[0]
                              for line in snap["links"].splitlines())
    return snap


def snapshot_diff(a: dict[str, str], b: dict[str, str]) -> list[str]:
    return [k for k in a if a[k] != b.get(k)]


def live_netns() -> int:
    """Network namespaces alive in the kernel, dying ones included: the active objects of the
    net_namespace slab cache (/proc/slabinfo). The kernel frees a namespace asynchronously (cleanup_net, in
    a workqueue) after its last reference is gone; for 1000 namespaces with veths that takes seconds, and
    it holds the locks a new namespace or link needs."""
    with open("/proc/slabinfo") as f:
        for line in f:
            if line.startswith("net_namespace "):
                return int(line.split()[1])
    return -1


def cpu_busy(window: float = 0.5) -> float:
    """The machine's CPU use over the next `window` s, 0..1, every core counted (/proc/stat)."""
    def snap():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return sum(v), v[3] + v[4]   # all, idle + iowait
    a = snap()
    time.sleep(window)
    b = snap()
    total = b[0] - a[0]
    return 1.0 - (b[1] - a[1]) / total if total > 0 else 0.0


def settle(baseline: int | None = None, timeout: float = 60.0, quiet: float = 0.1) -> dict:
    """Wait until the kernel has freed the namespaces of the previous sample: live_netns() back to within a
    few of `baseline` (taken before the sample), or no longer falling for 5 s (other sessions on the machine
    create namespaces too, so the count need not come all the way back), and then until the machine is
    quiet (under `quiet` of its CPU busy over half a second), so that one sample's cleanup is not billed to
    the next. The second wait is needed because the slab count can stay put while the kernel still works:
    on this machine's kernel net_namespace's active objects stayed at 8,086 for minutes with no lab alive,
    and cleanup_net keeps a core busy for about 5 s after 10,000 pods went. Returns how long that took and
    the CPU use it ended on (the machine's other load, when it did not get quiet within `timeout`)."""
    t0 = time.perf_counter()
    n = live_netns()
    if baseline is not None and n >= 0:
        low, since = n, time.perf_counter()
        while n > baseline + 8 and time.perf_counter() - t0 < timeout and time.perf_counter() - since < 5.0:
            time.sleep(0.1)
            n = live_netns()
            if n < low:
                low, since = n, time.perf_counter()
    busy = cpu_busy()
    while busy >= quiet and time.perf_counter() - t0 < timeout:
        busy = cpu_busy()
    time.sleep(0.3)
    return {"settle_s": round(time.perf_counter() - t0, 2), "netns_left": n - (baseline or 0),
            "cpu_busy": round(busy, 3)}


# ---------------------------------------------------------------- a synthetic cluster

def synthetic_cluster(n: int, name: str, proxy_mode: str = "iptables"):
    """Two worker nodes and N ClusterIP Services of one TCP port, 3 endpoints each spread over both
    nodes, with no pods behind them: what the proxy-sync benchmarks render and load."""
    import ipaddress

    from netlab.model.build import build
    from netlab.model.objects import Endpoint, Service, ServicePort
    from netlab.spec.parse import load_text
    from netlab.spec.types import ServicePortSpec, ServiceSpec
    sc = load_text(f"kind: Cluster\nname: {name}\nnodes: [{{role: worker, name: n1}}, {{role: worker, name: n2}}]\n"
                   f"networking: {{serviceSubnet: 10.96.0.0/12, kubeProxyMode: {proxy_mode}}}\n")
    cluster = build(sc)
    base = int(ipaddress.ip_address("10.96.0.0"))
    services = []
    for i in range(n):
        spec = ServiceSpec("default", f"svc{i}", "ClusterIP", {"app": f"a{i}"},
                           [ServicePortSpec("http", 80, "TCP", 8080, None)], None, [], None, "None", 10800,
                           "Cluster", "Cluster", None, {})
        svc = Service(spec, ipaddress.IPv4Address(base + 20 + i), [ServicePort("http", 80, "TCP", 8080, None)])
        eps = []
        for k in range(3):
            node = cluster.nodes[k % 2]
            ip = node.pod_cidr.network_address + 2 + (i * 3 + k) % 250
            eps.append(Endpoint(ip, 8080, node.name, f"p{i}-{k}", "default"))
        svc.endpoints = {"http": eps}
        services.append(svc)
    cluster.services = services
    return cluster
