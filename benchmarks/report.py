"""Plots and summary tables from the suite's merged results (benchmarks/run.py writes them).

    .venv/bin/python benchmarks/report.py docs/bench/results.json [--out docs/bench]

Writes OUT/bringup.png, OUT/proxy_sync.png, OUT/first_packet.png, OUT/network.png (matplotlib, only what
the results hold) and OUT/summary.md (the headline tables in Markdown, quoted in README.md), and prints the
tables. Every number comes from results.json; nothing is computed here but medians' ratios.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

COLORS = {"netlab": "tab:blue", "shell": "tab:orange", "mininet": "tab:red", "floor": "tab:gray",
          "iptables-legacy": "tab:orange", "iptables-nft": "tab:red", "nftables-ladder": "tab:blue",
          "nftables-vmap": "tab:purple", "iptables": "tab:orange", "nftables": "tab:blue"}


def ms(x):
    return "-" if x is None else f"{x:.2f}"


def s_(x):
    return common.fmt_s(x)


# ---------------------------------------------------------------- tables

def t_bringup(r: dict) -> list[str]:
    rows = r["results"]
    tools = [t for t in ("netlab", "shell", "mininet", "floor") if t in rows[0]]
    head = "| pods | " + " | ".join(f"{t} up (per pod)" for t in tools) + \
        " | Mininet / netlab (target ≥ 5) | netlab / floor (target ≤ 2) | cost of each added pod: netlab, " \
        "Mininet, floor | netlab down | Mininet down |"
    out = [head, "|" + "---|" * (head.count("|") - 1)]
    prev = None
    for row in rows:
        cells = []
        for t in tools:
            x = row[t]
            cells.append(x["unavailable"] if "unavailable" in x else
                         f"{s_(x['up_median_s'])} ({x['up_per_pod_ms']:.1f} ms)")
        nl, mn, fl = row.get("netlab", {}), row.get("mininet", {}), row.get("floor", {})
        r1 = f"{mn['up_median_s'] / nl['up_median_s']:.1f}x" if "up_median_s" in mn and "up_median_s" in nl else \
            mn.get("unavailable", "-")
        r2 = f"{nl['up_median_s'] / fl['up_median_s']:.1f}x" if "up_median_s" in fl and "up_median_s" in nl else "-"
        added = "-"
        if prev is not None:
            def slope(t: str) -> str:
                a, b = prev.get(t, {}), row.get(t, {})
                if "up_median_s" not in a or "up_median_s" not in b:
                    return "-"
                return f"{(b['up_median_s'] - a['up_median_s']) * 1000 / (row['pods'] - prev['pods']):.1f} ms"
            added = f"{slope('netlab')}, {slope('mininet')}, {slope('floor')} (from {prev['pods']})"
        cells += [r1, r2, added, s_(nl.get("down_median_s")),
                  s_(mn.get("down_median_s")) if "down_median_s" in mn else "-"]
        out.append(f"| {row['pods']} | " + " | ".join(cells) + " |")
        prev = row
    return out


def t_sync(r: dict, ipvs: dict | None) -> list[str]:
    rows = r["results"]
    modes = list(dict.fromkeys(x["mode"] for x in rows))
    sizes = list(dict.fromkeys(x["services"] for x in rows))
    by = {(x["mode"], x["services"]): x for x in rows}
    ipvs_rows = {x["services"]: x for x in (ipvs or {}).get("results", [])}
    head = "| services | " + " | ".join(f"{m} full / 1-ep change" for m in modes) + " | IPVS |"
    out = [head, "|" + "---|" * (head.count("|") - 1)]

    def cell(x: dict) -> str:
        text = f"{s_(x['full_s_median'])} / {s_(x['change_s_median'])}"
        if x.get("change_reread_s_median") is not None:
            text += f" (re-read: {s_(x['change_reread_s_median'])})"
        return text
    for n in sizes:
        cells = [cell(by[(m, n)]) if (m, n) in by else "-" for m in modes]
        v = ipvs_rows.get(n)
        if not v and ipvs_rows:
            cells.append("needs ip_vs (this size not run in the VM)")
        elif v:
            cells.append(f"needs ip_vs; in the VM: {s_(v['ipvs_full_total_median_s'])} / "
                         f"{s_(v['ipvsadm_delta_s_median'])} ({v['ipvs_over_iptables_legacy']:.1f}x iptables-legacy "
                         f"in the same VM)")
        else:
            cells.append("IPVS: needs a kernel with ip_vs; see VM")
        out.append(f"| {n:,} | " + " | ".join(cells) + " |")
    return out


def t_first(r: dict) -> list[str]:
    rows = r["results"]
    modes = [m for m in ("iptables", "nftables") if m in rows[0]]
    head = "| services | " + " | ".join(f"{m} p50 / p99 (µs) | {m} cost of the other Services (p50)" for m in modes) + \
        " | control lab p50 / p99 (µs) |"
    out = [head, "|" + "---|" * (head.count("|") - 1)]
    for row in rows:
        cells = []
        for m in modes:
            x = row[m]
            cells += [f"{x['p50_us']:.1f} / {x['p99_us']:.1f}", f"{x['excess_over_control_p50_us']:+.1f} µs"]
        cells.append(f"{row['control']['p50_us']:.1f} / {row['control']['p99_us']:.1f}")
        out.append(f"| {row['services']:,} | " + " | ".join(cells) + " |")
    return out


def t_network(r: dict) -> list[str]:
    out = ["| path | pod MTU | iperf3 Gbit/s | vs same node | TCP RR p50 / p99 (µs) | transactions/s |",
           "|---|---|---|---|---|---|"]
    for x in r["results"]:
        out.append(f"| {x['path']} | {x['mtu']} | {x['gbps_median']:.2f} | {x['gbps_vs_same_node']:.2f}x | "
                   f"{x['rr_p50_us']:.1f} / {x['rr_p99_us']:.1f} | {x['rr_tps_median']:,.0f} |")
    return out


def t_probe(r: dict) -> list[str]:
    x = r["results"]
    return ["| cluster | checks | probes | median time | per probe | not as expected |", "|---|---|---|---|---|---|",
            f"| 3 nodes, {x['pods']} pods, {x['services']} services | {x['checks']} | {x['probes']} | "
            f"{s_(x['median_s'])} | {x['per_probe_ms']:.2f} ms | "
            f"{max(s['not_as_expected'] for s in x['samples'])} |"]


def t_nftload(r: dict) -> list[str]:
    out = ["| choice | services | rules | nft -f full | kernel (sys) | partial-sync delta (kube-proxy style) | render |",
           "|---|---|---|---|---|---|---|"]
    for x in r["results"]:
        out.append(f"| {x['choice']} | {x['services']:,} | {x['samples'][0]['rules']:,} | {s_(x['full_wall_median'])} | "
                   f"{s_(x['full_sys_median'])} | {s_(x['delta_wall_median'])} | {s_(x['render_s_median'])} |")
    return out


def t_live(r: dict) -> list[str]:
    """benchmarks/live.py: the reaction/idle rows (one per lab size), then the rollout."""
    out = ["| lab | up (all Ready) | readiness: fail -> detected | detected -> last node's rules | "
           "scale +10 -> Ready / in every node's rules | idle loop CPU (target < 1% of a core) | loop RSS | load avg (1 min, start -> end) |",
           "|---|---|---|---|---|---|---|---|"]
    for part in r.get("reaction", []):
        if "failed" in part:
            out.append(f"| `{part['command']}` | failed: {part['failed']} | | | | | | |")
            continue
        x = part["results"][0]
        rd, sc, idle = x["readiness"], x["scale_plus_10"], x["idle"]
        load = [((part.get("info") or {}).get("loadavg_at_start") or [0])[0], (x.get("loadavg_at_end") or [0])[0]]
        out.append(f"| {x['pods']} pods, {x['nodes']} nodes | {s_(x['up_to_all_ready_s'])} | "
                   f"{s_(rd['fail_to_detected_median_s'])} | {s_(rd['detected_to_rules_median_s'])} | "
                   f"{s_(sc['to_ready_median_s'])} / {s_(sc['to_ready_in_rules_median_s'])} | "
                   f"{idle['cpu_percent_median']:.1f}% ({idle['pods']} pods, no probes) | {idle['rss_mib_median']:.0f} MiB | "
                   f"{load[0]:.1f} -> {load[1]:.1f} |")
    out += ["", "Medians of the samples in results.json (`" + "`, `".join(
        p["command"] for p in r.get("reaction", [])) + "`)."]
    ro = r.get("rollout") or {}
    if "failed" in ro:
        return out + ["", f"Rolling update: `{ro['command']}` failed: {ro['failed']}"]
    if ro:
        x = ro["results"][0]
        out += ["", "| rolling update | waves (maxSurge, maxUnavailable 0) | wall to `rollout status` | probes' floor | "
                "netlab's part (per wave) | requests sent / failed (2 clients, new connection each) |",
                "|---|---|---|---|---|---|"]
        for s in x["samples"]:
            sent = sum(s[k]["sent"] for k in ("pod->ClusterIP", "external->NodePort"))
            failed = sum(s[k]["failed"] for k in ("pod->ClusterIP", "external->NodePort"))
            out.append(f"| {x['replicas']} replicas, {x['nodes']} nodes, probe initialDelay "
                       f"{x['probe']['initialDelaySeconds']} s period {x['probe']['periodSeconds']} s | {x['waves']} "
                       f"({x['max_surge']}) | {s_(s['to_rollout_status_s'])} | {s_(x['probe_floor_s'])} | "
                       f"{s_(s['netlab_s'])} ({s_(s['netlab_per_wave_s'])}) | {sent} / {failed} |")
        out += ["", f"`{ro['command']}`."]
    out += ["", "Kubernetes for comparison: no published kubectl-on-kind figures for these measurements were found. "
            "What bounds them there: kind configures kube-proxy's iptables minSyncPeriod to 1 s "
            "(kubernetes-sigs/kind, pkg/cluster/internal/kubeadm/config.go); SIG Scalability's official pod startup "
            "latency SLO is p99 <= 5 s, and its network programming latency SLO (a Ready change to the node's "
            "iptables) is still WIP with no threshold "
            "(https://github.com/kubernetes/community/blob/master/sig-scalability/slos/slos.md)."]
    return out


def t_dns(r: dict) -> list[str]:
    """benchmarks/dns_load.py: saturation (warm and cold) and latency at half load, per server."""
    info = r.get("info") or {}
    anchor, target = r.get("anchor_qps_per_core", 17000), r.get("target_p99_ms", 1.0)
    out = ["| server (pinned to 1 core) | mix | queries/s | server CPU (waited for it) | queries per CPU-second "
           f"(target ≥ {anchor:,}) | lost |", "|---|---|---|---|---|---|"]
    for row in r["results"]:
        for mix in ("warm", "cold"):
            x = row[mix]
            out.append(f"| {row['server']} | {mix} | {x['qps_median']:,.0f} | {x['server_cpu_share_median']:.0%} "
                       f"({x.get('server_runqueue_wait_s_median') or 0:.1f} s) | "
                       f"{x['qps_per_cpu_s_median']:,.0f} | {x['lost_total']} |")
    out += ["", f"| server | rate (queries/s) | p50 | p90 | p99 (target < {target:g} ms) | p99.9 | lost | "
            "server waited for its CPU |", "|---|---|---|---|---|---|---|---|"]
    for row in r["results"]:
        for h in row["half_load"]:
            rt = f", SCHED_FIFO {h['realtime_priority']}" if h.get("realtime_priority") else ""
            of = "half of the 17,000/core target" if h["of"] == "target" else f"half of {h['of']}'s saturation"
            out.append(f"| {row['server']} | {h['rate']:,} ({of}{rt}); achieved {h['qps']:,.0f} | "
                       f"{h['p50_ms']:.3f} ms | {h['p90_ms']:.3f} ms | {h['p99_ms']:.3f} ms | {h['p99_9_ms']:.3f} ms | "
                       f"{h['lost']} | {h.get('server_runqueue_wait_s', 0):.1f} s of {h['run_s']:.0f} s |")
    mix = info.get("query_mix") or {}
    checked = ", ".join(f"{k}: {v['queries'] - v['mismatches']}/{v['queries']}" for k, v in (r.get("answers") or {}).items())
    out += ["", f"Cluster: {info.get('cluster')}, {info.get('zone_records', '?'):,} zone records; "
            f"{info.get('distinct_queries', '?'):,} distinct queries ({', '.join(f'{k} {v}' for k, v in mix.items())}), "
            "each answered by both servers as the zone says before any load "
            f"({checked}); "
            "every response's rcode counted against the expected ones. Warm: the distinct queries cycled (netlab's "
            "server then answers from its cache of finished replies, as CoreDNS's `cache` plugin would); cold: "
            f"{r.get('cold_queries', 0):,} queries a run in random letter case, a new draw each run, none alike, "
            "so none is answered from a cache. Queries per CPU-second: the completed queries over the server's CPU time (its queries/s "
            "at 100 % of one core). dnsmasq serves the same records (benchmarks/dns_peer.py) except "
            f"{'; '.join(info.get('peer_unserved') or [])}, which the mix leaves out. Anchor: CoreDNS's scaling "
            "guide (coredns/deployment, kubernetes/Scaling_CoreDNS.md) measured about 33,700 queries/s for "
            "cluster names on 2 vCPUs (a GCE n1-standard-2, both pegged), about 17,000 per core, with CoreDNS's "
            "default settings, which include its `cache` plugin: the warm rows are the comparable ones. Load average at the start "
            f"{', '.join(f'{v:.1f}' for v in info.get('loadavg_at_start') or [])} (a shared machine: the "
            "server's wait for its CPU is in the tables). Versions: "
            f"{info.get('versions')}; `{r.get('command', 'scripts/bench --only dns')}`."]
    return out


def t_lb(r: dict) -> list[str]:
    """benchmarks/lb_failover.py: from `netlab node stop` of the announcing node, medians per grace period."""
    out = ["| node monitor grace | first failed request | node NotReady | election moved | gratuitous ARP seen "
           "| first answer via the new node (failover) | client outage | repeats |", "|---|---|---|---|---|---|---|---|"]
    f = lambda x: "-" if x is None else f"{x:.2f} s"  # noqa: E731
    for row in r["results"]:
        out.append(f"| {row['grace_s']} s | {f(row['median_first_failed_request_s'])} | {f(row['median_notready_s'])} | "
                   f"{f(row['median_elected_s'])} | {f(row['median_gratuitous_arp_s'])} | "
                   f"{f(row['median_failover_s'])} | {f(row['median_outage_s'])} | {len(row['samples'])} |")
    out += ["", "Times from the start of `netlab node stop` (the CLI writes the stop; the control loop takes the node's "
            "underlay link down). A client in the external host's namespace opens a new connection to the LB IP every "
            "20 ms (200 ms timeout); the failover time is its first answer through the new node's MAC; the outage, "
            "from its first failed request to that answer. The grace period (controlPlane.nodeMonitorGracePeriod) "
            "dominates (counted from the node's last heartbeat, every grace/4 s, so NotReady can come before a whole "
            "grace after the stop): MetalLB's memberlist notices a lost speaker in a few seconds, netlab's election "
            "follows the Node's Ready condition. 3 nodes, iptables mode, agnhost netexec behind the Service."]
    return out


def t_netpol(r: dict) -> list[str]:
    """benchmarks/netpol_bench.py: policies over pods, sync times and the first packet to a selected pod."""
    out = ["| policies | pods | policy rules | full sync | no-op | one-policy change | same, incremental | "
           "connect() p50 | p99 | p50 minus control |", "|---|---|---|---|---|---|---|---|---|---|"]
    for x in r["results"]:
        fp = x["first_packet"]
        out.append(f"| {x['policies']:,} | {x['pods']:,} | {x['policy_rules']:,} | {s_(x['full_s'])} | "
                   f"{s_(x['noop_s'])} | {s_(x['change_s'])} | {s_(x['inc_change_s'])} | "
                   f"{fp['p50_us']:.1f} us | {fp['p99_us']:.1f} us | {x['excess_over_control_p50_us']:+.1f} us |")
    out += ["", "One worker node (iptables mode, iptables-nft): every sync is netlab's whole-node iptables sync "
            "(flannel's, kube-proxy's and the policies' chains in one iptables-restore). connect() from a client pod "
            "to a pod selected by a policy, through the node's FORWARD chain; the control is a lab without "
            "policies, measured in alternating blocks. Where the SYN is dispatched: "
            + "; ".join(f"{x['policies']:,} policies: {x.get('layout', '?')}" for x in r["results"] if x["policies"])
            + ". `scripts/bench --only netpol`."]
    return out


def t_ingress(r: dict) -> list[str]:
    """benchmarks/ingress_bench.py: nginx vs NodePort (wrk), one Ingress change at 1,000 rules."""
    t, c, p = r["throughput"], r["change"], r.get("params") or {}
    out = ["| path | requests/s | p50 | p99 | socket errors | non-2xx |", "|---|---|---|---|---|---|"]
    for kind, label in (("ingress", "through nginx (Ingress, NodePort 30080)"), ("nodeport", "Service NodePort 30081")):
        m = t[f"{kind}_median"]
        out.append(f"| {label} | {m['rps']:,.0f} | {m['p50_ms']:.2f} ms | {m['p99_ms']:.2f} ms | "
                   f"{sum(x['socket_errors'] for x in t[kind])} | {sum(x['non_2xx'] for x in t[kind])} |")
    out += ["", f"One Ingress change (a new host) at {c['rules']:,} Ingress rules: served through nginx "
            f"{c['served_median_s']:.2f} s (median of {len(c['samples'])}) after `netlab apply -f` started "
            f"(the apply itself: {', '.join('%.2f' % x['apply_s'] for x in c['samples'])} s); the pure part, plan + "
            f"render of the whole nginx.conf ({c['conf_bytes']:,} bytes), {c['render_ms']:.1f} ms; the {c['rules']:,} "
            f"rules applied and served in {c['bulk_apply_s']:.1f} s.",
            "", f"wrk: 1 thread, {p.get('connections')} keep-alive connections, {p.get('seconds')} s a run, "
            f"{p.get('repeat')} runs per path alternating, medians; from the lab's external host to the node running "
            "the controller pod; backends: 2 pods of netlab's built-in server (agnhost serve-hostname). nginx "
            f"{(r.get('info') or {}).get('nginx')}, one worker process; `scripts/bench --only ingress`."]
    return out


def t_userspace(r: dict) -> list[str]:
    """benchmarks/userspace_bench.py: userspace mode vs iptables mode (wrk), same lab, same paths."""
    p, m = r.get("params") or {}, r["median"]
    out = ["| path | iptables req/s | userspace req/s | ratio | iptables p50 / p99 | userspace p50 / p99 | errors |",
           "|---|---|---|---|---|---|---|"]
    for path in ("nodeport-keepalive", "nodeport-close", "clusterip-keepalive"):
        ipt, us = m["iptables"][path], m["userspace"][path]
        errors = sum(x["socket_errors"] + x["non_2xx"] for mode in r["runs"] for x in r["runs"][mode][path])
        out.append(f"| {path} | {ipt['rps']:,.0f} | {us['rps']:,.0f} | {us['rps'] / ipt['rps']:.2f}x | "
                   f"{ipt['p50_ms']:.2f} / {ipt['p99_ms']:.2f} ms | "
                   f"{us['p50_ms']:.2f} / {us['p99_ms']:.2f} ms | {errors} |")
    out += ["", f"wrk: 1 thread, {p.get('connections')} connections, {p.get('seconds')} s a run, "
            f"{p.get('repeat')} runs per mode alternating (the lab switched with `up --proxy-mode`), medians; "
            "NodePort from the external host to the control-plane node, ClusterIP from a pod; `close`: a new "
            "connection per request. Backends: 2 pods of netlab's built-in server. `scripts/bench --only userspace`."]
    return out


def t_multihost(r: dict) -> list[str]:
    """benchmarks/multihost_bench.py: 3 emulated hosts (etcd member + agent each) vs one host, same lab."""
    x = r["results"]
    out = ["| lab (9 nodes, " + f"{x['pods']} pods) | bring-up (all Ready) | probe matrix (`netlab probe`) | result | "
           "neighbour table full |", "|---|---|---|---|---|"]
    for kind, title in (("hosts", "3 emulated hosts x 3 nodes, etcd member + agent per host"),
                        ("one", "one host (SQLite store, one control loop)")):
        rows = x[kind]
        out.append(f"| {title} | {s_(x['up_median_s'][kind])} | {s_(x['probe_median_s'][kind])} | "
                   f"{'; '.join(row['probe_summary'] for row in rows)} | "
                   f"{', '.join(str(row.get('neigh_table_fulls', '?')) for row in rows)} times |")
    out += ["", f"An etcd write (a Pod bound to a node on host a) until a pod on host b gets its HTTP answer: median "
            f"{s_(x['reach_median_s'])}, max {s_(x['reach_max_s'])} over {len(x['reach_samples_s'])} pods. "
            + ("For this run the host's neighbour-table limits were raised as `up`'s note advises (`--neigh-limits`: "
               "gc_thresh2 32768, gc_thresh3 65536, put back afterwards): the default 1024, shared by every namespace "
               "and lab on the machine, is less than these labs' addresses, and a full table drops probes. "
               if r["info"].get("neigh_limits_raised") else
               f"The machine's neighbour table holds {r['info'].get('neigh_gc_thresh3', '?')} entries (gc_thresh3, "
               "shared by every namespace and lab on it): probes it drops count as not as expected; raise it on the "
               "host for a clean matrix at this size (`--neigh-limits`). ")
            + "`scripts/bench --only multihost`."]
    return out


def t_bgp(r: dict) -> list[str]:
    """benchmarks/bgp_bench.py: a node stop to the router's withdrawal (and back); bgp vs host-gw vs vxlan."""
    out = []
    c = r.get("convergence")
    if c:
        sm = c["summary"]
        out += [f"Convergence, {len(c['samples'])} stop/start cycles of node {c['stopped']} of {c['nodes']}; hold time "
                f"{c['hold_time_s']} s, keepalive {c['keepalive_time_s']} s; tables polled every "
                f"{c['poll_s'] * 1000:.0f} ms (BIRD runs its timers at 75-100 % of their value: after the link "
                f"goes down, the withdrawal is due between 0.75 x hold - keepalive and hold):", "",
                "| from | to | median | max |", "|---|---|---|---|"]
        for k, a, b in (("link_down_s", "`netlab node stop`", "the node's link down"),
                        ("withdrawn_router_s", "`netlab node stop`",
                         "its podCIDR gone from the external router's table"),
                        ("withdrawn_after_link_down_s", "the link down", "gone from the router's table"),
                        ("withdrawn_w1_s", "`netlab node stop`", "gone from another node's table"),
                        ("link_up_s", "`netlab node start`", "the link up"),
                        ("announced_router_s", "`netlab node start`", "back in the router's table"),
                        ("announced_w1_s", "`netlab node start`", "back in another node's table")):
            out.append(f"| {a} | {b} | {sm[k]['median']:.2f} s | {sm[k]['max']:.2f} s |")
        back = ", ".join(f"{s['announced_after_link_up_s']:.2f}" for s in c["samples"])
        out += ["", f"Back at the router after the link came up, repeat by repeat: {back} s (BIRD's error wait, "
                "1 s doubled after each failure of the session within 300 s, at most 5 s, then the reconnect).", ""]
    n = r.get("network")
    if n:
        base = n["results"][0]["gbps_median"]
        out += ["| backend (across nodes) | MTU | iperf3 Gbit/s | vs bgp | 64-byte rr p50 | p99 | transactions/s |",
                "|---|---|---|---|---|---|---|"]
        for row in n["results"]:
            out.append(f"| {row['backend']} | {row['mtu']} | {row['gbps_median']:.2f} | "
                       f"{row['gbps_median'] / base:.2f}x | {row['rr_p50_us']:.1f} µs | {row['rr_p99_us']:.1f} µs | "
                       f"{row['rr_tps_median']:,.0f} |")
        out += ["", f"One run, three labs up together, backends interleaved: iperf3 one stream {n['seconds']} s, "
                f"tcprr {n['round_trips_per_run']} round trips (client and echo server on CPU 0), {n['repeat']} "
                "repeat(s), medians; client pod on w1, server pod on w2. `scripts/bench --only bgp`."]
    return out


