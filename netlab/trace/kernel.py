"""The thin kernel layer of `netlab trace`: arm netfilter tracing for one packet in a lab's node
namespaces, run the monitors, send the packet, look routes / neighbours / conntrack up, disarm.

Everything added is netlab's and scoped to the one packet: in iptables (and IPVS) mode a raw-table chain
NETLAB-TRACE-<id> with one TRACE rule matching the packet's IP ID and protocol (and TCP sequence number),
jumped to first from raw PREROUTING and OUTPUT; in nftables mode a table `ip netlab-trace-<lab>-<id>` whose
raw-priority prerouting and output chains set `meta nftrace` on that packet. `disarm` removes all of it
(and the iptables raw table itself when tracing created it); callers run it in `finally`. Only the lab's
node namespaces are touched, never the host's.
"""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from dataclasses import dataclass

from ..dataplane import lab as labmod
from ..errors import KernelError


def _run(netns: str, argv: list[str], stdin: str | None = None, timeout: float = 15) -> subprocess.CompletedProcess:
    return subprocess.run(labmod.netns_exec_argv(netns, argv), input=stdin, capture_output=True, text=True,
                          timeout=timeout)


@dataclass(frozen=True)
class Packet:
    dst: str
    proto: str          # tcp | udp | icmp
    dport: int          # 0 for icmp
    sport: int          # the source port (tcp/udp) or echo id (icmp)
    ipid: int
    seq: int
    timeout: float

    def as_json(self) -> str:
        return json.dumps({"dst": self.dst, "proto": self.proto, "dport": self.dport, "sport": self.sport,
                           "ipid": self.ipid, "seq": self.seq, "timeout": self.timeout})


def u32_match(p: Packet) -> str:
    """The xt_u32 expression that is true for this packet only: its IP ID (and TCP sequence number)."""
    expr = f"4>>16=0x{p.ipid:x}"
    if p.proto == "tcp":
        expr += f"&&0>>22&0x3C@4=0x{p.seq:x}"
    return expr


def nft_match(p: Packet) -> str:
    m = f"ip id {p.ipid} meta l4proto {p.proto}"
    if p.proto == "tcp":
        m += f" tcp sequence {p.seq}"
    return m


class Tracing:
    """Armed tracing in some node namespaces; `disarm()` undoes it (idempotent)."""

    def __init__(self, lab: str, run_id: str, mode: str, packet: Packet):
        self.lab, self.mode, self.packet = lab, mode, packet
        self.chain = f"NETLAB-TRACE-{run_id}"
        self.table = f"netlab-trace-{lab}-{run_id}"
        self.armed: dict[str, bool] = {}        # netns -> (iptables) whether the raw table was created by us
        self.monitors: dict[str, subprocess.Popen] = {}

    # -------------------------------------------------------------- rules
    def arm(self, netns: str) -> None:
        comment = f"netlab trace lab={self.lab}"
        if self.mode == "nft":
            match = nft_match(self.packet)
            text = (f"table ip {self.table} {{\n"
                    f"  chain pre {{ type filter hook prerouting priority raw; {match} meta nftrace set 1; }}\n"
                    f"  chain out {{ type filter hook output priority raw; {match} meta nftrace set 1; }}\n"
                    f"  comment \"{comment}\"\n}}\n")
            self.armed[netns] = False
            r = _run(netns, ["nft", "-f", "-"], text)
        else:
            had_raw = _run(netns, ["nft", "list", "table", "ip", "raw"]).returncode == 0
            self.armed[netns] = not had_raw
            payload = (f"*raw\n:{self.chain} - [0:0]\n"
                       f"-I PREROUTING 1 -m comment --comment \"{comment}\" -j {self.chain}\n"
                       f"-I OUTPUT 1 -m comment --comment \"{comment}\" -j {self.chain}\n"
                       f"-A {self.chain} -p {self.packet.proto} -m u32 --u32 \"{u32_match(self.packet)}\" "
                       f"-m comment --comment \"{comment}\" -j TRACE\nCOMMIT\n")
            r = _run(netns, ["iptables-nft-restore", "--noflush"], payload)
        if r.returncode != 0:
            raise KernelError(f"cannot arm tracing in {netns}: {r.stderr.strip()[:300]}")

    def disarm(self) -> list[str]:
        """Remove everything `arm` added; returns the problems (never raises: it runs in `finally`)."""
        problems = []
        self.stop_monitors()
        for netns, made_raw in list(self.armed.items()):
            try:
                if self.mode == "nft":
                    r = _run(netns, ["nft", "delete", "table", "ip", self.table])
                else:
                    comment = f"netlab trace lab={self.lab}"
                    payload = (f"*raw\n-D PREROUTING -m comment --comment \"{comment}\" -j {self.chain}\n"
                               f"-D OUTPUT -m comment --comment \"{comment}\" -j {self.chain}\n"
                               f"-F {self.chain}\n-X {self.chain}\nCOMMIT\n")
                    r = _run(netns, ["iptables-nft-restore", "--noflush"], payload)
                    if r.returncode == 0 and made_raw:
                        left = _run(netns, ["iptables-nft", "-t", "raw", "-S"]).stdout.split("\n")
                        if all(not x or x.startswith("-P ") for x in left):
                            r = _run(netns, ["nft", "delete", "table", "ip", "raw"])
                if r.returncode != 0 and "No such file" not in r.stderr:
                    problems.append(f"{netns}: {r.stderr.strip()[:200]}")
            except (OSError, subprocess.SubprocessError, KernelError) as e:
                problems.append(f"{netns}: {e}")
            del self.armed[netns]
        return problems

    # -------------------------------------------------------------- monitors
    def start_monitor(self, netns: str) -> None:
        argv = ["nft", "monitor", "trace"] if self.mode == "nft" else ["xtables-monitor", "--trace"]
        self.monitors[netns] = subprocess.Popen(labmod.netns_exec_argv(netns, argv), stdout=subprocess.PIPE,
                                                stderr=subprocess.PIPE, text=True)

    def wait_monitors(self, limit: float = 5.0) -> None:
        """Until every monitor runs (nsenter has exec'd it) and holds its netlink socket, then a moment for
        it to subscribe; a monitor that exited is an error (its stderr says why)."""
        end = time.monotonic() + limit
        for netns, proc in self.monitors.items():
            while time.monotonic() < end:
                if proc.poll() is not None:
                    raise KernelError(f"the trace monitor in {netns} exited: {proc.stderr.read().strip()[:300]}")
                if _has_socket(proc.pid):
                    break
                time.sleep(0.02)
        time.sleep(0.15)

    def stop_monitors(self) -> dict[str, str]:
        out = {}
        for netns, proc in list(self.monitors.items()):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            try:
                stdout, _ = proc.communicate(timeout=3)
            except subprocess.TimeoutExpired:
                proc.kill()
                stdout, _ = proc.communicate()
            out[netns] = stdout or ""
            del self.monitors[netns]
        return out


