"""A watcher run inside one network namespace by benchmarks/bgp_bench.py (through nsenter): it polls one
thing every EVERY seconds and prints `TIME STATE` (time.time(), the host's clock) on every change, the
first state included, until it is killed.

    python3 bgp_watch.py route CIDR EVERY    # present/absent: CIDR in the namespace's main routing table
    python3 bgp_watch.py link IFACE EVERY    # up/down: IFACE administratively up and with carrier

Both reads are cheap enough for a 10 ms period, with no process started per poll: the routing table is
/proc/self/net/route (the table of the namespace this process is in), the link's flags one SIOCGIFFLAGS
ioctl on a socket of this namespace (IFF_RUNNING is cleared when the veth's peer goes down: a node
partitioned by `netlab node stop` has its underlay end down). The parsing below is pure
(tests/unit/test_bench_bgp.py).
"""
from __future__ import annotations

import fcntl
import ipaddress
import socket
import struct
import sys
import time

SIOCGIFFLAGS = 0x8913
IFF_UP, IFF_RUNNING = 0x1, 0x40


def proc_routes(text: str) -> set[str]:
    """The destinations (CIDR strings) of /proc/net/route's text. Its addresses and masks are the kernel's
    32-bit values printed in hex in the host's byte order (little-endian here: 0000F40A is 10.244.0.0)."""
    out = set()
    for line in text.splitlines()[1:]:
        cols = line.split()
        if len(cols) < 8:
            continue
        dst = ipaddress.IPv4Address(struct.pack("=I", int(cols[1], 16)))
        mask = ipaddress.IPv4Address(struct.pack("=I", int(cols[7], 16)))
        out.add(str(ipaddress.IPv4Network(f"{dst}/{mask}")))
    return out


def link_state(flags: int) -> str:
    return "up" if flags & IFF_UP and flags & IFF_RUNNING else "down"


def read_state(kind: str, target: str, sock: socket.socket | None) -> str:
    if kind == "route":
        with open("/proc/self/net/route") as f:
            return "present" if target in proc_routes(f.read()) else "absent"
    try:
        res = fcntl.ioctl(sock.fileno(), SIOCGIFFLAGS, struct.pack("16sH14x", target.encode(), 0))
    except OSError:
        return "missing"
    return link_state(struct.unpack("16sH14x", res)[1])


def main(argv: list[str]) -> None:
    kind, target, every = argv[0], argv[1], float(argv[2])
    if kind not in ("route", "link"):
        raise SystemExit(f"bgp_watch: unknown kind {kind!r} (route or link)")
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM) if kind == "link" else None
    prev = None
    while True:
        t = time.time()
        state = read_state(kind, target, sock)
        if state != prev:
            print(f"{t:.4f} {state}", flush=True)
            prev = state
        time.sleep(max(0.0, every - (time.time() - t)))


if __name__ == "__main__":
    main(sys.argv[1:])
