"""The DNS benchmark's peer: a dnsmasq configuration rendered from netlab's zone dict (pure; golden-tested
in tests/unit/test_dns_peer.py).

    render_dnsmasq(zone, directory, listen="127.0.0.1", port=53) -> {"dnsmasq.conf": text, "hosts": text}
    UNSERVED                                                     what dnsmasq cannot serve as netlab does

The two files go into `directory` (the configuration names DIRECTORY/hosts). dnsmasq serves the zone's
explicit records:
  A / AAAA  -> a hosts file (`addn-hosts`), one line per address: `ADDR PTR-TARGET OTHER-NAMES...`.
               dnsmasq answers A/AAAA of every name on the line, and the PTR of the address with the
               line's first name only, which is put first: the zone's PTR target. (host-record= lines do
               the same but give the PTR of every name, which ptr-record= lines would then have to
               override; and dnsmasq keeps ptr-record=, srv-host=, txt-record= and cname= in linked
               lists it walks for every query, while hosts-file names go into its hash table: with the
               18,000 records of the benchmark's zone that is the difference between ~2,000 and
               ~4,000 queries/s.)
  PTR       -> from the hosts file when the address's only PTR target is one of its names; otherwise
               ptr-record=NAME,TARGET (these win over the hosts file's)
  SRV       -> srv-host=NAME,TARGET,PORT,PRIORITY,WEIGHT
  CNAME     -> cname=NAME,TARGET          (asked as CNAME only; dnsmasq does not chase external targets)
  TXT       -> txt-record=NAME,"TEXT"
as the only answers for the cluster domain and the reverse zones of the zone's `reverse` subnets
(`local=/DOMAIN/`: a name there that it does not know is NXDOMAIN, a known name without the type asked
NODATA; never forwarded). Fair comparison: no upstream servers and no resolv.conf (`no-resolv`, no
`server=`: nothing is forwarded, so nothing can be cached from upstream), `cache-size=0` (dnsmasq's cache
holds forwarded answers; its configured records are served from their own tables either way), no
/etc/hosts, no query logging, one process (dnsmasq is single-threaded for UDP). TTL: `local-ttl` = the
zone's TTL.

Not expressible (`UNSERVED`; the benchmark's query mix leaves them out): the apex SOA and NS (dnsmasq
serves those only in its authoritative mode, which needs an interface of its own), the `pods insecure`
rule (any `a-b-c-d.NS.pod.DOMAIN`), ExternalName chasing (A of an ExternalName), names outside the
cluster domain (forwarded by netlab, REFUSED by this dnsmasq), the dns-version TXT's own TTL (dnsmasq gives
every local record `local-ttl`), SRV answers' additional section (not compared), and an address with A
records but no PTR in the zone (verified pod records that are not endpoints: dnsmasq answers their PTR,
netlab says NXDOMAIN; the benchmark's zone has none).
"""
from __future__ import annotations

import ipaddress
import os

UNSERVED = ("SOA and NS of the zone apex", "pods insecure (a-b-c-d.NS.pod.DOMAIN)",
            "ExternalName chasing (A of an ExternalName)", "names outside the cluster domain (forwarding)",
            "per-record TTLs (dns-version's 28800)", "SRV additional section",
            "NXDOMAIN for the PTR of an address with A records but no PTR (verified pods that are not endpoints)")


def reverse_zones(cidr: str) -> list[str]:
    """The reverse domains that cover a subnet, widened to whole octets (nibbles for IPv6):
    10.96.0.0/12 -> 96.10.in-addr.arpa ... 111.10.in-addr.arpa, 10.244.0.0/16 -> 244.10.in-addr.arpa."""
    net = ipaddress.ip_network(cidr, strict=False)
    step = 8 if net.version == 4 else 4
    labels = -(-net.prefixlen // step)                  # whole labels covering the prefix
    subnets = net.subnets(new_prefix=labels * step) if net.prefixlen < labels * step else [net]
    total = 4 if net.version == 4 else 32
    return [s.network_address.reverse_pointer.split(".", total - labels)[-1] for s in subnets]


def _txt(rdata: str) -> str:
    return rdata if rdata.startswith('"') else f'"{rdata}"'


def render_dnsmasq(zone: dict, directory: str, listen: str = "127.0.0.1", port: int = 53) -> dict[str, str]:
    """dnsmasq's configuration serving `zone` (netlab/dns/zone.py's format) on LISTEN:PORT, UDP and TCP:
    {"dnsmasq.conf": ..., "hosts": ...}, to be written into `directory`."""
    domain = zone["domain"]
    conf = [
        f"# dnsmasq peer of netlab's cluster DNS: the records of zone {domain} (rendered by benchmarks/dns_peer.py)",
        f"listen-address={listen}", f"port={port}", "bind-interfaces",
        "no-resolv", "no-hosts", "no-poll", "cache-size=0", f"local-ttl={zone['ttl']}",
        f"local=/{domain}/",
    ]
    for cidr in zone.get("reverse") or []:
        conf += [f"local=/{z}/" for z in reverse_zones(cidr)]
    conf.append(f"addn-hosts={os.path.join(directory, 'hosts')}")
    names: dict[str, list[str]] = {}       # address -> its names (A/AAAA owners), in zone order
    ptrs: dict[str, list[str]] = {}        # reverse name -> PTR targets
    skipped: dict[str, int] = {}
    for owner, _ttl, rtype, rdata in zone["records"]:
        name = owner.rstrip(".")
        if rtype in ("A", "AAAA"):
            names.setdefault(rdata, []).append(name)
        elif rtype == "PTR":
            ptrs.setdefault(name, []).append(rdata.rstrip("."))
        elif rtype == "SRV":
            prio, weight, port_, target = rdata.split()
            conf.append(f"srv-host={name},{target.rstrip('.')},{port_},{prio},{weight}")
        elif rtype == "CNAME":
            conf.append(f"cname={name},{rdata.rstrip('.')}")
        elif rtype == "TXT":
            conf.append(f"txt-record={name},{_txt(rdata)}")
        else:
            skipped[rtype] = skipped.get(rtype, 0) + 1
    hosts = []
    for addr in sorted(names, key=ipaddress.ip_address):
        mine = list(dict.fromkeys(names[addr]))
        targets = ptrs.get(ipaddress.ip_address(addr).reverse_pointer, [])
        if len(targets) == 1 and targets[0] in mine:
            mine.remove(targets[0])
            mine.insert(0, targets[0])
            del ptrs[ipaddress.ip_address(addr).reverse_pointer]
        hosts.append(f"{addr} {' '.join(mine)}")
    conf += [f"ptr-record={rev},{t}" for rev, targets in sorted(ptrs.items()) for t in targets]
    if skipped:
        conf.append("# not served by this peer: " + ", ".join(f"{n} {t}" for t, n in sorted(skipped.items())))
    return {"dnsmasq.conf": "\n".join(conf) + "\n", "hosts": "\n".join(hosts) + "\n"}
