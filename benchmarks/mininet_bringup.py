"""Mininet peer for benchmarks/bringup.py: N hosts on one Linux bridge, no controller, timed.

Run with Debian's python3 (Mininet is a Debian package, not in the venv), inside a throwaway network and
PID namespace so that Mininet's switch-side veths and its host shells never touch the host:

    unshare --net --pid --fork --mount-proc /usr/bin/python3 benchmarks/mininet_bringup.py HOSTS

What is timed is what `mn --topo single,HOSTS --switch lxbr --controller none` does, through the Python
API: `Mininet(topo=SingleSwitchTopo(HOSTS), switch=LinuxBridge, controller=None)` (builds the hosts and
links: one `mnexec` shell per host in its own network namespace, one veth pair per host, addresses set
with ifconfig) plus `start()` (the bridge, its ports), as "up"; `stop()` as "down". Untimed, in between:
h1 pings the last host once (the network really works). Prints one JSON line. When the process ends,
the kernel ends everything left in its PID namespace and frees its network namespaces, so no `mn -c`
(which kills processes by name) is needed.
"""
import json
import os
import resource
import socket
import sys
import time

from mininet.clean import Cleanup  # noqa: F401  (imported to fail early if mininet is incomplete)
from mininet.log import setLogLevel
from mininet.net import Mininet, VERSION
from mininet.nodelib import LinuxBridge
from mininet.topo import SingleSwitchTopo


def main() -> None:
    hosts = int(sys.argv[1])
    if os.getpid() != 1:
        raise SystemExit("run me as PID 1 of a throwaway PID namespace: unshare --net --pid --fork --mount-proc ...")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))   # Mininet keeps a pty + pipes per host (as mn does)
    setLogLevel("warning")
    links_before = len(socket.if_nameindex())   # this (throwaway) namespace's links
    t0 = time.perf_counter()
    net = Mininet(topo=SingleSwitchTopo(hosts), switch=LinuxBridge, controller=None)
    net.start()
    t_up = time.perf_counter() - t0
    first, last = net.hosts[0], net.hosts[-1]
    out = first.cmd(f"ping -c1 -W2 {last.IP()}")
    ok = " 0% packet loss" in out
    links_up = len(socket.if_nameindex())
    t0 = time.perf_counter()
    net.stop()
    t_down = time.perf_counter() - t0
    print(json.dumps({"hosts": len(net.hosts), "up_s": t_up, "down_s": t_down, "ping_ok": ok,
                      "links_in_runner_netns": links_up - links_before, "mininet": VERSION,
                      "python": sys.version.split()[0]}))


if __name__ == "__main__":
    main()
