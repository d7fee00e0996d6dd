"""The files the add-ons' pods read, published by a live lab after its passes: the cluster DNS's zone
(dnszone.py), MetalLB's layer-2 and BGP announcements (lbannounce.py), ingress-nginx's configuration and
certificates (ingresspub.py). Each publisher is made on first use and writes only what changed; a
failure is recorded in `errors` (the next pass writes again; the pods keep serving the old file).

Between passes (the control loop with nothing for the dataplane) MetalLB's pools and advertisements
and the Ingresses, IngressClasses and Secrets still change what the pods must read: `between_passes`
publishes those again with the last pass's model.

Where the controllers run (the lab's control loop, or the agent that leads) the publishers also write what
the add-ons write in the store: MetalLB's events, the Ingresses' status and events. An agent of a real host
that does not lead (`tell` False) writes its machine's files only, for the add-on pods there: a machine's
files are on its own disk. MetalLB's BGP mode also starts and reloads the BIRD speakers: on one machine
where the controllers run, for every node; on real hosts by every agent for its own nodes (`own`; the external
router's by the agent of the host it lives on), from its machine's copy of the sessions and routes."""
from __future__ import annotations

from ..model.objects import Cluster


class AddonFiles:
    def __init__(self, lab: str, store, errors: list[str]):
        self.lab, self.store, self.errors = lab, store, errors
        self.zone = None                   # ZonePublisher
        self.lb = None                     # AnnouncementPublisher
        self.bgp = None                    # BgpPublisher (MetalLB's BGP mode)
        self.bgp_cluster: Cluster | None = None   # the last pass's model, for BIRD's configurations
        self.lb_ips: dict | None = None    # the last pass's Services' LB IPs
        self.ingress = None                # IngressPublisher
        self.last_cluster: Cluster | None = None   # the last pass's model
        self.tell = True                   # the store's part too (events, statuses): where the controllers run
        self.own: set[str] | None = None   # an agent of a real host: its nodes (their BGP speakers are its own)
        self.host: str | None = None       # ... and its host (the external router's speaker runs on the home host)

    def publish_zone(self, cluster: Cluster) -> None:
        """The cluster DNS's zone written if what it is made of changed (netlab/live/dnszone.py)."""
        from .dnszone import ZonePublisher
        try:
            if self.zone is None:
                self.zone = ZonePublisher(self.lab)
            self.zone.publish(self.store, cluster)
        except Exception as e:  # noqa: BLE001 - the next pass writes again; the old zone is served meanwhile
            self.errors.append(f"dns zone: {e}")

    def publish_lb(self, cluster: Cluster | None = None) -> None:
        """MetalLB's layer-2 announcements written if they changed (netlab/live/lbannounce.py). Without
        `cluster` (between passes: a pool or an L2Advertisement changed, which no pass reads), with the
        LB IPs of the last pass's model."""
        from .lbannounce import AnnouncementPublisher, lb_ips_of
        try:
            if cluster is not None:
                self.lb_ips = lb_ips_of(cluster)
            elif self.lb_ips is None:
                return
            if self.lb is None:
                self.lb = AnnouncementPublisher(self.lab)
            self.lb.publish(self.store, self.lb_ips, tell=self.tell)
        except Exception as e:  # noqa: BLE001 - the next pass writes again; the speakers keep the old file
            self.errors.append(f"lb announcements: {e}")
        from .lbannounce import BgpPublisher
        try:
            if cluster is not None:
                self.bgp_cluster = cluster
            if self.bgp_cluster is None or not (self.tell or self.own is not None):
                return
            if self.bgp is None:
                self.bgp = BgpPublisher(self.lab)
            self.bgp.publish(self.store, self.lb_ips, self.bgp_cluster, tell=self.tell, own=self.own, host=self.host)
        except Exception as e:  # noqa: BLE001 - the next pass tries again; BIRD keeps its last configuration
            self.errors.append(f"lb BGP announcements: {e}")

    def publish_ingress(self, cluster: Cluster) -> None:
        """The ingress-nginx configuration written if what it is made of changed (netlab/live/ingresspub.py)."""
        self.last_cluster = cluster
        if cluster.networking.ingress is None:
            return
        from .ingresspub import IngressPublisher
        try:
            if self.ingress is None:
                self.ingress = IngressPublisher(self.lab)
            self.ingress.publish(self.store, cluster, tell=self.tell)
        except Exception as e:  # noqa: BLE001 - the next pass writes again; nginx serves the old configuration
            self.errors.append(f"ingress: {e}")

    def before_pass(self, cluster: Cluster) -> None:
        """Before a pass starts add-on pods (up's first pass): the DNS zone and the ingress configuration."""
        self.publish_zone(cluster)
        self.publish_ingress(cluster)

    def after_pass(self, cluster: Cluster) -> None:
        """After a pass: the zone (the pods' addresses and readiness it wrote, their EndpointSlices),
        MetalLB's election on that readiness and those slices, the ingress configuration."""
        self.publish_zone(cluster)
        self.publish_lb(cluster)
        self.publish_ingress(cluster)

    def between_passes(self, synced: bool) -> None:
        """The control loop's look without a pass (`synced` False) republishes MetalLB's announcements;
        the ingress configuration is republished after every look if its inputs moved."""
        if not synced:
            self.publish_lb()
        if self.ingress is not None and self.last_cluster is not None:
            self.publish_ingress(self.last_cluster)
