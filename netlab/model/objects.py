"""Resolved objects: what the lab should look like, with every address and name decided.

Built from a `Scenario` (and the previous state, so reconciles keep addresses stable) by
`netlab.model.build`. Pure data; the renderers and the kernel layer read it, nobody writes it back.
"""
from __future__ import annotations

import functools
import hashlib
import ipaddress
from dataclasses import dataclass, field

from .. import names
from ..names import NETNS_PREFIX, lab_prefix, node_netns, pod_netns  # noqa: F401 (names live in netlab.names)
from ..spec.types import ContainerSpec, ExpectSpec, Networking, ServiceSpec
from ..workload.resolvconf import PodDns


def short_hash(*parts: str, n: int = 8) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:n]


@dataclass
class Node:
    name: str
    role: str
    index: int
    labels: dict[str, str]
    schedulable: bool
    ip: ipaddress.IPv4Address
    pod_cidr: ipaddress.IPv4Network
    netns: str
    vtep_mac: str            # flannel.1's MAC, derived from lab and node so it is stable
    partitioned: bool = False    # `netlab node stop`: its underlay link is down (pods keep running)
    subnet: ipaddress.IPv4Network | None = None   # nodes[].subnet: an underlay subnet of its own (None: nodeSubnet)
    host: str | None = None      # the host it is placed on (netlab/model/placement.py; None: a one-machine lab)

    @property
    def gateway(self) -> ipaddress.IPv4Address:
        """The pod gateway on cni0: the podCIDR's first address."""
        return self.pod_cidr.network_address + 1

    @property
    def vtep_ip(self) -> ipaddress.IPv4Address:
        """flannel.1's /32: the podCIDR's network address."""
        return self.pod_cidr.network_address

    def underlay_subnet(self, node_subnet: ipaddress.IPv4Network) -> ipaddress.IPv4Network:
        """The underlay subnet eth0 is in: its own (nodes[].subnet) or the cluster's nodeSubnet."""
        return self.subnet or node_subnet

    @property
    def underlay_veth(self) -> str:
        """Name of the underlay side of the node's eth0 veth (in the underlay namespace)."""
        return "node" + short_hash(self.name, n=8)


