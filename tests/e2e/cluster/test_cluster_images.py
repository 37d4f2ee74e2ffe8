"""Images on a host with a library of its own (docs/cluster.md, "Images"):
h4 joins with an images_dir that is not the cluster's library; a VM created
there waits for the task image.fetch (progress: bytes done of the total),
which copies the image's files from the controller; the copies' SHA-256 are
the library's; the VM boots from them. A second VM on h4 fetches nothing.
The controller's image route takes only a host's own credential (401
otherwise). Deleting the image removes h4's copy. h4 leaves the cluster at
the end (the shared fixture's hosts all share the library)."""
import hashlib
import http.client
import json
import os

import pytest

from . import harness
from .harness import wait_for

pytestmark = pytest.mark.usefixtures("tiny")


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fetch_tasks(cl, image, host):
    ts = cl.get("/v1/tasks?limit=1000")
    ts = ts["tasks"] if isinstance(ts, dict) else ts
    return [t for t in ts if t["kind"] == "image.fetch" and t["object"]["name"] == f"{image}@{host}"]


def get_file(cl, ns, path, headers):
    c = cl.controllers[0]
    conn = harness._NsHTTP(ns, c.addr, harness.CTL_PORT, 10)
    try:
        conn.request("GET", path, headers=headers)
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def import_raw(cl, name, size):
    """A raw image of random bytes, imported into the library (through h1)."""
    src = os.path.join(cl.agents["h1"].state_dir, "exchange", f"{name}.raw")
    os.makedirs(os.path.dirname(src), exist_ok=True)
    with open(src, "wb") as f:
        f.write(os.urandom(size))
    t = cl.task_wait(cl.api("POST", "/v1/images/import",
                            {"name": name, "file": src, "format": "raw"}))
    assert t["state"] == "succeeded", t
    os.unlink(src)
    return cl.get(f"/v1/images/{name}")


def test_image_fetched_to_a_host_with_its_own_library(cl):
    lib = os.path.join(cl.run_dir, "h4-images")
    h4 = harness.Agent(cl, "h4", labels="zone=c", images_dir=lib)
    tiny = cl.get("/v1/images/tiny")
    files = [p for p in (tiny["path"], tiny["kernel"], tiny["initrd"]) if p]
    try:
        h4.start()
        cl.agents["h4"] = h4  # for the invariants, while it is in the cluster
        h = cl.hosts()["h4"]
        assert h["images_dir"] == lib and h["state"] == "up", h
        assert not fetch_tasks(cl, "tiny", "h4")

        # the create waits for the fetch, then makes the VM's files on h4
        cl.yun("vm", "create", "f-one", "--image", "tiny", "--memory", "96M", "--host", "h4")
        v = cl.vm("f-one")
        assert cl.vm_host(v) == "h4" and v["state"] == "stopped", v
        ts = fetch_tasks(cl, "tiny", "h4")
        assert len(ts) == 1 and ts[0]["state"] == "succeeded", ts
        t = ts[0]
        total = sum(os.path.getsize(p) for p in files)
        assert t["progress"] == {"done": total, "total": total, "unit": "bytes"}, t
        res = t["result"]
        assert res["host"] == "h4" and res["bytes"] == total and res["fetched"] == total, res
        # every copy is the library's file, under h4's own images_dir
        for p in files:
            copy = os.path.join(lib, "tiny", os.path.basename(p))
            assert sha256(copy) == sha256(p), copy
            assert not os.path.exists(copy + ".part")
        ev = cl.events("tiny")
        assert any(e["action"] == "fetch" and e["result"] == "ok" for e in ev), ev
        # its overlay is backed by h4's copy, not the library
        with open(os.path.join(h4.state_dir, "vms", v["id"], "disk.qcow2"), "rb") as f:
            head = f.read(4096)
        assert os.path.join(lib, "tiny").encode() in head, head[:200]
        assert cl.images_dir.encode() not in head

        # it boots from the copy
        cl.yun("vm", "start", "f-one")
        cl.wait_vm("f-one", "running")
        cl.wait_marker("f-one")

        # a second VM there: nothing fetched again
        cl.yun("vm", "create", "f-two", "--image", "tiny", "--memory", "96M", "--host", "h4",
               "--start")
        cl.wait_vm("f-two", "running")
        assert len(fetch_tasks(cl, "tiny", "h4")) == 1
        cl.check_invariants()

        # the image route: only a host's own credential
        cj = json.load(open(os.path.join(h4.state_dir, "cluster.json")))
        path = "/v1/cluster/images/tiny/" + os.path.basename(tiny["path"])
        st, _ = get_file(cl, h4.ns, path, {})
        assert st == 401, st
        st, _ = get_file(cl, h4.ns, path, {"X-Yun-Host": cj["host_id"],
                                           "Authorization": "Bearer " + "0" * 64})
        assert st == 401, st
        st, _ = get_file(cl, h4.ns, path, {"X-Yun-Host": cl.hosts()["h1"]["id"],
                                           "Authorization": "Bearer " + cj["credential"]})
        assert st == 401, st  # h4's credential is not h1's
        st, _ = get_file(cl, h4.ns, path, {"Authorization": f"Bearer {cl.api_token}"})
        assert st == 401, st  # nor is the API token an agent's
        good = {"X-Yun-Host": cj["host_id"], "Authorization": "Bearer " + cj["credential"]}
        st, body = get_file(cl, h4.ns, path, good)
        assert st == 200 and hashlib.sha256(body).hexdigest() == sha256(tiny["path"]), st
        st, _ = get_file(cl, h4.ns, "/v1/cluster/images/tiny/image.json", good)
        assert st == 404, st  # only the image's disk, kernel and initrd
        st, _ = get_file(cl, h4.ns, "/v1/cluster/images/nope/disk.qcow2", good)
        assert st == 404, st

        # an image deleted goes from h4 too (refused while a VM there uses it)
        import_raw(cl, "fsmall", 1 << 20)
        cl.yun("vm", "create", "f-small", "--image", "fsmall", "--memory", "96M", "--host", "h4")
        copy = os.path.join(lib, "fsmall")
        assert os.path.isdir(copy) and len(fetch_tasks(cl, "fsmall", "h4")) == 1
        assert cl.api("DELETE", "/v1/images/fsmall")[0] == 409  # f-small uses it
        cl.yun("vm", "delete", "f-small")
        st, b = cl.api("DELETE", "/v1/images/fsmall")
        assert st in (200, 204), (st, b)
        wait_for(lambda: not os.path.exists(copy), 30, what="h4's copy of fsmall to go")
    finally:
        for name in ("f-one", "f-two", "f-small"):
            cl.api("DELETE", f"/v1/vms/{name}?force=true")
        wait_for(lambda: not [v for v in cl.vms() if v["name"].startswith("f-")], 60,
                 what="the f- VMs to go")
        cl.agents.pop("h4", None)
        h4.stop_checked()
        st, b = cl.api("DELETE", "/v1/hosts/h4")
        assert st in (200, 204), (st, b)


