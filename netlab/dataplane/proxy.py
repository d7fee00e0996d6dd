"""Proxy backends (kube-proxy's modes) behind a small registry.

Every backend syncs one thing per node: the netfilter state that mode needs. flannel's chains are
iptables chains in every mode, so the iptables sync always runs; what it contains depends on the mode
(`netlab.render.iptables.node_rules`). A backend also removes what the *other* modes left, so switching
mode on a running lab (`up --proxy-mode`) leaves no stale rules.
"""
from __future__ import annotations

import dataclasses
import functools
import gc
import json
import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Collection, TypeVar

from ..errors import KernelError, UsageError
from ..model.objects import Cluster
from ..render.iptables import node_rules
from . import iptables, layout, nsfs, rtnl, state
from .fabric import Changes

T = TypeVar("T")


def _gc_paused(fn: Callable[..., T]) -> Callable[..., T]:
    """Run fn with Python's cyclic garbage collector paused. A sync of 10,000 Services allocates
    hundreds of thousands of lists and dicts that never form cycles; the collector's passes over them
    were a quarter of the render time. Re-entrant: the previous state is restored."""
    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> T:
        was = gc.isenabled()
        gc.disable()
        try:
            return fn(*args, **kwargs)
        finally:
            if was:
                gc.enable()
    return run


class ProxyBackend:
    """One kube-proxy mode. Its iptables chains (if any) come from `node_rules`, which every sync applies;
    `sync` programs whatever else the mode needs (an nftables table, IPVS services...), and `remove`
    deletes those things when the lab switches to another mode."""

    name = ""

    def preflight(self, cluster: Cluster) -> None:
        """Fail before any change if this machine cannot run the mode (a missing tool or kernel feature)."""

    def prepare(self, cluster: Cluster, changes: Changes) -> None:
        """Before the iptables sync: what the mode's iptables rules refer to (IPVS mode's ipsets)."""

    def sync(self, cluster: Cluster, changes: Changes, force: bool = False) -> None:
        """Program the mode's non-iptables state on every node."""

    def drift(self, cluster: Cluster, node) -> list[str]:
        """What a sync would change on `node` beyond the iptables rules (read only; [] if nothing)."""
        return []

    def remove(self, cluster: Cluster, changes: Changes) -> None:
        """Remove the mode's non-iptables state from every node (idempotent)."""


class IptablesProxy(ProxyBackend):
    """kube-proxy's iptables mode: everything is in the iptables chains that `node_rules` renders."""

    name = "iptables"


