"""kube-proxy sync time vs number of services, per proxy mode, as netlab syncs a node. Run as root:

    sudo .venv/bin/python benchmarks/proxy_sync.py [--services 100,1000,5000,10000]
        [--modes iptables-legacy,iptables-nft,nftables-ladder,nftables-vmap] [--repeat 3] [--json out.json]

(`--flavours legacy,nft` is still understood: the iptables modes with those flavours.)

For each size, a throwaway node namespace gets N ClusterIP services x 3 endpoints, synced the way
`netlab up` syncs a node:
  iptables-legacy / iptables-nft   (netlab.dataplane.proxy.sync_iptables itself) iptables-save (iptables-nft:
                                   or the record of the last sync, trusted while the node's nf_tables
                                   generation is unchanged), render, diff, one iptables-restore --noflush
  nftables-vmap / nftables-ladder  (netlab.dataplane.proxy.nftables.NftablesProxy.sync_node) render the table
                                   (nftablesEndpointChoice vmap: kube-proxy's `numgen ... vmap {}` rule;
                                   ladder: netlab's equivalent without anonymous sets), diff it against the
                                   record of the last sync (trusted while the node's nf_tables generation is
                                   unchanged) or else the live table (`nft -j list table`, parsed), one
                                   `nft -f` transaction
and then:
  full   - the first sync into empty tables
  change - one endpoint of one service changes; the time of that second sync (everything above again:
           netlab renders the whole node and diffs it; only the difference is sent)
  noop   - a sync with nothing to change (nothing sent)
  change, re-read (nftables, iptables-nft) - another one-endpoint change, synced without the record, as
           after somebody else changed the node's tables: the live tables are read and parsed first
and then the incremental path, as a process that keeps a SyncState across syncs (a control loop) runs it
(netlab.dataplane.proxy.syncstate; write_records=False: the on-disk records are for the next process):
  inc change - one endpoint of another Service changes: only that Service is rendered again, and while the
           node is as the state recorded it after the last sync, only its chains/elements are diffed against
           the state's in-memory record (nothing read back). "As recorded": nftables, iptables-nft: the
           node's nf_tables generation; iptables-legacy: the shape of every legacy table (IPT_SO_GET_INFO:
           entry count, size, hook offsets; see netlab/dataplane/xtables_info.py)
  inc noop - a sync with nothing changed (every Service's content key compared, nothing rendered or sent)
  inc hint - a one-endpoint change with the changed Service's key passed (`changed=`, what a control loop
           fed by the store's events knows): the other Services are not even compared
  inc noop hint - a sync told that nothing changed (`changed=set()`): the foreign-change check only
  (untimed: then a foreign change to the node - a rule added by hand - must be repaired by the next sync)
  floor - the smallest commit such a change needs, made by the tool itself (iptables-restore of one new
           chain; `nft -f` of one new chain with one jump): the kernel's part, which netlab cannot shorten
Above 1,000 endpoints kube-proxy's iptables rules drop their per-endpoint comments ("large cluster mode",
as kube-proxy does), which about halves the legacy table iptables-restore copies in and out at each sync.
The kernel's own work bounds what a partial sync can reach: iptables-legacy-restore copies the whole nat
table out and back in (~0.5-1 s at 10,000 Services on a loaded 2-core machine), and an nf_tables commit
that adds a rule with a jump, goto or dnat validates the whole table's chain graph (~80-90 ms here).
Each figure is the median of --repeat samples, interleaved across sizes and modes. Nothing is estimated.
IPVS mode needs a kernel with ip_vs: see benchmarks/ipvs_vm.py (run in the VM).
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import time

sys.path.insert(0, __file__.rsplit("/benchmarks/", 1)[0])
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

from netlab.dataplane import iptables as ipt  # noqa: E402
from netlab.dataplane import nsfs, proxy  # noqa: E402
from netlab.dataplane.proxy.nftables import NftablesProxy  # noqa: E402
from netlab.dataplane.proxy.syncstate import SyncState  # noqa: E402
from netlab.model.objects import Endpoint  # noqa: E402
from netlab.render import kubeproxy_nftables as knft  # noqa: E402
from netlab.dataplane.fabric import Changes  # noqa: E402

NETNS = f"bench-sync{os.getpid()}.node"  # unique: runs may overlap; not nl.*, which test sessions watch
MODES = ("iptables-legacy", "iptables-nft", "nftables-ladder", "nftables-vmap")


def cluster_with(n: int, proxy_mode: str = "iptables"):
    return common.synthetic_cluster(n, "benchsync", proxy_mode)



def bench_node(cluster) -> tuple:
    """The cluster seen as its first node only, living in the benchmark's namespace."""
    node = dataclasses.replace(cluster.nodes[0], netns=NETNS)
    return dataclasses.replace(cluster, nodes=[node]), node


