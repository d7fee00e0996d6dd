"""Cluster DNS: the addresses every part of netlab agrees on.

The `kubernetes` Service takes the service subnet's first address (.1) and the cluster DNS Service
(kube-system/kube-dns) its tenth (.10), as kubeadm assigns them; the allocator reserves both.
"""
from __future__ import annotations

import ipaddress

DNS_NAMESPACE = "kube-system"
DNS_SERVICE = "kube-dns"
DNS_LABEL = {"k8s-app": "kube-dns"}


def kubernetes_ip(service_subnet: ipaddress.IPv4Network) -> ipaddress.IPv4Address:
    """The default/kubernetes Service's ClusterIP: the subnet's first address."""
    return service_subnet.network_address + 1


def cluster_dns_ip(service_subnet: ipaddress.IPv4Network) -> ipaddress.IPv4Address:
    """kube-system/kube-dns's ClusterIP (the kubelet's --cluster-dns): the subnet's tenth address."""
    return service_subnet.network_address + 10
