"""The kind registry (netlab.spec.kinds): a kind is parsed by the module that registered it, and a new
kind is added by registering a parser, without touching netlab.spec.parse."""
from __future__ import annotations

import pytest

from netlab.errors import SpecError
from netlab.spec import kinds
from netlab.spec.kinds import object_meta, register
from netlab.spec.kinds.inert import ADDONS

from .scenarios import cluster, load, pod


def test_every_kind_netlab_accepts_is_registered_by_its_own_module():
    got = {k.kind: (k.api_versions, k.parse.__module__) for k in kinds.registered()}
    assert got == {
        "Cluster": (("netlab.dev/v1alpha1", "kind.x-k8s.io/v1alpha4"), "netlab.spec.kinds.cluster"),
        "Namespace": (("v1",), "netlab.spec.kinds.namespace"),
        "Pod": (("v1",), "netlab.spec.kinds.pod"),
        "Deployment": (("apps/v1",), "netlab.spec.kinds.deployment"),
        "Service": (("v1",), "netlab.spec.kinds.service"),
        "ReplicaSet": (("apps/v1",), "netlab.spec.kinds.replicaset"),
        "DaemonSet": (("apps/v1",), "netlab.spec.kinds.daemonset"),
        "EndpointSlice": (("discovery.k8s.io/v1",), "netlab.spec.kinds.endpoints"),
        "Endpoints": (("v1",), "netlab.spec.kinds.endpoints"),
        "StatefulSet": (("apps/v1",), "netlab.spec.kinds.statefulset"),
        "Job": (("batch/v1",), "netlab.spec.kinds.job"),
        "CronJob": (("batch/v1",), "netlab.spec.kinds.job"),
        "ConfigMap": (("v1",), "netlab.spec.kinds.inert"),
        "Secret": (("v1",), "netlab.spec.kinds.inert"),
        "ServiceAccount": (("v1",), "netlab.spec.kinds.inert"),
        "IPAddressPool": (("metallb.io/v1beta1",), "netlab.spec.kinds.metallb"),
        "L2Advertisement": (("metallb.io/v1beta1",), "netlab.spec.kinds.metallb"),
        "BGPPeer": (("metallb.io/v1beta2",), "netlab.spec.kinds.metallb"),
        "BGPAdvertisement": (("metallb.io/v1beta1",), "netlab.spec.kinds.metallb"),
        "Ingress": (("networking.k8s.io/v1",), "netlab.spec.kinds.ingress"),
        "IngressClass": (("networking.k8s.io/v1",), "netlab.spec.kinds.ingress"),
        "NetworkPolicy": (("networking.k8s.io/v1",), "netlab.spec.kinds.networkpolicy"),
        **{k: (apis, "netlab.spec.kinds.inert") for k, (_, apis) in ADDONS.items()},
    }
    assert [k.kind for k in kinds.registered() if k.listed] == [
        "Cluster", "Namespace", "Pod", "Deployment", "ReplicaSet", "Service", "EndpointSlice", "Endpoints",
        "StatefulSet", "DaemonSet", "Job", "CronJob", "ConfigMap", "Secret", "ServiceAccount", "Ingress",
        "IngressClass", "NetworkPolicy", "IPAddressPool", "L2Advertisement", "BGPPeer",
        "BGPAdvertisement"]


def test_unknown_kind_lists_the_registered_kinds():
    with pytest.raises(SpecError) as e:
        load({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "x"}})
    assert str(e.value) == ("HorizontalPodAutoscaler x: kind 'HorizontalPodAutoscaler' is not supported; netlab "
                            "understands Cluster, Namespace, "
                            "Pod, Deployment, ReplicaSet, Service, EndpointSlice, Endpoints, StatefulSet, DaemonSet, "
                            "Job, CronJob, ConfigMap, Secret, ServiceAccount, Ingress, IngressClass, NetworkPolicy, IPAddressPool, "
                            "L2Advertisement, BGPPeer, BGPAdvertisement (or a List of them)")


@pytest.fixture
def extra_kind():
    """A kind registered the way a new module of netlab/spec/kinds does it, removed afterwards."""
    found = []

    @register("Widget", "example.com/v1", order=50)
    def parse_widget(doc, ctx):
        top, meta, name, namespace = object_meta(doc, ctx)
        meta.skip("labels")
        meta.done()
        top.skip("data")
        top.done()
        found.append((namespace, name))
    yield found
    del kinds.REGISTRY["Widget"]


def test_a_registered_kind_is_parsed_without_changing_the_parser(extra_kind):
    s = load(cluster(), pod(), {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "cfg"},
                                "data": {"a": "b"}})
    assert extra_kind == [("default", "cfg")]
    assert [p.name for p in s.pods] == ["p"]
    with pytest.raises(SpecError, match="does not match kind Widget; use apiVersion: example.com/v1"):
        load({"apiVersion": "apps/v1", "kind": "Widget", "metadata": {"name": "cfg"}})
    with pytest.raises(SpecError, match="IngressClass, NetworkPolicy, Widget, IPAddressPool, L2Advertisement, BGPPeer, "
                       "BGPAdvertisement \\(or a List"):
        load({"apiVersion": "v1", "kind": "Gadget", "metadata": {"name": "s"}})
