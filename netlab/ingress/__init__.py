"""Ingress served by a real nginx, as ingress-nginx serves it (issue 14).

- `config.py`: what nginx serves, a pure function of the lab's store objects (Ingresses,
  IngressClasses, Services, EndpointSlices, Secrets): `plan()` and `render()` (nginx.conf).
- `addon.py`: the ingress-nginx add-on's objects (namespace, IngressClass, controller Deployment and
  Service) that `up` writes when the Cluster document has an `ingress:` map.
- `status.py`: what the controller writes back: each Ingress's status.loadBalancer.ingress and events.
- `controller.py`: the program the controller pods run (`python -m netlab.ingress.controller`): it runs
  the real /usr/sbin/nginx in the pod's sandbox, checks each new configuration with `nginx -t` and
  reloads nginx gracefully (SIGHUP).
- netlab/live/ingresspub.py publishes the configuration and certificates (`<lab dir>/ingress/`).
"""
from __future__ import annotations

NAMESPACE = "ingress-nginx"
CONTROLLER = "k8s.io/ingress-nginx"          # the IngressClass spec.controller ingress-nginx claims
NAME = "ingress-nginx-controller"            # its Deployment and Service
IMAGE = "registry.k8s.io/ingress-nginx/controller:v1.11.2"
IMAGES = ("registry.k8s.io/ingress-nginx/controller", "k8s.gcr.io/ingress-nginx/controller")
LABELS = {"app.kubernetes.io/name": "ingress-nginx", "app.kubernetes.io/instance": "ingress-nginx",
          "app.kubernetes.io/component": "controller"}
CONF_DIR = "/etc/ingress-controller"         # where the published directory is mounted in the pod
RUN_DIR = "/tmp/nginx"                       # the pod's writable volume: pid, temp files
HEALTH_PORT = 10254                          # ingress-nginx's /healthz port
CLASS_ANNOTATION = "kubernetes.io/ingress.class"
DEFAULT_CLASS_ANNOTATION = "ingressclass.kubernetes.io/is-default-class"
POD_HEADER = "X-Netlab-Pod"                  # netlab's own: the backend pod nginx passed the request to
