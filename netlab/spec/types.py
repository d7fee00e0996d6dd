"""The scenario as parsed and validated: plain data, no defaults left to resolve, no kernel state."""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from .. import proxymodes
from ..netpol import renderers as policy_renderers
from ..workload.resolvconf import PodDns
from .security import SecurityContext

BACKENDS = ("vxlan", "host-gw", "bgp", "ipip")
TUNNEL_MODES = ("Always", "CrossSubnet")     # Calico's IPPool ipipMode / vxlanMode (Never: backend host-gw)
PROXY_MODES = proxymodes.names()            # netlab/proxymodes/: one module per kube-proxy mode
POLICY_RENDERERS = policy_renderers.names()   # netlab/netpol/renderers/: one module per NetworkPolicy renderer
IPTABLES_FLAVOURS = ("auto", "legacy", "nft")
NFT_CHOICES = ("vmap", "ladder")
IPVS_SCHEDULERS = ("rr", "lc", "dh", "sh", "sed", "nq", "wrr", "wlc", "lblc", "lblcr", "mh")
PROTOCOLS = ("TCP", "UDP", "SCTP")
RESTART_POLICIES = ("Always", "OnFailure", "Never")


@dataclass
class NodeSpec:
    name: str
    role: str                      # control-plane | worker
    labels: dict[str, str] = field(default_factory=dict)
    schedulable: bool = True       # kind taints the control plane when workers exist
    subnet: ipaddress.IPv4Network | None = None   # its own underlay subnet, routed by the gateway (None: nodeSubnet)
    host: str | None = None        # the host it is placed on (the Cluster document's hosts; None: one machine)


DNS_POD_MODES = ("insecure", "verified", "disabled")   # CoreDNS kubernetes plugin's `pods`


@dataclass
class DnsConfig:
    """The Cluster document's `dns:` map: how the lab's cluster DNS answers (netlab/dns/)."""
    pods: str = "insecure"         # pod A records a-b-c-d.NS.pod.DOMAIN: insecure | verified | disabled
    ttl: int = 30                  # kubeadm's Corefile: ttl 30
    # resolvers for names outside the cluster domain; None: the host's (/etc/resolv.conf), read when the
    # lab's zone is written (netlab/dns/upstream.py)
    upstreams: tuple[str, ...] | None = None
    replicas: int = 2              # the coredns Deployment's replicas; 0: no cluster DNS server runs


@dataclass
class IngressConfig:
    """The Cluster document's `ingress:` map: the ingress-nginx add-on (netlab/ingress/addon.py)."""
    class_name: str = "nginx"                # the IngressClass the add-on makes and serves
    default_class: bool = False              # annotated ingressclass.kubernetes.io/is-default-class
    service_type: str = "NodePort"           # the controller Service: NodePort | LoadBalancer
    http_node_port: int | None = None        # None: allocated
    https_node_port: int | None = None
    replicas: int = 1
    external_traffic_policy: str = "Cluster"  # Local keeps the client's address (X-Forwarded-For)
    load_balancer_ip: str | None = None      # spec.loadBalancerIP of a LoadBalancer controller Service


AS_TRANS = 23456                 # RFC 6793's placeholder for a 4-byte AS: no speaker may use it
DEFAULT_AS = 64512               # Calico's default AS number
DEFAULT_EXTERNAL_AS = 64513


@dataclass
class BgpConfig:
    """The Cluster document's `networking.bgp:` map: the BGP backend (netlab/bgp/). Every node runs BIRD in
    AS `as_number`: a full iBGP mesh, or (route_reflector) the first node reflects for the others; each
    node also peers with the external router (AS `external_as`, eBGP unless the same number is given)."""
    as_number: int = DEFAULT_AS
    route_reflector: bool = False
    nat_outgoing: bool = False     # Calico's IPPool natOutgoing: masquerade pod traffic leaving the pod network
    hold_time: int = 6             # seconds without a message before a session is declared down
    keepalive_time: int = 2
    external_as: int = DEFAULT_EXTERNAL_AS
    external_address: str | None = None   # the external router's address on the underlay (None: the external host's)


HOST_MODES = ("emulated", "real")   # hostNetwork.mode: hosts as namespaces of this machine, or machines
# hostNetwork.store: the lab's store on this machine (SQLite), or in an etcd cluster of one member per emulated host
HOST_STORES = ("sqlite", "etcd")
HOSTS_VXLAN_PORT = 4789            # the underlay's VXLAN between hosts (IANA's port; flannel.1 keeps 8472)
HOSTS_VXLAN_VNI = 4242             # ... and its VNI (flannel.1's is 1)
HOSTS_VXLAN_OVERHEAD = 50          # outer Ethernet 14 + IPv4 20 + UDP 8 + VXLAN 8
HOSTS_SEGMENT = "192.168.240.0/24"  # emulated hosts' segment, when the document gives none


