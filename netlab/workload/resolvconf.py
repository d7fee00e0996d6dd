"""The files the kubelet writes for a pod's name resolution, /etc/resolv.conf and /etc/hosts: pure.

resolv.conf (the kubelet's pkg/kubelet/network/dns rules, the file as the container runtime writes it:
`search` line, `nameserver` lines, `options` line):
- ClusterFirst (the default): the cluster DNS's ClusterIP as the only nameserver; search
  `<ns>.svc.<domain> svc.<domain> <domain>` then the host's search domains (duplicates dropped);
  `options ndots:5`. On a hostNetwork pod ClusterFirst falls back to Default, as the kubelet does.
- ClusterFirstWithHostNet: ClusterFirst, also for a hostNetwork pod.
- Default: the node's resolv.conf (netlab's nodes share the host's): its nameservers, its last `search`
  line (trailing dots dropped), its last `options` line.
- None: nothing but the pod's dnsConfig.
Then dnsConfig is merged in: its nameservers appended, its searches appended (duplicates dropped, the
first kept), its options merged by name (the pod's value wins; a name without value stays bare).
When written, the kubelet's limits apply: 3 nameservers, 32 search domains, a search domain longer than
253 characters dropped, and the search line cut from the end to 2048 characters.

hosts: "# Kubernetes-managed hosts file." with the localhost lines, the pod's IP with its FQDN
`hostname.subdomain.ns.svc.<domain>` (when it has a subdomain) and its hostname, then
"# Entries added by HostAliases." with one line per alias. A hostNetwork pod gets the node's own hosts
file, with the HostAliases section appended when it has aliases.
"""
from __future__ import annotations

from dataclasses import dataclass, field

POLICIES = ("ClusterFirst", "ClusterFirstWithHostNet", "Default", "None")
MAX_NAMESERVERS = 3
MAX_SEARCHES = 32
MAX_SEARCH_CHARS = 2048
MAX_NAME = 253
DEFAULT_OPTIONS = ("ndots:5",)

MANAGED_HEADER = "# Kubernetes-managed hosts file."
ALIASES_HEADER = "# Entries added by HostAliases."
LOCALHOST = ("127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback", "fe00::0\tip6-localnet",
             "fe00::0\tip6-mcastprefix", "fe00::1\tip6-allnodes", "fe00::2\tip6-allrouters")


@dataclass(frozen=True)
class DnsOption:
    name: str
    value: str | None = None


@dataclass(frozen=True)
class PodDns:
    """What of a pod's spec decides its resolv.conf and hosts files (spec.dnsPolicy, dnsConfig,
    hostAliases, subdomain)."""
    policy: str = "ClusterFirst"
    nameservers: tuple[str, ...] = ()
    searches: tuple[str, ...] = ()
    options: tuple[DnsOption, ...] = ()
    has_config: bool = False                           # dnsConfig given (even empty)
    host_aliases: tuple[tuple[str, tuple[str, ...]], ...] = ()   # (ip, hostnames)
    subdomain: str | None = None
    service_links: bool = True                         # spec.enableServiceLinks (the service variables)


@dataclass
class ResolvConf:
    nameservers: list[str] = field(default_factory=list)
    searches: list[str] = field(default_factory=list)
    options: list[str] = field(default_factory=list)


def parse_resolv_conf(text: str) -> ResolvConf:
    """nameserver lines accumulate; the last search line and the last options line win (the kubelet's
    parser); comments and other lines are skipped."""
    out = ResolvConf()
    for line in text.splitlines():
        fields = line.strip().split()
        if not fields or fields[0].startswith("#"):
            continue
        if fields[0] == "nameserver" and len(fields) >= 2:
            out.nameservers.append(fields[1])
        elif fields[0] == "search":
            out.searches = [s.removesuffix(".") for s in fields[1:]]
        elif fields[0] == "options":
            out.options = fields[1:]
    return out


def _unique(items) -> list[str]:
    seen: set[str] = set()
    out = []
    for i in items:
        if i not in seen:
            seen.add(i)
            out.append(i)
    return out


