"""The live-lab part of the suite (`scripts/bench --only live`): runs live_reaction.py at each size of
--pods and live_rollout.py once, each as its own process (its own lab), and merges their JSON.

    sudo .venv/bin/python benchmarks/live.py [--pods 10,1000] [--repeat 3] [--idle-seconds 30]
                                             [--replicas 100] [--rollout-repeat 1] [--json out.json]

Each script can be run alone (see its docstring); this only chains them. A script that fails is
recorded as failed; the others still run.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

RES = os.path.join(common.ROOT, "benchmarks", "results")


def run(script: str, args: list[str], key: str) -> dict:
    out = os.path.join(RES, f"live-{key}.json")
    if os.path.exists(out):
        os.unlink(out)
    argv = [sys.executable, os.path.join(common.HERE, script), *args, "--json", out]
    print(f"\n#### {script} {' '.join(args)}", flush=True)
    rc = subprocess.run(argv).returncode
    if rc != 0 or not os.path.exists(out):
        return {"failed": f"exit status {rc}", "command": f"benchmarks/{script} {' '.join(args)}"}
    with open(out) as f:
        data = json.load(f)
    data["command"] = f"benchmarks/{script} {' '.join(args)}"
    return data


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pods", default="10,1000")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--idle-seconds", type=float, default=30.0)
    ap.add_argument("--replicas", type=int, default=100)
    ap.add_argument("--rollout-repeat", type=int, default=1)
    ap.add_argument("--json")
    a = ap.parse_args()
    os.makedirs(RES, exist_ok=True)
    info = common.banner("live lab benchmarks", {"pods": a.pods, "replicas": a.replicas})
    reaction = [run("live_reaction.py", ["--pods", p, "--repeat", str(a.repeat), "--idle-seconds", f"{a.idle_seconds:g}"],
                    f"reaction-{p}") for p in a.pods.split(",") if p]
    rollout = run("live_rollout.py", ["--replicas", str(a.replicas), "--repeat", str(a.rollout_repeat)], "rollout")
    common.dump(a.json, {"info": info, "reaction": reaction, "rollout": rollout})
    failed = [r["command"] for r in [*reaction, rollout] if "failed" in r]
    if failed:
        print(f"failed: {failed}")
    # a part that ran is kept (and its failed runs shown as such) unless none did
    return 1 if len(failed) == len(reaction) + 1 else 0


if __name__ == "__main__":
    sys.exit(main())
