"""flannel's etcd layout (pure): the keys and JSON values flanneld reads and writes when its subnet
manager is etcd (not --kube-subnet-mgr), so that netlab's nodes publish and learn each other's subnets
the way flannel's do, and `etcdctl get /coreos.com/network/subnets --prefix` shows what it shows for
flannel.

- ``<prefix>/config``: the network's configuration, ``{"Network": "10.244.0.0/16", "SubnetLen": 24,
  "Backend": {"Type": "vxlan"}}`` (flannel's --etcd-prefix, default ``/coreos.com/network``);
- ``<prefix>/subnets/<subnet with "-" for "/">`` (``/coreos.com/network/subnets/10.244.1.0-24``): one
  node's lease, ``{"PublicIP": "172.18.0.2", "PublicIPv6": null, "BackendType": "vxlan",
  "BackendData": {"VNI": 1, "VtepMAC": "aa:bb:cc:dd:ee:ff"}}`` (host-gw: no BackendData), attached to an
  etcd lease of 24 h that the node renews within its last hour (flannel's --subnet-lease-renew-margin).

Reading and writing them in etcd is netlab/flannel/leases.py.
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass

PREFIX = "/coreos.com/network"
LEASE_TTL = 24 * 3600          # s: a subnet lease's life (flannel's)
RENEW_MARGIN = 3600            # s: renewed this long before it ends (flannel's default margin)
DEFAULT_VNI = 1
BACKENDS = ("vxlan", "host-gw", "udp", "ipip", "wireguard")

_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")


def config_key(prefix: str = PREFIX) -> str:
    return f"{prefix.rstrip('/')}/config"


def subnets_prefix(prefix: str = PREFIX) -> str:
    return f"{prefix.rstrip('/')}/subnets/"


def subnet_key(subnet, prefix: str = PREFIX) -> str:
    """``<prefix>/subnets/10.244.1.0-24`` of subnet 10.244.1.0/24."""
    net = ipaddress.ip_network(str(subnet))
    return f"{subnets_prefix(prefix)}{net.network_address}-{net.prefixlen}"


def parse_subnet_key(key: str, prefix: str = PREFIX):
    """The subnet a lease key names (ValueError for a key that is not one)."""
    base = subnets_prefix(prefix)
    if not key.startswith(base) or "-" not in key[len(base):]:
        raise ValueError(f"{key!r} is not a flannel subnet key under {base}")
    addr, _, plen = key[len(base):].rpartition("-")
    return ipaddress.ip_network(f"{addr}/{plen}")


def config_value(network, subnet_len: int = 24, backend: str = "vxlan", vni: int | None = None) -> str:
    """The JSON of ``<prefix>/config`` for a network of `network` split into /`subnet_len` leases."""
    net = ipaddress.ip_network(str(network))
    if backend not in BACKENDS:
        raise ValueError(f"flannel backend {backend!r}: use one of {', '.join(BACKENDS)}")
    if not net.prefixlen < subnet_len <= net.max_prefixlen:
        raise ValueError(f"flannel SubnetLen {subnet_len}: must be longer than the network's /{net.prefixlen}")
    be: dict = {"Type": backend}
    if vni is not None:
        be["VNI"] = vni
    return json.dumps({"Network": str(net), "SubnetLen": subnet_len, "Backend": be}, separators=(",", ":"))


@dataclass(frozen=True)
class Lease:
    """One node's subnet lease as flannel keeps it."""
    subnet: ipaddress.IPv4Network
    public_ip: ipaddress.IPv4Address
    backend: str = "vxlan"
    vtep_mac: str | None = None   # vxlan: the MAC of the node's flannel.1
    vni: int = DEFAULT_VNI

    def __post_init__(self):
        object.__setattr__(self, "subnet", ipaddress.ip_network(str(self.subnet)))
        object.__setattr__(self, "public_ip", ipaddress.ip_address(str(self.public_ip)))
        if self.backend not in BACKENDS:
            raise ValueError(f"flannel backend {self.backend!r}: use one of {', '.join(BACKENDS)}")
        if self.backend == "vxlan":
            if not self.vtep_mac or not _MAC.match(self.vtep_mac.lower()):
                raise ValueError(f"lease of {self.subnet}: vxlan needs the VTEP MAC (aa:bb:cc:dd:ee:ff), "
                                 f"not {self.vtep_mac!r}")
            object.__setattr__(self, "vtep_mac", self.vtep_mac.lower())

    @property
    def key(self) -> str:
        return subnet_key(self.subnet)

    def value(self) -> str:
        """The JSON flannel writes for this lease (its field order, no spaces)."""
        doc: dict = {"PublicIP": str(self.public_ip), "PublicIPv6": None, "BackendType": self.backend}
        if self.backend == "vxlan":
            doc["BackendData"] = {"VNI": self.vni, "VtepMAC": self.vtep_mac}
        return json.dumps(doc, separators=(",", ":"))


def parse_lease(key: str, value: str, prefix: str = PREFIX) -> Lease:
    """The Lease of a subnet key and its JSON value (as flannel or netlab wrote it)."""
    subnet = parse_subnet_key(key, prefix)
    try:
        doc = json.loads(value)
        data = doc.get("BackendData") or {}
        return Lease(subnet, doc["PublicIP"], doc.get("BackendType", "udp"), data.get("VtepMAC"),
                     int(data.get("VNI", DEFAULT_VNI)))
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise ValueError(f"flannel lease {key}: unreadable value {value!r} ({e})") from None


# netlab's backends and flannel's BackendType (bgp has no flannel counterpart: such a lab publishes none)
BACKEND_OF = {"vxlan": "vxlan", "host-gw": "host-gw", "ipip": "ipip"}


def lab_prefix(store_prefix: str) -> str:
    """Where a lab whose store is in etcd keeps flannel's layout: under its store's prefix (flannel's
    --etcd-prefix), so that labs sharing an etcd never meet and `down` removes them with the lab."""
    return store_prefix.rstrip("/") + PREFIX


def node_lease(pod_cidr, ip, backend: str, vtep_mac: str | None) -> Lease | None:
    """A node's lease (its podCIDR, its underlay IP, its flannel.1 MAC) under netlab backend `backend`;
    None when flannel has no such backend."""
    kind = BACKEND_OF.get(backend)
    if kind is None:
        return None
    return Lease(pod_cidr, ip, kind, vtep_mac if kind == "vxlan" else None)


def renew_due(remaining_ttl: float, margin: float = RENEW_MARGIN) -> bool:
    """Whether a lease with `remaining_ttl` s left must be renewed now (within the renew margin)."""
    return remaining_ttl <= margin
