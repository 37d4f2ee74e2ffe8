"""Long volume operations are tasks (/v1/tasks): 202 with a Location, progress
in bytes while qemu-img copies, the volume as the result; one operation per
volume at a time (409 naming the task); cancel kills the copy and rolls back;
?wait= answers when the task changes; bad requests to /v1/tasks. The quick
operations answer when done and hold their volume meanwhile."""
import os
import subprocess
import threading

import pytest

from conftest import Yund, qemu_img_pids_for, wait_for

DATA_MB = 64


@pytest.fixture
def slow_yund(state_dir, tmp_path):
    """A yund whose qemu-img copies at 8 MiB/s, so a copy is seen running."""
    wrapper = tmp_path / "qemu-img"
    wrapper.write_text("#!/bin/sh\n"
                       "if [ \"$1\" = convert ]; then shift; exec qemu-img convert -r 8M \"$@\"; fi\n"
                       "exec qemu-img \"$@\"\n")
    wrapper.chmod(0o755)
    y = Yund(state_dir, ["--set", f"qemu_img={wrapper}"]).start()
    yield y
    y.stop()


def make_volume(y, name, mb=DATA_MB):
    st, v = y.request("POST", "/v1/volumes", {"name": name, "size": "1G"})
    assert st == 201, v
    subprocess.run(["qemu-io", "-f", "qcow2", "-c", f"write -P 0x3c 0 {mb}M", v["path"]],
                   check=True, capture_output=True)
    return v


def test_clone_is_a_task_with_progress_and_result(slow_yund):
    y = slow_yund
    src = make_volume(y, "tsrc")
    st, r = y.request("POST", "/v1/volumes/tsrc/actions/clone", {"name": "tcopy", "full": True})
    assert st == 202, r
    t = r["task"]
    assert t["kind"] == "volume.clone" and t["state"] == "running" and t["cancellable"] in (
        True, False)
    assert t["object"]["type"] == "volume" and t["object"]["name"] == "tcopy"
    # the row is there at once, owned by the task
    st, v = y.request("GET", "/v1/volumes/tcopy")
    assert st == 200 and v["state"] == "creating" and v["task"] == t["id"], v
    # progress is reported in bytes of the source's virtual size
    seen = wait_for(lambda: (lambda s: s if s[1].get("progress", {}).get("done") else None)(
        y.request("GET", f"/v1/tasks/{t['id']}?wait=10")), 30, what="progress")
    prog = seen[1]["progress"]
    assert prog["unit"] == "bytes" and prog["total"] == 1 << 30 and 0 < prog["done"] <= 1 << 30
    # one operation per volume: a second one on the same object is refused
    st, e = y.request("POST", "/v1/volumes/tcopy/actions/compact")
    assert st == 409 and e["error"]["task"] == t["id"], e
    assert t["id"] in e["error"]["message"] and "volume.clone" in e["error"]["message"]
    st, lst = y.request("GET", "/v1/tasks?state=running")
    assert st == 200 and [x["id"] for x in lst["tasks"]] == [t["id"]]
    done = y.task_wait((202, r))
    assert done["state"] == "succeeded", done
    assert done["result"]["name"] == "tcopy" and done["result"]["state"] == "ready"
    assert done["progress"]["done"] == done["progress"]["total"]
    assert done["finished_at"] >= done["started_at"] >= done["created_at"]
    out = subprocess.run(["qemu-io", "-f", "qcow2", "-r", "-c", f"read -P 0x3c 0 {DATA_MB}M",
                          done["result"]["path"]], capture_output=True, text=True)
    assert out.returncode == 0 and "Pattern verification failed" not in out.stdout
    # finished: not cancellable any more
    st, e = y.request("POST", f"/v1/tasks/{t['id']}/cancel")
    assert st == 409, e
    ev = [x for x in y.events() if x["object"] == t["id"]]
    assert [x["action"] for x in ev] == ["start", "finish"], ev
    y.check_invariants()


