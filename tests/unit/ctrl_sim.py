"""A simulated cluster for controller tests: a memory store, the controllers, a simulated kubelet
and a fake clock."""

from netlab.controllers.base import Snapshot
from netlab.controllers.runner import Runner, apply_actions, default_controllers
from netlab.controllers.simkubelet import KINDS as KUBELET_KINDS, SimKubelet
from netlab.store import MemoryStore, SQLiteStore

T0 = 1_800_000_000.0


class Clock:
    def __init__(self, t=T0):
        self.t = t

    def __call__(self):
        return self.t


def deployment(name="web", replicas=6, image="v1", surge=1, unavailable=0, strategy="RollingUpdate", **spec):
    d = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                         "spec": {"containers": [{"name": "app", "image": image,
                                                  "ports": [{"name": "http", "containerPort": 8080}]}]}},
            "strategy": {"type": strategy},
        },
    }
    if strategy == "RollingUpdate":
        d["spec"]["strategy"]["rollingUpdate"] = {"maxSurge": surge, "maxUnavailable": unavailable}
    d["spec"].update(spec)
    return d


def node(name, **spec):
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
            "spec": spec}


def service(name="web", selector=None, target="http"):
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "default"},
            "spec": {"selector": selector or {"app": name},
                     "ports": [{"name": "http", "port": 80, "targetPort": target, "protocol": "TCP"}]}}


class Sim:
    def __init__(self, nodes=("n1", "n2", "n3"), start=1, ready=1, node_grace=40, toleration=300, store_dir=None):
        self.clock = Clock()
        self.store = MemoryStore(clock=self.clock) if store_dir is None else SQLiteStore(store_dir, clock=self.clock)
        self.kubelet = SimKubelet(start_seconds=start, ready_seconds=ready)
        self.runner = Runner(self.store, default_controllers(node_grace=node_grace),
                             default_toleration_seconds=toleration)
        for n in nodes:
            self.store.create(node(n))
        self.settle()

    @property
    def now(self):
        return self.clock.t

    def settle(self):
        for _ in range(50):
            acts = self.kubelet.decide(Snapshot.from_store(self.store, KUBELET_KINDS), self.now)
            if acts:
                apply_actions(self.store, acts, self.now)
            wrote = self.runner.run_until_quiescent(self.now)
            if not acts and not wrote:
                return

    def tick(self, dt=1.0):
        self.clock.t += dt
        self.settle()

    def get(self, kind, name, ns="default"):
        return self.store.get(kind, ns, name)

    def pods(self, active_only=True):
        ps = self.store.list("Pod")
        return [p for p in ps if not active_only or not p["metadata"].get("deletionTimestamp")]

    def rss(self):
        return self.store.list("ReplicaSet")

    def image_of(self, pod):
        return pod["spec"]["containers"][0]["image"]

    def ready_endpoints(self, svc="web"):
        out = []
        for s in self.store.list("EndpointSlice", "default", label_selector={"kubernetes.io/service-name": svc}):
            out += [e for e in s["endpoints"] if e["conditions"]["ready"]]
        return out

    def events(self, reason=None):
        evs = sorted(self.store.list("Event"), key=lambda e: int(e["metadata"]["resourceVersion"]))
        return [e for e in evs if reason is None or e["reason"] == reason]

    def set_template(self, name, image):
        d = self.get("Deployment", name)
        d["spec"]["template"]["spec"]["containers"][0]["image"] = image
        self.store.update(d)
