"""An exercise's definition: `exercises/<name>/exercise.yaml` read and checked strictly. Pure (no root,
no kernel): what is wrong is one line naming the file, the field and the fix (netlab.errors.SpecError,
exit 2).

    title: The three links                 # one line
    task: |                                # what the learner is asked to do
      ...
    hints: [first hint, second hint]       # revealed one at a time by `netlab exercise hint`
    setup:                                 # optional: netlab commands run after the starting scenario is up
    - [node, stop, n2]                     #   (argv without `netlab`; `--lab LAB` is added)
    criteria:                              # each one graded on the wire by `netlab exercise check`
    - name: pod a reaches pod b on its own node
      probe: {from: pod/a, to: pod/b, expect: reachable}

Criteria kinds (exactly one per criterion, next to its `name`):
- `probe: {from, to, expect: reachable, backends: all|N, count: N}`: the probe engine's check (`netlab
  probe --from FROM TO`), graded against `expect` (not against the model's prediction);
- `http: {from, url, host, count, expect_status: 200, expect_body_regex, min_distinct, max_distinct}`:
  `count` requests with curl from FROM, each a new connection; distinct = how many different bodies;
- `dns: {from, name, expect: answer|nxdomain, answered_name, address}`: NAME looked up from a pod with its
  own /etc/resolv.conf (nameserver, search list, ndots);
- `exec: {from, argv, expect_rc: 0, expect_stdout_regex, timeout}`: a real program run in a pod (with its
  container's privileges, as `netlab exec`), a node or the external host;
- `rollout_under_load: {from, deployment, service, port, path: /, rate: 20, expect_status: 200,
  expect_failed: 0, min_requests: 50, timeout: 180}`: the check rolls DEPLOYMENT itself (a `rollout
  restart`: a new restartedAt annotation on its pod template) while pod FROM opens `rate` new
  connections a second to SERVICE's ClusterIP:PORT (GET PATH), and waits for the rollout to complete
  (at most `timeout` s); it passes when the rollout completed, at least `min_requests` requests were
  sent and exactly `expect_failed` failed (no HTTP answer, or a status other than `expect_status`).

FROM is `pod/NAME`, `pod/NS/NAME`, `node/NAME` or `external`. Strings may hold placeholders resolved
against the lab when the check runs: `{node:NAME}` (the node's IP), `{pod:[NS/]NAME}` (the pod's IP),
`{svc:[NS/]NAME}` (the ClusterIP), `{lb:[NS/]NAME}` (the first LoadBalancer IP), `{external}` (the
external host's IP); in a regex the value stands for itself (escaped).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import SpecError

EXPECT_PROBE = ("reachable", "refused", "denied", "timeout", "unreachable")
EXPECT_DNS = ("answer", "nxdomain")
KINDS = ("probe", "http", "dns", "exec", "rollout_under_load")
TOP = {"title": str, "task": str, "hints": list, "criteria": list, "setup": list}
REQUIRED_TOP = ("title", "task", "hints", "criteria")
FIELDS: dict[str, dict[str, tuple[type, ...]]] = {
    "probe": {"from": (str,), "to": (str,), "expect": (str,), "backends": (str, int), "count": (int,)},
    "http": {"from": (str,), "url": (str,), "host": (str,), "count": (int,), "expect_status": (int,),
             "expect_body_regex": (str,), "min_distinct": (int,), "max_distinct": (int,)},
    "dns": {"from": (str,), "name": (str,), "expect": (str,), "answered_name": (str,), "address": (str,)},
    "exec": {"from": (str,), "argv": (list,), "expect_rc": (int,), "expect_stdout_regex": (str,),
             "timeout": (int, float)},
    "rollout_under_load": {"from": (str,), "deployment": (str,), "service": (str,), "port": (int,), "path": (str,),
                           "rate": (int, float), "expect_status": (int,), "expect_failed": (int,),
                           "min_requests": (int,), "timeout": (int, float)},
}
REQUIRED = {"probe": ("from", "to"), "http": ("from", "url"), "dns": ("from", "name"), "exec": ("from", "argv"),
            "rollout_under_load": ("from", "deployment", "service", "port")}
OBJECT_REF = re.compile(r"^([a-z0-9][a-z0-9-]*/)?[a-z0-9][a-z0-9.-]*$")
PLACEHOLDER = re.compile(r"\{(node|pod|svc|lb):([a-z0-9][a-z0-9.-]*(?:/[a-z0-9][a-z0-9.-]*)?)\}|\{external\}")
_ANY_PLACEHOLDER = re.compile(r"\{([a-z]+)(?::([^{}]*))?\}")
SOURCE = re.compile(r"^(external|node/[a-z0-9][a-z0-9.-]*|pod/[a-z0-9][a-z0-9.-]*(/[a-z0-9][a-z0-9.-]*)?)$")
NAME = re.compile(r"^[0-9]{2}-[a-z0-9][a-z0-9-]*$")


@dataclass(frozen=True)
class Criterion:
    name: str
    kind: str                  # probe | http | dns | exec | rollout_under_load
    args: dict[str, Any]       # the kind's fields, checked, with their defaults filled in


@dataclass
class Exercise:
    name: str                  # the directory's name, e.g. 01-three-links
    title: str
    task: str
    hints: list[str]
    criteria: list[Criterion]
    directory: Path
    setup: list[list[str]] = field(default_factory=list)

    @property
    def start_file(self) -> Path:
        return self.directory / "start.yaml"

    @property
    def short(self) -> str:
        """The name without its number: `three-links` for `01-three-links`."""
        return self.name.split("-", 1)[1]


def _bad(where: str, problem: str, fix: str) -> SpecError:
    return SpecError(where, problem, fix)


def check_placeholders(where: str, text: str) -> None:
    """Every `{kind:...}` / `{external}` in `text` is a known placeholder."""
    for m in _ANY_PLACEHOLDER.finditer(text):
        if not PLACEHOLDER.fullmatch(m.group(0)):
            raise _bad(where, f"unknown placeholder {m.group(0)!r}",
                       "use {node:NAME}, {pod:[NS/]NAME}, {svc:[NS/]NAME}, {lb:[NS/]NAME} or {external}")


def _check_regex(where: str, text: str) -> None:
    check_placeholders(where, text)
    try:
        re.compile(PLACEHOLDER.sub("x", text))
    except re.error as e:
        raise _bad(where, f"is not a regular expression: {e}", "fix the regex (Python's re syntax)") from None


def parse_criterion(where: str, raw: Any) -> Criterion:
    """One entry of `criteria`, checked; `where` names it (`FILE: criteria[2]`)."""
    if not isinstance(raw, dict):
        raise _bad(where, "must be a mapping with a name and one of " + ", ".join(KINDS),
                   "write e.g. {name: ..., probe: {from: pod/client, to: svc/web:80}}")
    unknown = sorted(set(raw) - {"name", *KINDS})
    if unknown:
        raise _bad(f"{where}.{unknown[0]}", "unknown field", f"use name and one of {', '.join(KINDS)}")
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip() or "\n" in name.strip():
        raise _bad(f"{where}.name", "is missing or not one line of text", "say what the criterion checks")
    kinds = [k for k in KINDS if k in raw]
    if len(kinds) != 1:
        raise _bad(where, f"has {'no kind' if not kinds else 'several kinds: ' + ', '.join(kinds)}",
                   f"give exactly one of {', '.join(KINDS)}")
    kind = kinds[0]
    at = f"{where}.{kind}"
    body = raw[kind]
    if not isinstance(body, dict):
        raise _bad(at, "must be a mapping", f"write {kind}: {{{', '.join(REQUIRED[kind])}: ...}}")
    allowed = FIELDS[kind]
    for key, value in body.items():
        if key not in allowed:
            raise _bad(f"{at}.{key}", "unknown field", f"{kind} takes {', '.join(allowed)}")
        types = allowed[key]
        if isinstance(value, bool) or not isinstance(value, types):
            raise _bad(f"{at}.{key}", f"must be {' or '.join(t.__name__ for t in types)}, got {value!r}",
                       "fix its type")
    for key in REQUIRED[kind]:
        if key not in body:
            raise _bad(f"{at}.{key}", "is missing", f"{kind} needs {', '.join(REQUIRED[kind])}")
    args = dict(body)
    src = args["from"]
    if not SOURCE.match(src):
        raise _bad(f"{at}.from", f"{src!r} is not a source", "use pod/NAME, pod/NS/NAME, node/NAME or external")
    for key, value in args.items():
        if isinstance(value, str) and not key.endswith("_regex"):
            check_placeholders(f"{at}.{key}", value)
    if kind == "probe":
        args.setdefault("expect", "reachable")
        if args["expect"] not in EXPECT_PROBE:
            raise _bad(f"{at}.expect", f"{args['expect']!r} is not an outcome", f"use one of {', '.join(EXPECT_PROBE)}")
        b = args.get("backends")
        if b is not None and b != "all" and not (isinstance(b, int) and b >= 1):
            raise _bad(f"{at}.backends", f"{b!r} is not all or a count", "use all or a number >= 1")
        if b is not None and args["expect"] != "reachable":
            raise _bad(f"{at}.backends", "only means something when expect is reachable", "remove it")
        if not 1 <= args.get("count", 1) <= 1000:
            raise _bad(f"{at}.count", "must be 1-1000", "fix it")
    elif kind == "http":
        if not re.match(r"^http://[^/\s]+(/\S*)?$", args["url"]):
            raise _bad(f"{at}.url", f"{args['url']!r} is not an http:// URL", "write http://HOST[:PORT]/PATH")
        args.setdefault("count", 1)
        args.setdefault("expect_status", 200)
        if not 1 <= args["count"] <= 200:
            raise _bad(f"{at}.count", "must be 1-200", "fix it")
        if not 100 <= args["expect_status"] <= 599:
            raise _bad(f"{at}.expect_status", "is not an HTTP status", "use 100-599")
        for key in ("min_distinct", "max_distinct"):
            if key in args and not 1 <= args[key] <= args["count"]:
                raise _bad(f"{at}.{key}", f"must be between 1 and count ({args['count']})", "fix it or raise count")
        if "host" in args and not re.match(r"^[A-Za-z0-9.-]+$", args["host"]):
            raise _bad(f"{at}.host", f"{args['host']!r} is not a host name", "write a DNS name")
        if "expect_body_regex" in args:
            _check_regex(f"{at}.expect_body_regex", args["expect_body_regex"])
    elif kind == "dns":
        if not src.startswith("pod/"):
            raise _bad(f"{at}.from", "must be a pod (the lookup uses its /etc/resolv.conf)", "use pod/NAME")
        args.setdefault("expect", "answer")
        if args["expect"] not in EXPECT_DNS:
            raise _bad(f"{at}.expect", f"{args['expect']!r} is not a DNS outcome",
                       f"use one of {', '.join(EXPECT_DNS)}")
        if args["expect"] == "nxdomain" and ("answered_name" in args or "address" in args):
            raise _bad(f"{at}.expect", "nxdomain has no answer to compare", "remove answered_name and address")
        if not re.match(r"^[A-Za-z0-9.-]{1,253}$", args["name"]):
            raise _bad(f"{at}.name", f"{args['name']!r} is not a DNS name", "write a name such as web.shop")
    elif kind == "exec":
        argv = args["argv"]
        if not argv or not all(isinstance(a, str) for a in argv):
            raise _bad(f"{at}.argv", "must be a non-empty list of strings", "write e.g. [curl, -s, http://web/]")
        for i, a in enumerate(argv):
            check_placeholders(f"{at}.argv[{i}]", a)
        args.setdefault("expect_rc", 0)
        args.setdefault("timeout", 15)
        if not 0 < args["timeout"] <= 120:
            raise _bad(f"{at}.timeout", "must be more than 0 and at most 120 seconds", "fix it")
        if "expect_stdout_regex" in args:
            _check_regex(f"{at}.expect_stdout_regex", args["expect_stdout_regex"])
    elif kind == "rollout_under_load":
        _rollout_args(at, args)
    return Criterion(name.strip(), kind, args)


def _rollout_args(at: str, args: dict) -> None:
    """rollout_under_load's fields checked, its defaults filled in."""
    if not args["from"].startswith("pod/"):
        raise _bad(f"{at}.from", "must be a pod (the requests leave from its network namespace)", "use pod/NAME")
    for key in ("deployment", "service"):
        if not OBJECT_REF.match(args[key]):
            raise _bad(f"{at}.{key}", f"{args[key]!r} is not a name", f"write the {key}'s NAME or NAMESPACE/NAME")
    if not 1 <= args["port"] <= 65535:
        raise _bad(f"{at}.port", f"{args['port']} is not a port", "use the Service's port, 1-65535")
    args.setdefault("path", "/")
    if not re.match(r"^/[\x21-\x7e]*$", args["path"]):
        raise _bad(f"{at}.path", f"{args['path']!r} is not an HTTP path", "write /PATH (no spaces)")
    args.setdefault("rate", 20)
    if not 1 <= args["rate"] <= 100:
        raise _bad(f"{at}.rate", "must be 1-100 new connections a second", "fix it")
    args.setdefault("expect_status", 200)
    if not 100 <= args["expect_status"] <= 599:
        raise _bad(f"{at}.expect_status", "is not an HTTP status", "use 100-599")
    args.setdefault("expect_failed", 0)
    if args["expect_failed"] < 0:
        raise _bad(f"{at}.expect_failed", "must be 0 or more", "fix it (0: a lossless rollout)")
    args.setdefault("min_requests", 50)
    if args["min_requests"] < 1 or args["min_requests"] <= args["expect_failed"]:
        raise _bad(f"{at}.min_requests", "must be at least 1 and more than expect_failed", "raise it")
    args.setdefault("timeout", 180)
    if not 10 <= args["timeout"] <= 600:
        raise _bad(f"{at}.timeout", "must be 10-600 seconds (the longest the rollout may take)", "fix it")