@dataclass
class Pod:
    namespace: str
    name: str
    labels: dict[str, str]
    node: str
    ip: ipaddress.IPv4Address
    uid: str
    containers: list[ContainerSpec]
    owner: str | None
    netns: str
    ready: bool = True       # as last observed by `up` (every container running and listening): only
                             # ready pods are endpoints
    restart_policy: str = "Always"   # Always | OnFailure | Never: whether `up` restarts an ended container
    # readiness decided elsewhere (a live lab's kubelet: readiness probes, a pod being deleted): None
    # lets `up` observe it (every container running and listening); False keeps the pod out of the
    # endpoints whatever is observed; True still needs its containers running
    decided_ready: bool | None = None
    # a live lab's kubelet holds back the restart of an ended container during its back-off (10 s, 20 s
    # ... 300 s after each restart): `up` keeps it ended meanwhile (CrashLoopBackOff)
    restart_held: bool = False
    # a live lab's pod being deleted (a deletionTimestamp): its endpoint turns terminating (not ready;
    # serving while `ready` says it still serves), and its containers are not restarted
    terminating: bool = False
    stopping: bool = False   # ... and the kubelet sent it SIGTERM (the built-in server is told so)
    # a live lab's kubelet killed the pod's built-in container (a failed liveness or startup probe): the
    # node's built-in server ends it (exit 137), and the next pass starts it again as a restart
    killed: bool = False
    hostname: str | None = None   # spec.hostname (the UTS hostname; default: the pod's name)
    # hostNetwork: no namespace of its own; `netns` and `ip` are its node's (netlab/dataplane/hostnet.py)
    host_network: bool = False

    @property
    def uts_hostname(self) -> str:
        """The pod's hostname as the kubelet sets it: its node's for a hostNetwork pod, else spec.hostname or
        the pod's name."""
        return self.node if self.host_network else (self.hostname or self.name)

    @property
    def host_ports(self) -> list[tuple[int, str, str | None, int]]:
        """(hostPort, protocol, hostIP, containerPort) of every port that declares a hostPort."""
        return [(p.host_port, p.protocol, p.host_ip, p.port) for c in self.containers for p in c.ports
                if p.host_port]
    # a live lab's kubelet: how each container with a command starts (env resolved, mounts; by name:
    # workload.volumes.Launch) and the pod's volumes (a workload.volumes.VolumePlan), when it has any
    launch: dict = field(default_factory=dict)
    volumes: object = None
    # dnsPolicy, dnsConfig, hostAliases, subdomain: the kubelet's /etc/resolv.conf and /etc/hosts of the pod
    # (netlab/workload/resolvconf.py, written by netlab/dataplane/podfiles.py)
    dns: PodDns = field(default_factory=PodDns)

    @functools.cached_property
    def key(self) -> str:
        """namespace/name (kept: a pass reads it for every pod a dozen times; a pod is never renamed, a
        renamed one is another Pod)."""
        return f"{self.namespace}/{self.name}"

    @property
    def host_veth(self) -> str:
        """The node-side veth, named like the kubelet's: 'veth' + 8 hex digits (15 bytes at most)."""
        return "veth" + short_hash(self.namespace, self.name, self.uid)

    @property
    def builtin_ports(self) -> list[tuple[int, str]]:
        """(port, protocol) served by netlab's built-in test server: ports of containers with no command."""
        return list(self.builtin_apps)

    @property
    def builtin_apps(self) -> dict[tuple[int, str], dict]:
        """(port, protocol) -> what the built-in server answers there ({"app": "netexec"}, or a well-known
        image's program: netlab/workload/images.py); a declared port its program does not open is left out."""
        out = {}
        for c in self.containers:
            if not c.command and not c.args:
                for p in c.ports:
                    app = c.apps.get(f"{p.port}/{p.protocol}", {"app": "netexec"})
                    if p.protocol in ("TCP", "UDP") and app.get("app") != "none":
                        out[(p.port, p.protocol)] = app
        return out

    @property
    def netexec_ports(self) -> list[tuple[int, str]]:
        """The built-in ports that answer as agnhost netexec (/hostname names the pod: what probes use)."""
        return [k for k, app in self.builtin_apps.items() if app.get("app") == "netexec"]

    @property
    def commands(self) -> list[tuple[str, list[str]]]:
        """(container name, argv) of containers that run a real command."""
        return [(c.name, c.command + c.args) for c in self.containers if c.command or c.args]

    def port_named(self, name: str, protocol: str) -> int | None:
        for c in self.containers:
            for p in c.ports:
                if p.name == name and p.protocol == protocol:
                    return p.port
        return None

    def fingerprint(self) -> str:
        """What, if it changes, means the pod must be recreated (its spec; not its labels)."""
        parts = [self.node, str(self.ip)] + (["hostNetwork"] if self.host_network else [])
        for c in self.containers:
            ports = [(p.port, p.protocol, p.name) + ((p.host_port, p.host_ip) if p.host_port else ())
                     for p in c.ports]
            parts.append(repr((c.name, c.image, c.command, c.args, ports, sorted(c.env.items()), c.working_dir)))
            if c.apps:   # a well-known image's behaviour (only then: other pods keep their fingerprint)
                parts.append(repr(sorted((k, sorted(v.items())) for k, v in c.apps.items())))
        return short_hash(*parts, n=16)


@dataclass
class ServicePort:
    name: str | None
    port: int
    protocol: str
    target_port: int | str
    node_port: int | None


@dataclass
class Endpoint:
    ip: ipaddress.IPv4Address
    port: int
    node: str
    pod: str                 # pod name
    namespace: str
    ready: bool = True
    # EndpointSlice conditions: a terminating endpoint (its pod is being deleted) is not ready; it is
    # serving while its pod still passes its readiness (kube-proxy falls back to those: render.services)
    serving: bool = True
    terminating: bool = False


@dataclass
class Service:
    spec: ServiceSpec
    cluster_ip: ipaddress.IPv4Address | None      # None for headless and ExternalName
    ports: list[ServicePort]
    # endpoints per service port name ("" for an unnamed port)
    endpoints: dict[str, list[Endpoint]] = field(default_factory=dict)
    # a Service without a selector: the EndpointSlices (or Endpoints) written for it by hand
    # (spec.types.EndpointSliceSpec); its endpoints are theirs, addresses of pods or of any host
    slices: list = field(default_factory=list)
    # spec.healthCheckNodePort as the API server allocates it (type LoadBalancer with externalTrafficPolicy
    # Local: the given port, else one from the node port range, kept across passes); None otherwise
    health_check_node_port: int | None = None

    @property
    def namespace(self) -> str:
        return self.spec.namespace

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def type(self) -> str:
        return self.spec.type

    @property
    def headless(self) -> bool:
        return self.spec.cluster_ip == "None"


