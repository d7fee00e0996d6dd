"""IPVS mode's kernel objects as data: virtual and real servers, kube-proxy's ipsets, a node's whole state. Pure.

render.kubeproxy_ipvs fills an IpvsState (what a node should hold); render.ipvs_text turns these objects
into the text of ipvsadm and ipset and back, and diffs them.
"""
from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field, replace

from .tables import TableState

DUMMY_DEVICE = "kube-ipvs0"
DEFAULT_SCHEDULER = "rr"

# ---------------------------------------------------------------- ipsets (pkg/proxy/ipvs/ipset.go)

LOOP_BACK = "KUBE-LOOP-BACK"
CLUSTER_IP = "KUBE-CLUSTER-IP"
EXTERNAL_IP = "KUBE-EXTERNAL-IP"
EXTERNAL_IP_LOCAL = "KUBE-EXTERNAL-IP-LOCAL"
LOAD_BALANCER = "KUBE-LOAD-BALANCER"
LOAD_BALANCER_FW = "KUBE-LOAD-BALANCER-FW"
LOAD_BALANCER_LOCAL = "KUBE-LOAD-BALANCER-LOCAL"
LOAD_BALANCER_SOURCE_IP = "KUBE-LOAD-BALANCER-SOURCE-IP"
LOAD_BALANCER_SOURCE_CIDR = "KUBE-LOAD-BALANCER-SOURCE-CIDR"
NODE_PORT_TCP = "KUBE-NODE-PORT-TCP"
NODE_PORT_LOCAL_TCP = "KUBE-NODE-PORT-LOCAL-TCP"
NODE_PORT_UDP = "KUBE-NODE-PORT-UDP"
NODE_PORT_LOCAL_UDP = "KUBE-NODE-PORT-LOCAL-UDP"
NODE_PORT_SCTP = "KUBE-NODE-PORT-SCTP-HASH"
NODE_PORT_LOCAL_SCTP = "KUBE-NODE-PORT-LOCAL-SCTP-HASH"
HEALTH_CHECK_NODE_PORT = "KUBE-HEALTH-CHECK-NODE-PORT"
IPVS_IPS = "KUBE-IPVS-IPS"

HASH_IP = "hash:ip"
HASH_IP_PORT = "hash:ip,port"
HASH_IP_PORT_IP = "hash:ip,port,ip"
HASH_IP_PORT_NET = "hash:ip,port,net"
BITMAP_PORT = "bitmap:port"

# kube-proxy's ipsetInfo: (name, type, comment), in its order. The comment is not stored in the kernel
# (kube-proxy creates the sets without the comment extension); it is the iptables comment of the rule
# that matches the set.
IPSET_INFO: list[tuple[str, str, str]] = [
    (LOOP_BACK, HASH_IP_PORT_IP, "Kubernetes endpoints dst ip:port, source ip for solving hairpin purpose"),
    (CLUSTER_IP, HASH_IP_PORT, "Kubernetes service cluster ip + port for masquerade purpose"),
    (EXTERNAL_IP, HASH_IP_PORT, "Kubernetes service external ip + port for masquerade and filter purpose"),
    (EXTERNAL_IP_LOCAL, HASH_IP_PORT, "Kubernetes service external ip + port with externalTrafficPolicy=local"),
    (LOAD_BALANCER, HASH_IP_PORT, "Kubernetes service lb portal"),
    (LOAD_BALANCER_FW, HASH_IP_PORT,
     "Kubernetes service load balancer ip + port for load balancer with sourceRange"),
    (LOAD_BALANCER_LOCAL, HASH_IP_PORT,
     "Kubernetes service load balancer ip + port with externalTrafficPolicy=local"),
    (LOAD_BALANCER_SOURCE_IP, HASH_IP_PORT_IP,
     "Kubernetes service load balancer ip + port + source IP for packet filter purpose"),
    (LOAD_BALANCER_SOURCE_CIDR, HASH_IP_PORT_NET,
     "Kubernetes service load balancer ip + port + source cidr for packet filter purpose"),
    (NODE_PORT_TCP, BITMAP_PORT, "Kubernetes nodeport TCP port for masquerade purpose"),
    (NODE_PORT_LOCAL_TCP, BITMAP_PORT, "Kubernetes nodeport TCP port with externalTrafficPolicy=local"),
    (NODE_PORT_UDP, BITMAP_PORT, "Kubernetes nodeport UDP port for masquerade purpose"),
    (NODE_PORT_LOCAL_UDP, BITMAP_PORT, "Kubernetes nodeport UDP port with externalTrafficPolicy=local"),
    (NODE_PORT_SCTP, HASH_IP_PORT, "Kubernetes nodeport SCTP port for masquerade purpose with type 'hash ip:port'"),
    (NODE_PORT_LOCAL_SCTP, HASH_IP_PORT,
     "Kubernetes nodeport SCTP port with externalTrafficPolicy=local with type 'hash ip:port'"),
    (HEALTH_CHECK_NODE_PORT, BITMAP_PORT, "Kubernetes health check node port"),
    (IPVS_IPS, HASH_IP, "Addresses on the ipvs interface"),
]
IPSET_NAMES = tuple(name for name, _, _ in IPSET_INFO)

