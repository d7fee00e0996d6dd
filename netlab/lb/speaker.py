"""MetalLB's speaker, layer 2 (`python -m netlab.lb.speaker`): the process of the speaker add-on's pods
(netlab/lb/addon.py; image quay.io/metallb/speaker in netlab/workload/images.py), one per node, in the
node's network namespace (hostNetwork). Standard library only.

What it does, as MetalLB's speaker does in layer-2 mode (facts from internal/layer2: arp.go,
announcer.go; read, not copied):
- reads the lab's announcements (`--announcements FILE`, written by the control loop:
  netlab/live/lbannounce.py; the election itself is netlab/lb/announce.py) and keeps the IPs whose node
  is its own (`--node-name`, default $METALLB_NODE_NAME). It looks at the file every POLL seconds
  (a stat) and follows a change at once;
- answers ARP requests (Ethernet destination broadcast or its own MAC) for exactly those IPs, with the
  receiving interface's MAC, on the interfaces MetalLB uses: up, broadcast-capable, not NOARP, not
  enslaved to a bridge, not matching MetalLB's default exclusion list (lo, veth*, cni*, flannel*,
  kube-ipvs*, ...), so on a netlab node its underlay eth0. An IP whose L2Advertisement names
  `interfaces` is answered on those only;
- when it gains an IP: a gratuitous ARP request and reply (sender and target the IP, broadcast) on each
  such interface at once, then every 1.1 s for 5 s (MetalLB's "spam"), so neighbours that cached the
  previous node's MAC move to this one;
- logs what it announces and withdraws as MetalLB's JSON lines (`kubectl logs -n metallb-system
  speaker-...`); serves /metrics on `--port` (7472), which its readiness and liveness probes look at;
- ends cleanly (exit 0) on SIGTERM or SIGINT.

Raw AF_PACKET socket rather than scapy: one socket bound to ETH_P_ARP receives every ARP frame of the
node's interfaces with the interface it came in on, and an ARP reply is 42 bytes built with struct;
scapy would add a heavy import (seconds of start-up in every speaker pod, with its own interface cache
that does not follow links coming and going) for no gain.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import select
import signal
import socket
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ETH_P_ARP = 0x0806
ETH_P_IP = 0x0800
PACKET_OUTGOING = 4
BROADCAST = b"\xff" * 6
IFF_UP, IFF_BROADCAST, IFF_NOARP = 0x1, 0x2, 0x80
POLL = 0.1            # seconds between looks at the announcements file
SCAN = 1.0            # seconds between looks at the interfaces
SPAM_EVERY, SPAM_FOR = 1.1, 5.0
# MetalLB's default announcedInterfacesToExclude (its metallb-excludel2 ConfigMap)
EXCLUDE = re.compile("|".join(("^docker.*", "^cbr.*", "^dummy.*", "^virbr.*", "^lxcbr.*", "^veth.*", "^lo$",
                               "^cali.*", "^tunl.*", "^flannel.*", "^kube-ipvs.*", "^cni.*", "^nodelocaldns.*")))
LEVELS = {"all": 0, "debug": 10, "info": 20, "warn": 30, "error": 40, "none": 100}


class Log:
    def __init__(self, level: str = "info", out=None):
        self.level = LEVELS.get(level, 20)
        self.out = out or sys.stdout

    def __call__(self, level: str, **kv) -> None:
        if LEVELS[level] < self.level:
            return
        t = time.time()
        rec = {"level": level, "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1000):03d}Z"}
        rec.update(kv)
        self.out.write(json.dumps(rec, sort_keys=True) + "\n")
        self.out.flush()


# ---------------------------------------------------------------- frames (pure)

def mac_bytes(text: str) -> bytes:
    return bytes(int(x, 16) for x in text.split(":"))


def mac_text(b: bytes) -> str:
    return ":".join(f"{x:02x}" for x in b)


def arp_frame(op: int, src_mac: bytes, sender_mac: bytes, sender_ip: str, eth_dst: bytes, target_mac: bytes,
              target_ip: str) -> bytes:
    """An Ethernet frame carrying an ARP packet (IPv4 over Ethernet)."""
    return (eth_dst + src_mac + struct.pack("!H", ETH_P_ARP)
            + struct.pack("!HHBBH", 1, ETH_P_IP, 6, 4, op)
            + sender_mac + socket.inet_aton(sender_ip) + target_mac + socket.inet_aton(target_ip))


def parse_arp(frame: bytes):
    """(eth dst, op, sender mac, sender ip, target mac, target ip) of an ARP-over-Ethernet frame, or None."""
    if len(frame) < 42 or frame[12:14] != b"\x08\x06":
        return None
    htype, ptype, hlen, plen, op = struct.unpack("!HHBBH", frame[14:22])
    if (htype, ptype, hlen, plen) != (1, ETH_P_IP, 6, 4):
        return None
    return (frame[0:6], op, frame[22:28], socket.inet_ntoa(frame[28:32]), frame[32:38],
            socket.inet_ntoa(frame[38:42]))


def reply_for(frame: bytes, my_mac: bytes, ips) -> tuple[bytes, str, str] | None:
    """The ARP reply to a request for one of `ips` (MetalLB's responder: a request, addressed to the
    broadcast or to us), as (frame, target ip, asker ip); None for anything else."""
    got = parse_arp(frame)
    if got is None:
        return None
    dst, op, smac, sip, _tmac, tip = got
    if op != 1 or tip not in ips or dst not in (BROADCAST, my_mac):
        return None
    return arp_frame(2, my_mac, my_mac, tip, smac, smac, sip), tip, sip


def gratuitous(my_mac: bytes, ip: str) -> list[bytes]:
    """MetalLB's gratuitous ARP: a request and a reply, sender and target the IP, to the broadcast."""
    return [arp_frame(op, my_mac, my_mac, ip, BROADCAST, BROADCAST, ip) for op in (1, 2)]


