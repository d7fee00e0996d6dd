"""`netlab probe` reports `denied` where a node answers with ICMP admin-prohibited (what netlab's
NetworkPolicy rules send): for crafted TCP/UDP/ICMP probes and for the HTTP / UDP exchanges over real
sockets, while other targets stay reachable; a REJECT with icmp-host-unreachable (which a socket sees as
the same EHOSTUNREACH) is not reported as denied.

The REJECT is put in by hand at the top of the destination node's filter FORWARD chain, in the lab's own
iptables flavour, with the lab's control loop off (no sync to undo it meanwhile); the test deletes it, and
the lab fixture removes the whole lab whatever happens."""
from __future__ import annotations

import json

from netlab.dataplane import iptables as ipt

from ..builders import cluster, container, pod, text, workers
from .conftest import netlab_cli

PORTS = [8080, {"containerPort": 8081, "protocol": "UDP"}]
SCENARIO = text(
    cluster("deny", workers("n1", "n2")),
    pod("client", containers=[container("c", PORTS)], nodeName="n1"),
    pod("srv", containers=[container("c", PORTS)], nodeName="n2"),
    pod("other", containers=[container("c", PORTS)], nodeName="n2"))


def probe(lab, *targets: str) -> tuple[int, dict[str, dict]]:
    r = netlab_cli("probe", "--lab", lab.name, "--from", "pod/client", "-o", "json", *targets)
    assert r.returncode in (0, 1), r.stderr
    return r.returncode, {c["target"]: c for c in json.loads(r.stdout)["checks"]}


def outcomes(checks: dict[str, dict], prefix: str) -> dict[str, tuple[str, tuple[str, ...]]]:
    """target -> (check outcome, the kinds of its probes), for the targets starting with prefix."""
    return {t: (c["outcome"], tuple(p["kind"] for p in c["probes"])) for t, c in checks.items() if t.startswith(prefix)}


def test_admin_prohibited_is_denied_and_host_unreachable_is_not(lab):
    lab.control_loop = False
    lab.up(SCENARIO)
    client, srv = lab.pod("client"), lab.pod("srv")
    flavour = ipt.flavour_commands(lab.cluster.networking.iptables_flavour)[0]
    tool = f"iptables-{flavour}"
    targets = ["pod/srv", "pod/other", f"{srv.ip}:8080", f"{srv.ip}:8081/udp"]

    code, before = probe(lab, *targets)
    assert code == 0, before
    assert all(c["outcome"] == "reachable" for c in before.values()), before

    def rule(reject_with: str) -> list[str]:
        return ["FORWARD", "-s", str(client.ip), "-d", str(srv.ip), "-j", "REJECT", "--reject-with", reject_with]

    inserted = None
    try:
        for reject_with, want in (("icmp-admin-prohibited", "denied"), ("icmp-host-unreachable", "unreachable")):
            r = lab.node_exec("n2", [tool, "-w", "5", "-I", *rule(reject_with)[:1], "1", *rule(reject_with)[1:]])
            assert r.returncode == 0, r.stderr
            inserted = reject_with
            code, got = probe(lab, *targets)
            assert code == 1   # nothing in the model expects it: every check on srv fails
            srv_checks = outcomes(got, "pod/srv") | outcomes(got, str(srv.ip))
            assert srv_checks == {
                "pod/srv": (want, ("icmp",)),
                "pod/srv:8080/tcp": (want, ("http",)),         # connect() over a real socket
                "pod/srv:8081/udp": (want, ("udp-app",)),      # a connected UDP socket
                f"{srv.ip}:8080": (want, ("tcp",)),            # crafted SYN
                f"{srv.ip}:8081/udp": (want, ("udp",)),        # crafted datagram
            }, got
            name = reject_with.removeprefix("icmp-")
            for t in srv_checks:
                assert not got[t]["ok"] and f"expected reachable, got {want}" in got[t]["why"], got[t]
                assert all(f"ICMP {name} from " in p["detail"] for p in got[t]["probes"]), got[t]
                assert got[t]["denied_by"] == []    # no policy of the model denies it
            # the other pod on the same node is untouched
            assert all(c["outcome"] == "reachable" and c["ok"] for t, c in got.items()
                       if t.startswith("pod/other")), got
            r = lab.node_exec("n2", [tool, "-w", "5", "-D", *rule(reject_with)])
            assert r.returncode == 0, r.stderr
            inserted = None
        code, after = probe(lab, *targets)
        assert code == 0 and all(c["outcome"] == "reachable" for c in after.values()), after
    finally:
        if inserted:
            lab.node_exec("n2", [tool, "-w", "5", "-D", *rule(inserted)])
