"""A live lab: its store, its control loop, and what joins them to the dataplane.

    netlab up / apply / scale / rollout ...  ──writes──>  store (SQLite under the lab's directory, or etcd)
                                                             │ watch (revision)
    control loop (one process per lab, `netlab.live.loop`) ──┘
      controllers (Deployment → ReplicaSet → Pod, scheduler, EndpointSlice, node lifecycle, GC)
      kubelet (nodes' heartbeats, pods' status, probes, graceful termination)
      dataplane sync (namespaces, processes, proxy rules) from the store's pods and endpoints

`objects` is pure (scenario ↔ store ↔ model); `kubelet`, `sync` and `loop` have effects.
"""
from __future__ import annotations

import contextlib
import fcntl
import os


_OPEN: dict[str, tuple[int, object]] = {}   # lab -> (an fd of its store file, the store)

STORE_CONF = "store.json"


def store_config(lab: str) -> dict | None:
    """The lab's `<lab dir>/store.json` (its store in etcd: {"backend": "etcd", "endpoints": [...],
    "prefix": "/netlab/<lab>/", "netns": null or a namespace name}), or None (the SQLite default)."""
    import json
    from ..dataplane import layout
    from ..errors import UsageError
    path = os.path.join(layout.lab_dir(lab), STORE_CONF)
    try:
        with open(path) as f:
            conf = json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise UsageError(f"lab {lab}: {path} is not readable JSON ({e}); fix it or remove the lab") from None
    if not isinstance(conf, dict) or conf.get("backend") != "etcd" or not conf.get("endpoints") \
            or not isinstance(conf.get("prefix"), str):
        raise UsageError(f"lab {lab}: {path} must be {{\"backend\": \"etcd\", \"endpoints\": [...], \"prefix\": ...}}")
    return conf


def use_etcd(lab: str, endpoints: list[str], netns: str | None = None, prefix: str | None = None,
             extra: dict | None = None) -> dict:
    """Put lab `lab`'s store in etcd (`netlab up --etcd`): endpoints that do not answer are refused (exit 2,
    nothing written); a lab whose store is already SQLite's is refused too (its objects would be left
    behind). Writes `<lab dir>/store.json`; the keys go under `prefix` (default /netlab/<lab>/). `extra`: more
    keys of store.json (`hosts`: a lab's own members in emulated hosts, dataplane/hoststore.py)."""
    import json
    from ..dataplane import layout, state
    from ..errors import UsageError
    from ..store.etcd import check_endpoints
    if os.path.exists(os.path.join(layout.lab_dir(lab), "store.db")):
        raise UsageError(f"lab {lab} keeps its store in SQLite already; take it down first "
                         f"(sudo netlab down {lab}) to bring it up with its store in etcd")
    check_endpoints(endpoints, netns=netns)
    old = store_config(lab)
    conf = {"backend": "etcd", "endpoints": list(endpoints),
            "prefix": prefix or (old or {}).get("prefix") or f"/netlab/{lab}/", "netns": netns, **(extra or {})}
    if old and (sorted(old["endpoints"]), old.get("netns"), old["prefix"]) != \
            (sorted(conf["endpoints"]), conf["netns"], conf["prefix"]):
        # other endpoints for a lab that exists: only another way to the same store (its revision is there)
        from ..etcd.client import EtcdClient, EtcdError
        client = EtcdClient(conf["endpoints"], netns=netns, timeout=2.0, retry_for=2.0)
        try:
            there = client.get(conf["prefix"] + "meta/revision")
        except EtcdError:
            there = None
        finally:
            client.close()
        if there is None:
            raise UsageError(f"lab {lab} keeps its store in etcd at {','.join(old['endpoints'])} under "
                             f"{old['prefix']}, which {','.join(endpoints)} does not hold; give those endpoints "
                             f"(or members of the same cluster), or take the lab down first (sudo netlab down {lab})")
    state.ensure_dirs(lab)
    path = os.path.join(layout.lab_dir(lab), STORE_CONF)
    with open(path + ".tmp", "w") as f:
        json.dump(conf, f)
    os.chmod(path + ".tmp", 0o600)
    os.replace(path + ".tmp", path)
    return conf


def store_for(lab: str):
    """The lab's store: in etcd when `<lab dir>/store.json` says so (netlab.store.etcd), else the
    embedded SQLite default under the lab's state directory. One connection per lab and process, kept
    while its file (store.db or store.json) is the one in the lab's directory (a lab taken down and up
    again has a new file, which tmpfs may give the old inode number: an fd of the file tells them apart,
    as a removed file has no link left). Connections left open by the dozen in one process can keep
    seeing an old snapshot after another process was killed while writing; one kept connection does not.
    (The fd is closed only after the connection: closing any fd of a SQLite file drops the process's
    locks on it.)"""
    from ..dataplane import lab as labmod
    from ..dataplane import layout, state
    from ..store import open_store
    if forget not in labmod.DOWN_HOOKS:
        labmod.DOWN_HOOKS.append(forget)
    state.ensure_dirs(lab)
    conf = store_config(lab)
    path = os.path.join(layout.lab_dir(lab), STORE_CONF if conf else "store.db")
    got = _OPEN.get(lab)
    if got is not None:
        fd, store = got
        try:
            mine, there = os.fstat(fd), os.stat(path)
            if mine.st_nlink > 0 and (mine.st_dev, mine.st_ino) == (there.st_dev, there.st_ino):
                return store
        except OSError:
            pass
        store.close()
        os.close(fd)
        del _OPEN[lab]
    if conf:
        from ..dataplane.hoststore import client_netns
        from ..store.etcd import open_from
        store = open_from(dict(conf, netns=client_netns(conf)))   # inside a lab's host: that host's own network
    else:
        store = open_store(layout.lab_dir(lab))
    _OPEN[lab] = (os.open(path, os.O_RDONLY | os.O_CLOEXEC), store)
    return store


def forget(lab: str) -> None:
    """Close this process's connection to the lab's store (`down` calls it: no fd of a removed lab stays
    open in a long-lived process, such as a test suite or a Python program driving labs)."""
    got = _OPEN.pop(lab, None)
    if got is not None:
        got[1].close()
        os.close(got[0])


def has_store(lab: str) -> bool:
    from ..dataplane import layout
    return any(os.path.exists(os.path.join(layout.lab_dir(lab), f)) for f in ("store.db", STORE_CONF))


@contextlib.contextmanager
def locked(lab: str):
    """One writer of a lab's kernel state at a time (`up` and the control loop): an flock on a
    file in the lab's directory, released when the holder exits, however it exits. A host's agent
    (layout.set_host) writes only its host's kernel state: its lock is its host's (hosts/<host>/lock), so
    an agent stopped in the middle of a pass holds no other host up, as on separate machines (the lab's
    shared namespaces on one machine: dataplane/fabric.py's fabric.lock)."""
    from ..dataplane import layout, state
    state.ensure_dirs(lab)
    host = layout.host()
    path = os.path.join(layout.host_dir(lab, host) if host else layout.lab_dir(lab), "lock")
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def load_state(lab: str):
    """(the lab's state, whether a pass is running now): the state is read while no pass runs when
    possible, so that its phase says whether the last pass finished."""
    from ..dataplane import layout, state
    try:
        fd = os.open(os.path.join(layout.lab_dir(lab), "lock"), os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return state.load(lab), False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            return state.load(lab), True
        return state.load(lab), False
    finally:
        os.close(fd)
