"""Emulated hosts that run what real hosts would (hostNetwork.store: etcd): one etcd member and the lab's
agent inside each host's namespace, the lab's store in that etcd cluster.

`netlab up` of such a lab, in this order:
1. the hosts' segment and every host's namespace with its NIC (dataplane/fabric.py `Fabric.ensure_hosts`),
   and an address of the segment's bridge: the *admin station* on the hosts' LAN (`admin_address`);
2. a member per host (netlab/etcd/members.py) inside `nl.<lab>.host.<h>` on the host's segment address,
   the initial cluster being every host; `up` waits until each has a leader;
3. `<lab dir>/store.json` (`store_conf`): the endpoints are the members' segment addresses, reached from
   the segment's namespace (the admin station), plus `hosts` (host -> its namespace and address);
4. the store's contents, then the agents, each started inside its host's namespace (live/agent.py).

Why the segment's namespace for clients of this machine's root namespace: it is the switch, the one
place that reaches every host and that no host's failure cuts. A host cut off (its eth0 down) loses the
other members and the other hosts, but `netlab get` and the other agents, which reach etcd through the
switch or through their own NICs, keep a quorum of two. A process already inside a host's namespace
(its agent, or `ip netns exec nl.<lab>.host.b netlab get pods`) uses its own network, as a program on
that host would (`client_netns`): so a host cut off really cuts its agent off from etcd's quorum.

The pure part (addresses, store.json, which network a client uses) is unit tested; steps 1-3 are
netlab/live/hostmembers.py's `ensure` (it writes the store's file, netlab/live's).
"""
from __future__ import annotations

import ipaddress
import os

STORE_BACKEND = "etcd"


def admin_address(hc) -> str:
    """The segment bridge's own address (CIDR), the admin station on the hosts' LAN: the first host address
    of the segment that no host has (the parser leaves the first one free when the segment is big enough)."""
    from ..errors import UsageError
    taken = {ipaddress.IPv4Address(str(h.address)) for h in hc.hosts}
    free = next((a for a in hc.segment.hosts() if a not in taken), None)
    if free is None:
        raise UsageError(f"hostNetwork.segment {hc.segment} has no address left for this machine's clients of "
                         "the hosts' etcd (hostNetwork.store: etcd); use a larger segment")
    return f"{free}/{hc.segment.prefixlen}"


def store_conf(cluster) -> dict:
    """The store.json of lab `cluster` (a lab on emulated hosts with hostNetwork.store etcd): its members'
    client URLs, reached from the segment's namespace; `hosts`: host -> {"netns", "ip"} (a process inside
    one of those namespaces reaches the endpoints from there)."""
    from ..etcd.members import client_url
    hc = cluster.networking.hosts
    return {"backend": STORE_BACKEND, "endpoints": [client_url(str(h.address)) for h in hc.hosts],
            "prefix": f"/netlab/{cluster.name}/", "netns": cluster.segment_netns,
            "hosts": {h.name: {"netns": cluster.host_netns(h.name), "ip": str(h.address)} for h in hc.hosts}}


def wants_etcd(cluster) -> bool:
    hc = cluster.networking.hosts
    return hc is not None and hc.mode == "emulated" and hc.store == STORE_BACKEND


def host_netns(conf: dict | None, host: str) -> str | None:
    """The namespace the agent of `host` runs in (None: the machine's own, a lab without etcd members)."""
    return (((conf or {}).get("hosts") or {}).get(host) or {}).get("netns")


def inside(conf: dict, here: tuple[int, int] | None, netns_ids: dict[str, tuple[int, int] | None]) -> str | None:
    """The host whose namespace `here` (device, inode of this process's network namespace) is, if any;
    `netns_ids`: each host namespace's (device, inode), None when it does not exist."""
    if here is None:
        return None
    return next((h for h, v in sorted((conf.get("hosts") or {}).items()) if netns_ids.get(v["netns"]) == here), None)


def client_netns(conf: dict) -> str | None:
    """The namespace a client of this process opens its sockets in: its own (None) when it runs inside one
    of the lab's hosts (a host's agent, or a command run there), else the store.json's (the segment)."""
    hosts = conf.get("hosts")
    if not hosts:
        return conf.get("netns")
    from . import nsfs
    here = _ns_id("/proc/self/ns/net")
    ids = {v["netns"]: _ns_id(nsfs.netns_path(v["netns"])) for v in hosts.values()}
    return None if inside(conf, here, ids) is not None else conf.get("netns")


def _ns_id(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino
