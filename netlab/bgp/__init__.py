"""The BGP backend (`networking.backend: bgp`): routable pod networks, as Calico's and Cilium's BGP modes
make them. Every node runs a real BGP speaker, BIRD 2 (Debian's bird2), in its own network namespace;
the external host of the lab runs one too and stands for the data centre's router.

- `bird`: the speakers' configurations, a pure function of the model (golden-tested), and the parser
  of `birdc show protocols`;
- `netlab/dataplane/bgp.py`: the kernel side (start, reload, read the sessions).

MetalLB's BGP mode (netlab/lb/bgpmode.py) reuses both: its LB prefixes are one more static protocol
(`lb_ips`) named in `ANNOUNCED`'s filter, its sessions those to the same external router; with a backend
other than bgp the nodes a BGPPeer selects run BIRD for that session only.
"""
from __future__ import annotations

PACKAGES = "bird2"          # the Debian package with bird and birdc
TOOLS = ("bird", "birdc")
