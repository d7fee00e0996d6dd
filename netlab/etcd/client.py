"""A small etcd v3 client over etcd's JSON gateway (``/v3/kv/range``, ``/v3/kv/txn``, ``/v3/lease/grant``,
``/v3/watch`` ...: gRPC's messages as JSON over HTTP/1.1, keys and values base64), standard library only.

Why not a client library: no Python etcd client is locked for netlab and none can be added; python-etcd3
needs grpcio, which is not available either. The gateway is part of every etcd v3 server (3.4: ``/v3/``),
so http.client and json are enough.

Endpoints are tried in order; one that does not answer (connection refused or reset, a timeout, or an
etcd "no leader" / "unavailable" answer) is skipped for the next one, so a client fails over between the
members of a cluster. `netns`: the name of a network namespace (``/run/netns/NAME``) whose network the
client's sockets use: each socket is created by a short-lived thread that setns()'d into it (a socket
keeps the namespace it was created in) and is then used from any thread.
"""

from __future__ import annotations

import base64
import http.client
import json
import socket
import threading
import time
import urllib.parse

from netlab.errors import NetlabError


class EtcdError(NetlabError):
    """An etcd request failed (every endpoint, or etcd refused it); the message names the endpoints."""

    exit_code = 1


class EtcdUnavailable(EtcdError):
    pass


def b64(s: str | bytes) -> str:
    return base64.b64encode(s.encode() if isinstance(s, str) else s).decode()


def unb64(s: str | None) -> str:
    return base64.b64decode(s or "").decode()


def prefix_end(prefix: str) -> str:
    """The range_end that makes a range cover every key starting with `prefix` (its last byte + 1)."""
    if not prefix or not prefix.isascii() or prefix[-1] == "\x7f":
        raise ValueError(f"etcd key prefix {prefix!r}: use printable ASCII keys")
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def _b64_key(k: str) -> str:
    return b64(k)


def parse_endpoint(url: str) -> tuple[str, int]:
    """(host, port) of ``http://HOST:PORT``; ValueError naming the endpoint and the fix otherwise."""
    u = urllib.parse.urlsplit(url)
    if u.scheme != "http" or not u.hostname:
        raise ValueError(f"etcd endpoint {url!r}: give it as http://HOST:PORT (TLS endpoints are not supported)")
    try:
        port = u.port or 2379
    except ValueError:
        raise ValueError(f"etcd endpoint {url!r}: bad port; give it as http://HOST:PORT") from None
    return u.hostname, port


class _Conn(http.client.HTTPConnection):
    """An HTTP connection whose socket is made inside network namespace `netns` (when given)."""

    def __init__(self, host, port, timeout, netns):
        super().__init__(host, port, timeout=timeout)
        self._netns = netns

    def connect(self):
        if self._netns is None:
            return super().connect()
        from netlab.dataplane.nsfs import in_netns
        self.sock = in_netns(self._netns, lambda: socket.create_connection((self.host, self.port), self.timeout))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


_UNAVAILABLE = ("no leader", "leader changed", "request timed out", "unavailable", "not capable",
                "server stopped", "connection refused", "too many requests")