class NftablesProxy(ProxyBackend):
    """kube-proxy's nftables mode: table `ip kube-proxy` in every node, synced by diff in one transaction.

    Only the difference is sent: a one-endpoint change is a handful of commands. The difference is taken
    against the live table, read back with `nft -j list table` (seconds at 10,000 Services), unless the
    node's record of its last sync can be trusted: the table netlab applied, kept with the namespace's
    cookie and its nf_tables generation right after that commit. The kernel adds one to the generation
    on every nftables commit in the namespace (nft, iptables-nft, anyone's), so an unchanged generation
    means nothing was changed since, and a hand-made change (a different generation) makes the next sync
    read the table back and repair it. kube-proxy also diffs against its own last sync, not the kernel.
    """

    name = "nftables"
    TABLE = ("ip", "kube-proxy")
    RECORD_VERSION = 2

    def preflight(self, cluster: Cluster) -> None:
        if shutil.which("nft") is None:
            raise UsageError("nftables mode needs the nft command: run scripts/setup (or apt-get install nftables)")

    def _nft(self, netns: str, args: list[str], stdin: str | None = None) -> subprocess.CompletedProcess:
        try:
            return subprocess.run(["nsenter", f"--net={nsfs.netns_path(netns)}", "--", "nft", *args], input=stdin,
                                  capture_output=True, text=True, timeout=600)
        except OSError as e:
            raise KernelError(f"nft in network namespace {netns}: {e.strerror}") from None

    @staticmethod
    def record_path(lab: str, node: str) -> str:
        return layout.nft_record(lab, node)

    def _live(self, netns: str):
        from ..render import kubeproxy_nftables as knft
        r = self._nft(netns, ["-j", "list", "table", *self.TABLE])
        return knft.parse_nft_json(r.stdout) if r.returncode == 0 else None

    def _recorded(self, path: str | None, ident: tuple[int, int] | None):
        from ..render import kubeproxy_nftables as knft
        data = read_record(path, ident, self.RECORD_VERSION)
        try:
            return None if data is None else knft.table_from_data(data)
        except (ValueError, KeyError, TypeError, IndexError):
            return None  # torn or foreign: read the live table instead

    def _record(self, path: str | None, ident: tuple[int, int] | None, table) -> None:
        from ..render import kubeproxy_nftables as knft
        write_record(path, ident, self.RECORD_VERSION, lambda: knft.table_to_data(table))

    def _current(self, node, record: str | None) -> tuple[tuple[int, int] | None, Any, bool]:
        """(identity, the node's table, whether it came from the record): the record while it can be
        trusted (nothing committed since it was written), else the live table."""
        ident = node_identity(node.netns)
        live = self._recorded(record, ident)
        if live is not None:
            return ident, live, True
        return ident, self._live(node.netns), False

    def sync(self, cluster: Cluster, changes: Changes, force: bool = False) -> None:
        for node in cluster.nodes:
            n = self.sync_node(cluster, node, self.record_path(cluster.name, node.name), force)
            if n:
                changes.add(f"{node.netns}: nftables table ip kube-proxy ({n} commands)")

    @_gc_paused
    def sync_node(self, cluster: Cluster, node, record: str | None, force: bool = False) -> int:
        """Sync one node's table; returns the number of commands sent (0: it was right already).

        `record`: the file that keeps this node's last sync (None: always read the live table)."""
        from ..render import kubeproxy_nftables as knft
        desired = knft.desired_objects(cluster, node, choice=cluster.networking.nft_choice)
        if force:
            ident, live, trusted = node_identity(node.netns), None, False
        else:
            ident, live, trusted = self._current(node, record)
        script = knft.diff_script(desired, live)
        if force and script:
            script = f"add table ip kube-proxy\ndelete table ip kube-proxy\n{script}"
        if script:
            r = self._nft(node.netns, ["-f", "-"], script)
            if r.returncode != 0 and trusted:
                # the record did not match the kernel after all: read the table back and try once more
                script = knft.diff_script(desired, self._live(node.netns))
                r = self._nft(node.netns, ["-f", "-"], script)
            if r.returncode != 0:
                _unlink(record)
                raise KernelError(f"nft -f in network namespace {node.netns} failed: {r.stderr.strip()[:500]}")
        if trusted and not script:
            return 0  # the record stands as it is
        after = node_identity(node.netns)
        # trust the record next time only if our own commit (if any) was the only one in between
        expected = None if ident is None else (ident[0], ident[1] + (1 if script else 0))
        self._record(record, after if after is not None and after == expected else None, desired)
        return _commands(script)

    def drift(self, cluster: Cluster, node) -> list[str]:
        from ..render import kubeproxy_nftables as knft
        desired = knft.desired_objects(cluster, node, choice=cluster.networking.nft_choice)
        _, live, _ = self._current(node, self.record_path(cluster.name, node.name))
        n = _commands(knft.diff_script(desired, live))
        return [f"nftables table ip kube-proxy differs ({n} commands to apply)"] if n else []

    def remove(self, cluster: Cluster, changes: Changes) -> None:
        nodes = [n for n in cluster.nodes if os.path.exists(nsfs.netns_path(n.netns))]
        if not nodes or shutil.which("nft") is None:
            return
        # called on every iptables-mode up
        found = per_node(lambda n: self._nft(n.netns, ["list", "table", *self.TABLE]).returncode == 0, nodes)
        for node in cluster.nodes:
            _unlink(self.record_path(cluster.name, node.name))
        for node, present in zip(nodes, found):
            if present:
                d = self._nft(node.netns, ["delete", "table", *self.TABLE])
                if d.returncode != 0:
                    raise KernelError(f"nft delete table ip kube-proxy in {node.netns}: {d.stderr.strip()}")
                changes.add(f"{node.netns}: removed nftables table ip kube-proxy")


