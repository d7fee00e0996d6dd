"""Cluster DNS: queries/s from one core and latency at half load, netlab's server vs dnsmasq serving the
same records, answers checked. Run as root (scripts/bench --only dns runs it in its private /run/netns).

    sudo .venv/bin/python benchmarks/dns_load.py [--namespaces 50] [--services 20] [--seconds 10] [--repeat 3]
                                            [--half-seconds 10] [--outstanding 100] [--rt 10]
                                            [--cold-queries 150000] [--json out.json]

1. The cluster (benchmarks/dns_mix.py: 50 namespaces x 20 = 1,000 Services + kubernetes + kube-dns:
   ClusterIP with named ports, headless with and without StatefulSet-style hostnames, ExternalName;
   3,000 pods, EndpointSlices from netlab's own controller) is rendered to netlab's zone
   (netlab.dns.zone.render_zone) and, from that same zone dict, to a dnsmasq configuration
   (benchmarks/dns_peer.py).
2. Each server runs in a network namespace of its own (bench-dns-<pid>-netlab, bench-dns-<pid>-peer,
   removed at the end, also on failure), listening on that namespace's 127.0.0.1:53, pinned to CPU 1
   (`taskset -c 1`): `python -m netlab.dns.server --zone ZONE` and `dnsmasq -k -C CONF`. The load tool,
   dnsperf, runs in the same namespace over loopback, pinned to CPU 0: what is measured is the server,
   not a virtual link.
3. Answers checked, before any load: every distinct query of the mix (benchmarks/dns_mix.py,
   query_mix) is asked of both servers (dnspython, UDP) and its rcode + sorted answer rdata compared with
   the answer computed from the zone dict (dns_mix.Expected); any difference stops the benchmark
   (exit 1) with the differences printed.
4. Saturation: `dnsperf -l SECONDS -q OUTSTANDING` (one socket), --repeat times per server and mix, the
   servers alternating. Two mixes: warm, the distinct queries cycled (after one pass a cache of finished
   replies, which netlab's server keeps as CoreDNS's `cache` plugin does, answers every query), and
   cold, --cold-queries queries drawn from the mix with every name in random letter case (DNS 0x20
   style: the same answers, but no two queries alike, so no reply can come from such a cache; a new
   draw for every repeat, so that no run asks what an earlier one cached).
   Reported: queries/s, lost, and the server's CPU time over the run (from /proc: its share of its core,
   and queries per CPU-second = queries/s at 100 % of one core, which stays comparable when dnsperf
   or other work on the machine is the limit; and how long it waited on a run queue, /proc schedstat:
   other work on its CPU). Every response's rcode is counted by dnsperf and
   checked against the rcodes the queries sent should get (dns_mix.Expected): a rcode that should not
   be there, or counts off by more than the queries lost, fail the benchmark.
5. Latency: `dnsperf -Q RATE -v` for --half-seconds at half of netlab's median warm saturation rate,
   both servers at that same rate (a server that cannot reach it is also measured at half of its own):
   p50/p90/p99/p99.9 from dnsperf's per-query latencies, and each response's rcode checked against its
   query's expected rcode. In these runs the server and dnsperf run under SCHED_FIFO (--rt, default 10;
   not for a server the rate overloads): on a machine shared with other jobs, their CPU time otherwise
   makes the tail (the server waits on a run queue), not the server. The saturation runs keep normal
   scheduling, so they never hold a core from the machine's other work.
Anchor: CoreDNS's scaling guide (coredns/deployment, kubernetes/Scaling_CoreDNS.md) measured about
33,700 queries/s for cluster names on 2 vCPUs, about 17,000 per core; the target here is >= 17,000
queries/s per core with p99 < 1 ms at half load.
"""
from __future__ import annotations

import argparse
import collections
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import dns_mix  # noqa: E402
import dns_peer  # noqa: E402

import dns.message  # noqa: E402  (dnspython; this file is not named dns.py so as not to hide it)
import dns.query  # noqa: E402
import dns.rcode  # noqa: E402
import dns.rdatatype  # noqa: E402
import dns.version  # noqa: E402

from netlab.dataplane import nsfs  # noqa: E402
from netlab.dns.zone import DnsSettings, render_zone, write_zone  # noqa: E402

