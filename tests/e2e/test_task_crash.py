"""Every fault point of the volume tasks (from `yund --failpoints`): yund is
started with YUN_FAILPOINT=<point>, the operation is driven until yund dies
there (it must die), yund is restarted without it, and then the task is
finished (failed or succeeded, never running), no partial file is left, no
qemu-img runs, and the volume rows agree with the pool's files."""
import os
import subprocess

import pytest

from conftest import YUND, Yund, qemu_img_pids_for, wait_for

# point -> (operation, the task's end state after the restart)
POINTS = {
    "clone.after_row": ("clone", "failed"),
    "clone.after_copy": ("clone", "failed"),
    "clone.after_ready": ("clone", "succeeded"),
    "disk_copy.running": ("clone", "failed"),
    "disk_copy.before_rename": ("clone", "failed"),
    "compact.after_begin": ("compact", "failed"),
    "compact.after_copy": ("compact", "failed"),
    "export.after_begin": ("export", "failed"),
    "export.after_copy": ("export", "failed"),
    "image_build.after_begin": ("image_build", "failed"),
    "image_build.after_run": ("image_build", "succeeded"),
    "volume_import.after_row": ("import", "failed"),
    "volume_import.after_copy": ("import", "failed"),
    "volume_import.after_ready": ("import", "succeeded"),
    "image_import.after_begin": ("image_import", "failed"),
    "image_import.after_copy": ("image_import", "failed"),
    "image_import.after_row": ("image_import", "succeeded"),
}
# a live detach: a running VM (the tiny image) with the volume hot-plugged
DETACH_POINTS = {
    "volume_detach.after_begin": "failed",
    "volume_detach.after_device_del": None,  # failed, or succeeded if the guest was quick
}
# a hot-plug into a running VM (not a task): the volume's state once the
# reconcile pass has asked QEMU after the restart
ATTACH_POINTS = {
    "volume_attach.after_row": "ready",  # nothing was sent: rolled back
    "volume_attach.after_plug": "attached",  # the device is in QEMU: finished
}
PREFIXES = ("clone.", "compact.", "export.", "disk_copy.", "image_build.", "volume_import.",
            "image_import.")


def listed_points():
    out = subprocess.run([YUND, "--failpoints"], capture_output=True, text=True).stdout
    return sorted(p for p in out.split() if p.startswith(PREFIXES))


def test_every_point_is_walked():
    pts = listed_points()
    if not pts:
        pytest.skip("a build without fault points (make SAN=1)")
    assert pts == sorted(POINTS), "a new fault point needs a row in POINTS"
    out = subprocess.run([YUND, "--failpoints"], capture_output=True, text=True).stdout
    assert sorted(p for p in out.split() if p.startswith("volume_detach.")) == \
        sorted(DETACH_POINTS), "a new detach fault point needs a row in DETACH_POINTS"
    assert sorted(p for p in out.split() if p.startswith("volume_attach.")) == \
        sorted(ATTACH_POINTS), "a new attach fault point needs a row in ATTACH_POINTS"


