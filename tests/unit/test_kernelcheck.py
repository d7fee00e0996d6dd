"""kernelcheck: kernel features found from what the kernel shows, on fake trees and on this machine."""
from __future__ import annotations

import gzip
import os
import subprocess
import sys

from netlab.dataplane import kernelcheck as kc

REL = "6.1.0-test-amd64"


def fake(tmp_path, config: str | None = None, modules: list[str] = (), builtin: list[str] = (),
         moddir: bool = True, proc_files: list[str] = (), sys_modules: dict[str, bool] = {}, **kw) -> kc.Kernel:
    """A fake kernel tree: config text (None: no config), module files below lib/modules/REL,
    modules.builtin lines, /proc files, /sys/module entries (name -> loaded)."""
    proc, sysfs, mods, boot = (tmp_path / d for d in ("proc", "sys", "modules", "boot"))
    for d in (proc, sysfs / "module", mods, boot):
        d.mkdir(parents=True)
    if config is not None:
        with gzip.open(proc / "config.gz", "wt") as f:
            f.write(config)
    if moddir:
        md = mods / REL
        md.mkdir()
        (md / "modules.builtin").write_text("".join(f"{b}\n" for b in builtin))
        for m in modules:
            (md / m).parent.mkdir(parents=True, exist_ok=True)
            (md / m).write_bytes(b"")
    for p in proc_files:
        (proc / p).parent.mkdir(parents=True, exist_ok=True)
        (proc / p).write_text("")
    for name, loaded in sys_modules.items():
        (sysfs / "module" / name).mkdir()
        if loaded:
            (sysfs / "module" / name / "initstate").write_text("live\n")
    return kc.Kernel(release=REL, proc=str(proc), sys=str(sysfs), modules_root=str(mods), boot=str(boot), **kw)


def test_config_decides(tmp_path):
    k = fake(tmp_path, config="CONFIG_MODULES=y\nCONFIG_IP_VS=m\nCONFIG_DUMMY=y\nCONFIG_NET_SCH_NETEM=m\n"
                              "# CONFIG_NET_IPIP is not set\n",
             modules=["kernel/net/netfilter/ipvs/ip_vs.ko.xz"], proc_files=["modules"])
    assert k.state(kc.IPVS) == kc.MODULE
    assert k.state(kc.DUMMY) == kc.BUILTIN
    assert k.state(kc.NETEM) == kc.ABSENT      # =m but no module file installed
    assert k.state(kc.IPIP) == kc.ABSENT
    assert kc.has_ipvs(k) and kc.has_dummy(k) and not kc.has_netem(k) and not kc.has_ipip(k)


def test_config_without_modules_support(tmp_path):
    # this machine's case: CONFIG_MODULES unset, the features not built in
    k = fake(tmp_path, config="# CONFIG_MODULES is not set\n# CONFIG_IP_VS is not set\n# CONFIG_DUMMY is not set\n",
             moddir=False)
    assert not kc.has_ipvs(k) and not kc.has_dummy(k)
    msgs = kc.missing_for_ipvs(k)
    assert len(msgs) == 2
    assert msgs[0].startswith("the kernel has no IPVS (ip_vs module")
    assert "linux-image-amd64" in msgs[0] and "scripts/vm-run" in msgs[0]
    assert "dummy" in msgs[1] and "kube-ipvs0" in msgs[1]


def test_in_use_wins(tmp_path):
    k = fake(tmp_path, config="# CONFIG_IP_VS is not set\n", proc_files=["net/ip_vs"],
             sys_modules={"dummy": True, "sch_netem": False})
    assert k.state(kc.IPVS) == kc.LOADED
    assert k.state(kc.DUMMY) == kc.LOADED
    assert k.state(kc.NETEM) == kc.BUILTIN     # in /sys/module without initstate: built in


def test_modules_directory_without_config(tmp_path):
    k = fake(tmp_path, modules=["kernel/net/netfilter/ipvs/ip_vs.ko", "kernel/net/netfilter/ipvs/ip_vs_rr.ko.zst"],
             builtin=["kernel/drivers/net/dummy.ko"])
    assert k.state(kc.IPVS) == kc.MODULE
    assert k.state(kc.IPVS_RR) == kc.MODULE
    assert k.state(kc.DUMMY) == kc.BUILTIN
    assert k.state(kc.NETEM) == kc.ABSENT      # the directory is there, the module is not
    assert kc.missing_for_ipvs(k) == []


