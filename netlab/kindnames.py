"""kubectl's names of the kinds netlab keeps: the words a command line takes for a kind (short names,
singular, plural, with the API group), and the singular and plural kubectl prints in its lines
(`deployment.apps/web created`, `deployments.apps "web" not found`). Pure data: shared by the CLI's verbs
(netlab/cli/kubeutil.py), the Python API and the live layer's messages."""
from __future__ import annotations

# kubectl's short names, singular and plural -> kind
KINDS = {}
for _kind, _names in {
    "Deployment": ("deploy", "deployment", "deployments", "deployment.apps", "deployments.apps"),
    "ReplicaSet": ("rs", "replicaset", "replicasets", "replicaset.apps", "replicasets.apps"),
    "StatefulSet": ("sts", "statefulset", "statefulsets", "statefulset.apps", "statefulsets.apps"),
    "ControllerRevision": ("controllerrevision", "controllerrevisions", "controllerrevision.apps"),
    "DaemonSet": ("ds", "daemonset", "daemonsets", "daemonset.apps", "daemonsets.apps"),
    "Pod": ("po", "pod", "pods"),
    "Service": ("svc", "service", "services"),
    "Namespace": ("ns", "namespace", "namespaces"),
    "Node": ("no", "node", "nodes"),
    "Event": ("ev", "event", "events"),
    "EndpointSlice": ("endpointslice", "endpointslices", "endpointslices.discovery.k8s.io"),
    "ConfigMap": ("cm", "configmap", "configmaps"),
    "Secret": ("secret", "secrets"),
    "ServiceAccount": ("sa", "serviceaccount", "serviceaccounts"),
    "Lease": ("lease", "leases", "lease.coordination.k8s.io", "leases.coordination.k8s.io"),
    "Job": ("job", "jobs", "job.batch", "jobs.batch"),
    "CronJob": ("cj", "cronjob", "cronjobs", "cronjob.batch", "cronjobs.batch"),
    "IPAddressPool": ("ipaddresspool", "ipaddresspools", "ipaddresspool.metallb.io", "ipaddresspools.metallb.io"),
    "L2Advertisement": ("l2advertisement", "l2advertisements", "l2advertisement.metallb.io",
                        "l2advertisements.metallb.io"),
    "BGPPeer": ("bgppeer", "bgppeers", "bgppeer.metallb.io", "bgppeers.metallb.io"),
    "BGPAdvertisement": ("bgpadvertisement", "bgpadvertisements", "bgpadvertisement.metallb.io",
                         "bgpadvertisements.metallb.io"),
    "Ingress": ("ing", "ingress", "ingresses", "ingress.networking.k8s.io", "ingresses.networking.k8s.io"),
    "IngressClass": ("ingressclass", "ingressclasses", "ingressclass.networking.k8s.io",
                     "ingressclasses.networking.k8s.io"),
    "NetworkPolicy": ("netpol", "networkpolicy", "networkpolicies", "networkpolicy.networking.k8s.io",
                      "networkpolicies.networking.k8s.io"),
}.items():
    for _n in _names:
        KINDS[_n] = _kind

# how kubectl names a kind: in "created/deleted" lines (singular) and in server errors (plural)
SINGULAR = {"Deployment": "deployment.apps", "ReplicaSet": "replicaset.apps", "StatefulSet": "statefulset.apps",
            "DaemonSet": "daemonset.apps", "ControllerRevision": "controllerrevision.apps", "Pod": "pod",
            "Service": "service", "Namespace": "namespace", "Node": "node", "Event": "event",
            "EndpointSlice": "endpointslice.discovery.k8s.io", "Endpoints": "endpoints", "ConfigMap": "configmap",
            "Secret": "secret", "ServiceAccount": "serviceaccount", "Lease": "lease.coordination.k8s.io",
            "Job": "job.batch", "CronJob": "cronjob.batch",
            "IPAddressPool": "ipaddresspool.metallb.io", "L2Advertisement": "l2advertisement.metallb.io",
            "BGPPeer": "bgppeer.metallb.io", "BGPAdvertisement": "bgpadvertisement.metallb.io",
            "Ingress": "ingress.networking.k8s.io", "IngressClass": "ingressclass.networking.k8s.io",
            "NetworkPolicy": "networkpolicy.networking.k8s.io"}
PLURAL = {"Deployment": "deployments.apps", "ReplicaSet": "replicasets.apps", "StatefulSet": "statefulsets.apps",
          "DaemonSet": "daemonsets.apps", "ControllerRevision": "controllerrevisions.apps", "Pod": "pods",
          "Service": "services",
          "Namespace": "namespaces", "Node": "nodes", "Event": "events",
          "EndpointSlice": "endpointslices.discovery.k8s.io", "Endpoints": "endpoints", "ConfigMap": "configmaps",
          "Secret": "secrets", "ServiceAccount": "serviceaccounts", "Lease": "leases.coordination.k8s.io",
          "Job": "jobs.batch", "CronJob": "cronjobs.batch",
          "IPAddressPool": "ipaddresspools.metallb.io", "L2Advertisement": "l2advertisements.metallb.io",
          "BGPPeer": "bgppeers.metallb.io", "BGPAdvertisement": "bgpadvertisements.metallb.io",
          "Ingress": "ingresses.networking.k8s.io", "IngressClass": "ingressclasses.networking.k8s.io",
          "NetworkPolicy": "networkpolicies.networking.k8s.io"}
