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