class IpvsProxy(ProxyBackend):
    """kube-proxy's IPVS mode: every VIP on the dummy device kube-ipvs0, one IPVS virtual server per
    VIP:port (ClusterIP, NodePort on the node's addresses, externalIPs, LB IP) with masquerading real
    servers, kube-proxy's ipsets, and the few iptables rules that use them.

    Order per node, as kube-proxy does it: sysctls and kube-ipvs0, the ipsets (iptables rules refer to
    them), then (after the iptables sync) the virtual servers, then the VIPs. IPVS is programmed with
    the standard tools (`ipvsadm -Sn` / `ipvsadm -R`, `ipset save` / `ipset restore`) by diff.
    """

    name = "ipvs"
    MODULES = ("ip_vs", "ip_vs_rr", "ip_vs_lc", "ip_vs_dh", "ip_vs_sh", "ip_vs_sed", "ip_vs_nq", "ip_vs_wrr",
               "ip_vs_wlc", "ip_vs_lblc", "ip_vs_lblcr", "ip_vs_mh", "dummy", "ip_set", "xt_set",
               "ip_set_hash_ip", "ip_set_hash_ipport", "ip_set_hash_ipportip", "ip_set_hash_ipportnet",
               "ip_set_hash_net", "ip_set_bitmap_port", "nf_conntrack")

    def preflight(self, cluster: Cluster) -> None:
        from . import kernelcheck
        problems = kernelcheck.missing_for_ipvs()
        if problems:
            raise UsageError("kube-proxy mode ipvs cannot run on this kernel: " + "; ".join(problems)
                             + " (netlab does not fall back to another mode)")
        for tool, pkg in (("ipvsadm", "ipvsadm"), ("ipset", "ipset"), ("modprobe", "kmod")):
            if shutil.which(tool) is None:
                raise UsageError(f"ipvs mode needs the {tool} command: run scripts/setup (apt-get install {pkg})")
        scheduler = cluster.networking.ipvs_scheduler
        # the modules IPVS mode needs, as kube-proxy loads them; a scheduler the kernel lacks is an error
        subprocess.run(["modprobe", "-a", "-q", *[m for m in self.MODULES if m.startswith(("ip_vs_", "ip_set_"))
                                                  or m in ("ip_vs", "dummy", "ip_set", "xt_set")]],
                       capture_output=True)
        if not os.path.exists("/proc/net/ip_vs"):
            raise UsageError("kube-proxy mode ipvs: the ip_vs module did not load (modprobe ip_vs failed)")
        if subprocess.run(["modprobe", "-q", f"ip_vs_{scheduler}"], capture_output=True).returncode != 0 and \
                not os.path.exists(f"/sys/module/ip_vs_{scheduler}"):
            raise UsageError(f"networking.ipvsScheduler {scheduler}: the kernel has no ip_vs_{scheduler} module; "
                             "pick another scheduler (rr is always there)")

    def _run(self, netns: str, argv: list[str], stdin: str | None = None, check: bool = True) -> str:
        try:
            r = subprocess.run(["nsenter", f"--net={nsfs.netns_path(netns)}", "--", *argv], input=stdin,
                               capture_output=True, text=True, timeout=600)
        except OSError as e:
            raise KernelError(f"{argv[0]} in network namespace {netns}: {e.strerror}") from None
        if check and r.returncode != 0:
            raise KernelError(f"{' '.join(argv[:2])} in network namespace {netns} failed: {r.stderr.strip()[:500]}")
        return r.stdout

    def _states(self, cluster: Cluster) -> dict:
        from ..render import kubeproxy_ipvs as kipvs
        return {n.name: kipvs.ipvs_state(cluster, n) for n in cluster.nodes}

    def prepare(self, cluster: Cluster, changes: Changes) -> None:
        """Before the iptables sync: sysctls, kube-ipvs0 and the ipsets the rules refer to."""
        from ..render import kubeproxy_ipvs as kipvs
        from .fabric import write_sysctls
        self._cache = self._states(cluster)
        for node in cluster.nodes:
            st = self._cache[node.name]

            def in_node(st=st, netns=node.netns) -> None:
                from pyroute2 import IPRoute
                write_sysctls(netns, st.sysctls, changes)
                with IPRoute() as ipr:
                    if not ipr.link_lookup(ifname=st.dummy_device):
                        ipr.link("add", ifname=st.dummy_device, kind="dummy")
                        changes.add(f"{netns}: dummy device {st.dummy_device}")
            nsfs.in_netns(node.netns, in_node)
            script = kipvs.ipset_diff(st, self._run(node.netns, ["ipset", "save"]))
            if script.strip():
                self._run(node.netns, ["ipset", "restore"], script)
                changes.add(f"{node.netns}: ipsets ({len(script.splitlines())} commands)")

    def sync(self, cluster: Cluster, changes: Changes, force: bool = False) -> None:
        from ..render import kubeproxy_ipvs as kipvs
        states = getattr(self, "_cache", None) or self._states(cluster)
        for node in cluster.nodes:
            st = states[node.name]
            live = [] if force else kipvs.parse_ipvsadm_save(self._run(node.netns, ["ipvsadm", "-Sn"]))
            if force:
                self._run(node.netns, ["ipvsadm", "-C"])
            ops = kipvs.ipvs_diff(st.virtual_servers, live)
            if ops:
                self._run(node.netns, ["ipvsadm", "-R"], kipvs.ipvsadm_restore_text(ops))
                changes.add(f"{node.netns}: ipvs ({len(ops)} changes)")

            def addresses(st=st, netns=node.netns) -> None:
                from pyroute2 import IPRoute
                with IPRoute() as ipr:
                    idx = ipr.link_lookup(ifname=st.dummy_device)[0]
                    have = [f"{a.get('IFA_ADDRESS')}/{a['prefixlen']}" for a in ipr.get_addr(index=idx, family=2)]
                    add, remove = kipvs.address_diff(st, have)
                    for cidr in remove:
                        ip, plen = cidr.split("/")
                        ipr.addr("del", index=idx, address=ip, prefixlen=int(plen))
                    for cidr in add:
                        ip, plen = cidr.split("/")
                        ipr.addr("add", index=idx, address=ip, prefixlen=int(plen))
                    if add or remove:
                        changes.add(f"{netns}: {st.dummy_device} +{len(add)} -{len(remove)} addresses")
            nsfs.in_netns(node.netns, addresses)
        self._cache = None

    def drift(self, cluster: Cluster, node) -> list[str]:
        from ..render import kubeproxy_ipvs as kipvs
        st = kipvs.ipvs_state(cluster, node)
        out = []
        sets = kipvs.ipset_diff(st, self._run(node.netns, ["ipset", "save"], check=False))
        if sets.strip():
            out.append(f"ipsets differ ({len(sets.splitlines())} commands to apply)")
        live = kipvs.parse_ipvsadm_save(self._run(node.netns, ["ipvsadm", "-Sn"], check=False))
        ops = kipvs.ipvs_diff(st.virtual_servers, live)
        if ops:
            out.append(f"IPVS virtual servers differ ({len(ops)} changes to apply)")

        def addresses() -> list[str]:
            from pyroute2 import IPRoute
            with IPRoute() as ipr:
                idx = ipr.link_lookup(ifname=st.dummy_device)
                if not idx:
                    return [f"link {st.dummy_device} is missing"]
                have = [f"{a.get('IFA_ADDRESS')}/{a['prefixlen']}" for a in ipr.get_addr(index=idx[0], family=2)]
            add, remove = kipvs.address_diff(st, have)
            return [f"{st.dummy_device} addresses differ (+{len(add)} -{len(remove)})"] if add or remove else []
        return out + nsfs.in_netns(node.netns, addresses)

    def remove(self, cluster: Cluster, changes: Changes) -> None:
        from ..render import kubeproxy_ipvs as kipvs
        for node in cluster.nodes:
            if not os.path.exists(nsfs.netns_path(node.netns)):
                continue
            if os.path.exists("/proc/net/ip_vs") and shutil.which("ipvsadm"):
                if self._run(node.netns, ["ipvsadm", "-Sn"], check=False).strip():
                    self._run(node.netns, ["ipvsadm", "-C"])
                    changes.add(f"{node.netns}: removed the IPVS virtual servers")

            def drop_dummy(netns=node.netns) -> None:
                from pyroute2 import IPRoute
                with IPRoute() as ipr:
                    for idx in ipr.link_lookup(ifname=kipvs.DUMMY_DEVICE):
                        ipr.link("del", index=idx)
                        changes.add(f"{netns}: removed {kipvs.DUMMY_DEVICE}")
            nsfs.in_netns(node.netns, drop_dummy)
            if shutil.which("ipset"):
                text = self._run(node.netns, ["ipset", "save"], check=False)
                script = kipvs.ipset_destroy_text(text)
                if script.strip():
                    self._run(node.netns, ["ipset", "restore"], script)
                    changes.add(f"{node.netns}: removed kube-proxy's ipsets")