# ---------------------------------------------------------------- plots

def _scale_runs(r: dict) -> str:
    """"Medians of N runs (...). " when the scale benchmark repeated its samples."""
    sm = r.get("samples") or {}
    ups = {w: [s["up_s"] for s in sm.get(w) or [] if s.get("up_s") is not None] for w in ("netlab", "floor")}
    if len(ups["netlab"]) < 2:
        return ""
    said = "; ".join(f"{w} up {', '.join(f'{t:.1f}' for t in ts)} s" for w, ts in ups.items() if ts)
    return (f"Medians of {len(ups['netlab'])} runs, one after the other ({said}); the probe matrix ran in the first. ")


def t_scale(r: dict) -> list[str]:
    """benchmarks/scale_bench.py: 100 nodes x 100 pods, netlab vs the C floor, memory per pod, probe, down."""
    x = r["results"]
    floor = x.get("floor_up_s")
    out = ["| pods (nodes x per node) | netlab up | C floor | netlab / floor | pods/s | probe matrix | down | "
           "memory per pod | per node |", "|---|---|---|---|---|---|---|---|---|",
           f"| {x['pods']:,} ({x['nodes']} x {x['pods_per_node']}) | {s_(x['netlab_up_s'])} | {s_(floor)} | "
           + (f"{x['netlab_over_floor']:.2f}x" if floor else "-") + f" | {x['pods_per_s']:.0f} | "
           f"{s_(x['probe_s'])} ({x['probe_passed']}/{x['probe_checks']} checks passed) | {s_(x['netlab_down_s'])} | "
           f"{x['mem_per_pod_kib']:.0f} KiB | {x['mem_per_node_kib'] / 1024:.1f} MiB |",
           "", _scale_runs(r) + f"`netlab up FILE` as a command (parse, the machine's limits, the controllers making and scheduling "
           f"the pods, the kernel work, the control loop, every pod Ready); the floor is benchmarks/floor.c at the "
           f"same size (since 2026-12-01 17:40 UTC its sysctls go through a procfs instance of its own and each pod "
           f"sends a gratuitous ARP, as netlab's; its nodes are joined by host-gw routes, a third of the requests of "
           f"the lab's VXLAN peers). Memory (the first run's: the kernel frees dead namespaces lazily, so a later run "
           f"starts on what the one before left): what the lab holds is the mean of MemAvailable's drop on `up` and its rise on `down`, "
           f"the nodes-only lab's ({x['nodes_only_up_s']:.1f} s up, no pods, so no built-in servers) taken off, over "
           f"the pods: kernel and netlab's processes together (the node's built-in server is in the pods' share); "
           f"of it the kernel's slab grew {x['slab_per_pod_kib']:.0f} KiB a pod"]
    fl = (r.get("samples") or {}).get("floor") or []
    if fl:
        f0 = fl[0]
        out[-1] += (f"; the floor's slab grew {f0['slab_growth_kib'] / x['pods']:.0f} KiB a pod and MemAvailable "
                    f"dropped {f0['mem_available_drop_kib'] / x['pods']:.0f} KiB a pod on its up (its rise 2 s after "
                    f"its down was {f0['mem_available_rise_on_down_kib'] / x['pods']:.0f} KiB: the kernel frees dead "
                    "namespaces lazily)")
    out[-1] += (f". The lab's {x['processes']} processes (one built-in server per node, the control loop, DNS) hold "
                f"{x['processes_rss_mib']:.0f} MiB resident (shared pages counted in each). The probe matrix is the "
                "default one (node<->pod and pod<->pod for every pair of nodes, from and to the first pods of each "
                "node)")
    said = [w for s in (r.get("samples") or {}).get("netlab") or [] for w in s.get("probe_warnings") or []]
    if x.get("neigh_limits_raised"):
        out[-1] += ("; for this run the host's neighbour-table limits were raised as `up`'s note advises "
                    "(`--neigh-limits`: gc_thresh2 32768, gc_thresh3 65536, put back afterwards)")
        h = x.get("host_limits_run")
        if h:
            out[-1] += (f"; with the host's own limits (gc_thresh3 1024), a run of {h['date']} "
                        f"({h['netlab_commit']}, netlab up {s_(h['netlab_up_s'])}, floor {s_(h['floor_up_s'])}) "
                        f"passed {h['probe_passed']} of {h['probe_checks']} checks in {s_(h['probe_s'])}: the "
                        "neighbour table overflows")
    if said:
        out[-1] += (f"; the probe said: \"{said[0].split(';')[0]}\" (the host's net.ipv4.neigh.default.gc_thresh3, "
                    "which netlab names and never changes: at 100 nodes every node needs an entry for every other "
                    "node's underlay address, about 10,000)")
    if x.get("init_cpu_during_up_s") is not None:
        out[-1] += (f". CPU taken by the machine's init (PID 1, {x.get('init')}) while netlab's `up` ran: "
                    f"{x['init_cpu_during_up_s']:.1f} s (median), while the floor's ran: "
                    f"{x.get('init_cpu_during_floor_up_s') or 0:.1f} s; this sandbox's init polls every network "
                    "namespace that holds a process (100 in 100 namespaces cost it a core: "
                    "benchmarks/init_polling.sh), so the nodes' built-in servers share one, the lab's underlay "
                    "(a systemd machine has no such cost)")
    out[-1] += f". `{x.get('command') or 'scripts/bench --only scale'}`."
    return out


