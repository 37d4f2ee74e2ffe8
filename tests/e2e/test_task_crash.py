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
}
PREFIXES = ("clone.", "compact.", "export.", "disk_copy.", "image_build.")


def listed_points():
    out = subprocess.run([YUND, "--failpoints"], capture_output=True, text=True).stdout
    return sorted(p for p in out.split() if p.startswith(PREFIXES))


def test_every_point_is_walked():
    pts = listed_points()
    if not pts:
        pytest.skip("a build without fault points (make SAN=1)")
    assert pts == sorted(POINTS), "a new fault point needs a row in POINTS"


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
    try:
        if op == "image_build":
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
        kind = "image.build" if op == "image_build" else f"volume.{op}"
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
        pool = sorted(os.listdir(os.path.join(state_dir, "pools", "default")))
        assert not [f for f in pool if f.endswith(".part")], pool
        names = sorted(x["name"] for x in y.request("GET", "/v1/volumes")[1]["volumes"])
        want = ["copy", "src"] if (op == "clone" and end == "succeeded") else ["src"]
        assert names == want, (point, names)
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