# ---------------------------------------------------------------- interfaces

def usable_interfaces(sysfs: str = "/sys/class/net") -> dict[str, bytes]:
    """The interfaces MetalLB answers ARP on (see the module's docstring): name -> MAC."""
    out = {}
    try:
        names = os.listdir(sysfs)
    except OSError:
        return out
    for name in sorted(names):
        if EXCLUDE.search(name) or os.path.exists(os.path.join(sysfs, name, "master")):
            continue
        try:
            with open(os.path.join(sysfs, name, "flags")) as f:
                flags = int(f.read().strip(), 16)
            with open(os.path.join(sysfs, name, "address")) as f:
                mac = f.read().strip()
        except (OSError, ValueError):
            continue
        if not flags & IFF_UP or not flags & IFF_BROADCAST or flags & IFF_NOARP or len(mac.split(":")) != 6:
            continue
        out[name] = mac_bytes(mac)
    return out


# ---------------------------------------------------------------- the speaker

def read_mine(path: str, node: str):
    """(this node's IPs -> their interfaces (None: all), IP -> its Service) in the announcements file;
    None when it cannot be read."""
    from .announce import node_ips, parse_document
    try:
        with open(path, encoding="utf-8") as f:
            anns = parse_document(json.load(f))
    except (OSError, ValueError):
        return None
    return node_ips(anns, node), {a.ip: a.service for a in anns if a.node == node}


