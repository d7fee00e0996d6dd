"""flannel's leases in etcd (the layout is netlab/flannel/__init__.py): write a node's lease attached to
an etcd lease with a TTL, renew it, list them and watch them change, with netlab's etcd client
(netlab/etcd/client.py). A lease whose etcd lease ends (its node stopped renewing it) disappears from
etcd by itself, as a flannel node's does."""

from __future__ import annotations

import time
from dataclasses import dataclass

from netlab.etcd.client import EtcdClient
from netlab.flannel import (LEASE_TTL, PREFIX, RENEW_MARGIN, Lease, config_key, config_value, lab_prefix,
                            node_lease, parse_lease, parse_subnet_key, subnet_key, subnets_prefix)


@dataclass(frozen=True)
class Written:
    lease: Lease
    etcd_lease: int     # the etcd lease id the key is attached to
    revision: int


def write_config(client: EtcdClient, network, subnet_len: int = 24, backend: str = "vxlan",
                 prefix: str = PREFIX) -> int:
    return client.put(config_key(prefix), config_value(network, subnet_len, backend))


def read_config(client: EtcdClient, prefix: str = PREFIX) -> dict | None:
    import json
    value = client.get(config_key(prefix))
    return None if value is None else json.loads(value)


def write_lease(client: EtcdClient, lease: Lease, ttl: int = LEASE_TTL, prefix: str = PREFIX) -> Written:
    """Publish `lease` under its subnet's key, attached to a new etcd lease of `ttl` s."""
    lid = client.grant(ttl)
    rev = client.put(subnet_key(lease.subnet, prefix), lease.value(), lease=lid)
    return Written(lease, lid, rev)


def renew(client: EtcdClient, written: Written) -> int:
    """Renew the etcd lease of a written lease; returns its TTL again (0: it had ended, and its key with it)."""
    return client.keepalive(written.etcd_lease)


def time_to_live(client: EtcdClient, lid: int) -> tuple[int, int]:
    """(seconds left, granted TTL) of etcd lease `lid` (-1 left: it has ended)."""
    out = client.call("/v3/lease/timetolive", {"ID": str(lid)})
    return int(out.get("TTL", -1)), int(out.get("grantedTTL", 0))


def remaining(client: EtcdClient, written: Written) -> int:
    """Seconds left on the etcd lease of a written lease (-1: it has ended)."""
    return time_to_live(client, written.etcd_lease)[0]


def release(client: EtcdClient, written: Written) -> None:
    """Give the lease up (its key goes with its etcd lease)."""
    client.revoke(written.etcd_lease)


def list_leases(client: EtcdClient, prefix: str = PREFIX) -> tuple[list[Lease], int]:
    """Every node's lease, by subnet, and the etcd revision they were read at (to watch from)."""
    kvs, rev = client.range(subnets_prefix(prefix), prefix=True)
    out = []
    for kv in kvs:
        key, value, _ = EtcdClient.kv(kv)
        out.append(parse_lease(key, value, prefix))
    return sorted(out, key=lambda lease: lease.subnet), rev


def watch_leases(client: EtcdClient, after_revision: int, timeout: float, prefix: str = PREFIX,
                 until=None) -> list[tuple[str, object]]:
    """Changes of the leases after `after_revision` (list_leases' revision), for up to `timeout` s or until
    `until(changes)`: ("PUT", Lease) for a new or renewed-with-new-data lease, ("DELETE", subnet) for one
    that ended or was released."""
    out: list[tuple[str, object]] = []

    def done(events):
        out[:] = [_change(e, prefix) for e in events]
        return until is not None and until(out)

    events = client.watch(subnets_prefix(prefix), after_revision + 1, prefix=True, timeout=timeout, until=done)
    return [_change(e, prefix) for e in events]


def _change(event: dict, prefix: str):
    if event["type"] == "DELETE":
        return ("DELETE", parse_subnet_key(event["key"], prefix))
    return ("PUT", parse_lease(event["key"], event["value"], prefix))