def _has_socket(pid: int) -> bool:
    """Whether process pid is past nsenter (its own program runs) and has a socket open."""
    import os
    try:
        with open(f"/proc/{pid}/comm") as f:
            if f.read().strip() == "nsenter":
                return False
        return any(os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:") for fd in os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return False


def send(netns: str, packet: Packet) -> dict:
    """The packet sent from `netns` (netlab.trace.send in it) and what came back."""
    r = _run(netns, [sys.executable, "-m", "netlab.trace.send", packet.as_json()], timeout=packet.timeout + 20)
    try:
        return json.loads(r.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise KernelError(f"the trace packet could not be sent from {netns}: "
                          f"{(r.stderr.strip().splitlines() or ['no output'])[-1]}") from None


def route_get(netns: str, dst: str, src: str | None = None, iif: str | None = None) -> tuple[bool, str]:
    """`ip route get` in netns: (found, its first line or the kernel's error)."""
    argv = ["ip", "route", "get", dst]
    if src and iif:
        argv += ["from", src, "iif", iif]
    r = _run(netns, argv)
    if r.returncode != 0 and iif:       # the address is not (yet) valid as a source there: plain lookup
        r = _run(netns, ["ip", "route", "get", dst])
    text = (r.stdout.strip().splitlines() or [""])[0] if r.returncode == 0 else r.stderr.strip().replace(
        "RTNETLINK answers: ", "")
    return r.returncode == 0, " ".join(text.split())


def vxlan_peer(netns: str, via: str) -> str | None:
    """The underlay address flannel.1 sends the VXLAN packet to for next hop `via` (neighbour MAC -> fdb)."""
    mac = None
    for line in _run(netns, ["ip", "neigh", "show", "dev", "flannel.1"]).stdout.splitlines():
        tok = line.split()
        if tok and tok[0] == via and "lladdr" in tok:
            mac = tok[tok.index("lladdr") + 1]
    if mac is None:
        return None
    for line in _run(netns, ["bridge", "fdb", "show", "dev", "flannel.1"]).stdout.splitlines():
        tok = line.split()
        if tok and tok[0] == mac and "dst" in tok:
            return tok[tok.index("dst") + 1]
    return None


def conntrack(netns: str, proto: str, src: str, dst: str, sport: int | None, dport: int | None) -> list[str]:
    """The conntrack entries of netns whose original tuple is this packet's."""
    argv = ["conntrack", "-L", "-p", proto, "-s", src, "-d", dst]
    if proto in ("tcp", "udp") and sport and dport:
        argv += ["--sport", str(sport), "--dport", str(dport)]
    r = _run(netns, argv)
    return [" ".join(line.split()) for line in r.stdout.splitlines() if line.strip()]


def settle(seconds: float = 0.3) -> None:
    time.sleep(seconds)
