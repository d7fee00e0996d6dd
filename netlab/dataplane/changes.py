"""What an `up` changed, as data: each change says what kind of object, which one, in which network
namespace, and what was done to it; its text is only for people (`netlab up -v`). Callers filter
changes by their fields, never by parsing the text."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Change:
    kind: str          # namespace, link, address, route, neighbour, fdb, sysctl, pod, container, server,
                       # readiness, rules (proxy), other
    object: str        # which one: a link or namespace name, an address, a pod key, a container...
    action: str        # create, remove, update, start, stop, restart, reload, adopt, rebuild, ready, not-ready, sync
    detail: str        # in words, without where
    namespace: str = ""   # the network namespace it happened in
    subject: str = ""     # what the line is about, when that is not the namespace ("pod default/web")

    def __str__(self) -> str:
        where = self.subject or self.namespace
        return f"{where}: {self.detail}" if where else self.detail


@dataclass
class Changes:
    """The changes of one apply, in order; `up` prints the count, `-v` the list."""
    records: list[Change] = field(default_factory=list)

    def add(self, change: Change | str) -> None:
        """A Change; a plain line (from code that does not describe its changes as data yet) is kept as
        a change of kind "other"."""
        self.records.append(change if isinstance(change, Change) else Change("other", "", "", change))

    @property
    def items(self) -> list[str]:
        """The changes as lines of text."""
        return [str(c) for c in self.records]

    def __len__(self) -> int:
        return len(self.records)