@dataclass
class HostSpec:
    """One host of the lab (the Cluster document's `hosts[]`)."""
    name: str
    address: ipaddress.IPv4Address      # its NIC's address on the hosts' segment
    interface: str = "eth0"             # its NIC (emulated: always eth0 in nl.<lab>.host.<name>)
    nodes: int | None = None            # spread by count: how many of the unplaced nodes it takes


@dataclass
class HostsConfig:
    """The lab's hosts and the segment between them (`hosts` and `hostNetwork`)."""
    mode: str                           # emulated | real
    segment: ipaddress.IPv4Network      # the network of the hosts' NICs
    mtu: int                            # the hosts' NIC MTU
    vni: int                            # the underlay VXLAN between the hosts
    port: int
    hosts: list[HostSpec] = field(default_factory=list)
    store: str = "sqlite"               # hostNetwork.store: etcd runs a member and the agent inside each host

    def host(self, name: str) -> HostSpec:
        return next(h for h in self.hosts if h.name == name)

    @property
    def home(self) -> HostSpec:
        """The first host: where the underlay's gateway and the external host live."""
        return self.hosts[0]


@dataclass
class Networking:
    pod_subnet: ipaddress.IPv4Network
    service_subnet: ipaddress.IPv4Network
    node_subnet: ipaddress.IPv4Network
    node_cidr_mask: int
    backend: str
    proxy_mode: str
    iptables_flavour: str
    ipvs_scheduler: str
    dns_domain: str
    nodeport_range: tuple[int, int]
    mtu: int                       # underlay MTU; pods get mtu - 50 with VXLAN
    nft_choice: str = "vmap"       # nftables mode's endpoint choice: kube-proxy's vmap, or the faster ladder
    dns: DnsConfig = field(default_factory=DnsConfig)   # the Cluster document's `dns:` map
    ipvs_strict_arp: bool = False  # kube-proxy's ipvs.strictARP: arp_ignore=1, arp_announce=2 on the nodes
    ingress: IngressConfig | None = None     # the Cluster document's `ingress:` map (None: no add-on)
    policy_renderer: str = "iptables"        # networkPolicyRenderer: netlab/netpol/renderers/<name>.py
    bgp: BgpConfig | None = None             # networking.bgp (backend bgp only)
    # backend ipip's ipipMode / vxlan's vxlanMode (Calico's IPPool fields): Always encapsulates to every
    # peer node; CrossSubnet only to peers in another underlay subnet (direct routes to the others)
    tunnel_mode: str = "Always"
    hosts: HostsConfig | None = None         # the Cluster document's hosts (None: the lab is on one machine)


@dataclass
class ContainerPort:
    port: int
    protocol: str = "TCP"
    name: str | None = None
    host_port: int | None = None   # hostPort: forwarded from the node as CNI's portmap does (hostNetwork: = port)
    host_ip: str | None = None     # hostIP: the node address the hostPort is opened on (None: all)


@dataclass
class VolumeMount:
    name: str
    mount_path: str
    read_only: bool = False
    sub_path: str = ""


@dataclass
class Volume:
    """A pod volume: `kind` is its source's field (emptyDir, hostPath, configMap, secret, downwardAPI,
    projected, persistentVolumeClaim...), `source` that field's value as written (the API's form)."""
    name: str
    kind: str
    source: dict = field(default_factory=dict)


@dataclass
class ContainerSpec:
    name: str
    image: str | None
    command: list[str]
    args: list[str]
    ports: list[ContainerPort]
    env: dict[str, str] = field(default_factory=dict)
    working_dir: str | None = None
    delay_shutdown: int = 0     # agnhost netexec --delay-shutdown: seconds it keeps serving after SIGTERM
    # a well-known image's behaviour (netlab/workload/images.py): "PORT/PROTO" -> what the built-in server
    # answers there ({"app": NAME, ...}); ports not listed get agnhost netexec, as any built-in container
    apps: dict[str, dict] = field(default_factory=dict)
    security: SecurityContext = field(default_factory=SecurityContext)   # pod's and container's, merged
    mounts: list[VolumeMount] = field(default_factory=list)   # volumeMounts
    # env entries with valueFrom, envFrom, $(VAR) references: the kubelet resolves them when it starts the
    # container (netlab/workload/podenv.py); `env` holds the literal values only
    kubelet_env: bool = False


@dataclass
class PodTemplate:
    labels: dict[str, str]
    node_name: str | None
    node_selector: dict[str, str]
    containers: list[ContainerSpec]
    tolerate_control_plane: bool = False
    restart_policy: str = "Always"   # Always | OnFailure | Never: whether `up` restarts an ended container
    hostname: str | None = None      # spec.hostname: the pod's UTS hostname (default: the pod's name)
    host_network: bool = False       # hostNetwork: the pod runs in its node's network namespace, with its IP
    volumes: list[Volume] = field(default_factory=list)
    dns: PodDns = field(default_factory=PodDns)   # dnsPolicy, dnsConfig, hostAliases, subdomain