@dataclass
class Cluster:
    name: str                # the lab name
    networking: Networking
    nodes: list[Node]
    namespaces: list[str]
    pods: list[Pod]
    services: list[Service]
    gateway_ip: ipaddress.IPv4Address      # the underlay's "outside world" address
    external_ip: ipaddress.IPv4Address     # the external client host
    source: str | None = None
    ipam_last: dict[str, str] = field(default_factory=dict)
    expectations: list[ExpectSpec] = field(default_factory=list)
    # (where, path, PodTemplate) of the DaemonSets, Jobs and CronJobs of the scenario: their pods come from
    # a live lab's controllers, not from this model; preflight checks their commands all the same
    templates: list = field(default_factory=list)
    # NetworkPolicies (netpol.policy.NetworkPolicy) and the namespaces' labels they select by
    # (kubernetes.io/metadata.name is added where they are read: netpol.evaluate.namespace_labels)
    policies: list = field(default_factory=list)
    namespace_labels: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def prefix(self) -> str:
        return lab_prefix(self.name)

    def node_subnet(self, node: Node) -> ipaddress.IPv4Network:
        """The underlay subnet `node`'s eth0 is in."""
        return node.underlay_subnet(self.networking.node_subnet)

    def node_gateway(self, node: Node) -> ipaddress.IPv4Address:
        """The underlay gateway of `node`'s subnet (its first address; the underlay routes between subnets)."""
        return self.gateway_ip if node.subnet is None else node.subnet.network_address + 1

    def extra_subnets(self) -> list[ipaddress.IPv4Network]:
        """The nodes' own underlay subnets beside nodeSubnet (nodes[].subnet), in order."""
        return list(dict.fromkeys(n.subnet for n in self.nodes if n.subnet is not None))

    def same_subnet(self, a: Node, b: Node) -> bool:
        """Whether two nodes share an underlay subnet (CrossSubnet routes between them directly)."""
        return self.node_subnet(a) == self.node_subnet(b)

    @property
    def external_ip2(self) -> ipaddress.IPv4Address:
        """The external host's second address (the one below `external_ip`), on the same interface: a
        second client source outside the cluster, e.g. for loadBalancerSourceRanges (`curl --interface`)."""
        return self.external_ip - 1

    @property
    def underlay_netns(self) -> str:
        """The namespace of the lab's underlay gateway and external host: `nl.<lab>.underlay`, or, on a lab
        spread over hosts, the first host's (its underlay bridge holds the gateway; the others reach it over
        the underlay's VXLAN between the hosts)."""
        hosts = self.networking.hosts
        return names.underlay_netns(self.name) if hosts is None else names.host_netns(self.name, hosts.home.name)

    def node_underlay_netns(self, node: Node) -> str:
        """The namespace whose underlay bridge `node`'s eth0 hangs off: its host's, or the lab's underlay."""
        if node.host is None:
            return names.underlay_netns(self.name)
        return names.host_netns(self.name, node.host)

    def nodes_on_host(self, host: str) -> list[Node]:
        """The nodes placed on `host` (in document order)."""
        return [n for n in self.nodes if n.host == host]

    @property
    def segment_netns(self) -> str:
        return names.segment_netns(self.name)

    def host_netns(self, host: str) -> str:
        return names.host_netns(self.name, host)

    @property
    def external_netns(self) -> str:
        return names.external_netns(self.name)

    def node(self, name: str) -> Node:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    def pods_on(self, node: str) -> list[Pod]:
        """The pods placed on `node`, in the model's order. Indexed once per list of pods (asked for each
        node of a pass, a scan of every pod each time was a million comparisons at 100 x 10,000); the
        index is made again when `pods` is another list or its length changed."""
        idx = self.__dict__.get("_pods_by_node")
        if idx is None or idx[0] is not self.pods or idx[1] != len(self.pods):
            by: dict[str, list[Pod]] = {}
            for p in self.pods:
                by.setdefault(p.node, []).append(p)
            idx = self.__dict__["_pods_by_node"] = (self.pods, len(self.pods), by)
        return list(idx[2].get(node, ()))

    def pod(self, namespace: str, name: str) -> Pod | None:
        for p in self.pods:
            if p.namespace == namespace and p.name == name:
                return p
        return None
