"""Growth limits and misbehaving guests, on real QEMU: the event log's
retention, the console log cap (a guest printing as fast as it can), the rate
limit on repeated QMP events, memory below an image's minimum refused, and a
guest in a reset loop ending `crashed` with the reason instead of rebooting
for ever."""
import os
import re
import subprocess
import time

from conftest import ROOT, YUN, Yund, qemu_pids_for, wait_for

SPAM_LINES = 50000  # about 800 KB of console output


def events(y, after=0, obj=None):
    q = f"/v1/events?after={after}&limit=10000" + (f"&object={obj}" if obj else "")
    st, r = y.request("GET", q)
    assert st == 200, r
    return r["events"]


def console_file(y, name):
    return os.path.join(y.vm(name)["directory"], "console.log")


def spam_numbers(text):
    """The yun-spam line numbers in text, skipping a first line cut in two."""
    lines = text.replace("\r", "").split("\n")
    return [int(m.group(1)) for m in (re.fullmatch(r"yun-spam (\d+)", ln) for ln in lines[1:])
            if m]


def test_console_log_stays_bounded_and_followable(state_dir):
    cap = 64 * 1024
    y = Yund(state_dir, ["--set", "console_log_max=64K", "--set", "reconcile_interval=1"]).start()
    try:
        y.ensure_tiny()
        name = "e2e-guard-spam"
        y.yun("vm", "create", name, "--image", "tiny", "--memory", "96M", "--cmdline",
              f"console=ttyS0 panic=-1 quiet yun.spam={SPAM_LINES}", "--start")
        out = os.path.join(state_dir, "follow.out")
        with open(out, "wb") as f:
            follower = subprocess.Popen([YUN, "--socket", y.sock, "vm", "logs", name, "-f"],
                                        stdout=f, stderr=subprocess.STDOUT)
        try:
            log = console_file(y, name)
            # The guest writes far more than the cap; the file is cut on the
            # reconcile passes while it does.
            wait_for(lambda: os.path.exists(log + ".base"), 120, interval=0.2,
                     what="a first cut of console.log")
            wait_for(lambda: b"YUN-SPAM-DONE" in open(out, "rb").read(), 180, interval=0.5,
                     what="the follower to see the end of the spam")
            # Once the guest is quiet again, the next pass brings the file
            # under the cap, and console.log.1 holds at most half of it.
            wait_for(lambda: os.path.getsize(log) <= cap, 30, what="console.log under its cap")
            assert os.path.getsize(log + ".1") <= cap // 2
            assert int(open(log + ".base").read()) > SPAM_LINES * 10  # most was cut away
        finally:
            follower.kill()
            follower.wait()
        # The follower went on across every cut: each line once, in order.
        got = spam_numbers(open(out, "rb").read().decode(errors="replace"))
        assert got and got[-1] > SPAM_LINES // 2
        assert all(a < b for a, b in zip(got, got[1:])), "a line repeated or out of order"
        # `vm logs` shows the tail: the end of the spam, not its beginning.
        text = y.console_log(name).replace("\r", "")
        assert len(text) <= cap + cap // 2
        assert "YUN-SPAM-DONE" in text and f"yun-spam {SPAM_LINES}\n" in text
        assert "\nyun-spam 1\n" not in text and "YUN-TINY-INIT-OK" not in text
        tail = spam_numbers(text)
        assert all(a + 1 == b for a, b in zip(tail, tail[1:]))  # nothing missing in between
        # the API says where the kept part starts and ends
        st, _ = y.request("GET", f"/v1/vms/{name}/console?offset=0&limit=1")
        assert st == 200
        y.yun("vm", "stop", "--force", name)
        wait_for(lambda: y.vm(name)["state"] == "stopped", 30, what="the vm to stop")
        y.check_invariants()
        y.yun("vm", "delete", name)
    finally:
        y.stop()


def test_identical_qmp_events_are_rate_limited(yund):
    yund.ensure_tiny()
    name = "e2e-guard-reboots"
    yund.yun("vm", "create", name, "--image", "tiny", "--memory", "96M", "--start")
    yund.wait_marker(name)
    last = events(yund)[-1]["id"]
    for _ in range(12):  # host resets: each one a QMP RESET with guest: false
        st, r = yund.request("POST", f"/v1/vms/{name}/actions/reboot")
        assert st == 200, r
    def resets():  # (a reset in the middle of early boot can add one the guest caused)
        return [e for e in events(yund, last, name)
                if e["action"] == "qmp:reset" and e["reason"] == "host-qmp-system-reset"]
    held = re.compile(r"(\d+) more identical qmp:reset \(host-qmp-system-reset\)")

    def suppressed():  # the resets' summaries (on a loaded machine other events repeat too)
        return [e for e in events(yund, last, name)
                if e["action"] == "suppressed" and held.match(e["reason"])]
    # at most 5 identical ones per 10 s window are recorded ...
    wait_for(lambda: suppressed(), 40, what="the summary of the held-back resets")
    counts = [int(held.match(e["reason"]).group(1)) for e in suppressed()]
    # ... and none is lost: recorded + summed up = what happened
    assert len(resets()) + sum(counts) == 12, (resets(), suppressed())
    assert len(resets()) < 12
    # resets the guest did not cause never count towards a reset loop
    v = yund.vm(name)
    assert v["state"] == "running", v
    yund.yun("vm", "stop", "--force", name)
    wait_for(lambda: yund.vm(name)["state"] == "stopped", 30, what="the vm to stop")
    yund.check_invariants()
    yund.yun("vm", "delete", name)