@dataclass
class PodSpec:
    namespace: str
    name: str
    template: PodTemplate
    owner: str | None = None       # "Deployment/name" for generated pods


@dataclass
class DeploymentSpec:
    namespace: str
    name: str
    replicas: int
    selector: dict[str, str]
    template: PodTemplate


@dataclass
class StatefulSetSpec(DeploymentSpec):
    service_name: str = ""
    start: int = 0                 # spec.ordinals.start: the first pod is <name>-<start>


@dataclass
class ServicePortSpec:
    name: str | None
    port: int
    protocol: str
    target_port: int | str         # a number, or a named containerPort
    node_port: int | None


@dataclass
class ServiceSpec:
    namespace: str
    name: str
    type: str                      # ClusterIP | NodePort | LoadBalancer | ExternalName
    selector: dict[str, str] | None
    ports: list[ServicePortSpec]
    cluster_ip: str | None         # None: allocate; "None": headless
    external_ips: list[str]
    load_balancer_ip: str | None
    session_affinity: str
    affinity_timeout: int
    external_traffic_policy: str
    internal_traffic_policy: str
    external_name: str | None
    labels: dict[str, str]
    publish_not_ready: bool = False  # publishNotReadyAddresses: pods that are not ready are endpoints too
    # LoadBalancer (issue 14). lb_ingress: the Service's status.loadBalancer.ingress as the lab's store
    # holds it (written by the load-balancer IPAM controller), entries {"ip": ..., "ipMode": "VIP"|"Proxy"};
    # what kube-proxy reads (render.services.lb_ingress_ips). The rest are the spec's fields.
    lb_ingress: list[dict] = field(default_factory=list)
    source_ranges: list[str] = field(default_factory=list)   # loadBalancerSourceRanges (CIDRs)
    health_check_node_port: int | None = None                # spec.healthCheckNodePort as written
    allocate_lb_node_ports: bool = True                      # spec.allocateLoadBalancerNodePorts
    lb_class: str | None = None                              # spec.loadBalancerClass


@dataclass
class SliceEndpointSpec:
    ip: str
    ready: bool = True
    serving: bool = True
    terminating: bool = False


@dataclass
class SlicePortSpec:
    name: str | None
    port: int
    protocol: str = "TCP"


@dataclass
class EndpointSliceSpec:
    """An EndpointSlice (discovery.k8s.io/v1) or Endpoints (v1) object written by hand, for a Service
    without a selector: `service` is its kubernetes.io/service-name label (Endpoints: its own name)."""
    namespace: str
    name: str
    service: str | None
    endpoints: list[SliceEndpointSpec]
    ports: list[SlicePortSpec]
    kind: str = "EndpointSlice"     # or "Endpoints"


@dataclass
class ExpectSpec:
    """An expectation for `netlab probe`: what must (not) be reachable."""
    source: str
    target: str
    expect: str                    # reachable | refused | timeout | unreachable | blocked
    backends: str | int | None = None
    protocol: str | None = None


@dataclass
class Scenario:
    name: str
    nodes: list[NodeSpec]
    networking: Networking
    namespaces: list[str]
    pods: list[PodSpec]
    deployments: list[DeploymentSpec]
    services: list[ServiceSpec]
    expectations: list[ExpectSpec]
    ignored: list[str]
    source: str | None = None      # file path, or "<default>"
    # the Kubernetes objects as written (every document but the Cluster one, Lists flattened), in
    # order: what `up` and `apply` write to the lab's store (netlab/live/objects.py)
    documents: list[dict] = field(default_factory=list)
    replicasets: list[DeploymentSpec] = field(default_factory=list)   # standalone ReplicaSets
    inert: list[str] = field(default_factory=list)    # ConfigMap, Secret, ServiceAccount: stored, not used yet
    addons: list[str] = field(default_factory=list)   # add-ons' custom resources: stored, not emulated
    # EndpointSlices and Endpoints written by hand (the endpoints of Services without a selector)
    slices: list[EndpointSliceSpec] = field(default_factory=list)
    statefulsets: list[StatefulSetSpec] = field(default_factory=list)   # pods <name>-<ordinal>
    # (where, path, PodTemplate) of DaemonSets, Jobs and CronJobs (their pods come from the control loop)
    templates: list = field(default_factory=list)
    policies: list = field(default_factory=list)      # netpol.policy.NetworkPolicy, in document order
    namespace_labels: dict[str, dict[str, str]] = field(default_factory=dict)   # Namespace name -> labels