@pytest.mark.parametrize("point", sorted(POINTS))
def test_crash_at(point, state_dir, tmp_path, monkeypatch):
    if point not in listed_points():
        pytest.skip("a build without fault points (make SAN=1)")
    op, end = POINTS[point]
    # a slow copy, so a point inside it is reached while qemu-img runs
    wrapper = tmp_path / "qemu-img"
    wrapper.write_text("#!/bin/sh\n"
                       "if [ \"$1\" = convert ]; then shift; exec qemu-img convert -r 16M \"$@\"; fi\n"
                       "exec qemu-img \"$@\"\n")
    wrapper.chmod(0o755)
    args = ["--set", f"qemu_img={wrapper}"]
    y = Yund(state_dir, args).start()
    st, v = y.request("POST", "/v1/volumes", {"name": "src", "size": "256M"})
    assert st == 201, v
    subprocess.run(["qemu-io", "-f", "qcow2", "-c", "write -P 0x11 0 32M", v["path"]],
                   check=True, capture_output=True)
    y.stop()
    monkeypatch.setenv("YUN_FAILPOINT", point)
    y = Yund(state_dir, args).start()
    exch = os.path.join(state_dir, "exchange")
    dest = os.path.join(exch, "src.qcow2")
    incoming = os.path.join(exch, "in.qcow2")
    if op in ("import", "image_import"):
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", incoming, "64M"], check=True)
        subprocess.run(["qemu-io", "-f", "qcow2", "-c", "write -P 0x22 0 8M", incoming],
                       check=True, capture_output=True)
    try:
        if op == "import":
            r = y.request("POST", "/v1/volumes", {"name": "imp", "source": incoming})
        elif op == "image_import":
            r = y.request("POST", "/v1/images/import", {"name": "imp", "file": incoming})
        elif op == "image_build":
            r = y.request("POST", "/v1/images/build", {"kind": "tiny"})
        elif op == "clone":
            r = y.request("POST", "/v1/volumes/src/actions/clone", {"name": "copy", "full": True})
        elif op == "compact":
            r = y.request("POST", "/v1/volumes/src/actions/compact")
        else:
            r = y.request("POST", "/v1/volumes/src/actions/export", {"path": dest})
        tid = r[1]["task"]["id"]
    except (OSError, Exception):  # the answer itself may be lost with yund
        tid = None
    y.proc.wait(timeout=120)  # it must die at the point
    assert y.proc.returncode == -9, (point, y.proc.returncode, y.logtext())
    monkeypatch.delenv("YUN_FAILPOINT")
    y = Yund(state_dir, args).start()
    try:
        st, r = y.request("GET", "/v1/tasks")
        assert st == 200
        kind = {"image_build": "image.build", "image_import": "image.import"}.get(
            op, f"volume.{op}")
        mine = [t for t in r["tasks"] if t["kind"] == kind]
        assert len(mine) == 1, r
        t = mine[0]
        assert tid is None or t["id"] == tid
        assert t["state"] == end, (point, t)
        if end == "failed":
            assert "interrupted" in t["error"]["message"], t
        wait_for(lambda: not qemu_img_pids_for(state_dir), 10, what="no qemu-img left")
        if op == "image_build":
            imgs = [m["name"] for m in y.request("GET", "/v1/images")[1]["images"]]
            assert imgs == (["tiny"] if end == "succeeded" else []), imgs
            if end == "failed":
                assert not os.path.exists(os.path.join(state_dir, "images", "tiny"))
                # and it builds fine now
                assert y.task_wait(y.request("POST", "/v1/images/build",
                                             {"kind": "tiny"}))["state"] == "succeeded"
        if op == "image_import":
            imgs = [m["name"] for m in y.request("GET", "/v1/images")[1]["images"]]
            assert imgs == (["imp"] if end == "succeeded" else []), imgs
            if end == "failed":
                assert not os.path.exists(os.path.join(state_dir, "images", "imp"))
                # and it imports fine now
                assert y.task_wait(y.request("POST", "/v1/images/import",
                                             {"name": "imp", "file": incoming}))["state"] == \
                    "succeeded"
        pool = sorted(os.listdir(os.path.join(state_dir, "pools", "default")))
        assert not [f for f in pool if f.endswith(".part")], pool
        names = sorted(x["name"] for x in y.request("GET", "/v1/volumes")[1]["volumes"])
        want = ["copy", "src"] if (op == "clone" and end == "succeeded") else ["src"]
        if op == "import" and end == "succeeded":
            want = ["imp", "src"]
        assert names == want, (point, names)
        if op == "import":
            imp = y.request("GET", "/v1/volumes/imp")
            if end == "succeeded":
                assert imp[0] == 200 and imp[1]["state"] == "ready", imp
            else:  # gone without a trace, and it imports fine now
                assert imp[0] == 404, imp
                t = y.task_wait(y.request("POST", "/v1/volumes", {"name": "imp",
                                                                  "source": incoming}))
                assert t["state"] == "succeeded" and t["result"]["name"] == "imp", t
            out = subprocess.run(["qemu-io", "-f", "qcow2", "-r", "-c", "read -P 0x22 0 8M",
                                  y.request("GET", "/v1/volumes/imp")[1]["path"]],
                                 capture_output=True, text=True)
            assert out.returncode == 0 and "Pattern verification failed" not in out.stdout
        assert not os.path.exists(dest + ".part")
        # the source is whole whatever happened
        src = y.request("GET", "/v1/volumes/src")[1]
        out = subprocess.run(["qemu-io", "-f", "qcow2", "-r", "-c", "read -P 0x11 0 32M",
                              src["path"]], capture_output=True, text=True)
        assert out.returncode == 0 and "Pattern verification failed" not in out.stdout
        wait_for(lambda: sorted(os.listdir(os.path.join(state_dir, "pools", "default"))) ==
                 sorted(os.path.basename(x["path"])
                        for x in y.request("GET", "/v1/volumes")[1]["volumes"]),
                 10, what="pool files to match the rows")
        y.check_invariants()
    finally:
        y.stop()


