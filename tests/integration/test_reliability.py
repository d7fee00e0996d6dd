"""Reliability: netlab runs as root on people's machines, so it must leave the host as it found it,
survive being killed at any moment, never touch what it did not create, and refuse bad input without
touching the kernel. Every test here would fail if that were not so.

* zero footprint: the host's root namespace is byte-identical before `up`, while a lab is up and after
  `down`; 20 up/down cycles leave nothing (namespace, mount, process, fd, file, rule) behind
* crash safety: `netlab up` killed with SIGKILL at points spread over the whole bring-up, then
  `down` (removes everything) or `up` (completes: every pod answers with its own name, one process per
  container); Ctrl-C stops cleanly and says how to remove what was built; dead processes are reported
* ownership: two labs with the same scenario and subnets side by side; `down` of one leaves the other
  working; decoy namespaces, chains and processes that look like netlab's survive `up` and `down`
* hostile input through the CLI: exit 2, one line, nothing created; shell metacharacters never reach
  a shell; the state directory and logs are root-only
* tampering: a deleted veth, a deleted route, a flushed nat table are reported, then repaired by `up`

Sizes come from the environment so scripts/soak can run longer: NETLAB_KILL_POINTS (default 50),
NETLAB_CYCLES (20), NETLAB_FUZZ_CLI (200), NETLAB_CTRL_C_ROUNDS (1), NETLAB_KILL_SEED (random, printed
with every failure so a run can be replayed).
"""
from __future__ import annotations

import ast
import json
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from netlab.dataplane import lab as labmod
from netlab import lab_spec, names
from netlab.dataplane import nsfs, procs, state
from netlab.errors import NetlabError, SpecError
from netlab.model.build import build
from netlab.spec.parse import MAX_BYTES, load_text

from .. import builders, figures, footprint, hostile
from .conftest import netlab_cli, nobody_uid, pods_json

REPO = Path(__file__).resolve().parents[2]
NETLAB = os.path.join(os.path.dirname(sys.executable), "netlab")
KILL_POINTS = int(os.environ.get("NETLAB_KILL_POINTS", "50"))
CYCLES = int(os.environ.get("NETLAB_CYCLES", "20"))
FUZZ_CLI = int(os.environ.get("NETLAB_FUZZ_CLI", "200"))
CTRL_C_ROUNDS = int(os.environ.get("NETLAB_CTRL_C_ROUNDS", "1"))

SMALL = builders.text(
    builders.cluster(None, builders.workers("n1", "n2")),
    builders.deployment("web", 2, containers=[
        builders.container("web", args=["netexec", "--http-port=8080", "--udp-port=8081"])]),
    builders.service("web", [{"name": "http", "port": 80, "targetPort": 8080},
                             {"name": "udp", "port": 81, "targetPort": 8081, "protocol": "UDP"}], type="NodePort"),
    builders.pod("client", containers=[builders.container("sleeper", command=["sleep", "infinity"])], nodeName="n1"))


def big_scenario(pods: int = 80) -> str:
    """Two nodes, `pods` pods (all but two run the built-in server), a NodePort Service: `up` takes
    about half a second, long enough to be killed at many distinct points."""
    sleeper = [builders.container("s", command=["sleep", "infinity"])]
    return builders.text(
        builders.cluster(None, ("worker", "worker")),
        builders.deployment("web", pods - 2, containers=[builders.container("web", [8080])]),
        builders.service("web", [{"port": 80, "targetPort": 8080}], type="NodePort"),
        builders.pod("sleeper-a", containers=sleeper), builders.pod("sleeper-b", containers=sleeper))


def new_lab() -> str:
    return f"t-{secrets.token_hex(4)}"


def write(tmp_path: Path, text: str, name: str = "scenario.yaml") -> str:
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def cli(*args: str, timeout: float = 120, **kw) -> subprocess.CompletedProcess:
    return netlab_cli(*args, timeout=timeout, **kw)


def one_line_error(r: subprocess.CompletedProcess) -> bool:
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    return len(lines) == 1 and "Traceback" not in r.stderr


def one_line_per_problem(r: subprocess.CompletedProcess) -> bool:
    """Bad input: each problem of the scenario on one printable 'error: ' line (at most 20 and 'and N more')."""
    lines = r.stderr.splitlines()
    return 1 <= len(lines) <= 21 and "Traceback" not in r.stderr and \
        all(line.startswith("error: ") and line.isprintable() for line in lines)


# ------------------------------------------------------------------ checking a lab

def _http(ip: str, port: int, path: str = "/hostname", timeout: float = 2.0) -> str:
    with socket.create_connection((ip, port), timeout=timeout) as s:
        s.settimeout(timeout)
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    return data.partition(b"\r\n\r\n")[2].decode(errors="replace").strip()


def lab_members(lab: str) -> dict[str, list[tuple[str, ...]]]:
    """The live processes inside each of the lab's namespaces (the kernel's view, as `ip netns pids`
    gives it): namespace name -> command lines."""
    by_inode = {}
    for n in footprint.lab_namespace_files(lab):
        try:
            st = os.stat(os.path.join(footprint.RUN_NETNS, n))
            by_inode[(st.st_dev, st.st_ino)] = n
        except OSError:
            pass
    out: dict[str, list[tuple[str, ...]]] = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            st = os.stat(f"/proc/{pid}/ns/net")
            name = by_inode.get((st.st_dev, st.st_ino))
            if name is None:
                continue
            with open(f"/proc/{pid}/stat", "rb") as f:
                stat = f.read()
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        if stat[stat.rindex(b")") + 2:][:1] == b"Z":
            continue
        out.setdefault(name, []).append(tuple(a.decode(errors="replace") for a in cmd.split(b"\0")[:-1]))
    return out


def lab_health(lab: str, expect_pods: int | None = None) -> list[str]:
    """Everything that makes a lab correct, as a list of problems (empty: healthy): `up` finished, every
    pod Running, exactly one process per container and one built-in server per node, and every pod
    with a built-in server answers /hostname with its own name from the other node (over the overlay)
    and through its Service's ClusterIP."""
    from netlab.live import locked
    with locked(lab):  # between two passes of the lab's control loop, which waits meanwhile
        return _lab_health(lab, expect_pods)


