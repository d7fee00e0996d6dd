"""The ingress-nginx add-on's configuration, published by the control loop: `<lab dir>/ingress/nginx.conf`
and `<lab dir>/ingress/ssl/*.pem` (directories 0700, files 0600), which the controller pods mount
(netlab/ingress/addon.py) and load (netlab/ingress/controller.py).

Every pass of a lab with an `ingress:` map calls `IngressPublisher.publish` (netlab/live/sync.py, like
the DNS zone's publisher): when Ingresses, IngressClasses, Services, EndpointSlices, Secrets, Pods or
Nodes changed in the store, the plan is made again (netlab/ingress/config.py, pure), the certificates
it names are written first (file names carry a hash of their content, so the running configuration's
files never change under it), then nginx.conf if its text changed (one atomic 0600 replace); then each
Ingress's status and events (netlab/ingress/status.py) are written to the store.

Certificates: a Secret's pair is checked with the openssl CLI besides the plan's structural check (a
certificate openssl cannot read, a key that does not match it): such a host is served with the default
certificate, a self-signed one made once per lab with `openssl req` (ingress-nginx's "Kubernetes
Ingress Controller Fake Certificate").
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile

from ..dataplane import layout
from ..dataplane.state import private_dir, publish_private, write_private
from ..ingress import CONF_DIR, NAME, NAMESPACE, RUN_DIR
from ..ingress import config as ingconfig
from ..ingress import status as ingstatus

KINDS = ("Ingress", "IngressClass", "Service", "EndpointSlice", "Secret", "Pod", "Node")
FAKE_SUBJECT = "/O=Acme Co/CN=Kubernetes Ingress Controller Fake Certificate"


def _openssl(args: list[str], data: bytes) -> tuple[int, bytes]:
    r = subprocess.run(["openssl", *args], input=data, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    return r.returncode, r.stdout if r.returncode == 0 else r.stderr


def openssl_problem(crt: bytes, key: bytes) -> str | None:
    """Why openssl refuses a certificate/key pair (unreadable, or a key of another certificate), or None."""
    why = ingconfig.pem_problem(crt, key)
    if why:
        return why
    rc, cpub = _openssl(["x509", "-noout", "-pubkey"], crt)
    if rc != 0:
        return "tls.crt is not a certificate openssl can read"
    rc, kpub = _openssl(["pkey", "-pubout"], key)
    if rc != 0:
        return "tls.key is not a private key openssl can read"
    if cpub.strip() != kpub.strip():
        return "tls.key does not match the certificate in tls.crt"
    return None


def fake_certificate() -> bytes:
    """A self-signed certificate and its key (PEM), as ingress-nginx's default one."""
    with tempfile.TemporaryDirectory() as d:
        crt, key = os.path.join(d, "c.pem"), os.path.join(d, "k.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3650", "-subj",
                        FAKE_SUBJECT, "-keyout", key, "-out", crt], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=60)
        with open(crt, "rb") as a, open(key, "rb") as b:
            return a.read() + b.read()


def conf_path(lab: str) -> str:
    return os.path.join(layout.ingress_dir(lab), "nginx.conf")


class IngressPublisher:
    """Plans, renders and writes one lab's ingress configuration when its inputs moved."""

    def __init__(self, lab: str):
        self.lab = lab
        self.dir = layout.ingress_dir(lab)
        self.ssl = os.path.join(self.dir, "ssl")
        self.seen: tuple | None = None
        self.checked: dict[str, str | None] = {}
        self.previous: set[str] = set()

    def cert_problem(self, crt: bytes, key: bytes) -> str | None:
        h = hashlib.sha256(crt + b"\0" + key).hexdigest()
        if h not in self.checked:
            self.checked[h] = openssl_problem(crt, key)
        return self.checked[h]

    def _dirs(self) -> None:
        for d in (self.dir, self.ssl):
            private_dir(d)
        fake = os.path.join(self.ssl, ingconfig.DEFAULT_CERT)
        if not os.path.exists(fake):
            write_private(fake, fake_certificate().decode())

    def publish(self, store, cluster, tell: bool = True) -> bool:
        """Write the configuration (and the Ingresses' status) if the store moved; True if nginx.conf changed."""
        cfg = cluster.networking.ingress
        if cfg is None:
            return False
        from ..render.services import lb_status
        svc = next((s for s in cluster.services if s.key == f"{NAMESPACE}/{NAME}"), None)
        lb_ips = [ip for ip, _ in lb_status(svc.spec)] if svc is not None else []
        revs = (store.kind_revisions(KINDS), cfg, tuple(lb_ips))
        path = os.path.join(self.dir, "nginx.conf")
        if revs == self.seen and os.path.exists(path):
            return False
        objs, _ = store.snapshot(KINDS)
        settings = ingconfig.Settings(class_name=cfg.class_name)
        plan = ingconfig.plan(objs, settings, self.cert_problem)
        self._dirs()
        for name, pem in plan.certs.items():
            target = os.path.join(self.ssl, name)
            if not os.path.exists(target):
                write_private(target, pem.decode())
        text = ingconfig.render(plan, CONF_DIR, RUN_DIR, settings)
        changed = publish_private(path, text)
        keep = set(plan.certs) | self.previous | {ingconfig.DEFAULT_CERT}
        for name in os.listdir(self.ssl):
            if name.endswith(".pem") and name not in keep:
                os.unlink(os.path.join(self.ssl, name))
        self.previous = set(plan.certs)
        if tell:   # (where the controllers run; another agent writes its machine's files only)
            self._write_status(store, objs, plan, cfg, lb_ips)
        self.seen = revs
        return changed

    def _write_status(self, store, objs, plan, cfg, lb_ips) -> None:
        from ..ingress import LABELS
        from ..store.events import record_event
        from ..store.meta import matcher
        sel = matcher({"matchLabels": LABELS})
        pods = [p for p in objs.get("Pod") or [] if p["metadata"].get("namespace") == NAMESPACE
                and sel(p["metadata"].get("labels"))]
        address = ingstatus.addresses(cfg.service_type, lb_ips, pods, objs.get("Node") or [])
        updates, events = ingstatus.decide(objs.get("Ingress") or [], plan, address, store.list("Event"))
        if not updates and not events:
            return
        with store.transaction():
            for ing in updates:
                cur = store.try_get("Ingress", ing["metadata"].get("namespace"), ing["metadata"]["name"])
                if cur is not None and cur["metadata"].get("uid") == ing["metadata"].get("uid"):
                    store.update_status(dict(cur, status=ing["status"]))
            for ing, etype, reason, msg in events:
                record_event(store, ing, etype, reason, msg, ingstatus.COMPONENT)