def node_identity(netns: str) -> tuple[int, int] | None:
    """(namespace cookie, nf_tables generation) of a node, or None if the kernel cannot tell. The kernel
    adds one to the generation on every nftables commit in the namespace (nft's, iptables-nft's, anyone's):
    a record of what netlab applied, kept with the identity read right after its own commit, is what the
    kernel holds as long as the identity has not moved."""
    def read() -> tuple[int, int] | None:
        cookie = rtnl.netns_cookie()
        return None if cookie is None else (cookie, rtnl.nft_generation())
    try:
        return nsfs.in_netns(netns, read)
    except OSError:
        return None


def read_record(path: str | None, ident: tuple[int, int] | None, version: int) -> Any:
    """The data of a sync record if it was written at exactly this identity, else None."""
    if path is None or ident is None:
        return None
    try:
        with open(path) as f:
            rec = json.load(f)
        if rec.get("version") != version or [rec.get("cookie"), rec.get("generation")] != list(ident):
            return None
        return rec["data"]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None  # missing, torn or foreign: the caller reads the kernel instead


def write_record(path: str | None, ident: tuple[int, int] | None, version: int,
                 data: Callable[[], Any] | str) -> None:
    """Keep `data()` (or `data`, already JSON) as what the kernel holds at `ident`; with no identity, drop
    any older record."""
    if path is None:
        return
    if ident is None:
        _unlink(path)
        return
    body = data if isinstance(data, str) else json.dumps(data())
    try:
        state.write_private(path, f'{{"version": {int(version)}, "cookie": {int(ident[0])}, '
                                  f'"generation": {int(ident[1])}, "data": {body}}}')
    except OSError:
        _unlink(path)  # a record is only a shortcut: without one, the next sync reads the kernel