def test_memory_below_image_minimum_is_refused(yund):
    img = yund.ensure_tiny()
    assert img["min_memory_mb"] == 96
    st, r = yund.request("GET", "/v1/images/tiny")
    assert st == 200 and r["min_memory_mb"] == 96
    out = yund.yun("image", "list").stdout
    assert "MINMEM" in out and re.search(r"tiny .* 96M ", out), out
    st, r = yund.request("POST", "/v1/vms", {"name": "e2e-guard-small", "image": "tiny",
                                            "memory": "64M"})
    assert st == 400, r
    assert r["error"]["code"] == "invalid_argument"
    assert "64 MiB" in r["error"]["message"] and "96 MiB" in r["error"]["message"], r
    p = yund.yun("vm", "create", "e2e-guard-small", "--image", "tiny", "--memory", "64M",
                 check=False)
    assert p.returncode == 1 and "96 MiB" in p.stderr
    # nothing half-made
    st, _ = yund.request("GET", "/v1/vms/e2e-guard-small")
    assert st == 404
    assert os.listdir(os.path.join(yund.state_dir, "vms")) == []
    # the minimum itself is fine
    st, r = yund.request("POST", "/v1/vms", {"name": "e2e-guard-small", "image": "tiny",
                                            "memory": "96M"})
    assert st == 201, r
    yund.check_invariants()
    yund.yun("vm", "delete", "e2e-guard-small")


def test_reset_loop_ends_crashed_with_the_reason(state_dir):
    # A tiny image that does not declare its minimum, as images built before
    # it was recorded: then 64 MiB can be asked for, and the guest resets
    # itself for ever (its kernel does not fit).
    builder = os.path.join(state_dir, "build-tiny-no-min.sh")
    with open(builder, "w") as f:
        f.write("#!/bin/bash\nset -e\n"
                f"bash {ROOT}/scripts/build-tiny-image.sh \"$1\"\n"
                "sed -i 's/,\"min_memory_mb\":[0-9]*//' \"$1/image.json\"\n")
    y = Yund(state_dir, ["--set", f"image_builder={builder}"]).start()
    try:
        img = y.ensure_tiny()
        assert img["min_memory_mb"] == 0
        name = "e2e-guard-loop"
        y.yun("vm", "create", name, "--image", "tiny", "--memory", "64M", "--restart",
              "on-failure", "--start")
        wait_for(lambda: y.vm(name)["state"] == "crashed", 120, interval=0.2,
                 what="the reset loop to be noticed")
        v = y.vm(name)
        assert "reset itself 5 times" in v["last_error"] and "reset loop" in v["last_error"], v
        assert "64 MiB" in v["last_error"], v
        assert v["pid"] == 0
        wait_for(lambda: not qemu_pids_for(state_dir), 10, what="its qemu to be gone")
        evs = events(y, 0, name)
        assert any(e["action"] == "reset-loop" and e["result"] == "error" for e in evs), evs
        assert any(e["action"] == "exit" and e["result"] == "error" for e in evs), evs
        # A crash loop is not restarted: the restart policy's first backoff
        # step is 1 s; after a few reconcile passes nothing has started it.
        time.sleep(4)
        v = y.vm(name)
        assert v["state"] == "crashed" and v["restarts"] == 0, v
        assert not qemu_pids_for(state_dir)
        y.check_invariants()
        y.yun("vm", "delete", name)
    finally:
        y.stop()


def test_event_retention(state_dir):
    y = Yund(state_dir, ["--set", "event_retention=100"]).start()
    try:
        y.ensure_tiny()
        for i in range(70):  # two VM events each (and each operation's task's)
            y.yun("vm", "create", f"e2e-guard-ev{i}", "--image", "tiny")
            y.yun("vm", "delete", f"e2e-guard-ev{i}")
        newest = [e for e in events(y) if e["object_type"] == "vm"][-1]
        assert newest["object"] == "e2e-guard-ev69" and newest["action"] == "delete"
        # the reconcile pass prunes down to the newest 100
        wait_for(lambda: len(events(y)) <= 100, 30, what="events pruned to event_retention")
        evs = events(y)
        assert newest["id"] in [e["id"] for e in evs]
        ids = [e["id"] for e in evs]
        assert ids == sorted(ids) and ids[-1] - ids[0] < 100
        # a reader behind the pruned rows gets what is left, oldest first
        assert [e["id"] for e in events(y, after=1)] == ids
        assert [e["id"] for e in events(y, after=ids[50])] == ids[51:]
    finally:
        y.stop()
    # by age: with event_max_age=1s every earlier event goes
    y = Yund(state_dir, ["--set", "event_max_age=1s"]).start()
    try:
        wait_for(lambda: all(e["id"] > newest["id"] for e in events(y)), 30,
                 what="events older than event_max_age pruned")
        st, r = y.request("GET", f"/v1/events?after={newest['id']}")
        assert st == 200
    finally:
        y.stop()


def test_bad_growth_settings_are_refused(state_dir):
    from conftest import YUND
    for setting, words in (("event_retention=5", "event_retention"),
                           ("event_max_age=soon", "event_max_age"),
                           ("console_log_max=1K", "console_log_max"),
                           ("console_log_max=1G", "console_log_max"),
                           ("reset_loop_max=1", "reset_loop_max"),
                           ("reset_loop_window=0", "reset_loop_window")):
        p = subprocess.run([YUND, "-s", state_dir, "--set", setting], capture_output=True,
                           text=True, timeout=30)
        assert p.returncode != 0 and words in p.stderr, (setting, p.returncode, p.stderr)
