"""The MetalLB speaker add-on, as MetalLB's manifest (config/manifests/metallb-native.yaml) makes it: a
pure function of the lab's LB directory (no root, no kernel).

- Namespace metallb-system (unless the scenario writes it);
- DaemonSet metallb-system/speaker (labels app=metallb, component=speaker): hostNetwork, one container
  `speaker` of the well-known image quay.io/metallb/speaker, which netlab runs as its own
  `python -m netlab.lb.speaker` (netlab/workload/images.py): MetalLB's args (--port=7472,
  --log-level=info), env (METALLB_NODE_NAME from spec.nodeName...), securityContext (all capabilities
  dropped but NET_RAW: the raw ARP socket), tolerations, terminationGracePeriodSeconds 2, and
  readiness/liveness on /metrics at port 7472 (the speaker serves it). Readiness is looked at every
  second from the start (MetalLB's: 10 s, after 10 s), so a lab's LB IPs are announced within seconds.
  Not made: the memberlist ports and Secret (netlab's election needs no gossip: the speakers read the
  lab's decision, netlab/lb/announce.py) and the controller Deployment (the IPAM controller runs in the
  control loop).
- The announcements reach the pods as a read-only hostPath volume of the lab's LB directory
  (`<lab dir>/lb`, where the control loop writes announce.json), mounted at ANNOUNCE_DIR: a directory,
  so the writer's rename of a new file is seen in the container.
"""
from __future__ import annotations

from . import METALLB_NAMESPACE

IMAGE = "quay.io/metallb/speaker:v0.14.9"
DAEMONSET = "speaker"
LABELS = {"app": "metallb", "component": "speaker"}
ANNOUNCE_DIR = "/etc/metallb-netlab"   # where the lab's LB directory is mounted in the container
ANNOUNCE_FILE = "announce.json"
METRICS_PORT = 7472


def speaker_daemonset(lb_dir: str) -> dict:
    container = {
        "name": "speaker", "image": IMAGE,
        "args": ["--port=7472", "--log-level=info", f"--netlab-announcements={ANNOUNCE_DIR}/{ANNOUNCE_FILE}"],
        "env": [{"name": "METALLB_NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
                {"name": "METALLB_POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                {"name": "METALLB_HOST", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}}],
        "ports": [{"containerPort": METRICS_PORT, "name": "monitoring"}],
        "readinessProbe": {"httpGet": {"path": "/metrics", "port": "monitoring"}, "periodSeconds": 1,
                           "timeoutSeconds": 1, "successThreshold": 1, "failureThreshold": 3},
        "livenessProbe": {"httpGet": {"path": "/metrics", "port": "monitoring"}, "initialDelaySeconds": 10,
                          "periodSeconds": 10, "timeoutSeconds": 1, "successThreshold": 1, "failureThreshold": 3},
        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                            "capabilities": {"add": ["NET_RAW"], "drop": ["ALL"]}},
        "volumeMounts": [{"name": "announcements", "mountPath": ANNOUNCE_DIR, "readOnly": True}],
    }
    return {
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": DAEMONSET, "namespace": METALLB_NAMESPACE, "labels": dict(LABELS)},
        "spec": {
            "selector": {"matchLabels": dict(LABELS)},
            "template": {
                "metadata": {"labels": dict(LABELS)},
                "spec": {
                    "hostNetwork": True,
                    "nodeSelector": {"kubernetes.io/os": "linux"},
                    "terminationGracePeriodSeconds": 2,
                    "tolerations": [{"key": "node-role.kubernetes.io/master", "operator": "Exists", "effect": "NoSchedule"},
                                    {"key": "node-role.kubernetes.io/control-plane", "operator": "Exists",
                                     "effect": "NoSchedule"}],
                    "containers": [container],
                    "volumes": [{"name": "announcements", "hostPath": {"path": lb_dir, "type": "DirectoryOrCreate"}}],
                },
            },
        },
    }


def objects(lb_dir: str, user: list[dict] = ()) -> list[dict]:
    """The add-on's objects, without those of the same kind/namespace/name in `user` (theirs win)."""
    out = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": METALLB_NAMESPACE}},
           speaker_daemonset(lb_dir)]

    def key(o: dict) -> tuple:
        md = o.get("metadata") or {}
        return o.get("kind"), None if o.get("kind") == "Namespace" else md.get("namespace", "default"), md.get("name")
    mine = {key(o) for o in user}
    return [o for o in out if key(o) not in mine]


def is_speaker_pod(pod) -> bool:
    """A pod of the speaker add-on (model.objects.Pod)."""
    return pod.namespace == METALLB_NAMESPACE and pod.owner == f"DaemonSet/{DAEMONSET}"
