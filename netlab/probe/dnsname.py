"""`netlab probe dns/NAME`: resolve NAME from a pod as its resolver would, and say what came back.

The pure part (`search_path`, `candidates`) is the kubelet's and glibc's rule for a ClusterFirst pod:
search `<ns>.svc.<domain> svc.<domain> <domain>`, `ndots:5` (a name with fewer than 5 dots is tried
with each search domain first, then as it is; one with 5 or more, or a trailing dot, as it is first).
The query itself runs inside the pod's network namespace (`python -m netlab.probe.dnsname`, started
by netlab/cli/probe.py with `ip netns exec`): real A queries over UDP to the cluster DNS's ClusterIP
(kube-dns, through kube-proxy's rules), with dnspython; it prints one JSON line:
{"name": the name that answered (or the last one tried), "rcode", "answers": [addresses or CNAME
targets], "ms": the whole lookup's latency, "tried": the names asked}.
"""
from __future__ import annotations

import json
import sys
import time

NDOTS = 5


def search_path(namespace: str, domain: str) -> list[str]:
    """A ClusterFirst pod's search domains (the kubelet's)."""
    return [f"{namespace}.svc.{domain}", f"svc.{domain}", domain]


def candidates(name: str, search: list[str], ndots: int = NDOTS) -> list[str]:
    """The absolute names a stub resolver asks for `name`, in order (glibc's rule)."""
    if name.endswith("."):
        return [name]
    listed = [f"{name}.{d}." for d in search]
    return [name + "."] + listed if name.count(".") >= ndots else listed + [name + "."]


def lookup(server: str, names: list[str], timeout: float) -> dict:
    """Ask `server` for the A records of each name in turn until one has an answer."""
    import dns.exception
    import dns.message
    import dns.query
    import dns.rcode
    import dns.rdatatype
    t0 = time.monotonic()
    tried, rcode, answers, name = [], "NONE", [], names[-1] if names else ""
    for n in names:
        tried.append(n)
        q = dns.message.make_query(n, dns.rdatatype.A)
        try:
            r = dns.query.udp(q, server, timeout=timeout)
        except dns.exception.Timeout:
            rcode, name = "TIMEOUT", n
            break
        except OSError as e:   # ICMP port unreachable: nothing serves DNS there
            rcode, name = f"ERROR ({e.strerror or e})", n
            break
        rcode, name = dns.rcode.to_text(r.rcode()), n
        found = [rd.to_text() for rrset in r.answer for rd in rrset]
        if rcode == "NOERROR" and found:
            answers = found
            break
        # NXDOMAIN, NODATA, SERVFAIL, REFUSED: glibc goes on with the next name of the search list
    return {"name": name, "rcode": rcode, "answers": answers, "ms": round((time.monotonic() - t0) * 1000, 2),
            "tried": tried}


def main(argv: list[str]) -> int:
    """python -m netlab.probe.dnsname SERVER TIMEOUT NAME..."""
    server, timeout, names = argv[0], float(argv[1]), argv[2:]
    print(json.dumps(lookup(server, names, timeout)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
