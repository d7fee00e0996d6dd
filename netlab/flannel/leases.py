"""flannel's leases in etcd (the layout is netlab/flannel/__init__.py): write a node's lease attached to
an etcd lease with a TTL, renew it, list them and watch them change, with netlab's etcd client
(netlab/etcd/client.py). A lease whose etcd lease ends (its node stopped renewing it) disappears from
etcd by itself, as a flannel node's does."""

from __future__ import annotations

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


def remaining(client: EtcdClient, written: Written) -> int:
    """Seconds left on the etcd lease of a written lease (-1: it has ended)."""
    out = client.call("/v3/lease/timetolive", {"ID": str(written.etcd_lease)})
    return int(out.get("TTL", -1))


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


def publish(client: EtcdClient, leases: list[Lease], network, subnet_len: int, backend: str,
            prefix: str = PREFIX, ttl: int = LEASE_TTL, margin: int = RENEW_MARGIN) -> list[str]:
    """Make etcd hold exactly `leases` (and the network's config) under `prefix`: a lease already there
    with the same value is kept, renewed when its etcd lease is within `margin` of its end; a changed
    one is written again; one whose subnet is no longer wanted is released. Idempotent; returns what it
    did ("wrote 10.244.1.0/24", "renewed ...", "released ...")."""
    did = []
    want_config = config_value(network, subnet_len, backend)
    if client.get(config_key(prefix)) != want_config:
        client.put(config_key(prefix), want_config)
        did.append("wrote config")
    kvs, _ = client.range(subnets_prefix(prefix), prefix=True)
    have = {}
    for kv in kvs:
        key, value, _ = EtcdClient.kv(kv)
        have[key] = (value, int(kv.get("lease", 0)))
    wanted = {subnet_key(lease.subnet, prefix): lease for lease in leases}
    for key, lease in sorted(wanted.items()):
        value, lid = have.get(key, (None, 0))
        if value == lease.value() and lid:
            left = int(client.call("/v3/lease/timetolive", {"ID": str(lid)}).get("TTL", -1))
            if left > margin:
                continue
            if left > 0 and client.keepalive(lid) > 0:
                did.append(f"renewed {lease.subnet}")
                continue
        if lid:
            client.revoke(lid)
        write_lease(client, lease, ttl, prefix)
        did.append(f"wrote {lease.subnet}")
    for key, (_, lid) in sorted(have.items()):
        if key not in wanted:
            if lid:
                client.revoke(lid)
            client.delete(key)
            did.append(f"released {parse_subnet_key(key, prefix)}")
    return did


def publish_lab(conf: dict, cluster, ttl: int = LEASE_TTL) -> list[str]:
    """The leases of a lab's nodes (podCIDR, underlay IP, flannel.1's MAC), published in the etcd of the
    lab's store (its store.json `conf`), under the lab's flannel prefix (lab_prefix)."""
    net = cluster.networking
    leases = [lease for n in cluster.nodes
              if (lease := node_lease(n.pod_cidr, n.ip, net.backend, n.vtep_mac)) is not None]
    if not leases:
        return []
    client = EtcdClient(list(conf["endpoints"]), netns=conf.get("netns"))
    try:
        return publish(client, leases, net.pod_subnet, net.node_cidr_mask, leases[0].backend,
                       lab_prefix(conf["prefix"]), ttl)
    finally:
        client.close()
