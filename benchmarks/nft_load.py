"""kube-proxy nftables-mode load times vs number of services. Run as root:

    sudo .venv/bin/python benchmarks/nft_load.py [--services 1000,10000] [--choices ladder,vmap]
                                                 [--repeat 3] [--no-verify] [--json out.json]

For each size, N ClusterIP services x 3 endpoints are rendered for one node (`desired_objects`) and
loaded into a throwaway network namespace (`unshare --net`: it disappears with the process, nothing is
left behind):
  full   - `nft -f` of the whole table into an empty namespace (`diff_script(desired, None)`)
  delta  - then one endpoint of one service changes: `update_objects` + `diff_script(..., only=...)`
           give a transaction of ~10 commands; the time of that `nft -f`
  floor  - one `nft -f` adding a single rule to that table: what any nft invocation costs at this
           size (nft fetches every chain of the table before it sends anything)
Python times (render, script, incremental update, scoped diff) are reported separately. With --verify
(the default) the table is listed after the delta (`nft -j list table`) and must equal the desired
state exactly (`diff_script(desired, parse_nft_json(listing)) == ""`); the listing is not timed.
Each figure is the median of --repeat samples. `--choices vmap` measures kube-proxy's own
`numgen ... vmap { }` rule, whose load time grows quadratically (about a minute at 10,000 services).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402  (also puts the repository on sys.path)

from netlab.model.objects import Endpoint  # noqa: E402
from netlab.render import kubeproxy_nftables as kn  # noqa: E402


def cluster_with(n: int):
    """N ClusterIP services, 3 endpoints each, spread over two nodes (benchmarks/common.py)."""
    return common.synthetic_cluster(n, "benchnft")



def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


# ---------------------------------------------------------------- inside the throwaway namespace

def in_netns(workdir: str) -> None:
    """Runs as `unshare --net python nft_load.py --_in-netns DIR`: load, change, measure, list."""
    def nft(*args: str, stdin: str | None = None) -> dict:
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        p = subprocess.run(["nft", *args], input=stdin, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        if p.returncode:
            raise SystemExit(f"nft {' '.join(args)} failed: {p.stderr[:2000]}")
        return {"wall": wall, "user": r1.ru_utime - r0.ru_utime, "sys": r1.ru_stime - r0.ru_stime, "out": p.stdout}

    res = {"full": nft("-f", f"{workdir}/full.nft"), "delta": nft("-f", f"{workdir}/delta.nft")}
    if os.path.exists(f"{workdir}/verify"):
        listing = nft("-j", "list", "table", kn.FAMILY, kn.TABLE)
        with open(f"{workdir}/live.json", "w") as fh:
            fh.write(listing["out"])
        res["list_json"] = listing
    res["floor"] = nft("-f", "-", stdin=f"add rule {kn.FAMILY} {kn.TABLE} {kn.MARK_MASQ} counter\n")
    for v in res.values():
        v.pop("out")
    print(json.dumps(res))


# ---------------------------------------------------------------- one sample

def sample(n: int, choice: str, verify: bool) -> dict:
    cluster = cluster_with(n)
    node = cluster.nodes[0]
    desired, t_render = _timed(lambda: kn.desired_objects(cluster, node, choice=choice))
    full, t_script = _timed(lambda: kn.diff_script(desired, None))

    svc = cluster.services[n // 2]
    ep = svc.endpoints["http"][0]
    svc.endpoints["http"][0] = Endpoint(ep.ip + 1 if int(ep.ip) % 256 < 250 else ep.ip - 1, 8080, ep.node,
                                        ep.pod + "x", ep.namespace)
    keys = {svc.key}
    updated, t_update = _timed(lambda: kn.update_objects(desired, cluster, node, keys))
    delta, t_diff = _timed(lambda: kn.diff_script(updated, desired, only=keys))
    if verify:
        assert updated.content() == kn.desired_objects(cluster, node, choice=choice).content()

    with tempfile.TemporaryDirectory(prefix="nftload.") as work:
        with open(f"{work}/full.nft", "w") as fh:
            fh.write(full)
        with open(f"{work}/delta.nft", "w") as fh:
            fh.write(delta)
        if verify:
            open(f"{work}/verify", "w").close()
        p = subprocess.run(["unshare", "--net", sys.executable, os.path.abspath(__file__), "--_in-netns", work],
                           capture_output=True, text=True)
        if p.returncode:
            raise SystemExit(p.stderr or p.stdout)
        res = json.loads(p.stdout)
        if verify:
            with open(f"{work}/live.json") as fh:
                live = kn.parse_nft_json(fh.read())
            leftover = kn.diff_script(updated, live)
            assert leftover == "", f"the table differs from the desired state after the delta:\n{leftover[:2000]}"
    return {"services": n, "choice": choice, "chains": len(desired.chains), "rules": desired.rule_count(),
            "script_kib": len(full) // 1024, "delta_lines": delta.count("\n"),
            "render_s": t_render, "script_s": t_script, "update_s": t_update, "diff_s": t_diff,
            **{f"{k}_{m}": v[m] for k, v in res.items() for m in ("wall", "user", "sys")}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--services", default="1000,10000")
    ap.add_argument("--choices", default="ladder")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-verify", dest="verify", action="store_false")
    ap.add_argument("--json")
    args = ap.parse_args()
    sizes = [int(x) for x in args.services.split(",")]
    choices = args.choices.split(",")
    nft_version = subprocess.run(["nft", "--version"], capture_output=True, text=True).stdout.strip()
    runs: dict[tuple[str, int], list[dict]] = {(c, n): [] for c in choices for n in sizes}
    for _ in range(args.repeat):
        for n in sizes:
            for c in choices:
                s = sample(n, c, args.verify)
                runs[(c, n)].append(s)
                print(f"  {c:6} {n:6} services: full {s['full_wall']:.3f}s (sys {s['full_sys']:.3f}s)  "
                      f"delta {s['delta_wall'] * 1000:.0f}ms ({s['delta_lines']} commands)  "
                      f"floor {s['floor_wall'] * 1000:.0f}ms  render {s['render_s']:.3f}s  "
                      f"update+diff {(s['update_s'] + s['diff_s']) * 1000:.1f}ms", flush=True)
    print(f"\nkube-proxy nftables mode, 3 endpoints/service, one node (kernel {platform.release()}, {nft_version}, "
          f"{time.strftime('%Y-%m-%d')}); medians of {args.repeat}")
    print(f"{'choice':7} {'services':>8} {'chains':>7} {'rules':>7} {'full load':>10} {'(kernel)':>9} "
          f"{'1-ep delta':>11} {'nft floor':>10} {'render':>8} {'update+diff':>12}")
    summary = []
    keys = ("full_wall", "full_sys", "delta_wall", "floor_wall", "render_s", "update_s", "diff_s")
    for c in choices:
        for n in sizes:
            rs = runs[(c, n)]
            med = {k: statistics.median(r[k] for r in rs) for k in keys}
            print(f"{c:7} {n:>8} {rs[0]['chains']:>7} {rs[0]['rules']:>7} {med['full_wall']:>9.3f}s "
                  f"{med['full_sys']:>8.3f}s {med['delta_wall'] * 1000:>9.0f}ms {med['floor_wall'] * 1000:>8.0f}ms "
                  f"{med['render_s']:>7.3f}s {(med['update_s'] + med['diff_s']) * 1000:>10.1f}ms")
            summary.append({"choice": c, "services": n, **{k + "_median": v for k, v in med.items()}, "samples": rs})
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"kernel": platform.release(), "nft": nft_version, "results": summary}, fh, indent=1)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--_in-netns":
        in_netns(sys.argv[2])
    elif os.geteuid() != 0:
        raise SystemExit("run as root: sudo .venv/bin/python benchmarks/nft_load.py")
    else:
        main()
