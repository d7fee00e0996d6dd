"""procs.terminate returns only when what it ended is gone: a SIGKILLed process can take a moment to exit."""
import signal
import subprocess
import sys

from netlab.dataplane import procs


def test_terminate_waits_for_a_killed_process_that_is_slow_to_exit(monkeypatch):
    sent = []
    polls_after_kill = {"n": 0}

    def kill(pid, sig):
        sent.append(sig)

    def start_time(pid):
        if signal.SIGKILL not in sent:
            return "100"          # ignores SIGTERM
        polls_after_kill["n"] += 1
        return "100" if polls_after_kill["n"] < 20 else None   # still exiting for 20 looks

    monkeypatch.setattr(procs.os, "kill", kill)
    monkeypatch.setattr(procs, "start_time", start_time)
    monkeypatch.setattr(procs.time, "sleep", lambda s: None)
    assert procs.terminate([], [4242], grace=0.0) == 1
    assert sent == [signal.SIGTERM, signal.SIGKILL]
    assert polls_after_kill["n"] >= 20     # it looked until the process was gone


def test_terminate_ends_a_real_process_that_ignores_sigterm():
    child = subprocess.Popen([sys.executable, "-c",
                              "import signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
                              "print('ready', flush=True); time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "ready"
        assert procs.terminate([], [child.pid], grace=0.2) == 1
        assert procs.start_time(child.pid) is None
        # (terminate reaped it: it was a child of this process)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
