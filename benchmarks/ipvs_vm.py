"""IPVS mode's kernel programming time vs number of Services, in the VM (this host's kernel has no ip_vs).

    sudo .venv/bin/python benchmarks/ipvs_vm.py [--services 100,1000,10000] [--repeat 3] [--json out.json]

The host renders, with netlab's own IPVS renderer (netlab/render/kubeproxy_ipvs.py), one node's state for
N ClusterIP Services x 3 endpoints (the Services of benchmarks/proxy_sync.py): the ipset payload, the N
/32 VIPs for the dummy device kube-ipvs0, the `ipvsadm -R` payload of the virtual and real servers, and
the one-endpoint change as netlab's IPVS diff sends it (ipvsadm -R of the changed real servers). For the
comparison, iptables mode's full payload for the same Services (the iptables-legacy-restore text
benchmarks/proxy_sync.py loads) is written too. Then `scripts/vm-run` boots Debian's stock kernel under
QEMU TCG (software emulation, no KVM) and benchmarks/ipvs_vm_guest.sh times, in a fresh network
namespace per sample and interleaved: ipset restore, the VIPs (`ip -batch`), `ipvsadm -R` full and the
change, and iptables-legacy-restore of the iptables-mode payload. Only the kernel-and-tool part is timed:
netlab's Python (rendering, diffing) runs on the host.

The VM is emulated, so absolute times are not comparable with the host's columns; what carries over is
the ratio inside the VM: IPVS mode's full load vs iptables mode's, on the same (emulated) machine.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

from netlab.model.objects import Endpoint  # noqa: E402
from netlab.render import kubeproxy_ipvs as kipvs  # noqa: E402
from netlab.render.iptables import node_rules, to_restore  # noqa: E402


def cluster_with(n: int, mode: str):
    return common.synthetic_cluster(n, "benchipvs", mode)



def render(n: int, work: str) -> dict:
    cluster = cluster_with(n, "ipvs")
    node = cluster.nodes[0]
    state = kipvs.ipvs_state(cluster, node, kernel=(6, 1))
    full = kipvs.ipvsadm_restore_text(kipvs.ipvs_diff(state.virtual_servers, []))
    svc = cluster.services[n // 2]
    ep = svc.endpoints["http"][0]
    svc.endpoints["http"][0] = Endpoint(ep.ip + 1 if int(ep.ip) % 256 < 250 else ep.ip - 1, 8080, ep.node,
                                        ep.pod + "x", ep.namespace)
    changed = kipvs.ipvs_state(cluster, node, kernel=(6, 1))
    delta = kipvs.ipvsadm_restore_text(kipvs.ipvs_diff(changed.virtual_servers, state.virtual_servers))
    files = {
        "ipset": kipvs.ipset_restore_text(state),
        "vips": "".join(f"address add {a} dev {kipvs.DUMMY_DEVICE}\n" for a in state.addresses),
        "ipvs_full": full,
        "ipvs_delta": delta,
        "iptables_full": to_restore(node_rules(cluster_with(n, "iptables"), node)),
    }
    d = os.path.join(work, str(n))
    os.makedirs(d, exist_ok=True)
    for name, text in files.items():
        with open(os.path.join(d, name), "w") as f:
            f.write(text)
    return {"virtual_servers": len(state.virtual_servers), "vips": len(state.addresses),
            "ipvsadm_full_lines": full.count("\n"), "ipvsadm_delta_lines": delta.count("\n"),
            "iptables_full_lines": files["iptables_full"].count("\n")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--services", default="100,1000,10000")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json")
    args = ap.parse_args()
    sizes = [int(x) for x in args.services.split(",")]
    vm_run = os.path.join(common.ROOT, "scripts", "vm-run")
    check = subprocess.run([vm_run, "--check"], capture_output=True, text=True)
    info = common.banner("IPVS mode kernel programming in the VM (QEMU TCG)", {
        "sizes": sizes, "repeat": args.repeat, "vm": (check.stdout or check.stderr).strip()})
    if check.returncode:
        common.dump(args.json, {"info": info, "unavailable": "IPVS: needs a kernel with ip_vs; the VM cannot start "
                                f"here: {(check.stderr or check.stdout).strip()[-300:]}", "results": []})
        print("  the VM cannot start; IPVS not measured")
        return
    work = os.path.join(common.ROOT, "benchmarks", "results", "ipvs-vm")
    shutil.rmtree(work, ignore_errors=True)
    rendered = {n: render(n, work) for n in sizes}
    for n, r in rendered.items():
        print(f"  rendered N={n}: {r}")
    guest = os.path.join(common.HERE, "ipvs_vm_guest.sh")
    p = subprocess.run([vm_run, "--", "bash", guest, work, str(args.repeat), *map(str, sizes)],
                       capture_output=True, text=True, timeout=3600)
    sys.stderr.write(p.stderr[-3000:])
    samples = [json.loads(line) for line in p.stdout.splitlines() if line.startswith("{")]
    if p.returncode or not samples:
        raise SystemExit(f"the guest run failed ({p.returncode}): {p.stdout[-2000:]}")
    shutil.rmtree(work, ignore_errors=True)
    guest_info = next((s for s in samples if "kernel" in s), {})
    results = []
    keys = ("ipset_s", "vips_s", "ipvsadm_full_s", "ipvsadm_delta_s", "iptables_legacy_full_s")
    print(f"\nIPVS mode in the VM ({guest_info.get('kernel')}, TCG), medians of {args.repeat}")
    print(f"{'services':>8} {'ipset':>8} {'VIPs':>8} {'ipvsadm -R':>11} {'IPVS total':>11} {'1-ep change':>12} "
          f"{'iptables-legacy':>16} {'IPVS/iptables':>14}")
    for n in sizes:
        ss = [s for s in samples if s.get("services") == n]
        med = {k: common.median(s[k] for s in ss) for k in keys}
        total = med["ipset_s"] + med["vips_s"] + med["ipvsadm_full_s"]
        row = {"services": n, **rendered[n], **{k + "_median": v for k, v in med.items()},
               "ipvs_full_total_median_s": total, "ipvs_over_iptables_legacy": total / med["iptables_legacy_full_s"],
               "samples": ss}
        results.append(row)
        print(f"{n:>8} {med['ipset_s']:7.3f}s {med['vips_s']:7.3f}s {med['ipvsadm_full_s']:10.3f}s {total:10.3f}s "
              f"{med['ipvsadm_delta_s'] * 1000:10.1f}ms {med['iptables_legacy_full_s']:15.3f}s "
              f"{row['ipvs_over_iptables_legacy']:13.2f}x")
    common.dump(args.json, {"info": {**info, "guest": guest_info}, "results": results})


if __name__ == "__main__":
    if os.geteuid() != 0:
        raise SystemExit("run as root: sudo .venv/bin/python benchmarks/ipvs_vm.py")
    main()