def parse(name: str, data: Any, directory: Path, source: str) -> Exercise:
    """exercise.yaml's content (already read as YAML) as an Exercise, or a SpecError."""
    if not isinstance(data, dict):
        raise _bad(source, "must be a mapping", f"give {', '.join(REQUIRED_TOP)}")
    for key, value in data.items():
        if key not in TOP:
            raise _bad(f"{source}: {key}", "unknown field", f"use {', '.join(TOP)}")
        if not isinstance(value, TOP[key]):
            raise _bad(f"{source}: {key}", f"must be a {TOP[key].__name__}", "fix its type")
    for key in REQUIRED_TOP:
        if key not in data:
            raise _bad(f"{source}: {key}", "is missing", f"an exercise needs {', '.join(REQUIRED_TOP)}")
    title = data["title"].strip()
    if not title or "\n" in title:
        raise _bad(f"{source}: title", "must be one line", "shorten it")
    if not data["task"].strip():
        raise _bad(f"{source}: task", "is empty", "say what the learner must do")
    hints = data["hints"]
    for i, h in enumerate(hints):
        if not isinstance(h, str) or not h.strip():
            raise _bad(f"{source}: hints[{i}]", "must be text", "write the hint")
    if not hints:
        raise _bad(f"{source}: hints", "is empty", "give at least one hint")
    if not data["criteria"]:
        raise _bad(f"{source}: criteria", "is empty", "give at least one criterion")
    criteria = [parse_criterion(f"{source}: criteria[{i}]", c) for i, c in enumerate(data["criteria"])]
    seen: set[str] = set()
    for i, c in enumerate(criteria):
        if c.name in seen:
            raise _bad(f"{source}: criteria[{i}].name", f"{c.name!r} is given twice", "name each criterion apart")
        seen.add(c.name)
    setup = data.get("setup", [])
    for i, step in enumerate(setup):
        if not isinstance(step, list) or not step or not all(isinstance(a, str) for a in step):
            raise _bad(f"{source}: setup[{i}]", "must be a netlab command as a list of strings",
                       "write e.g. [node, stop, n2]")
        if step[0] in ("up", "down", "exercise") or "--lab" in step:
            raise _bad(f"{source}: setup[{i}]", f"'{step[0]}' cannot be a setup step",
                       "use the lab's verbs (apply, label, node stop ...); --lab is added")
    return Exercise(name, title, data["task"].rstrip() + "\n", [h.strip() for h in hints], criteria, directory,
                    [list(s) for s in setup])


def load(directory: Path) -> Exercise:
    """exercises/<name>/ read and checked: exercise.yaml and the presence of start.yaml."""
    from ..spec.parse import _yaml_documents
    name = directory.name
    source = f"{directory.name}/exercise.yaml"
    if not NAME.match(name):
        raise _bad(str(directory), "is not an exercise name", "name it NN-words, e.g. 01-three-links")
    path = directory / "exercise.yaml"
    try:
        text = path.read_text()
    except OSError as e:
        raise _bad(source, f"cannot be read: {e.strerror}", "write the exercise's definition") from None
    docs, dups = _yaml_documents(text, source)
    if len(docs) != 1:
        raise _bad(source, f"holds {len(docs)} YAML documents", "write exactly one")
    if dups:
        key, line, first = dups[0][0]
        raise _bad(f"{source}: {key}", f"is given twice (lines {first} and {line})", "keep one")
    ex = parse(name, docs[0], directory, source)
    if not ex.start_file.is_file():
        raise _bad(f"{directory.name}/start.yaml", "is missing", "write the starting scenario")
    return ex
