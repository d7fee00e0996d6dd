"""Helpers shared by the live-lab benchmarks (live_reaction.py, live_rollout.py): the lab's CLI, pods'
readiness in the store, whether nodes' proxy rules choose a pod, watchers that time both from threads,
and the control loop's CPU and memory from /proc.

Nothing here measures on its own: each benchmark takes its samples with these and keeps them raw.
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from netlab.dataplane import lab as labmod  # noqa: E402
from netlab.dataplane.iptables import flavour_commands  # noqa: E402
from netlab.live import loop  # noqa: E402
from netlab.render.kubeproxy_iptables import sep_chain, svc_chain  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def netlab(lab: str, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """The CLI, as a user runs it (its own process), against `lab`; raises with its stderr on failure."""
    exe = os.path.join(os.path.dirname(sys.executable), "netlab")
    argv = [exe] if os.path.exists(exe) else [sys.executable, "-m", "netlab"]
    r = subprocess.run([*argv, *args, "--lab", lab], capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError(f"netlab {' '.join(args)} --lab {lab}: exit {r.returncode}: {r.stderr.strip()}")
    return r


def conditions(pod: dict) -> dict[str, str]:
    return {c["type"]: c["status"] for c in (pod.get("status") or {}).get("conditions") or []}


def ready(store, name: str, namespace: str = "default") -> bool | None:
    """The pod's Ready condition in the store (None: no such pod)."""
    p = store.try_get("Pod", namespace, name)
    return None if p is None else conditions(p).get("Ready") == "True"


def pods(store, prefix: str = "") -> list[dict]:
    return [p for p in store.list("Pod") if p["metadata"]["name"].startswith(prefix)]


def pod_ip(pod: dict) -> str | None:
    return (pod.get("status") or {}).get("podIP")


def nat_rules(netns: str) -> str:
    """The node's whole nat table as iptables-save prints it (the lab's proxy mode is iptables)."""
    save = flavour_commands("auto")[2]
    r = subprocess.run(labmod.netns_exec_argv(netns, [save, "-t", "nat"]), capture_output=True, text=True)
    return r.stdout


def chooses(rules: str, ip: str) -> bool:
    """Whether a node's nat table (iptables-save) DNATs to the pod `ip` (any port)."""
    return f"--to-destination {ip}:" in rules


class ServiceChain:
    """A Service port's KUBE-SVC chain on a node, read alone (`iptables -t nat -S CHAIN`: a few ms where
    a whole iptables-save of a 1,000-endpoint table costs ~100 ms of CPU, which, read again and again on
    every node, would take the CPU the control loop needs). The rules choose a pod when this chain jumps
    to the pod's KUBE-SEP chain (the names are kube-proxy's hashes, computed as netlab's renderer does)."""

    def __init__(self, service_port_name: str = "default/web", protocol: str = "TCP", target_port: int = 8080):
        self.name, self.proto, self.port = service_port_name, protocol, target_port
        self.chain = svc_chain(service_port_name, protocol)
        self.iptables = "iptables-" + flavour_commands("auto")[0]

    def read(self, netns: str) -> str:
        r = subprocess.run(labmod.netns_exec_argv(netns, [self.iptables, "-t", "nat", "-S", self.chain]),
                           capture_output=True, text=True)
        return r.stdout

    def jump(self, ip: str) -> str:
        return f"-j {sep_chain(self.name, self.proto, f'{ip}:{self.port}')}"

    def chooses(self, rules: str, ip: str) -> bool:
        jump = self.jump(ip)
        return any(line.endswith(jump) for line in rules.splitlines())

    def check(self, node_netns: list[str], ips: list[str], chosen: bool = True) -> None:
        """Refuse to time anything unless every node's chain now chooses (or not) every pod of `ips`:
        a wrong chain or endpoint name would otherwise read as an instant change."""
        for n in node_netns:
            text = self.read(n)
            bad = [ip for ip in ips if self.chooses(text, ip) != chosen]
            if bad:
                raise RuntimeError(f"{n}: {self.chain} {'does not choose' if chosen else 'chooses'} {bad}:\n{text[:500]}")


class RulesWatch:
    """One thread per node reading its rules (`read(netns)`: by default the whole nat table) again and
    again until `done(rules)` holds, recording when it first did (time.time()); `last()` is the last
    node's time. A thread waits `every` s after each read, or as long as the read took if longer: the
    readers never take more than about half of what the machine has left."""

    def __init__(self, node_netns: list[str], done, every: float = 0.02, timeout: float = 120.0, read=None):
        self.at: dict[str, float | None] = {n: None for n in node_netns}
        self.reads: dict[str, int] = {n: 0 for n in node_netns}
        self.read_s: dict[str, float] = {n: 0.0 for n in node_netns}
        self.done, self.every, self.timeout = done, every, timeout
        self.read = read or nat_rules
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._watch, args=(n,), daemon=True) for n in node_netns]

    def start(self) -> "RulesWatch":
        for t in self.threads:
            t.start()
        return self

    def _watch(self, netns: str) -> None:
        end = time.monotonic() + self.timeout
        while not self.stop.is_set() and time.monotonic() < end:
            t0 = time.perf_counter()
            rules = self.read(netns)
            took = time.perf_counter() - t0
            self.read_s[netns] += took
            self.reads[netns] += 1
            if self.done(rules):
                self.at[netns] = time.time()
                return
            self.stop.wait(max(self.every, took))

    def wait(self) -> float | None:
        for t in self.threads:
            t.join()
        return self.last()

    def last(self) -> float | None:
        return None if any(v is None for v in self.at.values()) else max(self.at.values())

    def mean_read_s(self) -> float:
        n = sum(self.reads.values())
        return sum(self.read_s.values()) / n if n else 0.0


def until(what: str, check, timeout: float, every: float = 0.02):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        got = check()
        if got:
            return got
        time.sleep(every)
    raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")


# ---------------------------------------------------------------- the control loop process

def loop_pid(lab: str) -> int:
    rec = loop.running(lab)
    if rec is None:
        raise RuntimeError(f"lab {lab} has no control loop running")
    return int(rec["pid"])


def proc_cpu(pid: int) -> dict:
    """CPU seconds of the process (utime+stime, all its threads) and of its waited-for children
    (cutime+cstime: the exec probes' commands, for example), from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    # after the ")": state is field 3 of stat(5), so field N is parts[N - 3]
    return {"self_s": (int(parts[11]) + int(parts[12])) / TICK,
            "children_s": (int(parts[13]) + int(parts[14])) / TICK}


def proc_mem(pid: int) -> dict:
    """VmRSS and VmHWM (peak RSS) in KiB and the thread count, from /proc/PID/status."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM"):
                out[k.lower() + "_kib"] = int(v.split()[0])
            elif k == "Threads":
                out["threads"] = int(v)
    return out


def idle_window(pid: int, seconds: float) -> dict:
    """The loop's CPU over a fixed window of wall time, as percent of one core, and its memory at the end."""
    c0, w0 = proc_cpu(pid), time.monotonic()
    time.sleep(seconds)
    c1, w1 = proc_cpu(pid), time.monotonic()
    wall = w1 - w0
    return {"window_s": round(wall, 2),
            "cpu_percent": round(100 * (c1["self_s"] - c0["self_s"]) / wall, 2),
            "children_cpu_percent": round(100 * (c1["children_s"] - c0["children_s"]) / wall, 2),
            **proc_mem(pid), "loadavg_after": os.getloadavg()}


def down(lab: str) -> None:
    """Remove the lab (the benchmark's own, by name)."""
    labmod.down(lab)