class Speaker:
    def __init__(self, path: str, node: str, log: Log, sysfs: str = "/sys/class/net"):
        self.path, self.node, self.log, self.sysfs = path, node, log, sysfs
        self.ips: dict[str, tuple[str, ...] | None] = {}
        self.services: dict[str, str] = {}
        self.ifaces: dict[str, bytes] = {}
        self.file_id = None
        self.spam: dict[str, float] = {}      # ip -> until when gratuitous ARPs go on
        self.next_spam = 0.0
        self.stats = {"requests": 0, "responses": 0, "gratuitous": 0}
        self.stop = threading.Event()
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ARP))

    # -- the announcements
    def look(self, now: float) -> None:
        try:
            st = os.stat(self.path)
            fid = (st.st_ino, st.st_mtime_ns, st.st_size)
        except OSError:
            fid = None
        if fid == self.file_id:
            return
        self.file_id = fid
        if fid is None:
            mine, services = {}, {}
        else:
            got = read_mine(self.path, self.node)
            if got is None:
                return   # unreadable: keep what we announce (the writer replaces the file at once)
            mine, services = got
        old, old_services = self.ips, self.services
        self.ips, self.services = mine, services
        if not self.spam:   # a new round of repeats (one already going keeps its beat, as MetalLB's ticker)
            self.next_spam = now + SPAM_EVERY
        for ip in sorted(set(old) - set(mine)):
            self.log("info", event="serviceWithdrawn", ip=ip, service=old_services.get(ip),
                     msg="withdrawing service announcement", protocol="layer2", node=self.node)
            self.spam.pop(ip, None)
        for ip in sorted(set(mine) - set(old)):
            self.log("info", event="serviceAnnounced", ips=[ip], service=services.get(ip),
                     interfaces=list(mine[ip]) if mine[ip] is not None else "all",
                     msg="service has IP, announcing", protocol="layer2", node=self.node)
            self.spam[ip] = now + SPAM_FOR
            self.send_gratuitous(ip)   # at once; then every SPAM_EVERY s until SPAM_FOR is over

    def scan(self) -> None:
        now = usable_interfaces(self.sysfs)
        for name in sorted(set(now) - set(self.ifaces)):
            self.log("info", event="createARPResponder", interface=name, msg="created ARP responder for interface")
        for name in sorted(set(self.ifaces) - set(now)):
            self.log("info", event="deleteARPResponder", interface=name, msg="deleted ARP responder for interface")
        self.ifaces = now

    def allowed(self, ip: str, iface: str) -> bool:
        want = self.ips.get(ip, ())
        return want is None or iface in want

    # -- the wire
    def send(self, frame: bytes, iface: str) -> bool:
        try:
            self.sock.sendto(frame, (iface, 0))
            return True
        except OSError as e:
            self.log("debug", op="send", interface=iface, error=str(e), msg="failed to send an ARP frame")
            return False

    def send_gratuitous(self, ip: str) -> None:
        for iface, mac in sorted(self.ifaces.items()):
            if not self.allowed(ip, iface):
                continue
            for frame in gratuitous(mac, ip):
                if self.send(frame, iface):
                    self.stats["gratuitous"] += 1
            self.log("debug", op="gratuitousAnnounce", ip=ip, interface=iface, msg="sent gratuitous ARP")

    def receive(self) -> None:
        try:
            frame, addr = self.sock.recvfrom(65535)
        except (BlockingIOError, InterruptedError):
            return
        iface, pkttype = addr[0], addr[2]
        if pkttype == PACKET_OUTGOING or iface not in self.ifaces:
            return
        got = reply_for(frame, self.ifaces[iface], self.ips)
        if got is None:
            return
        reply, ip, asker = got
        if not self.allowed(ip, iface):
            return
        self.stats["requests"] += 1
        if self.send(reply, iface):
            self.stats["responses"] += 1
            self.log("debug", interface=iface, ip=ip, senderIP=asker, responseMAC=mac_text(self.ifaces[iface]),
                     msg="got ARP request for service IP, sending response")

    def spam_tick(self, now: float) -> None:
        """The repeats of the gratuitous ARPs that are due (every SPAM_EVERY s, until SPAM_FOR is over)."""
        if not self.spam or now < self.next_spam:
            return
        for ip, until in list(self.spam.items()):
            if now >= until:
                del self.spam[ip]
            else:
                self.send_gratuitous(ip)
        self.next_spam = now + SPAM_EVERY

    def run(self) -> None:
        self.sock.setblocking(False)
        last_scan = 0.0
        while not self.stop.is_set():
            now = time.monotonic()
            if now - last_scan >= SCAN:
                self.scan()
                last_scan = now
            self.look(now)
            self.spam_tick(now)
            try:
                ready, _, _ = select.select([self.sock], [], [], POLL)
            except InterruptedError:
                continue
            for _ in range(64) if ready else ():   # what is queued, without waiting
                self.receive()
                try:
                    if not select.select([self.sock], [], [], 0)[0]:
                        break
                except InterruptedError:
                    break
        self.sock.close()

    def metrics(self) -> str:
        lines = [f'metallb_speaker_announced{{ip="{ip}",node="{self.node}",protocol="layer2",'
                 f'service="{self.services.get(ip, "")}"}} 1' for ip in sorted(self.ips)]
        lines += [f"metallb_layer2_requests_received {self.stats['requests']}",
                  f"metallb_layer2_responses_sent {self.stats['responses']}",
                  f"metallb_layer2_gratuitous_sent {self.stats['gratuitous']}"]
        return "\n".join(lines) + "\n"


def serve_metrics(speaker: Speaker, port: int) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the stdlib's name
            if self.path.split("?")[0] != "/metrics":
                self.send_error(404)
                return
            body = speaker.metrics().encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    ThreadingHTTPServer.allow_reuse_address = True
    server = ThreadingHTTPServer(("", port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m netlab.lb.speaker",
                                 description="MetalLB's layer-2 speaker for a netlab node (see netlab/lb/speaker.py).")
    ap.add_argument("--announcements", required=True, help="the announcements file the lab's control loop writes")
    ap.add_argument("--node-name", default=os.environ.get("METALLB_NODE_NAME", ""),
                    help="this speaker's node (default: $METALLB_NODE_NAME)")
    ap.add_argument("--port", type=int, default=7472, help="where /metrics is served (default 7472)")
    ap.add_argument("--log-level", default="info", choices=sorted(LEVELS))
    args = ap.parse_args(argv)
    log = Log(args.log_level)
    if not args.node_name:
        log("error", msg="no node name: give --node-name or set METALLB_NODE_NAME")
        return 2
    speaker = Speaker(args.announcements, args.node_name, log)
    server = serve_metrics(speaker, args.port)

    def stop(signum, _frame):
        log("info", op="shutdown", msg=f"got signal {signal.Signals(signum).name}, shutting down")
        speaker.stop.set()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log("info", op="startup", node=args.node_name, msg="MetalLB speaker (netlab, layer 2) starting",
        announcements=args.announcements)
    speaker.run()
    server.shutdown()
    log("info", op="shutdown", msg="done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
