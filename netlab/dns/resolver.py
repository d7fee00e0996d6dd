"""The cluster DNS server's answers: a query's wire bytes in, the reply's wire bytes out (no sockets).

`Index(zone)` loads a zone dict (netlab.dns.zone's format) into rrsets keyed by (name, type), with
the set of names that exist (owners, their ancestors inside the domain, each namespace's
`<ns>.svc`/`<ns>.pod`); `Engine(index).respond(data, tcp)` gives the reply:

- inside the domain: the zone's rrset for (name, type) with the question's name (its case echoed),
  SRV/NS with their targets' addresses in the additional section; an ExternalName's CNAME chased
  (inside the domain from the zone; outside through the upstreams, see `Chase`); the pods `insecure`
  rule; an existing name without that type: NODATA (NOERROR, SOA in authority); else NXDOMAIN;
  AXFR/IXFR: REFUSED (as CoreDNS);
- reverse names (in-addr.arpa/ip6.arpa): a PTR owner's rrset, NODATA for its other types and for its
  ancestors, NXDOMAIN for an address inside `reverse`, else forwarded;
- everything else: forwarded (`Forward`), which the server does with netlab.dns.forward.

Malformed input: shorter than a header or a response (QR set): dropped (None); unparseable, no or
several questions: FORMERR; an opcode other than QUERY: NOTIMP; an EDNS version above 0: BADVERS.
EDNS0: an OPT in the query gets one in the reply (payload 1232); a UDP reply larger than the
client's size (512 without EDNS) is truncated with TC set.

Where this deliberately differs from CoreDNS's kubernetes plugin (its master branch, read for facts):
- empty non-terminals are NODATA, as RFC 8020 wants: `_tcp.<svc>.<ns>.svc`, `dns.<domain>`, and a
  PTR owner asked for another type (CoreDNS: NXDOMAIN for all three); a name that does not exist is
  NXDOMAIN for SOA too (CoreDNS: NOERROR for any non-apex SOA query);
- an ExternalName answers every type with its CNAME chased (CoreDNS: A/AAAA/CNAME so, but SRV gets
  a port-0 SRV to the external name and TXT NODATA);
- not served: `<port>.<proto>.<svc>...` without the underscores, and labels in front of a pod name
  (`x.a-b-c-d.<ns>.pod`), which CoreDNS's parser also accepts.
"""
from __future__ import annotations

import ipaddress
import struct

import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.reversename
import dns.rrset

IN = dns.rdataclass.IN
A, AAAA, CNAME, SRV, NS, SOA, PTR = (dns.rdatatype.A, dns.rdatatype.AAAA, dns.rdatatype.CNAME,
                                     dns.rdatatype.SRV, dns.rdatatype.NS, dns.rdatatype.SOA,
                                     dns.rdatatype.PTR)
OUR_PAYLOAD = 1232
MAX_CHASE = 8
REVERSE_ROOTS = (dns.name.from_text("in-addr.arpa."), dns.name.from_text("ip6.arpa."))


