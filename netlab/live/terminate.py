"""The kubelet's graceful termination of a pod being deleted, run by the control loop without blocking it.

When a pod gets a deletionTimestamp (the store sets it to the deletion time + the grace period:
terminationGracePeriodSeconds, default 30, or `delete --grace-period`):

1. the pass that sees it renders the pod as a terminating endpoint (not ready; serving while its
   readiness holds, its readiness probe keeps running): every node's rules stop choosing it unless
   kube-proxy's fallback does (no ready endpoint left); only once that pass has reprogrammed every node
   does the kubelet here start (`update`);
2. a Killing event ("Stopping container X") per container, and each container's preStop hook:
   exec (its command in the pod's network and UTS namespaces, as the exec probe), httpGet (from the
   node's network namespace, as the httpGet probe), sleep (lifecycle.preStop.sleep.seconds); a hook
   that fails is a FailedPreStopHook event, and termination goes on;
3. SIGTERM to the container's process once its hook is done (for a pod of netlab's built-in server,
   agnhost netexec, the server is told through its config: the pod's "container" then exits at once,
   or keeps serving --delay-shutdown seconds first);
4. SIGKILL (the container's process and everything left in the pod's network namespace) when the
   grace period counted from the deletion ends (after a hook, at least 2 s after SIGTERM, as the
   kubelet's minimum grace), or earlier nothing more: a container that exits is done;
5. once every container is done, the pod is removed from the store; the next pass removes its
   namespace.

Lab deviation (a nicety that makes rollouts lossless without a preStop sleep): SIGTERM is never sent
before `DRAIN_SECONDS` (1 s, at most the grace period) after every node's rules stopped choosing the
pod, so that connections the rules sent it just before finish; in Kubernetes the kubelet and the
proxies race, and applications add a preStop sleep for that.

`tick` does the work due now and returns at once (hooks run as child processes or on the probers'
threads); `next_wakeup` says when it wants to run again. What a restarted loop must know is kept in one
small JSON file per pod under the lab's run directory (hook started/finished, SIGTERM sent, when):
a loop killed mid-termination resumes from it and from the store (deletionTimestamp, grace period);
a hook that was running when the loop died counts as finished.
"""
from __future__ import annotations

import concurrent.futures as cf
import contextlib
import json
import os
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field

from .. import names
from ..controllers.kubelet import termination_times
from ..store.meta import parse_time

DRAIN_SECONDS = 1.0
POLL = 0.1               # how often a termination in progress is looked at
DEFAULT_GRACE = 30


@dataclass
class PodInfo:
    """What the last pass knew of a pod being deleted."""
    uid: str
    key: str                       # namespace/name
    obj: dict                      # the store's object (events are about it)
    ip: str
    netns: str                     # the pod's netns name
    node: str
    node_netns: str
    uts: str | None
    start: float                   # deletion time (deletionTimestamp - deletionGracePeriodSeconds)
    deadline: float                # deletionTimestamp
    commands: dict[str, dict]      # container name -> its process record (containers with a command)
    builtin: list[str]             # containers served by the node's built-in server
    server: dict | None            # the record of the node's built-in server (its status file says
                                   # whether the pod's "container" has exited)
    specs: dict[str, dict] = field(default_factory=dict)   # container name -> its spec (lifecycle, ports)

    @property
    def grace(self) -> float:
        return max(0.0, self.deadline - self.start)


def pod_info(obj: dict, pod, node, rec: dict, server: dict | None, uts: str | None) -> PodInfo:
    md = obj["metadata"]
    deadline = parse_time(md["deletionTimestamp"])
    grace = float(md.get("deletionGracePeriodSeconds") if md.get("deletionGracePeriodSeconds") is not None
                  else (obj.get("spec") or {}).get("terminationGracePeriodSeconds", DEFAULT_GRACE))
    specs = {c["name"]: c for c in (obj.get("spec") or {}).get("containers") or []}
    procs_rec = rec.get("procs") or {}
    commands = {name: procs_rec.get(name) or {} for name, _ in pod.commands}
    builtin = [c.name for c in pod.containers if not c.command and not c.args and c.ports]
    return PodInfo(pod.uid, pod.key, obj, str(pod.ip), pod.netns, node.name, node.netns, uts, deadline - grace,
                   deadline, commands, builtin, server, specs)


