"""A live lab: its store, its control loop, and what joins them to the dataplane.

    netlab up / apply / scale / rollout ...  ──writes──>  store (SQLite under the lab's directory)
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


def store_for(lab: str):
    """The lab's store (the embedded SQLite default, under the lab's state directory): one connection
    per lab and process, kept while its file is the one in the lab's directory (a lab taken down and up
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
    path = os.path.join(layout.lab_dir(lab), "store.db")
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
    return os.path.exists(os.path.join(layout.lab_dir(lab), "store.db"))


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
