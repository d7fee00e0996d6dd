"""Reading and writing a lab's state.json (its path and schema: `layout`).

state.json records what `up` decided (addresses, pod UIDs, processes) so the next `up` keeps them.
It is a hint, not the truth: `down` works from what the kernel shows even if the file is gone.
"""
from __future__ import annotations

import os
import re
import tempfile
from typing import Any

import orjson

from . import layout
from .layout import RUN_DIR, STATE_VERSION, STRINGS, TABLES, lab_dir  # noqa: F401 (used by callers)

LAB_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def private_dir(path: str) -> str:
    """Make directory `path` (with its parents) and leave it root's only (0700), whatever the umask."""
    os.makedirs(path, mode=0o700, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def ensure_dirs(lab: str) -> str:
    """The lab's directories, made if missing. Another lab's `down` removes RUN_DIR when it empties it,
    which can fall between making RUN_DIR and making the lab's directory in it: made again then."""
    for attempt in range(5):
        try:
            for d in layout.dirs(lab):
                private_dir(d)
            return lab_dir(lab)
        except FileNotFoundError:
            if attempt == 4:
                raise
    return lab_dir(lab)


def load(lab: str) -> dict[str, Any] | None:
    """This process's view of the lab's state: an agent's, its host's state.json (layout.set_host); any
    other process's, the lab's state.json with what the lab's agents recorded of their hosts merged in
    (`merge_hosts`: a lab run by agents, one control loop per host)."""
    own = read(layout.state_file(lab))
    if layout.host() is not None:
        return own
    hosts = host_states(lab)
    return merge_hosts(own, hosts) if hosts else own


def host_states(lab: str) -> dict[str, dict[str, Any]]:
    """host -> the state.json its agent wrote (none for a lab run by one control loop)."""
    try:
        names = sorted(os.listdir(layout.hosts_dir(lab)))
    except OSError:
        return {}
    out = {}
    for h in names:
        st = read(os.path.join(layout.host_dir(lab, h), "state.json"))
        if st is not None:
            out[h] = st
    return out


def merge_hosts(base: dict[str, Any] | None, hosts: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """The lab's state as a whole, from the lab's state.json (`base`, what `up` wrote) and its agents' host
    states: a host's record of its nodes, their pods, servers and addresses wins over `base`'s (which was
    written when `up` last ran), and a pod `base` placed on one of a host's nodes that the host no longer
    records is gone."""
    if base is None and not hosts:
        return None
    out = dict(base or next(iter(hosts.values())))
    for key in ("nodes", "pods", "servers", "ipam"):
        out[key] = dict(out.get(key) or {})
    for _, st in sorted(hosts.items()):
        own = set(st.get("nodes") or {})
        out["pods"] = {k: v for k, v in out["pods"].items() if v.get("node") not in own}
        out["pods"].update(st.get("pods") or {})
        out["servers"] = {k: v for k, v in out["servers"].items() if k not in own}
        out["servers"].update({k: v for k, v in (st.get("servers") or {}).items() if k in own})
        out["nodes"].update(st.get("nodes") or {})
        out["ipam"].update({k: v for k, v in (st.get("ipam") or {}).items() if k in own})
    return out


def read(path: str) -> dict[str, Any] | None:
    """A state.json as written (version and shape checked), or None."""
    try:
        with open(path, "rb") as f:
            data = orjson.loads(f.read())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return None  # a torn or corrupt file: the kernel is the truth, the next up rebuilds the state
    if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
        return None
    return _sane(data)


def _sane(data: dict[str, Any]) -> dict[str, Any]:
    """Drop what does not have the shape netlab writes (an edited or half-written file is a hint at
    best): tables must map names to mappings (ipam: to strings), scalars must be strings."""
    for key in TABLES:
        table = data.get(key)
        if not isinstance(table, dict):
            data.pop(key, None)
            continue
        ok = str if key == "ipam" else (str, dict) if key == "iptables" else dict
        data[key] = {k: v for k, v in table.items() if isinstance(k, str) and isinstance(v, ok)}
    for rec in data.get("pods", {}).values():
        if not isinstance(rec.get("procs"), dict):
            rec.pop("procs", None)
        if not isinstance(rec.get("restarts"), int) or isinstance(rec.get("restarts"), bool):
            rec.pop("restarts", None)
        if not isinstance(rec.get("created"), (int, float)) or isinstance(rec.get("created"), bool):
            rec.pop("created", None)
        for flag in ("ready", "listening"):
            if not isinstance(rec.get(flag), bool):
                rec.pop(flag, None)
    for key in STRINGS:
        if not isinstance(data.get(key), str):
            data.pop(key, None)
    if not isinstance(data.get("created"), (int, float)) or isinstance(data.get("created"), bool):
        data.pop("created", None)
    return data


def dump(data: Any) -> str:
    """A file netlab writes for itself or its processes, as JSON text (sorted keys, indented): orjson, a
    tenth of the stdlib's time (the state of a 10,000-pod lab is 10 MB of it, written twice by `up`)."""
    return orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS).decode()


def save(lab: str, data: dict[str, Any]) -> None:
    ensure_dirs(lab)
    write_private(layout.state_file(lab), dump(dict(data, version=STATE_VERSION)), durable=True)


RELOAD_MARK = ".reload-pending"


def begin_reload(path: str, text: str) -> None:
    """Write a running process's new config `text` to `path`, marked as not yet applied: a netlab process
    killed between this and the process's reload (its SIGHUP) leaves the mark, and the next pass reloads
    the process although the file already holds what it wants (`reload_pending`). `end_reload` once the
    reload is asked for (or seen through)."""
    write_private(path + RELOAD_MARK, "")
    write_private(path, text)


def reload_pending(path: str) -> bool:
    return os.path.exists(path + RELOAD_MARK)


def end_reload(path: str) -> None:
    try:
        os.unlink(path + RELOAD_MARK)
    except FileNotFoundError:
        pass


def publish_private(path: str, text: str) -> bool:
    """`write_private` only when the file does not already hold `text` (the add-ons' published files:
    their readers reload on a change); True if it wrote."""
    try:
        with open(path, encoding="utf-8") as f:
            if f.read() == text:
                return False
    except OSError:
        pass
    write_private(path, text)
    return True


def write_private(path: str, text: str, durable: bool = False) -> None:
    """Replace a file in the lab's directory at once: write a 0600 temporary beside it, rename it over
    the file (a reader sees the old or the new text, never part of one). `durable`: fsync before the
    rename, so a crash cannot leave an empty file behind either."""
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", dir=os.path.dirname(path))
    try:
        with os.fdopen(fd, "w") as f:
            os.fchmod(f.fileno(), 0o600)
            f.write(text)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def labs_on_disk() -> list[str]:
    try:
        return sorted(d for d in os.listdir(RUN_DIR) if LAB_NAME.match(d) and os.path.isdir(os.path.join(RUN_DIR, d)))
    except FileNotFoundError:
        return []
    except PermissionError:  # not root: only the labs' namespaces tell (netlab render, validate)
        return []