class EtcdClient:
    PAGE = 2000     # keys per range request (a big range is read in pages, at one revision)

    def __init__(self, endpoints: list[str], netns: str | None = None, timeout: float = 5.0,
                 retry_for: float = 10.0):
        if not endpoints:
            raise ValueError("no etcd endpoints: give at least one http://HOST:PORT")
        self.endpoints = list(endpoints)
        self._addrs = [parse_endpoint(e) for e in self.endpoints]
        self.netns = netns
        self.timeout = timeout
        self.retry_for = retry_for
        self._conns: dict[int, _Conn] = {}
        self._current = 0
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ transport
    def _post(self, i: int, path: str, body: dict, timeout: float) -> tuple[int, dict]:
        conn = self._conns.get(i)
        if conn is None:
            host, port = self._addrs[i]
            conn = self._conns[i] = _Conn(host, port, timeout, self.netns)
        data = json.dumps(body).encode()
        for attempt in (0, 1):   # a kept-alive connection the server closed meanwhile: once more, fresh
            try:
                if conn.sock is None:
                    conn.timeout = timeout
                    conn.connect()
                conn.sock.settimeout(timeout)
                conn.request("POST", path, body=data, headers={"Content-Type": "application/json"})
                resp = conn.getresponse()
                raw = resp.read()
                return resp.status, (json.loads(raw) if raw else {})
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as e:
                conn.close()
                if attempt:
                    raise OSError(str(e)) from e
            except (OSError, http.client.HTTPException, ValueError):
                conn.close()
                raise
        raise OSError("unreachable")

    def call(self, path: str, body: dict, timeout: float | None = None, retry_for: float | None = None) -> dict:
        """POST `body` to `path` on the first endpoint that answers (starting with the last one that did).
        When none does (a leader election runs, a member restarts), rounds over the endpoints go on for
        `retry_for` s (default: the client's `retry_for`) before EtcdUnavailable."""
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + (self.retry_for if retry_for is None else retry_for)
        pause = 0.05
        while True:
            errors = []
            with self._lock:
                n = len(self.endpoints)
                for j in range(n):
                    i = (self._current + j) % n
                    try:
                        status, out = self._post(i, path, body, timeout)
                    except (OSError, http.client.HTTPException, ValueError) as e:
                        errors.append(f"{self.endpoints[i]} ({e.__class__.__name__}: {e})")
                        continue
                    if status != 200:
                        msg = str(out.get("error") or out.get("message") or out)
                        if any(w in msg.lower() for w in _UNAVAILABLE) or status in (502, 503, 504):
                            errors.append(f"{self.endpoints[i]} ({msg})")
                            continue
                        raise EtcdError(f"etcd {self.endpoints[i]}{path}: {msg}")
                    self._current = i
                    return out
            if time.monotonic() + pause > deadline:
                raise EtcdUnavailable("etcd: no endpoint answered: " + "; ".join(errors))
            time.sleep(pause)
            pause = min(pause * 2, 0.5)

    def close(self):
        with self._lock:
            for c in self._conns.values():
                c.close()
            self._conns.clear()

    # ------------------------------------------------------------------ kv
    @staticmethod
    def kv(kv: dict) -> tuple[str, str, int]:
        """(key, value, mod_revision) of a returned key-value."""
        return unb64(kv["key"]), unb64(kv.get("value")), int(kv.get("mod_revision", 0))

    def range(self, key: str, prefix: bool = False, revision: int | None = None, serializable: bool = False,
              keys_only: bool = False, range_end: str | None = None) -> tuple[list[dict], int]:
        """(kvs, the header's revision) of `key` (or every key under it with prefix=True, or every key from it
        up to `range_end` excluded), sorted by key."""
        body: dict = {"key": _b64_key(key)}
        if serializable:
            body["serializable"] = True
        if keys_only:
            body["keys_only"] = True
        if revision:
            body["revision"] = str(revision)
        if not prefix and range_end is None:
            out = self.call("/v3/kv/range", body)
            return out.get("kvs") or [], int(out["header"]["revision"])
        # a range: read in pages of PAGE keys, every page at the first page's revision (one snapshot)
        body["range_end"] = _b64_key(range_end if range_end is not None else prefix_end(key))
        body["limit"] = str(self.PAGE)
        kvs: list[dict] = []
        while True:
            out = self.call("/v3/kv/range", body)
            page = out.get("kvs") or []
            kvs += page
            if "revision" not in body:
                body["revision"] = out["header"]["revision"]
            if not out.get("more") or not page:
                return kvs, int(body["revision"])
            body["key"] = b64(base64.b64decode(page[-1]["key"]) + b"\0")

    def get(self, key: str, **kw) -> str | None:
        kvs, _ = self.range(key, **kw)
        return unb64(kvs[0].get("value")) if kvs else None

    def put(self, key: str, value: str, lease: int | None = None) -> int:
        body = {"key": _b64_key(key), "value": b64(value)}
        if lease:
            body["lease"] = str(lease)
        return int(self.call("/v3/kv/put", body)["header"]["revision"])

    def delete(self, key: str, prefix: bool = False) -> int:
        body = {"key": _b64_key(key)}
        if prefix:
            body["range_end"] = _b64_key(prefix_end(key))
        return int(self.call("/v3/kv/deleterange", body).get("deleted", 0))

    def txn(self, compare: list[dict], success: list[dict], failure: list[dict] | None = None) -> dict:
        return self.call("/v3/kv/txn", {"compare": compare, "success": success, "failure": failure or []})

    # request builders for txn
    @staticmethod
    def op_put(key: str, value: str, lease: int | None = None) -> dict:
        req = {"key": _b64_key(key), "value": b64(value)}
        if lease:
            req["lease"] = str(lease)
        return {"requestPut": req}

    @staticmethod
    def op_range(key: str, prefix: bool = False) -> dict:
        req = {"key": _b64_key(key)}
        if prefix:
            req["range_end"] = _b64_key(prefix_end(key))
        return {"requestRange": req}

    @staticmethod
    def op_delete(key: str, range_end: str | None = None) -> dict:
        req = {"key": _b64_key(key)}
        if range_end is not None:
            req["range_end"] = _b64_key(range_end)
        return {"requestDeleteRange": req}

    @staticmethod
    def cmp(key: str, target: str, value) -> dict:
        """A compare "key's TARGET == value" (target VALUE, MOD, CREATE or VERSION)."""
        c = {"key": _b64_key(key), "target": target, "result": "EQUAL"}
        field = {"VALUE": "value", "MOD": "mod_revision", "CREATE": "create_revision", "VERSION": "version"}[target]
        c[field] = b64(value) if target == "VALUE" else str(value)
        return c

    # ------------------------------------------------------------------ leases
    def grant(self, ttl: int) -> int:
        return int(self.call("/v3/lease/grant", {"TTL": ttl})["ID"])

    def keepalive(self, lease: int) -> int:
        """Renew a lease; returns its TTL (0: it had expired)."""
        out = self.call("/v3/lease/keepalive", {"ID": str(lease)})
        return int((out.get("result") or {}).get("TTL", 0))

    def revoke(self, lease: int) -> None:
        try:
            self.call("/v3/lease/revoke", {"ID": str(lease)})
        except EtcdError as e:
            if "not found" not in str(e):
                raise

    # ------------------------------------------------------------------ watch
    def watch(self, key: str, start_revision: int, prefix: bool = False, timeout: float = 5.0,
              until=None) -> list[dict]:
        """Events on `key` (or under it) from `start_revision` on, collected for up to `timeout` s or until
        `until(events)` is true: [{"type": "PUT"|"DELETE", "key", "value", "mod_revision"}]. One watch
        stream (the gateway's newline-delimited JSON) on the first endpoint that answers."""
        req = {"key": _b64_key(key), "start_revision": str(max(1, start_revision))}
        if prefix:
            req["range_end"] = _b64_key(prefix_end(key))
        errors = []
        deadline = time.monotonic() + timeout
        for j in range(len(self.endpoints)):
            i = (self._current + j) % len(self.endpoints)
            host, port = self._addrs[i]
            conn = _Conn(host, port, self.timeout, self.netns)
            try:
                conn.connect()
                conn.request("POST", "/v3/watch", body=json.dumps({"create_request": req}).encode(),
                             headers={"Content-Type": "application/json"})
                resp = conn.getresponse()
                if resp.status != 200:
                    errors.append(f"{self.endpoints[i]} (HTTP {resp.status})")
                    continue
                events: list[dict] = []
                while True:
                    left = deadline - time.monotonic()
                    if left <= 0 or (until is not None and until(events)):
                        return events
                    conn.sock.settimeout(left)
                    try:
                        line = resp.readline()
                    except (TimeoutError, socket.timeout):
                        return events
                    if not line:
                        return events
                    msg = json.loads(line).get("result") or {}
                    if msg.get("compact_revision") and msg.get("compact_revision") != "0":
                        raise EtcdError(f"etcd watch of {key}: revision {start_revision} was compacted "
                                        f"(oldest {msg['compact_revision']}); list again and watch from there")
                    for ev in msg.get("events") or []:
                        kv = ev.get("kv") or {}
                        events.append({"type": ev.get("type", "PUT"), "key": unb64(kv.get("key")),
                                       "value": unb64(kv.get("value")),
                                       "mod_revision": int(kv.get("mod_revision", 0))})
            except (OSError, http.client.HTTPException) as e:
                errors.append(f"{self.endpoints[i]} ({e.__class__.__name__}: {e})")
            finally:
                conn.close()
        raise EtcdUnavailable("etcd watch: no endpoint answered: " + "; ".join(errors))

    # ------------------------------------------------------------------ cluster
    def status(self, endpoint_index: int, timeout: float = 2.0) -> dict:
        """/v3/maintenance/status of one endpoint (no failover)."""
        status, out = self._post_one(endpoint_index, "/v3/maintenance/status", {}, timeout)
        if status != 200:
            raise EtcdError(f"etcd {self.endpoints[endpoint_index]}: {out.get('error') or out}")
        return out

    def _post_one(self, i, path, body, timeout):
        with self._lock:
            return self._post(i, path, body, timeout)
