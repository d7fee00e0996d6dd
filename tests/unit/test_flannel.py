"""flannel's etcd layout: keys and values as flanneld writes them (its documentation's example)."""
import ipaddress
import json

import pytest

from netlab import flannel
from netlab.flannel import Lease, config_value, lab_prefix, node_lease, parse_lease, parse_subnet_key, subnet_key


def test_keys_follow_flannels_layout():
    assert flannel.config_key() == "/coreos.com/network/config"
    assert subnet_key("10.244.1.0/24") == "/coreos.com/network/subnets/10.244.1.0-24"
    assert subnet_key("10.5.52.0/24", "/vxlan/network/") == "/vxlan/network/subnets/10.5.52.0-24"
    assert parse_subnet_key("/coreos.com/network/subnets/10.244.16.0-20") == ipaddress.ip_network("10.244.16.0/20")
    with pytest.raises(ValueError, match="not a flannel subnet key"):
        parse_subnet_key("/coreos.com/network/config")
    assert lab_prefix("/netlab/demo/") == "/netlab/demo/coreos.com/network"


def test_lease_value_is_flannels_json():
    # the value in flannel's Documentation/reservations.md, byte for byte
    doc = ('{"PublicIP":"192.168.64.3","PublicIPv6":null,"BackendType":"vxlan",'
           '"BackendData":{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"}}')
    lease = parse_lease("/coreos.com/network/subnets/10.5.52.0-24", doc)
    assert lease == Lease("10.5.52.0/24", "192.168.64.3", "vxlan", "c6:d2:32:6f:8f:44")
    assert lease.value() == doc
    assert lease.key == "/coreos.com/network/subnets/10.5.52.0-24"
    gw = Lease("10.244.2.0/24", "172.18.0.4", "host-gw")
    assert json.loads(gw.value()) == {"PublicIP": "172.18.0.4", "PublicIPv6": None, "BackendType": "host-gw"}
    assert parse_lease(gw.key, gw.value()) == gw


def test_bad_leases_and_config_are_refused():
    with pytest.raises(ValueError, match="vxlan needs the VTEP MAC"):
        Lease("10.244.1.0/24", "172.18.0.2", "vxlan", None)
    with pytest.raises(ValueError, match="backend 'bgp'"):
        Lease("10.244.1.0/24", "172.18.0.2", "bgp")
    with pytest.raises(ValueError, match="unreadable value"):
        parse_lease("/coreos.com/network/subnets/10.244.1.0-24", "{}")
    with pytest.raises(ValueError, match="SubnetLen 8"):
        config_value("10.244.0.0/16", 8)


def test_config_and_node_leases():
    assert json.loads(config_value("10.244.0.0/16")) == {"Network": "10.244.0.0/16", "SubnetLen": 24,
                                                          "Backend": {"Type": "vxlan"}}
    lease = node_lease(ipaddress.ip_network("10.244.1.0/24"), ipaddress.ip_address("172.18.0.3"), "vxlan",
                       "AA:BB:CC:DD:EE:01")
    assert lease.vtep_mac == "aa:bb:cc:dd:ee:01" and lease.backend == "vxlan"
    assert node_lease("10.244.1.0/24", "172.18.0.3", "host-gw", "aa:bb:cc:dd:ee:01").vtep_mac is None
    assert node_lease("10.244.1.0/24", "172.18.0.3", "bgp", None) is None


def test_renewal_margin():
    assert flannel.LEASE_TTL == 86400 and flannel.RENEW_MARGIN == 3600
    assert not flannel.renew_due(7200) and flannel.renew_due(3600) and flannel.renew_due(0)