@pytest.mark.parametrize("point", sorted(DETACH_POINTS))
def test_detach_crash_at(point, state_dir, monkeypatch):
    """A live detach is the task volume.detach: yund killed after the task
    began (nothing asked yet) or right after device_del; after the restart
    the task is finished, the volume is attached or free (never stuck
    detaching once QEMU has let go), and a detach again completes."""
    out = subprocess.run([YUND, "--failpoints"], capture_output=True, text=True).stdout
    if point not in out.split():
        pytest.skip("a build without fault points (make SAN=1)")
    y = Yund(state_dir).start()
    y.ensure_tiny()
    st, vm = y.request("POST", "/v1/vms", {"name": "det", "image": "tiny", "memory": "128M",
                                           "start": True})
    assert st == 201, vm
    y.wait_marker("det")
    y.yun("volume", "create", "dv", "--size", "16M")
    y.yun("volume", "attach", "dv", "det")
    y.stop()
    monkeypatch.setenv("YUN_FAILPOINT", point)
    y = Yund(state_dir).start()
    try:
        y.request("POST", "/v1/volumes/dv/actions/detach")
    except (OSError, Exception):  # the answer itself may be lost with yund
        pass
    y.proc.wait(timeout=120)
    assert y.proc.returncode == -9, (point, y.proc.returncode, y.logtext())
    monkeypatch.delenv("YUN_FAILPOINT")
    y = Yund(state_dir).start()
    try:
        st, r = y.request("GET", "/v1/tasks")
        mine = [t for t in r["tasks"] if t["kind"] == "volume.detach"]
        assert len(mine) == 1, r
        t = mine[0]
        want = DETACH_POINTS[point]
        assert t["state"] in ((want,) if want else ("failed", "succeeded")), (point, t)
        if t["state"] == "failed":
            assert "interrupted" in t["error"]["message"], t
        # the guest releases the device in its own time: the row settles
        # (DEVICE_DELETED, or a reconcile pass asks QEMU), and a detach
        # again finishes it
        v = wait_for(lambda: (lambda v: v if v["state"] in ("attached", "ready") else None)(
            y.request("GET", "/v1/volumes/dv")[1]), 60, what="dv to settle")
        y.check_invariants()
        if v["state"] == "attached":
            p = y.yun("volume", "detach", "dv", timeout=120)
            assert "detached" in p.stdout, p.stdout
        v = y.request("GET", "/v1/volumes/dv")[1]
        assert v["state"] == "ready" and v["attached_to"] == "", v
        y.check_invariants()
        y.yun("vm", "delete", "--force", "det")
        y.yun("volume", "delete", "dv")
    finally:
        y.stop()


@pytest.mark.parametrize("point", sorted(ATTACH_POINTS))
def test_attach_crash_at(point, state_dir, monkeypatch):
    """A hot-plug: yund killed with the row "attaching", before anything
    went to QEMU or right after the device was added; after the restart the
    reconcile pass asks QEMU and the volume is attached (device there) or
    ready (not there), never stuck attaching, and detach or attach again
    completes."""
    out = subprocess.run([YUND, "--failpoints"], capture_output=True, text=True).stdout
    if point not in out.split():
        pytest.skip("a build without fault points (make SAN=1)")
    y = Yund(state_dir).start()
    y.ensure_tiny()
    st, vm = y.request("POST", "/v1/vms", {"name": "att", "image": "tiny", "memory": "128M",
                                           "start": True})
    assert st == 201, vm
    y.wait_marker("att")
    y.yun("volume", "create", "av", "--size", "16M")
    y.stop()
    monkeypatch.setenv("YUN_FAILPOINT", point)
    y = Yund(state_dir).start()
    try:
        y.request("POST", "/v1/volumes/av/actions/attach", {"vm": "att"})
    except (OSError, Exception):  # the answer itself is lost with yund
        pass
    y.proc.wait(timeout=120)
    assert y.proc.returncode == -9, (point, y.proc.returncode, y.logtext())
    monkeypatch.delenv("YUN_FAILPOINT")
    y = Yund(state_dir).start()
    try:
        v = wait_for(lambda: (lambda v: v if v["state"] in ("attached", "ready") else None)(
            y.request("GET", "/v1/volumes/av")[1]), 60, what="av to settle")
        assert v["state"] == ATTACH_POINTS[point], (point, v)
        y.check_invariants()
        if v["state"] == "ready":
            assert v["attached_to"] == "", v
            st, r = y.request("POST", "/v1/volumes/av/actions/attach", {"vm": "att"})
            assert st == 200 and r["state"] == "attached", (st, r)
        p = y.yun("volume", "detach", "av", timeout=120)
        assert "detached" in p.stdout, p.stdout
        v = y.request("GET", "/v1/volumes/av")[1]
        assert v["state"] == "ready" and v["attached_to"] == "", v
        y.check_invariants()
        y.yun("vm", "delete", "--force", "att")
        y.yun("volume", "delete", "av")
    finally:
        y.stop()