def _tables_shaped(data: Any) -> bool:
    """Whether a record's data has parse_save's shape (table -> chain -> rule lines)."""
    return isinstance(data, dict) and all(
        isinstance(chains, dict) and all(isinstance(rules, list) and all(isinstance(r, str) for r in rules)
                                         for rules in chains.values())
        for chains in data.values())


def iptables_record_path(lab: str, node: str) -> str:
    return layout.iptables_record(lab, node)


IPTABLES_RECORD_VERSION = 1


def _commands(script: str) -> int:
    return sum(1 for line in script.splitlines() if line.strip())


def _generation_counted(iptables_cmd: str) -> bool:
    """Whether this iptables flavour commits through nf_tables (so its commits move node_identity)."""
    return "-nft-" in iptables_cmd


def _iptables_current(node, save_cmd: str, record: str | None,
                      fresh: bool = False) -> tuple[tuple[int, int] | None, dict, bool]:
    """(identity, the node's tables in parse_save's shape, whether they came from the record): the record
    while it can be trusted (nft flavour, nothing committed since), else iptables-save. The identity is
    read before the tables, so a commit in between shows as a moved identity. `fresh`: a namespace this
    run created, known to hold no rules."""
    ident = node_identity(node.netns) if _generation_counted(save_cmd) else None
    if fresh:
        return ident, {}, False
    data = read_record(record, ident, IPTABLES_RECORD_VERSION)
    if _tables_shaped(data):
        return ident, data, True
    return ident, iptables.parse_save(iptables.save(nsfs.netns_path(node.netns), save_cmd)), False


def rules_drift(cluster: Cluster, node, save_cmd: str) -> list[str]:
    """What a sync would change in `node`'s rules (iptables, and the proxy mode's own objects), read only.
    The tables come from the sync record where a sync would trust it (see sync_iptables), else the kernel."""
    _, current, _ = _iptables_current(node, save_cmd, iptables_record_path(cluster.name, node.name))
    _, what = iptables.plan_restore(node_rules(cluster, node), current)
    return [f"iptables {w}" for w in what] + backend(cluster.networking.proxy_mode).drift(cluster, node)


def per_node(fn: Callable[[Any], T], nodes: list) -> list[T]:
    """fn(node) for every node, in parallel threads (for work that waits on a process per node)."""
    with ThreadPoolExecutor(max_workers=min(8, len(nodes) or 1)) as pool:
        return list(pool.map(fn, nodes))


def _unlink(path: str | None) -> None:
    if path is None:
        return
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


PROXIES: dict[str, ProxyBackend] = {"iptables": IptablesProxy(), "nftables": NftablesProxy(), "ipvs": IpvsProxy()}


def backend(mode: str) -> ProxyBackend:
    b = PROXIES.get(mode)
    if b is None:
        raise UsageError(f"kube-proxy mode {mode!r} is not available in this version of netlab; "
                         f"available: {', '.join(sorted(PROXIES))}")
    return b