class Terminator:
    def __init__(self, lab: str, directory: str, probers=None, also=None):
        """`also`: where else terminations are recorded (a lab run by agents: each host's directory),
        read by `signalled` only."""
        self.lab = lab
        self.dir = directory
        self.also = also
        self.probers = probers
        self.pods: dict[str, PodInfo] = {}          # uid -> info (from the last pass)
        self.records: dict[str, dict] = {}          # uid -> persisted progress
        self.hooks: dict[tuple[str, str], object] = {}   # (uid, container) -> Popen | Future | end time
        self.events: list[tuple[dict, str, str, str]] = []   # (pod object, type, reason, message)
        self.removed: list[tuple[str, str]] = []    # (key, uid) whose termination is over

    # ------------------------------------------------------------ persistence
    def _path(self, uid: str) -> str:
        return os.path.join(self.dir, f"{uid}.json")

    def _load(self, uid: str) -> dict | None:
        try:
            with open(self._path(uid)) as f:
                rec = json.load(f)
        except (OSError, ValueError):
            return None
        return rec if isinstance(rec, dict) else None

    def _save(self, uid: str) -> None:
        os.makedirs(self.dir, mode=0o700, exist_ok=True)
        tmp = self._path(uid) + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.records[uid], f)
        os.replace(tmp, self._path(uid))

    def _forget(self, uid: str) -> None:
        self.records.pop(uid, None)
        self.pods.pop(uid, None)
        for k in [k for k in self.hooks if k[0] == uid]:
            self._stop_hook(self.hooks.pop(k))
        with contextlib.suppress(OSError):
            os.unlink(self._path(uid))

    # ------------------------------------------------------------ what the pass says
    def update(self, infos: list[PodInfo], now: float) -> None:
        """The pods being deleted as the pass that just reprogrammed every node saw them (their
        endpoints are terminating in every node's rules from now on)."""
        seen = set()
        for info in infos:
            seen.add(info.uid)
            self.pods[info.uid] = info
            if info.uid in self.records:
                continue
            rec = self._load(info.uid)
            if rec is None:
                rec = {"key": info.key, "begun": now, "containers": {}}
                for name in list(info.commands) + info.builtin:
                    self.events.append((info.obj, "Normal", "Killing", f"Stopping container {name}"))
            self.records[info.uid] = rec
            self._save(info.uid)
        for uid in list(self.records):
            if uid not in seen:
                self._forget(uid)   # gone from the store (a forced deletion) or back on a stopped node
        for name in os.listdir(self.dir) if os.path.isdir(self.dir) else []:
            uid = name[:-5] if name.endswith(".json") else None
            if uid and uid not in seen:
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(self.dir, name))

    def signalled(self, uid: str) -> bool:
        """Whether the pod's built-in server containers were sent their SIGTERM (the next pass tells
        the server)."""
        rec = self.records.get(uid) or self._load(uid) or {}
        if not rec and self.also is not None:
            for d in self.also():
                try:
                    with open(os.path.join(d, f"{uid}.json")) as f:
                        rec = json.load(f)
                    break
                except (OSError, ValueError):
                    continue
        return bool(isinstance(rec, dict) and rec.get("builtinTerm"))

    def needs_pass(self) -> bool:
        """A SIGTERM for a built-in server pod waits for a pass to reach the server."""
        return any(rec.get("builtinTerm") and not rec.get("builtinTold") for rec in self.records.values())

    def told(self, uids: set[str]) -> None:
        for uid in uids:
            rec = self.records.get(uid)
            if rec is not None and rec.get("builtinTerm") and not rec.get("builtinTold"):
                rec["builtinTold"] = time.time()
                self._save(uid)

    def active(self) -> bool:
        return bool(self.records)

    def next_wakeup(self) -> float | None:
        return time.time() + POLL if self.records else None

    # ------------------------------------------------------------ the work
    def tick(self, now: float, store=None) -> bool:
        """Do what is due; remove from `store` the pods whose containers are all done. True if one was."""
        gone = False
        for uid, rec in list(self.records.items()):
            info = self.pods.get(uid)
            if info is None:
                continue
            done = True
            for name in list(info.commands) + info.builtin:
                if not self._container(info, rec, name, now):
                    done = False
            if done:
                self._kill_rest(info)
                ns, pname = info.key.split("/", 1)
                if store is not None:
                    try:
                        # the store object's own UID (a static pod is known here by its config hash)
                        store.delete("Pod", ns, pname, grace_seconds=0,
                                     uid=((info.obj or {}).get("metadata") or {}).get("uid") or uid)
                    except Exception:  # noqa: BLE001 - already gone
                        pass
                self.removed.append((info.key, uid))
                self._forget(uid)
                gone = True
        return gone

    def _container(self, info: PodInfo, rec: dict, name: str, now: float) -> bool:
        """Advance one container's termination; True once it is done (exited or killed)."""
        c = rec["containers"].setdefault(name, {})
        if c.get("done"):
            return True
        builtin = name in info.builtin
        if not self._running(info, name, builtin):
            c["done"] = now
            self._save(info.uid)
            return True
        hook = ((info.specs.get(name) or {}).get("lifecycle") or {}).get("preStop")
        # 1. the preStop hook
        if isinstance(hook, dict) and "hookEnd" not in c:
            if "hookStart" not in c:
                c["hookStart"] = now
                self._save(info.uid)
                self._start_hook(info, name, hook, now)
            elif (info.uid, name) not in self.hooks:
                c["hookEnd"] = now   # it ran in a loop that died: counted as finished
            else:
                result = self._hook_result(info, name, hook, now)
                if result is not None:
                    c["hookEnd"] = now
                    ok, message = result
                    if not ok:
                        self.events.append((info.obj, "Warning", "FailedPreStopHook", message))
            if "hookEnd" not in c:
                if now < info.deadline:
                    return False
                self._stop_hook(self.hooks.pop((info.uid, name), None))   # the grace period is over
                c["hookEnd"] = now
            self._save(info.uid)
        # 2. SIGTERM (not before the drain: every node's rules stopped choosing the pod a moment ago)
        if "term" not in c:
            hold = rec["begun"] + min(DRAIN_SECONDS, info.grace)
            if now < hold and now < info.deadline:
                return False
            used = c["hookEnd"] - info.start if "hookEnd" in c else None
            c["term"] = now
            c["kill"] = termination_times(info.start, info.grace, used)[1]
            c["deadline"] = info.deadline
            self._save(info.uid)
            if builtin:
                rec["builtinTerm"] = now
                self._save(info.uid)
            else:
                self._signal(info, name, signal.SIGTERM)
            return False
        # 3. SIGKILL when the grace period is over (a deletion again with a shorter grace period, such as
        # `delete --grace-period=1` or `--now`, brings it forward)
        if info.deadline < c.get("deadline", info.deadline):
            c["kill"] = min(c["kill"], info.deadline)
            c["deadline"] = info.deadline
            self._save(info.uid)
        if now >= c["kill"]:
            if not builtin:
                self._signal(info, name, signal.SIGKILL)
            c["done"] = now
            c["killed"] = True
            self._save(info.uid)
            return True
        return False

    # ------------------------------------------------------------ processes
    def _owner(self, info: PodInfo, name: str) -> str:
        ns, pname = info.key.split("/", 1)
        return names.container_owner(self.lab, ns, pname, name)

    def _running(self, info: PodInfo, name: str, builtin: bool) -> bool:
        from ..dataplane import nsfs, procs
        if builtin:
            from ..dataplane.supervise import exited_code, server_pods
            said = server_pods(self.lab, info.node, info.server)
            if not said:
                return True   # nothing readable from the server: the grace period decides
            return info.key in said and not exited_code(said.get(info.key))[0]
        rec = info.commands.get(name)
        return procs.alive(rec, self._owner(info, name), nsfs.netns_path(info.netns))

    def _signal(self, info: PodInfo, name: str, sig: int) -> None:
        from ..dataplane import nsfs, procs
        rec = info.commands.get(name)
        if procs.alive(rec, self._owner(info, name), nsfs.netns_path(info.netns)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(rec["pid"]), sig)

    def _kill_rest(self, info: PodInfo) -> None:
        """Whatever is left in the pod's network namespace (what the containers started) is killed, as
        the kubelet's runtime kills the container's whole cgroup."""
        from ..dataplane import nsfs, procs
        for pid in procs.netns_members([nsfs.netns_path(info.netns)]):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    # ------------------------------------------------------------ hooks
    def _start_hook(self, info: PodInfo, name: str, hook: dict, now: float) -> None:
        from ..dataplane import nsenter
        from ..errors import KernelError
        from . import prober
        if "exec" in hook:
            argv = list((hook["exec"] or {}).get("command") or [])
            try:
                # in the container, as the runtime's exec: its namespaces and credentials if it runs, else
                # a fresh default sandbox in the pod (netlab/dataplane/sandbox.py)
                from ..dataplane import procs, sandbox
                rec = info.commands.get(name)
                status = sandbox.read_status(int(rec["pid"])) if rec and procs.alive(rec) else None
                cmd = sandbox.join_argv(int(rec["pid"]), status, argv) if status and rec else \
                    nsenter.enter(info.netns, sandbox.launch_argv(sandbox.Sandbox(), argv), info.uts)
                out = tempfile.TemporaryFile()   # never a pipe: a chatty hook must not block on it
                self.hooks[(info.uid, name)] = subprocess.Popen(
                    cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
                self.hooks[(info.uid, name)].stdout = out
            except (KernelError, OSError) as e:
                self.hooks[(info.uid, name)] = (False, str(e))
        elif "httpGet" in hook:
            spec = dict(hook["httpGet"])
            spec.setdefault("path", "/")
            probe = {"httpGet": spec, "timeoutSeconds": max(1, int(info.deadline - now) or 1)}
            ports = (info.specs.get(name) or {}).get("ports") or []
            try:
                self.hooks[(info.uid, name)] = prober.submit_probe(probe, info.ip, info.netns, ports, info.node_netns,
                                                                   info.uts, probers=self.probers)
            except ValueError as e:
                self.hooks[(info.uid, name)] = (False, str(e))
        else:
            secs = float((hook.get("sleep") or {}).get("seconds") or 0)
            self.hooks[(info.uid, name)] = now + secs

    def _hook_result(self, info: PodInfo, name: str, hook: dict, now: float) -> tuple[bool, str] | None:
        from . import prober
        h = self.hooks.get((info.uid, name))
        ns, pname = info.key.split("/", 1)
        where = f'for Container "{name}" in Pod "{pname}_{ns}({info.uid})"'
        if isinstance(h, tuple):
            self.hooks.pop((info.uid, name))
            ok, err = h
            return ok, self._failed(hook, where, err)
        if isinstance(h, float):
            if now < h:
                return None
            self.hooks.pop((info.uid, name))
            return True, ""
        if isinstance(h, subprocess.Popen):
            if h.poll() is None:
                return None
            self.hooks.pop((info.uid, name))
            if h.stdout:
                h.stdout.seek(0)
            out = (h.stdout.read(prober.MAX_OUTPUT) if h.stdout else b"").decode("utf-8", "replace")
            if h.stdout:
                h.stdout.close()
            if h.returncode == 0:
                return True, ""
            argv = " ".join((hook["exec"] or {}).get("command") or [])
            return False, self._failed(hook, where, f"command '{argv}' exited with {h.returncode}: {out}")
        if isinstance(h, cf.Future):
            if not h.done():
                return None
            self.hooks.pop((info.uid, name))
            try:
                result, output = h.result()
            except Exception as e:  # noqa: BLE001 - a hook that errored failed
                result, output = prober.FAILURE, str(e)
            if result == prober.SUCCESS:
                return True, ""
            return False, self._failed(hook, where, output)
        return True, ""

    @staticmethod
    def _failed(hook: dict, where: str, err: str) -> str:
        if "exec" in hook:
            what = f"Exec lifecycle hook ({(hook['exec'] or {}).get('command')})"
        else:
            what = f"HTTP lifecycle hook ({(hook.get('httpGet') or {}).get('path', '/')})"
        return f'{what} {where} failed - error: {err}, message: ""'

    @staticmethod
    def _stop_hook(h) -> None:
        if isinstance(h, subprocess.Popen) and h.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(h.pid, signal.SIGKILL)
            h.wait()
        if isinstance(h, subprocess.Popen) and h.stdout:
            h.stdout.close()
