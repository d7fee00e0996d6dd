"""Where `get` puts what it shows of each kind, as kubectl prints it.

One kind (`get pods`): its objects (-o json|yaml: a List, or the object itself for one name), its table, or
its "No resources found" line. Several kinds (`get deploy,svc`, `get all`): every object of every kind in one
List for -o json|yaml; each kind's table after the one before with a blank line between, the kind in its NAME
column (`deployment.apps/web`: kubectl turns its --show-kind on when several types are asked for); a kind with
nothing to show shows nothing, and "No resources found" is said once, when none had anything.
"""
from __future__ import annotations

import contextlib

import click

from .. import output as out


class Sink:
    def __init__(self, fmt: str | None, several: bool, namespace: str, all_namespaces: bool):
        self.fmt, self.several = fmt, several
        self.items: list[dict] = []
        self.tables = 0
        self.none = "No resources found" + ("" if all_namespaces else f" in {namespace} namespace") + "."

    @contextlib.contextmanager
    def kind(self, name: str):
        """While one kind (kubectl's name of it: `deployment.apps`) is shown: its tables' NAME column says it too,
        when several kinds are."""
        token = out.SHOW_KIND.set(name if self.several else "")
        try:
            yield self
        finally:
            out.SHOW_KIND.reset(token)

    def objects(self, objs: list[dict], one: bool = False) -> None:
        """-o json|yaml of a kind's objects (`one`: a single name was asked for: the object, not a List)."""
        if self.several:
            self.items += objs
        else:
            click.echo(out.dump(objs[0] if one and objs else out.as_list(objs), self.fmt), nl=False)

    def table(self, text: str) -> None:
        if not text.strip():
            return
        if self.tables:
            click.echo()
        click.echo(text if text.endswith("\n") else text + "\n", nl=False)
        self.tables += 1

    def empty(self, message: str | None = None) -> None:
        """A kind with nothing to show: its own line (`message`, else kubectl's) when it is the only kind."""
        if not self.several:
            click.echo(message or self.none, err=True)

    def finish(self) -> None:
        """After the last kind: several kinds' List (-o json|yaml), or the one "No resources found"."""
        if not self.several:
            return
        if self.fmt in ("json", "yaml"):
            click.echo(out.dump(out.as_list(self.items), self.fmt), nl=False)
        elif self.fmt != "name" and not self.tables:
            click.echo(self.none, err=True)
