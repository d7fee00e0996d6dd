"""Typed access to one YAML mapping, with errors that carry the document and the field path.

A `Fields` wraps one mapping of a document. Every getter names the path it read, so an error reads
`Pod default/web: spec.containers[0].ports[1].containerPort 70000 is out of range 1-65535; ...`.
Keys that the code never asked for are collected as "ignored" so the user hears once that netlab
does not emulate them, instead of having them silently dropped; keys that the object's type does not
have at all (netlab/spec/known.py) are problems: "unknown field spec.replica; did you mean replicas?".
A required field that is absent while the mapping has an unknown key close to it (`prots:` for
`ports:`) is reported as that unknown key, as kubectl's strict field validation does, not as missing:
`missing()` is the one place every "is required" / "must list at least one" error is made.
Values must have the type Kubernetes gives the field (a string is not an integer, nor the reverse), as
kubectl refuses them.
"""
from __future__ import annotations

import datetime
import difflib
import ipaddress
import re
from typing import Any, Iterator

from ..errors import SpecError
from .known import KNOWN

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
IANA_SVC_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
LABEL_KEY = re.compile(r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")


def shown(value: Any, limit: int = 40) -> str:
    """A value as it is quoted in an error: repr-like, cut short, with control characters escaped."""
    text = value if isinstance(value, str) else repr(value)
    text = text.encode("unicode_escape").decode("ascii")
    if len(text) > limit:
        text = text[:limit] + "..."
    return f"'{text}'" if isinstance(value, str) else text


class Fields:
    """One mapping inside a document; `where` names the document, `path` the mapping's place in it.
    `schema` names its type in KNOWN (None: any key is known); problems that do not stop the parse
    (unknown fields) are appended to `problems`."""

    def __init__(self, data: Any, where: str, path: str, ignored: list[str], schema: str | None = None,
                 problems: list[SpecError] | None = None, origin: "tuple[Fields, str] | None" = None):
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise SpecError(where, f"{path or 'the document'} must be a mapping, not {type_name(data)}",
                            "write it as 'key: value' lines")
        self.data, self.where, self.path, self.ignored = data, where, path, ignored
        self.schema = schema
        self.problems = problems if problems is not None else []
        self.seen: set[str] = set()
        self.origin = origin  # (parent, key) of a mapping made up for an absent key: its typo is the parent's

    # ---- paths and errors ----
    def at(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def error(self, key: str | None, problem: str, fix: str | None = None) -> SpecError:
        path = self.at(key) if key else (self.path or "document")
        return SpecError(self.where, f"{path} {problem}", fix)

    def missing(self, key: str, problem: str = "is required", fix: str | None = None) -> SpecError:
        """The error for a required `key` that is absent. When this mapping has an unknown key close to
        it, that key is the problem (kubectl: "unknown field spec.prots"); the same is asked of the
        parent when this mapping itself stands for an absent key (`spc:` for a template's `spec:`)."""
        fields: Fields | None = self
        wanted = key
        while fields is not None:
            typo = fields._typo_of(wanted)
            if typo is not None:
                fields.seen.add(typo)  # reported here: done() does not report it again
                return SpecError(fields.where, f"unknown field {fields.at(shown(typo)[1:-1])}", f"did you mean {wanted}?")
            fields, wanted = fields.origin if fields.origin is not None else (None, "")
        return self.error(key, problem, fix if fix is not None else f"set {self.at(key)}")

    def _typo_of(self, key: str) -> str | None:
        """The unknown key of this mapping most like `key`, if one is close (difflib's 0.6 ratio)."""
        known = KNOWN.get(self.schema) if self.schema else None
        if known is None:
            return None
        unknown = [k for k in self.data if isinstance(k, str) and k not in known and k not in self.seen]
        near = difflib.get_close_matches(key, unknown, n=1, cutoff=0.6)
        return near[0] if near else None

    def has(self, key: str) -> bool:
        return key in self.data and self.data[key] is not None

    def raw(self, key: str, default: Any = None) -> Any:
        self.seen.add(key)
        value = self.data.get(key, default)
        return default if value is None else value

    def skip(self, *keys: str) -> None:
        """Keys that are accepted and deliberately not used (they carry no dataplane meaning)."""
        self.seen.update(keys)

    def ignore_unless(self, key: str, *defaults: Any) -> None:
        """A field netlab does not emulate that changes nothing at its default value(s) (which manifests
        saved from a live cluster carry): reported as ignored only when set to something else."""
        value = self.raw(key)
        if value is not None and not any(value == d and type(value) is type(d) for d in defaults):
            self.ignored.append(f"{self.where}: {self.at(key)}")

    def done(self) -> None:
        """Record every key that was not read: a field of the object's type as ignored (reported to
        the user once), any other key as a problem (an unknown field, as kubectl's strict validation)."""
        known = KNOWN.get(self.schema) if self.schema else None
        for key in self.data:
            if key in self.seen:
                continue
            if known is None or key in known:
                self.ignored.append(f"{self.where}: {self.at(str(key))}")
                continue
            near = difflib.get_close_matches(str(key), list(known), n=1, cutoff=0.6)
            fix = f"did you mean {near[0]}?" if near else \
                f"remove it: {self.schema} has no such field (kubectl's strict field validation refuses it too)"
            label = shown(key)[1:-1] if isinstance(key, str) else shown(key)
            self.problems.append(SpecError(self.where, f"unknown field {self.at(label)}", fix))

    def child(self, key: str) -> str | None:
        """The schema type of the value at `key`."""
        return (KNOWN.get(self.schema) or {}).get(key) if self.schema else None

    # ---- typed getters ----
    def str(self, key: str, default: str | None = None, required: bool = False) -> str | None:
        value = self.raw(key)
        if value is None:
            if required:
                raise self.missing(key)
            return default
        if not isinstance(value, str):
            raise self.error(key, f"must be a string, not {type_name(value)}", quote_fix(value))
        return value

    def int(self, key: str, default: int | None = None, lo: int | None = None, hi: int | None = None,
            required: bool = False) -> int | None:
        value = self.raw(key)
        if value is None:
            if required:
                raise self.missing(key)
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            # kubectl refuses a quoted number ("80") where an integer is expected: so does netlab
            if isinstance(value, str) and len(value) < 20 and re.fullmatch(r"\s*-?[0-9]+\s*", value):
                raise self.error(key, f"must be an integer, not {type_name(value)}", "write the number without quotes")
            raise self.error(key, f"must be an integer, not {type_name(value)}", "write a whole number")
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            bounds = f"{lo}-{hi}" if lo is not None and hi is not None else \
                f"at least {lo}" if lo is not None else f"at most {hi}"
            raise self.error(key, f"{value} is out of range {bounds}",
                             f"use a number from {lo} to {hi}" if lo is not None and hi is not None
                             else f"use a number {bounds}")
        return value

    def bool(self, key: str, default: bool = False) -> bool:
        value = self.raw(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self.error(key, f"must be true or false, not {shown(value)}", "write true or false")
        return value

    def choice(self, key: str, choices: tuple[str, ...], default: str | None = None) -> str | None:
        value = self.str(key)
        if value is None:
            return default
        if value not in choices:
            raise self.error(key, f"{shown(value)} is not supported", f"use one of: {', '.join(choices)}")
        return value

    def map(self, key: str) -> "Fields":
        origin = None if self.has(key) else (self, key)
        return Fields(self.raw(key, {}), self.where, self.at(key), self.ignored, self.child(key), self.problems,
                      origin)

    def list(self, key: str) -> list[Any]:
        value = self.raw(key, [])
        if not isinstance(value, list):
            raise self.error(key, f"must be a list, not {type_name(value)}", "write it as '- item' lines")
        return value

    def maps(self, key: str) -> Iterator["Fields"]:
        for i, item in enumerate(self.list(key)):
            yield Fields(item, self.where, f"{self.at(key)}[{i}]", self.ignored, self.child(key), self.problems)

    def strmap(self, key: str, labels: bool = True) -> dict[str, str]:
        """A map of string to string (labels, nodeSelector, matchLabels)."""
        value = self.raw(key, {})
        if not isinstance(value, dict):
            raise self.error(key, f"must be a mapping of strings, not {type_name(value)}",
                             "write it as 'key: value' lines")
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise self.error(key, f"key {'null' if k is None else shown(k)} is not a string", quote_fix(k))
            if not isinstance(v, str):
                raise self.error(f"{key}.{k}", f"must be a string, not {type_name(v)}", quote_fix(v))
            if labels and not LABEL_KEY.match(k):
                raise self.error(key, f"key {shown(k)} is not a valid label key",
                                 "use an optional DNS prefix and '/', then at most 63 letters, digits, '-', '_', '.'")
            if labels and not LABEL_VALUE.match(v):
                raise self.error(f"{key}.{k}", f"{shown(v)} is not a valid label value",
                                 "use at most 63 characters: letters, digits, '-', '_', '.'")
            out[k] = v
        return out

    def strlist(self, key: str) -> list[str]:
        out = []
        for i, v in enumerate(self.list(key)):
            if not isinstance(v, str):
                raise self.error(f"{key}[{i}]", f"must be a string, not {type_name(v)}", quote_fix(v))
            out.append(v)
        return out

    def network(self, key: str, default: str, min_prefix: int = 0, max_prefix: int = 32) -> ipaddress.IPv4Network:
        value = self.str(key, default)
        try:
            net = ipaddress.ip_network(value, strict=True)
        except ValueError:
            try:
                ipaddress.ip_network(value, strict=False)
            except ValueError:
                raise self.error(key, f"{shown(value)} is not a CIDR", "write it like 10.244.0.0/16") from None
            raise self.error(key, f"{shown(value)} has host bits set",
                             f"use {ipaddress.ip_network(value, strict=False)}") from None
        if net.version != 4:
            raise self.error(key, f"{value} is IPv6", "netlab emulates IPv4 clusters only; use an IPv4 CIDR")
        if not min_prefix <= net.prefixlen <= max_prefix:
            raise self.error(key, f"{value} has prefix /{net.prefixlen}",
                             f"use a prefix between /{min_prefix} and /{max_prefix}")
        return net

    def name(self, key: str, what: str = "name", required: bool = True, subdomain: bool = False,
             default: str | None = None) -> str | None:
        value = self.str(key, default, required=required)
        if value is None:
            return None
        check_name(value, self.where, self.at(key), subdomain=subdomain)
        return value


def check_name(value: str, where: str, path: str, subdomain: bool = False, max_len: int | None = None) -> None:
    limit = max_len or (253 if subdomain else 63)
    pattern = DNS1123_SUBDOMAIN if subdomain else DNS1123_LABEL
    if len(value) > limit or not pattern.match(value):
        kind = "subdomain" if subdomain else "label"
        raise SpecError(where, f"{path} {shown(value)} is not a valid DNS-1123 {kind}",
                        f"use at most {limit} lowercase letters, digits and '-'"
                        + (" or '.'" if subdomain else "") + ", starting and ending with a letter or digit")


def quote_fix(value: Any) -> str:
    """The fix for a value of the wrong type where a string is expected."""
    if value is None or isinstance(value, (list, dict)):
        return "write a string"
    text = str(value).lower() if isinstance(value, bool) else str(value)
    return f"quote it, e.g. \"{shown(text)[1:-1]}\""


def type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return f"the number {shown(value)}"
    if isinstance(value, str):
        return f"the string {shown(value)}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    if value is None:
        return "null"
    if isinstance(value, (datetime.date, datetime.datetime)):
        return f"a date ({value})"
    if isinstance(value, bytes):
        return "binary data"
    return type(value).__name__
