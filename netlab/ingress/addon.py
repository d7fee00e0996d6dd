"""The ingress-nginx add-on's objects, as its deploy manifests make them (pure): what `up` writes when
the Cluster document has an `ingress:` map (spec.types.IngressConfig).

- Namespace ingress-nginx;
- IngressClass `className` (nginx), spec.controller k8s.io/ingress-nginx, annotated as the default
  class when `defaultClass: true`;
- Deployment ingress-nginx-controller: `replicas` pods of the image registry.k8s.io/ingress-nginx/
  controller, which netlab runs as its own supervisor `python -m netlab.ingress.controller`
  (netlab/workload/images.py), which runs the real /usr/sbin/nginx; the published configuration
  directory (`<lab dir>/ingress`, written by the control loop: netlab/live/ingresspub.py) mounted
  read-only at /etc/ingress-controller (a directory, so a renamed new file is seen), an emptyDir at
  /tmp/nginx for nginx's pid and temporary files; readiness and liveness on /healthz 10254 as
  ingress-nginx's;
- Service ingress-nginx-controller (http 80, https 443) of `serviceType` (NodePort or LoadBalancer),
  with the node ports and externalTrafficPolicy given.

`objects(...)` leaves out what the user wrote with the same kind, namespace and name (theirs wins).
"""
from __future__ import annotations

from ..spec.types import IngressConfig
from . import CONF_DIR, CONTROLLER, DEFAULT_CLASS_ANNOTATION, HEALTH_PORT, IMAGE, LABELS, NAME, NAMESPACE, RUN_DIR


def ingress_class(cfg: IngressConfig) -> dict:
    md: dict = {"name": cfg.class_name, "labels": dict(LABELS)}
    if cfg.default_class:
        md["annotations"] = {DEFAULT_CLASS_ANNOTATION: "true"}
    return {"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass", "metadata": md,
            "spec": {"controller": CONTROLLER}}


def deployment(cfg: IngressConfig, conf_dir: str) -> dict:
    probe = {"httpGet": {"path": "/healthz", "port": HEALTH_PORT, "scheme": "HTTP"},
             "periodSeconds": 2, "timeoutSeconds": 1, "successThreshold": 1, "failureThreshold": 3}
    container = {
        "name": "controller", "image": IMAGE, "imagePullPolicy": "IfNotPresent",
        "args": ["/nginx-ingress-controller", f"--ingress-class={cfg.class_name}",
                 f"--controller-class={CONTROLLER}", f"--conf-dir={CONF_DIR}", f"--run-dir={RUN_DIR}",
                 f"--healthz-port={HEALTH_PORT}"],
        "ports": [{"name": "http", "containerPort": 80, "protocol": "TCP"},
                  {"name": "https", "containerPort": 443, "protocol": "TCP"}],
        "readinessProbe": probe,
        "livenessProbe": dict(probe, initialDelaySeconds=10, periodSeconds=10, failureThreshold=5),
        "volumeMounts": [{"name": "config", "mountPath": CONF_DIR, "readOnly": True},
                         {"name": "run", "mountPath": RUN_DIR}],
    }
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": NAME, "namespace": NAMESPACE, "labels": dict(LABELS)},
        "spec": {
            "replicas": cfg.replicas,
            "selector": {"matchLabels": dict(LABELS)},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}},
            "template": {
                "metadata": {"labels": dict(LABELS)},
                "spec": {
                    "terminationGracePeriodSeconds": 30,
                    "tolerations": [{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}],
                    "containers": [container],
                    "volumes": [{"name": "config", "hostPath": {"path": conf_dir, "type": "DirectoryOrCreate"}},
                                {"name": "run", "emptyDir": {}}],
                },
            },
        },
    }


def service(cfg: IngressConfig) -> dict:
    ports = []
    for name, port, node_port in (("http", 80, cfg.http_node_port), ("https", 443, cfg.https_node_port)):
        p = {"name": name, "port": port, "protocol": "TCP", "targetPort": name}
        if node_port is not None:
            p["nodePort"] = node_port
        ports.append(p)
    spec = {"type": cfg.service_type, "selector": dict(LABELS), "ports": ports,
            "externalTrafficPolicy": cfg.external_traffic_policy}
    if cfg.load_balancer_ip:
        spec["loadBalancerIP"] = cfg.load_balancer_ip
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": NAME, "namespace": NAMESPACE, "labels": dict(LABELS)}, "spec": spec}


def _key(obj: dict) -> tuple:
    md = obj.get("metadata") or {}
    cluster = obj.get("kind") in ("Namespace", "IngressClass")
    return obj.get("kind"), None if cluster else md.get("namespace", "default"), md.get("name")


def objects(cfg: IngressConfig | None, conf_dir: str, user: list[dict] = ()) -> list[dict]:
    """The add-on's objects (none without an `ingress:` map), without those the user wrote."""
    if cfg is None:
        return []
    out = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
           ingress_class(cfg), service(cfg), deployment(cfg, conf_dir)]
    mine = {_key(o) for o in user}
    return [o for o in out if _key(o) not in mine]


def is_addon_pod(pod) -> bool:
    """A pod of the controller Deployment (model.objects.Pod)."""
    return pod.namespace == NAMESPACE and pod.owner == f"Deployment/{NAME}"
