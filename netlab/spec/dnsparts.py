"""A pod spec's name-resolution fields, checked as the API server checks them: dnsPolicy, dnsConfig
(nameservers: IPv4 addresses, at most 3; searches: DNS names, at most 32 and 2048 characters in all;
options: a name and an optional value), hostAliases (ip and hostnames), subdomain; dnsPolicy None
needs at least one dnsConfig nameserver. -> workload.resolvconf.PodDns (what the kubelet writes the
pod's /etc/resolv.conf and /etc/hosts from)."""
from __future__ import annotations

import ipaddress

from ..workload.resolvconf import (MAX_NAMESERVERS, MAX_SEARCH_CHARS, MAX_SEARCHES, POLICIES, DnsOption,
                                   PodDns)
from .fields import DNS1123_SUBDOMAIN, Fields, shown


def _ipv4(f: Fields, key: str, value: str, fix: str) -> str:
    try:
        ipaddress.IPv4Address(value)
    except ValueError:
        raise f.error(key, f"{shown(value)} is not an IPv4 address", fix) from None
    return value


def _dns_name(f: Fields, key: str, value: str, fix: str) -> None:
    name = value[:-1] if value.endswith(".") else value
    if not name or len(name) > 253 or not DNS1123_SUBDOMAIN.match(name):
        raise f.error(key, f"{shown(value)} is not a valid DNS name", fix)


def parse_pod_dns(spec: Fields, subdomain: str | None) -> PodDns:
    policy = spec.choice("dnsPolicy", POLICIES, "ClusterFirst")
    has_config = spec.has("dnsConfig")
    cfg = spec.map("dnsConfig")
    nameservers = cfg.strlist("nameservers")
    if len(nameservers) > MAX_NAMESERVERS:
        raise cfg.error("nameservers", f"lists {len(nameservers)} nameservers, more than {MAX_NAMESERVERS}",
                        f"keep at most {MAX_NAMESERVERS} (Kubernetes' limit)")
    for i, ns in enumerate(nameservers):
        _ipv4(cfg, f"nameservers[{i}]", ns, "give the nameserver's IPv4 address")
    searches = cfg.strlist("searches")
    if len(searches) > MAX_SEARCHES:
        raise cfg.error("searches", f"lists {len(searches)} search domains, more than {MAX_SEARCHES}",
                        f"keep at most {MAX_SEARCHES} (Kubernetes' limit)")
    for i, s in enumerate(searches):
        _dns_name(cfg, f"searches[{i}]", s, "use a DNS name: lower-case letters, digits, '-' and '.'")
    if len(" ".join(searches)) > MAX_SEARCH_CHARS:
        raise cfg.error("searches", f"is {len(' '.join(searches))} characters long in all, more than "
                        f"{MAX_SEARCH_CHARS}", "list fewer or shorter search domains")
    options = []
    for o in cfg.maps("options"):
        name = o.str("name")
        if not name:
            raise o.missing("name", "is required", "give the option's name, e.g. ndots")
        value = o.str("value")
        o.done()
        options.append(DnsOption(name, value))
    cfg.done()
    if policy == "None" and not nameservers:
        raise spec.error("dnsConfig.nameservers" if has_config else "dnsConfig",
                         "must list at least one nameserver when dnsPolicy is None",
                         "add dnsConfig.nameservers, or use another dnsPolicy")
    aliases = []
    for a in spec.maps("hostAliases"):
        ip = a.str("ip", required=True)
        _ipv4(a, "ip", ip, "give the IPv4 address the names resolve to")
        names = a.strlist("hostnames")
        for i, n in enumerate(names):
            _dns_name(a, f"hostnames[{i}]", n, "use a DNS name: lower-case letters, digits, '-' and '.'")
        a.done()
        aliases.append((ip, tuple(names)))
    links = spec.bool("enableServiceLinks", True)
    return PodDns(policy, tuple(nameservers), tuple(s.removesuffix(".") for s in searches), tuple(options),
                  has_config, tuple(aliases), subdomain, links)
