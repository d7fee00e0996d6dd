"""Objects that carry no dataplane: accepted, stored in the lab's store, reported once, not emulated.

- ConfigMap, Secret, ServiceAccount (v1): checked as the API server checks them (metadata.name;
  data/binaryData/stringData maps of strings with valid keys; binaryData and a Secret's data in
  base64; a Secret's type a string), stored by `up` and `apply -f` and listed by `get`. Pods read
  ConfigMaps and Secrets (volumes, env valueFrom, envFrom); a ServiceAccount is used by nothing: `up`
  says so once ("storing objects netlab does not use yet").
- The custom resources of well-known add-ons netlab does not emulate (`ADDONS`, the one list: moving
  a kind out of it, once netlab emulates it, is deleting one line): stored and reported once as
  ignored. A kind that is neither here nor a registered kind is still refused.
"""
from __future__ import annotations

import base64
import binascii
import re

from ...errors import SpecError
from ..fields import Fields, shown
from . import Context, ObjectDoc, object_meta, register

DATA_KEY = re.compile(r"^[-._a-zA-Z0-9]{1,253}$")

# kind -> (the add-on, the apiVersions its documentation gives); each kind stored, not emulated
ADDONS: dict[str, tuple[str, tuple[str, ...]]] = {
    "CustomResourceDefinition": ("Kubernetes API extensions", ("apiextensions.k8s.io/v1",)),
    "Certificate": ("cert-manager", ("cert-manager.io/v1",)),
    "Issuer": ("cert-manager", ("cert-manager.io/v1",)),
    "ClusterIssuer": ("cert-manager", ("cert-manager.io/v1",)),
    "CertificateRequest": ("cert-manager", ("cert-manager.io/v1",)),
    "BFDProfile": ("MetalLB", ("metallb.io/v1beta1",)),
    "Community": ("MetalLB", ("metallb.io/v1beta1",)),
    "ServiceMonitor": ("Prometheus operator", ("monitoring.coreos.com/v1",)),
    "PodMonitor": ("Prometheus operator", ("monitoring.coreos.com/v1",)),
    "PrometheusRule": ("Prometheus operator", ("monitoring.coreos.com/v1",)),
    "GatewayClass": ("Gateway API", ("gateway.networking.k8s.io/v1", "gateway.networking.k8s.io/v1beta1")),
    "Gateway": ("Gateway API", ("gateway.networking.k8s.io/v1", "gateway.networking.k8s.io/v1beta1")),
    "HTTPRoute": ("Gateway API", ("gateway.networking.k8s.io/v1", "gateway.networking.k8s.io/v1beta1")),
    "GRPCRoute": ("Gateway API", ("gateway.networking.k8s.io/v1",)),
    "ReferenceGrant": ("Gateway API", ("gateway.networking.k8s.io/v1beta1",)),
}
CLUSTER_SCOPED = ("CustomResourceDefinition", "ClusterIssuer", "GatewayClass")
STORED = ("ConfigMap", "Secret", "ServiceAccount")   # core kinds stored, not used yet


def inert_kinds() -> tuple[str, ...]:
    """Every kind of this module: what `up` prunes besides the kinds that build something."""
    return STORED + tuple(ADDONS)


def _data(top, key: str, b64: bool) -> None:
    value = top.strmap(key, labels=False)
    for k, v in value.items():
        if not DATA_KEY.match(k):
            raise top.error(key, f"key {shown(k)} is not a valid key",
                            "use letters, digits, '-', '_' and '.' (a file name)")
        if b64:
            try:
                base64.b64decode(v, validate=True)
            except (binascii.Error, ValueError):
                raise top.error(f"{key}.{k}", "is not base64", f"encode the value (base64), or put it in "
                                f"{'stringData' if key == 'data' else 'data'} as text") from None


def _stored(doc: ObjectDoc, ctx: Context, fields: tuple[tuple[str, bool], ...]) -> Fields:
    top, meta, _, _ = object_meta(doc, ctx)
    meta.strmap("labels")
    meta.done()
    for key, b64 in fields:
        _data(top, key, b64)
    both = set(top.strmap("data", labels=False)) & set(top.strmap("binaryData", labels=False)) \
        if doc.data.get("kind") == "ConfigMap" else set()
    if both:
        raise top.error("binaryData", f"key {shown(sorted(both)[0])} is in data too", "give each key once")
    top.bool("immutable")
    return top


@register("ConfigMap", "v1", order=20)
def parse_configmap(doc: ObjectDoc, ctx: Context) -> None:
    top = _stored(doc, ctx, (("data", False), ("binaryData", True)))
    top.done()   # read by the pods' volumes and env (netlab/workload/volumes.py, podenv.py): not inert


@register("Secret", "v1", order=21)
def parse_secret(doc: ObjectDoc, ctx: Context) -> None:
    top = _stored(doc, ctx, (("data", True), ("stringData", False)))
    kind = top.raw("type")
    if kind is not None and not isinstance(kind, str):
        raise top.error("type", f"must be a string, not {shown(kind)}", "write e.g. type: Opaque")
    top.skip("type")
    top.done()   # read by the pods' volumes and env, as a ConfigMap


@register("ServiceAccount", "v1", order=22)
def parse_serviceaccount(doc: ObjectDoc, ctx: Context) -> None:
    top, meta, _, _ = object_meta(doc, ctx)
    meta.strmap("labels")
    meta.done()
    for key in ("secrets", "imagePullSecrets"):
        if not isinstance(top.raw(key, []), list):
            raise top.error(key, "must be a list", "write it as '- name: NAME' lines")
    top.skip("secrets", "imagePullSecrets")
    top.bool("automountServiceAccountToken")
    top.done()
    ctx.inert.append(doc.where)


def _addon(kind: str, addon: str):
    def parse(doc: ObjectDoc, ctx: Context) -> None:
        top, meta, _, _ = object_meta(doc, ctx, namespaced=kind not in CLUSTER_SCOPED)
        meta.skip("labels", "finalizers", "generateName", "deletionTimestamp")
        meta.done()
        top.skip(*[k for k in doc.data if k not in ("metadata",)])  # the add-on's own fields: not read
        top.done()
        ctx.addons.append(f"{doc.where} ({addon})")
    return parse


for _kind, (_addon_name, _apis) in ADDONS.items():
    register(_kind, *_apis, order=1000, listed=False)(_addon(_kind, _addon_name))

__all__ = ["ADDONS", "STORED", "inert_kinds"]
