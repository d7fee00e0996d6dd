"""An agent's pass reads the other hosts' pods after it takes the store revisions it will call seen: a pod another
host's agent makes Ready while this agent's controllers run must be in the pass that counts it as seen (else no
later pass looks, and this host's rules keep the Service without that endpoint: CI saw the cluster DNS Service
REJECTed on host c for a minute after host b's agent restarted)."""
from netlab.live.sync import DATAPLANE_KINDS, LiveLab
from netlab.store import MemoryStore


class Stop(Exception):
    pass


def test_an_agent_pass_models_the_remote_readiness_written_while_its_controllers_ran(monkeypatch):
    store = MemoryStore()
    live = LiveLab("agentpass", store=store, host="c")
    live._periods = (10.0, 300)
    remote = {"ready": False}

    def load_state():
        return {"scenario": "kind: Cluster", "pods": {"kube-system/dns": {"node": "b1", "ready": remote["ready"]}}}

    def run_controllers(runner):
        # meanwhile host b's agent writes its pod's status: Ready
        remote["ready"] = True
        store.create({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "dns", "namespace": "kube-system"},
                      "spec": {"nodeName": "b1"}, "status": {"conditions": [{"type": "Ready", "status": "True"}]}})

    seen = {}

    def desired(work, proxy_mode=None):
        seen["revisions"] = (live.seen, store.kind_revisions(DATAPLANE_KINDS))
        seen["ready"] = work["pods"]["kube-system/dns"]["ready"]
        raise Stop

    monkeypatch.setattr(live, "load_state", load_state)
    monkeypatch.setattr(live, "run_controllers", run_controllers)
    monkeypatch.setattr(live, "desired", desired)
    monkeypatch.setattr(live, "runner", lambda text: None)
    monkeypatch.setattr(live, "heartbeats", lambda grace, now: None)
    try:
        live.sync(scoped=True)
    except Stop:
        pass
    assert seen["revisions"][0] == seen["revisions"][1]   # the pod's write is in what the pass calls seen ...
    assert seen["ready"] is True, "... but the pass modelled the remote pod as it was before its controllers ran"
