"""A constant stream of NEW HTTP connections, every request counted: what `rollout_under_load` sends
while it rolls a Deployment (wire.py runs it inside the client pod's network namespace with nsenter, as
the `dns` criterion runs its resolver).

    python -m netlab.exercise.traffic IP PORT [--rate 20] [--path /] [--timeout 5] [--seconds 900]

Until its stdin ends (the check closes it once the rollout is done) or --seconds pass: --rate requests
a second, each started on time whatever the others do (an open loop, a thread each: a request that
hangs until its timeout does not hold the next ones back, so an outage fails every request it meets,
as it would fail a real service's many clients), each a new TCP connection, one `GET PATH` with
`Connection: close`, the whole answer read, the socket closed. A line of JSON per request on stdout as
it ends: {"t": its start (unix time), "status": the HTTP status or null when no
answer came (refused, reset, timed out after --timeout for the whole exchange, as curl's --max-time),
"err": why there was no answer}. Once stopped it waits for the requests in flight.
Judging is grade.judge_rollout's (pure). `one` is also benchmarks/httpload.py's request.
"""
from __future__ import annotations

import argparse
import json
import socket
import sys
import threading
import time


def one(ip: str, port: int, path: str, timeout: float) -> tuple[int | None, str]:
    """One request on a new connection: (HTTP status, body) or (None, why no answer came)."""
    deadline = time.monotonic() + timeout
    try:
        with socket.create_connection((ip, port), timeout=timeout) as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: {ip}:{port}\r\nConnection: close\r\n\r\n".encode())
            data = b""
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None, "timeout reading the answer"
                s.settimeout(left)
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
    except OSError as e:
        return None, _why(e)
    head, _, body = data.partition(b"\r\n\r\n")
    status = head.split(b"\r\n", 1)[0].split()
    if len(status) < 2 or not status[0].startswith(b"HTTP/") or not status[1].isdigit():
        return None, f"not an HTTP answer: {head[:40]!r}" if data else "connection closed without an answer"
    return int(status[1]), body.decode(errors="replace").strip()


def _why(e: OSError) -> str:
    if isinstance(e, ConnectionRefusedError):
        return "connection refused"
    if isinstance(e, ConnectionResetError):
        return "connection reset"
    if isinstance(e, (socket.timeout, TimeoutError)):
        return "timeout"
    return e.strerror or e.__class__.__name__


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("ip")
    ap.add_argument("port", type=int)
    ap.add_argument("--rate", type=float, default=20.0, help="requests a second")
    ap.add_argument("--path", default="/")
    ap.add_argument("--timeout", type=float, default=5.0)
    ap.add_argument("--seconds", type=float, default=900.0)
    a = ap.parse_args(argv)
    stop = threading.Event()

    def until_eof() -> None:
        while sys.stdin.buffer.read(4096):
            pass
        stop.set()
    threading.Thread(target=until_eof, daemon=True).start()
    gap = 1.0 / a.rate
    lock = threading.Lock()
    begin = time.monotonic()

    def request(t: float) -> None:
        status, what = one(a.ip, a.port, a.path, a.timeout)
        rec = {"t": round(t, 3), "status": status}
        if status is None:
            rec["err"] = what
        with lock:
            sys.stdout.write(json.dumps(rec) + "\n")
            sys.stdout.flush()
    threads = []
    nxt = begin
    while not stop.is_set() and time.monotonic() - begin < a.seconds:
        th = threading.Thread(target=request, args=(time.time(),), daemon=True)
        th.start()
        threads.append(th)
        threads = [t for t in threads if t.is_alive()] if len(threads) > 100 else threads
        nxt = max(nxt + gap, time.monotonic() - gap)   # late (a busy machine): no burst to catch up
        stop.wait(max(0.0, nxt - time.monotonic()))
    for th in threads:
        th.join()
    return 0


if __name__ == "__main__":
    sys.exit(main())