def plots(res: dict, out: str) -> list[str]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    made = []
    meta = res["meta"]
    foot = f"{meta['date']}, {meta['cpus']} cpus, kernel {meta['kernel']}"

    def save(fig, name):
        fig.text(0.99, 0.01, foot, ha="right", va="bottom", fontsize=7, color="gray")
        fig.tight_layout(rect=(0, 0.03, 1, 1))
        path = os.path.join(out, name)
        fig.savefig(path, dpi=90)
        plt.close(fig)
        made.append(path)

    r = res["results"]
    if "results" in r.get("bringup", {}):
        rows = r["bringup"]["results"]
        fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
        for t in ("netlab", "shell", "mininet", "floor"):
            pts = [(row["pods"], row[t]) for row in rows if t in row and "up_median_s" in row[t]]
            if not pts:
                continue
            xs = [p for p, _ in pts]
            a.plot(xs, [x["up_per_pod_ms"] for _, x in pts], "o-", color=COLORS[t], label=t)
            b.plot(xs, [x["down_per_pod_ms"] for _, x in pts], "o-", color=COLORS[t], label=t)
        for ax, what in ((a, "bring-up"), (b, "teardown")):
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("pods (3 nodes)")
            ax.set_ylabel(f"{what} time per pod (ms, median)")
            ax.set_title(f"{what} per pod")
            ax.grid(True, which="both", alpha=0.3)
            ax.legend()
        save(fig, "bringup.png")
    if "results" in r.get("sync", {}):
        rows = r["sync"]["results"]
        fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
        for m in dict.fromkeys(x["mode"] for x in rows):
            pts = [x for x in rows if x["mode"] == m]
            a.plot([x["services"] for x in pts], [x["full_s_median"] for x in pts], "o-", color=COLORS.get(m), label=m)
            b.plot([x["services"] for x in pts], [x["change_s_median"] for x in pts], "o-", color=COLORS.get(m), label=m)
        for ax, what in ((a, "full sync"), (b, "one-endpoint change")):
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("services (3 endpoints each)")
            ax.set_ylabel("seconds (median)")
            ax.set_title(what)
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=8)
        save(fig, "proxy_sync.png")
    if "results" in r.get("firstpacket", {}):
        rows = r["firstpacket"]["results"]
        fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
        for m in ("iptables", "nftables"):
            if m not in rows[0]:
                continue
            xs = [row["services"] for row in rows]
            a.plot(xs, [row[m]["p50_us"] for row in rows], "o-", color=COLORS[m], label=f"{m} p50")
            a.plot(xs, [row[m]["p99_us"] for row in rows], "s--", color=COLORS[m], alpha=0.6, label=f"{m} p99")
            b.plot(xs, [row[m]["excess_over_control_p50_us"] for row in rows], "o-", color=COLORS[m],
                   label=f"{m}: p50 - control p50")
        a.plot([row["services"] for row in rows], [row["control"]["p50_us"] for row in rows], "^:", color="gray",
               label="control lab (no other Services) p50")
        a.set_ylabel("connect() time (µs)")
        a.set_title("first packet: connect() to a ClusterIP")
        b.set_ylabel("p50 minus the control lab's p50 (µs)")
        b.set_title("cost of the other Services' rules")
        for ax in (a, b):
            ax.set_xlabel("other Services (target is the last)")
            ax.grid(True, alpha=0.3)
            ax.legend(fontsize=8)
        save(fig, "first_packet.png")
    if "results" in r.get("network", {}):
        rows = r["network"]["results"]
        fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
        names = [f"{x['path']}\n(MTU {x['mtu']})" for x in rows]
        a.bar(names, [x["gbps_median"] for x in rows], color="tab:blue")
        a.set_ylabel("iperf3, one TCP stream (Gbit/s, median)")
        a.set_title("throughput")
        b.bar(names, [x["rr_p50_us"] for x in rows], color="tab:green", label="p50")
        b.scatter(names, [x["rr_p99_us"] for x in rows], color="black", marker="_", s=300, label="p99", zorder=3)
        b.set_ylabel("64-byte round trip (µs)")
        b.set_title("request/response latency")
        b.legend()
        for ax in (a, b):
            ax.tick_params(axis="x", labelsize=7)
            ax.grid(True, axis="y", alpha=0.3)
        save(fig, "network.png")
    return made


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results")
    ap.add_argument("--out", default=os.path.join(common.ROOT, "docs", "bench"))
    args = ap.parse_args()
    with open(args.results) as f:
        res = json.load(f)
    meta, r = res["meta"], res["results"]
    when = f"Last run: {meta['date']}, `{meta['command']}`"
    if meta.get("full_run"):
        dates = [f"{p} {(r.get(p, {}).get('info') or {}).get('date', '?')}" for p in meta["rerun_parts"]]
        when = (f"Last full run: {meta['full_run']['date']}, `{meta['full_run']['command']}`; "
                f"parts re-run since (`scripts/bench --only ...`): {', '.join(dates)}")
    md = [f"{when}, on {meta['cpus']} cores ({meta['cpu_model']}), "
          f"{meta['mem_gib']} GiB, kernel {meta['kernel']}, {meta['distro']}, netlab "
          f"{(meta.get('full_run') or meta).get('netlab_commit', meta['netlab_commit'])}"
          f"{' (the full run; each section says its own run)' if meta.get('full_run') else ''}; "
          f"load average at the start {', '.join(f'{x:.1f}' for x in (meta.get('full_run') or meta)['loadavg_at_start'])} "
          "(a shared machine). "
          "Absolute times vary between machines: compare the ratios.", ""]
    sections = [("Bring-up vs cluster size (median of each size; per pod = time / pods)", "bringup", t_bringup),
                ("kube-proxy sync time (one node, 3 endpoints per Service; full sync / one-endpoint change; re-read: the "
                 "change when the node's record of its last sync cannot be trusted and the table is read back)", "sync",
                 lambda x: t_sync(x, r.get("ipvs") if "results" in r.get("ipvs", {}) else None)),
                ("nftables load breakdown (benchmarks/nft_load.py)", "nftload", t_nftload),
                ("First packet through a ClusterIP (connect() time; the target is the last Service)", "firstpacket",
                 t_first),
                ("Pod network (iperf3 one stream; 64-byte TCP request/response)", "network", t_network),
                ("Default probe matrix", "probe", t_probe),
                ("Live lab: reaction, idle cost, rolling update under load (benchmarks/live.py)", "live", t_live),
                ("Cluster DNS: dnsperf against netlab's server and dnsmasq with the same records "
                 "(benchmarks/dns_load.py; servers on CPU 1, dnsperf on CPU 0)", "dns", t_dns),
                ("LoadBalancer failover, MetalLB layer 2 (benchmarks/lb_failover.py)", "lb", t_lb),
                ("Ingress: the real nginx vs the NodePort, and one change at 1,000 rules (benchmarks/ingress_bench.py)",
                 "ingress", t_ingress),
                ("NetworkPolicy: sync time and first-packet cost (benchmarks/netpol_bench.py)", "netpol", t_netpol),
                ("kube-proxy's userspace mode vs iptables mode (benchmarks/userspace_bench.py)", "userspace",
                 t_userspace),
                ("The BGP backend: convergence after a node stop; pod-to-pod next to host-gw and VXLAN "
                 "(benchmarks/bgp_bench.py)", "bgp", t_bgp),
                ("10,000 pods on one machine: bring-up vs the C floor, memory per pod, probe matrix, down "
                 "(benchmarks/scale_bench.py)", "scale", t_scale),
                ("One lab over 3 emulated hosts with their own etcd member and agent, vs one host "
                 "(benchmarks/multihost_bench.py)", "multihost", t_multihost)]
    for title, key, fn in sections:
        part = r.get(key)
        if not part:
            continue
        md.append(f"#### {title}")
        md.append("")
        info = part.get("info") or {}
        if info.get("date"):
            md += [f"Run {info['date']}, netlab {info.get('netlab_commit', '?')}.", ""]
        if "failed" in part:
            md.append(f"not measured: {part['failed']}")
        else:
            try:
                md += fn(part)
            except (KeyError, IndexError, TypeError, ZeroDivisionError) as e:
                md.append(f"(no table: {e.__class__.__name__} {e})")
        md.append("")
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "summary.md"), "w") as f:
        f.write("\n".join(md))
    print("\n" + "\n".join(md))
    try:
        made = plots(res, args.out)
        print("plots: " + ", ".join(os.path.relpath(p, common.ROOT) for p in made))
    except ImportError:
        print("plots: matplotlib is not installed in this Python (scripts/bench installs it)")


if __name__ == "__main__":
    main()
