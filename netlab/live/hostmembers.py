"""Steps 1-3 of `netlab up` for a lab whose emulated hosts run their own etcd members (hostNetwork.store:
etcd; see netlab/dataplane/hoststore.py): the hosts' namespaces, a member inside each, the lab's
store.json."""
from __future__ import annotations


def ensure(cluster, wait: float = 60.0) -> dict:
    """Steps 1-3 of dataplane/hoststore.py's docstring for lab `cluster` (idempotent: a member that runs is
    kept, one that does not is started again and rejoins with its data). Returns the store.json written. Refused
    (exit 2, nothing changed): a lab whose store is elsewhere, or whose hosts changed since its members
    were made (an etcd cluster's membership is not changed by `up`)."""
    from ..dataplane.changes import Changes
    from ..dataplane.fabric import Fabric
    from ..dataplane.hoststore import admin_address, store_conf
    from ..errors import UsageError
    from ..etcd import members
    from . import store_config, use_etcd
    lab = cluster.name
    conf = store_conf(cluster)
    old = store_config(lab)
    if old is not None and old.get("hosts") != conf["hosts"]:
        if old.get("hosts") is None:
            raise UsageError(f"lab {lab} keeps its store in etcd at {','.join(old['endpoints'])} (netlab up --etcd); "
                             "hostNetwork.store: etcd runs its own members: take the lab down first "
                             f"(sudo netlab down {lab})")
        raise UsageError(f"lab {lab}: its hosts' etcd members are {sorted(old['hosts'])} at "
                         f"{sorted(v['ip'] for v in old['hosts'].values())}; hosts and their addresses cannot change "
                         f"with hostNetwork.store: etcd: take the lab down first (sudo netlab down {lab})")
    Fabric(cluster, Changes()).ensure_hosts(admin_address(cluster.networking.hosts))
    peers = {h: v["ip"] for h, v in conf["hosts"].items()}
    for h, v in conf["hosts"].items():
        members.start_member(lab, h, v["netns"], v["ip"], peers)
    members.wait_healthy(conf["endpoints"], netns=conf["netns"], timeout=wait)
    return use_etcd(lab, conf["endpoints"], conf["netns"], conf["prefix"], extra={"hosts": conf["hosts"]})