def _lab_health(lab: str, expect_pods: int | None = None) -> list[str]:
    problems = []
    try:
        cluster, st = lab_spec.load_cluster(lab)
    except NetlabError as e:
        return [f"cannot load the lab: {e}"]
    if st.get("phase") != "ready":
        problems.append(f"state phase {st.get('phase')}")
    from netlab.dns.addon import SERVICES as ADDON_SERVICES
    from netlab.dns.addon import is_addon_pod
    own = [p for p in cluster.pods if not is_addon_pod(p)]   # the cluster DNS's pods: the lab's add-on
    if expect_pods is not None and len(own) != expect_pods:
        problems.append(f"{len(own)} pods, expected {expect_pods}")
    for s in labmod.pod_statuses(cluster, st):
        if s.phase != "Running":
            problems.append(f"pod {s.pod.key}: {s.phase} ({s.problem})")
    # exactly one built-in server per node that needs one (they run in the lab's underlay namespace,
    # each with its node's owner tag), one process per container, nothing else
    members = lab_members(lab)
    tags = Counter(procs.tagged([names.lab_owner_prefix(lab)]).values())
    in_underlay = sum(1 for c in members.get(cluster.underlay_netns, []) if "netlab.workload.netexec" in c)
    for node in cluster.nodes:
        servers = tags[names.server_owner(lab, node.name)]
        want = 1 if any(p.builtin_ports for p in cluster.pods_on(node.name)) else 0
        if servers != want:
            problems.append(f"node {node.name}: {servers} built-in servers running, expected {want}")
    if in_underlay != sum(tags[names.server_owner(lab, n.name)] for n in cluster.nodes):
        problems.append(f"{in_underlay} built-in servers in the underlay namespace, not one per node")
    for pod in own:   # (the DNS server's argv names the loop's python, not this test's)
        running = Counter(members.get(pod.netns, []))
        for cname, argv in pod.commands:
            if running[tuple(argv)] != 1:
                problems.append(f"pod {pod.key}: container {cname} runs {running[tuple(argv)]} times")
    for node in cluster.nodes:
        targets = [p for p in cluster.pods if p.builtin_ports and p.node != node.name] or \
            [p for p in cluster.pods if p.builtin_ports]

        def ask_all(targets=targets) -> list[str]:
            bad = []
            for p in targets:
                port = next(port for port, proto in p.builtin_ports if proto == "TCP")
                try:
                    got = _http(str(p.ip), port)
                except OSError as e:
                    bad.append(f"{p.key} at {p.ip}:{port}: {e}")
                    continue
                if got != p.name:
                    bad.append(f"{p.key} answered {got!r}")
            for svc in cluster.services:
                if svc.cluster_ip is not None and svc.ports and svc.key not in ADDON_SERVICES:
                    try:
                        got = _http(str(svc.cluster_ip), svc.ports[0].port)
                        if not any(got == p.name for p in cluster.pods):
                            bad.append(f"svc {svc.key} answered {got!r}")
                    except OSError as e:
                        bad.append(f"svc {svc.key}: {e}")
            return bad
        problems += [f"from {node.name}: {b}" for b in nsfs.in_netns(node.netns, ask_all)]
    return problems


def gone(lab: str, inodes: set | None = None, grace: float = 3.0) -> dict:
    """What is left of `lab` on the host ({} when nothing). Processes get `grace` seconds: a child the
    killed `up` had started (an iptables-restore reading its last input) may still be exiting."""
    deadline = time.monotonic() + grace
    while True:
        left = footprint.leftovers(footprint.lab_footprint(lab, inodes))
        if not left or set(left) != {"processes"} or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


