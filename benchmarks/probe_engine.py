"""Time of the probe engine on a probe matrix over many source namespaces, run as root.

    sudo .venv/bin/python benchmarks/probe_engine.py [--sources 100] [--per-source 10] [--servers 10]
                                                      [--repeat 3] [--dead 0.1]

Builds its own throw-away topology (no netlab lab): a router namespace with two bridges,
`--sources` client namespaces on 10.98.0.0/16 behind one and `--servers` pod namespaces on
10.97.0.0/24, served by one built-in server process (TCP 8080, UDP 8081), behind the other. (Routed
rather than one flat L2 segment because the kernel's ARP table is shared by all namespaces and holds
at most net.ipv4.neigh.default.gc_thresh3 = 1024 entries: 100 x 10 pairs on one segment would need
2000 and sends would fail with ENOBUFS.) Each source probes `--per-source` destinations, cycling
through tcp/udp/icmp/http/udp-app. Reports the wall time of run_probes for (1) a matrix where everything
answers and (2) the same matrix with a fraction `--dead` of the probes aimed at an address nobody
owns (timeout 1 s, so that run is bounded by the timeout, not by the probe count). Medians over
`--repeat` runs; every figure is a measured sample. Everything is removed at the end. (Namespaces
are named pbench-<random>.*, not nl.*, so that a test session running at the same time does not
take them for leftovers of its own and delete them.)
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, __file__.rsplit("/benchmarks/", 1)[0])

from netlab.dataplane import nsfs  # noqa: E402
from netlab.probe.engine import ProbeSpec, run_probes  # noqa: E402

KINDS = [("tcp", 8080), ("udp", 8081), ("icmp", None), ("http", 8080), ("udp-app", 8081)]


def sh(*argv: str) -> None:
    r = subprocess.run(argv, capture_output=True, text=True)
    if r.returncode:
        raise RuntimeError(f"{' '.join(argv)}: {r.stderr.strip()}")


def batch(ns: str | None, lines: list[str]) -> None:
    argv = ["ip"] + (["-n", ns] if ns else []) + ["-batch", "-"]
    r = subprocess.run(argv, input="\n".join(lines) + "\n", capture_output=True, text=True)
    if r.returncode:
        raise RuntimeError(f"ip -batch: {r.stderr.strip()}")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sources", type=int, default=100)
    ap.add_argument("--per-source", type=int, default=10)
    ap.add_argument("--servers", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--dead", type=float, default=0.1)
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("run as root", file=sys.stderr)
        return 2

    tag = secrets.token_hex(3)
    hub = f"pbench-{tag}.router"
    srv = [f"pbench-{tag}.s{j}" for j in range(args.servers)]
    cli = [f"pbench-{tag}.c{i}" for i in range(args.sources)]
    srv_ip = [f"10.97.0.{10 + j}" for j in range(args.servers)]
    cli_ip = [f"10.98.{1 + i // 250}.{1 + i % 250}" for i in range(args.sources)]
    tmp = tempfile.mkdtemp(prefix="netlab-pbench-")
    server = None
    made: list[str] = []
    try:
        t0 = time.perf_counter()
        for ns in [hub] + srv + cli:
            sh("ip", "netns", "add", ns)
            made.append(ns)
        batch(hub, ["link add brs type bridge", "link set brs up", "addr add 10.97.0.1/24 dev brs",
                    "link add brc type bridge", "link set brc up", "addr add 10.98.0.1/16 dev brc"])
        sh("ip", "netns", "exec", hub, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        for n, (ns, ip) in enumerate(list(zip(srv, srv_ip)) + list(zip(cli, cli_ip))):
            br, plen, gw = ("brs", 24, "10.97.0.1") if ns in srv else ("brc", 16, "10.98.0.1")
            sh("ip", "link", "add", "eth0", "netns", ns, "type", "veth", "peer", "name", f"p{n}", "netns", hub)
            batch(hub, [f"link set p{n} master {br}", f"link set p{n} up"])
            batch(ns, ["link set lo up", f"addr add {ip}/{plen} dev eth0", "link set eth0 up",
                       f"route add default via {gw}"])
        cfg, pidfile = os.path.join(tmp, "cfg.json"), os.path.join(tmp, "pid")
        with open(cfg, "w") as f:
            json.dump({"pods": [{"key": f"default/srv-{j}", "name": f"srv-{j}", "netns": nsfs.netns_path(ns),
                                 "ports": [{"port": 8080}, {"port": 8081, "protocol": "UDP"}],
                                 "log": os.path.join(tmp, f"srv-{j}.log")}
                                for j, ns in enumerate(srv)]}, f)
        server = subprocess.Popen([sys.executable, "-m", "netlab.workload.netexec", "--config", cfg,
                                   "--pidfile", pidfile], cwd=__file__.rsplit("/benchmarks/", 1)[0])
        while not os.path.exists(pidfile):
            if server.poll() is not None:
                raise RuntimeError("server did not start")
            time.sleep(0.02)
        print(f"topology: {len(made)} namespaces built in {time.perf_counter() - t0:.1f}s", flush=True)

        def matrix(dead: float) -> list[ProbeSpec]:
            specs, n = [], 0
            for i, ns in enumerate(cli):
                for k in range(args.per_source):
                    kind, port = KINDS[n % len(KINDS)]
                    dst = srv_ip[(i + k) % len(srv_ip)]
                    if dead and (n % round(1 / dead)) == 0:
                        dst = "10.97.0.200"
                    specs.append(ProbeSpec(ns, kind, dst, port, timeout=1.0))
                    n += 1
            return specs

        # warm-up (ARP entries, scapy's first use)
        run_probes(matrix(0))
        for dead in (0.0, args.dead):
            specs = matrix(dead)
            times, outcomes = [], {}
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                rs = run_probes(specs)
                times.append(time.perf_counter() - t0)
                outcomes = {}
                for r in rs:
                    outcomes[r.outcome] = outcomes.get(r.outcome, 0) + 1
            print(f"{len(specs)} probes from {len(cli)} namespaces to {len(srv)} pods"
                  f"{f' ({dead:.0%} to a dead address)' if dead else ''}: median {statistics.median(times):.2f}s "
                  f"(runs: {', '.join(f'{t:.2f}' for t in times)}), outcomes {outcomes}", flush=True)
    finally:
        if server is not None and server.poll() is None:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(5)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        for ns in made:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        subprocess.run(["rm", "-rf", tmp])
    return 0


if __name__ == "__main__":
    sys.exit(main())