def test_scheduler_missing(tmp_path):
    k = fake(tmp_path, modules=["kernel/net/netfilter/ipvs/ip_vs.ko", "kernel/drivers/net/dummy.ko"])
    [msg] = kc.missing_for_ipvs(k)
    assert "ip_vs_rr" in msg


def test_tries_only_when_nothing_tells(tmp_path):
    calls = []

    def runner(argv):
        calls.append(argv)
        return 0 if "dummy" in argv else 2
    k = fake(tmp_path, moddir=False, runner=runner)
    assert k.state(kc.DUMMY) == kc.BUILTIN
    assert k.state(kc.NETEM) == kc.ABSENT
    assert k.state(kc.IPVS) == kc.UNKNOWN       # nothing to try for IPVS: /proc/net/ip_vs would show it
    assert all(a[:3] == ["unshare", "--net", "--"] for a in calls)  # always in a throwaway namespace
    assert "cannot tell" in kc.missing_for_ipvs(k)[0]
    # with a config or a modules directory, nothing is run
    calls.clear()
    k2 = fake(tmp_path / "b", modules=[], runner=runner)
    assert k2.state(kc.DUMMY) == kc.ABSENT and calls == []
    k3 = fake(tmp_path / "c", moddir=False, runner=runner, allow_try=False)
    assert k3.state(kc.DUMMY) == kc.UNKNOWN and calls == []
    # a kernel that loads modules is never tried: that could autoload one into the host
    k4 = fake(tmp_path / "d", moddir=False, runner=runner, proc_files=["modules"])
    assert k4.state(kc.DUMMY) == kc.UNKNOWN and calls == []


def _modules() -> str:
    try:
        with open("/proc/modules") as f:
            return f.read()
    except OSError:
        return "<no /proc/modules>"


def test_this_machine_is_consistent_and_untouched():
    """On the real kernel: the answers agree with each other, and asking changes nothing (no module
    loaded, no link in the root namespace). On this project's CI machine the answer is 'missing'."""
    before = (_modules(), subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout)
    k = kc.Kernel()
    ipvs, dummy = kc.has_ipvs(k), kc.has_dummy(k)
    kc.has_netem(k), kc.has_ipip(k)
    msgs = kc.missing_for_ipvs(k)
    after = (_modules(), subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout)
    assert before == after
    assert bool(msgs) == (not ipvs or not dummy or k.state(kc.IPVS_RR) not in kc.USABLE)
    if not ipvs:
        assert not os.path.exists("/proc/net/ip_vs")
        assert "ip_vs" in msgs[0] and "scripts/vm-run" in msgs[0]
    if os.path.exists("/proc/net/ip_vs"):
        assert ipvs


def test_cli_reports():
    r = subprocess.run([sys.executable, "-m", "netlab.dataplane.kernelcheck"], capture_output=True, text=True)
    assert r.returncode in (0, 1)
    assert "ip_vs" in r.stdout
    assert ("IPVS mode: the kernel has what it needs" in r.stdout) == (r.returncode == 0)


def test_the_ipvs_refusal_says_how_to_get_the_features_once(tmp_path):
    """`up` joined the per-feature messages, each with the same long fix: the fix came twice."""
    k = fake(tmp_path, config="# CONFIG_MODULES is not set\n# CONFIG_IP_VS is not set\n# CONFIG_DUMMY is not set\n",
             moddir=False)
    line = kc.ipvs_refusal(k)
    assert line.startswith("kube-proxy mode ipvs cannot run on this kernel: the kernel has no IPVS (ip_vs module")
    assert "the kernel has no dummy network devices (dummy module" in line
    assert line.count("linux-image-amd64") == 1 and line.count("scripts/vm-run") == 1
    assert line.endswith("(netlab does not fall back to another mode)") and "\n" not in line
    ok = fake(tmp_path / "ok", modules=["kernel/net/netfilter/ipvs/ip_vs.ko", "kernel/net/netfilter/ipvs/ip_vs_rr.ko",
                                        "kernel/drivers/net/dummy.ko"])
    assert kc.ipvs_refusal(ok) is None
