"""etcd members run as a lab's own processes (Debian's /usr/bin/etcd, 3.4).

A member of lab L on host H runs inside network namespace `netns` (never the host's root namespace),
listens on `ip`:2379 (clients, and 127.0.0.1:2379) and `ip`:2380 (peers), keeps its data under
``<lab dir>/etcd/<H>`` and carries the owner tag ``NETLAB_OWNER=L/host/H/etcd`` like every process netlab
starts, so `netlab down L` ends it (by tag, wherever it runs) and removes its data with the lab's
directory. Its record (PID and start time, as other lab processes) is ``<lab run dir>/etcd-<H>.pid``; a
recycled PID is never taken for it.

Settings beyond etcd's defaults: one store transaction is one etcd Txn (netlab/store/etcd.py), so
``--max-txn-ops`` and ``--max-request-bytes`` are raised for a big lab's transactions; old revisions
are compacted every few minutes (``--auto-compaction-mode periodic``), so the member's database stays
small while netlab keeps its own bounded history.
"""

from __future__ import annotations

import json
import os
import shutil
import time

from netlab.errors import UsageError

CLIENT_PORT = 2379
PEER_PORT = 2380
MAX_TXN_OPS = 100_000
MAX_REQUEST_BYTES = 32 * 1024 * 1024


def owner(lab: str, host: str) -> str:
    """The owner tag of lab `lab`'s etcd member on host `host`."""
    return f"{lab}/host/{host}/etcd"


def data_dir(lab: str, host: str) -> str:
    from netlab.dataplane import layout
    return os.path.join(layout.lab_dir(lab), "etcd", host)


def record_file(lab: str, host: str) -> str:
    from netlab.dataplane import layout
    return os.path.join(layout.run_dir(lab), f"etcd-{host}.pid")


def client_url(ip: str) -> str:
    return f"http://{ip}:{CLIENT_PORT}"


def peer_url(ip: str) -> str:
    return f"http://{ip}:{PEER_PORT}"


def member_argv(lab: str, host: str, ip: str, peers: dict[str, str], etcd: str = "etcd") -> list[str]:
    """The etcd command line of a member (pure). `peers`: member name -> IP, the initial cluster (with
    this member in it)."""
    if host not in peers:
        raise ValueError(f"etcd member {host}: not in its initial cluster {sorted(peers)}; add it to peers")
    cluster = ",".join(f"{name}={peer_url(addr)}" for name, addr in sorted(peers.items()))
    return [etcd, "--name", host, "--data-dir", data_dir(lab, host),
            "--listen-client-urls", f"{client_url(ip)},http://127.0.0.1:{CLIENT_PORT}",
            "--advertise-client-urls", client_url(ip),
            "--listen-peer-urls", peer_url(ip), "--initial-advertise-peer-urls", peer_url(ip),
            "--initial-cluster", cluster, "--initial-cluster-state", "new",
            "--initial-cluster-token", f"netlab-{lab}",
            "--max-txn-ops", str(MAX_TXN_OPS), "--max-request-bytes", str(MAX_REQUEST_BYTES),
            "--auto-compaction-mode", "periodic", "--auto-compaction-retention", "5m",
            "--logger", "zap", "--log-outputs", "stderr"]


def _read_record(lab: str, host: str) -> dict | None:
    try:
        with open(record_file(lab, host)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def start_member(lab: str, host: str, netns: str, ip: str, peers: dict[str, str]) -> int:
    """Start lab `lab`'s member `host` in network namespace `netns` (it must exist) on `ip`; returns its PID.
    A member of that name already running is kept (its PID returned). It does not wait for the cluster:
    a member of a new cluster answers once a quorum of its peers runs (see wait_healthy)."""
    from netlab.dataplane import layout, nsfs, procs, state
    etcd = shutil.which("etcd")
    if etcd is None:
        raise UsageError("etcd is not installed: run scripts/setup (or apt-get install etcd-server)")
    if not nsfs.is_ns_file(nsfs.netns_path(netns)):
        raise UsageError(f"etcd member {host} of lab {lab}: network namespace {netns} does not exist")
    rec = _read_record(lab, host)
    if procs.alive(rec, owner(lab, host)):
        return int(rec["pid"])
    state.ensure_dirs(lab)
    os.makedirs(data_dir(lab, host), mode=0o700, exist_ok=True)
    log = os.path.join(layout.logs_dir(lab), f"etcd-{host}.log")
    rec = procs.spawn(member_argv(lab, host, ip, peers, etcd), nsfs.netns_path(netns), log,
                      owner=owner(lab, host))
    tmp = record_file(lab, host) + ".tmp"
    with open(tmp, "w") as f:
        json.dump(rec, f)
    os.replace(tmp, record_file(lab, host))
    return int(rec["pid"])


def member_pid(lab: str, host: str) -> int | None:
    """The PID of the member if it runs (the recorded process, with its start time and owner tag)."""
    from netlab.dataplane import procs
    rec = _read_record(lab, host)
    return int(rec["pid"]) if procs.alive(rec, owner(lab, host)) else None


def stop_member(lab: str, host: str, grace: float = 2.0) -> bool:
    """End the member (SIGTERM, SIGKILL after `grace`); its data stays (start_member again rejoins).
    True if it ran."""
    from netlab.dataplane import procs
    rec = _read_record(lab, host)
    if not procs.alive(rec, owner(lab, host)):
        return False
    procs.terminate([rec], grace=grace, owner=owner(lab, host))
    return True


def member_health(endpoint: str, netns: str | None = None, timeout: float = 2.0) -> dict:
    """One member's view: {"endpoint", "healthy": bool, "leader": bool, "revision": int, "error": str}."""
    from netlab.etcd.client import EtcdClient, EtcdError
    client = EtcdClient([endpoint], netns=netns, timeout=timeout)
    try:
        out = client.status(0, timeout=timeout)
        header = out.get("header") or {}
        leader = out.get("leader")
        healthy = bool(leader) and leader != "0"
        return {"endpoint": endpoint, "healthy": healthy, "leader": healthy and leader == header.get("member_id"),
                "revision": int(header.get("revision", 0)), "error": "" if healthy else "no leader"}
    except (OSError, EtcdError, ValueError) as e:
        return {"endpoint": endpoint, "healthy": False, "leader": False, "revision": 0,
                "error": f"{e.__class__.__name__}: {e}"}
    finally:
        client.close()


def wait_healthy(endpoints: list[str], netns: str | None = None, timeout: float = 30.0) -> list[dict]:
    """Wait until every endpoint answers with a leader elected; the health of each, or UsageError naming
    the ones that never did."""
    deadline = time.monotonic() + timeout
    while True:
        got = [member_health(e, netns) for e in endpoints]
        if all(g["healthy"] for g in got):
            return got
        if time.monotonic() > deadline:
            bad = "; ".join(f"{g['endpoint']} ({g['error']})" for g in got if not g["healthy"])
            raise UsageError(f"etcd members not healthy after {timeout:.0f} s: {bad}; see their logs")
        time.sleep(0.2)