def test_fetch_killed_on_either_side_then_retried(cl):
    """kill -9 of the agent with a .part half written, and of the controller
    with the fetch task just begun: no copy is recorded or used, and the
    next create fetches it whole."""
    lib = os.path.join(cl.run_dir, "h5-images")
    h5 = harness.Agent(cl, "h5", labels="zone=d", images_dir=lib)
    ctl = cl.controllers[0]
    tiny = cl.get("/v1/images/tiny")
    disk = os.path.join(lib, "tiny", os.path.basename(tiny["path"]))
    try:
        os.environ["YUN_FAILPOINT"] = "image_fetch.after_part"
        try:
            h5.start()
        finally:
            del os.environ["YUN_FAILPOINT"]
        cl.agents["h5"] = h5
        p = cl.yun("vm", "create", "k-one", "--image", "tiny", "--memory", "96M", "--host", "h5",
                   check=False)
        assert p.returncode != 0, p.stdout
        wait_for(lambda: not h5.running(), 30, what="h5's agent to die at its fault point")
        assert os.path.exists(disk + ".part") and not os.path.exists(disk)
        try:
            wait_for(lambda: [t["state"] for t in fetch_tasks(cl, "tiny", "h5")] == ["failed"], 20,
                     what="the fetch task to fail")
        except AssertionError:
            raise AssertionError(f"{p.stderr} {fetch_tasks(cl, 'tiny', 'h5')} {ctl.logtext()[-3000:]}")
        wait_for(lambda: cl.api("GET", "/v1/vms/k-one")[0] == 404, 60, what="k-one's row to go")
        h5.start()
        cl.yun("vm", "create", "k-one", "--image", "tiny", "--memory", "96M", "--host", "h5")
        states = sorted(t["state"] for t in fetch_tasks(cl, "tiny", "h5"))
        assert states == ["failed", "succeeded"], states
        assert not os.path.exists(disk + ".part") and sha256(disk) == sha256(tiny["path"])

        # the controller killed with the task just begun
        fk = import_raw(cl, "fkill", 1 << 20)
        ctl.stop_checked()
        os.environ["YUN_FAILPOINT"] = "image_fetch.after_begin"
        try:
            ctl.start()
        finally:
            del os.environ["YUN_FAILPOINT"]
        cl.wait_leader()
        p = cl.yun("vm", "create", "k-two", "--image", "fkill", "--memory", "96M", "--host", "h5",
                   check=False)
        assert p.returncode != 0, p.stdout
        wait_for(lambda: not ctl.running(), 30, what="the controller to die at its fault point")
        ctl.start()
        cl.wait_leader()
        for name in cl.agents:
            cl.wait_host(name, "up", 30, daemon=cl.agents[name])
        ts = fetch_tasks(cl, "fkill", "h5")
        assert [t["state"] for t in ts] == ["failed"], ts
        wait_for(lambda: cl.api("GET", "/v1/vms/k-two")[0] == 404, 60,
                 what="k-two's creating row to be rolled back")
        cl.yun("vm", "create", "k-two", "--image", "fkill", "--memory", "96M", "--host", "h5")
        assert sorted(t["state"] for t in fetch_tasks(cl, "fkill", "h5")) == ["failed", "succeeded"]
        copy = os.path.join(lib, "fkill", os.path.basename(fk["path"]))
        assert sha256(copy) == sha256(fk["path"])
        cl.check_invariants()
    finally:
        if not ctl.running():
            ctl.start()
            cl.wait_leader()
        for name in ("k-one", "k-two"):
            cl.api("DELETE", f"/v1/vms/{name}?force=true")
        wait_for(lambda: not [v for v in cl.vms() if v["name"].startswith("k-")], 60,
                 what="the k- VMs to go")
        cl.api("DELETE", "/v1/images/fkill")
        cl.agents.pop("h5", None)
        if h5.running():
            h5.stop_checked()
        st, b = cl.api("DELETE", "/v1/hosts/h5")
        assert st in (200, 204), (st, b)
