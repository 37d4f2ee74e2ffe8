"""KSM (agent/agent_ksm.c): with `ksm = on` the yund holding /run/yun-ksm.lock
starts KSM and the pages of two identical idle tiny guests get shared
(/sys/kernel/mm/ksm/pages_sharing rises), /metrics and `yun host info` show
it; with `ksm = off` yund never writes /sys/kernel/mm/ksm. KSM is the
machine's: every test puts back the run and tuning it found."""
import os
import re

import pytest

from conftest import Yund, wait_for

KSM = "/sys/kernel/mm/ksm"
KNOBS = ("run", "pages_to_scan", "sleep_millisecs")


def ksm(name):
    with open(os.path.join(KSM, name)) as f:
        return int(f.read())


def set_ksm(name, v):
    with open(os.path.join(KSM, name), "w") as f:
        f.write(f"{v}\n")


@pytest.fixture
def ksm_restored():
    if not os.access(os.path.join(KSM, "run"), os.W_OK):
        pytest.skip("no writable /sys/kernel/mm/ksm here")
    saved = {k: ksm(k) for k in KNOBS}
    yield saved
    # the tuning first, then run: as yund writes it
    for k in ("pages_to_scan", "sleep_millisecs", "run"):
        set_ksm(k, saved[k])


def metric(text, name):
    m = re.search(r"^%s\{host=\"[^\"]*\"\} (\S+)$" % name, text, re.M)
    return float(m.group(1)) if m else None


def test_ksm_on_shares_identical_guests(state_dir, ksm_restored):
    before = ksm("pages_sharing")
    y = Yund(state_dir, ["--set", "ksm=on", "--set", "sample_interval=1"]).start()
    try:
        wait_for(lambda: "this yund drives KSM" in y.logtext(20000), 30, interval=0.2,
                 what="yund to take the KSM lock")
        wait_for(lambda: ksm("run") == 1, 30, interval=0.2, what="KSM run=1")
        assert ksm("pages_to_scan") == 100 and ksm("sleep_millisecs") == 20
        y.ensure_tiny()
        for n in ("e2e-ksm-a", "e2e-ksm-b"):
            y.yun("vm", "create", n, "--image", "tiny", "--memory", "96M", "--start")
        for n in ("e2e-ksm-a", "e2e-ksm-b"):
            y.wait_marker(n)
        wait_for(lambda: ksm("pages_sharing") > before + 256, 240, interval=1,
                 what=f"pages_sharing to rise above {before} (now {ksm('pages_sharing')})")

        def metrics():
            return y.request("GET", "/metrics")[1].decode()
        wait_for(lambda: (metric(metrics(), "yun_host_ksm_saved_bytes") or 0) > 0, 30,
                 interval=0.5, what="yun_host_ksm_saved_bytes > 0")
        t = metrics()
        assert metric(t, "yun_host_ksm_run") == 1
        assert metric(t, "yun_host_ksm_pages_sharing") > before
        assert metric(t, "yun_host_ksm_pages_shared") > 0
        assert metric(t, "yun_host_ksm_cpu_seconds_total") is not None
        assert "# TYPE yun_host_ksm_cpu_seconds_total counter" in t

        st, h = y.request("GET", "/v1/host")
        assert st == 200, h
        mem = h["memory"]
        assert mem["sampled"] is True and mem["ksm_run"] == 1
        assert mem["shared"] > 0
        assert mem["committed"] == 2 * 96 << 20
        assert 0 < mem["resident"]
        assert mem["swapped"] == 0  # no swap on this host
        out = y.yun("host", "info").stdout
        m = re.search(r"shared by KSM (\S+)", out)
        assert m and m.group(1) not in ("0", "0B"), out
        assert "committed 192" in out, out
    finally:
        y.stop()


def test_ksm_off_never_writes(state_dir, ksm_restored):
    # values yund's controller would change at once (no pressure here: auto
    # writes run=0; on writes pages_to_scan=100)
    set_ksm("pages_to_scan", 123)
    set_ksm("sleep_millisecs", 77)
    set_ksm("run", 1)
    y = Yund(state_dir, ["--set", "ksm=off", "--set", "sample_interval=1"]).start()
    try:
        # the monitor has read KSM: a controller would have decided by now
        # (it decides at start, before the first sample)
        wait_for(lambda: metric(y.request("GET", "/metrics")[1].decode(),
                                "yun_host_ksm_run") == 1, 30, interval=0.3,
                 what="yun_host_ksm_run in /metrics")
        assert (ksm("run"), ksm("pages_to_scan"), ksm("sleep_millisecs")) == (1, 123, 77)
        assert "ksm:" not in y.logtext(20000)
    finally:
        y.stop()
    assert (ksm("run"), ksm("pages_to_scan"), ksm("sleep_millisecs")) == (1, 123, 77)


def test_ksm_setting_is_checked(state_dir):
    import subprocess
    from conftest import YUND
    p = subprocess.run([YUND, "-s", state_dir, "--set", "ksm=sometimes"], capture_output=True,
                       text=True, timeout=30)
    assert p.returncode != 0 and "ksm: 'sometimes' is not one of auto, on, off" in p.stderr
    p = subprocess.run([YUND, "-s", state_dir, "--set", "ksm_free_percent=95"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode != 0 and "ksm_free_percent" in p.stderr and "0..90" in p.stderr