class FakeEtcd:
    """Just what flannel.leases.Keeper asks of etcd: keys attached to leases that end on a fake clock."""

    def __init__(self, clock):
        self.clock, self.keys, self.leases, self.next_id, self.asked = clock, {}, {}, 100, 0

    def _expire(self):
        for lid, (end, _) in list(self.leases.items()):
            if end <= self.clock():
                self.revoke(lid)

    def range(self, key, prefix=False):
        from netlab.etcd.client import b64
        self._expire()
        return [{"key": b64(k), "value": b64(v), "lease": str(lid)} for k, (v, lid) in sorted(self.keys.items())
                if k.startswith(key)], 1

    def grant(self, ttl):
        self.next_id += 1
        self.leases[self.next_id] = (self.clock() + ttl, ttl)
        return self.next_id

    def put(self, key, value, lease=None):
        self.keys[key] = (value, lease or 0)
        return 1

    def keepalive(self, lid):
        self._expire()
        if lid not in self.leases:
            return 0
        self.leases[lid] = (self.clock() + self.leases[lid][1], self.leases[lid][1])
        return self.leases[lid][1]

    def revoke(self, lid):
        self.leases.pop(lid, None)
        self.keys = {k: v for k, v in self.keys.items() if v[1] != lid}

    def delete(self, key):
        self.keys.pop(key, None)

    def call(self, path, body):
        assert path == "/v3/lease/timetolive"
        self.asked += 1
        end, granted = self.leases.get(int(body["ID"]), (self.clock() - 1, 0))
        return {"TTL": int(end - self.clock()), "grantedTTL": granted}


def test_keeper_keeps_its_nodes_leases_as_flanneld_does():
    from netlab.flannel.leases import Keeper
    now = [1000.0]
    etcd = FakeEtcd(lambda: now[0])
    prefix = lab_prefix("/netlab/lab/")
    a = Lease("10.244.0.0/24", "172.18.0.2", "vxlan", "aa:00:00:00:00:01")
    b = Lease("10.244.1.0/24", "172.18.0.3", "vxlan", "aa:00:00:00:00:02")
    other = Lease("10.244.2.0/24", "172.18.0.4", "vxlan", "aa:00:00:00:00:03")   # another host's node
    etcd.put(subnet_key(other.subnet, prefix), other.value(), etcd.grant(100))
    k = Keeper(etcd, prefix, ttl=100, margin=10, clock=lambda: now[0])
    assert k.keep([a, b]) == ["wrote 10.244.0.0/24", "wrote 10.244.1.0/24"]
    assert k.keep([a, b]) == [] and etcd.asked == 0          # counted here: no question to etcd
    now[0] += 85
    assert k.keep([a, b]) == []
    now[0] += 6                                             # within the margin: kept alive, same etcd lease
    lid = etcd.keys[subnet_key(a.subnet, prefix)][1]
    assert k.keep([a, b]) == ["renewed 10.244.0.0/24", "renewed 10.244.1.0/24"]
    assert etcd.keys[subnet_key(a.subnet, prefix)][1] == lid and etcd.leases[lid][0] == now[0] + 100
    # deleted by hand, and changed (its node's address): written again; the other host's lease ended
    # (its agent is gone) and nobody writes it here
    etcd.delete(subnet_key(a.subnet, prefix))
    b2 = Lease(b.subnet, "172.18.0.9", "vxlan", b.vtep_mac)
    now[0] += 50
    assert k.keep([a, b2]) == ["wrote 10.244.0.0/24", "wrote 10.244.1.0/24"]
    assert etcd.keys[subnet_key(b.subnet, prefix)][0] == b2.value()
    assert subnet_key(other.subnet, prefix) not in etcd.keys
    # a lease this keeper did not write, on a short etcd lease: asked once, then written with its own TTL
    # once within the margin (keeping the short one alive would keep it short)
    etcd.put(subnet_key(other.subnet, prefix), other.value(), etcd.grant(30))
    assert k.keep([a, b2, other]) == [] and etcd.asked == 1
    now[0] += 25
    assert k.keep([a, b2, other]) == ["wrote 10.244.2.0/24"] and etcd.asked == 1
    assert etcd.leases[etcd.keys[subnet_key(other.subnet, prefix)][1]][1] == 100
    # release: only when asked (`up`), leases no node has
    assert k.keep([a, b2], release=True) == ["released 10.244.2.0/24"]
    assert sorted(etcd.keys) == [subnet_key(a.subnet, prefix), subnet_key(b.subnet, prefix)]
