"""netlab.dataplane.procsys: sysctls written through netlab's own (detached) procfs instance land in the
namespace of the writing thread, as through /proc/sys, read back by sysctl(8) run in that namespace; the
instance is replaced as it is used, and no mount appears on the host."""
from __future__ import annotations

import os
import subprocess

from netlab.dataplane import nsfs
from netlab.dataplane.procsys import ProcSys


def _mounts() -> list[str]:
    """The procfs mounts of this mount namespace."""
    with open("/proc/self/mountinfo") as f:
        return [line for line in f if " - proc " in line]


def test_sysctls_land_in_the_threads_namespace_and_nothing_is_mounted():
    names = [f"nltest-procsys-{os.getpid()}-{i}" for i in range(3)]
    ps = ProcSys(rotate=2)
    before = _mounts()
    assert before   # /proc itself
    try:
        for i, name in enumerate(names):
            subprocess.run(["ip", "netns", "add", name], check=True)
            subprocess.run(["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"], check=True)

            def write(i=i):
                ps.write("net/ipv4/icmp_ratelimit", str(100 * (i + 1)))   # milliseconds: a multiple of 1000/HZ
                ps.write("net/ipv4/conf/lo/arp_notify", "1")
                try:
                    ps.read("net/ipv4/conf/nosuchdev/arp_notify")
                    missing = False
                except FileNotFoundError:
                    missing = True
                return ps.read("net/ipv4/icmp_ratelimit").strip(), missing
            assert nsfs.in_netns(name, write) == (str(100 * (i + 1)), True)
        assert _mounts() == before      # detached: the host's mount table never saw it
        for i, name in enumerate(names):
            out = subprocess.run(["ip", "netns", "exec", name, "sysctl", "-n", "net.ipv4.icmp_ratelimit",
                                  "net.ipv4.conf.lo.arp_notify"], capture_output=True, text=True, check=True)
            assert out.stdout.split() == [str(100 * (i + 1)), "1"]
        # the root namespace's value is untouched
        with open("/proc/sys/net/ipv4/icmp_ratelimit") as f:
            assert f.read().strip() not in {"100", "200", "300"}
        assert ps.mounts >= 3      # 12 opens, 2 per instance (none if the kernel refused the new mount API)
    finally:
        ps.close()
        for name in names:
            subprocess.run(["ip", "netns", "del", name], capture_output=True)