RECORD = f"/tmp/bench-sync{os.getpid()}.nft.json"  # the node's record of its last sync (see NftablesProxy)
RECORD_IPT = f"/tmp/bench-sync{os.getpid()}.iptables.json"  # the same for iptables-nft (see sync_iptables)


def sync_iptables(cluster, restore: str, save: str, record: str | None = RECORD_IPT, state: SyncState | None = None,
                  changed: set[str] | None = None) -> tuple[float, int]:
    """One node's iptables sync: netlab.dataplane.proxy.sync_iptables itself, on the bench node. With
    `record`, as `netlab up` runs it (iptables-nft: the last sync's tables are trusted while the node's
    nf_tables generation is unchanged; iptables-legacy has no generation and always reads back); with None,
    the tables are read back first."""
    view, _ = bench_node(cluster)
    t0 = time.perf_counter()
    lines = proxy.sync_iptables(view, restore, save, Changes(), record=lambda node: record, state=state,
                                changed=changed)
    return time.perf_counter() - t0, lines


def sync_nftables(cluster, choice: str, record: str | None = RECORD, state: SyncState | None = None,
                  changed: set[str] | None = None) -> tuple[float, int]:
    """One node's nftables sync: netlab.dataplane.proxy.nftables.NftablesProxy.sync_node itself, on the bench node.

    With `record`, the way `netlab up` runs it (the last sync's table is trusted while the node's nf_tables
    generation is unchanged); with None, the live table is read back first, which is what happens after
    anybody else changed nftables in the node."""
    cluster.networking.nft_choice = choice
    _, node = bench_node(cluster)
    t0 = time.perf_counter()
    sent = NftablesProxy().sync_node(cluster, node, record, state=state, changed=changed)
    return time.perf_counter() - t0, sent


def tamper(family: str, variant: str, cluster) -> None:
    """Change the bench node's rules behind netlab's back: a rule in a Service chain."""
    import subprocess
    from netlab.render import kubeproxy_iptables as kp
    svc = cluster.services[0]
    if family == "iptables":
        argv = [f"iptables-{variant}", "-t", "nat", "-I", kp.svc_chain(f"{svc.key}:http", "TCP"), "1", "-j", "RETURN"]
    else:
        chain = "service-" + knft.service_chain_base(svc.namespace, svc.name, "tcp", "http")
        argv = ["nft", "insert", "rule", "ip", "kube-proxy", chain, "drop"]
    subprocess.run(["nsenter", f"--net={nsfs.netns_path(NETNS)}", "--", *argv], check=True)


def kernel_floor(family: str, variant: str) -> float:
    """The time of the smallest commit that a one-endpoint change needs, by the tool itself, in the loaded
    node: iptables-restore of one new chain (legacy: the whole nat table copied out and back in), or
    `nft -f` of one new chain holding one `jump` (nf_tables validates the whole table's chain graph when
    a rule with a jump, goto or dnat is added). Nothing of netlab's is in it. (Run last: it is a foreign
    commit for the sync state.)"""
    import subprocess
    where = ["nsenter", f"--net={nsfs.netns_path(NETNS)}", "--"]
    if family == "iptables":
        argv, payload = [f"iptables-{variant}-restore", "--noflush"], "*nat\n:KUBE-BENCH-FLOOR - [0:0]\nCOMMIT\n"
    else:
        argv, payload = ["nft", "-f", "-"], "add chain ip kube-proxy bench-floor { jump mark-for-masquerade ; }\n"
    t0 = time.perf_counter()
    subprocess.run(where + argv, input=payload, text=True, check=True)
    return time.perf_counter() - t0