ANCHOR_QPS_PER_CORE = 17_000       # CoreDNS scaling guide: ~33,700 qps on 2 vCPUs
TARGET_P99_MS = 1.0
SERVER_CPU, LOAD_CPU = "1", "0"
SERVERS = ("netlab", "dnsmasq")


# ---------------------------------------------------------------- the servers

class Server:
    """One DNS server in a network namespace of its own, pinned to SERVER_CPU."""

    def __init__(self, name: str, netns: str, argv: list[str], log: str):
        self.name, self.netns, self.log = name, netns, log
        subprocess.run(["ip", "netns", "add", netns], check=True)
        try:
            subprocess.run(["ip", "-n", netns, "link", "set", "lo", "up"], check=True)
            with open(log, "w") as f:
                # ip netns exec and taskset exec the server: the Popen pid is the server's own
                self.proc = subprocess.Popen(["ip", "netns", "exec", netns, "taskset", "-c", SERVER_CPU, *argv],
                                             stdout=f, stderr=subprocess.STDOUT)
        except BaseException:
            subprocess.run(["ip", "netns", "del", netns], capture_output=True)
            raise

    def run_delay(self) -> float:
        """Seconds the server's threads have waited on a run queue, runnable but not running (schedstat):
        what other work on its CPU took from it."""
        total = 0.0
        for tid in os.listdir(f"/proc/{self.proc.pid}/task"):
            try:
                with open(f"/proc/{self.proc.pid}/task/{tid}/schedstat") as f:
                    total += int(f.read().split()[1]) / 1e9
            except (OSError, IndexError, ValueError):
                pass
        return total

    def realtime(self, priority: int) -> None:
        """Every thread of the server to SCHED_FIFO `priority`, or back to SCHED_OTHER with 0."""
        policy = os.SCHED_FIFO if priority else os.SCHED_OTHER
        for tid in os.listdir(f"/proc/{self.proc.pid}/task"):
            try:
                os.sched_setscheduler(int(tid), policy, os.sched_param(priority))
            except ProcessLookupError:
                pass

    def cpu_seconds(self) -> float:
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")   # utime + stime

    def ask(self, queries: list[dns_mix.Query], timeout: float = 2.0) -> list[tuple[str, tuple[str, ...]]]:
        """Each query's rcode and sorted canonical answer rdata, over UDP, from inside the namespace."""
        def run() -> list[tuple[str, tuple[str, ...]]]:
            out = []
            for q in queries:
                msg = dns.message.make_query(q.name + ".", q.qtype)
                try:
                    r = dns.query.udp(msg, "127.0.0.1", port=53, timeout=timeout)
                except Exception as e:  # noqa: BLE001 - a timeout is an answer too: a wrong one
                    out.append((f"no answer ({e.__class__.__name__})", ()))
                    continue
                rdata = sorted(dns_mix.canonical(dns.rdatatype.to_text(rr.rdtype), rd.to_text())
                               for rr in r.answer for rd in rr)
                out.append((dns.rcode.to_text(r.rcode()), tuple(rdata)))
            return out
        return nsfs.in_netns(self.netns, run)

    def wait_ready(self, domain: str, timeout: float = 60.0) -> float:
        t0 = time.perf_counter()
        probe = [dns_mix.Query(f"kubernetes.default.svc.{domain}", "A", "clusterip-a", "NOERROR")]
        while time.perf_counter() - t0 < timeout:
            if self.proc.poll() is not None:
                break
            if self.ask(probe, timeout=0.5)[0][1]:         # an address: the records are loaded
                return time.perf_counter() - t0
            time.sleep(0.2)
        raise SystemExit(f"{self.name} did not answer within {timeout:.0f} s "
                         f"(exit status {self.proc.poll()}); its log:\n{tail(self.log)}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        subprocess.run(["ip", "netns", "del", self.netns], capture_output=True)



# half of the target (17,000 queries/s per core): the load its p99 < 1 ms is asked at
TARGET_HALF = 8_500

def tail(path: str, n: int = 20) -> str:
    try:
        with open(path) as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return ""


# ---------------------------------------------------------------- dnsperf

def dnsperf(server: Server, qfile: str, seconds: float, outstanding: int, rate: int | None = None,
            rt: int = 0) -> dict:
    """One dnsperf run against `server`; its statistics, plus per-query (rcode, name, type, latency) with
    a rate (-v); with `rt`, dnsperf runs under SCHED_FIFO `rt`. The server's CPU seconds over the run are
    taken from /proc around it."""
    argv = ["ip", "netns", "exec", server.netns, *(["chrt", "-f", str(rt)] if rt else []),
            "taskset", "-c", LOAD_CPU, "dnsperf", "-s", "127.0.0.1",
            "-p", "53", "-d", qfile, "-l", str(seconds), "-q", str(outstanding), "-t", "2"]
    if rate:
        argv += ["-Q", str(rate), "-v"]
    cpu0, wait0 = server.cpu_seconds(), server.run_delay()
    p = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    cpu, wait = server.cpu_seconds() - cpu0, server.run_delay() - wait0
    if p.returncode:
        raise SystemExit(f"dnsperf against {server.name} failed: {p.stderr.strip()[-2000:]}")
    res = parse_dnsperf(p.stdout)
    res.update({"server_cpu_s": round(cpu, 3), "server_runqueue_wait_s": round(wait, 3), "argv": argv[4:],
                "server_cpu_share": round(cpu / res["run_s"], 3) if res["run_s"] else None,
                "qps_per_cpu_s": res["completed"] / cpu if cpu else None})
    if not rate:
        res.pop("per_query")
    return res


def parse_dnsperf(out: str) -> dict:
    """dnsperf 2.10's statistics (and, with -v, its per-query lines `> RCODE NAME TYPE SECONDS`)."""
    def num(label: str) -> float:
        m = re.search(rf"^\s*{re.escape(label)}:\s+([\d.]+)", out, re.M)
        if not m:
            raise SystemExit(f"dnsperf output without '{label}':\n{out[-2000:]}")
        return float(m.group(1))
    line = re.search(r"^\s*Response codes:(.*)$", out, re.M)
    codes = {c: int(n) for c, n in re.findall(r"(\w+) (\d+) \([\d.]+%\)", line.group(1) if line else "")}
    return {"sent": int(num("Queries sent")), "completed": int(num("Queries completed")),
            "lost": int(num("Queries lost")), "qps": num("Queries per second"), "run_s": num("Run time (s)"),
            "rcodes": codes, "avg_latency_ms": num("Average Latency (s)") * 1000,
            "per_query": [(rc, name, qtype, float(lat)) for rc, name, qtype, lat
                          in re.findall(r"^> (\S+) (\S+) (\S+) ([\d.]+)$", out, re.M)]}


def expected_rcodes(queries: list[dns_mix.Query], rcodes: dict[tuple[str, str], str], sent: int) -> collections.Counter:
    """The rcodes the first `sent` queries of the cycled file should get (dnsperf sends them in order)."""
    per_pass = collections.Counter(rcodes[(q.name.lower(), q.qtype)] for q in queries)
    full, rest = divmod(sent, len(queries))
    out = collections.Counter({rc: n * full for rc, n in per_pass.items()})
    out.update(rcodes[(q.name.lower(), q.qtype)] for q in queries[:rest])
    return out


def check_rcodes(run: dict, queries: list[dns_mix.Query], rcodes: dict[tuple[str, str], str]) -> list[str]:
    """What is wrong with a run's response codes: a code no query should get, counts off by more than the
    queries lost, or (with per-query results) a query answered with another rcode than its own."""
    want = expected_rcodes(queries, rcodes, run["sent"])
    got = collections.Counter(run["rcodes"])
    errors = [f"{n} responses {rc}, expected none" for rc, n in got.items() if rc not in want and n]
    off = sum(abs(want[rc] - got.get(rc, 0)) for rc in want)
    if off > run["lost"] + 2:    # the last queries in flight when the time is up may be neither
        errors.append(f"rcode counts {dict(got)} vs expected {dict(want)} for {run['sent']} sent, {run['lost']} lost")
    wrong = collections.Counter((name, qtype, rc) for rc, name, qtype, _ in run.get("per_query", [])
                                if rcodes.get((name.rstrip(".").lower(), qtype)) != rc)
    errors += [f"{n} x {name} {qtype}: {rc}, expected {rcodes.get((name.rstrip('.').lower(), qtype))}"
               for (name, qtype, rc), n in wrong.most_common(10)]
    return errors


# ---------------------------------------------------------------- the benchmark

def latency_run(srv: Server, qfile: str, queries: list[dns_mix.Query], rcodes: dict, seconds: float,
                outstanding: int, rate: int, rt: int = 0) -> dict:
    """dnsperf at a fixed rate with per-query results: latency percentiles, every rcode checked. With
    `rt`, the server and dnsperf run under SCHED_FIFO `rt` for this run only (neither saturates its core
    at such a rate, so the machine's other work still runs): what is measured is then the server's
    latency, not the other jobs' CPU time on a shared machine."""
    if rt:
        srv.realtime(rt)
    try:
        x = dnsperf(srv, qfile, seconds, outstanding, rate=rate, rt=rt)
    finally:
        if rt:
            srv.realtime(0)
    x["realtime_priority"] = rt
    errors = check_rcodes(x, queries, rcodes)
    lat = [q[3] * 1000 for q in x.pop("per_query")]
    x.update({"rate": rate, "answers": len(lat),
              **{f"p{p}_ms".replace(".", "_"): common.percentile(lat, p) for p in (50, 90, 99, 99.9)},
              "max_ms": max(lat) if lat else None})
    print(f"  at {rate:,} q/s {srv.name:8} {x['qps']:9,.0f} q/s  p50 {x['p50_ms']:.3f} ms  p99 {x['p99_ms']:.3f} ms  "
          f"p99.9 {x['p99_9_ms']:.3f} ms  lost {x['lost']}  server CPU {x['server_cpu_share']:.0%} "
          f"(waited for it {x['server_runqueue_wait_s']:.1f} s)", flush=True)
    if errors:
        raise SystemExit(f"{srv.name}: responses not as expected at {rate} q/s: " + "; ".join(errors))
    return x


def check_answers(servers: dict[str, Server], queries: list[dns_mix.Query], exp: dns_mix.Expected) -> dict:
    """Ask every distinct query of both servers; compare with the zone's answer. Mismatches end the run."""
    want = [exp.answer(q.name, q.qtype) for q in queries]
    report = {}
    for name, srv in servers.items():
        t0 = time.perf_counter()
        got = srv.ask(queries)
        bad = [(q, w, g) for q, w, g in zip(queries, want, got) if w != g]
        report[name] = {"queries": len(queries), "mismatches": len(bad), "seconds": round(time.perf_counter() - t0, 2)}
        print(f"  answers of {name}: {len(queries) - len(bad)}/{len(queries)} as the zone says", flush=True)
        for q, w, g in bad[:20]:
            print(f"    {q.name} {q.qtype} ({q.kind}): expected {w[0]} {list(w[1])}, got {g[0]} {list(g[1])}")
        if bad:
            raise SystemExit(f"{name}: {len(bad)} of {len(queries)} answers differ from the zone's: see above")
    return report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--namespaces", type=int, default=50)
    ap.add_argument("--services", type=int, default=20, help="Services per namespace")
    ap.add_argument("--seconds", type=float, default=10, help="each saturation run")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--half-seconds", type=float, default=10, help="the latency run at half load")
    ap.add_argument("--outstanding", type=int, default=100, help="dnsperf -q at saturation")
    ap.add_argument("--rt", type=int, default=10, metavar="PRIORITY",
                    help="SCHED_FIFO priority of server and dnsperf in the latency runs (0: normal scheduling)")
    ap.add_argument("--cold-queries", type=int, default=150_000,
                    help="case-randomised queries of each cold run (more than a run sends: none repeats)")
    ap.add_argument("--json")
    args = ap.parse_args()
    for tool in ("dnsperf", "dnsmasq", "taskset"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not installed (apt-get install dnsperf dnsmasq-base; scripts/bench does it)")
    if os.cpu_count() < 2:
        raise SystemExit("needs 2 CPUs: the server on CPU 1, dnsperf on CPU 0")
    have_netlab = importlib.util.find_spec("netlab.dns.server") is not None

    objects = dns_mix.cluster_objects(args.namespaces, args.services)
    settings = DnsSettings(reverse_cidrs=(str(dns_mix.SERVICE_CIDR), str(dns_mix.POD_CIDR)))
    t0 = time.perf_counter()
    zone = render_zone(objects, settings)
    render_s = time.perf_counter() - t0
    exp = dns_mix.Expected(zone)
    queries = dns_mix.query_mix(objects, settings.domain)
    rcodes = {(q.name, q.qtype): exp.answer(q.name, q.qtype)[0] for q in queries}
    mix = collections.Counter(q.kind for q in queries)
    info = common.banner("cluster DNS: dnsperf against netlab's server and dnsmasq with the same records", {
        "cluster": {k: len(v) for k, v in objects.items()}, "zone_records": len(zone["records"]),
        "render_zone_s": round(render_s, 3), "query_mix": dict(mix), "distinct_queries": len(queries),
        "seconds": args.seconds, "repeat": args.repeat, "half_seconds": args.half_seconds,
        "outstanding": args.outstanding, "pinning": f"servers on CPU {SERVER_CPU}, dnsperf on CPU {LOAD_CPU}",
        "peer_unserved": list(dns_peer.UNSERVED),
        "versions": {"dnsperf": common.deb_version("dnsperf"), "dnsmasq": common.tool_version("dnsmasq"),
                     "dnspython": dns.version.version}})

    tmp = tempfile.mkdtemp(prefix="bench-dns-")
    os.chmod(tmp, 0o755)           # dnsmasq reads its hosts file after it has dropped root for nobody
    zone_path, conf, qfile = (os.path.join(tmp, n) for n in ("zone.json", "dnsmasq.conf", "queries.txt"))
    write_zone(zone_path, zone)
    for fname, text in dns_peer.render_dnsmasq(zone, tmp).items():
        with open(os.path.join(tmp, fname), "w") as f:
            f.write(text)
    with open(qfile, "w") as f:
        f.write(dns_mix.query_file(queries))
    prefix = f"bench-dns-{os.getpid()}"
    servers: dict[str, Server] = {}
    results: dict = {"unavailable": {}}
    try:
        if have_netlab:
            servers["netlab"] = Server("netlab", f"{prefix}-netlab", [
                sys.executable, "-m", "netlab.dns.server", "--zone", zone_path, "--listen", "127.0.0.1",
                "--port", "53", "--health-port", "8080", "--ready-port", "8181"], os.path.join(tmp, "netlab.log"))
        else:
            results["unavailable"]["netlab"] = "netlab.dns.server is not there (not merged yet)"
        servers["dnsmasq"] = Server("dnsmasq", f"{prefix}-peer", [
            "dnsmasq", "-k", f"--conf-file={conf}", "--pid-file=", "--log-facility=-"],
            os.path.join(tmp, "dnsmasq.log"))
        for s in servers.values():
            print(f"  {s.name} answers after {s.wait_ready(settings.domain):.2f} s", flush=True)
        results["answers"] = check_answers(servers, queries, exp)

        # saturation: the mix cycled (warm: after one pass a reply cache holds every answer), then
        # case-randomised queries that are (nearly) all distinct (cold: no reply comes from a cache)
        files = {"warm": (qfile, queries), "cold": None}
        sat: dict[tuple[str, str], list[dict]] = {(n, f): [] for n in servers for f in files}
        for r in range(args.repeat):
            order = list(servers) if r % 2 == 0 else list(reversed(servers))
            cold = dns_mix.cold_mix(queries, args.cold_queries, seed=r)     # both servers get this draw
            files["cold"] = (os.path.join(tmp, "cold-queries.txt"), cold)
            with open(files["cold"][0], "w") as f:
                f.write(dns_mix.query_file(cold))
            for mix in files:
                for name in order:
                    x = dnsperf(servers[name], files[mix][0], args.seconds, args.outstanding)
                    errors = check_rcodes(x, files[mix][1], rcodes)
                    print(f"  repeat {r + 1}/{args.repeat} {mix} {name:8} {x['qps']:9,.0f} q/s  lost {x['lost']}  "
                          f"server CPU {x['server_cpu_share']:.0%} (waited for it {x['server_runqueue_wait_s']:.1f} s)  "
                          f"-> {x['qps_per_cpu_s'] or 0:9,.0f} q per CPU-s  "
                          f"rcodes {x['rcodes']}", flush=True)
                    if errors:
                        raise SystemExit(f"{name} ({mix}): responses not as expected: " + "; ".join(errors))
                    sat[(name, mix)].append(x)
        base = "netlab" if "netlab" in servers else "dnsmasq"
        rate = int(common.median(x["qps"] for x in sat[(base, "warm")]) / 2)
        # latency at half of netlab's saturation, both servers; a server that cannot do that rate also at
        # half of its own
        half: dict[str, list[dict]] = {n: [] for n in servers}
        for name, srv in servers.items():
            own = int(common.median(x["qps"] for x in sat[(name, "warm")]) / 2)
            extra = [TARGET_HALF] if TARGET_HALF < own * 0.9 and TARGET_HALF < rate * 0.9 else []
            for r_ in [rate] + ([own] if own < rate * 0.9 else []) + extra:
                # real-time only where the server keeps up: an overloaded one would hold its core
                rt = args.rt if r_ <= own * 1.1 else 0
                x = latency_run(srv, qfile, queries, rcodes, args.half_seconds, args.outstanding, r_, rt)
                # the rate: half of netlab's, half of its own (netlab's would overload it), half the target
                x["of"] = base if r_ == rate else "target" if r_ == TARGET_HALF and extra else name
                half[name].append(x)
    finally:
        for s in servers.values():
            s.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    rows = []
    for name in servers:
        row = {"server": name, "half_load": half[name]}
        for mix in files:
            xs = sat[(name, mix)]
            row[mix] = {"qps_median": common.median(x["qps"] for x in xs),
                        "qps_per_cpu_s_median": common.median(x["qps_per_cpu_s"] for x in xs),
                        "server_cpu_share_median": common.median(x["server_cpu_share"] for x in xs),
                        "server_runqueue_wait_s_median": common.median(x["server_runqueue_wait_s"] for x in xs),
                        "lost_total": sum(x["lost"] for x in xs), "samples": xs}
        rows.append(row)
    print(f"\ncluster DNS, {len(queries):,} distinct queries (warm: cycled; cold: {args.cold_queries:,} "
          "case-randomised a run), "
          f"{args.repeat} x {args.seconds:g} s saturation each, {args.half_seconds:g} s at {rate:,} q/s (half of "
          f"{base}'s warm); anchor: CoreDNS ~{ANCHOR_QPS_PER_CORE:,} q/s per core, p99 < {TARGET_P99_MS:g} ms")
    print(f"{'server':8} {'mix':5} {'q/s':>9} {'q/CPU-s':>9} {'CPU':>5} {'lost':>5}")
    for row in rows:
        for mix in files:
            x = row[mix]
            print(f"{row['server']:8} {mix:5} {x['qps_median']:9,.0f} {x['qps_per_cpu_s_median'] or 0:9,.0f} "
                  f"{x['server_cpu_share_median']:5.0%} {x['lost_total']:5}")
    print(f"{'server':8} {'rate':>9} {'q/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'p99.9':>7} {'lost':>5}")
    for row in rows:
        for h in row["half_load"]:
            print(f"{row['server']:8} {h['rate']:9,} {h['qps']:9,.0f} {h['p50_ms']:7.3f} {h['p99_ms']:7.3f} "
                  f"{h['p99_9_ms']:7.3f} {h['lost']:5}")
    argv = sys.argv[1:]
    if "--json" in argv:
        del argv[argv.index("--json"):argv.index("--json") + 2]
    common.dump(args.json, {"info": info, "command": " ".join(["benchmarks/dns_load.py", *argv]), "results": rows,
                            "half_load_rate": rate, "half_load_of": base,
                            "cold_queries": args.cold_queries,
                            "anchor_qps_per_core": ANCHOR_QPS_PER_CORE, "target_p99_ms": TARGET_P99_MS,
                            "answers": results["answers"], "unavailable": results["unavailable"]})


if __name__ == "__main__":
    if os.geteuid() != 0:
        raise SystemExit("run as root: sudo .venv/bin/python benchmarks/dns_load.py")
    main()
