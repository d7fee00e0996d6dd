"""A constant load of NEW HTTP connections, every request counted: the client of the live-lab rollout
benchmark (live_rollout.py), run inside a network namespace (a client pod's, or the lab's external
host's) with `nsenter`.

    python benchmarks/httpload.py IP:PORT --rate 50 --out FILE [--path /hostName] [--timeout 3]

Until FILE.stop exists (or --seconds pass): at --rate requests a second (one after the other; a
request slower than the interval delays the next, it is never dropped), a new TCP connection, one
`GET PATH` with `Connection: close`, the whole answer read, the socket closed. A request fails when the
connect, send or read fails or times out (--timeout for the whole exchange, as curl's --max-time), or
the status is not 200. Writes FILE: one JSON line per request {"t": start (unix time), "ms": duration,
"ok": bool, "body": the answer's body (the serving pod's hostname) or "err": why}, then a last line
{"done": true, "sent": N, "answered": N, "failed": N}.

`Load` (below) starts one from Python and reads its counts; the integration tests' curl loop
(tests/integration/test_live.py) does the same job with one curl process per request, too slow for
the rates a 100-replica rollout wants on a small machine.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from netlab.exercise import traffic


def one(ip: str, port: int, path: str, timeout: float) -> tuple[bool, str]:
    """One request on a new connection (netlab/exercise/traffic.py's, which the exercises' rollout check
    sends too): (True, body) for a 200, else (False, why)."""
    status, what = traffic.one(ip, port, path, timeout)
    if status is None:
        return False, what
    if status != 200:
        return False, f"status {status}"
    return True, what


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("target", help="IP:PORT")
    ap.add_argument("--rate", type=float, default=50.0, help="requests a second")
    ap.add_argument("--out", required=True)
    ap.add_argument("--path", default="/hostName")
    ap.add_argument("--timeout", type=float, default=3.0)
    ap.add_argument("--seconds", type=float, default=3600.0)
    a = ap.parse_args()
    ip, port = a.target.rsplit(":", 1)
    gap = 1.0 / a.rate
    sent = answered = 0
    end = time.monotonic() + a.seconds
    nxt = time.monotonic()
    with open(a.out, "w") as f:
        while time.monotonic() < end and not os.path.exists(a.out + ".stop"):
            t, t0 = time.time(), time.monotonic()
            ok, what = one(ip, int(port), a.path, a.timeout)
            sent += 1
            answered += ok
            rec = {"t": round(t, 4), "ms": round((time.monotonic() - t0) * 1000, 2), "ok": ok,
                   ("body" if ok else "err"): what}
            f.write(json.dumps(rec) + "\n")
            nxt = max(nxt + gap, time.monotonic())
            time.sleep(max(0.0, nxt - time.monotonic()))
        f.write(json.dumps({"done": True, "sent": sent, "answered": answered, "failed": sent - answered}) + "\n")
    return 0


class Load:
    """One httpload process in a namespace: `argv_prefix` enters it (nsenter ...)."""

    def __init__(self, argv_prefix: list[str], target: str, out: str, rate: float, timeout: float = 3.0):
        self.out = out
        for f in (out, out + ".stop"):
            if os.path.exists(f):
                os.unlink(f)
        argv = [*argv_prefix, sys.executable, os.path.abspath(__file__), target, "--rate", str(rate),
                "--out", out, "--timeout", str(timeout)]
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def stop(self, timeout: float = 30.0) -> dict:
        """Stop it; returns {sent, answered, failed, requests: [the per-request records]}."""
        open(self.out + ".stop", "w").close()
        try:
            _, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        with open(self.out) as f:
            lines = [json.loads(x) for x in f if x.strip()]
        for f in (self.out + ".stop",):
            os.unlink(f)
        if not lines or not lines[-1].get("done"):
            raise RuntimeError(f"httpload {self.out} did not finish: {err.decode(errors='replace')[-500:]}")
        return {**{k: lines[-1][k] for k in ("sent", "answered", "failed")}, "requests": lines[:-1]}


if __name__ == "__main__":
    sys.exit(main())
