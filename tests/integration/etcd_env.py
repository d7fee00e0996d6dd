"""Emulated hosts for the etcd tests: a shared segment (a bridge in its own network namespace), one
namespace per host with its "NIC" (eth0, its own IP on the segment), a client namespace on the segment,
and etcd members of a test lab (netlab.etcd.members) in the host namespaces. Everything has a unique
name and `close()` removes it (the lab by `netlab down`, the namespaces by name), whatever happened."""
from __future__ import annotations

import secrets
import subprocess

from netlab.dataplane import lab as labmod
from netlab.dataplane import nsfs
from netlab.etcd import members

SUBNET = "10.231.{}.{}"


def _ip(*argv: str) -> None:
    subprocess.run(["ip", *argv], check=True, capture_output=True, text=True)


class EtcdHosts:
    def __init__(self, hosts: int = 1, start: bool = True):
        tag = secrets.token_hex(3)
        self.lab = f"etcd-{tag}"
        self.net = int(tag[:2], 16) % 200 + 20       # a /24 of its own per test run
        self.segment = f"etcdt-{tag}-seg"
        self.client_ns = f"etcdt-{tag}-cli"
        self.hosts = {f"m{i + 1}": f"etcdt-{tag}-m{i + 1}" for i in range(hosts)}
        self.ips = {h: SUBNET.format(self.net, i + 1) for i, h in enumerate(self.hosts)}
        self.made: list[str] = []
        try:
            self._build()
            if start:
                for h in self.hosts:
                    self.start(h)
                members.wait_healthy(self.endpoints(), netns=self.client_ns, timeout=60)
        except BaseException:
            self.close()
            raise

    def _build(self) -> None:
        _ip("netns", "add", self.segment)
        self.made.append(self.segment)
        _ip("-n", self.segment, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.segment, "link", "set", "br0", "up")
        for i, (h, ns) in enumerate([*self.hosts.items(), ("cli", self.client_ns)]):
            ip = self.ips.get(h, SUBNET.format(self.net, 100))
            _ip("netns", "add", ns)
            self.made.append(ns)
            _ip("link", "add", "eth0", "netns", ns, "type", "veth", "peer", "name", f"p{i}", "netns", self.segment)
            _ip("-n", self.segment, "link", "set", f"p{i}", "master", "br0", "up")
            _ip("-n", ns, "addr", "add", f"{ip}/24", "dev", "eth0")
            _ip("-n", ns, "link", "set", "eth0", "up")
            _ip("-n", ns, "link", "set", "lo", "up")

    def endpoints(self, hosts=None) -> list[str]:
        return [members.client_url(self.ips[h]) for h in (hosts or self.hosts)]

    def start(self, host: str) -> int:
        return members.start_member(self.lab, host, self.hosts[host], self.ips[host], dict(self.ips))

    def stop(self, host: str) -> bool:
        return members.stop_member(self.lab, host)

    def close(self) -> None:
        try:
            labmod.down(self.lab)
        finally:
            for ns in reversed(self.made):
                nsfs.delete_ns_file(nsfs.netns_path(ns))
            self.made.clear()
