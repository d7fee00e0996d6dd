"""The probe kinds, one module per way of probing; PROBE_CLASSES says which class runs each kind.
A new kind is a module here, its entry in PROBE_CLASSES and its name in netlab.probe.spec.KINDS (plus,
if it needs sockets or reply matching of its own, what group.Group makes or dispatches for it)."""
from __future__ import annotations

from ..spec import KINDS
from .base import Probe, Retry
from .http import HttpProbe
from .raw import RawProbe
from .udp_app import UdpAppProbe

PROBE_CLASSES = {"icmp": RawProbe, "tcp": RawProbe, "udp": RawProbe,
                 "http": HttpProbe, "udp-app": UdpAppProbe}

assert set(PROBE_CLASSES) == set(KINDS), "every probe kind needs a class"

__all__ = ["PROBE_CLASSES", "HttpProbe", "Probe", "RawProbe", "Retry", "UdpAppProbe"]