def effective_policy(policy: str, host_network: bool) -> str:
    """'cluster', 'host' or 'none': how the kubelet treats the pod's dnsPolicy."""
    if policy == "None":
        return "none"
    if policy == "ClusterFirstWithHostNet" or (policy == "ClusterFirst" and not host_network):
        return "cluster"
    return "host"


def merge_options(existing: list[str], extra: tuple[DnsOption, ...]) -> list[str]:
    """Options by name, the pod's dnsConfig winning; in first-seen order (the kubelet's map has none)."""
    merged: dict[str, str] = {}
    for op in existing:
        name, _, value = op.partition(":")
        merged[name] = value
    for op in extra:
        merged[op.name] = op.value or ""
    return [f"{k}:{v}" if v else k for k, v in merged.items()]


def fit_limits(conf: ResolvConf) -> ResolvConf:
    """The kubelet's limits when it writes the file (see the module's docstring)."""
    searches = [s for s in conf.searches[:MAX_SEARCHES] if len(s) <= MAX_NAME]
    while searches and len(" ".join(searches)) > MAX_SEARCH_CHARS:
        searches.pop()
    return ResolvConf(conf.nameservers[:MAX_NAMESERVERS], searches, list(conf.options))


def pod_resolv_conf(dns: PodDns, namespace: str, host_network: bool, domain: str, cluster_dns: str,
                    host: ResolvConf) -> ResolvConf:
    kind = effective_policy(dns.policy, host_network)
    if kind == "none":
        conf = ResolvConf()
    elif kind == "cluster":
        clusters = [f"{namespace}.svc.{domain}", f"svc.{domain}", domain] if domain else []
        conf = ResolvConf([cluster_dns], _unique(clusters + host.searches), list(DEFAULT_OPTIONS))
    else:
        conf = ResolvConf(list(host.nameservers), list(host.searches), list(host.options))
    if dns.has_config:
        conf = ResolvConf(_unique(conf.nameservers + list(dns.nameservers)),
                          _unique(conf.searches + list(dns.searches)), merge_options(conf.options, dns.options))
    return fit_limits(conf)


def render_resolv_conf(conf: ResolvConf) -> str:
    lines = []
    if conf.searches:
        lines.append("search " + " ".join(conf.searches))
    lines += [f"nameserver {ns}" for ns in conf.nameservers]
    if conf.options:
        lines.append("options " + " ".join(conf.options))
    return "".join(line + "\n" for line in lines)


def _aliases(dns: PodDns) -> str:
    if not dns.host_aliases:
        return ""
    return "\n" + ALIASES_HEADER + "\n" + "".join(f"{ip}\t" + "\t".join(names) + "\n"
                                                   for ip, names in dns.host_aliases)


def render_hosts(dns: PodDns, namespace: str, hostname: str, ip: str, domain: str, host_network: bool,
                 host_hosts: str) -> str:
    """The pod's /etc/hosts (see the module's docstring); `host_hosts` is the node's (the host's) file."""
    if host_network:
        base = host_hosts if not host_hosts or host_hosts.endswith("\n") else host_hosts + "\n"
        return base + _aliases(dns)
    if dns.subdomain and domain:
        own = f"{ip}\t{hostname}.{dns.subdomain}.{namespace}.svc.{domain}\t{hostname}"
    else:
        own = f"{ip}\t{hostname}"
    return "\n".join((MANAGED_HEADER, *LOCALHOST, own)) + "\n" + _aliases(dns)


def pod_files(dns: PodDns, namespace: str, hostname: str, ip: str, host_network: bool, domain: str,
              cluster_dns: str, host_resolv: str, host_hosts: str) -> dict[str, str]:
    """{'resolv.conf': text, 'hosts': text} of a pod."""
    conf = pod_resolv_conf(dns, namespace, host_network, domain, cluster_dns, parse_resolv_conf(host_resolv))
    return {"resolv.conf": render_resolv_conf(conf),
            "hosts": render_hosts(dns, namespace, hostname, ip, domain, host_network, host_hosts)}
