"""The BGP backend (issue 17, Performance): route convergence after a node stop, and pod-to-pod throughput
and 64-byte request/response next to host-gw and VXLAN in one run. Run as root (scripts/bench --only bgp
runs it in its private /run/netns).

    sudo .venv/bin/python benchmarks/bgp_bench.py [--repeat 3] [--hold 6] [--keepalive 2] [--every 0.01]
                                                  [--seconds 5] [--rr 2000] [--net-repeat 3] [--tcprr PATH]
                                                  [--skip convergence|network] [--json out.json]

Convergence: a lab of 3 worker nodes (w1, w2, w3), `backend: bgp` with holdTime --hold and keepaliveTime
--keepalive, nothing else in it (no pods, no cluster DNS). Watchers (benchmarks/bgp_watch.py, one process
in each namespace, polling every --every s, no process started per poll) follow w3's podCIDR in the
external router's main routing table and in w1's, and the carrier of w3's eth0. REPEAT times:
  - t0, `netlab node stop w3` (the CLI, as a user runs it: it marks the node, the lab's control loop cuts
    its underlay link); timed from t0: w3's link down (netlab's own reaction), the podCIDR gone from the
    router's table (the router's BIRD declares the session down when the hold timer expires, withdraws
    the route and its kernel protocol removes it) and from w1's;
  - one second later, t1, `netlab node start w3`; timed from t1: the link up, the podCIDR back at the
    router (BIRD's reconnect, OPEN, UPDATE) and at w1.
Withdrawal after the link went down is bounded by the hold time. BIRD starts each BGP timer at 75-100 % of
its value, at random (RFC 4271's jitter): the router's hold timer, restarted by every message from w3,
runs out 0.75-1 x hold after w3's last keepalive, itself sent 0.75-1 x keepalive after the one before; so
the withdrawal comes between about 0.75 x hold - keepalive and hold after the link went down (2.5-6 s with
the defaults); the repeats sample that phase. The way back grows from one repeat to the next: a session
that failed waits BIRD's `error wait time` (netlab renders 1, 5: 1 s, doubled after each failure within
BIRD's error forget time of 300 s, at most 5 s) before it connects again, so repeats 1, 2, 3 come back
about 1, 2 and 4 s after the link.

Throughput and request/response: three labs of two worker nodes, built like benchmarks/network.py's (its
Lab and scenario: a client pod on w1, an iperf3 server and benchmarks/tcprr.c's echo server in a pod on
w2, underlay MTU 1500), one per backend: bgp (routes `proto bird` learned from w2's BIRD), host-gw (static
routes) and vxlan (flannel.1). Each lab's route from w1 to w2's podCIDR is checked to be what the backend
says before anything is timed. Per repeat, backends interleaved: iperf3 -c for --seconds (one TCP
stream), then tcprr (one connection, --rr round trips of 64 bytes, client and echo server on CPU 0, as the
network part does). Throughput: median over repeats; latency percentiles over all round trips.
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import livelab as ll  # noqa: E402
import network  # noqa: E402

from netlab import lab_spec  # noqa: E402
from netlab.dataplane import lab as labmod  # noqa: E402
from netlab.spec.parse import load_text  # noqa: E402

WATCH = os.path.join(common.HERE, "bgp_watch.py")
BACKENDS = ("bgp", "host-gw", "vxlan")
STOPPED = "w3"


def scenario(name: str, hold: int, keepalive: int) -> str:
    return f"""apiVersion: netlab.dev/v1alpha1
