"""kube-proxy's IPVS mode: kube-ipvs0, kube-proxy's ipsets and the IPVS virtual servers (render.kubeproxy_ipvs)."""
from __future__ import annotations

import os
import shutil
import subprocess

from ...errors import KernelError, UsageError
from ...model.objects import Cluster
from ...render import kubeproxy_ipvs as kipvs
from .. import nsenter, nsfs
from ..changes import Changes
from .base import ProxyBackend


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

    def kernel_problem(self, cluster: Cluster) -> str | None:
        from .. import kernelcheck
        return kernelcheck.ipvs_refusal()

    def preflight(self, cluster: Cluster) -> None:
        problem = self.kernel_problem(cluster)
        if problem:
            raise UsageError(problem)
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
            r = subprocess.run(nsenter.command(nsfs.netns_path(netns), argv), input=stdin,
                               capture_output=True, text=True, timeout=600)
        except OSError as e:
            raise KernelError(f"{argv[0]} in network namespace {netns}: {e.strerror}") from None
        if check and r.returncode != 0:
            raise KernelError(f"{' '.join(argv[:2])} in network namespace {netns} failed: {r.stderr.strip()[:500]}")
        return r.stdout

    def _states(self, cluster: Cluster) -> dict:
        return {n.name: kipvs.ipvs_state(cluster, n) for n in cluster.nodes}

    def prepare(self, cluster: Cluster, changes: Changes) -> None:
        """Before the iptables sync: sysctls, kube-ipvs0 and the ipsets the rules refer to."""
        from ..fabric import write_sysctls
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

    def sync(self, cluster: Cluster, changes: Changes, force: bool = False, state=None, changed=None,
             full: bool = False) -> None:
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