class Keeper:
    """Keeps nodes' leases in etcd, as each node's flanneld keeps its own: a lease that is missing (deleted,
    lost with etcd's data, ended while its agent was down) or whose value changed is written again; one
    within `margin` of its end is renewed (its etcd lease kept alive, or a new one of `ttl` granted when the
    one it has was not granted for `ttl`). How long each etcd lease has left is asked once and then counted
    here, so a look at leases that need nothing is one range read. Leases of other nodes are left alone
    unless `keep(..., release=True)`. `clock`: monotonic seconds (tests give their own)."""

    def __init__(self, client: EtcdClient, prefix: str = PREFIX, ttl: int = LEASE_TTL, margin: int = RENEW_MARGIN,
                 clock=time.monotonic):
        self.client, self.prefix, self.ttl, self.margin, self.clock = client, prefix, ttl, margin, clock
        self.ends: dict[int, tuple[float, int]] = {}   # etcd lease id -> (when it ends by `clock`, its granted TTL)

    def keep(self, leases: list[Lease], release: bool = False) -> list[str]:
        """Make etcd hold `leases` (and, with `release`, no other); returns what it did ("wrote 10.244.1.0/24",
        "renewed ...", "released ...")."""
        kvs, _ = self.client.range(subnets_prefix(self.prefix), prefix=True)
        have = {}
        for kv in kvs:
            key, value, _ = EtcdClient.kv(kv)
            have[key] = (value, int(kv.get("lease", 0)))
        did = []
        wanted = {subnet_key(lease.subnet, self.prefix): lease for lease in leases}
        for key, lease in sorted(wanted.items()):
            value, lid = have.get(key, (None, 0))
            if value == lease.value() and lid:
                left, granted = self._left(lid)
                if left > self.margin:
                    continue
                if left > 0 and granted == self.ttl:
                    ttl = self.client.keepalive(lid)
                    if ttl > 0:
                        self.ends[lid] = (self.clock() + ttl, granted)
                        did.append(f"renewed {lease.subnet}")
                        continue
            if lid:
                self.client.revoke(lid)
                self.ends.pop(lid, None)
            w = write_lease(self.client, lease, self.ttl, self.prefix)
            self.ends[w.etcd_lease] = (self.clock() + self.ttl, self.ttl)
            did.append(f"wrote {lease.subnet}")
        if release:
            for key, (_, lid) in sorted(have.items()):
                if key not in wanted:
                    if lid:
                        self.client.revoke(lid)
                        self.ends.pop(lid, None)
                    self.client.delete(key)
                    did.append(f"released {parse_subnet_key(key, self.prefix)}")
        return did

    def _left(self, lid: int) -> tuple[float, int]:
        """(seconds left, granted TTL) of etcd lease `lid`: asked of etcd the first time, counted after."""
        known = self.ends.get(lid)
        if known is None:
            left, granted = time_to_live(self.client, lid)
            known = self.ends[lid] = (self.clock() + left, granted)
        return known[0] - self.clock(), known[1]


def publish(client: EtcdClient, leases: list[Lease], network, subnet_len: int, backend: str,
            prefix: str = PREFIX, ttl: int = LEASE_TTL, margin: int = RENEW_MARGIN) -> list[str]:
    """Make etcd hold exactly `leases` (and the network's config) under `prefix` (`up`): a lease already
    there with the same value is kept, renewed when its etcd lease is within `margin` of its end; a changed
    one is written again; one whose subnet is no longer wanted is released. Idempotent; returns what it
    did ("wrote config", and Keeper.keep's)."""
    did = []
    want_config = config_value(network, subnet_len, backend)
    if client.get(config_key(prefix)) != want_config:
        client.put(config_key(prefix), want_config)
        did.append("wrote config")
    return did + Keeper(client, prefix, ttl, margin).keep(leases, release=True)


def cluster_leases(cluster, nodes: set[str] | None = None) -> list[Lease]:
    """The leases of a lab's nodes (podCIDR, underlay IP, flannel.1's MAC); `nodes`: only these."""
    net = cluster.networking
    return [lease for n in cluster.nodes if nodes is None or n.name in nodes
            if (lease := node_lease(n.pod_cidr, n.ip, net.backend, n.vtep_mac)) is not None]


def publish_lab(conf: dict, cluster, ttl: int = LEASE_TTL) -> list[str]:
    """The leases of a lab's nodes (podCIDR, underlay IP, flannel.1's MAC), published in the etcd of the
    lab's store (its store.json `conf`), under the lab's flannel prefix (lab_prefix)."""
    net = cluster.networking
    leases = cluster_leases(cluster)
    if not leases:
        return []
    client = EtcdClient(list(conf["endpoints"]), netns=conf.get("netns"))
    try:
        return publish(client, leases, net.pod_subnet, net.node_cidr_mask, leases[0].backend,
                       lab_prefix(conf["prefix"]), ttl)
    finally:
        client.close()