def sync(cluster: Cluster, restore_cmd: str, save_cmd: str, changes: Changes, force: bool = False,
         previous_mode: str | None = None, fresh: Collection[str] = ()) -> None:
    """Program the cluster's proxy mode on every node and remove what the previous mode left behind.

    The iptables sync comes between `prepare` and `sync`: it needs the ipsets IPVS mode refers to, and
    it drops the old mode's rules before that mode's ipsets are destroyed. `fresh`: the nodes whose
    namespaces this run created, so they hold no rules yet: nothing is read back from them, and no other
    mode's leftovers are looked for in them.
    """
    mode = backend(cluster.networking.proxy_mode)
    mode.prepare(cluster, changes)
    sync_iptables(cluster, restore_cmd, save_cmd, changes, force, fresh)
    mode.sync(cluster, changes, force)
    older = [n for n in cluster.nodes if n.name not in fresh]
    if not older:
        return
    view = dataclasses.replace(cluster, nodes=older)
    for other in PROXIES.values():
        # nftables' table is cheap to look for, so it is always checked; IPVS state only after IPVS mode
        if other is not mode and (other.name == "nftables" or other.name == previous_mode or force):
            other.remove(view, changes)


@_gc_paused
def sync_iptables(cluster: Cluster, restore_cmd: str, save_cmd: str, changes: Changes, force: bool = False,
                  fresh: Collection[str] = (), record: Callable[[Any], str | None] | None = None) -> int:
    """One iptables-save and (if anything differs) one iptables-restore --noflush per node, nodes in parallel.
    Returns the number of lines sent to iptables-restore, all nodes together (0: nothing differed).

    Nodes in `fresh` (namespaces created by this run) are known to be empty: not read back. With the nft
    flavour, a node's tables as of netlab's last sync are kept in a record (`record(node)` is its path;
    default: the lab's run directory) with the node's identity (`node_identity`); while that identity
    has not moved, nothing has changed the node's tables since, and the record stands in for
    iptables-save. iptables-legacy has no such counter: its tables are always read back."""
    if record is None:
        record = lambda node: iptables_record_path(cluster.name, node.name)  # noqa: E731

    def read(node) -> tuple[tuple[int, int] | None, dict, bool]:
        # force: neither the record nor the knowledge that a new namespace is empty is used
        return _iptables_current(node, save_cmd, None if force else record(node),
                                 fresh=node.name in fresh and not force)

    def commits(payload: str) -> int:
        return sum(1 for line in payload.splitlines() if line == "COMMIT")

    pending, sent = [], 0
    for node, (ident, current, trusted) in zip(cluster.nodes, per_node(read, cluster.nodes)):
        desired = node_rules(cluster, node)
        payload, what = iptables.plan_restore(desired, current, force=force)
        if payload:
            proc = iptables.restore_async(nsfs.netns_path(node.netns), restore_cmd, payload)
            pending.append((node, proc, payload, what, ident, current, desired, trusted))
        elif not trusted:
            write_record(record(node), ident, IPTABLES_RECORD_VERSION, lambda current=current: current)
    for node, proc, payload, what, ident, current, desired, trusted in pending:
        # the next record, made while the restore runs (only kept if the restore succeeds)
        encoded = json.dumps(iptables.after_restore(desired, current)) if ident is not None else ""
        try:
            iptables.finish_restore(proc, payload, node.netns)
        except KernelError:
            _unlink(record(node))
            if not trusted:
                raise
            # the record did not match the kernel after all: read the tables back and try once more
            ident, current, _ = _iptables_current(node, save_cmd, None)
            payload, what = iptables.plan_restore(desired, current, force=force)
            if payload:
                iptables.finish_restore(iptables.restore_async(nsfs.netns_path(node.netns), restore_cmd, payload),
                                        payload, node.netns)
            encoded = json.dumps(iptables.after_restore(desired, current)) if ident is not None else ""
        sent += payload.count("\n")
        after = node_identity(node.netns) if ident is not None else None
        # trust the record next time only if our own commits (one per table) were the only ones in between
        expected = None if ident is None else (ident[0], ident[1] + commits(payload))
        write_record(record(node), after if after is not None and after == expected else None,
                     IPTABLES_RECORD_VERSION, encoded)
        for w in what:
            changes.add(f"{node.netns}: iptables {w}")
    return sent