class Index:
    """A zone dict loaded for answering (immutable once built; the server swaps whole indexes)."""

    def __init__(self, zone: dict):
        if zone.get("version") != 1:
            raise ValueError(f"zone version {zone.get('version')!r} is not 1")
        self.domain = dns.name.from_text(zone["domain"])
        self.ttl = int(zone["ttl"])
        self.pods = zone.get("pods", "insecure")
        self.upstreams = tuple(zone.get("upstreams") or ())
        self.reverse = tuple(ipaddress.ip_network(c, strict=False) for c in zone.get("reverse") or ())
        self.namespaces = frozenset(zone.get("namespaces") or ())
        grouped: dict[tuple[dns.name.Name, int], dns.rrset.RRset] = {}
        for owner, ttl, rtype, text in zone.get("records") or ():
            name = dns.name.from_text(owner)
            rdtype = dns.rdatatype.from_text(rtype)
            rr = grouped.get((name, rdtype))
            if rr is None:
                rr = grouped[(name, rdtype)] = dns.rrset.RRset(name, IN, rdtype)
            rr.add(dns.rdata.from_text(IN, rdtype, text), int(ttl))
        self.rrsets = grouped
        self.types: dict[dns.name.Name, set[int]] = {}
        self.exists: set[dns.name.Name] = {self.domain}
        for name, rdtype in grouped:
            self.types.setdefault(name, set()).add(rdtype)
            top = self.domain if name.is_subdomain(self.domain) else None
            if top is None:
                top = next((r for r in REVERSE_ROOTS if name.is_subdomain(r)), None)
            n = name
            while top is not None and n != top and n not in self.exists:
                self.exists.add(n)
                n = n.parent()
        for kind in ("svc", "pod"):
            self.exists.add(dns.name.Name((kind,)) + self.domain)
        for ns in self.namespaces:
            self.exists.add(dns.name.Name((ns, "svc")) + self.domain)
            if self.pods != "disabled":
                self.exists.add(dns.name.Name((ns, "pod")) + self.domain)
        self.soa = grouped.get((self.domain, SOA))
        if self.soa is None:
            self.soa = dns.rrset.from_text(self.domain, min(self.ttl, 300), IN, SOA,
                                           f"ns.dns.{self.domain} hostmaster.{self.domain} 1 7200 1800 86400 {self.ttl}")

    def reverse_soa(self, qname: dns.name.Name) -> dns.rrset.RRset:
        """The SOA of the reverse zone a negative reverse answer belongs to (the CIDR's octet boundary)."""
        ip = _reverse_ip(qname)
        for net in self.reverse:
            if ip is not None and ip in net:
                step = 8 if net.version == 4 else 4
                keep = (net.prefixlen // step) if net.prefixlen % step == 0 else net.prefixlen // step
                labels = qname.labels[-(keep + 3):] if keep else qname.labels[-3:]
                zone = dns.name.Name(labels)
                return dns.rrset.from_text(zone, self.soa.ttl, IN, SOA, self.soa[0].to_text())
        return self.soa

    def in_reverse(self, qname: dns.name.Name) -> bool:
        ip = _reverse_ip(qname)
        return ip is not None and any(ip in net for net in self.reverse)


def _reverse_ip(qname: dns.name.Name):
    try:
        return ipaddress.ip_address(dns.reversename.to_address(qname))
    except Exception:
        return None


class Forward:
    """The query goes to an upstream as it is (the server relays the upstream's reply)."""
    __slots__ = ("query", "tcp", "limit")

    def __init__(self, query: dns.message.Message, tcp: bool, limit: int):
        self.query, self.tcp, self.limit = query, tcp, limit


class Chase:
    """An ExternalName CNAME whose target is outside the domain: the server asks the upstreams for
    (target, rdtype) and answers the CNAME + their answer (CoreDNS: nothing when that fails)."""
    __slots__ = ("response", "target", "rdtype", "tcp", "limit", "soa")

    def __init__(self, response, target, rdtype, tcp, limit, soa):
        self.response, self.target, self.rdtype, self.tcp, self.limit = response, target, rdtype, tcp, limit
        self.soa = soa

    def finish(self, answers: list[dns.rrset.RRset] | None) -> bytes:
        r = self.response
        if answers:
            r.answer.extend(answers)
        else:
            r.answer.clear()
            r.authority.append(self.soa)
        return render(r, self.tcp, self.limit)


def header_error(data: bytes, rcode: int) -> bytes | None:
    """A bare reply (no sections) to a packet that did not parse; None when it is not even a query."""
    if len(data) < 12:
        return None
    qid, flags = struct.unpack("!HH", data[:4])
    if flags & 0x8000:
        return None
    flags = 0x8000 | (flags & 0x7900) | rcode   # QR, the opcode and RD copied
    return struct.pack("!HHHHHH", qid, flags, 0, 0, 0, 0)


def render(r: dns.message.Message, tcp: bool, limit: int) -> bytes:
    if tcp:
        return r.to_wire(max_size=65535, prefer_truncation=True)
    return r.to_wire(max_size=limit, prefer_truncation=True)


class Engine:
    def __init__(self, index: Index):
        self.ix = index

    # -- wire level --------------------------------------------------------------------------
    def respond(self, data: bytes, tcp: bool):
        """(reply bytes | None | Forward | Chase, cacheable)."""
        if len(data) < 12 or data[2] & 0x80:
            return None, False
        try:
            q = dns.message.from_wire(data)
        except dns.message.ShortHeader:
            return None, False
        except Exception:
            return header_error(data, dns.rcode.FORMERR), False
        try:
            return self._respond(q, tcp)
        except Exception:
            return header_error(data, dns.rcode.SERVFAIL), False

    def _respond(self, q: dns.message.Message, tcp: bool):
        limit = max(512, min(q.payload, 65535)) if q.edns >= 0 else 512
        r = dns.message.make_response(q, recursion_available=True, our_payload=OUR_PAYLOAD)
        if q.opcode() != dns.opcode.QUERY:
            r.set_rcode(dns.rcode.NOTIMP)
            return render(r, tcp, limit), True
        if q.edns > 0:
            r.set_rcode(dns.rcode.BADVERS)
            return render(r, tcp, limit), True
        if len(q.question) != 1:
            r.set_rcode(dns.rcode.FORMERR)
            return render(r, tcp, limit), True
        qs = q.question[0]
        qname, rdtype = qs.name, qs.rdtype
        if qs.rdclass != IN:
            r.set_rcode(dns.rcode.REFUSED)
            return render(r, tcp, limit), True
        ix = self.ix
        if qname.is_subdomain(ix.domain):
            r.flags |= dns.flags.AA
            if rdtype in (dns.rdatatype.AXFR, dns.rdatatype.IXFR):
                r.set_rcode(dns.rcode.REFUSED)
                return render(r, tcp, limit), True
            chase = self._lookup(r, qname, rdtype, 0)
            if chase is not None:
                return Chase(r, chase, rdtype, tcp, limit, ix.soa), False
            return render(r, tcp, limit), True
        if any(qname.is_subdomain(root) for root in REVERSE_ROOTS):
            rr = ix.rrsets.get((qname, rdtype))
            if rr is not None:
                r.flags |= dns.flags.AA
                r.answer.append(_renamed(rr, qname))
                return render(r, tcp, limit), True
            if qname in ix.exists or ix.in_reverse(qname):
                r.flags |= dns.flags.AA
                if qname not in ix.exists:
                    r.set_rcode(dns.rcode.NXDOMAIN)
                r.authority.append(ix.reverse_soa(qname))
                return render(r, tcp, limit), True
        if not ix.upstreams:
            r.set_rcode(dns.rcode.SERVFAIL)
            return render(r, tcp, limit), False
        return Forward(q, tcp, limit), False

    # -- names inside the domain ---------------------------------------------------------------
    def _lookup(self, r: dns.message.Message, qname: dns.name.Name, rdtype: int, depth: int):
        """Fill r for (qname, rdtype) inside the domain; returns a CNAME target outside it to chase."""
        ix = self.ix
        rr = ix.rrsets.get((qname, rdtype))
        if rr is not None:
            r.answer.append(_renamed(rr, qname))
            if rdtype == SRV or rdtype == NS:
                seen = set()
                for rd in rr:
                    t = rd.target
                    if t in seen:
                        continue
                    seen.add(t)
                    for at in (A, AAAA):
                        add = ix.rrsets.get((t, at))
                        if add is not None:
                            r.additional.append(add)
            return None
        cname = ix.rrsets.get((qname, CNAME))
        if cname is not None:
            target = cname[0].target
            answer = _renamed(cname, qname)
            if not target.is_subdomain(ix.domain):
                r.answer.append(answer)
                return target
            sub = dns.message.Message()
            chase = self._lookup(sub, target, rdtype, depth + 1) if depth < MAX_CHASE else None
            if chase is not None or sub.answer:   # CoreDNS keeps the CNAME only when the target answered
                r.answer.append(answer)
                r.answer.extend(sub.answer)
                r.additional.extend(sub.additional)
            elif depth == 0:
                r.authority.append(ix.soa)
            return chase
        pod = self._pod(qname)
        if pod is not None:
            if pod is False:
                r.set_rcode(dns.rcode.NXDOMAIN)
            elif pod.version == 4 and rdtype == A:
                r.answer.append(dns.rrset.from_text(qname, ix.ttl, IN, A, str(pod)))
                return None
            elif pod.version == 6 and rdtype == AAAA:
                r.answer.append(dns.rrset.from_text(qname, ix.ttl, IN, AAAA, str(pod)))
                return None
        elif qname not in ix.exists:
            r.set_rcode(dns.rcode.NXDOMAIN)
        if depth == 0:
            r.authority.append(ix.soa)
        return None

    def _pod(self, qname: dns.name.Name):
        """The pods insecure rule: None (not a pod name), False (NXDOMAIN) or the address."""
        ix = self.ix
        if ix.pods != "insecure":
            return None
        rel = qname.relativize(ix.domain).labels
        if len(rel) != 3 or rel[2].lower() != b"pod":
            return None
        ns = rel[1].lower().decode("ascii", "replace")
        if ns not in ix.namespaces:
            return False
        label = rel[0].lower().decode("ascii", "replace")
        text = label.replace("-", ".") if label.count("-") == 3 and "--" not in label else label.replace("-", ":")
        try:
            return ipaddress.ip_address(text)
        except ValueError:
            return False


def _renamed(rr: dns.rrset.RRset, name: dns.name.Name) -> dns.rrset.RRset:
    """rr under the question's spelling of the name (answers echo the question's case)."""
    if name.labels == rr.name.labels:
        return rr
    out = dns.rrset.RRset(name, rr.rdclass, rr.rdtype)
    out.update(rr)
    return out
