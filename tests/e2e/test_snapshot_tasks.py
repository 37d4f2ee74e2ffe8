"""Snapshot operations are tasks on their VM: DELETE answers 202 with the
task at once and the merge (qemu-img rebase, a child process) runs on while
yund goes on answering; any other snapshot request for the VM meanwhile gets
409 naming the task; the task ends succeeded when the snapshot is gone.
qemu-img is a wrapper here that holds a rebase until the test lets it go,
so the merge is in flight for as long as the test needs, without timing."""
import json
import os
import stat
import subprocess
import time

from conftest import Yund, wait_for

VM = "e2e-st"


def wrapper(state_dir):
    path = os.path.join(state_dir, "qemu-img-held")
    with open(path, "w") as f:
        f.write(f"""#!/bin/sh
if [ "$1" = rebase ]; then
    : > {state_dir}/rebase-started
    while [ ! -e {state_dir}/rebase-go ]; do sleep 0.05; done
fi
exec qemu-img "$@"
""")
    os.chmod(path, stat.S_IRWXU)
    return path


def test_delete_is_a_task_and_holds_the_vm(state_dir):
    y = Yund(state_dir, ["--set", f"qemu_img={wrapper(state_dir)}"]).start()
    y.ensure_tiny()
    y.yun("vm", "create", VM, "--image", "tiny", "--memory", "96M")
    y.yun("snapshot", "create", VM, "a")
    y.yun("snapshot", "create", VM, "b")
    v = y.vm(VM)
    # deleting "a" rebases "b" onto the image: held by the wrapper
    st, b = y.request("DELETE", f"/v1/vms/{VM}/snapshots/a")
    assert st == 202, b
    task = b["task"]
    assert task["kind"] == "snapshot.delete" and task["state"] == "running", task
    assert task["object"] == {"type": "vm", "id": v["id"], "name": VM}, task
    wait_for(lambda: os.path.exists(os.path.join(state_dir, "rebase-started")), 30,
             what="the rebase to start")
    # yund answers while the merge runs
    t0 = time.monotonic()
    assert y.request("GET", "/v1/vms")[0] == 200
    assert time.monotonic() - t0 < 2
    snaps = y.request("GET", f"/v1/vms/{VM}/snapshots")[1]["snapshots"]
    assert [(s["name"], s["state"]) for s in snaps] == [("a", "deleting"), ("b", "ready")]
    # one operation per VM: each of these names the running task
    for method, path, body in (
            ("POST", f"/v1/vms/{VM}/snapshots", {"name": "c"}),
            ("POST", f"/v1/vms/{VM}/snapshots/b/actions/revert", None),
            ("DELETE", f"/v1/vms/{VM}/snapshots/b", None),
            ("POST", f"/v1/vms/{VM}/actions/start", None)):
        st, r = y.request(method, path, body)
        assert st == 409, (path, st, r)
        assert r["error"]["code"] == "conflict", r
        assert r["error"]["task"] == task["id"], r
        assert task["id"] in r["error"]["message"] and "snapshot.delete" in \
            r["error"]["message"], r
    st, t = y.request("GET", f"/v1/tasks/{task['id']}")
    assert st == 200 and t["state"] == "running", t
    # let it go: the task finishes, the snapshot is gone
    open(os.path.join(state_dir, "rebase-go"), "w").close()
    t = y.task_wait((202, {"task": task}))
    assert t["state"] == "succeeded", t
    assert [s["name"] for s in y.request("GET", f"/v1/vms/{VM}/snapshots")[1]["snapshots"]] \
        == ["b"]
    chain = json.loads(subprocess.run(
        ["qemu-img", "info", "-U", "--backing-chain", "--output=json",
         os.path.join(state_dir, "vms", v["id"], y.vm(VM)["disk"])],
        capture_output=True, text=True, check=True).stdout)
    assert len(chain) == 3, chain  # active <- b <- image
    # the CLI: --no-wait prints the task's id; by default it waits for it
    p = y.yun("snapshot", "delete", VM, "b", "--no-wait")
    tid = p.stdout.strip()
    assert len(tid) == 36 and tid.count("-") == 4, p.stdout
    assert y.task_wait((202, {"task": {"id": tid}}))["state"] == "succeeded"
    y.yun("snapshot", "create", VM, "c")
    p = y.yun("snapshot", "delete", VM, "c")
    assert "deleted" in p.stdout
    assert y.request("GET", f"/v1/vms/{VM}/snapshots")[1]["snapshots"] == []
    # create and revert were tasks too, each finished
    st, r = y.request("GET", f"/v1/tasks?object={VM}&limit=50")
    kinds = sorted({(k["kind"], k["state"]) for k in r["tasks"]})
    assert ("snapshot.create", "succeeded") in kinds and \
        ("snapshot.delete", "succeeded") in kinds, kinds
    y.check_invariants()
    y.yun("vm", "delete", VM)
    y.stop()