def force_clean(lab: str) -> None:
    """After a failed check: remove what is left so the next kill point starts clean."""
    try:
        labmod.down(lab)
    except Exception:  # noqa: BLE001 - best effort after a reported failure
        pass
    for line in footprint.lab_processes(lab):
        try:
            os.kill(int(line.split()[0]), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass


# ------------------------------------------------------------------ zero footprint

def _other_labs_mount(m: tuple, lab: str) -> bool:
    """A namespace someone else named (another lab of a parallel run, another tool), or another lab's
    UTS namespace: not this lab's business."""
    p = m[0]
    return (p.startswith("/run/netns/") and not p.startswith(f"/run/netns/nl.{lab}.")) or \
        (p.startswith("/run/netlab/") and not p.startswith(f"/run/netlab/{lab}/"))


# Host-wide views (every mount, every top-level /run entry) see whatever else runs on the machine too
# (a parallel test, a benchmark, a VM), so by default the cycles compare the views netlab can write to:
# /run/netns and /run/netlab with everything in them that is not another lab's or another tool's.
# NETLAB_STRICT_HOST=1 (scripts/soak sets it; run it on an otherwise idle machine) compares the whole
# mount table and the whole /run listing as well.
STRICT_HOST = os.environ.get("NETLAB_STRICT_HOST") == "1"


def all_mounts() -> set[tuple[str, str, str]]:
    out = set()
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            sep = fields.index("-")
            point = fields[4]
            if STRICT_HOST or point in (footprint.RUN_NETNS, footprint.RUN_NETLAB) or \
                    point.startswith((footprint.RUN_NETNS + "/", footprint.RUN_NETLAB + "/")):
                out.add((point, fields[3], fields[sep + 1]))
    return out


def run_listing() -> set[str]:
    """/run's entries (strict) or those netlab could have made (default)."""
    names = footprint.run_listing()
    return names if STRICT_HOST else {n for n in names if n in ("netns", "netlab") or n.startswith(("netlab.", "nl."))}


# /run entries that may appear for reasons other than netlab: /run/netns (iproute2's mount point, see
# tests/footprint.py), /run/netlab (other labs of a parallel run) and /run/xtables.lock (made by any
# iptables command, ours in the lab's namespaces included)
RUN_ALLOWED = {"netns", "netlab", "xtables.lock"}


def test_zero_footprint_over_up_down_cycles():
    """Before up, while up and after down the root namespace is byte-identical; while up the lab has
    only its namespaces, its state directory and its processes; CYCLES cycles accumulate nothing."""
    lab = new_lab()
    snap0 = footprint.root_snapshot()
    mounts0 = all_mounts()
    netns_mounts0 = [m for m in footprint.mounts() if m[0] == footprint.RUN_NETNS]
    run0 = run_listing()
    # netlab's own procfs instance (dataplane/procsys.py: one fd, kept for the process's life by design) is
    # opened before the count, as any earlier lab in this process would have opened it
    from netlab.dataplane.procsys import PROC_SYS
    PROC_SYS.read("net/ipv4/ip_forward")
    fds0 = footprint.open_fds()
    threads0 = threading.active_count()
    leaks: list[str] = []
    fds_after_first = None
    t0 = time.monotonic()
    for cycle in range(CYCLES):
        sc = load_text(SMALL, "<cycle>")
        sc.name = lab
        inodes: set = set()
        try:
            lab_spec.up(sc, SMALL)
            inodes = footprint.lab_netns_inodes(lab)  # to find processes left in them after down
            if cycle in (0, CYCLES - 1) or cycle % 5 == 0:
                # while up: only the lab's namespaces, state directory and processes exist
                changed = footprint.diff_snapshots(snap0, footprint.root_snapshot())
                if changed:
                    leaks.append(f"cycle {cycle}, while up: root namespace changed: {changed}")
                new_mounts = {m for m in all_mounts() - mounts0 if not _other_labs_mount(m, lab)}
                foreign = [m for m in new_mounts if not (m[0].startswith(f"/run/netns/nl.{lab}.")
                                                         or m[0].startswith(f"/run/netlab/{lab}/uts/"))]
                if foreign:
                    leaks.append(f"cycle {cycle}, while up: mounts outside the lab's: {foreign}")
                for line in footprint.lab_processes(lab):
                    if "-m netlab.live.loop " in line:  # the lab's control loop: in the host's namespace by design
                        continue
                    if f"nsenter --net=/run/netns/nl.{lab}." in line:
                        # the loop's nsenter into one of the lab's namespaces (an nft or iptables read), caught
                        # before its setns: it runs nothing in the host's namespace
                        continue
                    try:
                        st = os.stat(f"/proc/{line.split()[0]}/ns/net")
                    except FileNotFoundError:   # a short-lived child that ended since it was listed
                        continue
                    if (st.st_dev, st.st_ino) not in inodes:
                        leaks.append(f"cycle {cycle}: process outside the lab's namespaces: {line}")
                if run_listing() - run0 - RUN_ALLOWED:
                    leaks.append(f"cycle {cycle}: new in /run: {run_listing() - run0 - RUN_ALLOWED}")
                mode = os.stat(state.lab_dir(lab)).st_mode & 0o777
                if mode != 0o700:
                    leaks.append(f"state directory mode {oct(mode)}")
                if cycle == 0:
                    problems = lab_health(lab, expect_pods=3)
                    assert not problems, problems
        finally:
            labmod.down(lab)
        left = gone(lab, inodes)
        if left:
            leaks.append(f"cycle {cycle}: left after down: {left}")
        changed = footprint.diff_snapshots(snap0, footprint.root_snapshot())
        if changed:
            leaks.append(f"cycle {cycle}: root namespace changed after down: {changed}")
        netns_mounts = [m for m in footprint.mounts() if m[0] == footprint.RUN_NETNS]
        if len(netns_mounts) > max(1, len(netns_mounts0)):
            leaks.append(f"cycle {cycle}: /run/netns mounted {len(netns_mounts)} times")
        new_mounts = {m for m in all_mounts() - mounts0 if not _other_labs_mount(m, lab)}
        new_mounts -= {m for m in new_mounts if m[0] == footprint.RUN_NETNS and not netns_mounts0}
        if new_mounts:
            leaks.append(f"cycle {cycle}: mounts left: {sorted(new_mounts)}")
        if run_listing() - run0 - RUN_ALLOWED:
            leaks.append(f"cycle {cycle}: new in /run: {run_listing() - run0 - RUN_ALLOWED}")
        fds = footprint.open_fds()
        if cycle == 0:
            fds_after_first = fds
        elif fds != fds_after_first:
            leaks.append(f"cycle {cycle}: this process's fds changed: {len(fds_after_first)} -> {len(fds)} "
                         f"({sorted(set(fds) - set(fds_after_first))[:5]})")
        if threading.active_count() != threads0:
            leaks.append(f"cycle {cycle}: {threading.active_count() - threads0} threads more")
    figures.add("up/down cycles run", CYCLES)
    figures.add("up/down cycle leaks found", len(leaks))
    figures.add("up/down cycles wall time (s)", round(time.monotonic() - t0, 1))
    assert not leaks, "\n".join(leaks[:20])
    # netlab keeps no file open across labs (a netlink socket would keep a deleted namespace alive)
    assert len(fds_after_first) <= len(fds0), sorted(set(fds_after_first) - set(fds0))


# ------------------------------------------------------------------ crash safety

def test_sigkill_at_points_spread_over_the_bring_up(tmp_path):
    """KILL_POINTS kills of `netlab up`, one in each equal slice of a measured full bring-up. After each:
    even points run `down` (nothing may be left), odd points run `up` again (it must finish a correct
    lab: every pod answers with its own name, one process per container), then `down`."""
    lab = new_lab()
    path = write(tmp_path, big_scenario(80))
    runs = []
    for _ in range(2):  # the bring-up's length: the shorter of two (the machine may be busy)
        t0 = time.monotonic()
        r = cli("up", path, "--lab", lab)
        runs.append(time.monotonic() - t0)
        assert r.returncode == 0, r.stderr
        assert cli("down", lab).returncode == 0
        assert not gone(lab)
    full = min(runs)
    figures.add("SIGKILL bring-up measured (s)", round(full, 2))
    seed = int(os.environ.get("NETLAB_KILL_SEED") or secrets.randbits(32))
    rng = random.Random(seed)
    failures: list[str] = []
    phases: Counter = Counter()
    recovered = 0
    total = 80 + 4  # namespaces: 80 pods, 2 nodes, the underlay, the external host
    clean_downs = 0
    i = retries = 0
    while i < KILL_POINTS:
        delay = (i + rng.random()) * full / KILL_POINTS
        t0 = time.monotonic()
        p = subprocess.Popen([NETLAB, "up", path, "--lab", lab], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            p.wait(timeout=delay)
            took = time.monotonic() - t0
        except subprocess.TimeoutExpired:
            took = None
            p.send_signal(signal.SIGKILL)
            p.wait()
        if took is not None and retries < 2 * KILL_POINTS:
            # this bring-up was over before its point (the machine got less busy than when it was
            # measured): the slices follow the shorter time and the point is tried again
            retries += 1
            full = min(full, took)
            assert cli("down", lab).returncode == 0
            assert not gone(lab)
            continue
        n = len(footprint.lab_namespace_files(lab))
        phase = "finished before the kill" if p.returncode == 0 else \
            "before any change" if not os.path.exists(state.lab_dir(lab)) else \
            "state written, no namespace yet" if n == 0 else \
            "some namespaces" if n < total else "all namespaces (iptables, processes)"
        phases[phase] += 1
        inodes = footprint.lab_netns_inodes(lab)
        where = f"point {i} ({delay:.3f}s of {full:.3f}s, {phase}, {n} namespaces, seed {seed})"
        if i % 2 == 1:
            r = cli("up", path, "--lab", lab)
            if r.returncode != 0:
                failures.append(f"{where}: up after the kill failed: {r.stderr.strip()}")
            else:
                problems = lab_health(lab, expect_pods=80)
                if problems:
                    failures.append(f"{where}: up after the kill gave a broken lab: {problems[:5]}")
                else:
                    recovered += 1
            inodes |= footprint.lab_netns_inodes(lab)
        r = cli("down", lab)
        if r.returncode != 0:
            failures.append(f"{where}: down failed: {r.stderr.strip()}")
        left = gone(lab, inodes)
        if left:
            failures.append(f"{where}: down left {left}")
            force_clean(lab)
        elif r.returncode == 0:
            clean_downs += 1
        i += 1
    figures.add("SIGKILL points tried", KILL_POINTS)
    figures.add("SIGKILL points tried again (bring-up over before the point)", retries)
    figures.add("SIGKILL bring-up, shortest seen (s)", round(full, 2))
    figures.add("SIGKILL points: down left nothing", clean_downs)
    figures.add("SIGKILL points: up after the kill finished a correct lab", recovered)
    figures.add("SIGKILL points failed", len(failures))
    for ph, n in phases.items():
        figures.add(f"SIGKILL points landing: {ph}", n)
    assert not failures, "\n".join(failures[:10])
    assert recovered == KILL_POINTS // 2
    # the points must really be spread over the bring-up, not all before or after it
    assert phases["some namespaces"] + phases["all namespaces (iptables, processes)"] >= KILL_POINTS // 4, phases


@pytest.mark.parametrize("round_", range(CTRL_C_ROUNDS))
@pytest.mark.parametrize("moment", ["state-written", "namespaces-half", "namespaces-all"])
def test_ctrl_c_during_up(tmp_path, moment, round_):
    """SIGINT to `up`'s process group (what Ctrl-C in a terminal does) at three moments: exit 130 with
    one line naming `netlab down LAB`, no traceback; `down` then removes everything, and (for the middle
    moment) `up` instead finishes the lab."""
    lab = new_lab()
    path = write(tmp_path, big_scenario(80))
    for attempt in range(5):
        p = subprocess.Popen([NETLAB, "up", path, "--lab", lab], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, start_new_session=True)
        deadline = time.monotonic() + 30
        while p.poll() is None and time.monotonic() < deadline:
            n = len(footprint.lab_namespace_files(lab))
            if (moment == "state-written" and os.path.exists(os.path.join(state.lab_dir(lab), "state.json"))) or \
                    (moment == "namespaces-half" and n >= 40) or (moment == "namespaces-all" and n >= 84):
                os.killpg(p.pid, signal.SIGINT)
                break
            time.sleep(0.0005)
        out, err = p.communicate(timeout=30)
        if p.returncode == 0:  # finished before we caught the moment: try again
            assert cli("down", lab).returncode == 0
            continue
        break
    else:
        pytest.fail(f"up always finished before {moment}")
    assert p.returncode == 130, (p.returncode, err)
    assert "Traceback" not in err, err
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1 and f"netlab down {lab}" in lines[0] and "interrupted" in lines[0], err
    figures.add("Ctrl-C points tried")
    if moment == "namespaces-half":
        r = cli("up", path, "--lab", lab)
        assert r.returncode == 0, r.stderr
        assert not lab_health(lab, expect_pods=80)
    inodes = footprint.lab_netns_inodes(lab)
    r = cli("down", lab)
    assert r.returncode == 0, r.stderr
    assert not gone(lab, inodes)


def _pod_rows(lab: str) -> dict[str, list[str]]:
    r = cli("get", "pods", "--lab", lab)
    assert r.returncode == 0, r.stderr
    return {l.split()[0]: l.split() for l in r.stdout.splitlines()[1:]}


def _pod_json(lab: str) -> dict[str, dict]:
    return pods_json(lab)


def _node_status(lab: str) -> tuple[dict[str, str], str]:
    """`get nodes`: STATUS per node, and what it says on stderr."""
    r = cli("get", "nodes", "--lab", lab)
    assert r.returncode == 0, r.stderr
    return {l.split()[0]: l.split()[1] for l in r.stdout.splitlines()[1:]}, r.stderr


def _node_conditions(lab: str) -> dict[str, dict[str, dict]]:
    r = cli("get", "nodes", "--lab", lab, "-o", "json")
    assert r.returncode == 0, r.stderr
    return {o["metadata"]["name"]: {c["type"]: c for c in o["status"]["conditions"]}
            for o in json.loads(r.stdout)["items"]}


def _assert_nodes_ready(lab: str) -> None:
    status, err = _node_status(lab)
    assert set(status.values()) == {"Ready"} and not err, (status, err)


def test_dead_processes_are_reported_then_restarted(tmp_path):
    lab = new_lab()
    path = write(tmp_path, SMALL)
    try:
        assert cli("up", path, "--lab", lab, "--no-control-loop").returncode == 0
        st = state.load(lab)
        sleeper = st["pods"]["default/client"]["procs"]["sleeper"]["pid"]
        os.kill(sleeper, signal.SIGKILL)
        server = st["servers"]["n2"]["pid"]
        os.kill(server, signal.SIGKILL)
        for pid in (sleeper, server):  # wait until the kernel has them dead
            for _ in range(200):
                if procs.start_time(pid) is None:
                    break
                time.sleep(0.05)
        rows = _pod_rows(lab)
        assert rows["client"][1:3] == ["0/1", "Error"], rows
        cluster, _ = lab_spec.load_cluster(lab)
        on_n2 = [p.name for p in cluster.pods if p.node == "n2" and p.builtin_ports]
        on_n1 = [p.name for p in cluster.pods if p.node == "n1" and p.builtin_ports]
        assert on_n2 and on_n1
        for name in on_n2:
            assert rows[name][1:3] == ["0/1", "Error"], rows
        for name in on_n1:
            assert rows[name][1:3] == ["1/1", "Running"], rows
        objs = _pod_json(lab)
        assert objs["client"]["status"]["phase"] == "Failed"
        assert "container sleeper is not running" in objs["client"]["status"]["message"]
        r = cli("up", path, "--lab", lab)
        assert r.returncode == 0, r.stderr
        rows = _pod_rows(lab)
        assert all(row[2] == "Running" for row in rows.values()), rows
        assert rows["client"][3] == "1"  # RESTARTS
        assert not lab_health(lab, expect_pods=3)
    finally:
        cli("down", lab)
    assert not gone(lab)


# ------------------------------------------------------------------ tampering

def test_tampering_is_reported_then_repaired(tmp_path):
    """A deleted pod veth, a deleted node route, a flushed nat table, a deleted cni0, ip_forward off and
    a lost VXLAN FDB entry: `get pods`, `get nodes` and `probe` show the damage, `up` repairs it,
    `probe` passes again and every node is Ready."""
    lab = new_lab()
    path = write(tmp_path, SMALL)
    try:
        assert cli("up", path, "--lab", lab, "--no-control-loop").returncode == 0
        assert cli("probe", "--lab", lab).returncode == 0
        cluster, _ = lab_spec.load_cluster(lab)
        n1, n2 = cluster.node("n1"), cluster.node("n2")
        victim = next(p for p in cluster.pods if p.node == "n2" and p.builtin_ports)
        _assert_nodes_ready(lab)
        cond = _node_conditions(lab)["n1"]
        assert cond["Ready"]["status"] == "True" and cond["NetworkUnavailable"]["status"] == "False"
        # one node asked for by name is still checked against its peers (their routes, FDB entries)
        r = cli("get", "nodes", "n2", "--lab", lab)
        assert r.returncode == 0 and r.stdout.split("\n")[1].split()[:2] == ["n2", "Ready"] and not r.stderr, r

        # 1. the pod's node-side veth, deleted by hand
        assert subprocess.run(["ip", "-n", n2.netns, "link", "del", victim.host_veth]).returncode == 0
        rows = _pod_rows(lab)
        assert rows[victim.name][2] == "NetworkBroken", rows
        assert all(row[2] == "Running" for name, row in rows.items() if name != victim.name), rows
        obj = _pod_json(lab)[victim.name]
        assert obj["status"]["reason"] == "NetworkBroken"
        assert victim.host_veth in obj["status"]["message"] and "missing" in obj["status"]["message"]
        r = cli("probe", "--lab", lab)
        assert r.returncode == 1 and victim.name in r.stdout
        r = cli("up", path, "--lab", lab, "-v", "--no-control-loop")
        assert r.returncode == 0 and f"pod default/{victim.name}: rebuilt" in r.stdout, r.stdout
        assert all(row[2] == "Running" for row in _pod_rows(lab).values())
        assert cli("probe", "--lab", lab).returncode == 0

        # 2. a node's route to the other node's pods
        r = subprocess.run(["ip", "-n", n1.netns, "route", "del", str(n2.pod_cidr)])
        assert r.returncode == 0
        r = cli("probe", "--lab", lab)
        assert r.returncode == 1, r.stdout
        status, err = _node_status(lab)
        assert status == {"n1": "NotReady", "n2": "Ready"} and f"route {n2.pod_cidr}" in err, (status, err)
        cond = _node_conditions(lab)["n1"]
        assert cond["Ready"]["status"] == "False" and cond["NetworkUnavailable"]["status"] == "True"
        assert f"route {n2.pod_cidr}" in cond["NetworkUnavailable"]["message"]
        r = cli("up", path, "--lab", lab, "-v", "--no-control-loop")
        assert r.returncode == 0 and f"route {n2.pod_cidr}" in r.stdout, r.stdout
        assert cli("probe", "--lab", lab).returncode == 0
        _assert_nodes_ready(lab)

        # 3. a node's nat table, flushed
        flavour = state.load(lab)["iptables"]["flavour"]
        r = subprocess.run(labmod.netns_exec_argv(n2.netns, [f"iptables-{flavour}", "-t", "nat", "-F"]))
        assert r.returncode == 0
        r = cli("probe", "--lab", lab)
        assert r.returncode == 1, r.stdout
        status, err = _node_status(lab)
        assert status == {"n1": "Ready", "n2": "NotReady"} and "nat/KUBE-SERVICES" in err, (status, err)
        r = cli("up", path, "--lab", lab, "-v", "--no-control-loop")
        assert r.returncode == 0 and "nat/KUBE-SERVICES" in r.stdout, r.stdout
        assert cli("probe", "--lab", lab).returncode == 0
        _assert_nodes_ready(lab)

        # 4. a node's cni0 bridge, deleted by hand (its pods' veths stay, off any bridge)
        assert subprocess.run(["ip", "-n", n2.netns, "link", "del", "cni0"]).returncode == 0
        status, err = _node_status(lab)
        assert status["n2"] == "NotReady" and "link cni0 is missing" in err, (status, err)
        rows = _pod_rows(lab)
        assert all(rows[p.name][2] == ("NetworkBroken" if p.node == "n2" else "Running") for p in cluster.pods
                   if p.namespace == "default"), rows
        r = cli("up", path, "--lab", lab, "-v", "--no-control-loop")
        assert r.returncode == 0 and f"{victim.host_veth} on cni0" in r.stdout, r.stdout
        assert cli("probe", "--lab", lab).returncode == 0
        _assert_nodes_ready(lab)

        # 5. ip_forward off and a VXLAN forwarding entry gone on one node
        mac = cluster.node("n2").vtep_mac
        assert subprocess.run(labmod.netns_exec_argv(n1.netns, ["sysctl", "-qw", "net.ipv4.ip_forward=0"])).returncode == 0
        assert subprocess.run(["bridge", "-n", n1.netns, "fdb", "del", mac, "dev", "flannel.1", "dst", str(n2.ip),
                               "self"]).returncode == 0
        status, err = _node_status(lab)
        assert status["n1"] == "NotReady" and "net.ipv4.ip_forward is 0" in err and f"fdb {mac}" in err, err
        r = cli("probe", "--lab", lab)
        assert r.returncode == 1, r.stdout
        r = cli("up", path, "--lab", lab, "-v", "--no-control-loop")
        assert r.returncode == 0 and "ip_forward=1" in r.stdout and f"fdb {mac}" in r.stdout, r.stdout
        assert cli("probe", "--lab", lab).returncode == 0
        _assert_nodes_ready(lab)
        assert not lab_health(lab, expect_pods=3)
        figures.add("tamper cases reported and repaired", 5)
    finally:
        cli("down", lab)
    assert not gone(lab)


# ------------------------------------------------------------------ ownership

def test_two_labs_same_scenario_same_subnets(tmp_path):
    """The same scenario (same subnets, node names, pod names) twice, side by side: both work; `down` of
    one leaves the other working."""
    a, b = new_lab(), new_lab()
    path = write(tmp_path, SMALL)
    try:
        for lab in (a, b):
            r = cli("up", path, "--lab", lab)
            assert r.returncode == 0, r.stderr
        for lab in (a, b):
            r = cli("probe", "--lab", lab)
            assert r.returncode == 0, r.stdout
            assert not lab_health(lab, expect_pods=3)
        before = len(footprint.lab_namespace_files(b))   # nodes, pods, the cluster DNS's pods, underlay, external
        assert before == 7 + 2, footprint.lab_namespace_files(b)
        assert cli("down", a).returncode == 0
        assert not gone(a)
        assert len(footprint.lab_namespace_files(b)) == before
        r = cli("probe", "--lab", b)
        assert r.returncode == 0, r.stdout
        assert not lab_health(b, expect_pods=3)
    finally:
        cli("down", a)
        cli("down", b)
    assert not gone(a) and not gone(b)


def test_down_never_removes_what_it_did_not_create(tmp_path):
    """Decoys that look like netlab's: namespaces named like another lab, like a prefix of this one, like
    the bare prefix, like the lab; KUBE-/FLANNEL- chains in a decoy namespace; a process whose command
    line names this lab's state directory and one carrying this lab's owner tag, both outside the lab's
    namespaces; and a state file that records the decoy process as a container. `up` and `down` of the
    lab leave all of them as they were."""
    lab = new_lab()
    other = new_lab()
    decoy_ns = [f"nl.{other}.node.n1", f"nl.{lab}x.node.foo", f"nl.{lab}", f"nl.{lab}.mine", lab]
    path = write(tmp_path, SMALL)
    decoys: list[subprocess.Popen] = []
    snap0 = footprint.root_snapshot()
    try:
        for n in decoy_ns:
            assert subprocess.run(["ip", "netns", "add", n]).returncode == 0
        rules = ["-t nat -N KUBE-SVC-DECOY", "-t nat -N FLANNEL-DECOY", "-t nat -N KUBE-SERVICES",
                 "-t nat -A PREROUTING -j KUBE-SVC-DECOY", "-t nat -A KUBE-SERVICES -j FLANNEL-DECOY",
                 "-t filter -N KUBE-FORWARD"]
        for rule in rules:
            r = subprocess.run(["ip", "netns", "exec", lab, "iptables", *rule.split()], capture_output=True, text=True)
            assert r.returncode == 0, r.stderr
        chains0 = subprocess.run(["ip", "netns", "exec", lab, "iptables-save"], capture_output=True, text=True).stdout
        sleeper = [sys.executable, "-c", "import time; time.sleep(600)", "netlab.workload.netexec", "--config",
                   f"/run/netlab/{lab}/run/netexec-n1.json"]
        decoys.append(subprocess.Popen(["ip", "netns", "exec", f"nl.{lab}x.node.foo", *sleeper]))
        decoys.append(subprocess.Popen(sleeper, env=dict(os.environ, NETLAB_OWNER=f"{lab}/pod/default/client/sleeper")))
        decoys.append(subprocess.Popen(sleeper, env=dict(os.environ, NETLAB_OWNER=f"{lab}/node/n1/netexec")))
        time.sleep(0.3)

        r = cli("up", path, "--lab", lab)
        assert r.returncode == 0, r.stderr
        # make the state file point at a decoy (its real PID and start time) as if it were a container
        st_path = os.path.join(state.lab_dir(lab), "state.json")
        with open(st_path) as f:
            st = json.load(f)
        st["pods"]["default/client"]["procs"]["sleeper"] = {"pid": decoys[1].pid,
                                                             "start": labmod.procs.start_time(decoys[1].pid)}
        st["servers"]["n1"] = {"pid": decoys[2].pid, "start": labmod.procs.start_time(decoys[2].pid)}
        with open(st_path, "w") as f:
            json.dump(st, f)
        r = cli("up", path, "--lab", lab)      # sees the records as someone else's processes: starts its own
        assert r.returncode == 0, r.stderr
        assert not lab_health(lab, expect_pods=3)
        r = cli("down", lab)
        assert r.returncode == 0, r.stderr
        decoy_pids = {str(d.pid) for d in decoys} | {l.split()[0] for l in footprint.lab_processes(lab)
                                                    if "time.sleep(600)" in l}
        left = footprint.lab_footprint(lab)
        assert left["namespaces"] == [f"nl.{lab}.mine"] and not left["state"], left
        assert [m[0] for m in left["mounts"]] == [f"/run/netns/nl.{lab}.mine"], left
        assert {l.split()[0] for l in left["processes"]} <= decoy_pids, left
        for d in decoys:
            assert d.poll() is None, f"down killed a decoy process ({d.args})"
        for n in decoy_ns:
            assert os.path.exists(f"/run/netns/{n}"), f"down removed decoy namespace {n}"
        chains1 = subprocess.run(["ip", "netns", "exec", lab, "iptables-save"], capture_output=True, text=True).stdout
        strip = lambda t: [l for l in t.splitlines() if not l.startswith("#")]  # noqa: E731
        assert strip(chains0) == strip(chains1)
        assert footprint.diff_snapshots(snap0, footprint.root_snapshot()) == []
    finally:
        for d in decoys:
            d.kill()
            d.wait()
        for n in decoy_ns:
            subprocess.run(["ip", "netns", "del", n], capture_output=True)
        cli("down", lab)


# ------------------------------------------------------------------ privileges, paths, shells

@pytest.mark.skipif(nobody_uid() is None, reason="no 'nobody' user to drop privileges to")
def test_not_root_is_refused_before_anything_else(tmp_path):
    lab = new_lab()
    bad = write(tmp_path, "kind: Cluster\nname: [oops\n", "bad.yaml")
    os.chmod(tmp_path, 0o755)
    os.chmod(bad, 0o644)
    good = write(tmp_path, SMALL, "good.yaml")
    os.chmod(good, 0o644)
    for args in (["up"], ["up", good, "--lab", lab], ["up", bad], ["up", "/nonexistent.yaml"], ["down", lab],
                 ["down", "--all"], ["get", "pods"], ["get", "labs"], ["exec", "p", "--", "true"],
                 ["probe"], ["logs", "p"]):
        r = cli(*args, user=nobody_uid())
        assert r.returncode == 2, (args, r.stderr)
        assert one_line_error(r) and "must run as root" in r.stderr, (args, r.stderr)
    assert not footprint.leftovers(footprint.lab_footprint(lab))


def test_no_shell_anywhere_in_netlab():
    """No shell=True, os.system, os.popen or subprocess.getoutput in netlab's code: scenario text can only
    ever reach a process as one argv element."""
    found = []
    for path in sorted((REPO / "netlab").rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                for kw in node.keywords:
                    if kw.arg == "shell" and not (isinstance(kw.value, ast.Constant) and kw.value.value is False):
                        found.append(f"{path}:{node.lineno} shell=")
                f = node.func
                name = f"{getattr(f.value, 'id', '')}.{f.attr}" if isinstance(f, ast.Attribute) else getattr(f, "id", "")
                if name in ("os.system", "os.popen", "subprocess.getoutput", "subprocess.getstatusoutput",
                            "os.execl", "os.execlp", "os.spawnl", "os.spawnlp"):
                    found.append(f"{path}:{node.lineno} {name}")
    assert not found, found


HOSTILE_NAMES = ["$(touch {m})", "`touch {m}`", "a;touch {m}", "a|touch {m}", "a&&touch {m}", "a b", "../../x",
                 "a\ntouch {m}", "-rf", "a'b", 'a"b', "$HOME", "a*", "\u202ea", "A" * 70, "x" * 300]

# one scenario per field, {q} being the hostile name as a YAML double-quoted string
HOSTILE_FIELDS = {
    "pod": "apiVersion: v1\nkind: Pod\nmetadata: {{name: {q}}}\nspec: {{containers: [{{name: c}}]}}\n",
    "namespace": "apiVersion: v1\nkind: Namespace\nmetadata: {{name: {q}}}\n---\napiVersion: v1\nkind: Pod\n"
                 "metadata: {{name: p, namespace: {q}}}\nspec: {{containers: [{{name: c}}]}}\n",
    "container": "apiVersion: v1\nkind: Pod\nmetadata: {{name: p}}\nspec: {{containers: [{{name: {q}}}]}}\n",
    "node": "kind: Cluster\nnodes: [{{role: worker, name: {q}}}]\n",
    "lab": "kind: Cluster\nname: {q}\n",
    "port": "apiVersion: v1\nkind: Pod\nmetadata: {{name: p}}\n"
            "spec: {{containers: [{{name: c, ports: [{{containerPort: 80, name: {q}}}]}}]}}\n",
    "label": "apiVersion: v1\nkind: Pod\nmetadata: {{name: p, labels: {{app: {q}}}}}\nspec: {{containers: [{{name: c}}]}}\n",
    "service": "apiVersion: v1\nkind: Service\nmetadata: {{name: {q}}}\nspec: {{ports: [{{port: 80}}]}}\n",
    "env": "apiVersion: v1\nkind: Pod\nmetadata: {{name: p}}\n"
           "spec: {{containers: [{{name: c, command: [sleep, '1'], env: [{{name: {q}, value: x}}]}}]}}\n",
    "--lab": "kind: Cluster\n",
}


@pytest.mark.parametrize("field", sorted(HOSTILE_FIELDS))
def test_hostile_names_are_refused(tmp_path, field):
    """Names with shell syntax, spaces, control characters or beyond the limits, in every field that
    becomes a kernel or file name: exit 2, one printable line, nothing created, nothing run."""
    marker = f"/tmp/netlab-pwned-{secrets.token_hex(4)}"
    lab = new_lab()
    for raw in HOSTILE_NAMES:
        name = raw.format(m=marker)
        if field == "env" and name in ("-rf", "A" * 70, "x" * 300):
            continue  # valid environment variable names
        path = write(tmp_path, HOSTILE_FIELDS[field].format(q=json.dumps(name)))
        r = cli("up", path, "--lab", name if field == "--lab" else lab)
        if r.returncode == 0:
            cli("down", lab)
        assert r.returncode == 2, (field, name, r.stdout, r.stderr)
        assert one_line_per_problem(r), (field, name, r.stderr)
        assert not os.path.exists(marker), f"{field} {name!r} reached a shell"
    assert not footprint.leftovers(footprint.lab_footprint(lab))


def test_odd_but_valid_names_work_and_reach_no_shell(tmp_path):
    """Names at the limits (24-character lab, 63-character pod, 46-character Deployment, a pod named
    '0' in namespace '0-0') work; arguments, environment values and a working directory full of shell
    syntax reach the container literally, and nothing runs them."""
    marker = f"/tmp/netlab-pwned-{secrets.token_hex(4)}"
    lab = (new_lab() + "-0123456789abcdef")[:24]
    odd_dir = tmp_path / f"dir with $(touch {os.path.basename(marker)}) and `x`"
    odd_dir.mkdir()
    os.chmod(tmp_path, 0o755)
    long_pod = "p" + "0" * 61 + "z"
    long_deploy = "d" * 46
    args = [f"$(touch {marker})", f"; touch {marker}", f"`touch {marker}`", f"|| touch {marker}", "$HOME", "*"]
    odd = builders.container(
        "odd", command=["python3", "-c", "import sys, os, time; print(sys.argv[1:], os.environ['ODD'], os.getcwd(), "
                                         "flush=True); time.sleep(600)"],
        args=args, env=[{"name": "ODD", "value": f"$(touch {marker}); `touch {marker}`"}], workingDir=str(odd_dir))
    web = [builders.container("web", [8080])]
    text = builders.text(
        builders.cluster(None, builders.workers("0", "n-1")),
        builders.namespace("0-0"),
        builders.pod("0", containers=[odd], namespace="0-0", nodeName="0"),
        builders.pod(long_pod, containers=web, nodeName="n-1"),
        builders.deployment(long_deploy, 1, labels={"app": "d"}, containers=web))
    path = write(tmp_path, text)
    try:
        r = cli("up", path, "--lab", lab)
        assert r.returncode == 0, r.stderr
        time.sleep(0.5)
        r = cli("get", "pods", "-A", "--lab", lab)
        mine = [line for line in r.stdout.splitlines() if not line.startswith("kube-system ")]   # not the DNS pods
        assert r.returncode == 0 and sum("Running" in line for line in mine) == 3, r.stdout
        r = cli("logs", "-n", "0-0", "0", "--lab", lab)
        assert r.returncode == 0
        for a in args:
            assert a in r.stdout, r.stdout
        assert f"$(touch {marker}); `touch {marker}`" in r.stdout and str(odd_dir) in r.stdout, r.stdout
        r = cli("exec", "--lab", lab, "-n", "0-0", "0", "--", "hostname")
        assert r.returncode == 0 and r.stdout.strip() == "0"
        r = cli("exec", "--lab", lab, long_pod, "--", "hostname")
        assert r.stdout.strip() == long_pod
        assert cli("probe", "--lab", lab).returncode == 0
        assert not os.path.exists(marker) and not os.path.exists(odd_dir / os.path.basename(marker))
    finally:
        cli("down", lab)
    assert not gone(lab)
    assert not os.path.exists(marker)


def test_state_directory_and_logs_are_root_only(tmp_path):
    """Even with umask 000: directories 0700, files 0600 (state, logs, configs, pidfiles)."""
    lab = new_lab()
    path = write(tmp_path, SMALL)
    try:
        r = subprocess.run([NETLAB, "up", path, "--lab", lab], capture_output=True, text=True,
                           preexec_fn=lambda: os.umask(0))
        assert r.returncode == 0, r.stderr
        time.sleep(0.3)  # let the servers write their per-pod logs
        base = state.lab_dir(lab)
        assert os.stat(state.RUN_DIR).st_mode & 0o777 == 0o700
        seen = Counter()
        bad = []
        for root, dirs, files in os.walk(base):
            for d in dirs:
                mode = os.lstat(os.path.join(root, d)).st_mode & 0o777
                if mode != 0o700:
                    bad.append(f"{os.path.join(root, d)} {oct(mode)}")
            for f in files:
                p = os.path.join(root, f)
                if nsfs.is_ns_file(p):  # a pod's UTS namespace, bind-mounted (nsfs decides its mode)
                    seen["uts"] += 1
                    continue
                mode = os.lstat(p).st_mode & 0o777
                seen[f.rsplit(".", 1)[-1]] += 1
                if os.path.basename(root) == "..etc":   # a pod's resolv.conf and hosts: any container user reads them
                    seen["podfile"] += 1
                    if mode != 0o644 or os.lstat(p).st_uid != 0 or f not in ("resolv.conf", "hosts"):
                        bad.append(f"{p} {oct(mode)}")
                    continue
                if mode != 0o600 or os.lstat(p).st_uid != 0:
                    bad.append(f"{p} {oct(mode)}")
        assert not bad, bad
        # uts: the 3 pods and the cluster DNS's 2
        assert seen["log"] >= 4 and seen["json"] >= 3 and seen["pid"] == 3 and seen["uts"] == 5, seen  # + the control loop's
        assert os.stat(base).st_mode & 0o777 == 0o700
    finally:
        cli("down", lab)
    assert not gone(lab)


# ------------------------------------------------------------------ torn state

CORRUPTIONS = {
    "truncated": lambda text: text[: len(text) // 2],
    "empty": lambda text: "",
    "not-json": lambda text: "\x00\xff garbage",
    "no-version": lambda text: "{}",
    "wrong-types": lambda text: json.dumps({"version": 1, "pods": [], "servers": "x", "nodes": 5, "ipam": [1],
                                            "scenario": 7, "created": "yesterday"}),
    "wrong-records": lambda text: json.dumps(dict(json.loads(text), servers={"n1": {"pid": "abc"}, "n2": {"pid": -5}},
                                                  pods={k: dict(v, procs={"x": {"pid": [1]}}, restarts="many")
                                                        for k, v in json.loads(text)["pods"].items()})),
    "pid-1": lambda text: json.dumps(dict(json.loads(text), servers={"n1": {"pid": 1, "start": labmod.procs.start_time(1)}})),
}


@pytest.mark.parametrize("how", sorted(CORRUPTIONS))
def test_torn_state_file(tmp_path, how):
    """A state file that is torn, garbage or of the wrong shape: `get` says so in one line (no traceback),
    `up` repairs the lab, and `down` removes everything even with the file torn again."""
    lab = new_lab()
    path = write(tmp_path, SMALL)
    st_path = os.path.join(state.lab_dir(lab), "state.json")
    try:
        assert cli("up", path, "--lab", lab).returncode == 0
        good = Path(st_path).read_text()
        Path(st_path).write_text(CORRUPTIONS[how](good))
        r = cli("get", "pods", "--lab", lab)
        assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) <= 2, r.stderr
        r = cli("up", path, "--lab", lab)
        assert r.returncode == 0, r.stderr
        assert not lab_health(lab, expect_pods=3)
        Path(st_path).write_text(CORRUPTIONS[how](Path(st_path).read_text()))
        inodes = footprint.lab_netns_inodes(lab)
        r = cli("down", lab)
        assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
        assert not gone(lab, inodes)
    finally:
        cli("down", lab)
    figures.add("torn state files survived")


def test_down_of_a_state_directory_alone(tmp_path):
    """`up` killed after creating the state directory but before writing state.json: `down` still
    finds the lab and removes the directory."""
    lab = new_lab()
    state.ensure_dirs(lab)
    assert lab in labmod.labs()
    r = cli("down", lab)
    assert r.returncode == 0, r.stderr
    assert not gone(lab)


def test_stale_namespace_placeholder_files_are_replaced(tmp_path):
    """A process killed between creating a namespace file and mounting onto it leaves an empty file;
    `up` replaces it (node or pod), `down` removes it."""
    lab = new_lab()
    path = write(tmp_path, SMALL)
    try:
        open(f"/run/netns/nl.{lab}.node.n1", "w").close()
        open(f"/run/netns/nl.{lab}.underlay", "w").close()
        r = cli("up", path, "--lab", lab, "--no-control-loop")
        assert r.returncode == 0, r.stderr
        cluster, _ = lab_spec.load_cluster(lab)
        pod = cluster.pod("default", "client")
        labmod.procs.terminate([], labmod.procs.netns_members([nsfs.netns_path(pod.netns)]))
        nsfs.delete_ns_file(nsfs.netns_path(pod.netns))
        open(nsfs.netns_path(pod.netns), "w").close()
        assert _pod_rows(lab)["client"][2] == "Unknown"
        r = cli("up", path, "--lab", lab, "--no-control-loop")
        assert r.returncode == 0, r.stderr
        assert not lab_health(lab, expect_pods=3)
        open(f"/run/netns/nl.{lab}.pod.default.ghost", "w").close()
    finally:
        cli("down", lab)
    assert not gone(lab)


# ------------------------------------------------------------------ hostile input through the CLI

def test_rejected_inputs_through_the_cli_change_nothing(tmp_path):
    """FUZZ_CLI hostile scenarios that the parser rejects, each through `netlab up --lab LAB` (4 at a
    time): exit 2, one printable line on stderr, nothing on stdout, no namespace, no state directory,
    no file written by the input, and the root namespace untouched. Then a few accepted mutants are
    built for real, and a 9 MB file is refused at once."""
    lab = new_lab()
    snap0 = footprint.root_snapshot()
    ns0 = set(os.listdir("/run/netns")) if os.path.isdir("/run/netns") else set()
    rejected, accepted = [], []
    for text in hostile.corpus(FUZZ_CLI * 3, seed=2):
        try:
            build(load_text(text))
            accepted.append(text)
        except SpecError:
            rejected.append(text)
    rejected = rejected[:FUZZ_CLI]
    assert len(rejected) == FUZZ_CLI
    paths = []
    for i, text in enumerate(rejected):
        p = tmp_path / f"case{i}.yaml"
        p.write_text(text)
        paths.append(str(p))

    def one(path: str) -> str | None:
        t0 = time.monotonic()
        r = cli("up", path, "--lab", lab, timeout=30)
        took = time.monotonic() - t0
        if r.returncode != 2 or r.stdout or not one_line_per_problem(r) or took > 10:
            return f"{path}: exit {r.returncode} in {took:.1f}s, stdout {r.stdout[:100]!r}, stderr {r.stderr[:300]!r}"
        return None

    with ThreadPoolExecutor(4) as pool:
        bad = [x for x in pool.map(one, paths) if x]
    figures.add("fuzz cases through the CLI (rejected)", len(paths))
    assert not bad, "\n".join(bad[:10])
    assert not footprint.leftovers(footprint.lab_footprint(lab))
    ns1 = set(os.listdir("/run/netns")) if os.path.isdir("/run/netns") else set()
    assert not {n for n in ns1 - ns0 if n.startswith(f"nl.{lab}")}
    assert footprint.diff_snapshots(snap0, footprint.root_snapshot()) == []
    assert not os.path.exists(hostile.PWNED)

    big = tmp_path / "big.yaml"
    big.write_text("# " + "x" * (MAX_BYTES + 1024 * 1024))
    t0 = time.monotonic()
    r = cli("up", str(big), "--lab", lab)
    assert r.returncode == 2 and one_line_error(r) and "more than" in r.stderr
    assert time.monotonic() - t0 < 5

    built = 0
    for i, text in enumerate(accepted[:3]):
        r = cli("up", write(tmp_path, text, f"ok{i}.yaml"), "--lab", lab)
        try:
            assert r.returncode == 0 or (r.returncode == 2 and one_line_per_problem(r)), r.stderr
            built += r.returncode == 0
        finally:
            cli("down", lab)
        assert not gone(lab)
    figures.add("fuzz cases through the CLI (accepted and built)", built)