kind: Cluster
name: {name}
nodes: [{{role: worker, name: w1}}, {{role: worker, name: w2}}, {{role: worker, name: {STOPPED}}}]
networking: {{backend: bgp, kubeProxyMode: iptables, bgp: {{holdTime: {hold}, keepaliveTime: {keepalive}}}}}
dns: {{replicas: 0}}
"""


def first_after(events: list[tuple[float, str]], after: float, state: str) -> float | None:
    """The time of the first event at or after `after` whose state is `state` (events in time order)."""
    return next((t for t, s in events if t >= after and s == state), None)


def intervals(t0: float, marks: dict[str, float | None]) -> dict[str, float | None]:
    """Each mark as seconds after t0 (rounded to 0.1 ms; None stays None)."""
    return {k: None if v is None else round(v - t0, 4) for k, v in marks.items()}


def summarize(samples: list[dict], keys) -> dict:
    """Median and max of each key over the samples that have it."""
    out = {}
    for k in keys:
        xs = [s[k] for s in samples if s.get(k) is not None]
        out[k] = {"median": common.median(xs), "max": max(xs) if xs else None, "n": len(xs)}
    return out


class Watch:
    """benchmarks/bgp_watch.py in namespace `netns`; its state changes collected by a thread."""

    def __init__(self, netns: str, kind: str, target: str, every: float):
        self.what = f"{kind} {target} in {netns}"
        self.p = subprocess.Popen(labmod.netns_exec_argv(netns, [sys.executable, WATCH, kind, target, str(every)]),
                                  stdout=subprocess.PIPE, text=True)
        self.events: list[tuple[float, str]] = []
        self.cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.p.stdout:
            t, state = line.split()
            with self.cond:
                self.events.append((float(t), state))
                self.cond.notify_all()

    def wait(self, state: str, after: float, timeout: float) -> float:
        """The first time at or after `after` the watcher saw `state` (waiting for it at most `timeout` s)."""
        end = time.monotonic() + timeout
        with self.cond:
            while (t := first_after(self.events, after, state)) is None:
                left = end - time.monotonic()
                if left <= 0 or self.p.poll() is not None:
                    raise RuntimeError(f"{self.what}: not {state} within {timeout:.0f} s (events: {self.events[-5:]})")
                self.cond.wait(min(left, 0.5))
        return t

    def now(self) -> str | None:
        with self.cond:
            return self.events[-1][1] if self.events else None

    def stop(self) -> None:
        self.p.kill()
        self.p.wait()


def convergence(args, tag: str) -> dict:
    name = f"bcv{tag}"
    text = scenario(name, args.hold, args.keepalive)
    labmod.down(name)
    watches: list[Watch] = []
    samples = []
    try:
        cluster = lab_spec.up(load_text(text, "<bench bgp>"), text).cluster
        cfg = cluster.networking.bgp
        cidr = str(cluster.node(STOPPED).pod_cidr)
        router = Watch(cluster.external_netns, "route", cidr, args.every)
        peer = Watch(cluster.node("w1").netns, "route", cidr, args.every)
        link = Watch(cluster.node(STOPPED).netns, "link", "eth0", args.every)
        watches = [router, peer, link]
        for i in range(args.repeat):
            # settled: w3 up and its podCIDR at the router and at w1, then one more second (w3's other sessions)
            end = time.monotonic() + 60
            while (now := (router.now(), peer.now(), link.now())) != ("present", "present", "up"):
                if time.monotonic() > end:
                    raise RuntimeError(f"not settled before repeat {i + 1}: router {now[0]}, w1 {now[1]}, "
                                       f"link {now[2]}")
                time.sleep(0.05)
            time.sleep(1.0)
            t0 = time.time()
            ll.netlab(name, "node", "stop", STOPPED)
            t_cli = time.time()
            t_down = link.wait("down", t0, 60)
            t_gone = router.wait("absent", t0, args.hold + 60)
            t_peer = peer.wait("absent", t0, args.hold + 60)
            stop = intervals(t0, {"stop_cli_s": t_cli, "link_down_s": t_down, "withdrawn_router_s": t_gone,
                                  "withdrawn_w1_s": t_peer})
            stop["withdrawn_after_link_down_s"] = round(t_gone - t_down, 4)
            time.sleep(1.0)
            t1 = time.time()
            ll.netlab(name, "node", "start", STOPPED)
            t_cli = time.time()
            t_up = link.wait("up", t1, 60)
            t_back = router.wait("present", t1, 60)
            t_peer = peer.wait("present", t1, 60)
            start = intervals(t1, {"start_cli_s": t_cli, "link_up_s": t_up, "announced_router_s": t_back,
                                   "announced_w1_s": t_peer})
            start["announced_after_link_up_s"] = round(t_back - t_up, 4)
            s = {**stop, **start}
            samples.append(s)
            print(f"  repeat {i + 1}/{args.repeat}: stop -> link down {s['link_down_s']:.3f} s, router withdrew "
                  f"{s['withdrawn_router_s']:.3f} s ({s['withdrawn_after_link_down_s']:.3f} s after the link), w1 "
                  f"{s['withdrawn_w1_s']:.3f} s; start -> link up {s['link_up_s']:.3f} s, router has it again "
                  f"{s['announced_router_s']:.3f} s, w1 {s['announced_w1_s']:.3f} s", flush=True)
    finally:
        for w in watches:
            w.stop()
        labmod.down(name)
    keys = list(samples[0]) if samples else []
    return {"nodes": 3, "stopped": STOPPED, "pod_cidr": cidr, "hold_time_s": cfg.hold_time,
            "keepalive_time_s": cfg.keepalive_time, "poll_s": args.every, "samples": samples,
            "summary": summarize(samples, keys)}


def route_to(lab: network.Lab, node: str, cidr: str) -> str:
    r = subprocess.run(["ip", "-n", lab.cluster.node(node).netns, "-4", "route", "show", cidr], capture_output=True,
                       text=True, check=True)
    return r.stdout.strip()


def route_ok(backend: str, route: str, gateway: str) -> bool:
    """Whether w1's route to w2's podCIDR is the backend's: learned by BIRD (bgp), a static route via w2's
    underlay address (host-gw), through flannel.1 (vxlan)."""
    if backend == "bgp":
        return f"via {gateway} " in route and "proto bird" in route and "flannel" not in route
    if backend == "host-gw":
        return f"via {gateway} " in route and "proto bird" not in route and "flannel" not in route
    return "dev flannel.1" in route


def throughput(args, tag: str) -> dict:
    if shutil.which("iperf3") is None:
        raise SystemExit("iperf3 is not installed (apt-get install iperf3; scripts/bench does it)")
    if not os.access(args.tcprr, os.X_OK):
        raise SystemExit(f"{args.tcprr} is missing (scripts/bench compiles benchmarks/tcprr.c)")
    labs: dict[str, network.Lab] = {}
    res = {}
    try:
        for b in BACKENDS:
            labs[b] = network.Lab(b, tag, args.tcprr, prefix="bn")
            assert labs[b].name == f"bn{b[0]}{tag}"
        for b, lab in labs.items():
            w2 = lab.cluster.node("w2")
            route = route_to(lab, "w1", str(w2.pod_cidr))
            if not route_ok(b, route, str(w2.ip)):
                raise SystemExit(f"{lab.name}: w1's route to w2's podCIDR is not the {b} backend's: {route!r}")
            lab.wait_ready(str(lab.pods["srv-remote"].ip))
            pinned = lab.pin_rr_servers(0)
            if len(pinned) != 2:
                raise SystemExit(f"{lab.name}: expected 2 tcprr servers to pin, found {pinned}")
            res[b] = {"lab": lab.name, "route_w1_to_w2": route, "mtu": lab.mtu("srv-remote"),
                      "dst": str(lab.pods["srv-remote"].ip), "gbps": [], "retransmits": [], "rr_us": [],
                      "rr_tps": [], "rr_p50_us_runs": [], "rr_p99_us_runs": []}
        for r in range(args.net_repeat):
            order = BACKENDS[r % 3:] + BACKENDS[:r % 3]
            for b in order:
                lab, x = labs[b], res[b]
                out = json.loads(lab.exec(["iperf3", "-c", x["dst"], "-p", "5201", "-t", str(args.seconds), "-J"],
                                          timeout=args.seconds + 60))
                if "error" in out:
                    raise SystemExit(f"iperf3 {b}: {out['error']}")
                gbps = out["end"]["sum_received"]["bits_per_second"] / 1e9
                retr = out["end"]["sum_sent"].get("retransmits", 0)
                rr = json.loads(lab.exec(["taskset", "-c", "0", args.tcprr, "-c", x["dst"], "7000", str(args.rr)]))
                p50, p99 = common.percentile(rr["us"], 50), common.percentile(rr["us"], 99)
                x["gbps"].append(gbps)
                x["retransmits"].append(retr)
                x["rr_us"] += rr["us"]
                x["rr_tps"].append(rr["count"] / rr["total_s"])
                x["rr_p50_us_runs"].append(round(p50, 2))
                x["rr_p99_us_runs"].append(round(p99, 2))
                print(f"  repeat {r + 1}/{args.net_repeat} {b:8} iperf3 {gbps:6.2f} Gbit/s ({retr} retransmits)  "
                      f"tcprr p50 {p50:6.1f}us p99 {p99:6.1f}us {rr['count'] / rr['total_s']:8.0f} trans/s", flush=True)
    finally:
        # by name: a lab whose `up` failed half-way is not in `labs`, and its namespaces must go too
        for b in BACKENDS:
            labmod.down(f"bn{b[0]}{tag}")
    rows = []
    for b in BACKENDS:
        x = res[b]
        us = x.pop("rr_us")
        rows.append({"backend": b, **x, "gbps_median": common.median(x["gbps"]),
                     "rr_p50_us": common.percentile(us, 50), "rr_p90_us": common.percentile(us, 90),
                     "rr_p99_us": common.percentile(us, 99), "rr_tps_median": common.median(x["rr_tps"]),
                     "round_trips": len(us)})
    return {"seconds": args.seconds, "round_trips_per_run": args.rr, "repeat": args.net_repeat, "results": rows}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3, help="node stop/start cycles")
    ap.add_argument("--hold", type=int, default=6, help="networking.bgp.holdTime (s)")
    ap.add_argument("--keepalive", type=int, default=2, help="networking.bgp.keepaliveTime (s)")
    ap.add_argument("--every", type=float, default=0.01, help="the watchers' poll period (s)")
    ap.add_argument("--seconds", type=int, default=5, help="iperf3 run length")
    ap.add_argument("--rr", type=int, default=2000, help="64-byte round trips per tcprr run")
    ap.add_argument("--net-repeat", type=int, default=3, help="throughput/latency repeats per backend")
    ap.add_argument("--tcprr", default=os.path.join(common.ROOT, "benchmarks", "results", "tcprr"))
    ap.add_argument("--skip", choices=("convergence", "network"))
    ap.add_argument("--json")
    args = ap.parse_args()
    if shutil.which("bird") is None or shutil.which("birdc") is None:
        raise SystemExit("bird2 is not installed (scripts/setup installs it)")
    info = common.banner("BGP backend: convergence after a node stop; pod-to-pod bgp vs host-gw vs vxlan", {
        "params": vars(args), "versions": {"bird": common.deb_version("bird2"),
                                           "iperf3": common.tool_version("iperf3", ["iperf3", "--version"])}})
    tag = f"{os.getpid() % 100000}{secrets.token_hex(1)}"
    out: dict = {"info": info, "params": vars(args)}
    if args.skip != "convergence":
        out["convergence"] = convergence(args, tag)
    if args.skip != "network":
        out["network"] = throughput(args, tag)
    common.dump(args.json, out)
    if "convergence" in out:
        c = out["convergence"]
        sm = c["summary"]
        print(f"\nconvergence, {len(c['samples'])} stop/start cycles of {c['stopped']} (3 nodes), hold time "
              f"{c['hold_time_s']} s, keepalive {c['keepalive_time_s']} s, polled every {c['poll_s'] * 1000:.0f} ms:")
        for k in ("link_down_s", "withdrawn_router_s", "withdrawn_after_link_down_s", "withdrawn_w1_s",
                  "link_up_s", "announced_router_s", "announced_after_link_up_s", "announced_w1_s"):
            print(f"  {k:28} median {sm[k]['median']:.3f} s  max {sm[k]['max']:.3f} s")
    if "network" in out:
        n = out["network"]
        print(f"\npod-to-pod across nodes, one run: medians of {n['repeat']} x {n['seconds']} s iperf3; tcprr over "
              f"{n['repeat']} x {n['round_trips_per_run']} round trips of 64 bytes")
        print(f"{'backend':8} {'MTU':>5} {'Gbit/s':>7} {'vs bgp':>7} {'rr p50':>8} {'rr p99':>8} {'trans/s':>8}  route")
        base = n["results"][0]["gbps_median"]
        for row in n["results"]:
            print(f"{row['backend']:8} {row['mtu']:>5} {row['gbps_median']:7.2f} {row['gbps_median'] / base:6.2f}x "
                  f"{row['rr_p50_us']:7.1f}us {row['rr_p99_us']:7.1f}us {row['rr_tps_median']:8.0f}  "
                  f"{row['route_w1_to_w2']}")
    return 0


if __name__ == "__main__":
    if os.geteuid() != 0:
        raise SystemExit("run as root: sudo .venv/bin/python benchmarks/bgp_bench.py")
    sys.exit(main())