def test_cancel_kills_the_copy_and_rolls_back(slow_yund):
    y = slow_yund
    make_volume(y, "csrc")
    r = y.request("POST", "/v1/volumes/csrc/actions/clone", {"name": "ccopy", "full": True})
    assert r[0] == 202, r
    tid = r[1]["task"]["id"]
    wait_for(lambda: qemu_img_pids_for(y.state_dir), 20, what="the copy to run")
    st, c = y.request("POST", f"/v1/tasks/{tid}/cancel")
    assert st == 202 and c["id"] == tid, c
    t = y.task_wait(r)
    assert t["state"] == "cancelled" and t["error"]["code"] == "cancelled", t
    assert y.request("GET", "/v1/volumes/ccopy")[0] == 404
    # the partial copy is renamed aside at once and its extents freed by a
    # background rm (part_remove in agent_disk.c), so it may outlive the reply
    pooldir = os.path.join(y.state_dir, "pools", "default")
    wait_for(lambda: sorted(os.listdir(pooldir)) == ["csrc.qcow2"], 10,
             what="the pool to hold only csrc.qcow2")
    assert not os.path.exists(os.path.join(pooldir, "ccopy.qcow2.part"))
    wait_for(lambda: not qemu_img_pids_for(y.state_dir), 10, what="qemu-img to go")
    # the name is free again
    r = y.request("POST", "/v1/volumes/csrc/actions/clone", {"name": "ccopy", "full": True})
    assert y.task_wait(r)["state"] == "succeeded"
    y.check_invariants()


def test_compact_and_export_tasks(yund):
    y = yund
    make_volume(y, "cx", mb=8)
    r = y.request("POST", "/v1/volumes/cx/actions/compact")
    assert r[0] == 202 and r[1]["task"]["kind"] == "volume.compact", r
    t = y.task_wait(r)
    assert t["state"] == "succeeded" and "reclaimed_bytes" in t["result"], t
    dest = os.path.join(y.state_dir, "exchange", "cx.raw")
    r = y.request("POST", "/v1/volumes/cx/actions/export", {"path": dest, "format": "raw"})
    assert r[0] == 202, r
    t = y.task_wait(r)
    assert t["state"] == "succeeded" and t["result"]["path"] == dest, t
    assert os.path.getsize(dest) == 1 << 30 and not os.path.exists(dest + ".part")
    # an export onto an existing file: refused before any task
    st, e = y.request("POST", "/v1/volumes/cx/actions/export", {"path": dest})
    assert st == 409 and "exists" in e["error"]["message"], e
    y.check_invariants()


def test_task_routes_refuse_bad_requests(yund):
    y = yund
    assert y.request("GET", "/v1/tasks/no-such-task")[0] == 404
    assert y.request("POST", "/v1/tasks/no-such-task/cancel")[0] == 404
    assert y.request("GET", "/v1/tasks?state=sleeping")[0] == 400
    assert y.request("GET", "/v1/tasks?limit=0")[0] == 400
    assert y.request("GET", "/v1/tasks/x?wait=61")[0] == 400
    assert y.request("DELETE", "/v1/tasks")[0] == 405
    st, r = y.request("GET", "/v1/tasks")
    assert st == 200 and r["tasks"] == []


def test_quick_operations_answer_when_done_and_hold_the_volume(state_dir, tmp_path):
    """A resize (or create) answers when the agent's qemu-img is done, never
    blocking the loop meanwhile; while one is in flight its volume is busy:
    a delete is refused (409), other requests are served at once."""
    mark = tmp_path / "resizing"
    gate = tmp_path / "go"
    wrapper = tmp_path / "qemu-img"
    wrapper.write_text("#!/bin/sh\n"
                       f"if [ \"$1\" = resize ]; then touch {mark}; "
                       f"while [ ! -e {gate} ]; do sleep 0.05; done; fi\n"
                       "exec qemu-img \"$@\"\n")
    wrapper.chmod(0o755)
    y = Yund(state_dir, ["--set", f"qemu_img={wrapper}"]).start()
    try:
        st, v = y.request("POST", "/v1/volumes", {"name": "q", "size": "16M"})
        assert st == 201 and v["state"] == "ready", v
        out = {}
        t = threading.Thread(target=lambda: out.setdefault(
            "r", y.request("POST", "/v1/volumes/q/actions/resize", {"size": "32M"})))
        t.start()
        wait_for(mark.exists, 30, what="qemu-img resize to start")
        # the loop is free, and the volume is held
        st, r = y.request("GET", "/v1/volumes/q")
        assert st == 200 and r["virtual_size"] == 16 << 20, r
        st, r = y.request("DELETE", "/v1/volumes/q")
        assert st == 409 and "busy" in r["error"]["message"], r
        st, r = y.request("POST", "/v1/volumes/q/actions/compact")
        assert st == 409, r
        gate.touch()
        t.join(60)
        st, r = out["r"]
        assert st == 200 and r["virtual_size"] == 32 << 20, (st, r)
        st, r = y.request("DELETE", "/v1/volumes/q")
        assert st == 200 and r == {"deleted": "q"}, r
        assert not os.listdir(os.path.join(state_dir, "pools", "default"))
        y.check_invariants()
    finally:
        gate.touch()
        y.stop()