def fresh_netns() -> None:
    nsfs.delete_ns_file(nsfs.netns_path(NETNS))
    nsfs.ensure_run_dir()
    nsfs.run_in_thread(lambda: nsfs.new_netns_here(NETNS))


def sample(n: int, mode: str) -> dict:
    family, variant = mode.split("-", 1)
    cluster = cluster_with(n, "iptables" if family == "iptables" else "nftables")
    if family == "iptables":
        _, restore, save = ipt.flavour_commands(variant)

        def sync(state=None, changed=None):
            return sync_iptables(cluster, restore, save, state=state, changed=changed)
    else:
        def sync(state=None, changed=None):
            return sync_nftables(cluster, variant, state=state, changed=changed)

    def move_endpoint(svc, k: int, tag: str) -> None:
        ep = svc.endpoints["http"][k]
        svc.endpoints["http"][k] = Endpoint(ep.ip + 1 if int(ep.ip) % 256 < 250 else ep.ip - 1, 8080, ep.node,
                                            ep.pod + tag, ep.namespace)
    fresh_netns()
    try:
        full, lines = sync()
        noop, noop_lines = sync()
        assert noop_lines == 0, "second sync of the same state should change nothing"
        svc = cluster.services[n // 2]
        ep = svc.endpoints["http"][0]
        svc.endpoints["http"][0] = Endpoint(ep.ip + 1 if int(ep.ip) % 256 < 250 else ep.ip - 1, 8080, ep.node,
                                            ep.pod + "x", ep.namespace)
        change, change_lines = sync()
        reread = None
        if family == "iptables" and variant == "nft":
            # the same kind of change once more without the record (as after a hand-made change)
            ep = svc.endpoints["http"][1]
            svc.endpoints["http"][1] = Endpoint(ep.ip + 1 if int(ep.ip) % 256 < 250 else ep.ip - 1, 8080, ep.node,
                                                ep.pod + "y", ep.namespace)
            reread, _ = sync_iptables(cluster, restore, save, record=None)
        if family == "nftables":
            # the same kind of change once more, when the record cannot be trusted (someone else changed
            # nftables in the node): the live table is listed and parsed first
            ep = svc.endpoints["http"][1]
            svc.endpoints["http"][1] = Endpoint(ep.ip + 1 if int(ep.ip) % 256 < 250 else ep.ip - 1, 8080, ep.node,
                                                ep.pod + "y", ep.namespace)
            reread, _ = sync_nftables(cluster, variant, record=None)
        # the incremental path: a SyncState kept across syncs (its first sync is a full one)
        state = SyncState(write_records=False)
        sync(state)
        move_endpoint(cluster.services[n // 3], 0, "i")
        inc_change, inc_lines = sync(state)
        inc_noop, inc_noop_lines = sync(state)
        assert inc_noop_lines == 0, "an incremental sync of the same state should change nothing"
        svc = cluster.services[2 * n // 3]
        move_endpoint(svc, 0, "h")
        inc_hint, _ = sync(state, {svc.key})
        inc_noop_hint, _ = sync(state, set())        # told that nothing changed
        # tamper repair: a foreign change makes the next sync a full one, which puts the rules back
        tamper(family, variant, cluster)
        _, repaired = sync(state)
        assert repaired, "a foreign change must be repaired by the next sync"
        assert sync(state)[1] == 0
        floor = kernel_floor(family, variant)
        if family == "iptables":
            rules = ipt.save(nsfs.netns_path(NETNS), save).count("\n-A ")
        else:
            rules = knft.desired_objects(cluster, cluster.nodes[0], choice=variant).rule_count()
    finally:
        nsfs.delete_ns_file(nsfs.netns_path(NETNS))
        for path in (RECORD, RECORD_IPT):
            if os.path.exists(path):
                os.unlink(path)
    return {"services": n, "mode": mode, "full_s": full, "change_s": change, "noop_s": noop,
            "change_reread_s": reread, "inc_change_s": inc_change, "inc_noop_s": inc_noop, "inc_hint_s": inc_hint,
            "inc_noop_hint_s": inc_noop_hint, "floor_s": floor,
            "inc_change_payload": inc_lines,
            "payload_lines": lines, "change_payload_lines": change_lines, "rules": rules}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--services", default="100,1000,5000,10000")
    ap.add_argument("--modes", default=",".join(MODES))
    ap.add_argument("--flavours", help="legacy,nft: shorthand for --modes iptables-legacy,iptables-nft")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json")
    args = ap.parse_args()
    sizes = [int(x) for x in args.services.split(",")]
    modes = [f"iptables-{f}" for f in args.flavours.split(",")] if args.flavours else args.modes.split(",")
    bad = set(modes) - set(MODES)
    if bad:
        raise SystemExit(f"unknown modes {bad}; known: {', '.join(MODES)}")
    versions = {f"iptables-{f}": common.tool_version(f"iptables-{f}") for f in ("legacy", "nft")}
    versions["nft"] = common.tool_version("nft")
    info = common.banner("kube-proxy sync time vs number of services (one node, 3 endpoints per service)",
                         {"sizes": sizes, "modes": modes, "repeat": args.repeat, "versions": versions,
                          "ipvs": "IPVS: needs a kernel with ip_vs; see benchmarks/ipvs_vm.py (VM)"})
    runs: dict[tuple[str, int], list[dict]] = {(m, n): [] for m in modes for n in sizes}
    for r in range(args.repeat):
        for n in sizes:
            for m in (modes if r % 2 == 0 else modes[::-1]):
                s = sample(n, m)
                s["repeat"] = r
                runs[(m, n)].append(s)
                reread = "" if s["change_reread_s"] is None else f"  change, re-read {s['change_reread_s']:7.3f}s"
                print(f"  {m:16} {n:6} services: full {s['full_s']:8.3f}s  one-endpoint change "
                      f"{s['change_s']:7.3f}s  noop {s['noop_s']:7.3f}s{reread}  ({s['rules']} rules, "
                      f"change payload {s['change_payload_lines']} lines)  incremental: change "
                      f"{s['inc_change_s']:.4f}s noop {s['inc_noop_s']:.4f}s hinted change {s['inc_hint_s']:.4f}s "
                      f"hinted noop {s['inc_noop_hint_s']:.4f}s | kernel floor {s['floor_s']:.4f}s",
                      flush=True)
    print(f"\nkube-proxy sync, 3 endpoints/service, medians of {args.repeat}")
    print(f"{'mode':16} {'services':>8} {'rules':>8} {'full sync':>10} {'1-ep change':>12} {'no-op':>8}"
          f" {'inc change':>11} {'inc no-op':>10} {'inc hint':>9} {'hint no-op':>10} {'floor':>8}")
    summary = []
    for m in modes:
        for n in sizes:
            rs = runs[(m, n)]
            med = {k: statistics.median(r[k] for r in rs)
                   for k in ("full_s", "change_s", "noop_s", "inc_change_s", "inc_noop_s", "inc_hint_s",
                             "inc_noop_hint_s", "floor_s")}
            if rs[0]["change_reread_s"] is not None:
                med["change_reread_s"] = statistics.median(r["change_reread_s"] for r in rs)
            print(f"{m:16} {n:>8} {rs[0]['rules']:>8} {med['full_s']:>9.3f}s {med['change_s']:>11.3f}s "
                  f"{med['noop_s']:>7.3f}s {med['inc_change_s']:>10.4f}s {med['inc_noop_s']:>9.4f}s "
                  f"{med['inc_hint_s']:>8.4f}s {med['inc_noop_hint_s']:>9.4f}s {med['floor_s']:>7.4f}s")
            summary.append({"mode": m, "flavour": m.split("-", 1)[1], "services": n,
                            **{k + "_median": v for k, v in med.items()}, "samples": rs})
    info["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    print(f"load average at the end: {info['loadavg_at_end']}")
    common.dump(args.json, {"info": info, "kernel": info["kernel"], "versions": versions, "results": summary})


if __name__ == "__main__":
    if os.geteuid() != 0:
        raise SystemExit("run as root: sudo .venv/bin/python benchmarks/proxy_sync.py")
    main()