# kube-proxy's defaults for every set it creates (setIPSetDefaults)
HASH_FAMILY = "inet"
HASH_SIZE = 1024
MAX_ELEM = 65536
PORT_RANGE = "0-65535"

PROTO_SWITCH = {"TCP": "-t", "UDP": "-u", "SCTP": "--sctp-service"}
SWITCH_PROTO = {v: k for k, v in PROTO_SWITCH.items()} | {"--tcp-service": "TCP", "--udp-service": "UDP"}
FWD_SWITCH = {"masq": "-m", "route": "-g", "tunnel": "-i"}
SWITCH_FWD = {v: k for k, v in FWD_SWITCH.items()} | {"--masquerading": "masq", "--gatewaying": "route",
                                                      "--ipip": "tunnel"}


def natural(text: str) -> tuple:
    """Sort key with numbers compared as numbers: 10.244.1.10 after 10.244.1.9, port 8080 before 30080."""
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text))


def ip_key(addr: str) -> int:
    return int(ipaddress.ip_address(addr))


@dataclass(frozen=True)
class RealServer:
    address: str
    port: int
    weight: int = 1
    forwarding: str = "masq"           # masq | route | tunnel (ipvsadm -m | -g | -i)

    @property
    def key(self) -> str:
        return f"{self.address}:{self.port}"


@dataclass
class VirtualServer:
    protocol: str                      # TCP | UDP | SCTP
    address: str
    port: int
    scheduler: str = DEFAULT_SCHEDULER
    persistent: int | None = None      # persistence timeout in seconds (sessionAffinity ClientIP)
    flags: tuple[str, ...] = ()        # scheduler flags as ipvsadm names them, e.g. ("mh-port",)
    real_servers: list[RealServer] = field(default_factory=list)
    comment: str = field(default="", compare=False)     # which Service port (not in the kernel)

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.protocol, self.address, self.port)

    @property
    def sort_key(self) -> tuple:
        return (ip_key(self.address), self.port, self.protocol)

    @property
    def target(self) -> str:
        """The service as ipvsadm names it: `-t 10.96.0.1:443`."""
        return f"{PROTO_SWITCH[self.protocol]} {self.address}:{self.port}"

    def header(self) -> "VirtualServer":
        """This virtual server without its real servers."""
        return replace(self, real_servers=[])

    def same_header(self, other: "VirtualServer") -> bool:
        return (self.key, self.scheduler, self.persistent, tuple(sorted(self.flags))) == \
            (other.key, other.scheduler, other.persistent, tuple(sorted(other.flags)))


@dataclass
class IpSet:
    name: str
    type: str
    entries: list[str] = field(default_factory=list)
    comment: str = field(default="", compare=False)

    def create_line(self, exist: bool = True) -> str:
        """`create` as kube-proxy runs it (family/hashsize/maxelem for hash sets, range for bitmap:port)."""
        opts = f"range {PORT_RANGE}" if self.type == BITMAP_PORT else \
            f"family {HASH_FAMILY} hashsize {HASH_SIZE} maxelem {MAX_ELEM}"
        return f"create {self.name} {self.type} {opts}" + (" -exist" if exist else "")


@dataclass
class IpvsState:
    node: str
    addresses: list[str]                       # "10.96.0.1/32" on the dummy device, sorted
    virtual_servers: list[VirtualServer]
    ipsets: dict[str, IpSet]                   # every kube-proxy set, in IPSET_INFO order
    iptables: dict[str, TableState]            # "nat", "filter"
    sysctls: dict[str, str]
    dummy_device: str = DUMMY_DEVICE
